//! `mimoto face compare|inspect|eval`: the face engine from the command line, JSON out.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use face::eval::{self, Sample, Scores, Summary};
use face::{Analysis, Capture, FaceEngine, Options};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum FaceCommand {
    /// Compare the faces of two images; prints one JSON object. Exit 0 when compared, 2 when an
    /// image is unusable (unreadable, no face or more than one).
    Compare(CompareArgs),
    /// Faces, head yaw/pitch/roll, mouth opening and quality reasons of one image, as JSON.
    Inspect(InspectArgs),
    /// Evaluate on a folder with one sub-folder of images per person: score distributions,
    /// FNMR at FMR 1% / 0.1% / the lowest the data supports, thresholds, and a DET plot; also
    /// with one side degraded like a printed ID photo ("document vs selfie").
    Eval(EvalArgs),
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    pub image_a: PathBuf,
    pub image_b: PathBuf,
    /// IMAGE_A is a photo ID (small face; full-range detector first).
    #[arg(long)]
    pub document_a: bool,
    /// IMAGE_B is a mirrored front-camera picture.
    #[arg(long)]
    pub mirrored_b: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    pub image: PathBuf,
    /// The image is a photo ID (small face; full-range detector first).
    #[arg(long)]
    pub document: bool,
    /// The image is mirrored (front-camera preview): yaw and roll are given un-mirrored.
    #[arg(long)]
    pub mirrored: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A folder with one sub-folder of images per person.
    pub dir: PathBuf,
    /// Where to write the DET plot (PNG).
    #[arg(long, default_value = "face-eval.png")]
    pub plot: PathBuf,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How a `mimoto face` command ended: the exit code and what to print.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    /// Why the input was unusable (exit code 2), for stderr.
    pub reason: Option<String>,
}

fn load_image(engine: &FaceEngine, path: &Path) -> Result<image::RgbImage, (&'static str, String)> {
    let bytes = std::fs::read(path).map_err(|e| ("unreadable_file", format!("{}: {e}", path.display())))?;
    face::decode::decode(&bytes, engine.limits()).map_err(|e| (e.code(), format!("{}: {e}", path.display())))
}

fn image_json(path: &Path, a: &Analysis) -> serde_json::Value {
    json!({
        "file": path.display().to_string(),
        "capture": a.capture,
        "faces": a.faces.len(),
        "quality": a.issues,
        "measures": a.measures,
    })
}

fn unusable(which: &str, path: &Path, code: &str, message: String) -> Outcome {
    let out = json!({ "error": code, "image": which, "file": path.display().to_string(), "message": message });
    Outcome { code: 2, stdout: out.to_string(), reason: Some(message) }
}

pub fn run(engine: &FaceEngine, command: &FaceCommand) -> Result<Outcome, Box<dyn std::error::Error>> {
    match command {
        FaceCommand::Compare(args) => Ok(compare(engine, args)?),
        FaceCommand::Inspect(args) => Ok(inspect(engine, args)?),
        FaceCommand::Eval(args) => evaluate(engine, args),
    }
}

fn compare(engine: &FaceEngine, args: &CompareArgs) -> Result<Outcome, face::FaceError> {
    let opts_a = if args.document_a { Options::document() } else { Options { pose: false, ..Options::selfie() } };
    let opts_b = Options { pose: false, mirrored: args.mirrored_b, ..Options::selfie() };
    let mut analyses = Vec::new();
    for (which, path, opts) in [("a", &args.image_a, opts_a), ("b", &args.image_b, opts_b)] {
        let img = match load_image(engine, path) {
            Ok(img) => img,
            Err((code, message)) => return Ok(unusable(which, path, code, message)),
        };
        let a = engine.analyze(&img, opts)?;
        match a.faces.len() {
            0 => return Ok(unusable(which, path, "no_face", format!("{}: no face found", path.display()))),
            1 => {}
            n => {
                return Ok(unusable(
                    which,
                    path,
                    "multiple_faces",
                    format!("{}: {n} faces; exactly one is needed", path.display()),
                ))
            }
        }
        analyses.push(a);
    }
    let (a, b) = (&analyses[0], &analyses[1]);
    let Some(decision) = engine.compare(a, b) else {
        return Ok(unusable("a", &args.image_a, "no_embedding", "no embedding".into()));
    };
    let out = json!({
        "score": decision.score,
        "threshold": decision.threshold,
        "same_person": decision.same_person,
        "a": image_json(&args.image_a, a),
        "b": image_json(&args.image_b, b),
    });
    Ok(Outcome { code: 0, stdout: out.to_string(), reason: None })
}

