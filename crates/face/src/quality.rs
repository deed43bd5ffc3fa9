//! Capture quality, each problem with a reason code the UI turns into advice
//! (e.g. `too_dark` → 「明るい場所で撮影してください」).

use image::RgbImage;
use serde::Serialize;

/// A face region in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Issue {
    NoFace,
    MultipleFaces,
    FaceTooSmall,
    TooDark,
    TooBright,
    Blurry,
}

impl Issue {
    pub fn code(&self) -> &'static str {
        match self {
            Issue::NoFace => "no_face",
            Issue::MultipleFaces => "multiple_faces",
            Issue::FaceTooSmall => "face_too_small",
            Issue::TooDark => "too_dark",
            Issue::TooBright => "too_bright",
            Issue::Blurry => "blurry",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Minimum face height in pixels (selfies; documents use a smaller value).
    pub min_face_px: f32,
    pub min_brightness: f32,
    pub max_brightness: f32,
    /// Minimum variance of the Laplacian on the face scaled to 128 px wide.
    pub min_sharpness: f32,
}

impl Thresholds {
    pub const SELFIE: Thresholds =
        Thresholds { min_face_px: 80.0, min_brightness: 50.0, max_brightness: 215.0, min_sharpness: 30.0 };
    pub const DOCUMENT: Thresholds =
        Thresholds { min_face_px: 40.0, min_brightness: 40.0, max_brightness: 230.0, min_sharpness: 15.0 };
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measures {
    pub face_px: f32,
    pub brightness: f32,
    pub sharpness: f32,
}

fn luma(p: &image::Rgb<u8>) -> f32 {
    0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
}

fn crop_gray(img: &RgbImage, r: &Rect, width: u32) -> Vec<Vec<f32>> {
    let (iw, ih) = img.dimensions();
    let x0 = r.x.max(0.0);
    let y0 = r.y.max(0.0);
    let x1 = (r.x + r.w).min(iw as f32);
    let y1 = (r.y + r.h).min(ih as f32);
    if x1 - x0 < 2.0 || y1 - y0 < 2.0 {
        return Vec::new();
    }
    let height = ((width as f32) * (y1 - y0) / (x1 - x0)).round().max(3.0) as u32;
    (0..height)
        .map(|j| {
            (0..width)
                .map(|i| {
                    let sx = (x0 + (i as f32 + 0.5) * (x1 - x0) / width as f32).min(iw as f32 - 1.0);
                    let sy = (y0 + (j as f32 + 0.5) * (y1 - y0) / height as f32).min(ih as f32 - 1.0);
                    luma(img.get_pixel(sx as u32, sy as u32))
                })
                .collect()
        })
        .collect()
}

/// Brightness (mean luma, 0–255) and sharpness (variance of the Laplacian) of a region.
pub fn measure(img: &RgbImage, face: &Rect) -> Measures {
    let g = crop_gray(img, face, 128);
    if g.len() < 3 {
        return Measures { face_px: face.h, brightness: 0.0, sharpness: 0.0 };
    }
    let n = (g.len() * g[0].len()) as f32;
    let brightness = g.iter().flatten().sum::<f32>() / n;
    let mut lap = Vec::new();
    for y in 1..g.len() - 1 {
        for x in 1..g[0].len() - 1 {
            lap.push(g[y - 1][x] + g[y + 1][x] + g[y][x - 1] + g[y][x + 1] - 4.0 * g[y][x]);
        }
    }
    let mean = lap.iter().sum::<f32>() / lap.len().max(1) as f32;
    let sharpness = lap.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / lap.len().max(1) as f32;
    Measures { face_px: face.h, brightness, sharpness }
}

/// The problems of an image given the faces found in it.
pub fn assess(img: &RgbImage, faces: &[Rect], t: &Thresholds) -> (Vec<Issue>, Option<Measures>) {
    match faces {
        [] => (vec![Issue::NoFace], None),
        [face] => {
            let m = measure(img, face);
            let mut issues = Vec::new();
            if m.face_px < t.min_face_px {
                issues.push(Issue::FaceTooSmall);
            }
            if m.brightness < t.min_brightness {
                issues.push(Issue::TooDark);
            } else if m.brightness > t.max_brightness {
                issues.push(Issue::TooBright);
            }
            if m.sharpness < t.min_sharpness {
                issues.push(Issue::Blurry);
            }
            (issues, Some(m))
        }
        _ => (vec![Issue::MultipleFaces], None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn checker(level: u8, contrast: u8) -> RgbImage {
        RgbImage::from_fn(200, 200, |x, y| {
            let on = ((x / 6) + (y / 6)) % 2 == 0;
            let v = if on { level.saturating_add(contrast) } else { level };
            Rgb([v, v, v])
        })
    }

    #[test]
    fn reasons_for_bad_captures() {
        let face = Rect { x: 20.0, y: 20.0, w: 160.0, h: 160.0 };
        let t = Thresholds::SELFIE;
        assert_eq!(assess(&checker(100, 80), &[face], &t).0, Vec::<Issue>::new());
        assert_eq!(assess(&checker(10, 20), &[face], &t).0, vec![Issue::TooDark]);
        assert_eq!(assess(&checker(235, 20), &[face], &t).0, vec![Issue::TooBright]);
        assert_eq!(assess(&checker(120, 0), &[face], &t).0, vec![Issue::Blurry]);
        let small = Rect { h: 40.0, w: 40.0, ..face };
        assert!(assess(&checker(100, 80), &[small], &t).0.contains(&Issue::FaceTooSmall));
        assert_eq!(assess(&checker(100, 80), &[], &t).0, vec![Issue::NoFace]);
        assert_eq!(assess(&checker(100, 80), &[face, face], &t).0, vec![Issue::MultipleFaces]);
        assert_eq!(Issue::TooDark.code(), "too_dark");
    }
}
