//! Read-only views of a member's standing that the API shows next to the balance: where they
//! are on the tier ladder, and which ledger account is their wallet (to tell credits from
//! debits in their ledger).

use jiff::Timestamp;
use patron_domain::program::Program;
use patron_domain::tier;

use crate::ledger::{self, LedgerCtx};
use crate::members::Lookup;
use crate::purchases::{TierStatus, tier_metric};
use crate::tenants::TenantId;
use crate::{Rejection, Store, StoreError};

impl Store {
    /// The member's tier, qualifying metric and distance to the next tier, as of `now`.
    /// Reads only: tier changes happen in the units of work that post purchases.
    pub async fn tier_progress(
        &self,
        tenant: TenantId,
        program: &Program,
        member_id: &str,
        now: Timestamp,
    ) -> Result<TierStatus, StoreError> {
        let member = self
            .find_member(tenant, Lookup::Id(member_id))
            .await?
            .ok_or_else(|| Rejection::MemberNotFound {
                member_id: member_id.to_string(),
            })?;
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        let mut connection = self.pool().acquire().await?;
        let metric = tier_metric(&mut connection, ctx, program, member_id).await?;
        let progress = tier::progress(&program.tiers, &member.tier, metric);
        Ok(TierStatus {
            code: progress.current,
            upgraded_from: None,
            metric,
            next: progress.next,
            needed_for_next: progress.needed_for_next,
        })
    }

    /// The id of the member's wallet account, if the member exists in this tenant.
    pub async fn wallet_account_id(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(ledger::read_wallet(self.pool(), tenant, member_id)
            .await?
            .map(|wallet| wallet.account_id))
    }
}
