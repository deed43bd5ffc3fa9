//! `mimoto keys rotate`: re-seals every sealed value and eKYC image under the active data
//! key, so that an old data key can be removed from `MIMOTO_DATA_KEYS`, and re-keys every
//! stored blind index under the active MAC key, so that an old MAC key can be removed from
//! `MIMOTO_SECRET_KEY`.
//!
//! Blind indexes: the members' and operators' email indexes are computed again from the
//! sealed address each indexes and written conditionally like the sealed values; each
//! organization's roster family (roster, checkups, health entries) is re-keyed in one
//! transaction by [`rekey_roster`](crate::services::rekey_roster). MACs that are never stored
//! for long — sessions, CSRF tokens, one-time codes, capture tokens — are checked under every
//! configured MAC key instead and end by themselves; rate-limit counters start again under the
//! new key. The audit chain is never re-keyed: each row names the key it was linked under.
//!
//! Each sealed column is walked in primary-key order, in batches; a value whose key id is
//! already the active one is left untouched without being opened, any other is opened with
//! the AAD it was sealed with (the same functions the services use) and sealed again. The
//! write is conditional on the column still holding what was read, so a concurrent change by
//! the application (which seals with the active key anyway) is never overwritten: it is
//! counted as skipped and looked at again on the next run. The walk is therefore idempotent
//! and resumable: an interrupted run is finished by the next one, and a run over data already
//! under the active key changes nothing.
//!
//! A value that cannot be opened (a key no longer configured, a row altered in the database)
//! is counted as failed, logged with its table and row id, and left as it is.

use store::{IndexColumn, SealedColumn, SealedKey, SealedRow};

use crate::crypto::CryptoError;
use crate::images::ImageError;
use crate::services::{binding, checkups, codes, ekyc, flows, health_imports, inquiry, operators, passkeys, review};
use crate::state::App;

/// The name [`rotate`] reports for the eKYC images in the image store.
pub const IMAGES: &str = "ekyc images";

#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("image store: {0}")]
    Images(#[from] ImageError),
    #[error("the batch size must be at least 1")]
    Batch,
    #[error("keys: {0}")]
    Crypto(#[from] CryptoError),
}

/// What [`rotate`] did to one column (or to the images).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnReport {
    /// `table.column`, or [`IMAGES`].
    pub name: String,
    /// Values looked at.
    pub seen: u64,
    /// Values re-sealed under the active key.
    pub changed: u64,
    /// Values that changed (or went) while being re-sealed: left for the next run.
    pub skipped: u64,
    /// Values that could not be opened (see the log), or images missing from the image store.
    pub failed: u64,
}

/// Everything [`rotate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// The data key everything is sealed under now.
    pub active_key: String,
    /// The MAC key every stored blind index is made with now.
    pub active_mac_key: String,
    pub columns: Vec<ColumnReport>,
}

impl RotateReport {
    pub fn changed(&self) -> u64 {
        self.columns.iter().map(|c| c.changed).sum()
    }
    pub fn skipped(&self) -> u64 {
        self.columns.iter().map(|c| c.skipped).sum()
    }
    pub fn failed(&self) -> u64 {
        self.columns.iter().map(|c| c.failed).sum()
    }
    /// True when every value and image is under the active data key and every blind index
    /// under the active MAC key.
    pub fn complete(&self) -> bool {
        self.skipped() == 0 && self.failed() == 0
    }
}

/// The AAD `row` of `column` was sealed with: the very functions the services seal with.
pub fn aad_of(column: SealedColumn, row: &SealedRow) -> Option<String> {
    let text = |s: &str| Some(s.to_string());
    match column {
        SealedColumn::UserEmail => text(crate::services::EMAIL_AAD),
        SealedColumn::FlowData => Some(flows::aad(row.kind.as_deref()?)),
        SealedColumn::OutboxPayload => text(codes::OUTBOX_AAD),
        SealedColumn::RosterData => text(crate::services::roster::ROSTER_AAD),
        SealedColumn::EkycData => text(ekyc::AAD),
        SealedColumn::EkycReviewNote => text(review::NOTE_AAD),
        SealedColumn::OperatorEmail => text(operators::EMAIL_AAD),
        SealedColumn::OperatorName => text(operators::NAME_AAD),
        SealedColumn::OperatorTotp => text(operators::TOTP_AAD),
        SealedColumn::InquiryEmail => text(inquiry::EMAIL_AAD),
        SealedColumn::InquiryMessage => text(inquiry::MESSAGE_AAD),
        SealedColumn::InquiryReplyBody => text(inquiry::REPLY_AAD),
        SealedColumn::CheckupData => {
            Some(checkups::result_aad(row.org_id.as_deref()?, row.record.as_ref()?, row.date.as_deref()?))
        }
        SealedColumn::HealthData => {
            let kind = store::HealthKind::parse(row.kind.as_deref()?)?;
            Some(health_imports::entry_aad(kind, row.org_id.as_deref()?, row.record.as_ref()?, row.date.as_deref()?))
        }
        SealedColumn::BindingNote => text(binding::NOTE_AAD),
        SealedColumn::PasskeyData => text(passkeys::AAD),
    }
}

