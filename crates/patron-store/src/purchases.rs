//! Purchases and refunds as units of work.
//!
//! Posting a purchase stores it with its lines (anonymous ones too: the identified-revenue
//! metric needs them), credits the points the engine computed (pending until the return
//! window closes, or posted at once with an expiry lot), and moves the member up a tier when
//! they qualify. A refund returns lines, and claws back points in proportion
//! (docs/LEDGER.md#refunds) under the program's return policy.

use jiff::Timestamp;
use patron_domain::clawback::{self, ClawbackInput, ClawbackMode, EarnState};
use patron_domain::program::{Program, ReturnPolicy, TierBasis};
use patron_domain::rules::{RuleUsage, TriggerKind};
use patron_domain::rust_decimal::Decimal;
use patron_domain::{expiry, purchase as purchase_math, tier};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::batch::{Batch, Param};
use crate::bulk::{ROWS_PER_STATEMENT, placeholders};
use crate::idempotency::{self, Claim, FoldedClaim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, Wallet, code};
use crate::members::{Member, lock_wallet_with_member, lock_wallet_with_member_and};
use crate::redemptions::{Balance, EXPIRING_LISTED_MAX, balance_in, balance_of};
use crate::rules::{self, RuleAward};
use crate::segments;
use crate::stats::{self, MemberStats};
use crate::tenants::TenantId;
use crate::{
    Backend, Conn, Rejection, Store, StoreError, conn, idempotent_unit, time, unit_of_work,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseLine {
    pub line_no: i64,
    pub sku: String,
    pub category: String,
    /// A decimal, as text (`"2"`, `"0.75"`).
    pub quantity: String,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    /// Whether the line earns points (the program can exclude SKUs and categories).
    pub eligible: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPurchase {
    pub id: String,
    pub document_id: String,
    pub store_id: String,
    pub channel: String,
    pub member_id: Option<String>,
    pub occurred_at: Timestamp,
    pub currency: String,
    pub total_minor: i64,
    pub eligible_minor: i64,
    pub lines: Vec<PurchaseLine>,
    pub request_hash: String,
}

/// What the engine decided the purchase earns. The engine decides under the member's wallet
/// lock (the store calls its [`EarnDecision`] with the member and what it read there), so
/// the tier and the limits it decided on are the ones the purchase commits under.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EarnPlan {
    /// Everything the member earns: `base_points` + the points of every award.
    pub points: i64,
    /// The program's base earning (`[earning]` × the tier multiplier).
    pub base_points: i64,
    /// The rules that fired, each with its points (recorded in `rule_awards`).
    pub awards: Vec<RuleAward>,
    pub pending_until: Option<Timestamp>,
    /// The referral rule fired: pay the referrer and mark the referral used.
    pub referral: Option<rules::ReferralPayout>,
}

/// How a member's purchase decides what it earns: `decide` runs under the member's wallet
/// lock with the member, the usage of the limited rules and what else the rules read
/// ([`MemberReads`]), all read under that lock in the statement that reads the member. Read
/// before the lock, two purchases racing could both see the statistics without the other,
/// and a rule on them (a fifth-purchase bonus) fire twice.
#[derive(Clone, Copy)]
pub struct EarnDecision<'a> {
    /// An error refuses the purchase: nothing is written (an [`StoreError::Invalid`] is not
    /// stored under the keys either).
    pub decide: &'a (
            dyn Fn(&Member, &RuleUsage, &MemberReads) -> Result<EarnPlan, StoreError> + Send + Sync
        ),
    /// Whether `decide` reads the statistics (a purchase rule uses `member.statistics`).
    pub reads_statistics: bool,
    /// Whether `decide` reads the segments (a purchase rule uses `member.segments`).
    pub reads_segments: bool,
}

/// What a purchase's rules read about the member besides the member row, read only when
/// they do ([`EarnDecision`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberReads {
    /// The member's statistics without this purchase; `None` before their first.
    pub statistics: Option<MemberStats>,
    /// The member's RFV segment of the latest run and their rule segments.
    pub segments: Vec<String>,
}

/// A member's tier after a posting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierStatus {
    pub code: String,
    pub upgraded_from: Option<String>,
    pub metric: i64,
    pub next: Option<String>,
    pub needed_for_next: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseReceipt {
    pub purchase_id: String,
    pub document_id: String,
    pub member_id: Option<String>,
    pub points: i64,
    /// The base earning within `points` (receipts stored before the rules have none: 0).
    #[serde(default)]
    pub base_points: i64,
    /// The rules that fired, with their points, in the member's language.
    #[serde(default)]
    pub rules: Vec<RuleAward>,
    /// none | pending | posted | voided
    pub points_state: String,
    pub pending_until: Option<Timestamp>,
    pub balance: Option<Balance>,
    pub tier: Option<TierStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub id: String,
    pub document_id: String,
    pub store_id: String,
    pub channel: String,
    pub member_id: Option<String>,
    pub occurred_at: Timestamp,
    pub currency: String,
    pub total_minor: i64,
    pub eligible_minor: i64,
    pub points: i64,
    pub earn_state: String,
    pub pending_until: Option<Timestamp>,
    pub refunded_minor: i64,
    pub settled_points: i64,
    pub clawed_back_points: i64,
    pub lines: Vec<PurchaseLine>,
    pub refunded_quantities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub line_no: i64,
    /// A decimal, as text.
    pub quantity: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub id: String,
    pub purchase_id: String,
    pub document_id: String,
    /// None: everything that remains of the purchase.
    pub lines: Option<Vec<RefundLine>>,
    pub occurred_at: Timestamp,
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub refund_id: String,
    pub purchase_id: String,
    pub document_id: String,
    pub amount_minor: i64,
    pub clawed_back_points: i64,
    pub reduced_pending_points: i64,
    pub forgiven_points: i64,
    pub balance: Option<Balance>,
}

const PURCHASE_COLUMNS: &str = "id, document_id, store_id, channel, member_id, occurred_at, currency, total_minor, \
     eligible_minor, points, earn_state, earn_transfer_id, pending_until, refunded_minor, settled_points, clawed_back_points";

struct PurchaseRow {
    purchase: Purchase,
    earn_transfer_id: Option<i64>,
}

fn purchase_from_row(row: &AnyRow) -> Result<PurchaseRow, StoreError> {
    Ok(PurchaseRow {
        earn_transfer_id: row.try_get("earn_transfer_id")?,
        purchase: Purchase {
            id: row.try_get("id")?,
            document_id: row.try_get("document_id")?,
            store_id: row.try_get("store_id")?,
            channel: row.try_get("channel")?,
            member_id: row.try_get("member_id")?,
            occurred_at: time::from_db(row.try_get("occurred_at")?)?,
            currency: row.try_get("currency")?,
            total_minor: row.try_get("total_minor")?,
            eligible_minor: row.try_get("eligible_minor")?,
            points: row.try_get("points")?,
            earn_state: row.try_get("earn_state")?,
            pending_until: time::opt_from_db(row.try_get("pending_until")?)?,
            refunded_minor: row.try_get("refunded_minor")?,
            settled_points: row.try_get("settled_points")?,
            clawed_back_points: row.try_get("clawed_back_points")?,
            lines: Vec::new(),
            refunded_quantities: Vec::new(),
        },
    })
}

