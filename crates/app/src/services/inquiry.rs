//! F6 customer center: inquiries from visitors and members, and operators' replies.
//!
//! Anyone may write (no CAPTCHA): the form is rate limited per client IP and per contact
//! email. The contact email, the message and every reply are sealed; the confirmation mail
//! names the inquiry's reference and category but never repeats the message (anyone can type
//! anyone's address). A signed-in member may attach their account. Operators read an inquiry
//! only after the audit row `inquiry.view` is written; replies go out by mail in the same
//! transaction as the reply and its audit row.

use store::{InquiryRecord, InquiryReply, StoreError};

use crate::error::{ServiceError, ServiceResult};
use crate::i18n::{t, Locale};
use crate::services::auth::Member;
use crate::services::codes::sealed_mail;
use crate::services::operators::{self, actions, Operator};
use crate::services::{limits, new_id};
use crate::state::App;

/// The categories of the form, in display order; labels are `inquiry.category.<code>`.
pub const CATEGORIES: [&str; 5] = ["registration", "login", "identity", "ekyc", "other"];
pub const MESSAGE_MAX_CHARS: usize = 2000;
pub const REPLY_MAX_CHARS: usize = 4000;
/// Inquiries shown in the operators' inbox.
pub const INBOX_LIMIT: i64 = 200;

pub(crate) const EMAIL_AAD: &str = "inquiries.email";
pub(crate) const MESSAGE_AAD: &str = "inquiries.message";
pub(crate) const REPLY_AAD: &str = "inquiry_replies.body";

/// What the form sends.
pub struct NewInquiry<'a> {
    pub category: &'a str,
    pub message: &'a str,
    pub email: &'a str,
    /// Attach the signed-in member's account (ignored when signed out).
    pub attach_account: bool,
}

pub use super::reference;

pub fn category_label(locale: Locale, code: &str) -> &'static str {
    t(locale, &format!("inquiry.category.{code}"))
}

fn check_message(message: &str, max: usize) -> ServiceResult<String> {
    let message = message.replace("\r\n", "\n");
    let trimmed = message.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::InquiryMessageEmpty);
    }
    if trimmed.chars().count() > max {
        return Err(ServiceError::InquiryMessageTooLong);
    }
    Ok(trimmed.to_string())
}

/// Stores an inquiry and queues its confirmation mail (one transaction); returns its id.
#[tracing::instrument(skip_all, fields(user_id = member.map(|m| m.user.id.as_str())))]
pub async fn submit(
    app: &App,
    member: Option<&Member>,
    locale: Locale,
    input: NewInquiry<'_>,
    ip: &str,
) -> ServiceResult<String> {
    let category = CATEGORIES.iter().find(|c| **c == input.category).ok_or(ServiceError::InquiryCategory)?;
    let message = check_message(input.message, MESSAGE_MAX_CHARS)?;
    let email = crate::services::deliverable_email(app, input.email)?;
    limits::check_ip(app, "inquiry_ip", ip, app.config.limits.inquiry_per_ip).await?;
    limits::check(app, "inquiry_email", email.as_str(), app.config.limits.inquiry_per_email).await?;

    let id = new_id();
    let now = app.now();
    let template = mail::Template::InquiryReceived {
        reference: reference(&id),
        category: category_label(locale, category).to_string(),
    };
    let mail = sealed_mail(app, &template, locale, email.as_str())?;
    let record = InquiryRecord {
        id: id.clone(),
        user_id: member.filter(|_| input.attach_account).map(|m| m.user.id.clone()),
        category: category.to_string(),
        email_enc: app.keys.seal(EMAIL_AAD, email.as_str().as_bytes())?,
        message_enc: app.keys.seal(MESSAGE_AAD, message.as_bytes())?,
        locale: locale.as_str().to_string(),
        status: "open".into(),
        created_at: now,
        updated_at: now,
        closed_at: None,
    };
    app.store.create_inquiry(&record, &mail).await?;
    app.mail_wake.notify_one();
    metrics::counter!("mimoto_inquiries_total", "category" => category.to_string()).increment(1);
    tracing::info!(inquiry = %id, category, linked = record.user_id.is_some(), "inquiry received");
    Ok(id)
}

/// One row of the operators' inbox (no personal data).
pub struct InboxItem {
    pub id: String,
    pub reference: String,
    pub category: String,
    pub status: String,
    pub linked: bool,
    pub created_at: time::OffsetDateTime,
}

#[tracing::instrument(skip_all)]
/// Inquiries carry no organization: operators limited to organizations do not see them.
pub async fn inbox(app: &App, operator: &Operator) -> ServiceResult<Vec<InboxItem>> {
    if !operator.sees_all_orgs() {
        return Ok(Vec::new());
    }
    let rows = app.store.list_inquiries(INBOX_LIMIT).await?;
    Ok(rows
        .into_iter()
        .map(|r| InboxItem {
            reference: reference(&r.id),
            linked: r.user_id.is_some(),
            id: r.id,
            category: r.category,
            status: r.status,
            created_at: r.created_at,
        })
        .collect())
}

pub struct ReplyView {
    pub operator_name: String,
    pub body: String,
    pub at: time::OffsetDateTime,
}

/// An inquiry opened for an operator.
pub struct Detail {
    pub record: InquiryRecord,
    pub reference: String,
    pub email: String,
    pub message: String,
    pub replies: Vec<ReplyView>,
}

