//! Scheduled jobs that run exactly once (docs/JOBS.md): which kinds exist, when each is due in
//! the club's time zone, and how a worker claims, runs, renews and finishes them.
//!
//! Every kind's work is idempotent per job (a pending transfer resolves once, expiry ids come
//! from the lot, a birthday is granted once per member and year, a tier move is re-decided
//! from the data), so a job taken over after its worker died does nothing twice.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use patron_domain::program::Program;
use patron_domain::rules::{Trigger, TriggerKind, anniversary_years, is_birthday};
use patron_store::jobs::{ClaimScope, Job, NewJob};
use patron_store::members::Member;
use patron_store::rules::RuleGrant;
use patron_store::tenants::Tenant;

use crate::{Engine, EngineError, rules};

/// What a scheduled job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Post pending points whose return window closed (every hour at :05).
    Activation,
    /// Expire due points (daily, 00:05 club time).
    Expiry,
    /// Release redemption holds past their expiry (every 15 minutes).
    Holds,
    /// The nightly tier pass: upgrades missed, downgrades after the period end and grace.
    Tiers,
    /// Birthday rules for members born on the job's day (daily, 00:05).
    Birthdays,
    /// Enrollment-anniversary rules for members who joined on the job's day (daily, 00:05).
    Anniversaries,
    /// Coupons past their expiry become `expired`, each with an `expired` event (daily,
    /// 00:05). Validation refuses an expired code at any time; this makes the state and the
    /// redemption-rate records say so too.
    Coupons,
    /// Fit the lifetime-value models and store every member's predictions (weekly, Monday
    /// 00:05).
    Clv,
    /// Score RFV as of the day and evaluate the rule segments, recording segment moves as
    /// member events (daily, 00:05).
    Segments,
}

impl JobKind {
    pub const ALL: [JobKind; 9] = [
        JobKind::Activation,
        JobKind::Expiry,
        JobKind::Holds,
        JobKind::Tiers,
        JobKind::Birthdays,
        JobKind::Anniversaries,
        JobKind::Coupons,
        JobKind::Clv,
        JobKind::Segments,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Activation => "activation",
            JobKind::Expiry => "expiry",
            JobKind::Holds => "holds",
            JobKind::Tiers => "tiers",
            JobKind::Birthdays => "birthdays",
            JobKind::Anniversaries => "anniversaries",
            JobKind::Coupons => "coupons",
            JobKind::Clv => "clv",
            JobKind::Segments => "segments",
        }
    }

    /// When the kind runs.
    pub fn schedule(self) -> Schedule {
        match self {
            JobKind::Activation => Schedule::EveryMinutes(60),
            JobKind::Holds => Schedule::EveryMinutes(15),
            JobKind::Expiry
            | JobKind::Tiers
            | JobKind::Birthdays
            | JobKind::Anniversaries
            | JobKind::Coupons
            | JobKind::Segments => Schedule::Daily,
            JobKind::Clv => Schedule::Weekly,
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<JobKind, String> {
        JobKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown job kind {s:?}; use one of {}",
                    JobKind::ALL.map(JobKind::as_str).join(", ")
                )
            })
    }
}

/// When a kind is due, in the club's time zone. Each run is 5 minutes past its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Daily at 00:05.
    Daily,
    /// Mondays at 00:05.
    Weekly,
    /// Every N minutes (N divides 60 or is 60), at slot start + 5 minutes (60: hh:05).
    EveryMinutes(i8),
}

/// Minutes past the slot start a job runs at (00:05 for daily jobs).
const OFFSET_MINUTES: i8 = 5;

