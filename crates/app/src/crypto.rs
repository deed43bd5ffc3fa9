//! Keys, MACs and field-level encryption.
//!
//! - [`Keys::mac`]: HMAC-SHA256 under a purpose-specific subkey of the active MAC key. Used
//!   for one-time codes (stored as MACs), CSRF tokens, session ids and blind indexes. MAC keys
//!   have ids like data keys (`MIMOTO_SECRET_KEY=m0:…,m1:…`; a bare key is `m0`): new MACs use
//!   the active one, and [`Keys::macs`] / [`Keys::verify_mac`] accept every configured one, so
//!   what was made under the previous key keeps working until it is re-keyed or expires.
//! - [`Keys::seal`] / [`Keys::open`]: AES-256-GCM with a random 96-bit nonce; the key id is
//!   stored with each value so keys can be rotated (new data uses the active key, old data
//!   still opens with the key it names). `aad` binds a value to where it is stored.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Config;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key`.
// HMAC accepts keys of any length (RFC 2104: longer ones are hashed, shorter ones padded), so
// `new_from_slice` never returns `InvalidLength` for `Hmac`; the error exists only because the
// `Mac` trait also serves fixed-key-size MACs.
#[allow(clippy::expect_used)]
fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key configuration: {0}")]
    Config(String),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("no key with id {0:?}")]
    UnknownKey(String),
    #[error("sealed value failed authentication")]
    Authentication,
    #[error("keys file: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct Keys {
    /// MAC keys by id; `active_mac` makes new MACs.
    macs: BTreeMap<String, [u8; 32]>,
    active_mac: String,
    /// The active MAC key itself.
    secret: [u8; 32],
    /// MAC keys taken out of service (`MIMOTO_RETIRED_SECRET_KEYS`): they check records that
    /// can never be re-keyed (the audit chain) and nothing else.
    retired: BTreeMap<String, [u8; 32]>,
    data: BTreeMap<String, Aes256Gcm>,
    active: String,
}

#[derive(Serialize, Deserialize)]
struct KeysFile {
    secret_key: String,
    data_keys: String,
    active_data_key: String,
}

fn decode_key(b64: &str, what: &str) -> Result<[u8; 32], CryptoError> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|_| CryptoError::Config(format!("{what} is not base64")))?;
    bytes.try_into().map_err(|_| CryptoError::Config(format!("{what} must be 32 bytes")))
}

pub fn random_key_b64() -> String {
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    STANDARD.encode(k)
}

/// The id of a MAC key given bare (base64 without `id:`), as every key was before MAC keys had
/// ids: what was made under it before carries no id and is read as made under `m0`.
pub const LEGACY_MAC_KEY: &str = "m0";

/// `id:base64[,id:base64…]` → keys in the order listed; with `bare`, a single entry without an
/// id is the key `bare`.
fn parse_key_list(list: &str, what: &str, bare: Option<&str>) -> Result<Vec<(String, [u8; 32])>, CryptoError> {
    let entries: Vec<&str> = list.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    if let ([only], Some(bare)) = (entries.as_slice(), bare) {
        if !only.contains(':') {
            return Ok(vec![(bare.to_string(), decode_key(only, what)?)]);
        }
    }
    let mut keys: Vec<(String, [u8; 32])> = Vec::new();
    for (n, entry) in entries.into_iter().enumerate() {
        // Errors name the entry's position, never its text: a misplaced colon would put key
        // material into the message and the log.
        let n = n + 1;
        let (id, key) =
            entry.split_once(':').ok_or_else(|| CryptoError::Config(format!("{what} entry {n} is not id:base64")))?;
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(CryptoError::Config(format!("{what} entry {n}: the id must be 1–32 letters, digits, - or _")));
        }
        if keys.iter().any(|(k, _)| k == id) {
            return Err(CryptoError::Config(format!("{what} entry {n}: the id {id:?} is listed twice")));
        }
        keys.push((id.to_string(), decode_key(key, what)?));
    }
    Ok(keys)
}