fn open_text(app: &App, aad: &str, sealed: &[u8]) -> ServiceResult<String> {
    String::from_utf8(app.keys.open(aad, sealed)?)
        .map_err(|_| ServiceError::Internal("sealed text is not UTF-8".into()))
}

/// Opens an inquiry for an operator: the audit row `inquiry.view` is written before anything
/// personal is decrypted.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, inquiry_id = %id))]
pub async fn detail(app: &App, operator: &Operator, id: &str, ip: &str) -> ServiceResult<Detail> {
    if !operator.sees_all_orgs() {
        return Err(ServiceError::InquiryNotFound);
    }
    let Some((record, replies)) = app.store.get_inquiry(id).await? else {
        return Err(ServiceError::InquiryNotFound);
    };
    operators::audit(app, Some(&operator.id), actions::VIEW_INQUIRY, Some(("inquiry", id)), ip).await?;
    let mut views = Vec::with_capacity(replies.len());
    for r in replies {
        views.push(ReplyView {
            operator_name: operators::name_of(app, &r.operator_id).await?.unwrap_or(r.operator_id.clone()),
            body: open_text(app, REPLY_AAD, &r.body_enc)?,
            at: r.created_at,
        });
    }
    Ok(Detail {
        reference: reference(&record.id),
        email: open_text(app, EMAIL_AAD, &record.email_enc)?,
        message: open_text(app, MESSAGE_AAD, &record.message_enc)?,
        replies: views,
        record,
    })
}

/// Replies by mail (in the sender's language): the reply, the status `answered`, the mail and
/// the audit row `inquiry.reply` in one transaction.
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, inquiry_id = %id))]
pub async fn reply(app: &App, operator: &Operator, id: &str, body: &str, ip: &str) -> ServiceResult<()> {
    if !operator.sees_all_orgs() {
        return Err(ServiceError::InquiryNotFound);
    }
    let body = check_message(body, REPLY_MAX_CHARS).map_err(|e| match e {
        ServiceError::InquiryMessageEmpty => ServiceError::InquiryReplyEmpty,
        ServiceError::InquiryMessageTooLong => ServiceError::InquiryReplyTooLong,
        other => other,
    })?;
    let Some((record, _)) = app.store.get_inquiry(id).await? else {
        return Err(ServiceError::InquiryNotFound);
    };
    if record.status == "closed" {
        return Err(ServiceError::InquiryClosed);
    }
    let locale = Locale::parse(&record.locale).unwrap_or_default();
    let to = open_text(app, EMAIL_AAD, &record.email_enc)?;
    let template = mail::Template::InquiryReply { reference: reference(id), reply: body.clone() };
    let mail = sealed_mail(app, &template, locale, &to)?;
    let reply = InquiryReply {
        id: new_id(),
        inquiry_id: id.to_string(),
        operator_id: operator.id.clone(),
        body_enc: app.keys.seal(REPLY_AAD, body.as_bytes())?,
        created_at: app.now(),
    };
    let audit = operators::audit_entry(app, Some(&operator.id), actions::REPLY_INQUIRY, Some(("inquiry", id)), ip);
    match app.store.reply_inquiry(&reply, &mail, &audit).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(ServiceError::InquiryClosed),
        Err(StoreError::NotFound) => return Err(ServiceError::InquiryNotFound),
        Err(e) => return Err(e.into()),
    }
    app.mail_wake.notify_one();
    tracing::info!(inquiry = %id, operator_id = %operator.id, "inquiry answered");
    Ok(())
}

/// Closes an inquiry (audit row `inquiry.close`, same transaction).
#[tracing::instrument(skip_all, fields(operator_id = %operator.id, inquiry_id = %id))]
pub async fn close(app: &App, operator: &Operator, id: &str, ip: &str) -> ServiceResult<()> {
    if !operator.sees_all_orgs() {
        return Err(ServiceError::InquiryNotFound);
    }
    let audit = operators::audit_entry(app, Some(&operator.id), actions::CLOSE_INQUIRY, Some(("inquiry", id)), ip);
    match app.store.close_inquiry(id, app.now(), &audit).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict) => Err(ServiceError::InquiryClosed),
        Err(StoreError::NotFound) => Err(ServiceError::InquiryNotFound),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_short_and_upper_case() {
        assert_eq!(reference("3f2a9c1e-77aa-4bd0-9e43-0a1b2c3d4e5f"), "3F2A9C1E");
    }

    #[test]
    fn messages_are_trimmed_and_bounded() {
        assert_eq!(check_message("  こんにちは\r\n  ", 10).ok().as_deref(), Some("こんにちは"));
        assert!(matches!(check_message(" \n ", 10), Err(ServiceError::InquiryMessageEmpty)));
        assert!(check_message(&"あ".repeat(MESSAGE_MAX_CHARS), MESSAGE_MAX_CHARS).is_ok());
        assert!(matches!(
            check_message(&"あ".repeat(MESSAGE_MAX_CHARS + 1), MESSAGE_MAX_CHARS),
            Err(ServiceError::InquiryMessageTooLong)
        ));
    }

    #[test]
    fn every_category_has_labels() {
        for code in CATEGORIES {
            for locale in [Locale::Ja, Locale::En] {
                assert_ne!(category_label(locale, code), format!("inquiry.category.{code}"));
            }
        }
    }
}
