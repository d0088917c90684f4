//! What a refund does: which quantities of which lines come back and for how much, and what
//! happens to the points the purchase earned (docs/LEDGER.md#refunds): a pending earning is
//! reduced (voided, and what stays pends anew), posted points are clawed back under the
//! program's return policy, and what is not recovered is forgiven.

use rust_decimal::Decimal;

use crate::clawback::{self, ClawbackInput, ClawbackMode, ClawbackPlan, EarnState};
use crate::program::ReturnPolicy;
use crate::purchase::refund_line_amount;

/// One line of the purchase as the refund reads it, under the purchase's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSnapshot {
    pub line_no: i64,
    pub category: String,
    pub quantity: Decimal,
    pub total_minor: i64,
    pub eligible: bool,
    /// What earlier refunds returned of this line.
    pub refunded_quantity: Decimal,
    pub refunded_minor: i64,
}

/// The member's wallet, locked, after its due lots expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletSnapshot {
    pub spendable: i64,
    /// The program's return policy for this wallet ([`clawback_mode`], then
    /// [`clawback::mode_for_account`]).
    pub mode: ClawbackMode,
}

/// The purchase as a refund reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundSnapshot<'a> {
    pub total_minor: i64,
    pub refunded_minor: i64,
    pub eligible_minor: i64,
    /// Points earned on the purchase, and how many of them earlier refunds settled.
    pub points: i64,
    pub settled_points: i64,
    /// Where the earning stands: `None` when there is nothing to take back (no points, or the
    /// earning was voided).
    pub earning: Option<EarnState>,
    /// Whether the pending earning's transfer is known (it always is for a pending one).
    pub has_earn_transfer: bool,
    pub lines: &'a [LineSnapshot],
    /// `None`: an anonymous purchase, whose refund touches no wallet.
    pub wallet: Option<WalletSnapshot>,
}

/// A refund the purchase cannot take, and why (answered as `refund_too_large`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct RefundRejection {
    pub reason: String,
}

fn reject(reason: impl Into<String>) -> RefundRejection {
    RefundRejection {
        reason: reason.into(),
    }
}

/// One line the refund returns: its new refunded quantity (normalized) and the amount it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRefund {
    pub line_no: i64,
    pub category: String,
    pub refunded_quantity: Decimal,
    pub amount_minor: i64,
}

/// What becomes of a pending earning the refund reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingChange {
    /// Nothing to change (not pending, or not reduced).
    Keep,
    /// Void the pending earning, and pend `stays` anew with the same timeout, so the wallet's
    /// pending total is what will post.
    Repend { stays: i64 },
    /// Void the pending earning: nothing of it stays.
    Void,
}

/// Everything a refund writes, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPlan {
    pub lines: Vec<LineRefund>,
    pub amount_minor: i64,
    /// The part of `amount_minor` on lines that earn points, and the same of earlier refunds.
    pub eligible_refund_minor: i64,
    pub eligible_refunded_before: i64,
    /// The points: reduced from pending, clawed back (a debit of the wallet), forgiven.
    pub clawback: ClawbackPlan,
    pub pending: PendingChange,
    /// Whether nothing of the purchase remains after this refund.
    pub fully_refunded: bool,
}

impl RefundPlan {
    /// Points the purchase's row counts as settled by this refund.
    pub fn settled(&self) -> i64 {
        self.clawback.settled()
    }

    /// The categories and amounts the refund takes off the statistics.
    pub fn categories(&self) -> Vec<(String, i64)> {
        self.lines
            .iter()
            .map(|line| (line.category.clone(), line.amount_minor))
            .collect()
    }
}

/// The clawback mode of a return policy, before the account's own status
/// ([`clawback::mode_for_account`]) is taken into account.
pub fn clawback_mode(policy: ReturnPolicy) -> ClawbackMode {
    match policy {
        ReturnPolicy::OnlyPending => ClawbackMode::OnlyPending,
        ReturnPolicy::WithinBalance => ClawbackMode::WithinBalance,
        ReturnPolicy::Unlimited => ClawbackMode::Unlimited,
    }
}

