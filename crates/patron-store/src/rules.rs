//! Earning rules in the store: how often each rule already fired for a member (what a
//! limit checks), the record of every firing, and custom events as units of work.
//!
//! Rules are *evaluated* by the engine (`patron_domain::rules::evaluate`), but inside the
//! store's unit of work: the store locks the member's wallet, reads the member and the usage
//! counts of the rules this occasion can fire (one query), and calls the engine's decision
//! with them ([`Decide`]). Everything that could change a limit's count (another purchase or
//! event of the same member) takes the same wallet lock first, so a limit of one per day
//! holds under any concurrency: a second unit of work waits for the first to commit and then
//! counts its firing.
//!
//! Usage is counted from `rule_awards`, one row per firing (not a counter table): the row is
//! needed anyway to show the receipt again, so one insert per firing serves both, and a
//! count over an index `(tenant, member, rule, period_key)` is as cheap as a counter read
//! for the handful of firings a limited rule can have in one period.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patron_domain::expiry;
use patron_domain::program::Program;
use patron_domain::rules::{RuleUsage, TriggerKind, limit_period};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::batch::{Batch, Param};
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, code};
use crate::members::{Member, lock_wallet_with_member};
use crate::tenants::TenantId;
use crate::wallet::{Balance, balance_in};
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

/// The decision the engine hands the store, called under the member's wallet lock with the
/// member as read under it and the usage of the occasion's limited rules. It may be called
/// more than once (a unit of work retried after a serialization failure); it must be pure.
pub type Decide<'a, T> = &'a (dyn Fn(&Member, &RuleUsage) -> T + Send + Sync);

/// One rule that fired, as the receipt shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleAward {
    pub rule_id: String,
    /// The rule's name in the member's language.
    pub name: String,
    pub points: i64,
}

/// What an event or an enrollment earns by the rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleGrant {
    /// Sum of the awards' points.
    pub points: i64,
    pub awards: Vec<RuleAward>,
}

/// The limit period of each limited rule of an occasion at `at`: rule id → period key.
pub(crate) fn limit_periods(
    program: &Program,
    trigger: TriggerKind,
    at: Timestamp,
) -> BTreeMap<String, String> {
    let cal = program.calendar();
    program
        .rules_for(trigger)
        .filter_map(|rule| {
            rule.limit
                .as_ref()
                .map(|limit| (rule.id.clone(), limit_period(limit, at, &cal).key))
        })
        .collect()
}