/// The occurrence of `kind` due most recently at or before `now` in `tz`: its key and instant.
pub fn current_occurrence(kind: JobKind, now: Timestamp, tz: &TimeZone) -> NewJob {
    let local = now.to_zoned(tz.clone()).datetime();
    let (slot, key) = match kind.schedule() {
        Schedule::Daily => {
            let mut day = local.date();
            if local.time() < jiff::civil::time(0, OFFSET_MINUTES, 0, 0) {
                day = day.yesterday().unwrap_or(day);
            }
            let at = day.at(0, OFFSET_MINUTES, 0, 0);
            (at, format!("{kind}:{day}"))
        }
        Schedule::Weekly => {
            let mut day = local.date();
            if local.time() < jiff::civil::time(0, OFFSET_MINUTES, 0, 0) {
                day = day.yesterday().unwrap_or(day);
            }
            let back = i64::from(day.weekday().to_monday_zero_offset());
            let monday = day.checked_sub(back.days()).unwrap_or(day);
            let at = monday.at(0, OFFSET_MINUTES, 0, 0);
            (at, format!("{kind}:{monday}"))
        }
        Schedule::EveryMinutes(step) => {
            let step = step.clamp(1, 60);
            let shifted = local
                .checked_sub(i64::from(OFFSET_MINUTES).minutes())
                .unwrap_or(local);
            let minute = if step == 60 {
                0
            } else {
                shifted.minute() - shifted.minute() % step
            };
            let start = shifted.date().at(shifted.hour(), minute, 0, 0);
            let at = start
                .checked_add(i64::from(OFFSET_MINUTES).minutes())
                .unwrap_or(start);
            (at, format!("{kind}:{}", start.strftime("%Y-%m-%dT%H%M")))
        }
    };
    NewJob {
        kind: kind.as_str().to_string(),
        key,
        run_at: local_instant(slot, tz).min(now),
        max_attempts: MAX_ATTEMPTS,
    }
}

/// At most this many missed days of a kind are caught up (docs/JOBS.md, "Catching up").
pub const CATCH_UP_DAYS_MAX: usize = 31;

impl JobKind {
    /// Whether occurrences missed while no server ran are scheduled afterwards. Only kinds
    /// whose work belongs to their day do: a later run of the others covers everything due.
    pub fn catches_up(self) -> bool {
        matches!(self, JobKind::Birthdays | JobKind::Anniversaries)
    }
}

/// The daily occurrences of `kind` after the one keyed `last_key` and before `current`: the
/// days on which no server scheduled it, at most [`CATCH_UP_DAYS_MAX`] (the latest ones).
/// Each has the key its day would have had, so every process schedules the same rows.
pub fn missed_occurrences(
    kind: JobKind,
    last_key: Option<&str>,
    current: &NewJob,
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<NewJob> {
    let (Some(last), Some(today)) = (last_key.and_then(key_date), key_date(&current.key)) else {
        return Vec::new();
    };
    if kind.schedule() != Schedule::Daily {
        return Vec::new();
    }
    let mut missed = Vec::new();
    let mut day = today;
    while missed.len() < CATCH_UP_DAYS_MAX {
        match day.yesterday() {
            Ok(previous) if previous > last => day = previous,
            _ => break,
        }
        missed.push(NewJob {
            kind: kind.as_str().to_string(),
            key: format!("{kind}:{day}"),
            run_at: local_instant(day.at(0, OFFSET_MINUTES, 0, 0), tz).min(now),
            max_attempts: MAX_ATTEMPTS,
        });
    }
    missed.reverse();
    missed
}

fn local_instant(at: DateTime, tz: &TimeZone) -> Timestamp {
    tz.to_ambiguous_zoned(at)
        .compatible()
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The club-local day a job key names (`birthdays:2026-11-22...`).
fn key_date(key: &str) -> Option<Date> {
    let (_, rest) = key.split_once(':')?;
    rest.get(..10)?.parse().ok()
}

/// How many attempts a job gets before it stays failed.
pub const MAX_ATTEMPTS: i64 = 5;

/// The pause before retry `attempt` + 1: 30 s, 1 min, 2 min, ... at most an hour.
pub fn retry_delay(attempt: i64) -> SignedDuration {
    let exponent = u32::try_from((attempt - 1).clamp(0, 7)).unwrap_or(0);
    SignedDuration::from_secs((30 * 2i64.pow(exponent)).min(3600))
}

/// Who a worker is and how long its leases last.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Unique per process: host, process id and a random suffix.
    pub id: String,
    pub lease: SignedDuration,
}

impl Worker {
    pub fn new(lease: SignedDuration) -> Worker {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Worker {
            id: format!("{host}:{}:{}", std::process::id(), &suffix[..8]),
            lease,
        }
    }
}

/// What running one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRunReport {
    pub tenant: String,
    pub kind: String,
    pub key: String,
    /// The summary stored in `result`, or the error.
    pub outcome: Result<String, String>,
    /// False when the worker lost its lease before finishing (another took the job over).
    pub recorded: bool,
}

