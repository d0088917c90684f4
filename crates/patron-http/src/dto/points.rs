//! The shapes of the points endpoints: redemptions and their holds, adjustments, transfers.

use jiff::Timestamp;
use patron_engine::model::{AdjustmentReceipt, Redemption, TransferReceipt};
use patron_engine::{AdjustRequest, RedeemRequest, TransferRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::members::BalanceOut;
use crate::ids::{ClubIds, Present, TransferId};

/// Spends points on an amount. With `hold: true` the points are reserved at checkout and
/// captured or released later (or released by themselves after `hold_minutes`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    pub points: i64,
    #[serde(default)]
    pub hold: bool,
    /// How long a hold lasts (1 to 10080 minutes; 30 when absent).
    pub hold_minutes: Option<i64>,
    pub description: Option<String>,
}

impl From<RedeemBody> for RedeemRequest {
    fn from(body: RedeemBody) -> Self {
        let RedeemBody {
            points,
            hold,
            hold_minutes,
            description,
        } = body;
        RedeemRequest {
            points,
            hold,
            hold_minutes,
            description,
        }
    }
}

/// Captures a hold: all of it, or `points` of it (the rest is released).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureBody {
    pub points: Option<i64>,
}

/// An audited correction by an administrator.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Positive credits, negative debits (never below zero).
    pub points: i64,
    /// Why: required, 1 to 500 characters; kept in the audit log.
    pub reason: String,
}

impl From<AdjustBody> for AdjustRequest {
    fn from(body: AdjustBody) -> Self {
        let AdjustBody { points, reason } = body;
        AdjustRequest { points, reason }
    }
}

/// Moves points to another member of the club; they keep their expiry dates.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    pub to_member_id: String,
    pub points: i64,
}

impl From<TransferBody> for TransferRequest {
    fn from(body: TransferBody) -> Self {
        let TransferBody {
            to_member_id,
            points,
        } = body;
        TransferRequest {
            to_member_id,
            points,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedemptionOut {
    pub id: String,
    pub member_id: String,
    pub points: i64,
    pub captured_points: i64,
    /// held | captured | released | completed | reversed
    pub status: String,
    pub hold_expires_at: Option<Timestamp>,
    pub description: Option<String>,
    pub created_at: Timestamp,
    /// The member's balance after the operation (absent when only read back).
    pub balance: Option<BalanceOut>,
}

/// A reward redemption cancelled while its coupon was unused.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardCancellationOut {
    /// The reward redemption (`rrd_...`).
    pub redemption_id: String,
    pub member_id: String,
    pub reward_id: String,
    /// The coupon, now voided: every check answers `coupon_expired`.
    pub coupon_code: String,
    /// Points given back, to the lots they came from (original expiry).
    pub points: i64,
    pub cancelled_at: Timestamp,
    pub balance: BalanceOut,
}

impl From<patron_engine::model::RewardCancellation> for RewardCancellationOut {
    fn from(cancellation: patron_engine::model::RewardCancellation) -> Self {
        let patron_engine::model::RewardCancellation {
            redemption_id,
            member_id,
            reward_id,
            coupon_code,
            points,
            cancelled_at,
            balance,
        } = cancellation;
        RewardCancellationOut {
            redemption_id,
            member_id,
            reward_id,
            coupon_code,
            points,
            cancelled_at,
            balance: BalanceOut::from(balance),
        }
    }
}

impl From<Redemption> for RedemptionOut {
    fn from(redemption: Redemption) -> Self {
        let Redemption {
            id,
            member_id,
            points,
            captured_points,
            status,
            hold_expires_at,
            description,
            created_at,
            balance,
        } = redemption;
        RedemptionOut {
            id,
            member_id,
            points,
            captured_points,
            status,
            hold_expires_at,
            description,
            created_at,
            balance: balance.map(BalanceOut::from),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentOut {
    pub member_id: String,
    pub points: i64,
    pub reason: String,
    /// The ledger entry written.
    pub transfer_id: TransferId,
    pub balance: BalanceOut,
}

impl Present<AdjustmentReceipt> for AdjustmentOut {
    fn present(receipt: AdjustmentReceipt, ids: &ClubIds) -> Self {
        let AdjustmentReceipt {
            member_id,
            points,
            reason,
            transfer_id,
            balance,
        } = receipt;
        AdjustmentOut {
            member_id,
            points,
            reason,
            transfer_id: ids.transfer(transfer_id),
            balance: balance.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOut {
    pub from_member_id: String,
    pub to_member_id: String,
    pub points: i64,
    /// The ledger entry written.
    pub transfer_id: TransferId,
    /// The sender's balance after the transfer.
    pub balance: BalanceOut,
}

impl Present<TransferReceipt> for TransferOut {
    fn present(receipt: TransferReceipt, ids: &ClubIds) -> Self {
        let TransferReceipt {
            from_member_id,
            to_member_id,
            points,
            transfer_id,
            balance,
        } = receipt;
        TransferOut {
            from_member_id,
            to_member_id,
            points,
            transfer_id: ids.transfer(transfer_id),
            balance: balance.into(),
        }
    }
}