/// The query of [`usage_in`] for `rules` limited rules: `$1` tenant, `$2` member, and from
/// `$first` on, each rule's id and period key. One arm per rule, each a lookup of the whole
/// `rule_awards_limited` key: written as one `OR` of the pairs, the condition could only use
/// the index's `(tenant_id, member_id)` prefix and filtered every award the member ever got
/// (a loyal member's years of them, on every purchase).
pub fn usage_sql(rules: usize, first: usize) -> String {
    (0..rules)
        .map(|i| {
            format!(
                "SELECT rule_id, CAST(COUNT(*) AS BIGINT) AS n FROM rule_awards \
                 WHERE tenant_id = $1 AND member_id = $2 AND rule_id = ${} AND period_key = ${} \
                 AND reversed_at IS NULL GROUP BY rule_id",
                first + 2 * i,
                first + 1 + 2 * i
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// How many times each limited rule fired for the member in its current period: one query,
/// none when the occasion has no limited rule.
pub(crate) async fn usage_in(
    c: &mut Conn,
    tenant: TenantId,
    member_id: &str,
    periods: &BTreeMap<String, String>,
) -> Result<RuleUsage, StoreError> {
    let mut usage = RuleUsage::new();
    if periods.is_empty() {
        return Ok(usage);
    }
    let sql = usage_sql(periods.len(), 3);
    let mut query = sqlx::query(&sql).bind(tenant.0).bind(member_id);
    for (rule_id, key) in periods {
        query = query.bind(rule_id).bind(key);
    }
    for row in query.fetch_all(conn(c)).await? {
        let count: i64 = row.try_get("n")?;
        usage.insert(
            row.try_get("rule_id")?,
            u32::try_from(count).unwrap_or(u32::MAX),
        );
    }
    Ok(usage)
}

/// A refund that returned the whole purchase gives back the limit usage of the rules the
/// purchase fired (docs/PROGRAM.md, "Limits and refunds"), but only when the refunds took
/// all of its points back (clawed back, or reduced while pending; nothing forgiven): a
/// member who keeps the bonus keeps it counted. `forgiven_now` is this refund's forgiven
/// points (its row is not written yet). The rows stay, marked reversed, as receipt lines.
pub(crate) async fn release_limits_if_reversed(
    c: &mut Conn,
    ctx: LedgerCtx,
    purchase_id: &str,
    fully_refunded: bool,
    forgiven_now: i64,
) -> Result<(), StoreError> {
    if !fully_refunded || forgiven_now > 0 {
        return Ok(());
    }
    let forgiven_before: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(forgiven_points), 0) AS BIGINT) AS f FROM refunds \
         WHERE tenant_id = $1 AND purchase_id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .fetch_one(conn(c))
    .await?
    .try_get("f")?;
    if forgiven_before > 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE rule_awards SET reversed_at = $3 WHERE tenant_id = $1 AND source_type = 'purchase' \
         AND source_id = $2 AND reversed_at IS NULL",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    Ok(())
}

/// The rules that fired on one occasion (a purchase, an event, the enrollment...), as
/// [`record_awards`] and [`push_awards`] write them.
pub(crate) struct Awards<'a> {
    pub member_id: &'a str,
    pub source_type: &'a str,
    pub source_id: &'a str,
    pub awards: &'a [RuleAward],
    /// The period key of each rule with a limit, by rule id.
    pub periods: &'a BTreeMap<String, String>,
    pub occurred_at: Timestamp,
}

/// Records the firings of one occasion (one row each).
pub(crate) async fn record_awards(
    c: &mut Conn,
    ctx: LedgerCtx,
    awards: Awards<'_>,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    push_awards(&mut batch, ctx, awards);
    batch.run(c, ctx.backend).await
}

/// [`record_awards`] as a statement of the caller's `batch` (none when nothing fired).
pub(crate) fn push_awards(batch: &mut Batch, ctx: LedgerCtx, occasion: Awards<'_>) {
    let Awards {
        member_id,
        source_type,
        source_id,
        awards,
        periods,
        occurred_at,
    } = occasion;
    if awards.is_empty() {
        return;
    }
    let sql = format!(
        "INSERT INTO rule_awards (tenant_id, member_id, rule_id, period_key, source_type, source_id, points, \
         name, occurred_at, created_at) VALUES {}",
        crate::batch::placeholders(awards.len(), 10)
    );
    let mut params = Vec::with_capacity(awards.len() * 10);
    for award in awards {
        params.extend([
            ctx.tenant.0.into(),
            member_id.into(),
            (&award.rule_id).into(),
            periods.get(&award.rule_id).cloned().into(),
            source_type.into(),
            source_id.into(),
            award.points.into(),
            (&award.name).into(),
            time::to_db(occurred_at).into(),
            Param::from(time::to_db(ctx.now)),
        ]);
    }
    batch.push(&sql, params);
}

/// The firings recorded for one occasion, in the order they fired.
pub(crate) async fn awards_of(
    c: &mut Conn,
    tenant: TenantId,
    source_type: &str,
    source_id: &str,
) -> Result<Vec<RuleAward>, StoreError> {
    let rows = sqlx::query(
        "SELECT rule_id, name, points FROM rule_awards WHERE tenant_id = $1 AND source_type = $2 \
         AND source_id = $3 ORDER BY id",
    )
    .bind(tenant.0)
    .bind(source_type)
    .bind(source_id)
    .fetch_all(conn(c))
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RuleAward {
                rule_id: row.try_get("rule_id")?,
                name: row.try_get("name")?,
                points: row.try_get("points")?,
            })
        })
        .collect()
}

/// Points a rule gave outside a purchase: the transfer code (the reason), the document it
/// answers and the points.
pub(crate) struct Grant<'a> {
    pub reason: &'a str,
    pub document_type: &'a str,
    pub document_id: &'a str,
    pub points: i64,
}

