//! Schema parity: the SQLite and the PostgreSQL migrations are written twice, by hand, so
//! nothing but this test keeps them in step. It migrates an empty database on each backend,
//! reads back what the migrations made (tables, columns with their types, nullability and
//! defaults, primary keys, unique and foreign keys, checks, indexes with their columns and
//! predicates, triggers), and fails on any difference that [`ALLOWED`] does not list, and on
//! any listed difference that is gone (so the list stays true).
//!
//! Before comparing, each side is read in a common vocabulary; these are the dialect
//! differences that are not differences:
//! - SQLite's `INTEGER PRIMARY KEY AUTOINCREMENT` (the rowid) and PostgreSQL's `BIGINT
//!   GENERATED ... AS IDENTITY PRIMARY KEY` both read as `bigint identity`, not null (a rowid
//!   without `AUTOINCREMENT`, which may hand out a deleted row's id again, reads as
//!   `bigint rowid` and differs);
//! - SQLite's `REAL` and PostgreSQL's `DOUBLE PRECISION` both read as `double precision`;
//! - SQLite has no `INCLUDE`: its covering indexes end the key with the carried columns, so a
//!   PostgreSQL index reads as its key columns followed by its `INCLUDE` columns;
//! - defaults and index predicates are compared as text without casts (`'x'::text`), case,
//!   parentheses or spaces;
//! - a check is compared by the columns it reads (the two dialects spell the same test
//!   differently: `GLOB` against `~`);
//! - constraints are compared by what they hold, not by name (each backend names its own);
//!   explicit indexes are compared by name;
//! - SQLite's triggers of migration 15 (`<table>_amounts_integer_insert`/`_update`) are not
//!   read: they refuse a non-integer in a points or money column, which PostgreSQL's `BIGINT`
//!   refuses by its type.

use std::collections::{BTreeMap, BTreeSet};

use patron_store::testing;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// What the migrations made, in the common vocabulary: a key (`column accounts.kind`) and what
/// is there (`text not null`).
type Schema = BTreeMap<String, String>;

/// A difference the two backends keep on purpose. `None` is "absent on this backend".
struct Allowed {
    key: &'static str,
    sqlite: Option<&'static str>,
    postgres: Option<&'static str>,
    reason: &'static str,
}

/// Every difference between the two schemas, with its reason. A new one fails the test until
/// it is fixed (in a new migration) or written here.
const ALLOWED: &[Allowed] = &[
    Allowed {
        key: "column accounts.lock_version",
        sqlite: None,
        postgres: Some("bigint not null default 0"),
        reason: "PostgreSQL's optimistic purchase path counts the units of work that lock a \
                 wallet (migration 13); SQLite's one writer needs no such guard",
    },
    Allowed {
        key: "column tenants.id_key",
        sqlite: Some("text null"),
        postgres: Some("text not null"),
        reason: "SQLite cannot add a NOT NULL column without a constant default (migration \
                 16): the trigger tenants_id_key_required refuses a club without a key",
    },
    Allowed {
        key: "trigger tenants.tenants_id_key_required",
        sqlite: Some(""),
        postgres: None,
        reason: "SQLite's NOT NULL for tenants.id_key (see above)",
    },
    Allowed {
        key: "column patron_migrations.version",
        sqlite: Some("bigint null"),
        postgres: Some("bigint not null"),
        reason: "SQLite lets a primary key column that is not the rowid hold NULL (a quirk it \
                 keeps for compatibility); the migrations table is made by migrate.rs, which \
                 always writes a version, and an existing table is never re-created",
    },
];

