//! Load over a real socket: an open-loop generator posts purchases (each for a distinct
//! member) at a fixed rate, and the same generator hits `/healthz` at the same rate, in the
//! same run, on SQLite and PostgreSQL. Latency is measured from each request's *scheduled*
//! send time, so a server that falls behind cannot hide its queue (no coordinated omission).
//!
//! `cargo bench -p patron-bench --bench load`; `PATRON_LOAD_RATE` (default 500 requests/s),
//! `PATRON_LOAD_SECONDS` (default 10); `PATRON_LOAD_WARM_UP` (default 500: untimed purchases
//! before the run, then PostgreSQL's `ANALYZE`; 0 for a database created seconds before);
//! `PATRON_LOAD_WARM_SECONDS` (default 1: untimed purchases over HTTP at the same rate
//! first, so the server's pool is open and its statements prepared; 0 for a cold server);
//! `PATRON_LOAD_DUMP=FILE` appends each request's latency in schedule order (one run after
//! another, each ended by `END`), to see when in a run the slow ones fell;
//! `RUST_LOG=sqlx::query=debug` logs every statement; PostgreSQL when
//! `PATRON_BENCH_POSTGRES_URL` or `PATRON_TEST_POSTGRES_URL` is set;
//! `PATRON_BENCH_EXPERIMENT_SQL` (see `patron_bench::experiment`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use patron_engine::keys::Scope;
use patron_engine::{Engine, PurchaseLineRequest, PurchaseRequest, SystemClock};
use patron_http::ServerConfig;
use patron_store::testing::TestDatabase;

const COFFEE: &str = include_str!("../../examples/programs/coffee-chain.toml");

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    sent: usize,
    ok: usize,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Sends `rate × seconds` requests made by `make(i)` on a fixed schedule.
