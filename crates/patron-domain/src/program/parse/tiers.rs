//! Reading `[tiers]`: the basis, the window and the downgrade policy, the levels with their
//! thresholds and multipliers, `replaced`, and each level's `benefits` (what members of the
//! level get).
//!
//! Each benefit is either a plain string (the benefit's name in the default language) or a
//! table `{ name = ..., kind = "free_shipping" }` whose `name` is a localized text and whose
//! optional `kind` is a stable code (`[a-z0-9_]`, 1-32 characters) a till or a shop can act on.
//! Every problem is reported at its element.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::values::describe_value;
use super::{
    BENEFITS_MAX, Entry, GRACE_DAYS_MAX, Parser, ROLLING_MONTHS_MAX, Section, TIER_CODE_CHARS_MAX,
    TIER_LEVELS_MAX,
};
use crate::program::diagnostic::line_column;
use crate::program::{
    Benefit, DowngradePolicy, Tier, TierBasis, TierReplacement, TierWindow, Tiers,
};
use crate::shared::{Currency, Locale, Localized};

const TIER_BASES: &[(&str, TierBasis)] = &[
    ("points_earned", TierBasis::PointsEarned),
    ("spend", TierBasis::Spend),
    ("visits", TierBasis::Visits),
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

impl Parser<'_> {
    pub(super) fn tiers(
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

    pub(super) fn window(&mut self, entry: &Entry<'_>) -> Option<TierWindow> {
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

    pub(super) fn downgrade(
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

    pub(super) fn levels(
        &mut self,
        entry: &Entry<'_>,
        basis: Option<TierBasis>,
        currency: Option<&Currency>,
        default_locale: Option<Locale>,
    ) -> Option<Vec<Tier>> {
        let tables = self.level_tables(entry)?;

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
            let code = self
                .required(table, "code")
                .and_then(|code| self.unique_tier_code(&code, &mut seen_codes));
            let names = self
                .required(table, "name")
                .and_then(|name| self.localized(&name, default_locale));
            let threshold_written = self
                .required(table, "threshold")
                .and_then(|threshold| self.level_threshold(threshold, index, previous_threshold));
            previous_threshold = threshold_written.as_ref().map(|(value, _)| *value);
            let threshold = threshold_written.and_then(|(value, threshold)| {
                self.threshold_in_basis_unit(&threshold, value, basis, currency)
            });
            let multiplier = self.level_multiplier(table);
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

    /// The level tables: `[[tiers.levels]]`, or an inline list of inline tables; at least one,
    /// at most [`TIER_LEVELS_MAX`].
    fn level_tables<'d>(&mut self, entry: &Entry<'d>) -> Option<Vec<Section<'d>>> {
        let mut tables: Vec<Section<'d>> = Vec::new();
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
        Some(tables)
    }

    /// A level's code, reported when an earlier level has it already.
    fn unique_tier_code(
        &mut self,
        code: &Entry<'_>,
        seen_codes: &mut Vec<(String, usize)>,
    ) -> Option<String> {
        let text = self.tier_code(code)?;
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
    }

    /// A level's threshold as written: 0 for the first level, above the previous one after it.
    fn level_threshold<'d>(
        &mut self,
        threshold: Entry<'d>,
        index: usize,
        previous_threshold: Option<Decimal>,
    ) -> Option<(Decimal, Entry<'d>)> {
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
    }

    /// A level's earning multiplier: above 0, at most 100; 1 when absent.
    fn level_multiplier(&mut self, table: &Section<'_>) -> Option<Decimal> {
        match table.entry("multiplier") {
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
        }
    }

    /// Converts a threshold as written to the unit the metric is counted in: whole points or
    /// visits, or spend in minor currency units (the file states money in major units).
    pub(super) fn threshold_in_basis_unit(
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

    /// `[tiers] replaced = { silver = "gold" }`: each removed tier (no level of this version)
    /// and the level its members move to (docs/PROGRAM.md, "Removing a tier").
    pub(super) fn tier_replacements(
        &mut self,
        entry: &Entry<'_>,
        levels: Option<&[Tier]>,
    ) -> Option<Vec<TierReplacement>> {
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type_hinted(
                entry,
                "a table of removed tier = tier its members move to",
                Some("for example replaced = { silver = \"gold\" }".to_owned()),
            );
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        let codes: Vec<&str> = levels
            .unwrap_or_default()
            .iter()
            .map(|level| level.code.as_str())
            .collect();
        let mut replaced = Vec::new();
        let mut ok = true;
        for (from, _) in table.iter() {
            let Some(value) = section.entry(from) else {
                continue;
            };
            let offset = section.key_offset(from).unwrap_or(value.offset);
            if codes.contains(&from) {
                self.report(
                    offset,
                    &value.path,
                    format!(
                        "`{}`: tier \"{from}\" is still a level; only a removed tier is replaced",
                        value.path
                    ),
                    Some(format!(
                        "remove \"{from}\" from `replaced`, or its [[tiers.levels]] table"
                    )),
                );
                ok = false;
                continue;
            }
            let Some(to) = self.tier_code(&value) else {
                ok = false;
                continue;
            };
            if levels.is_some() && !codes.contains(&to.as_str()) {
                self.report(
                    value.offset,
                    &value.path,
                    format!("`{}`: \"{to}\" is not a level of this program", value.path),
                    Some(format!("the levels are {}", codes.join(", "))),
                );
                ok = false;
                continue;
            }
            replaced.push(TierReplacement {
                from: from.to_owned(),
                to,
            });
        }
        ok.then_some(replaced)
    }

    /// The `benefits` list of a level, at most `items_max` elements.
    pub(super) fn benefits(
        &mut self,
        entry: &Entry<'_>,
        items_max: usize,
        default_locale: Option<Locale>,
    ) -> Option<Vec<Benefit>> {
        let items = self.list(entry)?;
        if items.len() > items_max {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` has {} benefits; at most {items_max} are allowed",
                    entry.path,
                    items.len()
                ),
                None,
            );
            return None;
        }
        let mut benefits = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let element = Entry {
                item,
                path: format!("{}[{index}]", entry.path),
                offset: item.span().map_or(entry.offset, |span| span.start),
            };
            match self.benefit(&element, default_locale) {
                Some(benefit) => benefits.push(benefit),
                None => ok = false,
            }
        }
        ok.then_some(benefits)
    }

    fn benefit(&mut self, entry: &Entry<'_>, default_locale: Option<Locale>) -> Option<Benefit> {
        if entry.item.is_str() {
            let names = self.localized(entry, default_locale)?;
            return Some(Benefit { kind: None, names });
        }
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type_hinted(
                entry,
                "a string or a table { name = ..., kind = ... }",
                Some(
                    "for example { name = { en = \"Free shipping\" }, kind = \"free_shipping\" }"
                        .to_owned(),
                ),
            );
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        self.check_keys(&section, &["name", "kind"]);
        let names = self
            .required(&section, "name")
            .and_then(|name| self.localized(&name, default_locale));
        let kind = match section.entry("kind") {
            Some(kind) => self.tier_code(&kind).map(Some),
            None => Some(None),
        };
        Some(Benefit {
            kind: kind?,
            names: names?,
        })
    }
}

/// The one tier level of a program that does not configure tiers: everyone is a member.
pub(super) fn default_tiers() -> Tiers {
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

#[cfg(test)]
mod tests {

    use crate::program::{Diagnostic, Program, parse_program};

    const HEAD: &str = "[club]\nname = { fa = \"باشگاه\", en = \"Club\" }\ndefault_locale = \"fa\"\n\
        locales = [\"fa\", \"en\"]\ncurrency = \"USD\"\ntime_zone = \"UTC\"\n\n\
        [earning]\npoints_per_unit = \"1\"\n\n[expiry]\npolicy = \"never\"\n\n\
        [returns]\npolicy = \"within_balance\"\n\n[exit]\npolicy = \"forfeit\"\n\n\
        [tiers]\nbasis = \"visits\"\nwindow = \"calendar_year\"\n\n\
        [[tiers.levels]]\ncode = \"base\"\nname = \"پایه\"\nthreshold = 0\n\n\
        [[tiers.levels]]\ncode = \"gold\"\nname = \"طلایی\"\nthreshold = 10\n";

    fn parse(benefits: &str) -> Result<Program, Vec<Diagnostic>> {
        parse_program(&format!("{HEAD}benefits = {benefits}\n"))
    }

    #[test]
    fn benefits_are_plain_names_or_named_kinds() {
        let program = parse(
            "[\"ارسال رایگان\", { name = { fa = \"صندوق ویژه\", en = \"Priority till\" }, \
             kind = \"priority_service\" }, { name = \"هدیهٔ تولد\", kind = \"birthday_gift\" }]",
        )
        .unwrap();
        let benefits = &program.tiers.levels[1].benefits;
        assert_eq!(benefits.len(), 3);
        assert_eq!(benefits[0].kind, None);
        assert_eq!(benefits[0].names.fa.as_deref(), Some("ارسال رایگان"));
        assert_eq!(benefits[1].kind.as_deref(), Some("priority_service"));
        assert_eq!(benefits[1].names.en.as_deref(), Some("Priority till"));
        assert_eq!(benefits[2].kind.as_deref(), Some("birthday_gift"));
        assert!(program.tiers.levels[0].benefits.is_empty());
    }

    #[test]
    fn bad_benefits_are_reported_where_they_are() {
        let errors = parse(
            "[42, { name = { en = \"No Persian\" } }, { name = \"x\", kind = \"Free Shipping\" }, \
             { kind = \"gift\" }, { name = \"y\", colour = \"red\" }]",
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "tiers.levels[1].benefits[0]",
                "tiers.levels[1].benefits[1].name",
                "tiers.levels[1].benefits[2].kind",
                "tiers.levels[1].benefits[3].name",
                "tiers.levels[1].benefits[4].colour",
            ],
            "{errors:#?}"
        );
        assert!(
            errors[1].message.contains("default language"),
            "{errors:#?}"
        );
        assert!(errors[2].hint.as_deref().unwrap().contains("free_shipping"));
        let line = HEAD.lines().count() + 1;
        assert!(errors.iter().all(|error| error.line == line), "{errors:#?}");
    }

    #[test]
    fn at_most_fifty_benefits() {
        let many = vec!["\"x\""; 51].join(", ");
        let errors = parse(&format!("[{many}]")).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "tiers.levels[1].benefits");
    }
}
