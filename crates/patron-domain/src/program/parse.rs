//! Reading a program file: TOML text in, a validated [`Program`] or every problem found out.
//!
//! The document is walked by hand (no serde) so that one pass can report all problems, each at
//! the exact place it occurs: unknown keys (with a "did you mean"), wrong types, missing keys,
//! values out of range, and rules that span several settings (tier thresholds must increase, the
//! default language needs a name...). Each section parser returns `None` when it reported a
//! problem and keeps going, so later sections are still checked. Keep `docs/PROGRAM.md` in step
//! with the keys, defaults and limits here.

mod country;
mod limits;
mod rewards;
mod rules;
mod segments;
mod targets;
mod tiers;
mod values;

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use toml_edit::{Document, Item, TableLike};
use values::describe_value;

use super::diagnostic::{closest, line_column};
use super::{
    Cards, Currency, Diagnostic, DowngradePolicy, Earning, ExitPolicy, ExpiryPolicy,
    ExpiryRounding, ExpiryUnit, Locale, Localized, Pending, Program, ReturnPolicy, Rounding, Tier,
    TierBasis, TierWindow, Tiers,
};
use crate::calendar::CalendarSystem;

// Limits: every list and number in the file is bounded (see docs/PROGRAM.md).
const TEXT_CHARS_MAX: usize = 200;
const EXCLUDED_ITEMS_MAX: usize = 1_000;
const BENEFITS_MAX: usize = 50;
const TIER_LEVELS_MAX: usize = 20;
const TIER_CODE_CHARS_MAX: usize = 32;
const MINOR_UNIT_MAX: i64 = 4;
const PENDING_DAYS_MAX: i64 = 365;
const EXPIRY_DAYS_MAX: i64 = 3_650;
const EXPIRY_MONTHS_MAX: i64 = 120;
const ROLLING_MONTHS_MAX: i64 = 120;
const GRACE_DAYS_MAX: i64 = 365;
const CARD_PREFIX_DIGITS_MAX: usize = 6;
/// A real program is a few kilobytes; anything this large is a mistake (or an attack).
const SOURCE_BYTES_MAX: usize = 1024 * 1024;

/// Parses and validates a program file. On failure, returns every problem found, sorted by
/// position. A TOML syntax error stops the parse and is reported alone.
pub fn parse_program(source: &str) -> Result<Program, Vec<Diagnostic>> {
    if source.len() > SOURCE_BYTES_MAX {
        return Err(vec![Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "the file is {} bytes; a program file may have at most {SOURCE_BYTES_MAX}",
                source.len()
            ),
            hint: None,
        }]);
    }
    let document = match Document::parse(source) {
        Ok(document) => document,
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            let (line, column) = line_column(source, offset);
            return Err(vec![Diagnostic {
                line,
                column,
                path: String::new(),
                message: format!("TOML syntax error: {}", error.message().trim()),
                hint: None,
            }]);
        }
    };
    let mut parser = Parser {
        source,
        diagnostics: Vec::new(),
    };
    let root = Section {
        table: document.as_table(),
        anchor: 0,
        path: String::new(),
    };
    let program = parser.program(&root);
    let mut diagnostics = parser.diagnostics;
    match program {
        Some(program) if diagnostics.is_empty() => Ok(program),
        _ => {
            if diagnostics.is_empty() {
                // Every `None` above comes with a report; this guards against a parser bug
                // turning into a silent failure.
                diagnostics.push(Diagnostic {
                    line: 1,
                    column: 1,
                    path: String::new(),
                    message: "the program could not be read (internal error: no details)".into(),
                    hint: None,
                });
            }
            diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
            Err(diagnostics)
        }
    }
}

/// A table (standard or inline) being read, with the place to point at when a key is missing.
struct Section<'d> {
    table: &'d dyn TableLike,
    /// Byte offset of the table's header, or of its key when it has no header of its own.
    anchor: usize,
    /// Dotted path, empty for the document root.
    path: String,
}

