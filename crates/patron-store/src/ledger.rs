//! The points ledger, as docs/LEDGER.md states it: accounts with four totals, append-only
//! transfers, two-phase (pending) transfers that resolve once, and expiry lots consumed
//! soonest-expiry first.
//!
//! These functions run inside a unit of work, on wallets the caller has locked with
//! [`lock_wallets`]. They assert their preconditions (a debit never takes more than the
//! spendable balance unless the code may go negative) and keep the stored totals and lot
//! remainders equal to what the transfers imply; `verify` recomputes both.

use jiff::Timestamp;
use patron_domain::lots::{self, LotView, Take};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::batch::Batch;
use crate::tenants::TenantId;
use crate::{Backend, Conn, Rejection, StoreError, conn, time};

/// Reason codes on transfers.
pub mod code {
    pub const EARN: &str = "earn";
    pub const REDEEM: &str = "redeem";
    pub const EXPIRE: &str = "expire";
    pub const CLAWBACK: &str = "clawback";
    pub const ADJUST: &str = "adjust";
    pub const TRANSFER: &str = "transfer";
    pub const FORFEIT: &str = "forfeit";
    pub const REVERSAL: &str = "reversal";
    /// Points an event rule gave (`POST /v1/events`).
    pub const EVENT: &str = "event";
    /// The join gift of the enrollment rules.
    pub const JOIN: &str = "join";
}

/// What a transfer row is.
pub mod kind {
    pub const POSTED: &str = "posted";
    pub const PENDING: &str = "pending";
    pub const POST_PENDING: &str = "post_pending";
    pub const VOID_PENDING: &str = "void_pending";
}

/// A member's wallet with its stored totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub account_id: i64,
    pub member_id: String,
    pub credits_posted: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub debits_pending: i64,
    pub last_activity_at: Option<Timestamp>,
    pub inactivity_expires_at: Option<Timestamp>,
    /// A lower bound of the expiry instants of its open lots (`None`: no open lot expires),
    /// read with the wallet so that [`expire_due`] can skip its query when nothing is due.
    /// Lots created later in the unit of work expire after now and keep it true; giving
    /// points back to a lot ([`restore_lots`]) lowers it to the minimum.
    pub next_expiry_at: Option<Timestamp>,
}

impl Wallet {
    /// docs/LEDGER.md#balances-and-debt: spendable = credits posted − debits posted − debits
    /// pending.
    pub fn spendable(&self) -> i64 {
        self.credits_posted - self.debits_posted - self.debits_pending
    }

    /// A negative spendable balance is a debt that later earnings pay first.
    pub fn debt(&self) -> i64 {
        (-self.spendable()).max(0)
    }

    /// Whether [`expire_due`] may have points to expire at `now` (false: it has nothing to do
    /// and sends no query).
    pub(crate) fn may_expire_at(&self, now: Timestamp) -> bool {
        self.inactivity_expires_at.is_some_and(|at| at <= now)
            || self.next_expiry_at.is_some_and(|at| at <= now)
    }
}

/// One transfer as members and operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub id: i64,
    pub key: String,
    pub debit_account: i64,
    pub credit_account: i64,
    pub amount: i64,
    pub code: String,
    pub kind: String,
    pub pending_id: Option<i64>,
    pub timeout_at: Option<Timestamp>,
    pub document_type: Option<String>,
    pub document_id: Option<String>,
    pub note: Option<String>,
    pub created_at: Timestamp,
}

pub(crate) const TRANSFER_COLUMNS: &str = "id, transfer_key, debit_account, credit_account, amount, code, kind, \
     pending_id, timeout_at, document_type, document_id, note, created_at";

pub(crate) fn transfer_from_row(row: &AnyRow) -> Result<TransferRecord, StoreError> {
    Ok(TransferRecord {
        id: row.try_get("id")?,
        key: row.try_get("transfer_key")?,
        debit_account: row.try_get("debit_account")?,
        credit_account: row.try_get("credit_account")?,
        amount: row.try_get("amount")?,
        code: row.try_get("code")?,
        kind: row.try_get("kind")?,
        pending_id: row.try_get("pending_id")?,
        timeout_at: time::opt_from_db(row.try_get("timeout_at")?)?,
        document_type: row.try_get("document_type")?,
        document_id: row.try_get("document_id")?,
        note: row.try_get("note")?,
        created_at: time::from_db(row.try_get("created_at")?)?,
    })
}

pub(crate) const WALLET_COLUMNS: &str = "id, member_id, credits_posted, debits_posted, credits_pending, \
     debits_pending, last_activity_at, inactivity_expires_at, \
     (SELECT MIN(l.expires_at) FROM lots l WHERE l.account_id = accounts.id AND l.remaining > 0) AS next_expiry_at";

