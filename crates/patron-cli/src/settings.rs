//! Where the settings come from. Precedence, highest first: the command-line flag, the
//! environment variable, the `--config` file (`PATRON_CONFIG`), the built-in default.
//! (clap already merges the flag with its environment variable.)
//!
//! The settings file is TOML (every key and environment variable: `docs/CONFIG.md`):
//!
//! ```toml
//! database_url = "postgres://patron@localhost/patron"
//! listen = "127.0.0.1:8080"
//! body_limit_bytes = 1048576
//! rate_limit_per_key_per_second = 1000
//! rate_limit_per_ip_per_second = 2000
//! page_size_max = 100
//! request_timeout_seconds = 30
//! ```
//!
//! Unknown keys are refused with their line and column, so a misspelt key is not silently
//! ignored. The server limits can also come from `PATRON_BODY_LIMIT_BYTES`,
//! `PATRON_RATE_LIMIT_PER_KEY_PER_SECOND`, `PATRON_RATE_LIMIT_PER_IP_PER_SECOND` and
//! `PATRON_PAGE_SIZE_MAX` and `PATRON_REQUEST_TIMEOUT_SECONDS`, which win over the file.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use toml_edit::Document;

/// The database used when nothing else names one.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://patron.db";

/// The address `patron serve` and `patron demo` listen on when nothing else names one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Keys a settings file may contain.
const KNOWN_KEYS: &[&str] = &[
    "database_url",
    "listen",
    "body_limit_bytes",
    "rate_limit_per_key_per_second",
    "rate_limit_per_ip_per_second",
    "page_size_max",
    "request_timeout_seconds",
    "jobs_interval_seconds",
    "jobs_lease_seconds",
];

/// The scheduler settings (`patron serve`, docs/JOBS.md).
const JOB_KEYS: &[&str] = &["jobs_interval_seconds", "jobs_lease_seconds"];

/// How often `patron serve` schedules and runs due jobs, and how long a claimed job's lease
/// lasts (a job whose worker died is taken over after this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSettings {
    /// 0 turns the scheduler off in this process.
    pub interval_seconds: u64,
    pub lease_seconds: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            interval_seconds: 30,
            lease_seconds: 300,
        }
    }
}

impl JobSettings {
    fn set(&mut self, key: &str, value: u64) -> Result<(), String> {
        match key {
            "jobs_interval_seconds" => self.interval_seconds = value,
            "jobs_lease_seconds" => {
                if value == 0 {
                    return Err("must be at least 1".into());
                }
                self.lease_seconds = value;
            }
            other => return Err(format!("unknown job setting `{other}`")),
        }
        Ok(())
    }
}

/// The server limits a settings file or the environment may set.
const LIMIT_KEYS: &[&str] = &[
    "body_limit_bytes",
    "rate_limit_per_key_per_second",
    "rate_limit_per_ip_per_second",
    "page_size_max",
    "request_timeout_seconds",
];

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
    /// `listen` from the settings file (`--listen` and `PATRON_LISTEN` win over it).
    pub listen: Option<SocketAddr>,
    /// The server limits from the file, then overridden by the environment.
    pub limits: Limits,
    /// The job scheduler of `patron serve`.
    pub jobs: JobSettings,
}

/// Server limits that were set; unset ones keep [`patron_http::ServerConfig`]'s defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub body_limit_bytes: Option<usize>,
    pub rate_limit_per_key_per_second: Option<u32>,
    pub rate_limit_per_ip_per_second: Option<u32>,
    pub page_size_max: Option<u32>,
    pub request_timeout_seconds: Option<u32>,
}

impl Limits {
    fn set(&mut self, key: &str, value: u64) -> Result<(), String> {
        let small = || u32::try_from(value).map_err(|_| format!("at most {}", u32::MAX));
        match key {
            "body_limit_bytes" => {
                self.body_limit_bytes =
                    Some(usize::try_from(value).map_err(|_| "too large".to_string())?);
            }
            "rate_limit_per_key_per_second" => self.rate_limit_per_key_per_second = Some(small()?),
            "rate_limit_per_ip_per_second" => self.rate_limit_per_ip_per_second = Some(small()?),
            "page_size_max" => {
                let n = small()?;
                if n == 0 {
                    return Err("must be at least 1".into());
                }
                self.page_size_max = Some(n);
            }
            "request_timeout_seconds" => {
                let n = small()?;
                if !(1..=3600).contains(&n) {
                    return Err("must be 1 to 3600 seconds".into());
                }
                self.request_timeout_seconds = Some(n);
            }
            other => return Err(format!("unknown limit `{other}`")),
        }
        Ok(())
    }
}

/// What a settings file holds.
#[derive(Debug, Default)]
struct FileSettings {
    database_url: Option<String>,
    listen: Option<SocketAddr>,
    limits: Limits,
    jobs: JobSettings,
}

