//! Coupons and promotions: codes issued by reward redemptions, generated in bulk for a
//! promotion, or uploaded by a partner; validating a code for a member and a cart, redeeming
//! it at a till or web shop (limits per period per promotion and per member, budgets), and
//! releasing a redemption when an order is cancelled. Every issue, redemption and release is
//! a row of `coupon_events`.

use jiff::Timestamp;
use jiff::civil::Weekday;
use patron_domain::program::Program;
use patron_domain::rules::{LimitPer, RuleLimit, limit_period};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::LedgerCtx;
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time, unit_of_work};

/// What a coupon gives. `kind`: discount, free_product, points_to_cash, soft_benefit,
/// partner_voucher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CouponBenefit {
    pub kind: String,
    /// A fixed amount off (discounts, points-to-cash), in minor units.
    pub amount_minor: Option<i64>,
    /// A percentage off, as decimal text.
    pub percent: Option<String>,
    /// The most a percent discount takes off, in minor units.
    pub cap_minor: Option<i64>,
    /// The free product.
    pub sku: Option<String>,
    /// birthday_gift, priority_service, event_invite, other.
    pub benefit: Option<String>,
}

impl CouponBenefit {
    /// The money this benefit takes off a cart of `cart_minor` (when known).
    pub fn discount_on(&self, cart_minor: Option<i64>) -> Option<i64> {
        if let Some(percent) = &self.percent {
            let percent = percent
                .parse::<patron_domain::rust_decimal::Decimal>()
                .ok()?;
            let cart = cart_minor?;
            let value = patron_domain::rewards::DiscountValue::Percent {
                percent,
                cap_minor: self.cap_minor,
            };
            return Some(value.on_cart(cart));
        }
        self.amount_minor
            .map(|amount| cart_minor.map_or(amount, |cart| amount.min(cart.max(0))))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    /// Display form (`R-7KQ4-M9XP`); any form with or without dashes is accepted back.
    pub code: String,
    /// reward | promotion | partner
    pub kind: String,
    pub reward_id: Option<String>,
    pub promotion_id: Option<String>,
    /// The owner of a personal coupon; `None` for a public code.
    pub member_id: Option<String>,
    /// issued | redeemed | released | expired | voided (its reward redemption was cancelled,
    /// or its member left the club)
    pub state: String,
    pub uses: i64,
    pub max_uses: Option<i64>,
    pub benefit: CouponBenefit,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A coupon to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewCoupon<'a> {
    pub code: &'a str,
    pub display: &'a str,
    pub kind: &'a str,
    pub reward_id: Option<&'a str>,
    pub promotion_id: Option<&'a str>,
    pub member_id: Option<&'a str>,
    pub max_uses: Option<i64>,
    pub benefit: &'a CouponBenefit,
    pub expires_at: Option<Timestamp>,
}

/// A limit on redemptions: `count` per `per` (day, week, month, year or lifetime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodLimit {
    pub count: i64,
    pub per: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPromotion {
    pub id: String,
    pub name: String,
    pub benefit: CouponBenefit,
    pub prefix: String,
    /// At most this many redemptions in all (releases give them back).
    pub budget_redemptions: Option<i64>,
    /// At most this much discount in all, in minor units.
    pub budget_minor: Option<i64>,
    pub limit: Option<PeriodLimit>,
    pub member_limit: Option<PeriodLimit>,
    /// Uses of one code; `None`: unlimited.
    pub uses_per_code: Option<i64>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: String,
    pub name: String,
    pub benefit: CouponBenefit,
    pub prefix: String,
    pub budget_redemptions: Option<i64>,
    pub budget_minor: Option<i64>,
    pub limit: Option<PeriodLimit>,
    pub member_limit: Option<PeriodLimit>,
    pub uses_per_code: Option<i64>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Codes generated or imported.
    pub codes: i64,
    /// Redemptions not released.
    pub redemptions: i64,
    /// Discount given by those redemptions, in minor units.
    pub spent_minor: i64,
}

/// Codes added to a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeBatch {
    pub promotion_id: String,
    pub created: i64,
    /// The new codes (display form), when the caller asked for them.
    pub codes: Vec<String>,
}

/// What a till or web shop says about the use of a coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponUse {
    pub member_id: Option<String>,
    pub order_id: Option<String>,
    pub cart_minor: Option<i64>,
}