async fn load_purchase(
    c: &mut Conn,
    ctx: LedgerCtx,
    purchase_id: &str,
    lock: bool,
) -> Result<PurchaseRow, StoreError> {
    let sql = format!(
        "SELECT {PURCHASE_COLUMNS} FROM purchases WHERE tenant_id = $1 AND id = $2{}",
        if lock { ctx.backend.for_update() } else { "" }
    );
    let row = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(purchase_id)
        .fetch_optional(conn(c))
        .await?;
    let Some(row) = row else {
        return Err(Rejection::PurchaseNotFound {
            purchase_id: purchase_id.to_string(),
        }
        .into());
    };
    let mut loaded = purchase_from_row(&row)?;
    let lines = sqlx::query(
        "SELECT line_no, sku, category, quantity, unit_price_minor, discount_minor, total_minor, eligible, refunded_quantity \
         FROM purchase_lines WHERE tenant_id = $1 AND purchase_id = $2 ORDER BY line_no",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .fetch_all(conn(c))
    .await?;
    for line in lines {
        loaded.purchase.lines.push(PurchaseLine {
            line_no: line.try_get("line_no")?,
            sku: line.try_get("sku")?,
            category: line.try_get("category")?,
            quantity: line.try_get("quantity")?,
            unit_price_minor: line.try_get("unit_price_minor")?,
            discount_minor: line.try_get("discount_minor")?,
            total_minor: line.try_get("total_minor")?,
            eligible: line.try_get::<i64, _>("eligible")? != 0,
        });
        loaded
            .purchase
            .refunded_quantities
            .push(line.try_get("refunded_quantity")?);
    }
    Ok(loaded)
}

/// The earning instant a lot's expiry counts from, and the member-activity deadline.
fn lot_expiry(program: &Program, earned_at: Timestamp) -> Option<Timestamp> {
    expiry::lot_expires_at(&program.expiry, earned_at, &program.calendar())
}

fn inactivity_deadline(program: &Program, at: Timestamp) -> Option<Timestamp> {
    expiry::inactivity_expires_at(&program.expiry, at, &program.calendar())
}

/// Credits `points` to the wallet for a purchase: pending until `pending_until`, or posted at
/// once with its lot. The transfer (under `id`, allocated with
/// [`ledger::next_transfer_id_sql`]), its totals and its lot go into `batch`.
/// Returns (state, earn transfer id).
#[allow(clippy::too_many_arguments)]
async fn credit_earn(
    c: &mut Conn,
    batch: &mut Batch,
    ctx: LedgerCtx,
    program: &Program,
    wallet: &mut Wallet,
    purchase_id: &str,
    points: i64,
    pending_until: Option<Timestamp>,
    id: i64,
) -> Result<(&'static str, Option<i64>), StoreError> {
    if points <= 0 {
        return Ok(("none", None));
    }
    let member_id = wallet.member_id.clone();
    let transfer = NewTransfer::posted(format!("earn:{purchase_id}"), 0, 0, points, code::EARN)
        .member(&member_id)
        .document("purchase", purchase_id);
    match pending_until {
        Some(until) if until > ctx.now => {
            let transfer = NewTransfer {
                timeout_at: Some(until),
                ..transfer
            };
            let id = ledger::credit_pending_batched(batch, ctx, wallet, "issuance", transfer, id);
            Ok(("pending", Some(id)))
        }
        _ => {
            let activity = (ctx.now, inactivity_deadline(program, ctx.now));
            let id = ledger::credit_posted_batched(
                c,
                batch,
                ctx,
                wallet,
                "issuance",
                transfer,
                id,
                lot_expiry(program, ctx.now),
                Some(activity),
            )
            .await?;
            Ok(("posted", Some(id)))
        }
    }
}

/// The query of the member's qualifying metric in the program's tier window, as of `now`
/// (`$1` tenant, `$2` member, `$3` window start, `$4` now), and its `$3`.
fn tier_metric_query(program: &Program, ctx: LedgerCtx) -> (String, i64) {
    let start = tier::window_start(&program.tiers.window, ctx.now, &program.calendar())
        .map(time::to_db)
        .unwrap_or(i64::MIN);
    let expression = match program.tiers.basis {
        TierBasis::Spend => "CAST(COALESCE(SUM(total_minor - refunded_minor), 0) AS BIGINT)",
        TierBasis::Visits => "CAST(COUNT(*) AS BIGINT)",
        TierBasis::PointsEarned => "CAST(COALESCE(SUM(points - settled_points), 0) AS BIGINT)",
    };
    // `occurred_at + 0`: the window must not be an index condition. PostgreSQL's generic plan
    // guesses a range of parameters to be narrow (0.5%) and then prefers the club-wide
    // `purchases_time` index over `purchases_member`, filtering every purchase of the club in
    // the window down to this member's (seen in the posting benchmark: 1 ms a purchase at
    // 3,000 purchases, growing with the club). A member's purchases are found by
    // `(tenant_id, member_id)` and the window is a filter on them; the index carries the
    // columns summed here (migration 12), so even a member with hundreds of purchases in the
    // window costs a few index pages, not a heap page each.
    let sql = format!(
        "SELECT {expression} AS metric FROM purchases WHERE tenant_id = $1 AND member_id = $2 \
         AND occurred_at + 0 >= $3 AND occurred_at + 0 <= $4 AND total_minor > refunded_minor"
    );
    (sql, start)
}

/// The member's qualifying metric in the program's tier window, as of `now`.
pub(crate) async fn tier_metric(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
) -> Result<i64, StoreError> {
    let (sql, start) = tier_metric_query(program, ctx);
    let row = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(member_id)
        .bind(start)
        .bind(time::to_db(ctx.now))
        .fetch_one(conn(c))
        .await?;
    Ok(row.try_get("metric")?)
}

/// Re-evaluates the member's tier after a posting: upgrades happen at once; downgrades wait
/// for the period end (the nightly job of the tier engine).
pub(crate) async fn update_tier(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
) -> Result<TierStatus, StoreError> {
    let metric = tier_metric(c, ctx, program, member_id).await?;
    decide_tier(c, ctx, program, member_id, current, metric).await
}

/// [`update_tier`] and [`balance_in`] of the end of a posting, with one query for both reads
/// (the tier metric, and the wallet's points expiring soonest).
async fn update_tier_and_balance(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
    wallet: &Wallet,
) -> Result<(TierStatus, Balance), StoreError> {
    let (metric_sql, start) = tier_metric_query(program, ctx);
    let sql = format!(
        "SELECT 0 AS part, CAST(NULL AS BIGINT) AS expires_at, metric AS amount FROM ({metric_sql}) m \
         UNION ALL SELECT 1 AS part, expires_at, points AS amount FROM ({}) e ORDER BY part, expires_at",
        ledger::expiring_sql("$5", "$4", "$6")
    );
    let rows = sqlx::query(&sql)
        .bind(ctx.tenant.0)
        .bind(member_id)
        .bind(start)
        .bind(time::to_db(ctx.now))
        .bind(wallet.account_id)
        .bind(EXPIRING_LISTED_MAX)
        .fetch_all(conn(c))
        .await?;
    let mut metric = 0;
    let mut expiring = Vec::new();
    for row in &rows {
        let amount: i64 = row.try_get("amount")?;
        match row.try_get::<i64, _>("part")? {
            0 => metric = amount,
            _ => expiring.push((time::from_db(row.try_get("expires_at")?)?, amount)),
        }
    }
    let tier = decide_tier(c, ctx, program, member_id, current, metric).await?;
    Ok((tier, balance_of(wallet, expiring)))
}

/// Upgrades the member at once when `metric` qualifies for a higher tier.
async fn decide_tier(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
    metric: i64,
) -> Result<TierStatus, StoreError> {
    let mut batch = Batch::new();
    let tier = decide_tier_in(&mut batch, ctx, program, member_id, current, metric);
    // One statement at most: it is sent as it is, whatever the backend.
    batch.run(c, ctx.backend).await?;
    Ok(tier)
}

/// [`decide_tier`] with the upgrade, if any, as a statement of `batch`.
fn decide_tier_in(
    batch: &mut Batch,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    current: &str,
    metric: i64,
) -> TierStatus {
    let mut code = current.to_string();
    let mut upgraded_from = None;
    if let tier::TierDecision::Upgrade(to) = tier::decide(&program.tiers, current, metric) {
        batch.push(
            "UPDATE members SET tier = $3, tier_since = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            vec![
                ctx.tenant.0.into(),
                member_id.into(),
                (&to).into(),
                time::to_db(ctx.now).into(),
            ],
        );
        upgraded_from = Some(code.clone());
        code = to;
    }
    let progress = tier::progress(&program.tiers, &code, metric);
    TierStatus {
        code,
        upgraded_from,
        metric,
        next: progress.next,
        needed_for_next: progress.needed_for_next,
    }
}

