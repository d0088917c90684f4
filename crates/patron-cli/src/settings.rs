//! Where the settings come from. Precedence, highest first: the command-line flag, the
//! environment variable, the `--config` file (`PATRON_CONFIG`), the built-in default.
//! (clap already merges the flag with its environment variable.)
//!
//! The settings file is TOML. Today it knows one key:
//!
//! ```toml
//! database_url = "postgres://patron@localhost/patron"
//! ```
//!
//! Unknown keys are refused with their line and column, so a misspelt key is not silently
//! ignored.

use std::path::Path;

use anyhow::Context;
use toml_edit::Document;

/// The database used when nothing else names one.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://patron.db";

/// Keys a settings file may contain.
const KNOWN_KEYS: &[&str] = &["database_url"];

/// Where a setting's value came from (for `--log-level debug` and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--db` or `PATRON_DATABASE_URL`.
    FlagOrEnvironment,
    ConfigFile,
    Default,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub database_url_source: Source,
}

impl Settings {
    /// Settings from the flag-or-environment value and an optional settings file.
    pub fn resolve(
        database_url: Option<String>,
        config: Option<&Path>,
    ) -> anyhow::Result<Settings> {
        let file_url = match config {
            Some(path) => read_config(path)?,
            None => None,
        };
        let (database_url, database_url_source) = match (database_url, file_url) {
            (Some(url), _) => (url, Source::FlagOrEnvironment),
            (None, Some(url)) => (url, Source::ConfigFile),
            (None, None) => (DEFAULT_DATABASE_URL.to_string(), Source::Default),
        };
        Ok(Settings {
            database_url,
            database_url_source,
        })
    }
}

/// Reads `database_url` from a settings file.
fn read_config(path: &Path) -> anyhow::Result<Option<String>> {
    let name = path.display();
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the settings file {name}"))?;
    let document = Document::parse(source.as_str()).map_err(|e| {
        let (line, column) = line_column(&source, e.span().map_or(0, |s| s.start));
        anyhow::anyhow!(
            "{name}:{line}:{column}: TOML syntax error: {}",
            e.message().trim()
        )
    })?;
    let mut database_url = None;
    for (key, item) in document.as_table().iter() {
        let position = |offset: Option<usize>| {
            let (line, column) = line_column(&source, offset.unwrap_or(0));
            format!("{name}:{line}:{column}")
        };
        let key_offset = document
            .as_table()
            .key(key)
            .and_then(|k| k.span())
            .map(|s| s.start);
        match key {
            "database_url" => match item.as_str() {
                Some(url) => database_url = Some(url.to_string()),
                None => anyhow::bail!(
                    "{}: `database_url` must be a string, such as \"sqlite://patron.db\"",
                    position(item.span().map(|s| s.start).or(key_offset))
                ),
            },
            other => anyhow::bail!(
                "{}: unknown setting `{other}`; known settings: {}",
                position(key_offset),
                KNOWN_KEYS.join(", ")
            ),
        }
    }
    Ok(database_url)
}

/// 1-based line and character column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
