//! Loading the pretrained models: each file is read once, checked against its SHA-256 pin in
//! `models.lock` (compiled in), and only then parsed, so a missing, truncated or replaced model
//! is refused with the command that installs the right one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

/// The lock file the models were installed against (`make models` checks the same file).
pub const LOCK: &str = include_str!("../../../models.lock");

/// How to install the models; every error about them says it.
pub const INSTALL_HINT: &str = "run `make models` (scripts/models/install.sh)";

pub const SHORT_RANGE: &str = "face_detection_short_range.onnx";
pub const FULL_RANGE: &str = "face_detection_full_range.onnx";
pub const LANDMARKS: &str = "face_landmark.onnx";
pub const EMBEDDING: &str = "mobilefacenet.onnx";
pub const ANTISPOOF: &str = "antispoof.onnx";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("face model {file} is missing from {dir}; {INSTALL_HINT}")]
    Missing { file: String, dir: PathBuf },
    #[error("face model {file} in {dir} does not match models.lock (altered or from another version); {INSTALL_HINT}")]
    Altered { file: String, dir: PathBuf },
    #[error("face model {file} is not pinned in models.lock")]
    NotPinned { file: String },
    #[error("face model {file} could not be loaded: {reason}")]
    Load { file: String, reason: String },
}

/// The SHA-256 pinned for `file` in [`LOCK`].
pub fn pinned_sha256(file: &str) -> Option<&'static str> {
    LOCK.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|parts| parts.len() >= 2 && parts[1] == file)
        .map(|parts| parts[0])
}

/// Reads `dir/file`, checks its pin and returns the bytes.
pub fn read_verified(dir: &Path, file: &str) -> Result<Vec<u8>, ModelError> {
    let pin = pinned_sha256(file).ok_or_else(|| ModelError::NotPinned { file: file.into() })?;
    let bytes =
        std::fs::read(dir.join(file)).map_err(|_| ModelError::Missing { file: file.into(), dir: dir.into() })?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if hex != pin {
        return Err(ModelError::Altered { file: file.into(), dir: dir.into() });
    }
    Ok(bytes)
}

pub(crate) type Plan = Arc<TypedRunnableModel>;

/// Parses and optimizes an ONNX model for a fixed input shape (NCHW, f32).
pub(crate) fn load(dir: &Path, file: &str, input_shape: [usize; 4]) -> Result<Plan, ModelError> {
    load_tuned(dir, file, input_shape, &[])
}

/// [`load`] with tract knobs (`(name, value)`) set while this one model is optimized.
pub(crate) fn load_tuned(
    dir: &Path,
    file: &str,
    input_shape: [usize; 4],
    knobs: &[(&str, &str)],
) -> Result<Plan, ModelError> {
    let bytes = read_verified(dir, file)?;
    let err = |e: TractError| ModelError::Load { file: file.into(), reason: format!("{e:#}") };
    let scope = tract_data::knobs::KnobScope::new(knobs.iter().copied()).map_err(err)?;
    scope
        .enter(|| {
            tract_onnx::onnx()
                .model_for_read(&mut bytes.as_slice())
                .and_then(|m| m.with_input_fact(0, f32::fact(input_shape).into()))
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
        })
        .map_err(err)
}

/// The default models directory: `$MIMOTO_MODELS_DIR`, else `./models`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("MIMOTO_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("models"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_pinned() {
        for f in [SHORT_RANGE, FULL_RANGE, LANDMARKS, EMBEDDING, ANTISPOOF] {
            let pin = pinned_sha256(f).expect("pinned");
            assert_eq!(pin.len(), 64, "{f}");
        }
        assert_eq!(pinned_sha256("face_landmark.tflite"), None, "source pins are comments");
        assert_eq!(pinned_sha256("FaceAntiSpoofing.tflite"), None, "source pins are comments");
    }

    #[test]
    fn missing_and_altered_files_are_refused_with_the_install_command() {
        let dir = std::env::temp_dir().join(format!("mimoto-face-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let missing = read_verified(&dir, LANDMARKS).expect_err("missing");
        assert!(matches!(missing, ModelError::Missing { .. }));
        assert!(missing.to_string().contains("make models"), "{missing}");
        std::fs::write(dir.join(LANDMARKS), b"not a model").expect("write");
        let altered = read_verified(&dir, LANDMARKS).expect_err("altered");
        assert!(matches!(altered, ModelError::Altered { .. }));
        assert!(altered.to_string().contains("make models"), "{altered}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
