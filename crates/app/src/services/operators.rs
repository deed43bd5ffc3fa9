//! Operators of the console (eKYC reviewers and administrators): accounts created with the
//! CLI, login with password + TOTP (RFC 6238), console sessions and the audit log.
//!
//! - Passwords: argon2id ([`passwords`]), at least [`MIN_PASSWORD_CHARS`] characters and not
//!   guessable (the member policy's zxcvbn check).
//! - TOTP: HMAC-SHA-1, 6 digits, 30-second steps, one step of clock drift either way, computed
//!   with the `totp-rs` crate. The 160-bit secret is sealed at rest with the data keys. A time
//!   step, once accepted, is never accepted again, nor is an older one (replay): the store
//!   moves the operator's last used step forward atomically.
//! - Sessions: their own table and MAC purpose (a member's session token opens nothing here),
//!   30 minutes idle, 8 hours at most.
//! - Audit: every operator action is a row of the append-only audit log (who, what, which
//!   record, when, from where) — written before any personal data is shown.

use domain::email::Email;
use rand::RngCore;
use store::{AuditFilter, NewAuditEntry, OperatorChange, OperatorRecord, OperatorSessionRecord, StoreError};
use time::{Duration, OffsetDateTime};
use totp_rs::{Algorithm, TOTP};

use crate::crypto::{ct_eq_str, random_token};
use crate::error::{ServiceError, ServiceResult};
use crate::services::limits::LoginGuard;
use crate::services::sessions::{self, OperatorSessions, Timeouts};
use crate::services::{new_id, passwords};
use crate::state::App;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 100;
/// A console session ends after this long without use…
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// …and at the latest this long after login.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(8);
const TIMEOUTS: Timeouts = Timeouts { idle: IDLE_TIMEOUT, absolute: ABSOLUTE_TIMEOUT };
/// RFC 6238 time step.
pub const TOTP_STEP_SECS: i64 = 30;
const TOTP_DIGITS: usize = 6;
/// Steps of clock drift accepted either way.
const TOTP_SKEW: i64 = 1;
/// RFC 4226 recommends a 160-bit shared secret.
const TOTP_SECRET_BYTES: usize = 20;
const ISSUER: &str = "Mimoto";

pub(crate) const EMAIL_AAD: &str = "operators.email";
pub(crate) const NAME_AAD: &str = "operators.name";
pub(crate) const TOTP_AAD: &str = "operators.totp";

/// The audit log's action names.
pub mod actions {
    pub const LOGIN: &str = "console.login";
    pub const LOGIN_FAILED: &str = "console.login_failed";
    pub const LOGOUT: &str = "console.logout";
    pub const VIEW_QUEUE: &str = "ekyc.view_queue";
    pub const VIEW_CASE: &str = "ekyc.view_case";
    pub const VIEW_IMAGE: &str = "ekyc.view_image";
    pub const APPROVE: &str = "ekyc.approve";
    pub const REJECT: &str = "ekyc.reject";
    pub const VIEW_AUDIT: &str = "audit.view";
    pub const EXPORT_AUDIT: &str = "audit.export";
    pub const VIEW_INQUIRY: &str = "inquiry.view";
    pub const REPLY_INQUIRY: &str = "inquiry.reply";
    pub const CLOSE_INQUIRY: &str = "inquiry.close";
    pub const VIEW_SAMPLES: &str = "ekyc.view_samples";
    pub const SAMPLE_CHECKED: &str = "ekyc.sample_checked";
    pub const FIND_BINDING: &str = "binding.find";
    pub const WITHDRAW_BINDING: &str = "binding.withdraw";
    pub const VIEW_OPERATORS: &str = "operators.view";
    pub const OPERATOR_DISABLE: &str = "operator.disable";
    pub const OPERATOR_ENABLE: &str = "operator.enable";
    pub const OPERATOR_ROLE: &str = "operator.role";
    pub const OPERATOR_TOTP_RESET: &str = "operator.totp_reset";
    pub const OPERATOR_END_SESSIONS: &str = "operator.end_sessions";
    pub const OPERATOR_SCOPE: &str = "operator.scope";
    pub const VIEW_MAIL_REFUSALS: &str = "mail.view_refusals";
    pub const VIEW_ACCOUNT: &str = "account.view";
    pub const FIND_ACCOUNT: &str = "account.find";
    pub const VIEW_DECIDED: &str = "ekyc.view_decided";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reviews eKYC applications.
    Reviewer,
    /// Everything a reviewer does, and reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reviewer" => Some(Role::Reviewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn can_read_audit_log(&self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// An operator, opened.
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
    /// Disabled by an admin: no login, no session.
    pub disabled: bool,
    /// The organizations (ids) this operator is limited to; empty: all of them.
    pub orgs: Vec<String>,
}

