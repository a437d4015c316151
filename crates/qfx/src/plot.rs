//! Self-contained SVG charts for `qfx report`.
//!
//! - [`line_chart`]: axes with nice ticks (whole numbers when every x is a whole number, such
//!   as epochs), a legend, distinct colours, XML-escaped text. Non-finite points (NaN, ±∞) are
//!   skipped and break the line there; empty series, a single point and constant values draw
//!   without dividing by zero.
//! - [`binary_point_panels`]: the binary point of many tensors over training, one small panel
//!   per tensor (small multiples), so that no series hides another and every jump stays
//!   inside its own panel.

use std::fmt::Write;

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// `(x, y)` in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Draw as steps (the value holds until the next point's x, then jumps), for values that
    /// change by whole steps between epochs, such as binary points.
    pub step: bool,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
/// The plot box: left, top, right, bottom.
const BOX: (f64, f64, f64, f64) = (72.0, 44.0, 520.0, 364.0);
const LEGEND_X: f64 = 540.0;
/// Colour-blind friendly and distinct (Tableau 10); after ten, dash patterns tell them apart.
const COLOURS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];
const DASHES: [&str; 4] = ["", "6 3", "2 3", "8 3 2 3"];
const MAX_LEGEND_CHARS: usize = 28;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for XML text and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An axis: its range and tick values.
#[derive(Clone, Debug, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    /// Decimals for the tick labels (`None`: exponent notation).
    decimals: Option<usize>,
}

/// 1, 2, 5 or 10 times a power of ten, the smallest at least `x` (> 0).
fn nice_step(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// About `target` nice ticks covering `[min, max]` (finite, `min <= max`); with `whole`, the
/// step is a whole number (for counts such as epochs, never 0.5).
fn axis(min: f64, max: f64, target: usize, whole: bool) -> Axis {
    let (mut min, mut max) = (min, max);
    if max - min <= (max.abs().max(min.abs())) * 1e-12 {
        // A constant: a unit-wide window around it (or ±10 % of a large value).
        let half = (min.abs() * 0.1).max(0.5);
        (min, max) = (min - half, max + half);
    }
    let span = max - min;
    let step = nice_step(span / target.max(1) as f64);
    let step = if whole { step.max(1.0) } else { step };
    if !span.is_finite() || !step.is_finite() || step <= 0.0 {
        // Beyond f64's range: just the ends, unrounded.
        return Axis {
            lo: min,
            hi: max,
            ticks: vec![min, max],
            decimals: None,
        };
    }
    let lo = (min / step).floor() * step;
    let hi = (max / step).ceil() * step;
    let n = ((hi - lo) / step).round() as usize;
    let ticks = (0..=n.min(50)).map(|i| lo + i as f64 * step).collect();
    let magnitude = lo.abs().max(hi.abs());
    let decimals = if step >= 1e-6 && magnitude < 1e9 {
        Some((-step.log10().floor()).max(0.0) as usize)
    } else {
        None
    };
    Axis {
        lo,
        hi,
        ticks,
        decimals,
    }
}

impl Axis {
    fn label(&self, v: f64) -> String {
        match self.decimals {
            Some(d) => {
                let s = format!("{v:.d$}");
                // No "-0".
                if s.trim_start_matches('-')
                    .chars()
                    .all(|c| c == '0' || c == '.')
                {
                    s.trim_start_matches('-').to_string()
                } else {
                    s
                }
            }
            None => format!("{v:.2e}"),
        }
    }

    /// `v` mapped onto `[a, b]` (pixels).
    fn map(&self, v: f64, a: f64, b: f64) -> f64 {
        // Halved first, so that a range as wide as f64's does not overflow.
        let t = (v * 0.5 - self.lo * 0.5) / (self.hi * 0.5 - self.lo * 0.5);
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.5
        };
        a + t * (b - a)
    }
}

/// The runs of consecutive finite points of a series (a non-finite point ends a run).
fn runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            out.last_mut().expect("never empty").push((x, y));
        } else if !out.last().expect("never empty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn shorten(name: &str) -> String {
    shorten_to(name, MAX_LEGEND_CHARS)
}

