//! `patron demo`: a believable coffee-chain club in a SQLite file, built through the
//! engine's use cases (the same path the API will take), so the ledger it produces is a real
//! one and `ledger verify` checks it.
//!
//! The simulation walks day by day through the last `--months` months on a [`ManualClock`]:
//! members join over the period (a launch burst, then steadily), each with their own visit
//! rhythm (a few regulars, many occasional guests), busier on weekends and in December; about
//! a quarter of purchases are anonymous, about 3% are refunded within days, members redeem
//! beans for drinks at the till (app orders hold the beans and capture them), and some
//! members drift away and go dormant. The time-driven jobs run every night. Everything random
//! comes from one seeded RNG, so a seed gives the same club (ids aside).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use patron_domain::program::{Program, parse_program};
use patron_engine::keys::Scope;
use patron_engine::model::{StoreOptions, Tenant};
use patron_engine::{Clock, Engine, EngineError, ManualClock};

use self::simulation::{STORES, Simulation, Stats, at};
use crate::commands::ledger::verify_and_print;
use crate::commands::serve::serve_until_signal;
use crate::settings::{DEFAULT_LISTEN, Settings};
use crate::store::{connect_and_migrate, connect_and_migrate_with, thousands};

mod simulation;

/// The demo club's program, embedded so the binary runs from anywhere.
const PROGRAM: &str = include_str!("../../../../examples/programs/coffee-chain.toml");
const TENANT: &str = "demo";
const ACTOR: &str = "demo";
const DATABASE_FILE: &str = "patron.db";
/// Marks the folder's database as the demo's, and says whether it was finished.
const MARKER_FILE: &str = "demo-info.txt";
const MARKER_COMPLETE: &str = "complete:";

const AFTER_HELP: &str = "\
Creates DIR (default ./patron-demo) with a SQLite database, applies
examples/programs/coffee-chain.toml as tenant `demo`, and simulates the club's last
months: enrollments, purchases (busier weekends and December), anonymous purchases,
refunds, redemptions and members going dormant, with the nightly jobs. It ends with
`ledger verify`, creates an admin API key for tenant `demo` (a new one each run), and
serves the API on --listen (default 127.0.0.1:8080) until Ctrl-C, printing the URL, the
key and curl commands to try. The address is taken first: if it is busy, the demo stops
before creating anything. --no-serve stops after printing them. --db is not used: the
demo has its own database.

Running it again reuses the folder and skips the simulation; --fresh rebuilds it (only
the demo's own files in DIR are deleted).

Examples:
  cargo run --release -- demo
  patron demo --dir /tmp/club --members 500 --months 6 --seed 7 --fresh
  patron demo --listen 127.0.0.1:9000
  patron demo --no-serve";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DemoArgs {
    /// Folder for the demo database (created if missing)
    #[arg(long, value_name = "DIR", default_value = "patron-demo")]
    pub dir: PathBuf,
    /// How many members join over the period. Every purchase is a real ledger transaction:
    /// the default builds in under a minute on two cores
    #[arg(long, value_name = "N", default_value_t = 1500, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub members: u32,
    /// How many months of activity to simulate, ending yesterday
    #[arg(long, value_name = "M", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=36))]
    pub months: u32,
    /// Delete the demo database in DIR and build a new one
    #[arg(long)]
    pub fresh: bool,
    /// Seed of the random generator: the same seed builds the same club
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,
    /// Address and port the API listens on
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Build (or reuse) the club and make an API key, but do not start the server
    #[arg(long)]
    pub no_serve: bool,
}

pub async fn run(settings: &Settings, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let listener = listen_first(&args).await?;
    let folder = DemoFolder::open(&args.dir)?;
    if let Some(built) = folder.finished()?
        && !args.fresh
    {
        eprintln!(
            "reusing the demo in {} ({built}); pass --fresh to build it again",
            folder.dir.display()
        );
        let (engine, tenant, clean) = reopen(&folder).await?;
        print_next_steps(&folder.database);
        return serve_demo(settings, &args, listener, engine, &tenant, clean).await;
    }
    folder.start_building(args.fresh)?;
    let (tenant, clean) = build(&folder, &args, started).await?;
    folder.mark_complete(&args)?;
    print_next_steps(&folder.database);
    let (engine, _) = connect_and_migrate(&folder.url).await?;
    serve_demo(settings, &args, listener, engine, &tenant, clean).await
}

