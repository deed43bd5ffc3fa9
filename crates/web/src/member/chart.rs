//! Server-rendered SVG line charts of one checkup item over the years (健診結果): no script,
//! readable on a phone (fixed aspect, scales to the width), with the MHLW 保健指導判定値 and
//! 受診勧奨判定値 drawn as shaded zones and every point labelled with its value, so the chart
//! does not depend on colour alone. The SVG carries a `<title>` and a `<desc>` listing the
//! values for screen readers.
//!
//! Every text that reaches the SVG is escaped here: item names of unknown codes come from
//! the insurer's files.

use std::fmt::Write as _;

use records::jlac10::{Direction, Judgement, Reference};

/// One examination's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Label under the point (e.g. `2024/06`).
    pub label: String,
    pub value: f64,
    /// The value as written in the file (keeps its decimals).
    pub text: String,
    pub judgement: Option<Judgement>,
}

const WIDTH: f64 = 340.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 32.0;

/// Escapes text for SVG/XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A number for an axis label: integers without decimals, else one decimal.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// A "nice" step for about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::EPSILON);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn class_of(j: Option<Judgement>) -> &'static str {
    match j {
        Some(Judgement::Normal) => "normal",
        Some(Judgement::Guidance) => "guidance",
        Some(Judgement::Referral) => "referral",
        None => "none",
    }
}

/// The chart of `points` (oldest first). `id` must be unique in the page (it names the
/// title and description for `aria-labelledby`); `summary` is the text alternative (e.g.
/// "2023/06 120 mmHg, 2024/06 132 mmHg").
pub fn line_chart(
    id: &str,
    title: &str,
    unit: &str,
    summary: &str,
    points: &[Point],
    reference: Option<&Reference>,
) -> String {
    let id = esc(id);
    // The value range, widened to show the thresholds that are near the values.
    let mut lo = points.iter().map(|p| p.value).fold(f64::INFINITY, f64::min);
    let mut hi = points.iter().map(|p| p.value).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    let thresholds: Vec<f64> = match reference {
        Some(Reference::Numeric { guidance, referral, .. }) => std::iter::once(*guidance).chain(*referral).collect(),
        _ => Vec::new(),
    };
    for t in &thresholds {
        lo = lo.min(*t);
        hi = hi.max(*t);
    }
    if (hi - lo).abs() < 1e-9 {
        lo -= 1.0;
        hi += 1.0;
    }
    let step = nice_step(hi - lo, 4.0);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    let n = points.len();
    let x = |i: usize| if n <= 1 { LEFT + plot_w / 2.0 } else { LEFT + plot_w * i as f64 / (n - 1) as f64 };

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(summary)
    );
    // Reference zones: guidance (保健指導判定値) and referral (受診勧奨判定値).
    if let Some(Reference::Numeric { direction, guidance, referral }) = reference {
        let zone = |from: f64, to: f64, class: &str, s: &mut String| {
            let (a, b) = (y(from.clamp(lo, hi)), y(to.clamp(lo, hi)));
            let (top, h) = (a.min(b), (a - b).abs());
            if h > 0.0 {
                let _ = write!(
                    s,
                    r#"<rect class="zone {class}" x="{LEFT}" y="{top:.1}" width="{plot_w}" height="{h:.1}"/>"#
                );
            }
        };
        match direction {
            Direction::High => {
                zone(*guidance, referral.unwrap_or(hi), "guidance", &mut s);
                if let Some(r) = referral {
                    zone(*r, hi, "referral", &mut s);
                }
            }
            Direction::Low => {
                zone(referral.unwrap_or(lo), *guidance, "guidance", &mut s);
                if let Some(r) = referral {
                    zone(lo, *r, "referral", &mut s);
                }
            }
        }
    }
    // Grid and y labels.
    let mut v = lo;
    while v <= hi + step / 2.0 {
        let yy = y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            tick(v)
        );
        v += step;
    }
    let _ = write!(s, r#"<text class="axis unit" x="{LEFT}" y="14">{}</text>"#, esc(unit));
    // The line, then the points with their values and dates.
    if n > 1 {
        let path: Vec<String> =
            points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value))).collect();
        let _ = write!(s, r#"<polyline class="line" points="{}"/>"#, path.join(" "));
    }
    for (i, p) in points.iter().enumerate() {
        let (px, py) = (x(i), y(p.value));
        let anchor = if n > 1 && i == 0 {
            "start"
        } else if n > 1 && i == n - 1 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            r#"<circle class="point {}" cx="{px:.1}" cy="{py:.1}" r="4"/><text class="value" x="{px:.1}" y="{:.1}" text-anchor="{anchor}">{}</text><text class="axis" x="{px:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            class_of(p.judgement),
            py - 8.0,
            esc(&p.text),
            HEIGHT - 10.0,
            esc(&p.label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(label: &str, value: f64, j: Option<Judgement>) -> Point {
        Point { label: label.into(), value, text: tick(value), judgement: j }
    }

    #[test]
    fn draws_points_zones_and_labels() {
        let reference = Reference::Numeric { direction: Direction::High, guidance: 130.0, referral: Some(140.0) };
        let svg = line_chart(
            "sbp",
            "収縮期血圧",
            "mmHg",
            "2023/06 118, 2024/06 135, 2025/06 142",
            &[
                p("2023/06", 118.0, Some(Judgement::Normal)),
                p("2024/06", 135.0, Some(Judgement::Guidance)),
                p("2025/06", 142.0, Some(Judgement::Referral)),
            ],
            Some(&reference),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"aria-labelledby="sbp-t sbp-d""#));
        assert!(svg.contains("<title id=\"sbp-t\">収縮期血圧</title>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("point guidance") && svg.contains("point referral") && svg.contains("point normal"));
        assert!(svg.contains(r#"class="zone guidance""#) && svg.contains(r#"class="zone referral""#));
        for label in ["2023/06", "2024/06", "2025/06", ">118<", ">135<", ">142<", "mmHg"] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert!(svg.contains("<polyline"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn one_point_and_flat_values_still_draw() {
        let one = line_chart("a", "BMI", "kg/m2", "", &[p("2025/06", 22.0, None)], None);
        assert_eq!(one.matches("<circle").count(), 1);
        assert!(!one.contains("<polyline") && !one.contains("NaN"));
        let flat = line_chart("b", "BMI", "", "", &[p("2024", 22.0, None), p("2025", 22.0, None)], None);
        assert!(!flat.contains("NaN") && !flat.contains("inf"));
        let none = line_chart("c", "BMI", "", "", &[], None);
        assert!(none.ends_with("</svg>"));
    }

    #[test]
    fn text_from_files_is_escaped() {
        let svg = line_chart(
            "x\"><script>",
            "<script>alert(1)</script>",
            "&unit",
            "a<b",
            &[Point { label: "<b>".into(), value: 1.0, text: "1\"".into(), judgement: None }],
            None,
        );
        assert!(!svg.contains("<script") && !svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("&amp;unit") && svg.contains("1&quot;"));
    }

    #[test]
    fn low_direction_zones_sit_below_the_thresholds() {
        // HDL: guidance below 40, no referral value.
        let reference = Reference::Numeric { direction: Direction::Low, guidance: 40.0, referral: None };
        let svg = line_chart(
            "hdl",
            "HDL",
            "mg/dL",
            "",
            &[p("2024", 38.0, Some(Judgement::Guidance)), p("2025", 55.0, Some(Judgement::Normal))],
            Some(&reference),
        );
        assert!(svg.contains(r#"class="zone guidance""#) && !svg.contains(r#"class="zone referral""#));
    }
}
