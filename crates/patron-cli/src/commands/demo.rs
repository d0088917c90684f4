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

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use patron_domain::program::parse_program;
use patron_engine::keys::Scope;
use patron_engine::{
    Clock, ConsentRequest, Engine, EngineError, EnrollRequest, ManualClock, ProfileFields,
    PurchaseLineRequest, PurchaseRequest, RedeemRequest, RefundLineRequest, RefundRequest,
};
use patron_store::tenants::Tenant;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::commands::ledger::verify_and_print;
use crate::commands::serve::serve_until_signal;
use crate::settings::{DEFAULT_LISTEN, Settings};
use crate::store::{connect_and_migrate, connect_and_migrate_with, thousands};

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
    let dir = args.dir.clone();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the demo folder {}", dir.display()))?;
    let database = dir.join(DATABASE_FILE);
    let marker = dir.join(MARKER_FILE);
    let url = format!("sqlite://{}", database.display());

    // The marker says the database is the demo's: written before the simulation starts
    // ("in progress") and rewritten when it ends ("complete"). A database without it is
    // someone else's and is never deleted.
    let marker_text = std::fs::read_to_string(&marker).ok();
    let exists = database.exists();
    if exists && marker_text.is_none() {
        anyhow::bail!(
            "{} exists but was not made by `patron demo`; choose another --dir, or move that database away",
            database.display()
        );
    }
    let finished = exists
        && marker_text
            .as_deref()
            .is_some_and(|t| t.starts_with(MARKER_COMPLETE));
    if finished && !args.fresh {
        eprintln!(
            "reusing the demo in {} ({}); pass --fresh to build it again",
            dir.display(),
            marker_text
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches(MARKER_COMPLETE)
                .trim()
        );
        let (store, _) = connect_and_migrate(&url).await?;
        let engine = Engine::new(store, Arc::new(patron_engine::SystemClock));
        let tenant = crate::store::tenant(&engine, TENANT).await?;
        let members = engine.store().count_members(tenant.id).await?;
        println!(
            "Demo club in {}: tenant {TENANT}, {} members",
            dir.display(),
            thousands(members)
        );
        let clean = verify_and_print(engine.store(), &tenant, engine.now())
            .await?
            .is_clean();
        print_next_steps(&database);
        return serve_demo(settings, &args, listener, engine, &tenant, clean).await;
    }
    if exists && args.fresh {
        eprintln!("--fresh: deleting the demo database in {}", dir.display());
    } else if exists {
        eprintln!(
            "{} holds an unfinished demo database; building it again",
            dir.display()
        );
    }
    remove_demo_files(&dir)?;
    std::fs::write(
        &marker,
        "in progress: `patron demo` is building this folder\n",
    )
    .with_context(|| format!("cannot write {}", marker.display()))?;

    let program = parse_program(PROGRAM)
        .map_err(|d| anyhow::anyhow!("the embedded demo program does not validate: {d:?}"))?;
    let tz = program.tz();
    let today = Timestamp::now().to_zoned(tz.clone()).date();
    let first_day = today
        .checked_sub(jiff::Span::new().months(i64::from(args.months)))
        .context("cannot compute the demo's first day")?;
    let mut days = Vec::new();
    let mut day = first_day;
    while day < today {
        days.push(day);
        day = day.tomorrow().context("date out of range")?;
    }

    eprintln!(
        "building the demo club in {}: {} members over {} month{} ({} to {}), seed {}",
        dir.display(),
        thousands(args.members),
        args.months,
        if args.months == 1 { "" } else { "s" },
        first_day,
        today.yesterday().unwrap_or(today),
        args.seed
    );
    // One connection: the simulation is one sequential stream of units of work, and SQLite
    // has one writer anyway; a single connection keeps every query on the same worker thread.
    let options = patron_store::StoreOptions {
        max_connections: 1,
        ..patron_store::StoreOptions::default()
    };
    let (store, _) = connect_and_migrate_with(&url, options).await?;
    let clock = ManualClock::new(
        at(&tz, first_day, 6 * 60)?
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or(Timestamp::UNIX_EPOCH),
    );
    let engine = Engine::new(store, Arc::new(clock.clone()));
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

    let mut sim = Simulation::new(&engine, clock, tenant.clone(), tz, days, &args)?;
    let cards_count = (args.members / 5).max(1);
    let (_, cards) = engine.issue_card_batch(&tenant, cards_count, ACTOR).await?;
    sim.cards = cards;
    sim.cards.reverse(); // popped from the end: hand out the lowest numbers first
    sim.run().await?;

    // Bring the ledger to the real present and check it.
    let end = Timestamp::now().max(sim.clock.now());
    sim.clock.set(end);
    let final_jobs = engine.run_due_jobs(&tenant).await?;
    sim.stats.add_jobs(&final_jobs);
    // The analytics the console and the API show (RFV grid, segments, lifetime value) come
    // from jobs that run at night; run them once now so the demo has them at once.
    let worker = patron_engine::jobs::Worker::new(jiff::SignedDuration::from_secs(600));
    for kind in [
        patron_engine::jobs::JobKind::Segments,
        patron_engine::jobs::JobKind::Clv,
    ] {
        let report = engine.run_job_now(&tenant, kind, &worker).await?;
        match &report.outcome {
            Ok(summary) => {
                tracing::info!(kind = %report.kind, %summary, "ran the demo's analytics job")
            }
            Err(error) => eprintln!("the {} job failed: {error}", report.kind),
        }
    }

    let stats = &sim.stats;
    let name = program
        .names
        .resolve(program.default_locale, program.default_locale);
    println!(
        "Demo club \"{name}\" (tenant {TENANT}) is ready in {}",
        dir.display()
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
        sim.days.len(),
        started.elapsed().as_secs_f64()
    );
    let clean = verify_and_print(engine.store(), &tenant, end)
        .await?
        .is_clean();
    engine.store().close().await;
    std::fs::write(
        &marker,
        format!(
            "{MARKER_COMPLETE} built by `patron demo --members {} --months {} --seed {}` on {}\n",
            args.members,
            args.months,
            args.seed,
            Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
        ),
    )
    .with_context(|| format!("cannot write {}", marker.display()))?;
    print_next_steps(&database);
    let (store, _) = connect_and_migrate(&url).await?;
    let engine = Engine::new(store, Arc::new(patron_engine::SystemClock));
    serve_demo(settings, &args, listener, engine, &tenant, clean).await
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
        .store()
        .list_members(tenant.id, None, 1)
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
        engine.store().close().await;
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