/// What a purchase's receipt needs that only the database knows, read in one query before
/// its writes: the member's tier metric without this purchase, the wallet's points expiring
/// soonest without its lot, and an id for its earning transfer.
struct PostingRead {
    metric: i64,
    expiring: Vec<(Timestamp, i64)>,
    transfer_id: i64,
}

/// The [`PostingRead`] again, on its own (after lots expired under the lock): the columns of
/// [`posting_columns`], without the rules' usage.
async fn posting_read(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
) -> Result<PostingRead, StoreError> {
    let (extra, params) = posting_columns(program, ctx, &Default::default(), None);
    let sql = format!("SELECT 1 AS one{extra}");
    let query = sqlx::query(&sql).bind(ctx.tenant.0).bind(member_id);
    let row = crate::batch::bind_all(query, &params)
        .fetch_one(conn(c))
        .await?;
    posting_read_from(&row)
}

/// `SELECT` of the rows of `from` as one JSON array of `[a, b]` pairs, as text (`[]` for none).
fn json_pairs(backend: Backend, a: &str, b: &str, from: &str) -> String {
    match backend {
        Backend::Sqlite => format!("SELECT json_group_array(json_array({a}, {b})) FROM ({from}) j"),
        Backend::Postgres => format!(
            "SELECT CAST(COALESCE(json_agg(json_build_array({a}, {b})), '[]') AS TEXT) FROM ({from}) j"
        ),
    }
}

/// The columns of [`PostingRead`], the usage of the limited rules in `periods` (as
/// [`rules::usage_in`] reads it) and the program's current version, to read with the member
/// ([`lock_wallet_with_member_and`]), and their parameters (`$3..`).
fn posting_columns(
    program: &Program,
    ctx: LedgerCtx,
    periods: &std::collections::BTreeMap<String, String>,
    reads: Option<EarnDecision<'_>>,
) -> (String, Vec<Param>) {
    let (metric_sql, start) = tier_metric_query(program, ctx);
    let account = "(SELECT ea.id FROM accounts ea WHERE ea.tenant_id = $1 AND ea.member_id = $2)";
    let expiring = json_pairs(
        ctx.backend,
        "expires_at",
        "points",
        &ledger::expiring_sql(account, "$4", "$5"),
    );
    let mut params: Vec<Param> = vec![
        start.into(),
        time::to_db(ctx.now).into(),
        EXPIRING_LISTED_MAX.into(),
    ];
    let usage = if periods.is_empty() {
        "SELECT '[]'".to_string()
    } else {
        for (rule_id, key) in periods {
            params.push(rule_id.into());
            params.push(key.into());
        }
        json_pairs(
            ctx.backend,
            "rule_id",
            "n",
            &rules::usage_sql(periods.len(), 6),
        )
    };
    let extra = format!(
        ", ({metric_sql}) AS tier_metric, ({expiring}) AS expiring, ({usage}) AS rule_usage, \
         ({}) AS next_transfer_id, \
         (SELECT MAX(pv.version) FROM program_versions pv WHERE pv.tenant_id = $1) AS program_version{}{}",
        ledger::next_transfer_id_sql(ctx.backend),
        match reads {
            Some(reads) if reads.reads_statistics => stats::stats_columns(ctx.backend),
            _ => "",
        },
        match reads {
            Some(reads) if reads.reads_segments => segments::segments_column(ctx.backend),
            _ => String::new(),
        }
    );
    (extra, params)
}

/// The usage of the limited rules in a row read with [`posting_columns`].
fn rule_usage_from(row: &AnyRow) -> Result<patron_domain::rules::RuleUsage, StoreError> {
    let text: String = row.try_get("rule_usage")?;
    let pairs: Vec<(String, i64)> = serde_json::from_str(&text)?;
    Ok(pairs
        .into_iter()
        .map(|(rule_id, n)| (rule_id, u32::try_from(n).unwrap_or(u32::MAX)))
        .collect())
}

