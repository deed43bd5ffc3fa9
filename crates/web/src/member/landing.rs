//! F0: the start page (with the app's QR code) and the language switch.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use axum_extra::extract::cookie::Cookie;
use serde::Deserialize;

use app::i18n::Locale;
use app::AppState;

use super::{ok, see_other, Chrome, Cx};
use crate::ctx::LANG_COOKIE;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(landing)).route("/lang/{code}", get(switch_language))
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing<'a> {
    c: Chrome,
    qr_svg: &'a str,
}

async fn landing(State(app): State<AppState>, Extension(ctx): Cx) -> Response {
    ok(&Landing { c: Chrome::from(&ctx), qr_svg: &app.qr_svg })
}

#[derive(Deserialize)]
struct LangQuery {
    next: Option<String>,
}

/// The language code in `/lang/{code}`: an unknown code means the default language.
struct LangCode(Locale);

impl<'de> Deserialize<'de> for LangCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(LangCode(Locale::parse(&String::deserialize(d)?).unwrap_or_default()))
    }
}

/// A path on this site and nothing else: never an open redirect. Browsers drop tabs and
/// newlines from URLs and read `\` as `/`, so `/\t/evil.example` would become
/// `//evil.example`; any whitespace, control character or backslash is refused, as is `//`.
fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\')
}

async fn switch_language(Path(LangCode(locale)): Path<LangCode>, Query(q): Query<LangQuery>) -> Response {
    let next = q.next.filter(|n| is_local_path(n)).unwrap_or_else(|| "/".to_string());
    let cookie = Cookie::build((LANG_COOKIE, locale.as_str()))
        .path("/")
        .same_site(axum_extra::extract::cookie::SameSite::Lax)
        .max_age(time::Duration::days(365))
        .build();
    let mut resp = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_same_site_paths_are_followed() {
        for ok in ["/", "/login", "/health?tab=1", "/a/b#c"] {
            assert!(super::is_local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/ /evil.example",
            "",
        ] {
            assert!(!super::is_local_path(bad), "{bad:?}");
        }
    }
}
