//! `make bench` (face part): warm latency of each stage and of a whole eKYC case — an ID
//! document photo, a frontal selfie and an angled selfie — and peak memory with the models
//! loaded. Not a test: numbers, for the README.
//!
//! Images are built from the development set (`../shared/data/faces/bbt`): the document is a
//! 1024×640 card with a 260×320 ID photo on it (the degraded face 190 px high, about a
//! driving licence's proportions), the selfies
//! are faces placed in 720×960 frames the way a phone front camera sees them (face ~55% of
//! the width). MIMOTO_BENCH_ITERS sets the iterations (default 30).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure with a message

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use face::{Capture, FaceEngine, Options};
use image::{Rgb, RgbImage};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    face::decode::decode(&bytes, &face::decode::Limits::default()).expect("decode")
}

fn place(canvas: &mut RgbImage, img: &RgbImage, x: i64, y: i64) {
    image::imageops::overlay(canvas, img, x, y);
}

fn selfie(face: &RgbImage) -> RgbImage {
    let big = image::imageops::resize(face, 400, 400, image::imageops::FilterType::CatmullRom);
    let mut frame = RgbImage::from_pixel(720, 960, Rgb([96, 104, 112]));
    place(&mut frame, &big, 160, 260);
    frame
}

fn document(face: &RgbImage) -> RgbImage {
    // An ID photo: the (degraded) face with background around it, as printed on cards.
    let face = face::eval::degrade(face).expect("degrade");
    let face = image::imageops::resize(&face, 190, 190, image::imageops::FilterType::Triangle);
    let mut photo = RgbImage::from_pixel(260, 320, Rgb([200, 212, 224]));
    place(&mut photo, &face, 35, 60);
    let mut card = RgbImage::from_pixel(1024, 640, Rgb([232, 236, 228]));
    for x in 40..980 {
        for y in 60..64 {
            card.put_pixel(x, y, Rgb([40, 60, 120]));
        }
    }
    place(&mut card, &photo, 720, 200);
    card
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn report(name: &str, mut v: Vec<Duration>) {
    let p50 = percentile(&mut v, 0.5);
    let p90 = percentile(&mut v, 0.9);
    println!("{name:<44} p50 {:>7.1} ms   p90 {:>7.1} ms", ms(p50), ms(p90));
}

fn main() {
    let iters: usize = std::env::var("MIMOTO_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let models = std::env::var_os("MIMOTO_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("models"));
    let rss_before = peak_rss_mib();
    let t = Instant::now();
    let engine = FaceEngine::load(&models).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "models loaded and checked in {:.0} ms; peak RSS {:.0} MiB (before: {:.0} MiB)",
        ms(t.elapsed()),
        peak_rss_mib(),
        rss_before
    );

    let bbt = repo().join("../shared/data/faces/bbt");
    let doc = document(&load(&bbt.join("leonard/leonard1.png")));
    let front = selfie(&load(&bbt.join("leonard/leonard2.png")));
    let angled = selfie(&load(&bbt.join("leonard/leonard3.png")));
    if let Some(dir) = std::env::var_os("MIMOTO_BENCH_SAVE") {
        for (name, img) in [("document.png", &doc), ("frontal.png", &front), ("angled.png", &angled)] {
            img.save(Path::new(&dir).join(name)).expect("save");
        }
    }

    // Sanity: what each image gives, so the timings are of real work.
    let d = engine.analyze(&doc, Options::document()).expect("doc");
    let f = engine.analyze(&front, Options::selfie()).expect("front");
    let a = engine.analyze(&angled, Options { embed: false, ..Options::selfie() }).expect("angled");
    let decision = engine.compare(&d, &f).expect("both have one face");
    println!(
        "document: {} face(s) {:?}; frontal: yaw {:.1}°, spoof score {:.3}; angled: yaw {:.1}° ({:?}); document vs selfie score {:.3} (same person: {})",
        d.faces.len(),
        d.issues,
        f.pose.map(|p| p.yaw).unwrap_or(f32::NAN),
        f.spoof_score.unwrap_or(f32::NAN),
        a.pose.map(|p| p.yaw).unwrap_or(f32::NAN),
        a.turn,
        decision.score,
        decision.same_person
    );

    let (mut det_short, mut det_full, mut mesh, mut embed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut spoof = Vec::new();
    let (mut case_seq, mut case_par, mut decode) = (Vec::new(), Vec::new(), Vec::new());
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&front).expect("jpeg");
    for _ in 0..iters {
        let t = Instant::now();
        let _ = face::decode::decode(&jpeg, &face::decode::Limits::default()).expect("decode");
        decode.push(t.elapsed());

        let t = Instant::now();
        let faces = engine.detect(&front, Capture::Selfie).expect("detect");
        det_short.push(t.elapsed());
        let t = Instant::now();
        let _ = engine.detect(&doc, Capture::Document).expect("detect");
        det_full.push(t.elapsed());
        let t = Instant::now();
        let (points, _) = engine.landmarks(&front, &faces[0]).expect("mesh");
        mesh.push(t.elapsed());
        let t = Instant::now();
        let _ = engine.embed_landmarks(&front, &points, false).expect("embed");
        embed.push(t.elapsed());
        let t = Instant::now();
        let _ = engine.spoof(&front, &faces[0]).expect("spoof");
        spoof.push(t.elapsed());

        // The whole case on one thread.
        let t = Instant::now();
        let d = engine.analyze(&doc, Options::document()).expect("doc");
        let f = engine.analyze(&front, Options::selfie()).expect("front");
        let _ = engine.analyze(&angled, Options { embed: false, ..Options::selfie() }).expect("angled");
        let _ = engine.compare(&d, &f);
        case_seq.push(t.elapsed());

        // The same with the document on a second thread (2 cores).
        let t = Instant::now();
        let (d, f) = std::thread::scope(|s| {
            let doc_job = s.spawn(|| engine.analyze(&doc, Options::document()).expect("doc"));
            let f = engine.analyze(&front, Options::selfie()).expect("front");
            let _ = engine.analyze(&angled, Options { embed: false, ..Options::selfie() }).expect("angled");
            (doc_job.join().expect("join"), f)
        });
        let _ = engine.compare(&d, &f);
        case_par.push(t.elapsed());
    }
    println!("{iters} iterations, warm, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    report("decode JPEG 720×960", decode);
    report("detect, short range (selfie 720×960)", det_short);
    report("detect, full range (document 1024×640)", det_full);
    report("landmarks (FaceMesh)", mesh);
    report("embedding (align + MobileFaceNet)", embed);
    report("anti-spoofing score (crop + model)", spoof);
    report("whole case, one thread", case_seq);
    report("whole case, document on a second thread", case_par);
    println!("peak RSS with models loaded, after the runs: {:.0} MiB", peak_rss_mib());
}
