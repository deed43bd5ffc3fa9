//! argon2id password hashing, off the async threads, at most one hash per core at a time, in
//! work memory that is reused. Each hash needs 19 MiB: tokio's blocking pool would otherwise
//! run hundreds at once under a burst of logins (measured: 964 MB peak for 8 clients
//! registering and logging in for 30 s), and even one at a time, a fresh 19 MiB allocation per
//! hash on ever other threads leaves the allocator holding hundreds of megabytes (672 MiB
//! measured with the permits alone). A burst queues on [`permits`] instead (the request timeout
//! bounds the wait), and each permit's hash runs in one of the [`MEMORY`] hashers' arenas.
//!
//! The hash itself is computed by `argon2-rust`, a port of the reference C implementation that
//! picks AVX-512, AVX2 or SSE2 at run time (measured on this machine, m = 19 MiB, t = 2: ~5 ms a
//! hash, against ~13 ms for the `argon2` crate and ~17 ms for the reference C library; README,
//! "Passwords"). Its output is byte-equal to the `argon2` crate's (tests below), which still
//! reads and writes the PHC strings, so every stored hash verifies as before.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Params, Version};
use argon2_rust::params::{Memory, TagLen};

use crate::error::{ServiceError, ServiceResult};

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The permits hashing waits for: one per core.
pub fn permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(cores()))).clone()
}

async fn permit() -> ServiceResult<OwnedSemaphorePermit> {
    permits().acquire_owned().await.map_err(|e| ServiceError::Internal(format!("hash permits: {e}")))
}

/// Which implementation hashes, and the instruction set it picked on this machine.
pub fn implementation() -> String {
    if fast_path_agrees() {
        format!("argon2id by argon2-rust ({:?})", argon2_rust::detected_backend())
    } else {
        "argon2id by the argon2 crate (argon2-rust disagreed with it on this CPU)".to_string()
    }
}

/// Whether `argon2-rust`, on the instruction set it picks on this CPU, gives the `argon2`
/// crate's output: checked once per process over the parameters in use and a small set, before
/// the first hash. The tests compare the two on the test machine's CPU only; on a CPU whose
/// path was never compared, a disagreement would make every stored hash fail to verify, so
/// then this process hashes with the `argon2` crate instead (slower, same output).
fn fast_path_agrees() -> bool {
    static AGREES: OnceLock<bool> = OnceLock::new();
    *AGREES.get_or_init(|| {
        let settings = [Params::DEFAULT, Params::new(64, 3, 1, Some(16)).unwrap_or(Params::DEFAULT)];
        let agrees = settings.into_iter().all(|params| {
            let (password, salt) = (b"mimoto self-check".as_slice(), b"0123456789abcdef".as_slice());
            let mut fast = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
            let mut reference = fast.clone();
            let fast_ok = configuration(&params, Version::V0x13, fast.len())
                .and_then(|a| {
                    a.hasher().hash_into(password, salt, &mut fast).map_err(|e| ServiceError::Internal(e.to_string()))
                })
                .is_ok();
            let reference_ok = argon2::Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into(password, salt, &mut reference)
                .is_ok();
            fast_ok && reference_ok && fast == reference
        });
        if !agrees {
            tracing::error!(backend = ?argon2_rust::detected_backend(),
                "argon2-rust disagrees with the argon2 crate on this CPU; hashing with the argon2 crate");
        }
        agrees
    })
}

/// The largest stored parameters verified: 4× the memory and 5× the passes of the defaults,
/// at most 4 lanes. A stored hash beyond them (only a write to the database could make one)
/// would cost gigabytes or minutes a login.
fn within_bounds(params: &Params) -> bool {
    params.m_cost() <= 4 * Params::DEFAULT_M_COST
        && params.t_cost() <= 5 * Params::DEFAULT_T_COST
        && params.p_cost() <= 4
}

/// Hashers of finished hashes with their arenas, taken by the next (at most one per permit).
static MEMORY: Mutex<Vec<argon2_rust::Hasher>> = Mutex::new(Vec::new());

