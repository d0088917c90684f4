//! Write transactions, and group commit on SQLite.
//!
//! SQLite admits one writer at a time. A [`Store`](crate::Store) on a SQLite file keeps one
//! dedicated writer connection behind a FIFO mutex: every unit of work queues for it, so no
//! two of them race for the file lock (and sleep in SQLite's busy handler).
//!
//! **Group commit.** Most of a small unit of work's time on SQLite is its `COMMIT` (the WAL
//! fsync) and the hand-offs around `BEGIN`/`COMMIT`. When units are queued behind the one
//! running, they share its transaction instead: the first unit of a group opens it (`BEGIN
//! IMMEDIATE`); each later one runs inside a savepoint, so its rollback undoes only its own
//! writes; a unit that finishes while others are queued leaves the transaction open for them
//! and queues a flush behind them; the last one (or the flush, or the 64th unit) commits. No
//! unit's `commit` returns before the `COMMIT` that made it durable, so nobody is answered
//! for work that a crash could still lose, and a failed `COMMIT` fails every unit of the
//! group (they retry or report it; nothing of theirs was stored). With one client at a time
//! nothing is ever queued, and every unit commits on its own, as before.
//!
//! The finishing steps (release or roll back the savepoint, commit or hand over) run in a
//! spawned task that owns the connection, so a caller cancelled halfway (a client that hung
//! up) can never leave a group open with other units waiting for it.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, Database, TransactionManager};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

type AnyTm = <sqlx::Any as Database>::TransactionManager;

/// The most units of work one group transaction carries before it is committed regardless.
pub const GROUP_MAX: usize = 64;

