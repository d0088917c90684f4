//! Posting a purchase: the optimistic path (PostgreSQL's common case: one read, then every
//! write in one statement) and the locked path (every case, on both backends). Either reads
//! the member and what the receipt needs under (or guarded by) the wallet's lock, lets the
//! engine's [`EarnDecision`] and the domain (`patron_domain::posting`) decide, and writes.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patron_domain::posting::{self, Earning};
use patron_domain::program::Program;
use patron_domain::rules::{RuleUsage, TriggerKind};
use patron_domain::tier;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::tier::{decide_tier_in, tier_metric_query, update_tier_and_balance};
use super::{
    Credit, EarnDecision, EarnPlan, MemberReads, NewPurchase, PurchaseReceipt, TierStatus,
    credit_earn, lot_expiry,
};
use crate::batch::{Batch, Param, ROWS_PER_STATEMENT, placeholders};
use crate::idempotency::{self, Claim, FoldedClaim, Idempotent};
use crate::ledger::{self, LedgerCtx, Wallet};
use crate::members::{Member, lock_wallet_with_member_and};
use crate::rules;
use crate::segments;
use crate::stats;
use crate::tenants::TenantId;
use crate::wallet::{Balance, EXPIRING_LISTED_MAX, balance_of};
use crate::{Backend, Conn, Rejection, Store, StoreError, conn, time, unit_of_work};

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

/// What a purchase earned, stored on its row.
struct EarnColumns {
    points: i64,
    earning: Earning,
    transfer_id: Option<i64>,
}

const NO_EARNING: EarnColumns = EarnColumns {
    points: 0,
    earning: Earning::None,
    transfer_id: None,
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
            earned.earning.code().into(),
            earned.transfer_id.into(),
            earned.earning.pending_until().map(time::to_db).into(),
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

/// Posts a purchase on `path`: an anonymous one as it is, a member's one decided under the
/// wallet's lock ([`read_member`], then [`post_member_purchase`]).
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
        purchase,
        ..
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
            points_state: Earning::None.code().into(),
            pending_until: None,
            balance: None,
            tier: None,
        });
    };
    let snapshot = read_member(c, tail, claim, path, posting, member_id).await?;
    post_member_purchase(c, tail, path, posting, snapshot).await
}

/// What a member's purchase read under the wallet's lock (or guarded by its lock version).
struct MemberSnapshot {
    wallet: Wallet,
    member: Member,
    /// The rules' limit periods at the purchase's instant, and their usage in them.
    periods: BTreeMap<String, String>,
    usage: RuleUsage,
    reads: MemberReads,
    read: PostingRead,
}

/// Locks the wallet (or, on the optimistic path, reads it with its lock version) and reads,
/// in the same statement, the member, what the rules and the receipt need, and the program's
/// current version; checks the version and that the member is still in the club.
async fn read_member(
    c: &mut Conn,
    tail: &mut Batch,
    claim: &mut FoldedClaim<'_>,
    path: Path,
    posting: Posting<'_>,
    member_id: &str,
) -> Result<MemberSnapshot, StoreError> {
    let Posting {
        ctx,
        program,
        program_version,
        purchase,
        decide,
    } = posting;
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
    let (wallet, member, row) = match path {
        Path::Locked => {
            lock_wallet_with_member_and(c, ctx, member_id, &extra, &params, Some(claim)).await?
        }
        Path::Optimistic => {
            read_optimistic(c, tail, claim, ctx, member_id, (&extra, &params)).await?
        }
    };
    let current: Option<i64> = row.try_get("program_version")?;
    if program_version.is_some_and(|expected| current != Some(expected)) {
        return Err(StoreError::ProgramChanged { current });
    }
    let read = posting_read_from(&row)?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
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
    Ok(MemberSnapshot {
        wallet,
        member,
        periods,
        usage,
        reads,
        read,
    })
}

