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
mod tests;
