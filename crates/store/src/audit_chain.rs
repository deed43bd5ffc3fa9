//! The audit log's hash chain: every row carries `hash = HMAC-SHA256(key, prev_hash ‖ row)`,
//! where `prev_hash` is the hash of the row appended before it. Rows are appended one at a
//! time (a lock row serializes appends on both backends), so the chain follows `seq`.
//!
//! The triggers already refuse UPDATE and DELETE; the chain is for whoever can switch them
//! off (a database owner, a restored backup): an edited row no longer matches its hash, a
//! removed row breaks the link of the next one, and without the key (kept by the application,
//! never in the database) nobody can compute a consistent replacement chain. What a chain
//! cannot show is rows cut off the *end*: `mimoto audit verify` prints the head (last `seq` and
//! hash) for the operator to keep elsewhere, and a later head must extend it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::operators::NewAuditEntry;

/// A key of the chain.
pub type ChainKey = [u8; 32];

/// The id rows without a `chain_key` were linked under: the only MAC key there was before
/// MAC keys had ids.
pub const LEGACY_CHAIN_KEY: &str = "m0";

/// The chain's keys the application gives the store ([`crate::Operators::set_audit_chain_keys`]),
/// by the id of the MAC key each is derived from: new rows are linked under the active one and
/// name it (`audit_log.chain_key`), so that after a MAC key rotation every row is still checked
/// under the key it was linked with.
#[derive(Clone)]
pub struct ChainKeys {
    active: (String, ChainKey),
    keys: std::collections::BTreeMap<String, ChainKey>,
    /// Ids of keys taken out of service: they check rows from before the rotation only.
    retired: std::collections::BTreeSet<String>,
}

/// The key a row names, as the verifier sees it.
#[derive(Clone, Copy)]
pub enum RowKey<'a> {
    /// A key in service.
    Live(&'a ChainKey),
    /// A retired key: only rows before the first row under a key in service may name it.
    Retired(&'a ChainKey),
    /// A key not configured at all.
    Unknown,
}

impl ChainKeys {
    /// `active` links new rows; `others` only verify older ones.
    pub fn new(active: (&str, ChainKey), others: impl IntoIterator<Item = (String, ChainKey)>) -> Self {
        let mut keys: std::collections::BTreeMap<String, ChainKey> = others.into_iter().collect();
        keys.insert(active.0.to_string(), active.1);
        ChainKeys { active: (active.0.to_string(), active.1), keys, retired: Default::default() }
    }

    /// These keys plus retired ones (`id`, key), which check old rows only.
    pub fn with_retired(mut self, retired: impl IntoIterator<Item = (String, ChainKey)>) -> Self {
        for (id, key) in retired {
            self.keys.entry(id.clone()).or_insert(key);
            self.retired.insert(id);
        }
        self
    }

    /// The id new rows name, and its key.
    pub fn active(&self) -> (&str, &ChainKey) {
        (&self.active.0, &self.active.1)
    }

    /// The key a row naming `id` was linked under (`None`: a row from before key ids, `m0`).
    pub fn get(&self, id: Option<&str>) -> RowKey<'_> {
        let id = id.unwrap_or(LEGACY_CHAIN_KEY);
        match self.keys.get(id) {
            Some(key) if self.retired.contains(id) => RowKey::Retired(key),
            Some(key) => RowKey::Live(key),
            None => RowKey::Unknown,
        }
    }
}

/// The keys of a store the application never gave any (store tests): `m0`, all zeros.
pub(crate) static UNSET: std::sync::LazyLock<ChainKeys> =
    std::sync::LazyLock::new(|| ChainKeys::new((LEGACY_CHAIN_KEY, [0; 32]), []));

impl std::fmt::Debug for ChainKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKeys").field("active", &self.active.0).field("ids", &self.keys.keys()).finish()
    }
}

fn field(mac: &mut Hmac<Sha256>, value: Option<&str>) {
    match value {
        Some(v) => {
            mac.update(&(v.len() as u32).to_be_bytes());
            mac.update(v.as_bytes());
        }
        None => mac.update(&u32::MAX.to_be_bytes()),
    }
}

/// The fields a link covers, in a fixed, length-prefixed encoding.
pub struct Linked<'a> {
    pub at: OffsetDateTime,
    pub operator_id: Option<&'a str>,
    pub member_id: Option<&'a str>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub client_ip: &'a str,
}

impl<'a> From<&'a NewAuditEntry> for Linked<'a> {
    fn from(e: &'a NewAuditEntry) -> Self {
        Linked {
            at: e.at,
            operator_id: e.operator_id.as_deref(),
            member_id: e.member_id.as_deref(),
            action: &e.action,
            target_type: e.target_type.as_deref(),
            target_id: e.target_id.as_deref(),
            client_ip: &e.client_ip,
        }
    }
}

