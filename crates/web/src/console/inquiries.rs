//! Console: customer-center inquiries (F6), for both roles: the inbox, one inquiry with its
//! replies, replying and closing.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{jst, to_login, Chrome, ConsoleCtx, ConsoleError, ConsoleForm, Cx, Field, IdPath, LateId, OrConsole};
use crate::error::ErrorStatus;
use crate::extract::Empty;
use crate::member::{render, see_other};
use crate::ClientIp;
use app::error::ServiceError;
use app::services::inquiry;
use app::AppState;
use domain::ids::InquiryId;

struct InquiryRowView {
    id: String,
    reference: String,
    received_at: String,
    category: &'static str,
    status: String,
    status_label: &'static str,
    linked: &'static str,
}

#[derive(Template)]
#[template(path = "console_inquiries.html")]
struct InquiriesPage {
    c: Chrome,
    rows: Vec<InquiryRowView>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(super) struct NoticeQuery {
    done: Option<String>,
}

pub(super) async fn inquiries_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let tr = ctx.tr;
    let rows = inquiry::inbox(&app, operator)
        .await
        .or_console(&ctx)?
        .into_iter()
        .map(|i| InquiryRowView {
            received_at: jst(i.created_at),
            category: inquiry::category_label(tr.locale, &i.category),
            status_label: tr.t(&format!("console.inquiry.status.{}", i.status)),
            linked: tr.t(if i.linked { "console.yes" } else { "console.no" }),
            id: i.id,
            reference: i.reference,
            status: i.status,
        })
        .collect();
    let notice = (q.done.as_deref() == Some("closed")).then(|| tr.t("console.notice.inquiry_closed"));
    Ok(render(StatusCode::OK, &InquiriesPage { c: Chrome::from(&ctx), rows, notice }))
}

struct ReplyRowView {
    by: String,
    at: String,
    body: String,
}

#[derive(Template)]
#[template(path = "console_inquiry.html")]
struct InquiryPage {
    c: Chrome,
    id: String,
    reference: String,
    fields: Vec<Field>,
    message: String,
    /// The attached account, whose summary the page links to.
    member: Option<String>,
    replies: Vec<ReplyRowView>,
    closed: bool,
    reply_max: usize,
    draft: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

fn inquiry_view(
    ctx: &ConsoleCtx,
    d: inquiry::Detail,
    draft: String,
    error: Option<String>,
    notice: Option<&'static str>,
) -> InquiryPage {
    let tr = ctx.tr;
    let r = &d.record;
    let mut fields = vec![
        Field { label: tr.t("console.inquiries.received_at"), value: jst(r.created_at) },
        Field {
            label: tr.t("console.inquiries.category"),
            value: inquiry::category_label(tr.locale, &r.category).to_string(),
        },
        Field {
            label: tr.t("console.inquiries.status"),
            value: tr.t(&format!("console.inquiry.status.{}", r.status)).to_string(),
        },
        Field { label: tr.t("console.inquiry.email"), value: d.email.clone() },
        Field {
            label: tr.t("console.inquiry.account"),
            value: r.user_id.clone().unwrap_or_else(|| tr.t("console.none").to_string()),
        },
        Field { label: tr.t("console.inquiry.language"), value: r.locale.clone() },
    ];
    if let Some(at) = r.closed_at {
        fields.push(Field { label: tr.t("console.inquiry.closed_at"), value: jst(at) });
    }
    InquiryPage {
        c: Chrome::from(ctx),
        id: r.id.clone(),
        reference: d.reference.clone(),
        closed: r.status == "closed",
        member: r.user_id.clone(),
        fields,
        replies: d
            .replies
            .into_iter()
            .map(|x| ReplyRowView { by: x.operator_name, at: jst(x.at), body: x.body })
            .collect(),
        message: d.message,
        reply_max: inquiry::REPLY_MAX_CHARS,
        draft,
        error,
        notice,
    }
}

pub(super) async fn inquiry_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    IdPath(id): IdPath<InquiryId>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let detail = inquiry::detail(&app, operator, &id, &ip).await.or_console(&ctx)?;
    let notice = (q.done.as_deref() == Some("replied")).then(|| ctx.tr.t("console.notice.inquiry_replied"));
    Ok(render(StatusCode::OK, &inquiry_view(&ctx, detail, String::new(), None, notice)))
}

#[derive(Deserialize)]
pub(super) struct ReplyForm {
    #[serde(default)]
    reply: String,
}

pub(super) async fn inquiry_reply(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    id: LateId<InquiryId>,
    form: ConsoleForm<ReplyForm>,
) -> Result<Response, ConsoleError> {
    let f = form.into_inner();
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let IdPath(id) = match id {
        Ok(id) => id,
        Err(unknown) => return Ok(unknown),
    };
    match inquiry::reply(&app, operator, &id, &f.reply, &ip).await {
        Ok(()) => Ok(see_other(&format!("/console/inquiries/{id}?done=replied"))),
        Err(e @ (ServiceError::InquiryReplyEmpty | ServiceError::InquiryReplyTooLong)) => {
            let detail = inquiry::detail(&app, operator, &id, &ip).await.or_console(&ctx)?;
            let page = inquiry_view(&ctx, detail, f.reply, Some(e.message(ctx.locale())), None);
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e).or_console(&ctx),
    }
}

pub(super) async fn inquiry_close(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    id: LateId<InquiryId>,
    _form: ConsoleForm<Empty>,
) -> Result<Response, ConsoleError> {
    let Some(operator) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let IdPath(id) = match id {
        Ok(id) => id,
        Err(unknown) => return Ok(unknown),
    };
    inquiry::close(&app, operator, &id, &ip).await.or_console(&ctx)?;
    Ok(see_other("/console/inquiries?done=closed"))
}
