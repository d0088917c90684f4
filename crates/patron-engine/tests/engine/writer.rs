//! Write transactions and SQLite's group commit (`patron_store::writer`): a unit of work is
//! visible to every reader once its `commit` returns, a unit rolled back or cancelled inside
//! a group takes only its own writes with it, and nothing waits forever.

use std::sync::Arc;

use patron_store::Store;
use patron_store::testing::{self, TestDatabase};
use tokio::sync::Notify;

async fn scratch(db: &TestDatabase) -> Store {
    let store = db.store.clone();
    sqlx::query("CREATE TABLE scratch (k TEXT PRIMARY KEY)")
        .execute(store.pool())
        .await
        .unwrap();
    store
}

async fn insert(tx: &mut patron_store::Tx, key: &str) {
    sqlx::query("INSERT INTO scratch (k) VALUES ($1)")
        .bind(key)
        .execute(&mut **tx)
        .await
        .unwrap();
}

/// Waits until `n` units of work are queued for SQLite's writer (PostgreSQL has no queue:
/// its units run side by side, and there is nothing to wait for).
async fn until_queued(store: &Store, n: usize) {
    while store.queued_writers().is_some_and(|queued| queued < n) {
        tokio::task::yield_now().await;
    }
}

async fn keys(store: &Store) -> Vec<String> {
    sqlx::query_scalar::<_, String>("SELECT k FROM scratch ORDER BY k")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// Fifty units at once (so SQLite groups them): each one's row is visible to a reader on
/// another connection as soon as its own `commit` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_is_visible_to_every_reader_when_its_commit_returns() {
    for db in testing::all().await {
        let store = scratch(&db).await;
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let key = format!("k{i:02}");
                    let mut tx = store.begin_write().await.unwrap();
                    insert(&mut tx, &key).await;
                    tx.commit().await.unwrap();
                    let seen: Option<String> =
                        sqlx::query_scalar("SELECT k FROM scratch WHERE k = $1")
                            .bind(&key)
                            .fetch_optional(store.pool())
                            .await
                            .unwrap();
                    assert_eq!(
                        seen.as_deref(),
                        Some(key.as_str()),
                        "[{:?}]",
                        store.backend()
                    );
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(keys(&store).await.len(), 50);
    }
}

/// Units queued behind an open one join its transaction; the ones that roll back take only
/// their own rows with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_rolled_back_inside_a_group_takes_only_its_own_writes() {
    for db in testing::all().await {
        let store = scratch(&db).await;
        let mut first = store.begin_write().await.unwrap();
        insert(&mut first, "a").await;
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut tx = store.begin_write().await.unwrap();
                    insert(&mut tx, &format!("u{i}")).await;
                    if i % 2 == 0 {
                        tx.commit().await.unwrap();
                    } else {
                        tx.rollback().await.unwrap();
                    }
                })
            })
            .collect();
        // Let them queue up behind `first` (on PostgreSQL they simply run).
        until_queued(&store, 6).await;
        first.commit().await.unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            keys(&store).await,
            ["a", "u0", "u2", "u4"],
            "[{:?}]",
            store.backend()
        );
    }
}

/// A unit whose caller is cancelled while it holds the writer (a client that hung up) is
/// rolled back, and neither the unit queued behind it nor the group it was in is stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_unit_is_rolled_back_and_blocks_nobody() {
    for db in testing::all().await {
        let store = scratch(&db).await;

        // Cancelled while it opened the group.
        let holding = Arc::new(Notify::new());
        let cancelled = tokio::spawn({
            let (store, holding) = (store.clone(), holding.clone());
            async move {
                let mut tx = store.begin_write().await.unwrap();
                insert(&mut tx, "cancelled-1").await;
                holding.notify_one();
                std::future::pending::<()>().await;
            }
        });
        holding.notified().await;
        let next = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_write().await.unwrap();
                insert(&mut tx, "next-1").await;
                tx.commit().await.unwrap();
            }
        });
        cancelled.abort();
        next.await.unwrap();

        // Cancelled while it ran inside a group another unit opened and is waiting on.
        let mut opener = store.begin_write().await.unwrap();
        insert(&mut opener, "opener").await;
        let holding = Arc::new(Notify::new());
        let cancelled = tokio::spawn({
            let (store, holding) = (store.clone(), holding.clone());
            async move {
                let mut tx = store.begin_write().await.unwrap();
                insert(&mut tx, "cancelled-2").await;
                holding.notify_one();
                std::future::pending::<()>().await;
            }
        });
        until_queued(&store, 1).await;
        let opener_done = tokio::spawn(async move { opener.commit().await });
        holding.notified().await;
        cancelled.abort();
        opener_done.await.unwrap().unwrap();

        assert_eq!(
            keys(&store).await,
            ["next-1", "opener"],
            "[{:?}]",
            store.backend()
        );
    }
}
