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
//!
//! What is stored is the image without its metadata ([`strip_metadata`]): a phone's selfie
//! carries where and when it was taken, and on what device, which eKYC does not need.

use std::borrow::Cow;
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

/// What [`ImageStore::put`] stored: the SHA-256 and size of the plaintext, the image without
/// its metadata (see [`stored_form`]).
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

    /// Seals the image in `bytes` without its metadata ([`stored_form`]: no EXIF, GPS position,
    /// XMP, comments …) with the AAD `image:{id}` and writes it under `{id}.sealed`, replacing
    /// any image stored under that id. The write is atomic: readers see the old or the new
    /// image. [`get`](Self::get) returns the stripped image.
    pub async fn put(&self, id: &str, bytes: &[u8]) -> Result<Stored, ImageError> {
        let location = location(id)?;
        let bytes = stored_form(bytes);
        let sealed = self.keys.seal(&aad(id), &bytes)?;
        self.store.put(&location, PutPayload::from(sealed)).await.map_err(store_error)?;
        Ok(Stored { sha256: Sha256::digest(&bytes).into(), size: bytes.len() })
    }

    /// Reads and opens the image stored under `id`: [`ImageError::NotFound`] when there is
    /// none, [`ImageError::Crypto`] when the stored bytes were altered or belong to another id.
    pub async fn get(&self, id: &str) -> Result<Vec<u8>, ImageError> {
        let sealed = self.read_sealed(&location(id)?).await?;
        Ok(self.keys.open(&aad(id), &sealed)?)
    }

    /// Seals the image stored under `id` again under the active data key (`mimoto keys
    /// rotate`); `false` when it is under that key already, and then nothing is written.
    pub async fn reseal(&self, id: &str) -> Result<bool, ImageError> {
        let location = location(id)?;
        let sealed = self.read_sealed(&location).await?;
        let Some(new) = self.keys.reseal(&aad(id), &sealed)? else { return Ok(false) };
        self.store.put(&location, PutPayload::from(new)).await.map_err(store_error)?;
        Ok(true)
    }

    async fn read_sealed(&self, location: &ObjectPath) -> Result<Vec<u8>, ImageError> {
        match self.store.get(location).await {
            Ok(result) => result.bytes().await.map(Vec::from).map_err(store_error),
            Err(object_store::Error::NotFound { .. }) => Err(ImageError::NotFound),
            Err(e) => Err(store_error(e)),
        }
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

/// Why [`strip_metadata`] could not read an image's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("not a JPEG, PNG or WebP file")]
    UnknownFormat,
    #[error("{0}: the container is truncated or malformed")]
    Malformed(&'static str),
}

/// The image without the metadata a camera or an editor writes beside the pixels — EXIF
/// (with its GPS position, device and time), XMP, IPTC, comments, text and time stamps —
/// decoding to the same pixels. Pure and deterministic: the same upload always gives the same
/// bytes (their SHA-256 is compared between selfies), and a stripped image strips to itself.
///
/// - JPEG: drops APP1–APP15 segments (EXIF, XMP, ICC, IPTC, maker notes …) except Adobe's
///   APP14, which tells the decoder the colour transform, and COM segments; keeps APP0 (JFIF)
///   and every segment the decoder needs; the entropy-coded data is copied as it is; whatever
///   follows the end marker (e.g. a second picture with its own EXIF) is dropped.
/// - PNG: drops `tEXt`, `zTXt`, `iTXt`, `eXIf` and `tIME` chunks and anything after `IEND`.
/// - WebP: drops the `EXIF` and `XMP ` chunks, clears their flags in `VP8X` and writes the
///   RIFF size anew.
///
/// Written here rather than with a container crate: none in the tree, and `img-parts` (the
/// one made for this) leaves the XMP flag of `VP8X` set when the chunk goes.
pub fn strip_metadata(bytes: &[u8]) -> Result<Vec<u8>, MetadataError> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        strip_jpeg(bytes)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        strip_png(bytes)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        strip_webp(bytes)
    } else {
        Err(MetadataError::UnknownFormat)
    }
}

