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

/// A 1024×640 card with an ID photo (the face of `rel` degraded like print, 190 px) on it.
pub fn licence(rel: &str) -> Vec<u8> {
    let f = face::eval::degrade(&face(rel)).expect("degrade");
    let f = image::imageops::resize(&f, 190, 190, image::imageops::FilterType::Triangle);
    let mut photo = RgbImage::from_pixel(260, 320, Rgb([200, 212, 224]));
    image::imageops::overlay(&mut photo, &f, 35, 60);
    // A printed card's background is not flat: a little deterministic noise (as a phone photo
    // has), which also makes the file larger than a JSON body may be.
    let mut seed = 0x2545_f491_u32;
    let mut card = RgbImage::from_fn(1024, 640, |_, _| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let n = (seed >> 28) as u8;
        Rgb([226 + n / 2, 230 + n / 2, 222 + n / 2])
    });
    image::imageops::overlay(&mut card, &photo, 720, 200);
    png(&card)
}

/// A 720×960 phone frame with the face filling about half its width.
pub fn selfie(img: &RgbImage) -> Vec<u8> {
    let big = image::imageops::resize(img, 400, 400, image::imageops::FilterType::CatmullRom);
    let mut frame = RgbImage::from_pixel(720, 960, Rgb([96, 104, 112]));
    image::imageops::overlay(&mut frame, &big, 160, 260);
    png(&frame)
}

/// Uploads one capture over HTTP: a token from the API, then the raw image with
/// `X-Capture-Token`.
pub async fn http_upload(t: &TestApp, token: &str, id: &str, capture: &str, bytes: Vec<u8>) -> (u16, serde_json::Value) {
    let (s, v) = t.post_auth(&format!("/api/v1/ekyc-applications/{id}/capture-tokens"), token, json!({"capture": capture})).await;
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
