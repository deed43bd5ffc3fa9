//! The operator console: operators (eKYC reviewers and administrators) with their TOTP steps,
//! their sessions (stored by the hash of their token only), the append-only audit log, and
//! the reviewers' decisions on eKYC applications.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::audit_chain::{ChainKeys, ChainReport};
use crate::ekyc::EkycRecord;
use crate::outbox::NewMail;
use crate::row::{to_ts, IntFlag, OptUnixTime, UnixTime};
use crate::{Result, StoreError};

/// An operator of the console (eKYC reviewer or administrator). Email and name are sealed by
/// the application; `email_index` is the keyed blind index of the normalized email.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OperatorRecord {
    pub id: String,
    pub email_index: Vec<u8>,
    pub email_enc: Vec<u8>,
    pub name_enc: Vec<u8>,
    /// `reviewer` or `admin`.
    pub role: String,
    pub password_hash: String,
    pub totp_secret_enc: Vec<u8>,
    /// The newest TOTP time step accepted (0: none yet).
    pub totp_last_step: i64,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    /// When an admin disabled the operator (`None`: active).
    #[sqlx(try_from = "OptUnixTime")]
    pub disabled_at: Option<OffsetDateTime>,
}

/// What an admin changes about an operator, with its audit row, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorChange {
    /// Disabled at this instant; every session ends.
    Disable(OffsetDateTime),
    Enable,
    /// `reviewer` or `admin`.
    Role(String),
    /// A new sealed TOTP secret (no step used yet); every session ends.
    Totp(Vec<u8>),
    /// Every session ends.
    EndSessions,
    /// The organizations the operator is limited to (empty: all).
    Orgs(Vec<String>),
}

/// An operator's console session (stored by the hash of its token only).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OperatorSessionRecord {
    pub id_hash: Vec<u8>,
    pub operator_id: String,
    #[sqlx(try_from = "UnixTime")]
    pub created_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub last_seen_at: OffsetDateTime,
    #[sqlx(try_from = "UnixTime")]
    pub expires_at: OffsetDateTime,
}

/// One audit-log row to append: who (`operator_id`, `None` when no operator is known, e.g. a
/// failed login with an unknown email), what (`action`), to which record (`target_type`,
/// `target_id`), when and from where. Never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub at: OffsetDateTime,
    pub operator_id: Option<String>,
    /// The member who acted (member-side rows: health data read, login, step-up …).
    pub member_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub client_ip: String,
}

/// A stored audit-log row; `seq` grows with every append.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub seq: i64,
    #[sqlx(try_from = "UnixTime")]
    pub at: OffsetDateTime,
    pub operator_id: Option<String>,
    pub member_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub client_ip: String,
}

/// Which audit rows an administrator looks for; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Actions starting with this (e.g. `member.health.`).
    pub action_prefix: Option<String>,
    /// Rows by this operator or member id.
    pub actor: Option<String>,
    /// Rows about this target id.
    pub target_id: Option<String>,
    /// Rows at or after / before these instants.
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// An audit row with its chain columns, as `verify_audit_chain` reads it.
#[derive(sqlx::FromRow)]
struct ChainedRow {
    #[sqlx(flatten)]
    entry: AuditEntry,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
    /// The MAC key id the row was linked under (`None`: `m0`).
    chain_key: Option<String>,
}

/// An operator's decision on an eKYC application.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EkycReview {
    pub application_id: String,
    pub operator_id: String,
    /// `approved` or `rejected`.
    pub decision: String,
    /// A reason code from the console's fixed list.
    pub reason: Option<String>,
    /// The reviewer's free text, sealed.
    pub note_enc: Option<Vec<u8>>,
    #[sqlx(try_from = "UnixTime")]
    pub decided_at: OffsetDateTime,
}

