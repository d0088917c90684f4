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

/// The candidate closest to `input`, if it is close enough to be a plausible typo: at most one
/// edit for short words, about a third of the length for longer ones, or one word containing
/// the other. Case differences alone always count as close.
pub(crate) fn closest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lowered = input.to_lowercase();
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|candidate| {
            let candidate_lowered = candidate.to_lowercase();
            // A part of the right word (`months` for `rolling_months`) is as good as a typo.
            let part = lowered.chars().count() >= 3
                && (candidate_lowered.contains(&lowered) || lowered.contains(&candidate_lowered));
            (
                edit_distance(&lowered, &candidate_lowered),
                part,
                *candidate,
            )
        })
        .filter(|(distance, part, _)| *distance <= limit || *part)
        .min_by_key(|(distance, _, _)| *distance)
        .map(|(_, _, candidate)| candidate)
}

/// Levenshtein distance over characters, with adjacent transpositions counted as one edit
/// (the most common typo: `threshlod`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rolling rows: two back (for transpositions), previous, current.
    let mut before_previous: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before_previous[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
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

    #[test]
    fn closest_finds_typos_and_ignores_strangers() {
        let keys = ["threshold", "multiplier", "code", "name", "benefits"];
        assert_eq!(closest("threshlod", &keys), Some("threshold"));
        assert_eq!(closest("treshold", &keys), Some("threshold"));
        assert_eq!(closest("Code", &keys), Some("code"));
        assert_eq!(closest("nam", &keys), Some("name"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(closest("xy", &keys), None);
        assert_eq!(
            closest("months", &["rolling_months"]),
            Some("rolling_months")
        );
        assert_eq!(closest("multiplier_percent", &keys), Some("multiplier"));
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions_and_swaps() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("روز", "روز"), 0);
    }
}