/// The instant of `minute` minutes after midnight on `date` in `tz`.
fn at(tz: &TimeZone, date: Date, minute: u32) -> anyhow::Result<Timestamp> {
    let hour = i8::try_from(minute / 60).unwrap_or(23).min(23);
    let minute = i8::try_from(minute % 60).unwrap_or(0);
    Ok(date
        .at(hour, minute, 0, 0)
        .to_zoned(tz.clone())?
        .timestamp())
}

// ----- the club's world -----

const STORES: &[&str] = &[
    "nyc-soho",
    "nyc-midtown",
    "nyc-upper-east",
    "bk-williamsburg",
    "bk-park-slope",
    "jc-grove-st",
];

/// (sku, category, price in cents)
type Item = (&'static str, &'static str, i64);
const DRINKS: &[Item] = &[
    ("DRIP-12", "coffee", 275),
    ("DRIP-16", "coffee", 325),
    ("LATTE-12", "coffee", 495),
    ("LATTE-16", "coffee", 545),
    ("CAPPUCCINO-12", "coffee", 475),
    ("COLD-BREW-16", "coffee", 525),
    ("MOCHA-12", "coffee", 545),
    ("AMERICANO-12", "coffee", 375),
    ("CHAI-LATTE-12", "tea", 475),
    ("GREEN-TEA-12", "tea", 325),
];
const WINTER_DRINKS: &[Item] = &[
    ("PEPPERMINT-MOCHA-12", "coffee", 595),
    ("GINGERBREAD-LATTE-12", "coffee", 595),
];
const SUMMER_DRINKS: &[Item] = &[
    ("ICED-LATTE-16", "coffee", 545),
    ("NITRO-COLD-BREW-16", "coffee", 575),
];
const BAKERY: &[Item] = &[
    ("CROISSANT", "bakery", 375),
    ("BLUEBERRY-MUFFIN", "bakery", 325),
    ("SCONE", "bakery", 350),
    ("COOKIE", "bakery", 250),
    ("BANANA-BREAD", "bakery", 395),
];
const FOOD: &[Item] = &[
    ("BACON-EGG-CHEESE", "sandwiches", 695),
    ("TURKEY-PESTO", "sandwiches", 895),
    ("AVOCADO-TOAST", "sandwiches", 795),
];
const RETAIL: &[Item] = &[
    ("HOUSE-BLEND-1LB", "beans", 1699),
    ("ESPRESSO-1LB", "beans", 1799),
    ("MUG", "merch", 1495),
    ("TUMBLER", "merch", 2495),
];
const GIFT_CARDS: &[Item] = &[
    ("GIFT-CARD-25", "gift_cards", 2500),
    ("GIFT-CARD-50", "gift_cards", 5000),
];

