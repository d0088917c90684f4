//! `patron program ...`: check a program file, store it as a tenant's new version, and read
//! the stored versions back with their audit trail.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use patron_domain::program::{Diagnostic, Program, parse_program};
use patron_engine::EngineError;

use crate::commands::read_text;
use crate::diagnostics;
use crate::settings::Settings;
use crate::store::{default_actor, open, tenant};

#[derive(Debug, Subcommand)]
pub enum ProgramCommand {
    /// Check a program file and report every problem with its line and column (no database)
    #[command(
        after_help = "Exit code 0 when the file is valid, 1 when it is not (every problem is printed \
as FILE:LINE:COLUMN: error: MESSAGE).\n\nExample:\n  patron program validate examples/programs/coffee-chain.toml"
    )]
    Validate(ValidateArgs),
    /// Validate a program file and store it as the tenant's next version (creating the tenant)
    #[command(
        after_help = "Nothing is written when the file has errors. Applying the same text again \
stores nothing and says so.\n\nExample:\n  patron program apply examples/programs/coffee-chain.toml --tenant northside --actor alice"
    )]
    Apply(ApplyArgs),
    /// Print a tenant's program (the current version, or the one given)
    #[command(
        after_help = "Examples:\n  patron program show --tenant demo\n  patron program show --tenant demo --version 1 > v1.toml"
    )]
    Show(ShowArgs),
    /// List a tenant's program versions, newest first, with what each changed
    #[command(after_help = "Example:\n  patron program history --tenant demo")]
    History(TenantArg),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The program file (TOML; see docs/PROGRAM.md)
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The program file (TOML; see docs/PROGRAM.md)
    pub file: PathBuf,
    /// The tenant (club) name: 1 to 64 letters, digits, '-' or '_'
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// Who is applying it, for the audit log [default: your login name]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The version to print [default: the current one]
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
}

#[derive(Debug, Args)]
pub struct TenantArg {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
}

pub async fn run(settings: &Settings, command: ProgramCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProgramCommand::Validate(args) => validate(&args.file),
        ProgramCommand::Apply(args) => apply(settings, args).await,
        ProgramCommand::Show(args) => show(settings, args).await,
        ProgramCommand::History(args) => history(settings, &args.tenant).await,
    }
}

/// One line about a valid program: name, currency, tiers.
pub fn summary(program: &Program) -> String {
    let name = program
        .names
        .resolve(program.default_locale, program.default_locale);
    let tiers: Vec<&str> = program
        .tiers
        .levels
        .iter()
        .map(|t| t.code.as_str())
        .collect();
    format!(
        "\"{name}\", {} (minor unit {}), {}, {} tier{} ({})",
        program.currency.code,
        program.currency.minor_unit,
        program.time_zone,
        tiers.len(),
        if tiers.len() == 1 { "" } else { "s" },
        tiers.join(", ")
    )
}

fn print_diagnostics(file: &Path, source: &str, found: &[Diagnostic], consequence: &str) {
    let name = file.display().to_string();
    eprint!("{}", diagnostics::render(&name, source, found));
    eprintln!("{name}: {}{consequence}", diagnostics::count(found.len()));
}

fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    let source = read_text(file)?;
    match parse_program(&source) {
        Ok(program) => {
            println!("{}: ok: {}", file.display(), summary(&program));
            Ok(ExitCode::SUCCESS)
        }
        Err(found) => {
            print_diagnostics(file, &source, &found, "");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn apply(settings: &Settings, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let source = read_text(&args.file)?;
    // Validate before opening the database: a bad file changes nothing, not even the schema.
    let program = match parse_program(&source) {
        Ok(program) => program,
        Err(found) => {
            print_diagnostics(&args.file, &source, &found, "; nothing was applied");
            return Ok(ExitCode::FAILURE);
        }
    };
    let engine = open(settings).await?;
    let actor = args.actor.unwrap_or_else(default_actor);
    let (tenant, version, changed) = match engine.apply_program(&args.tenant, &source, &actor).await
    {
        Ok(applied) => applied,
        Err(EngineError::Program(found)) => {
            print_diagnostics(&args.file, &source, &found, "; nothing was applied");
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => return Err(error.into()),
    };
    if changed {
        println!(
            "tenant {}: stored program version {version} from {} ({})",
            tenant.name,
            args.file.display(),
            summary(&program)
        );
    } else {
        println!(
            "tenant {}: unchanged, version {version} already has this exact text",
            tenant.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(settings: &Settings, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    let tenant = tenant(&engine, &args.tenant).await?;
    let versions = engine.program_versions(&tenant).await?;
    let Some(latest) = versions.iter().map(|v| v.version).max() else {
        anyhow::bail!(
            "tenant {:?} has no program yet; apply one with: patron program apply FILE --tenant {}",
            tenant.name,
            tenant.name
        );
    };
    let wanted = args.version.unwrap_or(latest);
    let Some(version) = versions.iter().find(|v| v.version == wanted) else {
        anyhow::bail!(
            "tenant {:?} has no program version {wanted}; it has versions 1 to {latest}",
            tenant.name
        );
    };
    println!(
        "# Program of tenant {:?}, version {}{}, applied {} by {}",
        tenant.name,
        version.version,
        if version.version == latest {
            " (current)"
        } else {
            ""
        },
        version.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        version.created_by
    );
    print!("{}", version.source);
    if !version.source.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

async fn history(settings: &Settings, tenant_name: &str) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    let tenant = tenant(&engine, tenant_name).await?;
    let mut versions = engine.program_versions(&tenant).await?;
    if versions.is_empty() {
        println!("tenant {}: no program yet", tenant.name);
        return Ok(ExitCode::SUCCESS);
    }
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let audit = engine.audit_log(&tenant, Some("program:v"), 1000).await?;
    for version in &versions {
        println!(
            "version {}  {}  by {}",
            version.version,
            version.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            version.created_by
        );
        let subject = format!("program:v{}", version.version);
        let first = versions
            .last()
            .is_some_and(|oldest| oldest.version == version.version);
        match audit.iter().find(|entry| entry.subject == subject) {
            // The first version's diff is the whole file: point at it instead.
            Some(_) if first => println!(
                "    first version, {} lines: patron program show --tenant {} --version {}",
                version.source.lines().count(),
                tenant.name,
                version.version
            ),
            Some(entry) if !entry.details.trim().is_empty() => {
                for line in entry.details.lines() {
                    println!("    {line}");
                }
            }
            _ => println!("    (no change recorded)"),
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
