//! Support undoing a wrong binding (operator side, admins): find the account linked to a roster
//! record, withdraw its eKYC authentication and, if the roster link itself was wrong, remove
//! it, so the rightful member can do 本人確認 and 健診・医療アクセス認証. Each withdrawal is one
//! transaction with its reason, the member's mail and the audit row; health data closes at once
//! (the member's sessions lose their step-up). Also the after-the-fact look at sampled
//! automatic completions.

use domain::card::CardId;
use domain::ekyc::EkycState;
use domain::locale::Locale;
use store::{BindingWithdrawal, StoreError, Withdrawal};

use crate::error::{ServiceError, ServiceResult};
use crate::services::codes::sealed_mail;
use crate::services::ekyc;
use crate::services::operators::{self, actions, Operator, Role};
use crate::services::review::{QueueItem, NOTE_MAX_CHARS, QUEUE_LIMIT, WITHDRAW_REASONS};
use crate::services::roster::RosterIndexer;
use crate::services::{new_id, open_email};
use crate::state::App;

pub(crate) const NOTE_AAD: &str = "binding_withdrawals.note";

fn admin_only(operator: &Operator) -> ServiceResult<()> {
    if operator.role == Role::Admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

/// Sampled automatic completions waiting for a reviewer's look, oldest first.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id))]
pub async fn samples(app: &App, operator: &Operator, ip: &str) -> ServiceResult<Vec<QueueItem>> {
    operators::audit(app, Some(&operator.id), actions::VIEW_SAMPLES, None, ip).await?;
    let mut records = app.store.ekyc_samples(QUEUE_LIMIT).await?;
    records.retain(|r| operator.may_see_org(&r.org_id));
    crate::services::review::queue_items(app, records).await
}

/// 「確認しました」 on a sampled automatic completion: it leaves the sample queue.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, application_id = %id))]
pub async fn sample_checked(app: &App, operator: &Operator, id: &str, version: i64, ip: &str) -> ServiceResult<()> {
    let record = app.store.get_ekyc(id).await?.filter(|r| r.sampled).ok_or(ServiceError::FlowNotFound)?;
    if record.version != version {
        return Err(ServiceError::AlreadyDecided);
    }
    let mut loaded = ekyc::open_record(app, record)?;
    loaded.record.sampled = false;
    match ekyc::save(app, &mut loaded).await {
        Err(ServiceError::Conflict) => return Err(ServiceError::AlreadyDecided),
        other => other?,
    }
    operators::audit(app, Some(&operator.id), actions::SAMPLE_CHECKED, Some(("ekyc_application", id)), ip).await
}

/// An account linked to a roster record, as the support search shows it (no personal data but
/// the organization and when it was linked; the case page shows the rest, audited).
pub struct LinkedAccount {
    pub user_id: String,
    pub linked_at: time::OffsetDateTime,
    /// The member's newest eKYC application and its state.
    pub application: Option<(String, EkycState)>,
}

/// The accounts linked to the records of `org_id` with this 記号・番号 (any branch). Audited
/// before the roster is looked at.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, org_id = %org_id))]
pub async fn find_linked(
    app: &App,
    operator: &Operator,
    org_id: &str,
    symbol: &str,
    number: &str,
    ip: &str,
) -> ServiceResult<Vec<LinkedAccount>> {
    admin_only(operator)?;
    let org =
        app.store.get_org(org_id).await?.filter(|o| operator.may_see_org(&o.id)).ok_or(ServiceError::FlowNotFound)?;
    let card = CardId::parse(org.card_pattern, symbol, number, "").map_err(ServiceError::Card)?;
    operators::audit(app, Some(&operator.id), actions::FIND_BINDING, Some(("organization", &org.id)), ip).await?;
    let indexer = RosterIndexer::for_org(app, &org.id).await?;
    let mut out = Vec::new();
    for record in app.store.find_roster_records_by_card(&org.id, &indexer.card(&card)).await? {
        let Some(user_id) = record.linked_user_id else { continue };
        let Some(link) = app.store.roster_link_of_user(&user_id).await? else { continue };
        let application = match app.store.latest_ekyc_of_user(&user_id).await? {
            Some(r) => Some((r.id.clone(), ekyc::open_record(app, r)?.data.app.state)),
            None => None,
        };
        out.push(LinkedAccount { user_id, linked_at: link.linked_at, application });
    }
    Ok(out)
}

/// The member an application belongs to (submitted applications only, as the case page).
pub async fn member_of_application(app: &App, operator: &Operator, id: &str) -> ServiceResult<String> {
    admin_only(operator)?;
    Ok(crate::services::review::submitted(app, operator, id).await?.user_id)
}

/// What an admin submits to withdraw a binding.
pub struct WithdrawInput<'a> {
    pub user_id: &'a str,
    /// Also remove the roster link (本人確認 was done with someone else's record).
    pub unlink: bool,
    /// One of [`WITHDRAW_REASONS`].
    pub reason: &'a str,
    pub note: &'a str,
}

