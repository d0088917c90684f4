//! The shapes of the promotions endpoints: promotions, their limits, code batches and partner
//! codes.

use jiff::Timestamp;
use patron_engine::model::{CodeBatch, PeriodLimit, Promotion};
use patron_engine::rewards::PromotionRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::coupons::{BenefitBody, BenefitOut, CouponOut};

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
