//! `patron members import`: enroll members from a CSV file through the engine's import use
//! case (one transaction per batch of rows; a bad row is reported and skipped).
//! `patron members set-tier`: a member's manual tier floor.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use patron_engine::EngineError;

use crate::settings::Settings;
use crate::store::{open, tenant, thousands};

const IMPORT_HELP: &str = "\
The first line names the columns, in any order: external_id, name, phone (international, +...),
email, birthday (YYYY-MM-DD), locale (fa, he, en), time_zone (IANA), card_number (a pre-printed
card), consent_email, consent_sms, consent_whatsapp (true/false), and attr.KEY for custom
attributes. Empty cells are left unset.

Each bad row is printed as FILE:LINE: REASON and skipped; the others are imported.
Exit codes: 0 when the file was processed, even if some rows were refused;
1 when the whole file was refused (an unknown column, consent columns without
--consent-text, an unreadable file) and nothing was imported.

Example:
  patron members import members.csv --tenant demo --consent-text \"Yes, send me offers\"";

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Enroll members from a CSV file; bad rows are reported with their line and skipped
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Set a member's manual tier floor: at least TIER until --until (audited)
    SetTier(SetTierArgs),
}

#[derive(Debug, Args)]
pub struct SetTierArgs {
    /// The member id
    pub member: String,
    /// A tier code of the program
    pub tier: String,
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// Until when: a date (held through that day, club time) or an RFC 3339 instant
    /// [default: for good]
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Why, for the audit log
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who sets it, for the audit log [default: your login name]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file (UTF-8, with a header line)
    pub file: PathBuf,
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The exact consent text the members agreed to: stored as the evidence of every
    /// consent_* cell. Required when the file has consent columns
    #[arg(long, value_name = "TEXT")]
    pub consent_text: Option<String>,
}

pub async fn run(settings: &Settings, command: MembersCommand) -> anyhow::Result<ExitCode> {
    match command {
        MembersCommand::Import(args) => import(settings, args).await,
        MembersCommand::SetTier(args) => set_tier(settings, args).await,
    }
}

async fn set_tier(settings: &Settings, args: SetTierArgs) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    let actor = args.actor.unwrap_or_else(crate::store::default_actor);
    let request = patron_engine::tiers::TierFloorRequest {
        tier: args.tier,
        until: args.until,
        reason: args.reason,
    };
    let receipt = engine
        .set_tier_floor(&tenant, &args.member, &request, &actor, None)
        .await?
        .value;
    let until = receipt
        .floor
        .as_ref()
        .and_then(|floor| floor.until)
        .map_or_else(|| "for good".to_string(), |until| format!("until {until}"));
    let raised = receipt
        .raised_from
        .as_deref()
        .map_or_else(String::new, |from| format!(" (raised from {from})"));
    println!(
        "member {}: floor {} {until}; tier {}{raised}",
        receipt.member_id, request.tier, receipt.tier
    );
    Ok(ExitCode::SUCCESS)
}

/// The data lines of a CSV file (lines after the header), for the progress bar's length.
/// A quoted cell spanning lines makes this an overestimate, which only shortens the bar.
fn count_rows(path: &Path) -> anyhow::Result<u64> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = 0u64;
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            lines += 1;
        }
    }
    Ok(lines.saturating_sub(1))
}

/// The header's consent columns, read before anything is written.
fn consent_columns(path: &Path) -> anyhow::Result<Vec<String>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader
        .headers()
        .with_context(|| format!("{}:1: cannot read the header line", path.display()))?;
    Ok(headers
        .iter()
        .filter(|h| h.starts_with("consent_"))
        .map(str::to_string)
        .collect())
}

async fn import(settings: &Settings, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let rows = count_rows(&args.file)?;
    let consents = consent_columns(&args.file)?;
    let consent_text = args.consent_text.unwrap_or_default();
    if !consents.is_empty() && consent_text.trim().is_empty() {
        eprintln!(
            "{name}:1: the file has consent columns ({}) but no --consent-text: pass the exact text the members agreed to, it is the evidence of their consent",
            consents.join(", ")
        );
        eprintln!("{name}: refused; nothing was imported");
        return Ok(ExitCode::FAILURE);
    }
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot read {name}"))?;

    let bar = ProgressBar::with_draw_target(
        Some(rows),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} importing [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let progress = {
        let bar = bar.clone();
        move |done: u64| bar.set_position(done)
    };
    let result = engine
        .import_members(&tenant, BufReader::new(file), &consent_text, &progress)
        .await;
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(EngineError::Invalid { field, message }) if field == "header" => {
            // The engine says "line 1: ..." itself; put the file name in front the usual way.
            let message = message.strip_prefix("line 1: ").unwrap_or(&message);
            eprintln!("{name}:1: {message}");
            eprintln!("{name}: refused; nothing was imported");
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => return Err(anyhow::Error::new(error).context(format!(
                "import of {name} stopped part-way (batches of {} rows already committed stay imported)",
                patron_engine::import::IMPORT_BATCH_ROWS
            ))),
    };
    for rejected in &report.rejected {
        eprintln!("{name}:{}: {}", rejected.line, rejected.reason);
    }
    println!(
        "tenant {}: imported {}, rejected {} of {} rows from {name}",
        tenant.name,
        thousands(report.imported),
        thousands(report.rejected.len() as u64),
        thousands(report.rows)
    );
    Ok(ExitCode::SUCCESS)
}
