//! The SQL shared by every backend. SQLite and PostgreSQL both understand `$N` parameters,
//! `ON CONFLICT … DO UPDATE` and `RETURNING`, so one text serves both; the macro below
//! compiles it once per pool type. Backend-specific parts live in the migrations.

use domain::insurer::InsurerNumber;
use domain::org::{CardPattern, OrgType, Organization};

use crate::{StoreError, Result};

pub(crate) fn org_from_parts(
    id: String,
    insurer_number: String,
    org_type: String,
    name: String,
    point_name: Option<String>,
    checkup_linked: bool,
    card_pattern: i32,
) -> Result<Organization> {
    let insurer_number = InsurerNumber::parse(&insurer_number)
        .map_err(|e| StoreError::Corrupt(format!("insurer number of org {id}: {e}")))?;
    let org_type = OrgType::parse(&org_type).ok_or_else(|| StoreError::Corrupt(format!("org type {org_type}")))?;
    let card_pattern = u8::try_from(card_pattern)
        .ok()
        .and_then(CardPattern::from_number)
        .ok_or_else(|| StoreError::Corrupt(format!("card pattern {card_pattern}")))?;
    Ok(Organization { id, insurer_number, org_type, name, point_name, checkup_linked, card_pattern })
}

pub(crate) const ORG_COLUMNS: &str = "id, insurer_number, org_type, name, point_name, checkup_linked, card_pattern";
pub(crate) const FLOW_COLUMNS: &str = "id, kind, state, data, version, created_at, updated_at, expires_at";
pub(crate) const USER_COLUMNS: &str = "id, org_id, email_enc, password_hash, locale, created_at, password_changed_at";
pub(crate) const EKYC_COLUMNS: &str = "id, user_id, org_id, state, open, data, version, created_at, updated_at, submitted_at, decided_at";
pub(crate) const EKYC_IMAGE_COLUMNS: &str = "id, application_id, kind, sha256, size, created_at, deleted_at";
pub(crate) const SESSION_COLUMNS: &str = "id_hash, user_id, kind, created_at, last_seen_at, expires_at, step_up_until";
pub(crate) const OPERATOR_COLUMNS: &str =
    "id, email_index, email_enc, name_enc, role, password_hash, totp_secret_enc, totp_last_step, created_at";
pub(crate) const OPERATOR_SESSION_COLUMNS: &str = "id_hash, operator_id, created_at, last_seen_at, expires_at";
pub(crate) const INQUIRY_COLUMNS: &str =
    "id, user_id, category, email_enc, message_enc, locale, status, created_at, updated_at, closed_at";
pub(crate) const AUDIT_COLUMNS: &str = "seq, at, operator_id, action, target_type, target_id, client_ip";

/// Rows per multi-row INSERT of a roster import into SQLite (10 parameters each).
pub(crate) const ROSTER_BATCH: usize = 1000;