const FIRST_NAMES: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Elijah",
    "Sophia",
    "James",
    "Isabella",
    "William",
    "Mia",
    "Benjamin",
    "Charlotte",
    "Lucas",
    "Amelia",
    "Henry",
    "Harper",
    "Alexander",
    "Evelyn",
    "Daniel",
    "Abigail",
    "Mateo",
    "Emily",
    "Jackson",
    "Sofia",
    "Sebastian",
    "Aaliyah",
    "Jack",
    "Camila",
    "Aiden",
    "Priya",
    "Wei",
    "Fatima",
    "Diego",
    "Yuki",
    "Kwame",
    "Noa",
    "Ravi",
    "Chloe",
    "Omar",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Patel",
    "Chen",
    "Kim",
    "Nguyen",
    "Cohen",
    "Okafor",
    "Silva",
    "Rossi",
    "Murphy",
    "Kowalski",
];
const AREA_CODES: &[&str] = &["212", "646", "718", "917", "347", "201"];
const CONSENT_TEXT: &str =
    "Yes, send me Northside Coffee offers and news. I can unsubscribe at any time.";

/// Relative traffic by weekday, Monday first.
const WEEKDAY_FACTOR: [f64; 7] = [0.9, 0.9, 0.95, 1.0, 1.1, 1.35, 1.2];
/// Relative traffic by month, January first: a slow January, a busy December.
const MONTH_FACTOR: [f64; 12] = [
    0.82, 0.88, 0.95, 1.0, 1.0, 0.97, 0.92, 0.9, 1.0, 1.05, 1.12, 1.38,
];
/// Weights of the opening hours 6:00 to 19:00 on weekdays (a morning rush) and weekends.
const WEEKDAY_HOURS: [u32; 14] = [5, 13, 16, 11, 7, 6, 9, 7, 5, 6, 5, 4, 3, 2];
const WEEKEND_HOURS: [u32; 14] = [1, 4, 9, 13, 13, 10, 10, 8, 7, 7, 6, 5, 4, 2];

/// Share of purchases that are anonymous (no card shown).
const ANONYMOUS_SHARE: f64 = 0.25;
const REFUND_SHARE: f64 = 0.03;
/// 100 beans buy a drink ($2 off); 250 a drink and a pastry.
const REWARDS: &[(i64, &str)] = &[(100, "Free drink"), (250, "Drink and pastry")];

#[derive(Debug, Clone, Copy)]
enum Habit {
    /// Most mornings.
    Regular,
    /// A couple of times a month.
    Occasional,
    /// Came once or twice.
    OneOff,
}

#[derive(Debug)]
struct PlannedMember {
    join_day: usize,
    /// Visits per week when active.
    rate: f64,
    home_store: usize,
    /// Starting this day, visits fade out.
    fades_from: Option<usize>,
    id: Option<String>,
    /// Spendable beans as the last receipt said.
    available: i64,
}

#[derive(Debug)]
enum Event {
    Enroll(usize),
    Visit(usize),
    Anonymous,
    Refund {
        purchase_id: String,
        member: Option<usize>,
        lines: Option<Vec<RefundLineRequest>>,
    },
}

