//! Tier qualification: which level a metric reaches, how far the next level is, and whether a
//! member moves.
//!
//! The metric (points earned, spend in minor units, or visits) is counted by the caller over the
//! window given by [`window_start`]. Upgrades apply at once; a lower qualifying tier is only a
//! *candidate* for downgrade, which the caller applies at the end of the period
//! ([`window_end`]) plus the program's grace days, so a member is never demoted mid-period by a
//! refund or a quiet month.

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::calendar::{Calendar, start_of_day};
use crate::program::{Tier, TierWindow, Tiers};
use crate::shared::Localized;

mod policy;

pub use policy::{Counted, Floor, Holding, MetricSpan, TierReview, review, spans, target};

/// Where a member stands on the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierProgress {
    /// The member's current tier code.
    pub current: String,
    /// The level above the current one, if any.
    pub next: Option<String>,
    pub metric: i64,
    /// How much more metric reaches `next`; 0 when there is no next level (or it is reached).
    pub needed_for_next: i64,
}

/// What should happen to a member's tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierDecision {
    Stay,
    /// Move up to this tier now.
    Upgrade(String),
    /// The metric only qualifies for this lower tier; apply the downgrade policy.
    DowngradeCandidate(String),
}

/// The start of the qualification window containing `now`: `now` minus N civil months for a
/// rolling window, the first day of `now`'s year (1 January; 1 Farvardin in the Persian
/// calendar) at 00:00 local time for a calendar year, and `None` (no lower bound) for a
/// lifetime window.
pub fn window_start(window: &TierWindow, now: Timestamp, cal: &Calendar) -> Option<Timestamp> {
    match *window {
        TierWindow::Rolling { months } => {
            let start = cal.add_months_at(now, -i64::from(months));
            // Before jiff's earliest date (year -9999) everything is in the window.
            Some(start.unwrap_or(Timestamp::MIN))
        }
        // `None` only at the very edge of jiff's range, where "no lower bound" is right.
        TierWindow::CalendarYear => {
            start_of_day(cal.system.first_of_year(cal.date_of(now))?, &cal.tz)
        }
        TierWindow::Lifetime => None,
    }
}

/// The end of the qualification period containing `now`, when downgrades are applied: the
/// start of the next year of the club's calendar for a calendar year. `None` for a rolling
/// window (it slides: the caller re-checks continuously) and for a lifetime window (it never
/// ends).
pub fn window_end(window: &TierWindow, now: Timestamp, cal: &Calendar) -> Option<Timestamp> {
    match *window {
        TierWindow::CalendarYear => {
            let first = cal.system.first_of_year(cal.date_of(now))?;
            // `None` past year 9999: the period does not end within jiff's range.
            start_of_day(cal.system.add_months(first, 12)?, &cal.tz)
        }
        TierWindow::Rolling { .. } | TierWindow::Lifetime => None,
    }
}

/// A neutral level for a ladder with no levels, which only a hand-built (unvalidated) `Tiers`
/// can have; it keeps [`qualifying_tier`] total without panicking.
static NO_TIER: Tier = Tier {
    code: String::new(),
    names: Localized {
        fa: None,
        he: None,
        en: None,
    },
    threshold: 0,
    multiplier: Decimal::ONE,
    benefits: Vec::new(),
};

/// The highest level whose threshold the metric reaches. A validated ladder starts at
/// threshold 0, so a metric of 0 or less gets the first level.
pub fn qualifying_tier(tiers: &Tiers, metric: i64) -> &Tier {
    tiers
        .levels
        .iter()
        .rev()
        .find(|tier| tier.threshold <= metric)
        .or(tiers.levels.first())
        .unwrap_or(&NO_TIER)
}

/// Progress from the current tier to the one above it. If `current_code` is not on the ladder
/// (say, a level the club removed), progress is measured from the tier the metric qualifies for.
pub fn progress(tiers: &Tiers, current_code: &str, metric: i64) -> TierProgress {
    let index = level_index(tiers, current_code)
        .or_else(|| level_index(tiers, &qualifying_tier(tiers, metric).code));
    let current = index
        .and_then(|index| tiers.levels.get(index))
        .map_or_else(|| current_code.to_owned(), |tier| tier.code.clone());
    let next = index.and_then(|index| tiers.levels.get(index + 1));
    TierProgress {
        current,
        next: next.map(|tier| tier.code.clone()),
        metric,
        needed_for_next: next.map_or(0, |tier| tier.threshold.saturating_sub(metric).max(0)),
    }
}

/// Whether a member with `metric` should move from `current_code`. A member whose current tier
/// is not on the ladder (a level the club removed) is moved to the qualifying tier at once,
/// reported as an upgrade: there is no period to wait for.
pub fn decide(tiers: &Tiers, current_code: &str, metric: i64) -> TierDecision {
    let qualifying = qualifying_tier(tiers, metric);
    let Some(current) = level_index(tiers, current_code) else {
        return TierDecision::Upgrade(qualifying.code.clone());
    };
    match level_index(tiers, &qualifying.code) {
        Some(target) if target > current => TierDecision::Upgrade(qualifying.code.clone()),
        Some(target) if target < current => {
            TierDecision::DowngradeCandidate(qualifying.code.clone())
        }
        _ => TierDecision::Stay,
    }
}

