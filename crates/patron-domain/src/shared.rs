//! The words every part of the program model speaks: the languages ([`Locale`]) and texts in
//! them ([`Localized`]), the club's [`Currency`], how fractions of points are rounded
//! ([`Rounding`]), and the "did you mean" helper ([`closest`]) that the program parser and the
//! expression compiler both use for misspelt words.
//!
//! This module imports nothing from the rest of the crate, so every other module can import it
//! without a circle. [`crate::program`] re-exports its types at their old paths.

/// A language Patron speaks to members and staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Locale {
    /// Persian (Farsi).
    Fa,
    /// Hebrew.
    He,
    /// English.
    En,
}

impl Locale {
    /// Every supported locale, in a fixed order.
    pub const ALL: [Locale; 3] = [Locale::Fa, Locale::He, Locale::En];

    /// Their codes, in the same order (the API documents them as its `locale` values).
    pub const CODES: [&'static str; 3] = ["fa", "he", "en"];

    /// The BCP 47 language code: `"fa"`, `"he"` or `"en"`.
    pub fn code(&self) -> &'static str {
        match self {
            Locale::Fa => "fa",
            Locale::He => "he",
            Locale::En => "en",
        }
    }

    /// Whether text in this language runs right to left.
    pub fn is_rtl(&self) -> bool {
        matches!(self, Locale::Fa | Locale::He)
    }

    /// The locale with this exact code (`"fa"`, `"he"`, `"en"`), if supported.
    pub fn from_code(code: &str) -> Option<Locale> {
        Locale::ALL.into_iter().find(|locale| locale.code() == code)
    }
}

/// A text in each language the club writes it in. Any of them may be missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Localized {
    pub fa: Option<String>,
    pub he: Option<String>,
    pub en: Option<String>,
}

impl Localized {
    /// The text in exactly this language, if the club wrote one.
    pub fn get(&self, locale: Locale) -> Option<&str> {
        match locale {
            Locale::Fa => self.fa.as_deref(),
            Locale::He => self.he.as_deref(),
            Locale::En => self.en.as_deref(),
        }
    }

    /// The best text to show: the requested language, then `fallback`, then any non-empty text
    /// (in [`Locale::ALL`] order), then `""`. Never fails, so templates can always render.
    pub fn resolve(&self, locale: Locale, fallback: Locale) -> &str {
        let non_empty = |locale: Locale| self.get(locale).filter(|text| !text.is_empty());
        non_empty(locale)
            .or_else(|| non_empty(fallback))
            .or_else(|| Locale::ALL.into_iter().find_map(non_empty))
            .unwrap_or("")
    }

    /// Sets the text for one language.
    pub fn set(&mut self, locale: Locale, text: String) {
        match locale {
            Locale::Fa => self.fa = Some(text),
            Locale::He => self.he = Some(text),
            Locale::En => self.en = Some(text),
        }
    }
}

/// The club's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    /// ISO 4217 alphabetic code, e.g. `"IRR"`.
    pub code: String,
    /// Digits after the decimal point in the amounts the shops send: an amount of `1234` with
    /// `minor_unit = 2` is 12.34. Defaults to the ISO 4217 exponent; a club may override it
    /// (Iranian rials are ISO exponent 2, but in practice are used without decimals, so
    /// Iranian clubs write `minor_unit = 0`).
    pub minor_unit: u32,
}

/// How a fractional number of points becomes a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Toward zero (floor for positive amounts): the club never gives a fraction away.
    Down,
    /// Away from zero (ceiling for positive amounts).
    Up,
    /// To the nearest; exact halves go up.
    HalfUp,
    /// To the nearest; exact halves go to the even neighbour (banker's rounding).
    HalfEven,
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

    #[test]
    fn the_codes_are_the_locales_codes() {
        assert_eq!(super::Locale::CODES, super::Locale::ALL.map(|l| l.code()));
    }

    use super::*;

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
