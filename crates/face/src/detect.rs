//! Face detection with MediaPipe BlazeFace: the short-range model (faces filling much of a
//! selfie) and the full-range model (small faces, e.g. the photo on an ID card).
//!
//! The image is letterboxed into the model's square input (aspect kept, black bars), the model
//! scores a fixed set of anchors, boxes are decoded relative to their anchor, overlapping boxes
//! are merged by weighted non-maximum suppression, and coordinates are mapped back to the
//! image.

use image::imageops::FilterType;
use image::RgbImage;
use serde::Serialize;
use tract_onnx::prelude::*;

use crate::quality::Rect;

/// A detected face in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detection {
    pub rect: Rect,
    pub score: f32,
    /// The member's right eye, left eye, nose tip, mouth centre, right ear, left ear (in a
    /// non-mirrored image the member's right eye is on the image's left).
    pub keypoints: [(f32, f32); 6],
}

impl Detection {
    pub fn right_eye(&self) -> (f32, f32) {
        self.keypoints[0]
    }
    pub fn left_eye(&self) -> (f32, f32) {
        self.keypoints[1]
    }
    pub fn nose(&self) -> (f32, f32) {
        self.keypoints[2]
    }
    pub fn mouth(&self) -> (f32, f32) {
        self.keypoints[3]
    }
}

/// One BlazeFace variant: input size, anchor layout and score threshold.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub size: usize,
    /// (grid cells per side, anchors per cell) per anchor layer, in the model's output order.
    pub layers: &'static [(usize, usize)],
    pub min_score: f32,
}

/// 128×128 input: a 16×16 grid with 2 anchors per cell, then an 8×8 grid with 6 (896 anchors).
pub const SHORT_RANGE: Variant = Variant { size: 128, layers: &[(16, 2), (8, 6)], min_score: 0.5 };
/// 192×192 input: a 48×48 grid with 1 anchor per cell (2304 anchors).
pub const FULL_RANGE: Variant = Variant { size: 192, layers: &[(48, 1)], min_score: 0.5 };

/// Overlap above which two boxes are taken for the same face.
const NMS_IOU: f32 = 0.3;

impl Variant {
    pub fn anchor_count(&self) -> usize {
        self.layers.iter().map(|(g, n)| g * g * n).sum()
    }

    /// Anchor centres in [0, 1]², in output order (layer, row, column, repeat).
    pub fn anchors(&self) -> Vec<(f32, f32)> {
        let mut out = Vec::with_capacity(self.anchor_count());
        for &(grid, per_cell) in self.layers {
            for y in 0..grid {
                for x in 0..grid {
                    for _ in 0..per_cell {
                        out.push(((x as f32 + 0.5) / grid as f32, (y as f32 + 0.5) / grid as f32));
                    }
                }
            }
        }
        out
    }
}

/// The square model input and how to map its coordinates back to the image.
pub(crate) struct Letterbox {
    pub tensor: Tensor,
    scale: f32,
    pad_x: f32,
    pad_y: f32,
}

impl Letterbox {
    /// From input pixels (0..size) to image pixels.
    fn to_image(&self, (x, y): (f32, f32)) -> (f32, f32) {
        ((x - self.pad_x) / self.scale, (y - self.pad_y) / self.scale)
    }
}

/// Scales `img` to fit `size`×`size` (aspect kept), centres it on black, and makes the
/// NCHW tensor with values in [-1, 1].
pub(crate) fn letterbox(img: &RgbImage, size: usize) -> TractResult<Letterbox> {
    let (w, h) = img.dimensions();
    let scale = size as f32 / w.max(h).max(1) as f32;
    let (nw, nh) = (
        ((w as f32 * scale).round() as u32).clamp(1, size as u32),
        ((h as f32 * scale).round() as u32).clamp(1, size as u32),
    );
    let resized = if nw < w {
        image::imageops::thumbnail(img, nw, nh)
    } else {
        image::imageops::resize(img, nw, nh, FilterType::Triangle)
    };
    let (ox, oy) = ((size as u32 - nw) / 2, (size as u32 - nh) / 2);
    let plane = size * size;
    let mut data = vec![-1.0f32; 3 * plane];
    for (x, y, p) in resized.enumerate_pixels() {
        let i = (y + oy) as usize * size + (x + ox) as usize;
        for c in 0..3 {
            data[c * plane + i] = f32::from(p[c]) / 127.5 - 1.0;
        }
    }
    let tensor = Tensor::from_shape(&[1, 3, size, size], &data)?;
    Ok(Letterbox { tensor, scale: nw as f32 / w.max(1) as f32, pad_x: ox as f32, pad_y: oy as f32 })
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}

fn iou(a: &Rect, b: &Rect) -> f32 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.w).min(b.x + b.w);
    let y1 = (a.y + a.h).min(b.y + b.h);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a.w * a.h + b.w * b.h - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Decodes raw outputs (`regressors`: anchors×16, `scores`: anchors logits) in input pixels.