impl Operator {
    /// Whether the operator may see the cases, imports and roster data of `org_id`.
    pub fn may_see_org(&self, org_id: &str) -> bool {
        self.orgs.is_empty() || self.orgs.iter().any(|o| o == org_id)
    }

    /// Whether the operator sees every organization (inquiries carry none, so only they see them).
    pub fn sees_all_orgs(&self) -> bool {
        self.orgs.is_empty()
    }
}

/// What `mimoto operator create` prints once: the secret for the authenticator app.
pub struct Created {
    pub operator: Operator,
    /// The TOTP secret, base32 (RFC 4648, no padding), for manual entry.
    pub totp_secret: String,
    /// `otpauth://totp/Mimoto:<email>?secret=…&issuer=Mimoto`, for a QR code.
    pub otpauth_uri: String,
}

/// A new console session: the token goes into the operator's cookie, only its MAC is stored.
pub struct NewSession {
    pub token: String,
    pub operator: Operator,
}

/// The MAC purpose of operators' email blind indexes.
pub(crate) const EMAIL_INDEX_PURPOSE: &str = "operator-email-index";

/// The blind index a new operator's email is stored under (the active MAC key).
fn email_index(app: &App, email: &Email) -> Vec<u8> {
    app.keys.mac(EMAIL_INDEX_PURPOSE, email.as_str().as_bytes())
}

/// The operator with `email`, by its blind index under each configured MAC key.
async fn find_by_email(app: &App, email: &Email) -> ServiceResult<Option<OperatorRecord>> {
    let find = |index: Vec<u8>| async move { app.store.find_operator_by_email_index(&index).await };
    Ok(crate::services::find_by_blind_index(app, EMAIL_INDEX_PURPOSE, email.as_str(), find).await?)
}

const SESSION_PURPOSE: &str = "operator-session";

/// The stored id of a new console session: the token's MAC under the active MAC key.
pub fn session_hash(app: &App, token: &str) -> Vec<u8> {
    app.keys.mac(SESSION_PURPOSE, token.as_bytes())
}

/// The ids a console session may be stored under: the token's MAC under every configured key.
fn session_hashes(app: &App, token: &str) -> Vec<Vec<u8>> {
    app.keys.macs(SESSION_PURPOSE, token.as_bytes())
}

fn totp(secret: Vec<u8>, account: &str) -> TOTP {
    // `new_unchecked`: the secret is always TOTP_SECRET_BYTES long, and the label is
    // URL-encoded by `get_url` (an email has no ':' to confuse it anyway).
    TOTP::new_unchecked(
        Algorithm::SHA1,
        TOTP_DIGITS,
        TOTP_SKEW as u8,
        TOTP_STEP_SECS as u64,
        secret,
        Some(ISSUER.into()),
        account.into(),
    )
}

/// The 6-digit code of `secret` at unix time `at` (tests and the CLI's self-check).
pub fn totp_code(secret: &[u8], at: i64) -> String {
    totp(secret.to_vec(), "").generate(at.max(0) as u64)
}

/// The time step within ±[`TOTP_SKEW`] of `now` whose code is `input`, if any. Every candidate
/// is computed and compared in constant time, whichever matches.
pub fn matching_step(secret: &[u8], input: &str, now: OffsetDateTime) -> Option<i64> {
    let code = domain::otp::normalize_code(input).unwrap_or_default();
    let current = now.unix_timestamp().div_euclid(TOTP_STEP_SECS);
    let t = totp(secret.to_vec(), "");
    let mut found = None;
    for step in current - TOTP_SKEW..=current + TOTP_SKEW {
        let expected = t.generate((step.max(0) * TOTP_STEP_SECS) as u64);
        if ct_eq_str(&expected, &code) && !code.is_empty() && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn check_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ServiceError::OperatorName);
    }
    Ok(name.to_string())
}

fn check_password(password: &str, email: &Email) -> ServiceResult<()> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ServiceError::OperatorPassword { min: MIN_PASSWORD_CHARS, max: MAX_PASSWORD_CHARS });
    }
    domain::password::check_password(password, &[email.as_str(), email.local_part()])?;
    Ok(())
}

