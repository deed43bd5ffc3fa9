//! F3 本人確認: insurer number, insurance card, name and birth date, then the check against
//! the organization's roster (`services::identity`). Signed-in members only.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use domain::identity::{IdentityFailure, IdentityState};
use domain::ids::FlowId;
use domain::org::CardPattern;
use serde::Deserialize;

use app::error::ServiceError;
use app::services::auth::Member;
use app::services::identity;
use app::AppState;

use super::{inline, ok, render, see_other, Chrome, Cx, IdPath, MemberForm, OrPage, PageError};
use crate::ctx::Ctx;
use crate::error::ErrorStatus;
use crate::extract::Empty;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/identity", get(identity_intro).post(identity_start))
        .route("/identity/{id}", get(identity_show))
        .route("/identity/{id}/insurer", post(identity_insurer))
        .route("/identity/{id}/card", post(identity_card))
        .route("/identity/{id}/person", post(identity_person))
        .route("/identity/{id}/confirm", post(identity_confirm))
        .route("/identity/{id}/retry", post(identity_retry))
}

#[derive(Template)]
#[template(path = "idv_intro.html")]
struct IdvIntro {
    c: Chrome,
}

#[derive(Template)]
#[template(path = "idv_insurer.html")]
struct IdvInsurer {
    c: Chrome,
    id: String,
    value: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "idv_card.html")]
struct IdvCard {
    c: Chrome,
    id: String,
    pattern: u8,
    pattern_label: &'static str,
    has_symbol: bool,
    /// The drawn guide's sample 記号 and 番号, in the organization's pattern.
    guide_symbol: &'static str,
    guide_number: &'static str,
    symbol: String,
    number: String,
    branch: String,
    error: Option<String>,
    error_field: &'static str,
}

#[derive(Template)]
#[template(path = "idv_person.html")]
struct IdvPerson {
    c: Chrome,
    id: String,
    family: String,
    given: String,
    birth: String,
    error: Option<String>,
    error_field: &'static str,
}

#[derive(Template)]
#[template(path = "idv_confirm.html")]
struct IdvConfirm {
    c: Chrome,
    id: String,
    insurer_number: String,
    symbol: String,
    number: String,
    branch: String,
    name: String,
    birth: String,
    tries_left: String,
}

#[derive(Template)]
#[template(path = "idv_result.html")]
struct IdvResult {
    c: Chrome,
    ok: bool,
    message_key: &'static str,
    inquiry: bool,
    /// The failed verification (for 「やり直す」 after ②).
    id: String,
    /// After ②: the attempts left in the window, as the page says it.
    tries_left: Option<(i64, String)>,
}

impl IdvResult {
    fn done(ctx: &Ctx) -> Self {
        IdvResult {
            c: Chrome::from(ctx),
            ok: true,
            message_key: "idv.done.lead",
            inquiry: false,
            id: String::new(),
            tries_left: None,
        }
    }
}

/// 「本人確認はあと3回お試しいただけます。」
fn tries_left_text(ctx: &Ctx, n: i64) -> String {
    app::i18n::tf(ctx.locale(), "idv.tries_left", &[("n", &n.to_string())])
}

fn signed_in(ctx: &Ctx) -> Option<&Member> {
    ctx.member.as_ref()
}

async fn identity_intro(State(app): State<AppState>, Extension(ctx): Cx) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    if identity::verified_at(&app, &member.user.id).await.or_page(&ctx)?.is_some() {
        return Ok(ok(&IdvResult::done(&ctx)));
    }
    Ok(ok(&IdvIntro { c: Chrome::from(&ctx) }))
}

async fn identity_start(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let view = identity::start(&app, member).await.or_page(&ctx)?;
    Ok(see_other(&format!("/identity/{}", view.flow.id)))
}

