//! Tenants and their programs: validating, applying (with the change checks and the audited
//! diff), and the cache of parsed programs every use case starts from.

use std::sync::Arc;

use patron_domain::program::{Program, parse_program};
use patron_store::Rejection;
use patron_store::tenants::Tenant;

use crate::{Engine, EngineError, LoadedProgram};

impl Engine {
    pub async fn tenant(&self, name: &str) -> Result<Tenant, EngineError> {
        self.store
            .tenant_by_name(name)
            .await?
            .ok_or_else(|| EngineError::TenantNotFound(name.to_string()))
    }

    /// Validates a program text; every problem comes back with its line and column.
    pub fn validate_program(source: &str) -> Result<Program, EngineError> {
        parse_program(source).map_err(EngineError::Program)
    }

    /// Validates and stores a program for a tenant (created if needed), auditing the diff.
    /// Returns (tenant, version, whether anything changed).
    pub async fn apply_program(
        &self,
        tenant_name: &str,
        source: &str,
        actor: &str,
    ) -> Result<(Tenant, i64, bool), EngineError> {
        if tenant_name.is_empty()
            || tenant_name.len() > 64
            || !tenant_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(EngineError::invalid(
                "tenant",
                "use 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let program = Self::validate_program(source)?;
        let now = self.now();
        let tenant = self.store.ensure_tenant(tenant_name, now).await?;
        let previous = self
            .store
            .current_program(tenant.id)
            .await?
            .map(|p| p.source)
            .unwrap_or_default();
        let diff = similar::TextDiff::from_lines(previous.as_str(), source)
            .unified_diff()
            .context_radius(2)
            .header("previous", "new")
            .to_string();
        // The version the decision compares with is the one read here; another applied
        // meanwhile would only be compared by the next apply (the facts are read in the unit).
        let current = (!previous.is_empty())
            .then(|| parse_program(&previous).ok())
            .flatten();
        let decide = |history: &patron_domain::program::history::History| {
            patron_domain::program::history::check_change(current.as_ref(), &program, history)
        };
        let (version, changed) = self
            .store
            .apply_program_checked(tenant.id, source, actor, &diff, now, &decide)
            .await?
            .map_err(|refusals| {
                EngineError::Program(refusals.iter().map(|r| r.locate(source)).collect())
            })?;
        if let Ok(mut cache) = self.programs.lock() {
            cache.remove(&tenant.id);
        }
        Ok((tenant, version, changed))
    }

    /// The tenant's current program, parsed once per version.
    pub async fn program(&self, tenant: &Tenant) -> Result<LoadedProgram, EngineError> {
        let no_program = || Rejection::NoProgram {
            tenant: tenant.name.clone(),
        };
        // Every use case starts here: ask only for the version number, and fetch and parse
        // the text only when it changed.
        let version = self
            .store
            .current_program_version(tenant.id)
            .await?
            .ok_or_else(no_program)?;
        if let Ok(cache) = self.programs.lock()
            && let Some(loaded) = cache.get(&tenant.id).filter(|l| l.version == version)
        {
            return Ok(loaded.clone());
        }
        let stored = self
            .store
            .current_program(tenant.id)
            .await?
            .ok_or_else(no_program)?;
        let program = parse_program(&stored.source).map_err(EngineError::Program)?;
        let loaded = LoadedProgram {
            version: stored.version,
            program: Arc::new(program),
        };
        if let Ok(mut cache) = self.programs.lock() {
            cache.insert(tenant.id, loaded.clone());
        }
        Ok(loaded)
    }

    /// The program in this process's cache, without asking the database whether it is still
    /// current (for callers that check the version themselves, in their unit of work).
    pub(crate) fn cached_program(&self, tenant: &Tenant) -> Option<LoadedProgram> {
        self.programs
            .lock()
            .ok()
            .and_then(|cache| cache.get(&tenant.id).cloned())
    }
}
