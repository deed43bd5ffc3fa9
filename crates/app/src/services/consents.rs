//! 同意 (#16 point 8): the versioned documents, the re-consent a member owes after a new
//! version, the purpose consents of F4 (顔画像の取扱い) and F5 (健診等情報の受領), and their
//! withdrawal.
//!
//! Per kind, the current version for a member is their organization's latest own version if
//! it has one, else the platform's latest. Versions are named by the publication date (JST),
//! `YYYY-MM-DD`, with `-2`, `-3`… for a second version the same day.

use std::collections::HashMap;

use domain::consent::{self, ConsentDoc, GivenConsent};
use domain::org::Organization;
use store::{ConsentRecord, DocumentRecord, StoreError};
use time::OffsetDateTime;

use crate::error::{ServiceError, ServiceResult};
use crate::i18n::Locale;
use crate::services::audit;
use crate::services::auth::Member;
use crate::services::operators::{self, Operator, Role};
use crate::state::App;

/// Audit actions of this module.
pub mod actions {
    /// A member accepted document versions (target: the documents, comma separated).
    pub const ACCEPTED: &str = "member.consent.accepted";
    /// A member withdrew a purpose consent (target: the document).
    pub const WITHDRAWN: &str = "member.consent.withdrawn";
    /// An operator published a new version (target: `kind:version`, with `@org` when the
    /// organization's own).
    pub const PUBLISHED: &str = "documents.publish";
}

/// Longest title and body of a published version (characters).
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 20_000;

/// One version of a document, ready to show: placeholders filled in, in the reader's language
/// (the Japanese text when no English one was published).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub doc: ConsentDoc,
    /// The organization's own version (its id), or `None` for the platform-wide one.
    pub organization: Option<String>,
    pub version: String,
    pub title: String,
    pub body: String,
    pub published_at: OffsetDateTime,
    /// Whether this is the version in force.
    pub current: bool,
}

impl Document {
    /// The body cut into paragraphs (blank lines) and lines, for escaped rendering.
    pub fn paragraphs(&self) -> Vec<Vec<String>> {
        self.body
            .split("\n\n")
            .map(|p| p.lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect::<Vec<_>>())
            .filter(|p| !p.is_empty())
            .collect()
    }
}

/// Fills `{org}` and `{points}` with the organization's name and point name.
fn fill(text: &str, org: Option<&Organization>, locale: Locale) -> String {
    let (org_name, points) = match org {
        Some(o) => (
            o.name.clone(),
            o.point_name.clone().unwrap_or_else(|| crate::i18n::t(locale, "documents.points_generic").into()),
        ),
        None => (
            crate::i18n::t(locale, "documents.org_generic").into(),
            crate::i18n::t(locale, "documents.points_generic").into(),
        ),
    };
    text.replace("{org}", &org_name).replace("{points}", &points)
}

fn to_document(r: &DocumentRecord, org: Option<&Organization>, locale: Locale, current: bool) -> Option<Document> {
    let doc = ConsentDoc::parse(&r.kind)?;
    let (title, body) = match locale {
        Locale::En if !r.title_en.trim().is_empty() && !r.body_en.trim().is_empty() => (&r.title_en, &r.body_en),
        _ => (&r.title, &r.body),
    };
    Some(Document {
        doc,
        organization: r.organization.clone(),
        version: r.version.clone(),
        title: fill(title, org, locale),
        body: fill(body, org, locale),
        published_at: r.published_at,
        current,
    })
}

/// The versions that apply to a member of `org_id` (or, with `None`, the platform-wide
/// ones), oldest first, per kind: the organization's own when it has any.
async fn versions_for(app: &App, org_id: Option<&str>) -> ServiceResult<HashMap<ConsentDoc, Vec<DocumentRecord>>> {
    let rows = match org_id {
        Some(id) => app.store.documents_for_org(id).await?,
        None => app.store.all_documents().await?.into_iter().filter(|r| r.organization.is_none()).collect(),
    };
    let mut own: HashMap<ConsentDoc, Vec<DocumentRecord>> = HashMap::new();
    let mut platform: HashMap<ConsentDoc, Vec<DocumentRecord>> = HashMap::new();
    for r in rows {
        let Some(doc) = ConsentDoc::parse(&r.kind) else { continue };
        if r.organization.is_some() {
            own.entry(doc).or_default().push(r);
        } else {
            platform.entry(doc).or_default().push(r);
        }
    }
    for (doc, list) in own {
        platform.insert(doc, list);
    }
    Ok(platform)
}