/// Credits points a rule gave outside a purchase (an event, the join gift): posted at once,
/// with a lot under the program's expiry policy. Returns the transfer id.
pub(crate) async fn credit_grant(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    wallet: &mut ledger::Wallet,
    grant: Grant<'_>,
) -> Result<Option<i64>, StoreError> {
    let Grant {
        reason,
        document_type,
        document_id,
        points,
    } = grant;
    if points <= 0 {
        return Ok(None);
    }
    let member_id = wallet.member_id.clone();
    let transfer = NewTransfer::posted(format!("{reason}:{document_id}"), 0, 0, points, reason)
        .member(&member_id)
        .document(document_type, document_id);
    let cal = program.calendar();
    let activity = (
        ctx.now,
        expiry::inactivity_expires_at(&program.expiry, ctx.now, &cal),
    );
    let credit = ledger::Credit {
        from_kind: "issuance",
        transfer,
        expires_at: expiry::lot_expires_at(&program.expiry, ctx.now, &cal),
        activity: Some(activity),
    };
    let id = ledger::credit_posted(c, ctx, wallet, credit).await?;
    Ok(Some(id))
}

/// A custom event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub member_id: String,
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// The properties, as a JSON object.
    pub properties: String,
    pub request_hash: String,
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventReceipt {
    pub event_id: String,
    pub member_id: String,
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// Points credited (posted at once).
    pub points: i64,
    pub rules: Vec<RuleAward>,
    pub balance: Balance,
}

impl Store {
    /// How many times each limited rule of `trigger` fired for a member in the period that
    /// contains `at` (a read outside any unit of work: for previews).
    pub async fn rule_usage(
        &self,
        tenant: TenantId,
        program: &Program,
        trigger: TriggerKind,
        member_id: &str,
        at: Timestamp,
    ) -> Result<RuleUsage, StoreError> {
        let periods = limit_periods(program, trigger, at);
        if periods.is_empty() {
            return Ok(RuleUsage::new());
        }
        let mut c = self.pool().acquire().await?;
        usage_in(&mut c, tenant, member_id, &periods).await
    }

    /// The rules that fired for a purchase, an event or an enrollment (`source_type`
    /// `purchase`, `event`, `enrollment`), in the order they fired.
    pub async fn rule_awards(
        &self,
        tenant: TenantId,
        source_type: &str,
        source_id: &str,
    ) -> Result<Vec<RuleAward>, StoreError> {
        let mut c = self.pool().acquire().await?;
        awards_of(&mut c, tenant, source_type, source_id).await
    }

    /// Records a custom event and credits what its rules give (idempotent under `claims`).
    /// `decide` runs under the member's wallet lock with the usage of the event rules.
    pub async fn post_event(
        &self,
        tenant: TenantId,
        program: &Program,
        event: &NewEvent,
        decide: Decide<'_, RuleGrant>,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<EventReceipt>, StoreError> {
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
                post_event_in(c, ctx, program, event, decide).await
            }
        )
    }
}

async fn post_event_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    event: &NewEvent,
    decide: Decide<'_, RuleGrant>,
) -> Result<EventReceipt, StoreError> {
    let (mut wallet, member) = lock_wallet_with_member(c, ctx, &event.member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: event.member_id.clone(),
        }
        .into());
    }
    let periods = limit_periods(program, TriggerKind::Event, event.occurred_at);
    let usage = usage_in(c, ctx.tenant, &member.id, &periods).await?;
    let grant = decide(&member, &usage);
    ledger::expire_due(c, ctx, &mut wallet).await?;
    let credit = Grant {
        reason: code::EVENT,
        document_type: "event",
        document_id: &event.id,
        points: grant.points,
    };
    let transfer_id = credit_grant(c, ctx, program, &mut wallet, credit).await?;
    sqlx::query(
        "INSERT INTO events (tenant_id, id, member_id, type, occurred_at, properties, points, transfer_id, \
         request_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(ctx.tenant.0)
    .bind(&event.id)
    .bind(&event.member_id)
    .bind(&event.event_type)
    .bind(time::to_db(event.occurred_at))
    .bind(&event.properties)
    .bind(grant.points.max(0))
    .bind(transfer_id)
    .bind(&event.request_hash)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    let awards = Awards {
        member_id: &member.id,
        source_type: "event",
        source_id: &event.id,
        awards: &grant.awards,
        periods: &periods,
        occurred_at: event.occurred_at,
    };
    record_awards(c, ctx, awards).await?;
    let balance = balance_in(c, ctx, &wallet).await?;
    Ok(EventReceipt {
        event_id: event.id.clone(),
        member_id: member.id.clone(),
        event_type: event.event_type.clone(),
        occurred_at: event.occurred_at,
        points: grant.points.max(0),
        rules: grant.awards,
        balance,
    })
}

