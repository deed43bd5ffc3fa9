//! #13: every unlock of health data is bound to the roster person. The attack — someone who
//! knows A's card number, kana name and birth date does 本人確認 as A, then 健診・医療アクセス認証
//! with their OWN licence and face — must end in review with the birth-date mismatch flagged,
//! never `completed`; the roster person's own licence can complete. Support can withdraw a
//! wrong binding (health data closes at once, audited, mailed), and automatic completions are
//! sampled for an after-the-fact look. OCR is the real tesseract on cards rendered with
//! Debian's fonts (see `ocr::testing`).

use app::error::ServiceError;
use app::services::auth::{authenticate, Member};
use app::services::operators::{self, Role};
use app::services::{binding, review};
use domain::evidence::BirthDateCheck;
use serde_json::json;
use time::macros::date;

use crate::common::ekyc::{
    f4_finish, f4_to_the_angled_step, face, http_upload_burst, licence, licence_of, seed_for, selfie, turn_burst,
};
use crate::common::{Opts, TestApp};

const PASSWORD: &str = "correct horse battery staple";

fn opts(sample_rate: f64) -> Opts {
    fn base(c: &mut app::config::Config) {
        c.ekyc_instruction_seed = Some(seed_for(domain::ekyc::Instruction {
            turn: domain::ekyc::Turn::Right,
            mouth: domain::ekyc::MouthState::Closed,
        }));
        // Faces of one person always clear the bar here: what decides is the document.
        c.ekyc_auto_margin = 0.0;
        // The development set's faces are photos of photos (the anti-spoofing signal flags
        // them, see liveness.rs): off here.
        c.ekyc_spoof_threshold = 2.0;
    }
    fn sampled(c: &mut app::config::Config) {
        base(c);
        c.ekyc_sample_rate = 1.0;
    }
    fn unsampled(c: &mut app::config::Config) {
        base(c);
        c.ekyc_sample_rate = 0.0;
    }
    Opts { config: if sample_rate > 0.0 { sampled } else { unsampled }, ..Opts::default() }
}

/// F4 over the JSON API with `document` as the licence's front and Leonard's selfies; returns
/// the application id and the submission's answer.
async fn f4_over_the_api(t: &TestApp, token: &str, document: Vec<u8>) -> (String, serde_json::Value) {
    let (id, _) = f4_to_the_angled_step(t, token, document).await;
    let burst = turn_burst("leonard/leonard2.png", "leonard/leonard3.png");
    let (s, v) = http_upload_burst(t, token, &id, burst).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("angled_verified")), "{v}");
    let v = f4_finish(t, token, &id).await;
    (id, v)
}

async fn member(t: &TestApp, email: &str) -> (String, Member) {
    let token = t.register(email, PASSWORD).await;
    // 本人確認 as ヤマダ ハナコ (1990-04-01) of the demo roster.
    t.verify_identity(&token).await;
    let m = authenticate(&t.app, &token).await.expect("auth").expect("member");
    (token, m)
}

