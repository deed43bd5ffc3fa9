//! Passkeys (WebAuthn, `webauthn-rs`) as the step-up before health data (#13): a member whose
//! 健診・医療アクセス認証 is done registers one after answering the secret question in the same
//! session (so a stolen password alone cannot add one), and then opens health data with it
//! instead of the question. Both ceremonies keep their state in a sealed, single-use,
//! five-minute flow record, so any node can finish what another started; the credential is
//! sealed in the store. Passkeys need a public URL with a domain name (`localhost` included):
//! browsers refuse WebAuthn on an IP address, and so does [`App::webauthn`].

use serde::{Deserialize, Serialize};
use store::{PasskeyRecord, StoreError};
use time::{Duration, OffsetDateTime};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Uuid,
};

use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::Member;
use crate::services::codes::sealed_mail;
use crate::services::stepup::{self, StepUp};
use crate::services::{audit, ekyc, flows, limits, new_id, open_email};
use crate::state::App;

pub(crate) const AAD: &str = "passkeys";
const REGISTRATION: &str = "passkey_registration";
const AUTHENTICATION: &str = "passkey_authentication";
/// How long a ceremony may take (the browser's own timeout is shorter).
const CEREMONY_TTL: Duration = Duration::minutes(5);
/// Passkeys per member.
pub const MAX_PER_MEMBER: usize = 10;

/// A ceremony in progress, bound to the member and to the session that started it.
#[derive(Serialize, Deserialize)]
struct Ceremony<S> {
    user_id: String,
    session: Vec<u8>,
    state: S,
}

/// A registered passkey as the member sees it.
pub struct PasskeyInfo {
    pub id: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

fn webauthn(app: &App) -> ServiceResult<&webauthn_rs::Webauthn> {
    app.webauthn().ok_or(ServiceError::PasskeysUnavailable)
}

/// Whether this deployment offers passkeys (its public URL has a domain name).
pub fn available(app: &App) -> bool {
    app.webauthn().is_some()
}

/// [`ServiceError::PasskeysUnavailable`] unless this deployment offers passkeys.
pub fn ensure_available(app: &App) -> ServiceResult<()> {
    webauthn(app).map(|_| ())
}

fn user_handle(member: &Member) -> ServiceResult<Uuid> {
    Uuid::parse_str(&member.user.id).map_err(|_| ServiceError::Internal("user id is not a UUID".into()))
}

async fn stored(app: &App, member: &Member) -> ServiceResult<Vec<(PasskeyRecord, Passkey)>> {
    app.store
        .passkeys_of_user(&member.user.id)
        .await?
        .into_iter()
        .map(|r| {
            let key: Passkey = app.keys.open_json(AAD, &r.data_enc)?;
            Ok((r, key))
        })
        .collect()
}

/// The member's passkeys (none when passkeys are unavailable).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn list(app: &App, member: &Member) -> ServiceResult<Vec<PasskeyInfo>> {
    Ok(app
        .store
        .passkeys_of_user(&member.user.id)
        .await?
        .into_iter()
        .map(|r| PasskeyInfo { id: r.id, created_at: r.created_at, last_used_at: r.last_used_at })
        .collect())
}

async fn begin<S: Serialize>(app: &App, member: &Member, kind: &str, state: S) -> ServiceResult<String> {
    let now = app.now();
    let id = new_id();
    let ceremony = Ceremony { user_id: member.user.id.clone(), session: member.session.id_hash.clone(), state };
    let record = flows::new_record(app, kind, &id, "started", &ceremony, now, now + CEREMONY_TTL)?;
    app.store.insert_flow(&record).await?;
    Ok(id)
}

