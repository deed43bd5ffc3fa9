//! Import jobs started from the console (issue #15, point 5): what each job is, where it stands
//! and its outcome, kept in the database so that every node lists every job.
//!
//! A running job belongs to one node, which renews its heartbeat (with its progress, at most
//! about once a second, and at least every few seconds while it parses); a running job whose
//! heartbeat lapsed is marked `failed` by whoever reads the jobs next
//! ([`ImportJobs::fail_lapsed_import_jobs`]): its node stopped, and since an import is one
//! transaction nothing of it was written. Nothing personal is stored: the file name, counts,
//! and the outcome as JSON made by the application (entry names or line numbers with reasons).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::row::{to_ts, OptUnixTime, UnixTime};
use crate::Result;

/// `import_jobs.state` of a job its node is still working on.
pub const JOB_RUNNING: &str = "running";
/// `import_jobs.state` of a job whose node stopped before it finished (nothing written).
pub const JOB_FAILED: &str = "failed";

/// One import job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ImportJobRecord {
    pub id: String,
    /// `checkups`, `medications`, `expenses` (`roster` and `export` reserved).
    pub kind: String,
    pub org_id: String,
    /// The organization's insurer number, as shown to operators.
    pub insurer_number: String,
    pub file_name: String,
    pub operator_id: String,
    #[sqlx(try_from = "UnixTime")]
    pub started_at: OffsetDateTime,
    /// `running`, `done`, `refused` or `failed`.
    pub state: String,
    /// Records written so far, and in all (0 of 0 while the file is parsed and matched).
    pub done: i64,
    pub total: i64,
    /// The outcome (JSON, made by the application), once the job is `done` or `refused`.
    pub result: Option<String>,
    /// The node running (or that ran) the job.
    pub node: String,
    #[sqlx(try_from = "UnixTime")]
    pub heartbeat_at: OffsetDateTime,
    #[sqlx(try_from = "OptUnixTime")]
    pub finished_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait ImportJobs: Send + Sync {
    /// Records a new job (its state, progress and heartbeat as given).
    async fn create_import_job(&self, job: &ImportJobRecord) -> Result<()>;
    /// The node's sign of life for a running job, with its progress. Returns `false` when the
    /// job is no longer running on `node` (it was marked failed meanwhile): nothing changed.
    async fn import_job_heartbeat(
        &self,
        id: &str,
        node: &str,
        done: i64,
        total: i64,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// Writes a job's outcome (`done` or `refused`, with its JSON and final progress). Written
    /// even over `failed`: the node did finish after all (its heartbeat was late).
    async fn finish_import_job(
        &self,
        id: &str,
        state: &str,
        result: &str,
        done: i64,
        total: i64,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Marks `failed` every running job whose last heartbeat is before `heartbeat_before`,
    /// except those of `except_node` (the asking node's own jobs are alive as long as it is: a
    /// heartbeat it could not write, e.g. behind the import's own write lock on SQLite, does not
    /// fail them); returns how many.
    async fn fail_lapsed_import_jobs(
        &self,
        heartbeat_before: OffsetDateTime,
        now: OffsetDateTime,
        except_node: &str,
    ) -> Result<u64>;
    async fn get_import_job(&self, id: &str) -> Result<Option<ImportJobRecord>>;
    /// Up to `limit` jobs, newest first; with `orgs`, only those of these organizations (an
    /// operator limited to some sees their newest, however many others have).
    async fn list_import_jobs(&self, limit: i64, orgs: Option<&[String]>) -> Result<Vec<ImportJobRecord>>;
}

const COLUMNS: &str = "id, kind, org_id, insurer_number, file_name, operator_id, started_at, state, done, total, \
     result, node, heartbeat_at, finished_at";

macro_rules! sql_import_jobs {
    ($store:ty) => {
        use super::*;

        #[async_trait]
        impl ImportJobs for $store {
            #[tracing::instrument(skip_all, fields(job_id = %job.id))]
            async fn create_import_job(&self, job: &ImportJobRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO import_jobs (id, kind, org_id, insurer_number, file_name, operator_id, started_at, \
                     state, done, total, result, node, heartbeat_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&job.id)
                .bind(&job.kind)
                .bind(&job.org_id)
                .bind(&job.insurer_number)
                .bind(&job.file_name)
                .bind(&job.operator_id)
                .bind(to_ts(job.started_at))
                .bind(&job.state)
                .bind(job.done)
                .bind(job.total)
                .bind(&job.result)
                .bind(&job.node)
                .bind(to_ts(job.heartbeat_at))
                .bind(job.finished_at.map(to_ts))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(skip_all, fields(job_id = %id))]
            async fn import_job_heartbeat(
                &self,
                id: &str,
                node: &str,
                done: i64,
                total: i64,
                now: OffsetDateTime,
            ) -> Result<bool> {
                let changed = sqlx::query(
                    "UPDATE import_jobs SET done = $1, total = $2, heartbeat_at = $3 \
                     WHERE id = $4 AND node = $5 AND state = 'running'",
                )
                .bind(done)
                .bind(total)
                .bind(to_ts(now))
                .bind(id)
                .bind(node)
                .execute(&self.pool)
                .await?;
                Ok(changed.rows_affected() == 1)
            }

            #[tracing::instrument(skip_all, fields(job_id = %id, state = %state))]
            async fn finish_import_job(
                &self,
                id: &str,
                state: &str,
                result: &str,
                done: i64,
                total: i64,
                now: OffsetDateTime,
            ) -> Result<()> {
                let changed = sqlx::query(
                    "UPDATE import_jobs SET state = $1, result = $2, done = $3, total = $4, heartbeat_at = $5, \
                     finished_at = $5 WHERE id = $6",
                )
                .bind(state)
                .bind(result)
                .bind(done)
                .bind(total)
                .bind(to_ts(now))
                .bind(id)
                .execute(&self.pool)
                .await?;
                if changed.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err(crate::StoreError::NotFound)
                }
            }

            #[tracing::instrument(skip_all)]
            async fn fail_lapsed_import_jobs(
                &self,
                heartbeat_before: OffsetDateTime,
                now: OffsetDateTime,
                except_node: &str,
            ) -> Result<u64> {
                let changed = sqlx::query(
                    "UPDATE import_jobs SET state = 'failed', finished_at = $1 \
                     WHERE state = 'running' AND heartbeat_at < $2 AND node <> $3",
                )
                .bind(to_ts(now))
                .bind(to_ts(heartbeat_before))
                .bind(except_node)
                .execute(&self.pool)
                .await?;
                Ok(changed.rows_affected())
            }

            #[tracing::instrument(skip_all, fields(job_id = %id))]
            async fn get_import_job(&self, id: &str) -> Result<Option<ImportJobRecord>> {
                let sql = format!("SELECT {COLUMNS} FROM import_jobs WHERE id = $1");
                Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
            }

            #[tracing::instrument(skip_all, fields(limit = limit))]
            async fn list_import_jobs(&self, limit: i64, orgs: Option<&[String]>) -> Result<Vec<ImportJobRecord>> {
                let mut q = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM import_jobs"));
                if let Some(orgs) = orgs {
                    if orgs.is_empty() {
                        return Ok(Vec::new());
                    }
                    q.push(" WHERE org_id IN (");
                    let mut ids = q.separated(", ");
                    for org in orgs {
                        ids.push_bind(org);
                    }
                    q.push(")");
                }
                q.push(" ORDER BY started_at DESC, id DESC LIMIT ").push_bind(limit);
                Ok(q.build_query_as().fetch_all(&self.pool).await?)
            }
        }
    };
}

mod sqlite {
    sql_import_jobs!(crate::sqlite::SqliteStore);
}

mod postgres {
    sql_import_jobs!(crate::postgres::PgStore);
}
