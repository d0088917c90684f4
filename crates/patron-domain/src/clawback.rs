//! Proportional clawback of earned points when a purchase is refunded.
//!
//! docs/LEDGER.md#refunds: target = round(points earned × cumulative refunded amount / original
//! amount); post only the difference from what was already settled; the total never exceeds what
//! was earned. Working from the *cumulative* refund rather than from each refund on its own is what
//! makes several partial refunds claw back exactly what one full refund would (invariant 6):
//! rounding errors cannot pile up, because every refund recomputes the whole target.
//!
//! Which part of the difference is taken back depends on the program's return policy; this
//! module takes its own [`ClawbackMode`] so it does not depend on the program model (callers map
//! `program::ReturnPolicy` onto it).

/// How a program recovers points after a refund (the return policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClawbackMode {
    /// Only points that are still pending are reduced; posted points are never taken back.
    OnlyPending,
    /// Posted points are taken back as far as the spendable balance allows; the rest is forgiven.
    WithinBalance,
    /// Posted points are taken back in full, even if the balance goes negative (a debt that later
    /// earnings pay first).
    Unlimited,
}

/// Where the points earned on the purchase stand when the refund arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarnState {
    /// Not yet posted (the return window is still open): the pending amount can be reduced.
    Pending,
    /// Posted to the wallet: recovering points means a debit.
    Posted,
}

/// Everything [`plan_clawback`] needs about one refund. Money amounts (`original_amount`,
/// `refunded_before`, `refund_amount`) share one unit, e.g. minor currency units; only their
/// ratio matters. Point amounts are whole points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClawbackInput {
    pub mode: ClawbackMode,
    pub state: EarnState,
    /// Points earned on the purchase (before any clawback).
    pub earned: i64,
    /// The purchase's original amount.
    pub original_amount: i64,
    /// Sum of the purchase's earlier refunds.
    pub refunded_before: i64,
    /// This refund.
    pub refund_amount: i64,
    /// Clawed back + reduced from pending + forgiven so far, for this purchase.
    pub already_settled: i64,
    /// The member's spendable balance now (only used by [`ClawbackMode::WithinBalance`]).
    pub spendable_balance: i64,
}

/// What to do about one refund. `reduce_pending + claw_back + forgiven` is the part of the
/// target settled by this refund; add it to `already_settled` for the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClawbackPlan {
    /// Cumulative target after this refund.
    pub target_total: i64,
    /// While pending: reduce the amount that will be posted (allowed in every mode). A reduction
    /// to zero is a void.
    pub reduce_pending: i64,
    /// While posted: points to debit from the wallet now.
    pub claw_back: i64,
    /// The part not recovered (posted under `OnlyPending`; beyond the balance under
    /// `WithinBalance`). Counts as settled, so a later refund does not try to recover it again.
    pub forgiven: i64,
    /// `Unlimited`: the clawback debit may take the balance below zero (becomes debt).
    pub may_go_negative: bool,
}

impl ClawbackPlan {
    /// The part of the target this refund settles, however it is settled.
    pub fn settled(&self) -> i64 {
        self.reduce_pending + self.claw_back + self.forgiven
    }
}

/// Why a refund is rejected before any clawback is planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("refund amount must be greater than zero, got {refund_amount}")]
    NotPositive { refund_amount: i64 },
    #[error(
        "refund of {refund_amount} would bring the refunded total above the original amount \
         {original_amount} ({refunded_before} already refunded)"
    )]
    ExceedsOriginal {
        original_amount: i64,
        refunded_before: i64,
        refund_amount: i64,
    },
}

impl RefundError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            RefundError::NotPositive { .. } => "refund_amount_not_positive",
            RefundError::ExceedsOriginal { .. } => "refund_exceeds_original",
        }
    }
}