#[tokio::test]
async fn the_sqlite_and_postgres_schemas_agree_up_to_the_listed_differences() {
    let sqlite = testing::sqlite().await.unwrap();
    let Some(postgres) = testing::postgres().await else {
        sqlite.cleanup().await;
        return;
    };
    let lite = sqlite_schema(sqlite.store.pool()).await;
    let pg = postgres_schema(postgres.store.pool()).await;
    assert!(
        lite.keys().any(|k| k == "table transfers") && pg.keys().any(|k| k == "table transfers"),
        "both schemas were read"
    );

    let mut unexplained = Vec::new();
    let keys: BTreeSet<&String> = lite.keys().chain(pg.keys()).collect();
    for key in keys {
        let (s, p) = (
            lite.get(key).map(String::as_str),
            pg.get(key).map(String::as_str),
        );
        if s == p {
            continue;
        }
        let listed = ALLOWED
            .iter()
            .any(|a| a.key == key && a.sqlite == s && a.postgres == p);
        if !listed {
            unexplained.push(format!(
                "{key}\n    sqlite:   {}\n    postgres: {}",
                s.unwrap_or("(absent)"),
                p.unwrap_or("(absent)")
            ));
        }
    }
    let stale: Vec<String> = ALLOWED
        .iter()
        .filter(|a| {
            lite.get(a.key).map(String::as_str) != a.sqlite
                || pg.get(a.key).map(String::as_str) != a.postgres
        })
        .map(|a| format!("{} ({})", a.key, a.reason))
        .collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "the schemas differ where ALLOWED says nothing (fix it in a new migration, or list it \
         with its reason):\n{}\nALLOWED lists differences that are gone (remove them):\n{}",
        unexplained.join("\n"),
        stale.join("\n")
    );
    sqlite.cleanup().await;
    postgres.cleanup().await;
}

async fn rows(pool: &AnyPool, sql: &str, binds: &[&str]) -> Vec<AnyRow> {
    let mut query = sqlx::query(sql);
    for bind in binds {
        query = query.bind(bind.to_string());
    }
    query
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn text(row: &AnyRow, index: usize) -> String {
    row.try_get::<String, _>(index).unwrap()
}

fn maybe(row: &AnyRow, index: usize) -> Option<String> {
    row.try_get::<Option<String>, _>(index).unwrap()
}

/// Lower case, without casts, parentheses or spaces: `((kind)::text = 'pending'::text)` and
/// `kind = 'pending'` read the same.
fn normalized(expression: &str) -> String {
    let mut out = String::new();
    let mut rest = expression.to_lowercase();
    while let Some(at) = rest.find("::") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        rest = tail[end..].to_string();
    }
    out.push_str(&rest);
    out.chars()
        .filter(|c| !c.is_whitespace() && *c != '(' && *c != ')')
        .collect()
}

fn column_value(kind: &str, not_null: bool, default: Option<String>) -> String {
    let null = if not_null { "not null" } else { "null" };
    match default {
        Some(d) => format!("{kind} {null} default {}", normalized(&d)),
        None => format!("{kind} {null}"),
    }
}

fn is_integer_trigger(name: &str) -> bool {
    name.ends_with("_amounts_integer_insert") || name.ends_with("_amounts_integer_update")
}

// --- SQLite ---------------------------------------------------------------------------------

async fn sqlite_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    let tables = rows(
        pool,
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        &[],
    )
    .await;
    for table in &tables {
        let (name, sql) = (text(table, 0), text(table, 1));
        schema.insert(format!("table {name}"), String::new());
        let autoincrement = sql.to_uppercase().contains("AUTOINCREMENT");
        let columns = sqlite_columns(pool, &name, autoincrement, &mut schema).await;
        sqlite_constraints(pool, &name, &mut schema).await;
        for check in checks_in(&sql) {
            let key = format!(
                "check {name} ({})",
                columns_read(&check, &columns).join(", ")
            );
            let count = schema.get(&key).map_or(0, |n| n.parse::<u32>().unwrap());
            schema.insert(key, format!("{}", count + 1));
        }
    }
    let triggers = rows(
        pool,
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'",
        &[],
    )
    .await;
    for trigger in &triggers {
        let (table, name) = (text(trigger, 0), text(trigger, 1));
        if !is_integer_trigger(&name) {
            schema.insert(format!("trigger {table}.{name}"), String::new());
        }
    }
    schema
}

