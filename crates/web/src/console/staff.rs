//! Console: operators as a managed population (administrators). The list with role, state and
//! scope; per operator one form whose buttons disable or re-enable, change the role, reset the
//! authenticator (the new secret is shown once, on the answer page), end every session, or
//! limit the operator to organizations. The first administrator comes from
//! `mimoto operator create`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{jst, to_login, Chrome, ConsoleError, ConsoleForm, Cx, IdPath, LateId, OrConsole};
use crate::member::{render, see_other};
use crate::ClientIp;
use app::error::ServiceError;
use app::services::operators::{self, Manage, Role};
use app::AppState;
use domain::ids::OperatorId;

struct OperatorRowView {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    admin: bool,
    disabled: bool,
    scope: String,
    created_at: String,
    me: bool,
}

#[derive(Template)]
#[template(path = "console_operators.html")]
struct OperatorsPage {
    c: Chrome,
    rows: Vec<OperatorRowView>,
}

#[derive(Template)]
#[template(path = "console_operator_totp.html")]
struct TotpPage {
    c: Chrome,
    name: String,
    secret: String,
    uri: String,
}

pub(super) async fn operators_page(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
) -> Result<Response, ConsoleError> {
    let Some(admin) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let tr = ctx.tr;
    let rows = operators::managed(&app, admin, &ip)
        .await
        .or_console(&ctx)?
        .into_iter()
        .map(|m| OperatorRowView {
            me: m.operator.id == admin.id,
            id: m.operator.id,
            name: m.operator.name,
            email: m.operator.email,
            role: tr.t(match m.operator.role {
                Role::Admin => "console.role.admin",
                Role::Reviewer => "console.role.reviewer",
            }),
            admin: m.operator.role == Role::Admin,
            disabled: m.operator.disabled,
            scope: if m.insurer_numbers.is_empty() {
                tr.t("console.operators.all_orgs").to_string()
            } else {
                m.insurer_numbers.join(", ")
            },
            created_at: jst(m.operator.created_at),
        })
        .collect();
    Ok(render(StatusCode::OK, &OperatorsPage { c: Chrome::from(&ctx), rows }))
}

#[derive(Deserialize)]
pub(super) struct ChangeForm {
    /// Which button: disable, enable, make_admin, make_reviewer, reset_totp, end_sessions, scope.
    #[serde(default)]
    action: String,
    /// For `scope`: insurer numbers separated by commas or spaces (empty: all organizations).
    #[serde(default)]
    insurer_numbers: String,
}

pub(super) async fn change(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    id: LateId<OperatorId>,
    form: ConsoleForm<ChangeForm>,
) -> Result<Response, ConsoleError> {
    let Some(admin) = ctx.operator.as_ref() else {
        return Ok(to_login());
    };
    let IdPath(id) = match id {
        Ok(id) => id,
        Err(unknown) => return Ok(unknown),
    };
    let form = form.into_inner();
    let change = match form.action.as_str() {
        "disable" => Manage::Disable,
        "enable" => Manage::Enable,
        "make_admin" => Manage::Role(Role::Admin),
        "make_reviewer" => Manage::Role(Role::Reviewer),
        "reset_totp" => Manage::ResetTotp,
        "end_sessions" => Manage::EndSessions,
        "scope" => Manage::Scope(
            form.insurer_numbers
                .split(|c: char| c == ',' || c == '、' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        _ => return Err(ServiceError::InvalidRequest("action".into())).or_console(&ctx),
    };
    let shown = operators::manage(&app, admin, id.as_str(), change, &ip).await.or_console(&ctx)?;
    match shown {
        Some((secret, uri)) => {
            let name = operators::name_of(&app, id.as_str()).await.or_console(&ctx)?.unwrap_or_default();
            Ok(render(StatusCode::OK, &TotpPage { c: Chrome::from(&ctx), name, secret, uri }))
        }
        None => Ok(see_other("/console/operators")),
    }
}