fn level_index(tiers: &Tiers, code: &str) -> Option<usize> {
    tiers.levels.iter().position(|tier| tier.code == code)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::program::{DowngradePolicy, TierBasis};
    use jiff::civil::DateTime;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    fn level(code: &str, threshold: i64) -> Tier {
        Tier {
            code: code.into(),
            names: Localized {
                en: Some(code.into()),
                ..Localized::default()
            },
            threshold,
            multiplier: Decimal::ONE,
            benefits: Vec::new(),
        }
    }

    fn ladder() -> Tiers {
        Tiers {
            basis: TierBasis::Visits,
            window: TierWindow::CalendarYear,
            downgrade: DowngradePolicy::EndOfPeriod { grace_days: 30 },
            levels: vec![level("bronze", 0), level("silver", 10), level("gold", 25)],
            replaced: Vec::new(),
        }
    }

    fn at(local: &str, zone: &str) -> Timestamp {
        let tz = TimeZone::get(zone).unwrap();
        local
            .parse::<DateTime>()
            .unwrap()
            .to_zoned(tz)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn qualifying_tier_is_the_highest_threshold_reached() {
        let tiers = ladder();
        let code = |metric| qualifying_tier(&tiers, metric).code.clone();
        assert_eq!(code(-5), "bronze");
        assert_eq!(code(0), "bronze");
        assert_eq!(code(9), "bronze");
        assert_eq!(code(10), "silver");
        assert_eq!(code(24), "silver");
        assert_eq!(code(25), "gold");
        assert_eq!(code(i64::MAX), "gold");
    }

    #[test]
    fn an_empty_ladder_yields_a_neutral_tier_instead_of_panicking() {
        let tiers = Tiers {
            levels: Vec::new(),
            replaced: Vec::new(),
            ..ladder()
        };
        assert_eq!(qualifying_tier(&tiers, 100).code, "");
        assert_eq!(
            decide(&tiers, "gold", 100),
            TierDecision::Upgrade(String::new())
        );
    }

    #[test]
    fn progress_counts_what_is_missing_for_the_next_level() {
        let tiers = ladder();
        let progress_of = |code, metric| progress(&tiers, code, metric);
        assert_eq!(
            progress_of("bronze", 4),
            TierProgress {
                current: "bronze".into(),
                next: Some("silver".into()),
                metric: 4,
                needed_for_next: 6
            }
        );
        // A member kept in silver during the period with a lower metric still needs 25 for gold.
        assert_eq!(progress_of("silver", 3).needed_for_next, 22);
        assert_eq!(
            progress_of("gold", 40),
            TierProgress {
                current: "gold".into(),
                next: None,
                metric: 40,
                needed_for_next: 0
            }
        );
        // Already past the next threshold (an upgrade not yet applied): nothing more needed.
        assert_eq!(progress_of("bronze", 30).needed_for_next, 0);
        // An unknown current tier is measured from the qualifying tier.
        let removed = progress_of("platinum", 12);
        assert_eq!(
            (removed.current.as_str(), removed.next.as_deref()),
            ("silver", Some("gold"))
        );
    }

    #[test]
    fn upgrades_are_immediate_and_downgrades_are_only_candidates() {
        let tiers = ladder();
        assert_eq!(decide(&tiers, "bronze", 5), TierDecision::Stay);
        assert_eq!(
            decide(&tiers, "bronze", 10),
            TierDecision::Upgrade("silver".into())
        );
        assert_eq!(
            decide(&tiers, "bronze", 30),
            TierDecision::Upgrade("gold".into())
        );
        assert_eq!(decide(&tiers, "gold", 30), TierDecision::Stay);
        assert_eq!(
            decide(&tiers, "gold", 12),
            TierDecision::DowngradeCandidate("silver".into())
        );
        assert_eq!(
            decide(&tiers, "gold", 0),
            TierDecision::DowngradeCandidate("bronze".into())
        );
        assert_eq!(
            decide(&tiers, "removed", 12),
            TierDecision::Upgrade("silver".into())
        );
    }

    #[test]
    fn calendar_year_window_runs_from_local_new_year_to_the_next() {
        let zone = Calendar::gregorian(TimeZone::get("America/New_York").unwrap());
        let now = at("2024-06-15T10:00", "America/New_York");
        let window = TierWindow::CalendarYear;
        assert_eq!(
            window_start(&window, now, &zone),
            Some(at("2024-01-01T00:00", "America/New_York"))
        );
        assert_eq!(
            window_end(&window, now, &zone),
            Some(at("2025-01-01T00:00", "America/New_York"))
        );
        // At 23:30 on 31 December in New York it is already 1 January in UTC: still 2024 here.
        let late = at("2024-12-31T23:30", "America/New_York");
        assert_eq!(
            window_start(&window, late, &zone),
            Some(at("2024-01-01T00:00", "America/New_York"))
        );
    }

    #[test]
    fn a_persian_calendar_year_runs_from_nowruz_to_nowruz() {
        let zone = Calendar::new(
            TimeZone::get("Asia/Tehran").unwrap(),
            crate::calendar::CalendarSystem::Persian,
        );
        // 15 June 2025 is in 1404, which began on 21 March 2025 (1 Farvardin).
        let now = at("2025-06-15T10:00", "Asia/Tehran");
        let window = TierWindow::CalendarYear;
        assert_eq!(
            window_start(&window, now, &zone),
            Some(at("2025-03-21T00:00", "Asia/Tehran"))
        );
        assert_eq!(
            window_end(&window, now, &zone),
            Some(at("2026-03-21T00:00", "Asia/Tehran"))
        );
        // 10 March 2025 is still 1403, which began on 20 March 2024.
        let before_nowruz = at("2025-03-10T10:00", "Asia/Tehran");
        assert_eq!(
            window_start(&window, before_nowruz, &zone),
            Some(at("2024-03-20T00:00", "Asia/Tehran"))
        );
        // A rolling month goes back a Persian month: 10 Ordibehesht − 1 = 10 Farvardin.
        let rolling = TierWindow::Rolling { months: 1 };
        assert_eq!(
            window_start(&rolling, at("2025-04-30T12:00", "Asia/Tehran"), &zone),
            Some(at("2025-03-30T12:00", "Asia/Tehran"))
        );
    }

    #[test]
    fn rolling_window_goes_back_calendar_months_and_has_no_end() {
        let zone = Calendar::gregorian(TimeZone::get("Asia/Tehran").unwrap());
        let now = at("2025-03-31T12:00", "Asia/Tehran");
        let window = TierWindow::Rolling { months: 1 };
        assert_eq!(
            window_start(&window, now, &zone),
            Some(at("2025-02-28T12:00", "Asia/Tehran"))
        );
        assert_eq!(window_end(&window, now, &zone), None);
        let year = TierWindow::Rolling { months: 12 };
        assert_eq!(
            window_start(&year, now, &zone),
            Some(at("2024-03-31T12:00", "Asia/Tehran"))
        );
    }

    #[test]
    fn lifetime_window_has_no_bounds() {
        let now = at("2025-03-31T12:00", "UTC");
        assert_eq!(
            window_start(
                &TierWindow::Lifetime,
                now,
                &Calendar::gregorian(TimeZone::UTC)
            ),
            None
        );
        assert_eq!(
            window_end(
                &TierWindow::Lifetime,
                now,
                &Calendar::gregorian(TimeZone::UTC)
            ),
            None
        );
    }

    #[test]
    fn windows_at_the_edges_of_time_do_not_panic() {
        let rolling = TierWindow::Rolling { months: 120 };
        assert_eq!(
            window_start(
                &rolling,
                Timestamp::MIN,
                &Calendar::gregorian(TimeZone::UTC)
            ),
            Some(Timestamp::MIN)
        );
        assert_eq!(
            window_end(
                &TierWindow::CalendarYear,
                Timestamp::MAX,
                &Calendar::gregorian(TimeZone::UTC)
            ),
            None
        );
    }

    proptest! {
        #[test]
        fn decisions_agree_with_the_qualifying_tier(metric in -10_i64..60, current in 0_usize..3) {
            let tiers = ladder();
            let current_code = tiers.levels[current].code.clone();
            let qualifying = qualifying_tier(&tiers, metric);
            prop_assert!(qualifying.threshold <= metric.max(0));
            let target = level_index(&tiers, &qualifying.code).unwrap();
            let expected = match target.cmp(&current) {
                std::cmp::Ordering::Greater => TierDecision::Upgrade(qualifying.code.clone()),
                std::cmp::Ordering::Less => TierDecision::DowngradeCandidate(qualifying.code.clone()),
                std::cmp::Ordering::Equal => TierDecision::Stay,
            };
            prop_assert_eq!(decide(&tiers, &current_code, metric), expected);
            let progress = progress(&tiers, &current_code, metric);
            prop_assert!(progress.needed_for_next >= 0);
        }

        #[test]
        fn the_calendar_window_contains_now(
            seconds in 0_i64..4_102_444_800,
            system in prop::sample::select(crate::calendar::CalendarSystem::ALL.to_vec()),
        ) {
            let now = Timestamp::from_second(seconds).unwrap();
            let zone = Calendar::new(TimeZone::get("Asia/Tehran").unwrap(), system);
            let start = window_start(&TierWindow::CalendarYear, now, &zone).unwrap();
            let end = window_end(&TierWindow::CalendarYear, now, &zone).unwrap();
            prop_assert!(start <= now && now < end);
        }
    }
}
