//! The downgrade policy, a manual floor, and the "will downgrade on" review: pure decisions over
//! metrics the caller counted.
//!
//! The caller asks [`spans`] which metrics a decision needs (each the member's metric over a
//! span of time: purchases with `start <= occurred_at <= end`), counts them, and hands them to
//! [`target`] (the tier the nightly pass moves the member to, if any) or [`review`] (when and to
//! which tier the member would move down if nothing changes, and how much more keeps the
//! tier). Both read the same rules, so what the balance view announces is what the job does.
//!
//! The rules (docs/PROGRAM.md, "Moving between levels"):
//!
//! - Upgrades apply at once. A member whose tier is not on the ladder moves to the qualifying
//!   tier at once.
//! - `never`: nobody moves down.
//! - `end_of_period`, calendar year: a member who held the tier before the last 1 January
//!   (local) moves down once `grace_days` after it have passed, to the higher of what the ended
//!   year's metric and the current year's metric qualify for.
//! - `end_of_period`, rolling window of N months: the period is the member's *tier term*: N
//!   months from the day they reached the tier (`since`), renewed every N months. At a term
//!   end R the member moves down `grace_days` later unless the rolling metric at R or at
//!   R + grace qualifies (or the current one does); the target is the highest of those.
//!   Between term ends a short metric changes nothing.
//! - A manual floor keeps the member at least at its tier while it lasts (a higher computed
//!   tier still applies). After the floor ends, no downgrade happens before its end plus
//!   `grace_days`; then the policy above applies, the tier counting as held since the floor
//!   raised it.

use jiff::Timestamp;

use super::{TierDecision, decide, level_index, qualifying_tier, window_end, window_start};
use crate::calendar::Calendar;
use crate::expiry::{ExpiryUnit, add_civil};
use crate::program::{DowngradePolicy, TierWindow, Tiers};

/// A manual tier floor: the member is at least `tier` until `until` (for good when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    pub tier: String,
    pub until: Option<Timestamp>,
}

impl Floor {
    /// Whether the floor still holds at `at` (it ends at `until`, exclusive).
    pub fn active_at(&self, at: Timestamp) -> bool {
        self.until.is_none_or(|until| at < until)
    }
}

/// What the policy needs to know about the member's hold on their tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding<'a> {
    /// The tier the member is at now.
    pub tier: &'a str,
    /// Since when (the last change of tier).
    pub since: Timestamp,
    /// The manual floor, active or ended.
    pub floor: Option<&'a Floor>,
}

/// A span of time whose metric a decision needs: purchases with `start <= occurred_at <= end`
/// (`start` `None`: no lower bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricSpan {
    pub start: Option<Timestamp>,
    pub end: Timestamp,
}

impl MetricSpan {
    /// The program's window as it stood at `at`.
    pub fn as_of(window: &TierWindow, at: Timestamp, cal: &Calendar) -> MetricSpan {
        MetricSpan {
            start: window_start(window, at, cal),
            end: at,
        }
    }
}

/// Metrics counted for the spans [`spans`] named.
pub type Counted = [(MetricSpan, i64)];

fn lookup(counted: &Counted, span: MetricSpan) -> Option<i64> {
    counted
        .iter()
        .find(|(counted, _)| *counted == span)
        .map(|(_, metric)| *metric)
}

/// When the member would move down if nothing changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierReview {
    /// The instant of the move (a period end plus grace, in the club's time zone; later if a
    /// floor holds the tier). The nightly pass that runs on or after it applies it.
    pub at: Timestamp,
    /// The tier the member would fall to.
    pub to: String,
    /// How much more metric (points, spend in minor units, or visits), bought now, keeps the
    /// tier at `at`. 0 when nothing bought now can (the periods that decide are over).
    pub needed: i64,
}

