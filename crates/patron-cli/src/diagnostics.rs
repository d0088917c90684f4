//! Printing program-file problems the way compilers do, so editors and terminals can jump to
//! them:
//!
//! ```text
//! club.toml:14:13: error: `club.time_zone`: unknown time zone "Asia/Tehrn"
//!    14 | time_zone = "Asia/Tehrn"
//!       |             ^
//!   hint: did you mean "Asia/Tehran"?
//! ```

use std::fmt::Write as _;

use patron_domain::program::Diagnostic;

/// Renders every diagnostic of `source` (read from `file`).
pub fn render(file: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let gutter = diagnostics
        .iter()
        .map(|d| d.line.to_string().len())
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let _ = writeln!(
            out,
            "{file}:{}:{}: error: {}",
            diagnostic.line, diagnostic.column, diagnostic.message
        );
        if let Some(text) = diagnostic.line.checked_sub(1).and_then(|i| lines.get(i)) {
            let text = text.trim_end_matches('\r');
            // The caret's indent copies the tabs of the line, so it lands under the column
            // however wide the terminal draws a tab.
            let indent: String = text
                .chars()
                .take(diagnostic.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "  {:>gutter$} | {text}", diagnostic.line);
            let _ = writeln!(out, "  {:>gutter$} | {indent}^", "");
        }
        if let Some(hint) = &diagnostic.hint {
            let _ = writeln!(out, "  hint: {hint}");
        }
    }
    out
}

/// `1 error`, `3 errors`.
pub fn count(n: usize) -> String {
    format!("{n} error{}", if n == 1 { "" } else { "s" })
}