/// The [`PostingRead`] in a row read with [`posting_columns`].
fn posting_read_from(row: &AnyRow) -> Result<PostingRead, StoreError> {
    let text: String = row.try_get("expiring")?;
    let pairs: Vec<(i64, i64)> = serde_json::from_str(&text)?;
    let mut expiring = pairs
        .into_iter()
        .map(|(at, points)| Ok((time::from_db(at)?, points)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    expiring.sort_by_key(|(at, _)| *at);
    Ok(PostingRead {
        metric: row.try_get("tier_metric")?,
        expiring,
        transfer_id: row.try_get("next_transfer_id")?,
    })
}

/// What this purchase adds to the tier metric (the query's terms, for the new row).
fn metric_contribution(
    program: &Program,
    ctx: LedgerCtx,
    purchase: &NewPurchase,
    points: i64,
) -> i64 {
    // Compared as stored: in microseconds.
    let start = tier::window_start(&program.tiers.window, ctx.now, &program.calendar())
        .map(time::to_db)
        .unwrap_or(i64::MIN);
    let at = time::to_db(purchase.occurred_at);
    let in_window = at >= start && at <= time::to_db(ctx.now) && purchase.total_minor > 0;
    if !in_window {
        return 0;
    }
    match program.tiers.basis {
        TierBasis::Spend => purchase.total_minor,
        TierBasis::Visits => 1,
        TierBasis::PointsEarned => points,
    }
}

/// The wallet's soonest expiring points with a new lot of `points` expiring at `at` merged in
/// (as the query would list them after the lot is written).
fn with_new_lot(
    mut expiring: Vec<(Timestamp, i64)>,
    at: Option<Timestamp>,
    points: i64,
    now: Timestamp,
) -> Vec<(Timestamp, i64)> {
    // Compared and listed as stored: in microseconds.
    let Some(at) = at
        .filter(|at| time::to_db(*at) > time::to_db(now) && points > 0)
        .and_then(|at| time::from_db(time::to_db(at)).ok())
    else {
        return expiring;
    };
    match expiring.binary_search_by(|(instant, _)| instant.cmp(&at)) {
        Ok(i) => expiring[i].1 += points,
        Err(i) => expiring.insert(i, (at, points)),
    }
    expiring.truncate(usize::try_from(EXPIRING_LISTED_MAX).unwrap_or(usize::MAX));
    expiring
}

/// The clawback mode for a refund's earning on `member_id`'s wallet, locked by the caller:
/// the program's return policy, except that a member who left the club is never taken into
/// debt (`clawback::mode_for_account`). Their status is read only when it can matter.
pub(crate) async fn clawback_mode(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
) -> Result<ClawbackMode, StoreError> {
    let mode = match program.returns {
        ReturnPolicy::OnlyPending => ClawbackMode::OnlyPending,
        ReturnPolicy::WithinBalance => ClawbackMode::WithinBalance,
        ReturnPolicy::Unlimited => ClawbackMode::Unlimited,
    };
    if mode != ClawbackMode::Unlimited {
        return Ok(mode);
    }
    let member = crate::members::member_in_tx(c, ctx.tenant, member_id).await?;
    Ok(clawback::mode_for_account(mode, member.is_active()))
}

fn parse_quantity(text: &str) -> Result<Decimal, StoreError> {
    text.parse::<Decimal>()
        .map_err(|e| StoreError::Corrupt(format!("stored quantity {text:?}: {e}")))
}

impl Store {
    /// Posts a purchase (idempotent under `claims`, which include the document key). For a
    /// member's purchase, `decide` says what it earns; it runs under the member's wallet lock
    /// with the usage of the purchase rules' limits (not at all for an anonymous purchase).
    /// With `program_version`, a member's purchase checks, in the statement that reads the
    /// member, that it is still the club's current version, and answers
    /// [`StoreError::ProgramChanged`] (nothing written) when it is not.
    #[allow(clippy::too_many_arguments)]
    pub async fn post_purchase(
        &self,
        tenant: TenantId,
        program: &Program,
        program_version: Option<i64>,
        purchase: &NewPurchase,
        decide: EarnDecision<'_>,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<PurchaseReceipt>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        let posting = Posting {
            ctx,
            program,
            program_version,
            purchase,
            decide,
        };
        // PostgreSQL first tries the optimistic path: two statements without a transaction
        // around them (one read, then every write in one statement that commits on its own)
        // instead of five round trips (BEGIN, the claim with the wallet's lock, the member's
        // read after the lock, the writes, COMMIT). A concurrent unit of work on the wallet,
        // a replay, points due to expire, a debt or a referral make it give way, having
        // written nothing, to the locked path below (BENCHMARKS.md's history, 2026-12-05).
        if self.backend() == Backend::Postgres {
            let mut c = self.pool().acquire().await?;
            let result = idempotency::run_optimistic(
                &mut c,
                tenant,
                claims,
                now,
                async |c: &mut Conn, tail: &mut Batch, claim: &mut FoldedClaim<'_>| {
                    post_purchase_in(c, tail, claim, Path::Optimistic, posting).await
                },
            )
            .await;
            drop(c);
            match result {
                Err(StoreError::TakeLockedPath) => self.count_purchase_path(false),
                result => {
                    if matches!(&result, Ok(done) if !done.replayed && done.outcome.is_ok()) {
                        self.count_purchase_path(true);
                    }
                    return idempotency::settle(self, tenant, claims, now, result).await;
                }
            }
        }
        // The claim rides on the purchase's first statement (`run_folded`).
        let result = unit_of_work!(self, |tx| async {
            idempotency::run_folded(
                &mut tx,
                ctx.backend,
                tenant,
                claims,
                now,
                async |c: &mut Conn, tail: &mut Batch, claim: &mut FoldedClaim<'_>| {
                    post_purchase_in(c, tail, claim, Path::Locked, posting).await
                },
            )
            .await
        }
        .await);
        idempotency::settle(self, tenant, claims, now, result).await
    }

    pub async fn purchase(
        &self,
        tenant: TenantId,
        purchase_id: &str,
    ) -> Result<Option<Purchase>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now: Timestamp::UNIX_EPOCH,
        };
        let mut c = self.pool().acquire().await?;
        match load_purchase(&mut c, ctx, purchase_id, false).await {
            Ok(row) => Ok(Some(row.purchase)),
            Err(StoreError::Rejected(Rejection::PurchaseNotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn purchase_by_document(
        &self,
        tenant: TenantId,
        document_id: &str,
    ) -> Result<Option<Purchase>, StoreError> {
        let row = sqlx::query("SELECT id FROM purchases WHERE tenant_id = $1 AND document_id = $2")
            .bind(tenant.0)
            .bind(document_id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => {
                self.purchase(tenant, &row.try_get::<String, _>("id")?)
                    .await
            }
            None => Ok(None),
        }
    }

    /// Refunds lines of a purchase (idempotent under `claims`, which include the document key).
    pub async fn refund_purchase(
        &self,
        tenant: TenantId,
        program: &Program,
        refund: &NewRefund,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<RefundReceipt>, StoreError> {
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
            async |c: &mut Conn, _tail: &mut Batch| { refund_in(c, ctx, program, refund).await }
        )
    }

    /// Attaches an anonymous purchase to a member, who then earns for it as if it had been
    /// identified at the till (net of anything refunded since).
    #[allow(clippy::too_many_arguments)]
    pub async fn attach_purchase(
        &self,
        tenant: TenantId,
        program: &Program,
        purchase_id: &str,
        member_id: &str,
        decide: EarnDecision<'_>,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<PurchaseReceipt>, StoreError> {
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
                attach_in(c, ctx, program, purchase_id, member_id, decide).await
            }
        )
    }

    /// Posts the pending earnings whose return window has closed by `now` (at most `limit`
    /// of them), each with a lot that expires from the instant the window closed. Returns
    /// how many were resolved. Safe to run concurrently and repeatedly: a pending transfer
    /// resolves once.
    pub async fn activate_due_pending(
        &self,
        tenant: TenantId,
        program: &Program,
        now: Timestamp,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let due = sqlx::query(
            "SELECT p.id, p.member_id FROM purchases p WHERE p.tenant_id = $1 AND p.earn_state = 'pending' \
             AND p.pending_until <= $2 ORDER BY p.pending_until LIMIT $3",
        )
        .bind(tenant.0)
        .bind(time::to_db(now))
        .bind(limit.clamp(1, 10_000))
        .fetch_all(self.pool())
        .await?;
        let mut activated = 0;
        for row in due {
            let purchase_id: String = row.try_get("id")?;
            let member_id: Option<String> = row.try_get("member_id")?;
            if member_id.is_none() {
                continue;
            }
            let ctx = LedgerCtx {
                tenant,
                backend: self.backend(),
                now,
            };
            let done = unit_of_work!(self, |tx| async {
                // The purchase row first, then its member's wallet: the order of a refund and
                // of an attach, which lock the purchase they change before the wallet. The
                // other order let a refund racing this job deadlock on PostgreSQL (one of the
                // two was then retried).
                let loaded = load_purchase(&mut tx, ctx, &purchase_id, true).await?;
                let Some(member_id) = loaded.purchase.member_id.clone() else {
                    return Ok(false);
                };
                let mut wallet = ledger::lock_wallets(&mut tx, ctx, &[member_id.as_str()])
                    .await?
                    .remove(0);
                activate_in(&mut tx, ctx, program, &mut wallet, loaded).await
            }
            .await)?;
            if done {
                activated += 1;
            }
        }
        Ok(activated)
    }
}

