//! Purchase posting and member import against a plain INSERT of the same rows, measured in
//! the same run on the same database with the same durability settings. Purchases are also
//! compared with the same rows written plainly: every row a purchase writes, into the same
//! tables, as plain statements in one transaction each ([`SameRows`]).
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
    ] {
        sqlx::query(ddl).execute(store.pool()).await.unwrap();
    }
    let member_ids = enroll_members(&engine, &tenant, "bench").await;

    // Warm-up, not timed: a club with some history, and PostgreSQL statistics that know it
    // (what autovacuum gives a running database). Without it PostgreSQL plans the purchase's
    // reads on freshly created, near-empty tables, caches those plans, and keeps them while
    // the tables grow during the run (a tier-metric read then scans the whole club's
    // purchases), which measures the bench's empty start rather than the code.
    post_purchases(&engine, &tenant, &member_ids, "w", warm_up()).await;
    patron_bench::settle_statistics(&store).await.unwrap();

    // The second baseline writes the same rows as the purchase into the same tables, for a
    // club of its own (so both ledgers can be verified).
    let same = SameRows::prepare(&engine, &store, &without_rules).await;
    let (mut raw, mut same_times, mut same_one_trip, mut posted) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
        same_times.push(same.round(&store, round, purchases, false).await);
        same_one_trip.push(same.round(&store, round, purchases, true).await);
        let prefix = format!("p-{round}");
        posted.push(
            time(async {
                post_purchases(&engine, &tenant, &member_ids, &prefix, purchases).await;
            })
            .await,
        );
    }

    // The same purchases for a club with 20 CEL rules, against the rule-less club above.
    let (ruled, _, _) = engine
        .apply_program("bench-rules", &with_rules, "bench")
        .await
        .unwrap();
    let ruled_members = enroll_members(&engine, &ruled, "ruled").await;
    post_purchases(&engine, &ruled, &ruled_members, "rw", warm_up()).await;
    patron_bench::settle_statistics(&store).await.unwrap();
    // Each round times the rule-less club again, then the club with rules: both on the same
    // tables at the same size, with the same statistics. (Against the rule-less rounds above,
    // timed before the second club's history existed, PostgreSQL showed a "rules" cost even
    // with rules that never fire and statements identical to the rule-less club's.)
    let (mut without_rules_times, mut with_rules_times) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (plain, ruled_prefix) = (format!("n-{round}"), format!("r-{round}"));
        without_rules_times.push(
            time(async {
                post_purchases(&engine, &tenant, &member_ids, &plain, purchases).await;
            })
            .await,
        );
        with_rules_times.push(
            time(async {
                let fired =
                    post_purchases(&engine, &ruled, &ruled_members, &ruled_prefix, purchases).await;
                assert_eq!(fired, purchases, "the rules fire on every purchase");
            })
            .await,
        );
    }
    let rules_row = Row {
        backend: label,
        what: "purchase with 20 CEL rules, vs without",
        baseline: rate(purchases, median(without_rules_times)),
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
                            .bind(bench_phone(round, *i))
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
            csv.push_str(&format!(
                "imp-{round}-{i},Member {i},{}\n",
                bench_phone(round + ROUNDS, i)
            ));
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
    same.verify(&store).await;
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
            what: "purchase vs the same rows written plainly, one commit each",
            baseline: rate(purchases, median(same_times)),
            patron: rate(purchases, median(posted.clone())),
        },
        Row {
            backend: label,
            what: "purchase vs the same rows sent in one call, one commit each",
            baseline: rate(purchases, median(same_one_trip)),
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

/// Enrolls 50 members of `tenant` at the till (external ids `{prefix}-{i}`); their ids.
async fn enroll_members(
    engine: &Engine,
    tenant: &patron_store::tenants::Tenant,
    prefix: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            patron_bench::enroll_at_pos(engine, tenant, format!("{prefix}-{i}"))
                .await
                .unwrap(),
        );
    }
    ids
}

