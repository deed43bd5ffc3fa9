//! The encrypted eKYC image store on a real local folder (and in memory).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with a message

use app::config::Config;
use app::crypto::Keys;
use app::images::{ImageError, ImageStore};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

const MARKER: &[u8] = b"MIMOTO-PLAINTEXT-MARKER-4242";

/// A small fake JPEG: the SOI/APP0 magic, a marker to look for on disk, filler.
fn jpeg() -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];
    b.extend_from_slice(MARKER);
    b.extend((0..4096u32).map(|i| (i % 251) as u8));
    b.extend_from_slice(&[0xFF, 0xD9]);
    b
}

fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(MARKER);
    b.extend_from_slice(&[0u8; 512]);
    b
}

struct Fixture {
    dir: tempfile::TempDir,
    store: ImageStore,
}

impl Fixture {
    fn images_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("images")
    }

    /// The one file under `images/` whose name (before any extension) is `id`.
    fn raw_file(&self, id: &str) -> std::path::PathBuf {
        let mut found = Vec::new();
        let mut stack = vec![self.images_dir()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').next()) == Some(id) {
                    found.push(path);
                }
            }
        }
        assert_eq!(found.len(), 1, "exactly one file for {id}: {found:?}");
        found.remove(0)
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let keys = Keys::from_config(&config).expect("keys");
    let store = ImageStore::from_config(&config, &keys).expect("image store");
    Fixture { dir, store }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn put_get_round_trip_on_local_folder() {
    let f = fixture();
    assert!(f.images_dir().is_dir(), "from_config creates <data_dir>/images");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.images_dir()).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "images folder is private");
    }
    let image = jpeg();
    let stored = f.store.put("doc_front-01", &image).await.expect("put");
    assert_eq!(stored.size, image.len());
    assert_eq!(stored.sha256, <[u8; 32]>::from(Sha256::digest(&image)));
    assert_eq!(f.store.get("doc_front-01").await.expect("get"), image);
    assert!(f.images_dir().join("doc_front-01.sealed").is_file(), "layout: <data_dir>/images/{{id}}.sealed");

    // Overwrite under the same id.
    let other = png();
    f.store.put("doc_front-01", &other).await.expect("put again");
    assert_eq!(f.store.get("doc_front-01").await.expect("get again"), other);

    // Empty images round-trip too.
    let empty = f.store.put("empty", b"").await.expect("put empty");
    assert_eq!(empty.size, 0);
    assert_eq!(f.store.get("empty").await.expect("get empty"), b"");
}

#[tokio::test]
async fn only_ciphertext_reaches_the_disk() {
    let f = fixture();
    f.store.put("selfie", &jpeg()).await.expect("put jpeg");
    f.store.put("card", &png()).await.expect("put png");
    for id in ["selfie", "card"] {
        let raw = std::fs::read(f.raw_file(id)).expect("read raw");
        assert!(!contains(&raw, MARKER), "{id}: plaintext marker on disk");
        assert!(!raw.starts_with(&[0xFF, 0xD8, 0xFF]), "{id}: JPEG magic on disk");
        assert!(!raw.starts_with(b"\x89PNG"), "{id}: PNG magic on disk");
        assert!(!contains(&raw, b"JFIF"), "{id}: JFIF on disk");
        assert!(raw.len() > MARKER.len());
    }
    // Nothing else (no plaintext temp file) lies around.
    let mut stack = vec![f.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let raw = std::fs::read(&path).expect("read");
                assert!(!contains(&raw, MARKER), "plaintext in {}", path.display());
            }
        }
    }
}

#[tokio::test]
async fn tampering_fails_to_open() {
    let f = fixture();
    f.store.put("tamper", &jpeg()).await.expect("put");
    let path = f.raw_file("tamper");
    let mut raw = std::fs::read(&path).expect("read raw");

    let middle = raw.len() / 2;
    raw[middle] ^= 0x01;
    std::fs::write(&path, &raw).expect("write tampered");
    let err = f.store.get("tamper").await.expect_err("tampered must fail");
    assert!(matches!(err, ImageError::Crypto(_)), "{err:?}");

    std::fs::write(&path, &raw[..10]).expect("write truncated");
    let err = f.store.get("tamper").await.expect_err("truncated must fail");
    assert!(matches!(err, ImageError::Crypto(_)), "{err:?}");

    std::fs::write(&path, b"").expect("write empty");
    let err = f.store.get("tamper").await.expect_err("empty must fail");
    assert!(matches!(err, ImageError::Crypto(_)), "{err:?}");
}

