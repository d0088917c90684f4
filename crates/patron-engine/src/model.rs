//! The records the use cases take and answer with, for the crates above the engine (the API,
//! the CLI): members, purchases and their receipts, balances, coupons, tenants, keys, jobs, and
//! the errors and rejections. They are the store's rows, re-exported here so that nothing above
//! the engine depends on `patron-store`; where one is pure data it may later move to the domain
//! without its users noticing.

pub use patron_store::api_keys::ApiKey;
pub use patron_store::cards::CardReplacement;
pub use patron_store::clv::{BgNbdValues, ClvRun, GammaGammaValues};
pub use patron_store::coupons::{
    CodeBatch, Coupon, CouponBenefit, CouponCheck, CouponReceipt, CouponUse, PeriodLimit, Promotion,
};
pub use patron_store::idempotency::DOCUMENT_KEY_PREFIX;
pub use patron_store::jobs::{Job, JobFilter};
pub use patron_store::members::{ExitReceipt, Lookup, Member, Profile};
pub use patron_store::metrics::PointsFlow;
pub use patron_store::programs::{AuditEntry, ProgramVersion};
pub use patron_store::purchases::{
    Purchase, PurchaseLine, PurchaseReceipt, RefundReceipt, TierStatus,
};
pub use patron_store::redemptions::{
    AdjustmentReceipt, Balance, ExpiringPoints, Redemption, TransferReceipt,
};
pub use patron_store::reward_cancel::RewardCancellation;
pub use patron_store::rewards::RewardRedemption;
pub use patron_store::rules::{EventReceipt, RuleAward};
pub use patron_store::segments::SegmentMember;
pub use patron_store::standing::{TierFloor, TierFloorReceipt};
pub use patron_store::stats::{MemberStats, StatsRebuild};
pub use patron_store::tenants::{IdKey, Tenant, TenantId};
pub use patron_store::verify::VerifyReport;
pub use patron_store::{PurchasePaths, Rejection, StoreError, StoreOptions};

/// The states a scheduled job can be in (`pending`, `running`, `done`, `failed`...).
pub mod job_states {
    pub use patron_store::jobs::state::*;
}
