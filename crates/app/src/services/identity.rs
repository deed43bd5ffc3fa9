//! F3 本人確認: the member proves who they are against their organization's roster.

use domain::card::CardId;
use domain::identity::{
    IdentityError, IdentityFailure, IdentityState, IdentityVerification, ATTEMPT_WINDOW, MAX_ATTEMPTS,
};
use domain::insurer::InsurerNumber;
use domain::kana::to_katakana;
use domain::org::Organization;
use domain::roster::{parse_date, person_key};
use store::{FlowUpdate, StoreError};
use time::OffsetDateTime;

use crate::config::Limit;
use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::Member;
use crate::services::flows::{self, Loaded};
use crate::services::roster::{today_jst, RosterIndexer};
use crate::services::{limits, new_id};
use crate::state::App;

pub const KIND: &str = "identity";

impl From<IdentityError> for ServiceError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::WrongState(_) => ServiceError::WrongStep,
            IdentityError::Expired => ServiceError::FlowExpired,
            IdentityError::InsurerMismatch => ServiceError::InsurerMismatch,
        }
    }
}

pub struct View {
    pub flow: IdentityVerification,
    pub org: Organization,
}

/// When the member's identity was verified, if it was.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn verified_at(app: &App, user_id: &str) -> ServiceResult<Option<OffsetDateTime>> {
    Ok(app.store.roster_link_of_user(user_id).await?.map(|link| link.linked_at))
}

/// The roster record linked to the member in 本人確認, opened.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn roster_entry_of(app: &App, user_id: &str) -> ServiceResult<Option<domain::roster::RosterEntry>> {
    let Some(link) = app.store.roster_link_of_user(user_id).await? else { return Ok(None) };
    match app.store.get_roster_record(&link.org_id, &link.record).await? {
        Some(r) => Ok(Some(app.keys.open_json(crate::services::roster::ROSTER_AAD, &r.data_enc)?)),
        None => Ok(None),
    }
}

async fn org_of(app: &App, member: &Member) -> ServiceResult<Organization> {
    app.store
        .get_org(&member.user.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("user without organization".into()))
}

/// Loads a verification of this member (another member's id is simply not found).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, flow_id = %id))]
pub async fn load(app: &App, member: &Member, id: &str) -> ServiceResult<(Loaded<IdentityVerification>, Organization)> {
    let loaded: Loaded<IdentityVerification> = flows::load(app, KIND, id).await?;
    if loaded.flow.user_id != member.user.id {
        return Err(ServiceError::FlowNotFound);
    }
    let org = org_of(app, member).await?;
    Ok((loaded, org))
}

async fn save(app: &App, loaded: &Loaded<IdentityVerification>, flow: &IdentityVerification) -> ServiceResult<()> {
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), flow, flow.expires_at)?;
    app.store.update_flow(FlowUpdate::new(&record)).await?;
    Ok(())
}

/// 「次へ」 after the reminder: a new verification.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn start(app: &App, member: &Member) -> ServiceResult<View> {
    if verified_at(app, &member.user.id).await?.is_some() {
        return Err(ServiceError::AlreadyVerified);
    }
    let org = org_of(app, member).await?;
    let now = app.now();
    let flow = IdentityVerification::start(new_id(), member.user.id.clone(), org.id.clone(), now);
    let record = flows::new_record(app, KIND, &flow.id, flow.state.as_str(), &flow, now, flow.expires_at)?;
    app.store.insert_flow(&record).await?;
    Ok(View { flow, org })
}

#[tracing::instrument(skip_all, fields(user_id = %member.user.id, flow_id = %id))]
pub async fn view(app: &App, member: &Member, id: &str) -> ServiceResult<View> {
    let (loaded, org) = load(app, member, id).await?;
    Ok(View { flow: loaded.flow, org })
}

/// 保険者番号確認.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, flow_id = %id))]
pub async fn confirm_insurer(app: &App, member: &Member, id: &str, input: &str) -> ServiceResult<View> {
    let (loaded, org) = load(app, member, id).await?;
    let number = InsurerNumber::parse(input)?;
    let mut flow = loaded.flow.clone();
    flow.confirm_insurer(&number, &org, app.now())?;
    save(app, &loaded, &flow).await?;
    Ok(View { flow, org })
}

/// 記号・番号確認, in the organization's card pattern.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, flow_id = %id))]
pub async fn enter_card(
    app: &App,
    member: &Member,
    id: &str,
    symbol: &str,
    number: &str,
    branch: &str,
) -> ServiceResult<View> {
    let (loaded, org) = load(app, member, id).await?;
    let card = CardId::parse(org.card_pattern, symbol, number, branch).map_err(ServiceError::Card)?;
    let mut flow = loaded.flow.clone();
    flow.enter_card(card, app.now())?;
    save(app, &loaded, &flow).await?;
    Ok(View { flow, org })
}

