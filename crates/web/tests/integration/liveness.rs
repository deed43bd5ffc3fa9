//! #13, liveness: the angled selfie comes as a burst of frames while the member turns, and the
//! server reads one continuous turn of the same face from the front to the instruction. A set
//! of prepared photos does not make such a burst; each way it can fail is refused with its own
//! reason (and counts as a face attempt), and a single still is accepted only for a reviewer.
//! Real face engine, frames made from the development set (see `common::ekyc::turn_burst`).

use app::services::auth::{authenticate, Member};
use app::services::ekyc;

use crate::common::ekyc::{
    f4_finish, f4_to_the_angled_step, face, http_upload, http_upload_burst, licence, next_frame, partly_turned,
    seed_for, selfie, turn_burst, PART_WAY,
};
use crate::common::{Opts, TestApp};

const PASSWORD: &str = "correct horse battery staple";

fn opts() -> Opts {
    fn config(c: &mut app::config::Config) {
        c.ekyc_instruction_seed = Some(seed_for(domain::ekyc::Instruction {
            turn: domain::ekyc::Turn::Right,
            mouth: domain::ekyc::MouthState::Closed,
        }));
        // Faces of one person always clear the bar here: what decides is the liveness.
        c.ekyc_auto_margin = 0.0;
        c.ekyc_sample_rate = 0.0;
        // The development set's faces are photos of photos, and the anti-spoofing model says
        // so (see `the_presentation_attack_signal_sends_the_case_to_review`): off here.
        c.ekyc_spoof_threshold = 2.0;
    }
    Opts { config, ..Opts::default() }
}

/// [`opts`] with the presentation-attack signal at its default.
fn opts_with_spoof_signal() -> Opts {
    fn config(c: &mut app::config::Config) {
        (opts().config)(c);
        c.ekyc_spoof_threshold = face::antispoof::SPOOF_THRESHOLD;
    }
    Opts { config, ..Opts::default() }
}

/// A member of the demo roster (ヤマダ ハナコ) with the roster person's own licence and frontal
/// selfie accepted, at the angled step (「右向きで口を閉じる」).
async fn at_the_angled_step(t: &TestApp, email: &str) -> (String, Member, String) {
    let token = t.register(email, PASSWORD).await;
    t.verify_identity(&token).await;
    let m = authenticate(&t.app, &token).await.expect("auth").expect("member");
    let (id, v) = f4_to_the_angled_step(t, &token, licence("leonard/leonard1.png")).await;
    assert_eq!(v["instruction"]["label"].as_str(), Some("右向きで口を閉じる"), "{v}");
    (token, m, id)
}

/// A burst turning from the front completes (the document proves the roster person).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_turning_from_the_front_completes() {
    let t = TestApp::start(opts()).await;
    let (token, m, id) = at_the_angled_step(&t, "burst@example.com").await;
    let (s, v) = http_upload_burst(&t, &token, &id, turn_burst("leonard/leonard2.png", "leonard/leonard3.png")).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("angled_verified")), "{v}");
    let a = ekyc::load(&t.app, &m, &id).await.expect("load");
    assert_eq!(a.data.app.liveness, Some(domain::liveness::Liveness::Burst));
    assert!(a.data.reasons.iter().any(|r| r.starts_with("liveness_yaw:")), "the turn is kept for a reviewer");
    let v = f4_finish(&t, &token, &id).await;
    assert_eq!((v["state"].as_str(), v["authenticated"].as_bool()), (Some("completed"), Some(true)), "{v}");
    t.stop().await;
}

