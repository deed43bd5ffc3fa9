//! Face alignment: a 2-D similarity transform (rotation, uniform scale, translation) fitted by
//! least squares (Umeyama) from five facial points to the 112×112 ArcFace template, then a
//! bilinear warp. Embedding models expect faces placed exactly like this.

use image::{Rgb, RgbImage};

pub const SIZE: u32 = 112;

/// ArcFace template: member's right eye, left eye, nose tip, right and left mouth corners
/// (image coordinates of a non-mirrored 112×112 crop).
pub const TEMPLATE: [(f32, f32); 5] =
    [(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041)];

/// x' = a·x − b·y + tx, y' = b·x + a·y + ty
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// Least-squares fit mapping `src[i]` onto `dst[i]`; `None` for degenerate input.
    pub fn fit(src: &[(f32, f32)], dst: &[(f32, f32)]) -> Option<Similarity> {
        if src.len() != dst.len() || src.len() < 2 {
            return None;
        }
        let n = src.len() as f32;
        let (sx, sy) = src.iter().fold((0.0, 0.0), |acc, p| (acc.0 + p.0 / n, acc.1 + p.1 / n));
        let (dx, dy) = dst.iter().fold((0.0, 0.0), |acc, p| (acc.0 + p.0 / n, acc.1 + p.1 / n));
        let (mut num_a, mut num_b, mut den) = (0.0f32, 0.0f32, 0.0f32);
        for (s, d) in src.iter().zip(dst) {
            let (x, y) = (s.0 - sx, s.1 - sy);
            let (u, v) = (d.0 - dx, d.1 - dy);
            num_a += x * u + y * v;
            num_b += x * v - y * u;
            den += x * x + y * y;
        }
        if den <= f32::EPSILON {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        Some(Similarity { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) })
    }

    pub fn apply(&self, (x, y): (f32, f32)) -> (f32, f32) {
        (self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty)
    }

    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if det <= f32::EPSILON {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) })
    }
}

fn sample(img: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Rgb([0, 0, 0]);
    }
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0u8; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let p = |xx: u32, yy: u32| f32::from(img.get_pixel(xx, yy)[c]);
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        *o = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(out)
}

/// Warps `img` so that `points` (five, in [`TEMPLATE`] order) land on the template.
pub fn align(img: &RgbImage, points: &[(f32, f32); 5]) -> Option<RgbImage> {
    let to_template = Similarity::fit(points, &TEMPLATE)?;
    let back = to_template.inverse()?;
    Some(RgbImage::from_fn(SIZE, SIZE, |x, y| {
        let (sx, sy) = back.apply((x as f32 + 0.5, y as f32 + 0.5));
        sample(img, sx - 0.5, sy - 0.5)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_an_exact_similarity() {
        let t = Similarity { a: 0.8, b: 0.3, tx: 12.0, ty: -4.0 };
        let src: Vec<(f32, f32)> = TEMPLATE.iter().map(|p| (p.0 * 3.0, p.1 * 2.0 + 7.0)).collect();
        let dst: Vec<(f32, f32)> = src.iter().map(|p| t.apply(*p)).collect();
        let fit = Similarity::fit(&src, &dst).expect("fit");
        for (s, d) in src.iter().zip(&dst) {
            let m = fit.apply(*s);
            assert!((m.0 - d.0).abs() < 1e-3 && (m.1 - d.1).abs() < 1e-3);
        }
        let inv = fit.inverse().expect("inverse");
        let back = inv.apply(fit.apply((5.0, 9.0)));
        assert!((back.0 - 5.0).abs() < 1e-3 && (back.1 - 9.0).abs() < 1e-3);
        assert!(Similarity::fit(&[(1.0, 1.0), (1.0, 1.0)], &[(0.0, 0.0), (1.0, 1.0)]).is_none());
    }

    #[test]
    fn aligning_the_template_itself_is_the_identity() {
        let img = RgbImage::from_fn(SIZE, SIZE, |x, y| Rgb([(x * 2) as u8, (y * 2) as u8, 77]));
        let out = align(&img, &TEMPLATE).expect("align");
        for (x, y) in [(10, 10), (56, 56), (100, 30)] {
            assert_eq!(out.get_pixel(x, y), img.get_pixel(x, y));
        }
    }
}
