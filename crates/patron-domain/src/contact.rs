//! Validation and normalisation of member contact data: phone, email, external id, birthday,
//! custom attribute keys.
//!
//! Each check returns the canonical form it will be stored in (so two spellings of one phone
//! number are one member) or a [`ContactError`] whose message tells the person typing what to
//! fix. Messages never repeat the input: they end up in logs, and contact data is personal data.

use jiff::civil::Date;

/// Why a piece of contact data was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("phone number is empty")]
    PhoneEmpty,
    #[error("phone number must be in international format, like +989121234567")]
    PhoneNotInternational,
    #[error(
        "phone number may only contain digits, a leading +, spaces, dashes, dots and parentheses, \
         like +98 912 123 4567"
    )]
    PhoneInvalidCharacter,
    #[error("a country code never starts with 0; write the number like +989121234567")]
    PhoneCountryCodeZero,
    #[error("phone number must have 8 to 15 digits after the +, this one has {digits}")]
    PhoneLength { digits: usize },
    #[error("email address is empty")]
    EmailEmpty,
    #[error("email address must not contain spaces")]
    EmailWhitespace,
    #[error("email address must not contain control characters")]
    EmailControlCharacter,
    #[error("email address must contain exactly one @, like name@example.com")]
    EmailAt,
    #[error("the part of an email address before the @ must be 1 to 64 characters long")]
    EmailLocalPartLength,
    #[error("email address must end in a domain with a dot, like name@example.com")]
    EmailDomain,
    #[error("email address must be at most 254 characters long")]
    EmailTooLong,
    #[error("external id must be 1 to 128 characters long, this one has {length}")]
    ExternalIdLength { length: usize },
    #[error("external id must not contain control characters")]
    ExternalIdControlCharacter,
    #[error("birthday must be written as YYYY-MM-DD, like 1990-04-25")]
    BirthdayFormat,
    #[error("birthday is not a real calendar date")]
    BirthdayNotADate,
    #[error("birthday must be in 1900 or later")]
    BirthdayBefore1900,
    #[error("birthday cannot be in the future")]
    BirthdayInFuture,
    #[error(
        "attribute key must start with a lowercase letter, contain only a-z, 0-9 and _, and be at \
         most 64 characters long, like favourite_store"
    )]
    AttributeKey,
}

impl ContactError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ContactError::PhoneEmpty => "phone_empty",
            ContactError::PhoneNotInternational => "phone_not_international",
            ContactError::PhoneInvalidCharacter => "phone_invalid_character",
            ContactError::PhoneCountryCodeZero => "phone_country_code_zero",
            ContactError::PhoneLength { .. } => "phone_length",
            ContactError::EmailEmpty => "email_empty",
            ContactError::EmailWhitespace => "email_whitespace",
            ContactError::EmailControlCharacter => "email_control_character",
            ContactError::EmailAt => "email_at",
            ContactError::EmailLocalPartLength => "email_local_part_length",
            ContactError::EmailDomain => "email_domain",
            ContactError::EmailTooLong => "email_too_long",
            ContactError::ExternalIdLength { .. } => "external_id_length",
            ContactError::ExternalIdControlCharacter => "external_id_control_character",
            ContactError::BirthdayFormat => "birthday_format",
            ContactError::BirthdayNotADate => "birthday_not_a_date",
            ContactError::BirthdayBefore1900 => "birthday_before_1900",
            ContactError::BirthdayInFuture => "birthday_in_future",
            ContactError::AttributeKey => "attribute_key",
        }
    }
}

/// The ASCII digit for an ASCII, Persian (۰-۹) or Arabic-Indic (٠-٩) digit. Iranian keyboards
/// type Persian digits, and copying from Arabic text gives Arabic-Indic ones; to the member they
/// are the same number.
pub(crate) fn ascii_digit(c: char) -> Option<char> {
    let value = match c {
        '0'..='9' => u32::from(c) - u32::from('0'),
        '\u{06F0}'..='\u{06F9}' => u32::from(c) - 0x06F0,
        '\u{0660}'..='\u{0669}' => u32::from(c) - 0x0660,
        _ => return None,
    };
    char::from_digit(value, 10)
}