/// The current version of each kind for a member of `org_id`.
pub async fn current_versions(app: &App, org_id: &str) -> ServiceResult<HashMap<ConsentDoc, String>> {
    Ok(versions_for(app, Some(org_id))
        .await?
        .into_iter()
        .filter_map(|(doc, list)| list.last().map(|r| (doc, r.version.clone())))
        .collect())
}

async fn org_of(app: &App, org_id: Option<&str>) -> ServiceResult<Option<Organization>> {
    match org_id {
        Some(id) => Ok(app.store.get_org(id).await?),
        None => Ok(None),
    }
}

/// A document for the public pages: `version` (or the current one) of `doc` as it applies to
/// members of `org_id` (or platform-wide). Unknown: [`ServiceError::DocumentNotFound`].
pub async fn document(
    app: &App,
    doc: ConsentDoc,
    org_id: Option<&str>,
    version: Option<&str>,
    locale: Locale,
) -> ServiceResult<(Document, Vec<(String, OffsetDateTime)>)> {
    let org = org_of(app, org_id).await?;
    if org_id.is_some() && org.is_none() {
        return Err(ServiceError::DocumentNotFound);
    }
    let list = versions_for(app, org.as_ref().map(|o| o.id.as_str())).await?.remove(&doc).unwrap_or_default();
    let current = list.last().map(|r| r.version.clone()).ok_or(ServiceError::DocumentNotFound)?;
    let wanted = version.unwrap_or(&current);
    let record = list.iter().find(|r| r.version == wanted).ok_or(ServiceError::DocumentNotFound)?;
    let shown =
        to_document(record, org.as_ref(), locale, record.version == current).ok_or(ServiceError::DocumentNotFound)?;
    let history = list.iter().rev().map(|r| (r.version.clone(), r.published_at)).collect();
    Ok((shown, history))
}

/// Where a document is read: `/documents/{kind}`, with `?org=` for the organization's.
pub fn document_path(doc: ConsentDoc, org_id: Option<&str>) -> String {
    match org_id {
        Some(o) if doc.per_organization() => format!("/documents/{}?org={o}", doc.as_str()),
        _ => format!("/documents/{}", doc.as_str()),
    }
}

fn given(records: Vec<ConsentRecord>) -> Vec<GivenConsent> {
    records
        .into_iter()
        .filter_map(|r| {
            Some(GivenConsent {
                doc: ConsentDoc::parse(&r.doc)?,
                version: r.version,
                accepted_at: r.accepted_at,
                withdrawn_at: r.withdrawn_at,
            })
        })
        .collect()
}

async fn member_org(app: &App, member: &Member) -> ServiceResult<Organization> {
    app.store
        .get_org(&member.user.org_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("user without organization".into()))
}

/// The documents the member must accept again before going on (see
/// [`domain::consent::pending`]).
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn pending(app: &App, member: &Member) -> ServiceResult<Vec<ConsentDoc>> {
    let org = member_org(app, member).await?;
    let current = current_versions(app, &org.id).await?;
    let given = given(app.store.user_consents(&member.user.id).await?);
    Ok(consent::pending(&org, &given, |d| current.get(&d).cloned()))
}

/// Nothing to accept again: `Ok`; else [`ServiceError::ConsentRequired`] with the documents.
pub async fn require_current(app: &App, member: &Member) -> ServiceResult<()> {
    let docs = pending(app, member).await?;
    if docs.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::ConsentRequired(docs))
    }
}

/// The purpose consent `doc` stands, for its current version; else
/// [`ServiceError::ConsentRequired`] with `doc`.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, doc = doc.as_str()))]
pub async fn require(app: &App, member: &Member, doc: ConsentDoc) -> ServiceResult<()> {
    let current = current_versions(app, &member.user.org_id).await?;
    let given = given(app.store.user_consents(&member.user.id).await?);
    match (consent::standing(&given, doc), current.get(&doc)) {
        (Some(g), Some(v)) if &g.version == v => Ok(()),
        _ => Err(ServiceError::ConsentRequired(vec![doc])),
    }
}

