//! Numbers as people type them: ASCII, Persian (۰-۹) or Arabic-Indic (٠-٩) digits, all the
//! same number. Iranian keyboards type Persian digits and text copied from Arabic carries
//! Arabic-Indic ones; a till that sends «۲» means 2.
//!
//! Only one spelling of a decimal is read: an optional `-`, digits, and optionally a decimal
//! point (`.`, or the Arabic decimal separator `٫` that Persian keyboards type) followed by
//! digits. Everything a general-purpose parser would also accept is refused with a message
//! that says what to write instead, because each of them has surprised someone: `1e3` is a
//! thousand to `Decimal`'s parser, `1,000` is one to a European, `+1`, ` 1`, `1_000`, `NaN`,
//! `Infinity` and `0x10` are not what a till means by a quantity.

use rust_decimal::Decimal;

/// The longest number accepted, in characters: more than any quantity needs, short enough
/// that nothing is spent reading a megabyte of digits.
pub const NUMBER_CHARS_MAX: usize = 40;

/// Why a number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("must be a decimal number, like 2 or 0.75; this one is empty")]
    Empty,
    #[error("must be at most {NUMBER_CHARS_MAX} characters long")]
    TooLong,
    #[error("must be written out in full, like 1000: exponents such as 1e3 are not accepted")]
    Exponent,
    #[error("must not carry a + sign: write 1, not +1")]
    PlusSign,
    #[error("must not contain spaces")]
    Space,
    #[error(
        "must not group its digits (1_000, 1,000): write 1000, and a point for decimals, like 1.5"
    )]
    Grouping,
    #[error("must have digits on both sides of its decimal point, like 0.5 or 2.0")]
    BarePoint,
    #[error("must be a decimal number written with digits, like 2 or 0.75")]
    NotADecimal,
    #[error("has more digits than can be counted exactly (at most 28)")]
    TooPrecise,
}

/// The ASCII digit for an ASCII, Persian or Arabic-Indic digit; `None` for anything else
/// (other scripts' digits included: nobody has asked for them, and each is one more way to
/// spell a number the people reading logs cannot read).
pub fn ascii_digit(c: char) -> Option<char> {
    let value = match c {
        '0'..='9' => u32::from(c) - u32::from('0'),
        '\u{06F0}'..='\u{06F9}' => u32::from(c) - 0x06F0,
        '\u{0660}'..='\u{0669}' => u32::from(c) - 0x0660,
        _ => return None,
    };
    char::from_digit(value, 10)
}

/// `input` with every Persian and Arabic-Indic digit written as its ASCII digit.
pub fn fold_digits(input: &str) -> String {
    input.chars().map(|c| ascii_digit(c).unwrap_or(c)).collect()
}

fn is_decimal_point(c: char) -> bool {
    matches!(c, '.' | '\u{066B}')
}

/// Reads a decimal number written as the module describes; see [`NumberError`] for what is
/// refused. The value is exact (at most 28 digits) and keeps its scale (`"2.50"` is 2.50).
pub fn parse_decimal(input: &str) -> Result<Decimal, NumberError> {
    if input.is_empty() {
        return Err(NumberError::Empty);
    }
    if input.chars().count() > NUMBER_CHARS_MAX {
        return Err(NumberError::TooLong);
    }
    let folded = fold_digits(input);
    let ascii = match plain_decimal(&folded) {
        Some(ascii) => ascii,
        None => return Err(why_not(&folded)),
    };
    Decimal::from_str_exact(&ascii).map_err(|_| NumberError::TooPrecise)
}

/// `-?D+(P D+)?` with D an ASCII digit and P a decimal point, as ASCII; `None` otherwise.
fn plain_decimal(folded: &str) -> Option<String> {
    let unsigned = folded.strip_prefix('-').unwrap_or(folded);
    let (whole, fraction) = match unsigned.split_once(is_decimal_point) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return None;
    }
    let sign = if unsigned.len() == folded.len() {
        ""
    } else {
        "-"
    };
    Some(match fraction {
        Some(fraction) => format!("{sign}{whole}.{fraction}"),
        None => format!("{sign}{whole}"),
    })
}