/// The answer to "is this code good for this member and cart now".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponCheck {
    pub coupon: Coupon,
    pub valid: bool,
    /// Why not, when not valid (the reasons of [`Rejection::CouponRefused`]).
    pub reason: Option<String>,
    /// The discount on the cart, when it is money and the cart is known.
    pub discount_minor: Option<i64>,
}

/// A redemption or release of a coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponReceipt {
    pub redemption_id: i64,
    pub coupon: Coupon,
    pub order_id: Option<String>,
    pub discount_minor: i64,
    pub at: Timestamp,
}

const COUPON_COLUMNS: &str = "code, display, kind, reward_id, promotion_id, member_id, state, uses, \
     max_uses, benefit, expires_at, created_at";

fn coupon_from_row(row: &AnyRow) -> Result<Coupon, StoreError> {
    let benefit: String = row.try_get("benefit")?;
    Ok(Coupon {
        code: row.try_get("display")?,
        kind: row.try_get("kind")?,
        reward_id: row.try_get("reward_id")?,
        promotion_id: row.try_get("promotion_id")?,
        member_id: row.try_get("member_id")?,
        state: row.try_get("state")?,
        uses: row.try_get("uses")?,
        max_uses: row.try_get("max_uses")?,
        benefit: serde_json::from_str(&benefit)?,
        expires_at: time::opt_from_db(row.try_get("expires_at")?)?,
        created_at: time::from_db(row.try_get("created_at")?)?,
    })
}

/// The period a word names (`day`, `week`, `month`, `year`, `lifetime`).
pub fn per_from_word(word: &str) -> Result<LimitPer, StoreError> {
    Ok(match word {
        "day" => LimitPer::Day,
        "week" => LimitPer::Week,
        "month" => LimitPer::Month,
        "year" => LimitPer::Year,
        "lifetime" => LimitPer::Lifetime,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown limit period {other:?}"
            )));
        }
    })
}

fn limit_from(count: Option<i64>, per: Option<String>) -> Result<Option<PeriodLimit>, StoreError> {
    match (count, per) {
        (Some(count), Some(per)) => Ok(Some(PeriodLimit { count, per })),
        _ => Ok(None),
    }
}

/// The first instant of the period of `limit` containing `now` (`None`: lifetime).
fn period_start(program: &Program, per: LimitPer, now: Timestamp) -> Option<Timestamp> {
    let limit = RuleLimit {
        count: 1,
        per,
        week_start: Weekday::Monday,
    };
    limit_period(&limit, now, &program.calendar()).start
}

pub(crate) async fn insert_coupon(
    c: &mut Conn,
    ctx: LedgerCtx,
    new: &NewCoupon<'_>,
) -> Result<bool, StoreError> {
    let benefit = serde_json::to_string(new.benefit)?;
    let inserted = sqlx::query(
        "INSERT INTO coupons (tenant_id, code, display, kind, reward_id, promotion_id, member_id, state, uses, \
         max_uses, benefit, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'issued', 0, $8, $9, $10, $11, $11) \
         ON CONFLICT (tenant_id, code) DO NOTHING RETURNING code",
    )
    .bind(ctx.tenant.0)
    .bind(new.code)
    .bind(new.display)
    .bind(new.kind)
    .bind(new.reward_id)
    .bind(new.promotion_id)
    .bind(new.member_id)
    .bind(new.max_uses)
    .bind(benefit)
    .bind(new.expires_at.map(time::to_db))
    .bind(time::to_db(ctx.now))
    .fetch_optional(conn(c))
    .await?
    .is_some();
    if inserted {
        record_event(
            c,
            ctx,
            new.code,
            "issued",
            new.promotion_id,
            new.reward_id,
            new.member_id,
        )
        .await?;
    }
    Ok(inserted)
}