/// 「同意して次へ」 on 「規約等の改定への同意」: every pending document must be in `checked`
/// (else [`ServiceError::ConsentsMissing`]); their current versions are recorded.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn accept_revisions(app: &App, member: &Member, checked: &[ConsentDoc], ip: &str) -> ServiceResult<()> {
    let docs = pending(app, member).await?;
    let missing: Vec<ConsentDoc> = docs.iter().copied().filter(|d| !checked.contains(d)).collect();
    if !missing.is_empty() {
        return Err(ServiceError::ConsentsMissing(missing));
    }
    record(app, member, &docs, ip).await
}

/// Gives the purpose consent `doc` (F4 face images, F5 health data) at its current version.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, doc = doc.as_str()))]
pub async fn grant(app: &App, member: &Member, doc: ConsentDoc, ip: &str) -> ServiceResult<()> {
    if !doc.is_purpose() {
        return Err(ServiceError::InvalidRequest("doc".into()));
    }
    record(app, member, &[doc], ip).await
}

async fn record(app: &App, member: &Member, docs: &[ConsentDoc], ip: &str) -> ServiceResult<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let current = current_versions(app, &member.user.org_id).await?;
    let now = app.now();
    let rows: Vec<ConsentRecord> = docs
        .iter()
        .map(|d| {
            let version = current.get(d).cloned().ok_or(ServiceError::DocumentNotFound)?;
            Ok(ConsentRecord { doc: d.as_str().to_string(), version, accepted_at: now, withdrawn_at: None })
        })
        .collect::<ServiceResult<_>>()?;
    app.store.record_consents(&member.user.id, &rows).await?;
    let names = docs.iter().map(ConsentDoc::as_str).collect::<Vec<_>>().join(",");
    audit::member(app, Some(member.user.id.as_str()), actions::ACCEPTED, Some(("consent", &names)), ip).await?;
    Ok(())
}

/// Withdraws a purpose consent. Health data (F5) is closed at once (the health pages and API
/// ask for the consent again); an eKYC application not yet submitted cannot go on without the
/// face-image consent, while a submitted one is reviewed and decisions keep their result.
/// The registration documents: [`ServiceError::ConsentNotWithdrawable`].
#[tracing::instrument(skip_all, fields(user_id = %member.user.id, doc = doc.as_str()))]
pub async fn withdraw(app: &App, member: &Member, doc: ConsentDoc, ip: &str) -> ServiceResult<()> {
    if !doc.is_purpose() {
        return Err(ServiceError::ConsentNotWithdrawable);
    }
    let changed = app.store.withdraw_consent(&member.user.id, doc.as_str(), app.now()).await?;
    if changed == 0 {
        return Err(ServiceError::NothingToWithdraw);
    }
    if doc == ConsentDoc::HealthData {
        // Every session's secret-question answer ends: consenting again later does not reopen
        // health data in a session (e.g. a stolen app token) without answering again.
        app.store.close_user_step_ups(&member.user.id).await?;
    }
    audit::member(app, Some(member.user.id.as_str()), actions::WITHDRAWN, Some(("consent", doc.as_str())), ip).await?;
    Ok(())
}

/// One line of 「同意の確認・撤回」.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentStatus {
    pub doc: ConsentDoc,
    /// The version the member accepted last and when (withdrawn or not).
    pub accepted: Option<(String, OffsetDateTime)>,
    pub withdrawn_at: Option<OffsetDateTime>,
    /// The version in force (`None`: not published).
    pub current_version: Option<String>,
    /// Where to read the current version.
    pub path: String,
}

impl ConsentStatus {
    /// Standing and for the version in force.
    pub fn up_to_date(&self) -> bool {
        self.withdrawn_at.is_none()
            && matches!((&self.accepted, &self.current_version), (Some((a, _)), Some(c)) if a == c)
    }
}

