//! A small SVG plotting helper for the reports: a plot area with axes, ticks and grid lines,
//! polylines, shaded bands with stacked labels (fault windows), vertical markers and a legend.
//!
//! Output is SVG text to inline in HTML. Colours and strokes come from CSS classes defined by
//! the page's stylesheet ([`STYLE`]), so every drawn element carries a class; each plot has an
//! `id` and a `<title>`, each band a `<title>` tooltip. Scales: linear with "nice" ticks, log10,
//! and the HdrHistogram percentile scale ("nines": 0, 90, 99, 99.9, ... %).

use std::fmt::Write as _;

use super::escape;

/// CSS for the classes this module emits; the page includes it once.
pub const STYLE: &str = r#"
svg.plot { display: block; max-width: 100%; height: auto; font: 11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
svg.plot .frame { fill: #fff; stroke: #cbd5e1; }
svg.plot .grid { stroke: #eef2f6; }
svg.plot .axis { stroke: #64748b; }
svg.plot .tick { fill: #475569; }
svg.plot .title { fill: #0f172a; font-weight: 600; font-size: 13px; }
svg.plot .axis-label { fill: #475569; }
svg.plot .empty { fill: #94a3b8; font-size: 13px; }
svg.plot polyline { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
svg.plot .band-fault { fill: #7c3aed; fill-opacity: 0.10; stroke: #7c3aed; stroke-opacity: 0.35; stroke-dasharray: 3 2; }
svg.plot .strip-unavailable { fill: #dc2626; fill-opacity: 0.75; }
svg.plot .band-label { fill: #5b21b6; font-size: 10.5px; }
svg.plot .marker { stroke: #64748b; stroke-dasharray: 4 3; }
svg.plot .marker-label { fill: #64748b; font-size: 10px; }
svg.plot .legend-text { fill: #334155; }
.s-p50 { stroke: #2563eb; } .s-p99 { stroke: #ea580c; } .s-max { stroke: #b91c1c; stroke-opacity: .55; }
.s-offered { stroke: #94a3b8; stroke-dasharray: 5 3; } .s-acknowledged { stroke: #2563eb; }
.s-failed { stroke: #dc2626; } .s-warehouse { stroke: #059669; }
.s-source { stroke: #64748b; } .s-raw { stroke: #2563eb; } .s-changes { stroke: #7c3aed; }
.s-lake { stroke: #d97706; } .s-a { stroke: #2563eb; } .s-b { stroke: #dc2626; stroke-dasharray: 6 3; }
.s-bound { stroke: #dc2626; stroke-dasharray: 2 3; }
"#;

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// `min..max`, ticks every `step`.
    Linear { min: f64, max: f64, step: f64 },
    /// Base-10 logarithmic, `min..max` (both positive), ticks at powers of ten.
    Log { min: f64, max: f64 },
    /// HdrHistogram's percentile axis: values are "nines" (`-log10(1 - q)`), `0..max`, ticks at
    /// 0 %, 90 %, 99 %, 99.9 %, ...
    Nines { max: f64 },
}

/// `-log10(1 - q)`: the percentile axis position of quantile `q` (0.99 → 2).
pub fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-12).log10()
}

/// The quantile at percentile-axis position `x` (2 → 0.99).
pub fn quantile(x: f64) -> f64 {
    1.0 - 10f64.powf(-x)
}

impl Scale {
    /// A linear scale from `min` to at least `max`, with about `ticks` round-numbered ticks.
    pub fn nice(min: f64, max: f64, ticks: usize) -> Scale {
        let max = if max > min { max } else { min + 1.0 };
        let step = nice_step((max - min) / ticks.max(1) as f64);
        let top = (max / step - 1e-9).ceil() * step;
        Scale::Linear { min, max: top.max(min + step), step }
    }

    /// A linear scale from `min` to exactly `max`, with round-numbered ticks inside it (for time
    /// axes, which should end where the data ends).
    pub fn tight(min: f64, max: f64, ticks: usize) -> Scale {
        let max = if max > min { max } else { min + 1.0 };
        Scale::Linear { min, max, step: nice_step((max - min) / ticks.max(1) as f64) }
    }

    /// A log scale covering `lo..hi` (positive), widened to powers of ten.
    pub fn log(lo: f64, hi: f64) -> Scale {
        let lo = if lo > 0.0 { lo } else { 1.0 };
        let hi = hi.max(lo);
        let min = 10f64.powf(lo.log10().floor());
        let mut max = 10f64.powf(hi.log10().ceil());
        if max <= min {
            max = min * 10.0;
        }
        Scale::Log { min, max }
    }

    /// Position of `v` on the axis, 0..1 (clamped).
    fn unit(&self, v: f64) -> f64 {
        let u = match *self {
            Scale::Linear { min, max, .. } => (v - min) / (max - min),
            Scale::Log { min, max } => (v.max(min).log10() - min.log10()) / (max.log10() - min.log10()),
            Scale::Nines { max } => v / max,
        };
        if u.is_finite() {
            u.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    fn ticks(&self) -> Vec<f64> {
        match *self {
            Scale::Linear { min, max, step } => {
                let n = ((max - min) / step + 1e-9).floor() as usize;
                (0..=n.min(40)).map(|i| min + i as f64 * step).collect()
            }
            Scale::Log { min, max } => {
                let (a, b) = (min.log10().round() as i32, max.log10().round() as i32);
                (a..=b).map(|e| 10f64.powi(e)).collect()
            }
            Scale::Nines { max } => (0..=max.floor() as i32).map(f64::from).collect(),
        }
    }

    fn min_max(&self) -> (f64, f64) {
        match *self {
            Scale::Linear { min, max, .. } | Scale::Log { min, max } => (min, max),
            Scale::Nines { max } => (0.0, max),
        }
    }
}

/// 1, 2, 2.5 or 5 × 10^k, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A number without trailing zeros: 2.5, 10, 0.25.
pub fn trim(v: f64) -> String {
    let s = format!("{:.3}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A percentile-axis tick: 0 → "0%", 1 → "90%", 3 → "99.9%".
pub fn nines_label(x: f64) -> String {
    let n = x.round() as i32;
    match n {
        0 => "0%".into(),
        1 => "90%".into(),
        _ => format!("99.{}%", "9".repeat((n - 2) as usize)).replace("99.%", "99%"),
    }
}

/// A duration in ms, with a unit that suits it: 850 µs, 12 ms, 1.5 s.
pub fn duration_ms(ms: f64) -> String {
    if ms == 0.0 {
        "0".into()
    } else if ms < 1.0 {
        format!("{} µs", trim(ms * 1000.0))
    } else if ms < 1000.0 {
        format!("{} ms", trim(ms))
    } else {
        format!("{} s", trim(ms / 1000.0))
    }
}

struct Band {
    x0: f64,
    x1: f64,
    class: String,
    label: String,
    tooltip: String,
    /// A thin strip along the bottom of the plot area instead of the full height.
    strip: bool,
}

struct Line {
    points: Vec<(f64, f64)>,
    class: String,
    id: Option<String>,
}

/// One plot. Build it, add bands, lines and markers, then [`Plot::finish`].
pub struct Plot {
    id: String,
    title: String,
    width: f64,
    height: f64,
    x: Scale,
    y: Scale,
    x_label: String,
    y_label: String,
    x_format: fn(f64) -> String,
    y_format: fn(f64) -> String,
    bands: Vec<Band>,
    lines: Vec<Line>,
    markers: Vec<(f64, String, String)>,
    legend: Vec<(String, String, bool)>,
    empty: Option<String>,
}

const LEFT: f64 = 62.0;
const RIGHT: f64 = 26.0;
const BOTTOM: f64 = 40.0;
const TITLE_H: f64 = 26.0;
const LABEL_ROW: f64 = 13.0;
/// Height of a strip, px.
const STRIP_H: f64 = 7.0;
/// Approximate width of one character of a band label (10.5 px font), px.
const CHAR_W: f64 = 6.0;
/// Approximate width of one character of a legend entry (11 px font), px.
const LEGEND_CHAR_W: f64 = 6.6;

impl Plot {
    /// A plot `width` × `height` px with id `id` (the `<svg>`'s `id` attribute).
    pub fn new(id: &str, title: &str, width: f64, height: f64, x: Scale, y: Scale) -> Plot {
        Plot {
            id: id.into(),
            title: title.into(),
            width,
            height,
            x,
            y,
            x_label: String::new(),
            y_label: String::new(),
            x_format: trim,
            y_format: trim,
            bands: Vec::new(),
            lines: Vec::new(),
            markers: Vec::new(),
            legend: Vec::new(),
            empty: None,
        }
    }

    pub fn axis_labels(mut self, x: &str, y: &str) -> Plot {
        self.x_label = x.into();
        self.y_label = y.into();
        self
    }

    pub fn tick_format(mut self, x: fn(f64) -> String, y: fn(f64) -> String) -> Plot {
        self.x_format = x;
        self.y_format = y;
        self
    }

    /// Shows `message` across the plot area instead of data.
    pub fn empty(&mut self, message: &str) {
        self.empty = Some(message.into());
    }

    /// A shaded stretch `x0..x1` over the full height, with `label` above the plot area (labels
    /// that would overlap go on further rows) and `tooltip` on hover.
    pub fn band(&mut self, x0: f64, x1: f64, class: &str, label: &str, tooltip: &str) {
        self.bands.push(Band { x0, x1, class: class.into(), label: label.into(), tooltip: tooltip.into(), strip: false });
    }

    /// A stretch `x0..x1` marked by a thin strip along the bottom of the plot area, drawn over
    /// the data, with `tooltip` on hover.
    pub fn strip(&mut self, x0: f64, x1: f64, class: &str, tooltip: &str) {
        self.bands.push(Band { x0, x1, class: class.into(), label: String::new(), tooltip: tooltip.into(), strip: true });
    }

    /// A polyline through `points` (x, y); non-finite points are skipped. `class` styles it,
    /// `id` names it in the DOM.
    pub fn line(&mut self, points: Vec<(f64, f64)>, class: &str, id: Option<&str>) {
        self.lines.push(Line { points, class: class.into(), id: id.map(str::to_string) });
    }

    /// A dashed vertical marker at `x` with a small label.
    pub fn marker(&mut self, x: f64, class: &str, label: &str) {
        self.markers.push((x, class.into(), label.into()));
    }

    /// A legend entry: a short stroke of `class` and `label`.
    pub fn legend(&mut self, class: &str, label: &str) {
        self.legend.push((class.into(), label.into(), false));
    }

    /// A legend entry for a band or strip: a small box of `class` and `label`.
    pub fn legend_box(&mut self, class: &str, label: &str) {
        self.legend.push((class.into(), label.into(), true));
    }

    /// The SVG element.
    pub fn finish(self) -> String {
        // Band labels: greedily onto the first row where they do not overlap.
        let (x_min, x_max) = self.x.min_max();
        let plot_w = self.width - LEFT - RIGHT;
        let px = |x: f64| LEFT + self.x.unit(x) * plot_w;
        let mut rows: Vec<f64> = Vec::new();
        let mut row_of: Vec<Option<(usize, f64)>> = vec![None; self.bands.len()];
        for (i, b) in self.bands.iter().enumerate() {
            if b.label.is_empty() || b.x1 < x_min || b.x0 > x_max {
                continue;
            }
            let width = b.label.chars().count() as f64 * CHAR_W;
            let start = px(b.x0.max(x_min)).min(self.width - RIGHT - width);
            let row = rows.iter().position(|&end| end <= start).unwrap_or_else(|| {
                rows.push(f64::MIN);
                rows.len() - 1
            });
            rows[row] = start + width + 8.0;
            row_of[i] = Some((row, start));
        }
        let top = TITLE_H + rows.len() as f64 * LABEL_ROW + if rows.is_empty() { 6.0 } else { 4.0 };
        let height = self.height.max(top + BOTTOM + 60.0);
        let plot_h = height - top - BOTTOM;
        let py = |y: f64| top + (1.0 - self.y.unit(y)) * plot_h;

        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="plot" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{title}"><title>{title}</title>"#,
            id = escape(&self.id),
            w = self.width,
            h = height,
            title = escape(&self.title)
        );
        let _ = write!(s, r#"<text class="title" x="{LEFT}" y="17">{}</text>"#, escape(&self.title));
        // Legend, right-aligned on the title row.
        let mut lx = self.width - RIGHT;
        for (class, label, boxed) in self.legend.iter().rev() {
            let w = label.chars().count() as f64 * LEGEND_CHAR_W + 32.0;
            lx -= w;
            let mark = if *boxed {
                format!(r#"<rect class="{c}" x="{x:.1}" y="8" width="16" height="9"/>"#, c = escape(class), x = lx + 5.0)
            } else {
                format!(r#"<line class="{c}" x1="{x1:.1}" y1="13" x2="{x2:.1}" y2="13" stroke-width="2.5"/>"#, c = escape(class), x1 = lx + 4.0, x2 = lx + 22.0)
            };
            let _ = write!(s, r#"<g class="legend">{mark}<text class="legend-text" x="{tx:.1}" y="17">{l}</text></g>"#, tx = lx + 26.0, l = escape(label));
        }
        let _ = write!(s, r#"<rect class="frame" x="{LEFT}" y="{top:.1}" width="{plot_w:.1}" height="{plot_h:.1}"/>"#);
        // Grid and ticks.
        for t in self.y.ticks() {
            let y = py(t);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="end">{l}</text>"#,
                x2 = LEFT + plot_w,
                tx = LEFT - 6.0,
                ty = y + 3.5,
                l = escape(&(self.y_format)(t))
            );
        }
        for t in self.x.ticks() {
            let x = px(t);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{yb:.1}"/><line class="axis" x1="{x:.1}" y1="{yb:.1}" x2="{x:.1}" y2="{yt:.1}"/><text class="tick" x="{x:.1}" y="{ty:.1}" text-anchor="middle">{l}</text>"#,
                yb = top + plot_h,
                yt = top + plot_h + 4.0,
                ty = top + plot_h + 16.0,
                l = escape(&(self.x_format)(t))
            );
        }
        // Bands behind the data.
        for (b, row) in self.bands.iter().zip(&row_of) {
            if b.strip || b.x1 < x_min || b.x0 > x_max {
                continue;
            }
            let (x0, x1) = (px(b.x0), px(b.x1));
            let _ = write!(
                s,
                r#"<g class="band"><title>{tip}</title><rect class="{c}" x="{x0:.1}" y="{top:.1}" width="{w:.1}" height="{plot_h:.1}"/>"#,
                tip = escape(&b.tooltip),
                c = escape(&b.class),
                w = (x1 - x0).max(1.5)
            );
            if let Some((row, start)) = row {
                let _ = write!(
                    s,
                    r#"<text class="band-label" x="{x:.1}" y="{y:.1}">{l}</text>"#,
                    x = start + 1.0,
                    y = TITLE_H + (*row as f64 + 1.0) * LABEL_ROW - 2.0,
                    l = escape(&b.label)
                );
            }
            s.push_str("</g>");
        }
        for l in &self.lines {
            let pts: Vec<String> =
                l.points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()).map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
            if pts.is_empty() {
                continue;
            }
            let id = l.id.as_ref().map(|i| format!(r#" id="{}""#, escape(i))).unwrap_or_default();
            let _ = write!(s, r#"<polyline{id} class="{}" points="{}"/>"#, escape(&l.class), pts.join(" "));
        }
        for b in self.bands.iter().filter(|b| b.strip && b.x1 >= x_min && b.x0 <= x_max) {
            let (x0, x1) = (px(b.x0), px(b.x1));
            let _ = write!(
                s,
                r#"<g class="band"><title>{tip}</title><rect class="{c}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{STRIP_H}"/></g>"#,
                tip = escape(&b.tooltip),
                c = escape(&b.class),
                y = top + plot_h - STRIP_H,
                w = (x1 - x0).max(1.5)
            );
        }
        for (x, class, label) in &self.markers {
            if *x < x_min || *x > x_max {
                continue;
            }
            let x = px(*x);
            let _ = write!(
                s,
                r#"<line class="{c}" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{yb:.1}"/><text class="marker-label" x="{tx:.1}" y="{ty:.1}" text-anchor="end">{l}</text>"#,
                c = escape(class),
                yb = top + plot_h,
                tx = x - 3.0,
                ty = top + 11.0,
                l = escape(label)
            );
        }
        if let Some(m) = &self.empty {
            let _ = write!(
                s,
                r#"<text class="empty" x="{x:.1}" y="{y:.1}" text-anchor="middle">{m}</text>"#,
                x = LEFT + plot_w / 2.0,
                y = top + plot_h / 2.0,
                m = escape(m)
            );
        }
        let _ = write!(
            s,
            r#"<line class="axis" x1="{LEFT}" y1="{yb:.1}" x2="{x2:.1}" y2="{yb:.1}"/><line class="axis" x1="{LEFT}" y1="{top:.1}" x2="{LEFT}" y2="{yb:.1}"/>"#,
            yb = top + plot_h,
            x2 = LEFT + plot_w
        );
        let _ = write!(
            s,
            r#"<text class="axis-label" x="{x:.1}" y="{y:.1}" text-anchor="middle">{l}</text>"#,
            x = LEFT + plot_w / 2.0,
            y = height - 6.0,
            l = escape(&self.x_label)
        );
        let _ = write!(
            s,
            r#"<text class="axis-label" transform="translate(14 {y:.1}) rotate(-90)" text-anchor="middle">{l}</text>"#,
            y = top + plot_h / 2.0,
            l = escape(&self.y_label)
        );
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_scales_round_up_to_round_steps() {
        assert_eq!(Scale::nice(0.0, 37.0, 5), Scale::Linear { min: 0.0, max: 40.0, step: 10.0 });
        assert_eq!(Scale::nice(0.0, 2.2, 5), Scale::Linear { min: 0.0, max: 2.5, step: 0.5 });
        assert_eq!(Scale::nice(0.0, 0.0, 5), Scale::Linear { min: 0.0, max: 1.0, step: 0.2 });
        assert_eq!(Scale::tight(0.0, 181.0, 12).ticks().last(), Some(&180.0), "ticks inside, the axis ends at 181");
        assert_eq!(Scale::log(3.0, 31_000.0), Scale::Log { min: 1.0, max: 100_000.0 });
        assert_eq!(Scale::Log { min: 1.0, max: 1000.0 }.ticks(), vec![1.0, 10.0, 100.0, 1000.0]);
    }

    #[test]
    fn percentile_axis_positions_and_labels() {
        assert!((nines(0.99) - 2.0).abs() < 1e-9 && nines(0.0) == 0.0);
        assert!((quantile(3.0) - 0.999).abs() < 1e-12);
        let labels: Vec<String> = Scale::Nines { max: 4.0 }.ticks().into_iter().map(nines_label).collect();
        assert_eq!(labels, vec!["0%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!((duration_ms(0.5), duration_ms(12.0), duration_ms(1500.0), duration_ms(0.0)), ("500 µs".into(), "12 ms".into(), "1.5 s".into(), "0".into()));
    }

    #[test]
    fn a_plot_has_its_id_lines_bands_and_escaped_labels() {
        let mut p = Plot::new("latency-raw", "raw <latency>", 800.0, 240.0, Scale::nice(0.0, 60.0, 6), Scale::nice(0.0, 100.0, 5));
        p.band(10.0, 20.0, "band-fault", "#0 kill kafka-1", "fault 0 & more");
        p.strip(30.0, 40.0, "strip-unavailable", "no progress");
        p.band(12.0, 25.0, "band-fault", "#1 pause kafka-2", "fault 1");
        p.line(vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 50.0)], "s-p50", Some("raw-p50"));
        p.legend("s-p50", "p50");
        let svg = p.finish();
        assert!(svg.starts_with(r#"<svg class="plot" id="latency-raw""#), "{svg}");
        assert!(svg.contains("raw &lt;latency&gt;") && svg.contains("fault 0 &amp; more"), "{svg}");
        assert!(svg.contains(r#"<polyline id="raw-p50" class="s-p50" points=""#));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains(r#"<title>no progress</title><rect class="strip-unavailable""#), "{svg}");
        // The overlapping labels went onto two rows.
        let ys: Vec<&str> = svg.match_indices(r#"class="band-label" x=""#).map(|(i, _)| &svg[i..i + 60]).collect();
        assert_eq!(ys.len(), 2);
        assert_ne!(ys[0].split("y=").nth(1), ys[1].split("y=").nth(1), "{ys:?}");
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }
}
