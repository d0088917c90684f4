//! Reading `[club]`: the club's names and languages, its currency and country, its time zone
//! and calendar, and what a point costs it. Each setting is kept on its own ([`Club`]) so the
//! later sections can use the ones that parsed even when others did not.

use jiff::tz::TimeZone;
use rust_decimal::Decimal;

use super::{Entry, MINOR_UNIT_MAX, Parser, Section};
use crate::calendar::CalendarSystem;
use crate::shared::{Currency, Locale, Localized, closest};

/// Club-level settings, each kept separately so that later sections can use the ones that
/// parsed even when others did not.
#[derive(Default)]
pub(super) struct Club {
    pub(super) names: Option<Localized>,
    pub(super) default_locale: Option<Locale>,
    pub(super) locales: Option<Vec<Locale>>,
    pub(super) points_name: Option<Localized>,
    pub(super) currency: Option<Currency>,
    /// `Some(None)`: the club has no country.
    pub(super) country: Option<Option<crate::phone::Country>>,
    pub(super) time_zone: Option<String>,
    pub(super) calendar: Option<CalendarSystem>,
    pub(super) cost_per_point: Option<Decimal>,
}

const CALENDARS: &[(&str, CalendarSystem)] = &[
    ("gregorian", CalendarSystem::Gregorian),
    ("persian", CalendarSystem::Persian),
];
const LOCALES: &[(&str, Locale)] = &[("fa", Locale::Fa), ("he", Locale::He), ("en", Locale::En)];