/// Why `folded` (digits already ASCII) is not a plain decimal: the most specific reason.
fn why_not(folded: &str) -> NumberError {
    let numeric = |part: &str| {
        part.chars().any(|c| c.is_ascii_digit())
            && part
                .chars()
                .all(|c| c.is_ascii_digit() || is_decimal_point(c) || c == '-')
    };
    if let Some((mantissa, exponent)) = folded.split_once(['e', 'E']) {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if numeric(mantissa) && !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit())
        {
            return NumberError::Exponent;
        }
    }
    if folded.chars().any(char::is_whitespace) {
        return NumberError::Space;
    }
    if folded.starts_with('+') {
        return NumberError::PlusSign;
    }
    if folded.contains(['_', ',', '\u{066C}', '\'']) {
        return NumberError::Grouping;
    }
    let unsigned = folded.strip_prefix('-').unwrap_or(folded);
    if numeric(unsigned)
        && (unsigned.starts_with(is_decimal_point) || unsigned.ends_with(is_decimal_point))
    {
        return NumberError::BarePoint;
    }
    NumberError::NotADecimal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decimal(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn digits_of_the_three_scripts_are_the_same_number() {
        for (input, value) in [
            ("2", "2"),
            ("۲", "2"),
            ("٢", "2"),
            ("۱۲۳۴۵۶۷۸۹۰", "1234567890"),
            ("١٢٣٤٥٦٧٨٩٠", "1234567890"),
            ("0.75", "0.75"),
            ("۰٫۷۵", "0.75"),
            ("۱.۵", "1.5"),
            ("1۲3", "123"),
            ("-3", "-3"),
            ("2.50", "2.50"),
            ("007", "7"),
        ] {
            assert_eq!(parse_decimal(input), Ok(decimal(value)), "{input}");
        }
        assert_eq!(parse_decimal("2.50").unwrap().scale(), 2);
    }

    #[test]
    fn exponents_are_refused_in_every_script() {
        for input in ["1e3", "1E3", "2e-1", "1.5e+2", "۱e۳", "١E٣", ".5e1"] {
            assert_eq!(parse_decimal(input), Err(NumberError::Exponent), "{input}");
        }
        assert!(
            NumberError::Exponent.to_string().contains("exponent"),
            "the message names what to avoid"
        );
    }

    #[test]
    fn odd_spellings_are_refused_with_what_to_write_instead() {
        for (input, error) in [
            ("", NumberError::Empty),
            ("+1", NumberError::PlusSign),
            (" 1", NumberError::Space),
            ("1 ", NumberError::Space),
            ("1 000", NumberError::Space),
            ("1\u{00A0}000", NumberError::Space),
            ("1_000", NumberError::Grouping),
            ("1,000", NumberError::Grouping),
            ("1,5", NumberError::Grouping),
            ("۱٬۰۰۰", NumberError::Grouping),
            ("1.", NumberError::BarePoint),
            (".5", NumberError::BarePoint),
            ("NaN", NumberError::NotADecimal),
            ("nan", NumberError::NotADecimal),
            ("Infinity", NumberError::NotADecimal),
            ("inf", NumberError::NotADecimal),
            ("0x10", NumberError::NotADecimal),
            ("1.2.3", NumberError::NotADecimal),
            ("--1", NumberError::NotADecimal),
            ("-", NumberError::NotADecimal),
            ("1-", NumberError::NotADecimal),
            ("e3", NumberError::NotADecimal),
            ("1e", NumberError::NotADecimal),
            ("७", NumberError::NotADecimal),
            ("1\u{200B}", NumberError::NotADecimal),
            ("٣\u{200F}", NumberError::NotADecimal),
        ] {
            assert_eq!(parse_decimal(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn numbers_are_bounded_in_length_and_precision() {
        assert_eq!(
            parse_decimal(&"1".repeat(NUMBER_CHARS_MAX + 1)),
            Err(NumberError::TooLong)
        );
        assert_eq!(parse_decimal(&"9".repeat(30)), Err(NumberError::TooPrecise));
        assert_eq!(
            parse_decimal(&format!("0.{}1", "0".repeat(30))),
            Err(NumberError::TooPrecise)
        );
        assert!(parse_decimal(&"9".repeat(28)).is_ok());
    }

    #[test]
    fn only_the_three_digit_scripts_are_folded() {
        assert_eq!(ascii_digit('7'), Some('7'));
        assert_eq!(ascii_digit('۷'), Some('7'));
        assert_eq!(ascii_digit('٧'), Some('7'));
        assert_eq!(ascii_digit('७'), None);
        assert_eq!(ascii_digit('a'), None);
        assert_eq!(fold_digits("+۹۸ ٩١٢-x"), "+98 912-x");
    }

    /// A digit of any of the three scripts.
    fn any_script(digit: u32) -> impl Strategy<Value = char> {
        prop::sample::select(vec![
            char::from_digit(digit, 10).unwrap(),
            char::from_u32(0x06F0 + digit).unwrap(),
            char::from_u32(0x0660 + digit).unwrap(),
        ])
    }

    fn digits_in_any_script(digits: String) -> impl Strategy<Value = String> {
        let chars: Vec<_> = digits
            .chars()
            .map(|c| any_script(c.to_digit(10).unwrap()))
            .collect();
        chars.prop_map(String::from_iter)
    }

    proptest! {
        #[test]
        fn a_decimal_reads_the_same_in_every_script(
            (ascii, spelled) in "[0-9]{1,12}(\\.[0-9]{1,8})?".prop_flat_map(|ascii| {
                let (whole, fraction) = match ascii.split_once('.') {
                    Some((w, f)) => (w.to_owned(), Some(f.to_owned())),
                    None => (ascii.clone(), None),
                };
                let whole = digits_in_any_script(whole);
                let fraction = match fraction {
                    Some(f) => digits_in_any_script(f).prop_map(Some).boxed(),
                    None => Just(None).boxed(),
                };
                let point = prop::sample::select(vec!['.', '\u{066B}']);
                (Just(ascii), (whole, point, fraction).prop_map(|(w, p, f)| match f {
                    Some(f) => format!("{w}{p}{f}"),
                    None => w,
                }))
            }),
        ) {
            prop_assert_eq!(parse_decimal(&spelled), Ok(decimal(&ascii)));
        }

        #[test]
        fn whatever_is_accepted_is_a_plain_decimal(input in "\\PC{0,12}") {
            if let Ok(value) = parse_decimal(&input) {
                let folded = fold_digits(&input).replace('\u{066B}', ".");
                prop_assert!(!folded.contains(['e', 'E', '+', '_', ',', ' ']));
                prop_assert_eq!(decimal(&folded), value);
            }
        }

        #[test]
        fn an_exponent_is_never_read_as_a_number(
            mantissa in "[0-9]{1,5}(\\.[0-9]{1,3})?",
            e in prop::sample::select(vec!["e", "E"]),
            sign in prop::sample::select(vec!["", "+", "-"]),
            exponent in "[0-9]{1,3}",
        ) {
            let input = format!("{mantissa}{e}{sign}{exponent}");
            prop_assert_eq!(parse_decimal(&input), Err(NumberError::Exponent));
        }
    }
}
