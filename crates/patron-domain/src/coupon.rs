//! Coupon codes people can read aloud, type and check.
//!
//! A code is written with [`ALPHABET`]: the digits 2-9 and the letters A-Z without I, L and O,
//! so no two characters look alike (no 0/O, no 1/I/L). It is an optional prefix (a campaign
//! word, itself in the alphabet), random characters, and one check character, shown in groups
//! joined by dashes: `SUMMER-7KQ4-M9XP`. Its *canonical* form, what is stored and compared,
//! has no dashes: `SUMMER7KQ4M9XP`.
//!
//! The check character makes `Σ weight(i) × value(i) ≡ 0 (mod 31)` over the whole canonical
//! code, prefix included, with weights 1, 2, 3, ... by position. The alphabet has 31
//! characters, a prime, and codes are at most [`CODE_CHARS_MAX`] (< 31) characters, so every
//! weight is a different non-zero number mod 31. Hence a changed character changes the sum by
//! `weight × difference ≢ 0`, and two swapped characters by
//! `(weight_i − weight_j) × difference ≢ 0`: every single substitution and every
//! transposition (adjacent or not) is caught. The property tests below check it.
//!
//! Generation takes its random source as an argument, so it stays pure and deterministic in
//! tests; the store enforces uniqueness across batches.

use std::collections::HashSet;

use rand::{Rng, RngCore};

/// The characters codes are written with: no 0, O, 1, I or L. 31 of them, a prime.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// The longest canonical code (prefix + random + check): keeps every position weight below 31.
pub const CODE_CHARS_MAX: usize = 30;
/// Random characters per code, at least and at most.
pub const RANDOM_CHARS_MIN: usize = 4;
pub const RANDOM_CHARS_MAX: usize = 20;
/// The longest prefix.
pub const PREFIX_CHARS_MAX: usize = 8;
/// The most codes one [`generate_batch`] call makes.
pub const BATCH_CODES_MAX: usize = 1_000_000;

const MODULUS: u32 = 31;

/// How a campaign's codes look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFormat {
    prefix: String,
    random_chars: usize,
    group_chars: usize,
}

/// Why a [`CodeFormat`] cannot be made, or a code is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a prefix may only use the characters {}", alphabet_text())]
    BadPrefix,
    #[error("a prefix has at most {PREFIX_CHARS_MAX} characters")]
    PrefixTooLong,
    #[error("codes have {RANDOM_CHARS_MIN} to {RANDOM_CHARS_MAX} random characters")]
    BadLength,
    #[error("groups have 2 to 10 characters, or 0 for none")]
    BadGroup,
    #[error("codes of this format would be longer than {CODE_CHARS_MAX} characters")]
    TooLong,
    #[error("the code is empty")]
    Empty,
    #[error("the code contains {0:?}, which codes never use")]
    BadCharacter(char),
    #[error("the code has {found} characters; codes of this campaign have {expected}")]
    WrongLength { expected: usize, found: usize },
    #[error("the code does not start with {0:?}")]
    WrongPrefix(String),
    #[error("the code has a typo (its check character does not match)")]
    BadCheck,
    #[error("cannot make {requested} distinct codes of this format")]
    NotEnoughCodes { requested: usize },
}

fn alphabet_text() -> &'static str {
    "2-9 and A-Z without I, L, O"
}

impl CodeFormat {
    /// A format: `prefix` (may be empty; case and dashes are ignored), `random_chars` random
    /// characters, and dashes every `group_chars` characters after the prefix (0: none).
    pub fn new(
        prefix: &str,
        random_chars: usize,
        group_chars: usize,
    ) -> Result<CodeFormat, CodeError> {
        let prefix = normalize(prefix);
        if prefix.chars().any(|c| value_of(c).is_none()) {
            return Err(CodeError::BadPrefix);
        }
        if prefix.len() > PREFIX_CHARS_MAX {
            return Err(CodeError::PrefixTooLong);
        }
        if !(RANDOM_CHARS_MIN..=RANDOM_CHARS_MAX).contains(&random_chars) {
            return Err(CodeError::BadLength);
        }
        if group_chars == 1 || group_chars > 10 {
            return Err(CodeError::BadGroup);
        }
        if prefix.len() + random_chars + 1 > CODE_CHARS_MAX {
            return Err(CodeError::TooLong);
        }
        Ok(CodeFormat {
            prefix,
            random_chars,
            group_chars,
        })
    }

    /// Characters in a canonical code: prefix + random + check.
    pub fn canonical_chars(&self) -> usize {
        self.prefix.len() + self.random_chars + 1
    }

