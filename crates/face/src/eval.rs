//! Evaluation: genuine and impostor score distributions, false non-match rate (FNMR) at fixed
//! false match rates (FMR) with the threshold for each, and a DET plot.
//!
//! A comparison where either image gave no embedding (no face, or more than one) is a
//! failure: it counts as a non-match, i.e. a miss for genuine pairs — FNMR includes failures
//! to acquire, as it would for a member.

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

#[cfg(test)]
mod tests {
    use super::*;

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