/// Decides a refund of `requested` (`(line_no, quantity as text)`; `None` for everything that
/// remains) of the purchase read in `snapshot`.
pub fn plan_refund(
    snapshot: &RefundSnapshot<'_>,
    requested: Option<&[(i64, String)]>,
) -> Result<RefundPlan, RefundRejection> {
    let lines = refund_lines(snapshot.lines, requested)?;
    let amount_minor: i64 = lines.iter().map(|line| line.amount_minor).sum();
    clawback::check_refund(snapshot.total_minor, snapshot.refunded_minor, amount_minor)
        .map_err(|e| reject(e.to_string()))?;
    let eligible = |line_no: i64| {
        snapshot
            .lines
            .iter()
            .any(|line| line.line_no == line_no && line.eligible)
    };
    let eligible_refund_minor = lines
        .iter()
        .filter(|line| eligible(line.line_no))
        .map(|line| line.amount_minor)
        .sum();
    let eligible_refunded_before = snapshot
        .lines
        .iter()
        .filter(|line| line.eligible)
        .map(|line| line.refunded_minor)
        .sum();
    let (clawback, pending) = match (snapshot.wallet, snapshot.earning) {
        (Some(wallet), Some(state)) if snapshot.points > 0 => {
            let plan = clawback::plan_clawback(&ClawbackInput {
                mode: wallet.mode,
                state,
                earned: snapshot.points,
                original_amount: snapshot.eligible_minor,
                refunded_before: eligible_refunded_before,
                refund_amount: eligible_refund_minor,
                already_settled: snapshot.settled_points,
                spendable_balance: wallet.spendable,
            });
            (plan, pending_change(snapshot, state, &plan))
        }
        _ => (ClawbackPlan::default(), PendingChange::Keep),
    };
    Ok(RefundPlan {
        lines,
        amount_minor,
        eligible_refund_minor,
        eligible_refunded_before,
        clawback,
        pending,
        fully_refunded: snapshot.refunded_minor + amount_minor >= snapshot.total_minor,
    })
}

fn pending_change(
    snapshot: &RefundSnapshot<'_>,
    state: EarnState,
    plan: &ClawbackPlan,
) -> PendingChange {
    if state != EarnState::Pending || plan.reduce_pending <= 0 || !snapshot.has_earn_transfer {
        return PendingChange::Keep;
    }
    match snapshot.points - snapshot.settled_points - plan.reduce_pending {
        stays if stays > 0 => PendingChange::Repend { stays },
        _ => PendingChange::Void,
    }
}

