//! Read-only use cases the API serves: pages of members and of a member's ledger, a member's
//! standing (balance and tier progress), a redemption, the current program, and readiness.
//! Every query is confined to one tenant: another tenant's ids are simply not found.

use jiff::Timestamp;
use patron_store::Rejection;
use patron_store::ledger::TransferRecord;
use patron_store::members::Member;
use patron_store::programs::ProgramVersion;
use patron_store::purchases::TierStatus;
use patron_store::redemptions::{Balance, Redemption};
use patron_store::tenants::Tenant;

use crate::{Engine, EngineError};

/// The most rows one page query returns, whatever the caller asks.
pub const PAGE_ROWS_MAX: i64 = 1000;

/// A member's balance and where they stand on the tier ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub balance: Balance,
    pub tier: TierStatus,
}

/// One transfer as the member sees it: `points` is signed, positive when it credited the
/// member's wallet and negative when it debited it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub points: i64,
    /// earn | redeem | expire | clawback | adjust | transfer | forfeit | reversal
    pub code: String,
    /// posted | pending | post_pending | void_pending
    pub kind: String,
    pub pending_id: Option<i64>,
    pub timeout_at: Option<Timestamp>,
    pub document_type: Option<String>,
    pub document_id: Option<String>,
    pub note: Option<String>,
    pub created_at: Timestamp,
}

impl LedgerEntry {
    fn from_record(record: TransferRecord, wallet_account: i64) -> LedgerEntry {
        let points = if record.credit_account == wallet_account {
            record.amount
        } else {
            -record.amount
        };
        LedgerEntry {
            id: record.id,
            points,
            code: record.code,
            kind: record.kind,
            pending_id: record.pending_id,
            timeout_at: record.timeout_at,
            document_type: record.document_type,
            document_id: record.document_id,
            note: record.note,
            created_at: record.created_at,
        }
    }
}

impl Engine {
    /// Members in id order after the member id `after`, at most `limit`.
    pub async fn list_members(
        &self,
        tenant: &Tenant,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Member>, EngineError> {
        Ok(self
            .store()
            .list_members(tenant.id, after, limit.clamp(1, PAGE_ROWS_MAX))
            .await?)
    }

    /// The member's balance and tier progress.
    pub async fn standing(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<Standing, EngineError> {
        let program = self.program(tenant).await?.program;
        let balance = self.balance(tenant, member_id).await?;
        let tier = self
            .store()
            .tier_progress(tenant.id, &program, member_id, self.now())
            .await?;
        Ok(Standing { balance, tier })
    }

    /// The member's ledger, newest first, before the transfer id `before`, at most `limit`.
    pub async fn member_ledger(
        &self,
        tenant: &Tenant,
        member_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, EngineError> {
        let wallet = self
            .store()
            .wallet_account_id(tenant.id, member_id)
            .await?
            .ok_or_else(|| Rejection::MemberNotFound {
                member_id: member_id.to_string(),
            })?;
        let records = self
            .store()
            .member_ledger(tenant.id, member_id, before, limit.clamp(1, PAGE_ROWS_MAX))
            .await?;
        Ok(records
            .into_iter()
            .map(|record| LedgerEntry::from_record(record, wallet))
            .collect())
    }

    pub async fn redemption(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
    ) -> Result<Redemption, EngineError> {
        self.store()
            .redemption(tenant.id, redemption_id)
            .await?
            .ok_or_else(|| {
                Rejection::RedemptionNotFound {
                    redemption_id: redemption_id.to_string(),
                }
                .into()
            })
    }

    /// The tenant's current program text and version, if one was applied.
    pub async fn current_program(
        &self,
        tenant: &Tenant,
    ) -> Result<Option<ProgramVersion>, EngineError> {
        Ok(self.store().current_program(tenant.id).await?)
    }

    /// Whether the database answers and every migration is applied.
    pub async fn ready(&self) -> Result<bool, EngineError> {
        Ok(self.store().migrations_current().await?)
    }
}
