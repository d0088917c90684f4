//! What a purchase earns and how it shows on the receipt: whether its points pend or post,
//! what it adds to the member's tier metric, and where its lot ranks among the points that
//! expire soonest.

use jiff::Timestamp;

use crate::clawback;
use crate::program::TierBasis;

/// How a purchase's points go into the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earning {
    /// Nothing to credit.
    None,
    /// Pending until the return window closes.
    Pending { until: Timestamp },
    /// Posted now, with a lot.
    Posted,
}

impl Earning {
    /// The state stored on the purchase row and shown on the receipt.
    pub fn code(self) -> &'static str {
        match self {
            Earning::None => "none",
            Earning::Pending { .. } => "pending",
            Earning::Posted => "posted",
        }
    }

    /// The end of the return window, while the points pend.
    pub fn pending_until(self) -> Option<Timestamp> {
        match self {
            Earning::Pending { until } => Some(until),
            _ => None,
        }
    }
}

/// How `points` are credited: not at all when there are none, pending while `pending_until`
/// is still ahead of `now`, posted otherwise (a window already closed posts at once).
pub fn decide_earning(points: i64, pending_until: Option<Timestamp>, now: Timestamp) -> Earning {
    match pending_until {
        _ if points <= 0 => Earning::None,
        Some(until) if until > now => Earning::Pending { until },
        _ => Earning::Posted,
    }
}

/// What an anonymous purchase earns when it is attached to a member, given that
/// `eligible_refunded` of its `eligible_minor` was refunded before: the points the rules gave
/// it (never negative), the part of them settled by those refunds (as a clawback would have
/// taken them), and what is credited, the rest.
pub fn attach_earning(points: i64, eligible_minor: i64, eligible_refunded: i64) -> (i64, i64, i64) {
    let points = points.max(0);
    let settled = clawback::clawback_target(points, eligible_minor, eligible_refunded);
    (points, settled, points - settled)
}

/// What a purchase adds to the member's tier metric in the window that starts at
/// `window_start` (`None`: no start) and ends at `now`: the terms of the metric's query for
/// the new row. Instants compare as stored, in whole microseconds.
pub fn metric_contribution(
    basis: TierBasis,
    window_start: Option<Timestamp>,
    now: Timestamp,
    occurred_at: Timestamp,
    total_minor: i64,
    points: i64,
) -> i64 {
    let start = window_start.map_or(i64::MIN, Timestamp::as_microsecond);
    let at = occurred_at.as_microsecond();
    let in_window = at >= start && at <= now.as_microsecond() && total_minor > 0;
    if !in_window {
        return 0;
    }
    match basis {
        TierBasis::Spend => total_minor,
        TierBasis::Visits => 1,
        TierBasis::PointsEarned => points,
    }
}

