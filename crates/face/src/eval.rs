//! Evaluation: genuine and impostor score distributions, false non-match rate (FNMR) at fixed
//! false match rates (FMR) with the threshold for each, and a DET plot.
//!
//! A comparison where either image gave no embedding (no face, or more than one) is a
//! failure: it counts as a non-match, i.e. a miss for genuine pairs — FNMR includes failures
//! to acquire, as it would for a member.
//!
//! Presentation attacks, simulated on a selfie frame ([`Attack`]), and the distribution of the
//! anti-spoofing score per category ([`spoof_distribution`]).

use std::path::Path;

use serde::Serialize;

/// Scores of one experiment; `None` where a side had no usable face.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub genuine: Vec<Option<f32>>,
    pub impostor: Vec<Option<f32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distribution {
    pub pairs: usize,
    /// Pairs without a score (a side had no usable face).
    pub failed: usize,
    pub min: f32,
    pub mean: f32,
    pub max: f32,
}

fn distribution(scores: &[Option<f32>]) -> Distribution {
    let ok: Vec<f32> = scores.iter().flatten().copied().collect();
    let (min, max) = ok.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    let mean = if ok.is_empty() { f32::NAN } else { ok.iter().sum::<f32>() / ok.len() as f32 };
    Distribution { pairs: scores.len(), failed: scores.len() - ok.len(), min, mean, max }
}

/// The result of choosing the lowest threshold whose FMR is at most `target_fmr`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatingPoint {
    pub target_fmr: f64,
    /// Same person when score ≥ threshold.
    pub threshold: f32,
    pub fmr: f64,
    pub fnmr: f64,
    /// Whether the data has enough impostor pairs to measure this FMR (at least 1/target).
    pub supported: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub genuine: Distribution,
    pub impostor: Distribution,
    /// FNMR at FMR = 1% and 0.1%.
    pub at_fmr: Vec<OperatingPoint>,
    /// The lowest FMR the data supports: zero false matches among the impostor pairs
    /// (FMR < 1/impostor pairs), just above the highest impostor score.
    pub lowest_fmr: OperatingPoint,
    /// Equal error rate (where FMR and FNMR cross), approximately.
    pub eer: f64,
}

/// FMR and FNMR when "same person" means score ≥ `t`.
pub fn rates(scores: &Scores, t: f32) -> (f64, f64) {
    let fm = scores.impostor.iter().filter(|s| s.is_some_and(|s| s >= t)).count();
    let fnm = scores.genuine.iter().filter(|s| !s.is_some_and(|s| s >= t)).count();
    (fm as f64 / scores.impostor.len().max(1) as f64, fnm as f64 / scores.genuine.len().max(1) as f64)
}

/// Every threshold that changes a decision, ascending, plus one above all scores.
fn thresholds(scores: &Scores) -> Vec<f32> {
    // A decision changes at each score, and just above each impostor score.
    let mut t: Vec<f32> = scores.genuine.iter().chain(&scores.impostor).flatten().copied().collect();
    t.extend(scores.impostor.iter().flatten().map(|s| next_up(*s)));
    t.sort_by(f32::total_cmp);
    t.dedup();
    let top = t.last().copied().unwrap_or(1.0);
    t.push(next_up(top));
    t
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        x
    } else if x == 0.0 {
        f32::from_bits(1)
    } else if x > 0.0 {
        f32::from_bits(x.to_bits() + 1)
    } else {
        f32::from_bits(x.to_bits() - 1)
    }
}

/// The lowest threshold with FMR ≤ `target` (lowest threshold = lowest FNMR).
pub fn at_fmr(scores: &Scores, target: f64) -> OperatingPoint {
    let n = scores.impostor.len();
    for t in thresholds(scores) {
        let (fmr, fnmr) = rates(scores, t);
        if fmr <= target {
            return OperatingPoint { target_fmr: target, threshold: t, fmr, fnmr, supported: n as f64 * target >= 1.0 };
        }
    }
    OperatingPoint {
        target_fmr: target,
        threshold: f32::INFINITY,
        fmr: 0.0,
        fnmr: 1.0,
        supported: n as f64 * target >= 1.0,
    }
}

pub fn summarize(scores: &Scores) -> Summary {
    let at = vec![at_fmr(scores, 0.01), at_fmr(scores, 0.001)];
    let lowest = at_fmr(scores, 0.0);
    let lowest_fmr =
        OperatingPoint { target_fmr: 1.0 / scores.impostor.len().max(1) as f64, supported: true, ..lowest };
    let eer = thresholds(scores)
        .into_iter()
        .map(|t| rates(scores, t))
        .map(|(fmr, fnmr)| fmr.max(fnmr))
        .fold(1.0f64, f64::min);
    Summary {
        genuine: distribution(&scores.genuine),
        impostor: distribution(&scores.impostor),
        at_fmr: at,
        lowest_fmr,
        eer,
    }
}