/// Every span whose metric [`target`] and [`review`] need at `now`. The first is the
/// program's window as of `now`.
pub fn spans(
    tiers: &Tiers,
    cal: &Calendar,
    holding: Holding<'_>,
    now: Timestamp,
) -> Vec<MetricSpan> {
    let mut spans = spans_at(tiers, cal, holding.since, now);
    for instant in review_instants(tiers, cal, holding, now) {
        for span in spans_at(tiers, cal, holding.since, instant) {
            let span = clip(span, now);
            if !spans.contains(&span) {
                spans.push(span);
            }
        }
    }
    spans
}

/// The spans [`target`] reads at `at`.
fn spans_at(tiers: &Tiers, cal: &Calendar, since: Timestamp, at: Timestamp) -> Vec<MetricSpan> {
    let window = &tiers.window;
    let mut spans = vec![MetricSpan::as_of(window, at, cal)];
    let DowngradePolicy::EndOfPeriod { grace_days } = tiers.downgrade else {
        return spans;
    };
    match *window {
        TierWindow::CalendarYear => {
            if let Some(ended) = window_start(window, at, cal).and_then(just_before) {
                spans.push(MetricSpan::as_of(window, ended, cal));
            }
        }
        TierWindow::Rolling { months } => {
            if let Some(end) = reviewed_term_end(since, months, grace_days, at, cal)
                && let Some(grace_over) = add_days(end, grace_days, cal)
            {
                spans.push(MetricSpan::as_of(window, end, cal));
                spans.push(MetricSpan::as_of(window, grace_over, cal));
            }
        }
        TierWindow::Lifetime => {}
    }
    spans
}

/// A span as it will count at a later instant if nothing is bought after `now`.
fn clip(span: MetricSpan, now: Timestamp) -> MetricSpan {
    MetricSpan {
        start: span.start,
        end: span.end.min(now),
    }
}

/// The instants at or after `now` at which a downgrade can first happen if nothing changes:
/// `now`, the end of the grace running (if one is), and the next period end plus grace; none
/// earlier than the end of a floor holding the tier plus grace.
fn review_instants(
    tiers: &Tiers,
    cal: &Calendar,
    holding: Holding<'_>,
    now: Timestamp,
) -> Vec<Timestamp> {
    let DowngradePolicy::EndOfPeriod { grace_days } = tiers.downgrade else {
        return Vec::new();
    };
    let window = &tiers.window;
    let mut instants = vec![now];
    match *window {
        TierWindow::CalendarYear => {
            let last_end = window_start(window, now, cal);
            let next_end = window_end(window, now, cal);
            for end in [last_end, next_end].into_iter().flatten() {
                if let Some(grace_over) = add_days(end, grace_days, cal).filter(|at| *at > now) {
                    instants.push(grace_over);
                }
            }
        }
        TierWindow::Rolling { months } => {
            // Every review whose grace is still running, and the next term end's.
            for end in term_ends(holding.since, months, cal) {
                let Some(grace_over) = add_days(end, grace_days, cal) else {
                    break;
                };
                if grace_over > now {
                    instants.push(grace_over);
                }
                if end > now {
                    break;
                }
            }
        }
        TierWindow::Lifetime => return Vec::new(),
    }
    let held_until = level_index(tiers, holding.tier)
        .and_then(|current| protecting_floor_end(tiers, holding, current))
        .and_then(|end| add_days(end, grace_days, cal));
    let mut instants: Vec<Timestamp> = instants
        .into_iter()
        .map(|at| held_until.map_or(at, |held| at.max(held)))
        .collect();
    instants.sort();
    instants.dedup();
    instants
}

/// The tier the nightly pass moves the member to at `now`, if any. A metric [`spans`] named
/// but `counted` lacks means "do not move down".
pub fn target(
    tiers: &Tiers,
    cal: &Calendar,
    holding: Holding<'_>,
    counted: &Counted,
    now: Timestamp,
) -> Option<String> {
    target_with(tiers, cal, holding, &|span| lookup(counted, span), now)
}