/// Invisible direction marks that come along when a number is copied out of right-to-left text.
fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Normalises a phone number to E.164: `+`, then 8 to 15 digits, the first of them 1-9.
///
/// Tolerates spaces, dashes, dots and parentheses anywhere, a leading `00` instead of `+`,
/// Persian and Arabic-Indic digits, and the invisible direction marks of right-to-left text.
/// National formats (`09121234567`) are rejected rather than guessed: which country they belong
/// to is not the domain's to assume.
pub fn normalize_phone_e164(input: &str) -> Result<String, ContactError> {
    let mut digits = String::with_capacity(16);
    let mut has_plus = false;
    for c in input.chars() {
        if matches!(c, '-' | '.' | '(' | ')') || c.is_whitespace() || is_direction_mark(c) {
            continue;
        }
        if c == '+' {
            // Only one +, and only before the first digit.
            if has_plus || !digits.is_empty() {
                return Err(ContactError::PhoneInvalidCharacter);
            }
            has_plus = true;
            continue;
        }
        match ascii_digit(c) {
            Some(digit) => digits.push(digit),
            None => return Err(ContactError::PhoneInvalidCharacter),
        }
    }
    if !has_plus {
        if digits.is_empty() {
            return Err(ContactError::PhoneEmpty);
        }
        match digits.strip_prefix("00") {
            Some(rest) => digits = rest.to_owned(),
            None => return Err(ContactError::PhoneNotInternational),
        }
    }
    if digits.starts_with('0') {
        return Err(ContactError::PhoneCountryCodeZero);
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(ContactError::PhoneLength {
            digits: digits.len(),
        });
    }
    Ok(format!("+{digits}"))
}