/// Which quantities of which lines come back, and for how much. A line named twice returns
/// its quantities one after the other, as two refunds would.
fn refund_lines(
    lines: &[LineSnapshot],
    requested: Option<&[(i64, String)]>,
) -> Result<Vec<LineRefund>, RefundRejection> {
    let wanted: Vec<(usize, Decimal)> = match requested {
        None => lines
            .iter()
            .enumerate()
            .map(|(i, line)| (i, line.quantity - line.refunded_quantity))
            .filter(|(_, quantity)| *quantity > Decimal::ZERO)
            .collect(),
        Some(requested) => requested
            .iter()
            .map(|(line_no, quantity)| {
                let index = lines
                    .iter()
                    .position(|line| line.line_no == *line_no)
                    .ok_or_else(|| reject(format!("the purchase has no line {line_no}")))?;
                let quantity = quantity.parse::<Decimal>().map_err(|_| {
                    reject(format!(
                        "quantity {quantity:?} of line {line_no} is not a number"
                    ))
                })?;
                Ok((index, quantity))
            })
            .collect::<Result<_, RefundRejection>>()?,
    };
    if wanted.is_empty() {
        return Err(reject("nothing of this purchase remains to refund"));
    }
    // What each line has returned so far, this refund included.
    let mut returned: Vec<(Decimal, i64)> = lines
        .iter()
        .map(|line| (line.refunded_quantity, line.refunded_minor))
        .collect();
    let mut refunds = Vec::with_capacity(wanted.len());
    for (index, quantity) in wanted {
        let line = &lines[index];
        let (refunded_quantity, refunded_minor) = returned[index];
        let amount_minor = refund_line_amount(
            line.total_minor,
            line.quantity,
            refunded_quantity,
            refunded_minor,
            quantity,
        )
        .map_err(|e| reject(format!("line {}: {e}", line.line_no)))?;
        returned[index] = (refunded_quantity + quantity, refunded_minor + amount_minor);
        refunds.push(LineRefund {
            line_no: line.line_no,
            category: line.category.clone(),
            refunded_quantity: (refunded_quantity + quantity).normalize(),
            amount_minor,
        });
    }
    Ok(refunds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(line_no: i64, quantity: i64, total_minor: i64, eligible: bool) -> LineSnapshot {
        LineSnapshot {
            line_no,
            category: format!("c{line_no}"),
            quantity: Decimal::from(quantity),
            total_minor,
            eligible,
            refunded_quantity: Decimal::ZERO,
            refunded_minor: 0,
        }
    }

    fn snapshot<'a>(
        lines: &'a [LineSnapshot],
        earning: Option<EarnState>,
        wallet: Option<WalletSnapshot>,
    ) -> RefundSnapshot<'a> {
        let total_minor = lines.iter().map(|l| l.total_minor).sum();
        let eligible_minor = lines
            .iter()
            .filter(|l| l.eligible)
            .map(|l| l.total_minor)
            .sum();
        RefundSnapshot {
            total_minor,
            refunded_minor: 0,
            eligible_minor,
            points: 100,
            settled_points: 0,
            earning,
            has_earn_transfer: true,
            lines,
            wallet,
        }
    }

    fn wallet(spendable: i64, mode: ClawbackMode) -> Option<WalletSnapshot> {
        Some(WalletSnapshot { spendable, mode })
    }

    fn one(line_no: i64, quantity: &str) -> Vec<(i64, String)> {
        vec![(line_no, quantity.to_string())]
    }

    #[test]
    fn a_full_refund_returns_every_line_and_claws_back_everything() {
        let lines = [line(1, 2, 1_000, true), line(2, 1, 500, false)];
        let snap = snapshot(
            &lines,
            Some(EarnState::Posted),
            wallet(40, ClawbackMode::Unlimited),
        );
        let plan = plan_refund(&snap, None).unwrap();
        assert_eq!(plan.amount_minor, 1_500);
        assert_eq!(plan.eligible_refund_minor, 1_000);
        assert_eq!(plan.clawback.claw_back, 100);
        assert!(plan.clawback.may_go_negative);
        assert!(plan.fully_refunded);
        assert_eq!(plan.pending, PendingChange::Keep);
        assert_eq!(
            plan.categories(),
            vec![("c1".into(), 1_000), ("c2".into(), 500)]
        );
    }

    #[test]
    fn a_partial_refund_of_a_pending_earning_pends_what_stays() {
        let lines = [line(1, 4, 1_000, true)];
        let snap = snapshot(
            &lines,
            Some(EarnState::Pending),
            wallet(0, ClawbackMode::OnlyPending),
        );
        let plan = plan_refund(&snap, Some(&one(1, "1"))).unwrap();
        assert_eq!(plan.amount_minor, 250);
        assert_eq!(plan.clawback.reduce_pending, 25);
        assert_eq!(plan.pending, PendingChange::Repend { stays: 75 });
        assert_eq!(plan.lines[0].refunded_quantity, Decimal::ONE);
        let all = plan_refund(&snap, None).unwrap();
        assert_eq!(all.pending, PendingChange::Void);
    }

    #[test]
    fn within_balance_forgives_what_the_balance_cannot_pay() {
        let lines = [line(1, 1, 1_000, true)];
        let snap = snapshot(
            &lines,
            Some(EarnState::Posted),
            wallet(30, ClawbackMode::WithinBalance),
        );
        let plan = plan_refund(&snap, None).unwrap();
        assert_eq!((plan.clawback.claw_back, plan.clawback.forgiven), (30, 70));
        assert_eq!(plan.settled(), 100);
    }

    #[test]
    fn an_anonymous_purchase_only_returns_money() {
        let lines = [line(1, 1, 1_000, true)];
        let plan = plan_refund(&snapshot(&lines, Some(EarnState::Posted), None), None).unwrap();
        assert_eq!(plan.amount_minor, 1_000);
        assert_eq!(plan.clawback, ClawbackPlan::default());
    }

    #[test]
    fn refunds_the_purchase_cannot_take_are_rejected() {
        let mut lines = [line(1, 2, 1_000, true)];
        let snap = snapshot(&lines, None, None);
        let reason = |r: Result<RefundPlan, RefundRejection>| r.unwrap_err().reason;
        assert_eq!(
            reason(plan_refund(&snap, Some(&one(9, "1")))),
            "the purchase has no line 9"
        );
        assert_eq!(
            reason(plan_refund(&snap, Some(&one(1, "x")))),
            "quantity \"x\" of line 1 is not a number"
        );
        assert!(reason(plan_refund(&snap, Some(&one(1, "3")))).starts_with("line 1: "));
        let twice = [(1, "2".to_string()), (1, "1".to_string())];
        assert!(reason(plan_refund(&snap, Some(&twice))).starts_with("line 1: "));
        lines[0].refunded_quantity = Decimal::from(2);
        lines[0].refunded_minor = 1_000;
        let snap = RefundSnapshot {
            refunded_minor: 1_000,
            ..snapshot(&lines, None, None)
        };
        assert_eq!(
            reason(plan_refund(&snap, None)),
            "nothing of this purchase remains to refund"
        );
    }

    #[test]
    fn return_policies_map_to_clawback_modes() {
        assert_eq!(
            clawback_mode(ReturnPolicy::OnlyPending),
            ClawbackMode::OnlyPending
        );
        assert_eq!(
            clawback_mode(ReturnPolicy::WithinBalance),
            ClawbackMode::WithinBalance
        );
        assert_eq!(
            clawback_mode(ReturnPolicy::Unlimited),
            ClawbackMode::Unlimited
        );
    }

    /// Applies a plan to the snapshot's lines and totals, as the store writes it.
    fn apply(lines: &mut [LineSnapshot], totals: &mut (i64, i64), plan: &RefundPlan) {
        for refund in &plan.lines {
            let line = lines
                .iter_mut()
                .find(|l| l.line_no == refund.line_no)
                .unwrap();
            line.refunded_quantity = refund.refunded_quantity;
            line.refunded_minor += refund.amount_minor;
        }
        totals.0 += plan.amount_minor;
        totals.1 += plan.settled();
    }

    fn modes() -> impl Strategy<Value = ClawbackMode> {
        prop_oneof![
            Just(ClawbackMode::OnlyPending),
            Just(ClawbackMode::WithinBalance),
            Just(ClawbackMode::Unlimited)
        ]
    }

    proptest! {
        /// Refunding a purchase in parts never returns more money than it cost, never settles
        /// more points than it earned, settles as many as one full refund would, and takes no
        /// balance below zero except under the unlimited policy.
        #[test]
        fn partial_refunds_settle_what_one_full_refund_does(
            shape in proptest::collection::vec((1i64..5, 1i64..10_000, any::<bool>()), 1..5),
            steps in proptest::collection::vec((0usize..5, 1i64..5), 0..8),
            points in 0i64..10_000,
            spendable in 0i64..20_000,
            mode in modes(),
            pending in any::<bool>(),
        ) {
            let mut lines: Vec<LineSnapshot> = shape
                .iter()
                .enumerate()
                .map(|(i, (q, total, eligible))| line(i as i64 + 1, *q, *total, *eligible))
                .collect();
            let state = if pending { EarnState::Pending } else { EarnState::Posted };
            let probe = snapshot(&lines, Some(state), wallet(spendable, mode));
            let base = RefundSnapshot::<'static> {
                lines: &[],
                points,
                total_minor: probe.total_minor,
                eligible_minor: probe.eligible_minor,
                ..snapshot(&[], Some(state), wallet(spendable, mode))
            };
            fn at<'a>(
                base: &RefundSnapshot<'static>,
                lines: &'a [LineSnapshot],
                totals: (i64, i64),
            ) -> RefundSnapshot<'a> {
                RefundSnapshot {
                    refunded_minor: totals.0,
                    settled_points: totals.1,
                    lines,
                    ..*base
                }
            }
            let full = plan_refund(&at(&base, &lines, (0, 0)), None).unwrap();
            let mut totals = (0i64, 0i64);
            for (index, quantity) in steps {
                let chosen = lines[index % lines.len()].line_no;
                let requested = one(chosen, &quantity.to_string());
                if let Ok(plan) = plan_refund(&at(&base, &lines, totals), Some(&requested)) {
                    prop_assert!(plan.amount_minor > 0);
                    prop_assert!(
                        mode == ClawbackMode::Unlimited || plan.clawback.claw_back <= spendable
                    );
                    apply(&mut lines, &mut totals, &plan);
                    prop_assert!(totals.0 <= base.total_minor);
                    prop_assert!(totals.1 <= points);
                }
            }
            if let Ok(plan) = plan_refund(&at(&base, &lines, totals), None) {
                apply(&mut lines, &mut totals, &plan);
            }
            prop_assert_eq!(totals.0, full.amount_minor);
            prop_assert_eq!(totals.1, full.settled());
            prop_assert!(lines.iter().all(|l| l.refunded_minor == l.total_minor));
        }

        /// What stays pending and what the refund reduced add up to what was pending.
        #[test]
        fn a_reduced_pending_earning_keeps_the_rest(
            quantity in 1i64..10, returned in 1i64..10, points in 1i64..10_000,
        ) {
            let lines = [line(1, quantity, 10_000, true)];
            let snap = RefundSnapshot {
                points,
                ..snapshot(&lines, Some(EarnState::Pending), wallet(0, ClawbackMode::OnlyPending))
            };
            let Ok(plan) = plan_refund(&snap, Some(&one(1, &returned.min(quantity).to_string()))) else {
                return Err(TestCaseError::fail("a refund within the line is taken"));
            };
            match plan.pending {
                PendingChange::Repend { stays } => prop_assert_eq!(stays + plan.clawback.reduce_pending, points),
                PendingChange::Void => prop_assert_eq!(plan.clawback.reduce_pending, points),
                PendingChange::Keep => prop_assert_eq!(plan.clawback.reduce_pending, 0),
            }
        }
    }
}
