//! The HTML pages over HTTP, as a browser without JavaScript would use them: CSRF on every
//! form, session cookie flags and rotation, security headers, the guide's labels.

use crate::common::browser::{Browser, Page};
use crate::common::{Opts, TestApp, PASSWORD};

fn flow_path(url: &str) -> String {
    let i = url.find("/register/").expect("on a registration page");
    url[i..].split('?').next().expect("path").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_and_f2_through_the_pages() {
    let t = TestApp::start(Opts::default()).await;
    let b = Browser::new(&t);
    let csrf = step_the_landing_page_has_a_safe_cookie_and_security_headers(&b).await;
    step_forms_without_the_csrf_token_are_refused(&b).await;
    let flow = step_the_insurer_number_is_checked_and_kept(&b, &csrf).await;
    step_account_and_consents_keep_what_was_typed(&b, &flow, &csrf).await;
    step_the_emailed_code_completes_the_registration(&t, &b, &flow, &csrf).await;
    step_sign_in_rotates_the_csrf_token_and_logout_ends_the_session(&b, &csrf).await;
    step_login_with_a_wrong_then_the_right_password(&b).await;
    step_english_on_request_and_never_an_open_redirect(&t, &b).await;
    t.stop().await;
}

/// The landing page: sign-up and login, the QR code, the session cookie's flags, the security
/// headers. Returns its CSRF token.
async fn step_the_landing_page_has_a_safe_cookie_and_security_headers(b: &Browser) -> String {
    let landing = b.get("/").await;
    assert_eq!(landing.status, 200);
    assert!(landing.has(">新規登録</button>") && landing.has(">ログイン</a>"));
    assert!(landing.has("<figure class=\"qr\">") && landing.has("<svg"), "QR code of the public URL");
    // Help is one tap away on every page (#16): the footer of the member pages.
    assert!(landing.has("<a href=\"/inquiry/new\">ヘルプ・お問い合わせ</a>"), "{}", landing.html);
    let sid = landing.set_cookies.iter().find(|c| c.starts_with("mimoto_sid=")).expect("session cookie").clone();
    assert!(sid.contains("HttpOnly") && sid.contains("SameSite=Lax") && sid.contains("Path=/"), "{sid}");
    assert!(!sid.contains("Secure"), "plain-HTTP localhost: Secure is off");
    for h in ["content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy"] {
        assert!(landing.headers.contains_key(h), "missing {h}");
    }
    assert!(landing
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("frame-ancestors 'none'")));
    landing.csrf()
}