/// (FMR, FNMR) at every threshold, for a DET curve.
pub fn det_curve(scores: &Scores) -> Vec<(f64, f64)> {
    thresholds(scores).into_iter().map(|t| rates(scores, t)).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("no font for the plot labels at {0} (Debian package fonts-dejavu-core)")]
    Font(String),
    #[error("could not draw the plot: {0}")]
    Draw(String),
}

/// The font for labels (Debian `fonts-dejavu-core`, installed by `make test`/`make demo`).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Writes a DET plot (FNMR against FMR, both on log axes) of each named experiment as PNG.
pub fn plot_det(curves: &[(&str, &Scores)], path: &Path) -> Result<(), PlotError> {
    use plotters::prelude::*;
    let font = std::fs::read(FONT).map_err(|_| PlotError::Font(FONT.into()))?;
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font).map_err(|_| PlotError::Font(FONT.into()))?;
    let draw = |e: &dyn std::fmt::Display| PlotError::Draw(e.to_string());

    // Zero rates cannot be drawn on a log axis: they sit on the axis floor.
    let floor = 1e-4;
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("DET: false non-match rate vs false match rate", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((floor..1.0f64).log_scale(), (floor..1.0f64).log_scale())
        .map_err(|e| draw(&e))?;
    chart
        .configure_mesh()
        .x_desc("FMR (impostor pairs accepted)")
        .y_desc("FNMR (genuine pairs rejected)")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|e| draw(&e))?;
    let colors = [BLUE, RED, GREEN, MAGENTA];
    for (i, (name, scores)) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        let points: Vec<(f64, f64)> =
            det_curve(scores).into_iter().map(|(fmr, fnmr)| (fmr.max(floor), fnmr.max(floor))).collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| draw(&e))?
            .label(name.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}

/// An image degraded like the photo on a printed ID card seen through a phone camera: scaled
/// to 40%, grayscale, re-encoded as JPEG quality 30.
pub fn degrade(img: &image::RgbImage) -> Result<image::RgbImage, crate::decode::DecodeError> {
    let (w, h) = img.dimensions();
    let small =
        image::imageops::resize(img, (w * 2 / 5).max(1), (h * 2 / 5).max(1), image::imageops::FilterType::Triangle);
    let gray = image::DynamicImage::ImageRgb8(small).grayscale().to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 30)
        .encode_image(&gray)
        .map_err(|_| crate::decode::DecodeError::Corrupt)?;
    crate::decode::decode(&jpeg, &crate::decode::Limits::default())
}

/// One image of an evaluation set.
#[derive(Debug, Clone)]
pub struct Sample {
    pub person: String,
    pub file: String,
    /// Unit embedding, `None` when the image had no single usable face.
    pub embedding: Option<Vec<f32>>,
}

fn score(a: &Sample, b: &Sample) -> Option<f32> {
    Some(crate::compare::cosine(a.embedding.as_ref()?, b.embedding.as_ref()?))
}

/// Every unordered pair of distinct images.
pub fn all_pairs(samples: &[Sample]) -> Scores {
    let mut out = Scores::default();
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            let s = score(a, b);
            if a.person == b.person {
                out.genuine.push(s)
            } else {
                out.impostor.push(s)
            }
        }
    }
    out
}

/// Document side `docs[i]` against selfie side `selfies[j]` for every i ≠ j (the same image
/// degraded is not a pair).
pub fn cross_pairs(docs: &[Sample], selfies: &[Sample]) -> Scores {
    let mut out = Scores::default();
    for (i, d) in docs.iter().enumerate() {
        for (j, s) in selfies.iter().enumerate() {
            if i == j {
                continue;
            }
            let sc = score(d, s);
            if d.person == s.person {
                out.genuine.push(sc)
            } else {
                out.impostor.push(sc)
            }
        }
    }
    out
}

/// The selfie framing of the browser tests (`e2e/lib/fakecam.mjs`): the face drawn at 300×300
/// at (170, 80) into a 640×480 frame of grey (96, 104, 112).
pub fn e2e_selfie(face: &image::RgbImage) -> image::RgbImage {
    let big = image::imageops::resize(face, 300, 300, image::imageops::FilterType::Triangle);
    let mut frame = image::RgbImage::from_pixel(640, 480, image::Rgb([96, 104, 112]));
    image::imageops::overlay(&mut frame, &big, 170, 80);
    frame
}

/// A presentation attack simulated on a live selfie frame: what the camera would see if the
/// member held up a print or a screen showing that frame, or photographed it again. These are
/// image-processing imitations of the artefacts, not real attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// A printed photo: mostly grey, lower contrast on warm paper, a 45° halftone screen,
    /// camera blur, JPEG quality 30.
    Print,
    /// A phone or monitor screen: gamma, the RGB sub-pixel stripes, a moiré beat, a slight
    /// keystone with a dark bezel, JPEG quality 80.
    Screen,
    /// A low-resolution re-photograph: a quarter of the resolution scaled back up, blur,
    /// JPEG quality 50.
    Rephoto,
}