#[async_trait]
pub trait Operators: Send + Sync {
    /// [`StoreError::Duplicate`] when an operator with this email index exists.
    async fn insert_operator(&self, operator: &OperatorRecord) -> Result<()>;
    async fn find_operator_by_email_index(&self, email_index: &[u8]) -> Result<Option<OperatorRecord>>;
    async fn get_operator(&self, id: &str) -> Result<Option<OperatorRecord>>;
    /// Every operator, oldest first.
    async fn list_operators(&self) -> Result<Vec<OperatorRecord>>;
    /// Accepts TOTP time step `step` for the operator once: `true` when it is later than every
    /// step accepted before (atomic: of racing uses of one code, one wins), `false` for a replay.
    async fn use_totp_step(&self, operator_id: &str, step: i64) -> Result<bool>;
    async fn create_operator_session(&self, session: &OperatorSessionRecord) -> Result<()>;
    async fn get_operator_session(&self, id_hash: &[u8]) -> Result<Option<OperatorSessionRecord>>;
    async fn touch_operator_session(
        &self,
        id_hash: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    async fn delete_operator_session(&self, id_hash: &[u8]) -> Result<()>;
    async fn delete_expired_operator_sessions(&self, now: OffsetDateTime) -> Result<u64>;
    /// Applies `change` to the operator and appends `audit`, in one transaction;
    /// [`StoreError::NotFound`] for an unknown operator.
    async fn change_operator(&self, operator_id: &str, change: &OperatorChange, audit: &NewAuditEntry) -> Result<()>;
    /// The organizations an operator is limited to (empty: all), sorted.
    async fn operator_orgs(&self, operator_id: &str) -> Result<Vec<String>>;

    // Audit log: append and read only. There is deliberately no way to change or remove a
    // row, and the database refuses UPDATE and DELETE on the table (triggers).
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()>;
    /// Up to `limit` rows older than `before_seq` (all when `None`), newest first.
    async fn list_audit(&self, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>>;
    /// [`Operators::list_audit`] of the rows that match `filter`.
    async fn search_audit(&self, filter: &AuditFilter, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>>;
    /// The keys of the audit log's hash chain ([`crate::audit_chain`]); the application sets
    /// them once, from its own secrets, before anything is appended.
    fn set_audit_chain_keys(&self, keys: ChainKeys);
    /// Reads the whole log in `seq` order and checks every link of the chain.
    async fn verify_audit_chain(&self) -> Result<ChainReport>;

    // eKYC review
    /// In one transaction: writes `app` with its version check (as
    /// [`Ekyc::update_ekyc`](crate::Ekyc::update_ekyc)), records `review`, queues `mail` and
    /// appends `audit`. [`StoreError::Conflict`] when the application changed meanwhile or was
    /// decided already: then nothing is written.
    async fn decide_ekyc(
        &self,
        app: &EkycRecord,
        review: &EkycReview,
        mail: &NewMail,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn ekyc_review(&self, application_id: &str) -> Result<Option<EkycReview>>;
    /// In one transaction: records `w`, removes the member's roster link when
    /// `w.record.unlinked`, writes the revoked application `w.ekyc` with its version check,
    /// ends the step-up of every session of the member, queues `w.mail` and appends `w.audit`.
    /// [`StoreError::Conflict`] when the application changed meanwhile: nothing is written.
    async fn withdraw_binding(&self, w: &Withdrawal<'_>) -> Result<()>;
    /// The member's withdrawals, newest first.
    async fn binding_withdrawals(&self, user_id: &str) -> Result<Vec<BindingWithdrawal>>;
    /// Reviewers' decisions, newest first: up to `limit` after skipping `offset`; only
    /// `decision` (`approved` or `rejected`) when given, and with `orgs` only those on
    /// applications of these organizations (none when the list is empty).
    async fn decided_reviews(
        &self,
        decision: Option<&str>,
        orgs: Option<&[String]>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DecidedReview>>;
}

/// A reviewer's decision with the application's organization and member, for the console's
/// list of decided cases (the sealed note is not read).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DecidedReview {
    pub application_id: String,
    pub org_id: String,
    pub user_id: String,
    pub operator_id: String,
    /// `approved` or `rejected`.
    pub decision: String,
    pub reason: Option<String>,
    #[sqlx(try_from = "UnixTime")]
    pub decided_at: OffsetDateTime,
}

/// An operator's withdrawal of a member's binding (see [`Operators::withdraw_binding`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BindingWithdrawal {
    pub id: String,
    pub user_id: String,
    pub operator_id: String,
    /// The roster link was removed (the member may do 本人確認 again).
    #[sqlx(try_from = "IntFlag")]
    pub unlinked: bool,
    /// The eKYC application whose authentication was revoked, if one was.
    pub revoked_application_id: Option<String>,
    /// A reason code (message keys `console.withdraw_reason.<code>`).
    pub reason: String,
    pub note_enc: Option<Vec<u8>>,
    #[sqlx(try_from = "UnixTime")]
    pub at: OffsetDateTime,
}

/// Everything one withdrawal writes.
pub struct Withdrawal<'a> {
    pub record: &'a BindingWithdrawal,
    pub ekyc: Option<&'a EkycRecord>,
    pub mail: &'a NewMail,
    pub audit: &'a NewAuditEntry,
}

const COLUMNS: &str = "id, email_index, email_enc, name_enc, role, password_hash, totp_secret_enc, totp_last_step, \
                       created_at, disabled_at";
const SESSION_COLUMNS: &str = "id_hash, operator_id, created_at, last_seen_at, expires_at";
const AUDIT_COLUMNS: &str = "seq, at, operator_id, member_id, action, target_type, target_id, client_ip";

macro_rules! sql_operators {
    ($be:ident, $store:ty, $db:ty) => {
        use super::*;

        /// Appends an audit row, chained to the last one, in the caller's transaction (its own,
        /// or another aggregate's): the chain's lock row is written first, so appends happen
        /// one at a time and each sees the row before it.
        pub(crate) async fn insert_audit(
            conn: &mut <$db as sqlx::Database>::Connection,
            keys: &ChainKeys,
            e: &NewAuditEntry,
        ) -> Result<()> {
            sqlx::query("UPDATE audit_chain_lock SET appended = appended + 1 WHERE id = 1").execute(&mut *conn).await?;
            let prev: Option<Option<Vec<u8>>> =
                sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *conn)
                    .await?;
            let prev = prev.flatten();
            let (key_id, key) = keys.active();
            let hash = crate::audit_chain::link(key, prev.as_deref(), &e.into());
            sqlx::query(
                "INSERT INTO audit_log \
                 (at, operator_id, member_id, action, target_type, target_id, client_ip, prev_hash, hash, chain_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(to_ts(e.at))
            .bind(&e.operator_id)
            .bind(&e.member_id)
            .bind(&e.action)
            .bind(&e.target_type)
            .bind(&e.target_id)
            .bind(&e.client_ip)
            .bind(prev)
            .bind(hash)
            .bind(key_id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        #[async_trait]
        impl Operators for $store {
            #[tracing::instrument(skip_all, fields(operator_id = %o.id))]
            async fn insert_operator(&self, o: &OperatorRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO operators \
                     (id, email_index, email_enc, name_enc, role, password_hash, totp_secret_enc, totp_last_step, \
                      created_at) \
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

            #[tracing::instrument(skip_all)]
            async fn find_operator_by_email_index(&self, email_index: &[u8]) -> Result<Option<OperatorRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM operators WHERE email_index = $1");
                Ok(sqlx::query_as(&sql).bind(email_index).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(operator_id = %id))]
            async fn get_operator(&self, id: &str) -> Result<Option<OperatorRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM operators WHERE id = $1");
                Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all)]
            async fn list_operators(&self) -> Result<Vec<OperatorRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM operators ORDER BY created_at, id");
                Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(operator_id = %operator_id))]
            async fn use_totp_step(&self, operator_id: &str, step: i64) -> Result<bool> {
                let done = sqlx::query("UPDATE operators SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
                    .bind(step)
                    .bind(operator_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            #[tracing::instrument(skip_all, fields(operator_id = %s.operator_id))]
            async fn create_operator_session(&self, s: &OperatorSessionRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO operator_sessions (id_hash, operator_id, created_at, last_seen_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
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

            #[tracing::instrument(skip_all)]
            async fn get_operator_session(&self, id_hash: &[u8]) -> Result<Option<OperatorSessionRecord>> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM operator_sessions WHERE id_hash = $1");
                Ok(sqlx::query_as(&sql).bind(id_hash).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all)]
            async fn touch_operator_session(
                &self,
                id_hash: &[u8],
                now: OffsetDateTime,
                expires_at: OffsetDateTime,
            ) -> Result<()> {
                sqlx::query("UPDATE operator_sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
                    .bind(to_ts(now))
                    .bind(to_ts(expires_at))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_operator_session(&self, id_hash: &[u8]) -> Result<()> {
                sqlx::query("DELETE FROM operator_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn delete_expired_operator_sessions(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM operator_sessions WHERE expires_at <= $1")
                    .bind(to_ts(now))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(skip_all, fields(operator_id = %operator_id))]
            async fn change_operator(
                &self,
                operator_id: &str,
                change: &OperatorChange,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let exists: Option<String> = sqlx::query_scalar("SELECT id FROM operators WHERE id = $1")
                    .bind(operator_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
                let end_sessions = match change {
                    OperatorChange::Disable(at) => {
                        sqlx::query("UPDATE operators SET disabled_at = $1 WHERE id = $2")
                            .bind(to_ts(*at))
                            .bind(operator_id)
                            .execute(&mut *tx)
                            .await?;
                        true
                    }
                    OperatorChange::Enable => {
                        sqlx::query("UPDATE operators SET disabled_at = NULL WHERE id = $1")
                            .bind(operator_id)
                            .execute(&mut *tx)
                            .await?;
                        false
                    }
                    OperatorChange::Role(role) => {
                        sqlx::query("UPDATE operators SET role = $1 WHERE id = $2")
                            .bind(role)
                            .bind(operator_id)
                            .execute(&mut *tx)
                            .await?;
                        false
                    }
                    OperatorChange::Totp(secret) => {
                        sqlx::query("UPDATE operators SET totp_secret_enc = $1, totp_last_step = 0 WHERE id = $2")
                            .bind(secret)
                            .bind(operator_id)
                            .execute(&mut *tx)
                            .await?;
                        true
                    }
                    OperatorChange::EndSessions => true,
                    OperatorChange::Orgs(orgs) => {
                        sqlx::query("DELETE FROM operator_orgs WHERE operator_id = $1")
                            .bind(operator_id)
                            .execute(&mut *tx)
                            .await?;
                        for org in orgs {
                            sqlx::query("INSERT INTO operator_orgs (operator_id, org_id) VALUES ($1, $2)")
                                .bind(operator_id)
                                .bind(org)
                                .execute(&mut *tx)
                                .await?;
                        }
                        false
                    }
                };
                if end_sessions {
                    sqlx::query("DELETE FROM operator_sessions WHERE operator_id = $1")
                        .bind(operator_id)
                        .execute(&mut *tx)
                        .await?;
                }
                insert_audit(&mut *tx, &self.chain_key(), audit).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(operator_id = %operator_id))]
            async fn operator_orgs(&self, operator_id: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT org_id FROM operator_orgs WHERE operator_id = $1 ORDER BY org_id")
                    .bind(operator_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            #[tracing::instrument(skip_all, fields(action = %entry.action, operator_id = entry.operator_id.as_deref()))]
            async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                insert_audit(&mut *tx, &self.chain_key(), entry).await?;
                tx.commit().await?;
                Ok(())
            }

            fn set_audit_chain_keys(&self, keys: ChainKeys) {
                if self.audit_key.set(keys).is_err() {
                    tracing::warn!("the audit chain keys were set already; the first ones stay");
                }
            }

            #[tracing::instrument(skip_all)]
            async fn verify_audit_chain(&self) -> Result<ChainReport> {
                use futures_util::TryStreamExt as _;
                let keys = self.chain_key();
                let mut verifier = crate::audit_chain::Verifier::default();
                let sql = format!("SELECT {AUDIT_COLUMNS}, prev_hash, hash, chain_key FROM audit_log ORDER BY seq");
                let mut rows = sqlx::query_as::<_, ChainedRow>(&sql).fetch(&self.pool);
                while let Some(r) = rows.try_next().await? {
                    let linked = crate::audit_chain::Linked::from(&r.entry);
                    let key = keys.get(r.chain_key.as_deref());
                    verifier.push(key, r.entry.seq, &linked, r.prev_hash.as_deref(), r.hash.as_deref());
                }
                Ok(verifier.finish())
            }

            #[tracing::instrument(skip_all, fields(before_seq = before_seq, limit = limit))]
            async fn search_audit(
                &self,
                filter: &AuditFilter,
                before_seq: Option<i64>,
                limit: i64,
            ) -> Result<Vec<AuditEntry>> {
                // The prefix is matched with substr, not LIKE: `%` and `_` in it mean themselves.
                let sql = format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq < $1 \
                     AND ($2 IS NULL OR substr(action, 1, length($2)) = $2) \
                     AND ($3 IS NULL OR operator_id = $3 OR member_id = $3) \
                     AND ($4 IS NULL OR target_id = $4) \
                     AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
                     ORDER BY seq DESC LIMIT $7"
                );
                let rows = sqlx::query_as(&sql)
                    .bind(before_seq.unwrap_or(i64::MAX))
                    .bind(&filter.action_prefix)
                    .bind(&filter.actor)
                    .bind(&filter.target_id)
                    .bind(filter.from.map(to_ts))
                    .bind(filter.until.map(to_ts))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(before_seq = before_seq, limit = limit))]
            async fn list_audit(&self, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>> {
                let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2");
                let rows = sqlx::query_as(&sql)
                    .bind(before_seq.unwrap_or(i64::MAX))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(application_id = %app.id, operator_id = %review.operator_id))]
            async fn decide_ekyc(
                &self,
                app: &EkycRecord,
                review: &EkycReview,
                mail: &NewMail,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                crate::ekyc::$be::apply_ekyc(&mut *tx, app).await?;
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
                match inserted.map_err(StoreError::from) {
                    Ok(_) => {}
                    // Decided already: the application's one review exists.
                    Err(StoreError::Duplicate) => return Err(StoreError::Conflict),
                    Err(other) => return Err(other),
                }
                crate::outbox::$be::insert_mail(&mut *tx, mail).await?;
                insert_audit(&mut *tx, &self.chain_key(), audit).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %w.record.user_id, operator_id = %w.record.operator_id))]
            async fn withdraw_binding(&self, w: &Withdrawal<'_>) -> Result<()> {
                let r = w.record;
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO binding_withdrawals \
                     (id, user_id, operator_id, unlinked, revoked_application_id, reason, note_enc, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&r.id)
                .bind(&r.user_id)
                .bind(&r.operator_id)
                .bind(i64::from(r.unlinked))
                .bind(&r.revoked_application_id)
                .bind(&r.reason)
                .bind(&r.note_enc)
                .bind(to_ts(r.at))
                .execute(&mut *tx)
                .await?;
                if r.unlinked {
                    sqlx::query("DELETE FROM roster_links WHERE user_id = $1").bind(&r.user_id).execute(&mut *tx).await?;
                }
                if let Some(app) = w.ekyc {
                    crate::ekyc::$be::apply_ekyc(&mut *tx, app).await?;
                }
                crate::users::$be::close_step_ups(&mut *tx, &r.user_id).await?;
                crate::outbox::$be::insert_mail(&mut *tx, w.mail).await?;
                insert_audit(&mut *tx, &self.chain_key(), w.audit).await?;
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id))]
            async fn binding_withdrawals(&self, user_id: &str) -> Result<Vec<BindingWithdrawal>> {
                let rows = sqlx::query_as(
                    "SELECT id, user_id, operator_id, unlinked, revoked_application_id, reason, note_enc, at \
                     FROM binding_withdrawals WHERE user_id = $1 ORDER BY at DESC, id DESC",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            #[tracing::instrument(skip_all, fields(limit = limit, offset = offset))]
            async fn decided_reviews(
                &self,
                decision: Option<&str>,
                orgs: Option<&[String]>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<DecidedReview>> {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT r.application_id, a.org_id, a.user_id, r.operator_id, r.decision, r.reason, \
                     r.decided_at FROM ekyc_reviews r JOIN ekyc_applications a ON a.id = r.application_id \
                     WHERE 1 = 1",
                );
                if let Some(decision) = decision {
                    q.push(" AND r.decision = ").push_bind(decision);
                }
                if let Some(orgs) = orgs {
                    if orgs.is_empty() {
                        return Ok(Vec::new());
                    }
                    q.push(" AND a.org_id IN (");
                    let mut ids = q.separated(", ");
                    for org in orgs {
                        ids.push_bind(org);
                    }
                    q.push(")");
                }
                q.push(" ORDER BY r.decided_at DESC, r.application_id DESC LIMIT ")
                    .push_bind(limit)
                    .push(" OFFSET ")
                    .push_bind(offset);
                Ok(q.build_query_as().fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(application_id = %application_id))]
            async fn ekyc_review(&self, application_id: &str) -> Result<Option<EkycReview>> {
                let row = sqlx::query_as(
                    "SELECT application_id, operator_id, decision, reason, note_enc, decided_at \
                     FROM ekyc_reviews WHERE application_id = $1",
                )
                .bind(application_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }
        }
    };
}

pub(crate) mod sqlite {
    sql_operators!(sqlite, crate::sqlite::SqliteStore, sqlx::Sqlite);
}

pub(crate) mod postgres {
    sql_operators!(postgres, crate::postgres::PgStore, sqlx::Postgres);
}
