//! eKYC test material: pictures made from the development face set
//! (`../shared/data/faces/bbt`, MIT) and the member's steps over the JSON API.

use std::path::Path;

use image::{Rgb, RgbImage};
use serde_json::json;

use super::TestApp;

/// A face of the development set.
pub fn face(rel: &str) -> RgbImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/faces/bbt").join(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    face::decode::decode(&bytes, &face::decode::Limits::default()).expect("decode")
}

pub fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("png");
    out.into_inner()
}

/// The roster person the tests verify as in F3 (ヤマダ ハナコ, born 1990-04-01), as their
/// documents print it.
pub const ROSTER_BIRTH: time::Date = time::macros::date!(1990 - 04 - 01);

/// A 運転免許証 of the roster person (山田 花子, 平成2年4月1日生, rendered with Debian's Noto
/// CJK fonts, see `ocr::testing`) with the face of `rel` as its ID photo (degraded like print).
pub fn licence(rel: &str) -> Vec<u8> {
    licence_of(rel, "山田", "花子", ROSTER_BIRTH)
}

/// A 運転免許証 of anyone: the attack of #13 uses another person's card on the roster
/// person's record.
pub fn licence_of(rel: &str, family: &str, given: &str, birth: time::Date) -> Vec<u8> {
    use ocr::testing::{render, Card, DateStyle, Kind};
    let photo = face::eval::degrade(&face(rel)).expect("degrade");
    let card = render(&Card {
        kind: Kind::DriversLicense,
        family,
        given,
        birth,
        style: DateStyle::Wareki,
        photo: Some(&photo),
    });
    // A photographed card is not flat: a little deterministic noise, which also makes the
    // file larger than a JSON body may be.
    let mut seed = 0x2545_f491_u32;
    let mut card = card;
    for p in card.pixels_mut() {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let n = (seed >> 29) as u8;
        p.0 = p.0.map(|c| c.saturating_sub(n));
    }
    png(&card)
}

/// A 720×960 phone frame with the face filling about half its width.
pub fn selfie(img: &RgbImage) -> Vec<u8> {
    let big = image::imageops::resize(img, 400, 400, image::imageops::FilterType::CatmullRom);
    let mut frame = RgbImage::from_pixel(720, 960, Rgb([96, 104, 112]));
    image::imageops::overlay(&mut frame, &big, 160, 260);
    png(&frame)
}

/// `img` with its middle pushed `shift` pixels sideways (negative: towards the image's left)
/// and its edges kept: FaceMesh reads the nose between the cheeks as a head turned part of the
/// way. The development set has no video, so this stands in for the frames between a frontal
/// and a turned photo of one real turn.
pub fn partly_turned(img: &RgbImage, shift: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let t = x as f32 / w as f32;
        let sx = (x as f32 - shift * (std::f32::consts::PI * t).sin()).round().clamp(0.0, (w - 1) as f32);
        *img.get_pixel(sx as u32, y)
    })
}

/// `img` a little brighter: the next camera frame of a head that did not move.
pub fn next_frame(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0 = p.0.map(|c| c.saturating_add(3));
    }
    out
}

/// Shifts (pixels of the 150-pixel development faces) that take a frontal face part of the way
/// to a turn to the member's right (negate them for the left).
pub const PART_WAY: [f32; 2] = [-12.0, -24.0];

/// The camera's burst while the member turns to their right, as selfie frames: `frontal`,
/// two frames part of the way (see [`partly_turned`]), `turned`, and `turned` once more a
/// frame later.
pub fn turn_burst(frontal: &str, turned: &str) -> Vec<Vec<u8>> {
    let (front, side) = (face(frontal), face(turned));
    let mut frames = vec![selfie(&front)];
    frames.extend(PART_WAY.iter().map(|s| selfie(&partly_turned(&front, *s))));
    frames.push(selfie(&side));
    frames.push(selfie(&next_frame(&side)));
    frames
}