pub(crate) async fn record_event(
    c: &mut Conn,
    ctx: LedgerCtx,
    code: &str,
    event: &str,
    promotion_id: Option<&str>,
    reward_id: Option<&str>,
    member_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO coupon_events (tenant_id, code, event, promotion_id, reward_id, member_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(ctx.tenant.0)
    .bind(code)
    .bind(event)
    .bind(promotion_id)
    .bind(reward_id)
    .bind(member_id)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    Ok(())
}

/// Finds a coupon by any of the canonical forms a typed code may stand for.
async fn find_coupon(
    c: &mut Conn,
    ctx: LedgerCtx,
    codes: &[String],
    lock: bool,
) -> Result<(String, Coupon), StoreError> {
    for code in codes {
        let sql = format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE tenant_id = $1 AND code = $2{}",
            if lock { ctx.backend.for_update() } else { "" }
        );
        let row = sqlx::query(&sql)
            .bind(ctx.tenant.0)
            .bind(code)
            .fetch_optional(conn(c))
            .await?;
        if let Some(row) = row {
            return Ok((code.clone(), coupon_from_row(&row)?));
        }
    }
    Err(Rejection::CouponNotFound {
        coupon: codes.first().cloned().unwrap_or_default(),
    }
    .into())
}

async fn load_promotion(
    c: &mut Conn,
    ctx: LedgerCtx,
    id: &str,
    lock: bool,
) -> Result<Promotion, StoreError> {
    let sql = format!(
        "SELECT id, name, benefit, prefix, budget_redemptions, budget_minor, limit_count, limit_per, \
         member_limit_count, member_limit_per, uses_per_code, starts_at, ends_at, created_at \
         FROM promotions WHERE tenant_id = $1 AND id = $2{}",
        if lock { ctx.backend.for_update() } else { "" }
    );
    let row = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(id)
        .fetch_optional(conn(c))
        .await?
        .ok_or_else(|| Rejection::PromotionNotFound {
            promotion_id: id.to_string(),
        })?;
    let benefit: String = row.try_get("benefit")?;
    let counts = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM coupons WHERE tenant_id = $1 AND promotion_id = $2) AS codes, \
         (SELECT COUNT(*) FROM coupon_redemptions WHERE tenant_id = $1 AND promotion_id = $2 AND released_at IS NULL) AS redemptions, \
         (SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM coupon_redemptions \
          WHERE tenant_id = $1 AND promotion_id = $2 AND released_at IS NULL) AS spent",
    )
    .bind(ctx.tenant.0)
    .bind(id)
    .fetch_one(conn(c))
    .await?;
    Ok(Promotion {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        benefit: serde_json::from_str(&benefit)?,
        prefix: row.try_get("prefix")?,
        budget_redemptions: row.try_get("budget_redemptions")?,
        budget_minor: row.try_get("budget_minor")?,
        limit: limit_from(row.try_get("limit_count")?, row.try_get("limit_per")?)?,
        member_limit: limit_from(
            row.try_get("member_limit_count")?,
            row.try_get("member_limit_per")?,
        )?,
        uses_per_code: row.try_get("uses_per_code")?,
        starts_at: time::opt_from_db(row.try_get("starts_at")?)?,
        ends_at: time::opt_from_db(row.try_get("ends_at")?)?,
        created_at: time::from_db(row.try_get("created_at")?)?,
        codes: counts.try_get("codes")?,
        redemptions: counts.try_get("redemptions")?,
        spent_minor: counts.try_get("spent")?,
    })
}

async fn count_redemptions(
    c: &mut Conn,
    ctx: LedgerCtx,
    promotion_id: &str,
    member_id: Option<&str>,
    since: Option<Timestamp>,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM coupon_redemptions WHERE tenant_id = $1 AND promotion_id = $2 \
         AND released_at IS NULL AND ($3 = 0 OR member_id = $4) AND redeemed_at >= $5",
    )
    .bind(ctx.tenant.0)
    .bind(promotion_id)
    .bind(i64::from(member_id.is_some()))
    .bind(member_id.unwrap_or_default())
    .bind(since.map_or(i64::MIN, time::to_db))
    .fetch_one(conn(c))
    .await?;
    Ok(row.try_get("n")?)
}