/// Rejects a refund that is not positive or that would bring the purchase's refunded total above
/// its original amount. Run it before [`plan_clawback`], which clamps instead of rejecting.
pub fn check_refund(
    original_amount: i64,
    refunded_before: i64,
    refund_amount: i64,
) -> Result<(), RefundError> {
    if refund_amount <= 0 {
        return Err(RefundError::NotPositive { refund_amount });
    }
    // An overflowing sum is certainly above any original amount.
    let fits = refunded_before
        .checked_add(refund_amount)
        .is_some_and(|cumulative| cumulative <= original_amount);
    if fits {
        Ok(())
    } else {
        Err(RefundError::ExceedsOriginal {
            original_amount,
            refunded_before,
            refund_amount,
        })
    }
}

/// The cumulative clawback target: `earned × refunded / original`, rounded half away from zero.
///
/// Integer arithmetic in i128, so no amount can overflow or lose precision. `cumulative_refunded`
/// is clamped to `[0, original_amount]`, which keeps the result in `[0, earned]`. An
/// `original_amount <= 0` (nothing to be proportional to) or `earned <= 0` gives 0. The target
/// only depends on the ratio: scaling the original and refunded amounts together (cents instead
/// of units) does not change it.
pub fn clawback_target(earned: i64, original_amount: i64, cumulative_refunded: i64) -> i64 {
    if original_amount <= 0 || earned <= 0 {
        return 0;
    }
    let refunded = cumulative_refunded.clamp(0, original_amount);
    let numerator = i128::from(earned) * i128::from(refunded);
    let denominator = i128::from(original_amount);
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    // Both operands are non-negative, so "half away from zero" is "half up".
    let rounded = if 2 * remainder >= denominator {
        quotient + 1
    } else {
        quotient
    };
    // refunded <= original, so rounded <= earned and always fits; the fallback is unreachable.
    i64::try_from(rounded).unwrap_or(earned)
}

/// Plans the clawback for one refund.
///
/// `delta = max(target_total − already_settled, 0)`, then:
/// - `Pending` (any mode): `reduce_pending = delta`.
/// - `Posted` + `OnlyPending`: `forgiven = delta`.
/// - `Posted` + `WithinBalance`: `claw_back = min(delta, max(spendable_balance, 0))`,
///   `forgiven` = the rest.
/// - `Posted` + `Unlimited`: `claw_back = delta`, `may_go_negative = true`.
///
/// Out-of-range input is clamped rather than rejected (validate with [`check_refund`] first).
/// Postconditions: all amounts are `>= 0`, and as long as `already_settled <= earned`,
/// `already_settled + settled() <= earned`.
pub fn plan_clawback(input: &ClawbackInput) -> ClawbackPlan {
    let cumulative_refunded = input.refunded_before.saturating_add(input.refund_amount);
    let target_total = clawback_target(input.earned, input.original_amount, cumulative_refunded);
    // Settled beyond the target (a larger earlier refund cannot be un-refunded) gives nothing
    // back: clawbacks are only ever posted, never reversed by a later refund.
    let delta = target_total.saturating_sub(input.already_settled).max(0);
    let mut plan = ClawbackPlan {
        target_total,
        ..ClawbackPlan::default()
    };
    match (input.state, input.mode) {
        (EarnState::Pending, _) => plan.reduce_pending = delta,
        (EarnState::Posted, ClawbackMode::OnlyPending) => plan.forgiven = delta,
        (EarnState::Posted, ClawbackMode::WithinBalance) => {
            plan.claw_back = delta.min(input.spendable_balance.max(0));
            plan.forgiven = delta - plan.claw_back;
        }
        (EarnState::Posted, ClawbackMode::Unlimited) => {
            plan.claw_back = delta;
            plan.may_go_negative = true;
        }
    }
    plan
}

