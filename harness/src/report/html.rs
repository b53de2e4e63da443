//! `report.html`: one self-contained page per run — inline CSS and SVG, no script, no network.
//!
//! Top to bottom: the verdict banner with its reasons and the key figures; the invariants; the
//! per-hop delivery table with where lost events were last seen and examples; the final state;
//! latency (percentiles per stage, the percentile curve, one latency-over-time plot per stage
//! with fault windows shaded and labelled); throughput (offered against achieved per second);
//! unavailability windows; the fault timeline; the configuration in force; notes; links to
//! every recorded file and component log. Element ids the tests and readers can rely on:
//! `verdict`, `latency-<stage>` (one `<svg>` per stage), `percentiles`, `throughput`.

use std::fmt::Write as _;

use super::invariants::{self, Status};
use super::recorded::{Recorded, Stage};
use super::svg::{self, Plot, Scale};
use super::{count, escape, href, human_ms, ms, utc};
use crate::latency::Percentiles;
use crate::run_dir::RunDir;
use crate::result::Verdict;

pub(crate) const PAGE_STYLE: &str = r#"
:root { --pass: #15803d; --fail: #b91c1c; --unknown: #b45309; --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; --bg: #f1f5f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 48px; }
a { color: #1d4ed8; text-decoration: none; } a:hover { text-decoration: underline; }
header.top { display: flex; justify-content: space-between; align-items: flex-end; gap: 16px; flex-wrap: wrap; }
header.top h1 { font-size: 22px; margin: 0; }
.eyebrow { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .08em; }
.sub { color: var(--muted); }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
nav.toc { margin: 14px 0 0; font-size: 13px; } nav.toc a { margin-right: 14px; white-space: nowrap; }
.banner { border-radius: 10px; padding: 16px 22px; color: #fff; margin: 16px 0 12px; }
.banner.pass { background: var(--pass); } .banner.fail { background: var(--fail); } .banner.unknown { background: var(--unknown); }
.banner .verdict { font-size: 26px; font-weight: 800; letter-spacing: .06em; }
.banner .why { font-size: 14px; opacity: .95; }
.banner ul { margin: 8px 0 0; padding-left: 20px; } .banner li { margin: 2px 0; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin-bottom: 6px; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 9px 12px; }
.kpi .k { color: var(--muted); font-size: 12px; } .kpi .v { font-size: 18px; font-weight: 650; } .kpi .d { color: var(--muted); font-size: 12px; }
.kpi.bad .v { color: var(--fail); }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 20px 16px; margin: 16px 0; }
h2 { font-size: 16px; margin: 0 0 10px; } h3 { font-size: 14px; margin: 16px 0 6px; }
p.caption { color: var(--muted); font-size: 12.5px; margin: 4px 0 10px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #f8fafc; }
.n { text-align: right; } td.bad, span.bad { color: var(--fail); font-weight: 700; } tr.max td { background: #fef2f2; }
.pill { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.pill.held { background: #dcfce7; color: #166534; } .pill.violated { background: #fee2e2; color: #991b1b; }
.pill.inconclusive { background: #fef3c7; color: #92400e; } .pill.not-checked { background: #f1f5f9; color: #475569; }
.inv { display: grid; grid-template-columns: 3fr 2fr; gap: 24px; align-items: start; }
table.why { margin-top: 12px; } table.why td:first-child, table.why td:nth-child(2) { width: 1%; white-space: nowrap; }
pre { background: #0f172a; color: #e2e8f0; padding: 12px 14px; border-radius: 8px; overflow: auto; margin: 6px 0; }
pre.columns { column-count: 3; column-gap: 28px; white-space: pre-wrap; overflow-wrap: anywhere; }
p.description { margin: 8px 0 0; max-width: 900px; color: #334155; }
details { margin: 6px 0; } details summary { cursor: pointer; color: #1d4ed8; }
ul.examples { margin: 4px 0 8px; columns: 2; font-size: 12.5px; }
.files { columns: 3; font-size: 13px; } .files div { break-inside: avoid; } .files .size { color: var(--muted); }
.plots svg.plot { margin: 4px 0 14px; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
@media print { body { background: #fff; } section { break-inside: avoid; } }
"#;

/// Plot width in px (the page's content width).
const W: f64 = 1120.0;

/// Renders the page.
pub fn render(rec: &Recorded) -> String {
    let r = &rec.result;
    let invariants = invariants::judge(r, rec.expect.as_ref());
    let mut s = String::new();
    let verdict = r.verdict.as_str();
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{verdict_up} · {scenario} · {id} — cdc-chaos</title>
<style>{PAGE_STYLE}{svg_style}</style></head>
<body><main>
"#,
        verdict_up = verdict.to_uppercase(),
        scenario = escape(&r.scenario),
        id = escape(&rec.run_id()),
        svg_style = svg::STYLE
    );
    header(&mut s, rec);
    banner(&mut s, rec, &invariants);
    invariant_table(&mut s, &invariants);
    delivery(&mut s, rec);
    final_state(&mut s, rec);
    latency(&mut s, rec);
    throughput(&mut s, rec);
    unavailability(&mut s, rec);
    faults(&mut s, rec);
    config(&mut s, rec);
    notes(&mut s, rec);
    files(&mut s, rec);
    let _ = write!(
        s,
        r#"<footer>Rendered by cdc-chaos {} from the files recorded in <code>{dir}</code>, never from the live stack. Re-render: <code>cdc-chaos report {dir}</code> · reproduce: <code>cdc-chaos replay {dir}</code></footer>
</main></body></html>
"#,
        env!("CARGO_PKG_VERSION"),
        dir = escape(&rec.dir.display().to_string())
    );
    s
}

fn header(s: &mut String, rec: &Recorded) {
    let r = &rec.result;
    let started = rec.started_us().map(|t| format!(" · started {}", utc(t).replace('T', " ").replace('Z', " UTC"))).unwrap_or_default();
    let platform = rec.meta.as_ref().map(|m| format!(" · platform {}", escape(&m.platform))).unwrap_or_default();
    let _ = write!(
        s,
        r##"<header class="top"><div><div class="eyebrow">cdc-chaos run report</div><h1>{scenario}</h1>
<div class="sub mono">{id}</div></div>
<div class="sub">seed <b>{seed}</b> · profile <b>{profile}</b>{platform}{started}</div></header>{description}
<nav class="toc"><a href="#invariants">Invariants</a><a href="#delivery">Delivery</a><a href="#final-state">Final state</a><a href="#latency">Latency</a><a href="#throughput-section">Throughput</a><a href="#unavailability">Unavailability</a><a href="#faults">Faults</a><a href="#config">Configuration</a><a href="#notes">Notes</a><a href="#files">Files &amp; logs</a></nav>
"##,
        scenario = escape(&r.scenario),
        id = escape(&rec.run_id()),
        seed = r.seed,
        profile = escape(&r.profile),
        description = rec.description.as_deref().filter(|d| !d.is_empty()).map(|d| format!(r#"<p class="description">{}</p>"#, escape(d))).unwrap_or_default(),
    );
}

fn banner(s: &mut String, rec: &Recorded, inv: &[invariants::Invariant]) {
    let r = &rec.result;
    let violated = inv.iter().filter(|i| matches!(i.status, Status::Violated { .. })).count();
    let held = inv.iter().filter(|i| i.status == Status::Held).count();
    let why = match r.verdict {
        Verdict::Pass => format!("Every acknowledged change arrived exactly once, in order, at every hop; {held} of {} invariants held.", inv.len()),
        Verdict::Fail => format!("{violated} of {} invariants violated.", inv.len()),
        Verdict::Unknown => "The run cannot be judged: nothing definite was violated, but delivery could not be concluded.".to_string(),
    };
    let _ = write!(
        s,
        r#"<div class="banner {v}" id="verdict"><div class="verdict">{V}</div><div class="why">{why}</div>"#,
        v = r.verdict.as_str(),
        V = r.verdict.as_str().to_uppercase(),
        why = escape(&why)
    );
    if !r.reasons.is_empty() {
        s.push_str("<ul>");
        for reason in &r.reasons {
            let _ = write!(s, "<li>{}</li>", escape(reason));
        }
        s.push_str("</ul>");
    }
    s.push_str("</div>\n<div class=\"kpis\">");
    let e2e = &r.latency_ms;
    let f = &r.final_state;
    let kpis: Vec<(&str, String, String, bool)> = vec![
        ("events acknowledged", count(r.acknowledged), format!("{} of them measured load", count(r.load_events)), false),
        (
            "operations",
            format!("{} ok", count(r.operations.ok)),
            format!("{} fail · {} unknown", count(r.operations.fail), count(r.operations.unknown)),
            false,
        ),
        ("throughput (row changes/s)", format!("{:.1} / {:.1}", r.offered_rate, r.achieved_rate), "offered / achieved".into(), false),
        ("faults injected", rec.faults.len().to_string(), fault_kinds(rec), !rec.fault_errors.is_empty()),
        ("latency p99, intended → warehouse", human_ms(e2e.p99), format!("p50 {} · max {}", human_ms(e2e.p50), human_ms(e2e.max)), false),
        ("longest unavailability", format!("{:.1} s", r.max_unavailability_s), bound_text(rec.expect.as_ref().and_then(|e| e.max_unavailability_s), "s"), false),
        (
            "final state",
            if f.matches { "match".into() } else { format!("{} differ", count(f.mismatched_keys.len() as u64)) },
            format!("{} documents expected, {} in the warehouse", count(f.expected_documents), count(f.warehouse_documents)),
            !f.matches,
        ),
        (
            "quiesced",
            if r.quiesced { "yes".into() } else { "no".into() },
            rec.meta.as_ref().map(|m| format!("{:.0} s after the load", m.quiesce_s)).unwrap_or_default(),
            !r.quiesced,
        ),
    ];
    for (k, v, d, bad) in kpis {
        let _ = write!(
            s,
            r#"<div class="kpi{b}"><div class="k">{k}</div><div class="v">{v}</div><div class="d">{d}</div></div>"#,
            b = if bad { " bad" } else { "" },
            k = escape(k),
            v = escape(&v),
            d = escape(&d)
        );
    }
    s.push_str("</div>\n");
}

/// The faults in brief: each one's label when there are few, else their kinds.
fn fault_kinds(rec: &Recorded) -> String {
    let mut d = if rec.faults.len() <= 2 {
        rec.faults.iter().map(|f| f.label()).collect::<Vec<_>>().join(", ")
    } else {
        let mut kinds: Vec<&str> = rec.faults.iter().map(|f| f.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.join(", ")
    };
    if d.is_empty() {
        d = "none".into();
    }
    if !rec.fault_errors.is_empty() {
        d += &format!(" · {} could not be applied", rec.fault_errors.len());
    }
    d
}

fn bound_text(bound: Option<f64>, unit: &str) -> String {
    bound.map_or("no bound set".into(), |b| format!("bound {b} {unit}"))
}

fn pill(status: &Status) -> String {
    let class = status.as_str().replace(' ', "-");
    let tip = if status.message().is_empty() { String::new() } else { format!(r#" title="{}""#, escape(status.message())) };
    format!(r#"<span class="pill {class}"{tip}>{}</span>"#, status.as_str())
}

/// The per-hop checks as a matrix (hop × check), the run-wide ones as rows, then what did not
/// hold, with why.
fn invariant_table(s: &mut String, inv: &[invariants::Invariant]) {
    s.push_str(r#"<section id="invariants"><h2>Invariants</h2><div class="inv"><table class="matrix"><thead><tr><th>hop</th>"#);
    for check in invariants::HOP_CHECKS {
        let _ = write!(s, "<th>{check}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    let mut hops: Vec<&str> = inv.iter().filter_map(|i| i.hop).collect();
    hops.dedup();
    for hop in hops {
        let _ = write!(s, "<tr><td><b>{hop}</b></td>");
        for check in invariants::HOP_CHECKS {
            let cell = inv.iter().find(|i| i.hop == Some(hop) && i.check == check).map(|i| pill(&i.status)).unwrap_or_default();
            let _ = write!(s, "<td>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str(r#"</tbody></table><table class="runwide"><thead><tr><th>whole run</th><th>status</th></tr></thead><tbody>"#);
    for i in inv.iter().filter(|i| i.hop.is_none()) {
        let _ = write!(s, r#"<tr><td title="{}">{}</td><td>{}</td></tr>"#, escape(&i.claim), escape(i.check), pill(&i.status));
    }
    s.push_str("</tbody></table></div>");
    let off: Vec<&invariants::Invariant> = inv.iter().filter(|i| i.status != Status::Held).collect();
    if !off.is_empty() {
        s.push_str(r#"<table class="why"><tbody>"#);
        for i in off {
            let _ = write!(
                s,
                r#"<tr><td><b>{}</b></td><td>{}</td><td>{}</td></tr>"#,
                escape(&i.name()),
                pill(&i.status),
                escape(i.status.message())
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
}

fn delivery(s: &mut String, rec: &Recorded) {
    let r = &rec.result;
    let when = if r.quiesced { "after the pipeline quiesced" } else { "although the pipeline did not quiesce (losses are not conclusive)" };
    let _ = write!(
        s,
        r#"<section id="delivery"><h2>Delivery per hop</h2>
<p class="caption">Every acknowledged event, checked at each hop {when}. <i>Lost</i>: acknowledged, never arrived (with the hop where it was last seen); <i>duplicated</i>: arrived more than once; <i>phantom</i>: arrived, written by no operation of the run that did not fail; <i>wrong op</i>: arrived as the other operation (upsert for delete or the reverse); <i>out of order</i>: applied after a later change of the same source row; <i>unknown-committed</i>: writes of unknown outcome that did commit (informational).</p>
<table><thead><tr><th>hop</th><th class="n">acknowledged</th><th class="n">delivered</th><th class="n">lost</th><th>lost, last seen at</th><th class="n">duplicated</th><th class="n">extra copies</th><th class="n">phantom</th><th class="n">wrong op</th><th class="n">out of order</th><th class="n">unknown-committed</th><th class="n">earlier runs</th></tr></thead><tbody>"#
    );
    let cell = |n: u64| if n > 0 { format!(r#"<td class="n bad">{}</td>"#, count(n)) } else { r#"<td class="n">0</td>"#.to_string() };
    for (hop, h) in &r.hops {
        let by: Vec<String> = h.lost_by_last_seen.iter().map(|(at, n)| format!("{} at {}", count(*n), escape(at))).collect();
        let _ = write!(
            s,
            r#"<tr><td><b>{hop}</b></td><td class="n">{ack}</td><td class="n">{del}</td>{lost}<td>{by}</td>{dup}<td class="n">{copies}</td>{ph}{wrong}{ooo}<td class="n">{uc}</td><td class="n">{earlier}</td></tr>"#,
            hop = hop.as_str(),
            ack = count(h.acknowledged),
            del = count(h.delivered),
            lost = cell(h.lost),
            by = if by.is_empty() { "—".into() } else { by.join(", ") },
            dup = cell(h.duplicated),
            copies = count(h.duplicate_copies),
            ph = cell(h.phantom),
            wrong = cell(h.wrong_operation),
            ooo = cell(h.out_of_order),
            uc = count(h.unknown_committed),
            earlier = count(h.earlier_runs)
        );
    }
    s.push_str("</tbody></table>");
    for (hop, h) in &r.hops {
        let mut lists: Vec<(String, Vec<String>)> = Vec::new();
        if !h.lost_examples.is_empty() {
            lists.push((
                format!("{} lost (first {} shown, in commit order)", count(h.lost), h.lost_examples.len()),
                h.lost_examples.iter().map(|x| format!("{} — operation {}, last seen at {}", x.event, x.operation, x.last_seen)).collect(),
            ));
        }
        if !h.duplicated_examples.is_empty() {
            lists.push((
                format!("{} duplicated (first {} shown)", count(h.duplicated), h.duplicated_examples.len()),
                h.duplicated_examples.iter().map(|x| format!("{} ×{}", x.event, x.copies)).collect(),
            ));
        }
        if !h.phantom_examples.is_empty() {
            lists.push((
                format!("{} phantom (first {} shown)", count(h.phantom), h.phantom_examples.len()),
                h.phantom_examples.iter().map(|x| format!("{} at {}/{}", x.event, x.partition, x.offset)).collect(),
            ));
        }
        if !h.wrong_operation_examples.is_empty() {
            lists.push((
                format!("{} wrong operation (first {} shown)", count(h.wrong_operation), h.wrong_operation_examples.len()),
                h.wrong_operation_examples.iter().map(|x| format!("{} at {}/{}, its operation made an {}", x.event, x.partition, x.offset, x.expected)).collect(),
            ));
        }
        if !h.out_of_order_examples.is_empty() {
            lists.push((
                format!("{} out of order (first {} shown)", count(h.out_of_order), h.out_of_order_examples.len()),
                h.out_of_order_examples.iter().map(|x| format!("{} after {} at {}/{}", x.event, x.arrived_after, x.partition, x.offset)).collect(),
            ));
        }
        for (title, items) in lists {
            let first = items.first().map(|i| format!(" — e.g. <span class=\"mono\">{}</span>", escape(i))).unwrap_or_default();
            let _ = write!(s, r#"<details><summary><b>{}</b>: {}{first}</summary><ul class="examples mono">"#, hop.as_str(), escape(&title));
            for i in items {
                let _ = write!(s, "<li>{}</li>", escape(&i));
            }
            s.push_str("</ul></details>");
        }
    }
    let malformed: Vec<String> = r.malformed.iter().filter(|(_, n)| **n > 0).map(|(h, n)| format!("{h}: {n}")).collect();
    let _ = writeln!(
        s,
        r#"<p class="caption">Dead letters: {} · malformed records: {} · components down at the end: {}</p></section>"#,
        count(r.dead_letters),
        if malformed.is_empty() { "none".into() } else { escape(&malformed.join(", ")) },
        if r.components_down.is_empty() { "none".into() } else { escape(&r.components_down.join(", ")) }
    );
}

fn final_state(s: &mut String, rec: &Recorded) {
    let f = &rec.result.final_state;
    let _ = write!(
        s,
        r#"<section id="final-state"><h2>Final state</h2><p>The warehouse's <code>customer_360</code> against the join recomputed from the source tables: <b>{}</b> — {} documents expected, {} in the warehouse.</p>"#,
        if f.matches { "match" } else { "differs" },
        count(f.expected_documents),
        count(f.warehouse_documents)
    );
    if !f.matches {
        let keys: Vec<String> = f.mismatched_keys.iter().take(40).map(i64::to_string).collect();
        let more = f.mismatched_keys.len().saturating_sub(40);
        let _ = write!(
            s,
            "<p>{} customers differ: <span class=\"mono\">{}{}</span></p>",
            count(f.mismatched_keys.len() as u64),
            keys.join(", "),
            if more > 0 { format!(", … ({more} more)") } else { String::new() }
        );
        if !f.differences.is_empty() {
            s.push_str("<ul class=\"mono\">");
            for d in &f.differences {
                let _ = write!(s, "<li>{}</li>", escape(d));
            }
            s.push_str("</ul>");
        }
    }
    s.push_str("</section>\n");
}

fn percentile_row(s: &mut String, name: &str, p: &Percentiles) {
    let _ = write!(
        s,
        r#"<tr><td><b>{name}</b></td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
        count(p.count),
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p999),
        ms(p.max)
    );
}

/// The shared time axis of the plots over time: seconds after the load start.
fn time_scale(rec: &Recorded) -> Scale {
    Scale::tight(0.0, rec.time_span_s(), 12)
}

/// Fault windows (and, with `unavailable`, unavailability windows) shaded on a time plot.
fn shade(p: &mut Plot, rec: &Recorded, unavailable: bool) {
    let end = rec.time_span_s();
    if unavailable {
        for g in &rec.result.unavailability_windows {
            let tip = format!(
                "no warehouse progress for {:.1} s, from {:.1} s{}",
                g.duration_s,
                g.start_s,
                if g.recovered { "" } else { " (not recovered before the load ended)" }
            );
            p.strip(g.start_s, g.start_s + g.duration_s, "strip-unavailable", &tip);
        }
        if !rec.result.unavailability_windows.is_empty() {
            p.legend_box("strip-unavailable", "unavailable");
        }
    }
    for f in &rec.faults {
        p.band(f.start_s, f.end_s.unwrap_or(end), "band-fault", &f.label(), &f.describe());
    }
    if rec.load_s > 0.0 && end > rec.load_s + 1.0 {
        p.marker(rec.load_s, "marker", "load end");
    }
}

fn stage_plot(rec: &Recorded, stage: &Stage) -> String {
    let peak = stage.windows.iter().map(|w| w.max).fold(0.0, f64::max);
    let bound = (stage.name == "warehouse").then(|| rec.expect.as_ref().and_then(|e| e.p99_ms)).flatten();
    // A bound far above the data would flatten it: then it is named, not drawn.
    let drawn = bound.filter(|b| peak == 0.0 || *b <= 2.0 * peak);
    let top = peak.max(drawn.unwrap_or(0.0));
    let seconds = top >= 2000.0;
    let div = if seconds { 1000.0 } else { 1.0 };
    let title = format!("{} — latency from intended send, per second of load", stage_title(stage.name));
    let mut p = Plot::new(&format!("latency-{}", stage.name), &title, W, 250.0, time_scale(rec), Scale::nice(0.0, top / div, 5))
        .axis_labels("seconds since the load started", if seconds { "latency (s)" } else { "latency (ms)" });
    shade(&mut p, rec, false);
    if stage.windows.is_empty() {
        p.empty("no latency recorded for this stage (latency.hlog)");
    }
    let series = |f: fn(&super::recorded::Window) -> f64| stage.windows.iter().map(|w| (w.start_s + 0.5, f(w) / div)).collect::<Vec<_>>();
    p.line(series(|w| w.max), "s-max", Some(&format!("latency-{}-max", stage.name)));
    p.line(series(|w| w.p99), "s-p99", Some(&format!("latency-{}-p99", stage.name)));
    p.line(series(|w| w.p50), "s-p50", Some(&format!("latency-{}-p50", stage.name)));
    p.legend("s-p50", "p50");
    p.legend("s-p99", "p99");
    p.legend("s-max", "max");
    match (bound, drawn) {
        (_, Some(b)) => {
            p.line(vec![(0.0, b / div), (rec.time_span_s(), b / div)], "s-bound", Some("latency-bound"));
            p.legend("s-bound", "p99 bound");
        }
        (Some(b), None) => p.legend("s-bound", &format!("p99 bound {} (above the scale)", human_ms(b))),
        (None, None) => {}
    }
    p.finish()
}

fn stage_title(name: &str) -> &'static str {
    match name {
        "source" => "source: database acknowledgement",
        "raw" => "raw: Debezium CDC topic",
        "changes" => "changes: join output topic",
        "warehouse" => "warehouse: sink commit",
        "lake" => "lake: Parquet object",
        _ => "stage",
    }
}

/// The HdrHistogram percentile curve of every stage, on a log latency axis.
fn percentile_plot(rec: &Recorded) -> String {
    let most = rec.stages.iter().filter_map(|s| s.overall.as_ref()).map(|h| h.len()).max().unwrap_or(0);
    let top = ((most.max(1) as f64).log10().ceil()).clamp(2.0, 6.0);
    let mut curves: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for s in &rec.stages {
        let Some(h) = &s.overall else { continue };
        let steps = (top * 40.0) as usize;
        let pts = (0..=steps)
            .map(|i| {
                let x = top * i as f64 / steps as f64;
                (x, h.value_at_quantile(svg::quantile(x)) as f64 / 1000.0)
            })
            .collect();
        curves.push((s.name, pts));
    }
    let lo = curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let hi = curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).fold(0.0, f64::max);
    let y = if lo.is_finite() { Scale::log(lo, hi) } else { Scale::Log { min: 1.0, max: 1000.0 } };
    let mut p = Plot::new("percentiles", "Latency by percentile — intended send to each stage, whole load", W, 330.0, Scale::Nines { max: top }, y)
        .axis_labels("percentile", "latency (log scale)")
        .tick_format(svg::nines_label, svg::duration_ms);
    if curves.is_empty() {
        p.empty("no latency recorded (latency.hlog)");
    }
    for (name, pts) in curves {
        p.line(pts, &format!("s-{name}"), Some(&format!("percentile-{name}")));
        p.legend(&format!("s-{name}"), name);
    }
    p.finish()
}

fn latency(s: &mut String, rec: &Recorded) {
    let b = &rec.result.latency_ms_by_hop;
    s.push_str(
        r#"<section id="latency"><h2>Latency</h2>
<p class="caption">Measured per event from the operation's <i>intended</i> send time (coordinated omission corrected) to its first arrival at each stage, in ms. Warm-up excluded.</p>
<table><thead><tr><th>stage</th><th class="n">events</th><th class="n">p50</th><th class="n">p90</th><th class="n">p99</th><th class="n">p99.9</th><th class="n">max</th></tr></thead><tbody>"#,
    );
    for (name, p) in [("source", &b.source), ("raw", &b.raw), ("changes", &b.changes), ("warehouse", &b.warehouse), ("lake", &b.lake)] {
        percentile_row(s, name, p);
    }
    s.push_str("</tbody></table>\n<div class=\"plots\">");
    s.push_str(&percentile_plot(rec));
    let _ = write!(
        s,
        r#"<h3>Over time</h3><p class="caption">Per one-second window of intended send time: p50, p99 and max. {}</p>"#,
        if rec.faults.is_empty() {
            "No fault was injected."
        } else {
            "Shaded: fault windows, labelled with the fault's id, kind and the node it hit (hover for how the target was resolved)."
        }
    );
    for stage in &rec.stages {
        s.push_str(&stage_plot(rec, stage));
    }
    s.push_str("</div></section>\n");
}

fn throughput(s: &mut String, rec: &Recorded) {
    let t = &rec.throughput;
    let peak = [&t.offered, &t.acknowledged, &t.not_acknowledged, &t.warehouse].iter().flat_map(|v| v.iter()).fold(0.0f64, |a, b| a.max(*b));
    let mut p = Plot::new("throughput", "Throughput — row changes per second", W, 280.0, time_scale(rec), Scale::nice(0.0, peak, 5))
        .axis_labels("seconds since the load started", "row changes / s");
    let pts = |v: &Vec<f64>| v.iter().enumerate().map(|(i, n)| (i as f64 + 0.5, *n)).collect::<Vec<_>>();
    if t.offered.is_empty() && t.warehouse.is_empty() {
        p.empty("no history.jsonl / observed/warehouse.tsv to count");
    }
    p.line(pts(&t.warehouse), "s-warehouse", Some("throughput-warehouse"));
    p.line(pts(&t.acknowledged), "s-acknowledged", Some("throughput-acknowledged"));
    p.line(pts(&t.offered), "s-offered", Some("throughput-offered"));
    p.legend("s-offered", "offered");
    p.legend("s-acknowledged", "acknowledged by the sources");
    p.legend("s-warehouse", "committed in the warehouse");
    if t.not_acknowledged.iter().any(|n| *n > 0.0) {
        p.line(pts(&t.not_acknowledged), "s-failed", Some("throughput-failed"));
        p.legend("s-failed", "fail / unknown");
    }
    shade(&mut p, rec, true);
    let _ = writeln!(
        s,
        r#"<section id="throughput-section"><h2>Throughput</h2><p class="caption">Offered: row changes the open-loop load meant to send each second (intended time). Acknowledged: row changes the databases committed and acknowledged (completion time). Warehouse: events the warehouse sink committed. Shaded violet: faults; red strip along the axis: unavailability windows (no warehouse progress while load was offered). Offered {:.1}/s, achieved {:.1}/s over the run.</p><div class="plots">{}</div></section>"#,
        rec.result.offered_rate,
        rec.result.achieved_rate,
        p.finish()
    );
}

fn unavailability(s: &mut String, rec: &Recorded) {
    let r = &rec.result;
    let _ = write!(
        s,
        r#"<section id="unavailability"><h2>Unavailability</h2><p>Longest stretch without warehouse progress while load was offered: <b>{:.1} s</b> ({}).</p>"#,
        r.max_unavailability_s,
        bound_text(rec.expect.as_ref().and_then(|e| e.max_unavailability_s), "s")
    );
    if r.unavailability_windows.is_empty() {
        s.push_str("<p class=\"sub\">No window recorded.</p>");
    } else {
        s.push_str(r#"<table><thead><tr><th class="n">from (s)</th><th class="n">to (s)</th><th class="n">duration (s)</th><th>recovered</th><th>faults in force</th></tr></thead><tbody>"#);
        for g in &r.unavailability_windows {
            let end = g.start_s + g.duration_s;
            let during: Vec<String> =
                rec.faults.iter().filter(|f| f.start_s < end && f.end_s.unwrap_or(f64::INFINITY) > g.start_s).map(|f| f.label()).collect();
            let _ = write!(
                s,
                r#"<tr{cls}><td class="n">{:.1}</td><td class="n">{:.1}</td><td class="n">{:.1}</td><td>{}</td><td>{}</td></tr>"#,
                g.start_s,
                end,
                g.duration_s,
                if g.recovered { "yes" } else { "no, not before the load ended" },
                escape(&during.join(", ")),
                cls = if (g.duration_s - r.max_unavailability_s).abs() < 1e-9 { r#" class="max""# } else { "" }
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
}

fn faults(s: &mut String, rec: &Recorded) {
    s.push_str(r#"<section id="faults"><h2>Fault timeline</h2>"#);
    if rec.faults.is_empty() && rec.fault_errors.is_empty() {
        s.push_str("<p class=\"sub\">No fault was injected.</p>");
    }
    if !rec.faults.is_empty() {
        s.push_str(r#"<p class="caption">From <code>faults.jsonl</code>; times in seconds after the load started.</p><table><thead><tr><th class="n">#</th><th>kind</th><th>target</th><th>hit</th><th>how the target was resolved, and the evidence that it took effect</th><th class="n">start</th><th class="n">heal</th><th class="n">for</th></tr></thead><tbody>"#);
        for f in &rec.faults {
            let heal = f.end_s.map_or("not recorded".to_string(), |e| format!("{e:.1}"));
            let dur = f.end_s.map_or("—".to_string(), |e| format!("{:.1} s", e - f.start_s));
            let heal_note = if f.heal_detail.is_empty() { String::new() } else { format!("<br><span class=\"sub\">heal: {}</span>", escape(&f.heal_detail)) };
            let proofs = |title: &str, ps: &[crate::faults::Proof]| -> String {
                ps.iter()
                    .map(|p| format!("<br><span class=\"{}\">{title} {} {}</span>", if p.held { "sub" } else { "bad" }, if p.held { "✓" } else { "✗" }, escape(&p.claim)))
                    .collect()
            };
            let evidence = if f.evidence.is_empty() {
                "<br><span class=\"bad\">✗ no evidence that it took effect</span>".to_string()
            } else {
                proofs("in force:", &f.evidence)
            } + &proofs("healed:", &f.heal_evidence);
            let _ = write!(
                s,
                r#"<tr><td class="n">{}</td><td><b>{}</b></td><td class="mono">{}</td><td><b>{}</b></td><td>{}{evidence}{heal_note}</td><td class="n">{:.1}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                f.id,
                escape(&f.kind),
                escape(&f.target),
                escape(&f.components.join(", ")),
                if f.detail.is_empty() { "—".to_string() } else { escape(&f.detail) },
                f.start_s,
                heal,
                dur
            );
        }
        s.push_str("</tbody></table>");
    }
    if !rec.fault_errors.is_empty() {
        s.push_str("<h3>Faults that could not be applied</h3><table><thead><tr><th class=\"n\">#</th><th>kind</th><th>target</th><th class=\"n\">at (s)</th><th>error</th></tr></thead><tbody>");
        for e in &rec.fault_errors {
            let _ = write!(
                s,
                r#"<tr><td class="n">{}</td><td>{}</td><td class="mono">{}</td><td class="n">{:.1}</td><td>{}</td></tr>"#,
                e.id,
                escape(&e.kind),
                escape(&e.target),
                e.at_s,
                escape(&e.error)
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
}

fn config(s: &mut String, rec: &Recorded) {
    let _ = write!(
        s,
        r#"<section id="config"><h2>Configuration in force</h2><p>Profile <b>{}</b>, seed <b>{}</b>. <code>run.json</code> records the profile by name; the resolved scenario below is the one the run used (every default written out).</p>"#,
        escape(&rec.result.profile),
        rec.result.seed
    );
    match &rec.profile {
        Some(p) => {
            let _ = write!(s, r#"<details><summary>Profile definition — {}</summary><pre class="columns">{}</pre></details>"#, escape(&p.source), escape(&p.text));
        }
        None => s.push_str("<p class=\"sub\">The profile's definition is not available here.</p>"),
    }
    match &rec.scenario_text {
        Some(t) => {
            let _ = write!(s, r#"<details open><summary>Resolved scenario — <code>scenario.toml</code></summary><pre class="columns">{}</pre></details>"#, escape(t));
        }
        None => s.push_str("<p class=\"sub\">scenario.toml is missing.</p>"),
    }
    s.push_str("</section>\n");
}

fn notes(s: &mut String, rec: &Recorded) {
    s.push_str(r#"<section id="notes"><h2>Notes</h2>"#);
    if rec.result.notes.is_empty() && rec.problems.is_empty() {
        s.push_str("<p class=\"sub\">None.</p>");
    }
    if !rec.result.notes.is_empty() {
        s.push_str("<ul>");
        for n in &rec.result.notes {
            let _ = write!(s, "<li>{}</li>", escape(n));
        }
        s.push_str("</ul>");
    }
    if !rec.problems.is_empty() {
        s.push_str("<h3>Recorded files this report could not use</h3><ul>");
        for p in &rec.problems {
            let _ = write!(s, "<li>{}</li>", escape(p));
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>\n");
}

fn size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn files(s: &mut String, rec: &Recorded) {
    s.push_str(r#"<section id="files"><h2>Files &amp; logs</h2><p class="caption">Relative links into this run directory.</p><h3>Reports</h3><div class="files">"#);
    let run = RunDir::new(&rec.dir);
    for name in [run.relative(&run.summary()), run.relative(&run.junit())] {
        let _ = write!(s, r#"<div><a href="{}">{}</a></div>"#, href(&name), escape(&name));
    }
    s.push_str("</div>");
    let (logs, own): (Vec<_>, Vec<_>) = rec.files.iter().partition(|(rel, _)| rel.starts_with("logs/"));
    for (title, list) in [("Recorded", own), ("Component logs", logs)] {
        let _ = write!(s, "<h3>{title}</h3><div class=\"files\">");
        if list.is_empty() {
            s.push_str("<div class=\"sub\">none</div>");
        }
        for (rel, n) in list {
            let _ = write!(s, r#"<div><a href="{}">{}</a> <span class="size">{}</span></div>"#, href(rel), escape(rel), size(*n));
        }
        s.push_str("</div>");
    }
    s.push_str("</section>\n");
}