/// `name` cut to at most `max` characters, an ellipsis marking the cut.
fn shorten_to(name: &str, max: usize) -> String {
    if name.chars().count() > max {
        let head: String = name.chars().take(max - 1).collect();
        format!("{head}…")
    } else {
        name.to_string()
    }
}

/// An SVG line chart of `series`, `title` above, axis labels below and to the left, a legend
/// on the right. Returns a whole SVG document.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (left, top, right, bottom) = BOX;
    let finite = || {
        series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let bounds = |f: fn(&(f64, f64)) -> f64| {
        finite().map(f).fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(a, b)| (a.min(v), b.max(v))))
        })
    };
    let has_data = finite().next().is_some();
    let (xmin, xmax) = bounds(|p| p.0).unwrap_or((0.0, 1.0));
    let (ymin, ymax) = bounds(|p| p.1).unwrap_or((0.0, 1.0));
    let whole_x = finite().all(|(x, _)| x.fract() == 0.0);
    let xa = axis(xmin, xmax, 8, whole_x);
    let ya = axis(ymin, ymax, 6, false);
    let px = |x: f64| xa.map(x, left, right);
    let py = |y: f64| ya.map(y, bottom, top);

    let mut svg = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        (left + right) / 2.0,
        xml_escape(title)
    );

    // Grid and ticks.
    let _ = writeln!(
        svg,
        r##"<g class="grid" stroke="#e4e4e4" stroke-width="1">"##
    );
    for &t in &xa.ticks {
        let x = px(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.2}" y1="{top}" x2="{x:.2}" y2="{bottom}"/>"#
        );
    }
    for &t in &ya.ticks {
        let y = py(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{left}" y1="{y:.2}" x2="{right}" y2="{y:.2}"/>"#
        );
    }
    let _ = writeln!(svg, "</g>");
    let _ = writeln!(svg, r##"<g class="tick-labels" fill="#333">"##);
    for &t in &xa.ticks {
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{:.1}" text-anchor="middle">{}</text>"#,
            px(t),
            bottom + 16.0,
            xml_escape(&xa.label(t))
        );
    }
    for &t in &ya.ticks {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.2}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            left - 6.0,
            py(t),
            xml_escape(&ya.label(t))
        );
    }
    let _ = writeln!(svg, "</g>");
    let _ = writeln!(
        svg,
        r##"<rect class="plot-box" x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        right - left,
        bottom - top
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (left + right) / 2.0,
        bottom + 38.0,
        xml_escape(x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{0:.1}" text-anchor="middle" transform="rotate(-90 18 {0:.1})">{1}</text>"#,
        (top + bottom) / 2.0,
        xml_escape(y_label)
    );
    if !has_data {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888">no data</text>"##,
            (left + right) / 2.0,
            (top + bottom) / 2.0
        );
    }

    // The series, then the legend.
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let dash = DASHES[(i / COLOURS.len()) % DASHES.len()];
        let dash_attr = if dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{dash}""#)
        };
        let _ = writeln!(
            svg,
            r#"<g class="series" stroke="{colour}" fill="{colour}"><title>{}</title>"#,
            xml_escape(&s.name)
        );
        for run in runs(&s.points) {
            let mut d = String::new();
            for (k, &(x, y)) in run.iter().enumerate() {
                let (x, y) = (px(x), py(y));
                if k == 0 {
                    let _ = write!(d, "M{x:.2} {y:.2}");
                } else if s.step {
                    let _ = write!(d, " H{x:.2} V{y:.2}");
                } else {
                    let _ = write!(d, " L{x:.2} {y:.2}");
                }
            }
            if run.len() > 1 {
                let _ = writeln!(
                    svg,
                    r#"<path d="{d}" fill="none" stroke-width="2"{dash_attr}/>"#
                );
            }
            // Markers where there are few points, so a single point still shows.
            if run.len() <= 40 {
                for &(x, y) in &run {
                    let _ = writeln!(
                        svg,
                        r#"<circle cx="{:.2}" cy="{:.2}" r="{}" stroke="none"/>"#,
                        px(x),
                        py(y),
                        if run.len() == 1 { 3.5 } else { 2.5 }
                    );
                }
            }
        }
        let _ = writeln!(svg, "</g>");

        let y = top + 8.0 + 20.0 * i as f64;
        if y > HEIGHT - 10.0 {
            continue; // no room: the <title> still names the series
        }
        let _ = writeln!(
            svg,
            r#"<g class="legend"><line x1="{LEGEND_X}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="2"{dash_attr}/><text x="{:.1}" y="{y:.1}" dominant-baseline="middle">{}</text></g>"#,
            LEGEND_X + 24.0,
            LEGEND_X + 30.0,
            xml_escape(&shorten(&s.name))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One tensor's binary point over training: `(epoch, F)` pairs in epoch order, epoch 0 being
/// the calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct PointHistory {
    /// The tensor's name.
    pub name: String,
    /// `(epoch, fractional bits)`.
    pub points: Vec<(usize, i32)>,
}

