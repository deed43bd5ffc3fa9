//! The operator console over HTTP, as a reviewer's browser uses it: a member's eKYC
//! application goes to review through the JSON API (images composed from the development set),
//! an operator created with the service logs in with password + TOTP (the code computed here
//! from the otpauth:// URI, as an authenticator app would), reviews the case with its images,
//! scores and roster data, and decides; the member gets the mail; everything is in the
//! append-only audit log.

use crate::common::browser::{Browser, Page};
use crate::common::console::{create_operator, sign_in, OperatorAccount, OP_PASSWORD};
use crate::common::ekyc::{face, http_upload, licence, png, selfie};
use crate::common::{Backend, Opts, TestApp, PASSWORD};
use app::config::Limit;
use app::error::ServiceError;
use app::services::operators::{self, Role};
use app::services::review::{self, DecisionInput};
use domain::clock::Clock as _;
use domain::ekyc::{Instruction, MouthState, Turn};
use image::{Rgb, RgbImage};
use rand::SeedableRng;
use serde_json::json;

/// A seed whose first drawn instruction is 「右向きで口を閉じる」 (the dev set has right-turned,
/// closed-mouth photos, and no open mouths): the app draws the angled-selfie instruction from
/// it (`ekyc_instruction_seed`, a test-only knob) instead of the OS's CSPRNG.
const RIGHT_CLOSED_SEED: u64 = 3;

fn right_closed() -> Instruction {
    Instruction { turn: Turn::Right, mouth: MouthState::Closed }
}

#[test]
fn the_seed_draws_right_and_closed() {
    let found =
        (0..1000u64).find(|s| Instruction::random(&mut rand::rngs::StdRng::seed_from_u64(*s)) == right_closed());
    assert_eq!(
        Instruction::random(&mut rand::rngs::StdRng::seed_from_u64(RIGHT_CLOSED_SEED)),
        right_closed(),
        "use {found:?}"
    );
}

pub(crate) fn opts() -> Opts {
    Opts {
        config: |c| {
            c.ekyc_instruction_seed = Some(RIGHT_CLOSED_SEED);
            // No application is approved without a human: every one goes to the console.
            c.ekyc_auto_margin = 0.5;
        },
        ..Opts::default()
    }
}

// ---------------------------------------------------------------------------------------
// The member's side, over the JSON API

pub(crate) struct Application {
    pub(crate) token: String,
    pub(crate) id: String,
    /// The bytes uploaded, by capture name, to compare with what the console serves.
    uploaded: Vec<(&'static str, Vec<u8>)>,
}

/// A member (registered, F3 done) walks F4 over the JSON API: a driving licence with the back,
/// first someone else's face (「顔写真が一致しません」 with the tries left), then their own, the
/// angled photo as instructed, the secret question — and the submission goes to review.
pub(crate) async fn application_in_review(t: &TestApp, email: &str) -> Application {
    let token = t.register(email, PASSWORD).await;
    t.verify_identity(&token).await;
    let (s, v) = t.post_auth("/api/v1/ekyc-applications", &token, json!({})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let (s, v) = t
        .post_auth(&format!("/api/v1/ekyc-applications/{id}/document"), &token, json!({"kind": "drivers_license"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let front = licence("leonard/leonard1.png");
    let (s, v) = http_upload(t, &token, &id, "document_front", front.clone()).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("front_captured")), "{v}");
    let (s, v) =
        t.post_auth(&format!("/api/v1/ekyc-applications/{id}/remarks"), &token, json!({"has_entries": true})).await;
    assert_eq!((s, v["next_capture"].as_str()), (200, Some("document_back")), "{v}");
    let back = png(&RgbImage::from_pixel(1024, 640, Rgb([220, 222, 218])));
    let (s, v) = http_upload(t, &token, &id, "document_back", back.clone()).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.post_auth(&format!("/api/v1/ekyc-applications/{id}/confirm-document"), &token, json!({})).await;
    assert_eq!((s, v["next_capture"].as_str()), (200, Some("selfie_frontal")), "{v}");

    // Someone else: refused, with the attempts left.
    let (s, v) = http_upload(t, &token, &id, "selfie_frontal", selfie(&face("penny/penny2.png"))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("face_mismatch")), "{v}");
    let left = domain::ekyc::MAX_FACE_ATTEMPTS - 1;
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains(&format!("あと{left}回"))), "{v}");