/// Withdraws the member's eKYC authentication (a completed or approved application becomes
/// revoked; an open one is closed as revoked too) and, with `unlink`, the roster link. Health
/// data closes at once; the member is mailed with the reason; audited.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, user_id = %input.user_id))]
pub async fn withdraw(app: &App, operator: &Operator, input: WithdrawInput<'_>, ip: &str) -> ServiceResult<()> {
    admin_only(operator)?;
    let reason =
        WITHDRAW_REASONS.iter().find(|r| **r == input.reason).ok_or(ServiceError::ReviewReasonInvalid)?.to_string();
    let note = input.note.trim();
    if note.chars().count() > NOTE_MAX_CHARS {
        return Err(ServiceError::ReviewNoteTooLong);
    }
    let user = app
        .store
        .get_user(input.user_id)
        .await?
        .filter(|u| operator.may_see_org(&u.org_id))
        .ok_or(ServiceError::FlowNotFound)?;
    let linked = app.store.roster_link_of_user(&user.id).await?.is_some();
    let mut revoked = None;
    if let Some(record) = app.store.latest_ekyc_of_user(&user.id).await? {
        let mut loaded = ekyc::open_record(app, record)?;
        if loaded.data.app.revoke().is_ok() {
            loaded.record.sampled = false;
            revoked = Some(ekyc::stamped(app, &mut loaded)?);
        }
    }
    let unlink = input.unlink && linked;
    if revoked.is_none() && !unlink {
        return Err(ServiceError::NothingToWithdraw);
    }
    let org = app
        .store
        .get_org(&user.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("member without organization".into()))?;
    let locale = Locale::parse(&user.locale).unwrap_or_default();
    let template = mail::Template::BindingWithdrawn {
        org_name: org.name.clone(),
        unlinked: unlink,
        reason: crate::i18n::t(locale, &format!("console.withdraw_reason.{reason}")).to_string(),
    };
    let mail = sealed_mail(app, &template, locale, &open_email(app, &user.email_enc)?)?;
    let record = BindingWithdrawal {
        id: new_id(),
        user_id: user.id.clone(),
        operator_id: operator.id.clone(),
        unlinked: unlink,
        revoked_application_id: revoked.as_ref().map(|r| r.id.clone()),
        reason,
        note_enc: if note.is_empty() { None } else { Some(app.keys.seal(NOTE_AAD, note.as_bytes())?) },
        at: app.now(),
    };
    let audit = operators::audit_entry(
        app,
        Some(&operator.id),
        actions::WITHDRAW_BINDING,
        Some(("binding_withdrawal", &record.id)),
        ip,
    );
    let w = Withdrawal { record: &record, ekyc: revoked.as_ref(), mail: &mail, audit: &audit };
    match app.store.withdraw_binding(&w).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(ServiceError::AlreadyDecided),
        Err(e) => return Err(e.into()),
    }
    app.mail_wake.notify_one();
    metrics::counter!("mimoto_binding_withdrawals_total", "unlinked" => unlink.to_string()).increment(1);
    tracing::info!(user_id = %user.id, operator_id = %operator.id, unlinked = unlink, "binding withdrawn");
    Ok(())
}