fn open_text(app: &App, aad: &str, sealed: &[u8]) -> ServiceResult<String> {
    String::from_utf8(app.keys.open(aad, sealed)?)
        .map_err(|_| ServiceError::Internal("operator field is not UTF-8".into()))
}

fn open_operator(app: &App, r: &OperatorRecord) -> ServiceResult<Operator> {
    Ok(Operator {
        id: r.id.clone(),
        email: open_text(app, EMAIL_AAD, &r.email_enc)?,
        name: open_text(app, NAME_AAD, &r.name_enc)?,
        role: Role::parse(&r.role).ok_or_else(|| ServiceError::Internal(format!("operator role {}", r.role)))?,
        created_at: r.created_at,
        disabled: r.disabled_at.is_some(),
        orgs: Vec::new(),
    })
}

/// [`open_operator`] with the organizations the operator is limited to.
async fn load_operator(app: &App, r: &OperatorRecord) -> ServiceResult<Operator> {
    let mut operator = open_operator(app, r)?;
    operator.orgs = app.store.operator_orgs(&r.id).await?;
    Ok(operator)
}

/// `mimoto operator create`: a new operator with a fresh TOTP secret, shown once.
pub async fn create(app: &App, email: &str, name: &str, role: Role, password: &str) -> ServiceResult<Created> {
    let email = Email::parse(email)?;
    let name = check_name(name)?;
    check_password(password, &email)?;
    // The unique index only sees blind indexes under one key: an operator not re-keyed yet
    // after a MAC key rotation is found under the older one.
    if find_by_email(app, &email).await?.is_some() {
        return Err(ServiceError::OperatorEmailTaken);
    }
    let mut secret = vec![0u8; TOTP_SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let record = OperatorRecord {
        id: new_id(),
        email_index: email_index(app, &email),
        email_enc: app.keys.seal(EMAIL_AAD, email.as_str().as_bytes())?,
        name_enc: app.keys.seal(NAME_AAD, name.as_bytes())?,
        role: role.as_str().into(),
        password_hash: passwords::hash(password.to_string()).await?,
        totp_secret_enc: app.keys.seal(TOTP_AAD, &secret)?,
        totp_last_step: 0,
        created_at: app.now(),
        disabled_at: None,
    };
    match app.store.insert_operator(&record).await {
        Ok(()) => {}
        Err(StoreError::Duplicate) => return Err(ServiceError::OperatorEmailTaken),
        Err(e) => return Err(e.into()),
    }
    let t = totp(secret, email.as_str());
    tracing::info!(operator_id = %record.id, role = role.as_str(), "operator created");
    Ok(Created {
        totp_secret: t.get_secret_base32(),
        otpauth_uri: t.get_url(),
        operator: Operator {
            id: record.id,
            email: email.as_str().into(),
            name,
            role,
            created_at: record.created_at,
            disabled: false,
            orgs: Vec::new(),
        },
    })
}

/// An operator's name, for showing who decided a case.
pub async fn name_of(app: &App, id: &str) -> ServiceResult<Option<String>> {
    match app.store.get_operator(id).await? {
        Some(r) => Ok(Some(open_text(app, NAME_AAD, &r.name_enc)?)),
        None => Ok(None),
    }
}

/// Every operator, oldest first (by email within the same second).
pub async fn list(app: &App) -> ServiceResult<Vec<Operator>> {
    let mut all =
        app.store.list_operators().await?.iter().map(|r| open_operator(app, r)).collect::<ServiceResult<Vec<_>>>()?;
    all.sort_by(|a, b| (a.created_at, &a.email).cmp(&(b.created_at, &b.email)));
    Ok(all)
}

/// Appends one audit-log row. Targets are ids only, never personal data.
pub async fn audit(
    app: &App,
    operator_id: Option<&str>,
    action: &str,
    target: Option<(&str, &str)>,
    ip: &str,
) -> ServiceResult<()> {
    app.store.append_audit(&audit_entry(app, operator_id, action, target, ip)).await?;
    Ok(())
}

pub fn audit_entry(
    app: &App,
    operator_id: Option<&str>,
    action: &str,
    target: Option<(&str, &str)>,
    ip: &str,
) -> NewAuditEntry {
    crate::services::audit::row(app, (operator_id, None), action, target, ip)
}

/// A fixed, never-stored secret: an unknown email costs the same TOTP work as a known one.
fn dummy_secret() -> Vec<u8> {
    vec![0x5a; TOTP_SECRET_BYTES]
}

/// The console's login: email, password and the authenticator's code in one form. A failure
/// never says which was wrong, and costs the same whether the account exists or not. Rate
/// limited per client IP and per account as `limits::LoginGuard` describes (the member login's
/// limits, counted separately).
pub async fn login(app: &App, email_input: &str, password: &str, code: &str, ip: &str) -> ServiceResult<NewSession> {
    let normalized = Email::parse(email_input);
    let id_for_limit =
        normalized.as_ref().map(|e| e.as_str().to_string()).unwrap_or_else(|_| email_input.trim().to_lowercase());
    let guard = LoginGuard::before(app, "console-login", &id_for_limit, ip).await?;

    let record = match &normalized {
        Ok(email) => find_by_email(app, email).await?,
        Err(_) => None,
    };
    let password_ok = passwords::verify(password.to_string(), record.as_ref().map(|r| r.password_hash.clone())).await?;
    let secret = match &record {
        Some(r) => app.keys.open(TOTP_AAD, &r.totp_secret_enc)?,
        None => dummy_secret(),
    };
    let step = matching_step(&secret, code, app.now());
    let accepted = match (&record, password_ok, step) {
        // The step is used up only by a login that is otherwise right, atomically: the same
        // code (or an older one) cannot log in again, not even in a concurrent request.
        (Some(r), true, Some(step)) if r.disabled_at.is_none() => app.store.use_totp_step(&r.id, step).await?,
        _ => false,
    };
    let known_id = record.as_ref().map(|r| r.id.clone());
    let Some(record) = record.filter(|_| accepted) else {
        metrics::counter!("mimoto_console_logins_total", "result" => "failed").increment(1);
        guard.failed(app).await?;
        // The audit row names the account when the email was an operator's (ids only).
        audit(app, known_id.as_deref(), actions::LOGIN_FAILED, None, ip).await?;
        return Err(ServiceError::ConsoleLoginFailed);
    };
    guard.succeeded(app).await?;
    let operator = load_operator(app, &record).await?;
    let now = app.now();
    // Housekeeping: expired console sessions go when someone logs in.
    app.store.delete_expired_operator_sessions(now).await?;
    let token = random_token();
    app.store
        .create_operator_session(&OperatorSessionRecord {
            id_hash: session_hash(app, &token),
            operator_id: operator.id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: TIMEOUTS.expiry(now, now),
        })
        .await?;
    audit(app, Some(&operator.id), actions::LOGIN, None, ip).await?;
    metrics::counter!("mimoto_console_logins_total", "result" => "ok").increment(1);
    tracing::info!(operator_id = %operator.id, "operator signed in");
    Ok(NewSession { token, operator })
}

/// The operator behind a console session token, if the session is alive. Extends the idle
/// timeout (written at most once a minute), never past the absolute one.
pub async fn authenticate(app: &App, token: &str) -> ServiceResult<Option<Operator>> {
    let operator = |id: String| async move { app.store.get_operator(&id).await.map_err(ServiceError::from) };
    match sessions::authenticate::<OperatorSessions, _, _, _>(app, TIMEOUTS, &session_hashes(app, token), operator)
        .await?
    {
        // Disabling ends every session; a disabled record is refused here all the same.
        Some((_, record)) if record.disabled_at.is_none() => Ok(Some(load_operator(app, &record).await?)),
        Some(_) | None => Ok(None),
    }
}

pub async fn logout(app: &App, token: &str, operator: &Operator, ip: &str) -> ServiceResult<()> {
    audit(app, Some(&operator.id), actions::LOGOUT, None, ip).await?;
    for hash in session_hashes(app, token) {
        app.store.delete_operator_session(&hash).await?;
    }
    Ok(())
}

/// An operator as the administrators' page lists it.
pub struct Managed {
    pub operator: Operator,
    /// Insurer numbers of the organizations the operator is limited to (empty: all).
    pub insurer_numbers: Vec<String>,
}

/// What an administrator does to another operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manage {
    Disable,
    Enable,
    Role(Role),
    /// A new TOTP secret, shown once; the old one stops working and every session ends.
    ResetTotp,
    EndSessions,
    /// Limit to these organizations (insurer numbers); none: all organizations.
    Scope(Vec<String>),
}

