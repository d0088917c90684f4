//! Redeeming a reward of the program's catalog: one unit of work that decides eligibility
//! under the member's wallet lock and the reward's stock lock, debits the points (the same
//! ledger debit as a points redemption), counts the unit of stock, and issues the coupon (a
//! generated code, or the next unused code of a partner's pool).

use std::collections::HashMap;

use jiff::Timestamp;
use patron_domain::posting::{self, RedemptionPlan};
use patron_domain::program::Program;
use patron_domain::rewards::{Facts, Reward, RewardKind};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::batch::Batch;
use crate::coupons::{Coupon, CouponBenefit, NewCoupon, insert_coupon};
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, Wallet, code};
use crate::members::{Member, lock_wallet_with_member};
use crate::tenants::TenantId;
use crate::wallet::{Balance, balance_in};
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRewardRedemption {
    pub id: String,
    pub member_id: String,
    pub reward_id: String,
    /// Codes to try, in order, as `(canonical, display)`: the first one not taken becomes the
    /// coupon (unused for partner vouchers, which take a code from their pool).
    pub candidate_codes: Vec<(String, String)>,
    /// The member's current segments (RFV and rule segments), read before the unit of work;
    /// `None` skips the segment check.
    pub segments: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardRedemption {
    pub id: String,
    pub member_id: String,
    pub reward_id: String,
    pub points: i64,
    pub coupon: Coupon,
    pub balance: Balance,
    pub created_at: Timestamp,
}

/// What the store counts about one reward for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardCounts {
    pub redeemed_in_period: i64,
    pub stock_left: Option<i64>,
}

impl From<patron_domain::posting::Benefit> for CouponBenefit {
    fn from(benefit: patron_domain::posting::Benefit) -> Self {
        CouponBenefit {
            kind: benefit.kind.to_string(),
            amount_minor: benefit.amount_minor,
            percent: benefit.percent,
            cap_minor: benefit.cap_minor,
            sku: benefit.sku,
            benefit: benefit.benefit.map(str::to_string),
        }
    }
}

async fn stock_issued(
    c: &mut Conn,
    ctx: LedgerCtx,
    reward_id: &str,
    lock: bool,
) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT issued FROM reward_stock WHERE tenant_id = $1 AND reward_id = $2{}",
        if lock { ctx.backend.for_update() } else { "" }
    );
    let row = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(reward_id)
        .fetch_optional(conn(c))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("issued")?,
        None => 0,
    })
}

async fn pool_left(c: &mut Conn, ctx: LedgerCtx, pool: &str) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM partner_codes WHERE tenant_id = $1 AND pool = $2 AND assigned_at IS NULL",
    )
    .bind(ctx.tenant.0)
    .bind(pool)
    .fetch_one(conn(c))
    .await?;
    Ok(row.try_get("n")?)
}

async fn redeemed_in_period(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
    reward_id: &str,
    period_key: &str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM reward_redemptions WHERE tenant_id = $1 AND member_id = $2 \
         AND reward_id = $3 AND period_key = $4 AND cancelled_at IS NULL",
    )
    .bind(ctx.tenant.0)
    .bind(member_id)
    .bind(reward_id)
    .bind(period_key)
    .fetch_one(conn(c))
    .await?;
    Ok(row.try_get("n")?)
}

async fn counts(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    reward: &Reward,
    member_id: &str,
    lock: bool,
) -> Result<RewardCounts, StoreError> {
    let period = reward.limit_period(ctx.now, &program.calendar());
    let redeemed = redeemed_in_period(c, ctx, member_id, &reward.id, &period.key).await?;
    let stock_left = match (&reward.kind, reward.stock) {
        (RewardKind::PartnerVoucher { pool }, _) => Some(pool_left(c, ctx, pool).await?),
        (_, Some(stock)) => Some(stock - stock_issued(c, ctx, &reward.id, lock).await?),
        (_, None) => None,
    };
    Ok(RewardCounts {
        redeemed_in_period: redeemed,
        stock_left,
    })
}

