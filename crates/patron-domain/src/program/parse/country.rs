//! `[club] country`: the country national phone numbers are read in, and whose example
//! numbers the club's error messages show. An ISO 3166-1 alpha-2 code; when absent, the
//! country that issues the club's currency (IRR → IR, ILS → IL, USD → US), or none for a
//! currency of several countries (EUR).

use super::{Entry, Parser};
use crate::phone::Country;

impl Parser<'_> {
    /// The club's country: `None` when the entry was reported, `Some(None)` when the club has
    /// none.
    pub(super) fn country(
        &mut self,
        entry: Option<Entry<'_>>,
        currency: Option<&str>,
    ) -> Option<Option<Country>> {
        let Some(entry) = entry else {
            return Some(currency.and_then(Country::issuing));
        };
        let code = self.string(&entry)?;
        if let Some(country) = Country::from_code(code) {
            return Some(Some(country));
        }
        let upper = code.to_ascii_uppercase();
        let hint = if Country::from_code(&upper).is_some() {
            format!("country codes are upper case: \"{upper}\"")
        } else {
            "use an ISO 3166-1 alpha-2 code such as \"IR\", \"IL\" or \"US\"".to_owned()
        };
        self.report(
            entry.offset,
            &entry.path,
            format!(
                "`{}`: \"{code}\" is not a country with a phone numbering plan",
                entry.path
            ),
            Some(hint),
        );
        None
    }
}

#[cfg(test)]
mod tests {

    use crate::phone::Country;
    use crate::program::{Diagnostic, Program, parse_program};

    const EXAMPLES: [(&str, &str); 3] = [
        (
            include_str!("../../../../../examples/programs/persian-retail.toml"),
            "IR",
        ),
        (
            include_str!("../../../../../examples/programs/israeli-pharmacy.toml"),
            "IL",
        ),
        (
            include_str!("../../../../../examples/programs/coffee-chain.toml"),
            "US",
        ),
    ];

    /// A minimal program whose `[club]` ends with `extra` lines.
    fn parse(currency: &str, extra: &str) -> Result<Program, Vec<Diagnostic>> {
        parse_program(&format!(
            "[club]\nname = \"Club\"\ndefault_locale = \"en\"\ncurrency = \"{currency}\"\n\
             time_zone = \"UTC\"\n{extra}\n\n[earning]\npoints_per_unit = \"1\"\n\n\
             [expiry]\npolicy = \"never\"\n\n[returns]\npolicy = \"within_balance\"\n\n\
             [exit]\npolicy = \"forfeit\"\n"
        ))
    }

    fn country(code: &str) -> Option<Country> {
        Country::from_code(code)
    }

    #[test]
    fn the_examples_name_their_country() {
        for (source, code) in EXAMPLES {
            assert!(source.contains(&format!("country = \"{code}\"")), "{code}");
            assert_eq!(parse_program(source).unwrap().country, country(code));
        }
    }

    #[test]
    fn a_club_names_its_country() {
        assert_eq!(
            parse("EUR", "country = \"DE\"").unwrap().country,
            country("DE")
        );
        // A dollar club outside the United States.
        assert_eq!(
            parse("USD", "country = \"EC\"").unwrap().country,
            country("EC")
        );
    }

    #[test]
    fn without_one_the_currency_names_the_country_that_issues_it() {
        for (currency, code) in [
            ("IRR", Some("IR")),
            ("ILS", Some("IL")),
            ("USD", Some("US")),
        ] {
            assert_eq!(
                parse(currency, "").unwrap().country,
                code.and_then(country),
                "{currency}"
            );
        }
        assert_eq!(parse("EUR", "").unwrap().country, None);
    }

    #[test]
    fn an_unknown_country_is_reported_with_a_hint() {
        let errors = parse("USD", "country = \"us\"").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].path, "club.country");
        assert_eq!(errors[0].line, 6);
        assert!(errors[0].hint.as_deref().unwrap().contains("\"US\""));

        for wrong in ["country = \"USA\"", "country = \"ZZ\"", "country = 1"] {
            let errors = parse("USD", wrong).unwrap_err();
            assert_eq!(errors[0].path, "club.country", "{wrong}: {errors:#?}");
        }
    }
}