/// 基本情報登録: names in full-width katakana (converted where unambiguous) and birth date.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, flow_id = %id))]
pub async fn enter_person(
    app: &App,
    member: &Member,
    id: &str,
    family: &str,
    given: &str,
    birth: &str,
) -> ServiceResult<View> {
    let (loaded, org) = load(app, member, id).await?;
    let family = to_katakana(family).map_err(ServiceError::FamilyName)?;
    let given = to_katakana(given).map_err(ServiceError::GivenName)?;
    let birth_date = parse_date(birth).filter(|d| *d <= today_jst(app.now())).ok_or(ServiceError::BirthDate)?;
    let mut flow = loaded.flow.clone();
    flow.enter_person(family, given, birth_date, app.now())?;
    save(app, &loaded, &flow).await?;
    Ok(View { flow, org })
}

const ATTEMPTS: &str = "identity:user";

fn attempts_limit() -> Limit {
    Limit::new(MAX_ATTEMPTS, ATTEMPT_WINDOW.whole_seconds())
}

/// How many more times the member may press 「この内容で本人確認する」 in the current window.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn tries_left(app: &App, member: &Member) -> ServiceResult<i64> {
    limits::remaining(app, ATTEMPTS, &member.user.id, attempts_limit()).await
}

/// 「入力内容を確認してやり直す」 after ②: the same verification back at the confirmation, with
/// everything entered kept, so one mistyped field is corrected with its 「修正する」 link.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, flow_id = %id))]
pub async fn retry(app: &App, member: &Member, id: &str) -> ServiceResult<View> {
    let (loaded, org) = load(app, member, id).await?;
    if tries_left(app, member).await? == 0 {
        return Err(ServiceError::VerificationLocked);
    }
    let mut flow = loaded.flow.clone();
    flow.reopen(app.now())?;
    save(app, &loaded, &flow).await?;
    Ok(View { flow, org })
}

/// 「この内容で本人確認する」: matches the roster and links the record to the account.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, flow_id = %id))]
pub async fn confirm(app: &App, member: &Member, id: &str) -> ServiceResult<View> {
    let (loaded, org) = load(app, member, id).await?;
    let now = app.now();
    loaded.flow.ready_to_confirm(now)?;
    // Counted before the roster is looked at, so it cannot be probed.
    limits::check(app, ATTEMPTS, &member.user.id, attempts_limit()).await.map_err(|e| match e {
        ServiceError::RateLimited { .. } => ServiceError::VerificationLocked,
        other => other,
    })?;

    let mut flow = loaded.flow.clone();
    let (Some(card), Some(family), Some(given), Some(birth)) =
        (&flow.card, &flow.family_name, &flow.given_name, flow.birth_date)
    else {
        return Err(ServiceError::WrongStep);
    };
    let today = today_jst(now).to_string();
    // Under the organization's roster MAC key; when nothing matches, the key is read again, so
    // a re-key committed in between is not taken for "no such record".
    let mut indexer = RosterIndexer::for_org(app, &org.id).await?;
    let matches = loop {
        let matches = app
            .store
            .find_roster_matches(&org.id, &indexer.card(card), &indexer.person(&person_key(family, given, birth)))
            .await?;
        if !matches.is_empty() {
            break matches;
        }
        let again = RosterIndexer::for_org(app, &org.id).await?;
        if again.key_id() == indexer.key_id() {
            break matches;
        }
        indexer = again;
    };
    let wanted_branch = card.branch.as_deref().map(|b| indexer.branch(b));
    let eligible: Vec<_> = matches
        .into_iter()
        .filter(|m| m.eligible_from <= today && m.eligible_until.as_deref().is_none_or(|u| u >= today.as_str()))
        .filter(|m| match (&wanted_branch, &m.branch_index) {
            (Some(w), Some(b)) => w == b,
            _ => true,
        })
        .collect();

    let outcome = if eligible.is_empty() {
        Err(IdentityFailure::NoMatch)
    } else if eligible.iter().any(|m| m.linked_user_id.as_deref() == Some(member.user.id.as_str())) {
        // Already linked to this account (e.g. a repeated request).
        Ok(())
    } else if let Some(free) = eligible.iter().find(|m| m.linked_user_id.is_none()) {
        match app.store.link_roster_record(&org.id, &free.record, &member.user.id, now).await {
            Ok(()) => Ok(()),
            // Another account took the record at the same moment (or this one already has one).
            Err(StoreError::Duplicate) => Err(IdentityFailure::AlreadyLinked),
            Err(e) => return Err(e.into()),
        }
    } else {
        Err(IdentityFailure::AlreadyLinked)
    };
    match outcome {
        Ok(()) => {
            flow.complete(now)?;
            metrics::counter!("mimoto_identity_verifications_total", "result" => "ok").increment(1);
            tracing::info!(user_id = %member.user.id, "identity verified");
        }
        Err(failure) => {
            flow.fail(failure, now)?;
            let result = match failure {
                IdentityFailure::AlreadyLinked => "already_linked",
                IdentityFailure::NoMatch => "no_match",
            };
            metrics::counter!("mimoto_identity_verifications_total", "result" => result).increment(1);
        }
    }
    save(app, &loaded, &flow).await?;
    Ok(View { flow, org })
}

pub fn is_final(state: IdentityState) -> bool {
    matches!(state, IdentityState::Completed | IdentityState::Failed)
}