/// SQLite's single writer connection and the group transaction open on it, if any.
pub(crate) struct Writer {
    state: Arc<Mutex<WriterState>>,
    /// Units of work waiting for the connection.
    waiting: AtomicUsize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

pub(crate) struct WriterState {
    conn: AnyConnection,
    group: Option<Group>,
}

/// A transaction shared by consecutive units of work.
struct Group {
    /// Units whose work is in it, released and waiting for the commit.
    units: usize,
    /// The outcome of its `COMMIT`, once known.
    done: watch::Sender<Option<Result<(), String>>>,
}

impl Group {
    fn finish(self, result: Result<(), sqlx::Error>) {
        // No receiver left is fine: every unit that waited was cancelled.
        self.done
            .send_replace(Some(result.map_err(|e| e.to_string())));
    }
}

/// Counts a unit as waiting for the writer for as long as it is alive.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Queued(counter)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    pub(crate) fn new(conn: AnyConnection) -> Arc<Writer> {
        Arc::new(Writer {
            state: Arc::new(Mutex::new(WriterState { conn, group: None })),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Starts a unit of work: a new group transaction, or a savepoint in the open one.
    pub(crate) async fn begin(self: &Arc<Self>) -> Result<Tx, sqlx::Error> {
        let mut guard = {
            let _queued = Queued::new(&self.waiting);
            self.state.clone().lock_owned().await
        };
        let joined = guard.group.is_some();
        let started = if joined {
            AnyTm::begin(&mut guard.conn, None).await
        } else {
            AnyTm::begin(&mut guard.conn, Some("BEGIN IMMEDIATE".into())).await
        };
        if let Err(error) = started {
            if joined {
                // The group's other units are waiting for a commit: hand it over.
                tokio::spawn(flush(guard));
            }
            return Err(error);
        }
        if !joined {
            guard.group = Some(Group {
                units: 0,
                done: watch::channel(None).0,
            });
        }
        Ok(Tx {
            conn: TxConn::Writer {
                guard: Some(guard),
                writer: self.clone(),
                joined,
            },
            open: true,
        })
    }

    /// Units of work waiting for the writer right now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Commits the open group, if any (before the store closes).
    pub(crate) async fn flush(&self) {
        flush(self.state.clone().lock_owned().await).await;
    }
}

/// Commits the group transaction open on the writer, if any.
async fn flush(mut guard: OwnedMutexGuard<WriterState>) {
    if let Some(group) = guard.group.take() {
        let result = commit_all(&mut guard.conn).await;
        tracing::trace!(
            units = group.units,
            ok = result.is_ok(),
            "group commit (flush)"
        );
        group.finish(result);
    }
}

/// `COMMIT`; when it fails, roll everything back so the connection is clean for the next
/// group (sqlx keeps the transaction depth of a failed commit).
async fn commit_all(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let result = AnyTm::commit(conn).await;
    if result.is_err() {
        abandon(conn).await;
    }
    result
}

/// Rolls back every level of the open transaction.
async fn abandon(conn: &mut AnyConnection) {
    while AnyTm::get_transaction_depth(conn) > 0 {
        if AnyTm::rollback(conn).await.is_err() {
            break;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Commit,
    Rollback,
}

/// Ends one unit of work on the writer (see the module documentation). Runs in its own task.
async fn finish(
    mut guard: OwnedMutexGuard<WriterState>,
    writer: Arc<Writer>,
    joined: bool,
    step: Step,
) {
    let Some(mut group) = guard.group.take() else {
        return;
    };
    let ended = match (step, joined) {
        // Release or roll back this unit's savepoint.
        (Step::Commit, true) => AnyTm::commit(&mut guard.conn).await,
        (Step::Rollback, true) => AnyTm::rollback(&mut guard.conn).await,
        // The unit that opened the group: its work is the transaction itself.
        (Step::Commit, false) => Ok(()),
        (Step::Rollback, false) => {
            // Nobody joins a group before the unit that opened it has finished, so this
            // transaction holds its work only.
            let result = AnyTm::rollback(&mut guard.conn).await;
            group.finish(result);
            return;
        }
    };
    if let Err(error) = ended {
        // A savepoint that cannot be released or rolled back leaves the transaction in an
        // unknown state: give up the whole group. Its units fail; none of them was answered.
        abandon(&mut guard.conn).await;
        group.finish(Err(error));
        return;
    }
    if matches!(step, Step::Commit) {
        group.units += 1;
    }
    if writer.waiting.load(Ordering::SeqCst) > 0 && group.units < GROUP_MAX {
        // Units are queued: they join this transaction, and a flush queued behind them
        // (the mutex is FIFO) commits it if none of them does.
        guard.group = Some(group);
        let state = OwnedMutexGuard::mutex(&guard).clone();
        drop(guard);
        tokio::spawn(async move { flush(state.lock_owned().await).await });
        return;
    }
    let result = commit_all(&mut guard.conn).await;
    tracing::trace!(units = group.units, ok = result.is_ok(), "group commit");
    group.finish(result);
}

/// A write transaction. It dereferences to the connection, so queries run on `&mut *tx`.
/// Dropped without [`Tx::commit`] or [`Tx::rollback`] (a cancelled request), it rolls back,
/// so nothing half-done is ever committed.
pub struct Tx {
    conn: TxConn,
    open: bool,
}

pub(crate) enum TxConn {
    /// SQLite: the writer connection, in a group transaction.
    Writer {
        guard: Option<OwnedMutexGuard<WriterState>>,
        writer: Arc<Writer>,
        /// Whether this unit runs in a savepoint of a group another unit opened.
        joined: bool,
    },
    /// PostgreSQL (and in-memory SQLite): a pool connection with its own transaction.
    Pooled(PoolConnection<sqlx::Any>),
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").field("open", &self.open).finish()
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.conn {
            TxConn::Writer {
                guard: Some(guard), ..
            } => &guard.conn,
            TxConn::Writer { guard: None, .. } => unreachable_connection(),
            TxConn::Pooled(conn) => conn,
        }
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            TxConn::Writer {
                guard: Some(guard), ..
            } => &mut guard.conn,
            TxConn::Writer { guard: None, .. } => unreachable_connection(),
            TxConn::Pooled(conn) => &mut *conn,
        }
    }
}

/// The guard is only taken out by `commit`, `rollback` and `drop`, which consume the `Tx`.
#[allow(clippy::panic)]
fn unreachable_connection() -> ! {
    panic!("a finished transaction was used")
}

impl Tx {
    /// Begins a transaction on a pool connection (`statement`: `BEGIN`, `BEGIN IMMEDIATE`).
    pub(crate) async fn pooled(
        conn: PoolConnection<sqlx::Any>,
        statement: &'static str,
    ) -> Result<Tx, sqlx::Error> {
        let mut tx = Tx {
            conn: TxConn::Pooled(conn),
            open: false,
        };
        AnyTm::begin(&mut tx, Some(statement.into())).await?;
        tx.open = true;
        Ok(tx)
    }

    /// Commits. On SQLite this returns once the `COMMIT` of the unit's group is durable.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.open = false;
        match &mut self.conn {
            TxConn::Pooled(conn) => AnyTm::commit(conn).await,
            TxConn::Writer {
                guard,
                writer,
                joined,
            } => {
                let Some(guard) = guard.take() else {
                    return Ok(());
                };
                let Some(mut done) = guard.group.as_ref().map(|g| g.done.subscribe()) else {
                    return Ok(());
                };
                tokio::spawn(finish(guard, writer.clone(), *joined, Step::Commit));
                match done.wait_for(Option::is_some).await {
                    Ok(outcome) => match outcome.as_ref() {
                        Some(Ok(())) => Ok(()),
                        Some(Err(message)) => Err(sqlx::Error::Io(std::io::Error::other(format!(
                            "the group commit failed: {message}"
                        )))),
                        None => Ok(()),
                    },
                    Err(_) => Err(sqlx::Error::Io(std::io::Error::other(
                        "the group transaction was abandoned",
                    ))),
                }
            }
        }
    }

    /// Rolls back this unit's work.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.open = false;
        match &mut self.conn {
            TxConn::Pooled(conn) => AnyTm::rollback(conn).await,
            TxConn::Writer {
                guard,
                writer,
                joined,
            } => {
                if let Some(guard) = guard.take() {
                    // Awaited, so the caller's next unit of work starts after it; run in a
                    // task all the same, so cancelling the caller cannot stop it halfway.
                    let _ =
                        tokio::spawn(finish(guard, writer.clone(), *joined, Step::Rollback)).await;
                }
                Ok(())
            }
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match &mut self.conn {
            TxConn::Pooled(conn) => AnyTm::start_rollback(conn),
            TxConn::Writer {
                guard,
                writer,
                joined,
            } => {
                let Some(mut guard) = guard.take() else {
                    return;
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(finish(guard, writer.clone(), *joined, Step::Rollback));
                    }
                    Err(_) => {
                        // No runtime: the process is going down. Queue the rollback of the
                        // whole transaction; the group's units (if any) see it abandoned.
                        AnyTm::start_rollback(&mut guard.conn);
                        guard.group = None;
                    }
                }
            }
        }
    }
}
