//! The application: configuration, store, keys, clock and the mail worker's wake-up signal,
//! shared by the HTTP handlers and the background jobs.

use std::sync::Arc;

use domain::clock::{Clock, SystemClock};
use store::Store;
use tokio::sync::Notify;

use crate::config::Config;
use crate::crypto::Keys;

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    /// Wakes the mail worker as soon as a mail is queued.
    pub mail_wake: Notify,
    /// A delivery failed transiently (relay unreachable or deferring) since the last success:
    /// the next success releases the mails waiting out a backoff.
    pub mail_relay_failed: std::sync::atomic::AtomicBool,
    /// The landing page's QR code of the public URL, rendered once.
    pub qr_svg: String,
    /// eKYC images, sealed (local folder `<data_dir>/images` by default).
    pub images: crate::images::ImageStore,
    /// This node as the owner of the console's import jobs (kept in the database).
    pub imports: crate::services::imports::ImportNode,
    /// OCR of identity documents (tesseract child processes, bounded).
    pub ocr: ocr::Ocr,
    /// `config.trusted_proxies`, parsed once.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// WebAuthn for passkeys; `None` when the public URL has no domain name (see [`App::webauthn`]).
    webauthn: Option<webauthn_rs::Webauthn>,
    /// The face engine, loaded on first use (see [`App::face`]).
    face: std::sync::OnceLock<Result<face::FaceEngine, String>>,
}

pub type AppState = Arc<App>;

fn build_webauthn(public_url: &str) -> Option<webauthn_rs::Webauthn> {
    let url = webauthn_rs::prelude::Url::parse(public_url).ok()?;
    let host = url.domain()?.to_string();
    match webauthn_rs::WebauthnBuilder::new(&host, &url).and_then(|b| b.rp_name("Mimoto").build()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("passkeys are off: {e}");
            None
        }
    }
}

/// The face engine as configured: the models in `models_dir`, checked against models.lock,
/// deciding at `face_threshold`.
pub fn load_face_engine(config: &Config) -> Result<face::FaceEngine, face::models::ModelError> {
    Ok(face::FaceEngine::load(&config.models_dir)?.with_threshold(config.face_threshold))
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
    #[error("image store: {0}")]
    Images(#[from] crate::images::ImageError),
    #[error("QR code: {0}")]
    Qr(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The audit log's chain keys, derived from each MAC key (retired ones included, for checking
/// old rows): the database never holds them. New rows are linked under the active key's.
fn audit_chain_keys(keys: &Keys) -> Result<store::audit_chain::ChainKeys, crate::crypto::CryptoError> {
    let (live, retired) = keys.derived_keys("audit-chain", b"v1");
    let mut live = live.into_iter();
    let active = live.next().ok_or_else(|| crate::crypto::CryptoError::Config("no secret key".into()))?;
    Ok(store::audit_chain::ChainKeys::new((&active.0, active.1), live).with_retired(retired))
}

impl App {
    /// Opens the store (running migrations), loads keys and renders the QR code.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = store::connect(&config.database_url()).await?;
        Self::with_store(config, store, clock)
    }

    pub fn with_store(config: Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
        let keys = Keys::from_config(&config)?;
        let trusted_proxies = config.trusted_proxies()?;
        store.set_audit_chain_keys(audit_chain_keys(&keys)?);
        let qr_svg = crate::qr::svg(&config.public_url()).map_err(StartError::Qr)?;
        let images = crate::images::ImageStore::from_config(&config, &keys)?;
        let ocr = ocr::Ocr::new(ocr::Settings {
            program: config.ocr_program.clone(),
            concurrency: config.ocr_concurrency,
            ..ocr::Settings::default()
        });
        let webauthn = build_webauthn(&config.public_url());
        Ok(Arc::new(App {
            config,
            store,
            keys,
            clock,
            mail_wake: Notify::new(),
            mail_relay_failed: std::sync::atomic::AtomicBool::new(false),
            qr_svg,
            images,
            imports: Default::default(),
            ocr,
            trusted_proxies,
            webauthn,
            face: std::sync::OnceLock::new(),
        }))
    }

    pub async fn open_default(config: Config) -> Result<AppState, StartError> {
        Self::open(config, Arc::new(SystemClock)).await
    }

    /// The face engine for eKYC, loaded once from `models_dir` with every model checked
    /// against models.lock. `Err` says which model is missing or altered and how to install
    /// it; eKYC features stay off rather than run on the wrong models.
    pub fn face(&self) -> Result<&face::FaceEngine, &str> {
        self.face
            .get_or_init(|| load_face_engine(&self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// WebAuthn for passkeys, with the public URL's host as relying party id and the URL as
    /// the only origin. `None` when the public URL has no domain name (an IP address):
    /// browsers refuse WebAuthn there, so passkeys are not offered (`localhost` works).
    pub fn webauthn(&self) -> Option<&webauthn_rs::Webauthn> {
        self.webauthn.as_ref()
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}
