//! The shapes of the tiers endpoints: tier floors, a member's tier and its review.

use jiff::Timestamp;
use patron_engine::model::{TierFloor, TierFloorReceipt};
use patron_engine::tiers::{MemberTier, ReviewView, TierFloorRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Sets a member's manual tier floor: at least `tier` until `until`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFloorBody {
    /// A tier code of the program.
    pub tier: String,
    /// An RFC 3339 instant, or a date (`2026-12-31`: the floor holds through that day in the
    /// club's time zone). Absent or null: for good.
    #[serde(default)]
    pub until: Option<String>,
    /// Why: required, 1 to 500 characters; kept in the audit log.
    pub reason: String,
}

impl From<TierFloorBody> for TierFloorRequest {
    fn from(body: TierFloorBody) -> Self {
        let TierFloorBody {
            tier,
            until,
            reason,
        } = body;
        TierFloorRequest {
            tier,
            until,
            reason,
        }
    }
}

/// A manual tier floor.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFloorOut {
    /// The member is at least this tier...
    pub tier: String,
    /// ...until this instant (null: for good).
    pub until: Option<Timestamp>,
    pub reason: String,
    /// Who set it (the API key).
    pub set_by: String,
    pub set_at: Timestamp,
}

impl From<TierFloor> for TierFloorOut {
    fn from(floor: TierFloor) -> Self {
        let TierFloor {
            tier,
            until,
            reason,
            set_by,
            set_at,
        } = floor;
        TierFloorOut {
            tier,
            until,
            reason,
            set_by,
            set_at,
        }
    }
}

/// The member's tier floor after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFloorReceiptOut {
    pub member_id: String,
    /// The member's tier after the call.
    pub tier: String,
    /// Set when the floor raised the member, from this tier.
    pub raised_from: Option<String>,
    /// The floor in force (null after removing it).
    pub floor: Option<TierFloorOut>,
}

impl From<TierFloorReceipt> for TierFloorReceiptOut {
    fn from(receipt: TierFloorReceipt) -> Self {
        let TierFloorReceipt {
            member_id,
            tier,
            raised_from,
            floor,
        } = receipt;
        TierFloorReceiptOut {
            member_id,
            tier,
            raised_from,
            floor: floor.map(TierFloorOut::from),
        }
    }
}

/// One benefit of the member's tier.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierBenefitOut {
    /// A stable kind a system can act on (`free_shipping`, `priority_service`, ...), or null.
    pub kind: Option<String>,
    /// The benefit in the member's language.
    pub name: String,
}

/// Where a member stands on the tier ladder, with what the tier gives.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberTierOut {
    /// The tier code.
    pub code: String,
    /// The tier's name in the member's language.
    pub name: String,
    /// Since when the member holds it.
    pub since: Timestamp,
    /// The tier's earning multiplier on the base rate, as decimal text (`"1.5"`).
    pub multiplier: String,
    /// What members of the tier get, in the member's language.
    pub benefits: Vec<TierBenefitOut>,
    /// Always null here (set on purchase receipts when the purchase moved the member up).
    pub upgraded_from: Option<String>,
    /// The qualifying metric in the program's window (points, spend in minor units, or visits).
    pub metric: i64,
    /// The next tier, if there is one.
    pub next: Option<String>,
    /// How much more metric reaches `next`.
    pub needed_for_next: i64,
    /// A manual floor while it holds: the member is at least its tier until its `until`.
    pub floor: Option<TierFloorOut>,
}

impl From<&MemberTier> for MemberTierOut {
    fn from(tier: &MemberTier) -> Self {
        let status = &tier.view.status;
        MemberTierOut {
            code: status.code.clone(),
            name: tier.name.clone(),
            since: tier.view.since,
            multiplier: tier.multiplier.clone(),
            benefits: tier
                .benefits
                .iter()
                .map(|benefit| TierBenefitOut {
                    kind: benefit.kind.clone(),
                    name: benefit.name.clone(),
                })
                .collect(),
            upgraded_from: None,
            metric: status.metric,
            next: status.next.clone(),
            needed_for_next: status.needed_for_next,
            floor: tier.view.floor.clone().map(TierFloorOut::from),
        }
    }
}

/// When the member will move down if nothing changes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierReviewOut {
    /// The instant the downgrade becomes due (the period end plus grace).
    pub at: Timestamp,
    /// The club-local date of the nightly pass that applies it.
    pub date: String,
    /// The tier the member would fall to.
    pub to: String,
    /// Its name in the member's language.
    pub to_name: String,
    /// How much more keeps the tier, bought now: points, spend in minor units, or visits.
    pub needed: i64,
    /// What `needed` counts: `points_earned`, `spend` (minor units) or `visits`.
    pub basis: String,
}

impl From<&ReviewView> for TierReviewOut {
    fn from(view: &ReviewView) -> Self {
        TierReviewOut {
            at: view.review.at,
            date: view.date.to_string(),
            to: view.review.to.clone(),
            to_name: view.to_name.clone(),
            needed: view.review.needed,
            basis: view.basis.to_string(),
        }
    }
}
