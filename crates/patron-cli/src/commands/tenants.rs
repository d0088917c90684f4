//! `patron tenants list`: the clubs in this database.

use std::process::ExitCode;

use clap::Subcommand;

use crate::settings::Settings;
use crate::store::{open, thousands};

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// List every tenant with its program version and member count
    #[command(after_help = "Example:\n  patron --db sqlite://patron-demo/patron.db tenants list")]
    List,
}

pub async fn run(settings: &Settings, command: TenantsCommand) -> anyhow::Result<ExitCode> {
    let TenantsCommand::List = command;
    let engine = open(settings).await?;
    let tenants = engine.tenants().await?;
    if tenants.is_empty() {
        println!("no tenants yet; create one with: patron program apply FILE --tenant NAME");
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "NAME".to_string(),
        "PROGRAM".into(),
        "MEMBERS".into(),
        "CREATED".into(),
    ]];
    for tenant in &tenants {
        let program = match engine.current_program(tenant).await? {
            Some(version) => format!("v{}", version.version),
            None => "none".into(),
        };
        let members = engine.count_members(tenant).await?;
        rows.push([
            tenant.name.clone(),
            program,
            thousands(members),
            tenant.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        println!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(ExitCode::SUCCESS)
}
