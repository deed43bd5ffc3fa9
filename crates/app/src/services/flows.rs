//! Persistence of flow state machines: serialized, sealed (they hold emails and password
//! hashes) and versioned for optimistic concurrency.

use serde::de::DeserializeOwned;
use serde::Serialize;
use store::FlowRecord;
use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::state::App;

pub(crate) fn aad(kind: &str) -> String {
    format!("flows.{kind}")
}

/// A flow loaded from the store, with the record it came from (for the version check).
pub struct Loaded<T> {
    pub flow: T,
    pub record: FlowRecord,
}

#[tracing::instrument(skip_all, fields(kind = %kind, flow_id = %id))]
pub async fn load<T: DeserializeOwned>(app: &App, kind: &str, id: &str) -> ServiceResult<Loaded<T>> {
    // Ids are UUIDs; anything else cannot exist, so don't even ask the database.
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ServiceError::FlowNotFound);
    }
    let record = app.store.get_flow(kind, id).await?.ok_or(ServiceError::FlowNotFound)?;
    if record.expires_at <= app.now() {
        return Err(ServiceError::FlowExpired);
    }
    let flow = app.keys.open_json(&aad(kind), &record.data)?;
    Ok(Loaded { flow, record })
}

pub fn new_record<T: Serialize>(
    app: &App,
    kind: &str,
    id: &str,
    state: &str,
    flow: &T,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> ServiceResult<FlowRecord> {
    Ok(FlowRecord {
        id: id.to_string(),
        kind: kind.to_string(),
        state: state.to_string(),
        data: app.keys.seal_json(&aad(kind), flow)?,
        version: 0,
        created_at,
        updated_at: created_at,
        expires_at,
    })
}

/// The record to write back for `flow`, carrying the version it was loaded at.
pub fn next_record<T: Serialize>(
    app: &App,
    prev: &FlowRecord,
    state: &str,
    flow: &T,
    expires_at: OffsetDateTime,
) -> ServiceResult<FlowRecord> {
    Ok(FlowRecord {
        state: state.to_string(),
        data: app.keys.seal_json(&aad(&prev.kind), flow)?,
        updated_at: app.now(),
        expires_at,
        ..prev.clone()
    })
}
