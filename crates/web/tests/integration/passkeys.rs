//! Passkeys as the step-up before health data (#13), the server's side: only on a public URL
//! with a domain name, only with health data open in the session, a ceremony bound to its
//! session and used once, and nothing but a verified authenticator answer accepted. Over the
//! JSON API the whole ceremony runs against a software authenticator
//! (`common::authenticator`); in Chromium against the DevTools virtual authenticator
//! (`e2e/tests/health.test.mjs`).

use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::{passkeys, stepup};

use serde_json::{json, Value};

use crate::common::authenticator::Authenticator;
use crate::common::browser::Browser;
use crate::common::ekyc::complete_f4;
use crate::common::{Backend, Opts, TestApp, PASSWORD};

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

// ---------------------------------------------------------------------------------------
// The JSON API, with a software authenticator (`common::authenticator`)

/// A new API session of the member (another phone); its token.
async fn login(t: &TestApp) -> String {
    let (s, v) = t.post("/api/v1/sessions", json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// The origin a browser on the public URL would send.
fn origin(t: &TestApp) -> String {
    t.app.config.public_url.clone().expect("public URL")
}

async fn delete(t: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let r = t.api.delete(t.url(path)).bearer_auth(token).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

async fn open_with_question(t: &TestApp, token: &str) {
    let (s, v) = t.post_auth("/api/v1/health/step-up", token, json!({"answer": ANSWER})).await;
    assert_eq!((s, v["step_up"].as_str()), (200, Some("open")), "{v}");
}

/// Registration options for the session `token` (health data open there): (ceremony, options).
async fn registration_options(t: &TestApp, token: &str) -> (String, Value) {
    let (s, v) = t.post_auth("/api/v1/passkeys/registration-options", token, json!({})).await;
    assert_eq!(s, 200, "{v}");
    (v["ceremony"].as_str().expect("ceremony").to_string(), v["options"].clone())
}

/// Passkey step-up options for the session `token`: (ceremony, options).
async fn step_up_options(t: &TestApp, token: &str) -> (String, Value) {
    let (s, v) = t.post_auth("/api/v1/health/step-up/passkey-options", token, json!({})).await;
    assert_eq!(s, 200, "{v}");
    (v["ceremony"].as_str().expect("ceremony").to_string(), v["options"].clone())
}

async fn finish_step_up(t: &TestApp, token: &str, ceremony: &str, credential: &Value) -> (u16, Value) {
    t.post_auth("/api/v1/health/step-up/passkey", token, json!({"ceremony": ceremony, "credential": credential})).await
}

async fn checkups_status(t: &TestApp, token: &str) -> u16 {
    t.get("/api/v1/health/checkups", Some(token)).await.0
}

async fn api_story(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..on_localhost() }).await;
    let (token, _) = member_after_f4(&t).await;
    let origin = origin(&t);
    assert!(origin.starts_with("http://localhost:"), "{origin}");

    // Where the session stands: passkeys offered here, none registered yet.
    let (s, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["step_up"].as_str(),
            v["passkeys_available"].as_bool(),
            v["passkeys"].as_u64(),
            v["passkey_step_up"].as_bool()
        ),
        (Some("ask"), Some(true), Some(0), Some(false)),
        "{v}"
    );
    let (s, v) = t.get("/api/v1/passkeys", Some(&token)).await;
    assert_eq!((s, v["passkeys"].as_array().map(Vec::len), v["max"].as_u64()), (200, Some(0), Some(10)), "{v}");
    let (s, v) = t.post_auth("/api/v1/health/step-up/passkey-options", &token, json!({})).await;
    assert_eq!((s, code(&v)), (409, Some("no_passkeys")), "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("秘密の質問")), "{v}");

    // No registration before health data is open in this session (a stolen password is not enough).
    let (s, v) = t.post_auth("/api/v1/passkeys/registration-options", &token, json!({})).await;
    assert_eq!((s, code(&v)), (403, Some("step_up_required")), "{v}");
    // No bearer token, no passkeys.
    let (s, v) = t.post("/api/v1/passkeys/registration-options", json!({})).await;
    assert_eq!((s, code(&v)), (401, Some("unauthorized")), "{v}");

    open_with_question(&t, &token).await;
    let (ceremony, options) = registration_options(&t, &token).await;
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost", "{options}");
    assert_eq!(options["publicKey"]["authenticatorSelection"]["userVerification"], "required", "{options}");

    // An authenticator that did not verify the user is refused (and the ceremony is spent).
    let mut careless = Authenticator::new(&origin);
    careless.flags = 0;
    let credential = careless.create(&options);
    let (s, v) = t.post_auth("/api/v1/passkeys", &token, json!({"ceremony": ceremony, "credential": credential})).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "no UV: {v}");

    // A page on another origin (phishing) cannot register one either.
    let (ceremony, options) = registration_options(&t, &token).await;
    let mut phished = Authenticator::new(&origin);
    phished.origin = origin.replace("localhost", "evil.localhost");
    let credential = phished.create(&options);
    let (s, v) = t.post_auth("/api/v1/passkeys", &token, json!({"ceremony": ceremony, "credential": credential})).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "another origin: {v}");

    // A ceremony is finished only by the session that started it; then the real thing.
    let (ceremony, options) = registration_options(&t, &token).await;
    let mut phone = Authenticator::new(&origin);
    let credential = phone.create(&options);
    let other = login(&t).await;
    open_with_question(&t, &other).await;
    let body = json!({"ceremony": ceremony, "credential": credential});
    let (s, v) = t.post_auth("/api/v1/passkeys", &other, body.clone()).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "another session: {v}");
    let (s, created) = t.post_auth("/api/v1/passkeys", &token, body.clone()).await;
    assert_eq!(s, 201, "{created}");
    let passkey_id = created["id"].as_str().expect("id").to_string();
    assert!(created["created_at"].as_str().is_some() && created["last_used_at"].is_null(), "{created}");
    let (s, v) = t.post_auth("/api/v1/passkeys", &token, body).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "a ceremony is used once: {v}");
    t.wait_mail_about(EMAIL, "パスキーが登録されました").await;

    // The same credential again: excluded in the options, refused by the server anyway.
    let (ceremony, options) = registration_options(&t, &token).await;
    let excluded = options["publicKey"]["excludeCredentials"].as_array().expect("excludeCredentials");
    assert!(excluded.iter().any(|c| c["id"] == credential["id"]), "{options}");
    let again = phone.clone().create(&options);
    let (s, v) = t.post_auth("/api/v1/passkeys", &token, json!({"ceremony": ceremony, "credential": again})).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "duplicate: {v}");
    // Malformed bodies get the API's error shape.
    let (s, v) = t.post_auth("/api/v1/passkeys", &token, json!({"ceremony": ceremony})).await;
    assert_eq!((s, code(&v)), (422, Some("invalid_request")), "{v}");

    let (s, v) = t.get("/api/v1/passkeys", Some(&token)).await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["passkeys"].as_array().expect("passkeys").iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, [passkey_id.as_str()]);

    // A new session (the native app on another phone) opens health data with the passkey.
    let third = login(&t).await;
    let (s, v) = t.get("/api/v1/health", Some(&third)).await;
    assert_eq!(
        (s, v["step_up"].as_str(), v["passkeys"].as_u64(), v["passkey_step_up"].as_bool()),
        (200, Some("ask"), Some(1), Some(true)),
        "{v}"
    );
    assert_eq!(checkups_status(&t, &third).await, 403);
    let clone = phone.clone(); // the same private key and counter, copied now

    // A forged assertion (right credential id, wrong key) is refused.
    let (ceremony, options) = step_up_options(&t, &third).await;
    let forged = phone.with_other_key().get(&options);
    let (s, v) = finish_step_up(&t, &third, &ceremony, &forged).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "forged: {v}");
    assert_eq!(checkups_status(&t, &third).await, 403);

    // A ceremony started in one session cannot be finished in another.
    let (ceremony, options) = step_up_options(&t, &third).await;
    let assertion = phone.get(&options);
    let (s, v) = finish_step_up(&t, &other, &ceremony, &assertion).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "another session: {v}");

    // The real answer opens health data, with the same response as the question's step-up.
    let (s, v) = finish_step_up(&t, &third, &ceremony, &assertion).await;
    assert_eq!((s, v["step_up"].as_str(), v["passkey_step_up"].as_bool()), (200, Some("open"), Some(true)), "{v}");
    assert!(v["open_until"].as_str().is_some(), "{v}");
    assert_eq!(checkups_status(&t, &third).await, 200);
    let (_, v) = t.get("/api/v1/passkeys", Some(&third)).await;
    assert!(v["passkeys"][0]["last_used_at"].as_str().is_some(), "{v}");

    // Replays: the same answer again, and an old answer to a new challenge.
    let (s, v) = finish_step_up(&t, &third, &ceremony, &assertion).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "replayed: {v}");
    let fourth = login(&t).await;
    let (ceremony, _) = step_up_options(&t, &fourth).await;
    let (s, v) = finish_step_up(&t, &fourth, &ceremony, &assertion).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "old answer, new challenge: {v}");
    assert_eq!(checkups_status(&t, &fourth).await, 403);

    // A copied authenticator shows itself by its counter (not above the last one seen).
    let mut clone = clone;
    let (ceremony, options) = step_up_options(&t, &fourth).await;
    let cloned = clone.get(&options);
    assert_eq!(clone.counter, phone.counter, "the clone signs with a counter the server has seen");
    let (s, v) = finish_step_up(&t, &fourth, &ceremony, &cloned).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "cloned: {v}");
    assert_eq!(checkups_status(&t, &fourth).await, 403);

    // A passkey works while the question is locked.
    for _ in 0..5 {
        let (s, _) = t.post_auth("/api/v1/health/step-up", &fourth, json!({"answer": "タマ"})).await;
        assert!(s == 422 || s == 429, "{s}");
    }
    let (_, v) = t.get("/api/v1/health", Some(&fourth)).await;
    assert_eq!((v["step_up"].as_str(), v["passkey_step_up"].as_bool()), (Some("locked"), Some(true)), "{v}");
    let (ceremony, options) = step_up_options(&t, &fourth).await;
    let assertion = phone.get(&options);
    let (s, v) = finish_step_up(&t, &fourth, &ceremony, &assertion).await;
    assert_eq!((s, v["step_up"].as_str()), (200, Some("open")), "{v}");
    assert_eq!(checkups_status(&t, &fourth).await, 200);

    // Removal: only with health data open in the session, only the member's own.
    let fifth = login(&t).await;
    let (s, v) = delete(&t, &format!("/api/v1/passkeys/{passkey_id}"), &fifth).await;
    assert_eq!((s, code(&v)), (403, Some("step_up_required")), "{v}");
    let (s, v) = delete(&t, "/api/v1/passkeys/0f8fad5b-d9cb-469f-a165-70867728950e", &fourth).await;
    assert_eq!((s, code(&v)), (404, Some("flow_not_found")), "{v}");
    let (s, v) = delete(&t, &format!("/api/v1/passkeys/{passkey_id}"), &fourth).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = delete(&t, &format!("/api/v1/passkeys/{passkey_id}"), &fourth).await;
    assert_eq!((s, code(&v)), (404, Some("flow_not_found")), "removed already: {v}");
    let (_, v) = t.get("/api/v1/passkeys", Some(&fourth)).await;
    assert_eq!(v["passkeys"].as_array().map(Vec::len), Some(0), "{v}");
    let (_, v) = t.get("/api/v1/health", Some(&fifth)).await;
    assert_eq!((v["passkeys"].as_u64(), v["passkey_step_up"].as_bool()), (Some(0), Some(false)), "{v}");
    let (s, v) = t.post_auth("/api/v1/health/step-up/passkey-options", &fifth, json!({})).await;
    assert_eq!((s, code(&v)), (409, Some("no_passkeys")), "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_registers_uses_and_removes_passkeys_on_sqlite() {
    api_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_registers_uses_and_removes_passkeys_on_postgres() {
    api_story(Backend::Postgres).await;
}

/// A step-up ceremony started before the passkey was removed finds nothing to verify against;
/// at most 10 passkeys per member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_passkeys_and_the_limit_over_the_api() {
    let t = TestApp::start(on_localhost()).await;
    let (token, _) = member_after_f4(&t).await;
    let origin = origin(&t);
    open_with_question(&t, &token).await;
    let mut keys = Vec::new();
    for _ in 0..10 {
        let (ceremony, options) = registration_options(&t, &token).await;
        let mut a = Authenticator::new(&origin);
        let credential = a.create(&options);
        let (s, v) =
            t.post_auth("/api/v1/passkeys", &token, json!({"ceremony": ceremony, "credential": credential})).await;
        assert_eq!(s, 201, "{v}");
        keys.push((v["id"].as_str().expect("id").to_string(), a));
    }
    let (s, v) = t.post_auth("/api/v1/passkeys/registration-options", &token, json!({})).await;
    assert_eq!((s, code(&v)), (409, Some("passkey_limit")), "{v}");

    let other = login(&t).await;
    let (ceremony, options) = step_up_options(&t, &other).await;
    assert_eq!(options["publicKey"]["allowCredentials"].as_array().map(Vec::len), Some(10), "{options}");
    let (id, a) = &mut keys[3];
    let assertion = a.get(&options);
    let (s, v) = delete(&t, &format!("/api/v1/passkeys/{id}"), &token).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = finish_step_up(&t, &other, &ceremony, &assertion).await;
    assert_eq!((s, code(&v)), (422, Some("passkey_failed")), "a removed passkey: {v}");
    assert_eq!(checkups_status(&t, &other).await, 403);
    let (s, _) = t.post_auth("/api/v1/passkeys/registration-options", &token, json!({})).await;
    assert_eq!(s, 200, "room for one again");
    t.stop().await;
}

