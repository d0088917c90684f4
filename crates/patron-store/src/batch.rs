//! Several independent writes sent as one statement.
//!
//! A purchase writes to half a dozen tables. Sent one by one, every statement costs a round
//! trip: to the PostgreSQL server, or to sqlx's SQLite worker thread and back. Those
//! hand-offs, not the writes, were most of a purchase's CPU time on the 2-core machines
//! (BENCHMARKS.md, "HTTP load"). A [`Batch`] collects statements written in the SQL both
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

    /// The statements so far, leaving this batch empty (to send them before a read that
    /// must see them).
    pub(crate) fn take(&mut self) -> Batch {
        std::mem::take(self)
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
                sql.push_str(" SELECT 1");
                sql
            }
        }
    }

    /// Sends the batch in the caller's transaction. An empty batch sends nothing; a batch of
    /// one statement is sent as it is.
    pub(crate) async fn run(self, c: &mut Conn, backend: Backend) -> Result<(), StoreError> {
        if self.statements.is_empty() {
            return Ok(());
        }
        let sql = if self.statements.len() == 1 {
            self.statements[0].clone()
        } else {
            self.sql(backend)
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
pub(crate) fn renumber(sql: &str, offset: usize) -> String {
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
}