/// The mode a refund's clawback takes on one account. Under `Unlimited` a clawback may take the
/// balance below zero, a debt the member's later earnings settle (docs/LEDGER.md#refunds). A closed
/// account (its member left the club) never earns again, so a debt there could never be settled:
/// its clawback stops at its balance, as under `WithinBalance`, and the rest is forgiven. (Under
/// the `forfeit` exit policy that balance is zero; under `keep_until_expiry` the kept points are
/// clawed back as far as they go.)
pub fn mode_for_account(mode: ClawbackMode, account_open: bool) -> ClawbackMode {
    match (mode, account_open) {
        (ClawbackMode::Unlimited, false) => ClawbackMode::WithinBalance,
        (mode, _) => mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input(mode: ClawbackMode, state: EarnState) -> ClawbackInput {
        ClawbackInput {
            mode,
            state,
            earned: 100,
            original_amount: 10_000,
            refunded_before: 0,
            refund_amount: 5_000,
            already_settled: 0,
            spendable_balance: 1_000,
        }
    }

    #[test]
    fn refund_of_half_claws_back_half_the_points() {
        assert_eq!(clawback_target(100, 10_000, 5_000), 50);
        let plan = plan_clawback(&input(ClawbackMode::Unlimited, EarnState::Posted));
        assert_eq!(plan.target_total, 50);
        assert_eq!(plan.claw_back, 50);
        assert_eq!(plan.forgiven, 0);
    }

    #[test]
    fn target_rounds_half_away_from_zero() {
        // 3 × 1/2 = 1.5 → 2; 5 × 1/3 = 1.67 → 2; 5 × 1/4 = 1.25 → 1.
        assert_eq!(clawback_target(3, 2, 1), 2);
        assert_eq!(clawback_target(5, 3, 1), 2);
        assert_eq!(clawback_target(5, 4, 1), 1);
        assert_eq!(clawback_target(1, 2, 1), 1);
        assert_eq!(clawback_target(1, 3, 1), 0);
    }

    #[test]
    fn target_clamps_its_inputs() {
        assert_eq!(clawback_target(100, 1_000, 5_000), 100);
        assert_eq!(clawback_target(100, 1_000, -5), 0);
        assert_eq!(clawback_target(100, 0, 10), 0);
        assert_eq!(clawback_target(100, -10, -10), 0);
        assert_eq!(clawback_target(-100, 1_000, 500), 0);
        assert_eq!(clawback_target(i64::MAX, i64::MAX, i64::MAX), i64::MAX);
        assert_eq!(
            clawback_target(i64::MAX, i64::MAX, i64::MAX - 1),
            i64::MAX - 1
        );
    }

    #[test]
    fn pending_points_are_reduced_in_every_mode() {
        for mode in [
            ClawbackMode::OnlyPending,
            ClawbackMode::WithinBalance,
            ClawbackMode::Unlimited,
        ] {
            let plan = plan_clawback(&ClawbackInput {
                spendable_balance: 0,
                ..input(mode, EarnState::Pending)
            });
            assert_eq!(plan.reduce_pending, 50);
            assert_eq!(plan.claw_back, 0);
            assert_eq!(plan.forgiven, 0);
            assert!(!plan.may_go_negative);
        }
    }

    #[test]
    fn only_pending_forgives_posted_points() {
        let plan = plan_clawback(&input(ClawbackMode::OnlyPending, EarnState::Posted));
        assert_eq!(plan.claw_back, 0);
        assert_eq!(plan.forgiven, 50);
        assert_eq!(plan.settled(), 50);
    }

    #[test]
    fn within_balance_claws_back_what_the_balance_allows() {
        let plan = plan_clawback(&ClawbackInput {
            spendable_balance: 20,
            ..input(ClawbackMode::WithinBalance, EarnState::Posted)
        });
        assert_eq!(plan.claw_back, 20);
        assert_eq!(plan.forgiven, 30);
        assert!(!plan.may_go_negative);

        let in_debt = plan_clawback(&ClawbackInput {
            spendable_balance: -40,
            ..input(ClawbackMode::WithinBalance, EarnState::Posted)
        });
        assert_eq!(in_debt.claw_back, 0);
        assert_eq!(in_debt.forgiven, 50);
    }

    #[test]
    fn unlimited_may_take_the_balance_negative() {
        let plan = plan_clawback(&ClawbackInput {
            spendable_balance: 10,
            ..input(ClawbackMode::Unlimited, EarnState::Posted)
        });
        assert_eq!(plan.claw_back, 50);
        assert!(plan.may_go_negative);
    }

    #[test]
    fn a_closed_account_is_never_taken_into_debt() {
        assert_eq!(
            mode_for_account(ClawbackMode::Unlimited, false),
            ClawbackMode::WithinBalance
        );
        for mode in [
            ClawbackMode::OnlyPending,
            ClawbackMode::WithinBalance,
            ClawbackMode::Unlimited,
        ] {
            assert_eq!(
                mode_for_account(mode, true),
                mode,
                "open accounts keep the policy"
            );
        }
        assert_eq!(
            mode_for_account(ClawbackMode::OnlyPending, false),
            ClawbackMode::OnlyPending
        );
        let forfeited = plan_clawback(&ClawbackInput {
            spendable_balance: 0,
            ..input(
                mode_for_account(ClawbackMode::Unlimited, false),
                EarnState::Posted,
            )
        });
        assert_eq!((forfeited.claw_back, forfeited.forgiven), (0, 50));
        assert!(!forfeited.may_go_negative);
        let kept = plan_clawback(&ClawbackInput {
            spendable_balance: 30,
            ..input(
                mode_for_account(ClawbackMode::Unlimited, false),
                EarnState::Posted,
            )
        });
        assert_eq!((kept.claw_back, kept.forgiven), (30, 20));
    }

    #[test]
    fn second_refund_posts_only_the_difference() {
        let plan = plan_clawback(&ClawbackInput {
            refunded_before: 5_000,
            refund_amount: 2_500,
            already_settled: 50,
            ..input(ClawbackMode::Unlimited, EarnState::Posted)
        });
        assert_eq!(plan.target_total, 75);
        assert_eq!(plan.claw_back, 25);
    }

    #[test]
    fn settled_beyond_target_gives_nothing_back() {
        let plan = plan_clawback(&ClawbackInput {
            already_settled: 80,
            ..input(ClawbackMode::Unlimited, EarnState::Posted)
        });
        assert_eq!(plan.settled(), 0);
    }

    #[test]
    fn refunds_must_be_positive_and_within_the_original() {
        assert_eq!(check_refund(100, 0, 100), Ok(()));
        assert_eq!(check_refund(100, 60, 40), Ok(()));
        assert_eq!(
            check_refund(100, 0, 0),
            Err(RefundError::NotPositive { refund_amount: 0 })
        );
        assert!(matches!(
            check_refund(100, 0, -1),
            Err(RefundError::NotPositive { .. })
        ));
        let too_much = check_refund(100, 60, 41).unwrap_err();
        assert_eq!(too_much.code(), "refund_exceeds_original");
        assert_eq!(
            too_much.to_string(),
            "refund of 41 would bring the refunded total above the original amount 100 \
             (60 already refunded)"
        );
        assert!(check_refund(100, i64::MAX, 1).is_err());
        assert!(check_refund(0, 0, 1).is_err());
    }

    fn any_mode() -> impl Strategy<Value = ClawbackMode> {
        prop_oneof![
            Just(ClawbackMode::OnlyPending),
            Just(ClawbackMode::WithinBalance),
            Just(ClawbackMode::Unlimited),
        ]
    }

    /// An original amount and a split of it into partial refunds that add up to it.
    fn refund_split() -> impl Strategy<Value = (i64, Vec<i64>)> {
        (1i64..1_000_000).prop_flat_map(|original| {
            prop::collection::vec(0..=original, 0..6).prop_map(move |mut cuts| {
                cuts.push(0);
                cuts.push(original);
                cuts.sort_unstable();
                cuts.dedup();
                let parts = cuts.windows(2).map(|pair| pair[1] - pair[0]).collect();
                (original, parts)
            })
        })
    }

    proptest! {
        #[test]
        fn partial_refunds_settle_the_same_as_one_full_refund(
            earned in 0i64..10_000_000,
            (original, parts) in refund_split(),
            mode in any_mode(),
            posted_after in 0usize..8,
            balances in prop::collection::vec(-500i64..5_000, 8),
        ) {
            let mut refunded = 0;
            let mut settled = 0;
            for (index, part) in parts.iter().enumerate() {
                prop_assert_eq!(check_refund(original, refunded, *part), Ok(()));
                let state = if index < posted_after { EarnState::Pending } else { EarnState::Posted };
                let plan = plan_clawback(&ClawbackInput {
                    mode,
                    state,
                    earned,
                    original_amount: original,
                    refunded_before: refunded,
                    refund_amount: *part,
                    already_settled: settled,
                    spendable_balance: balances[index % balances.len()],
                });
                prop_assert!(plan.reduce_pending >= 0 && plan.claw_back >= 0 && plan.forgiven >= 0);
                prop_assert!(state == EarnState::Pending || plan.reduce_pending == 0);
                prop_assert!(state == EarnState::Posted || plan.claw_back + plan.forgiven == 0);
                refunded += part;
                settled += plan.settled();
                prop_assert_eq!(settled, clawback_target(earned, original, refunded));
                prop_assert!(settled <= earned);
            }
            prop_assert_eq!(refunded, original);
            prop_assert_eq!(settled, earned);

            let one_full = plan_clawback(&ClawbackInput {
                mode,
                state: EarnState::Posted,
                earned,
                original_amount: original,
                refunded_before: 0,
                refund_amount: original,
                already_settled: 0,
                spendable_balance: 0,
            });
            prop_assert_eq!(one_full.settled(), settled);
        }

        #[test]
        fn target_is_monotonic_and_bounded(
            earned in 0i64..i64::MAX,
            original in 1i64..i64::MAX,
            first in 0i64..i64::MAX,
            second in 0i64..i64::MAX,
        ) {
            let (low, high) = if first <= second { (first, second) } else { (second, first) };
            let low_target = clawback_target(earned, original, low);
            let high_target = clawback_target(earned, original, high);
            prop_assert!(0 <= low_target && low_target <= high_target && high_target <= earned);
            prop_assert_eq!(clawback_target(earned, original, original), earned);
            prop_assert_eq!(clawback_target(earned, original, 0), 0);
        }

        #[test]
        fn target_depends_only_on_the_refunded_share(
            earned in 0i64..1_000_000,
            (original, refunded) in (1i64..1_000_000).prop_flat_map(|original| (Just(original), 0..=original)),
            scale in 1i64..1_000,
        ) {
            prop_assert_eq!(
                clawback_target(earned, original, refunded),
                clawback_target(earned, original * scale, refunded * scale)
            );
        }

        #[test]
        fn settled_never_exceeds_earned_for_any_input(
            mode in any_mode(),
            posted in any::<bool>(),
            earned in -100i64..10_000,
            original in -100i64..10_000,
            refunded_before in -100i64..10_000,
            refund_amount in -100i64..10_000,
            already_settled_share in 0i64..=100,
            spendable_balance in -10_000i64..10_000,
        ) {
            let already_settled = earned.max(0) * already_settled_share / 100;
            let plan = plan_clawback(&ClawbackInput {
                mode,
                state: if posted { EarnState::Posted } else { EarnState::Pending },
                earned,
                original_amount: original,
                refunded_before,
                refund_amount,
                already_settled,
                spendable_balance,
            });
            prop_assert!(plan.reduce_pending >= 0 && plan.claw_back >= 0 && plan.forgiven >= 0);
            prop_assert!(already_settled + plan.settled() <= earned.max(0));
            prop_assert!(mode != ClawbackMode::WithinBalance || plan.claw_back <= spendable_balance.max(0));
        }
    }
}