fn target_with(
    tiers: &Tiers,
    cal: &Calendar,
    holding: Holding<'_>,
    metric_of: &dyn Fn(MetricSpan) -> Option<i64>,
    now: Timestamp,
) -> Option<String> {
    let window = &tiers.window;
    let metric = metric_of(MetricSpan::as_of(window, now, cal))?;
    let current = level_index(tiers, holding.tier);
    let active_floor = holding
        .floor
        .filter(|floor| floor.active_at(now))
        .and_then(|floor| level_index(tiers, &floor.tier));
    let at_least_floor = |level: usize| active_floor.map_or(level, |floor| level.max(floor));
    let code = |level: usize| tiers.levels.get(level).map(|tier| tier.code.clone());
    let candidate = match decide(tiers, holding.tier, metric) {
        TierDecision::Upgrade(to) => {
            return level_index(tiers, &to).map(at_least_floor).and_then(code);
        }
        TierDecision::Stay => {
            return match (active_floor, current) {
                (Some(floor), Some(current)) if floor > current => code(floor),
                _ => None,
            };
        }
        TierDecision::DowngradeCandidate(to) => level_index(tiers, &to)?,
    };
    let current = current?;
    if let Some(floor) = active_floor
        && floor >= current
    {
        return (floor > current).then(|| code(floor)).flatten();
    }
    let DowngradePolicy::EndOfPeriod { grace_days } = tiers.downgrade else {
        return None;
    };
    if let Some(floor_end) = protecting_floor_end(tiers, holding, current)
        && now < add_days(floor_end, grace_days, cal)?
    {
        return None;
    }
    let target = match *window {
        TierWindow::CalendarYear => {
            let last_end = window_start(window, now, cal)?;
            if holding.since >= last_end || now < add_days(last_end, grace_days, cal)? {
                return None;
            }
            let ended = metric_of(MetricSpan::as_of(window, just_before(last_end)?, cal))?;
            candidate.max(qualifying_level(tiers, ended))
        }
        TierWindow::Rolling { months } => {
            let end = reviewed_term_end(holding.since, months, grace_days, now, cal)?;
            let grace_over = add_days(end, grace_days, cal)?;
            let at_end = metric_of(MetricSpan::as_of(window, end, cal))?;
            let at_grace = metric_of(MetricSpan::as_of(window, grace_over, cal))?;
            candidate
                .max(qualifying_level(tiers, at_end))
                .max(qualifying_level(tiers, at_grace))
        }
        TierWindow::Lifetime => return None,
    };
    let target = at_least_floor(target);
    (target < current).then(|| code(target)).flatten()
}

/// When the member would move down if nothing changes, to which tier, and how much more
/// bought now keeps the tier. `None` when the member is safe through the next review (the
/// current one if a grace is running, else the next period end plus grace), is on the lowest
/// level, the policy never moves members down, or a floor keeps them.
///
/// Computed by asking [`target`] at each [`review_instants`] with the metrics as they will
/// stand if nothing is bought after `now`, so the review and the nightly pass cannot disagree.
pub fn review(
    tiers: &Tiers,
    cal: &Calendar,
    holding: Holding<'_>,
    counted: &Counted,
    now: Timestamp,
) -> Option<TierReview> {
    let current = level_index(tiers, holding.tier)?;
    let threshold = tiers.levels.get(current)?.threshold;
    for at in review_instants(tiers, cal, holding, now) {
        let level_at = |extra: i64| {
            let metric_of = |span: MetricSpan| {
                let span = clip(span, now);
                let metric = lookup(counted, span)?;
                let counts_now = span.start.is_none_or(|start| start <= now) && span.end >= now;
                Some(if counts_now {
                    metric.saturating_add(extra)
                } else {
                    metric
                })
            };
            target_with(tiers, cal, holding, &metric_of, at).and_then(|to| level_index(tiers, &to))
        };
        let Some(to) = level_at(0).filter(|to| *to < current) else {
            continue;
        };
        let keeps = |extra: i64| level_at(extra).is_none_or(|to| to >= current);
        // The least amount that keeps the tier: more metric never lowers the target.
        let needed = if keeps(threshold) {
            let (mut short, mut enough) = (0, threshold);
            while enough - short > 1 {
                let middle = short + (enough - short) / 2;
                if keeps(middle) {
                    enough = middle;
                } else {
                    short = middle;
                }
            }
            enough
        } else {
            0
        };
        return Some(TierReview {
            at,
            to: tiers.levels.get(to)?.code.clone(),
            needed,
        });
    }
    None
}