impl Engine {
    /// The job queue of the whole deployment now (every tenant): due jobs waiting for a
    /// worker and failed ones (the `/metrics` gauges).
    pub async fn job_queue(&self) -> Result<patron_store::jobs::JobQueue, EngineError> {
        Ok(self.store.job_queue(self.now()).await?)
    }

    /// Ensures the current occurrence of every kind exists for the tenant (insert-if-absent by
    /// key), and for the kinds that catch up, every day missed since the last one scheduled
    /// (at most [`CATCH_UP_DAYS_MAX`]). Answers how many jobs were new.
    pub async fn ensure_jobs(&self, tenant: &Tenant) -> Result<u64, EngineError> {
        let program = self.program(tenant).await?.program;
        let tz = program.tz();
        let now = self.now();
        let mut jobs = Vec::new();
        for kind in JobKind::ALL {
            let current = current_occurrence(kind, now, &tz);
            if kind.catches_up() {
                let last = self
                    .store
                    .last_scheduled_job_key(tenant.id, kind.as_str())
                    .await?;
                jobs.extend(missed_occurrences(
                    kind,
                    last.as_deref(),
                    &current,
                    now,
                    &tz,
                ));
            }
            jobs.push(current);
        }
        Ok(self.store.schedule_jobs(tenant.id, &jobs, now).await?)
    }

    /// [`Engine::ensure_jobs`] for every tenant that has a program.
    pub async fn ensure_jobs_all(&self) -> Result<u64, EngineError> {
        let mut inserted = 0;
        for tenant in self.store.list_tenants().await? {
            match self.ensure_jobs(&tenant).await {
                Ok(n) => inserted += n,
                Err(EngineError::Rejected(patron_store::Rejection::NoProgram { .. })) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(inserted)
    }

    /// Claims one due job of any tenant and runs it. None when nothing is due.
    pub async fn work_once(&self, worker: &Worker) -> Result<Option<JobRunReport>, EngineError> {
        let Some(job) = self
            .store
            .claim_job(ClaimScope::AnyDue, &worker.id, self.now(), worker.lease)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.execute(worker, job).await?))
    }

    /// Claims and runs due jobs until none is left (or `max` ran).
    pub async fn work_until_idle(
        &self,
        worker: &Worker,
        max: usize,
    ) -> Result<Vec<JobRunReport>, EngineError> {
        let mut reports = Vec::new();
        while reports.len() < max {
            match self.work_once(worker).await? {
                Some(report) => reports.push(report),
                None => break,
            }
        }
        Ok(reports)
    }

