//! Reading `[targets]` (what the club aims for on each success metric) and `[analytics]` (the
//! activity period of churn and active members, and the lifetime-value settings).
//!
//! Every key is optional; a metric without a target is reported without one. The direction
//! (higher or lower is better) belongs to the metric, not to the file: see
//! [`crate::metrics::Metric::higher_is_better`].

use rust_decimal::Decimal;

use super::{Parser, Section};
use crate::program::{ActivityPeriod, AnalyticsSettings, EnrollmentTargets, Targets};

const TARGET_KEYS: &[&str] = &[
    "identified_revenue_pct",
    "redemption_pct",
    "churn_pct",
    "active_pct",
    "enrollments",
    "liability",
    "breakage_pct",
];
const ENROLLMENT_KEYS: &[&str] = &["day", "week", "month"];
const ANALYTICS_KEYS: &[&str] = &[
    "activity_period",
    "clv_horizon_weeks",
    "clv_monthly_discount_pct",
    "clv_margin_pct",
];
const ACTIVITY_PERIODS: &[(&str, ActivityPeriod)] = &[
    ("day", ActivityPeriod::Day),
    ("week", ActivityPeriod::Week),
    ("month", ActivityPeriod::Month),
    ("quarter", ActivityPeriod::Quarter),
    ("year", ActivityPeriod::Year),
];
/// Enrollment targets are whole numbers up to this.
const ENROLLMENTS_MAX: i64 = 1_000_000_000;
/// Liability targets are money up to this (major units).
const LIABILITY_MAX: i64 = 1_000_000_000_000;
/// The longest CLV horizon: ten years of weeks.
pub(super) const CLV_HORIZON_WEEKS_MAX: i64 = 520;
/// The highest monthly discount rate (percent).
const DISCOUNT_PCT_MAX: i64 = 100;

impl Parser<'_> {
    pub(super) fn targets(&mut self, section: &Section<'_>) -> Option<Targets> {
        self.check_keys(section, TARGET_KEYS);
        let mut ok = true;
        let mut percent = |parser: &mut Self, key: &str| -> Option<Decimal> {
            let entry = section.entry(key)?;
            let value = parser.decimal_in(&entry, Decimal::ZERO, Decimal::ONE_HUNDRED);
            ok &= value.is_some();
            value
        };
        let identified_revenue_pct = percent(self, "identified_revenue_pct");
        let redemption_pct = percent(self, "redemption_pct");
        let churn_pct = percent(self, "churn_pct");
        let active_pct = percent(self, "active_pct");
        let breakage_pct = percent(self, "breakage_pct");
        let liability = match section.entry("liability") {
            Some(entry) => {
                let value = self.decimal_in(&entry, Decimal::ZERO, Decimal::from(LIABILITY_MAX));
                ok &= value.is_some();
                value
            }
            None => None,
        };
        let enrollments = match section.entry("enrollments") {
            Some(entry) => match entry.item.as_table_like() {
                Some(table) => {
                    let table = Section {
                        table,
                        anchor: entry.offset,
                        path: entry.path.clone(),
                    };
                    self.check_keys(&table, ENROLLMENT_KEYS);
                    let mut count = |parser: &mut Self, key: &str| -> Option<i64> {
                        let entry = table.entry(key)?;
                        let value = parser.integer_in(&entry, 0..=ENROLLMENTS_MAX);
                        ok &= value.is_some();
                        value
                    };
                    EnrollmentTargets {
                        day: count(self, "day"),
                        week: count(self, "week"),
                        month: count(self, "month"),
                    }
                }
                None => {
                    self.wrong_type_hinted(
                        &entry,
                        "a table of targets per period",
                        Some("write enrollments = { day = 5, week = 30, month = 120 }".to_owned()),
                    );
                    ok = false;
                    EnrollmentTargets::default()
                }
            },
            None => EnrollmentTargets::default(),
        };
        ok.then_some(Targets {
            identified_revenue_pct,
            redemption_pct,
            churn_pct,
            active_pct,
            enrollments,
            liability,
            breakage_pct,
        })
    }

    pub(super) fn analytics(&mut self, section: &Section<'_>) -> Option<AnalyticsSettings> {
        self.check_keys(section, ANALYTICS_KEYS);
        let defaults = AnalyticsSettings::default();
        let activity_period = match section.entry("activity_period") {
            Some(entry) => self.choice(&entry, ACTIVITY_PERIODS),
            None => Some(defaults.activity_period),
        };
        let clv_horizon_weeks = match section.entry("clv_horizon_weeks") {
            Some(entry) => self
                .integer_in(&entry, 1..=CLV_HORIZON_WEEKS_MAX)
                .and_then(|weeks| u32::try_from(weeks).ok()),
            None => Some(defaults.clv_horizon_weeks),
        };
        let clv_monthly_discount_pct = match section.entry("clv_monthly_discount_pct") {
            Some(entry) => self.decimal_in(&entry, Decimal::ZERO, Decimal::from(DISCOUNT_PCT_MAX)),
            None => Some(defaults.clv_monthly_discount_pct),
        };
        let clv_margin_pct = match section.entry("clv_margin_pct") {
            Some(entry) => self.decimal_in(&entry, Decimal::ZERO, Decimal::ONE_HUNDRED),
            None => Some(defaults.clv_margin_pct),
        };
        Some(AnalyticsSettings {
            activity_period: activity_period?,
            clv_horizon_weeks: clv_horizon_weeks?,
            clv_monthly_discount_pct: clv_monthly_discount_pct?,
            clv_margin_pct: clv_margin_pct?,
        })
    }
}