impl Attack {
    pub const ALL: [Attack; 3] = [Attack::Print, Attack::Screen, Attack::Rephoto];

    pub fn name(self) -> &'static str {
        match self {
            Attack::Print => "printed photo",
            Attack::Screen => "screen replay",
            Attack::Rephoto => "low-res re-photo",
        }
    }

    pub fn apply(self, img: &image::RgbImage) -> Result<image::RgbImage, crate::decode::DecodeError> {
        match self {
            Attack::Print => printed(img),
            Attack::Screen => screen_replay(img),
            Attack::Rephoto => rephotographed(img),
        }
    }
}

fn jpeg_round_trip(img: &image::RgbImage, quality: u8) -> Result<image::RgbImage, crate::decode::DecodeError> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality)
        .encode_image(img)
        .map_err(|_| crate::decode::DecodeError::Corrupt)?;
    crate::decode::decode(&jpeg, &crate::decode::Limits::default())
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// [`Attack::Print`].
pub fn printed(img: &image::RgbImage) -> Result<image::RgbImage, crate::decode::DecodeError> {
    use std::f32::consts::PI;
    let period = 4.0f32;
    let mut out = image::RgbImage::new(img.width(), img.height());
    for (x, y, p) in img.enumerate_pixels() {
        let [r, g, b] = p.0.map(f32::from);
        let grey = 0.299 * r + 0.587 * g + 0.114 * b;
        // Halftone: a 45° dot screen, strongest in mid-tones.
        let (u, v) = ((x + y) as f32, x as f32 - y as f32);
        let dots = (2.0 * PI * u / period).cos() * (2.0 * PI * v / period).cos();
        let mid = 1.0 - ((grey - 128.0) / 128.0).powi(2);
        let channel = |c: f32, tint: f32| {
            let ink = 0.25 * c + 0.75 * grey; // printer gamut: mostly grey
            (35.0 + ink * 200.0 / 255.0 + 22.0 * mid * dots) * tint
        };
        out.put_pixel(x, y, image::Rgb([to_u8(channel(r, 1.0)), to_u8(channel(g, 0.97)), to_u8(channel(b, 0.9))]));
    }
    let blurred = image::imageops::blur(&out, 0.9);
    jpeg_round_trip(&blurred, 30)
}

/// [`Attack::Screen`].
pub fn screen_replay(img: &image::RgbImage) -> Result<image::RgbImage, crate::decode::DecodeError> {
    let (w, h) = img.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    let bezel = image::Rgb([18, 18, 22]);
    let mut out = image::RgbImage::from_pixel(w, h, bezel);
    for y in 0..h {
        for x in 0..w {
            // Keystone: the screen is a little farther away at the top, and slightly turned.
            let (xf, yf) = (x as f32, y as f32);
            let k = 1.0 + 0.06 * (0.5 - yf / hf);
            let sx = (xf - wf / 2.0) * k * 1.04 + wf / 2.0 + 0.02 * (yf - hf / 2.0);
            let sy = (yf - hf / 2.0) * 1.04 + hf / 2.0;
            if sx < 0.0 || sy < 0.0 || sx > wf - 1.0 || sy > hf - 1.0 {
                continue;
            }
            let p = img.get_pixel(sx as u32, sy as u32).0;
            let beat = 1.0 + 0.1 * (2.0 * std::f32::consts::PI * (0.23 * xf + 0.11 * yf)).sin();
            let mut px = [0u8; 3];
            for (c, v) in p.iter().enumerate() {
                let lin = (f32::from(*v) / 255.0).powf(1.25); // gamma of screen + camera
                let stripe = if x as usize % 3 == c { 1.0 } else { 0.55 };
                let tint = [0.95, 1.0, 1.1][c];
                px[c] = to_u8(255.0 * lin * stripe * tint * beat * 1.35);
            }
            out.put_pixel(x, y, image::Rgb(px));
        }
    }
    jpeg_round_trip(&out, 80)
}

/// [`Attack::Rephoto`].
pub fn rephotographed(img: &image::RgbImage) -> Result<image::RgbImage, crate::decode::DecodeError> {
    use image::imageops::{blur, resize, FilterType};
    let (w, h) = img.dimensions();
    let small = resize(img, (w / 4).max(1), (h / 4).max(1), FilterType::Triangle);
    let back = resize(&small, w, h, FilterType::Triangle);
    jpeg_round_trip(&blur(&back, 0.6), 50)
}