/// The active key: the one named, or the last listed.
fn pick_active(ids: &[String], active: Option<&str>, what: &str) -> Result<String, CryptoError> {
    let active = match active {
        Some(a) => a.to_string(),
        None => ids.last().cloned().ok_or_else(|| CryptoError::Config(format!("no {what} configured")))?,
    };
    if !ids.contains(&active) {
        return Err(CryptoError::Config(format!("active {what} {active:?} is not among the configured ones")));
    }
    Ok(active)
}

impl Keys {
    /// `secret_key` is base64 of 32 bytes (the MAC key `m0`) or `id:base64[,id:base64…]`;
    /// `data_keys` is `id:base64[,id:base64…]`. The active keys default to the last listed.
    pub fn new(secret_key: &str, data_keys: &str, active: Option<&str>) -> Result<Self, CryptoError> {
        Self::with_active(secret_key, None, data_keys, active)
    }

    /// [`Keys::new`] with the active MAC key named too.
    pub fn with_active(
        secret_key: &str,
        active_mac: Option<&str>,
        data_keys: &str,
        active: Option<&str>,
    ) -> Result<Self, CryptoError> {
        let macs = parse_key_list(secret_key, "secret key", Some(LEGACY_MAC_KEY))?;
        let mac_ids: Vec<String> = macs.iter().map(|(id, _)| id.clone()).collect();
        let active_mac = pick_active(&mac_ids, active_mac, "secret key")?;
        let secret = macs
            .iter()
            .find(|(id, _)| *id == active_mac)
            .map(|(_, key)| *key)
            .ok_or_else(|| CryptoError::Config("active secret key".into()))?;
        let data_list = parse_key_list(data_keys, "data key", None)?;
        let data_ids: Vec<String> = data_list.iter().map(|(id, _)| id.clone()).collect();
        let active = pick_active(&data_ids, active, "data key")?;
        let data = data_list.into_iter().map(|(id, key)| (id, Aes256Gcm::new(&key.into()))).collect();
        Ok(Keys { macs: macs.into_iter().collect(), active_mac, secret, retired: BTreeMap::new(), data, active })
    }

    /// These keys with retired MAC keys (`id:base64[,…]`) for checking the audit chain.
    pub fn with_retired(mut self, retired: Option<&str>) -> Result<Self, CryptoError> {
        for (id, key) in parse_key_list(retired.unwrap_or(""), "retired secret key", None)? {
            if self.macs.contains_key(&id) {
                return Err(CryptoError::Config(format!("secret key {id:?} is both configured and retired")));
            }
            self.retired.insert(id, key);
        }
        Ok(self)
    }

    /// Keys from the configuration, or — when none are configured — from
    /// `<data_dir>/secrets.toml`, generated (mode 0600) on first use.
    pub fn from_config(config: &Config) -> Result<Self, CryptoError> {
        Self::configured(config)?.with_retired(config.retired_secret_keys.as_deref())
    }

    fn configured(config: &Config) -> Result<Self, CryptoError> {
        match (&config.secret_key, &config.data_keys) {
            (Some(s), Some(d)) => {
                Keys::with_active(s, config.active_secret_key.as_deref(), d, config.active_data_key.as_deref())
            }
            (None, None) => {
                let path = config.data_dir.join("secrets.toml");
                if !path.exists() && !config.is_local() {
                    return Err(CryptoError::Config("MIMOTO_SECRET_KEY and MIMOTO_DATA_KEYS must be configured: keys are generated only for a server on a loopback address with a plain-http public URL (development, the demo)".into()));
                }
                Keys::load_or_generate(&path)
            }
            _ => Err(CryptoError::Config("set both secret_key and data_keys, or neither".into())),
        }
    }

