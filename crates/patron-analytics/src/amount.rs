//! Decimal amounts parsed straight into integer minor units, exactly: `29.33` with two
//! decimals is 2933 cents, never a float on the way.

use std::fmt;

/// The most decimals an amount may have: 10^18 still fits an `i64`.
pub const DECIMALS_MAX: u32 = 18;

/// Why an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    /// Not `[-+]DIGITS[.DIGITS]`.
    Format,
    /// More significant decimals than the currency has (`1.005` with two decimals).
    TooPrecise {
        /// The decimals the currency has.
        decimals: u32,
    },
    /// Does not fit a 64-bit count of minor units.
    TooLarge,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Format => f.write_str("expected an amount such as 12.50 or -3"),
            AmountError::TooPrecise { decimals } => {
                write!(
                    f,
                    "more than {decimals} decimals: the amount is not a whole number of minor units"
                )
            }
            AmountError::TooLarge => f.write_str("amount too large"),
        }
    }
}

impl std::error::Error for AmountError {}

/// Parses `[-+]DIGITS[.DIGITS]` as minor units with `decimals` decimals (2 for cents, 0 for
/// rials). Trailing zeros beyond `decimals` are accepted (`12.500`); other extra digits are
/// refused rather than rounded.
pub fn parse_minor(text: &[u8], decimals: u32) -> Result<i64, AmountError> {
    let decimals = decimals.min(DECIMALS_MAX);
    let (negative, rest) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    let (whole, fraction) = match rest.iter().position(|&c| c == b'.') {
        Some(dot) => (&rest[..dot], &rest[dot + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(AmountError::Format);
    }
    let mut value: i64 = 0;
    let push = |value: i64, c: u8| -> Result<i64, AmountError> {
        if !c.is_ascii_digit() {
            return Err(AmountError::Format);
        }
        value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(c - b'0')))
            .ok_or(AmountError::TooLarge)
    };
    for &c in whole {
        value = push(value, c)?;
    }
    let mut used = 0u32;
    for &c in fraction {
        if used < decimals {
            value = push(value, c)?;
            used += 1;
        } else if c != b'0' {
            return Err(if c.is_ascii_digit() {
                AmountError::TooPrecise { decimals }
            } else {
                AmountError::Format
            });
        }
    }
    for _ in used..decimals {
        value = value.checked_mul(10).ok_or(AmountError::TooLarge)?;
    }
    Ok(if negative { -value } else { value })
}

/// Formats minor units as a decimal with `decimals` decimals (`-1234`, 2 → `-12.34`).
pub fn format_minor(value: i128, decimals: u32) -> String {
    if decimals == 0 {
        return value.to_string();
    }
    let scale = 10i128.pow(decimals.min(DECIMALS_MAX));
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_exact_minor_units() {
        assert_eq!(parse_minor(b"29.33", 2), Ok(2933));
        assert_eq!(parse_minor(b"29.3", 2), Ok(2930));
        assert_eq!(parse_minor(b"29", 2), Ok(2900));
        assert_eq!(parse_minor(b"-0.05", 2), Ok(-5));
        assert_eq!(parse_minor(b".5", 2), Ok(50));
        assert_eq!(parse_minor(b"12.500", 2), Ok(1250));
        assert_eq!(parse_minor(b"150000", 0), Ok(150_000));
        assert_eq!(
            parse_minor(b"1.005", 2),
            Err(AmountError::TooPrecise { decimals: 2 })
        );
        assert_eq!(parse_minor(b"1,5", 2), Err(AmountError::Format));
        assert_eq!(parse_minor(b"", 2), Err(AmountError::Format));
        assert_eq!(parse_minor(b"-", 2), Err(AmountError::Format));
        assert_eq!(parse_minor(b".", 2), Err(AmountError::Format));
        assert_eq!(
            parse_minor(b"99999999999999999999", 2),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn formatting_is_the_inverse() {
        assert_eq!(format_minor(2933, 2), "29.33");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(150_000, 0), "150000");
        assert_eq!(format_minor(0, 3), "0.000");
    }
}