impl Parser<'_> {
    pub(super) fn club(&mut self, section: &Section<'_>) -> Club {
        self.check_keys(
            section,
            &[
                "name",
                "default_locale",
                "locales",
                "points_name",
                "currency",
                "country",
                "time_zone",
                "calendar",
                "cost_per_point",
            ],
        );
        // The default language comes first: the names are checked against it.
        let default_locale = self
            .required(section, "default_locale")
            .and_then(|entry| self.choice(&entry, LOCALES));
        let names = self
            .required(section, "name")
            .and_then(|entry| self.localized(&entry, default_locale));
        let locales = match section.entry("locales") {
            Some(entry) => self.locales(&entry, default_locale),
            None => default_locale.map(|locale| vec![locale]),
        };
        let points_name = match section.entry("points_name") {
            Some(entry) => self.localized(&entry, default_locale),
            None => Some(Localized {
                fa: Some("امتیاز".to_owned()),
                he: Some("נקודות".to_owned()),
                en: Some("points".to_owned()),
            }),
        };
        let currency = self
            .required(section, "currency")
            .and_then(|entry| self.currency(&entry));
        let country = self.country(
            section.entry("country"),
            currency.as_ref().map(|c| c.code.as_str()),
        );
        let time_zone = self
            .required(section, "time_zone")
            .and_then(|entry| self.time_zone(&entry));
        let calendar = match section.entry("calendar") {
            Some(entry) => self.calendar(&entry),
            None => Some(CalendarSystem::Gregorian),
        };
        let cost_per_point = match section.entry("cost_per_point") {
            Some(entry) => self.decimal_in(&entry, Decimal::ZERO, Decimal::new(1_000_000_000, 0)),
            None => Some(Decimal::ZERO),
        };
        Club {
            names,
            default_locale,
            locales,
            points_name,
            currency,
            country,
            time_zone,
            calendar,
            cost_per_point,
        }
    }

    /// `[club] calendar`: the calendar the program's months and years are counted in.
    pub(super) fn calendar(&mut self, entry: &Entry<'_>) -> Option<CalendarSystem> {
        if entry.item.as_str() == Some("hebrew") {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}`: the Hebrew calendar is not supported yet", entry.path),
                Some(
                    "its leap years have 13 months, so \"end of the quarter\" and monthly \
                     limits need rules of their own; use \"gregorian\" (what Israeli \
                     businesses usually count their periods in) or \"persian\""
                        .to_owned(),
                ),
            );
            return None;
        }
        self.choice(entry, CALENDARS)
    }

    pub(super) fn locales(
        &mut self,
        entry: &Entry<'_>,
        default_locale: Option<Locale>,
    ) -> Option<Vec<Locale>> {
        let items = self.list(entry)?;
        let mut locales = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let element = Entry {
                item,
                path: format!("{}[{index}]", entry.path),
                offset: item.span().map_or(entry.offset, |span| span.start),
            };
            match self.choice(&element, LOCALES) {
                Some(locale) if locales.contains(&locale) => {
                    self.report(
                        element.offset,
                        &element.path,
                        format!("`{}` lists \"{}\" twice", entry.path, locale.code()),
                        None,
                    );
                    ok = false;
                }
                Some(locale) => locales.push(locale),
                None => ok = false,
            }
        }
        if locales.is_empty() && ok {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` is empty", entry.path),
                None,
            );
            return None;
        }
        if let Some(default_locale) = default_locale
            && ok
            && !locales.contains(&default_locale)
        {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` does not include the default language \"{}\"",
                    entry.path,
                    default_locale.code()
                ),
                Some(format!("add \"{}\" to the list", default_locale.code())),
            );
            return None;
        }
        ok.then_some(locales)
    }

    pub(super) fn currency(&mut self, entry: &Entry<'_>) -> Option<Currency> {
        // Either `currency = "IRR"` or `currency = { code = "IRR", minor_unit = 0 }`.
        let (code_entry, minor_unit_entry) = if entry.item.is_str() {
            (entry.clone(), None)
        } else if let Some(table) = entry.item.as_table_like() {
            let section = Section {
                table,
                anchor: entry.offset,
                path: entry.path.clone(),
            };
            self.check_keys(&section, &["code", "minor_unit"]);
            let code = self.required(&section, "code")?;
            (code, section.entry("minor_unit"))
        } else {
            self.wrong_type(
                entry,
                "a currency code such as \"IRR\", or a table { code = ..., minor_unit = ... }",
            );
            return None;
        };
        let code = self.string(&code_entry)?;
        let Some(iso) = iso_currency::Currency::from_code(code) else {
            let upper = code.to_uppercase();
            let hint = if iso_currency::Currency::from_code(&upper).is_some() {
                format!("currency codes are upper case: \"{upper}\"")
            } else {
                "use an ISO 4217 code such as \"IRR\", \"ILS\", \"USD\" or \"EUR\"".to_owned()
            };
            self.report(
                code_entry.offset,
                &code_entry.path,
                format!("`{}`: unknown currency code \"{code}\"", code_entry.path),
                Some(hint),
            );
            return None;
        };
        let Some(iso_exponent) = iso.exponent() else {
            self.report(
                code_entry.offset,
                &code_entry.path,
                format!(
                    "`{}`: \"{code}\" has no minor unit in ISO 4217: it is not money Patron can \
                     count",
                    code_entry.path
                ),
                None,
            );
            return None;
        };
        let minor_unit = match minor_unit_entry {
            // An override, e.g. rials without decimals; see `Currency::minor_unit`.
            Some(minor_unit_entry) => self.integer_in(&minor_unit_entry, 0..=MINOR_UNIT_MAX)?,
            None => i64::from(iso_exponent),
        };
        Some(Currency {
            code: iso.code().to_owned(),
            minor_unit: u32::try_from(minor_unit).ok()?,
        })
    }

    pub(super) fn time_zone(&mut self, entry: &Entry<'_>) -> Option<String> {
        let name = self.string(entry)?;
        match TimeZone::get(name) {
            Ok(zone) if !zone.is_unknown() => {
                // Store the canonical spelling: the lookup ignores ASCII case.
                Some(zone.iana_name().unwrap_or(name).to_owned())
            }
            _ => {
                let names: Vec<String> = jiff::tz::db()
                    .available()
                    .map(|available| available.as_str().to_owned())
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = match closest(name, &names) {
                    Some(suggestion) => format!("did you mean \"{suggestion}\"?"),
                    None => "use an IANA time zone name such as \"Asia/Tehran\", \
                             \"Asia/Jerusalem\" or \"America/New_York\""
                        .to_owned(),
                };
                self.report(
                    entry.offset,
                    &entry.path,
                    format!("`{}`: unknown time zone \"{name}\"", entry.path),
                    Some(hint),
                );
                None
            }
        }
    }
}