impl<'a> From<&'a crate::operators::AuditEntry> for Linked<'a> {
    fn from(e: &'a crate::operators::AuditEntry) -> Self {
        Linked {
            at: e.at,
            operator_id: e.operator_id.as_deref(),
            member_id: e.member_id.as_deref(),
            action: &e.action,
            target_type: e.target_type.as_deref(),
            target_id: e.target_id.as_deref(),
            client_ip: &e.client_ip,
        }
    }
}

/// The hash of `row` appended after a row whose hash is `prev` (`None`: the first row).
pub fn link(key: &ChainKey, prev: Option<&[u8]>, row: &Linked<'_>) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { return Vec::new() };
    mac.update(b"mimoto-audit-v1");
    match prev {
        Some(p) => {
            mac.update(&[1]);
            mac.update(p);
        }
        None => mac.update(&[0]),
    }
    mac.update(&row.at.unix_timestamp().to_be_bytes());
    field(&mut mac, row.operator_id);
    field(&mut mac, row.member_id);
    field(&mut mac, Some(row.action));
    field(&mut mac, row.target_type);
    field(&mut mac, row.target_id);
    field(&mut mac, Some(row.client_ip));
    mac.finalize().into_bytes().to_vec()
}

/// What [`crate::Operators::verify_audit_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows read.
    pub rows: u64,
    /// Rows from before the chain existed (a prefix without hashes).
    pub unchained_prefix: u64,
    /// The first row that does not fit, and why; `None` when the chain holds.
    pub broken: Option<(i64, ChainBreak)>,
    /// The last row's `seq` and hash: keep it elsewhere; a later verification must extend it.
    pub head: Option<(i64, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainBreak {
    /// The row's own content does not match its hash: it was edited.
    Edited,
    /// The row does not link to the row before it: a row between was removed or inserted.
    Unlinked,
    /// A row without a hash after the chain began.
    Missing,
    /// The row names a MAC key that is not configured: it cannot be checked.
    UnknownKey,
    /// The row names a retired key after rows under a key in service (or ends the chain): a
    /// retired key signs nothing after its rotation, so the rows were rewritten with it.
    RetiredKey,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChainBreak::Edited => "the row's content does not match its hash (edited)",
            ChainBreak::Unlinked => "the row does not link to the one before it (a row was removed or inserted)",
            ChainBreak::Missing => "the row has no hash although the chain had begun",
            ChainBreak::UnknownKey => {
                "the row names a MAC key that is not configured: a retired key missing from MIMOTO_RETIRED_SECRET_KEYS, or the row was altered"
            }
            ChainBreak::RetiredKey => {
                "the row names a retired MAC key although rows under a key in service came before it, or the chain ends under it: rows were rewritten with an old key"
            }
        })
    }
}

/// Checks rows in `seq` order, one at a time.
#[derive(Default)]
pub struct Verifier {
    report: Option<ChainReport>,
    prev: Option<Vec<u8>>,
    /// A row under a key in service was seen: retired keys may not follow.
    seen_live: bool,
    /// The last row checked was under a retired key (`seq`).
    last_retired: Option<i64>,
}

impl Verifier {
    /// Checks the next row, linked under the key `key`.
    pub fn push(&mut self, key: RowKey<'_>, seq: i64, row: &Linked<'_>, prev_hash: Option<&[u8]>, hash: Option<&[u8]>) {
        let report = self.report.get_or_insert(ChainReport { rows: 0, unchained_prefix: 0, broken: None, head: None });
        report.rows += 1;
        if report.broken.is_some() {
            return;
        }
        let Some(hash) = hash else {
            if self.prev.is_none() && report.unchained_prefix + 1 == report.rows {
                report.unchained_prefix += 1;
            } else {
                report.broken = Some((seq, ChainBreak::Missing));
            }
            return;
        };
        if prev_hash != self.prev.as_deref() {
            report.broken = Some((seq, ChainBreak::Unlinked));
            return;
        }
        let key = match key {
            RowKey::Live(key) => {
                self.seen_live = true;
                self.last_retired = None;
                key
            }
            RowKey::Retired(_) if self.seen_live => {
                report.broken = Some((seq, ChainBreak::RetiredKey));
                return;
            }
            RowKey::Retired(key) => {
                self.last_retired = Some(seq);
                key
            }
            RowKey::Unknown => {
                report.broken = Some((seq, ChainBreak::UnknownKey));
                return;
            }
        };
        if link(key, prev_hash, row).as_slice() != hash {
            report.broken = Some((seq, ChainBreak::Edited));
            return;
        }
        self.prev = Some(hash.to_vec());
        report.head = Some((seq, hash.to_vec()));
    }

    pub fn finish(self) -> ChainReport {
        let mut report = self.report.unwrap_or(ChainReport { rows: 0, unchained_prefix: 0, broken: None, head: None });
        if let (None, Some(seq)) = (report.broken, self.last_retired) {
            report.broken = Some((seq, ChainBreak::RetiredKey));
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str) -> Linked<'_> {
        Linked {
            at: OffsetDateTime::UNIX_EPOCH,
            operator_id: None,
            member_id: Some("m1"),
            action,
            target_type: None,
            target_id: None,
            client_ip: "127.0.0.1",
        }
    }