/// The demo's folder: its database and the marker that says the database is the demo's,
/// written before the simulation starts ("in progress") and rewritten when it ends
/// ("complete"). A database without it is someone else's and is never deleted.
struct DemoFolder {
    dir: PathBuf,
    database: PathBuf,
    marker: PathBuf,
    url: String,
}

impl DemoFolder {
    fn open(dir: &Path) -> anyhow::Result<DemoFolder> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the demo folder {}", dir.display()))?;
        let database = dir.join(DATABASE_FILE);
        Ok(DemoFolder {
            dir: dir.to_path_buf(),
            marker: dir.join(MARKER_FILE),
            url: format!("sqlite://{}", database.display()),
            database,
        })
    }

    /// How a finished demo was built (the marker's words), or `None` when there is no demo
    /// yet or it was left unfinished; an error when the database is not the demo's.
    fn finished(&self) -> anyhow::Result<Option<String>> {
        let marker_text = std::fs::read_to_string(&self.marker).ok();
        if self.database.exists() && marker_text.is_none() {
            anyhow::bail!(
                "{} exists but was not made by `patron demo`; choose another --dir, or move that database away",
                self.database.display()
            );
        }
        Ok(marker_text
            .filter(|text| self.database.exists() && text.starts_with(MARKER_COMPLETE))
            .map(|text| text.trim_start_matches(MARKER_COMPLETE).trim().to_string()))
    }

    /// Deletes what an earlier demo left and marks the folder "in progress".
    fn start_building(&self, fresh: bool) -> anyhow::Result<()> {
        if self.database.exists() && fresh {
            eprintln!(
                "--fresh: deleting the demo database in {}",
                self.dir.display()
            );
        } else if self.database.exists() {
            eprintln!(
                "{} holds an unfinished demo database; building it again",
                self.dir.display()
            );
        }
        remove_demo_files(&self.dir)?;
        std::fs::write(
            &self.marker,
            "in progress: `patron demo` is building this folder\n",
        )
        .with_context(|| format!("cannot write {}", self.marker.display()))
    }

    fn mark_complete(&self, args: &DemoArgs) -> anyhow::Result<()> {
        std::fs::write(
            &self.marker,
            format!(
                "{MARKER_COMPLETE} built by `patron demo --members {} --months {} --seed {}` on {}\n",
                args.members,
                args.months,
                args.seed,
                Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
            ),
        )
        .with_context(|| format!("cannot write {}", self.marker.display()))
    }
}

/// Opens a finished demo, says what it holds and verifies its ledger: (engine, tenant, clean).
async fn reopen(folder: &DemoFolder) -> anyhow::Result<(Engine, Tenant, bool)> {
    let (engine, _) = connect_and_migrate(&folder.url).await?;
    let tenant = crate::store::tenant(&engine, TENANT).await?;
    let members = engine.count_members(&tenant).await?;
    println!(
        "Demo club in {}: tenant {TENANT}, {} members",
        folder.dir.display(),
        thousands(members)
    );
    let clean = verify_and_print(&engine, &tenant, engine.now())
        .await?
        .is_clean();
    Ok((engine, tenant, clean))
}

/// The days to simulate: from `months` months before today (in the club's time zone) to
/// yesterday.
fn simulated_days(tz: &TimeZone, months: u32) -> anyhow::Result<Vec<Date>> {
    let today = Timestamp::now().to_zoned(tz.clone()).date();
    let first_day = today
        .checked_sub(jiff::Span::new().months(i64::from(months)))
        .context("cannot compute the demo's first day")?;
    let mut days = Vec::new();
    let mut day = first_day;
    while day < today {
        days.push(day);
        day = day.tomorrow().context("date out of range")?;
    }
    Ok(days)
}