impl Store {
    /// The member, their spendable points, and the counts of every reward of the catalog for
    /// them (read without locks: a catalog page, not a decision).
    pub async fn reward_counts(
        &self,
        tenant: TenantId,
        program: &Program,
        member_id: &str,
        now: Timestamp,
    ) -> Result<(Member, Balance, HashMap<String, RewardCounts>), StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        let member = self
            .find_member(tenant, crate::members::Lookup::Id(member_id))
            .await?
            .ok_or_else(|| Rejection::MemberNotFound {
                member_id: member_id.to_string(),
            })?;
        let balance = self.balance(tenant, member_id, now).await?;
        let mut c = self.pool().acquire().await?;
        let mut all = HashMap::new();
        for reward in &program.rewards {
            all.insert(
                reward.id.clone(),
                counts(&mut c, ctx, program, reward, member_id, false).await?,
            );
        }
        Ok((member, balance, all))
    }

    /// Redeems a reward for a member: checks eligibility, debits the price, counts the stock
    /// and issues the coupon, in one unit of work.
    pub async fn redeem_reward(
        &self,
        tenant: TenantId,
        program: &Program,
        new: &NewRewardRedemption,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<RewardRedemption>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                redeem_reward_in(c, ctx, program, new).await
            }
        )
    }
}

/// Redeems a reward: reads under the wallet's and the stock's locks, lets the domain decide
/// (`posting::plan_redemption`), then debits the points, counts the unit of stock, issues the
/// coupon and records the redemption.
async fn redeem_reward_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    new: &NewRewardRedemption,
) -> Result<RewardRedemption, StoreError> {
    let reward = program
        .reward(&new.reward_id)
        .ok_or_else(|| Rejection::RewardNotFound {
            reward_id: new.reward_id.clone(),
        })?;
    // The wallet first (as every unit of work on a member does), then the stock row: the
    // stock row serializes redemptions of one reward across members.
    let (mut wallet, member) = lock_wallet_with_member(c, ctx, &new.member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: new.member_id.clone(),
        }
        .into());
    }
    ledger::expire_due(c, ctx, &mut wallet).await?;
    sqlx::query(
        "INSERT INTO reward_stock (tenant_id, reward_id, issued) VALUES ($1, $2, 0) \
         ON CONFLICT (tenant_id, reward_id) DO NOTHING",
    )
    .bind(ctx.tenant.0)
    .bind(&reward.id)
    .execute(conn(c))
    .await?;
    let issued = stock_issued(c, ctx, &reward.id, true).await?;
    let counted = counts(c, ctx, program, reward, &new.member_id, false).await?;
    let facts = Facts {
        tier: &member.tier,
        segments: new.segments.as_deref(),
        available_points: wallet.spendable(),
        redeemed_in_period: counted.redeemed_in_period,
        stock_left: counted.stock_left,
        now: ctx.now,
    };
    let plan = posting::plan_redemption(reward, &facts, program.currency.minor_unit).map_err(
        |reasons| Rejection::RewardUnavailable {
            reward_id: reward.id.clone(),
            reasons: reasons.iter().map(|r| r.code().to_string()).collect(),
        },
    )?;
    let transfer_id = if plan.points > 0 {
        Some(debit_reward(c, ctx, program, new, &mut wallet, plan.points).await?)
    } else {
        None
    };
    sqlx::query("UPDATE reward_stock SET issued = $3 WHERE tenant_id = $1 AND reward_id = $2")
        .bind(ctx.tenant.0)
        .bind(&reward.id)
        .bind(issued + 1)
        .execute(conn(c))
        .await?;
    let code = issue_coupon(c, ctx, reward, new, &plan).await?;
    let period = reward.limit_period(ctx.now, &program.calendar());
    sqlx::query(
        "INSERT INTO reward_redemptions (tenant_id, id, member_id, reward_id, period_key, points, \
         transfer_id, coupon_code, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(ctx.tenant.0)
    .bind(&new.id)
    .bind(&new.member_id)
    .bind(&reward.id)
    .bind(&period.key)
    .bind(plan.points)
    .bind(transfer_id)
    .bind(&code)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    let coupon = crate::coupons::coupon_in_tx(c, ctx, &code).await?;
    Ok(RewardRedemption {
        id: new.id.clone(),
        member_id: new.member_id.clone(),
        reward_id: reward.id.clone(),
        points: plan.points,
        coupon,
        balance: balance_in(c, ctx, &wallet).await?,
        created_at: ctx.now,
    })
}

