//! The production backend: PostgreSQL, shared by every app node.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and runs the PostgreSQL migrations.
    pub async fn connect(url: &str) -> crate::Result<Self> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options (tests use this to pin a `search_path` schema).
    pub async fn connect_with(options: PgConnectOptions) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl PgStore {
    /// PostgreSQL streams roster rows with binary COPY. The first import of an organization
    /// goes straight into `roster_records`; later ones go into a staging table of the
    /// transaction and are merged with one INSERT … ON CONFLICT. Far faster than INSERTs.
    async fn begin_import(&self, org_id: &str, import_id: &str, now: time::OffsetDateTime) -> crate::Result<Box<dyn crate::RosterImport>> {
        use sqlx::Row as _;
        let mut tx = self.pool.begin().await?;
        let existing: bool = sqlx::query("SELECT EXISTS (SELECT 1 FROM roster_records WHERE org_id = $1) AS e")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("e")?;
        if existing {
            sqlx::query(
                "CREATE TEMP TABLE roster_stage (id TEXT, org_id TEXT, record_key BYTEA, card_index BYTEA, branch_index BYTEA, \
                 person_index BYTEA, data_enc BYTEA, eligible_from TEXT, eligible_until TEXT, import_id TEXT, updated_at BIGINT) \
                 ON COMMIT DROP",
            )
            .execute(&mut *tx)
            .await?;
        }
        Ok(Box::new(CopyImport { tx, org_id: org_id.to_string(), import_id: import_id.to_string(), rows: 0, direct: !existing, now: crate::to_ts(now), buf: Vec::new() }))
    }
}

struct CopyImport {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    org_id: String,
    import_id: String,
    rows: u64,
    /// No records yet for the organization: COPY straight into roster_records.
    direct: bool,
    now: i64,
    buf: Vec<u8>,
}

const COPY_COLUMNS: &str =
    "(id, org_id, record_key, card_index, branch_index, person_index, data_enc, eligible_from, eligible_until, import_id, updated_at)";

/// One field of PostgreSQL's binary COPY format: length, then the bytes (text and bytea
/// alike); `None` is NULL.
fn field(buf: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
            buf.extend_from_slice(v);
        }
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

#[async_trait::async_trait]
impl crate::RosterImport for CopyImport {
    async fn add(&mut self, rows: &[crate::RosterRow]) -> crate::Result<()> {
        let now = self.now.to_be_bytes();
        self.buf.clear();
        self.buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        for r in rows {
            self.buf.extend_from_slice(&11i16.to_be_bytes());
            field(&mut self.buf, Some(r.id.as_bytes()));
            field(&mut self.buf, Some(self.org_id.as_bytes()));
            field(&mut self.buf, Some(&r.record_key));
            field(&mut self.buf, Some(&r.card_index));
            field(&mut self.buf, r.branch_index.as_deref());
            field(&mut self.buf, Some(&r.person_index));
            field(&mut self.buf, Some(&r.data_enc));
            field(&mut self.buf, Some(r.eligible_from.as_bytes()));
            field(&mut self.buf, r.eligible_until.as_deref().map(str::as_bytes));
            field(&mut self.buf, Some(self.import_id.as_bytes()));
            field(&mut self.buf, Some(&now));
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let table = if self.direct { "roster_records" } else { "roster_stage" };
        let statement = format!("COPY {table} {COPY_COLUMNS} FROM STDIN (FORMAT binary)");
        let mut copy = self.tx.copy_in_raw(&statement).await?;
        if let Err(e) = copy.send(self.buf.as_slice()).await {
            let _ = copy.abort("send failed").await;
            return Err(e.into());
        }
        copy.finish().await?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    async fn commit(self: Box<Self>, ended_on: &str, now: time::OffsetDateTime) -> crate::Result<crate::ImportStats> {
        let this = *self;
        let mut tx = this.tx;
        if !this.direct {
            sqlx::query(
                "INSERT INTO roster_records SELECT * FROM roster_stage \
                 ON CONFLICT (record_key) DO UPDATE SET card_index = excluded.card_index, branch_index = excluded.branch_index, \
                 person_index = excluded.person_index, data_enc = excluded.data_enc, eligible_from = excluded.eligible_from, \
                 eligible_until = excluded.eligible_until, import_id = excluded.import_id, updated_at = excluded.updated_at",
            )
            .execute(&mut *tx)
            .await?;
        }
        let stats = finish_import(&mut tx, &this.org_id, &this.import_id, this.rows, ended_on, now).await?;
        tx.commit().await?;
        Ok(stats)
    }
}

crate::sql::impl_store!(PgStore, PgRow, sqlx::Postgres, "postgres", "FOR UPDATE SKIP LOCKED");
