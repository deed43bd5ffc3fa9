//! The embedded default backend: one SQLite file in WAL mode. The SQL is in the aggregate
//! modules (shared with PostgreSQL); this module opens the database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{Result, Store};

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The audit chain's keys, set once by the application ([`crate::Operators::set_audit_chain_keys`]).
    pub(crate) audit_key: std::sync::OnceLock<crate::audit_chain::ChainKeys>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite:///path/to/file.db` or
    /// `sqlite::memory:`) and runs the SQLite migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Blind indexes are random keys: with SQLite's default 2 MB page cache a large
            // roster import thrashes the B-trees. The cache grows only as pages are used.
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool, audit_key: std::sync::OnceLock::new() })
    }

    /// The audit chain's key; all zeros until the application sets it (store tests).
    pub(crate) fn chain_key(&self) -> &crate::audit_chain::ChainKeys {
        self.audit_key.get().unwrap_or(&crate::audit_chain::UNSET)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
