//! `sweep.html`: the capacity-planning page of a sweep directory, rendered from its `sweep.json`.
//!
//! The conclusion (maximum sustainable rate, the knee), the throughput–latency curve (p50, p99
//! and p99.9 of the objective's hop against the offered rate, log scale, with the objective as a
//! line and the maximum sustainable rate and the knee marked), achieved against offered rate,
//! and a table of every step with a link to its own run report. Element ids: `verdict`, `curve`,
//! `achieved`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::svg::{self, Plot, Scale};
use super::{escape, href, human_ms};
use crate::run_dir::RunDir;
use crate::sweep::record::{Sweep, SATURATION};
use crate::{Error, Result};

/// The sweep page's file name.
pub const SWEEP_HTML: &str = "sweep.html";

/// Reads `<dir>/sweep.json` and writes `<dir>/sweep.html`; returns its path.
pub fn render(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("sweep.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
    let sweep: Sweep = serde_json::from_str(&text).map_err(|e| Error::record(&path, None, format!("not a sweep result: {e}")))?;
    let out = dir.join(SWEEP_HTML);
    std::fs::write(&out, page(&sweep, dir)).map_err(|e| Error::io("writing", &out, e))?;
    Ok(out)
}

const W: f64 = 1120.0;

/// The page.
pub fn page(s: &Sweep, dir: &Path) -> String {
    let hop = &s.objective.hop;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sweep · {scenario} · {id} — cdc-chaos</title>
<style>{page}{svg}</style></head>
<body><main>
<header class="top"><div><div class="eyebrow">cdc-chaos capacity sweep</div><h1>{scenario}</h1><div class="sub mono">{id}</div></div>
<div class="sub">seed <b>{seed}</b> · profile <b>{profile}</b> · {faults} fault(s) per step · {duration} of load per step</div></header>
"#,
        page = super::html::PAGE_STYLE,
        svg = svg::STYLE,
        scenario = escape(&s.scenario),
        id = escape(&s.id),
        seed = s.seed,
        profile = escape(&s.profile),
        faults = s.faults,
        duration = escape(&s.duration),
    );
    let objective = format!(
        "p99 intended → {hop} ≤ {}, verdict pass, achieved ≥ {:.0} % of offered",
        human_ms(s.objective.p99_ms),
        SATURATION * 100.0
    );
    let (class, headline) = match (s.max_sustainable_rate, s.knee_rate) {
        (Some(m), Some(k)) => ("pass", format!("Maximum sustainable rate: {m} changes/s — {k} changes/s missed the objective")),
        (Some(m), None) => ("pass", format!("Maximum sustainable rate: at least {m} changes/s — every step met the objective")),
        (None, _) => ("fail", "No offered rate met the objective".to_string()),
    };
    let _ = writeln!(
        h,
        r#"<div class="banner {class}" id="verdict"><div class="verdict">{headline}</div><div class="why">Objective: {objective}.</div></div>"#,
        headline = escape(&headline),
        objective = escape(&objective)
    );

    // The curve.
    let rates: Vec<f64> = s.steps.iter().map(|x| x.offered_rate).collect();
    let (lo, hi) = (rates.iter().copied().fold(f64::INFINITY, f64::min), rates.iter().copied().fold(0.0, f64::max));
    let x = if lo.is_finite() && hi > lo { Scale::log(lo, hi) } else { Scale::nice(0.0, hi.max(1.0), 6) };
    let lat = |f: fn(&crate::latency::Percentiles) -> f64| -> Vec<(f64, f64)> {
        s.steps.iter().filter_map(|st| st.latency_ms_by_hop.get(hop).filter(|p| p.count > 0).map(|p| (st.offered_rate, f(p)))).collect()
    };
    let (p50, p99, p999) = (lat(|p| p.p50), lat(|p| p.p99), lat(|p| p.p999));
    let ys: Vec<f64> = p50.iter().chain(&p999).map(|p| p.1).chain([s.objective.p99_ms]).filter(|v| *v > 0.0).collect();
    let y = Scale::log(ys.iter().copied().fold(f64::INFINITY, f64::min).min(s.objective.p99_ms), ys.iter().copied().fold(1.0, f64::max));
    let mut curve = Plot::new("curve", &format!("Throughput–latency: intended → {hop}"), W, 380.0, x, y)
        .axis_labels("offered rate, row changes/s", "latency")
        .tick_format(svg::trim, svg::duration_ms);
    if s.steps.is_empty() {
        curve.empty("no step has finished yet");
    }
    let (x0, x1) = match x {
        Scale::Log { min, max } | Scale::Linear { min, max, .. } => (min, max),
        Scale::Nines { max } => (0.0, max),
    };
    curve.line(vec![(x0, s.objective.p99_ms), (x1, s.objective.p99_ms)], "s-bound", Some("objective"));
    curve.line(p50, "s-p50", Some("p50"));
    curve.line(p99, "s-p99", Some("p99"));
    curve.line(p999, "s-max", Some("p999"));
    if let Some(m) = s.max_sustainable_rate {
        curve.marker(m, "marker", &format!("max sustainable {m}/s"));
    }
    if let Some(k) = s.knee_rate {
        curve.marker(k, "marker", &format!("missed {k}/s"));
    }
    curve.legend("s-p50", "p50");
    curve.legend("s-p99", "p99");
    curve.legend("s-max", "p99.9");
    curve.legend("s-bound", &format!("objective (p99 ≤ {})", human_ms(s.objective.p99_ms)));

    let mut achieved = Plot::new("achieved", "Achieved against offered rate", W, 300.0, x, Scale::nice(0.0, hi.max(1.0), 6))
        .axis_labels("offered rate, row changes/s", "row changes/s");
    achieved.line(s.steps.iter().map(|st| (st.offered_rate, st.offered_rate)).collect(), "s-offered", Some("offered"));
    achieved.line(s.steps.iter().map(|st| (st.offered_rate, st.achieved_rate)).collect(), "s-acknowledged", Some("achieved-rate"));
    achieved.legend("s-offered", "offered");
    achieved.legend("s-acknowledged", "achieved");
    let _ = writeln!(
        h,
        r#"<section class="plots"><h2>Throughput and latency</h2><p class="caption">Each point is one step: a complete run at that offered rate. Latency is from the intended send time (coordinated omission corrected), so a pipeline that falls behind shows it.</p>{}{}</section>"#,
        curve.finish(),
        achieved.finish()
    );

    // Steps.
    h.push_str(r#"<section><h2>Steps</h2><table><tr><th class="n">offered/s</th><th class="n">achieved/s</th><th>verdict</th><th class="n">anomalies</th><th class="n">raw p99</th><th class="n">p50</th><th class="n">p99</th><th class="n">p99.9</th><th class="n">max unavailability</th><th>objective</th><th>run</th></tr>"#);
    for st in &s.steps {
        let p = st.latency_ms_by_hop.get(hop).filter(|p| p.count > 0);
        let f = |v: Option<f64>| v.map_or("–".to_string(), human_ms);
        let raw = st.latency_ms_by_hop.get("raw").filter(|p| p.count > 0).map(|p| p.p99);
        let link = if st.run_id.is_empty() {
            "–".to_string()
        } else if RunDir::new(dir.join(&st.run_id)).report_html().is_file() {
            let run = RunDir::new(&st.run_id);
            format!(r#"<a href="{}">{}</a>"#, href(&run.report_html().display().to_string()), escape(&st.run_id))
        } else {
            format!(r#"<a href="{}">{}</a>"#, href(&st.run_id), escape(&st.run_id))
        };
        let _ = write!(
            h,
            r#"<tr{row}><td class="n">{rate}</td><td class="n">{ach:.1}</td><td>{verdict}</td><td class="n">{anom}</td><td class="n">{raw}</td><td class="n">{p50}</td><td class="n">{p99}</td><td class="n">{p999}</td><td class="n">{unav:.1} s</td><td>{meets}</td><td class="mono">{link}</td></tr>"#,
            row = if st.meets_objective { "" } else { r#" class="max""# },
            rate = st.offered_rate,
            ach = st.achieved_rate,
            verdict = escape(&st.verdict),
            anom = st.anomalies,
            raw = f(raw),
            p50 = f(p.map(|p| p.p50)),
            p99 = f(p.map(|p| p.p99)),
            p999 = f(p.map(|p| p.p999)),
            unav = st.max_unavailability_s,
            meets = if st.meets_objective { r#"<span class="pill held">met</span>"#.to_string() } else { format!(r#"<span class="pill violated">missed</span> {}"#, escape(&st.why)) },
        );
    }
    let _ = write!(
        h,
        r#"</table><p class="caption">Latency columns are intended → {hop}. Plan: start {start}, {how}, max {max}. Re-render: <code>cdc-chaos report {dir}</code>.</p></section>
<footer>Rendered by cdc-chaos {v} from <code>sweep.json</code> in <code>{dir}</code>.</footer>
</main></body></html>
"#,
        hop = escape(hop),
        start = s.plan.start,
        how = match (s.plan.factor, s.plan.step) {
            (_, Some(step)) => format!("+{step} per step"),
            (Some(f), None) => format!("×{f} per step"),
            (None, None) => "×2 per step".into(),
        },
        max = s.plan.max,
        dir = escape(&dir.display().to_string()),
        v = env!("CARGO_PKG_VERSION"),
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Percentiles;
    use crate::sweep::record::{Objective, Plan, Step};

    fn step(rate: f64, p99: f64, meets: bool) -> Step {
        let p = Percentiles { count: 100, p50: p99 / 3.0, p90: p99 / 2.0, p99, p999: p99 * 1.2, max: p99 * 1.5 };
        Step {
            offered_rate: rate,
            achieved_rate: rate * if meets { 1.0 } else { 0.7 },
            run_id: format!("smoke-{rate}"),
            verdict: "pass".into(),
            anomalies: 0,
            latency_ms_by_hop: [("warehouse".to_string(), p.clone()), ("raw".to_string(), p)].into_iter().collect(),
            max_unavailability_s: 1.0,
            meets_objective: meets,
            why: if meets { String::new() } else { "warehouse p99 9000 ms > 5000 ms".into() },
        }
    }

    #[test]
    fn the_page_has_the_curve_the_markers_and_every_step() {
        let mut s = Sweep {
            id: "sweep-smoke-x".into(),
            scenario: "smoke".into(),
            seed: 42,
            profile: "durable".into(),
            duration: "45s".into(),
            faults: 0,
            plan: Plan { start: 40.0, factor: Some(2.0), step: None, max: 320.0 },
            objective: Objective { hop: "warehouse".into(), p99_ms: 5000.0 },
            steps: vec![step(40.0, 2000.0, true), step(80.0, 2500.0, true), step(160.0, 9000.0, false)],
            max_sustainable_rate: None,
            knee_rate: None,
        };
        s.conclude();
        let html = page(&s, Path::new("/nonexistent"));
        for id in [r#"id="verdict""#, r#"id="curve""#, r#"id="achieved""#, r#"id="p99""#, r#"id="objective""#] {
            assert!(html.contains(id), "{id}");
        }
        assert!(html.contains("Maximum sustainable rate: 80 changes/s"));
        assert!(html.contains("max sustainable 80/s") && html.contains("missed 160/s"));
        assert!(html.contains("smoke-40") && html.contains("smoke-80") && html.contains("smoke-160"));
        assert!(!html.contains("<script") && !html.contains("href=\"http") && !html.contains("src=") && !html.contains("url("));
        let doc = roxmltree::Document::parse(&html[html.find("<svg").unwrap()..html.find("</svg>").unwrap() + 6]).expect("the curve is well-formed SVG");
        let p99 = doc.descendants().find(|n| n.attribute("id") == Some("p99")).unwrap();
        assert_eq!(p99.attribute("points").unwrap().split_whitespace().count(), 3);
    }
}