/// Why `coupon` cannot be used now by `usage.member_id`, or `None` when it can; and the
/// discount it gives the cart.
async fn refusal(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    coupon: &Coupon,
    promotion: Option<&Promotion>,
    usage: &CouponUse,
) -> Result<(Option<&'static str>, Option<i64>), StoreError> {
    let discount = coupon.benefit.discount_on(usage.cart_minor);
    let now = ctx.now;
    // A personal coupon first: a stranger learns nothing more about it, and one whose
    // member left says so rather than "expired" (the exit voids it with an expiry of now;
    // the status also covers members who left before exits voided their coupons).
    if let Some(owner) = &coupon.member_id {
        if usage.member_id.as_deref() != Some(owner.as_str()) {
            return Ok((Some("not_for_member"), discount));
        }
        if member_exited(c, ctx, owner).await? {
            return Ok((Some("member_exited"), discount));
        }
    }
    if coupon.max_uses.is_some_and(|max| coupon.uses >= max) {
        return Ok((Some("used"), discount));
    }
    if coupon.expires_at.is_some_and(|at| at <= now) || coupon.state == "expired" {
        return Ok((Some("expired"), discount));
    }
    let Some(promotion) = promotion else {
        return Ok((None, discount));
    };
    if promotion.starts_at.is_some_and(|at| now < at) {
        return Ok((Some("not_started"), discount));
    }
    if promotion.ends_at.is_some_and(|at| now >= at) {
        return Ok((Some("expired"), discount));
    }
    if promotion
        .budget_redemptions
        .is_some_and(|budget| promotion.redemptions >= budget)
        || promotion
            .budget_minor
            .is_some_and(|budget| promotion.spent_minor + discount.unwrap_or(0) > budget)
    {
        return Ok((Some("budget_exhausted"), discount));
    }
    if let Some(limit) = &promotion.limit {
        let since = period_start(program, per_from_word(&limit.per)?, now);
        if count_redemptions(c, ctx, &promotion.id, None, since).await? >= limit.count {
            return Ok((Some("limit_reached"), discount));
        }
    }
    if let (Some(limit), Some(member_id)) = (&promotion.member_limit, usage.member_id.as_deref()) {
        let since = period_start(program, per_from_word(&limit.per)?, now);
        if count_redemptions(c, ctx, &promotion.id, Some(member_id), since).await? >= limit.count {
            return Ok((Some("member_limit_reached"), discount));
        }
    }
    Ok((None, discount))
}

/// Whether `member_id` has left the club.
async fn member_exited(c: &mut Conn, ctx: LedgerCtx, member_id: &str) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT status FROM members WHERE tenant_id = $1 AND id = $2")
        .bind(ctx.tenant.0)
        .bind(member_id)
        .fetch_optional(conn(c))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<String, _>("status")? == "exited",
        None => false,
    })
}

/// Voids a coupon: state `voided`, expired from now on so every check refuses it, and a
/// `voided` event (a cancelled reward redemption, a member's exit).
pub(crate) async fn void_coupon(
    c: &mut Conn,
    ctx: LedgerCtx,
    code: &str,
    promotion_id: Option<&str>,
    reward_id: Option<&str>,
    member_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE coupons SET state = 'voided', expires_at = $3, updated_at = $3 WHERE tenant_id = $1 AND code = $2",
    )
    .bind(ctx.tenant.0)
    .bind(code)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    record_event(c, ctx, code, "voided", promotion_id, reward_id, member_id).await
}

/// Voids the member's coupons that could still be used (`issued`, `released`); part of the
/// member's exit. Answers how many.
pub(crate) async fn void_member_coupons(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT code, promotion_id, reward_id FROM coupons WHERE tenant_id = $1 AND member_id = $2 \
         AND state IN ('issued', 'released') ORDER BY code{}",
        ctx.backend.for_update()
    );
    let rows = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(member_id)
        .fetch_all(conn(c))
        .await?;
    for row in &rows {
        let code: String = row.try_get("code")?;
        let promotion_id: Option<String> = row.try_get("promotion_id")?;
        let reward_id: Option<String> = row.try_get("reward_id")?;
        void_coupon(
            c,
            ctx,
            &code,
            promotion_id.as_deref(),
            reward_id.as_deref(),
            Some(member_id),
        )
        .await?;
    }
    Ok(rows.len() as u64)
}

pub(crate) async fn coupon_in_tx(
    c: &mut Conn,
    ctx: LedgerCtx,
    code: &str,
) -> Result<Coupon, StoreError> {
    let (_, coupon) = find_coupon(c, ctx, &[code.to_string()], false).await?;
    Ok(coupon)
}

