//! Purchase posting and member import against a plain INSERT of the same rows, measured in
//! the same run on the same database with the same durability settings. Purchases are also
//! compared with their core rows (purchase, lines, transfer, lot, wallet update) written as
//! plain statements in one transaction each.
//!
//! `cargo bench -p patron-bench --bench posting` (PostgreSQL too when
//! `PATRON_BENCH_POSTGRES_URL` or `PATRON_TEST_POSTGRES_URL` is set). Sizes:
//! `PATRON_BENCH_PURCHASES` (default 2000), `PATRON_BENCH_MEMBERS` (default 5000),
//! `PATRON_BENCH_WARM_UP` (untimed purchases per club before the rounds, default 200);
//! `PATRON_BENCH_EXPERIMENT_SQL` (see `patron_bench::experiment`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use patron_bench::{coffee_programs, median, rate, time};
use patron_engine::{Engine, ManualClock, PurchaseLineRequest, PurchaseRequest};
use patron_store::Backend;
use patron_store::testing::TestDatabase;

const ROUNDS: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn purchase(document_id: String, member_id: &str) -> PurchaseRequest {
    PurchaseRequest {
        document_id,
        member_id: Some(member_id.to_string()),
        store_id: "store-1".into(),
        channel: "pos".into(),
        occurred_at: None,
        currency: "USD".into(),
        lines: vec![
            PurchaseLineRequest {
                sku: "latte".into(),
                category: "coffee".into(),
                quantity: "1".into(),
                unit_price_minor: 475,
                discount_minor: 0,
            },
            PurchaseLineRequest {
                sku: "scone".into(),
                category: "bakery".into(),
                quantity: "2".into(),
                unit_price_minor: 325,
                discount_minor: 50,
            },
        ],
    }
}

struct Row {
    backend: &'static str,
    what: &'static str,
    baseline: f64,
    patron: f64,
}

