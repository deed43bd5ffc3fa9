//! Operators see the member (issue #16 point 4): a member's summary for the console — the
//! organization, the email address, 本人確認 (F3, the roster link), every 健診・医療アクセス認証
//! application (F4) with the reviewer's decision, the binding withdrawals, the locks (the
//! secret question's, and the login failures toward the account's ceiling) and the inquiries
//! the member attached the account to — and the two ways to find one: by the exact email
//! address (its blind index, as the login looks it up) or by an inquiry's 受付番号.
//!
//! Every summary is an operator read of personal data: the audit row `account.view` is
//! written before anything is opened. Searches are audited (`account.find`) before anything is
//! looked up; the typed email never reaches the log. An operator limited to organizations
//! finds and sees only their members (any other is not found), and no inquiries (inquiries
//! carry no organization, see `services::inquiry`).

use domain::email::Email;
use domain::org::Organization;
use store::InquiryRecord;
use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::services::auth::LOGIN_SCOPE;
use crate::services::inquiry::reference;
use crate::services::limits::LoginGuard;
use crate::services::operators::{self, actions, Operator};
use crate::services::{find_user_by_email, open_email, stepup};
use crate::state::App;

/// Applications and inquiries shown on a summary (newest first).
pub const HISTORY_LIMIT: i64 = 50;

/// One eKYC application as the summary lists it.
pub struct ApplicationRow {
    pub id: String,
    /// The stored state name (`pending_review`, `approved`, …).
    pub state: String,
    pub created_at: OffsetDateTime,
    pub submitted_at: Option<OffsetDateTime>,
    pub decided_at: Option<OffsetDateTime>,
    /// The reviewer's decision, when a human decided.
    pub review: Option<ReviewRow>,
}

pub struct ReviewRow {
    pub approved: bool,
    /// A code of `review::REJECT_REASONS`.
    pub reason: Option<String>,
    pub operator_name: String,
    pub decided_at: OffsetDateTime,
}

/// An operator's withdrawal of the member's binding.
pub struct WithdrawalRow {
    pub at: OffsetDateTime,
    /// A code of `review::WITHDRAW_REASONS`.
    pub reason: String,
    pub unlinked: bool,
    pub operator_name: String,
}

pub struct InquiryRow {
    pub id: String,
    pub reference: String,
    pub category: String,
    pub status: String,
    pub created_at: OffsetDateTime,
}

/// The secret question's lock (F5 step-up).
pub struct StepUpLock {
    /// Wrong answers counted since the last correct one or the end of the last lock.
    pub failures: i32,
    /// Locked until then (in the future).
    pub locked_until: Option<OffsetDateTime>,
}

/// The member's failed logins toward the account's ceiling (`limits.login_failures_per_account`).
pub struct LoginLock {
    pub failures: i64,
    pub ceiling: i64,
    /// The ceiling is reached: nobody logs in until the window ends or the member resets the
    /// password.
    pub locked: bool,
}

pub struct Summary {
    pub user_id: String,
    pub org: Organization,
    pub email: String,
    pub locale: String,
    pub registered_at: OffsetDateTime,
    /// 本人確認 (F3): when the account was linked to its roster record.
    pub identity_linked_at: Option<OffsetDateTime>,
    pub applications: Vec<ApplicationRow>,
    pub withdrawals: Vec<WithdrawalRow>,
    pub step_up: StepUpLock,
    pub login: LoginLock,
    /// `None` for an operator limited to organizations (they see no inquiries).
    pub inquiries: Option<Vec<InquiryRow>>,
}

async fn operator_name(app: &App, id: &str) -> ServiceResult<String> {
    Ok(operators::name_of(app, id).await?.unwrap_or_else(|| id.to_string()))
}

