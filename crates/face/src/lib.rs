//! Mimoto's face engine. No HTTP, no database: images in, measurements out.
//!
//! - [`decode`]: JPEG/PNG/WebP with byte, dimension and pixel-count limits, EXIF orientation.
//! - [`quality`]: brightness, blur, face size and face count, each with a reason code.
//! - [`geometry`]: head yaw/pitch/roll and mouth opening from FaceMesh landmarks, from the
//!   member's point of view (mirrored front-camera images handled explicitly).
//! - [`align`]: 5-point similarity alignment onto the 112×112 ArcFace template.
//! - [`compare`]: embedding similarity and the same-person decision.

pub mod align;
pub mod compare;
pub mod decode;
pub mod geometry;
pub mod quality;
