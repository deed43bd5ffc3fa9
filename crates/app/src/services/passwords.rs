//! argon2id password hashing, off the async threads, at most one hash per core at a time:
//! each takes 19 MiB, and tokio's blocking pool would otherwise run hundreds at once under a
//! burst of logins (measured: 964 MB peak for 8 clients registering and logging in for 30 s).
//! A burst queues on [`permits`] instead; the request timeout bounds the wait.

use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{ServiceError, ServiceResult};

/// The permits hashing waits for: one per core.
pub fn permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            Arc::new(Semaphore::new(cores))
        })
        .clone()
}

async fn permit() -> ServiceResult<OwnedSemaphorePermit> {
    permits().acquire_owned().await.map_err(|e| ServiceError::Internal(format!("hash permits: {e}")))
}

/// Hashes with argon2id (m = 19 MiB, t = 2, p = 1: the OWASP baseline), as a PHC string.
#[tracing::instrument(skip_all)]
pub async fn hash(password: String) -> ServiceResult<String> {
    let permit = permit().await?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("hash task: {e}")))?
}

/// Verifies `password` against `phc`; with `None` it verifies against a fixed dummy hash so an
/// unknown account costs the same time as a known one.
#[tracing::instrument(skip_all)]
pub async fn verify(password: String, phc: Option<String>) -> ServiceResult<bool> {
    let permit = permit().await?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let known = phc.is_some();
        let phc = match phc {
            Some(p) => p,
            None => dummy_hash()?.to_string(),
        };
        let parsed = PasswordHash::new(&phc).map_err(|e| ServiceError::Internal(format!("stored hash: {e}")))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && known)
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("verify task: {e}")))?
}

fn dummy_hash() -> ServiceResult<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(d) = DUMMY.get() {
        return Ok(d.as_str());
    }
    let salt = SaltString::generate(&mut OsRng);
    let h = Argon2::default()
        .hash_password(b"mimoto-dummy-password", &salt)
        .map_err(|e| ServiceError::Internal(format!("argon2: {e}")))?
        .to_string();
    Ok(DUMMY.get_or_init(|| h).as_str())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_with_argon2id_and_verifies() {
        let h = super::hash("Sakura-Mochi-2026!".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(super::verify("Sakura-Mochi-2026!".into(), Some(h.clone())).await.expect("verify"));
        assert!(!super::verify("Sakura-Mochi-2027!".into(), Some(h)).await.expect("verify"));
        assert!(
            !super::verify("mimoto-dummy-password".into(), None).await.expect("verify"),
            "unknown account never matches"
        );
    }

    /// Hashing is bounded per node: while every permit is taken, a hash waits; it runs as soon
    /// as one is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_queue_for_a_permit() {
        let permits = super::permits();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let held = permits.clone().acquire_many_owned(cores as u32).await.expect("permits");
        let waiting = tokio::spawn(super::hash("Sakura-Mochi-2026!".into()));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(300), async {
            while !waiting.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(waited.is_err(), "no hash runs while every permit is taken");
        drop(held);
        assert!(waiting.await.expect("join").expect("hash").starts_with("$argon2id$"));
    }
}