pub(crate) fn wallet_from_row(row: &AnyRow) -> Result<Wallet, StoreError> {
    Ok(Wallet {
        account_id: row.try_get("id")?,
        member_id: row.try_get("member_id")?,
        credits_posted: row.try_get("credits_posted")?,
        debits_posted: row.try_get("debits_posted")?,
        credits_pending: row.try_get("credits_pending")?,
        debits_pending: row.try_get("debits_pending")?,
        last_activity_at: time::opt_from_db(row.try_get("last_activity_at")?)?,
        inactivity_expires_at: time::opt_from_db(row.try_get("inactivity_expires_at")?)?,
        next_expiry_at: time::opt_from_db(row.try_get("next_expiry_at")?)?,
    })
}

/// Everything a ledger operation needs to know about where it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LedgerCtx {
    pub tenant: TenantId,
    pub backend: Backend,
    pub now: Timestamp,
}

pub(crate) async fn create_wallet(
    tx: &mut Conn,
    tenant: TenantId,
    member_id: &str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO accounts (tenant_id, kind, member_id) VALUES ($1, 'wallet', $2) RETURNING id",
    )
    .bind(tenant.0)
    .bind(member_id)
    .fetch_one(conn(tx))
    .await?;
    Ok(row.try_get("id")?)
}

/// The statement that locks the wallet of member `member` of tenant `tenant` (placeholders or
/// expressions) and returns its [`WALLET_COLUMNS`]. On PostgreSQL taking the lock is an
/// `UPDATE` that counts it in `lock_version`, which is how the optimistic purchase path knows
/// that no unit of work held the lock between its read and its write (migration 13); on
/// SQLite, where `BEGIN IMMEDIATE` already made the transaction the only writer, a read.
pub(crate) fn lock_wallet_sql(backend: Backend, tenant: &str, member: &str) -> String {
    match backend {
        Backend::Sqlite => format!(
            "SELECT {WALLET_COLUMNS} FROM accounts WHERE tenant_id = {tenant} AND member_id = {member}"
        ),
        Backend::Postgres => format!(
            "UPDATE accounts SET lock_version = lock_version + 1 \
             WHERE tenant_id = {tenant} AND member_id = {member} RETURNING {WALLET_COLUMNS}"
        ),
    }
}

/// Locks the wallets of these members, in member-id order so two units of work that lock the
/// same pair cannot deadlock, and returns them in the order asked.
pub(crate) async fn lock_wallets(
    tx: &mut Conn,
    ctx: LedgerCtx,
    member_ids: &[&str],
) -> Result<Vec<Wallet>, StoreError> {
    let mut sorted: Vec<&str> = member_ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut locked = Vec::with_capacity(sorted.len());
    for member_id in sorted {
        let sql = lock_wallet_sql(ctx.backend, "$1", "$2");
        let row = sqlx::query(&sql)
            .bind(ctx.tenant.0)
            .bind(member_id)
            .fetch_optional(conn(tx))
            .await?;
        match row {
            Some(row) => locked.push(wallet_from_row(&row)?),
            None => {
                return Err(Rejection::MemberNotFound {
                    member_id: member_id.to_string(),
                }
                .into());
            }
        }
    }
    member_ids
        .iter()
        .map(|id| {
            locked
                .iter()
                .find(|w| w.member_id == *id)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("wallet of {id} vanished")))
        })
        .collect()
}

/// Reads a wallet without locking it (for balances shown to people).
pub(crate) async fn read_wallet<'e, E>(
    executor: E,
    tenant: TenantId,
    member_id: &str,
) -> Result<Option<Wallet>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql =
        format!("SELECT {WALLET_COLUMNS} FROM accounts WHERE tenant_id = $1 AND member_id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant.0)
        .bind(member_id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(wallet_from_row).transpose()
}

pub(crate) async fn system_account(
    tx: &mut Conn,
    tenant: TenantId,
    kind: &str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT id FROM accounts WHERE tenant_id = $1 AND kind = $2 AND member_id IS NULL",
    )
    .bind(tenant.0)
    .bind(kind)
    .fetch_optional(conn(tx))
    .await?;
    match row {
        Some(row) => Ok(row.try_get("id")?),
        None => Err(StoreError::Corrupt(format!(
            "system account {kind} missing for tenant {}",
            tenant.0
        ))),
    }
}

/// A transfer about to be appended.
#[derive(Debug, Clone)]
pub(crate) struct NewTransfer<'a> {
    pub key: String,
    pub debit: i64,
    pub credit: i64,
    pub amount: i64,
    pub code: &'a str,
    pub kind: &'a str,
    pub pending_id: Option<i64>,
    pub timeout_at: Option<Timestamp>,
    pub member_id: Option<&'a str>,
    pub document_type: Option<&'a str>,
    pub document_id: Option<&'a str>,
    pub note: Option<&'a str>,
}

