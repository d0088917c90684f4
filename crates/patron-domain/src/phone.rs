//! Phone numbers: checked against the numbering plan of their country (libphonenumber's
//! metadata, through the `phonenumber` crate) and stored in E.164.
//!
//! A number written with `+` (or `00`) and a country code is read as such, whatever the
//! club's country; a national number (`09121234567`, `050-234-5678`, `(212) 555-0101`) is
//! read in the club's country ([`Country`], `[club] country` in the program). Persian and
//! Arabic-Indic digits are read as digits, and the separators and direction marks that come
//! along when a number is copied out of right-to-left text are skipped. A refusal suggests
//! an example number of the club's country, so an Israeli club never suggests an Iranian
//! number. Messages never repeat the input: contact data is personal data, and errors end up
//! in logs.

use std::fmt;
use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id;

use crate::text::is_bidi_control;
use crate::text::number::ascii_digit;

/// The longest input read as a phone number, in characters: a formatted international number
/// with every separator is under 30.
pub const PHONE_CHARS_MAX: usize = 64;

/// A country whose numbering plan national numbers are read in: an ISO 3166-1 alpha-2 code
/// that libphonenumber has a numbering plan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(Id);

impl Country {
    /// The country of an upper-case ISO 3166-1 alpha-2 code (`"IR"`), if it has a numbering
    /// plan.
    pub fn from_code(code: &str) -> Option<Country> {
        let upper = code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase());
        // `Id` also names a few non-geographic entities ("001"), which are not countries.
        upper
            .then(|| Id::from_str(code).ok().map(Country))
            .flatten()
    }

    /// The ISO 3166-1 alpha-2 code.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    /// The country that issues `currency` (ISO 4217), when its code says so and the country
    /// uses it: IRR → IR, ILS → IL, USD → US. ISO 4217 codes start with the issuer's alpha-2
    /// code; a currency without one country (EUR, XOF) has none.
    pub fn issuing(currency: &str) -> Option<Country> {
        let iso = iso_currency::Currency::from_code(currency)?;
        let issuer = currency.get(..2)?;
        iso.used_by()
            .iter()
            .any(|country| country.to_string() == issuer)
            .then(|| Country::from_code(issuer))
            .flatten()
    }

    /// An example mobile number (else a fixed-line one) of the country, as written at home
    /// and from abroad: `("0912 345 6789", "+98 912 345 6789")`.
    pub fn example(&self) -> Option<(String, String)> {
        let metadata = phonenumber::metadata::DATABASE.by_id(self.code())?;
        let descriptors = metadata.descriptors();
        let example = descriptors
            .mobile()
            .and_then(|d| d.example())
            .or_else(|| descriptors.fixed_line().and_then(|d| d.example()))?;
        let number = phonenumber::parse(Some(self.0), example).ok()?;
        Some((
            number.format().mode(Mode::National).to_string(),
            number.format().mode(Mode::International).to_string(),
        ))
    }
}

/// Why a phone number was refused; the message suggests an example of the club's country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    Empty,
    /// A letter, a symbol, or a `+` after the first digit.
    InvalidCharacter {
        country: Option<Country>,
    },
    /// A national number, and the club has no country to read it in.
    NoCountryCode,
    /// Not a number of its country's numbering plan (or of no country).
    Invalid {
        country: Option<Country>,
    },
}

impl PhoneError {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::Empty => "phone_empty",
            PhoneError::InvalidCharacter { .. } => "phone_invalid_character",
            PhoneError::NoCountryCode => "phone_no_country_code",
            PhoneError::Invalid { .. } => "phone_invalid",
        }
    }
}

/// "write it like 050-234-5678, or +972 50-234-5678 from abroad".
fn how_to_write(country: Option<Country>) -> String {
    match country.and_then(|c| c.example()) {
        Some((national, international)) => {
            format!("write it like {national}, or {international} from abroad")
        }
        None => "write it with + and the country code first".to_owned(),
    }
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::Empty => write!(f, "phone number is empty"),
            PhoneError::InvalidCharacter { country } => write!(
                f,
                "phone number may only contain digits, a leading +, spaces, dashes, dots and \
                 parentheses: {}",
                how_to_write(*country)
            ),
            PhoneError::NoCountryCode => write!(
                f,
                "phone number must start with + and its country code: the program names no \
                 country ([club] country) to read a national number in"
            ),
            PhoneError::Invalid { country } => {
                write!(f, "not a valid phone number: {}", how_to_write(*country))
            }
        }
    }
}