/// Layout of [`binary_point_panels`]: names on the left, panels in the middle, the change on
/// the right.
const PANEL_LEFT: f64 = 224.0;
const PANEL_RIGHT: f64 = 600.0;
const PANEL_HEIGHT: f64 = 30.0;
const PANEL_GAP: f64 = 8.0;
const PANELS_TOP: f64 = 62.0;
/// Room inside a panel above its highest and below its lowest value.
const PANEL_PAD: f64 = 5.0;
const MAX_NAME_CHARS: usize = 28;

/// The learned binary points as small multiples: one panel per tensor, in the given order,
/// each with its own vertical range (its lowest to highest `F`), a step line that holds each
/// epoch's `F` until the next epoch, a marker per epoch, and on the right the change from
/// the first point to the last (`F 4 → 6`), coloured by direction. The epoch axis below is
/// shared and has whole-number ticks. Returns a whole SVG document.
pub fn binary_point_panels(title: &str, histories: &[PointHistory]) -> String {
    let last_epoch = histories
        .iter()
        .flat_map(|h| h.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(0);
    let xa = axis(0.0, last_epoch.max(1) as f64, 10, true);
    let px = |e: f64| xa.map(e, PANEL_LEFT, PANEL_RIGHT);
    let panels_bottom = PANELS_TOP + histories.len() as f64 * (PANEL_HEIGHT + PANEL_GAP);
    let height = panels_bottom + 48.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        xml_escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="42" text-anchor="middle" fill="#555">fractional bits F of each tensor, one panel each (its own scale); epoch 0 = calibration</text>"##,
        WIDTH / 2.0
    );
    if histories.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888">no data</text>"##,
            (PANEL_LEFT + PANEL_RIGHT) / 2.0,
            PANELS_TOP + 10.0
        );
    }
    for (i, h) in histories.iter().enumerate() {
        let top = PANELS_TOP + i as f64 * (PANEL_HEIGHT + PANEL_GAP);
        panel(&mut svg, h, top, &xa, &px);
    }

    // The shared epoch axis.
    let _ = writeln!(svg, r##"<g class="tick-labels" fill="#333">"##);
    for &t in &xa.ticks {
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{:.1}" text-anchor="middle">{}</text>"#,
            px(t),
            panels_bottom + 10.0,
            xml_escape(&xa.label(t))
        );
    }
    let _ = writeln!(svg, "</g>");
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">epoch</text>"#,
        (PANEL_LEFT + PANEL_RIGHT) / 2.0,
        panels_bottom + 30.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// One tensor's panel, `top` pixels down.
