//! `mimoto face …` as an operator runs it: the real binary, the models `make models`
//! installed, the development set's images.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mimoto");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bbt(rel: &str) -> String {
    repo().join("../shared/data/faces/bbt").join(rel).display().to_string()
}

fn mimoto(args: &[&str], models: &Path) -> (i32, serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("MIMOTO_MODELS_DIR", models)
        .env_remove("MIMOTO_FACE_THRESHOLD")
        .output()
        .expect("run mimoto");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn models() -> PathBuf {
    std::env::var_os("MIMOTO_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("models"))
}

#[test]
fn compare_says_same_and_different_people() {
    let (code, same, err) = mimoto(&["face", "compare", &bbt("penny/penny1.png"), &bbt("penny/penny2.png")], &models());
    assert_eq!(code, 0, "{err}");
    assert_eq!(same["same_person"], true, "{same}");
    assert!(same["score"].as_f64().expect("score") > same["threshold"].as_f64().expect("threshold"));
    assert_eq!(same["a"]["faces"], 1);
    assert!(same["b"]["quality"].is_array());

    let (code, diff, _) = mimoto(&["face", "compare", &bbt("penny/penny1.png"), &bbt("raj/raj1.png")], &models());
    assert_eq!(code, 0);
    assert_eq!(diff["same_person"], false, "{diff}");
}

#[test]
fn unusable_input_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"not an image").expect("write");
    let (code, out, err) =
        mimoto(&["face", "compare", &bbt("penny/penny1.png"), &junk.display().to_string()], &models());
    assert_eq!(code, 2);
    assert_eq!((out["error"].as_str(), out["image"].as_str()), (Some("image_unsupported_format"), Some("b")));
    assert!(err.contains("not a JPEG"), "{err}");

    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128])).save(&blank).expect("save");
    let (code, out, _) =
        mimoto(&["face", "compare", &blank.display().to_string(), &bbt("penny/penny1.png")], &models());
    assert_eq!((code, out["error"].as_str()), (2, Some("no_face")));
}

#[test]
fn inspect_reports_pose_and_quality() {
    let (code, out, err) = mimoto(&["face", "inspect", &bbt("amy/amy1.png")], &models());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["faces"].as_array().map(Vec::len), Some(1));
    let yaw = out["yaw"].as_f64().expect("yaw");
    assert!(yaw > 10.0, "amy1 looks to her right: {out}");
    for key in ["pitch", "roll", "mouth_open"] {
        assert!(out[key].is_number(), "{key}: {out}");
    }
    assert!(out["quality"].is_array());
    let (_, mirrored, _) = mimoto(&["face", "inspect", "--mirrored", &bbt("amy/amy1.png")], &models());
    assert!(mirrored["yaw"].as_f64().expect("yaw") < -10.0, "declared mirrored flips yaw: {mirrored}");
}

#[test]
fn eval_prints_a_summary_and_writes_the_plot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plot = dir.path().join("det.png");
    let (code, out, err) =
        mimoto(&["face", "eval", &bbt(""), "--json", "--plot", &plot.display().to_string()], &models());
    assert_eq!(code, 0, "{err}");
    assert_eq!((out["images"].as_u64(), out["people"].as_u64()), (Some(40), Some(8)));
    for variant in ["selfie_vs_selfie", "document_vs_selfie"] {
        let v = &out[variant];
        assert!(v["genuine"]["pairs"].as_u64().expect("pairs") > 0, "{v}");
        assert_eq!(v["at_fmr"].as_array().map(Vec::len), Some(2));
        assert!(v["lowest_fmr"]["threshold"].is_number());
    }
    assert_eq!(out["selfie_vs_selfie"]["impostor"]["pairs"], 700);
    let png = std::fs::read(&plot).expect("plot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real plot, {} bytes", png.len());
}

#[test]
fn missing_or_altered_models_are_refused_with_the_install_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = mimoto(&["face", "inspect", &bbt("amy/amy1.png")], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("missing") && err.contains("make models"), "{err}");
    for f in std::fs::read_dir(models()).expect("models") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, dir.path().join(f.file_name().expect("name"))).expect("copy");
    }
    let victim = dir.path().join("mobilefacenet.onnx");
    let mut bytes = std::fs::read(&victim).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&victim, bytes).expect("write");
    let (code, _, err) = mimoto(&["face", "inspect", &bbt("amy/amy1.png")], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("mobilefacenet.onnx") && err.contains("does not match models.lock"), "{err}");
}