impl Section<'_> {
    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// How the section is named in messages: `[earning]` for a top-level section, `` `club.name` ``
    /// for a table inside one, `the top level` for the root.
    fn label(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_owned()
        } else if self.path.contains(['.', '[']) {
            format!("`{}`", self.path)
        } else {
            format!("[{}]", self.path)
        }
    }
}

/// One key's value, located.
#[derive(Clone)]
struct Entry<'d> {
    item: &'d Item,
    path: String,
    /// Byte offset of the value (or of the key when the value has no span of its own).
    offset: usize,
}

struct Parser<'s> {
    source: &'s str,
    diagnostics: Vec<Diagnostic>,
}

/// Club-level settings, each kept separately so that later sections can use the ones that
/// parsed even when others did not.
struct Club {
    names: Option<Localized>,
    default_locale: Option<Locale>,
    locales: Option<Vec<Locale>>,
    points_name: Option<Localized>,
    currency: Option<Currency>,
    /// `Some(None)`: the club has no country.
    country: Option<Option<crate::phone::Country>>,
    time_zone: Option<String>,
    calendar: Option<CalendarSystem>,
    cost_per_point: Option<Decimal>,
}

const CALENDARS: &[(&str, CalendarSystem)] = &[
    ("gregorian", CalendarSystem::Gregorian),
    ("persian", CalendarSystem::Persian),
];
const LOCALES: &[(&str, Locale)] = &[("fa", Locale::Fa), ("he", Locale::He), ("en", Locale::En)];
const ROUNDINGS: &[(&str, Rounding)] = &[
    ("down", Rounding::Down),
    ("up", Rounding::Up),
    ("half_up", Rounding::HalfUp),
    ("half_even", Rounding::HalfEven),
];
const RETURN_POLICIES: &[(&str, ReturnPolicy)] = &[
    ("only_pending", ReturnPolicy::OnlyPending),
    ("within_balance", ReturnPolicy::WithinBalance),
    ("unlimited", ReturnPolicy::Unlimited),
];
const EXIT_POLICIES: &[(&str, ExitPolicy)] = &[
    ("forfeit", ExitPolicy::Forfeit),
    ("keep_until_expiry", ExitPolicy::KeepUntilExpiry),
];
const EXPIRY_UNITS: &[(&str, ExpiryUnit)] =
    &[("days", ExpiryUnit::Days), ("months", ExpiryUnit::Months)];
const EXPIRY_ROUNDINGS: &[(&str, ExpiryRounding)] = &[
    ("none", ExpiryRounding::None),
    ("end_of_day", ExpiryRounding::EndOfDay),
    ("end_of_month", ExpiryRounding::EndOfMonth),
    ("end_of_quarter", ExpiryRounding::EndOfQuarter),
    ("end_of_year", ExpiryRounding::EndOfYear),
];
const TIER_BASES: &[(&str, TierBasis)] = &[
    ("points_earned", TierBasis::PointsEarned),
    ("spend", TierBasis::Spend),
    ("visits", TierBasis::Visits),
];

/// The kinds of expiry policy; which keys each one takes is in [`Parser::expiry`].
#[derive(Clone, Copy, PartialEq)]
enum ExpiryKind {
    Never,
    AfterEarning,
    FixedYearlyDate,
    Inactivity,
}
const EXPIRY_KINDS: &[(&str, ExpiryKind)] = &[
    ("never", ExpiryKind::Never),
    ("after_earning", ExpiryKind::AfterEarning),
    ("fixed_yearly_date", ExpiryKind::FixedYearlyDate),
    ("inactivity", ExpiryKind::Inactivity),
];

/// `window` written as a word; the rolling form is a table.
#[derive(Clone, Copy)]
enum WindowWord {
    CalendarYear,
    Lifetime,
}
const WINDOW_WORDS: &[(&str, WindowWord)] = &[
    ("calendar_year", WindowWord::CalendarYear),
    ("lifetime", WindowWord::Lifetime),
];

#[derive(Clone, Copy, PartialEq)]
enum DowngradeKind {
    Never,
    EndOfPeriod,
}
const DOWNGRADE_KINDS: &[(&str, DowngradeKind)] = &[
    ("never", DowngradeKind::Never),
    ("end_of_period", DowngradeKind::EndOfPeriod),
];