fn panel(svg: &mut String, h: &PointHistory, top: f64, xa: &Axis, px: &dyn Fn(f64) -> f64) {
    let bottom = top + PANEL_HEIGHT;
    let (lo, hi) = h.points.iter().fold((i32::MAX, i32::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    // A constant sits in the middle; otherwise lowest F at the bottom, highest at the top.
    let py = |f: i32| {
        if hi <= lo {
            (top + bottom) / 2.0
        } else {
            let t = (f - lo) as f64 / (hi - lo) as f64;
            bottom - PANEL_PAD - t * (PANEL_HEIGHT - 2.0 * PANEL_PAD)
        }
    };
    let (first, last) = (h.points.first().map(|p| p.1), h.points.last().map(|p| p.1));
    let colour = match (first, last) {
        (Some(a), Some(b)) if b > a => "#1f77b4", // more fractional bits
        (Some(a), Some(b)) if b < a => "#d62728", // more integer bits
        _ => "#555555",
    };
    let _ = writeln!(
        svg,
        r#"<g class="panel"><title>{}</title>"#,
        xml_escape(&h.name)
    );
    let _ = writeln!(
        svg,
        r##"<rect class="panel-box" x="{PANEL_LEFT}" y="{top:.1}" width="{}" height="{PANEL_HEIGHT}" fill="#f7f7f7" stroke="#cccccc"/>"##,
        PANEL_RIGHT - PANEL_LEFT
    );
    for &t in &xa.ticks {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.2}" y1="{top:.1}" x2="{0:.2}" y2="{bottom:.1}" stroke="#e4e4e4"/>"##,
            px(t)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
        PANEL_LEFT - 20.0,
        (top + bottom) / 2.0,
        xml_escape(&shorten_to(&h.name, MAX_NAME_CHARS))
    );
    // The panel's own scale, where F moves: its lowest and highest F, small, just left of
    // the panel (a constant F is read on the right).
    if hi > lo {
        for f in [hi, lo] {
            let _ = writeln!(
                svg,
                r##"<text class="panel-scale" x="{:.1}" y="{:.1}" font-size="9" fill="#777" text-anchor="end" dominant-baseline="middle">{f}</text>"##,
                PANEL_LEFT - 4.0,
                py(f)
            );
        }
    }
    if h.points.len() > 1 {
        let mut d = String::new();
        for (k, &(e, f)) in h.points.iter().enumerate() {
            let (x, y) = (px(e as f64), py(f));
            if k == 0 {
                let _ = write!(d, "M{x:.2} {y:.2}");
            } else {
                let _ = write!(d, " H{x:.2} V{y:.2}");
            }
        }
        let _ = writeln!(
            svg,
            r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        );
    }
    if h.points.len() <= 60 {
        for &(e, f) in &h.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="{colour}"/>"#,
                px(e as f64),
                py(f)
            );
        }
    }
    let change = match (first, last) {
        (Some(a), Some(b)) if a != b => format!("F {a} → {b}"),
        (Some(a), _) => format!("F {a}"),
        _ => String::new(),
    };
    let _ = writeln!(
        svg,
        r#"<text class="panel-change" x="{:.1}" y="{:.1}" dominant-baseline="middle" fill="{colour}">{}</text>"#,
        PANEL_RIGHT + 10.0,
        (top + bottom) / 2.0,
        xml_escape(&change)
    );
    let _ = writeln!(svg, "</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that tags balance and every `&` in text starts a known entity; returns the
    /// sequence of element names opened.
    #[track_caller]
    fn well_formed(svg: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut opened = Vec::new();
        let mut rest = svg;
        while let Some(lt) = rest.find('<') {
            check_text(&rest[..lt]);
            let gt = rest[lt..].find('>').expect("unclosed tag") + lt;
            let tag = &rest[lt + 1..gt];
            assert!(!tag.contains('<'), "`<` inside tag `{tag}`");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else {
                let name = tag
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('/');
                assert!(!name.is_empty(), "empty tag");
                check_attributes(tag);
                opened.push(name.to_string());
                if !tag.ends_with('/') {
                    stack.push(name.to_string());
                }
            }
            rest = &rest[gt + 1..];
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert_eq!(opened.first().map(String::as_str), Some("svg"));
        opened
    }

    #[track_caller]
    fn check_text(text: &str) {
        assert!(!text.contains('>'), "raw `>` in `{text}`");
        for (i, _) in text.match_indices('&') {
            let entity = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
            assert!(
                entity.iter().any(|e| text[i..].starts_with(e)),
                "raw `&` in `{text}`"
            );
        }
    }

    /// Attribute values are quoted and hold no raw `"`, `<` or `&`.
    #[track_caller]
    fn check_attributes(tag: &str) {
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in `{tag}`"
        );
        for value in tag.split('"').skip(1).step_by(2) {
            check_text(value);
        }
    }

    /// The coordinates of every `<path>` and `<circle>` of the series.
    fn series_coordinates(svg: &str) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for group in svg.split(r#"<g class="series""#).skip(1) {
            let group = &group[..group.find("</g>").unwrap()];
            for path in group.split(r#"<path d=""#).skip(1) {
                let d = &path[..path.find('"').unwrap()];
                let (mut x, mut y) = (f64::NAN, f64::NAN);
                // Walk the commands: M x y, L x y, H x, V y.
                let mut chars = d
                    .char_indices()
                    .filter(|(_, c)| c.is_ascii_alphabetic())
                    .peekable();
                while let Some((i, c)) = chars.next() {
                    let end = chars.peek().map_or(d.len(), |&(j, _)| j);
                    let nums: Vec<f64> = d[i + 1..end]
                        .split_whitespace()
                        .map(|n| n.parse().unwrap())
                        .collect();
                    match c {
                        'M' | 'L' => (x, y) = (nums[0], nums[1]),
                        'H' => x = nums[0],
                        'V' => y = nums[0],
                        other => panic!("unexpected path command {other}"),
                    }
                    out.push((x, y));
                }
            }
            for circle in group.split("<circle cx=\"").skip(1) {
                let x: f64 = circle[..circle.find('"').unwrap()].parse().unwrap();
                let cy = &circle[circle.find("cy=\"").unwrap() + 4..];
                let y: f64 = cy[..cy.find('"').unwrap()].parse().unwrap();
                out.push((x, y));
            }
        }
        out
    }

    fn series(name: &str, points: &[(f64, f64)], step: bool) -> Series {
        Series {
            name: name.to_string(),
            points: points.to_vec(),
            step,
        }
    }

    #[track_caller]
    fn inside_box(svg: &str, expected_points: usize) {
        let pts = series_coordinates(svg);
        assert!(
            pts.len() >= expected_points,
            "{} < {expected_points}",
            pts.len()
        );
        let (l, t, r, b) = BOX;
        for (x, y) in pts {
            assert!(
                (l..=r).contains(&x) && (t..=b).contains(&y),
                "({x}, {y}) outside the plot box"
            );
        }
    }

    #[test]
    fn escapes_text() {
        let svg = line_chart(
            "a<b & \"c\"",
            "x's",
            "y>0",
            &[series("<script>&", &[(0.0, 1.0), (1.0, 2.0)], false)],
        );
        well_formed(&svg);
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"), "{svg}");
        assert!(svg.contains("x&apos;s") && svg.contains("y&gt;0"));
        assert!(svg.contains("&lt;script&gt;&amp;"));
        assert!(!svg.contains("<script>"));
        assert_eq!(xml_escape("a\u{1}b"), "a b");
    }

    #[test]
    fn draws_series_inside_the_box_with_legend_and_colours() {
        let a = series(
            "loss",
            &[(1.0, 2.3), (2.0, 0.9), (3.0, 0.5), (4.0, 0.41)],
            false,
        );
        let b = series(
            "accuracy",
            &[(1.0, 0.3), (2.0, 0.7), (3.0, 0.8), (4.0, 0.86)],
            false,
        );
        let svg = line_chart("curves", "epoch", "value", &[a, b]);
        let elements = well_formed(&svg);
        assert_eq!(elements.iter().filter(|e| *e == "path").count(), 2);
        assert_eq!(svg.matches(r#"class="legend""#).count(), 2);
        assert!(svg.contains(COLOURS[0]) && svg.contains(COLOURS[1]));
        inside_box(&svg, 16);
        // The extremes reach the box's edges: x = 1..4 fills [1, 4] exactly.
        let xs: Vec<f64> = series_coordinates(&svg).iter().map(|p| p.0).collect();
        let max_x = xs.iter().cloned().fold(f64::MIN, f64::max);
        assert!(
            max_x <= BOX.2 && max_x > BOX.0 + 0.9 * (BOX.2 - BOX.0),
            "{max_x}"
        );
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let cases: Vec<(&str, Vec<Series>, usize)> = vec![
            ("no series", vec![], 0),
            ("empty series", vec![series("e", &[], false)], 0),
            ("single point", vec![series("p", &[(3.0, 7.0)], false)], 1),
            (
                "constant",
                vec![series("c", &[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)], false)],
                3,
            ),
            (
                "zero constant",
                vec![series("z", &[(0.0, 0.0), (0.0, 0.0)], true)],
                2,
            ),
            (
                "nan and infinities",
                vec![series(
                    "n",
                    &[
                        (0.0, 1.0),
                        (1.0, f64::NAN),
                        (2.0, 2.0),
                        (f64::INFINITY, 3.0),
                        (3.0, 1.5),
                    ],
                    false,
                )],
                3,
            ),
            (
                "all nan",
                vec![series("n", &[(f64::NAN, f64::NAN)], false)],
                0,
            ),
            (
                "huge range",
                vec![series("h", &[(0.0, -1e308), (1.0, 1e308)], false)],
                2,
            ),
            (
                "tiny values",
                vec![series("t", &[(0.0, 1e-12), (1.0, 3e-12)], false)],
                2,
            ),
            (
                "negative",
                vec![series("m", &[(-5.0, -3.0), (-1.0, -0.5)], false)],
                2,
            ),
        ];
        for (what, s, points) in cases {
            let svg = line_chart(what, "x", "y", &s);
            well_formed(&svg);
            inside_box(&svg, points);
            assert_eq!(svg.contains("no data"), points == 0, "{what}");
        }
        // NaN breaks the line: two paths' worth of runs, [0] alone and [2, 3].
        assert_eq!(
            runs(&[(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, 1.5)]),
            [vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 1.5)]]
        );
    }

    #[test]
    fn step_series_hold_then_jump() {
        let s = series("F", &[(0.0, 4.0), (1.0, 4.0), (2.0, 6.0)], true);
        let svg = line_chart("binary points", "epoch", "F", &[s]);
        well_formed(&svg);
        let d = svg.split(r#"<path d=""#).nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('H').count(), 2, "{d}");
        assert_eq!(d.matches('V').count(), 2, "{d}");
        assert!(!d.contains('L'), "{d}");
        inside_box(&svg, 5);
    }

    #[test]
    fn nice_ticks() {
        let a = axis(0.0, 0.93, 6, false);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        assert_eq!(a.ticks.len(), 6);
        assert_eq!(a.label(a.ticks[1]), "0.2");
        let a = axis(1.0, 30.0, 8, false);
        assert_eq!(
            a.ticks.iter().map(|&t| a.label(t)).collect::<Vec<_>>(),
            ["0", "5", "10", "15", "20", "25", "30"]
        );
        let a = axis(-0.3, 0.0, 6, false);
        assert!(a.ticks.iter().all(|&t| a.label(t) != "-0.0"), "{a:?}");
        let a = axis(5.0, 5.0, 6, false);
        assert!(a.lo < 5.0 && a.hi > 5.0);
        let a = axis(-1e308, 1e308, 6, false);
        assert_eq!(a.ticks.len(), 2);
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1.0), 1.0);
    }

    /// The x-axis tick labels (centred texts of the tick-label group).
    fn x_tick_labels(svg: &str) -> Vec<String> {
        let group = svg.split(r#"<g class="tick-labels""#).nth(1).unwrap();
        let group = &group[..group.find("</g>").unwrap()];
        group
            .split("<text ")
            .skip(1)
            .filter(|t| t.contains(r#"text-anchor="middle""#))
            .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].to_string())
            .collect()
    }

    /// `attr="…"` of the first element in `text` that has it, as a number.
    fn number_attr(text: &str, attr: &str) -> f64 {
        let key = format!(r#" {attr}=""#);
        let at = text.find(&key).unwrap_or_else(|| panic!("no {attr}")) + key.len();
        text[at..at + text[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    }

    #[test]
    fn curves_over_epochs_have_whole_number_ticks() {
        for last in [2, 4, 7, 30] {
            let points: Vec<(f64, f64)> = (1..=last).map(|e| (e as f64, 1.0 / e as f64)).collect();
            let svg = line_chart("curves", "epoch", "loss", &[series("loss", &points, false)]);
            let labels = x_tick_labels(&svg);
            assert!(labels.len() >= 2, "{labels:?}");
            for l in &labels {
                assert!(
                    l.parse::<u64>().is_ok(),
                    "{last} epochs: tick {l:?} is not a whole number"
                );
            }
        }
        // Fractional data keeps fractional ticks.
        let svg = line_chart(
            "f",
            "x",
            "y",
            &[series("s", &[(0.0, 1.0), (0.4, 2.0)], false)],
        );
        assert!(x_tick_labels(&svg).iter().any(|l| l.contains('.')));
    }

    fn history(name: &str, points: &[(usize, i32)]) -> PointHistory {
        PointHistory {
            name: name.to_string(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn binary_points_get_one_panel_per_tensor() {
        let histories = [
            history("conv1", &[(0, 4), (1, 5), (2, 5), (3, 7)]),
            history("bn2", &[(0, 3), (1, 3), (2, 3), (3, 3)]),
            history("dense<&>", &[(0, 6), (1, 2), (2, 2), (3, 1)]),
            history("late", &[(2, 5), (3, 6)]),
            history("single", &[(0, 9)]),
        ];
        let svg = binary_point_panels("Learned binary points", &histories);
        well_formed(&svg);
        let panels: Vec<&str> = svg
            .split(r#"<g class="panel">"#)
            .skip(1)
            .map(|p| &p[..p.find("</g>").unwrap()])
            .collect();
        assert_eq!(panels.len(), histories.len());
        assert_eq!(x_tick_labels(&svg), ["0", "1", "2", "3"]);
        let mut last_bottom = 0.0;
        for (panel, h) in panels.iter().zip(&histories) {
            assert!(panel.contains(&xml_escape(&h.name)), "{panel}");
            let rect = &panel[panel.find("<rect").unwrap()..];
            let (top, height) = (number_attr(rect, "y"), number_attr(rect, "height"));
            assert!(top >= last_bottom, "panels overlap");
            last_bottom = top + height;
            // Every point and every step of the line stays inside the tensor's own panel: no
            // segment is taller than one panel, let alone the whole plot.
            let mut group = String::from(r#"<g class="series">"#);
            group.push_str(panel);
            group.push_str("</g>");
            let points = series_coordinates(&group);
            assert!(!points.is_empty(), "{}: nothing drawn", h.name);
            for (x, y) in points {
                assert!(
                    (top..=top + height).contains(&y),
                    "{}: y {y} outside",
                    h.name
                );
                assert!(
                    (PANEL_LEFT..=PANEL_RIGHT).contains(&x),
                    "{}: x {x} outside",
                    h.name
                );
            }
        }
        let change = |i: usize| {
            let p = panels[i];
            let t = &p[p.find(r#"class="panel-change""#).unwrap()..];
            t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].to_string()
        };
        assert_eq!(
            (0..5).map(change).collect::<Vec<_>>(),
            ["F 4 → 7", "F 3", "F 6 → 1", "F 5 → 6", "F 9"]
        );
        // The tallest possible step spans one panel's inner height, far less than the plot's.
        assert!(PANEL_HEIGHT * 4.0 < last_bottom - PANELS_TOP);
    }

    #[test]
    fn binary_point_panels_handle_long_runs_and_no_data() {
        let long: Vec<(usize, i32)> = (0..=160).map(|e| (e, (e / 40) as i32)).collect();
        let svg = binary_point_panels("t", &[history("x", &long)]);
        well_formed(&svg);
        let labels = x_tick_labels(&svg);
        assert!(
            labels.len() <= 12 && labels.iter().all(|l| l.parse::<u64>().is_ok()),
            "{labels:?}"
        );
        let calibration_only = binary_point_panels("t", &[history("x", &[(0, 3)])]);
        well_formed(&calibration_only);
        assert_eq!(x_tick_labels(&calibration_only), ["0", "1"]);
        let empty = binary_point_panels("t", &[]);
        well_formed(&empty);
        assert!(empty.contains("no data"));
    }
}