/// Builds the club: the program applied, the simulation run, the ledger brought to the
/// present, the analytics computed, a summary printed and the ledger verified. Answers the
/// tenant and whether its ledger is clean.
async fn build(
    folder: &DemoFolder,
    args: &DemoArgs,
    started: Instant,
) -> anyhow::Result<(Tenant, bool)> {
    let program = parse_program(PROGRAM)
        .map_err(|d| anyhow::anyhow!("the embedded demo program does not validate: {d:?}"))?;
    let tz = program.tz();
    let days = simulated_days(&tz, args.months)?;
    let (Some(&first_day), Some(&last_day)) = (days.first(), days.last()) else {
        anyhow::bail!("the demo has no day to simulate");
    };
    eprintln!(
        "building the demo club in {}: {} members over {} month{} ({} to {}), seed {}",
        folder.dir.display(),
        thousands(args.members),
        args.months,
        if args.months == 1 { "" } else { "s" },
        first_day,
        last_day,
        args.seed
    );
    // One connection: the simulation is one sequential stream of units of work, and SQLite
    // has one writer anyway; a single connection keeps every query on the same worker thread.
    let options = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    let clock = ManualClock::new(
        at(&tz, first_day, 6 * 60)?
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or(Timestamp::UNIX_EPOCH),
    );
    let (engine, _) =
        connect_and_migrate_with(&folder.url, options, Arc::new(clock.clone())).await?;
    let (tenant, version, _) = engine
        .apply_program(TENANT, PROGRAM, ACTOR)
        .await
        .map_err(|e| match e {
            EngineError::Program(d) => {
                anyhow::anyhow!("the embedded demo program does not validate: {d:?}")
            }
            other => other.into(),
        })?;
    tracing::info!(version, "applied the demo program");

    let simulated = simulate(&engine, clock, &tenant, tz, days, args).await?;
    run_analytics_jobs(&engine, &tenant).await?;
    print_summary(&program, &simulated, folder, started);
    let clean = verify_and_print(&engine, &tenant, simulated.end)
        .await?
        .is_clean();
    engine.close().await;
    Ok((tenant, clean))
}

/// What the simulation did, over how many days, and the present it ended at.
struct Simulated {
    stats: Stats,
    days: usize,
    end: Timestamp,
}

/// Runs the simulation day by day, then brings the ledger to the real present (the jobs due
/// by then run).
async fn simulate(
    engine: &Engine,
    clock: ManualClock,
    tenant: &Tenant,
    tz: TimeZone,
    days: Vec<Date>,
    args: &DemoArgs,
) -> anyhow::Result<Simulated> {
    let mut sim = Simulation::new(engine, clock, tenant.clone(), tz, days, args)?;
    let cards_count = (args.members / 5).max(1);
    let (_, cards) = engine.issue_card_batch(tenant, cards_count, ACTOR).await?;
    sim.cards = cards;
    sim.cards.reverse(); // popped from the end: hand out the lowest numbers first
    sim.run().await?;

    // Bring the ledger to the real present and check it.
    let end = Timestamp::now().max(sim.clock.now());
    sim.clock.set(end);
    let final_jobs = engine.run_due_jobs(tenant).await?;
    sim.stats.add_jobs(&final_jobs);
    Ok(Simulated {
        days: sim.days.len(),
        stats: sim.stats,
        end,
    })
}

/// The analytics the console and the API show (RFV grid, segments, lifetime value) come from
/// jobs that run at night; runs them once now so the demo has them at once.
async fn run_analytics_jobs(engine: &Engine, tenant: &Tenant) -> anyhow::Result<()> {
    let worker = patron_engine::jobs::Worker::new(jiff::SignedDuration::from_secs(600));
    for kind in [
        patron_engine::jobs::JobKind::Segments,
        patron_engine::jobs::JobKind::Clv,
    ] {
        let report = engine.run_job_now(tenant, kind, &worker).await?;
        match &report.outcome {
            Ok(summary) => {
                tracing::info!(kind = %report.kind, %summary, "ran the demo's analytics job")
            }
            Err(error) => eprintln!("the {} job failed: {error}", report.kind),
        }
    }
    Ok(())
}

/// What the simulation made, in the club's own words for its points.
fn print_summary(program: &Program, simulated: &Simulated, folder: &DemoFolder, started: Instant) {
    let stats = &simulated.stats;
    let name = program
        .names
        .resolve(program.default_locale, program.default_locale);
    println!(
        "Demo club \"{name}\" (tenant {TENANT}) is ready in {}",
        folder.dir.display()
    );
    println!(
        "  {} members, {} purchases ({} anonymous), {} refunds, {} redemptions",
        thousands(stats.enrolled),
        thousands(stats.purchases + stats.anonymous),
        thousands(stats.anonymous),
        thousands(stats.refunds),
        thousands(stats.redemptions)
    );
    let points = program
        .points_name
        .resolve(program.default_locale, program.default_locale);
    println!(
        "  {} {points} earned, {} expired by the nightly jobs, {} abandoned app holds released",
        thousands(stats.points_earned),
        thousands(stats.points_expired),
        thousands(stats.holds_released)
    );
    println!(
        "  simulated {} days in {:.1} s",
        simulated.days,
        started.elapsed().as_secs_f64()
    );
}