/// Posts the pending earning of one purchase whose window has closed (`loaded` read under
/// its row lock, then the wallet locked). Returns false when someone else resolved it first.
async fn activate_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    wallet: &mut Wallet,
    loaded: PurchaseRow,
) -> Result<bool, StoreError> {
    let purchase = &loaded.purchase;
    let purchase_id = purchase.id.as_str();
    let (Some(transfer_id), "pending", Some(until)) = (
        loaded.earn_transfer_id,
        purchase.earn_state.as_str(),
        purchase.pending_until,
    ) else {
        return Ok(false);
    };
    if until > ctx.now {
        return Ok(false);
    }
    // Expire what is due first, as every other unit of work on a wallet does: posting the
    // earning touches the inactivity clock, which would otherwise revive points whose
    // inactivity deadline passed before this job ran.
    ledger::expire_due(c, ctx, wallet).await?;
    let pending = ledger::pending_transfer(c, ctx, transfer_id).await?;
    let amount = purchase.points - purchase.settled_points;
    let resolution = ledger::resolve_pending_credit(
        c,
        ctx,
        wallet,
        &pending,
        amount,
        lot_expiry(program, until),
    )
    .await?;
    if resolution == ledger::Resolution::AlreadyResolved {
        return Ok(false);
    }
    let state = if amount > 0 { "posted" } else { "voided" };
    sqlx::query("UPDATE purchases SET earn_state = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(ctx.tenant.0)
        .bind(purchase_id)
        .bind(state)
        .execute(conn(c))
        .await?;
    if amount > 0 {
        ledger::touch_activity(c, wallet, ctx.now, inactivity_deadline(program, ctx.now)).await?;
    }
    Ok(true)
}

/// What a purchase earned, stored on its row.
struct EarnColumns {
    points: i64,
    state: &'static str,
    transfer_id: Option<i64>,
    pending_until: Option<Timestamp>,
}

const NO_EARNING: EarnColumns = EarnColumns {
    points: 0,
    state: "none",
    transfer_id: None,
    pending_until: None,
};

/// The purchase row and its lines, as statements of `batch`.
fn push_purchase_rows(
    batch: &mut Batch,
    ctx: LedgerCtx,
    purchase: &NewPurchase,
    earned: &EarnColumns,
) {
    batch.push(
        "INSERT INTO purchases (tenant_id, id, document_id, store_id, channel, member_id, occurred_at, currency, \
         total_minor, eligible_minor, points, earn_state, earn_transfer_id, pending_until, request_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        vec![
            ctx.tenant.0.into(),
            (&purchase.id).into(),
            (&purchase.document_id).into(),
            (&purchase.store_id).into(),
            (&purchase.channel).into(),
            purchase.member_id.clone().into(),
            time::to_db(purchase.occurred_at).into(),
            (&purchase.currency).into(),
            purchase.total_minor.into(),
            purchase.eligible_minor.into(),
            earned.points.into(),
            earned.state.into(),
            earned.transfer_id.into(),
            earned.pending_until.map(time::to_db).into(),
            (&purchase.request_hash).into(),
            time::to_db(ctx.now).into(),
        ],
    );
    for chunk in purchase.lines.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO purchase_lines (tenant_id, purchase_id, line_no, sku, category, quantity, unit_price_minor, \
             discount_minor, total_minor, eligible, refunded_quantity, refunded_minor) VALUES {}",
            placeholders(chunk.len(), 12)
        );
        let mut params = Vec::with_capacity(chunk.len() * 12);
        for line in chunk {
            params.extend([
                ctx.tenant.0.into(),
                (&purchase.id).into(),
                line.line_no.into(),
                (&line.sku).into(),
                (&line.category).into(),
                (&line.quantity).into(),
                line.unit_price_minor.into(),
                line.discount_minor.into(),
                line.total_minor.into(),
                i64::from(line.eligible).into(),
                "0".into(),
                Param::from(0i64),
            ]);
        }
        batch.push(&sql, params);
    }
}

/// How a purchase is posted (see [`Store::post_purchase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// In a transaction, under the wallet's lock: every case, on both backends.
    Locked,
    /// PostgreSQL's common case, without a transaction around it: one read, then one
    /// statement with every write, guarded on the wallet's `lock_version`. Whatever it does
    /// not cover is [`StoreError::TakeLockedPath`], before anything is written.
    Optimistic,
}

