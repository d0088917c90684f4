//! `patron cards issue-batch`: numbers for a print run of physical cards.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::settings::Settings;
use crate::store::{default_actor, open, tenant, thousands};

#[derive(Debug, Subcommand)]
pub enum CardsCommand {
    /// Create a batch of card numbers (prefix + serial + check digit) for printing
    #[command(
        after_help = "Writes CSV (number,batch_id) to --out or to stdout; the summary goes to stderr. \
The cards are available for binding at enrollment.\n\nExamples:\n  patron cards issue-batch --tenant demo --count 500 --out batch.csv\n  patron cards issue-batch --tenant demo --count 10 > cards.csv"
    )]
    IssueBatch(IssueBatchArgs),
}

#[derive(Debug, Args)]
pub struct IssueBatchArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// How many cards (1 to 1,000,000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// Write the CSV here instead of stdout (an existing file is replaced)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Who ordered the batch, for the audit log [default: your login name]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

pub async fn run(settings: &Settings, command: CardsCommand) -> anyhow::Result<ExitCode> {
    let CardsCommand::IssueBatch(args) = command;
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    let actor = args.actor.unwrap_or_else(default_actor);
    // Create the output before issuing: a path we cannot write to fails before any card exists.
    let (mut output, shown): (Box<dyn Write>, String) = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            (
                Box::new(std::io::BufWriter::new(file)),
                path.display().to_string(),
            )
        }
        None => (Box::new(std::io::stdout().lock()), "stdout".to_string()),
    };
    let issued = engine.issue_card_batch(&tenant, args.count, &actor).await;
    let (batch_id, numbers) = match issued {
        Ok(issued) => issued,
        Err(error) => {
            drop(output);
            if let Some(path) = &args.out {
                let _ = std::fs::remove_file(path);
            }
            return Err(error.into());
        }
    };
    let mut write = || -> anyhow::Result<()> {
        let mut writer = csv::Writer::from_writer(&mut output);
        writer.write_record(["number", "batch_id"])?;
        let batch = batch_id.to_string();
        for number in &numbers {
            writer.write_record([number.as_str(), batch.as_str()])?;
        }
        writer.flush()?;
        Ok(())
    };
    write().with_context(|| {
        format!("batch {batch_id} was issued, but writing it to {shown} failed")
    })?;
    drop(output);
    eprintln!(
        "tenant {}: issued batch {batch_id} of {} cards, written to {shown}",
        tenant.name,
        thousands(numbers.len() as u64)
    );
    Ok(ExitCode::SUCCESS)
}
