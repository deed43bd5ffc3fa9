//! The operator's side in tests: accounts made with the service (as `mimoto operator create`
//! does) and signing in to the console with the code an authenticator app would show.

use app::services::operators::{self, Role};
use domain::clock::Clock as _;

use super::browser::Browser;
use super::TestApp;

pub const OP_PASSWORD: &str = "Kanri-Sakura-Mochi-2026!";

pub struct OperatorAccount {
    pub email: String,
    pub otpauth_uri: String,
}

impl OperatorAccount {
    /// The code an authenticator app shows at `at`, computed from the provisioning URI.
    pub fn code_at(&self, at: time::OffsetDateTime) -> String {
        let totp = totp_rs::TOTP::from_url(&self.otpauth_uri).expect("a standard otpauth URI");
        totp.generate(at.unix_timestamp() as u64)
    }
}

pub async fn create_operator(t: &TestApp, email: &str, name: &str, role: Role) -> OperatorAccount {
    let created = operators::create(&t.app, email, name, role, OP_PASSWORD).await.expect("create operator");
    assert!(created.otpauth_uri.starts_with("otpauth://totp/Mimoto:"), "{}", created.otpauth_uri);
    assert!(
        created.otpauth_uri.contains(&format!("secret={}", created.totp_secret))
            && created.otpauth_uri.contains("issuer=Mimoto")
    );
    assert_eq!(created.totp_secret.len(), 32, "160 bits in base32");
    OperatorAccount { email: email.into(), otpauth_uri: created.otpauth_uri }
}

/// Signs in at the current time step; the next sign-in of this operator needs a later step.
pub async fn sign_in(t: &TestApp, b: &Browser, op: &OperatorAccount) {
    let page = b.console_login(&op.email, OP_PASSWORD, &op.code_at(t.clock.now())).await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/console")), "{}", page.html);
}
