//! Re-keying the roster families under the active MAC key, for `mimoto keys rotate`.
//!
//! An organization's roster family — the blind indexes, record keys and content MACs of its
//! roster records, the record keys of its links, 特定健診 results and health entries, and the
//! de-duplication keys of its health entries — is keyed by one MAC key, the one the
//! organization names (`organizations.roster_mac_key`, NULL = `m0`). Look-ups compute the
//! index of what a member or a file says under that key, so the family moves to another key
//! only as a whole: one organization at a time, in one transaction.
//!
//! For each organization on another key than the active one, the whole family is read, every
//! record opened (the sealed `RosterEntry`) and indexed again under the active key; results and
//! entries, whose AADs name their record's keys, are opened and sealed again (under the active
//! data key) with their new AAD, and the entries get their new de-duplication keys. The store
//! swaps the family in one transaction holding the organization's lock, only if nothing of it
//! changed since it was read; otherwise the organization is counted as skipped and taken up by
//! the next run. The old MAC key is not needed: everything is computed from the opened data.
//!
//! A value that cannot be opened is counted as failed and logged with the organization's id
//! only (never personal data); that organization is left as it is. A run over organizations
//! already under the active key changes nothing.

use std::collections::HashMap;

use domain::roster::RosterEntry;
use store::{
    RecordRef, RekeyedCheckup, RekeyedHealthEntry, RekeyedLink, RekeyedRecord, RosterFamily, RosterRekey, StoreError,
};

use crate::crypto::CryptoError;
use crate::services::checkups::result_aad;
use crate::services::health_imports::{content_key_of, entry_aad, row_key};
use crate::services::rekey::{ColumnReport, RekeyError};
use crate::services::roster::{roster_key_id, RosterIndexer, ROSTER_AAD};
use crate::state::App;

/// The name [`rekey_rosters`] reports (and passes to `progress`).
pub const NAME: &str = "roster MAC key";

/// Why an organization's family could not be planned.
enum PlanError {
    /// A value did not open (or is not what it should be): the organization is left alone.
    Crypto(CryptoError),
    /// The family read was not consistent (a result or link of a record not read): retried by
    /// the next run.
    Inconsistent,
}

impl From<CryptoError> for PlanError {
    fn from(e: CryptoError) -> Self {
        PlanError::Crypto(e)
    }
}

/// Re-keys the roster family of every organization not on the active MAC key; `progress(NAME,
/// organizations seen, organizations re-keyed)` after each organization. `seen` counts every
/// organization, `changed` those re-keyed, `skipped` those whose family changed meanwhile
/// (retried on the next run), `failed` those with a value that could not be opened (logged by
/// organization id).
#[tracing::instrument(skip_all)]
pub async fn rekey_rosters(
    app: &App,
    progress: &mut (impl FnMut(&str, u64, u64) + Send),
) -> Result<ColumnReport, RekeyError> {
    let active = app.keys.active_mac_key_id().to_string();
    let mut report = ColumnReport { name: NAME.to_string(), ..ColumnReport::default() };
    for org in app.store.list_orgs().await? {
        report.seen += 1;
        let stored = app.store.roster_mac_key(&org.id).await?;
        if roster_key_id(stored.as_deref()) != active {
            let family = app.store.roster_family(&org.id).await?;
            if family.mac_key != stored {
                report.skipped += 1;
            } else {
                match plan(app, &org.id, family, &active) {
                    Ok(rekey) => match app.store.rekey_roster_family(&rekey).await {
                        Ok(()) => {
                            report.changed += 1;
                            tracing::info!(org_id = %org.id, key = %active, "roster family re-keyed");
                        }
                        Err(StoreError::Conflict) => {
                            report.skipped += 1;
                            tracing::warn!(org_id = %org.id, "roster family changed while being re-keyed; left for the next run");
                        }
                        Err(e) => return Err(e.into()),
                    },
                    Err(PlanError::Inconsistent) => {
                        report.skipped += 1;
                        tracing::warn!(org_id = %org.id, "roster family changed while being read; left for the next run");
                    }
                    Err(PlanError::Crypto(e)) => {
                        report.failed += 1;
                        tracing::error!(org_id = %org.id, error = %e, "a roster family could not be re-keyed");
                    }
                }
            }
        }
        progress(NAME, report.seen, report.changed);
    }
    Ok(report)
}

/// The family of `org_id` under the MAC key `to`.
fn plan(app: &App, org_id: &str, family: RosterFamily, to: &str) -> Result<RosterRekey, PlanError> {
    let indexer = RosterIndexer::with_key(&app.keys, to, org_id)?;
    let RosterFamily { mac_key, records: stored, links, checkups, health } = family;
    let mut moved: HashMap<RecordRef, RecordRef> = HashMap::with_capacity(stored.len());
    let mut records = Vec::with_capacity(stored.len());
    for r in stored {
        let entry: RosterEntry = app.keys.open_json(ROSTER_AAD, &r.data_enc)?;
        let row = indexer.rekeyed_row(&entry, r.data_enc.clone(), r.eligible_from, r.eligible_until)?;
        let new = RecordRef { card_index: row.card_index.clone(), record_key: row.record_key.clone() };
        if moved.insert(r.record.clone(), new).is_some() {
            return Err(PlanError::Inconsistent);
        }
        records.push(RekeyedRecord { old: r.record, old_data_enc: r.data_enc, row, updated_at: r.updated_at });
    }
    let new_of = |old: &RecordRef| moved.get(old).cloned().ok_or(PlanError::Inconsistent);
    let links = links
        .into_iter()
        .map(|l| -> Result<RekeyedLink, PlanError> {
            Ok(RekeyedLink { new: new_of(&l.record)?, old: l.record, user_id: l.user_id })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    let checkups = checkups
        .into_iter()
        .map(|c| -> Result<RekeyedCheckup, PlanError> {
            let new = new_of(&c.record)?;
            let plain = app.keys.open(&result_aad(org_id, &c.record, &c.examined_on), &c.data_enc)?;
            let data_enc = app.keys.seal(&result_aad(org_id, &new, &c.examined_on), &plain)?;
            Ok(RekeyedCheckup { id: c.id, old_data_enc: c.data_enc, new, data_enc })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    let health = health
        .into_iter()
        .map(|h| -> Result<RekeyedHealthEntry, PlanError> {
            let new = new_of(&h.record)?;
            let plain = app.keys.open(&entry_aad(h.kind, org_id, &h.record, &h.occurred_on), &h.data_enc)?;
            let content = content_key_of(h.kind, &plain)?;
            let data_enc = app.keys.seal(&entry_aad(h.kind, org_id, &new, &h.occurred_on), &plain)?;
            let row_key = row_key(&indexer, org_id, &new, &content);
            Ok(RekeyedHealthEntry { id: h.id, old_data_enc: h.data_enc, new, row_key, data_enc })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    Ok(RosterRekey {
        org_id: org_id.to_string(),
        from_key: mac_key,
        to_key: to.to_string(),
        records,
        links,
        checkups,
        health,
    })
}
