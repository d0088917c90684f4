//! Program versions and the audit log. A program is stored as the TOML text the club wrote;
//! the engine parses it with `patron-domain`. Old versions are kept; every change is audited.

use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::tenants::TenantId;
use crate::{Conn, Store, StoreError, conn, time, unit_of_work};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramVersion {
    pub version: i64,
    pub source: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
}

fn version_from_row(row: &AnyRow) -> Result<ProgramVersion, StoreError> {
    Ok(ProgramVersion {
        version: row.try_get("version")?,
        source: row.try_get("source")?,
        created_at: time::from_db(row.try_get("created_at")?)?,
        created_by: row.try_get("created_by")?,
    })
}

/// Appends one audit entry inside the caller's transaction.
pub(crate) async fn audit(
    tx: &mut Conn,
    tenant: TenantId,
    at: Timestamp,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, actor, action, subject, details) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.0)
    .bind(time::to_db(at))
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(details)
    .execute(conn(tx))
    .await?;
    Ok(())
}

impl Store {
    pub async fn current_program(
        &self,
        tenant: TenantId,
    ) -> Result<Option<ProgramVersion>, StoreError> {
        let row = sqlx::query(
            "SELECT version, source, created_at, created_by FROM program_versions \
             WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(tenant.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// The number of the tenant's current program version (cheap: for cache checks).
    pub async fn current_program_version(
        &self,
        tenant: TenantId,
    ) -> Result<Option<i64>, StoreError> {
        let row =
            sqlx::query("SELECT MAX(version) AS v FROM program_versions WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get::<Option<i64>, _>("v")?)
    }

    pub async fn program_versions(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ProgramVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, source, created_at, created_by FROM program_versions \
             WHERE tenant_id = $1 ORDER BY version",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Stores a new program version and its audit entry (with the diff the caller computed).
    /// Returns the new version number, or the current one unchanged when the source is
    /// identical to it.
    pub async fn apply_program(
        &self,
        tenant: TenantId,
        source: &str,
        actor: &str,
        diff: &str,
        now: Timestamp,
    ) -> Result<(i64, bool), StoreError> {
        unit_of_work!(self, |tx| async {
            let current = sqlx::query(
                "SELECT version, source FROM program_versions WHERE tenant_id = $1 \
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(tenant.0)
            .fetch_optional(conn(&mut tx))
            .await?;
            let next = match &current {
                Some(row) => {
                    let version: i64 = row.try_get("version")?;
                    let current_source: String = row.try_get("source")?;
                    if current_source == source {
                        return Ok((version, false));
                    }
                    version + 1
                }
                None => 1,
            };
            sqlx::query(
                "INSERT INTO program_versions (tenant_id, version, source, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant.0)
            .bind(next)
            .bind(source)
            .bind(time::to_db(now))
            .bind(actor)
            .execute(conn(&mut tx))
            .await?;
            audit(
                &mut tx,
                tenant,
                now,
                actor,
                "program.apply",
                &format!("program:v{next}"),
                diff,
            )
            .await?;
            Ok((next, true))
        }
        .await)
    }

    pub async fn audit_log(
        &self,
        tenant: TenantId,
        subject_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let pattern = format!("{}%", subject_prefix.unwrap_or(""));
        let rows = sqlx::query(
            "SELECT id, at, actor, action, subject, details FROM audit_log \
             WHERE tenant_id = $1 AND subject LIKE $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.0)
        .bind(pattern)
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at: time::from_db(row.try_get("at")?)?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    subject: row.try_get("subject")?,
                    details: row.try_get("details")?,
                })
            })
            .collect()
    }
}
