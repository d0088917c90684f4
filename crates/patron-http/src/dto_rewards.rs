//! Request and response types of the rewards, coupons and promotions endpoints.

use jiff::Timestamp;
use patron_domain::rewards::RewardKind;
use patron_engine::rewards::{CatalogEntry, PromotionRequest};
use patron_store::coupons::{
    CodeBatch, Coupon, CouponBenefit, CouponCheck, CouponReceipt, CouponUse, PeriodLimit, Promotion,
};
use patron_store::rewards::RewardRedemption;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::BalanceOut;
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
        let benefit = patron_store::rewards::benefit_of(&reward, entry.points, 0);
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

/// `count` redemptions per `per` (day, week, month, year, lifetime).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitBody {
    pub count: i64,
    pub per: String,
}

impl From<LimitBody> for PeriodLimit {
    fn from(b: LimitBody) -> Self {
        PeriodLimit {
            count: b.count,
            per: b.per,
        }
    }
}

impl From<PeriodLimit> for LimitBody {
    fn from(l: PeriodLimit) -> Self {
        LimitBody {
            count: l.count,
            per: l.per,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionBody {
    /// Chosen by the caller, or generated (`promo_...`).
    pub id: Option<String>,
    pub name: String,
    pub benefit: BenefitBody,
    /// Codes start with it (letters and digits 2-9, at most 8; no I, L, O, 0, 1).
    #[serde(default)]
    pub prefix: String,
    /// At most this many redemptions in all.
    pub budget_redemptions: Option<i64>,
    /// At most this much discount in all, in minor units.
    pub budget_minor: Option<i64>,
    /// Redemptions of all codes per period.
    pub limit: Option<LimitBody>,
    /// Redemptions per member per period (when the till names the member).
    pub member_limit: Option<LimitBody>,
    /// Uses of one code; null: unlimited.
    pub uses_per_code: Option<i64>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
}

impl From<PromotionBody> for PromotionRequest {
    fn from(b: PromotionBody) -> Self {
        PromotionRequest {
            id: b.id,
            name: b.name,
            benefit: b.benefit.into(),
            prefix: b.prefix,
            budget_redemptions: b.budget_redemptions,
            budget_minor: b.budget_minor,
            limit: b.limit.map(Into::into),
            member_limit: b.member_limit.map(Into::into),
            uses_per_code: b.uses_per_code,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionOut {
    pub id: String,
    pub name: String,
    pub benefit: BenefitOut,
    pub prefix: String,
    pub budget_redemptions: Option<i64>,
    pub budget_minor: Option<i64>,
    pub limit: Option<LimitBody>,
    pub member_limit: Option<LimitBody>,
    pub uses_per_code: Option<i64>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Codes generated.
    pub codes: i64,
    /// Redemptions (not released).
    pub redemptions: i64,
    /// Discount given, in minor units.
    pub spent_minor: i64,
}

impl From<Promotion> for PromotionOut {
    fn from(p: Promotion) -> Self {
        PromotionOut {
            id: p.id,
            name: p.name,
            benefit: p.benefit.into(),
            prefix: p.prefix,
            budget_redemptions: p.budget_redemptions,
            budget_minor: p.budget_minor,
            limit: p.limit.map(Into::into),
            member_limit: p.member_limit.map(Into::into),
            uses_per_code: p.uses_per_code,
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            created_at: p.created_at,
            codes: p.codes,
            redemptions: p.redemptions,
            spent_minor: p.spent_minor,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateCodesBody {
    /// 1 to 100000.
    pub count: i64,
    /// Return the codes in the answer (at most 1000); otherwise list them with
    /// `GET /v1/promotions/{id}/codes`.
    #[serde(default)]
    pub return_codes: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBatchOut {
    pub promotion_id: String,
    pub created: i64,
    /// The codes, when `return_codes` was true; else empty.
    pub codes: Vec<String>,
}

impl From<CodeBatch> for CodeBatchOut {
    fn from(b: CodeBatch) -> Self {
        CodeBatchOut {
            promotion_id: b.promotion_id,
            created: b.created,
            codes: b.codes,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponPage {
    pub data: Vec<CouponOut>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerCodesBody {
    /// The partner's codes (1 to 100000); dashes and spaces are ignored.
    pub codes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerCodesOut {
    pub pool: String,
    /// Codes added (codes already in the pool are skipped).
    pub added: i64,
}

/// Redeem points (`points`), or a reward of the catalog (`reward_id`, nothing else).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardRedeemBody {
    pub reward_id: String,
}
