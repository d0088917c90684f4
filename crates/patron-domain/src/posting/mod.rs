//! Posting decisions: what a purchase, a refund and a reward redemption do to the ledger,
//! decided as pure functions of what the store read under its locks.
//!
//! Every write of the store takes the same shape: read a snapshot under the lock, let a
//! function of this module decide (a plan: transfers, lot movements, rows to write, the
//! receipt's figures), write the plan in the same unit of work. The functions here know no
//! SQL and read no clock: instants come in with the snapshot.

pub mod purchase;
pub mod redemption;
pub mod refund;

pub use purchase::{Earning, attach_earning, decide_earning, metric_contribution, with_new_lot};
pub use redemption::{Benefit, RedemptionPlan, benefit_of, plan_redemption};
pub use refund::{
    LineSnapshot, PendingChange, RefundPlan, RefundRejection, RefundSnapshot, WalletSnapshot,
    clawback_mode, plan_refund,
};
