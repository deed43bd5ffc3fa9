//! What the face crate's integration tests share: the models `make models` installs and the
//! development set `../shared/data/faces/bbt` (8 people × 5 face crops, MIT licence, from
//! face-api.js's examples). A missing model or image fails the test; nothing is skipped.

#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use face::decode::{decode, Limits};
use face::FaceEngine;
use image::RgbImage;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The engine, loaded once per test binary (`MIMOTO_MODELS_DIR` or `./models`).
pub fn engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = std::env::var_os("MIMOTO_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("models"));
        FaceEngine::load(&dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

pub fn load(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode(&bytes, &Limits::default()).expect("decode")
}

pub fn dev_set() -> PathBuf {
    let dir = repo().join("../shared/data/faces/bbt");
    assert!(dir.is_dir(), "the development set is missing: {}", dir.display());
    dir
}

/// (person, file name, image) for every development image, sorted.
pub fn images() -> Vec<(String, String, RgbImage)> {
    let mut out = Vec::new();
    for person in std::fs::read_dir(dev_set()).expect("read dev set") {
        let person = person.expect("entry").path();
        if !person.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&person).expect("read person") {
            let file = file.expect("entry").path();
            let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((name(&person), name(&file), load(&file)));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(out.len(), 40, "8 people × 5 images");
    out
}