/// What [`ImageStore::put`] stores for an upload: [`strip_metadata`]'s result, or the bytes as
/// they came when their container is not understood (not an image the decoder accepted: every
/// kept capture was decoded first).
pub fn stored_form(bytes: &[u8]) -> Cow<'_, [u8]> {
    match strip_metadata(bytes) {
        Ok(stripped) => Cow::Owned(stripped),
        Err(MetadataError::UnknownFormat) => Cow::Borrowed(bytes),
        Err(e) => {
            tracing::warn!(error = %e, "image kept without stripping its metadata: container not understood");
            Cow::Borrowed(bytes)
        }
    }
}

/// The SHA-256 that [`ImageStore::put`] records for an upload (of its [`stored_form`]).
pub fn stored_sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(stored_form(bytes)).into()
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, MetadataError> {
    const BAD: MetadataError = MetadataError::Malformed("JPEG");
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        // A marker: 0xFF, any number of fill bytes 0xFF, the code.
        if b.get(i) != Some(&0xFF) {
            return Err(BAD);
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let code = *b.get(i).ok_or(BAD)?;
        i += 1;
        match code {
            // End of image: what follows is not this picture.
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(out);
            }
            // Markers without a length (TEM, RSTn).
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, code]);
                continue;
            }
            0x00 | 0xD8 => return Err(BAD),
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i).ok_or(BAD)?, *b.get(i + 1).ok_or(BAD)?]));
        if len < 2 {
            return Err(BAD);
        }
        let end = i.checked_add(len).filter(|end| *end <= b.len()).ok_or(BAD)?;
        let payload = &b[i + 2..end];
        let metadata = match code {
            0xEE => !payload.starts_with(b"Adobe"),
            0xE1..=0xEF | 0xFE => true,
            _ => false,
        };
        if !metadata {
            out.extend_from_slice(&[0xFF, code]);
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if code == 0xDA {
            // Entropy-coded data up to the next marker: 0xFF is followed by 0x00 (a stuffed
            // byte) or RSTn inside it. A file cut short after it is copied to its end.
            let start = i;
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (None, _) | (Some(0xFF), None) => {
                        out.extend_from_slice(&b[start..]);
                        return Ok(out);
                    }
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => i += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                }
            }
            out.extend_from_slice(&b[start..i]);
        }
    }
}