/// Decides a member's purchase on what [`read_member`] read, and writes it: the earning
/// (pending or posted, with its lot), the purchase and its lines, the statistics, the rule
/// firings and the tier upgrade into `tail`; a referral or a wallet in debt first write, then
/// read what the receipt shows.
async fn post_member_purchase(
    c: &mut Conn,
    tail: &mut Batch,
    path: Path,
    posting: Posting<'_>,
    snapshot: MemberSnapshot,
) -> Result<PurchaseReceipt, StoreError> {
    let Posting {
        ctx,
        program,
        purchase,
        decide,
        ..
    } = posting;
    let MemberSnapshot {
        mut wallet,
        member,
        periods,
        usage,
        reads,
        read,
    } = snapshot;
    let member_id = member.id.clone();
    // Decide here, under the lock: the tier and the usage read with it are what this
    // purchase commits under, so a rule's limit holds however many purchases race.
    let plan = (decide.decide)(&member, &usage, &reads)?;
    let points = plan.points.max(0);
    let mut read = Some(read);
    if ledger::expire_due(c, ctx, &mut wallet).await? > 0 {
        // Lots expired (and expiry transfers took ids): read again.
        read = Some(posting_read(c, ctx, program, &member_id).await?);
    }
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
    let id = match &read {
        Some(read) => read.transfer_id,
        None => ledger::next_transfer_id(c, ctx.backend).await?,
    };
    let earning = posting::decide_earning(points, plan.pending_until, ctx.now);
    let credit = Credit {
        purchase_id: &purchase.id,
        points,
        earning,
        id,
    };
    let transfer_id = credit_earn(c, tail, ctx, program, &mut wallet, credit).await?;
    let earned = EarnColumns {
        points,
        earning,
        transfer_id,
    };
    push_purchase_rows(tail, ctx, purchase, &earned);
    stats::push_new_purchase(tail, ctx, &program.tz(), purchase)?;
    let awards = rules::Awards {
        member_id: &member_id,
        source_type: "purchase",
        source_id: &purchase.id,
        awards: &plan.awards,
        periods: &periods,
        occurred_at: purchase.occurred_at,
    };
    rules::push_awards(tail, ctx, awards);
    let (tier, balance) = match read {
        Some(read) => receipt_from_read(tail, posting, &member, &wallet, read, &earned),
        None => write_then_read(c, tail, posting, &member, &wallet, &plan).await?,
    };
    Ok(PurchaseReceipt {
        purchase_id: purchase.id.clone(),
        document_id: purchase.document_id.clone(),
        member_id: Some(member_id),
        points,
        base_points: plan.base_points,
        rules: plan.awards,
        points_state: earning.code().to_string(),
        pending_until: earning.pending_until(),
        balance: Some(balance),
        tier: Some(tier),
    })
}

/// The receipt's tier and balance from the read before the writes, with what this purchase
/// adds to them (`posting::metric_contribution`, `posting::with_new_lot`); the upgrade, if
/// any, goes into `tail`.
fn receipt_from_read(
    tail: &mut Batch,
    posting: Posting<'_>,
    member: &Member,
    wallet: &Wallet,
    read: PostingRead,
    earned: &EarnColumns,
) -> (TierStatus, Balance) {
    let Posting {
        ctx,
        program,
        purchase,
        ..
    } = posting;
    let window_start = tier::window_start(&program.tiers.window, ctx.now, &program.calendar());
    let metric = read.metric
        + posting::metric_contribution(
            program.tiers.basis,
            window_start,
            ctx.now,
            purchase.occurred_at,
            purchase.total_minor,
            earned.points,
        );
    let tier = decide_tier_in(tail, ctx, program, &member.id, &member.tier, metric);
    let expiring = match earned.earning {
        Earning::Posted => posting::with_new_lot(
            read.expiring,
            lot_expiry(program, ctx.now),
            earned.points,
            ctx.now,
            usize::try_from(EXPIRING_LISTED_MAX).unwrap_or(usize::MAX),
        ),
        _ => read.expiring,
    };
    (tier, balance_of(wallet, expiring))
}

/// The longer way: sends the writes, pays the referral if one fired, then reads the tier and
/// the balance the receipt shows.
async fn write_then_read(
    c: &mut Conn,
    tail: &mut Batch,
    posting: Posting<'_>,
    member: &Member,
    wallet: &Wallet,
    plan: &EarnPlan,
) -> Result<(TierStatus, Balance), StoreError> {
    let Posting {
        ctx,
        program,
        purchase,
        ..
    } = posting;
    tail.take().run(c, ctx.backend).await?;
    if let Some(referral) = &plan.referral {
        rules::pay_referral(
            c,
            ctx,
            program,
            member,
            &purchase.id,
            purchase.occurred_at,
            referral,
        )
        .await?;
    }
    update_tier_and_balance(c, ctx, program, &member.id, &member.tier, wallet).await
}

/// The optimistic path's read: the member's read unlocked, with the wallet's lock version.
/// The tail commits only if it is still the same, that is if no unit of work took the lock
/// since, so everything decided on this read holds when it commits. A replay, or lots to
/// expire first (writes before the purchase's), take the locked path.
async fn read_optimistic(
    c: &mut Conn,
    tail: &mut Batch,
    claim: &mut FoldedClaim<'_>,
    ctx: LedgerCtx,
    member_id: &str,
    (extra, params): (&str, &[Param]),
) -> Result<(Wallet, Member, AnyRow), StoreError> {
    let read = crate::members::read_member_with_wallet_and(
        c,
        ctx,
        member_id,
        extra,
        params,
        claim.claims(),
    )
    .await?;
    if read.keys_taken || read.wallet.may_expire_at(ctx.now) {
        return Err(StoreError::TakeLockedPath);
    }
    claim.defer();
    tail.guard_wallet(read.wallet.account_id, read.lock_version);
    Ok((read.wallet, read.member, read.row))
}