fn pattern_label(p: CardPattern) -> &'static str {
    match p {
        CardPattern::HyphenatedNumber => "idv.card.pattern1",
        CardPattern::NumberOnly => "idv.card.pattern2",
        CardPattern::SymbolWithHyphen => "idv.card.pattern3",
        CardPattern::SymbolAndNumber => "idv.card.pattern4",
    }
}

fn card_page(
    ctx: &Ctx,
    view: &identity::View,
    input: Option<(&str, &str, &str)>,
    err: Option<&ServiceError>,
) -> IdvCard {
    let p = view.org.card_pattern;
    let (symbol, number, branch) = match (input, &view.flow.card) {
        (Some((s, n, b)), _) => (s.to_string(), n.to_string(), b.to_string()),
        (None, Some(card)) => (card.symbol.clone(), card.number.clone(), card.branch.clone().unwrap_or_default()),
        (None, None) => Default::default(),
    };
    IdvCard {
        c: Chrome::from(ctx),
        id: view.flow.id.clone(),
        pattern: p.number(),
        pattern_label: pattern_label(p),
        has_symbol: matches!(p, CardPattern::SymbolWithHyphen | CardPattern::SymbolAndNumber),
        guide_symbol: match p {
            CardPattern::SymbolWithHyphen => "12-34",
            _ => "1234",
        },
        guide_number: match p {
            CardPattern::HyphenatedNumber => "1234-5678",
            CardPattern::NumberOnly => "12345678",
            _ => "5678",
        },
        symbol,
        number,
        branch,
        error: err.map(|e| e.message(ctx.locale())),
        error_field: err.and_then(ServiceError::field).unwrap_or(""),
    }
}

fn person_page(
    ctx: &Ctx,
    view: &identity::View,
    input: Option<(&str, &str, &str)>,
    err: Option<&ServiceError>,
) -> IdvPerson {
    let f = &view.flow;
    let (family, given, birth) = match input {
        Some((a, b, c)) => (a.to_string(), b.to_string(), c.to_string()),
        None => (
            f.family_name.clone().unwrap_or_default(),
            f.given_name.clone().unwrap_or_default(),
            f.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        ),
    };
    IdvPerson {
        c: Chrome::from(ctx),
        id: f.id.clone(),
        family,
        given,
        birth,
        error: err.map(|e| e.message(ctx.locale())),
        error_field: err.and_then(ServiceError::field).unwrap_or(""),
    }
}

#[derive(Deserialize)]
struct StepQuery {
    step: Option<String>,
}

async fn identity_show(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    Query(q): Query<StepQuery>,
) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    let view = identity::view(&app, member, &id).await.or_page(&ctx)?;
    let state = view.flow.state;
    // 「修正する」: an earlier step again, while the verification is open.
    let step = match (q.step.as_deref(), identity::is_final(state)) {
        (Some("insurer"), false) => IdentityState::Started,
        (Some("card"), false) if state != IdentityState::Started => IdentityState::InsurerConfirmed,
        (Some("person"), false) if matches!(state, IdentityState::CardEntered | IdentityState::PersonEntered) => {
            IdentityState::CardEntered
        }
        _ => state,
    };
    Ok(match step {
        IdentityState::Started => {
            let value =
                if state == IdentityState::Started { String::new() } else { view.org.insurer_number.to_string() };
            ok(&IdvInsurer { c: Chrome::from(&ctx), id: id.into(), value, error: None })
        }
        IdentityState::InsurerConfirmed => ok(&card_page(&ctx, &view, None, None)),
        IdentityState::CardEntered => ok(&person_page(&ctx, &view, None, None)),
        IdentityState::PersonEntered => {
            let f = &view.flow;
            let card = f.card.clone().unwrap_or_else(|| domain::card::CardId {
                symbol: String::new(),
                number: String::new(),
                branch: None,
            });
            ok(&IdvConfirm {
                c: Chrome::from(&ctx),
                id: id.into(),
                insurer_number: view.org.insurer_number.to_string(),
                symbol: card.symbol,
                number: card.number,
                branch: card.branch.unwrap_or_default(),
                name: format!("{} {}", f.family_name.as_deref().unwrap_or(""), f.given_name.as_deref().unwrap_or("")),
                birth: f.birth_date.map(|d| d.to_string()).unwrap_or_default(),
                tries_left: tries_left_text(&ctx, identity::tries_left(&app, member).await.or_page(&ctx)?),
            })
        }
        IdentityState::Completed => ok(&IdvResult::done(&ctx)),
        IdentityState::Failed => {
            let (message_key, tries_left) = match view.flow.failure {
                Some(IdentityFailure::AlreadyLinked) => ("idv.fail.already_linked", None),
                _ => {
                    let n = identity::tries_left(&app, member).await.or_page(&ctx)?;
                    ("idv.fail.no_match", Some((n, tries_left_text(&ctx, n))))
                }
            };
            let page = IdvResult {
                c: Chrome::from(&ctx),
                ok: false,
                message_key,
                inquiry: tries_left.is_some(),
                id: id.into(),
                tries_left,
            };
            render(StatusCode::OK, &page)
        }
    })
}

