//! What the scheduler needs to catch up occurrences it missed (docs/JOBS.md, "Catching up"):
//! the latest day-keyed occurrence of a kind that was ever scheduled.

use sqlx::Row;

use crate::tenants::TenantId;
use crate::{Store, StoreError};

impl Store {
    /// The key of the latest scheduled (not `run-now`) job of `kind`, e.g.
    /// `birthdays:2026-11-22`. Day keys sort as dates, so the greatest key is the latest day.
    pub async fn last_scheduled_job_key(
        &self,
        tenant: TenantId,
        kind: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT job_key FROM jobs WHERE tenant_id = $1 AND kind = $2 \
             AND job_key NOT LIKE '%:manual-%' ORDER BY job_key DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(kind)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| row.try_get("job_key")).transpose()?)
    }
}