    /// `patron jobs run-now KIND`: schedules a job of `kind` for now (a key of its own, so it
    /// runs even if today's scheduled job already did) and runs it in this process.
    pub async fn run_job_now(
        &self,
        tenant: &Tenant,
        kind: JobKind,
        worker: &Worker,
    ) -> Result<JobRunReport, EngineError> {
        let program = self.program(tenant).await?.program;
        let now = self.now();
        let local = now.to_zoned(program.tz());
        let job = NewJob {
            kind: kind.as_str().to_string(),
            key: format!(
                "{kind}:{}:manual-{}-{}",
                local.date(),
                now.as_microsecond(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            run_at: now,
            max_attempts: 1,
        };
        self.store
            .schedule_jobs(tenant.id, std::slice::from_ref(&job), now)
            .await?;
        let claimed = self
            .store
            .claim_job(
                ClaimScope::Key(tenant.id, &job.key),
                &worker.id,
                now,
                worker.lease,
            )
            .await?
            .ok_or_else(|| EngineError::invalid("kind", "the job was claimed by another worker"))?;
        self.execute(worker, claimed).await
    }

    /// Runs a claimed job, renewing its lease while it works, and records the outcome.
    async fn execute(&self, worker: &Worker, job: Job) -> Result<JobRunReport, EngineError> {
        let tenant_name = self
            .store
            .list_tenants()
            .await?
            .into_iter()
            .find(|t| t.id == job.tenant)
            .map(|t| t.name)
            .unwrap_or_default();
        let renew_every = Duration::from_millis(
            u64::try_from(worker.lease.as_millis() / 3)
                .unwrap_or(1000)
                .max(100),
        );
        let work = self.run_job(&job);
        tokio::pin!(work);
        let outcome = loop {
            tokio::select! {
                result = &mut work => break result,
                () = tokio::time::sleep(renew_every) => {
                    let until = self.now().saturating_add(worker.lease).unwrap_or(self.now());
                    match self.store.renew_job_lease(job.id, &worker.id, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %job.key, "lost the lease of a running job; another worker took it over"),
                        Err(error) => tracing::warn!(job = %job.key, %error, "cannot renew a job lease"),
                    }
                }
            }
        };
        let now = self.now();
        let (outcome, recorded) = match outcome {
            Ok(summary) => {
                let recorded = self
                    .store
                    .finish_job(job.id, &worker.id, now, &summary)
                    .await?;
                (Ok(summary), recorded)
            }
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(job = %job.key, attempt = job.attempts, error = %message, "job failed");
                let retry = now.saturating_add(retry_delay(job.attempts)).ok();
                let recorded = self
                    .store
                    .fail_job(job.id, &worker.id, now, &message, retry)
                    .await?;
                (Err(message), recorded)
            }
        };
        Ok(JobRunReport {
            tenant: tenant_name,
            kind: job.kind.clone(),
            key: job.key.clone(),
            outcome,
            recorded,
        })
    }

    /// The work of one job. Answers a one-line summary.
    async fn run_job(&self, job: &Job) -> Result<String, EngineError> {
        let kind: JobKind = job
            .kind
            .parse()
            .map_err(|e: String| EngineError::invalid("kind", e))?;
        let tenant = self
            .store
            .list_tenants()
            .await?
            .into_iter()
            .find(|t| t.id == job.tenant)
            .ok_or_else(|| EngineError::TenantNotFound(job.tenant.0.to_string()))?;
        let program = self.program(&tenant).await?.program;
        let now = self.now();
        match kind {
            JobKind::Activation => {
                let mut posted = 0;
                loop {
                    let n = self
                        .store
                        .activate_due_pending(tenant.id, &program, now, 1000)
                        .await?;
                    posted += n;
                    if n < 1000 {
                        break;
                    }
                }
                Ok(format!("{posted} pending purchases posted"))
            }
            JobKind::Coupons => {
                let expired = self
                    .store
                    .expire_due_coupons(tenant.id, now, 100_000)
                    .await?;
                Ok(format!("{expired} coupons expired"))
            }
            JobKind::Expiry | JobKind::Holds => {
                // One store pass does both; each is idempotent, so the two kinds overlapping
                // is harmless.
                let (expired, released) = self
                    .store
                    .run_expiry(tenant.id, &program, now, 100_000)
                    .await?;
                Ok(format!(
                    "{expired} points expired, {released} holds released"
                ))
            }
            JobKind::Tiers => self.recalculate_tiers(&tenant, &program, now).await,
            JobKind::Clv => self.fit_clv(&tenant).await,
            JobKind::Segments => {
                let today = key_date(&job.key).unwrap_or_else(|| now.to_zoned(program.tz()).date());
                Ok(self.run_segments(&tenant, Some(today)).await?.summary())
            }
            JobKind::Birthdays | JobKind::Anniversaries => {
                let today = key_date(&job.key).unwrap_or_else(|| now.to_zoned(program.tz()).date());
                self.grant_occasions(&tenant, &program, kind, today, now)
                    .await
            }
        }
    }

