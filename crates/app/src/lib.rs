//! Mimoto's application layer: every flow (F0–F6) once, as services over the store, the
//! mailer, the face engine and the image store; the configuration, the keys and sealing
//! (`crypto`), the background jobs (mail outbox worker, retention), the messages in Japanese
//! and English (`i18n`), and the service error type that says what went wrong — code, field,
//! message, attempts left, whether to send the member to the customer center — but knows no
//! HTTP status. The HTTP edge (`web`) and the binary (`cli`) are thin layers over this crate;
//! nothing here depends on axum, hyper or tower.

pub mod config;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod i18n;
pub mod images;
pub mod jobs;
pub mod qr;
pub mod services;
pub mod state;

pub use state::{load_face_engine, App, AppState, StartError};