fn inspect(engine: &FaceEngine, args: &InspectArgs) -> Result<Outcome, face::FaceError> {
    let img = match load_image(engine, &args.image) {
        Ok(img) => img,
        Err((code, message)) => return Ok(unusable("image", &args.image, code, message)),
    };
    let capture = if args.document { Capture::Document } else { Capture::Selfie };
    let spoof = capture == Capture::Selfie;
    let a = engine.analyze(&img, Options { capture, mirrored: args.mirrored, pose: true, embed: false, spoof })?;
    let out = json!({
        "file": args.image.display().to_string(),
        "width": a.width,
        "height": a.height,
        "capture": a.capture,
        "mirrored": args.mirrored,
        "faces": a.faces,
        "yaw": a.pose.map(|p| p.yaw),
        "pitch": a.pose.map(|p| p.pitch),
        "roll": a.pose.map(|p| p.roll),
        "mouth_open": a.pose.map(|p| p.mouth_open),
        "turn": a.turn,
        "mouth": a.mouth,
        "landmark_confidence": a.landmark_confidence,
        "spoof_score": a.spoof_score,
        "quality": a.issues,
        "measures": a.measures,
    });
    Ok(Outcome { code: 0, stdout: out.to_string(), reason: None })
}

/// The images of `dir`, one sub-folder per person, sorted.
fn dataset(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let read = |d: &Path| std::fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()));
    let mut out = Vec::new();
    for person in read(dir)? {
        let person = person.map_err(|e| e.to_string())?.path();
        if !person.is_dir() {
            continue;
        }
        let name = person.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for file in read(&person)? {
            let file = file.map_err(|e| e.to_string())?.path();
            let ext = file.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
            if ["jpg", "jpeg", "png", "webp"].contains(&ext.as_str()) {
                out.push((name.clone(), file));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn summary_text(name: &str, s: &Summary) -> String {
    let mut t = format!(
        "{name}\n  genuine:  {} pairs ({} without a face) score min {:.3} mean {:.3} max {:.3}\n  impostor: {} pairs ({} without a face) score min {:.3} mean {:.3} max {:.3}\n  EER ≈ {:.2}%\n",
        s.genuine.pairs, s.genuine.failed, s.genuine.min, s.genuine.mean, s.genuine.max,
        s.impostor.pairs, s.impostor.failed, s.impostor.min, s.impostor.mean, s.impostor.max,
        s.eer * 100.0
    );
    for p in s.at_fmr.iter().chain(std::iter::once(&s.lowest_fmr)) {
        t.push_str(&format!(
            "  FMR target {:>7.3}%: threshold {:.3}  FMR {:.3}%  FNMR {:.2}%{}\n",
            p.target_fmr * 100.0,
            p.threshold,
            p.fmr * 100.0,
            p.fnmr * 100.0,
            if p.supported { "" } else { "  (too few impostor pairs to measure)" }
        ));
    }
    t
}

fn evaluate(engine: &FaceEngine, args: &EvalArgs) -> Result<Outcome, Box<dyn std::error::Error>> {
    let files = dataset(&args.dir)?;
    if files.is_empty() {
        return Err(format!("no images under {}", args.dir.display()).into());
    }
    let started = Instant::now();
    let mut selfies = Vec::new();
    let mut documents = Vec::new();
    for (person, path) in &files {
        let img = load_image(engine, path).map_err(|(_, m)| m)?;
        let analyze = |img: &image::RgbImage, opts: Options| -> Result<Option<Vec<f32>>, face::FaceError> {
            let a = engine.analyze(img, Options { pose: false, spoof: false, ..opts })?;
            Ok(if a.faces.len() == 1 { a.embedding } else { None })
        };
        let file = path.display().to_string();
        selfies.push(Sample {
            person: person.clone(),
            file: file.clone(),
            embedding: analyze(&img, Options::selfie())?,
        });
        let degraded = eval::degrade(&img)?;
        documents.push(Sample { person: person.clone(), file, embedding: analyze(&degraded, Options::document())? });
    }
    let plain = eval::all_pairs(&selfies);
    let cross = eval::cross_pairs(&documents, &selfies);
    let (s_plain, s_cross) = (eval::summarize(&plain), eval::summarize(&cross));
    let curves: [(&str, &Scores); 2] = [("selfie vs selfie", &plain), ("document (degraded) vs selfie", &cross)];
    eval::plot_det(&curves, &args.plot)?;
    let people = {
        let mut p: Vec<&String> = files.iter().map(|(p, _)| p).collect();
        p.dedup();
        p.len()
    };
    let no_face = |v: &[Sample]| v.iter().filter(|s| s.embedding.is_none()).map(|s| s.file.clone()).collect::<Vec<_>>();
    let stdout = if args.json {
        json!({
            "images": files.len(),
            "people": people,
            "threshold": engine.threshold(),
            "no_face": { "selfie": no_face(&selfies), "document": no_face(&documents) },
            "selfie_vs_selfie": s_plain,
            "document_vs_selfie": s_cross,
            "plot": args.plot.display().to_string(),
            "seconds": started.elapsed().as_secs_f64(),
        })
        .to_string()
    } else {
        format!(
            "{} images of {} people; engine threshold {:.3}; no single face: selfie {:?}, degraded {:?}\n{}{}DET plot: {}\n",
            files.len(),
            people,
            engine.threshold(),
            no_face(&selfies),
            no_face(&documents),
            summary_text("selfie vs selfie", &s_plain),
            summary_text("document (40%, grayscale, JPEG q30) vs selfie", &s_cross),
            args.plot.display()
        )
    };
    Ok(Outcome { code: 0, stdout, reason: None })
}