impl<'a> NewTransfer<'a> {
    pub fn posted(key: String, debit: i64, credit: i64, amount: i64, code: &'a str) -> Self {
        NewTransfer {
            key,
            debit,
            credit,
            amount,
            code,
            kind: kind::POSTED,
            pending_id: None,
            timeout_at: None,
            member_id: None,
            document_type: None,
            document_id: None,
            note: None,
        }
    }

    pub fn document(mut self, document_type: &'a str, document_id: &'a str) -> Self {
        self.document_type = Some(document_type);
        self.document_id = Some(document_id);
        self
    }

    pub fn member(mut self, member_id: &'a str) -> Self {
        self.member_id = Some(member_id);
        self
    }

    pub fn note(mut self, note: Option<&'a str>) -> Self {
        self.note = note;
        self
    }
}

/// Appends a transfer row. Does not touch totals.
pub(crate) async fn insert_transfer(
    tx: &mut Conn,
    ctx: LedgerCtx,
    t: &NewTransfer<'_>,
) -> Result<i64, StoreError> {
    debug_assert!(t.amount >= 0, "transfer amounts are never negative");
    debug_assert_ne!(
        t.debit, t.credit,
        "a transfer moves points between two accounts"
    );
    let row = sqlx::query(
        "INSERT INTO transfers (tenant_id, transfer_key, debit_account, credit_account, amount, code, kind, \
         pending_id, timeout_at, member_id, document_type, document_id, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(ctx.tenant.0)
    .bind(&t.key)
    .bind(t.debit)
    .bind(t.credit)
    .bind(t.amount)
    .bind(t.code)
    .bind(t.kind)
    .bind(t.pending_id)
    .bind(t.timeout_at.map(time::to_db))
    .bind(t.member_id)
    .bind(t.document_type)
    .bind(t.document_id)
    .bind(t.note)
    .bind(time::to_db(ctx.now))
    .fetch_one(conn(tx))
    .await?;
    Ok(row.try_get("id")?)
}

/// Appends a transfer whose debit side is the tenant's system account `from_kind` (its
/// `debit` field is ignored): the account is looked up inside the INSERT, saving a round trip
/// per credit. A missing system account fails the NOT NULL constraint, as corruption should.
pub(crate) async fn insert_transfer_from_system(
    tx: &mut Conn,
    ctx: LedgerCtx,
    t: &NewTransfer<'_>,
    from_kind: &str,
) -> Result<i64, StoreError> {
    debug_assert!(t.amount >= 0, "transfer amounts are never negative");
    let row = sqlx::query(
        "INSERT INTO transfers (tenant_id, transfer_key, debit_account, credit_account, amount, code, kind, \
         pending_id, timeout_at, member_id, document_type, document_id, note, created_at) \
         VALUES ($1, $2, (SELECT id FROM accounts WHERE tenant_id = $1 AND kind = $3 AND member_id IS NULL), \
         $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(ctx.tenant.0)
    .bind(&t.key)
    .bind(from_kind)
    .bind(t.credit)
    .bind(t.amount)
    .bind(t.code)
    .bind(t.kind)
    .bind(t.pending_id)
    .bind(t.timeout_at.map(time::to_db))
    .bind(t.member_id)
    .bind(t.document_type)
    .bind(t.document_id)
    .bind(t.note)
    .bind(time::to_db(ctx.now))
    .fetch_one(conn(tx))
    .await?;
    Ok(row.try_get("id")?)
}

/// Changes to a wallet's stored totals. System accounts keep none (see the schema).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TotalsDelta {
    pub credits_posted: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub debits_pending: i64,
    /// Member activity to record in the same statement: (when, new inactivity deadline).
    pub activity: Option<(Timestamp, Option<Timestamp>)>,
}

pub(crate) async fn apply_totals(
    tx: &mut Conn,
    wallet: &mut Wallet,
    delta: TotalsDelta,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    apply_totals_in(&mut batch, wallet, delta);
    // One statement: it is sent as it is, whatever the backend.
    batch.run(tx, Backend::Sqlite).await
}

/// [`apply_totals`] as a statement of `batch`: one statement whether or not activity is
/// recorded, since every round trip counts on the purchase path.
pub(crate) fn apply_totals_in(batch: &mut Batch, wallet: &mut Wallet, delta: TotalsDelta) {
    let (last_activity, inactivity) = match delta.activity {
        Some((at, deadline)) => (Some(time::to_db(at)), deadline.map(time::to_db)),
        None => (None, None),
    };
    let mut params: Vec<crate::batch::Param> = vec![
        delta.credits_posted.into(),
        delta.debits_posted.into(),
        delta.credits_pending.into(),
        delta.debits_pending.into(),
        wallet.account_id.into(),
        i64::from(delta.activity.is_some()).into(),
        last_activity.into(),
        inactivity.into(),
    ];
    // On the optimistic purchase path this statement also checks and counts the wallet's
    // lock version (`Batch::guard_wallet`).
    let (bump, condition) = match batch.wallet_condition(wallet.account_id, params.len() + 1) {
        Some((bump, condition, version)) => {
            params.push(version);
            (bump, condition)
        }
        None => ("", String::new()),
    };
    batch.push(
        &format!(
            "UPDATE accounts SET credits_posted = credits_posted + $1, debits_posted = debits_posted + $2, \
             credits_pending = credits_pending + $3, debits_pending = debits_pending + $4, \
             last_activity_at = CASE WHEN $6 = 1 THEN $7 ELSE last_activity_at END, \
             inactivity_expires_at = CASE WHEN $6 = 1 THEN $8 ELSE inactivity_expires_at END{bump} \
             WHERE id = $5{condition}"
        ),
        params,
    );
    wallet.credits_posted += delta.credits_posted;
    wallet.debits_posted += delta.debits_posted;
    wallet.credits_pending += delta.credits_pending;
    wallet.debits_pending += delta.debits_pending;
    if let Some((at, deadline)) = delta.activity {
        wallet.last_activity_at = Some(at);
        wallet.inactivity_expires_at = deadline;
    }
    debug_assert!(wallet.credits_pending >= 0 && wallet.debits_pending >= 0);
}

/// Records member activity (earning or spending), which restarts an inactivity expiry clock.
pub(crate) async fn touch_activity(
    tx: &mut Conn,
    wallet: &mut Wallet,
    at: Timestamp,
    inactivity_expires_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE accounts SET last_activity_at = $1, inactivity_expires_at = $2 WHERE id = $3",
    )
    .bind(time::to_db(at))
    .bind(inactivity_expires_at.map(time::to_db))
    .bind(wallet.account_id)
    .execute(conn(tx))
    .await?;
    wallet.last_activity_at = Some(at);
    wallet.inactivity_expires_at = inactivity_expires_at;
    Ok(())
}

