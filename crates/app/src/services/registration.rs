//! F1 新規会員登録 as a service over the registration state machine.

use domain::consent::{self, ConsentDoc};
use domain::insurer::InsurerNumber;
use domain::locale::Locale;
use domain::org::{OrgType, Organization};
use domain::otp;
use domain::password::check_password;
use domain::registration::{FlowError, Registration, RegistrationState};
use store::{ConsentRecord, FlowUpdate, MailFate, NewUser, StoreError};

use crate::error::{ServiceError, ServiceResult};
use crate::services::flows::{self, Loaded};
use crate::services::{codes, email_index, find_user_by_email, limits, new_id, passwords, seal_email};
use crate::state::App;

pub const KIND: &str = "registration";
const CODE_PURPOSE: &str = "registration";

impl From<FlowError> for ServiceError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::WrongState(_) => ServiceError::WrongStep,
            FlowError::Expired => ServiceError::FlowExpired,
            FlowError::OrgTypeMismatch => ServiceError::OrgTypeMismatch,
        }
    }
}

/// What a page or API response needs to show a registration.
pub struct View {
    pub flow: Registration,
    pub org: Option<Organization>,
    /// While the code is awaited ([`view`] only): what became of its mail — refused by the
    /// member's mail server, or not sent because the code expired first.
    pub mail: Option<MailFate>,
}

#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn load(app: &App, id: &str) -> ServiceResult<Loaded<Registration>> {
    flows::load(app, KIND, id).await
}

#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn view(app: &App, id: &str) -> ServiceResult<View> {
    let loaded = load(app, id).await?;
    let mail = match loaded.flow.state {
        RegistrationState::CodeSent => app.store.code_mail_fate(CODE_PURPOSE, id).await?,
        _ => None,
    };
    Ok(View { mail, ..with_org(app, loaded.flow).await? })
}

async fn with_org(app: &App, flow: Registration) -> ServiceResult<View> {
    let org = match &flow.org_id {
        Some(org_id) => app.store.get_org(org_id).await?,
        None => None,
    };
    Ok(View { flow, org, mail: None })
}

async fn save(app: &App, loaded: &Loaded<Registration>, flow: &Registration) -> ServiceResult<()> {
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), flow, flow.expires_at)?;
    app.store.update_flow(FlowUpdate::new(&record)).await?;
    Ok(())
}

/// 「新規登録」: a new provisional registration.
#[tracing::instrument(skip_all)]
pub async fn start(app: &App, locale: Locale, ip: &str) -> ServiceResult<Registration> {
    limits::check_ip(app, "register:ip", ip, app.config.limits.register_per_ip).await?;
    let now = app.now();
    let flow = Registration::start(new_id(), locale, now);
    let record = flows::new_record(app, KIND, &flow.id, flow.state.as_str(), &flow, now, flow.expires_at)?;
    app.store.insert_flow(&record).await?;
    metrics::counter!("mimoto_registrations_started_total").increment(1);
    Ok(flow)
}

/// 団体選択.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn choose_org_type(app: &App, id: &str, org_type: OrgType) -> ServiceResult<Registration> {
    let loaded = load(app, id).await?;
    let mut flow = loaded.flow.clone();
    flow.choose_org_type(org_type, app.now())?;
    save(app, &loaded, &flow).await?;
    Ok(flow)
}

/// 団体ID認証: the insurer number printed on the card.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn verify_insurer(app: &App, id: &str, input: &str) -> ServiceResult<View> {
    let loaded = load(app, id).await?;
    let number = InsurerNumber::parse(input)?;
    let org = app.store.find_org_by_insurer_number(number.as_str()).await?.ok_or(ServiceError::UnknownOrganization)?;
    let mut flow = loaded.flow.clone();
    flow.verify_org(&org, app.now())?;
    save(app, &loaded, &flow).await?;
    Ok(View { flow, org: Some(org), mail: None })
}