impl Manage {
    fn action(&self) -> &'static str {
        match self {
            Manage::Disable => actions::OPERATOR_DISABLE,
            Manage::Enable => actions::OPERATOR_ENABLE,
            Manage::Role(_) => actions::OPERATOR_ROLE,
            Manage::ResetTotp => actions::OPERATOR_TOTP_RESET,
            Manage::EndSessions => actions::OPERATOR_END_SESSIONS,
            Manage::Scope(_) => actions::OPERATOR_SCOPE,
        }
    }
}

/// Every operator with their scope, for an administrator (the reading is audited).
pub async fn managed(app: &App, admin: &Operator, ip: &str) -> ServiceResult<Vec<Managed>> {
    if admin.role != Role::Admin {
        return Err(ServiceError::Forbidden);
    }
    audit(app, Some(&admin.id), actions::VIEW_OPERATORS, None, ip).await?;
    let numbers: std::collections::HashMap<String, String> =
        app.store.list_orgs().await?.into_iter().map(|o| (o.id, o.insurer_number.to_string())).collect();
    let mut out = Vec::new();
    for record in app.store.list_operators().await? {
        let operator = load_operator(app, &record).await?;
        let insurer_numbers = operator.orgs.iter().filter_map(|id| numbers.get(id).cloned()).collect();
        out.push(Managed { operator, insurer_numbers });
    }
    out.sort_by(|a, b| (a.operator.created_at, &a.operator.email).cmp(&(b.operator.created_at, &b.operator.email)));
    Ok(out)
}