async fn run(db: &TestDatabase, label: &'static str, purchases: usize, members: usize) -> Vec<Row> {
    let store = db.store.clone();
    let clock = ManualClock::new(jiff::Timestamp::now());
    let engine = Engine::new(store.clone(), Arc::new(clock));
    let (without_rules, with_rules) = coffee_programs();
    let (tenant, _, _) = engine
        .apply_program("bench", &without_rules, "bench")
        .await
        .unwrap();
    // The same columns a purchase row has, with its primary key and unique document index.
    for ddl in [
        "CREATE TABLE raw_purchases (tenant_id BIGINT NOT NULL, id TEXT NOT NULL, document_id TEXT NOT NULL, store_id TEXT NOT NULL, \
         member_id TEXT, occurred_at BIGINT NOT NULL, currency TEXT NOT NULL, total_minor BIGINT NOT NULL, PRIMARY KEY (tenant_id, id))",
        "CREATE UNIQUE INDEX raw_purchases_document ON raw_purchases (tenant_id, document_id)",
        "CREATE TABLE raw_members (tenant_id BIGINT NOT NULL, id TEXT NOT NULL, external_id TEXT, name TEXT, phone TEXT, \
         PRIMARY KEY (tenant_id, id))",
        "CREATE UNIQUE INDEX raw_members_external ON raw_members (tenant_id, external_id)",
        // The second baseline: the core rows a purchase writes, as plain statements.
        "CREATE TABLE raw_lines (tenant_id BIGINT NOT NULL, purchase_id TEXT NOT NULL, line_no BIGINT NOT NULL, \
         sku TEXT NOT NULL, category TEXT NOT NULL, quantity TEXT NOT NULL, unit_price_minor BIGINT NOT NULL, \
         discount_minor BIGINT NOT NULL, total_minor BIGINT NOT NULL, PRIMARY KEY (tenant_id, purchase_id, line_no))",
        "CREATE TABLE raw_transfers (id BIGINT PRIMARY KEY, tenant_id BIGINT NOT NULL, transfer_key TEXT NOT NULL, \
         debit_account BIGINT NOT NULL, credit_account BIGINT NOT NULL, amount BIGINT NOT NULL, code TEXT NOT NULL, \
         member_id TEXT, document_id TEXT, created_at BIGINT NOT NULL)",
        "CREATE UNIQUE INDEX raw_transfers_key ON raw_transfers (tenant_id, transfer_key)",
        "CREATE TABLE raw_lots (id BIGINT PRIMARY KEY, tenant_id BIGINT NOT NULL, account_id BIGINT NOT NULL, \
         transfer_id BIGINT NOT NULL, amount BIGINT NOT NULL, remaining BIGINT NOT NULL, expires_at BIGINT, \
         created_at BIGINT NOT NULL)",
        "CREATE TABLE raw_wallets (id BIGINT PRIMARY KEY, credits_posted BIGINT NOT NULL)",
    ] {
        sqlx::query(ddl).execute(store.pool()).await.unwrap();
    }
    let mut member_ids = Vec::new();
    for i in 0..50 {
        member_ids.push(
            patron_bench::enroll_at_pos(&engine, &tenant, format!("bench-{i}"))
                .await
                .unwrap(),
        );
    }

    // Warm-up, not timed: a club with some history, and PostgreSQL statistics that know it
    // (what autovacuum gives a running database). Without it PostgreSQL plans the purchase's
    // reads on freshly created, near-empty tables, caches those plans, and keeps them while
    // the tables grow during the run (a tier-metric read then scans the whole club's
    // purchases), which measures the bench's empty start rather than the code.
    for i in 0..warm_up() {
        let request = purchase(format!("w-{i}"), &member_ids[i % member_ids.len()]);
        engine
            .post_purchase(&tenant, &request, Some(&format!("wk-{i}")))
            .await
            .unwrap();
    }
    patron_bench::settle_statistics(&store).await.unwrap();

    for i in 0..member_ids.len() {
        sqlx::query("INSERT INTO raw_wallets (id, credits_posted) VALUES ($1, 0)")
            .bind(i as i64)
            .execute(store.pool())
            .await
            .unwrap();
    }

    let (mut raw, mut core, mut posted) = (Vec::new(), Vec::new(), Vec::new());
    let mut core_id = 0i64;
    for round in 0..ROUNDS {
        raw.push(
            time(async {
                for i in 0..purchases {
                    sqlx::query(
                        "INSERT INTO raw_purchases (tenant_id, id, document_id, store_id, member_id, occurred_at, currency, total_minor) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(tenant.id.0)
                    .bind(format!("raw-{round}-{i}"))
                    .bind(format!("doc-{round}-{i}"))
                    .bind("store-1")
                    .bind(&member_ids[i % member_ids.len()])
                    .bind(1_700_000_000_000_000i64)
                    .bind("USD")
                    .bind(1075i64)
                    .execute(store.pool())
                    .await
                    .unwrap();
                }
            })
            .await,
        );
        // The same purchase's core rows written plainly, one transaction each: the purchase,
        // its two lines, the earning transfer, its lot and the wallet's total.
        core.push(
            time(async {
                for i in 0..purchases {
                    core_id += 1;
                    let member = &member_ids[i % member_ids.len()];
                    let (id, at) = (format!("core-{round}-{i}"), 1_700_000_000_000_000i64);
                    let mut tx = store.begin_write().await.unwrap();
                    sqlx::query(
                        "INSERT INTO raw_purchases (tenant_id, id, document_id, store_id, member_id, occurred_at, currency, total_minor) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(tenant.id.0)
                    .bind(&id)
                    .bind(format!("core-doc-{round}-{i}"))
                    .bind("store-1")
                    .bind(member)
                    .bind(at)
                    .bind("USD")
                    .bind(1075i64)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    sqlx::query(
                        "INSERT INTO raw_lines (tenant_id, purchase_id, line_no, sku, category, quantity, unit_price_minor, \
                         discount_minor, total_minor) VALUES ($1, $2, 1, 'latte', 'coffee', '1', 475, 0, 475), \
                         ($1, $2, 2, 'scone', 'bakery', '2', 325, 50, 600)",
                    )
                    .bind(tenant.id.0)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    sqlx::query(
                        "INSERT INTO raw_transfers (id, tenant_id, transfer_key, debit_account, credit_account, amount, code, \
                         member_id, document_id, created_at) VALUES ($1, $2, $3, 1, $4, 10, 'earn', $5, $6, $7)",
                    )
                    .bind(core_id)
                    .bind(tenant.id.0)
                    .bind(format!("earn:{id}"))
                    .bind((i % member_ids.len()) as i64)
                    .bind(member)
                    .bind(&id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    sqlx::query(
                        "INSERT INTO raw_lots (id, tenant_id, account_id, transfer_id, amount, remaining, expires_at, created_at) \
                         VALUES ($1, $2, $3, $1, 10, 10, NULL, $4)",
                    )
                    .bind(core_id)
                    .bind(tenant.id.0)
                    .bind((i % member_ids.len()) as i64)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    sqlx::query("UPDATE raw_wallets SET credits_posted = credits_posted + 10 WHERE id = $1")
                        .bind((i % member_ids.len()) as i64)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            })
            .await,
        );
        posted.push(
            time(async {
                for i in 0..purchases {
                    let request =
                        purchase(format!("p-{round}-{i}"), &member_ids[i % member_ids.len()]);
                    engine
                        .post_purchase(&tenant, &request, Some(&format!("k-{round}-{i}")))
                        .await
                        .unwrap();
                }
            })
            .await,
        );
    }

    // The same purchases for a club with 20 CEL rules, against the rule-less club above.
    let (ruled, _, _) = engine
        .apply_program("bench-rules", &with_rules, "bench")
        .await
        .unwrap();
    let mut ruled_members = Vec::new();
    for i in 0..50 {
        ruled_members.push(
            patron_bench::enroll_at_pos(&engine, &ruled, format!("ruled-{i}"))
                .await
                .unwrap(),
        );
    }
    for i in 0..warm_up() {
        let request = purchase(format!("rw-{i}"), &ruled_members[i % ruled_members.len()]);
        engine
            .post_purchase(&ruled, &request, Some(&format!("rwk-{i}")))
            .await
            .unwrap();
    }
    patron_bench::settle_statistics(&store).await.unwrap();
    let mut with_rules_times = Vec::new();
    for round in 0..ROUNDS {
        with_rules_times.push(
            time(async {
                for i in 0..purchases {
                    let request = purchase(
                        format!("r-{round}-{i}"),
                        &ruled_members[i % ruled_members.len()],
                    );
                    let receipt = engine
                        .post_purchase(&ruled, &request, Some(&format!("rk-{round}-{i}")))
                        .await
                        .unwrap();
                    assert!(!receipt.value.rules.is_empty(), "the rules fire");
                }
            })
            .await,
        );
    }
    let rules_row = Row {
        backend: label,
        what: "purchase with 20 CEL rules, vs without",
        baseline: rate(purchases, median(posted.clone())),
        patron: rate(purchases, median(with_rules_times)),
    };

    let (mut raw_batch, mut import) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        raw_batch.push(
            time(async {
                for chunk in (0..members).collect::<Vec<_>>().chunks(patron_engine::import::IMPORT_BATCH_ROWS) {
                    let mut tx = store.begin_write().await.unwrap();
                    for i in chunk {
                        sqlx::query("INSERT INTO raw_members (tenant_id, id, external_id, name, phone) VALUES ($1, $2, $3, $4, $5)")
                            .bind(tenant.id.0)
                            .bind(format!("raw-{round}-{i}"))
                            .bind(format!("ext-{round}-{i}"))
                            .bind(format!("Member {i}"))
                            .bind(format!("+1555{round}{i:07}"))
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    tx.commit().await.unwrap();
                }
            })
            .await,
        );
        let mut csv = String::from("external_id,name,phone\n");
        for i in 0..members {
            csv.push_str(&format!("imp-{round}-{i},Member {i},+1666{round}{i:07}\n"));
        }
        import.push(
            time(async {
                let report = engine
                    .import_members(&tenant, csv.as_bytes(), "bench", &|_| {})
                    .await
                    .unwrap();
                assert_eq!(
                    report.imported as usize,
                    members,
                    "{:?}",
                    report.rejected.first()
                );
            })
            .await,
        );
    }
    let report = store
        .verify_ledger(tenant.id, jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.discrepancies);
    let report = store
        .verify_ledger(ruled.id, jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.discrepancies);

    vec![
        Row {
            backend: label,
            what: "purchase, one commit each",
            baseline: rate(purchases, median(raw)),
            patron: rate(purchases, median(posted.clone())),
        },
        Row {
            backend: label,
            what: "purchase vs its core rows written plainly, one commit each",
            baseline: rate(purchases, median(core)),
            patron: rate(purchases, median(posted.clone())),
        },
        Row {
            backend: label,
            what: "member import, 500 per commit",
            baseline: rate(members, median(raw_batch)),
            patron: rate(members, median(import)),
        },
        rules_row,
    ]
}

/// Untimed purchases per club before the timed rounds.
fn warm_up() -> usize {
    env_usize("PATRON_BENCH_WARM_UP", 200)
}

async fn postgres() -> Option<TestDatabase> {
    let url = std::env::var("PATRON_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("PATRON_TEST_POSTGRES_URL"))
        .ok()?;
    Some(patron_store::testing::postgres_at(&url).await)
}

#[tokio::main]
async fn main() {
    // `RUST_LOG=sqlx::query=debug` shows every statement with its time.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let purchases = env_usize("PATRON_BENCH_PURCHASES", 2000);
    let members = env_usize("PATRON_BENCH_MEMBERS", 5000);
    let mut rows = Vec::new();
    let sqlite = patron_store::testing::sqlite().await.unwrap();
    rows.extend(run(&sqlite, "SQLite", purchases, members).await);
    sqlite.cleanup().await;
    match postgres().await {
        Some(pg) => {
            assert_eq!(pg.backend(), Backend::Postgres);
            patron_bench::experiment(&pg.store).await.unwrap();
            rows.extend(run(&pg, "PostgreSQL", purchases, members).await);
            pg.cleanup().await;
        }
        None => eprintln!(
            "skipped: PostgreSQL (set PATRON_BENCH_POSTGRES_URL or PATRON_TEST_POSTGRES_URL)"
        ),
    }
    println!("{purchases} purchases, {members} members, median of {ROUNDS} rounds\n");
    println!(
        "| backend | operation | baseline /s (plain INSERT; for rules: Patron without rules) | Patron /s | ratio |"
    );
    println!("|---|---|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} |",
            row.backend,
            row.what,
            row.baseline,
            row.patron,
            row.patron / row.baseline
        );
    }
}