impl<'s> Parser<'s> {
    // ----- The program, section by section ---------------------------------------------------

    fn program(&mut self, root: &Section<'_>) -> Option<Program> {
        self.check_keys(
            root,
            &[
                "club",
                "earning",
                "pending",
                "expiry",
                "returns",
                "exit",
                "tiers",
                "cards",
                "rules",
                "rewards",
                "targets",
                "analytics",
                "rfv",
                "segments",
                "limits",
            ],
        );

        let club = match self.required_section(
            root,
            "club",
            "[club]\nname = \"...\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\ntime_zone = \"UTC\"",
        ) {
            Some(section) => self.club(&section),
            None => Club {
                names: None,
                default_locale: None,
                locales: None,
                points_name: None,
                currency: None,
                country: None,
                time_zone: None,
                calendar: None,
                cost_per_point: None,
            },
        };
        let currency = club.currency.as_ref();

        let earning = self
            .required_section(root, "earning", "[earning]\npoints_per_unit = \"1\"")
            .and_then(|section| self.earning(&section, currency));
        let pending = match self.optional_section(root, "pending") {
            Some(section) => self.pending(&section),
            None => Some(Pending { days: 0 }),
        };
        let expiry = self
            .required_section(root, "expiry", "[expiry]\npolicy = \"never\"")
            .and_then(|section| self.expiry(&section, club.calendar.unwrap_or_default()));
        let returns = self
            .required_section(root, "returns", "[returns]\npolicy = \"within_balance\"")
            .and_then(|section| {
                self.check_keys(&section, &["policy"]);
                let entry = self.required(&section, "policy")?;
                self.choice(&entry, RETURN_POLICIES)
            });
        let exit = self
            .required_section(root, "exit", "[exit]\npolicy = \"forfeit\"")
            .and_then(|section| {
                self.check_keys(&section, &["policy"]);
                let entry = self.required(&section, "policy")?;
                self.choice(&entry, EXIT_POLICIES)
            });
        let tiers = match self.optional_section(root, "tiers") {
            Some(section) => self.tiers(&section, currency, club.default_locale),
            None => Some(default_tiers()),
        };
        let cards = match self.optional_section(root, "cards") {
            Some(section) => self.cards(&section),
            None => Some(Cards {
                prefix: "9".to_owned(),
            }),
        };

        let rules = match root.entry("rules") {
            Some(entry) => self.rules(
                &entry,
                &rules::RuleContext {
                    currency,
                    default_locale: club.default_locale,
                    time_zone: club.time_zone.as_deref(),
                    tiers: tiers.as_ref(),
                    rounding: earning.as_ref().map(|earning| earning.rounding),
                },
            ),
            None => Some(Vec::new()),
        };

        let rewards = match root.entry("rewards") {
            Some(entry) => self.rewards(
                &entry,
                &rewards::RewardContext {
                    currency,
                    default_locale: club.default_locale,
                    time_zone: club.time_zone.as_deref(),
                    tiers: tiers.as_ref(),
                },
            ),
            None => Some(Vec::new()),
        };

        let rfv = match self.optional_section(root, "rfv") {
            Some(section) => self.rfv(&section, club.default_locale),
            None => Some(crate::segments::RfvSegments::default()),
        };
        let segments = match root.entry("segments") {
            Some(entry) => self.segments(&entry, club.default_locale, rfv.as_ref()),
            None => Some(Vec::new()),
        };

        let targets = match self.optional_section(root, "targets") {
            Some(section) => self.targets(&section),
            None => Some(super::Targets::default()),
        };
        let analytics = match self.optional_section(root, "analytics") {
            Some(section) => self.analytics(&section),
            None => Some(super::AnalyticsSettings::default()),
        };
        let limits_section = self.optional_section(root, "limits");
        let limits = self.limits(limits_section.as_ref(), currency);

        Some(Program {
            names: club.names?,
            default_locale: club.default_locale?,
            locales: club.locales?,
            points_name: club.points_name?,
            currency: club.currency?,
            country: club.country?,
            time_zone: club.time_zone?,
            calendar: club.calendar?,
            earning: earning?,
            pending: pending?,
            expiry: expiry?,
            returns: returns?,
            exit: exit?,
            tiers: tiers?,
            cost_per_point: club.cost_per_point?,
            cards: cards?,
            rules: rules?,
            rewards: rewards?,
            rfv: rfv?,
            segments: segments?,
            targets: targets?,
            analytics: analytics?,
            limits: limits?,
        })
    }

