//! Membership card numbers: a digit prefix, a zero-padded serial and a Luhn check digit.
//!
//! The Luhn digit is what payment cards use. It catches every single mistyped digit and most
//! swaps of neighbouring digits, so a cashier's typo is rejected at the till instead of crediting
//! some other member's card.

use crate::text::number::ascii_digit;

/// The shortest card number accepted (ISO/IEC 7812 allows 8 to 19 digits).
pub const CARD_NUMBER_LENGTH_MIN: usize = 8;
/// The longest card number accepted.
pub const CARD_NUMBER_LENGTH_MAX: usize = 19;
/// The length used when a program does not choose one, as on most payment cards.
pub const CARD_NUMBER_LENGTH_DEFAULT: usize = 16;

/// The Luhn check digit to append to `digits`. `None` if `digits` is empty or contains anything
/// but ASCII digits.
pub fn luhn_check_digit(digits: &str) -> Option<u8> {
    if digits.is_empty() {
        return None;
    }
    let mut sum: u8 = 0;
    // The check digit will sit to the right, so the payload's rightmost digit is doubled.
    for (position, byte) in digits.bytes().rev().enumerate() {
        if !byte.is_ascii_digit() {
            return None;
        }
        let mut digit = byte - b'0';
        if position % 2 == 0 {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        // Kept modulo 10 so any length of input fits in a u8.
        sum = (sum + digit) % 10;
    }
    Some((10 - sum) % 10)
}

/// Whether `number` is a well-formed card number: only ASCII digits, 8 to 19 of them, and a
/// correct Luhn check digit. Does not strip separators: pass it through
/// [`normalize_card_number`] first.
pub fn is_valid_card_number(number: &str) -> bool {
    if !(CARD_NUMBER_LENGTH_MIN..=CARD_NUMBER_LENGTH_MAX).contains(&number.len()) {
        return false;
    }
    match number.as_bytes().split_last() {
        Some((check, payload)) if check.is_ascii_digit() => {
            // `payload` is a prefix of a str cut before an ASCII byte, hence valid UTF-8.
            let payload = std::str::from_utf8(payload).unwrap_or("");
            luhn_check_digit(payload) == Some(check - b'0')
        }
        _ => false,
    }
}

/// A card number: `prefix`, then `serial` zero-padded to fill the space, then the Luhn digit.
/// `length` is the total length including the check digit ([`CARD_NUMBER_LENGTH_DEFAULT`] is the
/// usual choice).
///
/// `None` when `prefix` has anything but ASCII digits, when `length` is outside 8 to 19 (the
/// result would not pass [`is_valid_card_number`]), or when the serial does not fit in the
/// `length - 1 - prefix.len()` digits left for it (at least one is needed).
pub fn card_number(prefix: &str, serial: u64, length: usize) -> Option<String> {
    if !(CARD_NUMBER_LENGTH_MIN..=CARD_NUMBER_LENGTH_MAX).contains(&length) {
        return None;
    }
    if !prefix.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let serial_width = length.checked_sub(1)?.checked_sub(prefix.len())?;
    let serial_digits = serial.to_string();
    if serial_digits.len() > serial_width {
        return None;
    }
    let payload = format!("{prefix}{serial_digits:0>serial_width$}");
    let check = luhn_check_digit(&payload)?;
    Some(format!("{payload}{check}"))
}

/// A card number as typed or scanned, reduced to its digits: drops spaces (any whitespace) and
/// dashes, and turns Persian and Arabic-Indic digits into ASCII ones. Anything else is kept, so
/// [`is_valid_card_number`] still rejects it.
pub fn normalize_card_number(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| ascii_digit(c).unwrap_or(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_luhn_vectors() {
        assert_eq!(luhn_check_digit("7992739871"), Some(3));
        assert!(is_valid_card_number("79927398713"));
        assert!(!is_valid_card_number("79927398710"));
        // Well-known test card numbers.
        assert!(is_valid_card_number("4111111111111111"));
        assert!(is_valid_card_number("5555555555554444"));
        assert!(is_valid_card_number("378282246310005"));
        assert!(!is_valid_card_number("4111111111111112"));
        assert_eq!(luhn_check_digit("0"), Some(0));
    }

    #[test]
    fn check_digit_needs_digits() {
        assert_eq!(luhn_check_digit(""), None);
        assert_eq!(luhn_check_digit("12a4"), None);
        assert_eq!(luhn_check_digit("12 4"), None);
    }

    #[test]
    fn card_numbers_are_8_to_19_digits() {
        assert!(!is_valid_card_number("0"));
        assert!(!is_valid_card_number("1234566"));
        assert!(is_valid_card_number("12345674"));
        assert!(!is_valid_card_number(&format!("{}0", "0".repeat(19))));
        assert!(is_valid_card_number(&"0".repeat(19)));
        assert!(!is_valid_card_number(""));
    }

    #[test]
    fn card_numbers_must_be_ascii_digits() {
        assert!(!is_valid_card_number("4111 1111 1111 1111"));
        assert!(!is_valid_card_number("4111-1111-1111-1111"));
        assert!(!is_valid_card_number("411111111111111x"));
        assert!(!is_valid_card_number("۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱"));
    }

    #[test]
    fn card_number_pads_the_serial_and_appends_the_check_digit() {
        let number = card_number("6037", 42, CARD_NUMBER_LENGTH_DEFAULT).unwrap();
        assert_eq!(number.len(), 16);
        assert!(number.starts_with("603700000000042"));
        assert!(is_valid_card_number(&number));
        assert_eq!(card_number("", 7992739871, 11).unwrap(), "79927398713");
    }

    #[test]
    fn card_number_refuses_what_does_not_fit() {
        assert_eq!(card_number("6037", 1_000_000_000_000, 16), None);
        assert!(card_number("6037", 99_999_999_999, 16).is_some());
        assert_eq!(card_number("1234567", 1, 8), None);
        assert_eq!(card_number("123456789", 1, 8), None);
        assert_eq!(card_number("60a7", 1, 16), None);
        assert_eq!(card_number("6037", 1, 7), None);
        assert_eq!(card_number("6037", 1, 20), None);
        assert!(card_number("123456", 1, 8).is_some());
    }

    #[test]
    fn normalizing_strips_separators_and_folds_digits() {
        assert_eq!(
            normalize_card_number(" 4111-1111 1111\t1111 "),
            "4111111111111111"
        );
        assert_eq!(normalize_card_number("۴۱۱۱-١١١١"), "41111111");
        assert_eq!(normalize_card_number("41x1"), "41x1");
    }

    proptest! {
        #[test]
        fn every_generated_number_validates(
            prefix in "[0-9]{0,6}",
            serial in any::<u64>(),
            length in CARD_NUMBER_LENGTH_MIN..=CARD_NUMBER_LENGTH_MAX,
        ) {
            if let Some(number) = card_number(&prefix, serial, length) {
                prop_assert_eq!(number.len(), length);
                prop_assert!(number.starts_with(&prefix));
                prop_assert!(is_valid_card_number(&number));
            } else {
                prop_assert!(serial.to_string().len() + prefix.len() + 1 > length);
            }
        }

        #[test]
        fn any_single_digit_change_is_detected(
            prefix in "[0-9]{0,6}",
            serial in any::<u64>(),
            length in CARD_NUMBER_LENGTH_MIN..=CARD_NUMBER_LENGTH_MAX,
            position in any::<prop::sample::Index>(),
            shift in 1u8..10,
        ) {
            if let Some(number) = card_number(&prefix, serial, length) {
                let mut bytes = number.into_bytes();
                let index = position.index(bytes.len());
                bytes[index] = b'0' + (bytes[index] - b'0' + shift) % 10;
                let changed = String::from_utf8(bytes).unwrap();
                prop_assert!(!is_valid_card_number(&changed), "{} passed", changed);
            }
        }
    }
}
