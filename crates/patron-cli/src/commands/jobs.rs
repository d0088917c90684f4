//! `patron jobs`: the scheduled jobs (docs/JOBS.md). `list` shows a club's jobs, `run-now`
//! schedules one kind for now and runs it in this process, `run` does the time-driven ledger
//! work due now once (as before the job system).

use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use jiff::SignedDuration;
use patron_engine::jobs::{JobKind, Worker};
use patron_engine::model::{JobFilter, job_states as state};

use crate::settings::Settings;
use crate::store::{open, tenant, thousands};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run the jobs due now once: post pending points whose return window closed, expire due
    /// points, release stale redemption holds
    #[command(
        after_help = "Safe to run repeatedly: work that is not due is left alone.\n\nExample:\n  patron jobs run --tenant demo"
    )]
    Run(RunArgs),
    /// List a club's scheduled jobs: kind, key, when due, state, attempts, last error
    #[command(
        after_help = "Examples:\n  patron jobs list --tenant demo\n  patron jobs list --tenant demo --state failed"
    )]
    List(ListArgs),
    /// Schedule a job of KIND for now and run it in this process, printing what it did
    #[command(
        name = "run-now",
        after_help = "Every kind is idempotent: running one again does nothing twice.\n\nExamples:\n  patron jobs run-now expiry --tenant demo\n  patron jobs run-now segments --tenant demo"
    )]
    RunNow(RunNowArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// Only jobs in this state
    #[arg(long, value_parser = ["pending", "running", "done", "failed"])]
    pub state: Option<String>,
    /// Only jobs of this kind
    #[arg(long, value_name = "KIND", value_parser = job_kinds())]
    pub kind: Option<String>,
    /// At most this many jobs, newest due first
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct RunNowArgs {
    /// The kind of job to run
    #[arg(value_name = "KIND", value_parser = job_kinds())]
    pub kind: String,
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
}

/// The kinds `run-now` and `list --kind` accept, and their help lists: `JobKind::ALL`, so a
/// new kind cannot be left out of the help again.
fn job_kinds() -> PossibleValuesParser {
    PossibleValuesParser::new(JobKind::ALL.map(JobKind::as_str))
}

pub async fn run(settings: &Settings, command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::Run(args) => run_due(settings, args).await,
        JobsCommand::List(args) => list(settings, args).await,
        JobsCommand::RunNow(args) => run_now(settings, args).await,
    }
}

async fn run_due(settings: &Settings, args: RunArgs) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    let report = engine.run_due_jobs(&tenant).await?;
    println!(
        "tenant {}: jobs run at {}",
        tenant.name,
        engine.now().strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    println!(
        "  pending purchases posted: {}",
        thousands(report.pending_posted)
    );
    println!(
        "  points expired:           {}",
        thousands(report.points_expired)
    );
    println!(
        "  holds released:           {}",
        thousands(report.holds_released)
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(settings: &Settings, args: ListArgs) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    if let Some(kind) = &args.kind {
        kind.parse::<JobKind>().map_err(anyhow::Error::msg)?;
    }
    debug_assert!(
        args.state
            .as_deref()
            .is_none_or(|s| state::ALL.contains(&s))
    );
    let jobs = engine
        .list_jobs(
            &tenant,
            &JobFilter {
                state: args.state.as_deref(),
                kind: args.kind.as_deref(),
                limit: args.limit,
            },
        )
        .await?;
    if jobs.is_empty() {
        println!("no jobs for tenant {}", tenant.name);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<14} {:<46} {:<20} {:<8} {:>8}  LAST ERROR",
        "KIND", "KEY", "DUE (UTC)", "STATE", "ATTEMPTS"
    );
    for job in jobs {
        let error = job
            .last_error
            .as_deref()
            .map(|e| {
                e.lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(60)
                    .collect::<String>()
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {:<46} {:<20} {:<8} {:>8}  {}",
            job.kind,
            job.key,
            job.run_at.strftime("%Y-%m-%d %H:%M:%S"),
            job.state,
            job.attempts,
            error
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_now(settings: &Settings, args: RunNowArgs) -> anyhow::Result<ExitCode> {
    let kind: JobKind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    let lease = i64::try_from(settings.jobs.lease_seconds).unwrap_or(300);
    let worker = Worker::new(SignedDuration::from_secs(lease));
    let report = engine.run_job_now(&tenant, kind, &worker).await?;
    match report.outcome {
        Ok(summary) => {
            println!(
                "tenant {}: {} ({}): {summary}",
                tenant.name, report.kind, report.key
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: job {} failed: {error}", report.key);
            Ok(ExitCode::FAILURE)
        }
    }
}