/// On a public URL that is an IP address, every passkey endpoint says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_says_passkeys_are_unavailable_on_an_ip_address() {
    let t = TestApp::start(Opts::default()).await;
    let (token, _) = member_after_f4(&t).await;
    let (s, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!(
        (s, v["passkeys_available"].as_bool(), v["passkeys"].as_u64(), v["passkey_step_up"].as_bool()),
        (200, Some(false), Some(0), Some(false)),
        "{v}"
    );
    open_with_question(&t, &token).await;
    let body = json!({"ceremony": "0f8fad5b-d9cb-469f-a165-70867728950e", "credential": {}});
    for (method, path) in [
        ("GET", "/api/v1/passkeys"),
        ("POST", "/api/v1/passkeys/registration-options"),
        ("POST", "/api/v1/passkeys"),
        ("DELETE", "/api/v1/passkeys/0f8fad5b-d9cb-469f-a165-70867728950e"),
        ("POST", "/api/v1/health/step-up/passkey-options"),
        ("POST", "/api/v1/health/step-up/passkey"),
    ] {
        let (s, v) = match method {
            "GET" => t.get(path, Some(&token)).await,
            "DELETE" => delete(&t, path, &token).await,
            _ => t.post_auth(path, &token, body.clone()).await,
        };
        assert_eq!((s, code(&v)), (404, Some("passkeys_unavailable")), "{method} {path}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("パスキーを利用できません")), "{v}");
    }
    let r = t
        .api
        .get(t.url("/api/v1/passkeys"))
        .bearer_auth(&token)
        .header("accept-language", "en")
        .send()
        .await
        .expect("request");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["message"], "Passkeys are not available here. Please use your secret question.", "{v}");
    t.stop().await;
}

/// Passkey answers are bounded per member (20 in 15 minutes), counted before anything is
/// verified, and every refused one is on the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_answers_cannot_be_sent_without_bound() {
    let t = TestApp::start(on_localhost()).await;
    let (token, m) = member_after_f4(&t).await;
    let bogus = json!({"id": "x", "rawId": "x", "type": "public-key", "response": {}});
    for n in 0..20 {
        let (s, v) = finish_step_up(&t, &token, "3f2504e0-4f89-41d3-9a0c-0305e82c3301", &bogus).await;
        assert_eq!(s, 422, "answer {n}: {v}");
    }
    let (s, v) = finish_step_up(&t, &token, "3f2504e0-4f89-41d3-9a0c-0305e82c3301", &bogus).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("rate_limited")), "{v}");
    assert_eq!(checkups_status(&t, &token).await, 403, "nothing opened");
    t.clock.advance(time::Duration::minutes(16));
    assert_eq!(finish_step_up(&t, &token, "3f2504e0-4f89-41d3-9a0c-0305e82c3301", &bogus).await.0, 422);
    let _ = m;
    t.stop().await;
}
