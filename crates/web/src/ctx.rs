//! The browser context of every page request: the session cookie (anonymous until login,
//! rotated at login and logout), the CSRF token derived from it, the language and the
//! signed-in member.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use app::crypto::{ct_eq_str, random_token};
use app::error::ServiceError;
use app::i18n::{Locale, Tr};
use app::services::auth::{self, Member, ABSOLUTE_TIMEOUT};
use app::{App, AppState};

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
    /// The CSRF tokens: the one this page's forms carry, and those they are checked against.
    pub csrf: CsrfTokens,
    pub tr: Tr,
    pub path: String,
    pub member: Option<Member>,
}

/// The domain of a `From` mailbox such as `Mimoto <no-reply@mimoto.example.jp>`: the pages
/// that advise members whose carrier mail takes chosen senders only name it.
pub fn mail_domain(from: &str) -> String {
    from.rsplit_once('@').map(|(_, d)| d.trim_end_matches(['>', ' ']).to_string()).unwrap_or_default()
}

impl Ctx {
    pub fn locale(&self) -> Locale {
        self.tr.locale
    }
}

/// The CSRF tokens a browser's forms may carry: MACs of its session cookie, the one under the
/// active MAC key (rendered into new pages) first, then those under the other configured keys,
/// so a page rendered before a MAC key rotation still submits.
#[derive(Clone)]
pub struct CsrfTokens(Vec<String>);

impl CsrfTokens {
    pub fn new(app: &App, purpose: &str, token: &str) -> Self {
        CsrfTokens(app.keys.macs_b64(purpose, token.as_bytes()))
    }

    /// The token new forms carry.
    pub fn current(&self) -> String {
        self.0.first().cloned().unwrap_or_default()
    }

    /// Constant-time check of a form's token (member pages and the console alike): every
    /// accepted token is compared, so the time does not tell which one matched.
    pub fn check(&self, given: &str) -> Result<(), ServiceError> {
        let mut ok = false;
        for expected in &self.0 {
            ok |= ct_eq_str(given, expected);
        }
        if !given.is_empty() && ok {
            Ok(())
        } else {
            Err(ServiceError::InvalidRequest("csrf".into()))
        }
    }
}

/// The shape of a browser token this server issues (a [`random_token`]): anything else in a
/// cookie is ignored and replaced.
pub fn valid_token(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn csrf_for(app: &App, sid: &str) -> CsrfTokens {
    CsrfTokens::new(app, "csrf", sid)
}

/// The members' session cookie: SameSite=Lax (links from mails open a signed-in page), kept
/// as long as a session can live.
const MEMBER_COOKIE: SessionCookie = SessionCookie {
    name: session_cookie_name,
    same_site: SameSite::Lax,
    max_age: Some(time::Duration::seconds(ABSOLUTE_TIMEOUT.whole_seconds())),
};

pub fn sid_cookie(app: &App, value: String) -> Cookie<'static> {
    MEMBER_COOKIE.build(app, value)
}

pub async fn browser_context(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let browser = MEMBER_COOKIE.read(&app, req.headers());
    let mut unavailable = None;
    let member = if browser.is_new {
        None
    } else {
        match auth::authenticate(&app, &browser.token).await {
            // An API token in the cookie is not a browser session: the two never stand in
            // for each other (the API refuses browser sessions likewise).
            Ok(m) => m.filter(|m| m.session.kind == auth::SessionKind::Browser.as_str()),
            // Without the database nobody can be told signed in or out: the page says so (503)
            // instead of sending a signed-in member to the login form.
            Err(e @ ServiceError::Unavailable(_)) => {
                unavailable = Some(e);
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "session look-up failed");
                None
            }
        }
    };
    let ctx = Ctx {
        csrf: csrf_for(&app, &browser.token),
        sid: browser.token.clone(),
        tr: Tr { locale: browser.locale },
        path: req.uri().path().to_string(),
        member,
    };
    if let Some(e) = unavailable {
        let mut resp = crate::member::PageError::new(e, &ctx).into_response();
        MEMBER_COOKIE.finish(&app, &mut resp, None, browser);
        return resp;
    }
    req.extensions_mut().insert(Arc::new(ctx));
    let mut resp = next.run(req).await;
    let replacement = resp.extensions_mut().remove::<SetSid>().map(|SetSid(v)| v);
    MEMBER_COOKIE.finish(&app, &mut resp, replacement, browser);
    resp
}

/// A kind of browser session cookie (the members' or the console's): HttpOnly, `Path=/`,
/// Secure and `__Host-` named when cookies are secure; its own name, SameSite and lifetime.
pub struct SessionCookie {
    /// The name, by whether cookies are Secure.
    pub name: fn(bool) -> &'static str,
    pub same_site: SameSite,
    /// `None`: a cookie that ends with the browser.
    pub max_age: Option<time::Duration>,
}

/// A browser as a context middleware first sees it: its token (from its cookie, or a fresh
/// one when it had none or one this server did not issue) and its language.
pub struct Browser {
    pub token: String,
    pub is_new: bool,
    pub locale: Locale,
}

impl SessionCookie {
    pub fn build(&self, app: &App, value: String) -> Cookie<'static> {
        let secure = app.config.cookie_secure();
        let mut cookie = Cookie::build(((self.name)(secure), value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(self.same_site);
        if let Some(age) = self.max_age {
            cookie = cookie.max_age(age);
        }
        cookie.build()
    }

    /// The browser behind a request.
    pub fn read(&self, app: &App, headers: &HeaderMap) -> Browser {
        let jar = CookieJar::from_headers(headers);
        let existing =
            jar.get((self.name)(app.config.cookie_secure())).map(|c| c.value().to_string()).filter(|v| valid_token(v));
        let is_new = existing.is_none();
        let locale = jar.get(LANG_COOKIE).and_then(|c| Locale::parse(c.value())).unwrap_or_default();
        Browser { token: existing.unwrap_or_else(random_token), is_new, locale }
    }

    /// After the handler: the cookie is set when the handler replaced the token (login,
    /// logout) or the browser had none; and no page is ever cached.
    pub fn finish(&self, app: &App, resp: &mut Response, replacement: Option<String>, browser: Browser) {
        let value = replacement.or(browser.is_new.then_some(browser.token));
        if let Some(v) = value {
            append_cookie(resp, &self.build(app, v));
        }
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Adds a `Set-Cookie` header for `cookie` to `resp`.
pub fn append_cookie(resp: &mut Response, cookie: &Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mail_domain_of_a_from_mailbox() {
        assert_eq!(super::mail_domain("Mimoto <no-reply@mimoto.example.jp>"), "mimoto.example.jp");
        assert_eq!(super::mail_domain("no-reply@mimoto.localhost"), "mimoto.localhost");
        assert_eq!(super::mail_domain("nobody"), "");
    }
}
