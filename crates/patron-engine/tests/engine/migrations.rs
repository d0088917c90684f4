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
