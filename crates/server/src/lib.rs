//! The Mimoto server: HTTP (pages and JSON API), background jobs, CLI commands.

pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod face_cli;
pub mod http;
pub mod i18n;
pub mod images;
pub mod jobs;
pub mod qr;
pub mod services;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::AppState;

/// Serves `app` on `listener` with the mail worker and retention jobs, until `shutdown`
/// turns true; in-flight requests finish first (graceful shutdown).
pub async fn serve(app: AppState, listener: TcpListener, shutdown: watch::Receiver<bool>) -> Result<(), app::StartError> {
    let mailer = mail::Mailer::new(&mail::MailConfig {
        from: app.config.mail_from.clone(),
        smtp_url: app.config.smtp_url.clone(),
        outbox_dir: app.config.outbox_dir(),
    })?;
    http::ops::prometheus();
    if app.config.ekyc_instruction_seed.is_some() {
        tracing::warn!("MIMOTO_EKYC_INSTRUCTION_SEED is set: eKYC liveness instructions are predictable; this is for tests only");
    }
    let worker = tokio::spawn(jobs::mail_worker(app.clone(), mailer, shutdown.clone()));
    let retention = tokio::spawn(jobs::retention(app.clone(), shutdown.clone()));
    let router = http::router(app);
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
