//! The club's loyalty program as configuration.
//!
//! A club (tenant) describes its whole program in one TOML file: names and languages, currency
//! and time zone, how purchases earn points, when points expire, what a return does to points,
//! tiers, and card numbers. This module holds the validated model ([`Program`] and its parts) and
//! [`parse_program`], which turns the file into a model or into *every* problem it can find, each
//! with a line, a column and a hint a club manager can act on. `docs/PROGRAM.md` is the reference
//! for the file format; keep it in step with `parse.rs`.
//!
//! The model is plain data: the arithmetic that uses it lives in [`crate::earning`],
//! [`crate::expiry`] and [`crate::tier`].

mod diagnostic;
pub mod history;
mod parse;

#[cfg(test)]
mod tests;

use jiff::tz::TimeZone;
use rust_decimal::Decimal;

use crate::calendar::{Calendar, CalendarSystem};
use crate::rules::{EarningRule, TriggerKind};

pub use crate::expiry::{ExpiryPolicy, ExpiryRounding, ExpiryUnit, Pending};
pub use crate::shared::{Currency, Locale, Localized, Rounding};
pub use diagnostic::Diagnostic;
pub use parse::parse_program;

/// How purchases earn points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earning {
    /// Points per one *major* currency unit, e.g. 1 point per 10,000 IRR is `0.0001`.
    pub points_per_unit: Decimal,
    pub rounding: Rounding,
    /// Purchases whose total is below this (in minor units) earn nothing.
    pub minimum_purchase_minor: i64,
    /// Product categories that earn nothing (compared exactly with what the shop sends).
    pub excluded_categories: Vec<String>,
    /// Product SKUs that earn nothing (compared exactly with what the shop sends).
    pub excluded_skus: Vec<String>,
}

/// What a return (refund) may do to points already earned on the purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnPolicy {
    /// Only points still pending are taken back; posted points stay with the member.
    OnlyPending,
    /// Points are taken back as far as the member's balance allows.
    WithinBalance,
    /// Points are taken back in full, even if the balance goes negative (a debt that later
    /// earnings pay first).
    Unlimited,
}

/// What happens to a member's points when they leave the club.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitPolicy {
    /// The points are expired at once.
    Forfeit,
    /// The points stay on the closed account until they expire under the expiry policy (so the
    /// member can come back to them, or a data-export shows them).
    KeepUntilExpiry,
}

/// What a tier's threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierBasis {
    /// Points earned in the window (before redemptions; clawbacks are subtracted).
    PointsEarned,
    /// Money spent in the window, in minor units.
    Spend,
    /// Number of purchases in the window.
    Visits,
}

/// The period over which the tier metric is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierWindow {
    /// The last N calendar months up to now.
    Rolling { months: u32 },
    /// The current calendar year in the program's time zone.
    CalendarYear,
    /// Since the member joined.
    Lifetime,
}

/// When a member who no longer qualifies for their tier moves down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DowngradePolicy {
    /// Members never move down.
    Never,
    /// At the end of the qualification period, plus `grace_days`.
    EndOfPeriod { grace_days: u32 },
}

/// One tier level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// Stable identifier, `[a-z0-9_]+`, unique within the program.
    pub code: String,
    pub names: Localized,
    /// The metric a member needs to reach this level, in the unit of [`Tiers::basis`]: points,
    /// visits, or spend in *minor* currency units (the file states spend in major units; the
    /// parser converts). The first level's threshold is 0.
    pub threshold: i64,
    /// Earning multiplier for members of this tier (1 = no bonus).
    pub multiplier: Decimal,
    /// What members of this level get, in the order the club listed them.
    pub benefits: Vec<Benefit>,
}

/// One benefit of a tier level: a name members read, and optionally a stable kind a system
/// can act on (`free_shipping`, `priority_service`, `birthday_gift`, or a code of the club's
/// own, `[a-z0-9_]`, 1-32 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Benefit {
    pub kind: Option<String>,
    pub names: Localized,
}

/// The tier ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    pub basis: TierBasis,
    pub window: TierWindow,
    pub downgrade: DowngradePolicy,
    /// Ordered by strictly increasing threshold; at least one level, the first at threshold 0.
    pub levels: Vec<Tier>,
    /// `replaced`: where the members of a tier removed from the ladder go (docs/PROGRAM.md,
    /// "Removing a tier"). Each `from` is no level of this version; each `to` is one.
    pub replaced: Vec<TierReplacement>,
}

/// A removed tier and the level of this version its members move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierReplacement {
    pub from: String,
    pub to: String,
}

/// Membership card numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cards {
    /// Digits every card number starts with (1-6 digits).
    pub prefix: String,
}

