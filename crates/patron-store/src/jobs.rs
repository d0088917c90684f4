//! Scheduled jobs (docs/JOBS.md): the `jobs` table, a transactional outbox of time-driven work,
//! and the per-member units of work of the kinds that are new here (tier recalculation,
//! birthday and anniversary grants).
//!
//! Claiming: on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` inside a transaction that marks
//! the job running with a lease, so concurrent workers never claim the same row; on SQLite the
//! same statements run as one unit of work through the single writer. A job whose lease
//! expired (its process died) is claimable again: every kind's work is idempotent per job.
//! Finishing and failing are fenced by the lease holder (`locked_by`), so a worker that lost
//! its lease cannot overwrite the outcome of the one that took over.

use jiff::{SignedDuration, Timestamp};
use patron_domain::program::Program;
use patron_domain::rules::{RuleUsage, TriggerKind};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ledger::LedgerCtx;
use crate::members::lock_wallet_with_member;
use crate::rules::{
    Awards, Grant, RuleGrant, credit_grant, limit_periods, record_awards, usage_in,
};
use crate::tenants::TenantId;
use crate::{Conn, Store, StoreError, conn, time, unit_of_work};

/// A job's state.
pub mod state {
    pub const PENDING: &str = "pending";
    pub const RUNNING: &str = "running";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
    pub const ALL: &[&str] = &[PENDING, RUNNING, DONE, FAILED];
}

/// A job to schedule: inserted unless a job with the same key exists for the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: String,
    /// The natural key: kind and period, e.g. `expiry:2026-11-22`.
    pub key: String,
    pub run_at: Timestamp,
    pub max_attempts: i64,
}

/// Which jobs a worker may claim at `$1`: pending ones whose time has come, and running ones
/// whose worker's lease expired.
const DUE: &str =
    "((state = 'pending' AND run_at <= $1) OR (state = 'running' AND locked_until <= $1))";

/// The job queue at an instant ([`Store::job_queue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobQueue {
    /// Jobs due and waiting for a worker (pending and due, or running with an expired lease).
    pub due: i64,
    /// Jobs that failed their last allowed attempt and wait for an operator (`patron jobs
    /// run-now` runs one again).
    pub failed: i64,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub tenant: TenantId,
    pub kind: String,
    pub key: String,
    pub run_at: Timestamp,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// One attempt at a job (the `job_runs` log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub job_id: i64,
    pub worker: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `done`, `failed`, or None while running or when the worker died.
    pub outcome: Option<String>,
    pub error: Option<String>,
}

const JOB_COLUMNS: &str = "id, tenant_id, kind, job_key, run_at, state, attempts, max_attempts, locked_by, \
     locked_until, last_error, result, created_at, updated_at, finished_at";

fn job_from_row(row: &AnyRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: row.try_get("id")?,
        tenant: TenantId(row.try_get("tenant_id")?),
        kind: row.try_get("kind")?,
        key: row.try_get("job_key")?,
        run_at: time::from_db(row.try_get("run_at")?)?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        locked_by: row.try_get("locked_by")?,
        locked_until: time::opt_from_db(row.try_get("locked_until")?)?,
        last_error: row.try_get("last_error")?,
        result: row.try_get("result")?,
        created_at: time::from_db(row.try_get("created_at")?)?,
        updated_at: time::from_db(row.try_get("updated_at")?)?,
        finished_at: time::opt_from_db(row.try_get("finished_at")?)?,
    })
}

/// Which jobs a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimScope<'a> {
    /// Any due job of any tenant (the scheduler loop).
    AnyDue,
    /// Exactly this job, if it is due or its lease expired (`jobs run-now`).
    Key(TenantId, &'a str),
}

/// A tenant's view of its jobs, for `patron jobs list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter<'a> {
    pub state: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub limit: i64,
}

impl Store {
    /// Inserts the jobs that do not exist yet (by tenant and key). Answers how many were new.
    pub async fn schedule_jobs(
        &self,
        tenant: TenantId,
        jobs: &[NewJob],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        unit_of_work!(self, |tx| {
            async {
            let mut inserted = 0;
            for job in jobs {
                inserted += sqlx::query(
                    "INSERT INTO jobs (tenant_id, kind, job_key, run_at, state, attempts, max_attempts, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $6) \
                     ON CONFLICT (tenant_id, job_key) DO NOTHING",
                )
                .bind(tenant.0)
                .bind(&job.kind)
                .bind(&job.key)
                .bind(time::to_db(job.run_at))
                .bind(job.max_attempts.max(1))
                .bind(time::to_db(now))
                .execute(conn(&mut tx))
                .await?
                .rows_affected();
            }
            Ok(inserted)
        }
        .await
        })
    }

