//! Fresh stores for tests: a SQLite file in a temporary directory, or a PostgreSQL schema of
//! its own in the test database (created if missing). PostgreSQL is the real server on
//! `MIMOTO_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/mimoto_test`);
//! when it is unreachable the test fails — it is never skipped.
//!
//! Behind the cargo feature `testing` (other crates enable it in their dev-dependencies).
//! The store's own conformance suite compiles this file itself, so it names this crate only
//! as `store::…` (which resolves inside the library too: `extern crate self as store`).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use store::postgres::PgStore;
use store::sqlite::SqliteStore;

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mimoto_test";

pub fn test_database_url() -> String {
    std::env::var("MIMOTO_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_string())
}

/// A SQLite store in `dir` (keep the `TempDir` alive as long as the store).
pub async fn sqlite_in(dir: &std::path::Path) -> store::Result<SqliteStore> {
    let url = format!("sqlite://{}", dir.join("test.db").display());
    SqliteStore::connect(&url).await
}

/// A PostgreSQL store on a schema nobody else uses; returns the store and the schema name.
pub async fn fresh_pg() -> store::Result<(PgStore, String)> {
    let url = test_database_url();
    let options = PgConnectOptions::from_str(&url)?;
    ensure_database(&options).await?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = options.connect().await?;
    // The schema name is generated above from hex digits only.
    let create = format!("CREATE SCHEMA {schema}");
    sqlx::query(&create).execute(&mut conn).await?;
    conn.close().await?;
    let store = PgStore::connect_with(options.options([("search_path", schema.as_str())])).await?;
    Ok((store, schema))
}

/// Another store on the schema `schema` made by [`fresh_pg`] (a restarted node).
#[allow(dead_code)] // the web crate's integration tests use it; the conformance tests do not
pub async fn pg_schema(schema: &str) -> store::Result<PgStore> {
    let options = PgConnectOptions::from_str(&test_database_url())?;
    PgStore::connect_with(options.options([("search_path", schema)])).await
}

/// [`pg_schema`] through another port on the same host (a loopback proxy a test can cut).
#[allow(dead_code)] // the web crate's integration tests use it; the conformance tests do not
pub async fn pg_schema_at(schema: &str, port: u16) -> store::Result<PgStore> {
    let options = PgConnectOptions::from_str(&test_database_url())?.port(port);
    PgStore::connect_with(options.options([("search_path", schema)])).await
}

/// Drops a schema made by [`fresh_pg`].
pub async fn drop_pg_schema(schema: &str) -> store::Result<()> {
    if !schema.starts_with("t_") || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    let mut conn = PgConnectOptions::from_str(&test_database_url())?.connect().await?;
    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    sqlx::query(&drop).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn ensure_database(options: &PgConnectOptions) -> store::Result<()> {
    if let Ok(conn) = options.connect().await {
        conn.close().await?;
        return Ok(());
    }
    let name = options.get_database().unwrap_or("mimoto_test").to_string();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(store::StoreError::Corrupt(format!("test database name {name:?}")));
    }
    let mut admin = options.clone().database("postgres").connect().await?;
    let create = format!("CREATE DATABASE {name}");
    match sqlx::query(&create).execute(&mut admin).await {
        Ok(_) => {}
        // Another test process created it first.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
        Err(e) => return Err(e.into()),
    }
    admin.close().await?;
    Ok(())
}

/// What someone who can switch the audit log's triggers off can do to it (tests of
/// `store::audit_chain` only).
#[derive(Debug, Clone)]
pub enum Tamper {
    /// Changes the action of row `seq`.
    Edit { seq: i64, action: String },
    /// Removes row `seq`.
    Delete { seq: i64 },
}

fn tamper_sql(t: &Tamper) -> (&'static str, i64, Option<String>) {
    match t {
        Tamper::Edit { seq, action } => ("UPDATE audit_log SET action = $1 WHERE seq = $2", *seq, Some(action.clone())),
        Tamper::Delete { seq } => ("DELETE FROM audit_log WHERE seq = $1", *seq, None),
    }
}

/// [`Tamper`] on SQLite: the triggers are dropped first.
pub async fn tamper_sqlite(s: &SqliteStore, t: &Tamper) -> store::Result<()> {
    sqlx::query("DROP TRIGGER IF EXISTS audit_log_no_update").execute(s.pool()).await?;
    sqlx::query("DROP TRIGGER IF EXISTS audit_log_no_delete").execute(s.pool()).await?;
    let (sql, seq, action) = tamper_sql(t);
    match action {
        Some(a) => sqlx::query(sql).bind(a).bind(seq).execute(s.pool()).await?,
        None => sqlx::query(sql).bind(seq).execute(s.pool()).await?,
    };
    Ok(())
}

/// [`Tamper`] on PostgreSQL: the triggers are disabled for the change, as a table owner can.
pub async fn tamper_pg(s: &PgStore, t: &Tamper) -> store::Result<()> {
    let mut tx = s.pool().begin().await?;
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER").execute(&mut *tx).await?;
    let (sql, seq, action) = tamper_sql(t);
    match action {
        Some(a) => sqlx::query(sql).bind(a).bind(seq).execute(&mut *tx).await?,
        None => sqlx::query(sql).bind(seq).execute(&mut *tx).await?,
    };
    sqlx::query("ALTER TABLE audit_log ENABLE TRIGGER USER").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// A fault injected into one table: while it is on, every INSERT into or UPDATE of `table` fails as the
/// database going away would (PostgreSQL: SQLSTATE 08006, an outage; SQLite: an abort), so a
/// test can break a step at exactly one statement and see that nothing of it was kept.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // the web crate's integration tests use it; the conformance tests do not
pub enum Fault<'a> {
    /// On the PostgreSQL schema made by [`fresh_pg`].
    Pg { schema: &'a str },
    /// On the SQLite file of [`sqlite_in`] in this directory.
    Sqlite { dir: &'a std::path::Path },
}

impl Fault<'_> {
    fn checked(table: &str) -> store::Result<&str> {
        if table.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            Ok(table)
        } else {
            Err(store::StoreError::Corrupt(format!("table name {table:?}")))
        }
    }

    /// Every INSERT into or UPDATE of `table` fails until [`Fault::heal`].
    #[allow(dead_code)] // the web crate's integration tests use it; the conformance tests do not
    pub async fn break_writes(&self, table: &str) -> store::Result<()> {
        self.break_writes_when(table, "TRUE").await
    }

    /// [`Fault::break_writes`] for the rows whose new values meet `condition` (SQL over
    /// `NEW`, written by the test, e.g. `NEW.sent_at IS NOT NULL`).
    #[allow(dead_code)] // the web crate's integration tests use it; the conformance tests do not
    pub async fn break_writes_when(&self, table: &str, condition: &str) -> store::Result<()> {
        let table = Self::checked(table)?;
        match self {
            Fault::Pg { schema } => {
                let s = pg_schema(schema).await?;
                let function = format!(
                    "CREATE OR REPLACE FUNCTION fault_{table}() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'injected fault' USING ERRCODE = '08006'; END $$"
                );
                sqlx::query(&function).execute(s.pool()).await?;
                let trigger = format!(
                    "CREATE TRIGGER fault_{table} BEFORE INSERT OR UPDATE ON {table} \
                     FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION fault_{table}()"
                );
                sqlx::query(&trigger).execute(s.pool()).await?;
                s.pool().close().await;
            }
            Fault::Sqlite { dir } => {
                let s = sqlite_in(dir).await?;
                for op in ["INSERT", "UPDATE"] {
                    let trigger = format!(
                        "CREATE TRIGGER fault_{table}_{op} BEFORE {op} ON {table} WHEN {condition} \
                         BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                    );
                    sqlx::query(&trigger).execute(s.pool()).await?;
                }
                s.pool().close().await;
            }
        }
        Ok(())
    }

    /// Ends [`Fault::break_writes`] on `table`.
    #[allow(dead_code)] // the web crate's integration tests use it; the conformance tests do not
    pub async fn heal(&self, table: &str) -> store::Result<()> {
        let table = Self::checked(table)?;
        match self {
            Fault::Pg { schema } => {
                let s = pg_schema(schema).await?;
                sqlx::query(&format!("DROP TRIGGER IF EXISTS fault_{table} ON {table}")).execute(s.pool()).await?;
                s.pool().close().await;
            }
            Fault::Sqlite { dir } => {
                let s = sqlite_in(dir).await?;
                for op in ["INSERT", "UPDATE"] {
                    sqlx::query(&format!("DROP TRIGGER IF EXISTS fault_{table}_{op}")).execute(s.pool()).await?;
                }
                s.pool().close().await;
            }
        }
        Ok(())
    }
}
