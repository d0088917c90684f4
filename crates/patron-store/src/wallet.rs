//! A member's wallet as people see it: the [`Balance`] (spendable, pending, held, debt, the
//! soonest expiries) and its reads. Shared by every unit of work that answers with a balance
//! (purchases, refunds, redemptions, rewards, rule grants).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::ledger::{self, LedgerCtx, Wallet};
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, time};

/// Points expiring on one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringPoints {
    pub at: Timestamp,
    pub points: i64,
}

/// A member's balance as people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Spendable now (never negative; see `debt`).
    pub available: i64,
    /// Earned, waiting for the return window: what will post (a refund while pending
    /// reduces it at once).
    pub pending: i64,
    /// Reserved by redemption holds.
    pub held: i64,
    /// Owed after clawbacks beyond the balance; paid by the next earnings.
    pub debt: i64,
    /// All points ever credited (posted).
    pub lifetime_credited: i64,
    /// The soonest expiries.
    pub expiring: Vec<ExpiringPoints>,
}

/// How many expiry dates a balance lists.
pub const EXPIRING_LISTED_MAX: i64 = 5;

pub(crate) async fn balance_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    wallet: &Wallet,
) -> Result<Balance, StoreError> {
    let expiring =
        ledger::expiring(conn(c), wallet.account_id, ctx.now, EXPIRING_LISTED_MAX).await?;
    Ok(balance_of(wallet, expiring))
}

pub(crate) fn balance_of(wallet: &Wallet, expiring: Vec<(Timestamp, i64)>) -> Balance {
    Balance {
        available: wallet.spendable().max(0),
        pending: wallet.credits_pending,
        held: wallet.debits_pending,
        debt: wallet.debt(),
        lifetime_credited: wallet.credits_posted,
        expiring: expiring
            .into_iter()
            .map(|(at, points)| ExpiringPoints { at, points })
            .collect(),
    }
}

impl Store {
    pub async fn balance(
        &self,
        tenant: TenantId,
        member_id: &str,
        now: Timestamp,
    ) -> Result<Balance, StoreError> {
        let wallet = ledger::read_wallet(self.pool(), tenant, member_id)
            .await?
            .ok_or_else(|| Rejection::MemberNotFound {
                member_id: member_id.to_string(),
            })?;
        let expiring =
            ledger::expiring(self.pool(), wallet.account_id, now, EXPIRING_LISTED_MAX).await?;
        let mut balance = balance_of(&wallet, expiring);
        // Lots past their expiry that the job has not reached yet are not spendable: the
        // next unit of work on this wallet expires them first.
        let due: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) AS due FROM lots \
             WHERE account_id = $1 AND remaining > 0 AND (expires_at <= $2 OR $3 = 1)",
        )
        .bind(wallet.account_id)
        .bind(time::to_db(now))
        .bind(i64::from(
            wallet.inactivity_expires_at.is_some_and(|at| at <= now),
        ))
        .fetch_one(self.pool())
        .await?
        .try_get("due")?;
        balance.available = (balance.available - due).max(0);
        Ok(balance)
    }
}