fn strip_png(b: &[u8]) -> Result<Vec<u8>, MetadataError> {
    const BAD: MetadataError = MetadataError::Malformed("PNG");
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut i = PNG_SIGNATURE.len();
    while i < b.len() {
        let header = b.get(i..i + 8).ok_or(BAD)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = &header[4..8];
        // Length, type, data, CRC.
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| i.checked_add(12)?.checked_add(len))
            .filter(|end| *end <= b.len())
            .ok_or(BAD)?;
        if !matches!(kind, b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"tIME") {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Ok(out)
}

fn strip_webp(b: &[u8]) -> Result<Vec<u8>, MetadataError> {
    const BAD: MetadataError = MetadataError::Malformed("WebP");
    const EXIF_FLAG: u8 = 0x08;
    const XMP_FLAG: u8 = 0x04;
    let riff_size = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    // The RIFF size bounds the file; bytes after it are not part of the image.
    let end = usize::try_from(riff_size).ok().and_then(|s| s.checked_add(8)).map_or(b.len(), |e| e.min(b.len()));
    let mut out = Vec::with_capacity(end);
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    let mut i = 12;
    while i < end {
        let header = b.get(i..i + 8).filter(|_| i + 8 <= end).ok_or(BAD)?;
        let fourcc = &header[..4];
        let size =
            usize::try_from(u32::from_le_bytes([header[4], header[5], header[6], header[7]])).map_err(|_| BAD)?;
        let data_end = i.checked_add(8).and_then(|s| s.checked_add(size)).filter(|e| *e <= end).ok_or(BAD)?;
        // Chunks are padded to an even size; a last chunk may miss its padding.
        let chunk_end = (data_end + (size & 1)).min(end);
        match fourcc {
            b"EXIF" | b"XMP " => {}
            b"VP8X" => {
                let mut chunk = b[i..chunk_end].to_vec();
                if let Some(flags) = chunk.get_mut(8) {
                    *flags &= !(EXIF_FLAG | XMP_FLAG);
                }
                out.extend_from_slice(&chunk);
            }
            _ => out.extend_from_slice(&b[i..chunk_end]),
        }
        i = chunk_end;
    }
    let size = u32::try_from(out.len() - 8).map_err(|_| BAD)?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
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

    /// A GPS position as a camera writes it into EXIF, to look for in the stored bytes.
    const GPS: &[u8] = b"GPSLatitude 35/1 41/1 22/1 N GPSLongitude 139/1 41/1 30/1 E MIMOTO-GPS-MARKER";

    fn picture() -> image::RgbImage {
        image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, ((x + y) * 3) as u8]))
    }

    fn encode(format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        picture().write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    fn pixels(bytes: &[u8]) -> Vec<u8> {
        image::load_from_memory(bytes).expect("decodes").to_rgba8().into_raw()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len() + 2).expect("segment length");
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&len.to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    /// A phone's JPEG: EXIF with GPS (APP1), XMP (APP1), Photoshop IPTC (APP13) and a comment
    /// before the frame, and a second picture with its own EXIF after the end (as MPF does).
    fn camera_jpeg() -> Vec<u8> {
        let plain = encode(image::ImageFormat::Jpeg);
        assert_eq!(&plain[..2], &[0xFF, 0xD8]);
        let mut exif = b"Exif\0\0MM\0*".to_vec();
        exif.extend_from_slice(GPS);
        let mut xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>".to_vec();
        xmp.extend_from_slice(GPS);
        let mut out = plain[..2].to_vec();
        out.extend(jpeg_segment(0xE1, &exif));
        out.extend(jpeg_segment(0xE1, &xmp));
        out.extend(jpeg_segment(0xED, GPS));
        out.extend(jpeg_segment(0xFE, GPS));
        out.extend_from_slice(&plain[2..]);
        out.extend_from_slice(&[0xFF, 0xD8]);
        out.extend(jpeg_segment(0xE1, &exif));
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = u32::try_from(data.len()).expect("chunk length").to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = crc32(&c[4..]);
        c.extend_from_slice(&crc.to_be_bytes());
        c
    }

    /// A PNG with text, EXIF and a time stamp after its header, and a text chunk after the end.
    fn annotated_png() -> Vec<u8> {
        let plain = encode(image::ImageFormat::Png);
        // Signature (8) and IHDR (4 + 4 + 13 + 4).
        let (head, rest) = plain.split_at(33);
        assert_eq!(&head[12..16], b"IHDR");
        let mut text = b"Comment\0".to_vec();
        text.extend_from_slice(GPS);
        let mut out = head.to_vec();
        out.extend(png_chunk(b"tEXt", &text));
        out.extend(png_chunk(b"iTXt", &[b"XML:com.adobe.xmp\0\0\0\0\0".as_slice(), GPS].concat()));
        out.extend(png_chunk(b"eXIf", &[b"MM\0*".as_slice(), GPS].concat()));
        out.extend(png_chunk(b"tIME", &[0x07, 0xEA, 1, 2, 3, 4, 5]));
        out.extend_from_slice(rest);
        out.extend(png_chunk(b"tEXt", &text));
        out
    }

    fn riff_chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = fourcc.to_vec();
        c.extend_from_slice(&u32::try_from(data.len()).expect("chunk length").to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&u32::try_from(body.len() + 4).expect("size").to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend(body);
        out
    }

    /// An extended WebP (VP8X) whose flags announce EXIF and XMP, with both chunks.
    fn annotated_webp() -> Vec<u8> {
        let plain = encode(image::ImageFormat::WebP);
        assert_eq!(&plain[12..16], b"VP8L", "lossless: a simple file of one chunk");
        let image_chunk = plain[12..].to_vec();
        let mut vp8x = vec![0x08 | 0x04, 0, 0, 0];
        vp8x.extend_from_slice(&(48u32 - 1).to_le_bytes()[..3]);
        vp8x.extend_from_slice(&(32u32 - 1).to_le_bytes()[..3]);
        let mut exif = b"MM\0*".to_vec();
        exif.extend_from_slice(GPS);
        riff(&[
            riff_chunk(b"VP8X", &vp8x),
            image_chunk,
            riff_chunk(b"EXIF", &exif),
            riff_chunk(b"XMP ", &[GPS, b"!"].concat()),
        ])
    }

    #[test]
    fn a_jpeg_keeps_no_gps_position_and_decodes_to_the_same_pixels() {
        let original = camera_jpeg();
        assert!(contains(&original, GPS));
        let stripped = strip_metadata(&original).expect("strip");
        assert!(!contains(&stripped, GPS), "GPS, XMP, IPTC and comment are gone");
        assert!(!contains(&stripped, b"Exif"));
        assert_eq!(pixels(&stripped), pixels(&original));
        assert!(contains(&stripped, b"JFIF"), "APP0 (JFIF) is kept");
        assert_eq!(&stripped[stripped.len() - 2..], &[0xFF, 0xD9], "nothing after the end");
        assert!(stripped.len() < original.len());
    }

    #[test]
    fn a_png_keeps_no_text_exif_or_time_and_decodes_to_the_same_pixels() {
        let original = annotated_png();
        assert_eq!(pixels(&original), pixels(&encode(image::ImageFormat::Png)), "the fixture is valid");
        let stripped = strip_metadata(&original).expect("strip");
        assert!(!contains(&stripped, GPS));
        for kind in [b"tEXt", b"iTXt", b"eXIf", b"tIME"] {
            assert!(!contains(&stripped, kind), "{}", String::from_utf8_lossy(kind));
        }
        assert_eq!(pixels(&stripped), pixels(&original));
        assert!(stripped.ends_with(&png_chunk(b"IEND", &[])), "nothing after the end");
    }

    #[test]
    fn a_webp_keeps_no_exif_or_xmp_and_its_header_stays_consistent() {
        let original = annotated_webp();
        assert_eq!(pixels(&original), pixels(&encode(image::ImageFormat::WebP)), "the fixture is valid");
        let stripped = strip_metadata(&original).expect("strip");
        assert!(!contains(&stripped, GPS));
        assert!(!contains(&stripped, b"EXIF") && !contains(&stripped, b"XMP "));
        assert_eq!(&stripped[12..16], b"VP8X");
        assert_eq!(stripped[20] & (0x08 | 0x04), 0, "the VP8X flags no longer announce EXIF or XMP");
        let riff_size = u32::from_le_bytes([stripped[4], stripped[5], stripped[6], stripped[7]]);
        assert_eq!(riff_size as usize, stripped.len() - 8, "RIFF size");
        assert_eq!(pixels(&stripped), pixels(&original));
    }

    #[test]
    fn stripping_is_deterministic_so_equal_uploads_keep_equal_hashes() {
        for original in [camera_jpeg(), annotated_png(), annotated_webp()] {
            let once = strip_metadata(&original).expect("strip");
            assert_eq!(strip_metadata(&original).expect("strip"), once, "same input, same bytes");
            assert_eq!(strip_metadata(&once).expect("strip"), once, "a clean image is left as it is");
            assert_eq!(stored_form(&original).as_ref(), once.as_slice());
        }
        for clean in [encode(image::ImageFormat::Jpeg), encode(image::ImageFormat::Png)] {
            assert_eq!(strip_metadata(&clean).expect("strip"), clean, "nothing to strip: unchanged");
        }
    }

    #[test]
    fn what_is_not_an_understood_image_is_stored_as_it_came() {
        assert_eq!(strip_metadata(b"hello"), Err(MetadataError::UnknownFormat));
        assert_eq!(stored_form(b"hello").as_ref(), b"hello");
        assert_eq!(stored_form(b"").as_ref(), b"");
        // Truncated containers: the decoder refuses these before they are kept anyway.
        let jpeg = camera_jpeg();
        assert!(matches!(strip_metadata(&jpeg[..5]), Err(MetadataError::Malformed(_))));
        let png = annotated_png();
        assert!(matches!(strip_metadata(&png[..40]), Err(MetadataError::Malformed(_))));
        assert_eq!(stored_form(&png[..40]).as_ref(), &png[..40]);
    }

    #[tokio::test]
    async fn the_image_store_keeps_the_stripped_image_and_its_hash() {
        let keys = Keys::new(
            &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]),
            &format!("k1:{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 32])),
            None,
        )
        .expect("keys");
        let store = ImageStore::in_memory(&keys);
        let original = camera_jpeg();
        let stripped = strip_metadata(&original).expect("strip");
        let stored = store.put("selfie", &original).await.expect("put");
        assert_eq!(stored.sha256, <[u8; 32]>::from(Sha256::digest(&stripped)));
        assert_eq!(stored.size, stripped.len());
        assert_eq!(store.get("selfie").await.expect("get"), stripped);
    }
}
