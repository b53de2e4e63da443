//! `cdc-chaos compare <run-a> <run-b>`: two recorded runs side by side — verdict, per-hop
//! counts, latency percentiles per stage, unavailability, throughput, profile and faults — as a
//! plain-text table (for the terminal) and a self-contained HTML page with the two runs'
//! percentile curves and warehouse throughput overlaid.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::recorded::Recorded;
use super::svg::{self, Plot, Scale};
use super::{count, escape, ms};
use crate::run_dir::RunDir;

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The group it belongs to: `run`, `delivery`, `latency`, `faults`.
    pub group: &'static str,
    pub label: String,
    pub a: String,
    pub b: String,
}

/// Two runs compared.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// The plain-text table.
    pub text: String,
    /// The HTML page.
    pub html: String,
}

/// Where `compare` writes its page by default: `<run-b>/compare-<run-a id>.html`.
pub fn default_out(a: &Recorded, b: &Recorded) -> PathBuf {
    b.dir.join(format!("compare-{}.html", a.run_id()))
}

fn rows(a: &Recorded, b: &Recorded) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut add = |group: &'static str, label: &str, f: &dyn Fn(&Recorded) -> String| {
        rows.push(Row { group, label: label.to_string(), a: f(a), b: f(b) });
    };
    add("run", "run id", &|r| r.run_id());
    add("run", "verdict", &|r| r.result.verdict.as_str().to_uppercase());
    add("run", "scenario", &|r| r.result.scenario.clone());
    add("run", "seed", &|r| r.result.seed.to_string());
    add("run", "profile", &|r| r.result.profile.clone());
    add("run", "started", &|r| r.started_us().map(super::utc).unwrap_or_else(|| "—".into()));
    add("run", "quiesced", &|r| if r.result.quiesced { "yes".into() } else { "no".into() });
    add("run", "events acknowledged", &|r| count(r.result.acknowledged));
    add("run", "operations ok / fail / unknown", &|r| {
        let o = &r.result.operations;
        format!("{} / {} / {}", count(o.ok), count(o.fail), count(o.unknown))
    });
    add("run", "throughput offered / achieved", &|r| format!("{:.1}/s / {:.1}/s", r.result.offered_rate, r.result.achieved_rate));
    add("run", "longest unavailability", &|r| format!("{:.1} s", r.result.max_unavailability_s));
    add("run", "unavailability windows ≥ 1 s", &|r| r.result.unavailability_windows.iter().filter(|g| g.duration_s >= 1.0).count().to_string());
    add("run", "final state", &|r| {
        let f = &r.result.final_state;
        if f.matches {
            format!("match ({} documents)", count(f.expected_documents))
        } else {
            format!("{} customers differ", count(f.mismatched_keys.len() as u64))
        }
    });
    add("run", "dead letters", &|r| count(r.result.dead_letters));
    for hop in crate::observation::Hop::ALL {
        add("delivery", &format!("{}: delivered / lost / duplicated / phantom / out of order", hop.as_str()), &|r| {
            r.result.hops.get(&hop).map_or("—".into(), |h| {
                format!("{} / {} / {} / {} / {}", count(h.delivered), count(h.lost), count(h.duplicated), count(h.phantom), count(h.out_of_order))
            })
        });
    }
    for stage in crate::latency::STAGES {
        add("latency", &format!("{stage}: p50 / p99 / p99.9 / max (ms)"), &|r| {
            let b = &r.result.latency_ms_by_hop;
            let p = match stage {
                "source" => &b.source,
                "raw" => &b.raw,
                "changes" => &b.changes,
                "warehouse" => &b.warehouse,
                _ => &b.lake,
            };
            if p.count == 0 {
                "—".into()
            } else {
                format!("{} / {} / {} / {}", ms(p.p50), ms(p.p99), ms(p.p999), ms(p.max))
            }
        });
    }
    add("faults", "faults", &|r| {
        if r.faults.is_empty() {
            "none".into()
        } else {
            r.faults
                .iter()
                .map(|f| format!("{} {:.0}–{} s", f.label(), f.start_s, f.end_s.map_or("?".into(), |e| format!("{e:.0}"))))
                .collect::<Vec<_>>()
                .join("; ")
        }
    });
    rows
}

fn text(rows: &[Row]) -> String {
    let lw = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0);
    let aw = rows.iter().map(|r| r.a.chars().count()).max().unwrap_or(0).max(5);
    let mut s = String::new();
    let _ = writeln!(s, "{:<lw$}  {:<aw$}  B", "", "A");
    let mut group = "";
    for r in rows {
        if r.group != group {
            group = r.group;
            let _ = writeln!(s, "-- {group} --");
        }
        let mark = if r.a != r.b && r.label != "run id" && r.label != "started" { "*" } else { " " };
        let _ = writeln!(s, "{:<lw$}  {:<aw$} {mark}{}", r.label, r.a, r.b);
    }
    s.push_str("(* differs)\n");
    s
}

