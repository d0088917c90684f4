//! Program versions and the audit log. A program is stored as the TOML text the club wrote;
//! the engine parses it with `patron-domain`. Old versions are kept; every change is audited.

use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use patron_domain::program::history::{HeldTier, History, Refusal, TierMove};

use crate::tenants::TenantId;
use crate::{Conn, Store, StoreError, conn, time, unit_of_work};

/// The decision a new program version needs: the club's history in, the tier moves to make or
/// the reasons to refuse out.
pub type Decide<'d> = dyn Fn(&History) -> Result<Vec<TierMove>, Vec<Refusal>> + Send + Sync + 'd;

/// What the club's data says about its past: whether it has any ledger history, and every
/// tier code members hold (as their tier or as a floor) with how many.
async fn read_history(c: &mut Conn, tenant: TenantId) -> Result<History, StoreError> {
    let mut has_ledger_history = false;
    for table in ["transfers", "purchases"] {
        let any = sqlx::query(&format!(
            "SELECT 1 AS found FROM {table} WHERE tenant_id = $1 LIMIT 1"
        ))
        .bind(tenant.0)
        .fetch_optional(conn(c))
        .await?;
        has_ledger_history |= any.is_some();
    }
    let mut held: Vec<HeldTier> = Vec::new();
    for (table, is_floor) in [("members", false), ("tier_floors", true)] {
        let rows = sqlx::query(&format!(
            "SELECT tier, COUNT(*) AS n FROM {table} WHERE tenant_id = $1 GROUP BY tier ORDER BY tier"
        ))
        .bind(tenant.0)
        .fetch_all(conn(c))
        .await?;
        for row in rows {
            let code: String = row.try_get("tier")?;
            let n: i64 = row.try_get("n")?;
            let index = match held.iter().position(|h| h.code == code) {
                Some(index) => index,
                None => {
                    held.push(HeldTier {
                        code,
                        members: 0,
                        floors: 0,
                    });
                    held.len() - 1
                }
            };
            if is_floor {
                held[index].floors += n;
            } else {
                held[index].members += n;
            }
        }
    }
    Ok(History {
        has_ledger_history,
        held_tiers: held,
    })
}

/// Moves every member of a removed tier, and every floor at it, to the mapped level.
async fn move_tier_holders(
    c: &mut Conn,
    tenant: TenantId,
    tier_move: &TierMove,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE members SET tier = $3, tier_since = $4, updated_at = $4 WHERE tenant_id = $1 AND tier = $2",
    )
    .bind(tenant.0)
    .bind(&tier_move.from)
    .bind(&tier_move.to)
    .bind(time::to_db(now))
    .execute(conn(c))
    .await?;
    sqlx::query("UPDATE tier_floors SET tier = $3 WHERE tenant_id = $1 AND tier = $2")
        .bind(tenant.0)
        .bind(&tier_move.from)
        .bind(&tier_move.to)
        .execute(conn(c))
        .await?;
    Ok(())
}

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

    /// Stores a new program version and its audit entry (with the diff the caller computed),
    /// after asking `decide` whether the club's history allows the new version
    /// (`patron_domain::program::history`): the facts are read in the unit of work that stores
    /// it, and the tier moves it answers are made there too (members and their floors,
    /// audited as `program.tier_replaced`). A refusal writes nothing. Answers the new
    /// version number, or the current one unchanged when the source is identical to it.
    pub async fn apply_program_checked(
        &self,
        tenant: TenantId,
        source: &str,
        actor: &str,
        diff: &str,
        now: Timestamp,
        decide: &Decide<'_>,
    ) -> Result<Result<(i64, bool), Vec<Refusal>>, StoreError> {
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
                        return Ok(Ok((version, false)));
                    }
                    version + 1
                }
                None => 1,
            };
            let history = read_history(&mut tx, tenant).await?;
            let moves = match decide(&history) {
                Ok(moves) => moves,
                Err(refusals) => return Ok(Err(refusals)),
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
            for tier_move in &moves {
                move_tier_holders(&mut tx, tenant, tier_move, now).await?;
                audit(
                    &mut tx,
                    tenant,
                    now,
                    actor,
                    "program.tier_replaced",
                    &format!("program:v{next}"),
                    &format!(
                        "tier {} removed: {} members and {} tier floors moved to {}",
                        tier_move.from, tier_move.members, tier_move.floors, tier_move.to
                    ),
                )
                .await?;
            }
            Ok(Ok((next, true)))
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
