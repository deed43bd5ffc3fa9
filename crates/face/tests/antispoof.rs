//! The anti-spoofing signal on what this project can produce: the development set
//! `../shared/data/faces/bbt` (8 people × 5 grayscale face crops, MIT) as live faces, as given
//! and in the browser tests' selfie framing, and presentation attacks simulated on those frames
//! (`face::eval::Attack`). Prints the per-category table the README quotes:
//!
//! ```sh
//! cargo test -p mimoto-face --test antispoof -- --nocapture
//! ```
//!
//! A missing model fails the test with the install command; nothing is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with a message

use std::sync::OnceLock;

use face::antispoof::SPOOF_THRESHOLD;
use face::detect::Detection;
use face::eval::{spoof_distribution, Attack};
use face::quality::Rect;
use face::Options;
use image::RgbImage;

mod common;

use common::{engine, images, load, repo};

/// The score of the single face of a selfie as the engine gives it (`None`: no single face).
fn score(img: &RgbImage) -> Option<f32> {
    let opts = Options { pose: false, embed: false, ..Options::selfie() };
    assert!(opts.spoof, "selfies get the anti-spoofing score");
    let a = engine().analyze(img, opts).expect("analyze");
    if a.faces.len() == 1 {
        assert!(a.spoof_score.is_some(), "one face, no score");
        a.spoof_score
    } else {
        None
    }
}

struct Category {
    name: String,
    live: bool,
    scores: Vec<Option<f32>>,
}

/// Scores of every category, computed once for all tests (200 model runs, on two threads).
fn table() -> &'static [Category] {
    static TABLE: OnceLock<Vec<Category>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let faces = images();
        let frames: Vec<RgbImage> = faces.iter().map(|(_, _, f)| face::eval::e2e_selfie(f)).collect();
        let mut images: Vec<(String, bool, Vec<RgbImage>)> = vec![
            ("live, 150×150 crop as given".into(), true, faces.into_iter().map(|(_, _, f)| f).collect()),
            ("live, e2e selfie frame 640×480".into(), true, frames.clone()),
        ];
        for attack in Attack::ALL {
            let attacked = frames.iter().map(|f| attack.apply(f).expect("attack")).collect();
            images.push((format!("{} (of the frame)", attack.name()), false, attacked));
        }
        let jobs: Vec<(usize, &RgbImage)> =
            images.iter().enumerate().flat_map(|(i, (_, _, imgs))| imgs.iter().map(move |img| (i, img))).collect();
        let mut scores: Vec<Vec<Option<f32>>> = vec![Vec::new(); images.len()];
        let halves: Vec<Vec<(usize, Option<f32>)>> = std::thread::scope(|s| {
            let workers: Vec<_> = jobs
                .chunks(jobs.len().div_ceil(2))
                .map(|chunk| s.spawn(move || chunk.iter().map(|(i, img)| (*i, score(img))).collect::<Vec<_>>()))
                .collect();
            workers.into_iter().map(|w| w.join().expect("worker")).collect()
        });
        for (i, s) in halves.into_iter().flatten() {
            scores[i].push(s);
        }
        let out: Vec<Category> =
            images.into_iter().zip(scores).map(|((name, live, _), scores)| Category { name, live, scores }).collect();
        println!("anti-spoofing score, threshold {SPOOF_THRESHOLD} (above: sent to review)");
        println!("| category | images | no face | min | median | mean | max | above threshold |");
        println!("|---|---|---|---|---|---|---|---|");
        for c in &out {
            let d = spoof_distribution(&c.scores, SPOOF_THRESHOLD);
            println!(
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}% |",
                c.name,
                d.images,
                d.failed,
                d.min,
                d.median,
                d.mean,
                d.max,
                d.above * 100.0
            );
        }
        out
    })
}

#[test]
fn the_model_is_pinned_and_loads() {
    let pin = face::models::pinned_sha256(face::models::ANTISPOOF).expect("antispoof.onnx is pinned in models.lock");
    assert_eq!(pin.len(), 64);
    let _ = engine();
}