    fn club(&mut self, section: &Section<'_>) -> Club {
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
    fn calendar(&mut self, entry: &Entry<'_>) -> Option<CalendarSystem> {
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

    fn locales(
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

    fn currency(&mut self, entry: &Entry<'_>) -> Option<Currency> {
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

    fn time_zone(&mut self, entry: &Entry<'_>) -> Option<String> {
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

    fn earning(&mut self, section: &Section<'_>, currency: Option<&Currency>) -> Option<Earning> {
        self.check_keys(
            section,
            &[
                "points_per_unit",
                "rounding",
                "minimum_purchase",
                "excluded_categories",
                "excluded_skus",
            ],
        );
        let points_per_unit = self.required(section, "points_per_unit").and_then(|entry| {
            let value = self.decimal_in(&entry, Decimal::ZERO, Decimal::new(1_000_000, 0))?;
            if value.is_zero() {
                self.report(
                    entry.offset,
                    &entry.path,
                    format!("`{}` must be greater than 0", entry.path),
                    Some("a program where purchases earn nothing still needs a rate".to_owned()),
                );
                return None;
            }
            Some(value)
        });
        let rounding = match section.entry("rounding") {
            Some(entry) => self.choice(&entry, ROUNDINGS),
            None => Some(Rounding::Down),
        };
        let minimum_purchase_minor = match section.entry("minimum_purchase") {
            Some(entry) => self.money(&entry, currency),
            None => Some(0),
        };
        let excluded_categories = match section.entry("excluded_categories") {
            Some(entry) => self.string_list(&entry, EXCLUDED_ITEMS_MAX),
            None => Some(Vec::new()),
        };
        let excluded_skus = match section.entry("excluded_skus") {
            Some(entry) => self.string_list(&entry, EXCLUDED_ITEMS_MAX),
            None => Some(Vec::new()),
        };
        Some(Earning {
            points_per_unit: points_per_unit?,
            rounding: rounding?,
            minimum_purchase_minor: minimum_purchase_minor?,
            excluded_categories: excluded_categories?,
            excluded_skus: excluded_skus?,
        })
    }

    fn pending(&mut self, section: &Section<'_>) -> Option<Pending> {
        self.check_keys(section, &["days"]);
        let days = self.required(section, "days")?;
        let days = self.integer_in(&days, 0..=PENDING_DAYS_MAX)?;
        Some(Pending {
            days: u32::try_from(days).ok()?,
        })
    }

    fn expiry(&mut self, section: &Section<'_>, calendar: CalendarSystem) -> Option<ExpiryPolicy> {
        const KEYS: &[&str] = &[
            "policy", "amount", "unit", "round_to", "month", "day", "months",
        ];
        self.check_keys(section, KEYS);
        let kind_entry = self.required(section, "policy")?;
        let kind = self.choice(&kind_entry, EXPIRY_KINDS)?;
        let (kind_word, applicable): (&str, &[&str]) = match kind {
            ExpiryKind::Never => ("never", &[]),
            ExpiryKind::AfterEarning => ("after_earning", &["amount", "unit", "round_to"]),
            ExpiryKind::FixedYearlyDate => ("fixed_yearly_date", &["month", "day"]),
            ExpiryKind::Inactivity => ("inactivity", &["months"]),
        };
        // A key that belongs to another policy is almost always a leftover from editing the
        // policy, and silently ignoring it would hide the club's intent.
        let mut misplaced = false;
        for key in KEYS
            .iter()
            .copied()
            .filter(|key| *key != "policy" && !applicable.contains(key))
        {
            if let Some(entry) = section.entry(key) {
                let owner = match key {
                    "amount" | "unit" | "round_to" => "after_earning",
                    "month" | "day" => "fixed_yearly_date",
                    _ => "inactivity",
                };
                self.report(
                    section.key_offset(key).unwrap_or(entry.offset),
                    &entry.path,
                    format!("`{}` does not apply to policy \"{kind_word}\"", entry.path),
                    Some(format!("remove it, or use policy = \"{owner}\"")),
                );
                misplaced = true;
            }
        }
        let policy = match kind {
            ExpiryKind::Never => Some(ExpiryPolicy::Never),
            ExpiryKind::AfterEarning => {
                let unit = self
                    .required(section, "unit")
                    .and_then(|entry| self.choice(&entry, EXPIRY_UNITS));
                let amount_max = match unit {
                    Some(ExpiryUnit::Months) => EXPIRY_MONTHS_MAX,
                    _ => EXPIRY_DAYS_MAX,
                };
                let amount = self
                    .required(section, "amount")
                    .and_then(|entry| self.integer_in(&entry, 1..=amount_max));
                let round_to = match section.entry("round_to") {
                    Some(entry) => self.choice(&entry, EXPIRY_ROUNDINGS),
                    None => Some(ExpiryRounding::None),
                };
                Some(ExpiryPolicy::AfterEarning {
                    amount: u32::try_from(amount?).ok()?,
                    unit: unit?,
                    round_to: round_to?,
                })
            }
            ExpiryKind::FixedYearlyDate => {
                let month = self
                    .required(section, "month")
                    .and_then(|entry| self.integer_in(&entry, 1..=12));
                let day_entry = self.required(section, "day");
                let day = day_entry
                    .as_ref()
                    .and_then(|entry| self.integer_in(entry, 1..=31));
                let (month, day, day_entry) = (month?, day?, day_entry?);
                // Checked against a leap year so that 29 February (30 Esfand) is allowed: in
                // common years it falls on the month's last day.
                let leap_year = match calendar {
                    CalendarSystem::Gregorian => 2000,
                    CalendarSystem::Persian => 1403,
                };
                let days_in_month = calendar
                    .days_in_month(leap_year, i8::try_from(month).ok()?)
                    .map_or(31, i64::from);
                if day > days_in_month {
                    let of = match calendar {
                        CalendarSystem::Gregorian => "",
                        CalendarSystem::Persian => " of the Persian calendar",
                    };
                    self.report(
                        day_entry.offset,
                        &day_entry.path,
                        format!(
                            "`{}` is {day}, but month {month}{of} has only {days_in_month} days",
                            day_entry.path
                        ),
                        None,
                    );
                    return None;
                }
                Some(ExpiryPolicy::FixedYearlyDate {
                    month: i8::try_from(month).ok()?,
                    day: i8::try_from(day).ok()?,
                })
            }
            ExpiryKind::Inactivity => {
                let months = self.required(section, "months")?;
                let months = self.integer_in(&months, 1..=EXPIRY_MONTHS_MAX)?;
                Some(ExpiryPolicy::Inactivity {
                    months: u32::try_from(months).ok()?,
                })
            }
        };
        if misplaced { None } else { policy }
    }

    fn tiers(
        &mut self,
        section: &Section<'_>,
        currency: Option<&Currency>,
        default_locale: Option<Locale>,
    ) -> Option<Tiers> {
        self.check_keys(
            section,
            &["basis", "window", "downgrade", "levels", "replaced"],
        );
        let basis = self
            .required(section, "basis")
            .and_then(|entry| self.choice(&entry, TIER_BASES));
        let window = self
            .required(section, "window")
            .and_then(|entry| self.window(&entry));
        let downgrade = match section.entry("downgrade") {
            Some(entry) => self.downgrade(&entry, window),
            None => Some(DowngradePolicy::Never),
        };
        let levels = match section.entry("levels") {
            Some(entry) => self.levels(&entry, basis, currency, default_locale),
            None => {
                self.report(
                    section.anchor,
                    &section.child_path("levels"),
                    "[tiers] has no levels".to_owned(),
                    Some(
                        "add at least one [[tiers.levels]] table with code, name and threshold = 0"
                            .to_owned(),
                    ),
                );
                None
            }
        };
        let replaced = match section.entry("replaced") {
            Some(entry) => self.tier_replacements(&entry, levels.as_deref()),
            None => Some(Vec::new()),
        };
        Some(Tiers {
            basis: basis?,
            window: window?,
            downgrade: downgrade?,
            levels: levels?,
            replaced: replaced?,
        })
    }

    fn window(&mut self, entry: &Entry<'_>) -> Option<TierWindow> {
        if entry.item.is_str() {
            return match self.choice_with_hint(
                entry,
                WINDOW_WORDS,
                Some("or a rolling window: window = { rolling_months = 12 }"),
            )? {
                WindowWord::CalendarYear => Some(TierWindow::CalendarYear),
                WindowWord::Lifetime => Some(TierWindow::Lifetime),
            };
        }
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type(
                entry,
                "\"calendar_year\", \"lifetime\" or a table { rolling_months = N }",
            );
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        self.check_keys(&section, &["rolling_months"]);
        let months = self.required(&section, "rolling_months")?;
        let months = self.integer_in(&months, 1..=ROLLING_MONTHS_MAX)?;
        Some(TierWindow::Rolling {
            months: u32::try_from(months).ok()?,
        })
    }

    fn downgrade(
        &mut self,
        entry: &Entry<'_>,
        window: Option<TierWindow>,
    ) -> Option<DowngradePolicy> {
        // Either a word ("never", "end_of_period") or { policy = ..., grace_days = N }.
        let (kind, grace_days) = if entry.item.is_str() {
            (self.choice(entry, DOWNGRADE_KINDS)?, None)
        } else if let Some(table) = entry.item.as_table_like() {
            let section = Section {
                table,
                anchor: entry.offset,
                path: entry.path.clone(),
            };
            self.check_keys(&section, &["policy", "grace_days"]);
            let kind = self
                .required(&section, "policy")
                .and_then(|policy| self.choice(&policy, DOWNGRADE_KINDS));
            let grace_days = section.entry("grace_days");
            let kind = kind?;
            if let Some(grace_days) = &grace_days
                && kind == DowngradeKind::Never
            {
                self.report(
                    grace_days.offset,
                    &grace_days.path,
                    format!("`{}` does not apply to policy \"never\"", grace_days.path),
                    Some("remove it, or use policy = \"end_of_period\"".to_owned()),
                );
                return None;
            }
            (kind, grace_days)
        } else {
            self.wrong_type(
                entry,
                "\"never\", \"end_of_period\" or a table { policy = ..., grace_days = N }",
            );
            return None;
        };
        match kind {
            DowngradeKind::Never => Some(DowngradePolicy::Never),
            DowngradeKind::EndOfPeriod => {
                if window == Some(TierWindow::Lifetime) {
                    self.report(
                        entry.offset,
                        &entry.path,
                        format!(
                            "`{}`: a lifetime window has no period to end, so \"end_of_period\" \
                             never applies",
                            entry.path
                        ),
                        Some(
                            "use downgrade = \"never\", or a calendar_year or rolling window"
                                .to_owned(),
                        ),
                    );
                    return None;
                }
                let grace_days = match grace_days {
                    Some(grace_days) => self.integer_in(&grace_days, 0..=GRACE_DAYS_MAX)?,
                    None => 0,
                };
                Some(DowngradePolicy::EndOfPeriod {
                    grace_days: u32::try_from(grace_days).ok()?,
                })
            }
        }
    }

    fn levels(
        &mut self,
        entry: &Entry<'_>,
        basis: Option<TierBasis>,
        currency: Option<&Currency>,
        default_locale: Option<Locale>,
    ) -> Option<Vec<Tier>> {
        // `[[tiers.levels]]` tables, or an inline list of inline tables.
        let mut tables: Vec<Section<'_>> = Vec::new();
        if let Some(array) = entry.item.as_array_of_tables() {
            for (index, table) in array.iter().enumerate() {
                tables.push(Section {
                    table,
                    anchor: table.span().map_or(entry.offset, |span| span.start),
                    path: format!("{}[{index}]", entry.path),
                });
            }
        } else if let Some(array) = entry.item.as_array() {
            for (index, value) in array.iter().enumerate() {
                let path = format!("{}[{index}]", entry.path);
                let offset = value.span().map_or(entry.offset, |span| span.start);
                match value.as_inline_table() {
                    Some(table) => tables.push(Section {
                        table,
                        anchor: offset,
                        path,
                    }),
                    None => {
                        self.report(
                            offset,
                            &path,
                            format!("`{path}` must be a table, found {}", describe_value(value)),
                            None,
                        );
                        return None;
                    }
                }
            }
        } else {
            self.wrong_type(entry, "a list of tables ([[tiers.levels]])");
            return None;
        }
        if tables.is_empty() {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` is empty", entry.path),
                None,
            );
            return None;
        }
        if tables.len() > TIER_LEVELS_MAX {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` has {} levels; at most {TIER_LEVELS_MAX} are allowed",
                    entry.path,
                    tables.len()
                ),
                None,
            );
            return None;
        }

        let mut levels = Vec::new();
        let mut ok = true;
        // The previous level's threshold, as written (major units for spend), for the ordering
        // check; `None` after a level whose threshold did not parse.
        let mut previous_threshold: Option<Decimal> = None;
        let mut seen_codes: Vec<(String, usize)> = Vec::new();
        for (index, table) in tables.iter().enumerate() {
            self.check_keys(
                table,
                &["code", "name", "threshold", "multiplier", "benefits"],
            );
            let code = self.required(table, "code").and_then(|code| {
                let text = self.tier_code(&code)?;
                if let Some((_, first_offset)) = seen_codes.iter().find(|(seen, _)| *seen == text) {
                    let (first_line, _) = line_column(self.source, *first_offset);
                    self.report(
                        code.offset,
                        &code.path,
                        format!("tier code \"{text}\" is used twice (first on line {first_line})"),
                        None,
                    );
                    return None;
                }
                seen_codes.push((text.clone(), code.offset));
                Some(text)
            });
            let names = self
                .required(table, "name")
                .and_then(|name| self.localized(&name, default_locale));
            let threshold_written = self.required(table, "threshold").and_then(|threshold| {
                let value = self.decimal_in(&threshold, Decimal::ZERO, Decimal::from(i64::MAX))?;
                if index == 0 && !value.is_zero() {
                    self.report(
                        threshold.offset,
                        &threshold.path,
                        format!(
                            "`{}` must be 0: every member starts in the first level",
                            threshold.path
                        ),
                        None,
                    );
                    return None;
                }
                if let Some(previous) = previous_threshold
                    && value <= previous
                {
                    self.report(
                        threshold.offset,
                        &threshold.path,
                        format!(
                            "`{}` is {value}, but it must be greater than the previous level's \
                             threshold ({previous})",
                            threshold.path
                        ),
                        Some("list levels from lowest to highest".to_owned()),
                    );
                    return None;
                }
                Some((value, threshold))
            });
            previous_threshold = threshold_written.as_ref().map(|(value, _)| *value);
            let threshold = threshold_written.and_then(|(value, threshold)| {
                self.threshold_in_basis_unit(&threshold, value, basis, currency)
            });
            let multiplier = match table.entry("multiplier") {
                Some(multiplier) => self
                    .decimal_in(&multiplier, Decimal::ZERO, Decimal::new(100, 0))
                    .and_then(|value| {
                        if value.is_zero() {
                            self.report(
                                multiplier.offset,
                                &multiplier.path,
                                format!("`{}` must be greater than 0", multiplier.path),
                                None,
                            );
                            return None;
                        }
                        Some(value)
                    }),
                None => Some(Decimal::ONE),
            };
            let benefits = match table.entry("benefits") {
                Some(benefits) => self.benefits(&benefits, BENEFITS_MAX, default_locale),
                None => Some(Vec::new()),
            };
            match (code, names, threshold, multiplier, benefits) {
                (Some(code), Some(names), Some(threshold), Some(multiplier), Some(benefits)) => {
                    levels.push(Tier {
                        code,
                        names,
                        threshold,
                        multiplier,
                        benefits,
                    });
                }
                _ => ok = false,
            }
        }
        ok.then_some(levels)
    }

    /// Converts a threshold as written to the unit the metric is counted in: whole points or
    /// visits, or spend in minor currency units (the file states money in major units).
    fn threshold_in_basis_unit(
        &mut self,
        entry: &Entry<'_>,
        value: Decimal,
        basis: Option<TierBasis>,
        currency: Option<&Currency>,
    ) -> Option<i64> {
        match basis {
            Some(TierBasis::Spend) => self.money_value(entry, value, currency?),
            // With an unknown basis the unit is unknown; that problem is reported already.
            None => None,
            Some(TierBasis::PointsEarned | TierBasis::Visits) => {
                if !value.fract().is_zero() {
                    self.report(
                        entry.offset,
                        &entry.path,
                        format!("`{}` must be a whole number, found {value}", entry.path),
                        None,
                    );
                    return None;
                }
                value.to_i64()
            }
        }
    }

    pub(super) fn tier_code(&mut self, entry: &Entry<'_>) -> Option<String> {
        let code = self.string(entry)?;
        let valid_characters = code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if code.is_empty() || code.len() > TIER_CODE_CHARS_MAX || !valid_characters {
            let suggestion: String = code
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let hint = if !suggestion.is_empty()
                && suggestion.len() <= TIER_CODE_CHARS_MAX
                && suggestion.chars().any(|c| c != '_')
            {
                format!("for example \"{suggestion}\"; the name shown to members goes in `name`")
            } else {
                "the name shown to members goes in `name`".to_owned()
            };
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be 1 to {TIER_CODE_CHARS_MAX} characters of a-z, 0-9 and _, \
                     found \"{code}\"",
                    entry.path
                ),
                Some(hint),
            );
            return None;
        }
        Some(code.to_owned())
    }

    fn cards(&mut self, section: &Section<'_>) -> Option<Cards> {
        self.check_keys(section, &["prefix"]);
        let Some(entry) = section.entry("prefix") else {
            return Some(Cards {
                prefix: "9".to_owned(),
            });
        };
        if let Some(number) = entry.item.as_integer() {
            // Leading zeros matter in a card number, and TOML integers lose them.
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be a string of digits, found a whole number",
                    entry.path
                ),
                Some(format!("put it in quotes: prefix = \"{number}\"")),
            );
            return None;
        }
        let prefix = self.string(&entry)?;
        let digits = prefix.chars().count();
        if !(1..=CARD_PREFIX_DIGITS_MAX).contains(&digits)
            || !prefix.chars().all(|c| c.is_ascii_digit())
        {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be 1 to {CARD_PREFIX_DIGITS_MAX} digits (0-9), found \"{prefix}\"",
                    entry.path
                ),
                None,
            );
            return None;
        }
        Some(Cards {
            prefix: prefix.to_owned(),
        })
    }
}

impl<'d> Section<'d> {
    /// The value under `key`, located.
    fn entry(&self, key: &str) -> Option<Entry<'d>> {
        let (key_data, item) = self.table.get_key_value(key)?;
        let offset = item
            .span()
            .or_else(|| key_data.span())
            .map_or(self.anchor, |span| span.start);
        Some(Entry {
            item,
            path: self.child_path(key),
            offset,
        })
    }

    fn key_offset(&self, key: &str) -> Option<usize> {
        self.table
            .key(key)
            .and_then(|key| key.span())
            .map(|span| span.start)
    }
}

/// The one tier level of a program that does not configure tiers: everyone is a member.
fn default_tiers() -> Tiers {
    Tiers {
        basis: TierBasis::PointsEarned,
        window: TierWindow::Lifetime,
        downgrade: DowngradePolicy::Never,
        levels: vec![Tier {
            code: "member".to_owned(),
            names: Localized {
                fa: Some("عضو".to_owned()),
                he: Some("חבר מועדון".to_owned()),
                en: Some("Member".to_owned()),
            },
            threshold: 0,
            multiplier: Decimal::ONE,
            benefits: Vec::new(),
        }],
        replaced: Vec::new(),
    }
}
