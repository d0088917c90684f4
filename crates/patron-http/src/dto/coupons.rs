//! The shapes of the coupons endpoints: a coupon, its benefit, validating, using and releasing
//! it.

use jiff::Timestamp;
use patron_engine::model::{Coupon, CouponBenefit, CouponCheck, CouponReceipt, CouponUse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ClubIds, CouponRedemptionId, Present};

/// What a coupon (or a reward's coupon) gives.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BenefitOut {
    /// discount | free_product | points_to_cash | soft_benefit | partner_voucher
    pub kind: String,
    /// A fixed amount off, in minor units.
    pub amount_minor: Option<i64>,
    /// A percentage off (decimal text).
    pub percent: Option<String>,
    /// The most a percent discount takes off, in minor units.
    pub cap_minor: Option<i64>,
    pub sku: Option<String>,
    /// birthday_gift | priority_service | event_invite | other
    pub benefit: Option<String>,
}

impl From<CouponBenefit> for BenefitOut {
    fn from(b: CouponBenefit) -> Self {
        BenefitOut {
            kind: b.kind,
            amount_minor: b.amount_minor,
            percent: b.percent,
            cap_minor: b.cap_minor,
            sku: b.sku,
            benefit: b.benefit,
        }
    }
}

/// What a promotion's codes give.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BenefitBody {
    /// discount | free_product | soft_benefit
    pub kind: String,
    pub amount_minor: Option<i64>,
    pub percent: Option<String>,
    pub cap_minor: Option<i64>,
    pub sku: Option<String>,
    pub benefit: Option<String>,
}

impl From<BenefitBody> for CouponBenefit {
    fn from(b: BenefitBody) -> Self {
        CouponBenefit {
            kind: b.kind,
            amount_minor: b.amount_minor,
            percent: b.percent,
            cap_minor: b.cap_minor,
            sku: b.sku,
            benefit: b.benefit,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponOut {
    /// Display form; any form (without dashes, lower case) is accepted back.
    pub code: String,
    /// reward | promotion | partner
    pub kind: String,
    pub reward_id: Option<String>,
    pub promotion_id: Option<String>,
    /// The owner of a personal coupon; null for a public code.
    pub member_id: Option<String>,
    /// issued | redeemed | released | expired | voided (its reward redemption was cancelled,
    /// or its member left the club)
    pub state: String,
    pub uses: i64,
    /// null: unlimited.
    pub max_uses: Option<i64>,
    pub benefit: BenefitOut,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<Coupon> for CouponOut {
    fn from(c: Coupon) -> Self {
        CouponOut {
            code: c.code,
            kind: c.kind,
            reward_id: c.reward_id,
            promotion_id: c.promotion_id,
            member_id: c.member_id,
            state: c.state,
            uses: c.uses,
            max_uses: c.max_uses,
            benefit: c.benefit.into(),
            expires_at: c.expires_at,
            created_at: c.created_at,
        }
    }
}

/// Who uses a coupon, on what.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponUseBody {
    /// Required for a personal coupon; counts toward a promotion's per-member limit.
    pub member_id: Option<String>,
    /// The shop's order: a release can name it.
    pub order_id: Option<String>,
    /// The cart total in minor units: a percent discount is computed on it.
    pub cart_total_minor: Option<i64>,
}

impl From<CouponUseBody> for CouponUse {
    fn from(b: CouponUseBody) -> Self {
        CouponUse {
            member_id: b.member_id,
            order_id: b.order_id,
            cart_minor: b.cart_total_minor,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponReleaseBody {
    /// Release the redemption of this order (else the latest one).
    pub order_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponCheckOut {
    pub valid: bool,
    /// Why not: used, expired, not_started, not_for_member, member_exited (the coupon's member
    /// left the club), limit_reached, member_limit_reached, budget_exhausted.
    pub reason: Option<String>,
    /// The discount on the cart, when it is money and the cart is known.
    pub discount_minor: Option<i64>,
    pub coupon: CouponOut,
}

impl From<CouponCheck> for CouponCheckOut {
    fn from(c: CouponCheck) -> Self {
        CouponCheckOut {
            valid: c.valid,
            reason: c.reason,
            discount_minor: c.discount_minor,
            coupon: c.coupon.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponReceiptOut {
    /// The redemption (or the redemption released).
    pub redemption_id: CouponRedemptionId,
    pub order_id: Option<String>,
    pub discount_minor: i64,
    pub at: Timestamp,
    pub coupon: CouponOut,
}

impl Present<CouponReceipt> for CouponReceiptOut {
    fn present(r: CouponReceipt, ids: &ClubIds) -> Self {
        CouponReceiptOut {
            redemption_id: ids.coupon_redemption(r.redemption_id),
            order_id: r.order_id,
            discount_minor: r.discount_minor,
            at: r.at,
            coupon: r.coupon.into(),
        }
    }
}