impl std::error::Error for PhoneError {}

/// Characters that separate the groups of a number, or come along when it is copied out of
/// right-to-left text; they carry no digits.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        '-' | '.' | '(' | ')' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    ) || c.is_whitespace()
        || is_bidi_control(c)
}

/// The number's digits in ASCII with its leading `+` if any (`00` read as `+`).
fn digits_of(input: &str, country: Option<Country>) -> Result<String, PhoneError> {
    let invalid_character = PhoneError::InvalidCharacter { country };
    if input.chars().count() > PHONE_CHARS_MAX {
        return Err(PhoneError::Invalid { country });
    }
    let mut digits = String::with_capacity(16);
    let mut plus = false;
    for c in input.chars() {
        if is_separator(c) {
            continue;
        }
        if c == '+' {
            if plus || !digits.is_empty() {
                return Err(invalid_character);
            }
            plus = true;
        } else {
            digits.push(ascii_digit(c).ok_or_else(|| invalid_character.clone())?);
        }
    }
    if digits.is_empty() {
        return Err(if plus {
            PhoneError::Invalid { country }
        } else {
            PhoneError::Empty
        });
    }
    match digits.strip_prefix("00") {
        Some(rest) if !plus => Ok(format!("+{rest}")),
        _ if plus => Ok(format!("+{digits}")),
        _ => Ok(digits),
    }
}

