//! Several independent writes sent as one statement.
//!
//! A purchase writes to half a dozen tables. Sent one by one, every statement costs a round
//! trip: to the PostgreSQL server, or to sqlx's SQLite worker thread and back. Those
//! hand-offs, not the writes, were most of a purchase's CPU time on the 2-core machines
//! (BENCHMARKS.md's history, 2026-11-22). A [`Batch`] collects statements written in the SQL both
//! backends share, each with its own `$1..$n`, and sends them together:
//! - SQLite: one multi-statement string. sqlx runs the statements in order on its worker
//!   thread and binds `$k` to the k-th argument of the whole string, so each statement's
//!   placeholders are renumbered past those before it.
//! - PostgreSQL: one statement whose data-modifying CTEs are the batch's statements
//!   (`WITH w0 AS (INSERT ...), w1 AS (UPDATE ...) SELECT 1`); PostgreSQL runs each exactly
//!   once, to completion, in the caller's transaction.
//!
//! The contract of [`Batch::push`], which makes the two equivalent: the statements are
//! independent. None reads what another one of the batch writes, and no two change the same
//! row (in a PostgreSQL CTE all statements see one snapshot, and a row changed twice is an
//! error or unpredictable). They return nothing. A failed batch leaves its transaction to be
//! rolled back, as a failed statement does.

use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::{Backend, Conn, Rejection, StoreError, conn};

/// A bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(Some(value))
    }
}

impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        Param::Int(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_string()))
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Self {
        Param::Text(Some(value.clone()))
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        Param::Text(value.map(str::to_string))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

/// Independent writes to send as one statement (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    statements: Vec<String>,
    params: Vec<Param>,
    /// What a unique violation of the batch means to the caller, if it can only mean one
    /// thing (a purchase's document id): answered as this rejection.
    unique_violation: Option<Rejection>,
    /// PostgreSQL's optimistic purchase path: the wallet whose `lock_version` must still be
    /// what the path read (see [`Batch::guard_wallet`]).
    guard: Option<WalletGuard>,
}

