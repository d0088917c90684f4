//! The model the property test holds the engine to: members, their lots, purchases and
//! redemptions, as the ledger's rules say they evolve (docs/LEDGER.md).

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Lot {
    pub(super) expires_at: Option<Timestamp>,
    pub(super) remaining: i64,
}

#[derive(Debug, Clone)]
pub(super) struct MemberModel {
    pub(super) id: String,
    /// In creation order, as the store numbers them (the tiebreak of equal expiries).
    pub(super) lots: Vec<Lot>,
    pub(super) debt: i64,
    pub(super) exited: bool,
    /// Inactivity policy: when the whole balance expires.
    pub(super) inactive_at: Option<Timestamp>,
    /// The day (club time) the daily-limited rule of [`RULES`] last fired for the member.
    pub(super) rule_day: Option<jiff::civil::Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Earn {
    None,
    Pending,
    Posted,
    Voided,
}

#[derive(Debug, Clone)]
pub(super) struct PurchaseModel {
    pub(super) id: String,
    pub(super) member: usize,
    pub(super) quantity: i64,
    pub(super) total_minor: i64,
    pub(super) points: i64,
    pub(super) earn: Earn,
    pub(super) until: Option<Timestamp>,
    pub(super) refunded_quantity: i64,
    pub(super) refunded_minor: i64,
    pub(super) settled: i64,
    pub(super) clawed: i64,
    /// Voided because the member left: later refunds settle nothing.
    pub(super) voided_by_exit: bool,
    /// The day (club time) the daily-limited rule fired on this purchase, if it did.
    pub(super) rule_day: Option<jiff::civil::Date>,
    /// Points its refunds forgave so far.
    pub(super) forgiven: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Held,
    Captured,
    Released,
    Completed,
    Reversed,
}

impl Status {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Captured => "captured",
            Status::Released => "released",
            Status::Completed => "completed",
            Status::Reversed => "reversed",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct RedemptionModel {
    pub(super) id: String,
    pub(super) member: usize,
    pub(super) points: i64,
    pub(super) captured: i64,
    pub(super) status: Status,
    pub(super) hold_expires_at: Option<Timestamp>,
    /// What the debit took from each lot and has not given back yet, in consumption order.
    pub(super) outstanding: Vec<(usize, i64)>,
}

#[derive(Debug)]
pub(super) struct Model {
    pub(super) program: Program,
    pub(super) now: Timestamp,
    pub(super) members: Vec<MemberModel>,
    pub(super) purchases: Vec<PurchaseModel>,
    pub(super) redemptions: Vec<RedemptionModel>,
    pub(super) documents: usize,
}

/// `numerator / denominator` rounded half up (both non-negative).
pub(super) fn div_half_up(numerator: i128, denominator: i128) -> i64 {
    let (q, r) = (numerator / denominator, numerator % denominator);
    i64::try_from(if 2 * r >= denominator { q + 1 } else { q }).unwrap()
}

/// `numerator / denominator` rounded half to even (both non-negative).
pub(super) fn div_half_even(numerator: i128, denominator: i128) -> i64 {
    let (q, r) = (numerator / denominator, numerator % denominator);
    let up = 2 * r > denominator || (2 * r == denominator && q % 2 == 1);
    i64::try_from(if up { q + 1 } else { q }).unwrap()
}

impl Model {
    pub(super) fn new(program: Program, now: Timestamp) -> Model {
        Model {
            program,
            now,
            members: Vec::new(),
            purchases: Vec::new(),
            redemptions: Vec::new(),
            documents: 0,
        }
    }

    pub(super) fn spendable(&self, m: usize) -> i64 {
        self.members[m]
            .lots
            .iter()
            .map(|l| l.remaining)
            .sum::<i64>()
            - self.members[m].debt
    }

    pub(super) fn lot_expiry(&self, earned_at: Timestamp) -> Option<Timestamp> {
        expiry::lot_expires_at(&self.program.expiry, earned_at, &self.program.calendar())
    }