/// The member's consents: the registration documents that apply, and both purpose consents.
#[tracing::instrument(skip_all, fields(user_id = %member.user.id))]
pub async fn statuses(app: &App, member: &Member) -> ServiceResult<Vec<ConsentStatus>> {
    let org = member_org(app, member).await?;
    let current = current_versions(app, &org.id).await?;
    let given = given(app.store.user_consents(&member.user.id).await?);
    let required = consent::required_consents(&org);
    Ok(ConsentDoc::ALL
        .into_iter()
        .filter(|d| d.is_purpose() || required.contains(d))
        .map(|doc| {
            let last = given.iter().filter(|g| g.doc == doc).max_by_key(|g| g.accepted_at);
            ConsentStatus {
                doc,
                accepted: last.map(|g| (g.version.clone(), g.accepted_at)),
                withdrawn_at: last.and_then(|g| g.withdrawn_at),
                current_version: current.get(&doc).cloned(),
                path: document_path(doc, Some(&org.id)),
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// The console: publishing a new version (admins)

/// Every version of every document, newest first, for the console (admins only).
pub async fn console_list(app: &App, operator: &Operator) -> ServiceResult<Vec<DocumentRecord>> {
    if operator.role != Role::Admin {
        return Err(ServiceError::Forbidden);
    }
    let mut all = app.store.all_documents().await?;
    all.reverse();
    Ok(all)
}

/// What an admin publishes.
pub struct NewVersion<'a> {
    pub doc: ConsentDoc,
    /// The organization's own version, or platform-wide (`None`).
    pub org_id: Option<&'a str>,
    pub title: &'a str,
    pub body: &'a str,
    /// English reference translation (optional: empty shows the Japanese text).
    pub title_en: &'a str,
    pub body_en: &'a str,
}

fn check_text(text: &str, max: usize, field: &'static str, required: bool) -> ServiceResult<String> {
    let t = text.replace("\r\n", "\n").trim().to_string();
    if (required && t.is_empty()) || t.chars().count() > max {
        return Err(ServiceError::DocumentInvalid(field));
    }
    Ok(t)
}

/// 「新しい版を公開」: publishes a new version (named by today's date in JST); members who
/// accepted an older one are asked again at their next page. Audited.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, doc = new.doc.as_str()))]
pub async fn publish(app: &App, operator: &Operator, new: &NewVersion<'_>, ip: &str) -> ServiceResult<String> {
    if operator.role != Role::Admin {
        return Err(ServiceError::Forbidden);
    }
    let title = check_text(new.title, MAX_TITLE, "title", true)?;
    let body = check_text(new.body, MAX_BODY, "body", true)?;
    let title_en = check_text(new.title_en, MAX_TITLE, "title_en", false)?;
    let body_en = check_text(new.body_en, MAX_BODY, "body_en", false)?;
    let org_id = match new.org_id.filter(|o| !o.is_empty()) {
        Some(_) if !new.doc.per_organization() => return Err(ServiceError::DocumentInvalid("org")),
        Some(id) => {
            let org = app.store.get_org(id).await?.ok_or(ServiceError::DocumentInvalid("org"))?;
            // An administrator limited to organizations publishes for those only…
            if !operator.may_see_org(&org.id) {
                return Err(ServiceError::Forbidden);
            }
            Some(org.id)
        }
        // …and never a platform-wide version, which every organization's members must accept.
        None if !operator.sees_all_orgs() => return Err(ServiceError::Forbidden),
        None => None,
    };
    let now = app.now();
    let day = now.to_offset(time::macros::offset!(+9)).date();
    let base = format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day());
    // A version name is unique across the platform's and every organization's versions of the
    // kind: consents store the version only, so an organization's new text must not carry a
    // name a member already accepted for another text.
    let taken: std::collections::HashSet<String> = app
        .store
        .all_documents()
        .await?
        .into_iter()
        .filter(|d| d.kind == new.doc.as_str())
        .map(|d| d.version)
        .collect();
    for n in 1..=20 {
        let version = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        if taken.contains(&version) {
            continue;
        }
        let record = DocumentRecord {
            kind: new.doc.as_str().to_string(),
            organization: org_id.clone(),
            version: version.clone(),
            title: title.clone(),
            body: body.clone(),
            title_en: title_en.clone(),
            body_en: body_en.clone(),
            published_at: now,
            published_by: operator.id.clone(),
        };
        match app.store.publish_document(&record).await {
            Ok(()) => {
                let target = match &org_id {
                    Some(o) => format!("{}:{version}@{o}", new.doc.as_str()),
                    None => format!("{}:{version}", new.doc.as_str()),
                };
                operators::audit(app, Some(&operator.id), actions::PUBLISHED, Some(("document", &target)), ip).await?;
                tracing::info!(version = %version, "document version published");
                return Ok(version);
            }
            Err(StoreError::Duplicate) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Conflict)
}
