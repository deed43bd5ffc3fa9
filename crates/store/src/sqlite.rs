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
    /// SQLite writes roster rows with multi-row INSERTs and prepared UPDATEs in one transaction.
    async fn begin_import(&self, org_id: &str, import_id: &str, now: time::OffsetDateTime) -> crate::Result<Box<dyn crate::RosterImport>> {
        let mut tx = self.pool.begin().await?;
        // A write first, so the transaction holds SQLite's write lock from the start: imports
        // (of any organization) wait for each other instead of failing at their first write.
        let found = sqlx::query("UPDATE organizations SET id = id WHERE id = $1").bind(org_id).execute(&mut *tx).await?;
        if found.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound);
        }
        Ok(Box::new(Import { tx, org_id: org_id.to_string(), import_id: import_id.to_string(), now: crate::to_ts(now) }))
    }
}

struct Import {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    org_id: String,
    import_id: String,
    now: i64,
}

#[async_trait::async_trait]
impl crate::RosterImport for Import {
    async fn existing(&mut self) -> crate::Result<Vec<crate::StoredRecord>> {
        existing_records(&mut self.tx, &self.org_id).await
    }

    async fn insert(&mut self, rows: &[crate::RosterRow]) -> crate::Result<()> {
        for chunk in rows.chunks(crate::sql::ROSTER_BATCH) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO roster_records (org_id, card_index, record_key, branch_index, person_index, content_mac, \
                 data_enc, eligible_from, eligible_until, updated_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&self.org_id)
                    .push_bind(&r.card_index)
                    .push_bind(&r.record_key)
                    .push_bind(&r.branch_index)
                    .push_bind(&r.person_index)
                    .push_bind(&r.content_mac)
                    .push_bind(&r.data_enc)
                    .push_bind(&r.eligible_from)
                    .push_bind(&r.eligible_until)
                    .push_bind(self.now);
            });
            q.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn update(&mut self, rows: &[crate::RosterRow]) -> crate::Result<()> {
        for r in rows {
            sqlx::query(
                "UPDATE roster_records SET branch_index = $1, person_index = $2, content_mac = $3, data_enc = $4, \
                 eligible_from = $5, eligible_until = $6, updated_at = $7 \
                 WHERE org_id = $8 AND card_index = $9 AND record_key = $10",
            )
            .bind(&r.branch_index)
            .bind(&r.person_index)
            .bind(&r.content_mac)
            .bind(&r.data_enc)
            .bind(&r.eligible_from)
            .bind(&r.eligible_until)
            .bind(self.now)
            .bind(&self.org_id)
            .bind(&r.card_index)
            .bind(&r.record_key)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn end(&mut self, records: &[crate::RecordRef], ended_on: &str) -> crate::Result<()> {
        for r in records {
            sqlx::query(
                "UPDATE roster_records SET eligible_until = $1, updated_at = $2 \
                 WHERE org_id = $3 AND card_index = $4 AND record_key = $5",
            )
            .bind(ended_on)
            .bind(self.now)
            .bind(&self.org_id)
            .bind(&r.card_index)
            .bind(&r.record_key)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>, stats: crate::ImportStats) -> crate::Result<()> {
        let this = *self;
        finish_import(this.tx, &this.org_id, &this.import_id, stats, this.now).await
    }
}

crate::sql::impl_store!(SqliteStore, SqliteRow, sqlx::Sqlite, "sqlite", "");
