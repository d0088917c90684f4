//! `patron analyze rebuild-stats`: recompute a tenant's member statistics from the purchase
//! history and report (and fix) every difference from the stored ones (docs/ANALYTICS.md,
//! "Member statistics"). Unlike the other `analyze` commands, it works on the database.

use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;
use crate::store::{open, tenant, thousands};

#[derive(Debug, Args)]
pub struct RebuildStatsArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// Only report the differences; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub const REBUILD_STATS_HELP: &str = "Prints one line per difference (member, field, stored, recomputed; \
`-` where a side has no row), then a summary. Without --dry-run the members that differ are \
rewritten from history in one transaction. Exit code 0 when the statistics agree (or were fixed); \
1 when --dry-run found differences.\n\n\
Examples:\n  patron analyze rebuild-stats --tenant demo --dry-run\n  patron analyze rebuild-stats --tenant demo";

pub async fn run(settings: &Settings, args: RebuildStatsArgs) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    let report = engine.rebuild_member_stats(&tenant, !args.dry_run).await?;
    for d in &report.differences {
        println!(
            "{}\t{}\tstored={}\trecomputed={}",
            d.member_id,
            d.field,
            d.stored.as_deref().unwrap_or("-"),
            d.recomputed.as_deref().unwrap_or("-"),
        );
    }
    let members: std::collections::BTreeSet<&str> = report
        .differences
        .iter()
        .map(|d| d.member_id.as_str())
        .collect();
    let verb = if report.fixed { "fixed" } else { "found" };
    println!(
        "{}: {} members with statistics; {} differences in {} members {verb}",
        tenant.name,
        thousands(report.members as i128),
        thousands(report.differences.len() as i128),
        thousands(members.len() as i128),
    );
    Ok(if report.differences.is_empty() || report.fixed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
