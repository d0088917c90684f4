//! Expiry lots: which credits a spend consumes, how a credit pays off a debt first, and which lots
//! get points back when a spend is undone.
//!
//! Every credit to a member wallet creates a lot (an amount and an expiry instant, or none).
//! Spending consumes lots soonest-expiry first, so members lose as few points to expiry as
//! possible and the store can record exactly which lots a debit came from
//! (docs/LEDGER.md#expiry-lots). These functions only *plan*; the store applies a plan in the
//! same transaction as the transfer it belongs to, which keeps invariant 7 ("each lot's
//! remainder = amount + its movements") a matter of bookkeeping rather than of timing.

use std::cmp::Ordering;

use jiff::Timestamp;

/// What the planner needs to know about one lot of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotView {
    /// The lot's identity; unique within the slice handed to [`plan_consumption`].
    pub id: i64,
    /// Points still left in the lot. Lots with `remaining <= 0` are skipped.
    pub remaining: i64,
    /// The instant the lot expires; `None` means it never does. A lot is already expired at
    /// `now` when `expires_at <= now`, the same boundary the expiry job uses.
    pub expires_at: Option<Timestamp>,
    /// Creation order, the tiebreak between lots expiring at the same instant (older first).
    pub seq: i64,
}

/// Points taken from (or given back to) one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub lot_id: i64,
    pub amount: i64,
}

/// The result of [`plan_consumption`]: the takes in consumption order, and what they could not
/// cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumptionPlan {
    /// Takes in the order they were planned (soonest expiry first), each with `amount > 0`.
    /// Store them in this order: [`plan_restore`] relies on it.
    pub takes: Vec<Take>,
    /// The part of the amount no unexpired lot covered. Whether that is an error (a redemption
    /// with too few points) or a debt (an unlimited clawback) is the caller's decision.
    pub shortfall: i64,
}

impl ConsumptionPlan {
    /// Total points the takes cover (`amount - shortfall` for a positive amount).
    pub fn taken(&self) -> i64 {
        self.takes.iter().map(|take| take.amount).sum()
    }

    /// Whether the lots cover the whole amount.
    pub fn is_covered(&self) -> bool {
        self.shortfall == 0
    }
}

