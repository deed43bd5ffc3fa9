//! Console: login (password + TOTP) and logout. Both replace the console cookie.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{with_token, Chrome, ConsoleError, ConsoleForm, Cx, OrConsole};
use crate::error::ErrorStatus;
use crate::extract::Empty;
use crate::member::{render, see_other};
use crate::ClientIp;
use app::crypto::random_token;
use app::error::ServiceError;
use app::services::operators;
use app::AppState;

#[derive(Template)]
#[template(path = "console_login.html")]
struct LoginPage {
    c: Chrome,
    email: String,
    error: Option<String>,
}

pub(super) async fn login_form(Extension(ctx): Cx) -> Response {
    if ctx.operator.is_some() {
        return see_other("/console");
    }
    render(StatusCode::OK, &LoginPage { c: Chrome::from(&ctx), email: String::new(), error: None })
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

pub(super) async fn login(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    form: ConsoleForm<LoginForm>,
) -> Result<Response, ConsoleError> {
    let f = form.into_inner();
    match operators::login(&app, &f.email, &f.password, &f.code, &ip).await {
        Ok(session) => Ok(with_token(see_other("/console"), session.token)),
        Err(e @ (ServiceError::ConsoleLoginFailed | ServiceError::RateLimited { .. })) => {
            let page = LoginPage { c: Chrome::from(&ctx), email: f.email, error: Some(e.message(ctx.locale())) };
            let mut resp = render(e.status(), &page);
            if let ServiceError::RateLimited { retry_after } = e {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Ok(resp)
        }
        Err(e) => Err(e).or_console(&ctx),
    }
}

pub(super) async fn logout(
    State(app): State<AppState>,
    Extension(ctx): Cx,
    ClientIp(ip): ClientIp,
    _form: ConsoleForm<Empty>,
) -> Result<Response, ConsoleError> {
    if let Some(operator) = &ctx.operator {
        operators::logout(&app, &ctx.token, operator, &ip).await.or_console(&ctx)?;
    }
    Ok(with_token(see_other("/console/login"), random_token()))
}