/// One still of the same turned face (an API client sending one image, like the pages' file
/// input) is accepted, but only a reviewer can complete the case, and is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_still_goes_to_review_with_its_reason() {
    let t = TestApp::start(opts()).await;
    let (token, m, id) = at_the_angled_step(&t, "still@example.com").await;
    let (s, v) = http_upload(&t, &token, &id, "selfie_angled", selfie(&face("leonard/leonard3.png"))).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("angled_verified")), "a still is accepted: {v}");
    let v = f4_finish(&t, &token, &id).await;
    assert_eq!((v["state"].as_str(), v["authenticated"].as_bool()), (Some("pending_review"), Some(false)), "{v}");
    let a = ekyc::load(&t.app, &m, &id).await.expect("load");
    assert_eq!(a.data.app.liveness, Some(domain::liveness::Liveness::SingleFrame));
    assert!(a.data.reasons.iter().any(|r| r == "liveness_no_burst"), "{:?}", a.data.reasons);
    t.stop().await;
}

/// Identical frames, a frame of someone else, a jump from a frontal to a turned photo, and a
/// burst that never faces the camera: each refused (422) with its code, counted, and kept as
/// a reason; too many frames are refused before anything is counted. The real turn still
/// passes afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_without_a_live_turn_are_refused_each_with_its_reason() {
    let t = TestApp::start(opts()).await;
    let (token, m, id) = at_the_angled_step(&t, "prepared@example.com").await;
    let front = face("leonard/leonard2.png");
    let side = face("leonard/leonard3.png");
    let part = |i: usize| selfie(&partly_turned(&front, PART_WAY[i]));

    let cases: [(&str, Vec<Vec<u8>>); 4] = [
        ("liveness_identical_frames", vec![selfie(&front), part(0), part(0), part(1), selfie(&side)]),
        (
            "liveness_face_changed",
            vec![selfie(&front), part(0), selfie(&face("howard/howard2.png")), part(1), selfie(&side)],
        ),
        (
            "liveness_not_continuous",
            vec![selfie(&front), selfie(&next_frame(&front)), selfie(&side), selfie(&next_frame(&side))],
        ),
        (
            "liveness_not_from_front",
            vec![selfie(&side), selfie(&next_frame(&side)), selfie(&next_frame(&next_frame(&side)))],
        ),
    ];
    for (n, (code, frames)) in cases.into_iter().enumerate() {
        let (s, v) = http_upload_burst(&t, &token, &id, frames).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some(code)), "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        let a = ekyc::load(&t.app, &m, &id).await.expect("load");
        assert_eq!(a.data.app.face_attempts, n as u32 + 1, "{code} counts");
        assert!(a.data.reasons.iter().any(|r| r == code), "{code}: {:?}", a.data.reasons);
    }

    let too_many = vec![selfie(&front); domain::liveness::MAX_BURST_FRAMES + 1];
    let (s, v) = http_upload_burst(&t, &token, &id, too_many).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("liveness_too_many_frames")), "{v}");
    let a = ekyc::load(&t.app, &m, &id).await.expect("load");
    assert_eq!(a.data.app.face_attempts, 4, "refused before the engine ran");

    let (s, v) = http_upload_burst(&t, &token, &id, turn_burst("leonard/leonard2.png", "leonard/leonard3.png")).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("angled_verified")), "{v}");
    t.stop().await;
}

/// The passive presentation-attack model scores the development set's faces — photographs of
/// photographs — as likely attacks: with the signal at its default, the same live-looking burst
/// that completes above reaches a reviewer, who is told the score. It never refuses on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_presentation_attack_signal_sends_the_case_to_review() {
    let t = TestApp::start(opts_with_spoof_signal()).await;
    let (token, m, id) = at_the_angled_step(&t, "printed@example.com").await;
    let (s, v) = http_upload_burst(&t, &token, &id, turn_burst("leonard/leonard2.png", "leonard/leonard3.png")).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("angled_verified")), "a signal, not a refusal: {v}");
    let a = ekyc::load(&t.app, &m, &id).await.expect("load");
    assert!(a.data.app.spoof_suspected);
    assert!(a.data.reasons.iter().any(|r| r.starts_with("presentation_attack_suspected:")), "{:?}", a.data.reasons);
    let v = f4_finish(&t, &token, &id).await;
    assert_eq!((v["state"].as_str(), v["authenticated"].as_bool()), (Some("pending_review"), Some(false)), "{v}");
    t.stop().await;
}
