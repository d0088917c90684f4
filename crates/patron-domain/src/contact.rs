//! Validation and normalisation of member contact data: email, birthday, custom attribute
//! keys (phone numbers are [`crate::phone`]'s, external ids [`crate::text`]'s identifiers).
//!
//! Each check returns the canonical form it will be stored in (so two spellings of one email
//! address are one member) or a [`ContactError`] whose message tells the person typing what to
//! fix. Messages never repeat the input: they end up in logs, and contact data is personal data.

use jiff::civil::Date;

/// Why a piece of contact data was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
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
            ContactError::EmailEmpty => "email_empty",
            ContactError::EmailWhitespace => "email_whitespace",
            ContactError::EmailControlCharacter => "email_control_character",
            ContactError::EmailAt => "email_at",
            ContactError::EmailLocalPartLength => "email_local_part_length",
            ContactError::EmailDomain => "email_domain",
            ContactError::EmailTooLong => "email_too_long",
            ContactError::BirthdayFormat => "birthday_format",
            ContactError::BirthdayNotADate => "birthday_not_a_date",
            ContactError::BirthdayBefore1900 => "birthday_before_1900",
            ContactError::BirthdayInFuture => "birthday_in_future",
            ContactError::AttributeKey => "attribute_key",
        }
    }
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
mod tests {
    use super::*;
    use jiff::civil::date;

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
        let error = ContactError::EmailAt;
        assert_eq!(error.code(), "email_at");
        assert!(
            ContactError::BirthdayInFuture
                .code()
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
        );
    }
}