fn overlay_percentiles(a: &Recorded, b: &Recorded) -> String {
    let curve = |r: &Recorded, top: f64| -> Vec<(f64, f64)> {
        let Some(h) = r.stage("warehouse").and_then(|s| s.overall.as_ref()) else { return Vec::new() };
        let steps = (top * 40.0) as usize;
        (0..=steps).map(|i| top * i as f64 / steps as f64).map(|x| (x, h.value_at_quantile(svg::quantile(x)) as f64 / 1000.0)).collect()
    };
    let most = [a, b].iter().filter_map(|r| r.stage("warehouse").and_then(|s| s.overall.as_ref()).map(|h| h.len())).max().unwrap_or(1);
    let top = (most.max(1) as f64).log10().ceil().clamp(2.0, 6.0);
    let (ca, cb) = (curve(a, top), curve(b, top));
    let lo = ca.iter().chain(&cb).map(|p| p.1).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let hi = ca.iter().chain(&cb).map(|p| p.1).fold(0.0, f64::max);
    let y = if lo.is_finite() { Scale::log(lo, hi) } else { Scale::Log { min: 1.0, max: 1000.0 } };
    let mut p = Plot::new("compare-percentiles", "Intended send → warehouse, by percentile", 1120.0, 320.0, Scale::Nines { max: top }, y)
        .axis_labels("percentile", "latency (log scale)")
        .tick_format(svg::nines_label, svg::duration_ms);
    if ca.is_empty() && cb.is_empty() {
        p.empty("no latency recorded in either run");
    }
    p.line(ca, "s-a", Some("compare-percentiles-a"));
    p.line(cb, "s-b", Some("compare-percentiles-b"));
    p.legend("s-a", &format!("A {}", a.run_id()));
    p.legend("s-b", &format!("B {}", b.run_id()));
    p.finish()
}

fn overlay_throughput(a: &Recorded, b: &Recorded) -> String {
    let span = a.time_span_s().max(b.time_span_s());
    let peak = a.throughput.warehouse.iter().chain(&b.throughput.warehouse).fold(0.0f64, |m, v| m.max(*v));
    let mut p = Plot::new("compare-throughput", "Warehouse commits per second", 1120.0, 260.0, Scale::tight(0.0, span, 12), Scale::nice(0.0, peak, 5))
        .axis_labels("seconds since the load started", "events / s");
    let pts = |v: &Vec<f64>| v.iter().enumerate().map(|(i, n)| (i as f64 + 0.5, *n)).collect::<Vec<_>>();
    p.line(pts(&a.throughput.warehouse), "s-a", Some("compare-throughput-a"));
    p.line(pts(&b.throughput.warehouse), "s-b", Some("compare-throughput-b"));
    p.legend("s-a", "A");
    p.legend("s-b", "B");
    p.finish()
}

/// `run` → `Run`.
fn title(group: &str) -> String {
    let mut c = group.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn html(a: &Recorded, b: &Recorded, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>compare {a} · {b} — cdc-chaos</title><style>
body {{ margin: 0; background: #f1f5f9; color: #0f172a; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }}
main {{ max-width: 1180px; margin: 0 auto; padding: 20px 28px 48px; }}
h1 {{ font-size: 20px; margin: 0 0 12px; }} h2 {{ font-size: 15px; margin: 0 0 8px; }}
section {{ background: #fff; border: 1px solid #e2e8f0; border-radius: 10px; padding: 14px 20px; margin: 14px 0; }}
table {{ border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }}
th, td {{ text-align: left; padding: 5px 10px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }}
table {{ table-layout: fixed; }} th {{ font-size: 12px; color: #64748b; background: #f8fafc; }} td.label {{ color: #334155; }}
col.label {{ width: 30%; }} col.v {{ width: 35%; }}
tr.differs td.v {{ background: #fffbeb; }} .pass {{ color: #15803d; font-weight: 700; }} .fail {{ color: #b91c1c; font-weight: 700; }} .unknown {{ color: #b45309; font-weight: 700; }}
a {{ color: #1d4ed8; }}
{svg_style}</style></head><body><main>
<h1>cdc-chaos: two runs compared</h1>
"#,
        a = escape(&a.run_id()),
        b = escape(&b.run_id()),
        svg_style = svg::STYLE
    );
    let link = |r: &Recorded| {
        let path = RunDir::new(&r.dir).report_html();
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        format!(r#"<a href="file://{}">{}</a>"#, escape(&super::href(&path.display().to_string())), escape(&r.run_id()))
    };
    let _ = write!(s, "<p>A: {} · B: {}. Highlighted rows differ.</p>", link(a), link(b));
    let mut group = "";
    for r in rows {
        if r.group != group {
            if !group.is_empty() {
                s.push_str("</tbody></table></section>");
            }
            group = r.group;
            let _ = write!(s, r#"<section><h2>{}</h2><table><colgroup><col class="label"><col class="v"><col class="v"></colgroup><thead><tr><th></th><th>A</th><th>B</th></tr></thead><tbody>"#, escape(&title(group)));
        }
        let differs = r.a != r.b && r.label != "run id" && r.label != "started";
        let cell = |v: &str| {
            if r.label == "verdict" {
                format!(r#"<td class="v {}">{}</td>"#, escape(&v.to_lowercase()), escape(v))
            } else {
                // One fault per line.
                format!(r#"<td class="v">{}</td>"#, v.split("; ").map(escape).collect::<Vec<_>>().join("<br>"))
            }
        };
        let _ = write!(
            s,
            r#"<tr{}><td class="label">{}</td>{}{}</tr>"#,
            if differs { r#" class="differs""# } else { "" },
            escape(&r.label),
            cell(&r.a),
            cell(&r.b)
        );
    }
    if !group.is_empty() {
        s.push_str("</tbody></table></section>");
    }
    let _ = write!(s, "<section>{}{}</section>", overlay_percentiles(a, b), overlay_throughput(a, b));
    s.push_str("</main></body></html>\n");
    s
}

/// Compares run `a` with run `b`.
pub fn compare(a: &Recorded, b: &Recorded) -> Comparison {
    let rows = rows(a, b);
    Comparison { text: text(&rows), html: html(a, b, &rows), rows }
}