async fn open_loop<F>(rate: u64, seconds: u64, make: F) -> Stats
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let request = make(i);
        handles.push(tokio::spawn(async move {
            let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
            (ok, scheduled.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut ok = 0;
    for handle in handles {
        let (success, latency) = handle.await.unwrap();
        ok += usize::from(success);
        latencies.push(latency);
    }
    let elapsed = start.elapsed();
    if let Ok(path) = std::env::var("PATRON_LOAD_DUMP") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for (i, latency) in latencies.iter().enumerate() {
            writeln!(file, "{i} {:.3}", latency.as_secs_f64() * 1000.0).unwrap();
        }
        writeln!(file, "END").unwrap();
    }
    latencies.sort_unstable();
    Stats {
        sent: total,
        ok,
        throughput: ok as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    }
}

async fn run(db: &TestDatabase, label: &str, rate: u64, seconds: u64) {
    let engine = Engine::new(db.store.clone(), Arc::new(SystemClock));
    let (tenant, _, _) = engine.apply_program("load", COFFEE, "bench").await.unwrap();
    let (_, secret) = engine
        .create_api_key(&tenant, Scope::Admin, "load", "bench")
        .await
        .unwrap();
    let total = (rate * seconds) as usize;
    // The server's own warm-up over HTTP, not timed: its pool opens its connections and
    // prepares its statements, as a server that has been running has.
    let warm_seconds = env_u64("PATRON_LOAD_WARM_SECONDS", 1);
    let warm_requests = (rate * warm_seconds) as usize;
    let mut members = Vec::with_capacity(total + warm_requests);
    for i in 0..total + warm_requests {
        members.push(
            patron_bench::enroll_at_pos(&engine, &tenant, format!("load-{i}"))
                .await
                .unwrap(),
        );
    }

    // Warm-up, not timed: a club with some history and, on PostgreSQL, the statistics a
    // running database has (`settle_statistics`). `PATRON_LOAD_WARM_UP=0` measures a
    // database created seconds before instead.
    let warm_up = env_u64("PATRON_LOAD_WARM_UP", 500) as usize;
    for i in 0..warm_up {
        let member = patron_bench::enroll_at_pos(&engine, &tenant, format!("warm-{i}"))
            .await
            .unwrap();
        let purchase = PurchaseRequest {
            document_id: format!("warm-doc-{i}"),
            member_id: Some(member),
            store_id: "store-1".into(),
            channel: "pos".into(),
            occurred_at: None,
            currency: "USD".into(),
            lines: vec![PurchaseLineRequest {
                sku: "latte".into(),
                category: "coffee".into(),
                quantity: "1".into(),
                unit_price_minor: 475,
                discount_minor: 0,
            }],
        };
        engine
            .post_purchase(&tenant, &purchase, None)
            .await
            .unwrap();
    }
    if warm_up > 0 {
        patron_bench::settle_statistics(&db.store).await.unwrap();
    }

    // The server gets its own runtime and threads, like a separate process would.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Its own pool too: connections belong to the runtime that opened them.
    let server_engine = Engine::new(db.reopen().await.unwrap(), Arc::new(SystemClock));
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let config = ServerConfig {
                rate_limit_per_key_per_second: 0,
                rate_limit_per_ip_per_second: 0,
                ..ServerConfig::default()
            };
            patron_http::serve_on(listener, server_engine, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let base = format!("http://{address}");
    let post = |i: usize| {
        let body = serde_json::json!({
            "document_id": format!("load-doc-{i}"),
            "member_id": members[i],
            "store_id": "store-1",
            "channel": "pos",
            "currency": "USD",
            "lines": [{"sku": "latte", "category": "coffee", "quantity": "1", "unit_price_minor": 475}]
        });
        client
            .post(format!("{base}/v1/purchases"))
            .bearer_auth(&secret)
            .header("Idempotency-Key", format!("load-{i}"))
            .json(&body)
    };
    if warm_seconds > 0 {
        let warm = open_loop(rate, warm_seconds, |i| post(total + i)).await;
        assert_eq!(warm.ok, warm.sent, "the warm-up purchases succeed");
    }
    let health = open_loop(rate, seconds, |_| client.get(format!("{base}/healthz"))).await;
    let purchases = open_loop(rate, seconds, post).await;
    let _ = stop.send(());
    server.join().unwrap();

    let report = db
        .store
        .verify_ledger(tenant.id, jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.discrepancies);
    for (what, stats) in [
        ("GET /healthz", &health),
        ("POST /v1/purchases", &purchases),
    ] {
        println!(
            "| {label} | {what} | {rate} | {}/{} | {:.0} | {:.2} | {:.2} |",
            stats.ok, stats.sent, stats.throughput, stats.p50_ms, stats.p99_ms
        );
    }
    println!(
        "| {label} | purchase p99 / healthz p99 | | | | | {:.2}× |",
        purchases.p99_ms / health.p99_ms
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `RUST_LOG=sqlx::query=debug` shows every statement (with a low rate, to count them).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rate = env_u64("PATRON_LOAD_RATE", 500);
    let seconds = env_u64("PATRON_LOAD_SECONDS", 10);
    println!(
        "open loop at {rate} requests/s for {seconds} s each, latency from the scheduled send time\n"
    );
    println!("| backend | request | rate/s | ok/sent | throughput/s | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let sqlite = patron_store::testing::sqlite().await.unwrap();
    run(&sqlite, "SQLite", rate, seconds).await;
    sqlite.cleanup().await;
    let url = std::env::var("PATRON_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("PATRON_TEST_POSTGRES_URL"));
    match url {
        Ok(url) => {
            let pg = patron_store::testing::postgres_at(&url).await;
            patron_bench::experiment(&pg.store).await.unwrap();
            run(&pg, "PostgreSQL", rate, seconds).await;
            pg.cleanup().await;
        }
        Err(_) => eprintln!(
            "skipped: PostgreSQL (set PATRON_BENCH_POSTGRES_URL or PATRON_TEST_POSTGRES_URL)"
        ),
    }
}