async fn add_movement(
    tx: &mut Conn,
    ctx: LedgerCtx,
    lot_id: i64,
    transfer_id: i64,
    amount: i64,
) -> Result<(), StoreError> {
    if amount == 0 {
        return Ok(());
    }
    sqlx::query("INSERT INTO lot_movements (tenant_id, lot_id, transfer_id, amount) VALUES ($1, $2, $3, $4)")
        .bind(ctx.tenant.0)
        .bind(lot_id)
        .bind(transfer_id)
        .bind(amount)
        .execute(conn(tx))
        .await?;
    sqlx::query("UPDATE lots SET remaining = remaining + $1 WHERE id = $2")
        .bind(amount)
        .bind(lot_id)
        .execute(conn(tx))
        .await?;
    Ok(())
}

/// Creates the lot of a posted credit. A debt is paid first (docs/LEDGER.md#expiry-lots), recorded
/// as a movement of the same transfer, so `remaining = amount + Σ movements` always holds.
/// `debt_before` is the wallet's debt before the credit was applied to its totals.
async fn create_lot(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &Wallet,
    transfer_id: i64,
    amount: i64,
    expires_at: Option<Timestamp>,
    debt_before: i64,
) -> Result<i64, StoreError> {
    if amount <= 0 {
        return Ok(0);
    }
    let row = sqlx::query(
        "INSERT INTO lots (tenant_id, account_id, transfer_id, amount, remaining, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id",
    )
    .bind(ctx.tenant.0)
    .bind(wallet.account_id)
    .bind(transfer_id)
    .bind(amount)
    .bind(expires_at.map(time::to_db))
    .bind(time::to_db(ctx.now))
    .fetch_one(conn(tx))
    .await?;
    let lot_id: i64 = row.try_get("id")?;
    let (paid_to_debt, _remaining) = lots::settle_debt(amount, debt_before);
    add_movement(tx, ctx, lot_id, transfer_id, -paid_to_debt).await?;
    Ok(paid_to_debt)
}

/// Creates a lot for a credit whose totals the caller applied itself; returns what of it
/// paid the debt.
pub(crate) async fn create_lot_raw(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &Wallet,
    transfer_id: i64,
    amount: i64,
    expires_at: Option<Timestamp>,
    debt_before: i64,
) -> Result<i64, StoreError> {
    create_lot(
        tx,
        ctx,
        wallet,
        transfer_id,
        amount,
        expires_at,
        debt_before,
    )
    .await
}

