//! Purchases and refunds as units of work.
//!
//! Posting a purchase stores it with its lines (anonymous ones too: the identified-revenue
//! metric needs them), credits the points the engine computed (pending until the return
//! window closes, or posted at once with an expiry lot), and moves the member up a tier when
//! they qualify. A refund returns lines, and claws back points in proportion (docs/LEDGER.md#refunds) under the program's return policy. Each reads a snapshot under its locks, lets
//! the domain decide (`patron_domain::posting`), and writes what was decided:
//! - `post`: posting a purchase (the optimistic and the locked path);
//! - `refund`: refunding lines of a purchase;
//! - `attach`: attaching an anonymous purchase to a member, and posting pending earnings
//!   whose window closed;
//! - `tier`: the member's tier metric and the upgrade after a posting.

mod attach;
mod post;
pub(crate) mod records;
mod refund;
mod tier;

pub use records::{NewPurchase, NewRefund, Purchase, PurchaseLine, RefundLine, RefundReceipt};

use jiff::Timestamp;
use patron_domain::expiry;
use patron_domain::posting::Earning;
use patron_domain::program::Program;
use patron_domain::rules::RuleUsage;
use patron_domain::rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::batch::Batch;
use crate::ledger::{self, LedgerCtx, NewTransfer, Wallet, code};
use crate::members::Member;
use crate::rules::{self, RuleAward};
use crate::stats::MemberStats;
use crate::tenants::TenantId;
use crate::wallet::Balance;
use crate::{Conn, Rejection, Store, StoreError, conn, time};

pub(crate) use tier::{tier_metric, update_tier};

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

const PURCHASE_COLUMNS: &str = "id, document_id, store_id, channel, member_id, occurred_at, currency, total_minor, \
     eligible_minor, points, earn_state, earn_transfer_id, pending_until, refunded_minor, settled_points, clawed_back_points";

struct PurchaseRow {
    purchase: Purchase,
    earn_transfer_id: Option<i64>,
    /// What earlier refunds returned of each line, in minor units (as `purchase.lines`).
    line_refunded_minor: Vec<i64>,
}

fn purchase_from_row(row: &AnyRow) -> Result<PurchaseRow, StoreError> {
    Ok(PurchaseRow {
        earn_transfer_id: row.try_get("earn_transfer_id")?,
        line_refunded_minor: Vec::new(),
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
        "SELECT line_no, sku, category, quantity, unit_price_minor, discount_minor, total_minor, eligible, refunded_quantity, \
         refunded_minor \
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
        loaded
            .line_refunded_minor
            .push(line.try_get("refunded_minor")?);
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

/// What a purchase credits: `points` as the domain decided them ([`Earning`]), under the
/// transfer id `id` (allocated with [`ledger::next_transfer_id_sql`]).
struct Credit<'a> {
    purchase_id: &'a str,
    points: i64,
    earning: Earning,
    id: i64,
}

/// Credits a purchase's points to the wallet: pending until the window closes, or posted at
/// once with its lot. The transfer, its totals and its lot go into `batch`. Returns the earn
/// transfer's id (none when nothing is credited).
async fn credit_earn(
    c: &mut Conn,
    batch: &mut Batch,
    ctx: LedgerCtx,
    program: &Program,
    wallet: &mut Wallet,
    credit: Credit<'_>,
) -> Result<Option<i64>, StoreError> {
    let Credit {
        purchase_id,
        points,
        earning,
        id,
    } = credit;
    let member_id = wallet.member_id.clone();
    let transfer = NewTransfer::posted(format!("earn:{purchase_id}"), 0, 0, points, code::EARN)
        .member(&member_id)
        .document("purchase", purchase_id);
    match earning {
        Earning::None => Ok(None),
        Earning::Pending { until } => {
            let transfer = NewTransfer {
                timeout_at: Some(until),
                ..transfer
            };
            let id = ledger::credit_pending_batched(batch, ctx, wallet, "issuance", transfer, id);
            Ok(Some(id))
        }
        Earning::Posted => {
            let activity = (ctx.now, inactivity_deadline(program, ctx.now));
            let credit = ledger::Credit {
                from_kind: "issuance",
                transfer,
                expires_at: lot_expiry(program, ctx.now),
                activity: Some(activity),
            };
            let id = ledger::credit_posted_batched(c, batch, ctx, wallet, credit, id).await?;
            Ok(Some(id))
        }
    }
}

fn parse_quantity(text: &str) -> Result<Decimal, StoreError> {
    text.parse::<Decimal>()
        .map_err(|e| StoreError::Corrupt(format!("stored quantity {text:?}: {e}")))
}

impl Store {
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
}