/// Reads the columns of `table` into `schema`, and answers their names.
async fn sqlite_columns(
    pool: &AnyPool,
    table: &str,
    autoincrement: bool,
    schema: &mut Schema,
) -> Vec<String> {
    let columns = rows(
        pool,
        "SELECT name, upper(type), CAST(\"notnull\" AS TEXT), dflt_value, CAST(pk AS TEXT) \
         FROM pragma_table_info($1) ORDER BY cid",
        &[table],
    )
    .await;
    let primary: Vec<(u32, String)> = columns
        .iter()
        .filter_map(|c| {
            let position: u32 = text(c, 4).parse().unwrap();
            (position > 0).then(|| (position, text(c, 0)))
        })
        .collect();
    let mut names = Vec::new();
    for column in &columns {
        let name = text(column, 0);
        let declared = text(column, 1);
        let rowid = declared == "INTEGER" && primary.len() == 1 && primary[0].1 == name;
        // Without AUTOINCREMENT SQLite may hand out a deleted row's id again, which an
        // identity never does: such a column reads as `bigint rowid` and differs.
        let kind = match declared.as_str() {
            _ if rowid && autoincrement => "bigint identity".to_string(),
            _ if rowid => "bigint rowid".to_string(),
            "REAL" => "double precision".to_string(),
            other => other.to_lowercase(),
        };
        let not_null = rowid || text(column, 2) == "1";
        schema.insert(
            format!("column {table}.{name}"),
            column_value(&kind, not_null, maybe(column, 3)),
        );
        names.push(name);
    }
    if !primary.is_empty() {
        let mut primary = primary;
        primary.sort();
        let key: Vec<String> = primary.into_iter().map(|(_, name)| name).collect();
        schema.insert(
            format!("primary key {table}"),
            format!("({})", key.join(", ")),
        );
    }
    names
}

async fn sqlite_constraints(pool: &AnyPool, table: &str, schema: &mut Schema) {
    let indexes = rows(
        pool,
        "SELECT name, CAST(\"unique\" AS TEXT), origin FROM pragma_index_list($1)",
        &[table],
    )
    .await;
    for index in &indexes {
        let (name, unique, origin) = (text(index, 0), text(index, 1) == "1", text(index, 2));
        let columns: Vec<String> = rows(
            pool,
            "SELECT name FROM pragma_index_info($1) ORDER BY seqno",
            &[&name],
        )
        .await
        .iter()
        .map(|c| maybe(c, 0).unwrap_or_else(|| "<expression>".into()))
        .collect();
        match origin.as_str() {
            "u" => {
                schema.insert(
                    format!("unique {table} ({})", columns.join(", ")),
                    String::new(),
                );
            }
            "pk" => {}
            _ => {
                let sql = rows(
                    pool,
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = $1",
                    &[&name],
                )
                .await;
                let sql = text(&sql[0], 0);
                let predicate = sql
                    .to_lowercase()
                    .find(" where ")
                    .map(|at| normalized(&sql[at + 7..]));
                schema.insert(
                    format!("index {table}.{name}"),
                    index_value(unique, &columns, predicate),
                );
            }
        }
    }
    let keys = rows(
        pool,
        "SELECT CAST(id AS TEXT), \"table\", \"from\", \"to\", on_delete \
         FROM pragma_foreign_key_list($1) ORDER BY id, seq",
        &[table],
    )
    .await;
    let mut foreign: BTreeMap<String, (String, Vec<String>, Vec<String>, String)> = BTreeMap::new();
    for key in &keys {
        let entry = foreign
            .entry(text(key, 0))
            .or_insert_with(|| (text(key, 1), Vec::new(), Vec::new(), text(key, 4)));
        entry.1.push(text(key, 2));
        entry
            .2
            .push(maybe(key, 3).unwrap_or_else(|| "<primary key>".into()));
    }
    for (target, from, to, on_delete) in foreign.into_values() {
        schema.insert(
            format!("foreign key {table} ({})", from.join(", ")),
            foreign_value(&target, &to, &on_delete),
        );
    }
}

