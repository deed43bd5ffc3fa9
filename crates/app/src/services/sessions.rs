//! Sliding sessions: the one rule behind the members' sessions ([`super::auth`]) and the
//! operators' console sessions ([`super::operators`]). A session lives `idle` past its last
//! use and never longer than `absolute` after it began; the last use is written at most once a
//! minute. The two kinds keep their own tables, MAC purposes and timeouts: a [`SessionTable`]
//! says which table, [`Timeouts`] how long.

use std::future::Future;
use std::pin::Pin;

use store::{OperatorSessionRecord, SessionRecord, Store, StoreError};
use time::{Duration, OffsetDateTime};

use crate::error::ServiceResult;
use crate::state::App;

/// The use of a session is written at most this often.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// How long a kind of session lives.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Without use…
    pub idle: Duration,
    /// …and at the latest after it began.
    pub absolute: Duration,
}

impl Timeouts {
    /// When a session begun at `created_at` and used `now` ends.
    pub fn expiry(&self, created_at: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        (now + self.idle).min(created_at + self.absolute)
    }
}

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A table of sliding sessions, keyed by the MAC of the session token.
pub trait SessionTable {
    type Record: Send;
    /// Whose session it is (a user's or an operator's id).
    fn owner_id(record: &Self::Record) -> &str;
    fn created_at(record: &Self::Record) -> OffsetDateTime;
    fn last_seen_at(record: &Self::Record) -> OffsetDateTime;
    fn expires_at(record: &Self::Record) -> OffsetDateTime;
    fn get<'a>(store: &'a dyn Store, hash: &'a [u8]) -> StoreFuture<'a, Option<Self::Record>>;
    fn touch<'a>(
        store: &'a dyn Store,
        hash: &'a [u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreFuture<'a, ()>;
    fn delete<'a>(store: &'a dyn Store, hash: &'a [u8]) -> StoreFuture<'a, ()>;
}

/// The members' sessions (browser cookie and API bearer token).
pub struct MemberSessions;

impl SessionTable for MemberSessions {
    type Record = SessionRecord;
    fn owner_id(r: &SessionRecord) -> &str {
        &r.user_id
    }
    fn created_at(r: &SessionRecord) -> OffsetDateTime {
        r.created_at
    }
    fn last_seen_at(r: &SessionRecord) -> OffsetDateTime {
        r.last_seen_at
    }
    fn expires_at(r: &SessionRecord) -> OffsetDateTime {
        r.expires_at
    }
    fn get<'a>(store: &'a dyn Store, hash: &'a [u8]) -> StoreFuture<'a, Option<SessionRecord>> {
        store.get_session(hash)
    }
    fn touch<'a>(
        store: &'a dyn Store,
        hash: &'a [u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        store.touch_session(hash, now, expires_at)
    }
    fn delete<'a>(store: &'a dyn Store, hash: &'a [u8]) -> StoreFuture<'a, ()> {
        store.delete_session(hash)
    }
}

/// The operators' console sessions.
pub struct OperatorSessions;

impl SessionTable for OperatorSessions {
    type Record = OperatorSessionRecord;
    fn owner_id(r: &OperatorSessionRecord) -> &str {
        &r.operator_id
    }
    fn created_at(r: &OperatorSessionRecord) -> OffsetDateTime {
        r.created_at
    }
    fn last_seen_at(r: &OperatorSessionRecord) -> OffsetDateTime {
        r.last_seen_at
    }
    fn expires_at(r: &OperatorSessionRecord) -> OffsetDateTime {
        r.expires_at
    }
    fn get<'a>(store: &'a dyn Store, hash: &'a [u8]) -> StoreFuture<'a, Option<OperatorSessionRecord>> {
        store.get_operator_session(hash)
    }
    fn touch<'a>(
        store: &'a dyn Store,
        hash: &'a [u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        store.touch_operator_session(hash, now, expires_at)
    }
    fn delete<'a>(store: &'a dyn Store, hash: &'a [u8]) -> StoreFuture<'a, ()> {
        store.delete_operator_session(hash)
    }
}

/// The live session stored under `hash` and its owner (looked up by `owner` from the owner's
/// id), extending the session's idle timeout. An expired session is deleted; a session
/// whose owner is gone opens nothing.
pub async fn authenticate<T, O, F, Fut>(
    app: &App,
    timeouts: Timeouts,
    hashes: &[Vec<u8>],
    owner: F,
) -> ServiceResult<Option<(T::Record, O)>>
where
    T: SessionTable,
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ServiceResult<Option<O>>>,
{
    // The token's hash under each configured MAC key, the active one first: a session started
    // before a MAC key rotation lives on until it ends or its key is retired.
    let mut found = None;
    for hash in hashes {
        if let Some(session) = T::get(&*app.store, hash).await? {
            found = Some((hash, session));
            break;
        }
    }
    let Some((hash, session)) = found else {
        return Ok(None);
    };
    let now = app.now();
    if T::expires_at(&session) <= now {
        T::delete(&*app.store, hash).await?;
        return Ok(None);
    }
    let Some(owner) = owner(T::owner_id(&session).to_string()).await? else {
        return Ok(None);
    };
    if now - T::last_seen_at(&session) >= TOUCH_EVERY {
        T::touch(&*app.store, hash, now, timeouts.expiry(T::created_at(&session), now)).await?;
    }
    Ok(Some((session, owner)))
}