    pub(super) fn touch(&mut self, m: usize) {
        self.members[m].inactive_at =
            expiry::inactivity_expires_at(&self.program.expiry, self.now, &self.program.calendar());
    }

    /// Takes `amount` from the lots, soonest expiry first (never-expiring last, then creation
    /// order). Returns the takes and the part no lot covered.
    pub(super) fn consume(&mut self, m: usize, amount: i64) -> (Vec<(usize, i64)>, i64) {
        let lots = &mut self.members[m].lots;
        let mut order: Vec<usize> = (0..lots.len()).filter(|&i| lots[i].remaining > 0).collect();
        order.sort_by_key(|&i| (lots[i].expires_at.is_none(), lots[i].expires_at, i));
        let mut left = amount;
        let mut takes = Vec::new();
        for i in order {
            if left == 0 {
                break;
            }
            let take = lots[i].remaining.min(left);
            lots[i].remaining -= take;
            left -= take;
            takes.push((i, take));
        }
        (takes, left)
    }

    /// A credit: a new lot, of which a debt takes its part first.
    pub(super) fn add_lot(&mut self, m: usize, amount: i64, expires_at: Option<Timestamp>) {
        let member = &mut self.members[m];
        let paid = amount.min(member.debt);
        member.debt -= paid;
        member.lots.push(Lot {
            expires_at,
            remaining: amount - paid,
        });
    }

    /// Gives back `amount` of what a redemption took, latest take first, to the lots it came
    /// from; a debt is paid from the restored points first, soonest-expiring first.
    pub(super) fn restore(&mut self, r: usize, amount: i64) {
        let m = self.redemptions[r].member;
        let mut left = amount;
        let mut restored = Vec::new();
        for take in self.redemptions[r].outstanding.iter_mut().rev() {
            if left == 0 {
                break;
            }
            if take.1 <= 0 {
                continue;
            }
            let back = take.1.min(left);
            take.1 -= back;
            left -= back;
            restored.push((take.0, back));
        }
        assert_eq!(left, 0, "model: restoring more than was taken");
        let member = &mut self.members[m];
        for (lot, back) in &restored {
            member.lots[*lot].remaining += back;
        }
        for (lot, back) in restored.iter().rev() {
            let pay = (*back).min(member.debt);
            member.lots[*lot].remaining -= pay;
            member.debt -= pay;
        }
    }

    /// Everything due by now is gone: lots past their expiry, and the whole balance of a
    /// wallet past its inactivity deadline.
    pub(super) fn expire(&mut self) {
        let now = self.now;
        for member in &mut self.members {
            let inactive = member.inactive_at.is_some_and(|at| at <= now);
            for lot in &mut member.lots {
                if inactive || lot.expires_at.is_some_and(|at| at <= now) {
                    lot.remaining = 0;
                }
            }
        }
    }

    /// What the member's pending earnings will post: a refund while pending reduces it at once.
    pub(super) fn pending(&self, m: usize) -> i64 {
        self.purchases
            .iter()
            .filter(|p| p.member == m && p.earn == Earn::Pending)
            .map(|p| p.points - p.settled)
            .sum()
    }

    pub(super) fn held(&self, m: usize) -> i64 {
        self.redemptions
            .iter()
            .filter(|r| r.member == m && r.status == Status::Held)
            .map(|r| r.points)
            .sum()
    }

    pub(super) fn expiring(&self, m: usize) -> Vec<ExpiringPoints> {
        let mut grouped: std::collections::BTreeMap<Timestamp, i64> =
            std::collections::BTreeMap::new();
        for lot in &self.members[m].lots {
            if let Some(at) = lot
                .expires_at
                .filter(|at| *at > self.now && lot.remaining > 0)
            {
                *grouped.entry(at).or_default() += lot.remaining;
            }
        }
        grouped
            .into_iter()
            .take(5)
            .map(|(at, points)| ExpiringPoints { at, points })
            .collect()
    }
}
