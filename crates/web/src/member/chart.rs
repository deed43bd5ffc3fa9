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

/// An axis label for `v` with `decimals` decimals (`-0` printed as `0`).
fn tick_label(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        format!("{:.decimals$}", 0.0)
    } else {
        s
    }
}

/// A "nice" step (1, 2 or 5 times a power of ten) for about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Decimals that tell the ticks of `step` apart (a step of 0.5 or 0.2 needs one, 0.05 two,
/// 1 and more none), so no two labels print the same after rounding.
fn decimals_of(step: f64) -> usize {
    let k = (step.log10() + 1e-9).floor();
    if k >= 0.0 {
        0
    } else {
        (-k) as usize
    }
}

/// The smallest value range a chart of `key` (a [`records::jlac10::keys`] key) spans, in the
/// table's unit: a change smaller than this is drawn as the small change it is, not from the
/// bottom of the chart to the top (a 0.1 cm difference of 身長 is measurement noise). `None`
/// for unknown items, or when `unit` is not the table's (the default span is then used).
pub fn min_span(key: Option<&str>, unit: &str) -> Option<f64> {
    use records::jlac10::{by_key, keys};
    let key = key?;
    let table_unit = by_key(key).next()?.unit?;
    if !table_unit.eq_ignore_ascii_case(unit.trim()) {
        return None;
    }
    let span = match key {
        keys::HEIGHT => 10.0,
        keys::WEIGHT => 5.0,
        keys::BMI => 2.0,
        keys::WAIST => 5.0,
        keys::SYSTOLIC_BP | keys::DIASTOLIC_BP => 20.0,
        keys::FASTING_GLUCOSE => 20.0,
        keys::HBA1C | keys::HBA1C_JDS => 1.0,
        keys::TRIGLYCERIDES => 50.0,
        keys::HDL_CHOLESTEROL => 20.0,
        keys::LDL_CHOLESTEROL => 40.0,
        keys::AST | keys::ALT => 20.0,
        keys::GAMMA_GT => 30.0,
        _ => return None,
    };
    Some(span)
}

/// The span of values without a known minimum: a fifth of their size (1 around zero).
fn default_min_span(lo: f64, hi: f64) -> f64 {
    let size = lo.abs().max(hi.abs());
    if size < 1e-9 {
        1.0
    } else {
        size / 5.0
    }
}

/// The y axis: from `lo` to `hi` by `step`, labels with `decimals` decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
    decimals: usize,
}

impl Axis {
    /// The axis for values `lo..=hi` (thresholds included): at least `min_span` wide,
    /// centred on the values, not below zero for values that are not, ends on round ticks.
    fn new(lo: f64, hi: f64, min_span: Option<f64>) -> Axis {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        let span = min_span.filter(|s| s.is_finite() && *s > 0.0).unwrap_or_else(|| default_min_span(lo, hi));
        if hi - lo < span {
            let mid = (lo + hi) / 2.0;
            let nonnegative = lo >= 0.0;
            lo = mid - span / 2.0;
            hi = mid + span / 2.0;
            if nonnegative && lo < 0.0 {
                hi -= lo;
                lo = 0.0;
            }
        }
        let step = nice_step(hi - lo, 4.0);
        let lo = (lo / step + 1e-9).floor() * step;
        let hi = (hi / step - 1e-9).ceil() * step;
        Axis { lo, hi, step, decimals: decimals_of(step) }
    }

    /// The tick values, lowest first (computed from their index, so no drift adds up).
    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=n).map(|k| self.lo + self.step * k as f64).collect()
    }

    fn label(&self, v: f64) -> String {
        tick_label(v, self.decimals)
    }
}

