//! The roster on PostgreSQL: the shared SQL, and imports that stream new rows with binary
//! COPY straight into `roster_records`; changed rows go through a staging table of the
//! transaction and one `UPDATE … FROM` at commit.

use sqlx::PgPool;

use crate::postgres::PgStore;

sql_roster!(PgStore, sqlx::Postgres);

async fn begin_import(pool: &PgPool, org_id: &str, import_id: &str, now: i64) -> Result<Box<dyn RosterImport>> {
    let mut tx = pool.begin().await?;
    // Imports of one organization wait for each other.
    sqlx::query("SELECT id FROM organizations WHERE id = $1 FOR UPDATE").bind(org_id).fetch_one(&mut *tx).await?;
    Ok(Box::new(CopyImport {
        tx,
        org_id: org_id.to_string(),
        import_id: import_id.to_string(),
        now,
        staged: false,
        buf: Vec::new(),
    }))
}

struct CopyImport {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    org_id: String,
    import_id: String,
    now: i64,
    /// Changed rows wait in `roster_stage` until commit.
    staged: bool,
    buf: Vec<u8>,
}

const COPY_COLUMNS: &str = "(org_id, card_index, record_key, branch_index, person_index, content_mac, data_enc, \
     eligible_from, eligible_until, updated_at)";

/// One field of PostgreSQL's binary COPY format: length, then the bytes (text and bytea
/// alike); `None` is NULL.
pub(crate) fn field(buf: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
            buf.extend_from_slice(v);
        }
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

impl CopyImport {
    async fn copy(&mut self, table: &str, rows: &[RosterRow]) -> Result<()> {
        let now = self.now.to_be_bytes();
        self.buf.clear();
        self.buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        for r in rows {
            self.buf.extend_from_slice(&10i16.to_be_bytes());
            field(&mut self.buf, Some(self.org_id.as_bytes()));
            field(&mut self.buf, Some(&r.card_index));
            field(&mut self.buf, Some(&r.record_key));
            field(&mut self.buf, r.branch_index.as_deref());
            field(&mut self.buf, Some(&r.person_index));
            field(&mut self.buf, Some(&r.content_mac));
            field(&mut self.buf, Some(&r.data_enc));
            field(&mut self.buf, Some(r.eligible_from.as_bytes()));
            field(&mut self.buf, r.eligible_until.as_deref().map(str::as_bytes));
            field(&mut self.buf, Some(&now));
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let statement = format!("COPY {table} {COPY_COLUMNS} FROM STDIN (FORMAT binary)");
        let mut copy = self.tx.copy_in_raw(&statement).await?;
        if let Err(e) = copy.send(self.buf.as_slice()).await {
            let _ = copy.abort("send failed").await;
            return Err(e.into());
        }
        copy.finish().await?;
        Ok(())
    }
}

#[async_trait]
impl RosterImport for CopyImport {
    async fn mac_key(&mut self) -> Result<Option<String>> {
        crate::orgs::postgres::roster_mac_key_in(&mut *self.tx, &self.org_id).await
    }

    async fn existing(&mut self) -> Result<Vec<StoredRecord>> {
        existing_records(&mut self.tx, &self.org_id).await
    }

    async fn insert(&mut self, rows: &[RosterRow]) -> Result<()> {
        self.copy("roster_records", rows).await
    }

    async fn update(&mut self, rows: &[RosterRow]) -> Result<()> {
        if !self.staged {
            sqlx::query("CREATE TEMP TABLE roster_stage (LIKE roster_records) ON COMMIT DROP")
                .execute(&mut *self.tx)
                .await?;
            self.staged = true;
        }
        self.copy("roster_stage", rows).await
    }

    async fn end(&mut self, records: &[RecordRef], ended_on: &str) -> Result<()> {
        let cards: Vec<&[u8]> = records.iter().map(|r| r.card_index.as_slice()).collect();
        let keys: Vec<&[u8]> = records.iter().map(|r| r.record_key.as_slice()).collect();
        sqlx::query(
            "UPDATE roster_records r SET eligible_until = $1, updated_at = $2 \
             FROM UNNEST($4::bytea[], $5::bytea[]) AS e(card_index, record_key) \
             WHERE r.org_id = $3 AND r.card_index = e.card_index AND r.record_key = e.record_key",
        )
        .bind(ended_on)
        .bind(self.now)
        .bind(&self.org_id)
        .bind(&cards)
        .bind(&keys)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>, stats: ImportStats) -> Result<()> {
        let mut this = *self;
        if this.staged {
            sqlx::query(
                "UPDATE roster_records r SET branch_index = s.branch_index, person_index = s.person_index, \
                 content_mac = s.content_mac, data_enc = s.data_enc, eligible_from = s.eligible_from, \
                 eligible_until = s.eligible_until, updated_at = s.updated_at \
                 FROM roster_stage s \
                 WHERE r.org_id = s.org_id AND r.card_index = s.card_index AND r.record_key = s.record_key",
            )
            .execute(&mut *this.tx)
            .await?;
        }
        finish_import(this.tx, &this.org_id, &this.import_id, stats, this.now).await
    }
}