impl Store {
    fn ctx(&self, tenant: TenantId, now: Timestamp) -> LedgerCtx {
        LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        }
    }

    /// A coupon, by any canonical form the typed code may stand for.
    pub async fn coupon(
        &self,
        tenant: TenantId,
        codes: &[String],
        now: Timestamp,
    ) -> Result<Coupon, StoreError> {
        let mut c = self.pool().acquire().await?;
        Ok(find_coupon(&mut c, self.ctx(tenant, now), codes, false)
            .await?
            .1)
    }

    /// Whether a code is good for this member and cart now, and what it gives. Reads only.
    pub async fn validate_coupon(
        &self,
        tenant: TenantId,
        program: &Program,
        codes: &[String],
        usage: &CouponUse,
        now: Timestamp,
    ) -> Result<CouponCheck, StoreError> {
        let ctx = self.ctx(tenant, now);
        let mut c = self.pool().acquire().await?;
        let (_, coupon) = find_coupon(&mut c, ctx, codes, false).await?;
        let promotion = match &coupon.promotion_id {
            Some(id) => Some(load_promotion(&mut c, ctx, id, false).await?),
            None => None,
        };
        let (reason, discount_minor) =
            refusal(&mut c, ctx, program, &coupon, promotion.as_ref(), usage).await?;
        Ok(CouponCheck {
            coupon,
            valid: reason.is_none(),
            reason: reason.map(str::to_string),
            discount_minor,
        })
    }

    /// Marks a coupon used (at a till or web shop), within its limits and budgets.
    pub async fn redeem_coupon(
        &self,
        tenant: TenantId,
        program: &Program,
        codes: &[String],
        usage: &CouponUse,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<CouponReceipt>, StoreError> {
        let ctx = self.ctx(tenant, now);
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                // The promotion row first (it serializes every code of the promotion for its
                // budget and limits), then the coupon.
                let (code, peek) = find_coupon(c, ctx, codes, false).await?;
                let promotion = match &peek.promotion_id {
                    Some(id) => Some(load_promotion(c, ctx, id, true).await?),
                    None => None,
                };
                let (_, coupon) = find_coupon(c, ctx, std::slice::from_ref(&code), true).await?;
                let (reason, discount) =
                    refusal(c, ctx, program, &coupon, promotion.as_ref(), usage).await?;
                if let Some(reason) = reason {
                    return Err(Rejection::CouponRefused {
                        coupon: coupon.code.clone(),
                        reason: reason.to_string(),
                    }
                    .into());
                }
                let discount = discount.unwrap_or(0);
                let member = coupon.member_id.clone().or_else(|| usage.member_id.clone());
                let row = sqlx::query(
                    "INSERT INTO coupon_redemptions (tenant_id, code, promotion_id, reward_id, member_id, order_id, \
                     amount_minor, redeemed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(tenant.0)
                .bind(&code)
                .bind(&coupon.promotion_id)
                .bind(&coupon.reward_id)
                .bind(&member)
                .bind(&usage.order_id)
                .bind(discount)
                .bind(time::to_db(now))
                .fetch_one(conn(c))
                .await?;
                let redemption_id: i64 = row.try_get("id")?;
                let uses = coupon.uses + 1;
                let state = if coupon.max_uses.is_some_and(|max| uses >= max) {
                    "redeemed"
                } else {
                    coupon.state.as_str()
                };
                sqlx::query(
                    "UPDATE coupons SET uses = $3, state = $4, updated_at = $5 WHERE tenant_id = $1 AND code = $2",
                )
                .bind(tenant.0)
                .bind(&code)
                .bind(uses)
                .bind(state)
                .bind(time::to_db(now))
                .execute(conn(c))
                .await?;
                record_event(
                    c,
                    ctx,
                    &code,
                    "redeemed",
                    coupon.promotion_id.as_deref(),
                    coupon.reward_id.as_deref(),
                    member.as_deref(),
                )
                .await?;
                Ok(CouponReceipt {
                    redemption_id,
                    coupon: coupon_in_tx(c, ctx, &code).await?,
                    order_id: usage.order_id.clone(),
                    discount_minor: discount,
                    at: now,
                })
            }
        )
    }

    /// Undoes the latest redemption of a coupon (of `order_id`, when given): the coupon can be
    /// used again, and the promotion's budget and limits get the use back.
    pub async fn release_coupon(
        &self,
        tenant: TenantId,
        codes: &[String],
        order_id: Option<&str>,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<CouponReceipt>, StoreError> {
        let ctx = self.ctx(tenant, now);
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let (code, coupon) = find_coupon(c, ctx, codes, true).await?;
                let sql = format!(
                    "SELECT id, member_id, order_id, amount_minor FROM coupon_redemptions \
                     WHERE tenant_id = $1 AND code = $2 AND released_at IS NULL AND ($3 = 0 OR order_id = $4) \
                     ORDER BY id DESC LIMIT 1{}",
                    ctx.backend.for_update()
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(&code)
                    .bind(i64::from(order_id.is_some()))
                    .bind(order_id.unwrap_or_default())
                    .fetch_optional(conn(c))
                    .await?
                    .ok_or_else(|| Rejection::CouponNotRedeemed {
                        coupon: coupon.code.clone(),
                    })?;
                let redemption_id: i64 = row.try_get("id")?;
                let member_id: Option<String> = row.try_get("member_id")?;
                let released_order: Option<String> = row.try_get("order_id")?;
                let amount: i64 = row.try_get("amount_minor")?;
                sqlx::query("UPDATE coupon_redemptions SET released_at = $2 WHERE id = $1")
                    .bind(redemption_id)
                    .bind(time::to_db(now))
                    .execute(conn(c))
                    .await?;
                // A coupon whose member left stays void: the promotion gets the use back, the
                // coupon does not become usable again.
                sqlx::query(
                    "UPDATE coupons SET uses = $3, updated_at = $4, state = CASE WHEN state = 'voided' \
                     OR EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = coupons.tenant_id \
                     AND m.id = coupons.member_id AND m.status = 'exited') THEN 'voided' ELSE 'released' END \
                     WHERE tenant_id = $1 AND code = $2",
                )
                .bind(tenant.0)
                .bind(&code)
                .bind((coupon.uses - 1).max(0))
                .bind(time::to_db(now))
                .execute(conn(c))
                .await?;
                record_event(
                    c,
                    ctx,
                    &code,
                    "released",
                    coupon.promotion_id.as_deref(),
                    coupon.reward_id.as_deref(),
                    member_id.as_deref(),
                )
                .await?;
                Ok(CouponReceipt {
                    redemption_id,
                    coupon: coupon_in_tx(c, ctx, &code).await?,
                    order_id: released_order,
                    discount_minor: amount,
                    at: now,
                })
            }
        )
    }

    /// Creates a promotion (no codes yet: see [`Store::add_promotion_codes`]).
    pub async fn create_promotion(
        &self,
        tenant: TenantId,
        new: &NewPromotion,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Promotion>, StoreError> {
        let ctx = self.ctx(tenant, now);
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                sqlx::query(
                    "INSERT INTO promotions (tenant_id, id, name, benefit, prefix, budget_redemptions, budget_minor, \
                     limit_count, limit_per, member_limit_count, member_limit_per, uses_per_code, starts_at, ends_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(tenant.0)
                .bind(&new.id)
                .bind(&new.name)
                .bind(serde_json::to_string(&new.benefit)?)
                .bind(&new.prefix)
                .bind(new.budget_redemptions)
                .bind(new.budget_minor)
                .bind(new.limit.as_ref().map(|l| l.count))
                .bind(new.limit.as_ref().map(|l| l.per.clone()))
                .bind(new.member_limit.as_ref().map(|l| l.count))
                .bind(new.member_limit.as_ref().map(|l| l.per.clone()))
                .bind(new.uses_per_code)
                .bind(new.starts_at.map(time::to_db))
                .bind(new.ends_at.map(time::to_db))
                .bind(time::to_db(now))
                .execute(conn(c))
                .await?;
                load_promotion(c, ctx, &new.id, false).await
            }
        )
    }

    pub async fn promotion(
        &self,
        tenant: TenantId,
        id: &str,
        now: Timestamp,
    ) -> Result<Promotion, StoreError> {
        let mut c = self.pool().acquire().await?;
        load_promotion(&mut c, self.ctx(tenant, now), id, false).await
    }

    /// Adds generated codes (`(canonical, display)`) to a promotion as public coupons. A code
    /// that already exists is skipped (the engine draws from a space where that is rare).
    pub async fn add_promotion_codes(
        &self,
        tenant: TenantId,
        promotion_id: &str,
        codes: &[(String, String)],
        return_codes: bool,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<CodeBatch>, StoreError> {
        let ctx = self.ctx(tenant, now);
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let promotion = load_promotion(c, ctx, promotion_id, true).await?;
                let mut created = 0;
                let mut listed = Vec::new();
                for (code, display) in codes {
                    let new = NewCoupon {
                        code,
                        display,
                        kind: "promotion",
                        reward_id: None,
                        promotion_id: Some(&promotion.id),
                        member_id: None,
                        max_uses: promotion.uses_per_code,
                        benefit: &promotion.benefit,
                        expires_at: promotion.ends_at,
                    };
                    if insert_coupon(c, ctx, &new).await? {
                        created += 1;
                        if return_codes {
                            listed.push(display.clone());
                        }
                    }
                }
                Ok(CodeBatch {
                    promotion_id: promotion.id,
                    created,
                    codes: listed,
                })
            }
        )
    }

    /// A page of a promotion's codes, in canonical order, after `after` (a canonical code).
    pub async fn promotion_codes(
        &self,
        tenant: TenantId,
        promotion_id: &str,
        after: Option<&str>,
        limit: i64,
        now: Timestamp,
    ) -> Result<Vec<(String, Coupon)>, StoreError> {
        let mut c = self.pool().acquire().await?;
        load_promotion(&mut c, self.ctx(tenant, now), promotion_id, false).await?;
        let sql = format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE tenant_id = $1 AND promotion_id = $2 AND code > $3 \
             ORDER BY code LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(promotion_id)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("code")?, coupon_from_row(row)?)))
            .collect()
    }

    /// Uploads partner codes into a pool; codes already there are skipped. Returns how many
    /// were added.
    pub async fn import_partner_codes(
        &self,
        tenant: TenantId,
        pool: &str,
        codes: &[String],
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<i64>, StoreError> {
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let mut added = 0;
                for code in codes {
                    let row = sqlx::query(
                        "INSERT INTO partner_codes (tenant_id, pool, code, uploaded_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (tenant_id, pool, code) DO NOTHING RETURNING id",
                    )
                    .bind(tenant.0)
                    .bind(pool)
                    .bind(code)
                    .bind(time::to_db(now))
                    .fetch_optional(conn(c))
                    .await?;
                    added += i64::from(row.is_some());
                }
                Ok(added)
            }
        )
    }

    /// How many coupon events of each kind (`issued`, `redeemed`, `released`, `expired`) a
    /// club has recorded: the redemption-rate metric's inputs.
    pub async fn coupon_event_counts(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT event, COUNT(*) AS n FROM coupon_events WHERE tenant_id = $1 GROUP BY event ORDER BY event",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("event")?, row.try_get("n")?)))
            .collect()
    }
}