#[derive(Deserialize)]
struct IdvInsurerForm {
    #[serde(default)]
    insurer_number: String,
}

async fn identity_insurer(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<IdvInsurerForm>,
) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    match identity::confirm_insurer(&app, member, &id, &f.insurer_number).await {
        Ok(_) => Ok(see_other(&format!("/identity/{id}?step=card"))),
        Err(e) if inline(&e) => {
            let page = IdvInsurer {
                c: Chrome::from(&ctx),
                id: id.into(),
                value: f.insurer_number,
                error: Some(e.message(ctx.locale())),
            };
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct IdvCardForm {
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    branch: String,
}

async fn identity_card(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<IdvCardForm>,
) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    match identity::enter_card(&app, member, &id, &f.symbol, &f.number, &f.branch).await {
        Ok(view) => {
            let next = if view.flow.state == IdentityState::PersonEntered { "" } else { "?step=person" };
            Ok(see_other(&format!("/identity/{id}{next}")))
        }
        Err(e) if inline(&e) => {
            let view = identity::view(&app, member, &id).await.or_page(&ctx)?;
            Ok(render(e.status(), &card_page(&ctx, &view, Some((&f.symbol, &f.number, &f.branch)), Some(&e))))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

#[derive(Deserialize)]
struct IdvPersonForm {
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    birth_date: String,
}

async fn identity_person(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    MemberForm { 0: f, .. }: MemberForm<IdvPersonForm>,
) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    match identity::enter_person(&app, member, &id, &f.family_name, &f.given_name, &f.birth_date).await {
        Ok(_) => Ok(see_other(&format!("/identity/{id}"))),
        Err(e) if inline(&e) => {
            let view = identity::view(&app, member, &id).await.or_page(&ctx)?;
            Ok(render(
                e.status(),
                &person_page(&ctx, &view, Some((&f.family_name, &f.given_name, &f.birth_date)), Some(&e)),
            ))
        }
        Err(e) => Err(e).or_page(&ctx),
    }
}

async fn identity_confirm(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    identity::confirm(&app, member, &id).await.or_page(&ctx)?;
    Ok(see_other(&format!("/identity/{id}")))
}

/// 「入力内容を確認してやり直す」 after ②: back to the confirmation with the values kept.
async fn identity_retry(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Path(id): IdPath<FlowId>,
    _: MemberForm<Empty>,
) -> Result<Response, PageError> {
    let Some(member) = signed_in(&ctx) else { return Ok(see_other("/login")) };
    let id = id.or_page(&ctx)?;
    match identity::retry(&app, member, &id).await {
        Ok(_) => Ok(see_other(&format!("/identity/{id}"))),
        // The verification ended meanwhile (expired, or cleaned up): a new one, from the start.
        Err(ServiceError::FlowExpired | ServiceError::FlowNotFound) => Ok(see_other("/identity")),
        Err(e) => Err(e).or_page(&ctx),
    }
}
