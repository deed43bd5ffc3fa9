//! [`FaceEngine`]: the models loaded once, shared cheaply (`Clone` is an `Arc`), used from any
//! thread. Inference is CPU-bound and blocking: async callers use
//! [`FaceEngine::analyze_bytes`], which runs on tokio's blocking pool, never on the executor.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;
use tract_onnx::prelude::*;

use crate::align::align;
use crate::compare::{cosine, decide, l2_normalize, Decision};
use crate::decode::{decode, DecodeError, Limits};
use crate::detect::{self, Detection};
use crate::geometry::{self, HeadPose, Mouth, Turn};
use crate::models::{self, ModelError, Plan};
use crate::quality::{self, Issue, Measures};

/// Cosine similarity at or above which two faces are taken for the same person. Chosen from
/// `mimoto face eval` on the development set (see README); configurable per engine.
pub const DEFAULT_THRESHOLD: f32 = 0.50;
/// FaceMesh's face flag below which a detector candidate is not taken for a face. Real faces
/// of the development set score 1.0 (clear, turned and degraded alike); a card that
/// BlazeFace mistook for a face scored 0.00001.
pub const MIN_FACE_CONFIDENCE: f32 = 0.5;

/// A detection FaceMesh confirmed, with its landmarks (image pixels) and face flag.
struct Checked {
    detection: Detection,
    points: Vec<geometry::Point3>,
    confidence: f32,
}

/// What kind of picture is analysed: thresholds and detector order differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    /// A selfie: the face fills much of the frame (short-range detector first).
    Selfie,
    /// A photo ID: the face is small (full-range detector first).
    Document,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub capture: Capture,
    /// The image is mirrored (front-camera preview): yaw and roll are flipped back so they
    /// stay from the member's point of view, and the face is un-mirrored for the embedding.
    pub mirrored: bool,
    /// Compute landmarks and head pose (FaceMesh).
    pub pose: bool,
    /// Compute the embedding for comparison.
    pub embed: bool,
    /// Compute the presentation-attack score ([`Analysis::spoof_score`]) of the single face.
    pub spoof: bool,
}

impl Options {
    pub fn selfie() -> Options {
        Options { capture: Capture::Selfie, mirrored: false, pose: true, embed: true, spoof: true }
    }
    pub fn document() -> Options {
        Options { capture: Capture::Document, mirrored: false, pose: false, embed: true, spoof: false }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimings {
    pub detect: Duration,
    pub landmarks: Duration,
    pub embed: Duration,
    pub spoof: Duration,
}

/// Everything measured on one image.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    pub capture: Capture,
    pub faces: Vec<Detection>,
    /// Quality problems as reason codes (`no_face`, `too_dark`, …); empty when usable.
    pub issues: Vec<Issue>,
    pub measures: Option<Measures>,
    /// Head pose and mouth opening (selfies with exactly one face).
    pub pose: Option<HeadPose>,
    pub turn: Option<Turn>,
    pub mouth: Option<Mouth>,
    /// FaceMesh's confidence that the crop holds a face.
    pub landmark_confidence: Option<f32>,
    #[serde(skip)]
    pub landmarks: Option<Vec<geometry::Point3>>,
    /// Unit-length embedding of the single face.
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
    /// Presentation-attack score of the single face (when [`Options::spoof`]): higher is more
    /// likely a photo, screen or other attack, about 0 to 1; above
    /// [`crate::antispoof::SPOOF_THRESHOLD`] it is a reason to send the case to review. A
    /// signal for review, never a decision by itself (see [`crate::antispoof`]).
    pub spoof_score: Option<f32>,
    #[serde(skip)]
    pub timings: StageTimings,
}

impl Analysis {
    /// Exactly one face and no quality problem.
    pub fn usable(&self) -> bool {
        self.faces.len() == 1 && self.issues.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("face model failed: {0}")]
    Inference(String),
    #[error("the face engine's worker stopped")]
    Worker,
}

impl From<TractError> for FaceError {
    fn from(e: TractError) -> Self {
        FaceError::Inference(format!("{e:#}"))
    }
}

struct Models {
    short_range: Plan,
    full_range: Plan,
    landmarks: Plan,
    embedding: Plan,
    antispoof: Plan,
}

#[derive(Clone)]
pub struct FaceEngine {
    models: Arc<Models>,
    threshold: f32,
    limits: Limits,
    /// Analyses running at once (one per core): a burst of uploads queues here instead of
    /// filling tokio's blocking pool with decoded images and model activations.
    permits: Arc<tokio::sync::Semaphore>,
}

/// How many analyses run at once by default: the number of cores.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl std::fmt::Debug for FaceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceEngine").field("threshold", &self.threshold).finish_non_exhaustive()
    }
}