impl Store {
    /// Marks the tenant's coupons whose expiry has passed by `now` as `expired` (at most
    /// `limit` of them, soonest first), recording an `expired` event for each, in one unit
    /// of work. Only coupons still usable (`issued`, `released`) expire; running it again
    /// expires nothing new. Returns how many expired.
    pub async fn expire_due_coupons(
        &self,
        tenant: TenantId,
        now: Timestamp,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        unit_of_work!(self, |tx| {
            async {
            let sql = format!(
                "SELECT code, promotion_id, reward_id, member_id FROM coupons WHERE tenant_id = $1 \
                 AND state IN ('issued', 'released') AND expires_at IS NOT NULL AND expires_at <= $2 \
                 ORDER BY expires_at, code LIMIT $3{}",
                ctx.backend.for_update()
            );
            let due = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(time::to_db(now))
                .bind(limit.clamp(1, 100_000))
                .fetch_all(&mut *tx)
                .await?;
            let mut expired = 0;
            for row in due {
                let code: String = row.try_get("code")?;
                let promotion_id: Option<String> = row.try_get("promotion_id")?;
                let reward_id: Option<String> = row.try_get("reward_id")?;
                let member_id: Option<String> = row.try_get("member_id")?;
                let changed = sqlx::query(
                    "UPDATE coupons SET state = 'expired', updated_at = $3 WHERE tenant_id = $1 \
                     AND code = $2 AND state IN ('issued', 'released')",
                )
                .bind(tenant.0)
                .bind(&code)
                .bind(time::to_db(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    record_event(
                        &mut tx,
                        ctx,
                        &code,
                        "expired",
                        promotion_id.as_deref(),
                        reward_id.as_deref(),
                        member_id.as_deref(),
                    )
                    .await?;
                    expired += 1;
                }
            }
            Ok(expired)
        }
        .await
        })
    }
}