    /// How many different codes the format has (31 ^ random characters), saturating.
    pub fn combinations(&self) -> u128 {
        u128::from(MODULUS).saturating_pow(u32::try_from(self.random_chars).unwrap_or(u32::MAX))
    }

    /// A new code in display form (`SUMMER-7KQ4-M9XP`). Characters are uniform over the
    /// alphabet.
    pub fn generate<R: RngCore + ?Sized>(&self, random: &mut R) -> String {
        let mut canonical = self.prefix.clone();
        for _ in 0..self.random_chars {
            let index = random.random_range(0..ALPHABET.len());
            canonical.push(char::from(ALPHABET[index]));
        }
        canonical.push(check_character(&canonical).unwrap_or('2'));
        self.display(&canonical)
    }

    /// The display form of a canonical code: the prefix, then the rest in groups, joined by
    /// dashes.
    pub fn display(&self, canonical: &str) -> String {
        let (prefix, rest) = canonical.split_at(self.prefix.len().min(canonical.len()));
        let mut parts: Vec<String> = Vec::new();
        if !prefix.is_empty() {
            parts.push(prefix.to_owned());
        }
        if self.group_chars == 0 {
            parts.push(rest.to_owned());
        } else {
            let characters: Vec<char> = rest.chars().collect();
            parts.extend(
                characters
                    .chunks(self.group_chars)
                    .map(|chunk| chunk.iter().collect::<String>()),
            );
        }
        parts.join("-")
    }

    /// Reads a code a person typed: normalizes it ([`normalize`]), then checks its characters,
    /// length, prefix and check character. Returns the canonical form.
    pub fn parse(&self, input: &str) -> Result<String, CodeError> {
        let canonical = validate(input)?;
        if canonical.len() != self.canonical_chars() {
            return Err(CodeError::WrongLength {
                expected: self.canonical_chars(),
                found: canonical.len(),
            });
        }
        if !canonical.starts_with(&self.prefix) {
            return Err(CodeError::WrongPrefix(self.prefix.clone()));
        }
        Ok(canonical)
    }
}

/// `count` distinct codes in display form. Fails (rather than loop for long) when the format
/// has too few combinations for `count` to be drawn comfortably: at most 1% of them.
pub fn generate_batch<R: RngCore + ?Sized>(
    format: &CodeFormat,
    count: usize,
    random: &mut R,
) -> Result<Vec<String>, CodeError> {
    let requested = u128::try_from(count).unwrap_or(u128::MAX);
    if count > BATCH_CODES_MAX || requested.saturating_mul(100) > format.combinations() {
        return Err(CodeError::NotEnoughCodes { requested: count });
    }
    let mut seen = HashSet::with_capacity(count);
    let mut codes = Vec::with_capacity(count);
    // With at most 1% of the space used, a draw repeats with probability < 1%; this bound is
    // never reached by a working random source, and stops a broken (constant) one.
    let attempts_max = count.saturating_mul(4).saturating_add(100);
    for _ in 0..attempts_max {
        if codes.len() == count {
            break;
        }
        let code = format.generate(random);
        if seen.insert(code.clone()) {
            codes.push(code);
        }
    }
    if codes.len() < count {
        return Err(CodeError::NotEnoughCodes { requested: count });
    }
    Ok(codes)
}

/// What a person typed, made comparable: upper case, without spaces, dashes (any Unicode
/// dash) or underscores, and with Persian and Arabic-Indic digits read as 0-9.
pub fn normalize(input: &str) -> String {
    input
        .chars()
        .filter(|c| {
            !(c.is_whitespace() || matches!(c, '-' | '_' | '\u{2010}'..='\u{2015}' | '\u{2212}'))
        })
        .map(|c| crate::text::number::ascii_digit(c).unwrap_or(c.to_ascii_uppercase()))
        .collect()
}

/// Normalizes `input` and checks that it is a well-formed code of any format: only alphabet
/// characters, at most [`CODE_CHARS_MAX`], and a matching check character. Returns the
/// canonical form.
pub fn validate(input: &str) -> Result<String, CodeError> {
    let canonical = normalize(input);
    if canonical.is_empty() {
        return Err(CodeError::Empty);
    }
    if let Some(bad) = canonical.chars().find(|c| value_of(*c).is_none()) {
        return Err(CodeError::BadCharacter(bad));
    }
    if canonical.len() > CODE_CHARS_MAX || canonical.len() < 2 {
        return Err(CodeError::WrongLength {
            expected: CODE_CHARS_MAX.min(canonical.len().max(2)),
            found: canonical.len(),
        });
    }
    if weighted_sum(&canonical) != Some(0) {
        return Err(CodeError::BadCheck);
    }
    Ok(canonical)
}