async fn admin(t: &TestApp) -> operators::Operator {
    operators::create(&t.app, "admin@mimoto.example.jp", "管理 花子", Role::Admin, "a long admin passphrase 42")
        .await
        .expect("admin")
        .operator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_licence_on_a_roster_record_goes_to_review_with_the_mismatch_flagged() {
    let t = TestApp::start(opts(0.0)).await;
    let (token, _) = member(&t, "attacker@example.com").await;
    // The attacker's own licence (佐藤 健一, 昭和60年3月2日生) with their own face and selfies.
    let theirs = licence_of("leonard/leonard1.png", "佐藤", "健一", date!(1985 - 03 - 02));
    let (id, v) = f4_over_the_api(&t, &token, theirs).await;
    assert_eq!((v["state"].as_str(), v["authenticated"].as_bool()), (Some("pending_review"), Some(false)), "{v}");

    // The reviewer sees what was read, next to the roster, and the flag.
    let reviewer = admin(&t).await;
    let case = review::case(&t.app, &reviewer, &id, "127.0.0.1").await.expect("case");
    let reading = case.data.document_reading.as_ref().expect("read");
    assert_eq!(reading.check.birth_date, BirthDateCheck::Mismatch, "{reading:?}");
    assert!(reading.birth_dates().iter().any(|d| d.date == date!(1985 - 03 - 02) && d.confidence > 0.0), "{reading:?}");
    assert!(case.data.reasons.iter().any(|r| r == "document_birth_date_mismatch"), "{:?}", case.data.reasons);
    assert_eq!(case.person.as_ref().map(|p| p.entry.birth_date), Some(date!(1990 - 04 - 01)));

    // Approval needs the checklist; the rejection reason exists.
    let version = case.record.version;
    let unticked = review::DecisionInput {
        approve: true,
        checklist: review::Checklist { name: true, birth_date: false, face: true },
        reason: "",
        note: "",
        version,
    };
    assert!(matches!(
        review::decide(&t.app, &reviewer, &id, unticked, "127.0.0.1").await,
        Err(ServiceError::ReviewChecklistIncomplete)
    ));
    let reject = review::DecisionInput {
        approve: false,
        checklist: Default::default(),
        reason: "document_not_roster_person",
        note: "",
        version,
    };
    review::decide(&t.app, &reviewer, &id, reject, "127.0.0.1").await.expect("reject");
    let mails = t.wait_mail_about("attacker@example.com", "審査結果").await;
    assert!(mails.iter().any(|(_, body)| body.contains("本人確認書類が名簿の方と一致しません")), "{mails:?}");
    let (_, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_ne!(v["step_up"].as_str(), Some("ask"), "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roster_persons_own_licence_completes_and_support_can_withdraw_it() {
    let t = TestApp::start(opts(1.0)).await;
    let (token, m) = member(&t, "hanako@example.com").await;
    let (id, v) = f4_over_the_api(&t, &token, licence("leonard/leonard1.png")).await;
    assert_eq!((v["state"].as_str(), v["authenticated"].as_bool()), (Some("completed"), Some(true)), "{v}");
    let (_, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!(v["step_up"].as_str(), Some("ask"), "{v}");

    // Sampled (rate 1.0): in the after-the-fact queue until someone looks.
    let admin = admin(&t).await;
    let samples = binding::samples(&t.app, &admin, "127.0.0.1").await.expect("samples");
    assert_eq!(samples.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec![id.as_str()]);

    // Open health data in this session, then support withdraws the binding.
    let (s, v) = t.post_auth("/api/v1/health/step-up", &token, json!({"answer": "みどり図書館"})).await;
    assert_eq!(s, 200, "{v}");
    let reviewer = operators::create(
        &t.app,
        "rev@mimoto.example.jp",
        "審査 一郎",
        Role::Reviewer,
        "a long reviewer passphrase 42",
    )
    .await
    .expect("reviewer")
    .operator;
    let input =
        |unlink| binding::WithdrawInput {
            user_id: &m.user.id, unlink, reason: "wrong_person", note: "電話で確認"
        };
    assert!(matches!(
        binding::withdraw(&t.app, &reviewer, input(true), "127.0.0.1").await,
        Err(ServiceError::Forbidden)
    ));
    binding::withdraw(&t.app, &admin, input(true), "10.0.0.9").await.expect("withdraw");

    // At once: health data closed in the open session, not authenticated, not linked.
    let (s, v) = t.get("/api/v1/health/checkups", Some(&token)).await;
    assert_eq!(s, 403, "{v}");
    let (_, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_ne!(v["step_up"].as_str(), Some("open"), "{v}");
    assert!(t.app.store.roster_link_of_user(&m.user.id).await.expect("link").is_none());
    assert!(binding::samples(&t.app, &admin, "127.0.0.1").await.expect("samples").is_empty(), "left the sample queue");
    let withdrawals = t.app.store.binding_withdrawals(&m.user.id).await.expect("withdrawals");
    assert_eq!(withdrawals.len(), 1);
    assert!(withdrawals[0].unlinked && withdrawals[0].revoked_application_id.as_deref() == Some(id.as_str()));
    let audit = t.app.store.list_audit(None, 50).await.expect("audit");
    assert!(
        audit.iter().any(|a| a.action == "binding.withdraw"
            && a.target_id.as_deref() == Some(withdrawals[0].id.as_str())
            && a.client_ip == "10.0.0.9"),
        "audited"
    );
    let mails = t.wait_mail_about("hanako@example.com", "取り消し").await;
    assert!(mails.iter().any(|(subject, _)| subject.contains("取り消し")), "{mails:?}");
    // Nothing left to withdraw; the rightful member can do 本人確認 again.
    assert!(matches!(
        binding::withdraw(&t.app, &admin, input(true), "127.0.0.1").await,
        Err(ServiceError::NothingToWithdraw)
    ));
    // (`member` does 本人確認 as ヤマダ ハナコ and fails unless the record is free again.)
    member(&t, "real-hanako@example.com").await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_completion_leaves_the_queue_once_checked() {
    let t = TestApp::start(opts(1.0)).await;
    let (token, _) = member(&t, "hanako@example.com").await;
    let (id, v) = f4_over_the_api(&t, &token, licence("leonard/leonard1.png")).await;
    assert_eq!(v["state"].as_str(), Some("completed"), "{v}");
    let admin = admin(&t).await;
    let record = t.app.store.get_ekyc(&id).await.expect("get").expect("there");
    assert!(record.sampled);
    assert!(matches!(
        binding::sample_checked(&t.app, &admin, &id, record.version - 1, "127.0.0.1").await,
        Err(ServiceError::AlreadyDecided)
    ));
    binding::sample_checked(&t.app, &admin, &id, record.version, "127.0.0.1").await.expect("checked");
    assert!(binding::samples(&t.app, &admin, "127.0.0.1").await.expect("samples").is_empty());
    let (_, v) = t.get("/api/v1/health", Some(&token)).await;
    assert_eq!(v["step_up"].as_str(), Some("ask"), "still authenticated: {v}");
    t.stop().await;
}

/// The angled instruction is shown only once the frontal selfie matched, and must be answered
/// within 60 s: a photo prepared for a pose cannot be looked for at leisure. Too late → the
/// attempt counts, a new instruction is drawn (with a new window), and the reviewer sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_angled_photo_after_the_window_is_refused_with_a_new_instruction() {
    use app::services::ekyc::{self, Capture, ANGLED_WINDOW};
    use domain::ekyc::{DocumentKind, EkycState};
    use rand::SeedableRng;
    let t = TestApp::start(opts(0.0)).await;
    let (_, m) = member(&t, "late@example.com").await;
    let app = &t.app;
    let id = ekyc::start(app, &m).await.expect("start").record.id;
    ekyc::choose_document(app, &m, &id, DocumentKind::DriversLicense).await.expect("choose");
    let seed = seed_for(domain::ekyc::Instruction {
        turn: domain::ekyc::Turn::Right,
        mouth: domain::ekyc::MouthState::Closed,
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let token = ekyc::capture_token(app, &m, &id, Capture::DocumentFront).await.expect("token");
    ekyc::upload_with_rng(
        app,
        &m,
        &id,
        Capture::DocumentFront,
        &token,
        vec![licence("leonard/leonard1.png")],
        &mut rng,
    )
    .await
    .expect("front");
    ekyc::answer_remarks(app, &m, &id, false).await.expect("remarks");
    ekyc::confirm_document(app, &m, &id).await.expect("confirm");
    let before = ekyc::load(app, &m, &id).await.expect("load");
    assert!(before.data.app.instruction.is_none(), "no instruction before the frontal selfie matched");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let token = ekyc::capture_token(app, &m, &id, Capture::SelfieFrontal).await.expect("token");
    let frontal = ekyc::upload_with_rng(
        app,
        &m,
        &id,
        Capture::SelfieFrontal,
        &token,
        vec![selfie(&face("leonard/leonard2.png"))],
        &mut rng,
    )
    .await
    .expect("frontal");
    let shown_at = frontal.data.instruction_at.expect("the instruction's time");
    assert_eq!(shown_at, app.now());

    t.clock.advance(ANGLED_WINDOW + time::Duration::seconds(1));
    let token = ekyc::capture_token(app, &m, &id, Capture::SelfieAngled).await.expect("token");
    let late = ekyc::upload_with_rng(
        app,
        &m,
        &id,
        Capture::SelfieAngled,
        &token,
        turn_burst("leonard/leonard2.png", "leonard/leonard3.png"),
        &mut rand::rngs::StdRng::seed_from_u64(seed),
    )
    .await;
    assert!(matches!(late, Err(ServiceError::InstructionExpired)), "{:?}", late.err());
    let after = ekyc::load(app, &m, &id).await.expect("load");
    assert_eq!(after.data.app.state, EkycState::FrontalVerified);
    assert_eq!(after.data.app.face_attempts, 1, "the late photo counts");
    assert_eq!(after.data.instruction_at, Some(app.now()), "a new window with the new instruction");
    assert!(after.data.reasons.iter().any(|r| r == "angled_too_late"), "{:?}", after.data.reasons);
    t.stop().await;
}

/// The victim's story: someone else's account holds their roster record after 本人確認 (F3)
/// only — no eKYC case to start from. The customer center finds the account by organization
/// and 記号・番号 (audited), removes the link with a reason, and the member can verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_finds_the_account_holding_a_roster_record_and_unlinks_it() {
    use crate::common::browser::Browser;
    use crate::common::console::{create_operator, sign_in};
    let t = TestApp::start(opts(0.0)).await;
    let (_, taker) = member(&t, "taker@example.com").await;
    let victim = t.register("victim@example.com", PASSWORD).await;
    // The record is taken: the victim's 本人確認 cannot link it.
    let (s, v) = t.post_auth("/api/v1/identity-verifications", &victim, json!({})).await;
    assert_eq!(s, 201, "{v}");

    let reviewer = create_operator(&t, "rev@mimoto.example.jp", "審査 一郎", Role::Reviewer).await;
    let rb = Browser::not_following(&t);
    sign_in(&t, &rb, &reviewer).await;
    assert_eq!(rb.get("/console/bindings").await.status, 403, "admins only");

    let admin = create_operator(&t, "admin@mimoto.example.jp", "管理 花子", Role::Admin).await;
    let b = Browser::not_following(&t);
    sign_in(&t, &b, &admin).await;
    let org = t.app.store.list_orgs().await.expect("orgs").into_iter().find(|o| o.insurer_number.as_str() == "133033");
    let org = org.expect("demo organization 133033");
    let form = b.get("/console/bindings").await;
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.has("method=\"post\" action=\"/console/bindings\""), "card numbers stay out of URLs");
    let csrf = form.csrf();
    let search = |symbol: &'static str, number: &'static str| {
        let (b, csrf, org) = (&b, csrf.clone(), org.id.clone());
        async move {
            b.post(
                "/console/bindings",
                &[("csrf", csrf.as_str()), ("org", org.as_str()), ("symbol", symbol), ("number", number)],
            )
            .await
        }
    };
    let forged = b.post("/console/bindings", &[("org", org.id.as_str()), ("symbol", "1234"), ("number", "5678")]).await;
    assert_eq!(forged.status, 403, "the search needs the form's CSRF token");
    let found = search("1234", "5678").await;
    assert_eq!(found.status, 200, "{}", found.html);
    assert!(found.has(&taker.user.id) && found.has("健診・医療アクセス認証なし"), "{}", found.html);
    let none = search("9999", "1").await;
    assert!(none.has("紐付いているアカウントはありません"), "{}", none.html);

    let gone = b
        .post(
            "/console/bindings/withdraw",
            &[
                ("csrf", &found.csrf()),
                ("user_id", &taker.user.id),
                ("unlink", "1"),
                ("reason", "wrong_person"),
                ("note", "ご本人から電話で確認"),
            ],
        )
        .await;
    assert_eq!((gone.status, gone.location.as_deref()), (303, Some("/console?decided=withdrawn")), "{}", gone.html);
    assert!(t.app.store.roster_link_of_user(&taker.user.id).await.expect("link").is_none());
    let audit = t.app.store.list_audit(None, 50).await.expect("audit");
    assert!(audit.iter().any(|a| a.action == "binding.find"), "the search is audited");
    assert!(audit.iter().any(|a| a.action == "binding.withdraw"), "the withdrawal is audited");
    let mails = t.wait_mail_about("taker@example.com", "取り消し").await;
    assert!(mails.iter().any(|(_, body)| body.contains("本人確認（名簿との照合）と")), "{mails:?}");
    // Now the rightful member verifies.
    t.verify_identity(&victim).await;
    t.stop().await;
}

/// The same attack through the pages, without JavaScript (the file input): someone else's
/// licence and face on ヤマダ ハナコ's roster record end on the 申請 screen, never 完了, and
/// health data stays closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_through_the_pages_ends_in_review() {
    use crate::common::browser::Browser;
    use crate::ekyc::{capture, ekyc_path};
    let t = TestApp::start(opts(0.0)).await;
    let (token, m) = member(&t, "pages-attacker@example.com").await;
    let b = Browser::new(&t);
    let login = b.get("/login").await;
    b.post(
        "/login",
        &[("csrf", &login.field("csrf")), ("email", "pages-attacker@example.com"), ("password", PASSWORD)],
    )
    .await;
    let intro = b.get("/ekyc").await;
    let choose = b.post("/ekyc", &[("csrf", &intro.field("csrf"))]).await;
    let path = ekyc_path(&choose);
    let csrf = choose.field("csrf");
    let front = b.post(&format!("{path}/document"), &[("csrf", &csrf), ("kind", "drivers_license")]).await;
    let theirs = licence_of("leonard/leonard1.png", "佐藤", "健一", date!(1985 - 03 - 02));
    let remarks = capture(&b, &front, theirs, None).await;
    assert!(remarks.has(">記載なし</button>"), "{}", remarks.html);
    b.post(&format!("{path}/remarks"), &[("csrf", &csrf), ("has_entries", "no")]).await;
    let frontal = b.post(&format!("{path}/confirm-document"), &[("csrf", &csrf)]).await;
    let angled = capture(&b, &frontal, selfie(&face("leonard/leonard2.png")), None).await;
    assert!(angled.has("写真判定OK"), "{}", angled.html);
    assert!(angled.has("担当者の確認後に認証が完了します"), "the file input says a still is reviewed: {}", angled.html);
    let secret = capture(&b, &angled, selfie(&face("leonard/leonard3.png")), None).await;
    assert!(secret.has("秘密の質問設定をはじめる"), "{}", secret.html);
    let confirm = b
        .post(
            &format!("{path}/secret"),
            &[
                ("csrf", &csrf),
                ("choice", "custom"),
                ("custom_question", "思い出の図書館は？"),
                ("answer", "みどり図書館"),
            ],
        )
        .await;
    assert!(confirm.has(">この内容で認証する</button>"), "{}", confirm.html);
    let done = b.post(&format!("{path}/submit"), &[("csrf", &csrf)]).await;
    assert!(done.has("申請を受け付けました") && !done.has("完了しました"), "{}", done.html);
    let a = app::services::ekyc::current(&t.app, &m).await.expect("load").expect("application");
    assert_eq!(a.data.app.state, domain::ekyc::EkycState::PendingReview);
    assert!(a.data.reasons.iter().any(|r| r == "document_birth_date_mismatch"), "{:?}", a.data.reasons);
    // The angled selfie was one still from the file input: never automatic either.
    assert!(a.data.reasons.iter().any(|r| r == "liveness_no_burst"), "{:?}", a.data.reasons);
    assert!(!b.get("/menu/org").await.has("href=\"/health/checkups\""), "no health data");
    let (s, _) = t.get("/api/v1/health/checkups", Some(&token)).await;
    assert_eq!(s, 403);
    t.stop().await;
}
