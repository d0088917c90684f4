//! What can go wrong in a unit of work.
//!
//! [`StoreError::Rejected`] is a business answer ("not enough points") that the use-case layer
//! stores with an idempotency key and replays; every other variant is an infrastructure failure
//! that stores nothing, so the caller may retry.

use serde::{Deserialize, Serialize};

/// A business rejection: the request was understood and refused, nothing was written.
/// Serializable because it is stored and replayed under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Rejection {
    #[error("member {member_id} not found")]
    MemberNotFound { member_id: String },
    #[error("member {member_id} has left the club")]
    MemberExited { member_id: String },
    #[error("purchase {purchase_id} not found")]
    PurchaseNotFound { purchase_id: String },
    #[error("redemption {redemption_id} not found")]
    RedemptionNotFound { redemption_id: String },
    #[error("card {number} not found")]
    CardNotFound { number: String },
    #[error("card {number} is {status}")]
    CardUnavailable { number: String, status: String },
    #[error("not enough points: {available} available, {requested} requested")]
    InsufficientPoints { available: i64, requested: i64 },
    #[error("a member cannot transfer points to themselves")]
    TransferToSelf,
    #[error("{field} {value:?} is already used by another member")]
    Duplicate { field: String, value: String },
    #[error("document {document_id} was already posted with different content")]
    DocumentConflict { document_id: String },
    #[error("purchase {purchase_id} already belongs to a member")]
    AlreadyAttached { purchase_id: String },
    #[error("refund exceeds what remains of the purchase: {reason}")]
    RefundTooLarge { reason: String },
    #[error("redemption {redemption_id} is already {status}")]
    RedemptionResolved {
        redemption_id: String,
        status: String,
    },
    #[error("capture of {requested} points exceeds the {held} held")]
    CaptureTooLarge { held: i64, requested: i64 },
    #[error("currency {found} does not match the program's {expected}")]
    WrongCurrency { expected: String, found: String },
    #[error("tenant {tenant} has no program yet: apply one first")]
    NoProgram { tenant: String },
    #[error("reward {reward_id} not found")]
    RewardNotFound { reward_id: String },
    #[error("the member cannot have reward {reward_id} now: {}", reasons.join(", "))]
    RewardUnavailable {
        reward_id: String,
        reasons: Vec<String>,
    },
    #[error("coupon code {coupon:?} is not valid: {reason}")]
    InvalidCouponCode { coupon: String, reason: String },
    #[error("coupon {coupon} not found")]
    CouponNotFound { coupon: String },
    /// `reason`: used, expired, not_started, not_for_member, member_exited, limit_reached,
    /// member_limit_reached, budget_exhausted.
    #[error("coupon {coupon} cannot be used: {reason}")]
    CouponRefused { coupon: String, reason: String },
    #[error("coupon {coupon} has no redemption to release")]
    CouponNotRedeemed { coupon: String },
    #[error("promotion {promotion_id} not found")]
    PromotionNotFound { promotion_id: String },
    #[error("referral code {referral_code:?} belongs to no active member")]
    UnknownReferralCode { referral_code: String },
    /// The newcomer has the referrer's `field` (phone or email): the same person.
    #[error("a member cannot refer themselves (same {field} as the referrer)")]
    SelfReferral { field: String },
    #[error("member {member_id} cannot be given a referrer: {reason}")]
    ReferralNotAllowed { member_id: String, reason: String },
    #[error(
        "member {referrer_id} is referred by {member_id}, directly or further down: the link would make a loop"
    )]
    ReferralLoop {
        member_id: String,
        referrer_id: String,
    },
}

impl Rejection {
    /// Whether this rejection is stored as the answer of an idempotent request. An unknown
    /// member is not: the request did nothing, member ids are never reused, so asked again it
    /// gets the same answer; and it keeps a mistyped id from costing a write.
    pub fn is_stored(&self) -> bool {
        !matches!(self, Rejection::MemberNotFound { .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyMismatch { key: String },
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// Someone changed what this unit of work decided on (e.g. a member's tier) between the
    /// engine's read and the write; the engine re-reads and tries again.
    #[error("concurrent change: {0}")]
    Conflict(String),
    /// The club's program is no longer the version the caller decided with (another version
    /// was applied meanwhile); nothing was written. The engine loads the new one and retries.
    #[error("the program changed to version {current:?} while the request ran")]
    ProgramChanged { current: Option<i64> },
    /// Inside the store only: a unit's folded claim found a key taken; the idempotency
    /// runner answers with the stored response (`idempotency::run_folded`).
    #[error("an idempotency key of the request is taken")]
    ClaimTaken,
    /// Inside the store only: PostgreSQL's optimistic purchase path met what it leaves to the
    /// locked path (a key already claimed, points due to expire, a debt, a referral, or a
    /// concurrent unit of work on the wallet); nothing was written, and the locked path runs.
    #[error("the purchase takes the locked path")]
    TakeLockedPath,
    /// The caller's check, run inside the unit of work on what it read there, found the
    /// request invalid (e.g. a profile change that, merged with the stored profile, breaks a
    /// limit). Nothing was written and nothing is stored: like a malformed request refused
    /// before any unit of work, it is not a business rejection.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
}

impl StoreError {
    /// Transient conflicts the whole unit of work may be retried after: PostgreSQL
    /// serialization failures (40001) and deadlocks (40P01), SQLite busy/locked, and a unique
    /// violation on an idempotency claim raced by an identical request (retrying replays it).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                matches!(
                    code.as_str(),
                    "40001" | "40P01" | "5" | "6" | "517" | "261" | "262"
                ) || db.message().contains("database is locked")
                    || db.message().contains("database table is locked")
            }
            StoreError::Database(sqlx::Error::PoolTimedOut) => false,
            _ => false,
        }
    }

    /// A unique-constraint violation (SQLite 2067/1555, PostgreSQL 23505).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
            }
            _ => false,
        }
    }
}