async fn step_forms_without_the_csrf_token_are_refused(b: &Browser) {
    let forged = b.post("/register", &[]).await;
    assert_eq!(forged.status, 403);
    let forged = b.post("/register", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
}

/// Organization type, then the insurer number: a wrong check digit and an unknown number are
/// explained and the input kept; the right one shows the organization. Returns the flow's path.
async fn step_the_insurer_number_is_checked_and_kept(b: &Browser, csrf: &str) -> String {
    let org_type = b.post("/register", &[("csrf", csrf)]).await;
    assert_eq!(org_type.status, 200);
    assert!(org_type.has("団体選択") && org_type.has(">健康保険・共済組合または会社</button>"));
    let flow = flow_path(&org_type.url);

    let insurer = b.post(&format!("{flow}/org-type"), &[("csrf", csrf), ("org_type", "health_insurance")]).await;
    assert!(insurer.has("<label for=\"insurer_number\">団体ID（保険者番号）</label>"), "{}", insurer.html);
    let bad = b.post(&format!("{flow}/insurer"), &[("csrf", csrf), ("insurer_number", "133034")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.has("role=\"alert\"") && bad.has("保険者番号が正しくありません"));
    assert!(bad.has("value=\"133034\""), "input is kept");
    let unknown = b.post(&format!("{flow}/insurer"), &[("csrf", csrf), ("insurer_number", "01040013")]).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.has("登録されていません"));
    let ok = b.post(&format!("{flow}/insurer"), &[("csrf", csrf), ("insurer_number", "133033")]).await;
    assert!(ok.has("みらい健康保険組合") && ok.has(">アカウント作成をはじめる</a>"));
    flow
}

/// The account form explains the password policy and keeps the email after an error; the
/// consents keep checked boxes checked.
async fn step_account_and_consents_keep_what_was_typed(b: &Browser, flow: &str, csrf: &str) {
    let account = b.get(&format!("{flow}/account")).await;
    assert!(
        account.has("パスワード設定の条件")
            && account.has(">メールアドレス</label>")
            && account.has(">パスワード</label>")
    );
    // The mail advice names the domain to allow (from MIMOTO_MAIL_FROM).
    assert!(account.has("ドメイン「mimoto.localhost」からのメールを受信できるよう"), "{}", account.html);
    let weak = b
        .post(&format!("{flow}/account"), &[("csrf", csrf), ("email", "page@example.com"), ("password", "password")])
        .await;
    assert_eq!(weak.status, 422);
    assert!(weak.has("value=\"page@example.com\""), "the email is kept after an error");
    let consents = b
        .post(&format!("{flow}/account"), &[("csrf", csrf), ("email", "page@example.com"), ("password", PASSWORD)])
        .await;
    assert!(
        consents.has("Mimoto利用規約に同意する")
            && consents.has("みらい健康保険組合のプライバシーポリシーに同意する")
            && consents.has("みらいポイント利用規約に同意する")
    );
    let missing = b.post(&format!("{flow}/consents"), &[("csrf", csrf), ("platform_terms", "on")]).await;
    assert_eq!(missing.status, 422);
    assert!(missing.has("checked"), "checked boxes stay checked");
}

async fn step_the_emailed_code_completes_the_registration(t: &TestApp, b: &Browser, flow: &str, csrf: &str) {
    let code_page = b
        .post(
            &format!("{flow}/consents"),
            &[("csrf", csrf), ("platform_terms", "on"), ("org_privacy", "on"), ("point_terms", "on")],
        )
        .await;
    assert!(code_page.has(">ワンタイムパスワード</label>") && code_page.has("page@example.com"));
    assert!(code_page.has("ドメイン「mimoto.localhost」"), "{}", code_page.html);
    let code = t.wait_code("page@example.com", 1).await;
    let done = b.post(&format!("{flow}/code"), &[("csrf", csrf), ("code", &code)]).await;
    assert_eq!(done.status, 200);
    assert!(done.has("完了") && done.has("本人確認") && done.has("健診・医療アクセス認証"));
    assert!(done.has("<a class=\"button\" href=\"/identity\">本人確認へ進む</a>"), "{}", done.html);
    assert!(done.has("<a href=\"/inquiry/new\">ヘルプ・お問い合わせ</a>"));
}

/// Signed in: the menu; the old CSRF token no longer works. The CSRF token is derived from the
/// session id: the pre-sign-in token failing proves the id was rotated at sign-in.
async fn step_sign_in_rotates_the_csrf_token_and_logout_ends_the_session(b: &Browser, csrf: &str) {
    let menu = b.get("/menu").await;
    assert!(menu.has("みらい健康保険組合") && menu.has("page@example.com") && menu.has(">ログアウト</button>"));
    assert_ne!(menu.csrf(), csrf);
    assert_eq!(b.post("/logout", &[("csrf", csrf)]).await.status, 403);
    let out = b.post("/logout", &[("csrf", &menu.csrf())]).await;
    assert!(out.url.ends_with('/') && out.has(">新規登録</button>"));
    assert!(b.get("/menu").await.url.ends_with("/login"), "logged out");
}

async fn step_login_with_a_wrong_then_the_right_password(b: &Browser) {
    let login = b.get("/login").await;
    assert!(login.has(">ログインでお困りの場合</a>"));
    let csrf = login.csrf();
    let wrong =
        b.post("/login", &[("csrf", &csrf), ("email", "page@example.com"), ("password", "nope-nope-nope")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.has("メールアドレスまたはパスワードが正しくありません"));
    let menu = b.post("/login", &[("csrf", &csrf), ("email", "page@example.com"), ("password", PASSWORD)]).await;
    assert!(menu.url.ends_with("/menu") && menu.has(">ログアウト</button>"));
}

async fn step_english_on_request_and_never_an_open_redirect(t: &TestApp, b: &Browser) {
    let en = b.get("/lang/en?next=/login").await;
    assert!(en.url.ends_with("/menu") || en.has("Log in"));
    assert!(b.get("/").await.has(">Sign up</button>"));
    let off = b.get("/lang/ja?next=//evil.example").await;
    assert!(off.url.starts_with(&t.base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_email_page_links_to_the_inquiry_form() {
    let t = TestApp::start(Opts::default()).await;
    t.register("taken@example.com", PASSWORD).await;
    let b = Browser::new(&t);
    let csrf = b.get("/").await.csrf();
    let flow = flow_path(&b.post("/register", &[("csrf", &csrf)]).await.url);
    b.post(&format!("{flow}/org-type"), &[("csrf", &csrf), ("org_type", "health_insurance")]).await;
    b.post(&format!("{flow}/insurer"), &[("csrf", &csrf), ("insurer_number", "133033")]).await;
    let page = b
        .post(&format!("{flow}/account"), &[("csrf", &csrf), ("email", "taken@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 409);
    assert!(page.has("既に登録されています") && page.has("href=\"/inquiry/new\""), "{}", page.html);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_pages() {
    let t = TestApp::start(Opts::default()).await;
    t.register("forgot@example.com", PASSWORD).await;
    let b = Browser::new(&t);
    let form = b.get("/password-reset").await;
    let csrf = form.csrf();
    let code_page = b.post("/password-reset", &[("csrf", &csrf), ("email", "forgot@example.com")]).await;
    assert!(code_page.has(">新しいパスワード</label>") && code_page.has(">パスワードを再設定する</button>"));
    let ghost = b.post("/password-reset", &[("csrf", &csrf), ("email", "ghost@example.com")]).await;
    let id_of = |p: &Page| p.url.rsplit('/').next().expect("id").to_string();
    assert_eq!(
        ghost.html.replace(&id_of(&ghost), "ID"),
        code_page.html.replace(&id_of(&code_page), "ID"),
        "same page for unknown addresses"
    );
    let code = t.wait_code("forgot@example.com", 2).await;
    let path = code_page.url.split_once(&t.base).expect("local").1.to_string();
    let done = b.post(&path, &[("csrf", &csrf), ("code", &code), ("new_password", "Kitsune-Udon-2027?")]).await;
    assert!(done.has("パスワードを再設定しました"), "{}", done.html);
    let login =
        b.post("/login", &[("csrf", &csrf), ("email", "forgot@example.com"), ("password", "Kitsune-Udon-2027?")]).await;
    assert!(login.url.ends_with("/menu"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_outbox_page_only_in_demo_mode() {
    let t = TestApp::start(Opts::default()).await;
    let b = Browser::new(&t);
    assert_eq!(b.get("/dev/mail").await.status, 404, "not outside demo mode");
    t.stop().await;
}

/// A malformed id in a page's path gets exactly the page an unknown id gets, after the same
/// checks (CSRF, signed in) — typed ids changed nothing a member can see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_look_like_unknown_ids() {
    let t = TestApp::start(Opts::default()).await;
    t.register("ids@example.com", PASSWORD).await;
    let b = Browser::new(&t);
    let csrf = b.get("/").await.csrf();
    let unknown = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let same = |p: &Page, q: &Page, id: &str| {
        assert_eq!(p.status, q.status, "{}", p.url);
        assert_eq!(p.url.replace(id, "ID"), q.url.replace(unknown, "ID"));
        assert_eq!(p.html.replace(id, "ID"), q.html.replace(unknown, "ID"), "{}", p.url);
    };
    for bad in ["not-a-uuid", "0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5bd9cb469fa16570867728950e"] {
        for path in [
            "/register/{}",
            "/register/{}/account",
            "/password-reset/{}",
            "/identity/{}",
            "/ekyc/{}",
            "/ekyc/{}/images/{}",
        ] {
            let (p, q) = (b.get(&path.replace("{}", bad)).await, b.get(&path.replace("{}", unknown)).await);
            same(&p, &q, bad);
        }
        for path in [
            "/register/{}/resend",
            "/register/{}/code",
            "/password-reset/{}",
            "/identity/{}/confirm",
            "/ekyc/{}/submit",
        ] {
            let (p, q) = (
                b.post(&path.replace("{}", bad), &[("csrf", &csrf)]).await,
                b.post(&path.replace("{}", unknown), &[("csrf", &csrf)]).await,
            );
            same(&p, &q, bad);
            let (p, q) = (
                b.post(&path.replace("{}", bad), &[("csrf", "forged")]).await,
                b.post(&path.replace("{}", unknown), &[("csrf", "forged")]).await,
            );
            assert_eq!((p.status, q.status), (403, 403), "CSRF is checked first: {path}");
        }
    }
    let flow = b.get(&format!("/register/{unknown}")).await;
    assert_eq!(flow.status, 404);
    assert!(b.get("/identity/not-a-uuid").await.url.ends_with("/login"), "signed out: to the login page first");

    let b = Browser::new(&t);
    b.login("ids@example.com", PASSWORD).await;
    let csrf = b.get("/menu").await.csrf();
    for path in ["/identity/{}", "/ekyc/{}", "/ekyc/{}/images/{}", "/identity/{}?step=card"] {
        let (p, q) = (b.get(&path.replace("{}", "not-a-uuid")).await, b.get(&path.replace("{}", unknown)).await);
        same(&p, &q, "not-a-uuid");
        assert_eq!(p.status, 404, "{path}");
    }
    for path in ["/identity/{}/insurer", "/identity/{}/confirm", "/ekyc/{}/document", "/ekyc/{}/submit"] {
        let (p, q) = (
            b.post(&path.replace("{}", "not-a-uuid"), &[("csrf", &csrf)]).await,
            b.post(&path.replace("{}", unknown), &[("csrf", &csrf)]).await,
        );
        same(&p, &q, "not-a-uuid");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_say_what_happened() {
    let t = TestApp::start(Opts::default()).await;
    let b = Browser::new(&t);
    let missing = b.get("/no-such-page").await;
    assert_eq!(missing.status, 404);
    insta::assert_snapshot!("page_not_found_ja", missing.main_text());

    let forged = b.post("/register", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    insta::assert_snapshot!("page_csrf_refused_ja", forged.main_text());

    // A registration left for a day has expired: the page offers to start again.
    let csrf = b.get("/").await.csrf();
    let flow = flow_path(&b.post("/register", &[("csrf", &csrf)]).await.url);
    t.clock.advance(time::Duration::hours(24));
    let expired = b.get(&flow).await;
    assert_eq!(expired.status, 410, "{}", expired.html);
    insta::assert_snapshot!("page_flow_expired_ja", expired.main_text());
    t.stop().await;
}
