//! Problems found in a program file, located for a human to fix.
//!
//! A [`Diagnostic`] carries a 1-based line and column (columns count characters, not bytes, so
//! they match what an editor shows for Persian and Hebrew text), the dotted path of the setting,
//! a message and an optional hint. This module also holds the "did you mean" helper used for
//! misspelt keys and values.

use std::fmt;

/// One problem in a program file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The setting concerned, e.g. `"tiers.levels[2].threshold"` (indexes are 0-based); empty
    /// for a TOML syntax error.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// `LINE:COL: MESSAGE`, then `\n  hint: HINT` when there is a hint. Callers prefix the file
    /// name (`FILE:LINE:COL: ...`), the format editors and terminals make clickable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The 1-based line and character column of a byte offset in `source`. An offset past the end
/// (or inside a multi-byte character) is clamped to the nearest character before it.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (index, character) in source.char_indices() {
        if index >= offset {
            break;
        }
        if character == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters_not_bytes() {
        let source = "a = 1\nname = \"باشگاه\" x";
        let offset = source.find('x').unwrap_or(0);
        assert_eq!(line_column(source, offset), (2, 17));
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 6), (2, 1));
        assert_eq!(line_column(source, 10_000), (2, 18));
    }

    #[test]
    fn display_puts_the_hint_on_its_own_line() {
        let diagnostic = Diagnostic {
            line: 3,
            column: 7,
            path: "earning.rounding".into(),
            message: "unknown value".into(),
            hint: Some("did you mean \"down\"?".into()),
        };
        assert_eq!(
            diagnostic.to_string(),
            "3:7: unknown value\n  hint: did you mean \"down\"?"
        );
        let plain = Diagnostic {
            hint: None,
            ..diagnostic
        };
        assert_eq!(plain.to_string(), "3:7: unknown value");
    }
}