/// Normalises an email address: trims it, checks its shape and lowercases the domain.
///
/// Deliberately pragmatic, not RFC 5322: exactly one `@`, a local part of 1 to 64 bytes, a
/// domain of at least two non-empty dot-separated labels, no whitespace or control characters,
/// at most 254 bytes in all (the limits of RFC 5321). Quoted local parts and IP-literal domains
/// are rejected; whether the address receives mail only a confirmation message can tell. The
/// local part keeps its case because the receiving server may treat it as case-sensitive.
pub fn normalize_email(input: &str) -> Result<String, ContactError> {
    let email = input.trim();
    if email.is_empty() {
        return Err(ContactError::EmailEmpty);
    }
    if email.chars().any(char::is_whitespace) {
        return Err(ContactError::EmailWhitespace);
    }
    if email.chars().any(char::is_control) {
        return Err(ContactError::EmailControlCharacter);
    }
    if email.len() > 254 {
        return Err(ContactError::EmailTooLong);
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(ContactError::EmailAt);
    };
    if domain.contains('@') {
        return Err(ContactError::EmailAt);
    }
    if local.is_empty() || local.len() > 64 {
        return Err(ContactError::EmailLocalPartLength);
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(ContactError::EmailDomain);
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// Checks an external id (the operator's own identifier for a member): 1 to 128 characters,
/// no control characters. Otherwise taken as is, since it must match the operator's systems.
pub fn validate_external_id(s: &str) -> Result<(), ContactError> {
    let length = s.chars().count();
    if !(1..=128).contains(&length) {
        return Err(ContactError::ExternalIdLength { length });
    }
    if s.chars().any(char::is_control) {
        return Err(ContactError::ExternalIdControlCharacter);
    }
    Ok(())
}

/// Parses a birthday written `YYYY-MM-DD` (surrounding whitespace ignored). It must be a real
/// date, in 1900 or later, and not after `today` (passed in: the domain reads no clock).
pub fn parse_birthday(s: &str, today: Date) -> Result<Date, ContactError> {
    let text = s.trim().as_bytes();
    let shape_ok = text.len() == 10
        && text.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(ContactError::BirthdayFormat);
    }
    let number = |range: std::ops::Range<usize>| -> i16 {
        text[range]
            .iter()
            .fold(0, |value, byte| value * 10 + i16::from(byte - b'0'))
    };
    let year = number(0..4);
    if year < 1900 {
        return Err(ContactError::BirthdayBefore1900);
    }
    // Month and day are at most 99, which fits an i8.
    let month = i8::try_from(number(5..7)).map_err(|_| ContactError::BirthdayNotADate)?;
    let day = i8::try_from(number(8..10)).map_err(|_| ContactError::BirthdayNotADate)?;
    let birthday = Date::new(year, month, day).map_err(|_| ContactError::BirthdayNotADate)?;
    if birthday > today {
        return Err(ContactError::BirthdayInFuture);
    }
    Ok(birthday)
}

/// Checks a custom attribute key: `[a-z][a-z0-9_]{0,63}`. Keys end up in rule expressions and
/// segment queries, so they are kept to identifiers that need no quoting anywhere.
pub fn validate_custom_attribute_key(k: &str) -> Result<(), ContactError> {
    let mut bytes = k.bytes();
    let starts_with_letter = bytes.next().is_some_and(|byte| byte.is_ascii_lowercase());
    let rest_ok =
        bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if starts_with_letter && rest_ok && k.len() <= 64 {
        Ok(())
    } else {
        Err(ContactError::AttributeKey)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn phone_in_international_format_is_accepted() {
        assert_eq!(
            normalize_phone_e164("+989121234567").unwrap(),
            "+989121234567"
        );
        assert_eq!(
            normalize_phone_e164("+1 (415) 555-2671").unwrap(),
            "+14155552671"
        );
        assert_eq!(
            normalize_phone_e164("+44.20.7946.0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize_phone_e164("  +49 30 901820  ").unwrap(),
            "+4930901820"
        );
    }

    #[test]
    fn phone_with_00_instead_of_plus_is_accepted() {
        assert_eq!(
            normalize_phone_e164("0098 912 123 4567").unwrap(),
            "+989121234567"
        );
    }

    #[test]
    fn phone_in_persian_or_arabic_digits_is_accepted() {
        assert_eq!(
            normalize_phone_e164("+۹۸۹۱۲۱۲۳۴۵۶۷").unwrap(),
            "+989121234567"
        );
        assert_eq!(
            normalize_phone_e164("۰۰۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷").unwrap(),
            "+989121234567"
        );
        assert_eq!(
            normalize_phone_e164("+٩٧١٥٠١٢٣٤٥٦٧").unwrap(),
            "+971501234567"
        );
        assert_eq!(
            normalize_phone_e164("\u{200E}+98 912 123 4567\u{200F}").unwrap(),
            "+989121234567"
        );
    }

    #[test]
    fn phone_lengths_are_8_to_15_digits() {
        assert_eq!(normalize_phone_e164("+12345678").unwrap(), "+12345678");
        assert_eq!(
            normalize_phone_e164("+123456789012345").unwrap(),
            "+123456789012345"
        );
        assert_eq!(
            normalize_phone_e164("+1234567"),
            Err(ContactError::PhoneLength { digits: 7 })
        );
        assert_eq!(
            normalize_phone_e164("+1234567890123456"),
            Err(ContactError::PhoneLength { digits: 16 })
        );
        assert_eq!(
            normalize_phone_e164("+"),
            Err(ContactError::PhoneLength { digits: 0 })
        );
    }

    #[test]
    fn national_phone_format_is_rejected() {
        let error = normalize_phone_e164("09121234567").unwrap_err();
        assert_eq!(error, ContactError::PhoneNotInternational);
        assert_eq!(
            error.to_string(),
            "phone number must be in international format, like +989121234567"
        );
        assert_eq!(
            normalize_phone_e164("9121234567"),
            Err(ContactError::PhoneNotInternational)
        );
    }

    #[test]
    fn phone_country_code_cannot_start_with_zero() {
        assert_eq!(
            normalize_phone_e164("+09121234567"),
            Err(ContactError::PhoneCountryCodeZero)
        );
        assert_eq!(
            normalize_phone_e164("000989121234567"),
            Err(ContactError::PhoneCountryCodeZero)
        );
    }

    #[test]
    fn phone_with_letters_or_misplaced_plus_is_rejected() {
        for input in [
            "+98912ABC4567",
            "+98 912 123 4567 ext 2",
            "98+9121234567",
            "++989121234567",
            "+98/912/1234567",
        ] {
            assert_eq!(
                normalize_phone_e164(input),
                Err(ContactError::PhoneInvalidCharacter),
                "{input}"
            );
        }
    }

    #[test]
    fn empty_phone_is_rejected() {
        assert_eq!(normalize_phone_e164(""), Err(ContactError::PhoneEmpty));
        assert_eq!(
            normalize_phone_e164(" - ( ) "),
            Err(ContactError::PhoneEmpty)
        );
    }

    #[test]
    fn email_is_trimmed_and_its_domain_lowercased() {
        assert_eq!(
            normalize_email("  Sara.K@Example.COM ").unwrap(),
            "Sara.K@example.com"
        );
        assert_eq!(
            normalize_email("a+tag@mail.example.ir").unwrap(),
            "a+tag@mail.example.ir"
        );
    }

    #[test]
    fn email_needs_exactly_one_at() {
        assert_eq!(
            normalize_email("sara.example.com"),
            Err(ContactError::EmailAt)
        );
        assert_eq!(
            normalize_email("sara@@example.com"),
            Err(ContactError::EmailAt)
        );
        assert_eq!(
            normalize_email("sa@ra@example.com"),
            Err(ContactError::EmailAt)
        );
    }

    #[test]
    fn email_local_part_is_1_to_64_bytes() {
        assert_eq!(
            normalize_email("@example.com"),
            Err(ContactError::EmailLocalPartLength)
        );
        let longest = format!("{}@example.com", "a".repeat(64));
        assert_eq!(normalize_email(&longest).unwrap(), longest);
        assert_eq!(
            normalize_email(&format!("{}@example.com", "a".repeat(65))),
            Err(ContactError::EmailLocalPartLength)
        );
    }

    #[test]
    fn email_domain_needs_a_dot_between_non_empty_labels() {
        for input in [
            "sara@localhost",
            "sara@",
            "sara@.com",
            "sara@example.",
            "sara@example..com",
        ] {
            assert_eq!(
                normalize_email(input),
                Err(ContactError::EmailDomain),
                "{input}"
            );
        }
    }

    #[test]
    fn email_rejects_spaces_control_characters_and_length() {
        assert_eq!(
            normalize_email("sara k@example.com"),
            Err(ContactError::EmailWhitespace)
        );
        assert_eq!(
            normalize_email("sara\u{0}@example.com"),
            Err(ContactError::EmailControlCharacter)
        );
        assert_eq!(normalize_email("   "), Err(ContactError::EmailEmpty));
        let domain = format!("{}.com", "d".repeat(250 - 8));
        let at_limit = format!("a@{domain}");
        assert_eq!(at_limit.len(), 248);
        assert!(normalize_email(&at_limit).is_ok());
        let too_long = format!("{}@{}.com", "a".repeat(10), "d".repeat(240));
        assert_eq!(too_long.len(), 255);
        assert_eq!(normalize_email(&too_long), Err(ContactError::EmailTooLong));
    }

    #[test]
    fn external_id_is_1_to_128_characters_without_control_characters() {
        assert_eq!(validate_external_id("CRM-000123"), Ok(()));
        assert_eq!(validate_external_id("مشتری ۱۲"), Ok(()));
        assert_eq!(validate_external_id(&"x".repeat(128)), Ok(()));
        assert_eq!(validate_external_id(&"ی".repeat(128)), Ok(()));
        assert_eq!(
            validate_external_id(""),
            Err(ContactError::ExternalIdLength { length: 0 })
        );
        assert_eq!(
            validate_external_id(&"x".repeat(129)),
            Err(ContactError::ExternalIdLength { length: 129 })
        );
        assert_eq!(
            validate_external_id("a\nb"),
            Err(ContactError::ExternalIdControlCharacter)
        );
        assert_eq!(
            validate_external_id("a\u{7f}"),
            Err(ContactError::ExternalIdControlCharacter)
        );
    }

    #[test]
    fn birthday_is_a_past_date_written_yyyy_mm_dd() {
        let today = date(2025, 6, 15);
        assert_eq!(
            parse_birthday("1990-04-25", today).unwrap(),
            date(1990, 4, 25)
        );
        assert_eq!(
            parse_birthday(" 2000-02-29 ", today).unwrap(),
            date(2000, 2, 29)
        );
        assert_eq!(
            parse_birthday("1900-01-01", today).unwrap(),
            date(1900, 1, 1)
        );
        assert_eq!(parse_birthday("2025-06-15", today).unwrap(), today);
    }

    #[test]
    fn birthday_in_another_format_is_rejected() {
        let today = date(2025, 6, 15);
        for input in [
            "25-04-1990",
            "1990/04/25",
            "1990-4-25",
            "19900425",
            "",
            "1990-04-25T00:00",
            "+990-04-25",
        ] {
            assert_eq!(
                parse_birthday(input, today),
                Err(ContactError::BirthdayFormat),
                "{input}"
            );
        }
    }

    #[test]
    fn birthday_must_exist_be_after_1900_and_not_in_the_future() {
        let today = date(2025, 6, 15);
        assert_eq!(
            parse_birthday("2023-02-29", today),
            Err(ContactError::BirthdayNotADate)
        );
        assert_eq!(
            parse_birthday("1990-13-01", today),
            Err(ContactError::BirthdayNotADate)
        );
        assert_eq!(
            parse_birthday("1990-00-10", today),
            Err(ContactError::BirthdayNotADate)
        );
        assert_eq!(
            parse_birthday("1990-04-31", today),
            Err(ContactError::BirthdayNotADate)
        );
        assert_eq!(
            parse_birthday("1899-12-31", today),
            Err(ContactError::BirthdayBefore1900)
        );
        assert_eq!(
            parse_birthday("2025-06-16", today),
            Err(ContactError::BirthdayInFuture)
        );
    }

    #[test]
    fn attribute_keys_are_lowercase_identifiers() {
        for key in [
            "a",
            "favourite_store",
            "size_2",
            "x_",
            &format!("k{}", "_".repeat(63)),
        ] {
            assert_eq!(validate_custom_attribute_key(key), Ok(()), "{key}");
        }
        for key in [
            "",
            "_a",
            "2a",
            "Favourite",
            "favourite-store",
            "favourite store",
            "é",
            &format!("k{}", "_".repeat(64)),
        ] {
            assert_eq!(
                validate_custom_attribute_key(key),
                Err(ContactError::AttributeKey),
                "{key}"
            );
        }
    }

    #[test]
    fn error_codes_are_snake_case() {
        let error = ContactError::PhoneLength { digits: 3 };
        assert_eq!(error.code(), "phone_length");
        assert!(
            ContactError::BirthdayInFuture
                .code()
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
        );
    }

    #[test]
    fn only_the_three_digit_scripts_are_folded() {
        assert_eq!(ascii_digit('7'), Some('7'));
        assert_eq!(ascii_digit('۷'), Some('7'));
        assert_eq!(ascii_digit('٧'), Some('7'));
        assert_eq!(ascii_digit('७'), None);
        assert_eq!(ascii_digit('a'), None);
    }
}
