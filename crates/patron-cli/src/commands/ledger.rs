//! `patron ledger verify`: recompute every stored total from the append-only rows and check
//! the ledger invariants (docs/LEDGER.md#invariants). Reads only.

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use patron_engine::Engine;
use patron_engine::model::{Tenant, VerifyReport};

use crate::settings::Settings;
use crate::store::{open, tenant, thousands};

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check a tenant's ledger (or every tenant's) and list every discrepancy
    #[command(
        after_help = "Exit code 0 only when every checked ledger is clean; 1 when a discrepancy was found.\n\n\
Examples:\n  patron ledger verify --tenant demo\n  patron ledger verify --all-tenants"
    )]
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["tenant", "all_tenants"])))]
pub struct VerifyArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Check every tenant in the database
    #[arg(long)]
    pub all_tenants: bool,
}

pub async fn run(settings: &Settings, command: LedgerCommand) -> anyhow::Result<ExitCode> {
    let LedgerCommand::Verify(args) = command;
    let engine = open(settings).await?;
    let tenants = match &args.tenant {
        Some(name) => vec![tenant(&engine, name).await?],
        None => engine.tenants().await?,
    };
    if tenants.is_empty() {
        println!("no tenants in this database: nothing to verify");
        return Ok(ExitCode::SUCCESS);
    }
    let mut clean = true;
    for tenant in &tenants {
        clean &= verify_and_print(&engine, tenant, engine.now())
            .await?
            .is_clean();
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Verifies one tenant's ledger as of `now` and prints the outcome (discrepancies on stdout,
/// one per line, so they can be piped).
pub async fn verify_and_print(
    engine: &Engine,
    tenant: &Tenant,
    now: jiff::Timestamp,
) -> anyhow::Result<VerifyReport> {
    let report = engine.verify_ledger(tenant, now).await?;
    let verdict = if report.is_clean() {
        "clean".to_string()
    } else {
        format!(
            "{} DISCREPANC{}",
            report.discrepancies.len(),
            if report.discrepancies.len() == 1 {
                "Y"
            } else {
                "IES"
            }
        )
    };
    println!(
        "tenant {}: {} accounts, {} transfers, {} lots: {verdict}",
        tenant.name,
        thousands(report.accounts),
        thousands(report.transfers),
        thousands(report.lots)
    );
    if report.lots_past_due > 0 {
        println!(
            "  note: {} lots are past their expiry and wait for the expiry job (patron jobs run --tenant {})",
            thousands(report.lots_past_due),
            tenant.name
        );
    }
    for discrepancy in &report.discrepancies {
        println!("  {}: {}", discrepancy.subject, discrepancy.message);
    }
    Ok(report)
}
