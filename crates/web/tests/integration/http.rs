//! HTTP integration: walks F1 and F2 as a client against the real router, a real SMTP server on
//! loopback and a real store, reading the one-time passwords from the received mail.

use crate::common::{wrong_code, Backend, Opts, TestApp, PASSWORD};
use app::config::Limit;
use serde_json::json;
use time::Duration;

async fn full_api_flow(backend: Backend) {
    let t = TestApp::start(Opts { backend, ..Opts::default() }).await;
    let email = "hanako@example.com";
    let (id, code) = t.register_until_code(email, PASSWORD).await;
    let mails = t.mails_to(email);
    assert_eq!(mails[0].0, "【Mimoto】ワンタイムパスワードのお知らせ");
    assert!(mails[0].1.contains("みらい健康保険組合"));

    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["registration"]["state"], "completed");
    let token = v["session"]["token"].as_str().expect("token").to_string();

    let (s, me) = t.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["email"], email);
    assert_eq!(me["organization"]["insurer_number"], "133033");
    assert_eq!(me["organization"]["point_name"], "みらいポイント");

    // The code creates one account: the same request again (its answer lost) answers as it
    // did, for the same account (see `exactly_once`).
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    let again = v["session"]["token"].as_str().expect("token");
    assert_eq!(t.get("/api/v1/me", Some(again)).await.1["email"], email);

    // Logout ends the session.
    let r = t.api.delete(t.url("/api/v1/sessions/current")).bearer_auth(&token).send().await.expect("logout");
    assert_eq!(r.status().as_u16(), 204);
    let (s, v) = t.get("/api/v1/me", Some(&token)).await;
    assert_eq!(s, 401);
    insta::assert_json_snapshot!("api_unauthorized_ja", v);

    // Login: a wrong password and an unknown email get the same answer.
    let (s1, wrong_pw) = t.post("/api/v1/sessions", json!({"email": email, "password": "Sakura-Mochi-2027!"})).await;
    let (s2, unknown) = t.post("/api/v1/sessions", json!({"email": "nobody@example.com", "password": PASSWORD})).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_pw, unknown);
    insta::assert_json_snapshot!("api_invalid_credentials_ja", wrong_pw);

    // Email matching is case-insensitive; a new login gets a new token.
    let (s, v) = t.post("/api/v1/sessions", json!({"email": "Hanako@Example.com", "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    let token2 = v["token"].as_str().expect("token");
    assert_ne!(token2, token);
    assert_eq!(t.get("/api/v1/me", Some(token2)).await.0, 200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_login_logout_over_the_api_on_sqlite() {
    full_api_flow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_login_logout_over_the_api_on_postgres() {
    full_api_flow(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insurer_number_errors_are_distinct() {
    let t = TestApp::start(Opts::default()).await;
    let (_, flow) = t.post("/api/v1/registrations", json!({})).await;
    let id = flow["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/registrations/{id}/insurer");
    // Before choosing the organization type, the step is refused.
    assert_eq!(t.post(&path, json!({"insurer_number": "133033"})).await.0, 409);
    t.post(&format!("/api/v1/registrations/{id}/org-type"), json!({"org_type": "health_insurance"})).await;
    for (input, status, code) in [
        ("", 422, "insurer_number_empty"),
        ("13a033", 422, "insurer_number_not_digits"),
        ("13303", 422, "insurer_number_length"),
        ("133034", 422, "insurer_number_check_digit"),
        ("123456", 422, "insurer_number_check_digit"),
        ("01040013", 404, "unknown_organization"),
        ("131011", 409, "org_type_mismatch"),
    ] {
        let (s, v) = t.post(&path, json!({"insurer_number": input})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{input}: {v}");
        assert_eq!(v["error"]["field"], "insurer_number");
        if input == "133034" {
            insta::assert_json_snapshot!("api_insurer_number_check_digit_ja", v);
        }
    }
    let (s, v) = t.post(&path, json!({"insurer_number": "１３３０３３"})).await;
    assert_eq!(s, 200, "full-width digits are accepted: {v}");
    assert_eq!(v["state"], "org_verified");

    // English on request.
    let r = t
        .api
        .post(t.url(&path))
        .header("accept-language", "en-US,en;q=0.9")
        .json(&json!({"insurer_number": "133034"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 422);
    let v: serde_json::Value = r.json().await.expect("json");
    insta::assert_json_snapshot!("api_insurer_number_check_digit_en", v);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_and_missing_consents_are_refused() {
    let t = TestApp::start(Opts::default()).await;
    let id = t.registration_at_account("06132013").await;
    let account = format!("/api/v1/registrations/{id}/account");
    for (email, password, code) in [
        ("taro@example.com", "short", "password_too_short"),
        ("taro@example.com", "password123", "password_weak"),
        ("taro@example.com", "taro2024", "password_weak"),
        ("not-an-email", PASSWORD, "email_invalid"),
    ] {
        let (s, v) = t.post(&account, json!({"email": email, "password": password})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some(code)), "{password}: {v}");
    }
    let long = "あ".repeat(129);
    let (s, v) = t.post(&account, json!({"email": "taro@example.com", "password": long})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("password_too_long")));

    let (s, v) = t.post(&account, json!({"email": "taro@example.com", "password": PASSWORD})).await;
    assert_eq!(s, 200, "{v}");
    // An organization without its own points asks for two consents only.
    let docs: Vec<&str> =
        v["consents_required"].as_array().expect("consents").iter().filter_map(|c| c["doc"].as_str()).collect();
    assert_eq!(docs, ["platform_terms", "org_privacy"]);
    assert!(v["consents_required"][1]["label"].as_str().expect("label").contains("さくら商事健康保険組合"));
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/consents"), json!({"accepted": ["platform_terms"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("consents_missing")));
    assert_eq!(v["error"]["missing_consents"], json!(["org_privacy"]));
    assert!(t.mails_to("taro@example.com").is_empty(), "no code before every consent");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_code_is_refused_and_a_resent_one_works() {
    let t = TestApp::start(Opts::default()).await;
    let email = "expired@example.com";
    let (id, code) = t.register_until_code(email, PASSWORD).await;
    t.clock.advance(Duration::minutes(10));
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_expired")), "{v}");
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/resend"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let fresh = t.wait_code(email, 2).await;
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": fresh})).await;
    assert_eq!(s, 200, "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_try_is_refused_even_with_the_right_code() {
    let t = TestApp::start(Opts::default()).await;
    let email = "guesser@example.com";
    let (id, code) = t.register_until_code(email, PASSWORD).await;
    let verify = format!("/api/v1/registrations/{id}/verify");
    let wrong = wrong_code(&code);
    for remaining in [4, 3, 2, 1] {
        let (s, v) = t.post(&verify, json!({"code": wrong})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_wrong")), "{v}");
        assert_eq!(v["error"]["remaining_attempts"], remaining);
        if remaining == 4 {
            insta::assert_json_snapshot!("api_code_wrong_ja", v);
        }
    }
    let (s, v) = t.post(&verify, json!({"code": wrong})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_exhausted")), "fifth wrong try: {v}");
    insta::assert_json_snapshot!("api_code_exhausted_ja", v);
    let (s, v) = t.post(&verify, json!({"code": code})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_exhausted")), "sixth try, right code: {v}");
    // Malformed input is refused without spending the new code's tries.
    t.clock.advance(Duration::seconds(60));
    t.post(&format!("/api/v1/registrations/{id}/resend"), json!({})).await;
    let fresh = t.wait_code(email, 2).await;
    let (s, v) = t.post(&verify, json!({"code": "12ab"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_format")));
    let (s, v) = t.post(&verify, json!({"code": fresh})).await;
    assert_eq!(s, 200, "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_voids_the_old_code_and_has_a_cooldown() {
    let t = TestApp::start(Opts::default()).await;
    let email = "resend@example.com";
    let (id, old) = t.register_until_code(email, PASSWORD).await;
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/resend"), json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("resend_too_soon")), "{v}");
    t.clock.advance(Duration::seconds(60));
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/resend"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let new = t.wait_code(email, 2).await;
    if old != new {
        let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": old})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_wrong")), "old code must be void: {v}");
    }
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": new})).await;
    assert_eq!(s, 200, "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_email_is_refused_with_the_inquiry_link() {
    let t = TestApp::start(Opts::default()).await;
    t.register("dup@example.com", PASSWORD).await;
    let id = t.registration_at_account("133033").await;
    let (s, v) = t
        .post(&format!("/api/v1/registrations/{id}/account"), json!({"email": "DUP@example.com", "password": PASSWORD}))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("email_taken")), "{v}");
    insta::assert_json_snapshot!("api_email_taken_ja", v);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registrations_racing_for_one_email_end_with_one_account() {
    let t = TestApp::start(Opts::default()).await;
    let email = "race@example.com";
    let (id1, code1) = t.register_until_code(email, PASSWORD).await;
    let (id2, code2) = t.register_until_code(email, PASSWORD).await;
    let (p1, p2) = (format!("/api/v1/registrations/{id1}/verify"), format!("/api/v1/registrations/{id2}/verify"));
    let (a, b) = tokio::join!(t.post(&p1, json!({"code": code1})), t.post(&p2, json!({"code": code2})));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let loser = if a.0 == 409 { a.1 } else { b.1 };
    assert_eq!(loser["error"]["code"], "email_taken");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisional_registrations_expire() {
    let t = TestApp::start(Opts::default()).await;
    let (_, flow) = t.post("/api/v1/registrations", json!({})).await;
    let id = flow["id"].as_str().expect("id").to_string();
    t.clock.advance(Duration::hours(24));
    let (s, v) = t.get(&format!("/api/v1/registrations/{id}"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (410, Some("flow_expired")));
    insta::assert_json_snapshot!("api_flow_expired_ja", v);
    let (s, v) = t.get("/api/v1/registrations/00000000-0000-4000-8000-000000000000", None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("flow_not_found")));
    insta::assert_json_snapshot!("api_flow_not_found_ja", v);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_id_answers_as_an_unknown_one() {
    let t = TestApp::start(Opts::default()).await;
    let token = t.register("malformed-id@example.com", PASSWORD).await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    let answer = |path: String, lang: &'static str, auth: bool| {
        let req = t.api.get(t.url(&path)).header("accept-language", lang);
        let req = if auth { req.bearer_auth(&token) } else { req };
        async move {
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.expect("json"))
        }
    };
    for (prefix, auth) in [
        ("/api/v1/registrations", false),
        ("/api/v1/identity-verifications", true),
        ("/api/v1/ekyc-applications", true),
    ] {
        for lang in ["ja", "en"] {
            let expected = answer(format!("{prefix}/{unknown}"), lang, auth).await;
            assert_eq!((expected.0, expected.1["error"]["code"].as_str()), (404, Some("flow_not_found")), "{prefix}");
            for bad in ["not-an-id", "00000000-0000-4000-8000-00000000000Z", "00000000000040008000000000000000"] {
                assert_eq!(answer(format!("{prefix}/{bad}"), lang, auth).await, expected, "{prefix}/{bad} ({lang})");
            }
        }
    }
    let (s, v) = t.post(&format!("/api/v1/password-resets/{unknown}/resend"), json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("flow_not_found")));
    assert_eq!(t.post("/api/v1/password-resets/not-an-id/resend", json!({})).await, (s, v));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_never_reveals_accounts_and_ends_sessions() {
    let t = TestApp::start(Opts::default()).await;
    let email = "reset@example.com";
    let token = t.register(email, PASSWORD).await;

    // Unknown and known addresses get the same answer.
    let (s1, unknown) = t.post("/api/v1/password-resets", json!({"email": "ghost@example.com"})).await;
    let (s2, known) = t.post("/api/v1/password-resets", json!({"email": email})).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(unknown["state"], known["state"]);
    let rid = known["id"].as_str().expect("id");
    let code = t.wait_code(email, 2).await;
    let mails = t.mails_to(email);
    assert_eq!(mails[1].0, "【Mimoto】パスワード再設定のワンタイムパスワード");
    assert!(t.mails_to("ghost@example.com").is_empty(), "no mail for an unknown address");

    // A flow for an unknown address fails like a wrong code.
    let ghost = unknown["id"].as_str().expect("id");
    let (s, v) = t
        .post(
            &format!("/api/v1/password-resets/{ghost}/complete"),
            json!({"code": code, "new_password": "Kitsune-Udon-2027?"}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_wrong")));

    let complete = format!("/api/v1/password-resets/{rid}/complete");
    let (s, v) = t.post(&complete, json!({"code": code, "new_password": "password1"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("password_weak")), "policy applies: {v}");
    insta::assert_json_snapshot!("api_password_weak_ja", v);
    let (s, v) = t.post(&complete, json!({"code": wrong_code(&code), "new_password": "Kitsune-Udon-2027?"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_wrong")));
    assert!(v["error"]["remaining_attempts"].is_null(), "reset never tells tries left: {v}");
    let (s, v) = t.post(&complete, json!({"code": code, "new_password": "Kitsune-Udon-2027?"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "completed");

    assert_eq!(t.get("/api/v1/me", Some(&token)).await.0, 401, "old sessions end with a new password");
    assert_eq!(t.post("/api/v1/sessions", json!({"email": email, "password": PASSWORD})).await.0, 401);
    assert_eq!(t.post("/api/v1/sessions", json!({"email": email, "password": "Kitsune-Udon-2027?"})).await.0, 201);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited_per_email() {
    let mut opts = Opts::default();
    opts.limits.login_per_account_client = Limit::new(3, 900);
    let t = TestApp::start(opts).await;
    for _ in 0..3 {
        assert_eq!(
            t.post("/api/v1/sessions", json!({"email": "x@example.com", "password": "nope-nope-nope"})).await.0,
            401
        );
    }
    let r = t
        .api
        .post(t.url("/api/v1/sessions"))
        .json(&json!({"email": "X@example.com", "password": "nope-nope-nope"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("900"));
    let v: serde_json::Value = r.json().await.expect("json");
    insta::assert_json_snapshot!("api_rate_limited_ja", v);
    // Another address is not affected; the window ends.
    assert_eq!(
        t.post("/api/v1/sessions", json!({"email": "y@example.com", "password": "nope-nope-nope"})).await.0,
        401
    );
    t.clock.advance(Duration::seconds(901));
    assert_eq!(
        t.post("/api/v1/sessions", json!({"email": "x@example.com", "password": "nope-nope-nope"})).await.0,
        401
    );
    t.stop().await;
}

/// Login budgets count failures only (#16): a member who logs in more often than a budget
/// allows — a family, an office behind one address — is never refused, while failures from the
/// same client are still counted and limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_logins_spend_no_login_budget() {
    let mut opts = Opts::default();
    opts.limits.login_per_account_client = Limit::new(3, 900);
    opts.limits.login_per_ip = Limit::new(4, 900);
    let t = TestApp::start(opts).await;
    let email = "often@example.com";
    t.register(email, PASSWORD).await;
    let login = |password: &'static str| t.post("/api/v1/sessions", json!({"email": email, "password": password}));
    for n in 0..8 {
        assert_eq!(login(PASSWORD).await.0, 201, "successful login {n}");
    }
    // Failures still count: three on the account from this client, then it is refused…
    for _ in 0..3 {
        assert_eq!(login("nope-nope-nope").await.0, 401);
    }
    assert_eq!(login("nope-nope-nope").await.0, 429);
    // …and the refused attempt did not use the client's last hit: one more account can fail once.
    assert_eq!(
        t.post("/api/v1/sessions", json!({"email": "z@example.com", "password": "nope-nope-nope"})).await.0,
        401
    );
    assert_eq!(
        t.post("/api/v1/sessions", json!({"email": "w@example.com", "password": "nope-nope-nope"})).await.0,
        429
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_rate_limited_per_ip_and_per_email() {
    let mut opts = Opts::default();
    opts.limits.register_per_email = Limit::new(2, 3600);
    opts.limits.register_per_ip = Limit::new(6, 3600);
    let t = TestApp::start(opts).await;
    let id = t.registration_at_account("133033").await;
    let account = format!("/api/v1/registrations/{id}/account");
    for _ in 0..2 {
        let (s, _) = t.post(&account, json!({"email": "probe@example.com", "password": "weak"})).await;
        assert_eq!(s, 422);
    }
    let (s, v) = t.post(&account, json!({"email": "probe@example.com", "password": PASSWORD})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("rate_limited")), "per email: {v}");
    // Per IP: the flow start and the account step share the address's budget (6).
    let (s, _) = t.post(&account, json!({"email": "other@example.com", "password": PASSWORD})).await;
    assert_eq!(s, 200);
    let (s, _) = t.post("/api/v1/registrations", json!({})).await;
    assert_eq!(s, 201);
    let (s, v) = t.post("/api/v1/registrations", json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("rate_limited")), "per IP: {v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_mail_but_never_loses_it() {
    let t = TestApp::start(Opts { smtp_up: false, ..Opts::default() }).await;
    // The member is not blocked by the outage: the code mail is queued.
    queue_code_mail(&t, "outage@example.com").await;

    // The worker tries, fails and keeps the mail.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = t.api.get(t.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        if metrics.contains("mimoto_mail_failures_total") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "delivery was never attempted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(t.app.store.pending_mail_count().await.expect("count"), 1);

    // SMTP comes back on the same port; once the backoff has passed, the mail arrives.
    let listener = std::net::TcpListener::bind(("127.0.0.1", t.smtp_port)).expect("rebind smtp port");
    let inbox = crate::common::start_smtp(listener);
    t.clock.advance(Duration::seconds(16));
    t.app.mail_wake.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while inbox.lock().expect("inbox").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the queued mail was lost");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let data = inbox.lock().expect("inbox")[0].data.clone();
    let msg = mail_parser::MessageParser::default().parse(&data).expect("mail");
    assert!(crate::common::extract_code(&msg.body_text(0).expect("text")).is_some());
    // The sink has the mail a moment before the worker records the delivery.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while t.app.store.pending_mail_count().await.expect("count") != 0 {
        assert!(std::time::Instant::now() < deadline, "the delivered mail is still pending");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    t.stop().await;
}

/// Starts a registration up to the code mail (queued, not waited for); returns the flow id.
async fn queue_code_mail(t: &TestApp, email: &str) -> String {
    let id = t.registration_at_account("133033").await;
    t.post(&format!("/api/v1/registrations/{id}/account"), json!({"email": email, "password": PASSWORD})).await;
    let (s, v) = t
        .post(
            &format!("/api/v1/registrations/{id}/consents"),
            json!({"accepted": ["platform_terms", "org_privacy", "point_terms"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    id
}

/// Waits (bounded) until the unsent mails' attempt counts are `attempts`, each failed and
/// waiting out its backoff.
async fn wait_attempts(t: &TestApp, attempts: &[i32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let unsent = t.app.store.unsent_mails(10).await.expect("unsent");
        let now: Vec<i32> = unsent.iter().map(|m| m.attempts).collect();
        if now == attempts && unsent.iter().all(|m| m.retry_wait == 1) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "attempts {now:?}, wanted {attempts:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Issue #15, point 4: a mail that failed twice waits 30 s, a newer one 15 s; the relay comes
/// back and the newer one goes out — and with it the older one, at once, not when its own
/// backoff ends (an outage of minutes would otherwise deliver codes already expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_back_sends_the_waiting_queue_at_once() {
    let t = TestApp::start(Opts { smtp_up: false, ..Opts::default() }).await;
    queue_code_mail(&t, "first@example.com").await;
    wait_attempts(&t, &[1]).await;
    t.clock.advance(Duration::seconds(16));
    t.app.mail_wake.notify_one();
    wait_attempts(&t, &[2]).await;
    queue_code_mail(&t, "second@example.com").await;
    wait_attempts(&t, &[2, 1]).await;

    let listener = std::net::TcpListener::bind(("127.0.0.1", t.smtp_port)).expect("rebind smtp port");
    let inbox = crate::common::start_smtp(listener);
    // Only the second mail's backoff (15 s) has passed; the first one's (30 s) has not.
    t.clock.advance(Duration::seconds(16));
    t.app.mail_wake.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while inbox.lock().expect("inbox").len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the waiting mail was not sent when the relay came back");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(t.app.store.pending_mail_count().await.expect("count"), 0);
    assert_eq!(inbox.lock().expect("inbox").len(), 2, "each mail once");
    t.stop().await;
}

/// Issue #15, point 4: a code mail still queued when its code expires (an SMTP outage longer
/// than the code's 10 minutes) is never sent — the member asks for a new code, which arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_mail_is_not_sent_after_its_code_expired() {
    let t = TestApp::start(Opts { smtp_up: false, ..Opts::default() }).await;
    let email = "late@example.com";
    let id = queue_code_mail(&t, email).await;
    wait_attempts(&t, &[1]).await;

    let listener = std::net::TcpListener::bind(("127.0.0.1", t.smtp_port)).expect("rebind smtp port");
    let inbox = crate::common::start_smtp(listener);
    t.clock.advance(Duration::minutes(11));
    t.app.mail_wake.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.app.store.pending_mail_count().await.expect("count") > 0 {
        assert!(std::time::Instant::now() < deadline, "the expired code mail stayed pending");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(inbox.lock().expect("inbox").is_empty(), "an expired code was mailed");

    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/resend"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while inbox.lock().expect("inbox").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the new code mail did not arrive");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let data = inbox.lock().expect("inbox")[0].data.clone();
    let msg = mail_parser::MessageParser::default().parse(&data).expect("mail");
    let code = crate::common::extract_code(&msg.body_text(0).expect("text")).expect("a code");
    let (s, v) = t.post(&format!("/api/v1/registrations/{id}/verify"), json!({"code": code})).await;
    assert_eq!(s, 200, "the new code works: {v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints() {
    let t = TestApp::start(Opts::default()).await;
    let r = t.api.get(t.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status().as_u16(), 200);
    let r = t.api.get(t.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status().as_u16(), 200);
    let r = t.api.get(t.url("/metrics")).send().await.expect("metrics");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.expect("text");
    assert!(text.contains("mimoto_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/readyz\""), "{text}");
    let (s, v) = t.get("/api/v1/password-policy", None).await;
    assert_eq!(s, 200);
    assert_eq!((v["min_chars"].as_u64(), v["max_chars"].as_u64()), (Some(8), Some(128)));
    // Oversized bodies are refused before any handler.
    // Raw socket: the whole request is written before the answer is read, so the server's
    // early 413 (it may close without reading the body) cannot race the client's writing.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = "x".repeat(web::BODY_LIMIT + 1);
        let addr = t.base.trim_start_matches("http://").to_string();
        let mut sock = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let head = format!(
            "POST /api/v1/sessions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.expect("write head");
        let _ = sock.write_all(body.as_bytes()).await;
        let mut status = [0u8; 12];
        sock.read_exact(&mut status).await.expect("read status line");
        assert_eq!(&status, b"HTTP/1.1 413");
    }
    // Malformed JSON gets the API's error shape.
    let r = t
        .api
        .post(t.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 422);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "invalid_request");
    t.stop().await;
}

#[test]
fn openapi_document_is_stable() {
    let doc = web::api::openapi();
    let json = serde_json::to_value(&doc).expect("json");
    for path in
        ["/api/v1/registrations", "/api/v1/registrations/{id}/verify", "/api/v1/sessions", "/api/v1/password-resets"]
    {
        assert!(json["paths"].get(path).is_some(), "missing {path}");
    }
    insta::assert_json_snapshot!("openapi", json);
}

/// Answers made by the layers around the handlers are in the API's error shape too (issue #15,
/// point 1): a JSON body over the 64 KiB limit is refused by the body-limit layer from its
/// declared length, and the answer is the documented 413 `ErrorBody`, not plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_answers_in_the_error_shape() {
    let t = TestApp::start(Opts::default()).await;
    let doc: serde_json::Value =
        t.api.get(t.url("/api/v1/openapi.json")).send().await.expect("doc").json().await.expect("json");
    assert!(doc["paths"]["/api/v1/sessions"]["post"]["responses"]["413"].is_object(), "413 is documented");
    let big = format!(r#"{{"email": "a@example.com", "password": "{}"}}"#, "x".repeat(100 * 1024));
    let r = t
        .api
        .post(t.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .header("accept-language", "en")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let v: serde_json::Value = r.json().await.expect("a JSON body");
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("too large"), "{v}");
    // (Nothing more on this client: the server closed the connection it answered early on.)
    t.stop().await;
}