    fn load_or_generate(path: &Path) -> Result<Self, CryptoError> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = KeysFile {
                secret_key: random_key_b64(),
                data_keys: format!("k1:{}", random_key_b64()),
                active_data_key: "k1".into(),
            };
            let text = toml::to_string(&file).map_err(|e| CryptoError::Config(e.to_string()))?;
            write_private(path, text.as_bytes())?;
            tracing::warn!(path = %path.display(), "generated new keys; configure MIMOTO_SECRET_KEY and MIMOTO_DATA_KEYS in production");
        }
        let text = std::fs::read_to_string(path)?;
        let file: KeysFile = toml::from_str(&text).map_err(|e| CryptoError::Config(e.to_string()))?;
        Keys::new(&file.secret_key, &file.data_keys, Some(&file.active_data_key))
    }

    /// HMAC-SHA256 of `data` under the subkey for `purpose` of the active MAC key.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        self.macer(purpose).mac(data)
    }

    /// A MAC keyed once for `purpose` under the active MAC key, for hashing many values.
    pub fn macer(&self, purpose: &str) -> Macer {
        Self::subkey(&self.secret, purpose)
    }

    /// A MAC keyed once for `purpose` under the MAC key `id` (which made the values being
    /// looked up or re-keyed).
    pub fn macer_with(&self, id: &str, purpose: &str) -> Result<Macer, CryptoError> {
        let secret = self.macs.get(id).ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        Ok(Self::subkey(secret, purpose))
    }

    fn subkey(secret: &[u8; 32], purpose: &str) -> Macer {
        let mut sub = hmac_sha256(secret);
        sub.update(b"mimoto/");
        sub.update(purpose.as_bytes());
        let subkey = sub.finalize().into_bytes();
        Macer(hmac_sha256(&subkey))
    }

    /// The MAC of `data` for `purpose` under every configured MAC key, the active one first:
    /// the values a look-up must try while values made under an older key are still stored.
    pub fn macs(&self, purpose: &str, data: &[u8]) -> Vec<Vec<u8>> {
        self.mac_key_ids().filter_map(|id| self.macer_with(id, purpose).ok()).map(|m| m.mac(data)).collect()
    }

    /// Keys derived for `purpose` from `data` under each MAC key, by id: the live ones (active
    /// first) and, apart, the retired ones — keys for what can never be re-keyed (the audit
    /// chain), which retired keys may only check.
    #[allow(clippy::type_complexity)]
    pub fn derived_keys(&self, purpose: &str, data: &[u8]) -> (Vec<(String, [u8; 32])>, Vec<(String, [u8; 32])>) {
        let live = self
            .mac_key_ids()
            .filter_map(|id| Some((id.to_string(), self.macer_with(id, purpose).ok()?.key(data))))
            .collect();
        let retired = self.retired.iter().map(|(id, key)| (id.clone(), Self::subkey(key, purpose).key(data))).collect();
        (live, retired)
    }

    /// The MAC key ids, the active one first.
    pub fn mac_key_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.active_mac.as_str())
            .chain(self.macs.keys().map(String::as_str).filter(move |id| *id != self.active_mac))
    }

    /// The id of the MAC key new MACs are made with.
    pub fn active_mac_key_id(&self) -> &str {
        &self.active_mac
    }

    /// Constant-time check that `expected` is the MAC of `data` for `purpose` under any
    /// configured MAC key (every key is tried, so the time does not tell which one matched).
    pub fn verify_mac(&self, purpose: &str, data: &[u8], expected: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0u8);
        for mac in self.macs(purpose, data) {
            ok |= mac.ct_eq(expected);
        }
        ok.into()
    }

    /// [`Keys::macs`] in base64 (see [`Keys::mac_b64`]), the active key's first.
    pub fn macs_b64(&self, purpose: &str, data: &[u8]) -> Vec<String> {
        self.macs(purpose, data).into_iter().map(|m| URL_SAFE_NO_PAD.encode(m)).collect()
    }

    /// Seals `plaintext` with the active key: `1 | id len | id | nonce | ciphertext+tag`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = self.data.get(&self.active).ok_or_else(|| CryptoError::UnknownKey(self.active.clone()))?;
        // ThreadRng is a CSPRNG (ChaCha12, reseeded from the OS): random 96-bit nonces without
        // a system call per value, which matters when sealing a million roster records.
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| CryptoError::Authentication)?;
        let id = self.active.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Malformed)?;
        if version != FORMAT_V1 {
            return Err(CryptoError::Malformed);
        }
        let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let id = std::str::from_utf8(id).map_err(|_| CryptoError::Malformed)?;
        let cipher = self.data.get(id).ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| CryptoError::Authentication)
    }

    /// The id of the active data key (the one [`Keys::seal`] uses).
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// The id of the key a sealed value names, without opening it; `None` when the value is
    /// not in the sealed format.
    pub fn key_id_of(sealed: &[u8]) -> Option<&str> {
        let (&version, rest) = sealed.split_first()?;
        if version != FORMAT_V1 {
            return None;
        }
        let (&id_len, rest) = rest.split_first()?;
        let id = rest.get(..usize::from(id_len))?;
        std::str::from_utf8(id).ok()
    }

    /// `sealed` opened and sealed again under the active key, with the same `aad`; `None`
    /// when it is already under the active key (nothing to do). Fails as [`Keys::open`] does
    /// (unknown key, wrong `aad`, altered value), so a value is never rewritten unread.
    pub fn reseal(&self, aad: &str, sealed: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        if Keys::key_id_of(sealed) == Some(self.active.as_str()) {
            return Ok(None);
        }
        let plaintext = self.open(aad, sealed)?;
        self.seal(aad, &plaintext).map(Some)
    }

    pub fn seal_json<T: Serialize>(&self, aad: &str, value: &T) -> Result<Vec<u8>, CryptoError> {
        let json = serde_json::to_vec(value).map_err(|_| CryptoError::Malformed)?;
        self.seal(aad, &json)
    }

    pub fn open_json<T: for<'de> Deserialize<'de>>(&self, aad: &str, sealed: &[u8]) -> Result<T, CryptoError> {
        let json = self.open(aad, sealed)?;
        serde_json::from_slice(&json).map_err(|_| CryptoError::Malformed)
    }
}