/// Debits the reward's price from the wallet (to the redemption account) and touches the
/// member's activity. Returns the transfer's id.
async fn debit_reward(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    new: &NewRewardRedemption,
    wallet: &mut Wallet,
    points: i64,
) -> Result<i64, StoreError> {
    let to = ledger::system_account(c, ctx.tenant, "redemption").await?;
    let note = format!("reward {}", new.reward_id);
    let transfer = NewTransfer::posted(format!("reward:{}", new.id), 0, 0, points, code::REDEEM)
        .member(&new.member_id)
        .document("reward_redemption", &new.id)
        .note(Some(&note));
    let debit = ledger::debit(c, ctx, wallet, to, transfer, false).await?;
    let inactivity =
        patron_domain::expiry::inactivity_expires_at(&program.expiry, ctx.now, &program.calendar());
    ledger::touch_activity(c, wallet, ctx.now, inactivity).await?;
    Ok(debit.transfer_id)
}

/// Issues the redemption's coupon: the next unused code of a partner's pool, or the first
/// candidate code not taken. Returns its code.
async fn issue_coupon(
    c: &mut Conn,
    ctx: LedgerCtx,
    reward: &Reward,
    new: &NewRewardRedemption,
    plan: &RedemptionPlan,
) -> Result<String, StoreError> {
    let benefit: CouponBenefit = plan.benefit.clone().into();
    if let RewardKind::PartnerVoucher { pool } = &reward.kind {
        let sql = format!(
            "SELECT id, code FROM partner_codes WHERE tenant_id = $1 AND pool = $2 \
             AND assigned_at IS NULL ORDER BY id LIMIT 1{}",
            ctx.backend.for_update()
        );
        let row = sqlx::query(&sql)
            .bind(ctx.tenant.0)
            .bind(pool)
            .fetch_optional(conn(c))
            .await?
            .ok_or_else(|| Rejection::RewardUnavailable {
                reward_id: reward.id.clone(),
                reasons: vec!["out_of_stock".into()],
            })?;
        let id: i64 = row.try_get("id")?;
        let code: String = row.try_get("code")?;
        sqlx::query("UPDATE partner_codes SET assigned_at = $2 WHERE id = $1")
            .bind(id)
            .bind(time::to_db(ctx.now))
            .execute(conn(c))
            .await?;
        let partner = NewCoupon {
            code: &code,
            display: &code,
            kind: "partner",
            reward_id: Some(&reward.id),
            promotion_id: None,
            member_id: Some(&new.member_id),
            max_uses: Some(1),
            benefit: &benefit,
            expires_at: plan.coupon_expires_at,
        };
        if !insert_coupon(c, ctx, &partner).await? {
            return Err(StoreError::Corrupt(format!(
                "partner code of pool {pool} is already a coupon"
            )));
        }
        return Ok(code);
    }
    for (canonical, display) in &new.candidate_codes {
        let fresh = NewCoupon {
            code: canonical,
            display,
            kind: "reward",
            reward_id: Some(&reward.id),
            promotion_id: None,
            member_id: Some(&new.member_id),
            max_uses: Some(1),
            benefit: &benefit,
            expires_at: plan.coupon_expires_at,
        };
        if insert_coupon(c, ctx, &fresh).await? {
            return Ok(canonical.clone());
        }
    }
    Err(StoreError::Conflict(
        "every candidate coupon code was taken".into(),
    ))
}
