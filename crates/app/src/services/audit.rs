//! The member side of the audit log: every read of health data (page, print view or API),
//! every secret-question answer, login, password reset and eKYC submission or automatic
//! decision writes a row — who (the member's id), what, which record, when, from which client.
//! Never the data itself. Operators' rows are written by [`crate::services::operators::audit`];
//! both go to the one hash-chained log (`store::audit_chain`).
//!
//! A read of health data is audited *before* the data leaves the service: when the row cannot
//! be written, the member gets an error instead of unaudited data.

use store::NewAuditEntry;

use crate::error::ServiceResult;
use crate::state::App;

/// Member-side action names (operators' are in `operators::actions`).
pub mod actions {
    pub const HEALTH_CHECKUPS_READ: &str = "member.health.checkups.read";
    pub const HEALTH_MEDICATIONS_READ: &str = "member.health.medications.read";
    pub const HEALTH_EXPENSES_READ: &str = "member.health.expenses.read";
    pub const STEP_UP_OPENED: &str = "member.step_up.opened";
    pub const STEP_UP_FAILED: &str = "member.step_up.failed";
    pub const LOGIN: &str = "member.login";
    pub const LOGIN_FAILED: &str = "member.login_failed";
    pub const PASSWORD_RESET: &str = "member.password_reset";
    pub const PASSWORD_CHANGED: &str = "member.password_changed";
    pub const PASSWORD_CHANGE_FAILED: &str = "member.password_change_failed";
    pub const SESSION_ENDED: &str = "member.session_ended";
    pub const SESSIONS_ENDED: &str = "member.sessions_ended";
    pub const EMAIL_CHANGE_REQUESTED: &str = "member.email_change_requested";
    pub const EMAIL_CHANGED: &str = "member.email_changed";
    pub const EKYC_SUBMITTED: &str = "member.ekyc.submitted";
    pub const EKYC_AUTO_COMPLETED: &str = "member.ekyc.auto_completed";
}

/// One member-side row: `member_id` is `None` when no member is known (a failed login with
/// an unknown address); `target` is (type, id).
pub fn entry(
    app: &App,
    member_id: Option<&str>,
    action: &str,
    target: Option<(&str, &str)>,
    ip: &str,
) -> NewAuditEntry {
    row(app, (None, member_id), action, target, ip)
}

/// An audit row of an operator or a member (`who`): ids, the action, the target, the client
/// address cut to 64 characters.
pub(crate) fn row(
    app: &App,
    who: (Option<&str>, Option<&str>),
    action: &str,
    target: Option<(&str, &str)>,
    ip: &str,
) -> NewAuditEntry {
    NewAuditEntry {
        at: app.now(),
        operator_id: who.0.map(str::to_string),
        member_id: who.1.map(str::to_string),
        action: action.to_string(),
        target_type: target.map(|(kind, _)| kind.to_string()),
        target_id: target.map(|(_, id)| id.to_string()),
        client_ip: ip.chars().take(64).collect(),
    }
}

/// Appends a member-side row.
pub async fn member(
    app: &App,
    member_id: Option<&str>,
    action: &str,
    target: Option<(&str, &str)>,
    ip: &str,
) -> ServiceResult<()> {
    app.store.append_audit(&entry(app, member_id, action, target, ip)).await?;
    Ok(())
}