/// The end of a floor that holds the member's current tier (a floor at or above it), if any.
fn protecting_floor_end(tiers: &Tiers, holding: Holding<'_>, current: usize) -> Option<Timestamp> {
    let floor = holding.floor?;
    (level_index(tiers, &floor.tier)? >= current)
        .then_some(floor.until)
        .flatten()
}

fn qualifying_level(tiers: &Tiers, metric: i64) -> usize {
    level_index(tiers, &qualifying_tier(tiers, metric).code).unwrap_or(0)
}

fn add_days(at: Timestamp, days: u32, cal: &Calendar) -> Option<Timestamp> {
    crate::expiry::add_days(at, days, &cal.tz)
}

fn just_before(at: Timestamp) -> Option<Timestamp> {
    at.checked_sub(jiff::SignedDuration::from_micros(1)).ok()
}

/// How many term ends a search walks at most (a monthly term over 1,000 years).
const TERMS_MAX: u32 = 12_000;

/// The ends of the member's tier terms: `since` + k × `months`, k = 1, 2, ...
fn term_ends(
    since: Timestamp,
    months: u32,
    cal: &Calendar,
) -> impl Iterator<Item = Timestamp> + '_ {
    let months = months.max(1);
    (1..=TERMS_MAX)
        .map_while(move |k| add_civil(since, k.checked_mul(months)?, ExpiryUnit::Months, cal))
}