pub fn decode(variant: &Variant, regressors: &[f32], scores: &[f32]) -> Vec<Detection> {
    let s = variant.size as f32;
    let mut out = Vec::new();
    for (i, (ax, ay)) in variant.anchors().into_iter().enumerate() {
        let (Some(r), Some(&logit)) = (regressors.get(i * 16..i * 16 + 16), scores.get(i)) else { break };
        let score = sigmoid(logit);
        if score < variant.min_score {
            continue;
        }
        let (cx, cy) = (r[0] + ax * s, r[1] + ay * s);
        let (w, h) = (r[2], r[3]);
        if w <= 0.0 || h <= 0.0 {
            continue;
        }
        let mut keypoints = [(0.0, 0.0); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (r[4 + 2 * k] + ax * s, r[5 + 2 * k] + ay * s);
        }
        out.push(Detection { rect: Rect { x: cx - w / 2.0, y: cy - h / 2.0, w, h }, score, keypoints });
    }
    out
}

/// Weighted non-maximum suppression: each group of boxes overlapping the best remaining one
/// becomes their score-weighted average, with the best score.
pub fn weighted_nms(mut dets: Vec<Detection>) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(best) = dets.first().copied() {
        let (group, rest): (Vec<Detection>, Vec<Detection>) =
            dets.into_iter().partition(|d| iou(&best.rect, &d.rect) > NMS_IOU);
        dets = rest;
        let total: f32 = group.iter().map(|d| d.score).sum();
        if total <= 0.0 {
            out.push(best);
            continue;
        }
        let avg = |f: &dyn Fn(&Detection) -> f32| group.iter().map(|d| f(d) * d.score).sum::<f32>() / total;
        let mut keypoints = [(0.0, 0.0); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (avg(&|d| d.keypoints[k].0), avg(&|d| d.keypoints[k].1));
        }
        out.push(Detection {
            rect: Rect { x: avg(&|d| d.rect.x), y: avg(&|d| d.rect.y), w: avg(&|d| d.rect.w), h: avg(&|d| d.rect.h) },
            score: best.score,
            keypoints,
        });
    }
    out
}

/// Runs one detector model on `img`; faces in image pixels, best first.
pub(crate) fn run(plan: &crate::models::Plan, variant: &Variant, img: &RgbImage) -> TractResult<Vec<Detection>> {
    let lb = letterbox(img, variant.size)?;
    let outputs = plan.run(tvec!(lb.tensor.clone().into()))?;
    let mut regressors = None;
    let mut scores = None;
    for o in outputs.iter() {
        let view = o.to_plain_array_view::<f32>()?;
        match view.shape().last() {
            Some(16) => regressors = Some(view.iter().copied().collect::<Vec<f32>>()),
            Some(1) => scores = Some(view.iter().copied().collect::<Vec<f32>>()),
            _ => {}
        }
    }
    let (Some(regressors), Some(scores)) = (regressors, scores) else {
        return Err(TractError::msg("unexpected detector outputs"));
    };
    let mut dets = weighted_nms(decode(variant, &regressors, &scores));
    for d in &mut dets {
        let (x0, y0) = lb.to_image((d.rect.x, d.rect.y));
        let (x1, y1) = lb.to_image((d.rect.x + d.rect.w, d.rect.y + d.rect.h));
        d.rect = Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
        for kp in &mut d.keypoints {
            *kp = lb.to_image(*kp);
        }
    }
    Ok(dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_layouts_match_the_models() {
        assert_eq!(SHORT_RANGE.anchor_count(), 896);
        assert_eq!(FULL_RANGE.anchor_count(), 2304);
        let a = SHORT_RANGE.anchors();
        assert_eq!(a[0], (0.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[1], a[0], "two anchors per cell on the first layer");
        assert_eq!(a[2], (1.5 / 16.0, 0.5 / 16.0));
        assert_eq!(a[512], (0.5 / 8.0, 0.5 / 8.0));
    }

    #[test]
    fn overlapping_boxes_merge_by_score() {
        let d = |x: f32, score: f32| Detection {
            rect: Rect { x, y: 0.0, w: 10.0, h: 10.0 },
            score,
            keypoints: [(x, 0.0); 6],
        };
        let merged = weighted_nms(vec![d(0.0, 0.9), d(1.0, 0.9), d(50.0, 0.6)]);
        assert_eq!(merged.len(), 2);
        assert!((merged[0].rect.x - 0.5).abs() < 1e-4 && merged[0].score == 0.9);
        assert_eq!(merged[1].rect.x, 50.0);
    }

    #[test]
    fn letterbox_keeps_the_aspect_and_maps_back() {
        let img = RgbImage::from_pixel(400, 200, image::Rgb([255, 255, 255]));
        let lb = letterbox(&img, 128).expect("letterbox");
        let (x, y) = lb.to_image((64.0, 64.0));
        assert!((x - 200.0).abs() < 1.0 && (y - 100.0).abs() < 1.0, "{x},{y}");
        let data = lb.tensor.to_plain_array_view::<f32>().expect("f32");
        assert_eq!(data[[0, 0, 0, 64]], -1.0, "black bar above");
        assert_eq!(data[[0, 0, 64, 64]], 1.0, "the image in the middle");
    }
}