/// アカウント作成: email + password (checked against the password policy here, on the server).
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn enter_account(app: &App, id: &str, email_input: &str, password: &str, ip: &str) -> ServiceResult<View> {
    limits::check_ip(app, "register:ip", ip, app.config.limits.register_per_ip).await?;
    let loaded = load(app, id).await?;
    if !matches!(
        loaded.flow.state,
        RegistrationState::OrgVerified | RegistrationState::AccountEntered | RegistrationState::CodeSent
    ) {
        return Err(ServiceError::WrongStep);
    }
    let email = crate::services::deliverable_email(app, email_input)?;
    limits::check(app, "register:email", email.as_str(), app.config.limits.register_per_email).await?;
    let local = email.as_str().split('@').next().unwrap_or_default();
    check_password(password, &[email.as_str(), local])?;
    // The guide deliberately tells a member that the address is taken (and where to ask);
    // the rate limit above keeps this from being used to enumerate addresses.
    if find_user_by_email(app, &email).await?.is_some() {
        return Err(ServiceError::EmailTaken);
    }
    let hash = passwords::hash(password.to_string()).await?;
    let mut flow = loaded.flow.clone();
    flow.enter_account(email, hash, app.now())?;
    save(app, &loaded, &flow).await?;
    with_org(app, flow).await
}

/// The consents a registration must collect, for its organization.
pub fn required_consents(org: &Organization) -> Vec<ConsentDoc> {
    consent::required_consents(org)
}

/// 「承認メールを送信」: records the consents and emails the first one-time password.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn accept_consents(app: &App, id: &str, checked: &[ConsentDoc]) -> ServiceResult<View> {
    let loaded = load(app, id).await?;
    let view = with_org(app, loaded.flow.clone()).await?;
    let org = view.org.ok_or(ServiceError::WrongStep)?;
    let now = app.now();
    let current = crate::services::consents::current_versions(app, &org.id).await?;
    if consent::required_consents(&org).iter().any(|d| !current.contains_key(d)) {
        return Err(ServiceError::Internal("a registration document has no published version".into()));
    }
    let accepted = consent::accept_consents(&org, checked, |d| current.get(&d).cloned().unwrap_or_default(), now)
        .map_err(|consent::ConsentError::Missing(m)| ServiceError::ConsentsMissing(m))?;
    let mut flow = loaded.flow.clone();
    flow.send_code(accepted, now)?;
    send_code(app, &loaded, &flow, &org).await?;
    Ok(View { flow, org: Some(org), mail: None })
}

/// Sends a new one-time password; the previous one stops working.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn resend_code(app: &App, id: &str, ip: &str) -> ServiceResult<View> {
    limits::check_ip(app, "register:ip", ip, app.config.limits.register_per_ip).await?;
    let loaded = load(app, id).await?;
    let last = loaded.flow.code_sent_at.ok_or(ServiceError::WrongStep)?;
    codes::check_resend(app, last)?;
    let view = with_org(app, loaded.flow.clone()).await?;
    let org = view.org.ok_or(ServiceError::WrongStep)?;
    let mut flow = loaded.flow.clone();
    flow.resend_code(app.now())?;
    send_code(app, &loaded, &flow, &org).await?;
    Ok(View { flow, org: Some(org), mail: None })
}

async fn send_code(
    app: &App,
    loaded: &Loaded<Registration>,
    flow: &Registration,
    org: &Organization,
) -> ServiceResult<()> {
    let email = flow.email.as_ref().ok_or(ServiceError::WrongStep)?;
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), flow, flow.expires_at)?;
    let org_name = org.name.clone();
    codes::issue(
        app,
        CODE_PURPOSE,
        &flow.id,
        flow.locale,
        email.as_str(),
        |code| mail::Template::RegistrationCode { code, org_name, valid_minutes: otp::CODE_TTL.whole_minutes() },
        Some(FlowUpdate::new(&record)),
    )
    .await
}