/// The term end whose review applies at `now`: the last one whose grace is over by `now`.
fn reviewed_term_end(
    since: Timestamp,
    months: u32,
    grace_days: u32,
    now: Timestamp,
    cal: &Calendar,
) -> Option<Timestamp> {
    term_ends(since, months, cal)
        .take_while(|end| add_days(*end, grace_days, cal).is_some_and(|over| over <= now))
        .last()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::civil::DateTime;
    use jiff::{SignedDuration, ToSpan};
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;
    use crate::program::{Localized, Tier, TierBasis};

    const ZONE: &str = "Asia/Tehran";

    fn tz() -> Calendar {
        Calendar::gregorian(jiff::tz::TimeZone::get(ZONE).unwrap())
    }

    fn ladder(window: TierWindow, grace_days: u32) -> Tiers {
        let level = |code: &str, threshold| Tier {
            code: code.into(),
            names: Localized::default(),
            threshold,
            multiplier: Decimal::ONE,
            benefits: Vec::new(),
        };
        Tiers {
            basis: TierBasis::PointsEarned,
            window,
            downgrade: DowngradePolicy::EndOfPeriod { grace_days },
            levels: vec![level("base", 0), level("silver", 10), level("gold", 25)],
            replaced: Vec::new(),
        }
    }

    fn at(local: &str) -> Timestamp {
        local
            .parse::<DateTime>()
            .unwrap()
            .to_zoned(tz().tz)
            .unwrap()
            .timestamp()
    }

    /// Purchases: when, and the metric each adds.
    type History = Vec<(Timestamp, i64)>;

    fn count(history: &History, span: MetricSpan) -> i64 {
        history
            .iter()
            .filter(|(when, _)| span.start.is_none_or(|start| *when >= start) && *when <= span.end)
            .map(|(_, amount)| amount)
            .sum()
    }

    fn counted(
        tiers: &Tiers,
        history: &History,
        holding: Holding<'_>,
        now: Timestamp,
    ) -> Vec<(MetricSpan, i64)> {
        spans(tiers, &tz(), holding, now)
            .into_iter()
            .map(|span| (span, count(history, span)))
            .collect()
    }

    fn holding<'a>(tier: &'a str, since: Timestamp, floor: Option<&'a Floor>) -> Holding<'a> {
        Holding { tier, since, floor }
    }

    fn target_at(
        tiers: &Tiers,
        history: &History,
        holding: Holding<'_>,
        now: Timestamp,
    ) -> Option<String> {
        target(
            tiers,
            &tz(),
            holding,
            &counted(tiers, history, holding, now),
            now,
        )
    }

    fn review_at(
        tiers: &Tiers,
        history: &History,
        holding: Holding<'_>,
        now: Timestamp,
    ) -> Option<TierReview> {
        review(
            tiers,
            &tz(),
            holding,
            &counted(tiers, history, holding, now),
            now,
        )
    }

    #[test]
    fn calendar_year_downgrades_after_new_year_plus_grace() {
        let tiers = ladder(TierWindow::CalendarYear, 30);
        let since = at("2025-03-01T10:00");
        let history = vec![(at("2025-03-01T10:00"), 25), (at("2026-02-10T12:00"), 12)];
        let gold = holding("gold", since, None);
        // During 2026, with 12 points of 25: the review is on 31 January 2027 (1 January +
        // 30 days), down to silver, 13 points short by the end of 2026.
        let review = review_at(&tiers, &history, gold, at("2026-06-01T00:00")).unwrap();
        assert_eq!(
            review,
            TierReview {
                at: at("2027-01-31T00:00"),
                to: "silver".into(),
                needed: 13,
            }
        );
        // Nothing moves before then; at it, the member goes down to silver.
        assert_eq!(
            target_at(&tiers, &history, gold, at("2027-01-30T23:59")),
            None
        );
        assert_eq!(
            target_at(&tiers, &history, gold, review.at),
            Some("silver".into())
        );
        // In the grace period the review is still announced, with what the new year needs.
        let in_grace = review_at(&tiers, &history, gold, at("2027-01-10T00:00")).unwrap();
        assert_eq!((in_grace.at, in_grace.needed), (review.at, 25));
        // A member who reached gold in 2026 keeps it through 2027's review.
        let fresh = holding("gold", at("2026-05-01T00:00"), None);
        assert_eq!(
            target_at(&tiers, &history, fresh, at("2026-12-31T00:00")),
            None
        );
    }

    #[test]
    fn rolling_window_reviews_at_the_end_of_each_tier_term() {
        let tiers = ladder(TierWindow::Rolling { months: 12 }, 14);
        let since = at("2025-05-20T09:00");
        let history = vec![(at("2025-05-20T08:00"), 25), (at("2025-11-01T09:00"), 5)];
        let gold = holding("gold", since, None);
        // The term ends 2026-05-20 09:00; of what was bought, only November's 5 still counts
        // then: 20 more keep gold, else the member falls to base (5 is below silver too).
        let review = review_at(&tiers, &history, gold, at("2026-01-15T00:00")).unwrap();
        assert_eq!(review.at, at("2026-06-03T09:00"));
        assert_eq!((review.to.as_str(), review.needed), ("base", 20));
        // A short metric mid-term changes nothing.
        assert_eq!(
            target_at(&tiers, &history, gold, at("2026-05-01T00:00")),
            None
        );
        assert_eq!(
            target_at(&tiers, &history, gold, review.at),
            Some("base".into())
        );
        // Bought enough during the grace: kept for the next term.
        let mut rescued = history.clone();
        rescued.push((at("2026-05-25T12:00"), 20));
        assert_eq!(target_at(&tiers, &rescued, gold, review.at), None);
        assert_eq!(
            target_at(&tiers, &rescued, gold, at("2026-12-01T00:00")),
            None
        );
    }

    #[test]
    fn a_floor_holds_the_tier_and_grace_runs_from_its_end() {
        let tiers = ladder(TierWindow::CalendarYear, 30);
        let since = at("2024-01-10T00:00");
        let history: History = vec![(at("2025-06-01T00:00"), 3)];
        let floor = Floor {
            tier: "gold".into(),
            until: Some(at("2026-03-01T00:00")),
        };
        let gold = holding("gold", since, Some(&floor));
        // 2025 was short; without the floor the member would go down on 31 January 2026.
        assert_eq!(
            target_at(
                &tiers,
                &history,
                holding("gold", since, None),
                at("2026-02-01T00:00")
            ),
            Some("base".into())
        );
        // With it, not before 1 March + 30 days.
        assert_eq!(
            target_at(&tiers, &history, gold, at("2026-03-30T00:00")),
            None
        );
        assert_eq!(
            target_at(&tiers, &history, gold, at("2026-03-31T00:00")),
            Some("base".into())
        );
        let review = review_at(&tiers, &history, gold, at("2026-02-01T00:00")).unwrap();
        assert_eq!(
            (review.at, review.to.as_str()),
            (at("2026-03-31T00:00"), "base")
        );
        // A floor above the current tier raises the member; an endless floor means no review.
        let forever = Floor {
            tier: "silver".into(),
            until: None,
        };
        assert_eq!(
            target_at(
                &tiers,
                &history,
                holding("base", since, Some(&forever)),
                at("2026-02-01T00:00")
            ),
            Some("silver".into())
        );
        assert_eq!(
            review_at(
                &tiers,
                &history,
                holding("silver", since, Some(&forever)),
                at("2026-02-01T00:00")
            ),
            None
        );
        // A lower floor only limits the fall.
        let silver_floor = Floor {
            tier: "silver".into(),
            until: None,
        };
        assert_eq!(
            target_at(
                &tiers,
                &history,
                holding("gold", since, Some(&silver_floor)),
                at("2026-02-01T00:00")
            ),
            Some("silver".into())
        );
        // Upgrades past the floor still apply.
        let rich: History = vec![(at("2026-02-01T00:00"), 30)];
        assert_eq!(
            target_at(
                &tiers,
                &rich,
                holding("silver", since, Some(&forever)),
                at("2026-02-01T00:00")
            ),
            Some("gold".into())
        );
    }

    #[test]
    fn never_and_lifetime_have_no_review() {
        let mut tiers = ladder(TierWindow::CalendarYear, 0);
        tiers.downgrade = DowngradePolicy::Never;
        let gold = holding("gold", at("2020-01-01T00:00"), None);
        assert_eq!(
            review_at(&tiers, &Vec::new(), gold, at("2026-01-01T00:00")),
            None
        );
        assert_eq!(
            target_at(&tiers, &Vec::new(), gold, at("2026-06-01T00:00")),
            None
        );
        let lifetime = ladder(TierWindow::Lifetime, 0);
        assert_eq!(
            review_at(&lifetime, &Vec::new(), gold, at("2026-01-01T00:00")),
            None
        );
    }

    fn window_strategy() -> impl Strategy<Value = TierWindow> {
        prop_oneof![
            Just(TierWindow::CalendarYear),
            (1_u32..=24).prop_map(|months| TierWindow::Rolling { months }),
        ]
    }

    proptest! {
        // Many random histories describe a member the nightly pass would already have moved;
        // they are skipped.
        #![proptest_config(ProptestConfig {
            max_global_rejects: 100_000,
            ..ProptestConfig::default()
        })]

        /// The review is exact: nothing moves before it; at it the member falls to the tier it
        /// names; buying exactly `needed` now keeps the tier at it. With no review, the member
        /// is still in their tier at the next period's review instant.
        #[test]
        fn the_review_says_what_the_nightly_pass_will_do(
            window in window_strategy(),
            grace in 0_u32..60,
            gold in any::<bool>(),
            since_days in 0_i64..900,
            now_hours in 0_i64..(3 * 365 * 24),
            purchases in proptest::collection::vec((0_i64..1300, 0_i64..12), 0..12),
        ) {
            // A grace longer than a term leaves no time to act on a review.
            if let TierWindow::Rolling { months } = window {
                prop_assume!(grace < 28 * months);
            }
            let tiers = ladder(window, grace);
            let now = at("2024-01-01T00:00") + SignedDuration::from_hours(now_hours);
            let since = now - SignedDuration::from_hours(24 * since_days);
            let history: History = purchases
                .iter()
                .map(|(days_ago, amount)| (now - SignedDuration::from_hours(24 * days_ago), *amount))
                .collect();
            let code = if gold { "gold" } else { "silver" };
            let member = holding(code, since, None);
            // A member the nightly pass would have moved down already is not a state to review.
            let cal = tz();
            let past_reviews: Vec<Timestamp> = match window {
                TierWindow::Rolling { months } => term_ends(since, months, &cal)
                    .filter_map(|end| add_days(end, grace, &cal))
                    .take_while(|over| *over <= now)
                    .collect(),
                _ => (2020..=2027)
                    .filter_map(|year| add_days(at(&format!("{year}-01-01T00:00")), grace, &cal))
                    .filter(|over| *over > since && *over <= now)
                    .collect(),
            };
            for instant in past_reviews.into_iter().chain([now]) {
                prop_assume!(target_at(&tiers, &history, member, instant).is_none());
            }
            match review_at(&tiers, &history, member, now) {
                Some(review) => {
                    prop_assert!(review.at > now);
                    prop_assert!(review.needed > 0);
                    prop_assert!(review.at >= now);
                    prop_assert_eq!(target_at(&tiers, &history, member, review.at), Some(review.to.clone()));
                    prop_assert_eq!(target_at(&tiers, &history, member, review.at - SignedDuration::from_micros(1)), None);
                    let mut kept = history.clone();
                    kept.push((now, review.needed));
                    prop_assert_eq!(target_at(&tiers, &kept, member, review.at), None);
                    if review.needed > 1 {
                        let mut short = history.clone();
                        short.push((now, review.needed - 1));
                        prop_assert!(target_at(&tiers, &short, member, review.at).is_some());
                    }
                }
                None => {
                    for instant in review_instants(&tiers, &cal, member, now) {
                        prop_assert_eq!(target_at(&tiers, &history, member, instant), None);
                    }
                }
            }
        }

        /// A floor is never undercut while it lasts.
        #[test]
        fn a_floor_is_never_undercut(
            window in window_strategy(),
            grace in 0_u32..60,
            floor_level in 0_usize..3,
            current in 0_usize..3,
            later_days in 0_i64..800,
            purchases in proptest::collection::vec((0_i64..1300, 0_i64..12), 0..12),
        ) {
            let tiers = ladder(window, grace);
            let now = at("2026-01-01T00:00");
            let history: History = purchases
                .iter()
                .map(|(days_ago, amount)| (now - SignedDuration::from_hours(24 * days_ago), *amount))
                .collect();
            let floor = Floor {
                tier: tiers.levels[floor_level].code.clone(),
                until: Some(now + 400.days().to_duration(jiff::SpanRelativeTo::days_are_24_hours()).unwrap()),
            };
            let member = holding(&tiers.levels[current].code, now - SignedDuration::from_hours(24 * 500), Some(&floor));
            let later = now + SignedDuration::from_hours(24 * later_days);
            let level = |code: &str| tiers.levels.iter().position(|tier| tier.code == code).unwrap();
            let after = target_at(&tiers, &history, member, later).map_or(current, |to| level(&to));
            if floor.active_at(later) {
                prop_assert!(after >= floor_level);
            }
        }
    }
}
