//! The ledger's records: reason codes and kinds, wallets, transfers, and the context a unit
//! of work on the ledger carries.

use jiff::Timestamp;
use patron_domain::lots::Take;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::tenants::TenantId;
use crate::{Backend, StoreError, time};

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
    /// docs/LEDGER.md#balances-and-debt: spendable = credits posted − debits posted − debits pending.
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

/// The outcome of taking points out of a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Debit {
    pub transfer_id: i64,
    pub takes: Vec<Take>,
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

/// How a pending transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Posted,
    Voided,
    /// It had been resolved before; nothing was done (docs/LEDGER.md#pending-points).
    AlreadyResolved,
}