    /// Claims one due job for `worker`: a pending job whose `run_at` has come, or a running
    /// job whose lease expired. Marks it running with a lease until `now + lease`, counts the
    /// attempt and logs the run. Jobs whose lease expired on their last allowed attempt are
    /// marked failed instead of being claimed again.
    pub async fn claim_job(
        &self,
        scope: ClaimScope<'_>,
        worker: &str,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<Option<Job>, StoreError> {
        let skip_locked = match self.backend() {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let now_db = time::to_db(now);
        let until = time::to_db(now.saturating_add(lease).unwrap_or(now));
        unit_of_work!(self, |tx| {
            async {
            // Dead workers' last attempts: failed, with the reason.
            sqlx::query(
                "UPDATE jobs SET state = 'failed', last_error = 'the worker died (its lease expired) \
                 on the last allowed attempt', locked_by = NULL, locked_until = NULL, updated_at = $1, \
                 finished_at = $1 WHERE state = 'running' AND locked_until <= $1 AND attempts >= max_attempts",
            )
            .bind(now_db)
            .execute(conn(&mut tx))
            .await?;
            let due = DUE;
            let row = match scope {
                ClaimScope::AnyDue => {
                    sqlx::query(&format!(
                        "SELECT id FROM jobs WHERE {due} ORDER BY run_at, id LIMIT 1{skip_locked}"
                    ))
                    .bind(now_db)
                    .fetch_optional(conn(&mut tx))
                    .await?
                }
                ClaimScope::Key(tenant, key) => {
                    sqlx::query(&format!(
                        "SELECT id FROM jobs WHERE {due} AND tenant_id = $2 AND job_key = $3{skip_locked}"
                    ))
                    .bind(now_db)
                    .bind(tenant.0)
                    .bind(key)
                    .fetch_optional(conn(&mut tx))
                    .await?
                }
            };
            let Some(row) = row else {
                return Ok(None);
            };
            let id: i64 = row.try_get("id")?;
            let row = sqlx::query(&format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $2, \
                 locked_until = $3, updated_at = $4 WHERE id = $1 RETURNING {JOB_COLUMNS}"
            ))
            .bind(id)
            .bind(worker)
            .bind(until)
            .bind(now_db)
            .fetch_one(conn(&mut tx))
            .await?;
            let job = job_from_row(&row)?;
            sqlx::query("INSERT INTO job_runs (job_id, worker, started_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(worker)
                .bind(now_db)
                .execute(conn(&mut tx))
                .await?;
            Ok(Some(job))
        }
        .await
        })
    }

    /// The job queue of the whole deployment (every tenant) at `now`, for monitoring.
    pub async fn job_queue(&self, now: Timestamp) -> Result<JobQueue, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN {DUE} THEN 1 ELSE 0 END), 0) AS BIGINT) AS due, \
             CAST(COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed \
             FROM jobs WHERE state IN ('pending', 'running', 'failed')"
        ))
        .bind(time::to_db(now))
        .fetch_one(self.pool())
        .await?;
        Ok(JobQueue {
            due: row.try_get("due")?,
            failed: row.try_get("failed")?,
        })
    }

    /// Extends the lease of a job this worker holds. False when the worker lost it.
    pub async fn renew_job_lease(
        &self,
        job_id: i64,
        worker: &str,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let affected = unit_of_work!(self, |tx| {
            async {
            Ok(sqlx::query(
                "UPDATE jobs SET locked_until = $3 WHERE id = $1 AND locked_by = $2 AND state = 'running'",
            )
            .bind(job_id)
            .bind(worker)
            .bind(time::to_db(until))
            .execute(conn(&mut tx))
            .await?
            .rows_affected())
        }
        .await
        })?;
        Ok(affected == 1)
    }

    /// Marks a job this worker holds done, with a summary of what it did. False when the
    /// worker had lost its lease (another worker took the job over; its outcome stands).
    pub async fn finish_job(
        &self,
        job_id: i64,
        worker: &str,
        now: Timestamp,
        result: &str,
    ) -> Result<bool, StoreError> {
        let now_db = time::to_db(now);
        let affected = unit_of_work!(self, |tx| {
            async {
            let affected = sqlx::query(
                "UPDATE jobs SET state = 'done', result = $3, locked_by = NULL, locked_until = NULL, \
                 last_error = NULL, updated_at = $4, finished_at = $4 \
                 WHERE id = $1 AND locked_by = $2 AND state = 'running'",
            )
            .bind(job_id)
            .bind(worker)
            .bind(result)
            .bind(now_db)
            .execute(conn(&mut tx))
            .await?
            .rows_affected();
            let outcome = if affected == 1 { "done" } else { "lease_lost" };
            end_run(&mut tx, job_id, worker, now_db, outcome, None).await?;
            Ok(affected)
        }
        .await
        })?;
        Ok(affected == 1)
    }

    /// Records a failed attempt: back to pending at `retry_at`, or failed for good when the
    /// attempts are used up (or `retry_at` is None). False when the worker had lost the lease.
    pub async fn fail_job(
        &self,
        job_id: i64,
        worker: &str,
        now: Timestamp,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let now_db = time::to_db(now);
        let error: String = error.chars().take(2000).collect();
        let affected = unit_of_work!(self, |tx| {
            async {
            let affected = match retry_at {
                Some(at) => sqlx::query(
                    "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END, \
                     run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE $5 END, \
                     finished_at = CASE WHEN attempts >= max_attempts THEN $4 ELSE NULL END, \
                     last_error = $3, locked_by = NULL, locked_until = NULL, updated_at = $4 \
                     WHERE id = $1 AND locked_by = $2 AND state = 'running'",
                )
                .bind(job_id)
                .bind(worker)
                .bind(&error)
                .bind(now_db)
                .bind(time::to_db(at)),
                None => sqlx::query(
                    "UPDATE jobs SET state = 'failed', finished_at = $4, last_error = $3, locked_by = NULL, \
                     locked_until = NULL, updated_at = $4 WHERE id = $1 AND locked_by = $2 AND state = 'running'",
                )
                .bind(job_id)
                .bind(worker)
                .bind(&error)
                .bind(now_db),
            }
            .execute(conn(&mut tx))
            .await?
            .rows_affected();
            let outcome = if affected == 1 { "failed" } else { "lease_lost" };
            end_run(&mut tx, job_id, worker, now_db, outcome, Some(&error)).await?;
            Ok(affected)
        }
        .await
        })?;
        Ok(affected == 1)
    }

    /// A tenant's jobs, newest due first.
    pub async fn list_jobs(
        &self,
        tenant: TenantId,
        filter: &JobFilter<'_>,
    ) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR kind = $3) ORDER BY run_at DESC, id DESC LIMIT $4"
        ))
        .bind(tenant.0)
        .bind(filter.state.unwrap_or(""))
        .bind(filter.kind.unwrap_or(""))
        .bind(filter.limit.clamp(1, 100_000))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// One job by its key.
    pub async fn job(&self, tenant: TenantId, key: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND job_key = $2"
        ))
        .bind(tenant.0)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The attempts logged for a job, oldest first.
    pub async fn job_runs(&self, job_id: i64) -> Result<Vec<JobRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_id, worker, started_at, finished_at, outcome, error FROM job_runs \
             WHERE job_id = $1 ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(JobRun {
                    job_id: row.try_get("job_id")?,
                    worker: row.try_get("worker")?,
                    started_at: time::from_db(row.try_get("started_at")?)?,
                    finished_at: time::opt_from_db(row.try_get("finished_at")?)?,
                    outcome: row.try_get("outcome")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
    }

    /// Deletes finished jobs (done or failed) that finished before `before`, with their runs.
    pub async fn prune_jobs(&self, before: Timestamp) -> Result<u64, StoreError> {
        unit_of_work!(self, |tx| {
            async {
            sqlx::query(
                "DELETE FROM job_runs WHERE job_id IN (SELECT id FROM jobs WHERE state IN ('done', 'failed') \
                 AND finished_at < $1)",
            )
            .bind(time::to_db(before))
            .execute(conn(&mut tx))
            .await?;
            Ok(sqlx::query(
                "DELETE FROM jobs WHERE state IN ('done', 'failed') AND finished_at < $1",
            )
            .bind(time::to_db(before))
            .execute(conn(&mut tx))
            .await?
            .rows_affected())
        }
        .await
        })
    }

    // ----- the work of the kinds that are new with the job system -----

    /// Ids of the tenant's active members, in id order, after `after` (paging).
    pub async fn active_member_ids(
        &self,
        tenant: TenantId,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, enrolled_at FROM members WHERE tenant_id = $1 AND status = 'active' AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(after)
        .bind(limit.clamp(1, 100_000))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    time::from_db(row.try_get("enrolled_at")?)?,
                ))
            })
            .collect()
    }

    /// Active members whose stored birthday (`YYYY-MM-DD`) ends with one of `month_days`
    /// (`MM-DD`), with that birthday, ordered by id. The caller decides which of them have their
    /// birthday today in the club's calendar.
    pub async fn members_born_on(
        &self,
        tenant: TenantId,
        month_days: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if month_days.is_empty() {
            return Ok(Vec::new());
        }
        let any_day = (0..month_days.len())
            .map(|i| format!("birthday LIKE ${}", i + 2))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT id, birthday FROM members WHERE tenant_id = $1 AND status = 'active' \
             AND ({any_day}) ORDER BY id"
        );
        let mut query = sqlx::query(&sql).bind(tenant.0);
        for month_day in month_days {
            query = query.bind(format!("%-{month_day}"));
        }
        let mut members = Vec::new();
        for row in query.fetch_all(self.pool()).await? {
            members.push((row.try_get("id")?, row.try_get("birthday")?));
        }
        Ok(members)
    }

    /// Grants an occasion without a purchase (birthday, anniversary) to one member, once per
    /// `source_id` (e.g. `2026` for a birthday): under the wallet lock, a member that already has
    /// awards recorded for this source gets nothing again. `decide` evaluates the rules with the
    /// member as read under the lock and the usage of the limited rules. Answers the points
    /// credited (0 when nothing fired, the member left, or it was granted before).
    #[allow(clippy::too_many_arguments)]
    pub async fn grant_occasion(
        &self,
        tenant: TenantId,
        program: &Program,
        trigger: TriggerKind,
        member_id: &str,
        source_id: &str,
        decide: crate::rules::Decide<'_, RuleGrant>,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let source_type = match trigger {
            TriggerKind::Birthday => "birthday",
            TriggerKind::Anniversary => "anniversary",
            other => {
                return Err(StoreError::Config(format!(
                    "{other:?} is not an occasion a job grants"
                )));
            }
        };
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        unit_of_work!(self, |tx| {
            async {
            let (mut wallet, member) = lock_wallet_with_member(&mut tx, ctx, member_id).await?;
            if !member.is_active() {
                return Ok(0);
            }
            let granted = sqlx::query(
                "SELECT id FROM rule_awards WHERE tenant_id = $1 AND member_id = $2 AND source_type = $3 \
                 AND source_id = $4 LIMIT 1",
            )
            .bind(tenant.0)
            .bind(member_id)
            .bind(source_type)
            .bind(source_id)
            .fetch_optional(conn(&mut tx))
            .await?;
            if granted.is_some() {
                return Ok(0);
            }
            let periods = limit_periods(program, trigger, now);
            let usage: RuleUsage = usage_in(&mut tx, tenant, member_id, &periods).await?;
            let grant = decide(&member, &usage);
            if grant.points <= 0 || grant.awards.is_empty() {
                return Ok(0);
            }
            crate::ledger::expire_due(&mut tx, ctx, &mut wallet).await?;
            let document_id = format!("{member_id}:{source_id}");
            let credit = Grant {
                reason: source_type,
                document_type: source_type,
                document_id: &document_id,
                points: grant.points,
            };
            credit_grant(&mut tx, ctx, program, &mut wallet, credit).await?;
            let awards = Awards {
                member_id,
                source_type,
                source_id,
                awards: &grant.awards,
                periods: &periods,
                occurred_at: now,
            };
            record_awards(&mut tx, ctx, awards).await?;
            Ok(grant.points)
        }
        .await
        })
    }
}

/// Closes the open run of `worker` on a job.
async fn end_run(
    c: &mut Conn,
    job_id: i64,
    worker: &str,
    now: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE job_runs SET finished_at = $3, outcome = $4, error = $5 \
         WHERE job_id = $1 AND worker = $2 AND finished_at IS NULL",
    )
    .bind(job_id)
    .bind(worker)
    .bind(now)
    .bind(outcome)
    .bind(error)
    .execute(conn(c))
    .await?;
    Ok(())
}