/// The wallet's open lots (remaining > 0), for consumption planning.
pub(crate) async fn open_lots(tx: &mut Conn, wallet: &Wallet) -> Result<Vec<LotView>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, remaining, expires_at FROM lots WHERE account_id = $1 AND remaining > 0 ORDER BY id",
    )
    .bind(wallet.account_id)
    .fetch_all(conn(tx))
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(LotView {
                id,
                remaining: row.try_get("remaining")?,
                expires_at: time::opt_from_db(row.try_get("expires_at")?)?,
                seq: id,
            })
        })
        .collect()
}

/// A posted credit into a wallet from a system account, with its lot (and, when given, the
/// member activity it counts as).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn credit_posted(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    from_kind: &str,
    transfer: NewTransfer<'_>,
    expires_at: Option<Timestamp>,
    activity: Option<(Timestamp, Option<Timestamp>)>,
) -> Result<i64, StoreError> {
    let transfer = NewTransfer {
        credit: wallet.account_id,
        kind: kind::POSTED,
        ..transfer
    };
    let debt_before = wallet.debt();
    let id = insert_transfer_from_system(tx, ctx, &transfer, from_kind).await?;
    apply_totals(
        tx,
        wallet,
        TotalsDelta {
            credits_posted: transfer.amount,
            activity,
            ..Default::default()
        },
    )
    .await?;
    create_lot(
        tx,
        ctx,
        wallet,
        id,
        transfer.amount,
        expires_at,
        debt_before,
    )
    .await?;
    Ok(id)
}

/// The SQL of a transfer id allocated before the transfer is written, so that the transfer
/// can join a [`Batch`] with the rows that reference it. PostgreSQL: the next value of the
/// identity's sequence (the column is `GENERATED BY DEFAULT`, migration 0011). SQLite: one
/// past the largest id, safe because only the writer holding the database's write lock
/// inserts transfers, and transfers are never deleted.
pub(crate) fn next_transfer_id_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "SELECT nextval(pg_get_serial_sequence('transfers', 'id')) AS id",
        Backend::Sqlite => "SELECT COALESCE(MAX(id), 0) + 1 AS id FROM transfers",
    }
}

/// Allocates a transfer id on its own (see [`next_transfer_id_sql`]).
pub(crate) async fn next_transfer_id(tx: &mut Conn, backend: Backend) -> Result<i64, StoreError> {
    let row = sqlx::query(next_transfer_id_sql(backend))
        .fetch_one(conn(tx))
        .await?;
    Ok(row.try_get("id")?)
}

/// [`insert_transfer_from_system`] as a statement of `batch`, under the id `id` allocated with
/// [`next_transfer_id_sql`] in the same transaction.
fn push_transfer_from_system(
    batch: &mut Batch,
    ctx: LedgerCtx,
    id: i64,
    t: &NewTransfer<'_>,
    from_kind: &str,
) {
    debug_assert!(t.amount >= 0, "transfer amounts are never negative");
    batch.push(
        "INSERT INTO transfers (id, tenant_id, transfer_key, debit_account, credit_account, amount, code, kind, \
         pending_id, timeout_at, member_id, document_type, document_id, note, created_at) \
         VALUES ($15, $1, $2, (SELECT id FROM accounts WHERE tenant_id = $1 AND kind = $3 AND member_id IS NULL), \
         $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        vec![
            ctx.tenant.0.into(),
            (&t.key).into(),
            from_kind.into(),
            t.credit.into(),
            t.amount.into(),
            t.code.into(),
            t.kind.into(),
            t.pending_id.into(),
            t.timeout_at.map(time::to_db).into(),
            t.member_id.into(),
            t.document_type.into(),
            t.document_id.into(),
            t.note.into(),
            time::to_db(ctx.now).into(),
            id.into(),
        ],
    );
}

/// [`credit_posted`] for the purchase path: the transfer (under `id`, allocated with
/// [`next_transfer_id_sql`]), the totals and the lot all go into `batch`. A wallet in debt
/// takes the unbatched path, since its lot also records the debt paid, which needs the lot's
/// id; the transfer then gets an id of its own, which is returned.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn credit_posted_batched(
    tx: &mut Conn,
    batch: &mut Batch,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    from_kind: &str,
    transfer: NewTransfer<'_>,
    id: i64,
    expires_at: Option<Timestamp>,
    activity: Option<(Timestamp, Option<Timestamp>)>,
) -> Result<i64, StoreError> {
    if wallet.debt() > 0 || transfer.amount <= 0 {
        return credit_posted(tx, ctx, wallet, from_kind, transfer, expires_at, activity).await;
    }
    let transfer = NewTransfer {
        credit: wallet.account_id,
        kind: kind::POSTED,
        ..transfer
    };
    push_transfer_from_system(batch, ctx, id, &transfer, from_kind);
    apply_totals_in(
        batch,
        wallet,
        TotalsDelta {
            credits_posted: transfer.amount,
            activity,
            ..Default::default()
        },
    );
    batch.push(
        "INSERT INTO lots (tenant_id, account_id, transfer_id, amount, remaining, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $4, $5, $6)",
        vec![
            ctx.tenant.0.into(),
            wallet.account_id.into(),
            id.into(),
            transfer.amount.into(),
            expires_at.map(time::to_db).into(),
            time::to_db(ctx.now).into(),
        ],
    );
    Ok(id)
}

