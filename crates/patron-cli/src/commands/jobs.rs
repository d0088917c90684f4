//! `patron jobs run`: the time-driven ledger work, once. (The scheduled job system comes
//! later; this is what it will call.)

use std::process::ExitCode;

use clap::{Args, Subcommand};

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
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
}

pub async fn run(settings: &Settings, command: JobsCommand) -> anyhow::Result<ExitCode> {
    let JobsCommand::Run(args) = command;
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