/// What [`post_purchase_in`] posts, the same on either path.
#[derive(Clone, Copy)]
struct Posting<'a> {
    ctx: LedgerCtx,
    program: &'a Program,
    program_version: Option<i64>,
    purchase: &'a NewPurchase,
    decide: EarnDecision<'a>,
}

async fn post_purchase_in(
    c: &mut Conn,
    tail: &mut Batch,
    claim: &mut FoldedClaim<'_>,
    path: Path,
    posting: Posting<'_>,
) -> Result<PurchaseReceipt, StoreError> {
    let Posting {
        ctx,
        program,
        program_version,
        purchase,
        decide,
    } = posting;
    if purchase.currency != program.currency.code {
        return Err(Rejection::WrongCurrency {
            expected: program.currency.code.clone(),
            found: purchase.currency.clone(),
        }
        .into());
    }
    // The document claim normally answers a second purchase of the same document first; a
    // unique violation of the rows covers a claim purged long ago.
    tail.on_unique_violation(Rejection::DocumentConflict {
        document_id: purchase.document_id.clone(),
    });
    let Some(member_id) = purchase.member_id.as_deref() else {
        match path {
            Path::Locked => claim.claim_now(c).await?,
            // The claim goes with the rows; a key taken makes the statement fail.
            Path::Optimistic => claim.defer(),
        }
        push_purchase_rows(tail, ctx, purchase, &NO_EARNING);
        return Ok(PurchaseReceipt {
            purchase_id: purchase.id.clone(),
            document_id: purchase.document_id.clone(),
            member_id: None,
            points: 0,
            base_points: 0,
            rules: Vec::new(),
            points_state: "none".into(),
            pending_until: None,
            balance: None,
            tier: None,
        });
    };
    // Lock the wallet before reading the member: units of work that change the tier hold
    // this lock, so the tier read below is the one this purchase commits under. Read before
    // the lock, a PostgreSQL transaction queued behind another purchase kept the tier it
    // saw before waiting, and earned at that rate after the other one had upgraded it.
    //
    // The same statement reads what the receipt needs (the tier metric, the points expiring
    // soonest, an id for the earning transfer) and the program's current version.
    // With them, how often each limited rule already fired in its current period.
    let periods = rules::limit_periods(program, TriggerKind::Purchase, purchase.occurred_at);
    let (extra, params) = posting_columns(program, ctx, &periods, Some(decide));
    let (mut wallet, member, row) = match path {
        Path::Locked => {
            lock_wallet_with_member_and(c, ctx, member_id, &extra, &params, Some(claim)).await?
        }
        Path::Optimistic => {
            // The same read, unlocked, with the wallet's lock version: the tail commits only
            // if it is still the same, that is if no unit of work took the lock since, so
            // everything decided below on this read holds when it commits.
            let read = crate::members::read_member_with_wallet_and(
                c,
                ctx,
                member_id,
                &extra,
                &params,
                claim.claims(),
            )
            .await?;
            // A replay, or lots to expire first (writes before the purchase's): locked.
            if read.keys_taken || read.wallet.may_expire_at(ctx.now) {
                return Err(StoreError::TakeLockedPath);
            }
            claim.defer();
            tail.guard_wallet(read.wallet.account_id, read.lock_version);
            (read.wallet, read.member, read.row)
        }
    };
    let current: Option<i64> = row.try_get("program_version")?;
    if program_version.is_some_and(|expected| current != Some(expected)) {
        return Err(StoreError::ProgramChanged { current });
    }
    let mut read = Some(posting_read_from(&row)?);
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    // Decide here, under the lock: the tier and the usage read with it are what this
    // purchase commits under, so a rule's limit holds however many purchases race.
    let usage = rule_usage_from(&row)?;
    let reads = MemberReads {
        statistics: if decide.reads_statistics {
            stats::stats_from(&row, member_id)?
        } else {
            None
        },
        segments: if decide.reads_segments {
            segments::segments_from(&row)?
        } else {
            Vec::new()
        },
    };
    let plan = (decide.decide)(&member, &usage, &reads)?;
    let points = plan.points.max(0);
    if ledger::expire_due(c, ctx, &mut wallet).await? > 0 {
        // Lots expired (and expiry transfers took ids): read again.
        read = Some(posting_read(c, ctx, program, member_id).await?);
    }
    let pending_until = plan.pending_until;
    // The common case is that read and one write: what this purchase adds to the read is
    // added here, and every write (the transfer, the wallet's totals and lot, the purchase
    // and its lines, the statistics, the rule firings, the tier upgrade) goes into the tail,
    // which the idempotency runner sends with the stored receipt. A referral (which writes to
    // a second wallet) or a wallet in debt (whose lot settles the debt) take the longer way:
    // writes first, then the reads.
    if plan.referral.is_some() || wallet.debt() > 0 {
        if path == Path::Optimistic {
            return Err(StoreError::TakeLockedPath);
        }
        read = None;
    }
    let transfer_id = match &read {
        Some(read) => read.transfer_id,
        None => ledger::next_transfer_id(c, ctx.backend).await?,
    };
    let (state, transfer_id) = credit_earn(
        c,
        tail,
        ctx,
        program,
        &mut wallet,
        &purchase.id,
        points,
        pending_until,
        transfer_id,
    )
    .await?;
    let earned = EarnColumns {
        points,
        state,
        transfer_id,
        pending_until: if state == "pending" {
            pending_until
        } else {
            None
        },
    };
    push_purchase_rows(tail, ctx, purchase, &earned);
    stats::push_new_purchase(tail, ctx, &program.tz(), purchase)?;
    rules::push_awards(
        tail,
        ctx,
        member_id,
        "purchase",
        &purchase.id,
        &plan.awards,
        &periods,
        purchase.occurred_at,
    );
    let (tier, balance) = match read {
        Some(read) => {
            let metric = read.metric + metric_contribution(program, ctx, purchase, points);
            let tier = decide_tier_in(tail, ctx, program, member_id, &member.tier, metric);
            let expiring = if state == "posted" {
                with_new_lot(read.expiring, lot_expiry(program, ctx.now), points, ctx.now)
            } else {
                read.expiring
            };
            (tier, balance_of(&wallet, expiring))
        }
        None => {
            tail.take().run(c, ctx.backend).await?;
            if let Some(referral) = &plan.referral {
                rules::pay_referral(
                    c,
                    ctx,
                    program,
                    &member,
                    &purchase.id,
                    purchase.occurred_at,
                    referral,
                )
                .await?;
            }
            update_tier_and_balance(c, ctx, program, member_id, &member.tier, &wallet).await?
        }
    };
    Ok(PurchaseReceipt {
        purchase_id: purchase.id.clone(),
        document_id: purchase.document_id.clone(),
        member_id: Some(member_id.to_string()),
        points,
        base_points: plan.base_points,
        rules: plan.awards,
        points_state: state.to_string(),
        pending_until: if state == "pending" {
            pending_until
        } else {
            None
        },
        balance: Some(balance),
        tier: Some(tier),
    })
}