/// [`credit_pending`] for the purchase path: the transfer (under `id`, allocated with
/// [`next_transfer_id_sql`]) and the totals into `batch`.
pub(crate) fn credit_pending_batched(
    batch: &mut Batch,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    from_kind: &str,
    transfer: NewTransfer<'_>,
    id: i64,
) -> i64 {
    let transfer = NewTransfer {
        credit: wallet.account_id,
        kind: kind::PENDING,
        ..transfer
    };
    push_transfer_from_system(batch, ctx, id, &transfer, from_kind);
    apply_totals_in(
        batch,
        wallet,
        TotalsDelta {
            credits_pending: transfer.amount,
            ..Default::default()
        },
    );
    id
}

/// The outcome of taking points out of a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Debit {
    pub transfer_id: i64,
    pub takes: Vec<Take>,
}

/// A posted (or, with `pending`, held) debit from a wallet to a system or member account,
/// consuming lots soonest-expiry first. Without `may_go_negative` it is rejected when the
/// spendable balance is short; with it, the shortfall becomes debt.
pub(crate) async fn debit(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    to_account: i64,
    transfer: NewTransfer<'_>,
    may_go_negative: bool,
) -> Result<Debit, StoreError> {
    let amount = transfer.amount;
    let pending = transfer.kind == kind::PENDING;
    if amount <= 0 {
        return Err(StoreError::Corrupt("a debit must be positive".into()));
    }
    if !may_go_negative && wallet.spendable() < amount {
        return Err(Rejection::InsufficientPoints {
            available: wallet.spendable().max(0),
            requested: amount,
        }
        .into());
    }
    let lots = open_lots(tx, wallet).await?;
    let plan = lots::plan_consumption(&lots, amount, ctx.now);
    if plan.shortfall > 0 && !may_go_negative {
        // Stored totals say there is enough, the lots say there is not: the two disagree.
        return Err(StoreError::Corrupt(format!(
            "wallet {} has {} spendable but lots cover only {}",
            wallet.account_id,
            wallet.spendable(),
            amount - plan.shortfall
        )));
    }
    let transfer = NewTransfer {
        debit: wallet.account_id,
        credit: to_account,
        ..transfer
    };
    let id = insert_transfer(tx, ctx, &transfer).await?;
    for take in &plan.takes {
        add_movement(tx, ctx, take.lot_id, id, -take.amount).await?;
    }
    let delta = if pending {
        TotalsDelta {
            debits_pending: amount,
            ..Default::default()
        }
    } else {
        TotalsDelta {
            debits_posted: amount,
            ..Default::default()
        }
    };
    apply_totals(tx, wallet, delta).await?;
    Ok(Debit {
        transfer_id: id,
        takes: plan.takes,
    })
}

/// What a transfer took from each lot (negative movements), for restoring.
pub(crate) async fn takes_of(tx: &mut Conn, transfer_id: i64) -> Result<Vec<Take>, StoreError> {
    let rows = sqlx::query("SELECT lot_id, amount FROM lot_movements WHERE transfer_id = $1 AND amount < 0 ORDER BY id")
        .bind(transfer_id)
        .fetch_all(conn(tx))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Take {
                lot_id: row.try_get("lot_id")?,
                amount: -row.try_get::<i64, _>("amount")?,
            })
        })
        .collect()
}