/// Posts `count` purchases for `tenant`, one commit each, to `members` in turn (document ids
/// `{prefix}-{i}`, each with an `Idempotency-Key`). Returns how many fired a rule.
async fn post_purchases(
    engine: &Engine,
    tenant: &patron_store::tenants::Tenant,
    members: &[String],
    prefix: &str,
    count: usize,
) -> usize {
    let mut fired = 0;
    for i in 0..count {
        let document = format!("{prefix}-{i}");
        let request = purchase(document.clone(), &members[i % members.len()]);
        let receipt = engine
            .post_purchase(tenant, &request, Some(&format!("k-{document}")))
            .await
            .unwrap();
        fired += usize::from(!receipt.value.rules.is_empty());
    }
    fired
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

/// The second purchase baseline: a plain client writing the rows a member's purchase writes
/// (the earning transfer, the wallet's totals, the lot, the purchase and its two lines, the
/// member's statistics and category spend, both idempotency keys with the stored receipt)
/// into the same tables, with their indexes, constraints and foreign keys, one transaction
/// and one commit per purchase. What it leaves out is what Patron adds to the database's
/// work: the reads, the checks and the decision.
struct SameRows {
    tenant: patron_store::tenants::Tenant,
    /// (member id, wallet account id).
    members: Vec<(String, i64)>,
    issuance: i64,
}

/// What the coffee program's base rate gives the bench's purchase (1075 minor units).
const SAME_ROWS_POINTS: i64 = 21;

impl SameRows {
    async fn prepare(engine: &Engine, store: &patron_store::Store, program: &str) -> SameRows {
        let (tenant, _, _) = engine
            .apply_program("bench-same-rows", program, "bench")
            .await
            .unwrap();
        let mut members = Vec::new();
        for id in enroll_members(engine, &tenant, "same").await {
            let account: i64 = sqlx::query_scalar(
                "SELECT id FROM accounts WHERE tenant_id = $1 AND member_id = $2",
            )
            .bind(tenant.id.0)
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
            members.push((id, account));
        }
        let issuance: i64 = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE tenant_id = $1 AND kind = 'issuance' AND member_id IS NULL",
        )
        .bind(tenant.id.0)
        .fetch_one(store.pool())
        .await
        .unwrap();
        SameRows {
            tenant,
            members,
            issuance,
        }
    }

    /// Transfer ids for `count` transfers, taken before the timed loop as Patron takes them
    /// (the sequence on PostgreSQL, past the largest id on SQLite).
    async fn transfer_ids(store: &patron_store::Store, count: usize) -> Vec<i64> {
        match store.backend() {
            Backend::Postgres => sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('transfers', 'id')) FROM generate_series(1, $1)",
            )
            .bind(count as i64)
            .fetch_all(store.pool())
            .await
            .unwrap(),
            Backend::Sqlite => {
                let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM transfers")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                (1..=count as i64).map(|i| last + i).collect()
            }
        }
    }

    /// The statements that write purchase `i` of `round` under transfer id `transfer_id`,
    /// each with its own `$1..` parameters.
    fn statements(
        &self,
        backend: Backend,
        round: usize,
        i: usize,
        transfer_id: i64,
    ) -> Vec<(&'static str, Vec<Value>)> {
        use Value::{Int, Text};
        let (member, account) = &self.members[i % self.members.len()];
        let (tenant, points, account) = (Int(self.tenant.id.0), SAME_ROWS_POINTS, *account);
        let now = jiff::Timestamp::now().as_microsecond();
        let purchase_id = format!("same-{round}-{i}");
        let document_id = format!("same-doc-{round}-{i}");
        let request_hash = format!("{i:064x}");
        let receipt = format!(
            "{{\"status\":\"ok\",\"value\":{{\"purchase_id\":\"{purchase_id}\",\"document_id\":\"{document_id}\",\
             \"member_id\":\"{member}\",\"points\":{points},\"base_points\":{points},\"rules\":[],\
             \"points_state\":\"posted\",\"pending_until\":null,\"balance\":{{\"available\":42,\"pending\":0,\
             \"held\":0,\"debt\":0,\"lifetime_credited\":42,\"expiring\":[]}},\"tier\":{{\"code\":\"regular\",\
             \"upgraded_from\":null,\"metric\":2,\"next\":\"gold\",\"needed_for_next\":28}}}}}}"
        );
        let wallet_update = match backend {
            Backend::Postgres => {
                "UPDATE accounts SET credits_posted = credits_posted + $1, last_activity_at = $2, \
                 inactivity_expires_at = $3, lock_version = lock_version + 1 WHERE id = $4"
            }
            // SQLite's wallets have no lock version (PostgreSQL's optimistic path uses it).
            Backend::Sqlite => {
                "UPDATE accounts SET credits_posted = credits_posted + $1, last_activity_at = $2, \
                 inactivity_expires_at = $3 WHERE id = $4"
            }
        };
        vec![
            (
                "INSERT INTO transfers (id, tenant_id, transfer_key, debit_account, credit_account, amount, code, kind, \
                 member_id, document_type, document_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'earn', 'posted', $7, 'purchase', $8, $9)",
                vec![
                    Int(transfer_id),
                    tenant.clone(),
                    Text(format!("earn:{purchase_id}")),
                    Int(self.issuance),
                    Int(account),
                    Int(points),
                    Text(member.clone()),
                    Text(purchase_id.clone()),
                    Int(now),
                ],
            ),
            (
                wallet_update,
                vec![
                    Int(points),
                    Int(now),
                    Int(now + 365 * 86_400_000_000),
                    Int(account),
                ],
            ),
            (
                "INSERT INTO lots (tenant_id, account_id, transfer_id, amount, remaining, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $4, NULL, $5)",
                vec![
                    tenant.clone(),
                    Int(account),
                    Int(transfer_id),
                    Int(points),
                    Int(now),
                ],
            ),
            (
                "INSERT INTO purchases (tenant_id, id, document_id, store_id, channel, member_id, occurred_at, currency, \
                 total_minor, eligible_minor, points, earn_state, earn_transfer_id, pending_until, request_hash, created_at) \
                 VALUES ($1, $2, $3, 'store-1', 'pos', $4, $5, 'USD', 1075, 1075, $6, 'posted', $7, NULL, $8, $5)",
                vec![
                    tenant.clone(),
                    Text(purchase_id.clone()),
                    Text(document_id.clone()),
                    Text(member.clone()),
                    Int(now),
                    Int(points),
                    Int(transfer_id),
                    Text(request_hash.clone()),
                ],
            ),
            (
                "INSERT INTO purchase_lines (tenant_id, purchase_id, line_no, sku, category, quantity, unit_price_minor, \
                 discount_minor, total_minor, eligible, refunded_quantity, refunded_minor) \
                 VALUES ($1, $2, 1, 'latte', 'coffee', '1', 475, 0, 475, 1, '0', 0), \
                 ($1, $2, 2, 'scone', 'bakery', '2', 325, 50, 600, 1, '0', 0)",
                vec![tenant.clone(), Text(purchase_id.clone())],
            ),
            (
                "INSERT INTO member_stats (tenant_id, member_id, first_purchase_at, last_purchase_at, first_purchase_day, \
                 last_purchase_day, purchases, purchase_days, spend_minor, first_day_spend_minor, repeat_spend_minor, updated_at) \
                 VALUES ($1, $2, $3, $3, 20792, 20792, 1, 1, 1075, 1075, 0, $3) \
                 ON CONFLICT (tenant_id, member_id) DO UPDATE SET last_purchase_at = excluded.last_purchase_at, \
                 purchases = member_stats.purchases + 1, spend_minor = member_stats.spend_minor + excluded.spend_minor, \
                 repeat_spend_minor = member_stats.repeat_spend_minor + excluded.spend_minor, updated_at = excluded.updated_at",
                vec![tenant.clone(), Text(member.clone()), Int(now)],
            ),
            (
                "INSERT INTO member_category_spend (tenant_id, member_id, category, spend_minor, purchases) \
                 VALUES ($1, $2, 'bakery', 600, 1), ($1, $2, 'coffee', 475, 1) \
                 ON CONFLICT (tenant_id, member_id, category) DO UPDATE SET \
                 spend_minor = member_category_spend.spend_minor + excluded.spend_minor, \
                 purchases = member_category_spend.purchases + 1",
                vec![tenant.clone(), Text(member.clone())],
            ),
            (
                "INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, response, created_at) \
                 VALUES ($1, $2, 'purchase.post', $3, $4, $5), ($1, $6, 'purchase.post', $3, $4, $5)",
                vec![
                    tenant,
                    Text(format!("client:same-{round}-{i}")),
                    Text(request_hash),
                    Text(receipt),
                    Int(now),
                    Text(format!("document:purchase:{document_id}")),
                ],
            ),
        ]
    }

    /// One timed round of `purchases`, one transaction and one commit each: every row its
    /// own statement, or (`one_trip`) all of them sent at once (a multi-statement call in a
    /// transaction on SQLite; one statement of data-modifying CTEs, which commits on its
    /// own, on PostgreSQL: Patron's optimistic write).
    async fn round(
        &self,
        store: &patron_store::Store,
        round: usize,
        purchases: usize,
        one_trip: bool,
    ) -> std::time::Duration {
        let ids = Self::transfer_ids(store, purchases).await;
        let backend = store.backend();
        let round = if one_trip { round + 1000 } else { round };
        time(async {
            for (i, transfer_id) in ids.iter().enumerate() {
                let statements = self.statements(backend, round, i, *transfer_id);
                if !one_trip {
                    let mut tx = store.begin_write().await.unwrap();
                    for (sql, values) in &statements {
                        bind(sqlx::query(sql), values)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    tx.commit().await.unwrap();
                    continue;
                }
                let (mut parts, mut values) = (Vec::new(), Vec::new());
                for (sql, own) in statements {
                    parts.push(patron_store::renumber(sql, values.len()));
                    values.extend(own);
                }
                match backend {
                    Backend::Postgres => {
                        let ctes = parts
                            .iter()
                            .enumerate()
                            .map(|(k, part)| format!("w{k} AS ({part})"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        bind(sqlx::query(&format!("WITH {ctes} SELECT 1")), &values)
                            .execute(store.pool())
                            .await
                            .unwrap();
                    }
                    Backend::Sqlite => {
                        let mut tx = store.begin_write().await.unwrap();
                        bind(sqlx::query(&parts.join("; ")), &values)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                    }
                }
            }
        })
        .await
    }

    /// The rows written are a ledger that balances.
    async fn verify(&self, store: &patron_store::Store) {
        let report = store
            .verify_ledger(self.tenant.id, jiff::Timestamp::now())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.discrepancies);
    }
}

/// A bound value of the same-rows baseline.
#[derive(Clone)]
enum Value {
    Int(i64),
    Text(String),
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    values: &'q [Value],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for value in values {
        query = match value {
            Value::Int(v) => query.bind(*v),
            Value::Text(v) => query.bind(v.as_str()),
        };
    }
    query
}

/// A distinct US number per round and member that libphonenumber accepts (area code 201,
/// an exchange from 230 up): the import checks phones against the country's numbering plan.
fn bench_phone(round: usize, i: usize) -> String {
    format!("+1201{}{:04}", 230 + round * 10 + i / 10_000, i % 10_000)
}