/// The anti-spoofing score over one category of images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpoofDistribution {
    pub images: usize,
    /// Images without a score (no single face).
    pub failed: usize,
    pub min: f32,
    pub median: f32,
    pub mean: f32,
    pub max: f32,
    /// Share of the scored images above the threshold (sent to review).
    pub above: f64,
}

/// Min, median, mean, max and the share above `threshold` of `scores` (`None`: no face).
pub fn spoof_distribution(scores: &[Option<f32>], threshold: f32) -> SpoofDistribution {
    let mut ok: Vec<f32> = scores.iter().flatten().copied().collect();
    ok.sort_by(f32::total_cmp);
    let n = ok.len();
    let median = match n {
        0 => f32::NAN,
        _ if n % 2 == 1 => ok[n / 2],
        _ => (ok[n / 2 - 1] + ok[n / 2]) / 2.0,
    };
    SpoofDistribution {
        images: scores.len(),
        failed: scores.len() - n,
        min: ok.first().copied().unwrap_or(f32::NAN),
        median,
        mean: if n == 0 { f32::NAN } else { ok.iter().sum::<f32>() / n as f32 },
        max: ok.last().copied().unwrap_or(f32::NAN),
        above: ok.iter().filter(|s| **s > threshold).count() as f64 / n.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoof_distribution_counts_and_median() {
        let d = spoof_distribution(&[Some(0.9), Some(0.1), None, Some(0.3), Some(0.05)], 0.2);
        assert_eq!((d.images, d.failed), (5, 1));
        assert_eq!((d.min, d.max), (0.05, 0.9));
        assert!((d.median - 0.2).abs() < 1e-6, "{}", d.median);
        assert_eq!(d.above, 0.5);
        assert!(spoof_distribution(&[None], 0.2).median.is_nan());
    }

    #[test]
    fn simulated_attacks_keep_the_frame_and_change_it() {
        let mut face = image::RgbImage::new(150, 150);
        for (x, y, p) in face.enumerate_pixels_mut() {
            // Colour gradients with fine detail (3-pixel checks) that a re-photo loses.
            let check = if (x / 3 + y / 3) % 2 == 0 { 60 } else { 0 };
            *p = image::Rgb([(x * 195 / 150 + check) as u8, (y * 195 / 150 + check) as u8, 128]);
        }
        let frame = e2e_selfie(&face);
        assert_eq!(frame.dimensions(), (640, 480));
        assert_eq!(frame.get_pixel(10, 10).0, [96, 104, 112]);
        for attack in Attack::ALL {
            let out = attack.apply(&frame).expect("attack");
            assert_eq!(out.dimensions(), frame.dimensions(), "{attack:?}");
            let diff: u64 = out.as_raw().iter().zip(frame.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
            assert!(diff / out.as_raw().len() as u64 >= 3, "{attack:?} left the frame nearly as it was");
        }
        // The print is nearly grey: its channels stay close where the face was colourful.
        let p = Attack::Print.apply(&frame).expect("print");
        let px = p.get_pixel(320, 100).0;
        let spread = px.iter().max().unwrap_or(&0) - px.iter().min().unwrap_or(&0);
        let orig = frame.get_pixel(320, 100).0;
        let orig_spread = orig.iter().max().unwrap_or(&0) - orig.iter().min().unwrap_or(&0);
        assert!(spread < orig_spread, "{px:?} vs {orig:?}");
    }

    fn scores(genuine: &[f32], impostor: &[f32]) -> Scores {
        Scores {
            genuine: genuine.iter().map(|s| Some(*s)).collect(),
            impostor: impostor.iter().map(|s| Some(*s)).collect(),
        }
    }

    #[test]
    fn rates_and_operating_points() {
        let mut s = scores(&[0.9, 0.8, 0.7, 0.3], &[0.1, 0.2, 0.35, 0.5]);
        assert_eq!(rates(&s, 0.6), (0.0, 0.25));
        assert_eq!(rates(&s, 0.3), (0.5, 0.0));
        let low = summarize(&s).lowest_fmr;
        assert_eq!((low.fmr, low.fnmr), (0.0, 0.25));
        assert!(low.threshold > 0.5 && low.threshold <= 0.7);
        assert_eq!(low.target_fmr, 0.25);
        // 4 impostor pairs cannot measure 1%.
        assert!(!summarize(&s).at_fmr[0].supported);
        // A genuine pair without a face is a miss at every threshold.
        s.genuine.push(None);
        assert_eq!(rates(&s, 0.0).1, 0.2);
        assert_eq!(summarize(&s).genuine.failed, 1);
    }

    #[test]
    fn equal_error_rate_of_separated_scores_is_zero() {
        assert_eq!(summarize(&scores(&[0.9, 0.8], &[0.1, 0.2])).eer, 0.0);
        assert!(summarize(&scores(&[0.9, 0.1], &[0.2, 0.8])).eer >= 0.5);
    }
}
