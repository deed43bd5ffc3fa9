//! The production backend: PostgreSQL, shared by every app node. The SQL is in the aggregate
//! modules (shared with SQLite); this module connects.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{Result, Store};

pub struct PgStore {
    pub(crate) pool: PgPool,
    /// The audit chain's keys, set once by the application ([`crate::Operators::set_audit_chain_keys`]).
    pub(crate) audit_key: std::sync::OnceLock<crate::audit_chain::ChainKeys>,
}

/// How long a request waits for a database connection (connecting included) before it is
/// answered 503: short, so an outage costs members seconds, not a hung page (issue #15).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

impl PgStore {
    /// Connects to `url` (`postgres://…`) and runs the PostgreSQL migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options (tests use this to pin a `search_path` schema).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(10).acquire_timeout(ACQUIRE_TIMEOUT).connect_with(options).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool, audit_key: std::sync::OnceLock::new() })
    }

    /// The audit chain's key; all zeros until the application sets it (store tests).
    pub(crate) fn chain_key(&self) -> &crate::audit_chain::ChainKeys {
        self.audit_key.get().unwrap_or(&crate::audit_chain::UNSET)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