/// A club's whole loyalty program, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The club's name; has a text in `default_locale`.
    pub names: Localized,
    pub default_locale: Locale,
    /// The languages the club speaks; contains `default_locale`, no duplicates.
    pub locales: Vec<Locale>,
    /// What the club calls its points.
    pub points_name: Localized,
    pub currency: Currency,
    /// Where national phone numbers are read and whose example numbers errors show (`[club]
    /// country`; by default the country that issues the currency, if one does).
    pub country: Option<crate::phone::Country>,
    /// Canonical IANA time zone name, e.g. `"Asia/Tehran"`.
    pub time_zone: String,
    /// The calendar months and years are counted in (expiry, tier years, rule limits,
    /// birthdays, monthly reports): see [`crate::calendar`].
    pub calendar: CalendarSystem,
    pub earning: Earning,
    pub pending: Pending,
    pub expiry: ExpiryPolicy,
    pub returns: ReturnPolicy,
    pub exit: ExitPolicy,
    pub tiers: Tiers,
    /// What one point costs the club, in major currency units (for liability reporting).
    pub cost_per_point: Decimal,
    pub cards: Cards,
    /// Earning rules (`[[rules]]`), compiled, in evaluation order: priority (highest first),
    /// then id. Empty when the file has none: purchases then earn the base rate only.
    pub rules: Vec<EarningRule>,
    /// The rewards catalog (`[[rewards]]`), in file order. Empty when the file has none.
    pub rewards: Vec<crate::rewards::Reward>,
    /// The RFV grid's segment codes and names (`[rfv]`; the default grid and English names
    /// when absent).
    pub rfv: crate::segments::RfvSegments,
    /// Rule segments (`[[segments]]`), in file order.
    pub segments: Vec<crate::segments::RuleSegment>,
    /// Targets of the success metrics (`[targets]`); none when the file has no section.
    pub targets: Targets,
    /// The activity period and lifetime-value settings (`[analytics]`).
    pub analytics: AnalyticsSettings,
    /// What one request may carry (`[limits]`; defaults for the currency).
    pub limits: crate::limits::Limits,
}

/// What the club aims for on each success metric (`[targets]`); `None`: no target. Percentages
/// are 0-100; whether higher or lower is better is the metric's own
/// ([`crate::metrics::Metric::higher_is_better`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    pub identified_revenue_pct: Option<Decimal>,
    pub redemption_pct: Option<Decimal>,
    pub churn_pct: Option<Decimal>,
    pub active_pct: Option<Decimal>,
    /// New members per reporting period.
    pub enrollments: EnrollmentTargets,
    /// Points liability at a period's end, in major currency units.
    pub liability: Option<Decimal>,
    pub breakage_pct: Option<Decimal>,
}

/// Enrollment targets per reporting period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EnrollmentTargets {
    pub day: Option<i64>,
    pub week: Option<i64>,
    pub month: Option<i64>,
}

/// The window over which a member counts as active (a purchase in it), for the active-members
/// and churn metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityPeriod {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// `[analytics]`: metric and lifetime-value settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsSettings {
    /// Churn and active members look at purchases in this window (ending at each reporting
    /// period's end). Default: a month.
    pub activity_period: ActivityPeriod,
    /// Weeks ahead the CLV job predicts purchases and value for. Default 52.
    pub clv_horizon_weeks: u32,
    /// Discount rate per month (percent) applied to future purchases in CLV. Default 0.
    pub clv_monthly_discount_pct: Decimal,
    /// The share of revenue that is margin (percent): CLV = discounted expected revenue ×
    /// margin. Default 100 (CLV in revenue).
    pub clv_margin_pct: Decimal,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            activity_period: ActivityPeriod::Month,
            clv_horizon_weeks: 52,
            clv_monthly_discount_pct: Decimal::ZERO,
            clv_margin_pct: Decimal::ONE_HUNDRED,
        }
    }
}

impl Program {
    /// The program's time zone. The name was validated by [`parse_program`]; a hand-built
    /// program with an invalid name gets UTC rather than a panic.
    pub fn tz(&self) -> TimeZone {
        TimeZone::get(&self.time_zone).unwrap_or(TimeZone::UTC)
    }

    /// The program's time zone with its calendar, for everything counted in days, months and
    /// years.
    pub fn calendar(&self) -> Calendar {
        Calendar::new(self.tz(), self.calendar)
    }

    /// The reward with this id.
    pub fn reward(&self, id: &str) -> Option<&crate::rewards::Reward> {
        self.rewards.iter().find(|reward| reward.id == id)
    }

    /// The rules evaluated on this kind of occasion, in evaluation order: what the engine
    /// needs usage counts for.
    pub fn rules_for(&self, trigger: TriggerKind) -> impl Iterator<Item = &EarningRule> {
        self.rules
            .iter()
            .filter(move |rule| rule.kind.trigger() == trigger)
    }

    /// The tier level with this code.
    pub fn tier(&self, code: &str) -> Option<&Tier> {
        self.tiers.levels.iter().find(|tier| tier.code == code)
    }
}