/// An HMAC already keyed for one purpose; each [`Macer::mac`] starts from that keyed state.
#[derive(Clone)]
pub struct Macer(HmacSha256);

impl Macer {
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        self.key(data).to_vec()
    }

    /// [`Macer::mac`] as a 256-bit key.
    pub fn key(&self, data: &[u8]) -> [u8; 32] {
        let mut m = self.0.clone();
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

/// Random URL-safe token of 32 bytes (session ids, API tokens).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Constant-time string equality.
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(data: &str, active: Option<&str>) -> Keys {
        Keys::new(&STANDARD.encode([7u8; 32]), data, active).expect("keys")
    }

    #[test]
    fn seal_open_round_trip_and_rotation() {
        let k1 = format!("k1:{}", STANDARD.encode([1u8; 32]));
        let k2 = format!("k2:{}", STANDARD.encode([2u8; 32]));
        let old = keys(&k1, None);
        let sealed = old.seal("users.email", "hanako@example.com".as_bytes()).expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"hanako@"), "plaintext must not appear");
        let rotated = keys(&format!("{k1},{k2}"), Some("k2"));
        assert_eq!(rotated.open("users.email", &sealed).expect("open old"), b"hanako@example.com");
        let new = rotated.seal("users.email", b"x").expect("seal");
        assert_eq!(&new[2..4], b"k2");
        assert!(matches!(old.open("users.email", &new), Err(CryptoError::UnknownKey(_))));
        assert!(matches!(rotated.open("flows", &sealed), Err(CryptoError::Authentication)), "aad binds the value");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(rotated.open("users.email", &tampered), Err(CryptoError::Authentication)));
        assert!(matches!(rotated.open("users.email", &[1, 9]), Err(CryptoError::Malformed)));
    }

    #[test]
    fn reseal_moves_a_value_to_the_active_key_once() {
        let k1 = format!("k1:{}", STANDARD.encode([1u8; 32]));
        let k2 = format!("k2:{}", STANDARD.encode([2u8; 32]));
        let old = keys(&k1, None);
        let sealed = old.seal("flows.signup", b"data").expect("seal");
        assert_eq!(Keys::key_id_of(&sealed), Some("k1"));
        let both = keys(&format!("{k1},{k2}"), Some("k2"));
        assert_eq!(both.active_key_id(), "k2");
        let resealed = both.reseal("flows.signup", &sealed).expect("reseal").expect("changed");
        assert_eq!(Keys::key_id_of(&resealed), Some("k2"));
        assert!(both.reseal("flows.signup", &resealed).expect("reseal").is_none(), "already under k2");
        let only_k2 = keys(&k2, None);
        assert_eq!(only_k2.open("flows.signup", &resealed).expect("open"), b"data");
        assert!(matches!(both.reseal("flows.other", &sealed), Err(CryptoError::Authentication)));
        assert_eq!(Keys::key_id_of(&[]), None);
        assert_eq!(Keys::key_id_of(&[2, 1, b'x']), None);
        assert_eq!(Keys::key_id_of(&[1, 5, b'x']), None);
    }

    #[test]
    fn macs_depend_on_purpose_and_verify_in_constant_time() {
        let k = keys(&format!("k1:{}", STANDARD.encode([1u8; 32])), None);
        let a = k.mac("otp", b"123456");
        assert_ne!(a, k.mac("csrf", b"123456"));
        assert!(k.verify_mac("otp", b"123456", &a));
        assert!(!k.verify_mac("otp", b"123457", &a));
    }

    #[test]
    fn a_deployment_never_runs_on_generated_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let public = Config {
            data_dir: dir.path().to_path_buf(),
            public_url: Some("https://app.example.jp".into()),
            ..Config::default()
        };
        let e = Keys::from_config(&public).err().expect("refused");
        assert!(e.to_string().contains("MIMOTO_SECRET_KEY"), "{e}");
        assert!(!dir.path().join("secrets.toml").exists());
        let local = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        assert!(Keys::from_config(&local).is_ok(), "development and the demo generate them");
    }

    #[test]
    fn generated_keys_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets.toml");
        let a = Keys::load_or_generate(&path).expect("generate");
        let b = Keys::load_or_generate(&path).expect("load");
        assert_eq!(a.mac("x", b"y"), b.mac("x", b"y"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn mac_keys_rotate_without_orphaning_what_the_old_key_made() {
        let old = STANDARD.encode([7u8; 32]);
        let new = STANDARD.encode([9u8; 32]);
        let data = format!("k1:{}", STANDARD.encode([1u8; 32]));
        let bare = Keys::new(&old, &data, None).expect("bare");
        assert_eq!(bare.active_mac_key_id(), LEGACY_MAC_KEY, "a bare key is m0");
        let made_before = bare.mac("session", b"token");

        let listed = Keys::new(&format!("m0:{old}"), &data, None).expect("listed");
        assert_eq!(listed.mac("session", b"token"), made_before, "m0 listed is the bare key");

        let both = format!("m0:{old},m1:{new}");
        let rotating = Keys::with_active(&both, Some("m1"), &data, None).expect("rotating");
        assert_eq!(rotating.active_mac_key_id(), "m1");
        assert_ne!(rotating.mac("session", b"token"), made_before, "new MACs use m1");
        assert_eq!(rotating.macs("session", b"token")[1], made_before, "look-ups try m0 after m1");
        assert!(rotating.verify_mac("session", b"token", &made_before));
        assert_eq!(rotating.mac_key_ids().collect::<Vec<_>>(), ["m1", "m0"]);
        assert!(Keys::new(&both, &data, None).expect("default").active_mac_key_id() == "m1", "the last listed");
        assert!(rotating.macer_with("m9", "session").is_err());

        let after =
            Keys::new(&format!("m1:{new}"), &data, None).expect("after").with_retired(Some(&format!("m0:{old}")));
        let after = after.expect("retired");
        assert!(!after.verify_mac("session", b"token", &made_before), "a retired key accepts nothing");
        assert_eq!(after.macs("session", b"token").len(), 1);
        let (live, retired) = after.derived_keys("audit-chain", b"v1");
        assert_eq!(live.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["m1"]);
        assert_eq!(retired.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["m0"]);
        assert_eq!(
            retired[0].1.to_vec(),
            bare.mac("audit-chain", b"v1"),
            "the retired key still derives the old chain key"
        );

        for bad in [format!("m0:{old},m0:{new}"), format!("m0:{old},{new}"), "m 0:AAAA".into(), String::new()] {
            assert!(Keys::new(&bad, &data, None).is_err(), "{bad}");
        }
        assert!(Keys::with_active(&both, Some("m2"), &data, None).is_err(), "the active key must be listed");
        let live_and_retired =
            Keys::new(&format!("m1:{new}"), &data, None).expect("k").with_retired(Some(&format!("m1:{new}")));
        assert!(live_and_retired.is_err());
    }
}
