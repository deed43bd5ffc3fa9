//! Passkeys as the step-up before health data (#13), the server's side: only on a public URL
//! with a domain name, only with health data open in the session, a ceremony bound to its
//! session and used once, and nothing but a verified authenticator answer accepted. The whole
//! ceremony with an authenticator runs in Chromium (`e2e/tests/health.test.mjs`, the DevTools
//! virtual authenticator).

use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::{passkeys, stepup};

use crate::common::browser::Browser;
use crate::common::ekyc::complete_f4;
use crate::common::{Opts, TestApp, PASSWORD};

const EMAIL: &str = "hanako@example.com";
const ANSWER: &str = "みどり図書館";

fn on_localhost() -> Opts {
    Opts {
        config: |c| c.public_url = c.public_url.as_ref().map(|u| u.replace("127.0.0.1", "localhost")),
        ..Opts::default()
    }
}

async fn member_after_f4(t: &TestApp) -> (String, Member) {
    let token = t.register(EMAIL, PASSWORD).await;
    t.verify_identity(&token).await;
    let m = authenticate(&t.app, &token).await.expect("auth").expect("member");
    complete_f4(t, &m, "思い出の図書館は？", ANSWER).await;
    (token, m)
}

/// A well-formed authenticator answer that no authenticator made.
const FORGED: &str = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","extensions":{},
  "response":{"attestationObject":"AAAA","clientDataJSON":"AAAA"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_need_a_domain_name() {
    let t = TestApp::start(Opts::default()).await;
    assert!(t.app.webauthn().is_none(), "http://127.0.0.1:… is an IP address");
    let (_, m) = member_after_f4(&t).await;
    assert!(matches!(passkeys::start_registration(&t.app, &m).await, Err(ServiceError::PasskeysUnavailable)));
    assert!(passkeys::start_step_up(&t.app, &m).await.expect("start").is_none(), "the question only");
    let b = Browser::new(&t);
    b.login(EMAIL, PASSWORD).await;
    assert_eq!(b.get("/passkeys").await.status, 404);
    let unlock = b.get("/health/unlock?next=checkups").await;
    assert!(unlock.has("思い出の図書館は？") && !unlock.has("passkey-options"), "{}", unlock.html);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_the_step_up_and_a_real_authenticator() {
    let t = TestApp::start(on_localhost()).await;
    assert!(t.app.webauthn().is_some());
    let (token, m) = member_after_f4(&t).await;

    // Health data not open in this session: no registration (a stolen password is not enough).
    assert!(matches!(passkeys::start_registration(&t.app, &m).await, Err(ServiceError::StepUpRequired)));
    let b = Browser::new(&t);
    b.login(EMAIL, PASSWORD).await;
    let page = b.get("/passkeys").await;
    assert!(page.url.ends_with("/health/unlock?next=passkeys"), "sent to the question first: {}", page.url);
    assert!(page.has("思い出の図書館は？"), "{}", page.html);

    stepup::answer(&t.app, &m, ANSWER, "127.0.0.1").await.expect("answer");
    let m = authenticate(&t.app, &token).await.expect("auth").expect("member");
    let (ceremony, options) = passkeys::start_registration(&t.app, &m).await.expect("start");
    let json = serde_json::to_value(&options).expect("json");
    assert_eq!(json["publicKey"]["rp"]["id"], "localhost", "{json}");
    assert_eq!(json["publicKey"]["authenticatorSelection"]["userVerification"], "required", "{json}");

    for garbage in ["", "{}", "not json", FORGED] {
        assert!(
            matches!(
                passkeys::finish_registration(&t.app, &m, &ceremony, garbage).await,
                Err(ServiceError::PasskeyFailed)
            ),
            "{garbage}"
        );
    }
    // Another session cannot finish this member's ceremony, nor another member's.
    let (other, _) = passkeys::start_registration(&t.app, &m).await.expect("start");
    let second = t.post("/api/v1/sessions", serde_json::json!({"email": EMAIL, "password": PASSWORD})).await;
    let second = authenticate(&t.app, second.1["token"].as_str().expect("token")).await.expect("auth").expect("member");
    assert!(matches!(
        passkeys::finish_registration(&t.app, &second, &other, FORGED).await,
        Err(ServiceError::PasskeyFailed)
    ));
    assert!(passkeys::list(&t.app, &m).await.expect("list").is_empty(), "nothing was registered");
    // Without a passkey the step-up is the question.
    assert!(passkeys::start_step_up(&t.app, &m).await.expect("start").is_none());
    t.stop().await;
}