/// Re-seals every sealed value of the store and every live eKYC image under the active data
/// key, `batch` rows at a time; `progress(name, done, changed)` after every batch.
pub async fn rotate(
    app: &App,
    batch: i64,
    progress: &mut (impl FnMut(&str, u64, u64) + Send),
) -> Result<RotateReport, RekeyError> {
    if batch < 1 {
        return Err(RekeyError::Batch);
    }
    let mut report = RotateReport {
        active_key: app.keys.active_key_id().to_string(),
        active_mac_key: app.keys.active_mac_key_id().to_string(),
        columns: Vec::new(),
    };
    // The roster families first: re-keying one re-seals its checkups and health entries
    // under the active data key too.
    report.columns.push(crate::services::rekey_roster::rekey_rosters(app, progress).await?);
    for column in SealedColumn::ALL {
        report.columns.push(rotate_column(app, column, batch, progress).await?);
    }
    report.columns.push(rotate_images(app, batch, progress).await?);
    for column in IndexColumn::ALL {
        report.columns.push(rekey_index(app, column, batch, progress).await?);
    }
    Ok(report)
}

/// The blind index of the value sealed in `row` under the active MAC key.
fn index_of(app: &App, column: IndexColumn, row: &store::IndexedRow) -> Result<Vec<u8>, CryptoError> {
    let (aad, purpose) = match column {
        IndexColumn::UserEmail => (crate::services::EMAIL_AAD, crate::services::EMAIL_INDEX_PURPOSE),
        IndexColumn::OperatorEmail => (operators::EMAIL_AAD, operators::EMAIL_INDEX_PURPOSE),
    };
    let address = app.keys.open(aad, &row.sealed)?;
    // The index is of the normalized address, exactly as it was sealed by the services.
    Ok(app.keys.mac(purpose, &address))
}

/// Computes every blind index of `column` again under the active MAC key, `batch` rows at a
/// time; an index already under it is left untouched.
async fn rekey_index(
    app: &App,
    column: IndexColumn,
    batch: i64,
    progress: &mut (impl FnMut(&str, u64, u64) + Send),
) -> Result<ColumnReport, RekeyError> {
    let name = column.name();
    let mut report = ColumnReport { name: name.clone(), ..ColumnReport::default() };
    let mut after: Option<String> = None;
    loop {
        let rows = app.store.index_batch(column, after.as_deref(), batch).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        let full = rows.len() as i64 == batch;
        for row in rows {
            report.seen += 1;
            match index_of(app, column, &row) {
                Ok(index) if index == row.index => {}
                Ok(index) => match app.store.replace_index(column, &row, &index).await {
                    Ok(true) => report.changed += 1,
                    Ok(false) => report.skipped += 1,
                    Err(store::StoreError::Duplicate) => {
                        // Another account holds the same address under the active key: two
                        // accounts of one address, which the customer center must merge.
                        tracing::error!(column = %name, row = %row.id, "a blind index is taken by another row");
                        report.failed += 1;
                    }
                    Err(e) => return Err(e.into()),
                },
                Err(e) => {
                    tracing::error!(column = %name, row = %row.id, error = %e, "a blind index could not be re-keyed");
                    report.failed += 1;
                }
            }
        }
        progress(&name, report.seen, report.changed);
        if !full {
            break;
        }
    }
    Ok(report)
}

async fn rotate_column(
    app: &App,
    column: SealedColumn,
    batch: i64,
    progress: &mut (impl FnMut(&str, u64, u64) + Send),
) -> Result<ColumnReport, RekeyError> {
    let name = column.name();
    let mut report = ColumnReport { name: name.clone(), ..ColumnReport::default() };
    let mut after: Option<SealedKey> = None;
    loop {
        let rows = app.store.sealed_batch(column, after.as_ref(), batch).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.key.clone());
        let full = rows.len() as i64 == batch;
        for row in rows {
            report.seen += 1;
            let resealed = match aad_of(column, &row) {
                Some(aad) => app.keys.reseal(&aad, &row.sealed),
                None => Err(CryptoError::Malformed),
            };
            match resealed {
                Ok(None) => {}
                Ok(Some(new)) => {
                    if app.store.replace_sealed(column, &row.key, &row.sealed, &new).await? {
                        report.changed += 1;
                    } else {
                        report.skipped += 1;
                    }
                }
                Err(e) => {
                    tracing::error!(column = %name, row = %row.key.id, error = %e, "a sealed value could not be re-sealed");
                    report.failed += 1;
                }
            }
        }
        progress(&name, report.seen, report.changed);
        if !full {
            break;
        }
    }
    Ok(report)
}

/// The images: read the sealed object, re-seal it, write it back (atomically). An image the
/// retention job deletes meanwhile could be written back after its deletion: every batch is
/// checked again once written, and the objects of images deleted meanwhile are deleted again.
async fn rotate_images(
    app: &App,
    batch: i64,
    progress: &mut (impl FnMut(&str, u64, u64) + Send),
) -> Result<ColumnReport, RekeyError> {
    let mut report = ColumnReport { name: IMAGES.to_string(), ..ColumnReport::default() };
    let mut after: Option<String> = None;
    loop {
        let ids = app.store.live_image_ids(after.as_deref(), batch).await?;
        let Some(last) = ids.last() else { break };
        let start = after.replace(last.clone());
        let full = ids.len() as i64 == batch;
        let mut written = Vec::new();
        for id in ids {
            report.seen += 1;
            match app.images.reseal(&id).await {
                Ok(true) => {
                    report.changed += 1;
                    written.push(id);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(image = %id, error = %e, "an eKYC image could not be re-sealed");
                    report.failed += 1;
                }
            }
        }
        if !written.is_empty() {
            let live = app.store.live_image_ids(start.as_deref(), batch).await?;
            for id in written.iter().filter(|id| !live.contains(id)) {
                app.images.delete(id).await?;
            }
        }
        progress(IMAGES, report.seen, report.changed);
        if !full {
            break;
        }
    }
    Ok(report)
}