impl FaceEngine {
    /// Loads and checks every model in `dir` (see [`models`]).
    pub fn load(dir: &Path) -> Result<FaceEngine, ModelError> {
        let models = Models {
            short_range: models::load(
                dir,
                models::SHORT_RANGE,
                [1, 3, detect::SHORT_RANGE.size, detect::SHORT_RANGE.size],
            )?,
            full_range: models::load(
                dir,
                models::FULL_RANGE,
                [1, 3, detect::FULL_RANGE.size, detect::FULL_RANGE.size],
            )?,
            landmarks: models::load(dir, models::LANDMARKS, [1, 3, crate::mesh::SIZE, crate::mesh::SIZE])?,
            embedding: models::load(dir, models::EMBEDDING, [1, 3, 112, 112])?,
            antispoof: models::load_tuned(
                dir,
                models::ANTISPOOF,
                [1, 3, crate::antispoof::SIZE, crate::antispoof::SIZE],
                crate::antispoof::TRACT_KNOBS,
            )?,
        };
        Ok(FaceEngine {
            models: Arc::new(models),
            threshold: DEFAULT_THRESHOLD,
            limits: Limits::default(),
            permits: Arc::new(tokio::sync::Semaphore::new(default_concurrency())),
        })
    }

    /// At most `n` analyses at once (at least one); the engine's clones share the limit.
    pub fn with_concurrency(mut self, n: usize) -> FaceEngine {
        self.permits = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// The permits an analysis waits for (shared by the engine's clones): for metrics, and for
    /// tests that hold them to see a burst queue.
    pub fn permits(&self) -> Arc<tokio::sync::Semaphore> {
        self.permits.clone()
    }

    pub fn with_threshold(mut self, threshold: f32) -> FaceEngine {
        self.threshold = threshold;
        self
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Faces in `img`, best first: one detector, then the other if the first finds nothing.
    /// Every candidate must also be a face to FaceMesh (its face flag at least
    /// [`MIN_FACE_CONFIDENCE`]): BlazeFace alone sometimes sees a face in a whole card
    /// photographed as JPEG, which would hide the real, small ID photo.
    pub fn detect(&self, img: &RgbImage, capture: Capture) -> Result<Vec<Detection>, FaceError> {
        Ok(self.detect_checked(img, capture)?.into_iter().map(|c| c.detection).collect())
    }

    /// [`FaceEngine::detect`] with FaceMesh's landmarks and face flag of every kept face, so
    /// `analyze` does not run FaceMesh on the same face twice.
    fn detect_checked(&self, img: &RgbImage, capture: Capture) -> Result<Vec<Checked>, FaceError> {
        let short = (&self.models.short_range, &detect::SHORT_RANGE);
        let full = (&self.models.full_range, &detect::FULL_RANGE);
        let order = match capture {
            Capture::Selfie => [short, full],
            Capture::Document => [full, short],
        };
        for (plan, variant) in order {
            let found = self.confirmed(img, detect::run(plan, variant, img)?)?;
            if !found.is_empty() {
                return Ok(found);
            }
        }
        if capture == Capture::Document {
            let tiled = self.detect_tiled(img)?;
            return self.confirmed(img, tiled);
        }
        Ok(Vec::new())
    }

    /// The candidates FaceMesh agrees are faces, with their landmarks.
    fn confirmed(&self, img: &RgbImage, found: Vec<Detection>) -> Result<Vec<Checked>, FaceError> {
        let mut kept = Vec::with_capacity(found.len());
        for detection in found {
            let (points, confidence) = self.landmarks(img, &detection)?;
            if confidence >= MIN_FACE_CONFIDENCE {
                kept.push(Checked { detection, points, confidence });
            }
        }
        Ok(kept)
    }

    /// A face too small for the whole-image pass (a card far from the camera): the full-range
    /// detector on a 3×3 grid of overlapping tiles, each half the image's size, so faces are
    /// seen twice as large; results mapped back and merged.
    fn detect_tiled(&self, img: &RgbImage) -> Result<Vec<Detection>, FaceError> {
        let (w, h) = img.dimensions();
        let (tw, th) = (w / 2, h / 2);
        if tw < 32 || th < 32 {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for j in 0..3u32 {
            for i in 0..3u32 {
                let (x0, y0) = (i * (w - tw) / 2, j * (h - th) / 2);
                let tile = image::imageops::crop_imm(img, x0, y0, tw, th).to_image();
                for mut d in detect::run(&self.models.full_range, &detect::FULL_RANGE, &tile)? {
                    d.rect.x += x0 as f32;
                    d.rect.y += y0 as f32;
                    for kp in &mut d.keypoints {
                        kp.0 += x0 as f32;
                        kp.1 += y0 as f32;
                    }
                    found.push(d);
                }
            }
        }
        Ok(detect::weighted_nms(found))
    }

    /// FaceMesh landmarks of a detected face, in image pixels, and the model's confidence.
    pub fn landmarks(&self, img: &RgbImage, face: &Detection) -> Result<(Vec<geometry::Point3>, f32), FaceError> {
        Ok(crate::mesh::run(&self.models.landmarks, img, face)?)
    }

    /// Unit-length embedding of a face aligned with FaceMesh landmarks on the 5-point template
    /// (eye centres, nose tip, mouth corners): steadier than the detector's keypoints.
    pub fn embed_landmarks(
        &self,
        img: &RgbImage,
        points: &[geometry::Point3],
        mirrored: bool,
    ) -> Result<Vec<f32>, FaceError> {
        use geometry::idx;
        let p = |i: usize| {
            points.get(i).map(|p| (p.x, p.y)).ok_or_else(|| FaceError::Inference("too few landmarks".into()))
        };
        let mid = |a: (f32, f32), b: (f32, f32)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        let five = [
            mid(p(idx::EYE_RIGHT_OUTER)?, p(idx::EYE_RIGHT_INNER)?),
            mid(p(idx::EYE_LEFT_OUTER)?, p(idx::EYE_LEFT_INNER)?),
            p(idx::NOSE_TIP)?,
            p(idx::MOUTH_RIGHT)?,
            p(idx::MOUTH_LEFT)?,
        ];
        self.embed_aligned(img, &five, mirrored)
    }

    fn embed_aligned(&self, img: &RgbImage, points: &[(f32, f32); 5], mirrored: bool) -> Result<Vec<f32>, FaceError> {
        // A mirrored picture shows the member's mirror image, which the models see as an
        // ordinary face: align it as such, then flip the aligned crop (the template is
        // left-right symmetric) so both kinds of capture give the member's own face.
        let mut aligned = align(img, points).ok_or_else(|| FaceError::Inference("degenerate face keypoints".into()))?;
        if mirrored {
            image::imageops::flip_horizontal_in_place(&mut aligned);
        }
        let plane = 112 * 112;
        let mut data = vec![0.0f32; 3 * plane];
        for (x, y, p) in aligned.enumerate_pixels() {
            for c in 0..3 {
                data[c * plane + y as usize * 112 + x as usize] = (f32::from(p[c]) - 127.5) / 128.0;
            }
        }
        let input = Tensor::from_shape(&[1, 3, 112, 112], &data)?;
        let out = self.models.embedding.run(tvec!(input.into()))?;
        let first = out.first().ok_or_else(|| FaceError::Inference("no embedding output".into()))?;
        let mut v: Vec<f32> = first.to_plain_array_view::<f32>()?.iter().copied().collect();
        l2_normalize(&mut v);
        Ok(v)
    }

    /// The anti-spoofing model's outputs for the face detected at `face` (see
    /// [`crate::antispoof`]); `None` when the box gives no crop.
    pub fn spoof(&self, img: &RgbImage, face: &Detection) -> Result<Option<crate::antispoof::Output>, FaceError> {
        self.spoof_scaled(img, face, crate::antispoof::CROP_SCALE)
    }

    /// [`FaceEngine::spoof`] on a crop `scale` times the box's larger side (evaluation).
    pub fn spoof_scaled(
        &self,
        img: &RgbImage,
        face: &Detection,
        scale: f32,
    ) -> Result<Option<crate::antispoof::Output>, FaceError> {
        let Some(input) = crate::antispoof::input(img, &face.rect, scale) else { return Ok(None) };
        Ok(Some(crate::antispoof::run_tensor(&self.models.antispoof, input)?))
    }

    /// Detection, quality, and (for exactly one face) head pose, embedding and spoof score.
    pub fn analyze(&self, img: &RgbImage, opts: Options) -> Result<Analysis, FaceError> {
        let mut timings = StageTimings::default();
        let t = Instant::now();
        let checked = self.detect_checked(img, opts.capture)?;
        timings.detect = t.elapsed();
        let faces: Vec<Detection> = checked.iter().map(|c| c.detection).collect();
        let rects: Vec<_> = faces.iter().map(|f| f.rect).collect();
        let thresholds = match opts.capture {
            Capture::Selfie => quality::Thresholds::SELFIE,
            Capture::Document => quality::Thresholds::DOCUMENT,
        };
        let (issues, measures) = quality::assess(img, &rects, &thresholds);
        let mut analysis = Analysis {
            width: img.width(),
            height: img.height(),
            capture: opts.capture,
            faces,
            issues,
            measures,
            pose: None,
            turn: None,
            mouth: None,
            landmark_confidence: None,
            landmarks: None,
            embedding: None,
            spoof_score: None,
            timings,
        };
        let [face] = checked.as_slice() else { return Ok(analysis) };
        if opts.pose {
            // The landmarks come from the detection check (counted in `detect`).
            let t = Instant::now();
            let (points, confidence) = (face.points.clone(), face.confidence);
            analysis.pose = HeadPose::from_landmarks(&points, opts.mirrored);
            let g = geometry::Thresholds::default();
            analysis.turn = analysis.pose.as_ref().map(|p| g.turn(p));
            analysis.mouth = analysis.pose.as_ref().map(|p| g.mouth(p));
            analysis.landmark_confidence = Some(confidence);
            analysis.landmarks = Some(points);
            analysis.timings.landmarks = t.elapsed();
        }
        if opts.embed {
            let t = Instant::now();
            // Aligned on FaceMesh landmarks (computed here if the pose was not asked for): on
            // the development set this separates people clearly better than the detector's
            // four keypoints (README, face engine).
            let embedding = self.embed_landmarks(img, &face.points, opts.mirrored)?;
            analysis.embedding = Some(embedding);
            analysis.timings.embed = t.elapsed();
        }
        if opts.spoof {
            let t = Instant::now();
            analysis.spoof_score = self.spoof(img, &face.detection)?.map(|o| o.score());
            analysis.timings.spoof = t.elapsed();
        }
        Ok(analysis)
    }

    /// Decodes (with the engine's limits) and analyses, on tokio's blocking pool.
    pub async fn analyze_bytes(&self, bytes: Vec<u8>, opts: Options) -> Result<Analysis, FaceError> {
        Ok(self.decode_and_analyze(bytes, opts).await?.1)
    }

    /// [`FaceEngine::analyze_bytes`], also returning the decoded image (for a caller that reads
    /// the same picture otherwise, e.g. OCR of a document, without decoding it twice).
    pub async fn decode_and_analyze(&self, bytes: Vec<u8>, opts: Options) -> Result<(RgbImage, Analysis), FaceError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| FaceError::Worker)?;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let img = decode(&bytes, &engine.limits)?;
            let analysis = engine.analyze(&img, opts)?;
            Ok((img, analysis))
        })
        .await
        .map_err(|_| FaceError::Worker)?
    }

    /// Similarity of two analysed faces and the decision at the engine's threshold; `None`
    /// unless both have an embedding.
    pub fn compare(&self, a: &Analysis, b: &Analysis) -> Option<Decision> {
        Some(decide(cosine(a.embedding.as_ref()?, b.embedding.as_ref()?), self.threshold))
    }
}