/// Width kept free around a date label under the chart (a `2024/06` at 10px is about 40).
const DATE_LABEL_WIDTH: f64 = 44.0;

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
/// "2023/06 120 mmHg, 2024/06 132 mmHg"). `min_span` is the smallest value range the y axis
/// spans ([`min_span`]); `None` takes a fifth of the values' size.
pub fn line_chart(
    id: &str,
    title: &str,
    unit: &str,
    summary: &str,
    points: &[Point],
    reference: Option<&Reference>,
    min_span: Option<f64>,
) -> String {
    let id = esc(id);
    let values = points.iter().map(|p| p.value).filter(|v| v.is_finite());
    let mut lo = values.clone().fold(f64::INFINITY, f64::min);
    let mut hi = values.fold(f64::NEG_INFINITY, f64::max);
    // The value range, widened to show the thresholds.
    let thresholds: Vec<f64> = match reference {
        Some(Reference::Numeric { guidance, referral, .. }) => std::iter::once(*guidance).chain(*referral).collect(),
        _ => Vec::new(),
    };
    if lo.is_finite() {
        for t in &thresholds {
            lo = lo.min(*t);
            hi = hi.max(*t);
        }
    }
    let axis = Axis::new(lo, hi, min_span);
    let (lo, hi) = (axis.lo, axis.hi);
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
    // Grid and y labels, each tick once.
    for v in axis.ticks() {
        let yy = y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text class="axis y" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            axis.label(v)
        );
    }
    let _ = write!(s, r#"<text class="axis unit" x="{LEFT}" y="14">{}</text>"#, esc(unit));
    // The line, then the points with their values; the dates under them where they fit
    // (a date equal to the one before, or too close to it, is left out: the description
    // lists every examination).
    if n > 1 {
        let path: Vec<String> =
            points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value))).collect();
        let _ = write!(s, r#"<polyline class="line" points="{}"/>"#, path.join(" "));
    }
    // Dates from the newest back, so the newest is always labelled.
    let mut show_date = vec![false; n];
    let mut last_date: Option<(f64, &str)> = None;
    for (i, p) in points.iter().enumerate().rev() {
        if p.value.is_finite() && last_date.is_none_or(|(lx, ll)| ll != p.label && lx - x(i) >= DATE_LABEL_WIDTH) {
            show_date[i] = true;
            last_date = Some((x(i), &p.label));
        }
    }
    for (i, p) in points.iter().enumerate() {
        if !p.value.is_finite() {
            continue;
        }
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
            r#"<circle class="point {}" cx="{px:.1}" cy="{py:.1}" r="4"/><text class="value" x="{px:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            class_of(p.judgement),
            py - 8.0,
            esc(&p.text),
        );
        if show_date[i] {
            let _ = write!(
                s,
                r#"<text class="axis x" x="{px:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                HEIGHT - 10.0,
                esc(&p.label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(label: &str, value: f64, j: Option<Judgement>) -> Point {
        Point { label: label.into(), value, text: value.to_string(), judgement: j }
    }

    /// A number attribute of every element starting with `start` (e.g. `<circle`), in order.
    fn attrs(svg: &str, start: &str, attr: &str) -> Vec<f64> {
        svg.split(start)
            .skip(1)
            .map(|el| {
                let from = el.find(&format!(" {attr}=\"")).expect("attribute") + attr.len() + 3;
                el[from..from + el[from..].find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    /// The y-axis labels, top of the file first (lowest value first).
    fn y_labels(svg: &str) -> Vec<String> {
        svg.split(r#"<text class="axis y""#)
            .skip(1)
            .map(|el| {
                let from = el.find('>').unwrap() + 1;
                el[from..from + el[from..].find('<').unwrap()].to_string()
            })
            .collect()
    }

    fn assert_ticks_unique_and_increasing(svg: &str) {
        let labels = y_labels(svg);
        assert!(labels.len() >= 2, "at least two ticks: {labels:?}");
        let values: Vec<f64> = labels.iter().map(|l| l.parse().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "increasing and unique: {labels:?}");
        let mut sorted = labels.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), labels.len(), "each label once: {labels:?}");
    }

    const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

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
            None,
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
        let one = line_chart("a", "BMI", "kg/m2", "", &[p("2025/06", 22.0, None)], None, None);
        assert_eq!(one.matches("<circle").count(), 1);
        assert!(!one.contains("<polyline") && !one.contains("NaN"));
        let flat = line_chart("b", "BMI", "", "", &[p("2024", 22.0, None), p("2025", 22.0, None)], None, None);
        assert!(!flat.contains("NaN") && !flat.contains("inf"));
        let none = line_chart("c", "BMI", "", "", &[], None, None);
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
            None,
        );
        assert!(svg.contains(r#"class="zone guidance""#) && !svg.contains(r#"class="zone referral""#));
    }

    #[test]
    fn a_tenth_of_a_centimetre_is_not_a_spike() {
        let height = min_span(Some(records::jlac10::keys::HEIGHT), "cm");
        assert_eq!(height, Some(10.0));
        let svg = line_chart("h", "身長", "cm", "", &[p("2024", 158.0, None), p("2025", 158.1, None)], None, height);
        let cy = attrs(&svg, "<circle", "cy");
        let rise = (cy[0] - cy[1]).abs();
        assert!(rise > 0.0 && rise < PLOT_H / 20.0, "0.1 cm moves the point {rise:.1} of {PLOT_H}");
        assert_ticks_unique_and_increasing(&svg);
        let values: Vec<f64> = y_labels(&svg).iter().map(|l| l.parse().unwrap()).collect();
        assert!(values.last().unwrap() - values[0] >= 10.0, "the axis spans at least 10 cm: {values:?}");
        // Without the minimum the same two values would fill the chart (the old drawing).
        let bare = Axis::new(158.0, 158.1, Some(1e-6));
        assert!(bare.hi - bare.lo < 0.2);
        // A unit other than the table's does not get the table's span.
        assert_eq!(min_span(Some(records::jlac10::keys::HEIGHT), "m"), None);
        assert_eq!(min_span(None, "cm"), None);
        assert_eq!(min_span(Some(records::jlac10::keys::FASTING_GLUCOSE), "mg/dL"), Some(20.0));
    }

    #[test]
    fn real_changes_still_use_the_height() {
        // 118 → 142 mmHg is more than the 20 mmHg minimum: the points spread over the chart.
        let span = min_span(Some(records::jlac10::keys::SYSTOLIC_BP), "mmHg");
        let svg =
            line_chart("s", "収縮期血圧", "mmHg", "", &[p("2024", 118.0, None), p("2025", 142.0, None)], None, span);
        let cy = attrs(&svg, "<circle", "cy");
        assert!((cy[0] - cy[1]).abs() > PLOT_H / 2.0, "{cy:?}");
    }

    #[test]
    fn ticks_are_unique_increasing_and_cover_the_values() {
        let ranges = [
            (158.0, 158.1, Some(10.0)),
            (5.5, 5.6, Some(1.0)),
            (5.55, 5.6, None),
            (0.71, 0.74, None),
            (0.0, 0.0, None),
            (-3.0, 2.0, None),
            (1203.0, 1250.0, None),
            (118.0, 140.0, Some(20.0)),
            (0.001, 0.002, None),
            (36.95, 37.05, Some(0.05)),
        ];
        for (lo, hi, span) in ranges {
            let axis = Axis::new(lo, hi, span);
            let ticks = axis.ticks();
            let labels: Vec<String> = ticks.iter().map(|v| axis.label(*v)).collect();
            assert!(ticks.len() >= 2 && ticks.len() <= 12, "{lo}..{hi}: {labels:?}");
            assert!(axis.lo <= lo + 1e-9 && axis.hi >= hi - 1e-9, "{lo}..{hi} inside {axis:?}");
            let parsed: Vec<f64> = labels.iter().map(|l| l.parse().unwrap()).collect();
            assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{lo}..{hi}: {labels:?}");
            if lo >= 0.0 {
                assert!(axis.lo >= 0.0, "values ≥ 0 get no negative axis: {axis:?}");
            }
        }
    }

    #[test]
    fn a_single_point_sits_inside_the_chart_with_ticks() {
        let svg = line_chart("one", "体重", "kg", "", &[p("2025/06", 52.3, None)], None, Some(5.0));
        let cy = attrs(&svg, "<circle", "cy");
        assert_eq!(cy.len(), 1);
        assert!(cy[0] > TOP + PLOT_H / 4.0 && cy[0] < TOP + PLOT_H * 3.0 / 4.0, "near the middle: {cy:?}");
        assert_ticks_unique_and_increasing(&svg);
        assert!(!svg.contains("<polyline") && !svg.contains("NaN"));
        assert_eq!(svg.matches(r#"class="axis x""#).count(), 1);
    }

    #[test]
    fn a_constant_series_is_a_flat_line_in_the_middle() {
        let points = [p("2023", 22.0, None), p("2024", 22.0, None), p("2025", 22.0, None)];
        let svg = line_chart("flat", "BMI", "kg/m2", "", &points, None, None);
        let cy = attrs(&svg, "<circle", "cy");
        assert!(cy.iter().all(|v| (v - cy[0]).abs() < 1e-9), "{cy:?}");
        assert!(cy[0] > TOP + PLOT_H / 4.0 && cy[0] < TOP + PLOT_H * 3.0 / 4.0, "{cy:?}");
        assert_ticks_unique_and_increasing(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn dates_are_labelled_once_and_do_not_overlap() {
        let points: Vec<Point> = (0..10)
            .map(|i| p(&format!("{}/06", 2016 + i), 60.0 + f64::from(i), None))
            .chain([p("2025/06", 70.0, None)])
            .collect();
        let svg = line_chart("w", "体重", "kg", "", &points, None, Some(5.0));
        let xs = attrs(&svg, r#"<text class="axis x""#, "x");
        assert!(xs.windows(2).all(|w| w[1] - w[0] >= DATE_LABEL_WIDTH), "{xs:?}");
        assert_eq!(svg.matches(">2025/06<").count(), 1, "the same date once");
        assert!(svg.contains(">2025/06<"), "the newest date is labelled");
        assert_eq!(svg.matches("<circle").count(), 11, "every examination is still drawn");
    }
}