/// Gives back up to `amount` of what `original_transfer` took from lots, recorded against
/// `by_transfer`. Restored points keep their lot's original expiry.
///
/// `debt_before` is the wallet's debt before the points come back. Like any credit, restored points
/// pay a debt first (docs/LEDGER.md#expiry-lots): that part is taken straight back out of the
/// restored lots, soonest-expiring first, as movements of the same transfer. Without this, a hold
/// released (or a redemption reversed) after an `unlimited` clawback put the wallet in debt left
/// the lots holding more than the spendable balance (invariant 7).
pub(crate) async fn restore_lots(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    original_transfer: i64,
    by_transfer: i64,
    amount: i64,
    debt_before: i64,
) -> Result<i64, StoreError> {
    // A lot given back may be past its expiry: the wallet's hint no longer says "nothing due".
    wallet.next_expiry_at = Some(Timestamp::MIN);
    let takes = takes_of(tx, original_transfer).await?;
    // What was given back already (a hold's capture returns the part not captured) must not
    // be given back twice.
    let rows = sqlx::query(
        "SELECT m.lot_id, m.amount FROM lot_movements m JOIN transfers t ON t.id = m.transfer_id \
         WHERE t.pending_id = $1 AND m.amount > 0 ORDER BY m.id",
    )
    .bind(original_transfer)
    .fetch_all(conn(tx))
    .await?;
    let restored_before = rows
        .iter()
        .map(|row| {
            Ok(Take {
                lot_id: row.try_get("lot_id")?,
                amount: row.try_get("amount")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let remaining = lots::takes_not_yet_restored(&takes, &restored_before);
    let restores = lots::plan_restore(&remaining, amount);
    let mut restored = 0;
    for take in &restores {
        add_movement(tx, ctx, take.lot_id, by_transfer, take.amount).await?;
        restored += take.amount;
    }
    // `plan_restore` refills the latest-expiring lots first; the debt takes from the
    // soonest-expiring of them, so the member keeps the points that live longest.
    let mut debt = debt_before.max(0);
    for take in restores.iter().rev() {
        if debt == 0 {
            break;
        }
        let (paid, _) = lots::settle_debt(take.amount, debt);
        add_movement(tx, ctx, take.lot_id, by_transfer, -paid).await?;
        debt -= paid;
    }
    Ok(restored)
}

/// A pending transfer as stored.
#[derive(Debug, Clone)]
pub(crate) struct PendingTransfer {
    pub id: i64,
    pub key: String,
    pub debit: i64,
    pub credit: i64,
    pub amount: i64,
    pub code: String,
    pub resolved: Option<String>,
}

pub(crate) async fn pending_transfer(
    tx: &mut Conn,
    ctx: LedgerCtx,
    id: i64,
) -> Result<PendingTransfer, StoreError> {
    let row = sqlx::query(
        "SELECT t.id, t.transfer_key, t.debit_account, t.credit_account, t.amount, t.code, t.kind, r.kind AS resolved \
         FROM transfers t LEFT JOIN transfers r ON r.tenant_id = t.tenant_id AND r.pending_id = t.id \
         WHERE t.tenant_id = $1 AND t.id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(id)
    .fetch_optional(conn(tx))
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("pending transfer {id} not found")))?;
    let kind: String = row.try_get("kind")?;
    if kind != kind::PENDING {
        return Err(StoreError::Corrupt(format!(
            "transfer {id} is {kind}, not pending"
        )));
    }
    Ok(PendingTransfer {
        id: row.try_get("id")?,
        key: row.try_get("transfer_key")?,
        debit: row.try_get("debit_account")?,
        credit: row.try_get("credit_account")?,
        amount: row.try_get("amount")?,
        code: row.try_get("code")?,
        resolved: row.try_get("resolved")?,
    })
}

/// How a pending transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Posted,
    Voided,
    /// It had been resolved before; nothing was done (docs/LEDGER.md#pending-points).
    AlreadyResolved,
}

/// Appends the row that resolves a pending transfer: a post of `amount` (already clamped to
/// what was held), or a void of the whole hold when `amount` is 0. The unique index on
/// `pending_id` makes a second resolution fail.
async fn insert_resolution(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &Wallet,
    pending: &PendingTransfer,
    amount: i64,
) -> Result<(i64, Resolution), StoreError> {
    let (kind, resolution, suffix, row_amount) = if amount > 0 {
        (kind::POST_PENDING, Resolution::Posted, "post", amount)
    } else {
        (
            kind::VOID_PENDING,
            Resolution::Voided,
            "void",
            pending.amount,
        )
    };
    let transfer = NewTransfer {
        kind,
        pending_id: Some(pending.id),
        ..NewTransfer::posted(
            format!("{}:{suffix}", pending.key),
            pending.debit,
            pending.credit,
            row_amount,
            &pending.code,
        )
        .member(&wallet.member_id)
    };
    let id = insert_transfer(tx, ctx, &transfer).await?;
    Ok((id, resolution))
}

/// Posts `amount` (≤ held) of a pending credit into `wallet`, creating its lot, or voids it
/// when `amount` is 0.
pub(crate) async fn resolve_pending_credit(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    pending: &PendingTransfer,
    amount: i64,
    expires_at: Option<Timestamp>,
) -> Result<Resolution, StoreError> {
    if pending.resolved.is_some() {
        return Ok(Resolution::AlreadyResolved);
    }
    let amount = amount.clamp(0, pending.amount);
    let debt_before = wallet.debt();
    let (id, resolution) = insert_resolution(tx, ctx, wallet, pending, amount).await?;
    apply_totals(
        tx,
        wallet,
        TotalsDelta {
            credits_pending: -pending.amount,
            credits_posted: amount,
            ..Default::default()
        },
    )
    .await?;
    create_lot(tx, ctx, wallet, id, amount, expires_at, debt_before).await?;
    Ok(resolution)
}

/// Captures `amount` (≤ held) of a pending debit (a redemption hold), restoring the lots of
/// the part not captured; `amount` 0 releases the hold entirely.
pub(crate) async fn resolve_pending_debit(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
    pending: &PendingTransfer,
    amount: i64,
) -> Result<Resolution, StoreError> {
    if pending.resolved.is_some() {
        return Ok(Resolution::AlreadyResolved);
    }
    let amount = amount.clamp(0, pending.amount);
    let (id, resolution) = insert_resolution(tx, ctx, wallet, pending, amount).await?;
    let debt_before = wallet.debt();
    restore_lots(
        tx,
        ctx,
        wallet,
        pending.id,
        id,
        pending.amount - amount,
        debt_before,
    )
    .await?;
    apply_totals(
        tx,
        wallet,
        TotalsDelta {
            debits_pending: -pending.amount,
            debits_posted: amount,
            ..Default::default()
        },
    )
    .await?;
    Ok(resolution)
}

/// Expires what is due in this wallet at `ctx.now`: every lot past its expiry instant, and
/// every lot when the wallet's inactivity deadline has passed. Each expiry transfer's key is
/// derived from its lot and how many times that lot expired before, so running this twice
/// expires nothing twice. Returns the points expired.
pub(crate) async fn expire_due(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut Wallet,
) -> Result<i64, StoreError> {
    // Most units of work find nothing due: the wallet's read said so, without a query.
    if !wallet.may_expire_at(ctx.now) {
        return Ok(0);
    }
    let inactive = wallet.inactivity_expires_at.is_some_and(|at| at <= ctx.now);
    // Only the due lots are read: this runs before every unit of work on the wallet, and a
    // member's history of lots grows without bound.
    let rows = sqlx::query(
        "SELECT id, remaining, expires_at FROM lots WHERE account_id = $1 AND remaining > 0 \
         AND (expires_at <= $2 OR $3 = 1) ORDER BY id",
    )
    .bind(wallet.account_id)
    .bind(time::to_db(ctx.now))
    .bind(i64::from(inactive))
    .fetch_all(conn(tx))
    .await?;
    let lots = rows
        .iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(LotView {
                id,
                remaining: row.try_get("remaining")?,
                expires_at: time::opt_from_db(row.try_get("expires_at")?)?,
                seq: id,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let due: Vec<&LotView> = lots.iter().collect();
    if due.is_empty() {
        return Ok(0);
    }
    let expiry_account = system_account(tx, ctx.tenant, "expiry").await?;
    let mut total = 0;
    for lot in due {
        let previous: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM lot_movements m JOIN transfers t ON t.id = m.transfer_id \
             WHERE m.lot_id = $1 AND t.code = 'expire'",
        )
        .bind(lot.id)
        .fetch_one(conn(tx))
        .await?
        .try_get("n")?;
        let key = format!("expire:lot:{}:{}", lot.id, previous);
        let transfer = NewTransfer::posted(
            key,
            wallet.account_id,
            expiry_account,
            lot.remaining,
            code::EXPIRE,
        )
        .member(&wallet.member_id);
        let id = insert_transfer(tx, ctx, &transfer).await?;
        add_movement(tx, ctx, lot.id, id, -lot.remaining).await?;
        apply_totals(
            tx,
            wallet,
            TotalsDelta {
                debits_posted: lot.remaining,
                ..Default::default()
            },
        )
        .await?;
        total += lot.remaining;
    }
    Ok(total)
}

/// The query of [`expiring`], with the placeholders of the account, now, and how many
/// instants.
pub(crate) fn expiring_sql(account: &str, now: &str, limit: &str) -> String {
    format!(
        "SELECT expires_at, CAST(SUM(remaining) AS BIGINT) AS points FROM lots \
         WHERE account_id = {account} AND remaining > 0 AND expires_at IS NOT NULL AND expires_at > {now} \
         GROUP BY expires_at ORDER BY expires_at LIMIT {limit}"
    )
}

/// Amounts of unexpired open lots grouped by expiry instant, soonest first (for "expiring
/// soon" on a balance).
pub(crate) async fn expiring<'e, E>(
    executor: E,
    account_id: i64,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<(Timestamp, i64)>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(&expiring_sql("$1", "$2", "$3"))
        .bind(account_id)
        .bind(time::to_db(now))
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                time::from_db(row.try_get("expires_at")?)?,
                row.try_get("points")?,
            ))
        })
        .collect()
}
