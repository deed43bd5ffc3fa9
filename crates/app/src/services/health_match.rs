//! Matching the examinee of a health record an insurer delivers (特定健診 results, お薬履歴,
//! 医療費通知) to one roster record of the organization.
//!
//! The files identify people by card and birth date only (no name): the record must
//! - carry the organization's insurer number (a 6-digit number may be written `00` + number),
//! - match exactly one roster record of the organization: the card's symbol and number
//!   (normalized like the roster and F3: full-width characters, any hyphen or none, case),
//!   the birth date, and the branch number when both the file and the record have one;
//!   when several records match, only those eligible on the record's date count.
//!
//! A failed match is a reason for the operator (never the personal data itself).

use std::collections::HashMap;

use domain::card::roster_card;
use domain::insurer::{alternate_form, same_insurer_number};
use domain::org::Organization;
use domain::roster::RosterEntry;
use store::RecordRef;
use time::Date;

use crate::error::ServiceResult;
use crate::services::roster::{RosterIndexer, ROSTER_AAD};
use crate::state::App;

/// The examinee as a delivered file identifies them, as written in the file.
#[derive(Debug, Clone, Copy)]
pub struct CardHolder<'a> {
    /// 保険者番号.
    pub insurer_number: &'a str,
    /// 記号, absent on cards without one.
    pub symbol: Option<&'a str>,
    /// 番号.
    pub number: &'a str,
    /// 枝番.
    pub branch: Option<&'a str>,
    pub birth_date: Date,
}

impl<'a> From<&'a records::checkup::Examinee> for CardHolder<'a> {
    fn from(e: &'a records::checkup::Examinee) -> Self {
        CardHolder {
            insurer_number: &e.insurer_number,
            symbol: e.symbol.as_deref(),
            number: &e.number,
            branch: e.branch.as_deref(),
            birth_date: e.birth_date,
        }
    }
}

impl<'a> From<&'a records::health_csv::Examinee> for CardHolder<'a> {
    fn from(e: &'a records::health_csv::Examinee) -> Self {
        CardHolder {
            insurer_number: &e.insurer_number,
            symbol: e.symbol.as_deref(),
            number: &e.number,
            branch: e.branch.as_deref(),
            birth_date: e.birth_date,
        }
    }
}

/// Whether the file's insurer number is the organization's. The MHLW files write the number in
/// 8 digits, a 6-digit number with two leading zeros (or spaces).
/// Both ways: an organization registered with the 8-digit form matches files writing 6 digits.
pub fn same_insurer(written: &str, org: &Organization) -> bool {
    same_insurer_number(written, org.insurer_number.as_str())
}

/// The organization with this insurer number, written either way (`00` + 6 digits or 6 digits;
/// the number as written first).
pub async fn find_org(app: &App, written: &str) -> ServiceResult<Option<Organization>> {
    let number = domain::card::normalize_card_text(written);
    if let Some(org) = app.store.find_org_by_insurer_number(&number).await? {
        return Ok(Some(org));
    }
    match alternate_form(&number) {
        Some(other) => Ok(app.store.find_org_by_insurer_number(&other).await?),
        None => Ok(None),
    }
}

/// Finds roster records for the rows of one file, reading (and opening) each card's records
/// once.
pub struct RosterMatcher<'a> {
    app: &'a App,
    org: &'a Organization,
    indexer: RosterIndexer,
    cache: HashMap<Vec<u8>, Vec<(RecordRef, RosterEntry)>>,
}

impl<'a> RosterMatcher<'a> {
    /// A matcher under the organization's roster MAC key.
    pub async fn new(app: &'a App, org: &'a Organization) -> ServiceResult<Self> {
        Ok(RosterMatcher { app, org, indexer: RosterIndexer::for_org(app, &org.id).await?, cache: HashMap::new() })
    }

    /// The indexer the matcher looks records up with (the organization's roster MAC key).
    pub fn indexer(&self) -> &RosterIndexer {
        &self.indexer
    }

