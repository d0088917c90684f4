//! The `patron` command line: operate a Patron deployment from a terminal.
//!
//! `main` parses the arguments (clap; usage errors exit with 2), sets up logging on stderr,
//! resolves the settings ([`settings`]), and runs one command from [`commands`]. A command
//! returns the exit code it wants (1 for "the input was refused", with the reasons already
//! printed) or an error, which is printed as `error: ...` on stderr with exit code 1.
//!
//! Output is for people: results on stdout, diagnostics, progress bars and summaries of
//! side effects on stderr, so `patron cards issue-batch > cards.csv` stays a clean file.

pub mod commands;
pub mod diagnostics;
pub mod settings;
pub mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::Settings;

const AFTER_HELP: &str = "\
Examples:
  patron demo                                   build a demo club in ./patron-demo and serve it
  patron serve --listen 127.0.0.1:8080          serve the HTTP API
  patron keys create --tenant acme --scope pos  make an API key (printed once)
  patron program validate club.toml             check a program file, no database needed
  patron program apply club.toml --tenant acme  store it as tenant acme's program
  patron --db postgres://patron@localhost/patron migrate

The database URL comes from --db, else PATRON_DATABASE_URL, else `database_url` in the
--config file (PATRON_CONFIG), else sqlite://patron.db. Every setting and environment
variable: docs/CONFIG.md. Exit codes: 0 success, 1 refused
input or failure (reasons on stderr), 2 usage error.";

/// Patron: an open-source loyalty-program platform.
#[derive(Debug, Parser)]
#[command(name = "patron", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Database: sqlite://PATH, a file path, or postgres://USER:PASSWORD@HOST/NAME
    /// [default: sqlite://patron.db]
    #[arg(
        long = "db",
        value_name = "URL",
        env = "PATRON_DATABASE_URL",
        hide_env_values = true,
        global = true,
        help_heading = "Global options"
    )]
    pub database_url: Option<String>,

    /// Log filter on stderr: error, warn, info, debug, trace, or per module
    /// (patron_store=debug)
    #[arg(
        long,
        value_name = "FILTER",
        env = "PATRON_LOG",
        default_value = "warn",
        global = true,
        help_heading = "Global options"
    )]
    pub log_level: String,

    /// Settings file (TOML): `database_url`, `listen` and the server limits (docs/CONFIG.md);
    /// flags and PATRON_* variables win over it
    #[arg(
        long,
        value_name = "FILE",
        env = "PATRON_CONFIG",
        global = true,
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations that have not run yet, and list them
    #[command(
        after_help = "Every command that uses the database also migrates it first; this one only migrates.\n\nExample:\n  patron --db sqlite://patron.db migrate"
    )]
    Migrate,
    /// Validate, apply and inspect a club's program file
    #[command(subcommand)]
    Program(commands::program::ProgramCommand),
    /// Manage members (import from CSV)
    #[command(subcommand)]
    Members(commands::members::MembersCommand),
    /// Manage membership cards (pre-printed batches)
    #[command(subcommand)]
    Cards(commands::cards::CardsCommand),
    /// Check the points ledger
    #[command(subcommand)]
    Ledger(commands::ledger::LedgerCommand),
    /// Run the time-driven ledger work (pending points, expiry, stale holds)
    #[command(subcommand)]
    Jobs(commands::jobs::JobsCommand),
    /// List the clubs (tenants) in the database
    #[command(subcommand)]
    Tenants(commands::tenants::TenantsCommand),
    /// Manage API keys (create, list, revoke)
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Serve the HTTP API (/v1, /docs, /openapi.json, /healthz, /readyz, /metrics)
    Serve(commands::serve::ServeArgs),
    /// Member analytics from files, no database: RFM segments and customer lifetime value
    #[command(subcommand)]
    Analyze(commands::analyze::AnalyzeCommand),
    /// Build a believable demo club (a year of members, purchases, refunds, redemptions) and
    /// serve it
    Demo(commands::demo::DemoArgs),
}

/// Parses the arguments, runs the command, and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_logging(&cli.log_level) {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid --log-level {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Settings are resolved only by the commands that use a database: the analytics work on
    // files alone.
    let settings = || -> anyhow::Result<Settings> {
        let settings = Settings::resolve(cli.database_url.clone(), cli.config.as_deref())?;
        tracing::debug!(database = %store::redact(&settings.database_url), source = ?settings.database_url_source, "settings");
        Ok(settings)
    };
    match cli.command {
        Command::Analyze(commands::analyze::AnalyzeCommand::RebuildStats(args)) => {
            commands::stats::run(&settings()?, args).await
        }
        Command::Analyze(command) => commands::analyze::run(command),
        Command::Migrate => commands::migrate::run(&settings()?).await,
        Command::Program(command) => commands::program::run(&settings()?, command).await,
        Command::Members(command) => commands::members::run(&settings()?, command).await,
        Command::Cards(command) => commands::cards::run(&settings()?, command).await,
        Command::Ledger(command) => commands::ledger::run(&settings()?, command).await,
        Command::Jobs(command) => commands::jobs::run(&settings()?, command).await,
        Command::Tenants(command) => commands::tenants::run(&settings()?, command).await,
        Command::Keys(command) => commands::keys::run(&settings()?, command).await,
        Command::Serve(args) => commands::serve::run(&settings()?, args).await,
        Command::Demo(args) => commands::demo::run(&settings()?, args).await,
    }
}
