//! FaceMesh: 468 3-D landmarks from a crop around a detected face, rotated so the eyes are
//! level (as MediaPipe does), mapped back to image pixels.

use image::RgbImage;
use tract_onnx::prelude::*;

use crate::detect::Detection;
use crate::geometry::Point3;

pub const SIZE: usize = 192;
/// The crop is this many times the detected box's larger side.
const CROP_SCALE: f32 = 1.5;

/// A rotated square region of the image.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crop {
    cx: f32,
    cy: f32,
    side: f32,
    /// Rotation of the crop's x axis in the image (radians).
    angle: f32,
}

impl Crop {
    pub(crate) fn around(d: &Detection) -> Crop {
        let (r, l) = (d.right_eye(), d.left_eye());
        Crop {
            cx: d.rect.x + d.rect.w / 2.0,
            cy: d.rect.y + d.rect.h / 2.0,
            side: d.rect.w.max(d.rect.h) * CROP_SCALE,
            angle: (l.1 - r.1).atan2(l.0 - r.0),
        }
    }

    /// From crop pixels (0..SIZE) to image pixels.
    fn to_image(self, u: f32, v: f32) -> (f32, f32) {
        let k = self.side / SIZE as f32;
        let (dx, dy) = ((u - SIZE as f32 / 2.0) * k, (v - SIZE as f32 / 2.0) * k);
        let (s, c) = self.angle.sin_cos();
        (self.cx + dx * c - dy * s, self.cy + dx * s + dy * c)
    }

    /// The NCHW input tensor, values in [0, 1], bilinear samples (black outside the image).
    fn tensor(&self, img: &RgbImage) -> TractResult<Tensor> {
        let (w, h) = img.dimensions();
        let plane = SIZE * SIZE;
        let mut data = vec![0.0f32; 3 * plane];
        for v in 0..SIZE {
            for u in 0..SIZE {
                let (x, y) = self.to_image(u as f32 + 0.5, v as f32 + 0.5);
                let (x, y) = (x - 0.5, y - 0.5);
                if x < -1.0 || y < -1.0 || x > w as f32 || y > h as f32 {
                    continue;
                }
                let (x0, y0) = (x.floor(), y.floor());
                let (fx, fy) = (x - x0, y - y0);
                let px = |xx: f32, yy: f32, c: usize| -> f32 {
                    if xx < 0.0 || yy < 0.0 || xx >= w as f32 || yy >= h as f32 {
                        0.0
                    } else {
                        f32::from(img.get_pixel(xx as u32, yy as u32)[c])
                    }
                };
                for c in 0..3 {
                    let top = px(x0, y0, c) * (1.0 - fx) + px(x0 + 1.0, y0, c) * fx;
                    let bottom = px(x0, y0 + 1.0, c) * (1.0 - fx) + px(x0 + 1.0, y0 + 1.0, c) * fx;
                    data[c * plane + v * SIZE + u] = (top * (1.0 - fy) + bottom * fy) / 255.0;
                }
            }
        }
        Tensor::from_shape(&[1, 3, SIZE, SIZE], &data)
    }
}

/// Landmarks of the face `d` in image pixels, and the model's face confidence (0..1).
pub(crate) fn run(plan: &crate::models::Plan, img: &RgbImage, d: &Detection) -> TractResult<(Vec<Point3>, f32)> {
    let crop = Crop::around(d);
    let outputs = plan.run(tvec!(crop.tensor(img)?.into()))?;
    let mut landmarks = None;
    let mut flag = None;
    for o in outputs.iter() {
        let view = o.to_plain_array_view::<f32>()?;
        match view.len() {
            1404 => landmarks = Some(view.iter().copied().collect::<Vec<f32>>()),
            1 => flag = view.iter().next().copied(),
            _ => {}
        }
    }
    let Some(raw) = landmarks else { return Err(TractError::msg("unexpected landmark outputs")) };
    let k = crop.side / SIZE as f32;
    let points = raw
        .chunks_exact(3)
        .map(|p| {
            let (x, y) = crop.to_image(p[0], p[1]);
            Point3 { x, y, z: p[2] * k }
        })
        .collect();
    let confidence = flag.map(|f| 1.0 / (1.0 + (-f.clamp(-100.0, 100.0)).exp())).unwrap_or(0.0);
    Ok((points, confidence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::Rect;

    #[test]
    fn crop_centre_and_rotation_map_back() {
        let d = Detection {
            rect: Rect { x: 100.0, y: 100.0, w: 100.0, h: 100.0 },
            score: 1.0,
            keypoints: [(120.0, 120.0), (180.0, 180.0), (150.0, 150.0), (150.0, 180.0), (0.0, 0.0), (0.0, 0.0)],
        };
        let c = Crop::around(&d);
        let (x, y) = c.to_image(96.0, 96.0);
        assert!((x - 150.0).abs() < 1e-3 && (y - 150.0).abs() < 1e-3);
        // The crop's x axis runs along the eyes (45° here).
        let (x, y) = c.to_image(96.0 + 10.0, 96.0);
        assert!((x - y).abs() < 1e-3 && x > 150.0);
    }
}
