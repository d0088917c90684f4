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

use crate::idempotency::{self, Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, code};
use crate::members::{Member, lock_wallet_with_member};
use crate::redemptions::{Balance, balance_in};
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, time, unit_of_work};

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
    let tz = program.tz();
    program
        .rules_for(trigger)
        .filter_map(|rule| {
            rule.limit
                .as_ref()
                .map(|limit| (rule.id.clone(), limit_period(limit, at, &tz).key))
        })
        .collect()
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
    let conditions = (0..periods.len())
        .map(|i| format!("(rule_id = ${} AND period_key = ${})", 3 + 2 * i, 4 + 2 * i))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT rule_id, CAST(COUNT(*) AS BIGINT) AS n FROM rule_awards \
         WHERE tenant_id = $1 AND member_id = $2 AND ({conditions}) GROUP BY rule_id"
    );
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

/// Records the firings of one occasion (one row each).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_awards(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
    source_type: &str,
    source_id: &str,
    awards: &[RuleAward],
    periods: &BTreeMap<String, String>,
    occurred_at: Timestamp,
) -> Result<(), StoreError> {
    if awards.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO rule_awards (tenant_id, member_id, rule_id, period_key, source_type, source_id, points, \
         name, occurred_at, created_at) VALUES {}",
        crate::bulk::placeholders(awards.len(), 10)
    );
    let mut query = sqlx::query(&sql);
    for award in awards {
        query = query
            .bind(ctx.tenant.0)
            .bind(member_id)
            .bind(&award.rule_id)
            .bind(periods.get(&award.rule_id).cloned())
            .bind(source_type)
            .bind(source_id)
            .bind(award.points)
            .bind(&award.name)
            .bind(time::to_db(occurred_at))
            .bind(time::to_db(ctx.now));
    }
    query.execute(conn(c)).await?;
    Ok(())
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

/// Credits points a rule gave outside a purchase (an event, the join gift): posted at once,
/// with a lot under the program's expiry policy. Returns the transfer id.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn credit_grant(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    wallet: &mut ledger::Wallet,
    reason: &str,
    document_type: &str,
    document_id: &str,
    points: i64,
) -> Result<Option<i64>, StoreError> {
    if points <= 0 {
        return Ok(None);
    }
    let member_id = wallet.member_id.clone();
    let transfer = NewTransfer::posted(format!("{reason}:{document_id}"), 0, 0, points, reason)
        .member(&member_id)
        .document(document_type, document_id);
    let tz = program.tz();
    let activity = (
        ctx.now,
        expiry::inactivity_expires_at(&program.expiry, ctx.now, &tz),
    );
    let id = ledger::credit_posted(
        c,
        ctx,
        wallet,
        "issuance",
        transfer,
        expiry::lot_expires_at(&program.expiry, ctx.now, &tz),
        Some(activity),
    )
    .await?;
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
        unit_of_work!(self, |tx| async {
            idempotency::run(&mut tx, tenant, claims, now, async |c: &mut Conn| {
                post_event_in(c, ctx, program, event, decide).await
            })
            .await
        }
        .await)
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
    let transfer_id = credit_grant(
        c,
        ctx,
        program,
        &mut wallet,
        code::EVENT,
        "event",
        &event.id,
        grant.points,
    )
    .await?;
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
    record_awards(
        c,
        ctx,
        &member.id,
        "event",
        &event.id,
        &grant.awards,
        &periods,
        event.occurred_at,
    )
    .await?;
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