/// Loads a ceremony of this member and session and marks it used (one finish per ceremony:
/// of two racing finishes, one gets [`ServiceError::PasskeyFailed`]).
async fn take<S: for<'de> Deserialize<'de> + Serialize>(
    app: &App,
    member: &Member,
    kind: &str,
    id: &str,
) -> ServiceResult<S> {
    let loaded: flows::Loaded<Ceremony<S>> = match flows::load(app, kind, id).await {
        Ok(l) => l,
        Err(ServiceError::FlowNotFound | ServiceError::FlowExpired) => return Err(ServiceError::PasskeyFailed),
        Err(e) => return Err(e),
    };
    if loaded.record.state != "started"
        || loaded.flow.user_id != member.user.id
        || loaded.flow.session != member.session.id_hash
    {
        return Err(ServiceError::PasskeyFailed);
    }
    let used = flows::next_record(app, &loaded.record, "used", &loaded.flow, loaded.record.expires_at)?;
    match app.store.update_flow(store::FlowUpdate::new(&used)).await {
        Ok(()) => Ok(loaded.flow.state),
        Err(StoreError::Conflict) => Err(ServiceError::PasskeyFailed),
        Err(e) => Err(e.into()),
    }
}

/// Starts registering a passkey: only after 健診・医療アクセス認証, with health data open in this
/// session (the secret question, or an existing passkey, was just answered). Returns the
/// ceremony id and the options for `navigator.credentials.create`.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn start_registration(app: &App, member: &Member) -> ServiceResult<(String, CreationChallengeResponse)> {
    let w = webauthn(app)?;
    if !matches!(stepup::status(app, member).await?, StepUp::Open { .. }) {
        return Err(ServiceError::StepUpRequired);
    }
    let existing = stored(app, member).await?;
    if existing.len() >= MAX_PER_MEMBER {
        return Err(ServiceError::PasskeyLimit { max: MAX_PER_MEMBER });
    }
    let exclude = existing.iter().map(|(_, k)| k.cred_id().clone()).collect();
    let name = format!("mimoto-{}", &member.user.id[..8.min(member.user.id.len())]);
    let (options, state) = w
        .start_passkey_registration(user_handle(member)?, &name, &name, Some(exclude))
        .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
    let id = begin::<PasskeyRegistration>(app, member, REGISTRATION, state).await?;
    Ok((id, options))
}

/// Finishes a registration with the browser's answer (JSON of the `PublicKeyCredential`);
/// returns the new passkey.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn finish_registration(
    app: &App,
    member: &Member,
    ceremony: &str,
    credential: &str,
) -> ServiceResult<PasskeyInfo> {
    let w = webauthn(app)?;
    let response: RegisterPublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| ServiceError::PasskeyFailed)?;
    let state: PasskeyRegistration = take(app, member, REGISTRATION, ceremony).await?;
    let key = w.finish_passkey_registration(&response, &state).map_err(|e| {
        tracing::info!("passkey registration refused: {e}");
        ServiceError::PasskeyFailed
    })?;
    let record = PasskeyRecord {
        id: new_id(),
        user_id: member.user.id.clone(),
        credential_id: key.cred_id().to_vec(),
        data_enc: app.keys.seal_json(AAD, &key)?,
        created_at: app.now(),
        last_used_at: None,
    };
    match app.store.insert_passkey(&record).await {
        Ok(()) => {}
        Err(StoreError::Duplicate) => return Err(ServiceError::PasskeyFailed),
        Err(e) => return Err(e.into()),
    }
    // Tell the member (a passkey someone else added would open their health data).
    let at = crate::services::jst_minute(record.created_at);
    let locale = domain::locale::Locale::parse(&member.user.locale).unwrap_or_default();
    let mail =
        sealed_mail(app, &mail::Template::PasskeyAdded { at }, locale, &open_email(app, &member.user.email_enc)?)?;
    if let Err(e) = app.store.enqueue_mail(&mail).await {
        // The passkey is registered; the notice is not worth failing the registration for.
        tracing::warn!("the passkey notice mail could not be queued: {e}");
    } else {
        app.mail_wake.notify_one();
    }
    metrics::counter!("mimoto_passkeys_registered_total").increment(1);
    tracing::info!(user_id = %member.user.id, passkey_id = %record.id, "passkey registered");
    Ok(PasskeyInfo { id: record.id, created_at: record.created_at, last_used_at: None })
}