/// The check character to append to `payload` (canonical characters, without the check):
/// the one that makes the weighted sum of the whole code 0 mod 31. `None` if the payload has
/// a character outside the alphabet or the code would be too long.
pub fn check_character(payload: &str) -> Option<char> {
    let position = u32::try_from(payload.chars().count()).ok()? + 1;
    if position as usize > CODE_CHARS_MAX {
        return None;
    }
    let sum = weighted_sum(payload)?;
    // value × position ≡ −sum (mod 31); the inverse of the position exists because 31 is
    // prime and the position is 1..=30.
    let needed = (MODULUS - sum) % MODULUS;
    let value = (needed * inverse(position)) % MODULUS;
    ALPHABET.get(value as usize).map(|byte| char::from(*byte))
}

/// Σ (position, from 1) × value, mod 31.
fn weighted_sum(code: &str) -> Option<u32> {
    code.chars()
        .enumerate()
        .try_fold(0_u32, |sum, (index, character)| {
            let weight = u32::try_from(index + 1).ok()? % MODULUS;
            Some((sum + weight * value_of(character)?) % MODULUS)
        })
}

fn value_of(character: char) -> Option<u32> {
    let byte = u8::try_from(character).ok()?;
    ALPHABET
        .iter()
        .position(|candidate| *candidate == byte)
        .and_then(|index| u32::try_from(index).ok())
}

/// The inverse of `value` mod 31 (Fermat: value^29), for `value` not a multiple of 31.
fn inverse(value: u32) -> u32 {
    let mut result = 1;
    for _ in 0..(MODULUS - 2) {
        result = (result * value) % MODULUS;
    }
    result
}

#[cfg(test)]
mod tests {

    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn the_alphabet_has_no_look_alikes_and_a_prime_size() {
        for ambiguous in ['0', 'O', '1', 'I', 'L'] {
            assert!(value_of(ambiguous).is_none(), "{ambiguous}");
        }
        assert_eq!(ALPHABET.len(), 31);
        let unique: HashSet<&u8> = ALPHABET.iter().collect();
        assert_eq!(unique.len(), 31);
    }

    #[test]
    fn generated_codes_are_grouped_prefixed_and_valid() {
        let format = CodeFormat::new("summer", 8, 4).unwrap();
        let mut random = StdRng::seed_from_u64(7);
        let code = format.generate(&mut random);
        assert_eq!(code.len(), "SUMMER-XXXX-XXXX-X".len(), "{code}");
        assert!(code.starts_with("SUMMER-"), "{code}");
        let canonical = format.parse(&code).unwrap();
        assert_eq!(canonical, code.replace('-', ""));
        assert_eq!(format.display(&canonical), code);
        // The same seed gives the same codes.
        let again = format.generate(&mut StdRng::seed_from_u64(7));
        assert_eq!(again, code);
    }

    #[test]
    fn codes_without_prefix_or_groups() {
        let format = CodeFormat::new("", 6, 0).unwrap();
        let code = format.generate(&mut StdRng::seed_from_u64(1));
        assert_eq!(code.len(), 7);
        assert!(!code.contains('-'));
        assert!(format.parse(&code).is_ok());
    }

    #[test]
    fn typed_input_is_normalized() {
        let format = CodeFormat::new("", 6, 3).unwrap();
        let code = format.generate(&mut StdRng::seed_from_u64(3));
        let sloppy = format!("  {} ", code.to_lowercase().replace('-', " – "));
        assert_eq!(format.parse(&sloppy).unwrap(), code.replace('-', ""));
        assert_eq!(normalize("۲۳۴-٥ab_c"), "2345ABC");
    }

