//! Mimoto's face engine. No HTTP, no database: images in, measurements out.
//!
//! - [`decode`]: JPEG/PNG/WebP with byte, dimension and pixel-count limits, EXIF orientation.
//! - [`detect`]: MediaPipe BlazeFace (short and full range) boxes and keypoints.
//! - [`mesh`]: FaceMesh's 468 landmarks around a detected face.
//! - [`geometry`]: head yaw/pitch/roll and mouth opening from those landmarks, from the
//!   member's point of view (mirrored front-camera images handled explicitly).
//! - [`quality`]: brightness, blur, face size and face count, each with a reason code.
//! - [`align`]: similarity alignment of a face onto the 112×112 ArcFace template.
//! - [`compare`]: embedding similarity and the same-person decision.
//! - [`antispoof`]: a passive presentation-attack score, a reason for review only.
//! - [`models`]: loading the ONNX models checked against `models.lock`.
//! - [`engine`]: [`FaceEngine`], which ties these together.
//! - [`eval`]: score distributions, FNMR at fixed FMR, DET plots; simulated presentation
//!   attacks and the anti-spoofing score's distributions.

pub mod align;
pub mod antispoof;
pub mod compare;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod eval;
pub mod geometry;
pub mod mesh;
pub mod models;
pub mod quality;

pub use engine::{Analysis, Capture, FaceEngine, FaceError, Options};