/// Checks a phone number and answers it in E.164 (`+989121234567`). `country` is the club's:
/// national numbers are read in it, and errors suggest an example of it.
pub fn normalize_phone(input: &str, country: Option<Country>) -> Result<String, PhoneError> {
    let digits = digits_of(input, country)?;
    if !digits.starts_with('+') && country.is_none() {
        return Err(PhoneError::NoCountryCode);
    }
    let number = phonenumber::parse(country.map(|c| c.0), &digits)
        .map_err(|_| PhoneError::Invalid { country })?;
    if !phonenumber::is_valid(&number) {
        return Err(PhoneError::Invalid { country });
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn country(code: &str) -> Option<Country> {
        Some(Country::from_code(code).unwrap())
    }

    #[test]
    fn international_numbers_are_read_whatever_the_clubs_country() {
        for club in [None, country("IR"), country("IL"), country("US")] {
            for (input, e164) in [
                ("+989121234567", "+989121234567"),
                ("+1 (212) 555-0101", "+12125550101"),
                ("+44 20 7946 0958", "+442079460958"),
                ("+972 50-234-5678", "+972502345678"),
                ("0098 912 123 4567", "+989121234567"),
                ("  +49 30 901820  ", "+4930901820"),
            ] {
                assert_eq!(normalize_phone(input, club).unwrap(), e164, "{input}");
            }
        }
    }

    #[test]
    fn national_numbers_are_read_in_the_clubs_country() {
        for (club, input, e164) in [
            ("IR", "09121234567", "+989121234567"),
            ("IR", "0912 123 4567", "+989121234567"),
            ("IL", "050-234-5678", "+972502345678"),
            ("IL", "03-123-4567", "+97231234567"),
            ("US", "(212) 555-0101", "+12125550101"),
            ("US", "212.555.0101", "+12125550101"),
        ] {
            assert_eq!(
                normalize_phone(input, country(club)).unwrap(),
                e164,
                "{club} {input}"
            );
        }
        assert_eq!(
            normalize_phone("09121234567", None),
            Err(PhoneError::NoCountryCode)
        );
    }

    #[test]
    fn persian_and_arabic_digits_and_direction_marks_are_read() {
        for (input, club) in [
            ("+۹۸۹۱۲۱۲۳۴۵۶۷", None),
            ("۰۰۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷", None),
            ("۰۹۱۲۱۲۳۴۵۶۷", country("IR")),
            ("٠٩١٢١٢٣٤٥٦٧", country("IR")),
            ("\u{200E}+98 912 123 4567\u{200F}", None),
            ("\u{2066}+98 912 123 4567\u{2069}", None),
        ] {
            assert_eq!(
                normalize_phone(input, club).unwrap(),
                "+989121234567",
                "{input}"
            );
        }
    }

    #[test]
    fn numbers_outside_every_numbering_plan_are_refused() {
        for input in [
            "+10005550100",
            "+1 212 555 010",
            "+98 912 123 456",
            "+999 1234 5678",
            "+12345678",
            "+1234567890123456",
            "+",
        ] {
            assert!(
                matches!(
                    normalize_phone(input, country("US")),
                    Err(PhoneError::Invalid { .. })
                ),
                "{input}"
            );
        }
        assert!(matches!(
            normalize_phone("123", country("IL")),
            Err(PhoneError::Invalid { .. })
        ));
    }

    #[test]
    fn letters_and_a_misplaced_plus_are_refused() {
        for input in [
            "+98912ABC4567",
            "+98 912 123 4567 ext 2",
            "98+9121234567",
            "++989121234567",
            "+98/912/1234567",
            "1-800-FLOWERS",
            "+98\u{200B}9121234567",
        ] {
            assert_eq!(
                normalize_phone(input, None),
                Err(PhoneError::InvalidCharacter { country: None }),
                "{input}"
            );
        }
        assert_eq!(normalize_phone("", None), Err(PhoneError::Empty));
        assert_eq!(normalize_phone(" - ( ) ", None), Err(PhoneError::Empty));
    }

    #[test]
    fn a_refusal_suggests_an_example_of_the_clubs_country_only() {
        for (club, shown, hidden) in [
            ("IL", "+972", ["+98", "+1 "]),
            ("IR", "+98", ["+972", "+1 "]),
            ("US", "+1 ", ["+98", "+972"]),
        ] {
            for input in ["123", "call me"] {
                let message = normalize_phone(input, country(club))
                    .unwrap_err()
                    .to_string();
                assert!(message.contains(shown), "{club}: {message}");
                for other in hidden {
                    assert!(!message.contains(other), "{club}: {message}");
                }
                assert!(!message.contains("call me"), "never repeats the input");
            }
        }
        let message = PhoneError::Invalid {
            country: country("IL"),
        }
        .to_string();
        assert_eq!(
            message,
            "not a valid phone number: write it like 050-234-5678, or +972 50-234-5678 from abroad"
        );
    }

    #[test]
    fn a_currency_issued_by_one_country_names_it() {
        assert_eq!(Country::issuing("IRR"), country("IR"));
        assert_eq!(Country::issuing("ILS"), country("IL"));
        assert_eq!(Country::issuing("USD"), country("US"));
        assert_eq!(Country::issuing("GBP"), country("GB"));
        assert_eq!(Country::issuing("EUR"), None);
        assert_eq!(Country::issuing("XOF"), None);
        assert_eq!(Country::issuing("XXX"), None);
        assert_eq!(Country::issuing("nope"), None);
    }

    #[test]
    fn country_codes_are_upper_case_alpha_2() {
        assert_eq!(Country::from_code("IR").unwrap().code(), "IR");
        for code in ["ir", "IRN", "", "ZZ", "001", "I"] {
            assert_eq!(Country::from_code(code), None, "{code}");
        }
    }

    proptest! {
        #[test]
        fn a_stored_number_reads_back_as_itself(
            club in prop::sample::select(vec!["IR", "IL", "US", "GB", "DE"]),
            national in "[0-9]{6,12}",
        ) {
            if let Ok(e164) = normalize_phone(&national, country(club)) {
                prop_assert!(e164.starts_with('+'));
                prop_assert!(e164[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(normalize_phone(&e164, None), Ok(e164.clone()));
                prop_assert_eq!(normalize_phone(&e164, country("IL")), Ok(e164.clone()));
            }
        }

        #[test]
        fn the_digit_script_never_changes_the_answer(digits in "[0-9]{8,12}") {
            let persian: String = digits
                .chars()
                .map(|c| char::from_u32(0x06F0 + c.to_digit(10).unwrap()).unwrap())
                .collect();
            prop_assert_eq!(
                normalize_phone(&persian, country("IR")),
                normalize_phone(&digits, country("IR"))
            );
        }
    }
}