/// Uploads the angled burst over HTTP as `multipart/form-data` with one `frame` part each.
pub async fn http_upload_burst(t: &TestApp, token: &str, id: &str, frames: Vec<Vec<u8>>) -> (u16, serde_json::Value) {
    let (s, v) = t
        .post_auth(
            &format!("/api/v1/ekyc-applications/{id}/capture-tokens"),
            token,
            json!({"capture": "selfie_angled"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let capture_token = v["token"].as_str().expect("token").to_string();
    let mut form = reqwest::multipart::Form::new();
    for (i, bytes) in frames.into_iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(format!("frame-{i}.png")).mime_str("image/png");
        form = form.part("frame", part.expect("mime"));
    }
    let res = t
        .api
        .post(t.url(&format!("/api/v1/ekyc-applications/{id}/captures/selfie_angled")))
        .bearer_auth(token)
        .header("x-capture-token", &capture_token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Uploads one capture over HTTP: a token from the API, then the raw image with
/// `X-Capture-Token`.
pub async fn http_upload(
    t: &TestApp,
    token: &str,
    id: &str,
    capture: &str,
    bytes: Vec<u8>,
) -> (u16, serde_json::Value) {
    let (s, v) = t
        .post_auth(&format!("/api/v1/ekyc-applications/{id}/capture-tokens"), token, json!({"capture": capture}))
        .await;
    assert_eq!(s, 201, "{v}");
    let capture_token = v["token"].as_str().expect("token").to_string();
    let res = t
        .api
        .post(t.url(&format!("/api/v1/ekyc-applications/{id}/captures/{capture}")))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .header("x-capture-token", &capture_token)
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// F4 over the JSON API up to the angled selfie: 運転免許証 with `document` as its front
/// (備考欄 記載なし) and Leonard's frontal selfie. Returns the application id and the answer to
/// the frontal upload (with the instruction).
pub async fn f4_to_the_angled_step(t: &TestApp, token: &str, document: Vec<u8>) -> (String, serde_json::Value) {
    let (s, v) = t.post_auth("/api/v1/ekyc-applications", token, json!({})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let (s, v) = t
        .post_auth(&format!("/api/v1/ekyc-applications/{id}/document"), token, json!({"kind": "drivers_license"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = http_upload(t, token, &id, "document_front", document).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("front_captured")), "{v}");
    let (s, v) =
        t.post_auth(&format!("/api/v1/ekyc-applications/{id}/remarks"), token, json!({"has_entries": false})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.post_auth(&format!("/api/v1/ekyc-applications/{id}/confirm-document"), token, json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = http_upload(t, token, &id, "selfie_frontal", selfie(&face("leonard/leonard2.png"))).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("frontal_verified")), "{v}");
    (id, v)
}

/// The end of F4 over the JSON API: a secret question, then 「この内容で認証する」; the answer.
pub async fn f4_finish(t: &TestApp, token: &str, id: &str) -> serde_json::Value {
    let (s, v) = t
        .post_auth(
            &format!("/api/v1/ekyc-applications/{id}/secret"),
            token,
            json!({"question": "子どもの頃に住んでいた町の図書館", "answer": "みどり図書館"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.post_auth(&format!("/api/v1/ekyc-applications/{id}/submit"), token, json!({})).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// A seed whose first instruction is `wanted`.
pub fn seed_for(wanted: domain::ekyc::Instruction) -> u64 {
    use rand::SeedableRng;
    (0..1000u64)
        .find(|s| domain::ekyc::Instruction::random(&mut rand::rngs::StdRng::seed_from_u64(*s)) == wanted)
        .expect("a seed")
}

/// 健診・医療アクセス認証 (F4) done for real through the services, as Leonard of the development set
/// with a driving licence: the face engine checks the pictures, the secret question is set to
/// `question` / `answer`, and a case that lands in review is approved by a reviewer in the
/// console's service. The member must have done F3; the consents to face images and health
/// data are given here.
pub async fn complete_f4(t: &TestApp, m: &app::services::auth::Member, question: &str, answer: &str) {
    use app::services::ekyc::{self, Capture};
    use app::services::{operators, review};
    use domain::ekyc::{DocumentKind, EkycState, Instruction, MouthState, Turn};
    use rand::SeedableRng;
    let app = &t.app;
    // The consents asked before F4 and F5 (#16 point 8).
    for doc in [domain::consent::ConsentDoc::Biometric, domain::consent::ConsentDoc::HealthData] {
        app::services::consents::grant(app, m, doc, "127.0.0.1").await.expect("consent");
    }
    let id = ekyc::start(app, m).await.expect("start").record.id;
    ekyc::choose_document(app, m, &id, DocumentKind::DriversLicense).await.expect("choose");
    let seed = seed_for(Instruction { turn: Turn::Right, mouth: MouthState::Closed });
    let shots = [
        (Capture::DocumentFront, vec![licence("leonard/leonard1.png")]),
        (Capture::SelfieFrontal, vec![selfie(&face("leonard/leonard2.png"))]),
        (Capture::SelfieAngled, turn_burst("leonard/leonard2.png", "leonard/leonard3.png")),
    ];
    for (capture, bytes) in shots {
        if capture == Capture::SelfieFrontal {
            ekyc::answer_remarks(app, m, &id, false).await.expect("remarks");
            ekyc::confirm_document(app, m, &id).await.expect("confirm");
        }
        let token = ekyc::capture_token(app, m, &id, capture).await.expect("token");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        ekyc::upload_with_rng(app, m, &id, capture, &token, bytes, &mut rng).await.expect("capture");
    }
    ekyc::set_secret(app, m, &id, question, answer).await.expect("secret");
    let submitted = ekyc::submit(app, m, &id, "127.0.0.1").await.expect("submit");
    if submitted.data.app.state == EkycState::PendingReview {
        let reviewer = operators::create(
            app,
            "reviewer@example.com",
            "審査 太郎",
            operators::Role::Reviewer,
            "a long reviewer passphrase 42",
        )
        .await
        .expect("operator");
        let input = review::DecisionInput {
            approve: true,
            checklist: review::Checklist::ALL,
            reason: "",
            note: "",
            version: submitted.record.version,
        };
        review::decide(app, &reviewer.operator, &id, input, "127.0.0.1").await.expect("approve");
    }
    let done = ekyc::current(app, m).await.expect("load").expect("application");
    assert!(done.data.app.is_authenticated(), "F4 done: {:?}", done.data.app.state);
}