/// 「承認する」: checks the one-time password and creates the account. Returns the new user id.
///
/// Using the code up and creating the account are one transaction: an outage leaves either
/// both done or the code still valid. A retry of a request that went through (its answer was
/// lost) answers the same, while the code is within its validity.
#[tracing::instrument(skip_all, fields(flow_id = %id))]
pub async fn verify_code(app: &App, id: &str, input: &str, ip: &str) -> ServiceResult<(View, String)> {
    limits::check_ip(app, "code:ip", ip, app.config.limits.code_per_ip).await?;
    let loaded = load(app, id).await?;
    // The account's code budget is keyed by the address.
    let account = codes::account_of_email(loaded.flow.email.as_ref().ok_or(ServiceError::WrongStep)?.as_str());
    match loaded.flow.state {
        RegistrationState::CodeSent => {}
        RegistrationState::Completed => {
            codes::verify_used(app, CODE_PURPOSE, id, &account, input).await?;
            return completed(app, loaded.flow).await;
        }
        _ => return Err(ServiceError::WrongStep),
    }
    let code = match codes::verify(app, CODE_PURPOSE, id, &account, input, true).await {
        Ok(code) => code,
        // A twin of this request may have used the code meanwhile: answer as it did.
        Err(e @ (ServiceError::CodeWrong { .. } | ServiceError::CodeExpired | ServiceError::CodeExhausted)) => {
            let now = load(app, id).await?;
            if now.flow.state == RegistrationState::Completed
                && codes::used_matches(app, CODE_PURPOSE, id, input).await.is_ok()
            {
                return completed(app, now.flow).await;
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };

    let mut flow = loaded.flow.clone();
    let (email, password_hash, org_id) = match (&flow.email, &flow.password_hash, &flow.org_id) {
        (Some(e), Some(h), Some(o)) => (e.clone(), h.clone(), o.clone()),
        _ => return Err(ServiceError::WrongStep),
    };
    // The unique index sees blind indexes under one MAC key only: while two are configured (a
    // rotation), an account indexed under the other one is looked for again here, just before
    // the insert, not only when the address was entered.
    if app.keys.mac_key_ids().nth(1).is_some() && find_user_by_email(app, &email).await?.is_some() {
        return Err(ServiceError::EmailTaken);
    }
    let user_id = new_id();
    let now = app.now();
    flow.complete(user_id.clone(), now)?;
    let user = NewUser {
        id: user_id.clone(),
        org_id,
        email_index: email_index(app, &email),
        email_enc: seal_email(app, &email)?,
        password_hash,
        locale: flow.locale.as_str().to_string(),
        created_at: now,
    };
    let consents: Vec<ConsentRecord> = flow
        .consents
        .iter()
        .map(|c| ConsentRecord {
            doc: c.doc.as_str().to_string(),
            version: c.version.clone(),
            accepted_at: c.accepted_at,
            withdrawn_at: None,
        })
        .collect();
    let record = flows::next_record(app, &loaded.record, flow.state.as_str(), &flow, flow.expires_at)?;
    let update = FlowUpdate::new(&record).consuming(&code.code_id, code.at);
    match app.store.create_user(&user, &consents, Some(update)).await {
        Ok(()) => {}
        // Another registration with the same address completed first.
        Err(StoreError::Duplicate) => return Err(ServiceError::EmailTaken),
        // The same code in a request sent twice at once: the one that lost the race answers
        // like the one that won, if it did complete the registration.
        Err(StoreError::Conflict) => {
            let now = load(app, id).await?;
            return match now.flow.state {
                RegistrationState::Completed => completed(app, now.flow).await,
                _ => Err(ServiceError::Conflict),
            };
        }
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("mimoto_registrations_completed_total").increment(1);
    tracing::info!(user_id = %user_id, "registration completed");
    Ok((with_org(app, flow).await?, user_id))
}

/// The answer of a completed registration: its view and its account.
async fn completed(app: &App, flow: Registration) -> ServiceResult<(View, String)> {
    let user_id = flow.user_id.clone().ok_or(ServiceError::WrongStep)?;
    Ok((with_org(app, flow).await?, user_id))
}