async fn refund_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    refund: &NewRefund,
) -> Result<RefundReceipt, StoreError> {
    let loaded = load_purchase(c, ctx, &refund.purchase_id, true).await?;
    let purchase = &loaded.purchase;
    // Lock the wallet before anything else is written, in the same order as every other unit.
    let mut wallet = match purchase.member_id.as_deref() {
        Some(member_id) => Some(ledger::lock_wallets(c, ctx, &[member_id]).await?.remove(0)),
        None => None,
    };

    // Which quantities of which lines come back, and for how much.
    let wanted: Vec<(usize, Decimal)> = match &refund.lines {
        None => purchase
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                Ok((
                    i,
                    parse_quantity(&line.quantity)?
                        - parse_quantity(&purchase.refunded_quantities[i])?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?
            .into_iter()
            .filter(|(_, q)| *q > Decimal::ZERO)
            .collect(),
        Some(lines) => {
            let mut wanted = Vec::with_capacity(lines.len());
            for requested in lines {
                let index = purchase
                    .lines
                    .iter()
                    .position(|l| l.line_no == requested.line_no)
                    .ok_or_else(|| Rejection::RefundTooLarge {
                        reason: format!("the purchase has no line {}", requested.line_no),
                    })?;
                let quantity = requested.quantity.parse::<Decimal>().map_err(|_| {
                    Rejection::RefundTooLarge {
                        reason: format!(
                            "quantity {:?} of line {} is not a number",
                            requested.quantity, requested.line_no
                        ),
                    }
                })?;
                wanted.push((index, quantity));
            }
            wanted
        }
    };
    if wanted.is_empty() {
        return Err(Rejection::RefundTooLarge {
            reason: "nothing of this purchase remains to refund".into(),
        }
        .into());
    }
    let mut amount_minor = 0i64;
    let mut eligible_refund_minor = 0i64;
    let mut refunded_lines: Vec<(String, i64)> = Vec::with_capacity(wanted.len());
    for (index, quantity) in &wanted {
        let line = &purchase.lines[*index];
        let refunded_quantity = parse_quantity(&purchase.refunded_quantities[*index])?;
        let refunded_minor: i64 = sqlx::query(
            "SELECT refunded_minor FROM purchase_lines WHERE tenant_id = $1 AND purchase_id = $2 AND line_no = $3",
        )
        .bind(ctx.tenant.0)
        .bind(&purchase.id)
        .bind(line.line_no)
        .fetch_one(conn(c))
        .await?
        .try_get("refunded_minor")?;
        let line_amount = purchase_math::refund_line_amount(
            line.total_minor,
            parse_quantity(&line.quantity)?,
            refunded_quantity,
            refunded_minor,
            *quantity,
        )
        .map_err(|e| Rejection::RefundTooLarge {
            reason: format!("line {}: {e}", line.line_no),
        })?;
        sqlx::query(
            "UPDATE purchase_lines SET refunded_quantity = $4, refunded_minor = refunded_minor + $5 \
             WHERE tenant_id = $1 AND purchase_id = $2 AND line_no = $3",
        )
        .bind(ctx.tenant.0)
        .bind(&purchase.id)
        .bind(line.line_no)
        .bind((refunded_quantity + quantity).normalize().to_string())
        .bind(line_amount)
        .execute(conn(c))
        .await?;
        amount_minor += line_amount;
        refunded_lines.push((line.category.clone(), line_amount));
        if line.eligible {
            eligible_refund_minor += line_amount;
        }
    }
    clawback::check_refund(purchase.total_minor, purchase.refunded_minor, amount_minor).map_err(
        |e| Rejection::RefundTooLarge {
            reason: e.to_string(),
        },
    )?;
    let eligible_refunded_before: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(refunded_minor), 0) AS BIGINT) AS r FROM purchase_lines \
         WHERE tenant_id = $1 AND purchase_id = $2 AND eligible = 1",
    )
    .bind(ctx.tenant.0)
    .bind(&purchase.id)
    .fetch_one(conn(c))
    .await?
    .try_get::<i64, _>("r")?
        - eligible_refund_minor;

    let (mut clawed, mut reduced, mut forgiven) = (0, 0, 0);
    let mut earn_state = purchase.earn_state.clone();
    let mut earn_transfer_id = loaded.earn_transfer_id;
    if let Some(wallet) = wallet.as_mut() {
        ledger::expire_due(c, ctx, wallet).await?;
        if purchase.points > 0 && (earn_state == "pending" || earn_state == "posted") {
            let mode = clawback_mode(c, ctx, program, &wallet.member_id).await?;
            let state = if earn_state == "pending" {
                EarnState::Pending
            } else {
                EarnState::Posted
            };
            let plan = clawback::plan_clawback(&ClawbackInput {
                mode,
                state,
                earned: purchase.points,
                original_amount: purchase.eligible_minor,
                refunded_before: eligible_refunded_before,
                refund_amount: eligible_refund_minor,
                already_settled: purchase.settled_points,
                spendable_balance: wallet.spendable(),
            });
            reduced = plan.reduce_pending;
            forgiven = plan.forgiven;
            if plan.claw_back > 0 {
                let to = ledger::system_account(c, ctx.tenant, "clawback").await?;
                let member_id = wallet.member_id.clone();
                let transfer = NewTransfer::posted(
                    format!("clawback:{}", refund.id),
                    0,
                    0,
                    plan.claw_back,
                    code::CLAWBACK,
                )
                .member(&member_id)
                .document("refund", &refund.id);
                ledger::debit(c, ctx, wallet, to, transfer, plan.may_go_negative).await?;
                clawed = plan.claw_back;
            }
            // A pending earning the refund reduced is voided, and what stays of it pends anew
            // (same timeout), so that the wallet's pending total, and every balance shown, is
            // what will post. Reduced to nothing, it is voided now rather than at its timeout.
            if earn_state == "pending"
                && reduced > 0
                && let Some(transfer_id) = loaded.earn_transfer_id
            {
                let pending = ledger::pending_transfer(c, ctx, transfer_id).await?;
                let voided =
                    ledger::resolve_pending_credit(c, ctx, wallet, &pending, 0, None).await?;
                if voided != ledger::Resolution::Voided {
                    return Err(StoreError::Corrupt(format!(
                        "purchase {} is pending but its earning {transfer_id} was resolved",
                        purchase.id
                    )));
                }
                let stays = purchase.points - purchase.settled_points - reduced;
                if stays > 0 {
                    let member_id = wallet.member_id.clone();
                    let transfer = NewTransfer {
                        timeout_at: purchase.pending_until,
                        ..NewTransfer::posted(
                            format!("earn:{}:refund:{}", purchase.id, refund.id),
                            0,
                            0,
                            stays,
                            code::EARN,
                        )
                        .member(&member_id)
                        .document("purchase", &purchase.id)
                    };
                    let id = ledger::next_transfer_id(c, ctx.backend).await?;
                    let mut batch = Batch::new();
                    ledger::credit_pending_batched(
                        &mut batch, ctx, wallet, "issuance", transfer, id,
                    );
                    batch.run(c, ctx.backend).await?;
                    earn_transfer_id = Some(id);
                } else {
                    earn_state = "voided".into();
                }
            }
        }
    }
    if wallet.is_some() {
        rules::claw_back_referral(
            c,
            ctx,
            program,
            &purchase.id,
            &refund.id,
            purchase.eligible_minor,
            eligible_refunded_before,
            eligible_refund_minor,
        )
        .await?;
        let fully_refunded = purchase.refunded_minor + amount_minor >= purchase.total_minor;
        rules::release_limits_if_reversed(c, ctx, &purchase.id, fully_refunded, forgiven).await?;
    }
    sqlx::query(
        "UPDATE purchases SET refunded_minor = refunded_minor + $3, settled_points = settled_points + $4, \
         clawed_back_points = clawed_back_points + $5, earn_state = $6, earn_transfer_id = $7 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(&purchase.id)
    .bind(amount_minor)
    .bind(clawed + reduced + forgiven)
    .bind(clawed)
    .bind(&earn_state)
    .bind(earn_transfer_id)
    .execute(conn(c))
    .await?;
    stats::record_refund(
        c,
        ctx,
        &program.tz(),
        &purchase.id,
        amount_minor,
        &refunded_lines,
    )
    .await?;
    let balance = match wallet.as_ref() {
        Some(wallet) => Some(balance_in(c, ctx, wallet).await?),
        None => None,
    };
    let receipt = RefundReceipt {
        refund_id: refund.id.clone(),
        purchase_id: purchase.id.clone(),
        document_id: refund.document_id.clone(),
        amount_minor,
        clawed_back_points: clawed,
        reduced_pending_points: reduced,
        forgiven_points: forgiven,
        balance,
    };
    sqlx::query(
        "INSERT INTO refunds (tenant_id, id, purchase_id, document_id, amount_minor, clawed_back_points, reduced_pending, \
         forgiven_points, occurred_at, request_hash, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(ctx.tenant.0)
    .bind(&refund.id)
    .bind(&purchase.id)
    .bind(&refund.document_id)
    .bind(amount_minor)
    .bind(clawed)
    .bind(reduced)
    .bind(forgiven)
    .bind(time::to_db(refund.occurred_at))
    .bind(&refund.request_hash)
    .bind(serde_json::to_string(&receipt)?)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    Ok(receipt)
}

async fn attach_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    purchase_id: &str,
    member_id: &str,
    decide: EarnDecision<'_>,
) -> Result<PurchaseReceipt, StoreError> {
    let loaded = load_purchase(c, ctx, purchase_id, true).await?;
    let purchase = &loaded.purchase;
    if purchase.member_id.is_some() {
        return Err(Rejection::AlreadyAttached {
            purchase_id: purchase_id.to_string(),
        }
        .into());
    }
    // The wallet lock first, then the member (see `post_purchase_in`).
    let (mut wallet, member) = lock_wallet_with_member(c, ctx, member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    let periods = rules::limit_periods(program, TriggerKind::Purchase, purchase.occurred_at);
    let usage = rules::usage_in(c, ctx.tenant, member_id, &periods).await?;
    let reads = MemberReads {
        statistics: if decide.reads_statistics {
            stats::member_stats_in(c, ctx.backend, ctx.tenant, member_id).await?
        } else {
            None
        },
        segments: if decide.reads_segments {
            segments::member_segments_in(c, ctx.backend, ctx.tenant, member_id).await?
        } else {
            Vec::new()
        },
    };
    let earn = (decide.decide)(&member, &usage, &reads)?;
    ledger::expire_due(c, ctx, &mut wallet).await?;
    // Earn on what was kept: what was refunded before attaching never earned.
    let eligible_refunded: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(refunded_minor), 0) AS BIGINT) AS r FROM purchase_lines \
         WHERE tenant_id = $1 AND purchase_id = $2 AND eligible = 1",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .fetch_one(conn(c))
    .await?
    .try_get("r")?;
    let points = earn.points.max(0);
    let settled = clawback::clawback_target(points, purchase.eligible_minor, eligible_refunded);
    let mut batch = Batch::new();
    let id = ledger::next_transfer_id(c, ctx.backend).await?;
    let (state, transfer_id) = credit_earn(
        c,
        &mut batch,
        ctx,
        program,
        &mut wallet,
        purchase_id,
        points - settled,
        earn.pending_until,
        id,
    )
    .await?;
    batch.run(c, ctx.backend).await?;
    sqlx::query(
        "UPDATE purchases SET member_id = $3, attached_at = $4, points = $5, settled_points = $6, earn_state = $7, \
         earn_transfer_id = $8, pending_until = $9 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(purchase_id)
    .bind(member_id)
    .bind(time::to_db(ctx.now))
    .bind(points)
    .bind(settled)
    .bind(state)
    .bind(transfer_id)
    .bind(if state == "pending" { earn.pending_until.map(time::to_db) } else { None })
    .execute(conn(c))
    .await?;
    stats::record_purchase(c, ctx, &program.tz(), purchase_id).await?;
    rules::record_awards(
        c,
        ctx,
        member_id,
        "purchase",
        purchase_id,
        &earn.awards,
        &periods,
        purchase.occurred_at,
    )
    .await?;
    if let Some(referral) = &earn.referral {
        rules::pay_referral(
            c,
            ctx,
            program,
            &member,
            purchase_id,
            purchase.occurred_at,
            referral,
        )
        .await?;
    }
    let tier = update_tier(c, ctx, program, member_id, &member.tier).await?;
    let balance = balance_in(c, ctx, &wallet).await?;
    Ok(PurchaseReceipt {
        purchase_id: purchase_id.to_string(),
        document_id: purchase.document_id.clone(),
        member_id: Some(member_id.to_string()),
        points: points - settled,
        base_points: earn.base_points,
        rules: earn.awards.clone(),
        points_state: state.to_string(),
        pending_until: if state == "pending" {
            earn.pending_until
        } else {
            None
        },
        balance: Some(balance),
        tier: Some(tier),
    })
}