#[cfg(test)]
mod tests {

    use rust_decimal::Decimal;

    use crate::program::{ActivityPeriod, AnalyticsSettings, parse_program};

    const BASE: &str = "[club]\nname = \"C\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\ntime_zone = \"UTC\"\n\n\
        [earning]\npoints_per_unit = \"1\"\n\n[expiry]\npolicy = \"never\"\n\n\
        [returns]\npolicy = \"within_balance\"\n\n[exit]\npolicy = \"forfeit\"\n";

    #[test]
    fn a_program_without_the_sections_has_no_targets_and_the_default_settings() {
        let program = parse_program(BASE).unwrap();
        assert_eq!(program.targets, Default::default());
        assert_eq!(program.analytics, AnalyticsSettings::default());
        assert_eq!(program.analytics.activity_period, ActivityPeriod::Month);
        assert_eq!(program.analytics.clv_horizon_weeks, 52);
    }

    #[test]
    fn targets_and_settings_are_read() {
        let source = format!(
            "{BASE}\n[targets]\nidentified_revenue_pct = 80\nredemption_pct = \"12.5\"\nchurn_pct = 10\n\
             active_pct = 35\nenrollments = {{ week = 30, month = 120 }}\nliability = \"25000\"\nbreakage_pct = 20\n\n\
             [analytics]\nactivity_period = \"quarter\"\nclv_horizon_weeks = 26\nclv_monthly_discount_pct = 1\nclv_margin_pct = 30\n"
        );
        let program = parse_program(&source).unwrap();
        let t = &program.targets;
        assert_eq!(t.identified_revenue_pct, Some(Decimal::from(80)));
        assert_eq!(t.redemption_pct, Some(Decimal::new(125, 1)));
        assert_eq!(t.churn_pct, Some(Decimal::from(10)));
        assert_eq!(t.active_pct, Some(Decimal::from(35)));
        assert_eq!(t.enrollments.day, None);
        assert_eq!(t.enrollments.week, Some(30));
        assert_eq!(t.enrollments.month, Some(120));
        assert_eq!(t.liability, Some(Decimal::from(25_000)));
        assert_eq!(t.breakage_pct, Some(Decimal::from(20)));
        let a = &program.analytics;
        assert_eq!(a.activity_period, ActivityPeriod::Quarter);
        assert_eq!(a.clv_horizon_weeks, 26);
        assert_eq!(a.clv_monthly_discount_pct, Decimal::ONE);
        assert_eq!(a.clv_margin_pct, Decimal::from(30));
    }

    #[test]
    fn every_bad_value_is_reported_at_its_place() {
        let source = format!(
            "{BASE}\n[targets]\nchurn_pct = 120\nredemption_pct = -1\nenrollments = {{ weak = 3 }}\nliability = \"x\"\nnps = 3\n\n\
             [analytics]\nactivity_period = \"fortnight\"\nclv_horizon_weeks = 0\n"
        );
        let diagnostics = parse_program(&source).unwrap_err();
        let paths: Vec<&str> = diagnostics.iter().map(|d| d.path.as_str()).collect();
        for expected in [
            "targets.churn_pct",
            "targets.redemption_pct",
            "targets.enrollments.weak",
            "targets.liability",
            "targets.nps",
            "analytics.activity_period",
            "analytics.clv_horizon_weeks",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} not in {diagnostics:#?}"
            );
        }
        let churn = diagnostics
            .iter()
            .find(|d| d.path == "targets.churn_pct")
            .unwrap();
        assert_eq!(churn.line, 20, "{churn:?}");
        assert!(churn.message.contains("at most 100"), "{churn:?}");
    }

    #[test]
    fn enrollments_must_be_a_table() {
        let source = format!("{BASE}\n[targets]\nenrollments = 30\n");
        let diagnostics = parse_program(&source).unwrap_err();
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert_eq!(diagnostics[0].path, "targets.enrollments");
        assert!(diagnostics[0].hint.as_deref().unwrap().contains("month"));
    }
}
