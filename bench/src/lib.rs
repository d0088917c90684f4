//! Shared helpers for Patron's benchmarks (see BENCHMARKS.md for what is measured and how).

use std::time::{Duration, Instant};

/// Runs `rounds` measurements and returns the median duration.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Operations per second for `count` operations taking `elapsed`.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// Times one async block.
pub async fn time<F: std::future::Future<Output = ()>>(f: F) -> Duration {
    let start = Instant::now();
    f.await;
    start.elapsed()
}

/// The coffee chain's example program (`examples/programs/coffee-chain.toml`).
pub const COFFEE: &str = include_str!("../../examples/programs/coffee-chain.toml");

/// The coffee chain's program without its `[[rules]]` (the baseline), and the same program
/// with 20 purchase rules of every purchase kind, 16 of them with a CEL condition or amount,
/// one limited to 3 a week.
pub fn coffee_programs() -> (String, String) {
    let base = match COFFEE.find("[[rules]]") {
        Some(at) => COFFEE[..at].to_string(),
        None => COFFEE.to_string(),
    };
    let mut with_rules = base.clone();
    for index in 0..20 {
        let body = match index % 5 {
            0 => {
                "kind = \"spend\"\npoints_per_unit = \"0.5\"\nwhen = \"purchase.total >= 10.0 && member.tier != 'banned'\""
            }
            1 => {
                "kind = \"multiplier\"\nmultiplier = 2\ncategories = [\"coffee\"]\nwhen = \"item.quantity >= 1.0\""
            }
            2 => "kind = \"product\"\nskus = [\"croissant\"]\namount = \"item.quantity * 3.0\"",
            3 => {
                "kind = \"spend\"\npoints_per_unit = 1\nwhen = \"'coffee_lovers' in member.segments && purchase.time.getHours() < 12\"\nlimit = { count = 3, per = \"week\" }"
            }
            _ => "kind = \"product\"\ncategories = [\"pastry\"]\npoints = 2\nchannels = [\"pos\"]",
        };
        with_rules.push_str(&format!(
            "\n[[rules]]\nid = \"rule_{index:02}\"\nname = \"Rule {index}\"\npriority = {index}\n{body}\n"
        ));
    }
    (base, with_rules)
}

/// `ANALYZE` on PostgreSQL after a warm-up: the statistics autovacuum keeps for a running
/// database. Without them PostgreSQL plans the purchase's reads on freshly created, near-empty
/// tables, caches those plans per connection, and keeps them while the tables grow during the
/// run (until autovacuum's first `ANALYZE`, up to a minute later on a real server): the
/// bench would measure an empty database's first seconds rather than the code. SQLite plans
/// each statement from its schema and needs nothing.
pub async fn settle_statistics(store: &patron_store::Store) -> Result<(), sqlx::Error> {
    if store.backend() == patron_store::Backend::Postgres {
        sqlx::query("ANALYZE").execute(store.pool()).await?;
    }
    Ok(())
}

/// `PATRON_BENCH_EXPERIMENT_SQL`, when set: SQL run on a bench's PostgreSQL schema right after
/// its migrations, for A/B experiments on the schema (BENCHMARKS.md's history names the ones
/// made, such as dropping foreign keys). Nothing when unset.
pub async fn experiment(store: &patron_store::Store) -> Result<(), sqlx::Error> {
    if let Ok(sql) = std::env::var("PATRON_BENCH_EXPERIMENT_SQL") {
        sqlx::raw_sql(&sql).execute(store.pool()).await?;
        eprintln!("PATRON_BENCH_EXPERIMENT_SQL applied");
    }
    Ok(())
}

/// Enrolls a member at the till with only an external id, and returns their id.
pub async fn enroll_at_pos(
    engine: &patron_engine::Engine,
    tenant: &patron_store::tenants::Tenant,
    external_id: String,
) -> Result<String, patron_engine::EngineError> {
    let request = patron_engine::EnrollRequest {
        profile: patron_engine::ProfileFields {
            external_id: Some(external_id),
            ..patron_engine::ProfileFields::default()
        },
        channel: "pos".into(),
        card_number: None,
        consents: vec![],
    };
    Ok(engine.enroll(tenant, &request, None).await?.value.id)
}