    /// Checks, inside an import's transaction (holding the organization's lock), that the
    /// organization's roster MAC key (`stored`, as the import read it) is still the one the
    /// records were found under: a re-key committed in between is
    /// [`ServiceError::Conflict`](crate::error::ServiceError::Conflict) (import again), never
    /// results attached to record keys that no longer exist.
    pub fn check_key(&self, stored: Option<&str>) -> ServiceResult<()> {
        if crate::services::roster::roster_key_id(stored) == self.indexer.key_id() {
            Ok(())
        } else {
            Err(crate::error::ServiceError::Conflict)
        }
    }

    /// Reads (and opens) at once the records of every card of `holders` not read yet, so that
    /// matching a whole file takes a few queries instead of one per card. Holders [`find`]
    /// refuses anyway (another insurer, an unusable card) are left out.
    ///
    /// [`find`]: RosterMatcher::find
    pub async fn prefetch<'h>(&mut self, holders: impl Iterator<Item = CardHolder<'h>>) -> ServiceResult<()> {
        let org = self.org;
        let mut wanted: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for who in holders {
            if !same_insurer(who.insurer_number, org) {
                continue;
            }
            let Ok(card) = roster_card(who.symbol.unwrap_or(""), who.number, who.branch.unwrap_or("")) else {
                continue;
            };
            let card_index = self.indexer.card(&card);
            if !self.cache.contains_key(&card_index) && seen.insert(card_index.clone()) {
                wanted.push(card_index);
            }
        }
        for card_index in &wanted {
            self.cache.insert(card_index.clone(), Vec::new());
        }
        for m in self.app.store.find_roster_records_by_cards(&org.id, &wanted).await? {
            let entry: RosterEntry = self.app.keys.open_json(ROSTER_AAD, &m.data_enc)?;
            if let Some(records) = self.cache.get_mut(&m.record.card_index) {
                records.push((m.record, entry));
            }
        }
        // In the order one card's query returns them.
        for records in self.cache.values_mut() {
            records.sort_by(|a, b| a.0.record_key.cmp(&b.0.record_key));
        }
        Ok(())
    }

    /// The one roster record of `who` (eligible on `on` when several match), or why not. The
    /// outer error is the system's (store, keys); the inner one the file's.
    pub async fn find(&mut self, who: CardHolder<'_>, on: Date) -> ServiceResult<Result<RecordRef, String>> {
        let org = self.org;
        if !same_insurer(who.insurer_number, org) {
            return Ok(Err(format!("insurer number (保険者番号) is not the organization's {}", org.insurer_number)));
        }
        let card = match roster_card(who.symbol.unwrap_or(""), who.number, who.branch.unwrap_or("")) {
            Ok(card) => card,
            Err(err) => return Ok(Err(format!("card (記号・番号・枝番) not usable: {err}"))),
        };
        let card_index = self.indexer.card(&card);
        if !self.cache.contains_key(&card_index) {
            let mut records = Vec::new();
            for m in self.app.store.find_roster_records_by_card(&org.id, &card_index).await? {
                let entry: RosterEntry = self.app.keys.open_json(ROSTER_AAD, &m.data_enc)?;
                records.push((m.record, entry));
            }
            self.cache.insert(card_index.clone(), records);
        }
        let records = self.cache.get(&card_index).map(Vec::as_slice).unwrap_or_default();
        // The card is normalized on both sides; compare the branch like F3: only when both have one.
        let branch = card.branch.as_deref();
        let candidates: Vec<&(RecordRef, RosterEntry)> = records
            .iter()
            .filter(|(_, r)| r.birth_date == who.birth_date)
            .filter(|(_, r)| match (branch, r.card.branch.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .collect();
        let chosen: Vec<&(RecordRef, RosterEntry)> = if candidates.len() > 1 {
            candidates.into_iter().filter(|(_, r)| r.eligible_on(on)).collect()
        } else {
            candidates
        };
        Ok(match chosen.as_slice() {
            [(record, _)] => Ok(record.clone()),
            [] => Err("no roster record matches the card (記号・番号・枝番) and birth date".to_string()),
            many => Err(format!(
                "{} roster records match the card and birth date; add the branch number (枝番)",
                many.len()
            )),
        })
    }
}