fn index_value(unique: bool, columns: &[String], predicate: Option<String>) -> String {
    let unique = if unique { "unique " } else { "" };
    match predicate {
        Some(p) => format!("{unique}({}) where {p}", columns.join(", ")),
        None => format!("{unique}({})", columns.join(", ")),
    }
}

fn foreign_value(target: &str, to: &[String], on_delete: &str) -> String {
    format!(
        "{target} ({}) on delete {}",
        to.join(", "),
        on_delete.to_lowercase()
    )
}

/// The expressions of the `CHECK (...)` clauses in a `CREATE TABLE` text (SQLite keeps the
/// text, with the columns `ALTER TABLE` added, and has no other record of its checks).
fn checks_in(sql: &str) -> Vec<String> {
    let sql = without_comments(sql);
    let upper = sql.to_ascii_uppercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find("CHECK") {
        let keyword = from + at;
        let start = keyword + "CHECK".len();
        from = start;
        let inside_a_word = upper[..keyword]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let open = start + sql[start..].len() - sql[start..].trim_start().len();
        if inside_a_word || !sql[open..].starts_with('(') {
            continue;
        }
        let (mut depth, mut quoted) = (0, false);
        for (i, c) in sql[open..].char_indices() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => {
                    depth -= 1;
                    if depth == 0 {
                        found.push(sql[open + 1..open + i].to_string());
                        from = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// The text without its `-- ...` comments (which SQLite keeps inside a table's text).
fn without_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for line in sql.lines() {
        let mut previous = ' ';
        for c in line.chars() {
            if c == '\'' {
                quoted = !quoted;
            }
            if !quoted && previous == '-' && c == '-' {
                out.pop();
                break;
            }
            out.push(c);
            previous = c;
        }
        out.push('\n');
    }
    out
}

/// The columns of the table an expression reads, sorted (string literals aside).
fn columns_read(expression: &str, columns: &[String]) -> Vec<String> {
    let mut read = BTreeSet::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expression.chars().chain(std::iter::once(' ')) {
        if c == '\'' {
            quoted = !quoted;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c.to_ascii_lowercase());
            continue;
        }
        if columns.contains(&word) {
            read.insert(word.clone());
        }
        word.clear();
    }
    read.into_iter().collect()
}

// --- PostgreSQL -----------------------------------------------------------------------------

async fn postgres_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    let tables = rows(
        pool,
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
        &[],
    )
    .await;
    for table in &tables {
        schema.insert(format!("table {}", text(table, 0)), String::new());
    }
    postgres_columns(pool, &mut schema).await;
    postgres_constraints(pool, &mut schema).await;
    postgres_indexes(pool, &mut schema).await;
    let triggers = rows(
        pool,
        "SELECT c.relname::text, t.tgname::text FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid \
         WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND NOT t.tgisinternal",
        &[],
    )
    .await;
    for trigger in &triggers {
        schema.insert(
            format!("trigger {}.{}", text(trigger, 0), text(trigger, 1)),
            String::new(),
        );
    }
    schema
}

async fn postgres_columns(pool: &AnyPool, schema: &mut Schema) {
    let columns = rows(
        pool,
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text, \
         c.column_default::text, c.is_identity::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
         ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
        &[],
    )
    .await;
    for column in &columns {
        let identity = text(column, 5) == "YES";
        let kind = if identity {
            format!("{} identity", text(column, 2))
        } else {
            text(column, 2)
        };
        schema.insert(
            format!("column {}.{}", text(column, 0), text(column, 1)),
            column_value(&kind, text(column, 3) == "NO", maybe(column, 4)),
        );
    }
}

/// The column names of a constraint's or an index's column numbers, in order.
const COLUMNS_OF: &str = "(SELECT string_agg(a.attname::text, ', ' ORDER BY k.n) \
     FROM unnest(KEYS) WITH ORDINALITY AS k(num, n) \
     JOIN pg_attribute a ON a.attrelid = REL AND a.attnum = k.num)";

async fn postgres_constraints(pool: &AnyPool, schema: &mut Schema) {
    let sql = format!(
        "SELECT c.contype::text, t.relname::text, {mine}, f.relname::text, {theirs}, \
         c.confdeltype::text \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         LEFT JOIN pg_class f ON f.oid = c.confrelid \
         WHERE t.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.contype IN ('p', 'u', 'f', 'c')",
        mine = COLUMNS_OF
            .replace("KEYS", "c.conkey")
            .replace("REL", "c.conrelid"),
        theirs = COLUMNS_OF
            .replace("KEYS", "c.confkey")
            .replace("REL", "c.confrelid"),
    );
    for constraint in rows(pool, &sql, &[]).await {
        let (kind, table) = (text(&constraint, 0), text(&constraint, 1));
        let columns = maybe(&constraint, 2).unwrap_or_default();
        match kind.as_str() {
            "p" => {
                schema.insert(format!("primary key {table}"), format!("({columns})"));
            }
            "u" => {
                schema.insert(format!("unique {table} ({columns})"), String::new());
            }
            "f" => {
                let on_delete = match text(&constraint, 5).as_str() {
                    "a" => "NO ACTION",
                    "r" => "RESTRICT",
                    "c" => "CASCADE",
                    "n" => "SET NULL",
                    _ => "SET DEFAULT",
                };
                let to: Vec<String> = text(&constraint, 4)
                    .split(", ")
                    .map(str::to_string)
                    .collect();
                schema.insert(
                    format!("foreign key {table} ({columns})"),
                    foreign_value(&text(&constraint, 3), &to, on_delete),
                );
            }
            _ => {
                let mut read: Vec<&str> = columns.split(", ").collect();
                read.sort_unstable();
                let entry = schema
                    .entry(format!("check {table} ({})", read.join(", ")))
                    .or_insert_with(|| "0".into());
                *entry = format!("{}", entry.parse::<u32>().unwrap() + 1);
            }
        }
    }
}

async fn postgres_indexes(pool: &AnyPool, schema: &mut Schema) {
    let sql = format!(
        "SELECT t.relname::text, i.relname::text, x.indisunique::text, {columns}, \
         pg_get_expr(x.indpred, x.indrelid) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         WHERE t.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        columns = COLUMNS_OF
            .replace("KEYS", "x.indkey::int2[]")
            .replace("REL", "x.indrelid"),
    );
    for index in rows(pool, &sql, &[]).await {
        let columns: Vec<String> = text(&index, 3).split(", ").map(str::to_string).collect();
        schema.insert(
            format!("index {}.{}", text(&index, 0), text(&index, 1)),
            index_value(
                text(&index, 2) == "true",
                &columns,
                maybe(&index, 4).map(|p| normalized(&p)),
            ),
        );
    }
}

#[test]
fn the_readers_helpers_read_what_the_dialects_write() {
    assert_eq!(
        normalized("((kind)::text = 'pending'::text)"),
        normalized("kind = 'pending'")
    );
    let sql = "CREATE TABLE t (\n    checked_at BIGINT, -- a check (not one)\n    \
               amount BIGINT CHECK (amount > 0),\n    CHECK (amount <= (limit_ + 1))\n)";
    let checks = checks_in(sql);
    assert_eq!(checks, ["amount > 0", "amount <= (limit_ + 1)"]);
    let columns = ["amount".to_string(), "limit_".to_string()];
    assert_eq!(columns_read(&checks[1], &columns), ["amount", "limit_"]);
    assert_eq!(
        columns_read("amount NOT GLOB '*amount*'", &columns),
        ["amount"]
    );
}