/// The order lots are consumed in: `expires_at` ascending with never-expiring lots last, then
/// `seq` ascending, then `id`. In SQL: `ORDER BY expires_at IS NULL, expires_at, seq, id`.
///
/// The final `id` tiebreak makes the order total, so two runs over the same lots (a retry, the
/// other database backend) always produce the same plan.
pub fn consumption_order(a: &LotView, b: &LotView) -> Ordering {
    let by_expiry = match (a.expires_at, b.expires_at) {
        (Some(a_expiry), Some(b_expiry)) => a_expiry.cmp(&b_expiry),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_expiry.then(a.seq.cmp(&b.seq)).then(a.id.cmp(&b.id))
}

/// Whether a lot can still be spent from at `now`.
fn is_spendable(lot: &LotView, now: Timestamp) -> bool {
    lot.remaining > 0 && lot.expires_at.is_none_or(|expires_at| expires_at > now)
}

/// Plans which lots a debit of `amount` points consumes at `now`.
///
/// Order: [`consumption_order`]. Lots with `remaining <= 0` and lots already expired at `now`
/// (`expires_at <= now`) are never touched: an expired lot's points belong to the expiry job,
/// even if it has not run yet.
///
/// Preconditions: lot ids are unique in `lots`. `amount <= 0` gives an empty plan with no
/// shortfall. Postconditions: every take has `0 < amount <= lot.remaining`;
/// `taken() + shortfall == amount`; `shortfall > 0` only when every spendable lot is used up.
pub fn plan_consumption(lots: &[LotView], amount: i64, now: Timestamp) -> ConsumptionPlan {
    if amount <= 0 {
        return ConsumptionPlan::default();
    }
    let mut spendable: Vec<&LotView> = lots.iter().filter(|lot| is_spendable(lot, now)).collect();
    spendable.sort_by(|a, b| consumption_order(a, b));

    let mut left = amount;
    let mut takes = Vec::new();
    for lot in spendable {
        if left == 0 {
            break;
        }
        let take = lot.remaining.min(left);
        takes.push(Take {
            lot_id: lot.id,
            amount: take,
        });
        left -= take;
    }
    ConsumptionPlan {
        takes,
        shortfall: left,
    }
}

/// How a new credit pays an existing debt first (docs/LEDGER.md#balances-and-debt: "every
/// later credit pays the debt first"). Returns `(paid_to_debt, lot_remaining)`: the part of
/// the credit that cancels debt, and the part left to become the new lot's `remaining`.
///
/// `debt` is the amount owed as a non-negative number (the magnitude of a negative balance);
/// negative values are treated as no debt, and a non-positive `credit` pays nothing. Always
/// `paid_to_debt + lot_remaining == max(credit, 0)`.
pub fn settle_debt(credit: i64, debt: i64) -> (i64, i64) {
    let credit = credit.max(0);
    let paid_to_debt = credit.min(debt.max(0));
    (paid_to_debt, credit - paid_to_debt)
}

/// Plans which lots get points back when `amount` points of a debit are undone (a refunded
/// redemption, a released hold). Lots are restored with their original expiry
/// (docs/LEDGER.md#expiry-lots).
///
/// `takes` are the debit's takes in the order they were consumed (as [`plan_consumption`]
/// produced them). Restoring walks them in reverse, so the latest-expiring lots are refilled
/// first: a partial refund gives back the points that would have lived longest, and the
/// soonest-expiring ones stay spent. Never gives a lot more than was taken from it; takes with
/// `amount <= 0` are ignored. The result sums to `min(max(amount, 0), total taken)`.
///
/// For a second partial refund of the same debit, pass the takes net of what earlier refunds
/// restored ([`takes_not_yet_restored`]), or the same lots would be refilled twice.
///
/// A restored lot may already have expired; its points then belong to the expiry job, which
/// must pick them up (invariant 7: nothing unexpired is left past its expiry).
pub fn plan_restore(takes: &[Take], amount: i64) -> Vec<Take> {
    let mut left = amount.max(0);
    let mut restores = Vec::new();
    for take in takes.iter().rev() {
        if left == 0 {
            break;
        }
        if take.amount <= 0 {
            continue;
        }
        let back = take.amount.min(left);
        restores.push(Take {
            lot_id: take.lot_id,
            amount: back,
        });
        left -= back;
    }
    restores
}

/// The takes of a debit minus what earlier restores already gave back, in the original
/// consumption order, dropping takes that are fully restored. Earlier restores are subtracted
/// from the latest takes of each lot first, mirroring [`plan_restore`]'s order, so
/// `plan_restore(&takes_not_yet_restored(takes, restored), amount)` continues where the earlier
/// restores stopped.
pub fn takes_not_yet_restored(takes: &[Take], restored: &[Take]) -> Vec<Take> {
    let mut net: Vec<Take> = takes
        .iter()
        .filter(|take| take.amount > 0)
        .copied()
        .collect();
    for restore in restored.iter().filter(|restore| restore.amount > 0) {
        let mut left = restore.amount;
        for take in net
            .iter_mut()
            .rev()
            .filter(|take| take.lot_id == restore.lot_id)
        {
            if left == 0 {
                break;
            }
            let back = take.amount.min(left);
            take.amount -= back;
            left -= back;
        }
    }
    net.retain(|take| take.amount > 0);
    net
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use proptest::prelude::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn lot(id: i64, remaining: i64, expires_in: Option<i64>, seq: i64) -> LotView {
        LotView {
            id,
            remaining,
            expires_at: expires_in.map(at),
            seq,
        }
    }

    fn take(lot_id: i64, amount: i64) -> Take {
        Take { lot_id, amount }
    }

    #[test]
    fn soonest_expiring_lot_is_spent_first() {
        let lots = [
            lot(1, 100, None, 1),
            lot(2, 50, Some(2_000), 2),
            lot(3, 30, Some(1_000), 3),
        ];
        let plan = plan_consumption(&lots, 60, at(0));
        assert_eq!(plan.takes, vec![take(3, 30), take(2, 30)]);
        assert_eq!(plan.shortfall, 0);
        assert!(plan.is_covered());
    }

    #[test]
    fn never_expiring_lots_are_spent_last() {
        let lots = [lot(1, 10, None, 1), lot(2, 10, Some(5_000), 2)];
        let plan = plan_consumption(&lots, 15, at(0));
        assert_eq!(plan.takes, vec![take(2, 10), take(1, 5)]);
    }

    #[test]
    fn same_expiry_spends_the_older_lot_first() {
        let lots = [lot(7, 10, Some(100), 2), lot(9, 10, Some(100), 1)];
        let plan = plan_consumption(&lots, 5, at(0));
        assert_eq!(plan.takes, vec![take(9, 5)]);
    }

    #[test]
    fn id_breaks_ties_when_expiry_and_seq_are_equal() {
        let lots = [lot(8, 10, None, 1), lot(4, 10, None, 1)];
        let plan = plan_consumption(&lots, 5, at(0));
        assert_eq!(plan.takes, vec![take(4, 5)]);
    }

    #[test]
    fn lots_expiring_exactly_now_are_not_spent() {
        let lots = [lot(1, 10, Some(0), 1), lot(2, 10, Some(1), 2)];
        let plan = plan_consumption(&lots, 15, at(0));
        assert_eq!(plan.takes, vec![take(2, 10)]);
        assert_eq!(plan.shortfall, 5);
    }

    #[test]
    fn empty_and_negative_lots_are_skipped() {
        let lots = [
            lot(1, 0, Some(10), 1),
            lot(2, -3, Some(20), 2),
            lot(3, 4, None, 3),
        ];
        let plan = plan_consumption(&lots, 4, at(0));
        assert_eq!(plan.takes, vec![take(3, 4)]);
    }

    #[test]
    fn not_enough_points_reports_the_shortfall() {
        let lots = [lot(1, 10, None, 1)];
        let plan = plan_consumption(&lots, 25, at(0));
        assert_eq!(plan.taken(), 10);
        assert_eq!(plan.shortfall, 15);
        assert!(!plan.is_covered());
    }

    #[test]
    fn non_positive_amount_plans_nothing() {
        let lots = [lot(1, 10, None, 1)];
        assert_eq!(
            plan_consumption(&lots, 0, at(0)),
            ConsumptionPlan::default()
        );
        assert_eq!(
            plan_consumption(&lots, -5, at(0)),
            ConsumptionPlan::default()
        );
    }

    #[test]
    fn credit_pays_debt_before_filling_a_lot() {
        assert_eq!(settle_debt(100, 30), (30, 70));
        assert_eq!(settle_debt(20, 30), (20, 0));
        assert_eq!(settle_debt(30, 30), (30, 0));
        assert_eq!(settle_debt(50, 0), (0, 50));
        assert_eq!(settle_debt(50, -10), (0, 50));
        assert_eq!(settle_debt(0, 10), (0, 0));
        assert_eq!(settle_debt(-5, 10), (0, 0));
    }

    #[test]
    fn refund_restores_latest_expiring_lots_first() {
        let takes = [take(3, 30), take(2, 30), take(1, 40)];
        assert_eq!(plan_restore(&takes, 50), vec![take(1, 40), take(2, 10)]);
        assert_eq!(
            plan_restore(&takes, 500),
            vec![take(1, 40), take(2, 30), take(3, 30)]
        );
        assert!(plan_restore(&takes, 0).is_empty());
        assert!(plan_restore(&takes, -1).is_empty());
    }

    #[test]
    fn two_partial_restores_equal_one_full_restore() {
        let takes = [take(3, 30), take(2, 30), take(1, 40)];
        let first = plan_restore(&takes, 50);
        let rest = takes_not_yet_restored(&takes, &first);
        assert_eq!(rest, vec![take(3, 30), take(2, 20)]);
        let second = plan_restore(&rest, 50);
        assert_eq!(second, vec![take(2, 20), take(3, 30)]);
        assert!(takes_not_yet_restored(&rest, &second).is_empty());
    }

    fn arbitrary_lots() -> impl Strategy<Value = Vec<LotView>> {
        prop::collection::vec(
            (
                -5i64..200,
                prop::option::weighted(0.8, -50i64..200),
                0i64..20,
            ),
            0..12,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(index, (remaining, expires_in, seq))| {
                    lot(i64::try_from(index).unwrap(), remaining, expires_in, seq)
                })
                .collect()
        })
    }

    /// Expiry order with `None` (never) last, written independently of `consumption_order`.
    fn expiry_key(lot: &LotView) -> (bool, Option<Timestamp>) {
        (lot.expires_at.is_none(), lot.expires_at)
    }

    proptest! {
        #[test]
        fn consumption_covers_exactly_the_amount(
            lots in arbitrary_lots(),
            amount in -10i64..1_500,
            now_offset in -10i64..100,
        ) {
            let now = at(now_offset);
            let plan = plan_consumption(&lots, amount, now);
            prop_assert_eq!(plan.taken() + plan.shortfall, amount.max(0));
            prop_assert!(plan.shortfall >= 0);

            let spendable_total: i64 = lots
                .iter()
                .filter(|lot| is_spendable(lot, now))
                .map(|lot| lot.remaining)
                .sum();
            prop_assert_eq!(plan.shortfall, (amount.max(0) - spendable_total).max(0));

            let mut seen = std::collections::HashSet::new();
            for take in &plan.takes {
                prop_assert!(seen.insert(take.lot_id), "a lot is taken twice");
                let lot = lots.iter().find(|lot| lot.id == take.lot_id).unwrap();
                prop_assert!(take.amount > 0);
                prop_assert!(take.amount <= lot.remaining);
                prop_assert!(lot.expires_at.is_none_or(|expires_at| expires_at > now),
                    "an expired lot was touched");
            }
        }

        #[test]
        fn consumption_is_soonest_expiry_first(
            lots in arbitrary_lots(),
            amount in 1i64..1_500,
            now_offset in -10i64..100,
        ) {
            let now = at(now_offset);
            let plan = plan_consumption(&lots, amount, now);
            let taken_from = |id: i64| -> i64 {
                plan.takes.iter().filter(|take| take.lot_id == id).map(|take| take.amount).sum()
            };
            for touched in plan.takes.iter().map(|take| lots.iter().find(|lot| lot.id == take.lot_id).unwrap()) {
                for earlier in lots.iter().filter(|lot| is_spendable(lot, now)) {
                    if expiry_key(earlier) < expiry_key(touched) {
                        prop_assert_eq!(taken_from(earlier.id), earlier.remaining,
                            "lot {} expiring later was touched while lot {} had points left",
                            touched.id, earlier.id);
                    }
                }
            }
            for pair in plan.takes.windows(2) {
                let first = lots.iter().find(|lot| lot.id == pair[0].lot_id).unwrap();
                let second = lots.iter().find(|lot| lot.id == pair[1].lot_id).unwrap();
                prop_assert_eq!(consumption_order(first, second), Ordering::Less);
            }
        }

        #[test]
        fn restore_never_exceeds_what_was_taken(
            lots in arbitrary_lots(),
            spent in 1i64..1_500,
            refunds in prop::collection::vec(-5i64..400, 1..5),
        ) {
            let plan = plan_consumption(&lots, spent, at(0));
            let total_taken = plan.taken();
            let mut restored_so_far: Vec<Take> = Vec::new();
            for refund in refunds {
                let open = takes_not_yet_restored(&plan.takes, &restored_so_far);
                let open_total: i64 = open.iter().map(|take| take.amount).sum();
                let restore = plan_restore(&open, refund);
                let restored: i64 = restore.iter().map(|take| take.amount).sum();
                prop_assert_eq!(restored, refund.max(0).min(open_total));
                restored_so_far.extend(restore);
                for original in &plan.takes {
                    let back: i64 = restored_so_far
                        .iter()
                        .filter(|take| take.lot_id == original.lot_id)
                        .map(|take| take.amount)
                        .sum();
                    prop_assert!(back <= original.amount);
                }
            }
            let restored_total: i64 = restored_so_far.iter().map(|take| take.amount).sum();
            prop_assert!(restored_total <= total_taken);
        }

        #[test]
        fn one_restore_sums_to_the_smaller_of_amount_and_taken(
            amounts in prop::collection::vec(-3i64..100, 0..8),
            amount in -10i64..600,
        ) {
            let takes: Vec<Take> = amounts
                .iter()
                .enumerate()
                .map(|(index, amount)| take(i64::try_from(index).unwrap(), *amount))
                .collect();
            let total_taken: i64 = takes.iter().map(|take| take.amount.max(0)).sum();
            let restore = plan_restore(&takes, amount);
            prop_assert_eq!(
                restore.iter().map(|take| take.amount).sum::<i64>(),
                amount.max(0).min(total_taken)
            );
            for back in &restore {
                let original = takes.iter().find(|take| take.lot_id == back.lot_id).unwrap();
                prop_assert!(back.amount > 0 && back.amount <= original.amount);
            }
        }
    }

    #[test]
    fn lot_is_spendable_until_the_instant_it_expires() {
        let expires = at(10);
        let lots = [LotView {
            id: 1,
            remaining: 5,
            expires_at: Some(expires),
            seq: 1,
        }];
        let just_before = expires.checked_sub(SignedDuration::from_nanos(1)).unwrap();
        assert_eq!(plan_consumption(&lots, 5, just_before).shortfall, 0);
        assert_eq!(plan_consumption(&lots, 5, expires).shortfall, 5);
    }
}
