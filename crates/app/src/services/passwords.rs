//! argon2id password hashing, off the async threads.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{ServiceError, ServiceResult};

/// Hashes with argon2id (m = 19 MiB, t = 2, p = 1: the OWASP baseline), as a PHC string.
#[tracing::instrument(skip_all)]
pub async fn hash(password: String) -> ServiceResult<String> {
    tokio::task::spawn_blocking(move || {
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
    let known = phc.is_some();
    let phc = match phc {
        Some(p) => p,
        None => dummy_hash()?.to_string(),
    };
    tokio::task::spawn_blocking(move || {
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
}
