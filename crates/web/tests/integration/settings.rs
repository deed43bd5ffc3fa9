//! 「アカウント設定」 (#16 point 5): the password change (current password required, other
//! sessions ended, a notice mailed, wrong current passwords budgeted), the session list with
//! 「ログアウト」 and 「すべての端末からログアウト」, pages and API alike, on both backends.

use serde_json::{json, Value};

use crate::common::browser::{Browser, Page};
use crate::common::{Backend, Opts, TestApp, PASSWORD};

const EMAIL: &str = "settings@example.com";
const NEW_PASSWORD: &str = "Yuzu-Daifuku-2027?";
const ANDROID_CHROME: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// A following browser that says it is `user_agent`.
fn browser_as(t: &TestApp, user_agent: &str) -> Browser {
    let client = reqwest::Client::builder().cookie_store(true).user_agent(user_agent).build().expect("client");
    Browser { client, base: t.base.clone() }
}

/// Whether the browser is signed in (the menu answers, not the login form).
async fn signed_in(b: &Browser) -> bool {
    let menu = b.get("/menu").await;
    assert_eq!(menu.status, 200);
    !menu.url.ends_with("/login")
}

/// The public ids of the sessions listed on the settings page, in the page's order.
fn listed_sessions(page: &Page) -> Vec<String> {
    page.html
        .split("name=\"session\" value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().expect("value").to_string())
        .collect()
}

async fn api_login(t: &TestApp, password: &str, user_agent: &str) -> (u16, Value) {
    let r = t
        .api
        .post(t.url("/api/v1/sessions"))
        .header("user-agent", user_agent)
        .json(&json!({"email": EMAIL, "password": password}))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn api_delete(t: &TestApp, path: &str, token: &str) -> u16 {
    t.api.delete(t.url(path)).bearer_auth(token).send().await.expect("request").status().as_u16()
}

async fn password_change_ends_the_other_sessions(t: TestApp) {
    let app_token = t.register(EMAIL, PASSWORD).await;
    let phone = browser_as(&t, ANDROID_CHROME);
    let other = browser_as(&t, IPHONE_SAFARI);
    phone.login(EMAIL, PASSWORD).await;
    assert!(signed_in(&phone).await);
    other.login(EMAIL, PASSWORD).await;
    assert!(signed_in(&other).await);

    // 「アカウント設定」 from the menu.
    let menu = phone.get("/menu").await;
    assert!(menu.has("href=\"/settings\">アカウント設定</a>"), "{}", menu.html);
    let page = phone.get("/settings").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    assert!(page.has("パスワードの変更") && page.has("現在のパスワード") && page.has("新しいパスワード"));
    // Consents are withdrawn from the settings too (#16 point 8): the page links them.
    assert!(page.has("<a href=\"/consents\">同意の確認・撤回</a>"), "{}", page.html);

    // A wrong current password changes nothing; nor does a weak new one.
    let csrf = page.csrf();
    let wrong = phone
        .post(
            "/settings/password",
            &[("csrf", &csrf), ("current_password", "Not-The-Password-1"), ("new_password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.has("現在のパスワードが正しくありません。"), "{}", wrong.html);
    assert!(wrong.has("id=\"current_password\" name=\"current_password\" type=\"password\" autocomplete=\"current-password\" aria-invalid=\"true\""));
    let weak = phone
        .post("/settings/password", &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", "password")])
        .await;
    assert_eq!(weak.status, 422);
    assert!(signed_in(&other).await, "nothing changed yet");
    // Without the CSRF token: refused.
    let forged =
        phone.post("/settings/password", &[("current_password", PASSWORD), ("new_password", NEW_PASSWORD)]).await;
    assert_eq!(forged.status, 403);

    let done = phone
        .post("/settings/password", &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", NEW_PASSWORD)])
        .await;
    assert_eq!(done.status, 200);
    assert!(done.url.ends_with("/settings?done=password"), "{}", done.url);
    assert!(done.has("パスワードを変更しました。"), "{}", done.html);
    // This browser stays signed in; the other browser and the app session are out.
    assert!(signed_in(&phone).await);
    assert!(!signed_in(&other).await, "the other browser's cookie no longer opens anything");
    let (s, _) = t.get("/api/v1/me", Some(&app_token)).await;
    assert_eq!(s, 401);

    // The old password no longer logs in; the new one does.
    let fresh = Browser::new(&t);
    let refused = fresh.login(EMAIL, PASSWORD).await;
    assert_eq!(refused.status, 401);
    fresh.login(EMAIL, NEW_PASSWORD).await;
    assert!(signed_in(&fresh).await);

    // The notice, in the member's language.
    let mails = t.wait_mail_about(EMAIL, "パスワードが変更されました").await;
    let (_, text) = mails.iter().find(|(s, _)| s.contains("パスワードが変更されました")).expect("notice");
    assert!(text.contains("ログインでお困りの場合"), "{text}");
    assert!(!text.contains(NEW_PASSWORD));
    t.stop().await;
}

async fn the_session_list_ends_one_session_or_all(t: TestApp) {
    let app_token = t.register(EMAIL, PASSWORD).await;
    assert_eq!(api_delete(&t, "/api/v1/sessions/current", &app_token).await, 204);
    let phone = browser_as(&t, ANDROID_CHROME);
    let other = browser_as(&t, IPHONE_SAFARI);
    phone.login(EMAIL, PASSWORD).await;
    t.clock.advance(time::Duration::minutes(3));
    other.login(EMAIL, PASSWORD).await;

    let page = phone.get("/settings").await;
    let ids = listed_sessions(&page);
    assert_eq!(ids.len(), 2, "two browsers: {}", page.html);
    assert!(page.has("Chrome / Android") && page.has("Safari / iPhone"), "{}", page.html);
    assert!(page.has("この端末") && page.has("すべての端末からログアウト"));
    // The current session comes first; the ids are not the cookies.
    let current = page.html.find("Chrome / Android").expect("phone");
    assert!(current < page.html.find("Safari / iPhone").expect("other"), "this device first");
    for id in &ids {
        assert!(page.set_cookies.iter().all(|c| !c.contains(id.as_str())));
        assert_eq!(id.len(), 22, "128 bits, base64url: {id}");
    }

    // 「ログアウト」 of the other browser: it is signed out, this one is not.
    let done = phone.post("/settings/sessions/end", &[("csrf", &page.csrf()), ("session", &ids[1])]).await;
    assert!(done.url.ends_with("/settings?done=session"), "{}", done.url);
    assert!(done.has("ログアウトしました。"));
    assert_eq!(listed_sessions(&done), [ids[0].clone()]);
    assert!(!signed_in(&other).await);
    assert!(signed_in(&phone).await);
    // An id of no session of this member: not found, nothing ends.
    let unknown = phone.post("/settings/sessions/end", &[("csrf", &page.csrf()), ("session", &ids[1])]).await;
    assert_eq!(unknown.status, 404);
    assert!(signed_in(&phone).await);

    // Another member's session cannot be named.
    other.login(EMAIL, PASSWORD).await;
    let stranger_token = t.register("stranger@example.com", PASSWORD).await;
    let (s, theirs) = t.get("/api/v1/settings/sessions", Some(&stranger_token)).await;
    assert_eq!(s, 200, "{theirs}");
    let theirs = theirs["sessions"][0]["id"].as_str().expect("id").to_string();
    let refused = phone.post("/settings/sessions/end", &[("csrf", &page.csrf()), ("session", &theirs)]).await;
    assert_eq!(refused.status, 404);
    let (s, _) = t.get("/api/v1/me", Some(&stranger_token)).await;
    assert_eq!(s, 200, "the stranger is still signed in");

    // 「すべての端末からログアウト」: every session, this one too.
    let page = phone.get("/settings").await;
    assert_eq!(listed_sessions(&page).len(), 2);
    let out = phone.post("/settings/sessions/end-all", &[("csrf", &page.csrf())]).await;
    assert!(out.url.ends_with("/login"), "{}", out.url);
    assert!(!signed_in(&phone).await);
    assert!(!signed_in(&other).await);
    t.stop().await;
}

async fn the_api_changes_the_password_and_lists_and_ends_sessions(t: TestApp) {
    let token = t.register(EMAIL, PASSWORD).await;
    let (s, v) = api_login(&t, PASSWORD, ANDROID_CHROME).await;
    assert_eq!(s, 201, "{v}");
    let second = v["token"].as_str().expect("token").to_string();

    let (s, v) = t.get("/api/v1/settings/sessions", Some(&token)).await;
    assert_eq!(s, 200, "{v}");
    let sessions = v["sessions"].as_array().expect("sessions").clone();
    assert_eq!(sessions.len(), 2, "{v}");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[0]["kind"], "app");
    assert_eq!(sessions[1]["device"], "Chrome / Android");
    assert!(!v.to_string().contains(&token) && !v.to_string().contains(&second), "no token in the list");

    // Wrong current password: 422 on the field; the other session still works.
    let (s, v) = t
        .post_auth(
            "/api/v1/settings/password",
            &token,
            json!({"current_password": "Not-The-Password-1", "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("current_password_wrong"), Some("current_password"))
    );
    let (s, v) = t
        .post_auth(
            "/api/v1/settings/password",
            &token,
            json!({"current_password": PASSWORD, "new_password": "12345678"}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("password_weak")), "{v}");
    assert_eq!(t.get("/api/v1/me", Some(&second)).await.0, 200);

    let (s, v) = t
        .post_auth(
            "/api/v1/settings/password",
            &token,
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(t.get("/api/v1/me", Some(&second)).await.0, 401, "the other session ended");
    assert_eq!(t.get("/api/v1/me", Some(&token)).await.0, 200, "this one stays");
    assert_eq!(api_login(&t, PASSWORD, ANDROID_CHROME).await.0, 401);
    let (s, v) = api_login(&t, NEW_PASSWORD, IPHONE_SAFARI).await;
    assert_eq!(s, 201, "{v}");
    let third = v["token"].as_str().expect("token").to_string();
    t.wait_mail_about(EMAIL, "パスワードが変更されました").await;

    // End one session by its id, then all.
    let (_, v) = t.get("/api/v1/settings/sessions", Some(&token)).await;
    let other =
        v["sessions"].as_array().expect("sessions").iter().find(|s| s["current"] == false).expect("other").clone();
    assert_eq!(other["device"], "Safari / iPhone");
    let id = other["id"].as_str().expect("id");
    assert_eq!(api_delete(&t, &format!("/api/v1/settings/sessions/{id}"), &token).await, 204);
    assert_eq!(t.get("/api/v1/me", Some(&third)).await.0, 401);
    assert_eq!(api_delete(&t, &format!("/api/v1/settings/sessions/{id}"), &token).await, 404);
    assert_eq!(api_delete(&t, "/api/v1/settings/sessions", &token).await, 204);
    assert_eq!(t.get("/api/v1/me", Some(&token)).await.0, 401);
    t.stop().await;
}

const NEW_EMAIL: &str = "settings-new@example.com";

async fn an_email_change_is_confirmed_by_a_code_to_the_new_address(t: TestApp) {
    t.register(EMAIL, PASSWORD).await;
    t.register("taken@example.com", PASSWORD).await;
    let b = Browser::new(&t);
    b.login(EMAIL, PASSWORD).await;
    let page = b.get("/settings").await;
    assert!(page.has("メールアドレスの変更") && page.has(EMAIL), "{}", page.html);
    let csrf = page.csrf();

    // A wrong current password, or an address another account has: nothing is sent.
    let wrong = b
        .post(
            "/settings/email",
            &[("csrf", &csrf), ("new_email", NEW_EMAIL), ("current_password", "Not-The-Password-1")],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.has("現在のパスワードが正しくありません。"));
    let taken = b
        .post("/settings/email", &[("csrf", &csrf), ("new_email", "Taken@Example.com"), ("current_password", PASSWORD)])
        .await;
    assert_eq!(taken.status, 409);
    assert!(taken.has("このメールアドレスは既に登録されています。"), "{}", taken.html);
    assert!(t.mails_to(NEW_EMAIL).is_empty());

    let sent =
        b.post("/settings/email", &[("csrf", &csrf), ("new_email", NEW_EMAIL), ("current_password", PASSWORD)]).await;
    assert_eq!(sent.status, 200);
    assert!(sent.url.contains("/settings/email/"), "{}", sent.url);
    assert!(sent.has(&format!("{NEW_EMAIL} 宛に")), "{}", sent.html);
    let flow_path = sent.url.trim_start_matches(&t.base).to_string();
    let code = t.wait_code(NEW_EMAIL, 1).await;
    let (subject, _) = &t.mails_to(NEW_EMAIL)[0];
    assert!(subject.contains("メールアドレス変更"), "{subject}");

    // Another member cannot open this change.
    let stranger = Browser::new(&t);
    stranger.login("taken@example.com", PASSWORD).await;
    assert_eq!(stranger.get(&flow_path).await.status, 404);

    let wrong_code = crate::common::wrong_code(&code);
    let refused = b.post(&flow_path, &[("csrf", &sent.csrf()), ("code", &wrong_code)]).await;
    assert_eq!(refused.status, 422);
    assert!(refused.has("あと4回入力できます"), "{}", refused.html);
    let done = b.post(&flow_path, &[("csrf", &sent.csrf()), ("code", &code)]).await;
    assert!(done.url.ends_with("/settings?done=email"), "{}", done.url);
    assert!(done.has("メールアドレスを変更しました。") && done.has(NEW_EMAIL), "{}", done.html);
    // Used up: the same code does nothing more.
    assert_ne!(b.post(&flow_path, &[("csrf", &sent.csrf()), ("code", &code)]).await.status, 200);

    // The old address is told; only the new one logs in.
    let mails = t.wait_mail_about(EMAIL, "メールアドレスが変更されました").await;
    let (_, text) = mails.iter().find(|(s, _)| s.contains("メールアドレスが変更されました")).expect("notice");
    assert!(!text.contains(NEW_EMAIL), "the notice does not name the new address: {text}");
    let fresh = Browser::new(&t);
    assert_eq!(fresh.login(EMAIL, PASSWORD).await.status, 401);
    fresh.login(NEW_EMAIL, PASSWORD).await;
    assert!(signed_in(&fresh).await);
    t.stop().await;
}

async fn the_api_changes_the_email_address(t: TestApp) {
    let token = t.register(EMAIL, PASSWORD).await;
    let (s, other) = api_login(&t, PASSWORD, IPHONE_SAFARI).await;
    assert_eq!(s, 201, "{other}");
    let other = other["token"].as_str().expect("token").to_string();
    let (s, v) = t
        .post_auth(
            "/api/v1/settings/email",
            &token,
            json!({"new_email": NEW_EMAIL, "current_password": "Nope-Nope-123"}),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("current_password_wrong")), "{v}");
    let (s, v) = t
        .post_auth("/api/v1/settings/email", &token, json!({"new_email": NEW_EMAIL, "current_password": PASSWORD}))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let code = t.wait_code(NEW_EMAIL, 1).await;
    let verify = format!("/api/v1/settings/email/{id}/verify");
    let (s, v) = t.post_auth(&verify, &token, json!({"code": crate::common::wrong_code(&code)})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("code_wrong")), "{v}");
    assert_eq!(t.get("/api/v1/me", Some(&token)).await.1["email"], EMAIL, "unchanged");
    let (s, v) = t.post_auth(&verify, &token, json!({"code": code})).await;
    assert_eq!((s, v["completed"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(t.get("/api/v1/me", Some(&token)).await.1["email"], NEW_EMAIL);
    assert_eq!(t.get("/api/v1/me", Some(&other)).await.0, 401, "the change ends the member's other sessions");
    t.wait_mail_about(EMAIL, "メールアドレスが変更されました").await;
    assert_eq!(api_login(&t, PASSWORD, IPHONE_SAFARI).await.0, 401, "the old address no longer logs in");
    t.stop().await;
}

async fn the_language_preference_follows_the_member(t: TestApp) {
    let token = t.register(EMAIL, PASSWORD).await;
    let b = Browser::new(&t);
    b.login(EMAIL, PASSWORD).await;
    let page = b.get("/settings").await;
    assert!(page.has("表示言語") && page.has(r#"value="ja" checked"#), "{}", page.html);
    let saved = b.post("/settings/language", &[("csrf", &page.csrf()), ("language", "en")]).await;
    assert!(saved.url.ends_with("/settings?done=language"), "{}", saved.url);
    assert!(saved.has("Your language was saved.") && saved.has(r#"value="en" checked"#), "{}", saved.html);
    assert_eq!(t.get("/api/v1/settings/language", Some(&token)).await.1["language"], "en");

    // Another browser, Japanese until the member logs in: then English.
    let other = Browser::new(&t);
    let before = other.get("/login").await;
    assert!(before.has("<html lang=\"ja\">"), "{}", before.html);
    let menu = other.login(EMAIL, PASSWORD).await;
    assert!(menu.has("<html lang=\"en\">") && menu.has("Account settings"), "{}", menu.html);

    // Mails to the member follow it too.
    let (s, v) = t
        .post_auth(
            "/api/v1/settings/password",
            &token,
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let mails = t.wait_mail_about(EMAIL, "Your password was changed").await;
    assert!(mails.iter().all(|(s, _)| !s.contains("パスワードが変更されました")));

    // Over the API: only ja and en.
    let put = |language: &'static str| {
        let t = &t;
        let token = token.clone();
        async move {
            let r = t
                .api
                .put(t.url("/api/v1/settings/language"))
                .bearer_auth(&token)
                .json(&json!({"language": language}))
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(put("fr").await.0, 422);
    let (s, v) = put("ja").await;
    assert_eq!((s, v["language"].as_str()), (200, Some("ja")), "{v}");
    t.stop().await;
}

async fn a_login_from_a_new_browser_is_mailed(t: TestApp) {
    t.register(EMAIL, PASSWORD).await;
    let notices = || t.mails_to(EMAIL).into_iter().filter(|(s, _)| s.contains("新しい端末")).count();
    // The account's first browser is remembered without a notice, and is known afterwards.
    let phone = browser_as(&t, ANDROID_CHROME);
    let first = phone.login(EMAIL, PASSWORD).await;
    assert!(signed_in(&phone).await, "{}", first.url);
    let page = phone.get("/settings").await;
    phone.post("/logout", &[("csrf", &page.csrf())]).await;
    phone.login(EMAIL, PASSWORD).await;
    assert!(signed_in(&phone).await);
    // A wrong password from a new browser tells nothing.
    let other = browser_as(&t, IPHONE_SAFARI);
    assert_eq!(other.login(EMAIL, "Not-The-Password-1").await.status, 401);
    // A new browser: the member is told, with its device label.
    other.login(EMAIL, PASSWORD).await;
    assert!(signed_in(&other).await);
    let mails = t.wait_mail_about(EMAIL, "新しい端末からのログイン").await;
    let (_, text) = mails.iter().find(|(s, _)| s.contains("新しい端末")).expect("notice");
    assert!(text.contains("Safari / iPhone"), "{text}");
    // Once: the same browsers again tell nothing more.
    other.login(EMAIL, PASSWORD).await;
    phone.login(EMAIL, PASSWORD).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(notices(), 1);
    t.stop().await;
}

on_both_backends!(
    a_login_from_a_new_browser_is_mailed,
    the_language_preference_follows_the_member,
    an_email_change_is_confirmed_by_a_code_to_the_new_address,
    the_api_changes_the_email_address,
    password_change_ends_the_other_sessions,
    the_session_list_ends_one_session_or_all,
    the_api_changes_the_password_and_lists_and_ends_sessions,
);

/// Wrong current passwords are budgeted per account and client, like logins: past the limit
/// even the right one is refused (429) until the window ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_current_passwords_are_rate_limited() {
    let mut opts = Opts::default();
    opts.limits.login_per_account_client = app::config::Limit::new(3, 900);
    let t = TestApp::start(opts).await;
    let token = t.register(EMAIL, PASSWORD).await;
    let change = |current: &'static str| {
        let t = &t;
        let token = token.clone();
        async move {
            t.post_auth(
                "/api/v1/settings/password",
                &token,
                json!({"current_password": current, "new_password": NEW_PASSWORD}),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(change("Not-The-Password-1").await.0, 422);
    }
    let (s, v) = change(PASSWORD).await;
    assert_eq!((s, v["error"]["code"].as_str()), (429, Some("rate_limited")), "{v}");
    t.clock.advance(time::Duration::seconds(901));
    assert_eq!(change(PASSWORD).await.0, 204);
    t.stop().await;
}