/// Takes the demo's address before anything is built or created: a busy port fails at once,
/// not after the simulation with an admin key made and never shown. Connections arriving
/// while the club is built wait in the listen queue until it serves.
async fn listen_first(args: &DemoArgs) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    if args.no_serve {
        return Ok(None);
    }
    match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => Ok(Some(listener)),
        Err(error) => anyhow::bail!(
            "cannot listen on {} ({error}); choose another address with --listen, or --no-serve to build without serving; nothing was created",
            args.listen
        ),
    }
}

/// Makes an admin API key, prints how to use it, and serves the API until Ctrl-C (unless
/// `--no-serve`).
async fn serve_demo(
    settings: &Settings,
    args: &DemoArgs,
    listener: Option<tokio::net::TcpListener>,
    engine: Engine,
    tenant: &Tenant,
    clean: bool,
) -> anyhow::Result<ExitCode> {
    let code = if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    let (key, secret) = engine
        .create_api_key(tenant, Scope::Admin, "demo admin key", ACTOR)
        .await?;
    tracing::info!(key = key.id, "created the demo's admin API key");
    let member = engine
        .list_members(tenant, None, 1)
        .await?
        .into_iter()
        .next()
        .map_or_else(|| "MEMBER_ID".to_string(), |m| m.id);
    let config = settings.server_config(Some(args.listen));
    let address = match &listener {
        Some(listener) => listener.local_addr()?,
        None => config.listen,
    };
    let url = format!("http://{address}");
    let document = format!("demo-{}", Timestamp::now().as_millisecond());
    println!();
    match &listener {
        Some(_) => println!("The API is serving at {url} (Ctrl-C stops it)"),
        None => println!(
            "--no-serve: the API is not running; start it with: patron --db sqlite://{} serve --listen {address}",
            args.dir.join(DATABASE_FILE).display()
        ),
    }
    println!("  API reference: {url}/docs");
    println!("  OpenAPI:       {url}/openapi.json");
    println!();
    println!("Try (this admin key of tenant {TENANT} is shown only now):");
    println!("  curl -H \"Authorization: Bearer {secret}\" \"{url}/v1/members?limit=5\"");
    println!("  curl -H \"Authorization: Bearer {secret}\" {url}/v1/members/{member}/balance");
    println!(
        "  curl -X POST -H \"Authorization: Bearer {secret}\" -H \"Content-Type: application/json\" -H \"Idempotency-Key: {document}\" {url}/v1/purchases -d '{{\"document_id\":\"{document}\",\"member_id\":\"{member}\",\"store_id\":\"{store}\",\"channel\":\"pos\",\"currency\":\"USD\",\"lines\":[{{\"sku\":\"LATTE-16\",\"category\":\"coffee\",\"quantity\":\"1\",\"unit_price_minor\":545}}]}}'",
        store = STORES[0]
    );
    println!();
    println!("API key:");
    println!("{secret}");
    let Some(listener) = listener else {
        engine.close().await;
        return Ok(code);
    };
    tracing::info!(%address, "listening");
    eprintln!("listening on {url}");
    serve_until_signal(listener, engine, config).await?;
    Ok(code)
}

/// Deletes the demo's own files (the database, its WAL files and the marker), nothing else.
fn remove_demo_files(dir: &Path) -> anyhow::Result<()> {
    for name in [
        MARKER_FILE,
        DATABASE_FILE,
        "patron.db-wal",
        "patron.db-shm",
        "patron.db-journal",
    ] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot delete {}", path.display()))
                );
            }
        }
    }
    Ok(())
}

fn print_next_steps(database: &Path) {
    // From a cargo checkout suggest `cargo run`, otherwise the installed binary.
    let from_cargo = std::env::current_exe()
        .map(|p| p.components().any(|c| c.as_os_str() == "target"))
        .unwrap_or(false);
    let patron = if from_cargo {
        "cargo run --release --"
    } else {
        "patron"
    };
    let db = format!("--db sqlite://{}", database.display());
    println!();
    println!("Database: {}", database.display());
    println!();
    println!("Try:");
    println!("  {patron} {db} ledger verify --tenant {TENANT}");
    println!("  {patron} {db} program show --tenant {TENANT}");
    println!("  {patron} {db} program history --tenant {TENANT}");
    println!("  {patron} {db} tenants list");
    println!("  {patron} {db} jobs run --tenant {TENANT}");
}
