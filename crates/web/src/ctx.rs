//! The browser context of every page request: the session cookie (anonymous until login,
//! rotated at login and logout), the CSRF token derived from it, the language and the
//! signed-in member.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use app::{App, AppState};
use app::crypto::{ct_eq_str, random_token};
use app::error::ServiceError;
use app::i18n::{Locale, Tr};
use app::services::auth::{self, Member, ABSOLUTE_TIMEOUT};

pub const LANG_COOKIE: &str = "mimoto_lang";

pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-mimoto_sid"
    } else {
        "mimoto_sid"
    }
}

/// Put into a response's extensions to replace the session cookie (login, logout).
#[derive(Clone)]
pub struct SetSid(pub String);

#[derive(Clone)]
pub struct Ctx {
    pub sid: String,
    pub csrf: String,
    pub tr: Tr,
    pub path: String,
    pub member: Option<Member>,
}

impl Ctx {
    pub fn locale(&self) -> Locale {
        self.tr.locale
    }

    /// Constant-time check of a form's CSRF token against this browser's.
    pub fn check_csrf(&self, token: &str) -> Result<(), ServiceError> {
        check_csrf(token, &self.csrf)
    }
}

/// Constant-time check of a form's CSRF token against the expected one (member pages and the
/// operator console alike).
pub fn check_csrf(given: &str, expected: &str) -> Result<(), ServiceError> {
    if !given.is_empty() && ct_eq_str(given, expected) {
        Ok(())
    } else {
        Err(ServiceError::InvalidRequest("csrf".into()))
    }
}

/// The shape of a browser token this server issues (a [`random_token`]): anything else in a
/// cookie is ignored and replaced.
pub fn valid_token(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn csrf_for(app: &App, sid: &str) -> String {
    app.keys.mac_b64("csrf", sid.as_bytes())
}

pub fn sid_cookie(app: &App, value: String) -> Cookie<'static> {
    let secure = app.config.cookie_secure();
    Cookie::build((session_cookie_name(secure), value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(ABSOLUTE_TIMEOUT.whole_seconds()))
        .build()
}

pub async fn browser_context(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let name = session_cookie_name(app.config.cookie_secure());
    let existing = jar.get(name).map(|c| c.value().to_string()).filter(|v| valid_token(v));
    let is_new = existing.is_none();
    let sid = existing.unwrap_or_else(random_token);
    let locale = jar.get(LANG_COOKIE).and_then(|c| Locale::parse(c.value())).unwrap_or_default();
    let member = if is_new {
        None
    } else {
        match auth::authenticate(&app, &sid).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "session look-up failed");
                None
            }
        }
    };
    let ctx = Ctx {
        csrf: csrf_for(&app, &sid),
        sid,
        tr: Tr { locale },
        path: req.uri().path().to_string(),
        member,
    };
    let sid_now = ctx.sid.clone();
    req.extensions_mut().insert(Arc::new(ctx));
    let mut resp = next.run(req).await;
    let replacement = resp.extensions_mut().remove::<SetSid>();
    let cookie = match replacement {
        Some(SetSid(v)) => Some(sid_cookie(&app, v)),
        None if is_new => Some(sid_cookie(&app, sid_now)),
        None => None,
    };
    if let Some(c) = cookie {
        append_cookie(&mut resp, &c);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Adds a `Set-Cookie` header for `cookie` to `resp`.
pub fn append_cookie(resp: &mut Response, cookie: &Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