    #[test]
    fn a_chain_holds_and_breaks_where_it_was_changed() {
        let key = [7u8; 32];
        let a = link(&key, None, &row("a"));
        let b = link(&key, Some(&a), &row("b"));
        let c = link(&key, Some(&b), &row("c"));
        let mut v = Verifier::default();
        v.push(RowKey::Live(&key), 1, &row("a"), None, Some(&a));
        v.push(RowKey::Live(&key), 2, &row("b"), Some(&a), Some(&b));
        v.push(RowKey::Live(&key), 3, &row("c"), Some(&b), Some(&c));
        let report = v.finish();
        assert_eq!(report.broken, None);
        assert_eq!(report.head, Some((3, c.clone())));

        let mut edited = Verifier::default();
        edited.push(RowKey::Live(&key), 1, &row("a"), None, Some(&a));
        edited.push(RowKey::Live(&key), 2, &row("B"), Some(&a), Some(&b));
        assert_eq!(edited.finish().broken, Some((2, ChainBreak::Edited)));

        let mut removed = Verifier::default();
        removed.push(RowKey::Live(&key), 1, &row("a"), None, Some(&a));
        removed.push(RowKey::Live(&key), 3, &row("c"), Some(&b), Some(&c));
        assert_eq!(removed.finish().broken, Some((3, ChainBreak::Unlinked)));

        let other_key = [8u8; 32];
        let mut forged = Verifier::default();
        forged.push(RowKey::Live(&key), 1, &row("a"), None, Some(&link(&other_key, None, &row("a"))));
        assert_eq!(forged.finish().broken, Some((1, ChainBreak::Edited)), "without the key no row fits");
    }

    #[test]
    fn rows_from_before_the_chain_are_a_prefix_only() {
        let key = [7u8; 32];
        let a = link(&key, None, &row("a"));
        let mut v = Verifier::default();
        v.push(RowKey::Live(&key), 1, &row("old"), None, None);
        v.push(RowKey::Live(&key), 2, &row("a"), None, Some(&a));
        let report = v.finish();
        assert_eq!((report.unchained_prefix, report.broken), (1, None));
        let mut v = Verifier::default();
        v.push(RowKey::Live(&key), 2, &row("a"), None, Some(&a));
        v.push(RowKey::Live(&key), 3, &row("new"), None, None);
        assert_eq!(v.finish().broken, Some((3, ChainBreak::Missing)));
    }

    #[test]
    fn rows_are_checked_under_the_key_they_name_across_a_rotation() {
        let (old, new) = ([7u8; 32], [9u8; 32]);
        let a = link(&old, None, &row("a"));
        let b = link(&new, Some(&a), &row("b"));
        let keys = ChainKeys::new(("m1", new), [("m0".to_string(), old)]);
        let mut v = Verifier::default();
        v.push(keys.get(None), 1, &row("a"), None, Some(&a));
        v.push(keys.get(Some("m1")), 2, &row("b"), Some(&a), Some(&b));
        assert_eq!(v.finish().broken, None, "a row from before key ids is an m0 row");

        // m0 retired: it still checks the rows before the rotation...
        let retired = ChainKeys::new(("m1", new), []).with_retired([("m0".to_string(), old)]);
        let mut v = Verifier::default();
        v.push(retired.get(None), 1, &row("a"), None, Some(&a));
        v.push(retired.get(Some("m1")), 2, &row("b"), Some(&a), Some(&b));
        assert_eq!(v.finish().broken, None);
        // ...but whoever holds it cannot rewrite what came after: not in the middle...
        let forged = link(&old, Some(&b), &row("c"));
        let mut v = Verifier::default();
        v.push(retired.get(None), 1, &row("a"), None, Some(&a));
        v.push(retired.get(Some("m1")), 2, &row("b"), Some(&a), Some(&b));
        v.push(retired.get(Some("m0")), 3, &row("c"), Some(&b), Some(&forged));
        assert_eq!(v.finish().broken, Some((3, ChainBreak::RetiredKey)));
        // ...nor by re-chaining everything from some row on under it (the chain ends under it).
        let b_forged = link(&old, Some(&a), &row("B"));
        let mut v = Verifier::default();
        v.push(retired.get(None), 1, &row("a"), None, Some(&a));
        v.push(retired.get(Some("m0")), 2, &row("B"), Some(&a), Some(&b_forged));
        assert_eq!(v.finish().broken, Some((2, ChainBreak::RetiredKey)));

        let only_new = ChainKeys::new(("m1", new), []);
        let mut v = Verifier::default();
        v.push(only_new.get(None), 1, &row("a"), None, Some(&a));
        assert_eq!(v.finish().broken, Some((1, ChainBreak::UnknownKey)), "a retired key is named, not guessed");

        let mut v = Verifier::default();
        v.push(keys.get(Some("m1")), 1, &row("a"), None, Some(&a));
        assert_eq!(v.finish().broken, Some((1, ChainBreak::Edited)), "naming another key does not hide an edit");
        assert_eq!(keys.active().0, "m1");
    }
}