#[derive(Debug, Default)]
struct Stats {
    enrolled: u64,
    purchases: u64,
    anonymous: u64,
    refunds: u64,
    redemptions: u64,
    points_earned: i64,
    points_expired: i64,
    holds_released: i64,
    rejections: u64,
}

/// Where the simulation's time goes, per kind of call (logged at debug level).
#[derive(Debug, Default)]
struct Timings {
    jobs: std::time::Duration,
    enroll: std::time::Duration,
    purchase: std::time::Duration,
    redeem: std::time::Duration,
    refund: std::time::Duration,
}

impl Stats {
    fn add_jobs(&mut self, report: &patron_engine::JobReport) {
        self.points_expired += report.points_expired;
        self.holds_released += report.holds_released;
    }
}

struct Simulation<'e> {
    engine: &'e Engine,
    clock: ManualClock,
    tenant: Tenant,
    tz: TimeZone,
    days: Vec<Date>,
    rng: StdRng,
    members: Vec<PlannedMember>,
    cards: Vec<String>,
    /// Refunds planned for later: (when, event).
    refunds: Vec<(Timestamp, Event)>,
    document_seq: u64,
    stats: Stats,
    timings: Timings,
}

impl<'e> Simulation<'e> {
    fn new(
        engine: &'e Engine,
        clock: ManualClock,
        tenant: Tenant,
        tz: TimeZone,
        days: Vec<Date>,
        args: &DemoArgs,
    ) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(args.seed);
        let day_count = days.len().max(1);
        let launch_days = day_count.min(7);
        let mut members = Vec::with_capacity(args.members as usize);
        for _ in 0..args.members {
            // A launch burst in the first week, then steady sign-ups, busier on busy days.
            let join_day = if rng.random_bool(0.12) {
                rng.random_range(0..launch_days)
            } else {
                loop {
                    let candidate = rng.random_range(0..day_count);
                    if rng.random_bool(day_factor(days[candidate]) / 1.9) {
                        break candidate;
                    }
                }
            };
            // Most members of a loyalty club are occasional or one-off guests; a few regulars
            // carry the visits. (Rates are tuned so the default club builds in well under a
            // minute: every purchase is a real ledger transaction.)
            let habit = match rng.random_range(0..100) {
                0..9 => Habit::Regular,
                9..48 => Habit::Occasional,
                _ => Habit::OneOff,
            };
            let rate = match habit {
                Habit::Regular => rng.random_range(0.7..1.4),
                Habit::Occasional => rng.random_range(0.1..0.35),
                Habit::OneOff => rng.random_range(0.005..0.03),
            };
            // A third of members drift away some weeks or months after joining.
            let fades_from = rng
                .random_bool(0.33)
                .then(|| join_day + rng.random_range(14..200));
            members.push(PlannedMember {
                join_day,
                rate,
                home_store: rng.random_range(0..STORES.len()),
                fades_from,
                id: None,
                available: 0,
            });
        }
        Ok(Simulation {
            engine,
            clock,
            tenant,
            tz,
            days,
            rng,
            members,
            cards: Vec::new(),
            refunds: Vec::new(),
            document_seq: 0,
            stats: Stats::default(),
            timings: Timings::default(),
        })
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let bar = ProgressBar::with_draw_target(
            Some(self.days.len() as u64),
            if std::io::stderr().is_terminal() {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} simulating [{bar:30}] {pos}/{len} days, {msg} ({eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        for day_index in 0..self.days.len() {
            let date = self.days[day_index];
            self.simulate_day(day_index, date)
                .await
                .with_context(|| format!("the demo simulation failed on {date}"))?;
            bar.set_position(day_index as u64 + 1);
            bar.set_message(format!(
                "{} members, {} purchases",
                thousands(self.stats.enrolled),
                thousands(self.stats.purchases + self.stats.anonymous)
            ));
        }
        bar.finish_and_clear();
        tracing::debug!(timings = ?self.timings, "where the demo's time went");
        if self.stats.rejections > 0 {
            tracing::info!(
                rejections = self.stats.rejections,
                "requests the engine refused during the demo (expected: stale balances)"
            );
        }
        Ok(())
    }

    async fn simulate_day(&mut self, day_index: usize, date: Date) -> anyhow::Result<()> {
        // The nightly jobs, before the shops open.
        self.clock.set(at(&self.tz, date, 3 * 60)?);
        let started = Instant::now();
        let report = self.engine.run_due_jobs(&self.tenant).await?;
        self.timings.jobs += started.elapsed();
        self.stats.add_jobs(&report);

        let factor = day_factor(date);
        let weekend = date.weekday().to_monday_zero_offset() >= 5;
        let christmas = date.month() == 12 && date.day() == 25;
        let mut events: Vec<(Timestamp, Event)> = Vec::new();
        for index in 0..self.members.len() {
            let member = &self.members[index];
            if member.join_day == day_index {
                let minute = self.minute_of_day(weekend);
                events.push((at(&self.tz, date, minute)?, Event::Enroll(index)));
                continue;
            }
            if member.join_day > day_index {
                continue;
            }
            let fade = match member.fades_from {
                Some(from) if day_index > from => (-((day_index - from) as f64) / 10.0).exp(),
                _ => 1.0,
            };
            let probability =
                (member.rate / 7.0 * factor * fade * if christmas { 0.25 } else { 1.0 }).min(0.95);
            if self.rng.random_bool(probability) {
                let minute = self.minute_of_day(weekend);
                events.push((at(&self.tz, date, minute)?, Event::Visit(index)));
            }
        }
        // Anonymous purchases: about a quarter of all, so a third of the identified ones.
        let identified = events.len() as f64;
        let expected = identified * ANONYMOUS_SHARE / (1.0 - ANONYMOUS_SHARE);
        let anonymous =
            expected.floor() as usize + usize::from(self.rng.random_bool(expected.fract()));
        for _ in 0..anonymous {
            let minute = self.minute_of_day(weekend);
            events.push((at(&self.tz, date, minute)?, Event::Anonymous));
        }
        // Refunds planned for today.
        let end_of_day = at(&self.tz, date, 23 * 60 + 59)?;
        let mut later = Vec::new();
        for (when, event) in self.refunds.drain(..) {
            if when <= end_of_day {
                events.push((when, event));
            } else {
                later.push((when, event));
            }
        }
        self.refunds = later;
        events.sort_by_key(|(when, _)| *when);

        for (when, event) in events {
            self.clock.set(when);
            match event {
                Event::Enroll(index) => {
                    self.enroll(index).await?;
                    // Many join at the till, buying something.
                    if self.rng.random_bool(0.5) {
                        self.clock.set(
                            when.checked_add(SignedDuration::from_mins(1))
                                .unwrap_or(when),
                        );
                        self.visit(index).await?;
                    }
                }
                Event::Visit(index) => self.visit(index).await?,
                Event::Anonymous => {
                    let store = self.rng.random_range(0..STORES.len());
                    self.purchase(None, store, "pos").await?;
                }
                Event::Refund {
                    purchase_id,
                    member,
                    lines,
                } => self.refund(&purchase_id, member, lines).await?,
            }
        }
        Ok(())
    }

    /// Minutes after midnight, following the day's rhythm.
    fn minute_of_day(&mut self, weekend: bool) -> u32 {
        let weights: &[u32] = if weekend {
            &WEEKEND_HOURS
        } else {
            &WEEKDAY_HOURS
        };
        let total: u32 = weights.iter().sum();
        let mut pick = self.rng.random_range(0..total.max(1));
        let mut hour = 6;
        for (offset, weight) in weights.iter().enumerate() {
            if pick < *weight {
                hour = 6 + offset as u32;
                break;
            }
            pick -= weight;
        }
        hour * 60 + self.rng.random_range(0..60)
    }

    fn next_document(&mut self, prefix: &str) -> String {
        self.document_seq += 1;
        format!("{prefix}-{:07}", self.document_seq)
    }

    async fn enroll(&mut self, index: usize) -> anyhow::Result<()> {
        let rng = &mut self.rng;
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let channel = match rng.random_range(0..100) {
            0..60 => "pos",
            60..85 => "web",
            85..90 => "phone",
            _ => "referral",
        };
        let phone = (rng.random_bool(0.6) && index < AREA_CODES.len() * 10_000).then(|| {
            format!(
                "+1 {} 555 {:04}",
                AREA_CODES[index % AREA_CODES.len()],
                index / AREA_CODES.len()
            )
        });
        let birthday = rng.random_bool(0.7).then(|| {
            format!(
                "{}-{:02}-{:02}",
                rng.random_range(1950..2006),
                rng.random_range(1..=12),
                rng.random_range(1..=28)
            )
        });
        let method = if channel == "web" { "web" } else { "pos" };
        let mut consents = vec![ConsentRequest {
            channel: "email".into(),
            topic: None,
            granted: rng.random_bool(0.65),
            method: method.into(),
            text_shown: CONSENT_TEXT.into(),
        }];
        if phone.is_some() && rng.random_bool(0.4) {
            consents.push(ConsentRequest {
                channel: "sms".into(),
                topic: None,
                granted: true,
                method: method.into(),
                text_shown: CONSENT_TEXT.into(),
            });
        }
        let card_number = if channel == "pos" && rng.random_bool(0.4) {
            self.cards.pop()
        } else {
            None
        };
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert(
            "favorite_drink".to_string(),
            serde_json::Value::String(DRINKS[rng.random_range(0..DRINKS.len())].0.to_string()),
        );
        let request = EnrollRequest {
            profile: ProfileFields {
                external_id: Some(format!("NS-{:06}", index + 1)),
                name: Some(format!("{first} {last}")),
                phone,
                email: Some(format!(
                    "{}.{}.{}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    index + 1
                )),
                birthday,
                locale: Some("en".into()),
                time_zone: None,
                attributes,
            },
            channel: channel.into(),
            card_number,
            consents,
        };
        let started = Instant::now();
        let member = self
            .engine
            .enroll(&self.tenant, &request, None)
            .await?
            .value;
        self.timings.enroll += started.elapsed();
        self.members[index].id = Some(member.id);
        self.stats.enrolled += 1;
        Ok(())
    }

    async fn visit(&mut self, index: usize) -> anyhow::Result<()> {
        let Some(member_id) = self.members[index].id.clone() else {
            return Ok(());
        };
        let store = if self.rng.random_bool(0.8) {
            self.members[index].home_store
        } else {
            self.rng.random_range(0..STORES.len())
        };
        let channel = if self.rng.random_bool(0.15) {
            "app"
        } else {
            "pos"
        };
        // Redeem at checkout: beans for a drink. App orders hold the beans and capture them
        // when the order is picked up; a few orders are never picked up and the nightly job
        // releases the hold.
        let available = self.members[index].available;
        let reward = REWARDS
            .iter()
            .rev()
            .find(|(points, _)| available >= *points && self.rng.random_bool(0.35));
        if let Some((points, description)) = reward.copied() {
            let hold = channel == "app";
            let request = RedeemRequest {
                points,
                hold,
                hold_minutes: hold.then_some(20),
                description: Some(description.to_string()),
            };
            let started = Instant::now();
            let redeemed = self
                .engine
                .redeem(&self.tenant, &member_id, &request, None)
                .await;
            self.timings.redeem += started.elapsed();
            match redeemed {
                Ok(redemption) => {
                    let redemption = redemption.value;
                    if let Some(balance) = &redemption.balance {
                        self.members[index].available = balance.available;
                    }
                    if hold && self.rng.random_bool(0.95) {
                        self.engine
                            .capture(&self.tenant, &redemption.id, None, None)
                            .await?;
                        self.stats.redemptions += 1;
                    } else if !hold {
                        self.stats.redemptions += 1;
                    }
                }
                Err(EngineError::Rejected(_) | EngineError::ReplayedRejection(_)) => {
                    self.stats.rejections += 1
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.purchase(Some(index), store, channel).await
    }

    fn basket(&mut self, month: i8) -> Vec<PurchaseLineRequest> {
        let rng = &mut self.rng;
        let mut items: Vec<Item> = Vec::new();
        if rng.random_bool(0.93) {
            let seasonal = match month {
                11 | 12 => WINTER_DRINKS,
                6..=8 => SUMMER_DRINKS,
                _ => &[],
            };
            let drink = if !seasonal.is_empty() && rng.random_bool(0.3) {
                seasonal[rng.random_range(0..seasonal.len())]
            } else {
                DRINKS[rng.random_range(0..DRINKS.len())]
            };
            items.push(drink);
        }
        if rng.random_bool(0.35) {
            items.push(BAKERY[rng.random_range(0..BAKERY.len())]);
        }
        if rng.random_bool(0.12) {
            items.push(FOOD[rng.random_range(0..FOOD.len())]);
        }
        let holidays = month == 12;
        if rng.random_bool(if holidays { 0.09 } else { 0.03 }) {
            items.push(RETAIL[rng.random_range(0..RETAIL.len())]);
        }
        if rng.random_bool(if holidays { 0.07 } else { 0.01 }) || items.is_empty() {
            items.push(GIFT_CARDS[rng.random_range(0..GIFT_CARDS.len())]);
        }
        items
            .into_iter()
            .map(|(sku, category, price)| {
                let quantity = if category == "coffee" && rng.random_bool(0.1) {
                    "2"
                } else {
                    "1"
                };
                PurchaseLineRequest {
                    sku: sku.to_string(),
                    category: category.to_string(),
                    quantity: quantity.to_string(),
                    unit_price_minor: price,
                    discount_minor: 0,
                }
            })
            .collect()
    }

    async fn purchase(
        &mut self,
        member: Option<usize>,
        store: usize,
        channel: &str,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let month = now.to_zoned(self.tz.clone()).month();
        let lines = self.basket(month);
        let line_count = lines.len();
        let request = PurchaseRequest {
            document_id: self.next_document(&format!("{}-R", STORES[store])),
            member_id: member.and_then(|i| self.members[i].id.clone()),
            store_id: STORES[store].to_string(),
            channel: channel.to_string(),
            occurred_at: None,
            currency: "USD".into(),
            lines,
        };
        let started = Instant::now();
        let receipt = self
            .engine
            .post_purchase(&self.tenant, &request, None)
            .await?
            .value;
        self.timings.purchase += started.elapsed();
        match member {
            Some(index) => {
                self.stats.purchases += 1;
                self.stats.points_earned += receipt.points;
                if let Some(balance) = &receipt.balance {
                    self.members[index].available = balance.available;
                }
            }
            None => self.stats.anonymous += 1,
        }
        if self.rng.random_bool(REFUND_SHARE) {
            // Most returns come back the same day or the next; a few take a couple of days.
            let after = SignedDuration::from_mins(self.rng.random_range(10..3 * 24 * 60));
            let lines = (line_count > 1 && self.rng.random_bool(0.4)).then(|| {
                vec![RefundLineRequest {
                    line_no: self.rng.random_range(1..=line_count as i64),
                    quantity: "1".into(),
                }]
            });
            let when = now.checked_add(after).unwrap_or(now);
            self.refunds.push((
                when,
                Event::Refund {
                    purchase_id: receipt.purchase_id,
                    member,
                    lines,
                },
            ));
        }
        Ok(())
    }

    async fn refund(
        &mut self,
        purchase_id: &str,
        member: Option<usize>,
        lines: Option<Vec<RefundLineRequest>>,
    ) -> anyhow::Result<()> {
        let request = RefundRequest {
            document_id: self.next_document("RET"),
            lines,
            occurred_at: None,
        };
        let started = Instant::now();
        let refunded = self
            .engine
            .refund(&self.tenant, purchase_id, &request, None)
            .await;
        self.timings.refund += started.elapsed();
        match refunded {
            Ok(receipt) => {
                self.stats.refunds += 1;
                if let (Some(index), Some(balance)) = (member, &receipt.value.balance) {
                    self.members[index].available = balance.available;
                }
            }
            Err(EngineError::Rejected(_) | EngineError::ReplayedRejection(_)) => {
                self.stats.rejections += 1
            }
            Err(error) => return Err(error.into()),
        }
        Ok(())
    }
}

/// How busy a day is, relative to an average day.
fn day_factor(date: Date) -> f64 {
    let weekday = WEEKDAY_FACTOR[date.weekday().to_monday_zero_offset() as usize % 7];
    let month = MONTH_FACTOR[(date.month() as usize).saturating_sub(1) % 12];
    weekday * month
}
