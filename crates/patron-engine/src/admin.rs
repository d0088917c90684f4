//! The operator's use cases (the CLI's, next the console's): opening and migrating the
//! database, the tenants, their program history and audit log, API keys, the job list and its
//! pruning, and the ledger check.

use std::sync::Arc;

use jiff::Timestamp;
use patron_store::api_keys::ApiKey;
use patron_store::jobs::{Job, JobFilter};
use patron_store::programs::{AuditEntry, ProgramVersion};
use patron_store::tenants::Tenant;
use patron_store::verify::VerifyReport;
use patron_store::{PurchasePaths, Store, StoreError, StoreOptions};

use crate::{Clock, Engine, EngineError};

impl Engine {
    /// Connects to the database (nothing migrated yet: see [`Engine::migrate`]) and builds an
    /// engine over it on `clock`.
    pub async fn connect(
        database_url: &str,
        options: StoreOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, StoreError> {
        let store = Store::connect(database_url, options).await?;
        Ok(Engine::new(store, clock))
    }

    /// Applies the pending migrations; answers the names of those applied, in order.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.store.migrate().await?.applied)
    }

    /// Closes the database's connections (after the last use case).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// How this process's purchases were posted on PostgreSQL (the optimistic path or the
    /// locked fallback), for `/metrics`.
    pub fn purchase_paths(&self) -> PurchasePaths {
        self.store.purchase_paths()
    }

    /// Every tenant in the database.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, EngineError> {
        Ok(self.store.list_tenants().await?)
    }

    /// How many members the tenant has.
    pub async fn count_members(&self, tenant: &Tenant) -> Result<i64, EngineError> {
        Ok(self.store.count_members(tenant.id).await?)
    }

    /// Every version of the tenant's program, oldest first.
    pub async fn program_versions(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<ProgramVersion>, EngineError> {
        Ok(self.store.program_versions(tenant.id).await?)
    }

    /// The tenant's audit log, for subjects that start with `subject_prefix`, at most `limit`.
    pub async fn audit_log(
        &self,
        tenant: &Tenant,
        subject_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, EngineError> {
        Ok(self
            .store
            .audit_log(tenant.id, subject_prefix, limit)
            .await?)
    }

    /// Recomputes every stored total of the tenant's ledger from the append-only rows and
    /// checks the ledger's invariants as of `at` (docs/LEDGER.md). Reads only.
    pub async fn verify_ledger(
        &self,
        tenant: &Tenant,
        at: Timestamp,
    ) -> Result<VerifyReport, EngineError> {
        Ok(self.store.verify_ledger(tenant.id, at).await?)
    }

    /// The tenant's API keys, live and revoked, in id order.
    pub async fn api_keys(&self, tenant: &Tenant) -> Result<Vec<ApiKey>, EngineError> {
        Ok(self.store.api_keys(tenant.id).await?)
    }

    /// Revokes a key of this tenant. Returns false when the tenant has no such key.
    pub async fn revoke_api_key(
        &self,
        tenant: &Tenant,
        id: i64,
        actor: &str,
    ) -> Result<bool, EngineError> {
        Ok(self
            .store
            .revoke_api_key(tenant.id, id, actor, self.now())
            .await?)
    }

    /// A tenant's jobs, newest due first.
    pub async fn list_jobs(
        &self,
        tenant: &Tenant,
        filter: &JobFilter<'_>,
    ) -> Result<Vec<Job>, EngineError> {
        Ok(self.store.list_jobs(tenant.id, filter).await?)
    }

    /// Deletes finished jobs (done or failed) that finished before `before`, with their runs.
    pub async fn prune_jobs(&self, before: Timestamp) -> Result<u64, EngineError> {
        Ok(self.store.prune_jobs(before).await?)
    }
}