// ----- Referrals ----------------------------------------------------------------------------

/// What a purchase's referral rule decided: the newcomer's first qualifying purchase pays
/// the referrer too (the newcomer's own points are an award of the purchase, in
/// `purchases::EarnPlan::awards`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralPayout {
    pub referrer_id: String,
    pub rule_id: String,
    /// The rule's names; the referrer's receipt line is named in their language.
    pub names: patron_domain::program::Localized,
    /// Points for the referrer (0: the rule pays the newcomer only).
    pub referrer_points: i64,
}

/// Transfer code of the referrer's credit and of its clawback's reason (docs/LEDGER.md#model:
/// each transfer names why it moved points).
const REFERRAL: &str = "referral";

/// Rewards a referral in the purchase's unit of work: marks the newcomer's referral used
/// (under the newcomer's wallet lock, which every purchase of theirs takes first, so two
/// racing purchases pay it once, and the `referral_rewards` key makes a second row
/// impossible), then credits the referrer, posted at once with a lot, and records their
/// receipt line (`rule_awards`, source `referral`, the purchase id).
///
/// Lock order: the newcomer's wallet, then the referrer's. Referral links form a forest (a
/// member is referred once, by someone enrolled before them), so purchases only ever lock
/// from a newcomer up to an ancestor and never wait on each other in a cycle. A referrer who
/// left the club gets nothing; the newcomer keeps their part.
pub(crate) async fn pay_referral(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    newcomer: &Member,
    purchase_id: &str,
    occurred_at: Timestamp,
    payout: &ReferralPayout,
) -> Result<(), StoreError> {
    let marked = sqlx::query(
        "UPDATE members SET referral_rewarded_at = $3 WHERE tenant_id = $1 AND id = $2 \
         AND referred_by = $4 AND referral_rewarded_at IS NULL",
    )
    .bind(ctx.tenant.0)
    .bind(&newcomer.id)
    .bind(time::to_db(ctx.now))
    .bind(&payout.referrer_id)
    .execute(conn(c))
    .await?
    .rows_affected();
    if marked != 1 {
        // The member read under the lock said otherwise: something bypassed the lock.
        return Err(StoreError::Conflict(format!(
            "the referral of {} was already rewarded",
            newcomer.id
        )));
    }
    let (mut wallet, referrer) = lock_wallet_with_member(c, ctx, &payout.referrer_id).await?;
    let points = if referrer.is_active() {
        payout.referrer_points.max(0)
    } else {
        0
    };
    let mut transfer_id = None;
    if points > 0 {
        ledger::expire_due(c, ctx, &mut wallet).await?;
        let credit = Grant {
            reason: REFERRAL,
            document_type: "purchase",
            document_id: purchase_id,
            points,
        };
        transfer_id = credit_grant(c, ctx, program, &mut wallet, credit).await?;
        let locale = referrer
            .profile
            .locale
            .as_deref()
            .and_then(patron_domain::program::Locale::from_code)
            .unwrap_or(program.default_locale);
        let award = RuleAward {
            rule_id: payout.rule_id.clone(),
            name: payout
                .names
                .resolve(locale, program.default_locale)
                .to_string(),
            points,
        };
        let periods = BTreeMap::new();
        let awards = Awards {
            member_id: &referrer.id,
            source_type: "referral",
            source_id: purchase_id,
            awards: std::slice::from_ref(&award),
            periods: &periods,
            occurred_at,
        };
        record_awards(c, ctx, awards).await?;
    }
    sqlx::query(
        "INSERT INTO referral_rewards (tenant_id, member_id, referrer_id, purchase_id, rule_id, referrer_points, \
         transfer_id, settled_points, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
    )
    .bind(ctx.tenant.0)
    .bind(&newcomer.id)
    .bind(&payout.referrer_id)
    .bind(purchase_id)
    .bind(&payout.rule_id)
    .bind(points)
    .bind(transfer_id)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    Ok(())
}

/// A refund of a purchase, as [`claw_back_referral`] sees it: the eligible amounts (in minor
/// units) of the purchase, of its earlier refunds and of this one.
pub(crate) struct ReferralRefund<'a> {
    pub purchase_id: &'a str,
    pub refund_id: &'a str,
    pub original_eligible_minor: i64,
    pub eligible_refunded_before: i64,
    pub eligible_refund_minor: i64,
}

