//! Migrations: applying them again changes nothing, and a binary refuses a database that a
//! newer Patron migrated (it would not know that schema's rules).

use crate::support::label;

#[tokio::test]
async fn a_database_migrated_by_a_newer_patron_is_refused() {
    for db in patron_store::testing::all().await {
        let again = db.store.migrate().await.unwrap();
        assert!(
            again.applied.is_empty(),
            "[{}] nothing to apply",
            label(&db)
        );
        let known = again.current_version;

        sqlx::query("INSERT INTO patron_migrations (version, name, applied_at) VALUES ($1, 'from_the_future', 0)")
            .bind(known + 1)
            .execute(db.store.pool())
            .await
            .unwrap();
        let error = db.store.migrate().await.unwrap_err().to_string();
        assert!(
            error.contains(&format!("schema version {}", known + 1))
                && error.contains(&format!("knows up to {known}")),
            "[{}] {error}",
            label(&db)
        );
        db.cleanup().await;
    }
}

/// Migration 14's partial index serves the count a rule limit makes (`rules::usage_sql`):
/// both planners infer `period_key IS NOT NULL` from `period_key = $n`, PostgreSQL also in the
/// generic plan a prepared statement keeps. Were the count written another way (say with
/// `IS NOT DISTINCT FROM`), it would scan every firing of the member instead.
#[tokio::test]
async fn a_rule_limits_count_reads_the_partial_usage_index() {
    use sqlx::Row;
    for db in patron_store::testing::all().await {
        let sql = patron_store::rules::usage_sql(1, 3);
        let mut c = db.store.pool().acquire().await.unwrap();
        let plan: Vec<String> = match db.backend() {
            patron_store::Backend::Sqlite => sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(1i64)
                .bind("mem_1")
                .bind("rule_1")
                .bind("2026-W49")
                .fetch_all(&mut *c)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>("detail").unwrap())
                .collect(),
            patron_store::Backend::Postgres => {
                sqlx::raw_sql(&format!(
                    "SET plan_cache_mode = force_generic_plan; \
                     PREPARE usage_probe (bigint, text, text, text) AS {sql}"
                ))
                .execute(&mut *c)
                .await
                .unwrap();
                let rows =
                    sqlx::raw_sql("EXPLAIN EXECUTE usage_probe (1, 'mem_1', 'rule_1', '2026-W49')")
                        .fetch_all(&mut *c)
                        .await
                        .unwrap();
                sqlx::raw_sql("DEALLOCATE usage_probe; RESET plan_cache_mode")
                    .execute(&mut *c)
                    .await
                    .unwrap();
                rows.iter()
                    .map(|row| row.try_get::<String, _>(0).unwrap())
                    .collect()
            }
        };
        assert!(
            plan.iter().any(|line| line.contains("rule_awards_limited")),
            "[{}] {plan:#?}",
            label(&db)
        );
        drop(c);
        db.cleanup().await;
    }
}
