//! パスキーの設定 (#13): register and remove passkeys, the step-up before health data that
//! replaces the secret question. Only with health data open in this session (the question, or
//! a passkey, was just answered). The ceremony runs in `static/passkey.js`, the only script
//! besides the camera: the options are in the page, the authenticator's answer goes back
//! through the page's own form (CSRF like any form); without JavaScript or WebAuthn the
//! button is not shown and the secret question stays.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use app::error::ServiceError;
use app::services::auth::Member;
use app::services::passkeys;
use app::AppState;

use super::{render, see_other, Chrome, Cx, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::error::ErrorStatus;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/passkeys", get(passkeys_page).post(register)).route("/passkeys/remove", post(remove))
}

/// The options for `navigator.credentials.*` as JSON for a `<script type="application/json">`
/// block: `<` is escaped so no value can close the element.
pub(crate) fn options_json<T: serde::Serialize>(options: &T) -> Result<String, ServiceError> {
    serde_json::to_string(options)
        .map(|s| s.replace('<', "\\u003c"))
        .map_err(|e| ServiceError::Internal(format!("passkey options: {e}")))
}

/// The day in Japan time, 2026/11/30.
fn day(t: time::OffsetDateTime) -> String {
    let d = t.to_offset(time::macros::offset!(+9)).date();
    format!("{}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

struct Row {
    id: String,
    created: String,
    last_used: Option<String>,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    c: Chrome,
    rows: Vec<Row>,
    /// The registration ceremony: (id, options JSON).
    ceremony: Option<(String, String)>,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    done: String,
}

async fn page(
    app: &AppState,
    ctx: &Ctx,
    member: &Member,
    notice: Option<&'static str>,
    error: Option<&ServiceError>,
) -> Result<Response, PageError> {
    let rows = passkeys::list(app, member)
        .await
        .or_page(ctx)?
        .into_iter()
        .map(|p| Row { id: p.id, created: day(p.created_at), last_used: p.last_used_at.map(day) })
        .collect::<Vec<_>>();
    let ceremony = match passkeys::start_registration(app, member).await {
        Ok((id, options)) => Some((id, options_json(&options).or_page(ctx)?)),
        Err(ServiceError::PasskeyLimit { .. }) => None,
        // Health data is not open in this session: the question (or a passkey) first.
        Err(ServiceError::StepUpRequired) => return Ok(see_other("/health/unlock?next=passkeys")),
        Err(e) => return Err(e).or_page(ctx),
    };
    let status = error.map(|e| e.status()).unwrap_or(axum::http::StatusCode::OK);
    let view =
        PasskeysPage { c: Chrome::from(ctx), rows, ceremony, notice, error: error.map(|e| e.message(ctx.locale())) };
    Ok(render(status, &view))
}

async fn passkeys_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    let notice = match q.done.as_str() {
        "added" => Some("passkey.added"),
        "removed" => Some("passkey.removed"),
        _ => None,
    };
    page(&app, &ctx, member, notice, None).await
}

#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
}

async fn register(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    MemberForm { 0: f, .. }: MemberForm<RegisterForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    match passkeys::finish_registration(&app, member, &f.ceremony, &f.credential).await {
        Ok(_) => Ok(see_other("/passkeys?done=added")),
        Err(e @ ServiceError::PasskeyFailed) => page(&app, &ctx, member, None, Some(&e)).await,
        Err(ServiceError::StepUpRequired) => Ok(see_other("/health/unlock?next=passkeys")),
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct RemoveForm {
    #[serde(default)]
    passkey: String,
}

async fn remove(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    MemberForm { 0: f, .. }: MemberForm<RemoveForm>,
) -> Result<Response, PageError> {
    let Some(member) = &ctx.member else {
        return Ok(see_other("/login"));
    };
    match passkeys::remove(&app, member, &f.passkey).await {
        Ok(()) => Ok(see_other("/passkeys?done=removed")),
        Err(ServiceError::StepUpRequired) => Ok(see_other("/health/unlock?next=passkeys")),
        Err(e) => Err(e).or_page(&ctx),
    }
}