/// A condition on a batch: the wallet `account_id` still has `lock_version = version`, and the
/// batch adds one to it (migration 13).
#[derive(Debug, Clone, Copy)]
struct WalletGuard {
    account_id: i64,
    version: i64,
    /// The statement that updates the wallet under the condition, once there is one.
    statement: Option<usize>,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch::default()
    }

    /// Adds a statement with its own `$1..$n` and their values, in order. The statement
    /// must not read what another statement of the batch writes, nor change a row another
    /// one changes; it may not end with `;`.
    pub(crate) fn push(&mut self, sql: &str, params: Vec<Param>) {
        let offset = self.params.len();
        self.statements.push(renumber(sql, offset));
        self.params.extend(params);
    }

    /// Answers a unique violation of this batch as `rejection` (for a batch whose only
    /// possible unique violation is known, such as a purchase's document id).
    pub(crate) fn on_unique_violation(&mut self, rejection: Rejection) {
        self.unique_violation = Some(rejection);
    }

    /// Drops what [`Batch::on_unique_violation`] said: a unique violation is an error again.
    pub(crate) fn forget_unique_violation(&mut self) {
        self.unique_violation = None;
    }

    /// Makes the batch conditional (PostgreSQL only): it commits only if no unit of work took
    /// the lock of the wallet `account_id` since its `lock_version` was read as `version`, and
    /// raises a serialization failure (40001), which rolls every statement back, otherwise.
    /// The statement that updates the wallet's totals carries the condition
    /// ([`Batch::wallet_condition`]); without one, the batch gets a statement of its own.
    pub(crate) fn guard_wallet(&mut self, account_id: i64, version: i64) {
        self.guard = Some(WalletGuard {
            account_id,
            version,
            statement: None,
        });
    }

    /// For a statement about to update wallet `account_id`'s row in this batch: the SQL to
    /// add to its `SET` list and to its `WHERE` clause (with the placeholder `$next`) and the
    /// value to bind there, when the batch is guarded on this wallet ([`Batch::guard_wallet`]);
    /// the statement must be the next one pushed.
    pub(crate) fn wallet_condition(
        &mut self,
        account_id: i64,
        next: usize,
    ) -> Option<(&'static str, String, Param)> {
        let guard = self.guard.as_mut()?;
        if guard.account_id != account_id || guard.statement.is_some() {
            return None;
        }
        guard.statement = Some(self.statements.len());
        Some((
            ", lock_version = lock_version + 1",
            format!(" AND lock_version = ${next} RETURNING id"),
            guard.version.into(),
        ))
    }

    /// The statements so far, leaving this batch empty (to send them before a read that
    /// must see them).
    pub(crate) fn take(&mut self) -> Batch {
        std::mem::take(self)
    }

    /// The statement to send, once a guarded batch has its condition: `None` for an empty,
    /// unguarded batch; a batch of one unguarded statement as it is.
    fn finish(&mut self, backend: Backend) -> Option<String> {
        if let Some(guard) = self.guard {
            debug_assert_eq!(backend, Backend::Postgres, "only PostgreSQL guards a batch");
            if guard.statement.is_none() {
                // Nothing in the batch updates the wallet: a statement of its own does.
                self.guard = Some(WalletGuard {
                    statement: Some(self.statements.len()),
                    ..guard
                });
                self.push(
                    "UPDATE accounts SET lock_version = lock_version + 1 \
                     WHERE id = $1 AND lock_version = $2 RETURNING id",
                    vec![guard.account_id.into(), guard.version.into()],
                );
            }
        } else if self.statements.is_empty() {
            return None;
        }
        Some(if self.statements.len() == 1 && self.guard.is_none() {
            self.statements[0].clone()
        } else {
            self.sql(backend)
        })
    }

    /// The one statement the batch is sent as.
    fn sql(&self, backend: Backend) -> String {
        match backend {
            Backend::Sqlite => self.statements.join(";\n"),
            Backend::Postgres => {
                let mut sql = String::from("WITH ");
                for (i, statement) in self.statements.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("w{i} AS ({statement})"));
                }
                match self.guard.and_then(|guard| guard.statement) {
                    Some(i) => sql.push_str(&format!(
                        " SELECT patron_wallet_unchanged(EXISTS (SELECT 1 FROM w{i}))"
                    )),
                    None => sql.push_str(" SELECT 1"),
                }
                sql
            }
        }
    }

    /// Sends the batch in the caller's transaction. An empty batch sends nothing; a batch of
    /// one statement is sent as it is.
    pub(crate) async fn run(mut self, c: &mut Conn, backend: Backend) -> Result<(), StoreError> {
        let Some(sql) = self.finish(backend) else {
            return Ok(());
        };
        let sent = bind_all(sqlx::query(&sql), &self.params)
            .execute(conn(c))
            .await;
        match (sent.map_err(StoreError::from), self.unique_violation) {
            (Err(error), Some(rejection)) if error.is_unique_violation() => Err(rejection.into()),
            (result, _) => result.map(|_| ()),
        }
    }
}

/// Binds `params` in order.
pub(crate) fn bind_all<'q>(
    mut query: Query<'q, sqlx::Any, AnyArguments<'q>>,
    params: &[Param],
) -> Query<'q, sqlx::Any, AnyArguments<'q>> {
    for param in params {
        query = match param {
            Param::Int(value) => query.bind(*value),
            Param::Text(value) => query.bind(value.clone()),
        };
    }
    query
}