/// The member's summary. Unknown ids, and members of organizations the operator may not see,
/// are not found; the audit row is written before anything personal is opened.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, user_id = %user_id))]
pub async fn summary(app: &App, operator: &Operator, user_id: &str, ip: &str) -> ServiceResult<Summary> {
    let user = app
        .store
        .get_user(user_id)
        .await?
        .filter(|u| operator.may_see_org(&u.org_id))
        .ok_or(ServiceError::FlowNotFound)?;
    operators::audit(app, Some(&operator.id), actions::VIEW_ACCOUNT, Some(("user", &user.id)), ip).await?;
    let org = app
        .store
        .get_org(&user.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("member without organization".into()))?;
    let email = open_email(app, &user.email_enc)?;
    let identity_linked_at = app.store.roster_link_of_user(&user.id).await?.map(|l| l.linked_at);

    let mut applications = Vec::new();
    for r in app.store.ekyc_of_user(&user.id, HISTORY_LIMIT).await? {
        let review = match app.store.ekyc_review(&r.id).await? {
            Some(rv) => Some(ReviewRow {
                approved: rv.decision == "approved",
                reason: rv.reason,
                operator_name: operator_name(app, &rv.operator_id).await?,
                decided_at: rv.decided_at,
            }),
            None => None,
        };
        applications.push(ApplicationRow {
            id: r.id,
            state: r.state,
            created_at: r.created_at,
            submitted_at: r.submitted_at,
            decided_at: r.decided_at,
            review,
        });
    }
    let mut withdrawals = Vec::new();
    for w in app.store.binding_withdrawals(&user.id).await? {
        withdrawals.push(WithdrawalRow {
            at: w.at,
            reason: w.reason,
            unlinked: w.unlinked,
            operator_name: operator_name(app, &w.operator_id).await?,
        });
    }

    let now = app.now();
    let step_up = match app.store.step_up_failures(&user.id).await? {
        Some(f) => match f.locked_until {
            Some(until) if until > now => StepUpLock { failures: stepup::MAX_FAILURES, locked_until: Some(until) },
            // A lock that has ended: the next answer starts counting again.
            Some(_) => StepUpLock { failures: 0, locked_until: None },
            None => StepUpLock { failures: f.failures, locked_until: None },
        },
        None => StepUpLock { failures: 0, locked_until: None },
    };
    let failures = LoginGuard::failures(app, LOGIN_SCOPE, &email).await?;
    let ceiling = app.config.limits.login_failures_per_account.max;
    let login = LoginLock { failures, ceiling, locked: failures >= ceiling };

    let inquiries = if operator.sees_all_orgs() {
        Some(app.store.inquiries_of_user(&user.id, HISTORY_LIMIT).await?.into_iter().map(inquiry_row).collect())
    } else {
        None
    };
    Ok(Summary {
        user_id: user.id,
        org,
        email,
        locale: user.locale,
        registered_at: user.created_at,
        identity_linked_at,
        applications,
        withdrawals,
        step_up,
        login,
        inquiries,
    })
}

fn inquiry_row(r: InquiryRecord) -> InquiryRow {
    InquiryRow {
        reference: reference(&r.id),
        id: r.id,
        category: r.category,
        status: r.status,
        created_at: r.created_at,
    }
}

/// The member with exactly this email address (normalized as at login), if the operator may
/// see them. Audited before the look-up; an address that is no address finds nobody.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id))]
pub async fn find_by_email(app: &App, operator: &Operator, input: &str, ip: &str) -> ServiceResult<Option<String>> {
    operators::audit(app, Some(&operator.id), actions::FIND_ACCOUNT, None, ip).await?;
    let Ok(email) = Email::parse(input) else { return Ok(None) };
    Ok(find_user_by_email(app, &email).await?.filter(|u| operator.may_see_org(&u.org_id)).map(|u| u.id))
}

/// An inquiry found by its 受付番号, with the account attached to it (if any).
pub struct FoundInquiry {
    pub inquiry: InquiryRow,
    pub user_id: Option<String>,
}

/// An eKYC application found by its 受付番号 (the 申請 receipt mail's), with its member.
pub struct FoundApplication {
    pub id: String,
    pub reference: String,
    /// The stored state name (`pending_review`, `approved`, …).
    pub state: String,
    pub submitted_at: Option<OffsetDateTime>,
    pub user_id: String,
}

/// What a 受付番号 finds: inquiries and eKYC applications share the form of number.
pub struct FoundByReference {
    pub inquiries: Vec<FoundInquiry>,
    pub applications: Vec<FoundApplication>,
}

/// The length of a 受付番号 ([`reference`]: the id's first 8 characters, which for our ids are
/// the hexadecimal digits before the first hyphen).
const REFERENCE_LEN: usize = 8;

/// The inquiries and eKYC applications with this 受付番号 (the whole number, in either case;
/// never a part of one). Audited before the look-up. Operators limited to organizations see
/// no inquiries, and only their organizations' applications.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id))]
pub async fn find_by_reference(
    app: &App,
    operator: &Operator,
    input: &str,
    ip: &str,
) -> ServiceResult<FoundByReference> {
    operators::audit(app, Some(&operator.id), actions::FIND_ACCOUNT, None, ip).await?;
    let number = input.trim();
    let mut found = FoundByReference { inquiries: Vec::new(), applications: Vec::new() };
    if number.chars().count() != REFERENCE_LEN || !number.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(found);
    }
    let prefix = format!("{}-", number.to_ascii_lowercase());
    if operator.sees_all_orgs() {
        found.inquiries = app
            .store
            .find_inquiries_by_id_prefix(&prefix)
            .await?
            .into_iter()
            .map(|r| FoundInquiry { user_id: r.user_id.clone(), inquiry: inquiry_row(r) })
            .collect();
    }
    found.applications = app
        .store
        .find_ekyc_by_id_prefix(&prefix)
        .await?
        .into_iter()
        .filter(|a| operator.may_see_org(&a.org_id))
        .map(|a| FoundApplication {
            reference: reference(&a.id),
            id: a.id,
            state: a.state,
            submitted_at: a.submitted_at,
            user_id: a.user_id,
        })
        .collect();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_the_ids_first_eight_hex_digits() {
        let id = "3f2a9c1e-77aa-4bd0-9e43-0a1b2c3d4e5f";
        let number = reference(id);
        assert_eq!(number.len(), REFERENCE_LEN);
        assert!(id.starts_with(&format!("{}-", number.to_ascii_lowercase())), "the look-up's prefix");
    }
}
