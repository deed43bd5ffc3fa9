//! The roster on SQLite: the shared SQL, and imports that write with multi-row INSERTs and
//! prepared UPDATEs in one transaction.

use sqlx::SqlitePool;

use crate::sqlite::SqliteStore;

sql_roster!(SqliteStore, sqlx::Sqlite);

/// Rows per multi-row INSERT (10 parameters each).
const BATCH: usize = 1000;

async fn begin_import(pool: &SqlitePool, org_id: &str, import_id: &str, now: i64) -> Result<Box<dyn RosterImport>> {
    let mut tx = pool.begin().await?;
    // A write first, so the transaction holds SQLite's write lock from the start: imports
    // (of any organization) wait for each other instead of failing at their first write.
    crate::orgs::sqlite::lock_org(&mut *tx, org_id).await?;
    Ok(Box::new(Import { tx, org_id: org_id.to_string(), import_id: import_id.to_string(), now }))
}

struct Import {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    org_id: String,
    import_id: String,
    now: i64,
}

#[async_trait]
impl RosterImport for Import {
    async fn mac_key(&mut self) -> Result<Option<String>> {
        crate::orgs::sqlite::roster_mac_key_in(&mut *self.tx, &self.org_id).await
    }

    async fn existing(&mut self) -> Result<Vec<StoredRecord>> {
        existing_records(&mut self.tx, &self.org_id).await
    }

    async fn insert(&mut self, rows: &[RosterRow]) -> Result<()> {
        for chunk in rows.chunks(BATCH) {
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

    async fn update(&mut self, rows: &[RosterRow]) -> Result<()> {
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

    async fn end(&mut self, records: &[RecordRef], ended_on: &str) -> Result<()> {
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

    async fn commit(self: Box<Self>, stats: ImportStats) -> Result<()> {
        let this = *self;
        finish_import(this.tx, &this.org_id, &this.import_id, stats, this.now).await
    }
}