/// `sql` with every placeholder `$k` made `$(k + offset)`. The shared SQL has no `$` in
/// literals or identifiers, so every `$` followed by digits is a placeholder.
pub fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, ch)) = chars.next() {
        out.push(ch);
        if ch != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(&(_, next)) = chars.peek() {
            if !next.is_ascii_digit() {
                break;
            }
            digits.push(next);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(number) => out.push_str(&(number + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// Rows per multi-row INSERT: below both backends' parameter limits for the widest table.
pub(crate) const ROWS_PER_STATEMENT: usize = 200;

/// [`placeholders`] for a statement sent on its own (never in a [`crate::batch::Batch`]):
/// on SQLite, anonymous `?` placeholders, bound in order. SQLite keeps `$N` names in a list
/// it searches linearly, once per placeholder when it parses the statement and once more
/// when sqlx binds each value (`sqlite3_bind_parameter_name`), so a 200-row INSERT of 17
/// columns (3,400 names) cost millions of comparisons each time it ran; `?` costs none.
pub(crate) fn placeholders_on(backend: Backend, rows: usize, columns: usize) -> String {
    match backend {
        Backend::Sqlite => {
            let row = format!("({})", vec!["?"; columns].join(", "));
            vec![row; rows].join(", ")
        }
        Backend::Postgres => placeholders(rows, columns),
    }
}

/// `($1, $2, ...), (...)` for `rows` rows of `columns` columns.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_past_the_earlier_statements() {
        assert_eq!(
            renumber("UPDATE t SET a = $1 WHERE id = $2", 0),
            "UPDATE t SET a = $1 WHERE id = $2"
        );
        assert_eq!(
            renumber("UPDATE t SET a = $1, b = $10 WHERE id = $2", 3),
            "UPDATE t SET a = $4, b = $13 WHERE id = $5"
        );
        assert_eq!(renumber("SELECT '$' || $1", 1), "SELECT '$' || $2");
    }

    #[test]
    fn the_backends_get_a_script_or_ctes() {
        let mut batch = Batch::new();
        batch.push("INSERT INTO a (x) VALUES ($1)", vec![1.into()]);
        batch.push(
            "UPDATE b SET y = $1 WHERE id = $2",
            vec![2.into(), "k".into()],
        );
        assert_eq!(
            batch.sql(Backend::Sqlite),
            "INSERT INTO a (x) VALUES ($1);\nUPDATE b SET y = $2 WHERE id = $3"
        );
        assert_eq!(
            batch.sql(Backend::Postgres),
            "WITH w0 AS (INSERT INTO a (x) VALUES ($1)), w1 AS (UPDATE b SET y = $2 WHERE id = $3) SELECT 1"
        );
        assert_eq!(batch.params.len(), 3);
    }

    #[test]
    fn a_guarded_batch_updates_the_wallet_under_its_version_and_checks_it() {
        // The wallet's own update carries the condition.
        let mut batch = Batch::new();
        batch.guard_wallet(7, 41);
        batch.push("INSERT INTO a (x) VALUES ($1)", vec![1.into()]);
        let (set, condition, version) = batch.wallet_condition(7, 2).unwrap();
        batch.push(
            &format!("UPDATE accounts SET n = n + $1{set} WHERE id = 7{condition}"),
            vec![5.into(), version],
        );
        // Only once, and only for that wallet.
        assert!(batch.wallet_condition(7, 1).is_none());
        assert!(batch.wallet_condition(8, 1).is_none());
        assert_eq!(
            batch.finish(Backend::Postgres).unwrap(),
            "WITH w0 AS (INSERT INTO a (x) VALUES ($1)), w1 AS (UPDATE accounts SET n = n + $2, \
             lock_version = lock_version + 1 WHERE id = 7 AND lock_version = $3 RETURNING id) \
             SELECT patron_wallet_unchanged(EXISTS (SELECT 1 FROM w1))"
        );
        assert_eq!(batch.params, vec![1.into(), 5.into(), 41.into()]);

        // Without one, a statement of its own does, even for a batch of one statement.
        let mut batch = Batch::new();
        batch.guard_wallet(7, 41);
        batch.push("INSERT INTO a (x) VALUES ($1)", vec![1.into()]);
        assert_eq!(
            batch.finish(Backend::Postgres).unwrap(),
            "WITH w0 AS (INSERT INTO a (x) VALUES ($1)), w1 AS (UPDATE accounts SET \
             lock_version = lock_version + 1 WHERE id = $2 AND lock_version = $3 RETURNING id) \
             SELECT patron_wallet_unchanged(EXISTS (SELECT 1 FROM w1))"
        );
        assert_eq!(batch.params, vec![1.into(), 7.into(), 41.into()]);

        // Unguarded: nothing to send, or one statement as it is.
        assert_eq!(Batch::new().finish(Backend::Postgres), None);
        let mut batch = Batch::new();
        batch.push("INSERT INTO a (x) VALUES ($1)", vec![1.into()]);
        assert_eq!(
            batch.finish(Backend::Postgres).unwrap(),
            "INSERT INTO a (x) VALUES ($1)"
        );
    }
}
