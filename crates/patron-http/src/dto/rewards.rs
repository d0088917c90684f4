//! The shapes of the rewards endpoints: the catalog and redeeming a reward for a coupon.

use jiff::Timestamp;
use patron_domain::rewards::RewardKind;
use patron_engine::model::{CouponBenefit, RewardRedemption};
use patron_engine::rewards::CatalogEntry;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::coupons::{BenefitOut, CouponOut};
use crate::dto::members::BalanceOut;

/// A reward of the catalog, as one member sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardOut {
    pub id: String,
    /// discount | free_product | points_to_cash | soft_benefit | partner_voucher
    pub kind: String,
    /// In the member's language (or `?locale=`), else the program's default.
    pub name: String,
    pub description: String,
    /// The price for this member (their tier's price), or the base price.
    pub points: i64,
    /// Units left; null when unlimited (or not asked for a member).
    pub stock_left: Option<i64>,
    pub available_from: Option<Timestamp>,
    pub available_until: Option<Timestamp>,
    /// Whether the member can have it now; null without `member_id`.
    pub eligible: Option<bool>,
    /// Why not: not_in_tier, not_in_segment, out_of_window, out_of_stock, limit_reached,
    /// insufficient_points.
    pub reasons: Vec<String>,
    pub benefit: BenefitOut,
}

impl From<CatalogEntry> for RewardOut {
    fn from(entry: CatalogEntry) -> Self {
        let reward = entry.reward;
        let benefit = patron_engine::rewards::benefit_of(&reward, entry.points, 0);
        let benefit = match &reward.kind {
            // The cash value depends on the currency; the coupon states it in minor units.
            RewardKind::PointsToCash { .. } => CouponBenefit {
                amount_minor: None,
                ..benefit
            },
            _ => benefit,
        };
        RewardOut {
            id: reward.id.clone(),
            kind: reward.kind.code().into(),
            name: entry.name,
            description: entry.description,
            points: entry.points,
            stock_left: entry.stock_left,
            available_from: reward.from,
            available_until: reward.until,
            eligible: entry.eligible,
            reasons: entry.reasons,
            benefit: benefit.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardPage {
    pub data: Vec<RewardOut>,
    /// Always null: the catalog is one page.
    pub next_cursor: Option<String>,
}

/// A reward redeemed: the points it cost and the coupon it issued.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardRedemptionOut {
    pub id: String,
    pub member_id: String,
    pub reward_id: String,
    pub points: i64,
    pub coupon: CouponOut,
    pub balance: BalanceOut,
    pub created_at: Timestamp,
}

impl From<RewardRedemption> for RewardRedemptionOut {
    fn from(r: RewardRedemption) -> Self {
        RewardRedemptionOut {
            id: r.id,
            member_id: r.member_id,
            reward_id: r.reward_id,
            points: r.points,
            coupon: r.coupon.into(),
            balance: r.balance.into(),
            created_at: r.created_at,
        }
    }
}

/// Redeem points (`points`), or a reward of the catalog (`reward_id`, nothing else).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardRedeemBody {
    pub reward_id: String,
}