/// Starts a passkey step-up: the options for `navigator.credentials.get` with the member's
/// passkeys; `None` when they have none (or passkeys are unavailable).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn start_step_up(app: &App, member: &Member) -> ServiceResult<Option<(String, RequestChallengeResponse)>> {
    let Some(w) = app.webauthn() else { return Ok(None) };
    // Only for members whose F4 is done (the same check as the question's).
    stepup::status(app, member).await?;
    let keys: Vec<Passkey> = stored(app, member).await?.into_iter().map(|(_, k)| k).collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (options, state) =
        w.start_passkey_authentication(&keys).map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
    let id = begin::<PasskeyAuthentication>(app, member, AUTHENTICATION, state).await?;
    Ok(Some((id, options)))
}

/// [`start_step_up`] for a client that asks for a passkey step-up outright: why there is
/// none is an error ([`ServiceError::PasskeysUnavailable`], [`ServiceError::NoPasskeys`]).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn start_step_up_required(app: &App, member: &Member) -> ServiceResult<(String, RequestChallengeResponse)> {
    ensure_available(app)?;
    start_step_up(app, member).await?.ok_or(ServiceError::NoPasskeys)
}

/// Passkey answers a member may send for the step-up in 15 minutes.
pub const PASSKEY_STEP_UPS: crate::config::Limit = crate::config::Limit::new(20, 900);

/// Finishes a passkey step-up: a valid assertion (user verified) opens health data in this
/// session like a correct answer does, until the returned instant.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn finish_step_up(
    app: &App,
    member: &Member,
    ceremony: &str,
    credential: &str,
    ip: &str,
) -> ServiceResult<OffsetDateTime> {
    let w = webauthn(app)?;
    // Bounded work per member, counted before anything is verified (the secret question's
    // client limit applies to passkey answers as well).
    limits::check(app, "step_up:passkey:member", &member.user.id, PASSKEY_STEP_UPS).await?;
    limits::check_ip(app, "step_up:ip", ip, app.config.limits.step_up_per_ip).await?;
    // The application must still be authenticated (a revoked one closes this door too).
    let current = ekyc::current(app, member).await?;
    if !current.is_some_and(|l| l.data.app.is_authenticated()) {
        return Err(ServiceError::HealthNotUnlocked);
    }
    let response: PublicKeyCredential = serde_json::from_str(credential).map_err(|_| ServiceError::PasskeyFailed)?;
    let state: PasskeyAuthentication = take(app, member, AUTHENTICATION, ceremony).await?;
    let result = match w.finish_passkey_authentication(&response, &state) {
        Ok(result) => result,
        Err(e) => {
            tracing::info!("passkey step-up refused: {e}");
            let target = Some(("method", "passkey"));
            audit::member(app, Some(&member.user.id), audit::actions::STEP_UP_FAILED, target, ip).await?;
            return Err(ServiceError::PasskeyFailed);
        }
    };
    let now = app.now();
    // The ceremony carries the member's passkeys as they were when it started: one removed
    // since then opens nothing.
    let Some((record, mut key)) = stored(app, member).await?.into_iter().find(|(_, k)| k.cred_id() == result.cred_id())
    else {
        tracing::info!("passkey step-up refused: the passkey was removed during the ceremony");
        return Err(ServiceError::PasskeyFailed);
    };
    key.update_credential(&result);
    app.store.passkey_used(&record.id, &app.keys.seal_json(AAD, &key)?, now).await?;
    let until = now + stepup::VALID_FOR;
    app.store.set_session_step_up(&member.session.id_hash, Some(until)).await?;
    let target = Some(("method", "passkey"));
    audit::member(app, Some(&member.user.id), audit::actions::STEP_UP_OPENED, target, ip).await?;
    metrics::counter!("mimoto_step_ups_total", "method" => "passkey").increment(1);
    Ok(until)
}

/// Removes one of the member's passkeys (health data must be open in this session).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, passkey_id = %id))]
pub async fn remove(app: &App, member: &Member, id: &str) -> ServiceResult<()> {
    if !matches!(stepup::status(app, member).await?, StepUp::Open { .. }) {
        return Err(ServiceError::StepUpRequired);
    }
    match app.store.delete_passkey(&member.user.id, id).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(ServiceError::FlowNotFound),
        Err(e) => Err(e.into()),
    }
}