/// The refund of a purchase that paid a referral takes the referrer's points back in the same
/// proportion as the newcomer's (docs/LEDGER.md#refunds: target = round(earned × cumulative
/// refunded / original) on the eligible amounts, only the difference from what was settled
/// before), under the program's return policy for *posted* points: `only_pending` forgives
/// it, `within_balance` takes what the referrer's balance allows and forgives the rest,
/// `unlimited` may leave the referrer in debt. The referral stays used: a refunded first
/// purchase does not make the next purchase pay the referral again. Called under the
/// newcomer's wallet lock; takes the referrer's after it (the purchase's order).
pub(crate) async fn claw_back_referral(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    refund: ReferralRefund<'_>,
) -> Result<(), StoreError> {
    let ReferralRefund {
        purchase_id,
        refund_id,
        original_eligible_minor,
        eligible_refunded_before,
        eligible_refund_minor,
    } = refund;
    use patron_domain::clawback::{self, ClawbackInput, EarnState};
    let row = sqlx::query(
        "SELECT member_id, referrer_id, referrer_points, settled_points FROM referral_rewards \
         WHERE tenant_id = $1 AND purchase_id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .fetch_optional(conn(c))
    .await?;
    let Some(row) = row else {
        return Ok(());
    };
    let earned: i64 = row.try_get("referrer_points")?;
    if earned <= 0 || eligible_refund_minor <= 0 {
        return Ok(());
    }
    let newcomer_id: String = row.try_get("member_id")?;
    let referrer_id: String = row.try_get("referrer_id")?;
    let settled: i64 = row.try_get("settled_points")?;
    let mut wallet = ledger::lock_wallets(c, ctx, &[referrer_id.as_str()])
        .await?
        .remove(0);
    ledger::expire_due(c, ctx, &mut wallet).await?;
    let mode = crate::members::clawback_mode(c, ctx, program, &referrer_id).await?;
    let plan = clawback::plan_clawback(&ClawbackInput {
        mode,
        state: EarnState::Posted,
        earned,
        original_amount: original_eligible_minor,
        refunded_before: eligible_refunded_before,
        refund_amount: eligible_refund_minor,
        already_settled: settled,
        spendable_balance: wallet.spendable(),
    });
    if plan.claw_back > 0 {
        let to = ledger::system_account(c, ctx.tenant, "clawback").await?;
        let transfer = NewTransfer::posted(
            format!("referral_clawback:{refund_id}"),
            0,
            0,
            plan.claw_back,
            code::CLAWBACK,
        )
        .member(&referrer_id)
        .document("refund", refund_id);
        ledger::debit(c, ctx, &mut wallet, to, transfer, plan.may_go_negative).await?;
    }
    let settle = plan.claw_back + plan.forgiven;
    if settle > 0 {
        sqlx::query(
            "UPDATE referral_rewards SET settled_points = settled_points + $3 WHERE tenant_id = $1 AND member_id = $2",
        )
        .bind(ctx.tenant.0)
        .bind(&newcomer_id)
        .bind(settle)
        .execute(conn(c))
        .await?;
    }
    Ok(())
}

/// What the referrer got for a newcomer's first qualifying purchase, and what refunds took
/// back (for reads and tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralReward {
    pub member_id: String,
    pub referrer_id: String,
    pub purchase_id: String,
    pub rule_id: String,
    pub referrer_points: i64,
    /// Clawed back or forgiven by refunds of the purchase.
    pub settled_points: i64,
    pub rewarded_at: Timestamp,
}

impl Store {
    /// The referral a newcomer's purchase paid, if any.
    pub async fn referral_reward(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Option<ReferralReward>, StoreError> {
        let row = sqlx::query(
            "SELECT member_id, referrer_id, purchase_id, rule_id, referrer_points, settled_points, created_at \
             FROM referral_rewards WHERE tenant_id = $1 AND member_id = $2",
        )
        .bind(tenant.0)
        .bind(member_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(ReferralReward {
                member_id: row.try_get("member_id")?,
                referrer_id: row.try_get("referrer_id")?,
                purchase_id: row.try_get("purchase_id")?,
                rule_id: row.try_get("rule_id")?,
                referrer_points: row.try_get("referrer_points")?,
                settled_points: row.try_get("settled_points")?,
                rewarded_at: time::from_db(row.try_get("created_at")?)?,
            })
        })
        .transpose()
    }
}