/// The converted model under tract gives what the original `FaceAntiSpoofing.tflite` gives under
/// the TFLite interpreter (LiteRT 2.3.0, run once by hand on these exact inputs): the same leaf
/// and the leaves' scores within 1e-3. Inputs are 256×256, so the crop is the whole image and
/// no resampling is involved.
#[test]
fn the_converted_model_matches_the_tflite_original() {
    let whole = Detection { rect: Rect { x: 0.0, y: 0.0, w: 256.0, h: 256.0 }, score: 1.0, keypoints: [(0.0, 0.0); 6] };
    let pattern =
        RgbImage::from_fn(256, 256, |x, y| image::Rgb([0u32, 1, 2].map(|c| ((x * 7 + y * 13 + c * 29) % 256) as u8)));
    let on_grey = |file: &str| {
        let mut canvas = RgbImage::from_pixel(256, 256, image::Rgb([96, 104, 112]));
        image::imageops::overlay(&mut canvas, &load(&repo().join("../shared/data/faces/bbt").join(file)), 53, 53);
        canvas
    };
    let cases: [(&str, RgbImage, [f32; 8], usize); 3] = [
        ("pattern", pattern, [0.38424, 0.00375, 0.82146, -0.01059, 0.99963, 0.94562, 1.00653, 0.97087], 6),
        ("amy1", on_grey("amy/amy1.png"), [1.01902, 0.76716, 1.00055, 0.30476, 0.993, 0.9852, 0.99935, 0.04962], 4),
        (
            "leonard2",
            on_grey("leonard/leonard2.png"),
            [0.45172, 0.00372, 0.99158, -0.00361, 0.97243, 0.68658, 0.95058, 0.00545],
            3,
        ),
    ];
    for (name, img, want, leaf) in cases {
        let out = engine().spoof(&img, &whole).expect("spoof").expect("a crop");
        assert_eq!(out.leaf(), Some(leaf), "{name}: {out:?}");
        assert_eq!(out.leaf_node_mask.iter().sum::<f32>(), 1.0, "{name}: one-hot mask {out:?}");
        for (i, (have, want)) in out.clss_pred.iter().zip(want).enumerate() {
            assert!((have - want).abs() < 1e-3, "{name}: leaf {i} scores {have}, TFLite {want}");
        }
        assert!((out.score() - want[leaf].abs()).abs() < 1e-3, "{name}");
    }
}

#[test]
fn scores_are_finite_in_range_and_repeatable() {
    for c in table() {
        let d = spoof_distribution(&c.scores, SPOOF_THRESHOLD);
        assert_eq!(d.failed, 0, "{}: every image has one face", c.name);
        for s in c.scores.iter().flatten() {
            assert!(s.is_finite() && (0.0..=1.2).contains(s), "{}: score {s}", c.name);
        }
    }
    let (_, _, img) = &images()[0];
    assert_eq!(score(img), score(img));
    // Documents do not get the score.
    let a = engine().analyze(img, Options::document()).expect("analyze");
    assert_eq!(a.spoof_score, None);
}

/// What the README reports, measured 2026-11-30: on these images the model does **not** tell
/// live faces from the simulated attacks. It routes nearly every image, live or not, to the
/// same leaf (score ≈ 0.993), so at the package's threshold most live development faces are
/// flagged too. This test keeps those figures true: if a model, crop or attack change moves
/// them, it fails and the README (and the threshold) must be revisited. It does not claim a
/// separation that was not measured.
#[test]
fn the_measured_figures_hold_no_separation_on_this_data() {
    let live: Vec<_> = table().iter().filter(|c| c.live).collect();
    let attacks: Vec<_> = table().iter().filter(|c| !c.live).collect();
    assert_eq!((live.len(), attacks.len()), (2, 3));
    let live_median = spoof_distribution(&live[1].scores, SPOOF_THRESHOLD).median;
    for c in live.iter().chain(&attacks) {
        let d = spoof_distribution(&c.scores, SPOOF_THRESHOLD);
        // Measured: live 92.5% (crops) and 95.0% (frames) above 0.2; attacks 97.5% to 100%.
        assert!(d.above >= 0.85, "{}: only {:.1}% above the threshold", c.name, d.above * 100.0);
        // Measured: every category's median 0.993.
        assert!((d.median - live_median).abs() < 0.01, "{}: median {} against live {live_median}", c.name, d.median);
    }
}