    /// The nightly tier pass: every active member re-evaluated under the wallet lock by
    /// `patron_domain::tier::target` (upgrades, the downgrade policy, the manual floor).
    async fn recalculate_tiers(
        &self,
        tenant: &Tenant,
        program: &Program,
        now: Timestamp,
    ) -> Result<String, EngineError> {
        let (mut upgraded, mut downgraded) = (0, 0);
        let mut after = String::new();
        loop {
            let page = self
                .store
                .active_member_ids(tenant.id, &after, 1000)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            for (member_id, _) in &page {
                if let Some((from, to)) = self
                    .store
                    .reevaluate_tier(tenant.id, program, member_id, now)
                    .await?
                {
                    if level(program, &to) > level(program, &from) {
                        upgraded += 1;
                    } else {
                        downgraded += 1;
                    }
                }
            }
        }
        Ok(format!("{upgraded} upgraded, {downgraded} downgraded"))
    }

    async fn grant_occasions(
        &self,
        tenant: &Tenant,
        program: &Program,
        kind: JobKind,
        today: Date,
        now: Timestamp,
    ) -> Result<String, EngineError> {
        let trigger_kind = if kind == JobKind::Birthdays {
            TriggerKind::Birthday
        } else {
            TriggerKind::Anniversary
        };
        if program.rules_for(trigger_kind).next().is_none() {
            return Ok("no rules of this kind".into());
        }
        let cal = program.calendar();
        let members: Vec<String> = if kind == JobKind::Birthdays {
            let days = patron_domain::rules::birthday_candidates(today, cal.system);
            self.store
                .members_born_on(tenant.id, &days)
                .await?
                .into_iter()
                .filter(|(_, birthday)| {
                    birthday
                        .parse::<Date>()
                        .is_ok_and(|born| is_birthday(born, today, cal.system))
                })
                .map(|(id, _)| id)
                .collect()
        } else {
            let mut ids = Vec::new();
            let mut after = String::new();
            loop {
                let page = self
                    .store
                    .active_member_ids(tenant.id, &after, 1000)
                    .await?;
                let Some((last, _)) = page.last() else { break };
                after = last.clone();
                ids.extend(
                    page.into_iter()
                        .filter(|(_, enrolled)| anniversary_years(*enrolled, today, &cal).is_some())
                        .map(|(id, _)| id),
                );
            }
            ids
        };
        // Once per member per year of the club's calendar: the year is the source of the
        // awards (a Persian birthday can fall twice in one Gregorian year, and never in another).
        let source_id = cal
            .system
            .ymd(today)
            .map_or(i32::from(today.year()), |ymd| ymd.year)
            .to_string();
        let (mut granted, mut points) = (0, 0);
        for member_id in &members {
            let failures = rules::Failures::default();
            let trigger = if kind == JobKind::Birthdays {
                Trigger::Birthday
            } else {
                Trigger::Anniversary
            };
            let reads =
                rules::read_member(&self.store, tenant.id, program, trigger_kind, member_id)
                    .await?;
            let decide = |member: &Member, usage: &patron_domain::rules::RuleUsage| -> RuleGrant {
                let (grant, failed) = rules::grant(program, member, &reads, trigger, now, usage);
                failures.set(failed);
                grant
            };
            let credited = self
                .store
                .grant_occasion(
                    tenant.id,
                    program,
                    trigger_kind,
                    member_id,
                    &source_id,
                    &decide,
                    now,
                )
                .await?;
            self.report_rule_failures(failures.take());
            if credited > 0 {
                granted += 1;
                points += credited;
            }
        }
        Ok(format!(
            "{granted} of {} members granted, {points} points",
            members.len()
        ))
    }
}

fn level(program: &Program, code: &str) -> Option<usize> {
    program.tiers.levels.iter().position(|t| t.code == code)
}
