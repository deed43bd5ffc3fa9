//! Extractors that enforce the house rules before a handler runs.
//!
//! [`CsrfForm`] is the only way a browser form reaches a handler: it parses the
//! `application/x-www-form-urlencoded` body like axum's `Form`, then checks the form's `csrf`
//! field against the token of the page's context in constant time. A form handler cannot
//! forget the check, because without it there is no form. Which context — a member's browser
//! session ([`crate::ctx::Ctx`]) or an operator's console session — is the type parameter,
//! and that context also renders the refusal (a 403 page in the member's language).

use std::marker::PhantomData;
use std::sync::Arc;

use app::error::ServiceError;
use axum::extract::{FromRequest, RawForm, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::ctx::CsrfTokens;

/// A request context that issues CSRF tokens: the expected token of this browser, and how a
/// refused form is shown to it.
pub trait CsrfScope: Send + Sync + 'static {
    /// The tokens this context's forms may carry.
    fn expected_csrf(&self) -> &CsrfTokens;
    /// The response for a form this context refuses (wrong or missing token).
    fn refuse(&self, err: ServiceError) -> Response;
}

/// A form body of type `T` whose `csrf` field matched the token of the context `C`
/// (inserted into the request's extensions as `Arc<C>` by that context's middleware).
pub struct CsrfForm<T, C>(pub T, PhantomData<fn() -> C>);

impl<T, C> CsrfForm<T, C> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

impl<S, T, C> FromRequest<S> for CsrfForm<T, C>
where
    S: Send + Sync,
    T: DeserializeOwned,
    C: CsrfScope,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Some(ctx) = req.extensions().get::<Arc<C>>().cloned() else {
            tracing::error!("CsrfForm used on a route without its context middleware");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let RawForm(bytes) = RawForm::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        // Parsed first, as axum's `Form` would (same status for a malformed body).
        let value: T = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            (StatusCode::UNPROCESSABLE_ENTITY, format!("Failed to deserialize form body: {e}")).into_response()
        })?;
        let token: Token = serde_urlencoded::from_bytes(&bytes).unwrap_or(Token { csrf: String::new() });
        ctx.expected_csrf().check(&token.csrf).map_err(|e| ctx.refuse(e))?;
        Ok(CsrfForm(value, PhantomData))
    }
}

/// A form with nothing but its CSRF token (start, resend, logout buttons).
#[derive(Debug, Deserialize)]
pub struct Empty {}

/// The longest CSRF part a multipart form may start with.
const CSRF_PART_LIMIT: usize = 256;

/// Checks the CSRF token of a multipart upload form before anything else of the body is read:
/// the form's first part must be its `csrf` field (browsers send parts in the form's order,
/// and every upload template puts the token first). A forged or token-less upload is refused
/// after at most a few hundred bytes, never after its megabytes of images.
pub async fn multipart_csrf_first(
    mp: &mut axum::extract::Multipart,
    expected: &CsrfTokens,
) -> Result<(), ServiceError> {
    let csrf = ServiceError::InvalidRequest("csrf".into());
    let field = match mp.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf") => field,
        Ok(_) => return Err(csrf),
        Err(_) => return Err(ServiceError::InvalidRequest("multipart".into())),
    };
    let mut field = field;
    let mut token = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| ServiceError::InvalidRequest("multipart".into()))? {
        token.extend_from_slice(&chunk);
        if token.len() > CSRF_PART_LIMIT {
            return Err(csrf);
        }
    }
    expected.check(std::str::from_utf8(&token).unwrap_or(""))
}
