use sqlx::any::AnyPoolOptions;
use sqlx::{Acquire, Row};
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    sqlx::any::install_default_drivers();
    for url in ["sqlite::memory:", "postgres://postgres@127.0.0.1:5432/postgres"] {
        let pool = AnyPoolOptions::new().max_connections(1).connect(url).await?;
        sqlx::query("CREATE TEMP TABLE t (a BIGINT, b TEXT)").execute(&pool).await?;
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("INSERT INTO t (a, b) VALUES ($1, $2)").bind(5i64).bind("x").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO t (a, b) VALUES ($2, $1)").bind("y").bind(7i64).execute(&mut *tx).await?;
        tx.commit().await?;
        let rows = sqlx::query("SELECT a, b, CAST(SUM(a) OVER () AS BIGINT) AS s FROM t ORDER BY a").fetch_all(&mut *conn).await?;
        for r in rows { let a: i64 = r.try_get("a")?; let b: String = r.try_get("b")?; let s: i64 = r.try_get("s")?; println!("{url}: {a} {b} {s}"); }
    }
    Ok(())
}