#[tokio::test]
async fn a_blob_copied_under_another_id_does_not_open() {
    let f = fixture();
    let a = jpeg();
    f.store.put("member-a", &a).await.expect("put a");
    f.store.put("member-b", &png()).await.expect("put b");
    std::fs::copy(f.raw_file("member-a"), f.raw_file("member-b")).expect("copy a over b");
    let err = f.store.get("member-b").await.expect_err("a's blob under b's id");
    assert!(matches!(err, ImageError::Crypto(_)), "{err:?}");
    assert_eq!(f.store.get("member-a").await.expect("a still opens"), a);
}

#[tokio::test]
async fn invalid_ids_are_rejected() {
    let f = fixture();
    let long = "x".repeat(65);
    for id in ["../x", "", "a/b", "..", ".", "a\\b", "a.b", "a b", "../../secrets", "ä", long.as_str()] {
        assert!(matches!(f.store.put(id, b"x").await, Err(ImageError::Config(_))), "put {id:?}");
        assert!(matches!(f.store.get(id).await, Err(ImageError::Config(_))), "get {id:?}");
        assert!(matches!(f.store.delete(id).await, Err(ImageError::Config(_))), "delete {id:?}");
    }
    // Nothing was written outside (or inside) the images folder.
    assert_eq!(std::fs::read_dir(f.images_dir()).expect("read_dir").count(), 0);
    assert!(!f.dir.path().join("x").exists());
    // The longest valid id works.
    let max = "y".repeat(64);
    f.store.put(&max, b"ok").await.expect("64-char id");
    assert_eq!(f.store.get(&max).await.expect("get 64"), b"ok");
}

#[tokio::test]
async fn delete_is_idempotent_and_get_after_delete_is_not_found() {
    let f = fixture();
    assert!(matches!(f.store.get("never").await, Err(ImageError::NotFound)));
    f.store.delete("never").await.expect("delete absent");
    f.store.put("gone", &jpeg()).await.expect("put");
    f.store.delete("gone").await.expect("delete");
    assert!(matches!(f.store.get("gone").await, Err(ImageError::NotFound)));
    f.store.delete("gone").await.expect("delete again");
    assert_eq!(std::fs::read_dir(f.images_dir()).expect("read_dir").count(), 0, "file removed");
}

fn test_keys() -> Keys {
    Keys::new(&STANDARD.encode([7u8; 32]), &format!("k1:{}", STANDARD.encode([1u8; 32])), None).expect("keys")
}

#[tokio::test]
async fn in_memory_store_works() {
    let store = ImageStore::in_memory(&test_keys());
    let image = jpeg();
    let stored = store.put("mem", &image).await.expect("put");
    assert_eq!(stored.size, image.len());
    assert_eq!(store.get("mem").await.expect("get"), image);
    assert!(matches!(store.get("other").await, Err(ImageError::NotFound)));
    store.delete("mem").await.expect("delete");
    store.delete("mem").await.expect("delete again");
    assert!(matches!(store.get("mem").await, Err(ImageError::NotFound)));
    assert!(matches!(store.put("a/b", b"x").await, Err(ImageError::Config(_))));
}

#[tokio::test]
async fn memory_url_and_bad_urls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = test_keys();
    let mem =
        Config { data_dir: dir.path().to_path_buf(), image_store_url: Some("memory://".into()), ..Config::default() };
    let store = ImageStore::from_config(&mem, &keys).expect("memory://");
    store.put("m", b"hello").await.expect("put");
    assert_eq!(store.get("m").await.expect("get"), b"hello");
    assert!(!dir.path().join("images").exists(), "memory:// writes nothing to disk");

    for url in ["ftp://host/x", "/var/images", "gs://bucket"] {
        let c = Config { data_dir: dir.path().to_path_buf(), image_store_url: Some(url.into()), ..Config::default() };
        assert!(matches!(ImageStore::from_config(&c, &keys), Err(ImageError::Config(_))), "{url}");
    }
}

#[tokio::test]
async fn other_keys_cannot_open() {
    let f = fixture();
    f.store.put("keyed", &jpeg()).await.expect("put");
    let config = Config { data_dir: f.dir.path().to_path_buf(), ..Config::default() };
    let stranger = ImageStore::from_config(&config, &test_keys()).expect("store with other keys");
    assert!(matches!(stranger.get("keyed").await, Err(ImageError::Crypto(_))));
}