/// `argon2-rust`'s configuration for `params` (as parsed from a PHC string, or the default).
fn configuration(params: &Params, version: Version, out_len: usize) -> ServiceResult<argon2_rust::Argon2> {
    let version = match version {
        Version::V0x10 => argon2_rust::Version::V0x10,
        Version::V0x13 => argon2_rust::Version::V0x13,
    };
    let params = argon2_rust::Params::builder()
        .memory(Memory::kib(u64::from(params.m_cost())))
        .passes(params.t_cost())
        .lanes(params.p_cost())
        .threads(1)
        .tag_len(TagLen::bytes(out_len as u64))
        .build()
        .map_err(|e| ServiceError::Internal(format!("argon2 params: {e}")))?;
    Ok(argon2_rust::Argon2::new(argon2_rust::Algorithm::Argon2id, version, params))
}

/// Runs argon2id with `params` over `password` and `salt` into `out`, in reused work memory.
fn argon2id(params: Params, version: Version, password: &[u8], salt: &[u8], out: &mut [u8]) -> ServiceResult<()> {
    if !fast_path_agrees() {
        return argon2::Argon2::new(Algorithm::Argon2id, version, params)
            .hash_password_into(password, salt, out)
            .map_err(|e| ServiceError::Internal(format!("argon2: {e}")));
    }
    let argon2 = configuration(&params, version, out.len())?;
    let mut hasher = match MEMORY.lock().ok().and_then(|mut m| m.pop()) {
        Some(mut hasher) => {
            hasher.set_argon2(argon2);
            hasher
        }
        None => argon2.hasher(),
    };
    let result = hasher.hash_into(password, salt, out);
    // Hashers whose arena fits the default parameters are reused; one grown by an odd hash (an
    // old, larger one) is dropped with its arena.
    if hasher.reserved_blocks() == Params::DEFAULT.block_count() {
        if let Ok(mut m) = MEMORY.lock() {
            if m.len() < cores() {
                m.push(hasher);
            }
        }
    }
    result.map_err(|e| ServiceError::Internal(format!("argon2: {e}")))
}

fn hash_blocking(password: &[u8]) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt).map_err(|e| ServiceError::Internal(format!("salt: {e}")))?;
    let params = Params::DEFAULT;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id(params.clone(), Version::V0x13, password, raw_salt, &mut out)?;
    let output = Output::new(&out).map_err(|e| ServiceError::Internal(format!("argon2 output: {e}")))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| ServiceError::Internal(format!("argon2 params: {e}")))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

fn verify_blocking(password: &[u8], phc: &str) -> ServiceResult<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| ServiceError::Internal(format!("stored hash: {e}")))?;
    if Algorithm::try_from(parsed.algorithm).ok() != Some(Algorithm::Argon2id) {
        return Err(ServiceError::Internal("stored hash is not argon2id".into()));
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(ServiceError::Internal("stored hash without salt or output".into()));
    };
    let params = Params::try_from(&parsed).map_err(|e| ServiceError::Internal(format!("stored params: {e}")))?;
    // Associated data or a key id would change the hash, and this app never writes them.
    if !within_bounds(&params) || !params.keyid().is_empty() || !params.data().is_empty() {
        return Err(ServiceError::Internal("stored hash with parameters this app does not verify".into()));
    }
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| ServiceError::Internal(format!("version: {e}")))?;
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt).map_err(|e| ServiceError::Internal(format!("salt: {e}")))?;
    let mut out = vec![0u8; expected.len()];
    argon2id(params, version.unwrap_or_default(), password, raw_salt, &mut out)?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(&out).is_ok_and(|computed| computed == expected))
}

/// Hashes with argon2id (m = 19 MiB, t = 2, p = 1: the OWASP baseline), as a PHC string.
#[tracing::instrument(skip_all)]
pub async fn hash(password: String) -> ServiceResult<String> {
    let permit = permit().await?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        hash_blocking(password.as_bytes())
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
        Ok(verify_blocking(password.as_bytes(), &phc)? && known)
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("verify task: {e}")))?
}

fn dummy_hash() -> ServiceResult<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(d) = DUMMY.get() {
        return Ok(d.as_str());
    }
    let h = hash_blocking(b"mimoto-dummy-password")?;
    Ok(DUMMY.get_or_init(|| h).as_str())
}

#[cfg(test)]
mod tests {
    /// The run-time check picks argon2-rust on this CPU (it agrees with the argon2 crate), and
    /// a stored hash whose parameters would cost gigabytes or minutes is refused unverified.
    #[tokio::test]
    async fn the_fast_path_is_checked_and_stored_parameters_are_bounded() {
        assert!(super::fast_path_agrees());
        assert!(super::implementation().starts_with("argon2id by argon2-rust"));
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for params in
            ["m=4294967295,t=2,p=1", "m=19456,t=4294967295,p=1", "m=19456,t=2,p=255", "m=19456,t=2,p=1,data=YWJjZA"]
        {
            let phc = format!("$argon2id$v=19${params}${salt}${out}");
            let r = super::verify("Sakura-Mochi-2026!".into(), Some(phc)).await;
            assert!(r.is_err(), "{params}: {r:?}");
        }
    }

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