    let frontal = selfie(&face("leonard/leonard2.png"));
    let (s, v) = http_upload(t, &token, &id, "selfie_frontal", frontal.clone()).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("frontal_verified")), "{v}");
    assert_eq!(v["instruction"]["label"], "右向きで口を閉じる", "{v}");
    let angled = selfie(&face("leonard/leonard3.png"));
    let (s, v) = http_upload(t, &token, &id, "selfie_angled", angled.clone()).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("angled_verified")), "{v}");
    let (s, v) = t
        .post_auth(
            &format!("/api/v1/ekyc-applications/{id}/secret"),
            &token,
            json!({"question": "最初に飼ったペットの名前", "answer": "ポチのおうち"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.post_auth(&format!("/api/v1/ekyc-applications/{id}/submit"), &token, json!({})).await;
    assert_eq!(
        (s, v["state"].as_str(), v["authenticated"].as_bool()),
        (200, Some("pending_review"), Some(false)),
        "{v}"
    );
    assert_eq!(v["reference"].as_str(), Some(app::services::reference(&id).as_str()), "{v}");
    assert!(v["submitted_at"].is_string() && v["decided_at"].is_null(), "{v}");
    // 申請 sends a receipt: the 受付番号 (the id's first 8 characters) and the review time.
    let mails = t.wait_mail_about(email, "お申し込みを受け付けました").await;
    let (subject, text) = mails.last().expect("receipt");
    assert_eq!(subject, "【Mimoto】健診・医療アクセス認証のお申し込みを受け付けました");
    let reference: String = id.chars().filter(char::is_ascii_alphanumeric).take(8).collect::<String>().to_uppercase();
    assert!(text.contains(&format!("受付番号: {reference}")), "{text}");
    assert!(text.contains(&format!("通常{}営業日以内", t.app.config.ekyc_review_days)), "{text}");
    Application {
        token,
        id,
        uploaded: vec![
            ("document_front", front),
            ("document_back", back),
            ("selfie_frontal", frontal),
            ("selfie_angled", angled),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// The operator's browser

fn ekyc_mails(t: &TestApp, email: &str) -> Vec<(String, String)> {
    // The decisions' mails (not the 申請 receipt).
    t.mails_to(email)
        .into_iter()
        .filter(|(subject, _)| subject.contains("健診・医療アクセス認証") && !subject.contains("受け付けました"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Stories

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_to_review_and_an_operator_approves_it_in_the_console() {
    let t = TestApp::start(opts()).await;
    let a = application_in_review(&t, "hanako@example.com").await;
    step_the_member_sees_the_reference_and_date_while_reviewed(&t, &a).await;
    let reviewer = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let b = Browser::not_following(&t);
    step_nothing_under_console_without_a_session(&b).await;
    step_wrong_code_and_wrong_password_get_the_same_answer(&t, &b, &reviewer).await;
    step_the_right_code_logs_in_once(&t, &b, &reviewer).await;
    step_the_queue_lists_the_case(&t, &b, &a).await;
    let (case, loaded) = step_the_case_page_shows_roster_images_and_scores(&t, &b, &a).await;
    let image_ids = step_the_images_are_served_as_uploaded(&t, &b, &a, &loaded).await;
    step_approve_mails_the_member_once(&t, &b, &a, &case).await;
    step_the_audit_log_has_views_and_decision_without_personal_data(&t, &a, &image_ids).await;
    step_only_administrators_read_the_audit_log(&t, &b, &admin).await;
    step_logout_ends_the_console_session(&b).await;
    t.stop().await;
}

/// While the case waits, the member's org menu says since when and its 受付番号, and the
/// result page gives both with the expected review time.
async fn step_the_member_sees_the_reference_and_date_while_reviewed(t: &TestApp, a: &Application) {
    let m = Browser::new(t);
    assert_eq!(m.login("hanako@example.com", PASSWORD).await.status, 200);
    let reference = app::services::reference(&a.id);
    let date = app::services::jst_date(t.clock.now());
    let menu = m.get("/menu/org").await;
    let status = format!("健診・医療アクセス認証を確認中です（{date} 申請・受付番号 {reference}）");
    assert!(menu.has(&status), "{status}\n{}", menu.html);
    let result = m.get(&format!("/ekyc/{}", a.id)).await;
    assert!(result.has("申請を受け付けました") && result.has(&format!("受付番号: {reference}")), "{}", result.html);
    assert!(result.has("通常3営業日以内"), "{}", result.html);
}

/// Nothing under /console without a console session; the login form and its cookie.
async fn step_nothing_under_console_without_a_session(b: &Browser) {
    let anon = b.get("/console").await;
    assert_eq!((anon.status, anon.location.as_deref()), (303, Some("/console/login")));
    let form = b.get("/console/login").await;
    assert!(
        form.has("<label for=\"email\">") && form.has("<label for=\"password\">") && form.has("<label for=\"code\">"),
        "{}",
        form.html
    );
    let cookie = anon.set_cookies.iter().find(|c| c.starts_with("mimoto_op=")).expect("console cookie").clone();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Max-Age"), "ends with the browser: {cookie}");
    assert_eq!(form.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
}

/// Wrong code, wrong password: the same answer, not saying which.
async fn step_wrong_code_and_wrong_password_get_the_same_answer(t: &TestApp, b: &Browser, reviewer: &OperatorAccount) {
    let now = t.clock.now();
    let wrong = crate::common::wrong_code(&reviewer.code_at(now));
    let refused = b.console_login(&reviewer.email, OP_PASSWORD, &wrong).await;
    assert_eq!(refused.status, 401);
    assert!(refused.has("メールアドレス、パスワード、または認証コードが正しくありません。"), "{}", refused.html);
    let refused2 = b.console_login(&reviewer.email, "Wrong-Password-2026!", &reviewer.code_at(now)).await;
    assert_eq!(refused2.status, 401);
    assert!(refused2.has("メールアドレス、パスワード、または認証コードが正しくありません。"));
    let unknown = b.console_login("nobody@mimoto.example.jp", OP_PASSWORD, &reviewer.code_at(now)).await;
    assert_eq!(unknown.status, 401);
}

/// The right code logs in once: the same code again (a replay) is refused.
async fn step_the_right_code_logs_in_once(t: &TestApp, b: &Browser, reviewer: &OperatorAccount) {
    let now = t.clock.now();
    sign_in(t, b, reviewer).await;
    let replay_browser = Browser::not_following(t);
    let replay = replay_browser.console_login(&reviewer.email, OP_PASSWORD, &reviewer.code_at(now)).await;
    assert_eq!(replay.status, 401, "a used time step is not accepted twice");
}

/// The queue lists the case with its organization and submission time.
async fn step_the_queue_lists_the_case(t: &TestApp, b: &Browser, a: &Application) {
    let queue = b.get("/console").await;
    assert_eq!(queue.status, 200, "{}", queue.html);
    assert!(queue.has(&format!("href=\"/console/reviews/{}\"", a.id)), "{}", queue.html);
    assert!(queue.has("みらい健康保険組合") && queue.has("運転免許証"));
    assert!(queue.has(&jst(t.clock.now())), "submitted time (Japan):\n{}", queue.html);
}

/// The case page: roster data, images, instruction, every score against the thresholds.
async fn step_the_case_page_shows_roster_images_and_scores(
    t: &TestApp,
    b: &Browser,
    a: &Application,
) -> (Page, app::services::ekyc::Loaded) {
    let member = app::services::auth::authenticate(&t.app, &a.token).await.expect("auth").expect("member");
    let loaded = app::services::ekyc::load(&t.app, &member, &a.id).await.expect("load");
    let scores = loaded.data.app.scores.expect("scores");
    let case = b.get(&format!("/console/reviews/{}", a.id)).await;
    assert_eq!(case.status, 200, "{}", case.html);
    assert_eq!(case.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    for text in ["ヤマダ　ハナコ", "1990-04-01", "133033", "1234", "5678", "右向きで口を閉じる", "運転免許証"]
    {
        assert!(case.has(text), "{text} missing:\n{}", case.html);
    }
    for s in [scores.document_frontal, scores.document_angled, scores.frontal_angled] {
        assert!(case.has(&format!("<td>{s:.3}</td>")), "score {s:.3} missing:\n{}", case.html);
    }
    // What OCR read on the licence (平成2年4月1日生 = the roster's birth date) beside the roster,
    // and the reviewer's checklist.
    let reading = loaded.data.document_reading.as_ref().expect("read");
    assert_eq!(reading.check.birth_date, domain::evidence::BirthDateCheck::Match, "{reading:?}");
    for text in [
        "本人確認書類の読み取り（OCR）",
        "読み取った生年月日",
        "信頼度",
        "氏名（漢字）",
        "氏名が一致",
        "生年月日が一致",
        "顔が一致",
    ] {
        assert!(case.has(text), "{text} missing:\n{}", case.html);
    }
    let threshold = t.app.config.face_threshold;
    let bar = threshold + t.app.config.ekyc_auto_margin;
    assert!(
        case.has(&format!("{threshold:.2}")) && case.has(&format!("{bar:.2}")),
        "threshold and automatic approval bar"
    );
    assert!(
        [scores.document_frontal, scores.document_angled, scores.frontal_angled].iter().any(|s| *s < bar),
        "{scores:?} needed review"
    );
    for (capture, _) in &a.uploaded {
        let (_, image_id) = loaded.data.images.iter().find(|(c, _)| c.as_str() == *capture).expect("captured");
        assert!(case.has(&format!("/console/reviews/{}/images/{image_id}", a.id)), "{capture} image missing");
    }
    assert!(case.has("<button type=\"submit\" class=\"primary\">承認する</button>") && case.has(">却下する</button>"));
    assert!(case.has("<label for=\"reject-reason\">") && case.has("書類が不鮮明") && case.has("書類の有効期限切れ"));
    (case, loaded)
}

/// The images, decrypted from the image store, exactly as uploaded, never cached; their ids.
async fn step_the_images_are_served_as_uploaded(
    t: &TestApp,
    b: &Browser,
    a: &Application,
    loaded: &app::services::ekyc::Loaded,
) -> Vec<String> {
    let mut image_ids = Vec::new();
    for (capture, bytes) in &a.uploaded {
        let (_, image_id) = loaded.data.images.iter().find(|(c, _)| c.as_str() == *capture).expect("captured");
        let (status, headers, body) = b.bytes(&format!("/console/reviews/{}/images/{image_id}", a.id)).await;
        assert_eq!(status, 200, "{capture}");
        assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"));
        assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
        assert!(&body == bytes, "{capture}: the decrypted image is the uploaded one");
        image_ids.push(image_id.clone());
    }
    assert_eq!(b.bytes(&format!("/console/reviews/{}/images/not-an-image", a.id)).await.0, 404);
    assert_eq!(
        Browser::not_following(t).bytes(&format!("/console/reviews/{}/images/{}", a.id, image_ids[0])).await.0,
        303,
        "signed in only"
    );
    image_ids
}

/// A decision needs the CSRF token; approving mails the member (ja) and authenticates them;
/// a second decision is refused without a second mail.
async fn step_approve_mails_the_member_once(t: &TestApp, b: &Browser, a: &Application, case: &Page) {
    let version = case.field("version");
    let forged =
        b.post(&format!("/console/reviews/{}/decision", a.id), &[("version", &version), ("decision", "approve")]).await;
    assert_eq!(forged.status, 403);

    // The checklist (氏名・生年月日・顔) must be ticked, all of it.
    let unticked = b
        .post(
            &format!("/console/reviews/{}/decision", a.id),
            &[
                ("csrf", &case.csrf()),
                ("version", &version),
                ("decision", "approve"),
                ("check_name", "1"),
                ("check_face", "1"),
            ],
        )
        .await;
    assert_eq!(unticked.status, 422, "{}", unticked.html);
    assert!(unticked.html.contains("確認項目"), "{}", unticked.html);
    let approved = b
        .post(
            &format!("/console/reviews/{}/decision", a.id),
            &[
                ("csrf", &case.csrf()),
                ("version", &version),
                ("decision", "approve"),
                ("check_name", "1"),
                ("check_birth_date", "1"),
                ("check_face", "1"),
                ("note", "書類・顔写真とも確認"),
            ],
        )
        .await;
    assert_eq!(
        (approved.status, approved.location.as_deref()),
        (303, Some("/console?decided=approved")),
        "{}",
        approved.html
    );
    let mails = t.wait_mails("hanako@example.com", 3).await;
    let (subject, text) = mails.last().expect("mail");
    assert_eq!(subject, "【Mimoto】健診・医療アクセス認証が完了しました");
    assert!(text.contains("みらい健康保険組合"), "{text}");
    let (s, v) = t.get(&format!("/api/v1/ekyc-applications/{}", a.id), Some(&a.token)).await;
    assert_eq!((s, v["state"].as_str(), v["authenticated"].as_bool()), (200, Some("approved"), Some(true)), "{v}");
    assert!(!b.get("/console").await.has(&format!("/console/reviews/{}\"", a.id)), "no longer in the queue");

    // A second decision (a reviewer with the page still open) is refused; no second mail.
    let again = b
        .post(
            &format!("/console/reviews/{}/decision", a.id),
            &[("csrf", &case.csrf()), ("version", &version), ("decision", "reject"), ("reason", "other")],
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(again.has("この申請はすでに判定済みです。"), "{}", again.html);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(ekyc_mails(t, "hanako@example.com").len(), 1, "one decision, one mail");
    let decided = b.get(&format!("/console/reviews/{}", a.id)).await;
    assert!(
        decided.has("承認")
            && decided.has("審査 花子")
            && decided.has("書類・顔写真とも確認")
            && !decided.has(">承認する</button>"),
        "{}",
        decided.html
    );
}

/// The audit log: each view and the decision, by whom, from where; ids only.
async fn step_the_audit_log_has_views_and_decision_without_personal_data(
    t: &TestApp,
    a: &Application,
    image_ids: &[String],
) {
    let log = t.app.store.list_audit(None, 200).await.expect("audit");
    let reviewer_id =
        log.iter().find(|e| e.action == "console.login").and_then(|e| e.operator_id.clone()).expect("login row");
    let has = |action: &str, target: &str| {
        log.iter().any(|e| {
            e.action == action
                && e.target_id.as_deref() == Some(target)
                && e.operator_id.as_deref() == Some(reviewer_id.as_str())
        })
    };
    assert!(has("ekyc.view_case", &a.id) && has("ekyc.approve", &a.id));
    for id in image_ids {
        assert!(has("ekyc.view_image", id), "view of image {id}");
    }
    assert!(log.iter().all(|e| e.client_ip == "127.0.0.1"), "from where");
    assert_eq!(
        log.iter().filter(|e| e.action == "console.login_failed").count(),
        4,
        "three refused logins and the replay"
    );
    assert!(!log.iter().any(|e| e.action == "ekyc.reject"), "the refused second decision wrote nothing");
    let dump = format!("{log:?}");
    for personal in ["hanako", "ヤマダ", "1990-04-01", "reviewer@"] {
        assert!(!dump.contains(personal), "personal data {personal} in the audit log");
    }
}

/// Only administrators read the audit log, and reading it is logged too.
async fn step_only_administrators_read_the_audit_log(t: &TestApp, b: &Browser, admin: &OperatorAccount) {
    assert_eq!(b.get("/console/audit").await.status, 403);
    let admin_browser = Browser::not_following(t);
    sign_in(t, &admin_browser, admin).await;
    let audit = admin_browser.get("/console/audit").await;
    assert_eq!(audit.status, 200, "{}", audit.html);
    assert!(audit.has("ekyc.approve") && audit.has("ekyc.view_image") && audit.has("審査 花子"), "{}", audit.html);
    assert!(
        t.app.store.list_audit(None, 1).await.expect("audit")[0].action == "audit.view",
        "reading the log is logged too"
    );
}

/// Logout ends the console session (and needs the CSRF token).
async fn step_logout_ends_the_console_session(b: &Browser) {
    let queue = b.get("/console").await;
    assert_eq!(b.post("/console/logout", &[]).await.status, 403);
    let out = b.post("/console/logout", &[("csrf", &queue.csrf())]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/console/login")));
    assert_eq!(b.get("/console").await.location.as_deref(), Some("/console/login"));
}

/// The submission time as the queue shows it (Japan time, minutes).
fn jst(at: time::OffsetDateTime) -> String {
    let local = at.to_offset(time::UtcOffset::from_hms(9, 0, 0).expect("offset"));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_member_is_told_why_and_can_start_again() {
    // On PostgreSQL, as in production.
    let t = TestApp::start(Opts { backend: Backend::Postgres, ..opts() }).await;
    let a = application_in_review(&t, "hanako@example.com").await;
    let op = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let b = Browser::not_following(&t);
    sign_in(&t, &b, &op).await;
    let case = b.get(&format!("/console/reviews/{}", a.id)).await;
    assert_eq!(case.status, 200);
    let path = format!("/console/reviews/{}/decision", a.id);
    let version = case.field("version");

    // A rejection needs a reason from the list; a note has a length limit.
    let bad = b
        .post(&path, &[("csrf", &case.csrf()), ("version", &version), ("decision", "reject"), ("reason", "because")])
        .await;
    assert_eq!(bad.status, 422);
    let long = "あ".repeat(review::NOTE_MAX_CHARS + 1);
    let bad = b
        .post(
            &path,
            &[
                ("csrf", &case.csrf()),
                ("version", &version),
                ("decision", "reject"),
                ("reason", "document_unreadable"),
                ("note", &long),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);

    let rejected = b
        .post(
            &path,
            &[
                ("csrf", &case.csrf()),
                ("version", &version),
                ("decision", "reject"),
                ("reason", "document_unreadable"),
                ("note", "反射で文字が読めない"),
            ],
        )
        .await;
    assert_eq!(
        (rejected.status, rejected.location.as_deref()),
        (303, Some("/console?decided=rejected")),
        "{}",
        rejected.html
    );
    let mails = t.wait_mails("hanako@example.com", 3).await;
    let (subject, text) = mails.last().expect("mail");
    assert_eq!(subject, "【Mimoto】健診・医療アクセス認証の審査結果のお知らせ");
    assert!(text.contains("理由: 書類が不鮮明"), "{text}");
    assert!(text.contains("メニューから") && text.contains("もう一度お申し込みください"), "{text}");
    assert!(!text.contains("反射で文字が読めない"), "the reviewer's note stays internal");
    let review = t.app.store.ekyc_review(&a.id).await.expect("review").expect("stored");
    assert_eq!((review.decision.as_str(), review.reason.as_deref()), ("rejected", Some("document_unreadable")));
    let sealed = review.note_enc.expect("note");
    assert!(!sealed.windows("反射".len()).any(|w| w == "反射".as_bytes()), "the note is sealed");

    // The member may start a new application.
    let (s, v) = t.get(&format!("/api/v1/ekyc-applications/{}", a.id), Some(&a.token)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("rejected")), "{v}");
    let (s, v) = t.post_auth("/api/v1/ekyc-applications", &a.token, json!({})).await;
    assert_eq!((s, v["state"].as_str()), (201, Some("started")), "{v}");
    assert_ne!(v["id"].as_str(), Some(a.id.as_str()), "a new application");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reviewers_deciding_at_once_make_one_decision_and_one_mail() {
    let t = TestApp::start(opts()).await;
    let a = application_in_review(&t, "hanako@example.com").await;
    let one = operators::create(&t.app, "one@mimoto.example.jp", "一郎", Role::Reviewer, OP_PASSWORD)
        .await
        .expect("op")
        .operator;
    let two = operators::create(&t.app, "two@mimoto.example.jp", "二郎", Role::Reviewer, OP_PASSWORD)
        .await
        .expect("op")
        .operator;
    let version = t.app.store.get_ekyc(&a.id).await.expect("get").expect("present").version;
    let approve = DecisionInput { approve: true, checklist: review::Checklist::ALL, reason: "", note: "", version };
    let reject =
        DecisionInput { approve: false, checklist: Default::default(), reason: "face_mismatch", note: "", version };
    let (r1, r2) = tokio::join!(
        review::decide(&t.app, &one, &a.id, approve, "10.0.0.1"),
        review::decide(&t.app, &two, &a.id, reject, "10.0.0.2")
    );
    let outcomes = [&r1, &r2];
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{r1:?} {r2:?}");
    assert_eq!(outcomes.iter().filter(|r| matches!(r, Err(ServiceError::AlreadyDecided))).count(), 1, "{r1:?} {r2:?}");
    t.wait_mails("hanako@example.com", 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(ekyc_mails(&t, "hanako@example.com").len(), 1);
    let decisions = t
        .app
        .store
        .list_audit(None, 50)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "ekyc.approve" || e.action == "ekyc.reject")
        .count();
    assert_eq!(decisions, 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_are_separate_short_and_need_csrf() {
    let t = TestApp::start(Opts::default()).await;
    let op = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;

    // A member's session (browser cookie or API token) opens nothing in the console.
    let member_token = t.register("taro@example.com", PASSWORD).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for cookie in [format!("mimoto_sid={member_token}"), format!("mimoto_op={member_token}")] {
        let r = client.get(t.url("/console")).header("cookie", cookie.clone()).send().await.expect("get");
        assert_eq!(r.status().as_u16(), 303, "{cookie}");
        assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/console/login"));
    }
    let r = client.get(t.url("/console")).bearer_auth(&member_token).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 303);

    // Login needs the form's CSRF token.
    let b = Browser::not_following(&t);
    let form = b.get("/console/login").await;
    let cookie_value = |cookies: &[String]| {
        cookies
            .iter()
            .find_map(|c| c.strip_prefix("mimoto_op=").map(|v| v.split(';').next().unwrap_or_default().to_string()))
            .expect("console cookie")
    };
    let anonymous = cookie_value(&form.set_cookies);
    let code = op.code_at(t.clock.now());
    let forged = b.post("/console/login", &[("email", &op.email), ("password", OP_PASSWORD), ("code", &code)]).await;
    assert_eq!(forged.status, 403);
    let forged = b
        .post("/console/login", &[("csrf", "forged"), ("email", &op.email), ("password", OP_PASSWORD), ("code", &code)])
        .await;
    assert_eq!(forged.status, 403);

    // The cookie is replaced at login: the value from before the login is no session (fixation).
    let login = b
        .post(
            "/console/login",
            &[("csrf", &form.csrf()), ("email", &op.email), ("password", OP_PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(login.status, 303, "{}", login.html);
    assert_ne!(cookie_value(&login.set_cookies), anonymous);
    assert_eq!(b.get("/console").await.status, 200);
    let r = client.get(t.url("/console")).header("cookie", format!("mimoto_op={anonymous}")).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 303, "the pre-login value opens nothing");

    // 30 minutes idle end it; activity keeps it up to 8 hours, not longer.
    t.clock.advance(time::Duration::minutes(29));
    assert_eq!(b.get("/console").await.status, 200);
    t.clock.advance(time::Duration::minutes(31));
    assert_eq!(b.get("/console").await.location.as_deref(), Some("/console/login"), "idle timeout");

    let b = Browser::not_following(&t);
    sign_in(&t, &b, &op).await;
    for _ in 0..16 {
        t.clock.advance(time::Duration::minutes(29));
        assert_eq!(b.get("/console").await.status, 200);
    }
    t.clock.advance(time::Duration::minutes(29));
    assert_eq!(b.get("/console").await.location.as_deref(), Some("/console/login"), "absolute timeout (8 h)");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_logins_are_rate_limited_per_email_and_per_ip() {
    let mut o = Opts::default();
    o.limits.login_per_account_client = Limit::new(3, 900);
    o.limits.login_per_ip = Limit::new(5, 900);
    let t = TestApp::start(o).await;
    let op = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let b = Browser::not_following(&t);
    for _ in 0..3 {
        assert_eq!(b.console_login(&op.email, "Wrong-Password-2026!", "000000").await.status, 401);
    }
    let limited = b.console_login(&op.email, OP_PASSWORD, &op.code_at(t.clock.now())).await;
    assert_eq!(limited.status, 429, "even the right credentials, once the email is locked");
    assert!(limited.headers.contains_key("retry-after"));
    // The address's budget counts failures only: the refused try above was not one.
    assert_eq!(b.console_login("other@mimoto.example.jp", OP_PASSWORD, "000000").await.status, 401);
    assert_eq!(b.console_login("third@mimoto.example.jp", OP_PASSWORD, "000000").await.status, 401);
    assert_eq!(
        b.console_login("fourth@mimoto.example.jp", OP_PASSWORD, "000000").await.status,
        429,
        "the sixth failure from this address"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_ids_answer_alike() {
    let t = TestApp::start(Opts::default()).await;
    let reviewer = create_operator(&t, "reviewer@mimoto.example.jp", "審査 花子", Role::Reviewer).await;
    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 太郎", Role::Admin).await;
    let unknown = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let malformed = ["not-an-id", "3F2504E0-4F89-41D3-9A0C-0305E82C3301", "3f2504e0-4f89-41d3-9a0c-0305e82c330"];
    let gets = ["/console/reviews/{}", "/console/reviews/{}/images/{}", "/console/inquiries/{}", "/console/imports/{}"];
    let posts = ["/console/reviews/{}/decision", "/console/inquiries/{}/reply", "/console/inquiries/{}/close"];
    let signed_out = Browser::not_following(&t);
    let reviewer_b = Browser::not_following(&t);
    sign_in(&t, &reviewer_b, &reviewer).await;
    let admin_b = Browser::not_following(&t);
    sign_in(&t, &admin_b, &admin).await;
    for b in [&signed_out, &reviewer_b, &admin_b] {
        let login = b.get("/console/login").await;
        let csrf = if login.status == 303 { b.get("/console").await.csrf() } else { login.csrf() };
        for bad in malformed {
            for template in gets.iter().chain(posts.iter()) {
                let path = |id: &str| template.replace("{}", id);
                let post = posts.contains(template);
                let ask = |p: String, with_csrf: bool| {
                    let csrf = csrf.clone();
                    async move {
                        if !post {
                            return b.get(&p).await;
                        }
                        let form = [
                            ("csrf", if with_csrf { csrf.as_str() } else { "forged" }),
                            ("decision", "approve"),
                            ("version", "1"),
                            ("reply", "はい"),
                        ];
                        b.post(&p, &form).await
                    }
                };
                for with_csrf in [true, false] {
                    let expected = ask(path(unknown), with_csrf).await;
                    let got = ask(path(bad), with_csrf).await;
                    let what = format!("{} (csrf {with_csrf})", path(bad));
                    assert_eq!(
                        (got.status, got.location.as_deref()),
                        (expected.status, expected.location.as_deref()),
                        "{what}"
                    );
                    assert_eq!(got.html.replace(bad, unknown), expected.html, "{what}");
                    assert!(got.status == 303 || got.status == 403 || got.status == 404, "{what}: {}", got.status);
                }
            }
        }
    }
    t.stop().await;
}