/// The wallet's soonest expiring points (`expiring`, ordered by instant, at most `listed_max`
/// of them) with a new lot of `points` expiring at `at` merged in, as a read after the lot is
/// written would list them. A lot that never expires, is already due, or is empty changes
/// nothing. Instants compare and list as stored, in whole microseconds.
pub fn with_new_lot(
    mut expiring: Vec<(Timestamp, i64)>,
    at: Option<Timestamp>,
    points: i64,
    now: Timestamp,
    listed_max: usize,
) -> Vec<(Timestamp, i64)> {
    let Some(at) = at
        .filter(|at| at.as_microsecond() > now.as_microsecond() && points > 0)
        .and_then(|at| Timestamp::from_microsecond(at.as_microsecond()).ok())
    else {
        return expiring;
    };
    match expiring.binary_search_by(|(instant, _)| instant.cmp(&at)) {
        Ok(i) => expiring[i].1 += points,
        Err(i) => expiring.insert(i, (at, points)),
    }
    expiring.truncate(listed_max);
    expiring
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn earning_pends_while_the_window_is_open() {
        let now = at(1_000);
        assert_eq!(decide_earning(0, Some(at(2_000)), now), Earning::None);
        assert_eq!(decide_earning(-5, None, now), Earning::None);
        assert_eq!(
            decide_earning(10, Some(at(2_000)), now),
            Earning::Pending { until: at(2_000) }
        );
        assert_eq!(decide_earning(10, Some(now), now), Earning::Posted);
        assert_eq!(decide_earning(10, None, now), Earning::Posted);
        assert_eq!(Earning::Pending { until: now }.code(), "pending");
        assert_eq!(Earning::Posted.pending_until(), None);
    }

    #[test]
    fn the_metric_counts_a_purchase_in_its_window() {
        let now = at(1_000);
        let basis = TierBasis::Spend;
        assert_eq!(
            metric_contribution(basis, Some(at(0)), now, at(500), 1_250, 9),
            1_250
        );
        assert_eq!(
            metric_contribution(basis, Some(at(600)), now, at(500), 1_250, 9),
            0
        );
        assert_eq!(
            metric_contribution(basis, None, now, at(1_001), 1_250, 9),
            0
        );
        assert_eq!(metric_contribution(basis, None, now, at(10), 0, 9), 0);
        assert_eq!(
            metric_contribution(TierBasis::Visits, None, now, at(10), 5, 9),
            1
        );
        assert_eq!(
            metric_contribution(TierBasis::PointsEarned, None, now, at(10), 5, 9),
            9
        );
    }

    #[test]
    fn a_new_lot_merges_in_expiry_order() {
        let now = at(0);
        let expiring = vec![(at(10), 1), (at(30), 3)];
        assert_eq!(
            with_new_lot(expiring.clone(), Some(at(20)), 2, now, 5),
            vec![(at(10), 1), (at(20), 2), (at(30), 3)]
        );
        assert_eq!(
            with_new_lot(expiring.clone(), Some(at(30)), 2, now, 5),
            vec![(at(10), 1), (at(30), 5)]
        );
        assert_eq!(
            with_new_lot(expiring.clone(), Some(at(5)), 2, now, 1),
            vec![(at(5), 2)]
        );
        assert_eq!(with_new_lot(expiring.clone(), None, 2, now, 5), expiring);
        assert_eq!(
            with_new_lot(expiring.clone(), Some(at(0)), 2, now, 5),
            expiring
        );
        assert_eq!(
            with_new_lot(expiring.clone(), Some(at(20)), 0, now, 5),
            expiring
        );
    }

    #[test]
    fn an_attached_purchase_earns_on_what_was_kept() {
        assert_eq!(attach_earning(100, 10_000, 0), (100, 0, 100));
        assert_eq!(attach_earning(100, 10_000, 2_500), (100, 25, 75));
        assert_eq!(attach_earning(100, 10_000, 10_000), (100, 100, 0));
        assert_eq!(attach_earning(-3, 10_000, 0), (0, 0, 0));
    }

    proptest! {
        #[test]
        fn a_new_lot_keeps_the_list_ordered_and_adds_its_points(
            mut instants in proptest::collection::btree_set(1i64..1_000, 0..8),
            lot_at in 1i64..1_000,
            points in 1i64..1_000,
        ) {
            let expiring: Vec<(Timestamp, i64)> =
                std::mem::take(&mut instants).into_iter().map(|s| (at(s), s)).collect();
            let before: i64 = expiring.iter().map(|(_, p)| p).sum();
            let merged = with_new_lot(expiring, Some(at(lot_at)), points, at(0), usize::MAX);
            prop_assert!(merged.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert_eq!(merged.iter().map(|(_, p)| p).sum::<i64>(), before + points);
        }

        #[test]
        fn attaching_never_credits_more_than_earned(
            points in -10i64..100_000,
            eligible in 0i64..1_000_000,
            refunded_share in 0u32..=100,
        ) {
            let refunded = eligible * i64::from(refunded_share) / 100;
            let (earned, settled, credited) = attach_earning(points, eligible, refunded);
            prop_assert!(settled >= 0 && credited >= 0);
            prop_assert_eq!(settled + credited, earned);
            prop_assert!(earned <= points.max(0));
        }
    }
}