    #[test]
    fn invalid_codes_say_why() {
        let format = CodeFormat::new("SAVE", 6, 0).unwrap();
        let code = format.generate(&mut StdRng::seed_from_u64(9));
        assert_eq!(format.parse(""), Err(CodeError::Empty));
        assert_eq!(format.parse("SAVE0AB"), Err(CodeError::BadCharacter('0')));
        let other = CodeFormat::new("WEEK", 6, 0).unwrap();
        let other_code = other.generate(&mut StdRng::seed_from_u64(9));
        assert_eq!(
            format.parse(&other_code),
            Err(CodeError::WrongPrefix("SAVE".into()))
        );
        let short = &code[..code.len() - 1];
        assert!(format.parse(short).is_err());
        assert_eq!(
            CodeFormat::new("LOVE", 6, 0),
            Err(CodeError::BadPrefix),
            "L and O are not in the alphabet"
        );
        assert_eq!(CodeFormat::new("", 3, 0), Err(CodeError::BadLength));
        assert_eq!(CodeFormat::new("", 6, 1), Err(CodeError::BadGroup));
        assert_eq!(
            CodeFormat::new("ABCDEFGH", 20, 0),
            Ok(CodeFormat {
                prefix: "ABCDEFGH".into(),
                random_chars: 20,
                group_chars: 0
            })
        );
        assert_eq!(
            CodeFormat::new("ABCDEFGHJ", 20, 0),
            Err(CodeError::PrefixTooLong)
        );
    }

    #[test]
    fn batches_are_distinct_and_refuse_a_crowded_space() {
        let format = CodeFormat::new("", 6, 3).unwrap();
        let codes = generate_batch(&format, 2_000, &mut StdRng::seed_from_u64(11)).unwrap();
        let unique: HashSet<&String> = codes.iter().collect();
        assert_eq!(unique.len(), 2_000);
        let small = CodeFormat::new("", 4, 0).unwrap();
        // 31^4 = 923,521 codes: 1% is 9,235.
        assert!(generate_batch(&small, 9_000, &mut StdRng::seed_from_u64(1)).is_ok());
        assert_eq!(
            generate_batch(&small, 10_000, &mut StdRng::seed_from_u64(1)),
            Err(CodeError::NotEnoughCodes { requested: 10_000 })
        );
    }

    #[test]
    fn a_constant_random_source_cannot_loop_forever() {
        struct Stuck;
        impl rand::RngCore for Stuck {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, destination: &mut [u8]) {
                destination.fill(0);
            }
        }
        let format = CodeFormat::new("", 8, 0).unwrap();
        assert_eq!(
            generate_batch(&format, 10, &mut Stuck),
            Err(CodeError::NotEnoughCodes { requested: 10 })
        );
    }

    fn payload_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec(0_usize..31, 1..CODE_CHARS_MAX).prop_map(|values| {
            values
                .into_iter()
                .map(|v| char::from(ALPHABET[v]))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_single_substitution_is_caught(payload in payload_strategy(), position in 0_usize..64, replacement in 0_usize..31) {
            let code = format!("{payload}{}", check_character(&payload).unwrap());
            prop_assert!(validate(&code).is_ok());
            let mut characters: Vec<char> = code.chars().collect();
            let position = position % characters.len();
            let replacement = char::from(ALPHABET[replacement]);
            prop_assume!(characters[position] != replacement);
            characters[position] = replacement;
            let typo: String = characters.into_iter().collect();
            prop_assert_eq!(validate(&typo), Err(CodeError::BadCheck));
        }

        #[test]
        fn every_transposition_is_caught(payload in payload_strategy(), first in 0_usize..64, distance in 1_usize..4) {
            let code = format!("{payload}{}", check_character(&payload).unwrap());
            let mut characters: Vec<char> = code.chars().collect();
            let first = first % characters.len();
            let second = first + distance;
            prop_assume!(second < characters.len());
            prop_assume!(characters[first] != characters[second]);
            characters.swap(first, second);
            let typo: String = characters.into_iter().collect();
            prop_assert_eq!(validate(&typo), Err(CodeError::BadCheck));
        }
    }

    #[test]
    fn every_adjacent_transposition_of_every_pair_is_caught_exhaustively() {
        // All 31 × 30 ordered pairs at every position of a 12-character code.
        let base: Vec<char> = "23456789ABCD".chars().collect();
        for position in 0..base.len() {
            for a in ALPHABET {
                for b in ALPHABET {
                    if a == b {
                        continue;
                    }
                    let mut payload = base.clone();
                    payload[position] = char::from(*a);
                    if position + 1 < payload.len() {
                        payload[position + 1] = char::from(*b);
                    } else {
                        continue;
                    }
                    let payload: String = payload.into_iter().collect();
                    let code = format!("{payload}{}", check_character(&payload).unwrap());
                    let mut swapped: Vec<char> = code.chars().collect();
                    swapped.swap(position, position + 1);
                    let swapped: String = swapped.into_iter().collect();
                    assert_eq!(validate(&swapped), Err(CodeError::BadCheck), "{code}");
                }
            }
        }
    }
}
