//! The HTTP edge of Mimoto: one router with the member pages, the JSON API under `/api/v1`,
//! the operator console under `/console` and the operational endpoints, wrapped in security
//! headers, body limits, timeouts and metrics. Handlers parse (extractors validate), call one
//! service of the `app` crate and render; service errors become HTTP statuses only here
//! ([`error`]).

pub mod api;
pub mod client;
pub mod console;
pub mod ctx;
pub mod error;
pub mod extract;
pub mod member;
pub mod ops;

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::header::{self, HeaderName, HeaderValue};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use app::AppState;
pub use client::ClientIp;

/// Forms and JSON bodies are small; image uploads get their own limit.
pub const BODY_LIMIT: usize = 64 * 1024;
/// eKYC image uploads (the face engine also limits pixels and dimensions).
pub const UPLOAD_LIMIT: usize = 12 * 1024 * 1024;
/// Health-record files uploaded in the console (the parsers cap entries, rows and inflated sizes).
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(app: AppState) -> Router {
    let secure = app.config.cookie_secure();
    let small = Router::new()
        .merge(member::routes(app.clone()))
        .merge(api::routes())
        .merge(ops::routes())
        .merge(console::routes(app.clone()))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT));
    let uploads = Router::new()
        .merge(api::upload_routes())
        .merge(member::upload_routes(app.clone()))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(UPLOAD_LIMIT));
    let imports = console::upload_routes(app.clone())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(IMPORT_LIMIT));
    let mut router = Router::new()
        .merge(small)
        .merge(uploads)
        .merge(imports)
        .with_state(app.clone())
        .layer(axum::middleware::from_fn(ops::track_metrics))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(api::layer_answers_as_errors));
    let headers: [(HeaderName, &'static str); 7] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (HeaderName::from_static("permissions-policy"), "camera=(self), microphone=(), geolocation=(), payment=()"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    if secure {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    router
}

/// Serves `app` on `listener` with the mail worker and retention jobs, until `shutdown`
/// turns true; in-flight requests finish first (graceful shutdown).
pub async fn serve(
    app: AppState,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> Result<(), app::StartError> {
    let mailer = mail::Mailer::new(&mail::MailConfig {
        from: app.config.mail_from.clone(),
        smtp_url: app.config.smtp_url.clone(),
        outbox_dir: app.config.outbox_dir(),
    })?
    .with_max_connections(app.config.mail_concurrency);
    if app.config.mail_lease_secs < 2 * mail::SMTP_TIMEOUT.as_secs() {
        tracing::warn!(
            lease_secs = app.config.mail_lease_secs,
            "MIMOTO_MAIL_LEASE_SECS is under twice the SMTP command timeout (30 s): with a slow relay \
             another node may claim and send a mail still being sent; this is for tests only"
        );
    }
    ops::prometheus();
    if app.config.ekyc_instruction_seed.is_some() {
        tracing::warn!(
            "MIMOTO_EKYC_INSTRUCTION_SEED is set: eKYC liveness instructions are predictable; this is for tests only"
        );
    }
    let worker = tokio::spawn(app::jobs::mail_worker(app.clone(), mailer, shutdown.clone()));
    let retention = tokio::spawn(app::jobs::retention(app.clone(), shutdown.clone()));
    let router = router(app);
    let mut stop = shutdown.clone();
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await?;
    let _ = worker.await;
    let _ = retention.await;
    Ok(())
}