impl Settings {
    /// Settings from the flag-or-environment value and an optional settings file.
    pub fn resolve(
        database_url: Option<String>,
        config: Option<&Path>,
    ) -> anyhow::Result<Settings> {
        let file = match config {
            Some(path) => read_config(path)?,
            None => FileSettings::default(),
        };
        let mut limits = file.limits;
        for key in LIMIT_KEYS {
            let variable = format!("PATRON_{}", key.to_uppercase());
            let Ok(text) = std::env::var(&variable) else {
                continue;
            };
            let value: u64 = text.trim().parse().map_err(|_| {
                anyhow::anyhow!("{variable}={text:?} must be a whole number, such as 1000")
            })?;
            limits
                .set(key, value)
                .map_err(|e| anyhow::anyhow!("{variable}={text:?}: {e}"))?;
        }
        let mut jobs = file.jobs;
        for key in JOB_KEYS {
            let variable = format!("PATRON_{}", key.to_uppercase());
            let Ok(text) = std::env::var(&variable) else {
                continue;
            };
            let value: u64 = text.trim().parse().map_err(|_| {
                anyhow::anyhow!("{variable}={text:?} must be a whole number of seconds, such as 30")
            })?;
            jobs.set(key, value)
                .map_err(|e| anyhow::anyhow!("{variable}={text:?}: {e}"))?;
        }
        let (database_url, database_url_source) = match (database_url, file.database_url) {
            (Some(url), _) => (url, Source::FlagOrEnvironment),
            (None, Some(url)) => (url, Source::ConfigFile),
            (None, None) => (DEFAULT_DATABASE_URL.to_string(), Source::Default),
        };
        Ok(Settings {
            database_url,
            database_url_source,
            listen: file.listen,
            limits,
            jobs,
        })
    }

    /// The server configuration: `listen` (from `--listen`/`PATRON_LISTEN`) if given, else the
    /// file's `listen`, else [`DEFAULT_LISTEN`]; limits from the environment, the file, or
    /// the defaults.
    pub fn server_config(&self, listen: Option<SocketAddr>) -> patron_http::ServerConfig {
        let mut config = patron_http::ServerConfig::default();
        if let Some(address) = listen.or(self.listen) {
            config.listen = address;
        }
        let limits = &self.limits;
        if let Some(n) = limits.body_limit_bytes {
            config.body_limit_bytes = n;
        }
        if let Some(n) = limits.rate_limit_per_key_per_second {
            config.rate_limit_per_key_per_second = n;
        }
        if let Some(n) = limits.rate_limit_per_ip_per_second {
            config.rate_limit_per_ip_per_second = n;
        }
        if let Some(n) = limits.page_size_max {
            config.page_size_max = n;
        }
        if let Some(n) = limits.request_timeout_seconds {
            config.request_timeout = std::time::Duration::from_secs(u64::from(n));
        }
        config
    }
}

/// Reads a settings file.
fn read_config(path: &Path) -> anyhow::Result<FileSettings> {
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
    let mut settings = FileSettings::default();
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
                Some(url) => settings.database_url = Some(url.to_string()),
                None => anyhow::bail!(
                    "{}: `database_url` must be a string, such as \"sqlite://patron.db\"",
                    position(item.span().map(|s| s.start).or(key_offset))
                ),
            },
            "listen" => match item.as_str().map(|text| text.parse::<SocketAddr>()) {
                Some(Ok(address)) => settings.listen = Some(address),
                _ => anyhow::bail!(
                    "{}: `listen` must be a string holding an address and port, such as \"{DEFAULT_LISTEN}\"",
                    position(item.span().map(|s| s.start).or(key_offset))
                ),
            },
            limit if LIMIT_KEYS.contains(&limit) => {
                let at = position(item.span().map(|s| s.start).or(key_offset));
                let value = item
                    .as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        anyhow::anyhow!("{at}: `{limit}` must be a whole number, such as 1000")
                    })?;
                settings
                    .limits
                    .set(limit, value)
                    .map_err(|e| anyhow::anyhow!("{at}: `{limit}`: {e}"))?;
            }
            job if JOB_KEYS.contains(&job) => {
                let at = position(item.span().map(|s| s.start).or(key_offset));
                let value = item
                    .as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{at}: `{job}` must be a whole number of seconds, such as 30"
                        )
                    })?;
                settings
                    .jobs
                    .set(job, value)
                    .map_err(|e| anyhow::anyhow!("{at}: `{job}`: {e}"))?;
            }
            other => anyhow::bail!(
                "{}: unknown setting `{other}`; known settings: {}",
                position(key_offset),
                KNOWN_KEYS.join(", ")
            ),
        }
    }
    Ok(settings)
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