macro_rules! impl_store {
    ($store:ty, $row:ty, $db:ty, $backend:literal, $skip_locked:literal) => {
        use sqlx::Row as _;
        use $crate::sql::{AUDIT_COLUMNS, EKYC_COLUMNS, EKYC_IMAGE_COLUMNS, FLOW_COLUMNS, OPERATOR_COLUMNS,
            OPERATOR_SESSION_COLUMNS, ORG_COLUMNS, SESSION_COLUMNS, USER_COLUMNS, INQUIRY_COLUMNS};
        use $crate::{from_ts, to_ts, CodeAttempt, CodeRecord, ConsentRecord, FlowRecord, FlowUpdate, NewCode, NewMail,
            NewUser, OutboxRecord, Result, SessionRecord, Store, StoreError, UserRecord, RosterImport,
            RosterMatch, RosterLink, RecordRef, ImportStats, EkycRecord, EkycImage, OperatorRecord,
            OperatorSessionRecord, NewAuditEntry, AuditEntry, EkycReview, InquiryRecord, InquiryReply,
            CheckupImport, CheckupImportStats, CheckupResultRecord, CheckupRow, StepUpFailures,
            HealthEntryRecord, HealthEntryRow, HealthImport, HealthImportStats, HealthKind};
        use domain::org::Organization;
        use time::OffsetDateTime;

        fn org_row(r: &$row) -> Result<Organization> {
            $crate::sql::org_from_parts(
                r.try_get("id")?,
                r.try_get("insurer_number")?,
                r.try_get("org_type")?,
                r.try_get("name")?,
                r.try_get("point_name")?,
                r.try_get("checkup_linked")?,
                r.try_get("card_pattern")?,
            )
        }

        fn flow_row(r: &$row) -> Result<FlowRecord> {
            Ok(FlowRecord {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                state: r.try_get("state")?,
                data: r.try_get("data")?,
                version: r.try_get("version")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                updated_at: from_ts(r.try_get("updated_at")?)?,
                expires_at: from_ts(r.try_get("expires_at")?)?,
            })
        }

        fn user_row(r: &$row) -> Result<UserRecord> {
            Ok(UserRecord {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                email_enc: r.try_get("email_enc")?,
                password_hash: r.try_get("password_hash")?,
                locale: r.try_get("locale")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                password_changed_at: from_ts(r.try_get("password_changed_at")?)?,
            })
        }

        fn session_row(r: &$row) -> Result<SessionRecord> {
            Ok(SessionRecord {
                id_hash: r.try_get("id_hash")?,
                user_id: r.try_get("user_id")?,
                kind: r.try_get("kind")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                last_seen_at: from_ts(r.try_get("last_seen_at")?)?,
                expires_at: from_ts(r.try_get("expires_at")?)?,
                step_up_until: opt_ts(r.try_get("step_up_until")?)?,
            })
        }

        fn opt_ts(v: Option<i64>) -> Result<Option<OffsetDateTime>> {
            v.map(from_ts).transpose()
        }

        fn ekyc_row(r: &$row) -> Result<EkycRecord> {
            Ok(EkycRecord {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                org_id: r.try_get("org_id")?,
                state: r.try_get("state")?,
                open: r.try_get::<i64, _>("open")? == 1,
                data: r.try_get("data")?,
                version: r.try_get("version")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                updated_at: from_ts(r.try_get("updated_at")?)?,
                submitted_at: opt_ts(r.try_get("submitted_at")?)?,
                decided_at: opt_ts(r.try_get("decided_at")?)?,
            })
        }

        fn ekyc_image_row(r: &$row) -> Result<EkycImage> {
            Ok(EkycImage {
                id: r.try_get("id")?,
                application_id: r.try_get("application_id")?,
                kind: r.try_get("kind")?,
                sha256: r.try_get("sha256")?,
                size: r.try_get("size")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                deleted_at: opt_ts(r.try_get("deleted_at")?)?,
            })
        }

        fn operator_row(r: &$row) -> Result<OperatorRecord> {
            Ok(OperatorRecord {
                id: r.try_get("id")?,
                email_index: r.try_get("email_index")?,
                email_enc: r.try_get("email_enc")?,
                name_enc: r.try_get("name_enc")?,
                role: r.try_get("role")?,
                password_hash: r.try_get("password_hash")?,
                totp_secret_enc: r.try_get("totp_secret_enc")?,
                totp_last_step: r.try_get("totp_last_step")?,
                created_at: from_ts(r.try_get("created_at")?)?,
            })
        }

        fn operator_session_row(r: &$row) -> Result<OperatorSessionRecord> {
            Ok(OperatorSessionRecord {
                id_hash: r.try_get("id_hash")?,
                operator_id: r.try_get("operator_id")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                last_seen_at: from_ts(r.try_get("last_seen_at")?)?,
                expires_at: from_ts(r.try_get("expires_at")?)?,
            })
        }

        fn inquiry_row(r: &$row) -> Result<InquiryRecord> {
            Ok(InquiryRecord {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                category: r.try_get("category")?,
                email_enc: r.try_get("email_enc")?,
                message_enc: r.try_get("message_enc")?,
                locale: r.try_get("locale")?,
                status: r.try_get("status")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                updated_at: from_ts(r.try_get("updated_at")?)?,
                closed_at: opt_ts(r.try_get("closed_at")?)?,
            })
        }

        async fn insert_mail<'c, E>(executor: E, mail: &NewMail) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(
                "INSERT INTO mail_outbox (id, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, 0, $3)",
            )
            .bind(&mail.id)
            .bind(&mail.payload)
            .bind(to_ts(mail.created_at))
            .execute(executor)
            .await?;
            Ok(())
        }

        /// Why an update of a not-closed inquiry touched no row: it is missing or closed.
        async fn inquiry_missing_or_closed<'c, E>(executor: E, id: &str) -> StoreError
        where
            E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
        {
            match sqlx::query("SELECT status FROM inquiries WHERE id = $1").bind(id).fetch_optional(executor).await {
                Ok(Some(_)) => StoreError::Conflict,
                Ok(None) => StoreError::NotFound,
                Err(e) => e.into(),
            }
        }

        fn audit_row(r: &$row) -> Result<AuditEntry> {
            Ok(AuditEntry {
                seq: r.try_get("seq")?,
                at: from_ts(r.try_get("at")?)?,
                operator_id: r.try_get("operator_id")?,
                action: r.try_get("action")?,
                target_type: r.try_get("target_type")?,
                target_id: r.try_get("target_id")?,
                client_ip: r.try_get("client_ip")?,
            })
        }

        /// Writes an eKYC application if the stored version is `a.version`.
        async fn apply_ekyc<'c, E>(executor: E, a: &EkycRecord) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
        {
            let done = sqlx::query(
                "UPDATE ekyc_applications SET state = $1, open = $2, data = $3, version = version + 1, updated_at = $4, \
                 submitted_at = $5, decided_at = $6 WHERE id = $7 AND version = $8",
            )
            .bind(&a.state)
            .bind(i64::from(a.open))
            .bind(&a.data)
            .bind(to_ts(a.updated_at))
            .bind(a.submitted_at.map(to_ts))
            .bind(a.decided_at.map(to_ts))
            .bind(&a.id)
            .bind(a.version)
            .execute(executor)
            .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
        }

        async fn insert_audit<'c, E>(executor: E, e: &NewAuditEntry) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(
                "INSERT INTO audit_log (at, operator_id, action, target_type, target_id, client_ip) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(to_ts(e.at))
            .bind(&e.operator_id)
            .bind(&e.action)
            .bind(&e.target_type)
            .bind(&e.target_id)
            .bind(&e.client_ip)
            .execute(executor)
            .await?;
            Ok(())
        }

        fn code_row(r: &$row) -> Result<CodeRecord> {
            Ok(CodeRecord {
                id: r.try_get("id")?,
                code_mac: r.try_get("code_mac")?,
                attempts: r.try_get("attempts")?,
                created_at: from_ts(r.try_get("created_at")?)?,
                expires_at: from_ts(r.try_get("expires_at")?)?,
            })
        }

        /// Applies a versioned flow update inside a transaction.
        async fn apply_flow<'c, E>(executor: E, update: &FlowUpdate<'_>) -> Result<()>
        where
            E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
        {
            let f = update.record;
            let done = sqlx::query(
                "UPDATE flows SET state = $1, data = $2, version = version + 1, updated_at = $3, expires_at = $4 \
                 WHERE id = $5 AND kind = $6 AND version = $7",
            )
            .bind(&f.state)
            .bind(&f.data)
            .bind(to_ts(f.updated_at))
            .bind(to_ts(f.expires_at))
            .bind(&f.id)
            .bind(&f.kind)
            .bind(f.version)
            .execute(executor)
            .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
        }

        /// Every record of the organization, for an import to compare with its file.
        pub(crate) async fn existing_records(
            tx: &mut sqlx::Transaction<'static, $db>,
            org_id: &str,
        ) -> Result<Vec<$crate::StoredRecord>> {
            use futures_util::TryStreamExt as _;
            let mut rows = sqlx::query(
                "SELECT card_index, record_key, content_mac, eligible_until FROM roster_records WHERE org_id = $1",
            )
            .bind(org_id)
            .fetch(&mut **tx);
            let mut out = Vec::new();
            while let Some(r) = rows.try_next().await? {
                out.push($crate::StoredRecord {
                    card_index: r.try_get("card_index")?,
                    record_key: r.try_get("record_key")?,
                    content_mac: r.try_get("content_mac")?,
                    eligible_until: r.try_get("eligible_until")?,
                });
            }
            Ok(out)
        }

        /// Records a finished import and commits it.
        pub(crate) async fn finish_import(
            mut tx: sqlx::Transaction<'static, $db>,
            org_id: &str,
            import_id: &str,
            stats: ImportStats,
            now: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO roster_imports (id, org_id, row_count, inserted, updated, ended, finished_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(import_id)
            .bind(org_id)
            .bind(stats.rows as i64)
            .bind(stats.inserted as i64)
            .bind(stats.updated as i64)
            .bind(stats.ended as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        /// A checkup import: one transaction holding the organization's row lock.
        struct CheckupTx {
            tx: sqlx::Transaction<'static, $db>,
            org_id: String,
            import_id: String,
            now: i64,
        }

        #[async_trait::async_trait]
        impl CheckupImport for CheckupTx {
            async fn put(&mut self, row: &CheckupRow) -> Result<bool> {
                // On a second result of the same record and date the stored row is replaced
                // and keeps its id, so the returned id tells a replacement from a new row.
                let stored: String = sqlx::query(
                    "INSERT INTO checkup_results (id, org_id, card_index, record_key, examined_on, data_enc, import_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (org_id, card_index, record_key, examined_on) DO UPDATE SET \
                       data_enc = excluded.data_enc, import_id = excluded.import_id, created_at = excluded.created_at \
                     RETURNING id",
                )
                .bind(&row.id)
                .bind(&self.org_id)
                .bind(&row.record.card_index)
                .bind(&row.record.record_key)
                .bind(&row.examined_on)
                .bind(&row.data_enc)
                .bind(&self.import_id)
                .bind(self.now)
                .fetch_one(&mut *self.tx)
                .await?
                .try_get("id")?;
                Ok(stored != row.id)
            }

            async fn commit(self: Box<Self>, stats: CheckupImportStats) -> Result<()> {
                let mut this = *self;
                sqlx::query("UPDATE checkup_imports SET documents = $1, inserted = $2, replaced = $3 WHERE id = $4")
                    .bind(stats.documents as i64)
                    .bind(stats.inserted as i64)
                    .bind(stats.replaced as i64)
                    .bind(&this.import_id)
                    .execute(&mut *this.tx)
                    .await?;
                this.tx.commit().await?;
                Ok(())
            }
        }

        /// A health import: one transaction holding the organization's row lock.
        struct HealthTx {
            tx: sqlx::Transaction<'static, $db>,
            org_id: String,
            import_id: String,
            kind: HealthKind,
            now: i64,
        }

        #[async_trait::async_trait]
        impl HealthImport for HealthTx {
            async fn put(&mut self, row: &HealthEntryRow) -> Result<bool> {
                // An entry with the same record, kind and row key is kept as it is.
                let done = sqlx::query(
                    "INSERT INTO health_entries (id, org_id, card_index, record_key, kind, occurred_on, row_key, data_enc, import_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (org_id, card_index, record_key, kind, row_key) DO NOTHING",
                )
                .bind(&row.id)
                .bind(&self.org_id)
                .bind(&row.record.card_index)
                .bind(&row.record.record_key)
                .bind(self.kind.as_str())
                .bind(&row.occurred_on)
                .bind(&row.row_key)
                .bind(&row.data_enc)
                .bind(&self.import_id)
                .bind(self.now)
                .execute(&mut *self.tx)
                .await?;
                Ok(done.rows_affected() == 0)
            }

            async fn commit(self: Box<Self>, stats: HealthImportStats) -> Result<()> {
                let mut this = *self;
                sqlx::query("UPDATE health_imports SET row_count = $1, inserted = $2 WHERE id = $3")
                    .bind(stats.rows as i64)
                    .bind(stats.inserted as i64)
                    .bind(&this.import_id)
                    .execute(&mut *this.tx)
                    .await?;
                this.tx.commit().await?;
                Ok(())
            }
        }

        fn roster_match_row(r: &$row) -> Result<RosterMatch> {
            Ok(RosterMatch {
                record: RecordRef { card_index: r.try_get("card_index")?, record_key: r.try_get("record_key")? },
                branch_index: r.try_get("branch_index")?,
                eligible_from: r.try_get("eligible_from")?,
                eligible_until: r.try_get("eligible_until")?,
                data_enc: r.try_get("data_enc")?,
                linked_user_id: r.try_get("user_id")?,
            })
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_org(&self, org: &Organization, now: OffsetDateTime) -> Result<()> {
                sqlx::query(
                    "INSERT INTO organizations (id, insurer_number, org_type, name, point_name, checkup_linked, card_pattern, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&org.id)
                .bind(org.insurer_number.as_str())
                .bind(org.org_type.as_str())
                .bind(&org.name)
                .bind(&org.point_name)
                .bind(org.checkup_linked)
                .bind(i32::from(org.card_pattern.number()))
                .bind(to_ts(now))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_orgs(&self) -> Result<Vec<Organization>> {
                let sql = format!("SELECT {ORG_COLUMNS} FROM organizations ORDER BY insurer_number");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
                rows.iter().map(org_row).collect()
            }

            async fn find_org_by_insurer_number(&self, insurer_number: &str) -> Result<Option<Organization>> {
                let sql = format!("SELECT {ORG_COLUMNS} FROM organizations WHERE insurer_number = $1");
                let row = sqlx::query(&sql).bind(insurer_number).fetch_optional(&self.pool).await?;
                row.as_ref().map(org_row).transpose()
            }

            async fn get_org(&self, id: &str) -> Result<Option<Organization>> {
                let sql = format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(org_row).transpose()
            }

            async fn insert_flow(&self, f: &FlowRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO flows (id, kind, state, data, version, created_at, updated_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&f.id)
                .bind(&f.kind)
                .bind(&f.state)
                .bind(&f.data)
                .bind(f.version)
                .bind(to_ts(f.created_at))
                .bind(to_ts(f.updated_at))
                .bind(to_ts(f.expires_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_flow(&self, kind: &str, id: &str) -> Result<Option<FlowRecord>> {
                let sql = format!("SELECT {FLOW_COLUMNS} FROM flows WHERE id = $1 AND kind = $2");
                let row = sqlx::query(&sql).bind(id).bind(kind).fetch_optional(&self.pool).await?;
                row.as_ref().map(flow_row).transpose()
            }

            async fn update_flow(&self, update: FlowUpdate<'_>) -> Result<()> {
                apply_flow(&self.pool, &update).await
            }

            async fn delete_expired_flows(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM flows WHERE expires_at <= $1").bind(to_ts(now)).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn issue_code(&self, code: &NewCode, mail: &NewMail, flow: Option<FlowUpdate<'_>>) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                if let Some(update) = &flow {
                    apply_flow(&mut *tx, update).await?;
                }
                sqlx::query(
                    "UPDATE one_time_codes SET voided_at = $1 \
                     WHERE purpose = $2 AND subject = $3 AND consumed_at IS NULL AND voided_at IS NULL",
                )
                .bind(to_ts(code.created_at))
                .bind(&code.purpose)
                .bind(&code.subject)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO one_time_codes (id, purpose, subject, code_mac, attempts, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, 0, $5, $6)",
                )
                .bind(&code.id)
                .bind(&code.purpose)
                .bind(&code.subject)
                .bind(&code.code_mac)
                .bind(to_ts(code.created_at))
                .bind(to_ts(code.expires_at))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO mail_outbox (id, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, 0, $3)",
                )
                .bind(&mail.id)
                .bind(&mail.payload)
                .bind(to_ts(mail.created_at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn live_code(&self, purpose: &str, subject: &str) -> Result<Option<CodeRecord>> {
                let row = sqlx::query(
                    "SELECT id, code_mac, attempts, created_at, expires_at FROM one_time_codes \
                     WHERE purpose = $1 AND subject = $2 AND consumed_at IS NULL AND voided_at IS NULL \
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(purpose)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(code_row).transpose()
            }

            async fn attempt_code(&self, purpose: &str, subject: &str, now: OffsetDateTime, max_attempts: i32) -> Result<CodeAttempt> {
                // Count first, compare later: the attempt is spent even if the caller never
                // gets to the comparison, and concurrent guesses cannot exceed the limit.
                let row = sqlx::query(
                    "UPDATE one_time_codes SET attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM one_time_codes WHERE purpose = $1 AND subject = $2 \
                                 AND consumed_at IS NULL AND voided_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1) \
                       AND consumed_at IS NULL AND voided_at IS NULL AND expires_at > $3 AND attempts < $4 \
                     RETURNING id, code_mac, attempts, created_at, expires_at",
                )
                .bind(purpose)
                .bind(subject)
                .bind(to_ts(now))
                .bind(max_attempts)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(r) = row {
                    return Ok(CodeAttempt::Counted(code_row(&r)?));
                }
                Ok(match self.live_code(purpose, subject).await? {
                    None => CodeAttempt::Missing,
                    Some(c) if c.attempts >= max_attempts => CodeAttempt::Exhausted,
                    Some(c) if c.expires_at <= now => CodeAttempt::Expired,
                    // Consumed or voided between the two statements.
                    Some(_) => CodeAttempt::Missing,
                })
            }

            async fn consume_code(&self, code_id: &str, now: OffsetDateTime) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE one_time_codes SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL AND voided_at IS NULL",
                )
                .bind(to_ts(now))
                .bind(code_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn void_codes(&self, purpose: &str, subject: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query(
                    "UPDATE one_time_codes SET voided_at = $1 \
                     WHERE purpose = $2 AND subject = $3 AND consumed_at IS NULL AND voided_at IS NULL",
                )
                .bind(to_ts(now))
                .bind(purpose)
                .bind(subject)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn enqueue_mail(&self, mail: &NewMail) -> Result<()> {
                sqlx::query(
                    "INSERT INTO mail_outbox (id, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, 0, $3)",
                )
                .bind(&mail.id)
                .bind(&mail.payload)
                .bind(to_ts(mail.created_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_due_mails(&self, now: OffsetDateTime, lease: time::Duration, limit: i64) -> Result<Vec<OutboxRecord>> {
                // PostgreSQL: concurrent workers skip each other's rows (SKIP LOCKED) instead of
                // waiting on them, and the outer `next_attempt_at <= $1` is re-checked after any
                // wait, so no row is ever claimed twice. SQLite serializes writers.
                let rows = sqlx::query(concat!(
                    "UPDATE mail_outbox SET next_attempt_at = $2, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
                                  ORDER BY next_attempt_at, created_at LIMIT $3 ",
                    $skip_locked,
                    ") AND sent_at IS NULL AND next_attempt_at <= $1 \
                     RETURNING id, payload, attempts, created_at",
                ))
                .bind(to_ts(now))
                .bind(to_ts(now + lease))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut out = rows
                    .iter()
                    .map(|r| {
                        Ok(OutboxRecord {
                            id: r.try_get("id")?,
                            payload: r.try_get("payload")?,
                            attempts: r.try_get("attempts")?,
                            created_at: from_ts(r.try_get("created_at")?)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
                Ok(out)
            }

            async fn mark_mail_sent(&self, id: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE mail_outbox SET sent_at = $1, last_error = NULL WHERE id = $2")
                    .bind(to_ts(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn mark_mail_failed(&self, id: &str, error: &str, next_attempt_at: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE mail_outbox SET last_error = $1, next_attempt_at = $2 WHERE id = $3 AND sent_at IS NULL")
                    .bind(error)
                    .bind(to_ts(next_attempt_at))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn pending_mail_count(&self) -> Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_at IS NULL").fetch_one(&self.pool).await?;
                Ok(row.try_get("n")?)
            }

            async fn create_user(&self, user: &NewUser, consents: &[ConsentRecord], flow: Option<FlowUpdate<'_>>) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO users (id, org_id, email_index, email_enc, password_hash, locale, created_at, password_changed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(&user.id)
                .bind(&user.org_id)
                .bind(&user.email_index)
                .bind(&user.email_enc)
                .bind(&user.password_hash)
                .bind(&user.locale)
                .bind(to_ts(user.created_at))
                .execute(&mut *tx)
                .await?;
                for c in consents {
                    sqlx::query("INSERT INTO user_consents (user_id, doc, version, accepted_at) VALUES ($1, $2, $3, $4)")
                        .bind(&user.id)
                        .bind(&c.doc)
                        .bind(&c.version)
                        .bind(to_ts(c.accepted_at))
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(update) = &flow {
                    apply_flow(&mut *tx, update).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn find_user_by_email_index(&self, email_index: &[u8]) -> Result<Option<UserRecord>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_index = $1");
                let row = sqlx::query(&sql).bind(email_index).fetch_optional(&self.pool).await?;
                row.as_ref().map(user_row).transpose()
            }

            async fn get_user(&self, id: &str) -> Result<Option<UserRecord>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(user_row).transpose()
            }

            async fn user_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>> {
                let rows = sqlx::query("SELECT doc, version, accepted_at FROM user_consents WHERE user_id = $1 ORDER BY doc")
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(ConsentRecord {
                            doc: r.try_get("doc")?,
                            version: r.try_get("version")?,
                            accepted_at: from_ts(r.try_get("accepted_at")?)?,
                        })
                    })
                    .collect()
            }

            async fn set_password(&self, user_id: &str, password_hash: &str, now: OffsetDateTime, flow: Option<FlowUpdate<'_>>) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                    .bind(password_hash)
                    .bind(to_ts(now))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                if let Some(update) = &flow {
                    apply_flow(&mut *tx, update).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn create_session(&self, s: &SessionRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, kind, created_at, last_seen_at, expires_at, step_up_until) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id_hash)
                .bind(&s.user_id)
                .bind(&s.kind)
                .bind(to_ts(s.created_at))
                .bind(to_ts(s.last_seen_at))
                .bind(to_ts(s.expires_at))
                .bind(s.step_up_until.map(to_ts))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_session(&self, id_hash: &[u8]) -> Result<Option<SessionRecord>> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1");
                let row = sqlx::query(&sql).bind(id_hash).fetch_optional(&self.pool).await?;
                row.as_ref().map(session_row).transpose()
            }

            async fn touch_session(&self, id_hash: &[u8], now: OffsetDateTime, expires_at: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
                    .bind(to_ts(now))
                    .bind(to_ts(expires_at))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &[u8]) -> Result<()> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
                Ok(())
            }

            async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(to_ts(now)).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn set_session_step_up(&self, id_hash: &[u8], until: Option<OffsetDateTime>) -> Result<()> {
                sqlx::query("UPDATE sessions SET step_up_until = $1 WHERE id_hash = $2")
                    .bind(until.map(to_ts))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn step_up_failures(&self, user_id: &str) -> Result<Option<StepUpFailures>> {
                let row = sqlx::query("SELECT failures, locked_until FROM step_up_failures WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| Ok(StepUpFailures { failures: r.try_get("failures")?, locked_until: opt_ts(r.try_get("locked_until")?)? }))
                    .transpose()
            }

            async fn record_step_up_failure(&self, user_id: &str, now: OffsetDateTime, max_failures: i32, lock_until: OffsetDateTime)
                -> Result<StepUpFailures> {
                // Every SET expression sees the old row: `ended` is a lock that is over.
                let row = sqlx::query(
                    "INSERT INTO step_up_failures (user_id, failures, locked_until, updated_at) \
                     VALUES ($1, 1, CASE WHEN 1 >= CAST($3 AS INTEGER) THEN CAST($4 AS BIGINT) ELSE NULL END, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET \
                       failures = CASE WHEN step_up_failures.locked_until <= $2 THEN 1 ELSE step_up_failures.failures + 1 END, \
                       locked_until = CASE \
                         WHEN step_up_failures.locked_until > $2 THEN step_up_failures.locked_until \
                         WHEN (CASE WHEN step_up_failures.locked_until <= $2 THEN 1 ELSE step_up_failures.failures + 1 END) \
                              >= CAST($3 AS INTEGER) THEN CAST($4 AS BIGINT) \
                         ELSE NULL END, \
                       updated_at = $2 \
                     RETURNING failures, locked_until",
                )
                .bind(user_id)
                .bind(to_ts(now))
                .bind(max_failures)
                .bind(to_ts(lock_until))
                .fetch_one(&self.pool)
                .await?;
                Ok(StepUpFailures { failures: row.try_get("failures")?, locked_until: opt_ts(row.try_get("locked_until")?)? })
            }

            async fn clear_step_up_failures(&self, user_id: &str) -> Result<()> {
                sqlx::query("DELETE FROM step_up_failures WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
                Ok(())
            }

            async fn begin_roster_import(&self, org_id: &str, import_id: &str, now: OffsetDateTime) -> Result<Box<dyn RosterImport>> {
                self.begin_import(org_id, import_id, now).await
            }

            async fn find_roster_matches(&self, org_id: &str, card_index: &[u8], person_index: &[u8]) -> Result<Vec<RosterMatch>> {
                let rows = sqlx::query(
                    "SELECT r.card_index, r.record_key, r.branch_index, r.eligible_from, r.eligible_until, r.data_enc, l.user_id \
                     FROM roster_records r LEFT JOIN roster_links l \
                       ON l.org_id = r.org_id AND l.card_index = r.card_index AND l.record_key = r.record_key \
                     WHERE r.org_id = $1 AND r.card_index = $2 AND r.person_index = $3 ORDER BY r.record_key",
                )
                .bind(org_id)
                .bind(card_index)
                .bind(person_index)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RosterMatch {
                            record: RecordRef { card_index: r.try_get("card_index")?, record_key: r.try_get("record_key")? },
                            branch_index: r.try_get("branch_index")?,
                            eligible_from: r.try_get("eligible_from")?,
                            eligible_until: r.try_get("eligible_until")?,
                            data_enc: r.try_get("data_enc")?,
                            linked_user_id: r.try_get("user_id")?,
                        })
                    })
                    .collect()
            }

            async fn roster_count(&self, org_id: &str) -> Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM roster_records WHERE org_id = $1").bind(org_id).fetch_one(&self.pool).await?;
                Ok(row.try_get("n")?)
            }

            async fn link_roster_record(&self, org_id: &str, record: &RecordRef, user_id: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query("INSERT INTO roster_links (org_id, card_index, record_key, user_id, linked_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(org_id)
                    .bind(&record.card_index)
                    .bind(&record.record_key)
                    .bind(user_id)
                    .bind(to_ts(now))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn roster_link_of_user(&self, user_id: &str) -> Result<Option<RosterLink>> {
                let row = sqlx::query("SELECT org_id, card_index, record_key, linked_at FROM roster_links WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(Some(RosterLink {
                        org_id: r.try_get("org_id")?,
                        record: RecordRef { card_index: r.try_get("card_index")?, record_key: r.try_get("record_key")? },
                        linked_at: from_ts(r.try_get("linked_at")?)?,
                    })),
                    None => Ok(None),
                }
            }

            async fn find_roster_records_by_card(&self, org_id: &str, card_index: &[u8]) -> Result<Vec<RosterMatch>> {
                let rows = sqlx::query(
                    "SELECT r.card_index, r.record_key, r.branch_index, r.eligible_from, r.eligible_until, r.data_enc, l.user_id \
                     FROM roster_records r LEFT JOIN roster_links l \
                       ON l.org_id = r.org_id AND l.card_index = r.card_index AND l.record_key = r.record_key \
                     WHERE r.org_id = $1 AND r.card_index = $2 ORDER BY r.record_key",
                )
                .bind(org_id)
                .bind(card_index)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(roster_match_row).collect()
            }

            async fn begin_checkup_import(&self, org_id: &str, import_id: &str, file_name: &str, now: OffsetDateTime) -> Result<Box<dyn CheckupImport>> {
                let mut tx = self.pool.begin().await?;
                // A write first: SQLite takes its write lock now, PostgreSQL locks the
                // organization's row, so imports of one organization wait for each other.
                let found = sqlx::query("UPDATE organizations SET id = id WHERE id = $1").bind(org_id).execute(&mut *tx).await?;
                if found.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("INSERT INTO checkup_imports (id, org_id, file_name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(import_id)
                    .bind(org_id)
                    .bind(file_name)
                    .bind(to_ts(now))
                    .execute(&mut *tx)
                    .await?;
                Ok(Box::new(CheckupTx { tx, org_id: org_id.to_string(), import_id: import_id.to_string(), now: to_ts(now) }))
            }

            async fn checkup_results_of_record(&self, org_id: &str, record: &RecordRef) -> Result<Vec<CheckupResultRecord>> {
                let rows = sqlx::query(
                    "SELECT id, org_id, card_index, record_key, examined_on, data_enc, import_id, created_at FROM checkup_results \
                     WHERE org_id = $1 AND card_index = $2 AND record_key = $3 ORDER BY examined_on DESC, id",
                )
                .bind(org_id)
                .bind(&record.card_index)
                .bind(&record.record_key)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(CheckupResultRecord {
                            id: r.try_get("id")?,
                            org_id: r.try_get("org_id")?,
                            record: RecordRef { card_index: r.try_get("card_index")?, record_key: r.try_get("record_key")? },
                            examined_on: r.try_get("examined_on")?,
                            data_enc: r.try_get("data_enc")?,
                            import_id: r.try_get("import_id")?,
                            created_at: from_ts(r.try_get("created_at")?)?,
                        })
                    })
                    .collect()
            }

            async fn begin_health_import(
                &self,
                org_id: &str,
                import_id: &str,
                kind: HealthKind,
                file_name: &str,
                now: OffsetDateTime,
            ) -> Result<Box<dyn HealthImport>> {
                let mut tx = self.pool.begin().await?;
                // The organization's lock, as for roster and checkup imports.
                let found = sqlx::query("UPDATE organizations SET id = id WHERE id = $1").bind(org_id).execute(&mut *tx).await?;
                if found.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("INSERT INTO health_imports (id, org_id, kind, file_name, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(import_id)
                    .bind(org_id)
                    .bind(kind.as_str())
                    .bind(file_name)
                    .bind(to_ts(now))
                    .execute(&mut *tx)
                    .await?;
                Ok(Box::new(HealthTx { tx, org_id: org_id.to_string(), import_id: import_id.to_string(), kind, now: to_ts(now) }))
            }

            async fn health_entries_of_record(&self, org_id: &str, record: &RecordRef, kind: HealthKind) -> Result<Vec<HealthEntryRecord>> {
                let rows = sqlx::query(
                    "SELECT id, org_id, card_index, record_key, kind, occurred_on, row_key, data_enc, import_id, created_at FROM health_entries \
                     WHERE org_id = $1 AND card_index = $2 AND record_key = $3 AND kind = $4 ORDER BY occurred_on DESC, id",
                )
                .bind(org_id)
                .bind(&record.card_index)
                .bind(&record.record_key)
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let stored_kind: String = r.try_get("kind")?;
                        Ok(HealthEntryRecord {
                            id: r.try_get("id")?,
                            org_id: r.try_get("org_id")?,
                            record: RecordRef { card_index: r.try_get("card_index")?, record_key: r.try_get("record_key")? },
                            kind: HealthKind::parse(&stored_kind).ok_or_else(|| StoreError::Corrupt("health entry kind".into()))?,
                            occurred_on: r.try_get("occurred_on")?,
                            row_key: r.try_get("row_key")?,
                            data_enc: r.try_get("data_enc")?,
                            import_id: r.try_get("import_id")?,
                            created_at: from_ts(r.try_get("created_at")?)?,
                        })
                    })
                    .collect()
            }

            async fn insert_ekyc(&self, a: &EkycRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO ekyc_applications (id, user_id, org_id, state, open, data, version, created_at, updated_at, submitted_at, decided_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&a.id)
                .bind(&a.user_id)
                .bind(&a.org_id)
                .bind(&a.state)
                .bind(i64::from(a.open))
                .bind(&a.data)
                .bind(a.version)
                .bind(to_ts(a.created_at))
                .bind(to_ts(a.updated_at))
                .bind(a.submitted_at.map(to_ts))
                .bind(a.decided_at.map(to_ts))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_ekyc(&self, id: &str) -> Result<Option<EkycRecord>> {
                let sql = format!("SELECT {EKYC_COLUMNS} FROM ekyc_applications WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(ekyc_row).transpose()
            }

            async fn latest_ekyc_of_user(&self, user_id: &str) -> Result<Option<EkycRecord>> {
                let sql = format!("SELECT {EKYC_COLUMNS} FROM ekyc_applications WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1");
                let row = sqlx::query(&sql).bind(user_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(ekyc_row).transpose()
            }

            async fn update_ekyc(&self, a: &EkycRecord) -> Result<()> {
                apply_ekyc(&self.pool, a).await
            }

            async fn ekyc_queue(&self, state: &str, limit: i64) -> Result<Vec<EkycRecord>> {
                let sql = format!("SELECT {EKYC_COLUMNS} FROM ekyc_applications WHERE state = $1 ORDER BY submitted_at, id LIMIT $2");
                let rows = sqlx::query(&sql).bind(state).bind(limit).fetch_all(&self.pool).await?;
                rows.iter().map(ekyc_row).collect()
            }

            async fn add_ekyc_image(&self, i: &EkycImage) -> Result<()> {
                sqlx::query(
                    "INSERT INTO ekyc_images (id, application_id, kind, sha256, size, created_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&i.id)
                .bind(&i.application_id)
                .bind(&i.kind)
                .bind(&i.sha256)
                .bind(i.size)
                .bind(to_ts(i.created_at))
                .bind(i.deleted_at.map(to_ts))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn ekyc_images(&self, application_id: &str) -> Result<Vec<EkycImage>> {
                let sql = format!("SELECT {EKYC_IMAGE_COLUMNS} FROM ekyc_images WHERE application_id = $1 ORDER BY created_at, id");
                let rows = sqlx::query(&sql).bind(application_id).fetch_all(&self.pool).await?;
                rows.iter().map(ekyc_image_row).collect()
            }

            async fn ekyc_images_to_delete(&self, decided_before: OffsetDateTime, limit: i64) -> Result<Vec<EkycImage>> {
                let rows = sqlx::query(
                    "SELECT i.id, i.application_id, i.kind, i.sha256, i.size, i.created_at, i.deleted_at \
                     FROM ekyc_images i JOIN ekyc_applications a ON a.id = i.application_id \
                     WHERE i.deleted_at IS NULL AND a.decided_at IS NOT NULL AND a.decided_at <= $1 \
                     ORDER BY a.decided_at, i.id LIMIT $2",
                )
                .bind(to_ts(decided_before))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(ekyc_image_row).collect()
            }

            async fn mark_ekyc_image_deleted(&self, id: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE ekyc_images SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                    .bind(to_ts(now))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn issue_capture_token(&self, token_hash: &[u8], application_id: &str, purpose: &str, expires_at: OffsetDateTime) -> Result<()> {
                sqlx::query("INSERT INTO ekyc_capture_tokens (token_hash, application_id, purpose, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(token_hash)
                    .bind(application_id)
                    .bind(purpose)
                    .bind(to_ts(expires_at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn use_capture_token(&self, token_hash: &[u8], application_id: &str, purpose: &str, now: OffsetDateTime) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE ekyc_capture_tokens SET used_at = $1 \
                     WHERE token_hash = $2 AND application_id = $3 AND purpose = $4 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(to_ts(now))
                .bind(token_hash)
                .bind(application_id)
                .bind(purpose)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_stale_capture_tokens(&self, before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM ekyc_capture_tokens WHERE expires_at < $1").bind(to_ts(before)).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn insert_operator(&self, o: &OperatorRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO operators (id, email_index, email_enc, name_enc, role, password_hash, totp_secret_enc, totp_last_step, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&o.id)
                .bind(&o.email_index)
                .bind(&o.email_enc)
                .bind(&o.name_enc)
                .bind(&o.role)
                .bind(&o.password_hash)
                .bind(&o.totp_secret_enc)
                .bind(o.totp_last_step)
                .bind(to_ts(o.created_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_operator_by_email_index(&self, email_index: &[u8]) -> Result<Option<OperatorRecord>> {
                let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE email_index = $1");
                let row = sqlx::query(&sql).bind(email_index).fetch_optional(&self.pool).await?;
                row.as_ref().map(operator_row).transpose()
            }

            async fn get_operator(&self, id: &str) -> Result<Option<OperatorRecord>> {
                let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(operator_row).transpose()
            }

            async fn list_operators(&self) -> Result<Vec<OperatorRecord>> {
                let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY created_at, id");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
                rows.iter().map(operator_row).collect()
            }

            async fn use_totp_step(&self, operator_id: &str, step: i64) -> Result<bool> {
                let done = sqlx::query("UPDATE operators SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
                    .bind(step)
                    .bind(operator_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_operator_session(&self, s: &OperatorSessionRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO operator_sessions (id_hash, operator_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.id_hash)
                .bind(&s.operator_id)
                .bind(to_ts(s.created_at))
                .bind(to_ts(s.last_seen_at))
                .bind(to_ts(s.expires_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_operator_session(&self, id_hash: &[u8]) -> Result<Option<OperatorSessionRecord>> {
                let sql = format!("SELECT {OPERATOR_SESSION_COLUMNS} FROM operator_sessions WHERE id_hash = $1");
                let row = sqlx::query(&sql).bind(id_hash).fetch_optional(&self.pool).await?;
                row.as_ref().map(operator_session_row).transpose()
            }

            async fn touch_operator_session(&self, id_hash: &[u8], now: OffsetDateTime, expires_at: OffsetDateTime) -> Result<()> {
                sqlx::query("UPDATE operator_sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
                    .bind(to_ts(now))
                    .bind(to_ts(expires_at))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_operator_session(&self, id_hash: &[u8]) -> Result<()> {
                sqlx::query("DELETE FROM operator_sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
                Ok(())
            }

            async fn delete_expired_operator_sessions(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM operator_sessions WHERE expires_at <= $1").bind(to_ts(now)).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()> {
                insert_audit(&self.pool, entry).await
            }

            async fn list_audit(&self, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>> {
                let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2");
                let rows = sqlx::query(&sql).bind(before_seq.unwrap_or(i64::MAX)).bind(limit).fetch_all(&self.pool).await?;
                rows.iter().map(audit_row).collect()
            }

            async fn decide_ekyc(&self, app: &EkycRecord, review: &EkycReview, mail: &NewMail, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                apply_ekyc(&mut *tx, app).await?;
                let inserted = sqlx::query(
                    "INSERT INTO ekyc_reviews (application_id, operator_id, decision, reason, note_enc, decided_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&review.application_id)
                .bind(&review.operator_id)
                .bind(&review.decision)
                .bind(&review.reason)
                .bind(&review.note_enc)
                .bind(to_ts(review.decided_at))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    // Decided already: the application's one review exists.
                    Err(e) => match StoreError::from(e) {
                        StoreError::Duplicate => return Err(StoreError::Conflict),
                        other => return Err(other),
                    },
                }
                sqlx::query(
                    "INSERT INTO mail_outbox (id, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, 0, $3)",
                )
                .bind(&mail.id)
                .bind(&mail.payload)
                .bind(to_ts(mail.created_at))
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn ekyc_review(&self, application_id: &str) -> Result<Option<EkycReview>> {
                let row = sqlx::query(
                    "SELECT application_id, operator_id, decision, reason, note_enc, decided_at FROM ekyc_reviews WHERE application_id = $1",
                )
                .bind(application_id)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(EkycReview {
                        application_id: r.try_get("application_id")?,
                        operator_id: r.try_get("operator_id")?,
                        decision: r.try_get("decision")?,
                        reason: r.try_get("reason")?,
                        note_enc: r.try_get("note_enc")?,
                        decided_at: from_ts(r.try_get("decided_at")?)?,
                    })),
                    None => Ok(None),
                }
            }

            async fn get_roster_record(&self, org_id: &str, record: &RecordRef) -> Result<Option<RosterMatch>> {
                let row = sqlx::query(
                    "SELECT r.card_index, r.record_key, r.branch_index, r.eligible_from, r.eligible_until, r.data_enc, l.user_id \
                     FROM roster_records r LEFT JOIN roster_links l \
                       ON l.org_id = r.org_id AND l.card_index = r.card_index AND l.record_key = r.record_key \
                     WHERE r.org_id = $1 AND r.card_index = $2 AND r.record_key = $3",
                )
                .bind(org_id)
                .bind(&record.card_index)
                .bind(&record.record_key)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(RosterMatch {
                        record: RecordRef { card_index: r.try_get("card_index")?, record_key: r.try_get("record_key")? },
                        branch_index: r.try_get("branch_index")?,
                        eligible_from: r.try_get("eligible_from")?,
                        eligible_until: r.try_get("eligible_until")?,
                        data_enc: r.try_get("data_enc")?,
                        linked_user_id: r.try_get("user_id")?,
                    })),
                    None => Ok(None),
                }
            }

            async fn create_inquiry(&self, q: &InquiryRecord, mail: &NewMail) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO inquiries (id, user_id, category, email_enc, message_enc, locale, status, created_at, updated_at, closed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&q.id)
                .bind(&q.user_id)
                .bind(&q.category)
                .bind(&q.email_enc)
                .bind(&q.message_enc)
                .bind(&q.locale)
                .bind(&q.status)
                .bind(to_ts(q.created_at))
                .bind(to_ts(q.updated_at))
                .bind(q.closed_at.map(to_ts))
                .execute(&mut *tx)
                .await?;
                insert_mail(&mut *tx, mail).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_inquiries(&self, limit: i64) -> Result<Vec<InquiryRecord>> {
                let sql = format!(
                    "SELECT {INQUIRY_COLUMNS} FROM inquiries \
                     ORDER BY CASE WHEN status = 'closed' THEN 1 ELSE 0 END, created_at DESC, id DESC LIMIT $1"
                );
                let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
                rows.iter().map(inquiry_row).collect()
            }

            async fn get_inquiry(&self, id: &str) -> Result<Option<(InquiryRecord, Vec<InquiryReply>)>> {
                let sql = format!("SELECT {INQUIRY_COLUMNS} FROM inquiries WHERE id = $1");
                let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await? else {
                    return Ok(None);
                };
                let inquiry = inquiry_row(&row)?;
                let rows = sqlx::query(
                    "SELECT id, inquiry_id, operator_id, body_enc, created_at FROM inquiry_replies \
                     WHERE inquiry_id = $1 ORDER BY created_at, id",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                let replies = rows
                    .iter()
                    .map(|r| {
                        Ok(InquiryReply {
                            id: r.try_get("id")?,
                            inquiry_id: r.try_get("inquiry_id")?,
                            operator_id: r.try_get("operator_id")?,
                            body_enc: r.try_get("body_enc")?,
                            created_at: from_ts(r.try_get("created_at")?)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some((inquiry, replies)))
            }

            async fn reply_inquiry(&self, reply: &InquiryReply, mail: &NewMail, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("UPDATE inquiries SET status = 'answered', updated_at = $1 WHERE id = $2 AND status <> 'closed'")
                    .bind(to_ts(reply.created_at))
                    .bind(&reply.inquiry_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(inquiry_missing_or_closed(&mut *tx, &reply.inquiry_id).await);
                }
                sqlx::query(
                    "INSERT INTO inquiry_replies (id, inquiry_id, operator_id, body_enc, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&reply.id)
                .bind(&reply.inquiry_id)
                .bind(&reply.operator_id)
                .bind(&reply.body_enc)
                .bind(to_ts(reply.created_at))
                .execute(&mut *tx)
                .await?;
                insert_mail(&mut *tx, mail).await?;
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn close_inquiry(&self, id: &str, now: OffsetDateTime, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE inquiries SET status = 'closed', updated_at = $1, closed_at = $1 WHERE id = $2 AND status <> 'closed'",
                )
                .bind(to_ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(inquiry_missing_or_closed(&mut *tx, id).await);
                }
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn hit_rate_limit(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<i64> {
                let row = sqlx::query(
                    "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.count + 1 END, \
                       window_start = CASE WHEN rate_limits.window_start <= $3 THEN $2 ELSE rate_limits.window_start END \
                     RETURNING count",
                )
                .bind(key)
                .bind(to_ts(now))
                .bind(to_ts(now - window))
                .fetch_one(&self.pool)
                .await?;
                Ok(row.try_get("count")?)
            }

            async fn delete_stale_rate_limits(&self, before: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM rate_limits WHERE window_start <= $1").bind(to_ts(before)).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use impl_store;