/// An administrator's change to an operator, audited in the same transaction. An admin cannot
/// disable, demote, limit or reset themselves, so whoever acts stays an active admin; should
/// two admins disable each other at once, `mimoto operator create` makes a new one (the
/// console's recovery path, as for the first admin).
/// [`Manage::ResetTotp`] returns the new secret and its otpauth:// URI, shown once.
pub async fn manage(
    app: &App,
    admin: &Operator,
    target_id: &str,
    change: Manage,
    ip: &str,
) -> ServiceResult<Option<(String, String)>> {
    if admin.role != Role::Admin {
        return Err(ServiceError::Forbidden);
    }
    if uuid::Uuid::parse_str(target_id).is_err() {
        return Err(ServiceError::FlowNotFound);
    }
    let record = app.store.get_operator(target_id).await?.ok_or(ServiceError::FlowNotFound)?;
    let target = open_operator(app, &record)?;
    let weakens = matches!(change, Manage::Disable | Manage::Role(Role::Reviewer) | Manage::Scope(_));
    if target.id == admin.id && (weakens || change == Manage::ResetTotp) {
        return Err(ServiceError::OperatorSelfChange);
    }
    let mut shown = None;
    let store_change = match &change {
        Manage::Disable => OperatorChange::Disable(app.now()),
        Manage::Enable => OperatorChange::Enable,
        Manage::Role(role) => OperatorChange::Role(role.as_str().to_string()),
        Manage::EndSessions => OperatorChange::EndSessions,
        Manage::ResetTotp => {
            let mut secret = vec![0u8; TOTP_SECRET_BYTES];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let sealed = app.keys.seal(TOTP_AAD, &secret)?;
            let t = totp(secret, &target.email);
            shown = Some((t.get_secret_base32(), t.get_url()));
            OperatorChange::Totp(sealed)
        }
        Manage::Scope(numbers) => {
            let mut ids = Vec::new();
            for number in numbers.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                let org =
                    app.store.find_org_by_insurer_number(number).await?.ok_or(ServiceError::UnknownOrganization)?;
                if !ids.contains(&org.id) {
                    ids.push(org.id);
                }
            }
            OperatorChange::Orgs(ids)
        }
    };
    let entry = audit_entry(app, Some(&admin.id), change.action(), Some(("operator", &target.id)), ip);
    match app.store.change_operator(&target.id, &store_change, &entry).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(ServiceError::FlowNotFound),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(operator_id = %target.id, action = change.action(), "operator changed by an admin");
    Ok(shown)
}

/// One row of the audit log as an administrator reads it.
pub struct AuditRow {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub operator_id: Option<String>,
    pub operator_name: Option<String>,
    /// The member who acted (member-side rows).
    pub member_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub client_ip: String,
}

/// A page of the audit log, newest first; `next_before` continues with older rows.
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub next_before: Option<i64>,
}

pub const AUDIT_PAGE_SIZE: i64 = 50;

/// The most rows one CSV export holds (narrow the filter for more).
pub const AUDIT_EXPORT_MAX: i64 = 10_000;

