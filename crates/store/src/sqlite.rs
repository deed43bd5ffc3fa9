//! The embedded default backend: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite:///path/to/file.db` or
    /// `sqlite::memory:`) and runs the SQLite migrations.
    pub async fn connect(url: &str) -> crate::Result<Self> {
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
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl SqliteStore {
    /// SQLite writes roster rows with multi-row INSERTs inside one transaction.
    async fn begin_import(&self, org_id: &str, import_id: &str, now: time::OffsetDateTime) -> crate::Result<Box<dyn crate::RosterImport>> {
        let tx = self.pool.begin().await?;
        Ok(Box::new(Import { tx, org_id: org_id.to_string(), import_id: import_id.to_string(), rows: 0, now: crate::to_ts(now) }))
    }
}

/// Multi-row INSERTs inside one transaction (SQLite has no COPY).
struct Import {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    org_id: String,
    import_id: String,
    rows: u64,
    now: i64,
}

#[async_trait::async_trait]
impl crate::RosterImport for Import {
    async fn add(&mut self, rows: &[crate::RosterRow]) -> crate::Result<()> {
        let now = self.now;
        for chunk in rows.chunks(crate::sql::ROSTER_BATCH) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO roster_records (id, org_id, record_key, card_index, branch_index, person_index, data_enc, \
                 eligible_from, eligible_until, import_id, updated_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(&self.org_id)
                    .push_bind(&r.record_key)
                    .push_bind(&r.card_index)
                    .push_bind(&r.branch_index)
                    .push_bind(&r.person_index)
                    .push_bind(&r.data_enc)
                    .push_bind(&r.eligible_from)
                    .push_bind(&r.eligible_until)
                    .push_bind(&self.import_id)
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (record_key) DO UPDATE SET card_index = excluded.card_index, \
                 branch_index = excluded.branch_index, person_index = excluded.person_index, data_enc = excluded.data_enc, \
                 eligible_from = excluded.eligible_from, eligible_until = excluded.eligible_until, \
                 import_id = excluded.import_id, updated_at = excluded.updated_at",
            );
            q.build().execute(&mut *self.tx).await?;
            self.rows += chunk.len() as u64;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>, ended_on: &str, now: time::OffsetDateTime) -> crate::Result<crate::ImportStats> {
        let this = *self;
        let mut tx = this.tx;
        let stats = finish_import(&mut tx, &this.org_id, &this.import_id, this.rows, ended_on, now).await?;
        tx.commit().await?;
        Ok(stats)
    }
}


crate::sql::impl_store!(SqliteStore, SqliteRow, sqlx::Sqlite, "sqlite", "");
