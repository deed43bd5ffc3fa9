//! Encrypted store for eKYC images (ID documents and selfies).
//!
//! Every image is sealed with AES-256-GCM ([`Keys::seal`]) before it leaves the process, with
//! the AAD `image:{id}` so a blob only opens under the id it was stored as; the plaintext is
//! never written anywhere. Objects live under `{id}.sealed` in one of these backends
//! (`image_store_url`, `MIMOTO_IMAGE_STORE_URL`):
//!
//! - unset: the local folder `<data_dir>/images` (created, mode 0700 on Unix);
//! - `s3://bucket/prefix`: S3 (or a compatible service), configured by the standard `AWS_*`
//!   environment variables (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, …);
//! - `memory://`: in process memory (tests).

use std::fmt;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::crypto::{CryptoError, Keys};

/// Longest accepted image id.
pub const MAX_ID_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image not found")]
    NotFound,
    #[error("image store: {0}")]
    Store(String),
    #[error("image: {0}")]
    Crypto(#[from] CryptoError),
    #[error("image store configuration: {0}")]
    Config(String),
}

/// What [`ImageStore::put`] stored: the SHA-256 and size of the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub sha256: [u8; 32],
    pub size: usize,
}

/// Sealed images in an object store. Cheap to clone.
#[derive(Clone)]
pub struct ImageStore {
    store: Arc<dyn ObjectStore>,
    keys: Keys,
}

impl fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageStore").field("store", &format_args!("{}", self.store)).finish_non_exhaustive()
    }
}

impl ImageStore {
    /// The backend named by `config.image_store_url`, or `<data_dir>/images` when unset.
    pub fn from_config(config: &Config, keys: &Keys) -> Result<ImageStore, ImageError> {
        let url = config.image_store_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let store: Arc<dyn ObjectStore> = match url {
            None => Arc::new(local_store(&config.data_dir.join("images"))?),
            Some(url) if url.starts_with("memory:") => Arc::new(InMemory::new()),
            #[cfg(feature = "s3")]
            Some(url) if url.starts_with("s3://") => s3_store(url)?,
            #[cfg(not(feature = "s3"))]
            Some(url) if url.starts_with("s3://") => {
                return Err(ImageError::Config("this build has no S3 support (feature `s3` of mimoto-app)".into()))
            }
            Some(_) => {
                return Err(ImageError::Config(
                    "image_store_url must be s3://bucket/prefix or memory://, or unset for <data_dir>/images".into(),
                ))
            }
        };
        Ok(ImageStore { store, keys: keys.clone() })
    }

    /// A store in process memory (tests).
    pub fn in_memory(keys: &Keys) -> ImageStore {
        ImageStore { store: Arc::new(InMemory::new()), keys: keys.clone() }
    }

    /// Seals `bytes` (AAD `image:{id}`) and writes it under `{id}.sealed`, replacing any
    /// image stored under that id. The write is atomic: readers see the old or the new image.
    pub async fn put(&self, id: &str, bytes: &[u8]) -> Result<Stored, ImageError> {
        let location = location(id)?;
        let sealed = self.keys.seal(&aad(id), bytes)?;
        self.store.put(&location, PutPayload::from(sealed)).await.map_err(store_error)?;
        Ok(Stored { sha256: Sha256::digest(bytes).into(), size: bytes.len() })
    }

    /// Reads and opens the image stored under `id`: [`ImageError::NotFound`] when there is
    /// none, [`ImageError::Crypto`] when the stored bytes were altered or belong to another id.
    pub async fn get(&self, id: &str) -> Result<Vec<u8>, ImageError> {
        let location = location(id)?;
        let sealed = match self.store.get(&location).await {
            Ok(result) => result.bytes().await.map_err(store_error)?,
            Err(object_store::Error::NotFound { .. }) => return Err(ImageError::NotFound),
            Err(e) => return Err(store_error(e)),
        };
        Ok(self.keys.open(&aad(id), &sealed)?)
    }

    /// Deletes the image stored under `id`; deleting an absent image succeeds.
    pub async fn delete(&self, id: &str) -> Result<(), ImageError> {
        let location = location(id)?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Ids are 1..=64 characters of `A-Z a-z 0-9 _ -`: no separators, dots or traversal.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn location(id: &str) -> Result<ObjectPath, ImageError> {
    if !valid_id(id) {
        // The id is not echoed: it comes from outside.
        return Err(ImageError::Config("invalid image id (1 to 64 characters of A-Z a-z 0-9 _ -)".into()));
    }
    ObjectPath::parse(format!("{id}.sealed")).map_err(|e| ImageError::Config(e.to_string()))
}

fn aad(id: &str) -> String {
    format!("image:{id}")
}

fn store_error(e: object_store::Error) -> ImageError {
    ImageError::Store(e.to_string())
}

fn local_store(dir: &std::path::Path) -> Result<LocalFileSystem, ImageError> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| ImageError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    LocalFileSystem::new_with_prefix(dir).map_err(|e| ImageError::Config(format!("{}: {e}", dir.display())))
}

/// `s3://bucket[/prefix]`: the bucket from the URL, everything else from `AWS_*` variables.
/// Behind the `s3` feature (on in the `mimoto` binary): the S3 client brings an HTTP stack,
/// which the application layer otherwise does without.
#[cfg(feature = "s3")]
fn s3_store(url: &str) -> Result<Arc<dyn ObjectStore>, ImageError> {
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_url(url)
        .build()
        .map_err(|e| ImageError::Config(format!("S3 image store: {e}")))?;
    // The builder takes only the bucket from the URL; the path becomes a key prefix.
    let prefix = url.trim_start_matches("s3://").split_once('/').map(|(_, p)| p.trim_matches('/')).unwrap_or("");
    if prefix.is_empty() {
        return Ok(Arc::new(s3));
    }
    let prefix = ObjectPath::parse(prefix).map_err(|e| ImageError::Config(format!("S3 image store prefix: {e}")))?;
    Ok(Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("a"));
        assert!(valid_id("selfie_0123-ABC"));
        assert!(valid_id(&"x".repeat(64)));
        for bad in ["", "../x", "a/b", "a\\b", ".", "..", "a.b", "a b", "ä", "%2e%2e"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        assert!(!valid_id(&"x".repeat(65)));
    }

    #[test]
    fn s3_url_with_prefix_builds_without_network() {
        // Building a client makes no request; region and bucket come from the URL/defaults.
        let store = s3_store("s3://mimoto-images/ekyc/prod").expect("s3 store");
        let debug = format!("{store:?}");
        assert!(debug.contains("mimoto-images"), "{debug}");
        assert!(debug.contains("ekyc/prod"), "{debug}");
        let bare = format!("{:?}", s3_store("s3://mimoto-images").expect("s3 store without prefix"));
        assert!(bare.contains("mimoto-images") && !bare.contains("Prefix"), "{bare}");
    }
}