    /// Hashes made by the argon2 crate's own PHC API (every stored hash so far) still verify,
    /// and ours verify with it: the reused work memory changes nothing in the format.
    #[tokio::test]
    async fn hashes_stay_compatible_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = argon2::Argon2::default().hash_password(b"Sakura-Mochi-2026!", &salt).expect("hash").to_string();
        assert!(super::verify("Sakura-Mochi-2026!".into(), Some(theirs.clone())).await.expect("verify"));
        assert!(!super::verify("Sakura-Mochi-2027!".into(), Some(theirs)).await.expect("verify"));
        let ours = super::hash("Sakura-Mochi-2026!".into()).await.expect("hash");
        let parsed = argon2::password_hash::PasswordHash::new(&ours).expect("phc");
        assert!(argon2::Argon2::default().verify_password(b"Sakura-Mochi-2026!", &parsed).is_ok());
        // Other parameters (a future baseline) verify too, in memory of their own size.
        let params = argon2::Params::new(8192, 1, 1, None).expect("params");
        let small = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"Sakura-Mochi-2026!", &salt)
            .expect("hash")
            .to_string();
        assert!(super::verify("Sakura-Mochi-2026!".into(), Some(small)).await.expect("verify"));
    }

    /// The raw hashes of `argon2-rust` (used since issue #15) equal the `argon2` crate's (used
    /// before) byte for byte, over fixed passwords and salts and the parameters in use, a
    /// smaller and an older version's.
    #[test]
    fn raw_hashes_equal_the_argon2_crate() {
        use argon2::{Algorithm, Argon2, Params, Version};
        let passwords: [&[u8]; 5] =
            [b"Sakura-Mochi-2026!", b"", "ぽちたろう".as_bytes(), &[0xff; 300], b"correct horse battery staple"];
        let salts: [&[u8]; 4] = [b"somesalt", b"0123456789abcdef", &[0u8; 16], &[0xa5; 64]];
        let settings = [
            (Params::DEFAULT, Version::V0x13),
            (Params::new(8192, 1, 1, Some(32)).expect("params"), Version::V0x13),
            (Params::new(64, 3, 2, Some(16)).expect("params"), Version::V0x13),
            (Params::new(256, 2, 1, Some(64)).expect("params"), Version::V0x10),
        ];
        for (params, version) in settings {
            for password in passwords {
                for salt in salts {
                    let mut theirs = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
                    Argon2::new(Algorithm::Argon2id, version, params.clone())
                        .hash_password_into(password, salt, &mut theirs)
                        .expect("argon2 crate");
                    let mut ours = vec![0u8; theirs.len()];
                    super::argon2id(params.clone(), version, password, salt, &mut ours).expect("argon2-rust");
                    assert_eq!(ours, theirs, "{params:?} {version:?} password {password:?} salt {salt:?}");
                }
            }
        }
    }

    /// Hashes stored before issue #15 (made by the `argon2` crate, and equal to the reference C
    /// implementation's output for the same input) verify, and nothing else does.
    #[tokio::test]
    async fn stored_hashes_still_verify() {
        let stored = [
            (
                "Sakura-Mochi-2026!",
                "$argon2id$v=19$m=19456,t=2,p=1$bWltb3RvLXN0b3JlZC0x$8YxqfImGCfiEu/Zx70B7Xk/VxQVLQOOXRLY3+P7vGk0",
            ),
            (
                "ぽちたろう",
                "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0LXF1ZXN0aW9u$YI+7af1eRJ+aHfSk+2NeHbHJpeHPuSJpAy1lEOb6kYo",
            ),
        ];
        for (password, phc) in stored {
            assert!(super::verify(password.into(), Some(phc.into())).await.expect("verify"), "{phc}");
            assert!(!super::verify(format!("{password}x"), Some(phc.into())).await.expect("verify"), "{phc}");
        }
    }

    /// Hashing is bounded per node: while every permit is taken, a hash waits; it runs as soon
    /// as one is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_queue_for_a_permit() {
        let permits = super::permits();
        let held = permits.clone().acquire_many_owned(super::cores() as u32).await.expect("permits");
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