fn audit_rows(entries: Vec<store::AuditEntry>, names: &std::collections::HashMap<String, String>) -> Vec<AuditRow> {
    entries
        .into_iter()
        .map(|e| AuditRow {
            operator_name: e.operator_id.as_ref().and_then(|id| names.get(id).cloned()),
            seq: e.seq,
            at: e.at,
            operator_id: e.operator_id,
            member_id: e.member_id,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            client_ip: e.client_ip,
        })
        .collect()
}

async fn operator_names(app: &App) -> ServiceResult<std::collections::HashMap<String, String>> {
    Ok(list(app).await?.into_iter().map(|o| (o.id, o.name)).collect())
}

/// The audit log for an administrator, the rows matching `filter` (the reading itself is
/// logged first).
pub async fn audit_log(
    app: &App,
    operator: &Operator,
    filter: &AuditFilter,
    before: Option<i64>,
    ip: &str,
) -> ServiceResult<AuditPage> {
    if !operator.role.can_read_audit_log() {
        return Err(ServiceError::Forbidden);
    }
    audit(app, Some(&operator.id), actions::VIEW_AUDIT, None, ip).await?;
    let names = operator_names(app).await?;
    // One more than a page tells whether there is a next page.
    let mut entries = app.store.search_audit(filter, before, AUDIT_PAGE_SIZE + 1).await?;
    let more = entries.len() as i64 > AUDIT_PAGE_SIZE;
    entries.truncate(AUDIT_PAGE_SIZE as usize);
    let next_before = if more { entries.last().map(|e| e.seq) } else { None };
    Ok(AuditPage { rows: audit_rows(entries, &names), next_before })
}

/// The rows matching `filter` as CSV (newest first, at most [`AUDIT_EXPORT_MAX`]), for an
/// administrator; the export is audited first. Ids, actions and addresses only, as the log.
pub async fn audit_csv(app: &App, operator: &Operator, filter: &AuditFilter, ip: &str) -> ServiceResult<Vec<u8>> {
    if !operator.role.can_read_audit_log() {
        return Err(ServiceError::Forbidden);
    }
    audit(app, Some(&operator.id), actions::EXPORT_AUDIT, None, ip).await?;
    let names = operator_names(app).await?;
    let rows = audit_rows(app.store.search_audit(filter, None, AUDIT_EXPORT_MAX).await?, &names);
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| ServiceError::Internal(format!("audit csv: {e}"));
    w.write_record([
        "seq",
        "at",
        "operator_id",
        "operator_name",
        "member_id",
        "action",
        "target_type",
        "target_id",
        "client_ip",
    ])
    .map_err(csv_error)?;
    for r in rows {
        let at = r.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        // A leading = + - @ would be a formula in a spreadsheet: quote it away.
        let cell = |v: &str| if v.starts_with(['=', '+', '-', '@']) { format!("'{v}") } else { v.to_string() };
        w.write_record([
            r.seq.to_string(),
            at,
            cell(r.operator_id.as_deref().unwrap_or("")),
            cell(r.operator_name.as_deref().unwrap_or("")),
            cell(r.member_id.as_deref().unwrap_or("")),
            cell(&r.action),
            cell(r.target_type.as_deref().unwrap_or("")),
            cell(r.target_id.as_deref().unwrap_or("")),
            cell(&r.client_ip),
        ])
        .map_err(csv_error)?;
    }
    w.into_inner().map_err(|e| ServiceError::Internal(format!("audit csv: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B (SHA-1 secret "12345678901234567890"), last 6 of the 8 digits.
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (at, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp_code(secret, at), code, "at {at}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let secret = b"12345678901234567890";
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).expect("time");
        let code = totp_code(secret, 1_111_111_109);
        let step = 1_111_111_109 / 30;
        assert_eq!(matching_step(secret, &code, at(1_111_111_109)), Some(step));
        assert_eq!(matching_step(secret, &code, at(1_111_111_109 + 30)), Some(step), "one step late");
        assert_eq!(matching_step(secret, &code, at(1_111_111_109 - 30)), Some(step), "one step early");
        assert_eq!(matching_step(secret, &code, at(1_111_111_109 + 90)), None);
        assert_eq!(matching_step(secret, "", at(1_111_111_109)), None);
        assert_eq!(
            matching_step(secret, "０８１８０４", at(1_111_111_109)),
            Some(step),
            "full-width digits are normalized"
        );
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Reviewer, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(Role::Admin.can_read_audit_log() && !Role::Reviewer.can_read_audit_log());
    }
}
