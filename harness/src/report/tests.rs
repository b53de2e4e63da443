//! The reports against synthetic recorded runs: every file written, the structure each promises
//! (plots per stage, fault labels, JUnit test cases, Markdown tables), anomalies surfacing in
//! each, and bad or partial run directories.

use std::path::{Path, PathBuf};

use cdc_pipeline::decode::Table;
use proptest::prelude::*;

use super::invariants::{self, Status};
use super::*;
use crate::checker::tests::{anomaly, final_state_fixture, inject, specs, synthetic, T0 as SYNTHETIC_T0};
use crate::checker::Checker;
use crate::history::{EventKey, EventOp, HistoryWriter, Kind, Line, Phase, RowOp, WriteId};
use crate::latency::{Latency, STAGES};
use crate::faults::{FaultRecord, Proof};
use crate::observation::{self, Hop, Observation};
use crate::result::{check_run, RunResult, Verdict};
use crate::run_dir::RunMeta;
use crate::scenario::{Expect, FaultKind, Scenario};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("cdc-chaos-report-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const T0: i64 = 1_800_000_000_000_000;
const S: i64 = 1_000_000;
const MS: i64 = 1_000;

/// What a synthetic run records.
#[derive(Clone)]
struct Spec {
    /// Seconds of measured load, at `per_second` single-row inserts per second.
    seconds: i64,
    per_second: i64,
    /// A fault (start, heal) in seconds after the load start; the warehouse and lake stall
    /// until the heal.
    fault: Option<(i64, i64)>,
    /// A hop where one event arrives twice.
    duplicate_at: Option<Hop>,
    /// An event that never reaches the warehouse nor the lake.
    lose_one: bool,
    quiesced: bool,
    /// Lines of the scenario's `[expect]`.
    expect: &'static str,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec { seconds: 30, per_second: 5, fault: Some((10, 18)), duplicate_at: None, lose_one: false, quiesced: true, expect: "" }
    }
}

/// Writes a recorded run into `dir` (as `run` leaves it before checking), then checks it.
fn record(dir: &Path, spec: &Spec) -> RunResult {
    let faults = spec.fault.map_or(String::new(), |(a, b)| format!("[[faults]]\nat = \"{a}s\"\nkind = \"isolate\"\ntarget = \"kafka-2\"\nfor = \"{}s\"\n", b - a));
    let text = format!(
        "name = \"synthetic\"\ndescription = \"Isolate <kafka-2> & watch\"\nseed = 11\nduration = \"{}s\"\n[load]\nrate = {}\n{faults}[expect]\n{}",
        spec.seconds, spec.per_second, spec.expect
    );
    let scenario = Scenario::parse(&text, "synthetic").unwrap();
    std::fs::write(dir.join("scenario.toml"), scenario.resolved()).unwrap();

    let mut h = HistoryWriter::create(&dir.join("history.jsonl")).unwrap();
    let n = spec.seconds * spec.per_second;
    let mut arrivals: Vec<(i64, EventKey)> = Vec::new();
    let mut warehouse_only_lost: Option<EventKey> = None;
    for i in 0..=n {
        // Operation 0 is the warm-up, 10 s before the load.
        let (phase, intended) = if i == 0 { (Phase::Warmup, T0 - 10 * S) } else { (Phase::Load, T0 + (i - 1) * S / spec.per_second) };
        let tx = (5000 + i).to_string();
        let row = RowOp { table: Table::Customers, pk: 100 + i, kind: Kind::Insert, customer_id: None, affected: None };
        let write = WriteId::new(3, i as u64);
        h.write(&Line::Invoke { index: i as u64, worker: "crm-0".into(), phase, intended_us: intended, time_us: intended + MS, write_id: Some(write.0), rows: vec![row] })
            .unwrap();
        h.write(&Line::Ok { index: i as u64, time_us: intended + 3 * MS, tx: Some(tx.clone()), affected: vec![true] }).unwrap();
        let key = EventKey { table: Table::Customers, pk: 100 + i, write, op: EventOp::Upsert };
        let at = match spec.fault {
            Some((a, b)) if intended >= T0 + a * S && intended < T0 + b * S => T0 + b * S + (i % 7) * 10 * MS,
            _ => intended,
        };
        arrivals.push((at, key));
        if spec.lose_one && i == n / 2 {
            warehouse_only_lost = Some(key);
        }
    }
    h.flush().unwrap();
    for (k, hop) in Hop::ALL.into_iter().enumerate() {
        let mut obs: Vec<Observation> = arrivals
            .iter()
            .filter(|(_, key)| !(matches!(hop, Hop::Warehouse | Hop::Lake) && Some(*key) == warehouse_only_lost))
            .map(|(at, key)| Observation { key: *key, partition: 0, offset: 0, ts_us: at + (k as i64 + 1) * 150 * MS })
            .collect();
        if spec.duplicate_at == Some(hop) {
            let copy = obs[obs.len() / 3];
            obs.push(copy);
        }
        obs.sort_by_key(|o| o.ts_us);
        for (offset, o) in obs.iter_mut().enumerate() {
            o.offset = offset as i64;
        }
        observation::write(dir, hop, &obs).unwrap();
    }
    final_state_fixture().write(dir).unwrap();

    let mut journal = String::new();
    if let Some((a, b)) = spec.fault {
        for (event, at, detail) in [("start", a, "node 2 cut from 10.231.0.11, 10.231.0.13, 10.231.0.1"), ("heal", b, "")] {
            let r = FaultRecord {
                id: 0,
                event: event.into(),
                kind: FaultKind::Isolate,
                target: "kafka-2".into(),
                components: vec!["kafka-2".into()],
                detail: detail.into(),
                time_us: T0 + at * S,
                evidence: vec![Proof {
                    claim: if event == "start" { "kafka-2 → 10.231.0.11:9092 blocked (no answer in 0.5 s)".into() } else { "kafka-2 → 10.231.0.11:9092 passes again (connected)".into() },
                    held: true,
                    time_us: T0 + at * S,
                }],
            };
            journal += &(serde_json::to_string(&r).unwrap() + "\n");
        }
    }
    std::fs::write(dir.join("faults.jsonl"), journal).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    for c in ["kafka-1", "connect", "join"] {
        std::fs::write(dir.join("logs").join(format!("{c}.log")), format!("{c} started\n")).unwrap();
    }
    std::fs::write(dir.join("run.log"), "[   0.0s] run synthetic\n").unwrap();
    RunMeta {
        run_id: "synthetic-20270115T080000Z".into(),
        scenario: "synthetic".into(),
        seed: 11,
        profile: "durable".into(),
        platform: "local".into(),
        warmup_start_us: T0 - 10 * S,
        load_start_us: T0,
        load_end_us: T0 + spec.seconds * S,
        quiesced: spec.quiesced,
        quiesce_note: (!spec.quiesced).then(|| "hops still moving after 300s".to_string()),
        quiesce_s: 12.0,
        offered_rate: spec.per_second as f64,
        ..Default::default()
    }
    .write(dir)
    .unwrap();
    check_run(dir).unwrap()
}

/// Records, checks and renders a run; returns the directory and its three reports.
fn rendered(spec: &Spec) -> (TempDir, RunResult, String, String, String) {
    let dir = TempDir::new();
    let result = record(&dir.0, spec);
    let out = render(&dir.0).unwrap();
    assert_eq!(out.files.len(), 3);
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let read = |name: &str| std::fs::read_to_string(dir.0.join(name)).unwrap();
    let (html, md, xml) = (read("report.html"), read("summary.md"), read("junit.xml"));
    (dir, result, html, md, xml)
}

/// Every `<svg …>…</svg>` of a page, each checked to be well-formed XML.
fn svgs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg ") {
        let end = rest[start..].find("</svg>").expect("every svg is closed") + start + "</svg>".len();
        let svg = &rest[start..end];
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        out.push(svg.to_string());
        rest = &rest[end..];
    }
    out
}

/// Test cases of a JUnit document: (name, failure message, skipped message).
fn testcases(xml: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let doc = roxmltree::Document::parse(xml).expect("junit.xml is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1, "one suite per run");
    suites[0]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| {
            let child = |tag: &str| c.children().find(|n| n.has_tag_name(tag)).map(|n| n.attribute("message").unwrap_or_default().to_string());
            (c.attribute("name").unwrap().to_string(), child("failure"), child("skipped"))
        })
        .collect()
}

fn expected_names(latency_bound: bool) -> Vec<String> {
    let mut names: Vec<String> =
        ["raw", "changes", "warehouse", "lake"].iter().flat_map(|h| invariants::HOP_CHECKS.iter().map(move |c| format!("{h}: {c}"))).collect();
    names.extend(["final state matches", "lake state matches", "max unavailability within bound"].map(String::from));
    if latency_bound {
        names.push("latency p99 within bound".into());
    }
    names.extend(["no dead letters", "no malformed records", "faults took effect", "quiesced"].map(String::from));
    names
}

#[test]
fn a_clean_run_renders_its_three_reports() {
    let (dir, result, html, md, xml) = rendered(&Spec::default());
    assert_eq!(result.verdict, Verdict::Pass, "{:?}", result.reasons);

    // report.html: self-contained, one latency plot per stage, the percentile curve, throughput.
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script") && !html.contains("<link ") && !html.contains(" src="), "no script, no external resource");
    assert_eq!(html.matches("http").count(), html.matches(r#"xmlns="http://www.w3.org/2000/svg""#).count(), "no address but the SVG namespace");
    assert!(html.contains(r#"<div class="banner pass" id="verdict"><div class="verdict">PASS</div>"#));
    let svgs = svgs(&html);
    for stage in STAGES {
        let plots: Vec<&String> = svgs.iter().filter(|s| s.contains(&format!(r#"id="latency-{stage}""#))).collect();
        assert_eq!(plots.len(), 1, "one latency plot for {stage}");
        for series in ["p50", "p99", "max"] {
            assert!(plots[0].contains(&format!(r#"<polyline id="latency-{stage}-{series}""#)), "{stage} {series}");
        }
        assert!(plots[0].contains(">#0 isolate kafka-2</text>"), "the fault band is labelled in {stage}'s plot");
        assert!(plots[0].contains("fault #0 isolate kafka-2 → kafka-2 (node 2 cut from"), "the tooltip says how the target was resolved");
        let percentile = svgs.iter().find(|s| s.contains(r#"id="percentiles""#)).expect("the percentile curve");
        assert!(percentile.contains(&format!(r#"<polyline id="percentile-{stage}""#)), "{stage}'s percentile curve");
        assert!(percentile.contains(">99.9%</text>"), "the percentile axis");
    }
    assert!(html.contains("in force: ✓ kafka-2 → 10.231.0.11:9092 blocked (no answer in 0.5 s)"), "the fault timeline shows the evidence");
    assert!(html.contains("healed: ✓ kafka-2 → 10.231.0.11:9092 passes again (connected)"), "and the heal's");
    let throughput = svgs.iter().find(|s| s.contains(r#"id="throughput""#)).expect("the throughput plot");
    for series in ["offered", "acknowledged", "warehouse"] {
        assert!(throughput.contains(&format!(r#"id="throughput-{series}""#)), "{series}");
    }
    assert!(throughput.contains("strip-unavailable"), "the stall during the fault is marked");
    for href in ["run.log", "history.jsonl", "faults.jsonl", "result.json", "latency.hlog", "logs/kafka-1.log", "logs/connect.log", "logs/join.log", "summary.md", "junit.xml"] {
        assert!(html.contains(&format!(r#"href="{href}""#)), "a link to {href}");
    }
    assert!(html.contains("Isolate &lt;kafka-2&gt; &amp; watch"), "the description, escaped");
    assert!(html.contains("built-in profile &quot;durable&quot;") && html.contains("[producer]"), "the profile in force");
    assert!(html.contains("kind = &quot;isolate&quot;"), "the resolved scenario");
    assert!(html.contains(&format!("cdc-chaos replay {}", dir.0.display())));

    // summary.md: the tables an incident ticket needs.
    assert!(md.starts_with("## cdc-chaos run `synthetic-20270115T080000Z`: **PASS**"), "{md}");
    assert!(md.contains("| hop | acknowledged | delivered | lost | lost, last seen at | duplicated | phantom | wrong op | out of order | unknown-committed |"), "{md}");
    assert!(md.contains("| warehouse | 151 | 151 | 0 | — | 0 | 0 | 0 | 0 | 0 |"), "{md}");
    assert!(md.contains("| stage | events | p50 | p90 | p99 | p99.9 | max |") && md.contains("| lake | 150 |"), "{md}");
    assert!(md.contains("| 0 | isolate | `kafka-2` | kafka-2 | 10.0 | 18.0 | node 2 cut from"), "{md}");
    assert!(md.contains(&format!("    cdc-chaos replay {}\n", dir.0.display())), "{md}");

    // junit.xml: one test case per invariant, all passed.
    let cases = testcases(&xml);
    assert_eq!(cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), expected_names(false));
    let unchecked: Vec<&str> = cases.iter().filter(|c| c.2.is_some()).map(|c| c.0.as_str()).collect();
    assert_eq!(unchecked, vec!["max unavailability within bound"], "the scenario sets no bound");
    assert!(cases.iter().all(|c| c.1.is_none()));
    assert!(xml.contains(r#"<property name="verdict" value="pass"/>"#) && xml.contains(r#"timestamp="2027-01-15T07:59:50""#), "{xml}");
}

#[test]
fn an_injected_duplicate_fails_its_test_case_and_shows_everywhere() {
    let (_dir, result, html, md, xml) = rendered(&Spec { duplicate_at: Some(Hop::Lake), ..Spec::default() });
    assert_eq!(result.verdict, Verdict::Fail);
    let cases = testcases(&xml);
    let failed: Vec<(&str, &str)> = cases.iter().filter_map(|c| c.1.as_deref().map(|m| (c.0.as_str(), m))).collect();
    assert_eq!(failed, vec![("lake: no duplicates", "1 events duplicated, 1 extra copies (allowed 0)")]);
    assert!(xml.contains(r#"failures="1""#) && xml.contains("crm/customers:150/upsert/3.50 ×2</failure>"), "{xml}");
    assert!(html.contains(r#"<div class="banner fail" id="verdict"><div class="verdict">FAIL</div>"#));
    assert!(html.contains("lake: 1 events duplicated, 1 extra copies (allowed 0); e.g. crm/customers:150/upsert/3.50 ×2"), "the reason");
    assert!(html.contains(r#"<td class="n bad">1</td>"#), "the table marks the count");
    assert!(html.contains(r#"<span class="pill violated""#));
    assert!(md.starts_with("## cdc-chaos run `synthetic-20270115T080000Z`: **FAIL**") && md.contains("- lake: 1 events duplicated"), "{md}");
    assert!(md.contains("| lake | 151 | 151 | 0 | — | 1 | 0 | 0 | 0 |"), "{md}");
}

#[test]
fn a_loss_before_quiescence_is_skipped_and_quiescence_fails() {
    let (_dir, result, html, _md, xml) = rendered(&Spec { lose_one: true, quiesced: false, ..Spec::default() });
    assert_eq!(result.verdict, Verdict::Unknown, "{:?}", result.reasons);
    let cases = testcases(&xml);
    let case = |name: &str| cases.iter().find(|c| c.0 == name).unwrap().clone();
    let lost = case("warehouse: no loss");
    assert!(lost.1.is_none() && lost.2.as_deref().unwrap().starts_with("not conclusive: the pipeline did not quiesce"), "{lost:?}");
    assert!(case("lake: no loss").2.unwrap().contains("1 acknowledged events lost (allowed 0); last seen: 1 at changes"));
    assert_eq!(case("raw: no loss"), ("raw: no loss".into(), None, None));
    assert!(case("quiesced").1.unwrap().contains("hops still moving after 300s"));
    assert!(html.contains(r#"<div class="banner unknown" id="verdict">"#) && html.contains(r#"<span class="pill inconclusive""#));
}

#[test]
fn bounds_become_test_cases_and_the_latency_bound_is_drawn() {
    let (_dir, result, html, _md, xml) = rendered(&Spec { expect: "p99_ms = 1.0\nmax_unavailability_s = 100.0\n", ..Spec::default() });
    assert_eq!(result.verdict, Verdict::Fail);
    let cases = testcases(&xml);
    assert_eq!(cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), expected_names(true));
    let failed: Vec<&str> = cases.iter().filter(|c| c.1.is_some()).map(|c| c.0.as_str()).collect();
    assert_eq!(failed, vec!["latency p99 within bound"]);
    assert!(cases.iter().all(|c| c.2.is_none()), "every bound is set: nothing skipped");
    let warehouse = svgs(&html).into_iter().find(|s| s.contains(r#"id="latency-warehouse""#)).unwrap();
    assert!(warehouse.contains(r#"<polyline id="latency-bound" class="s-bound""#) && warehouse.contains(">p99 bound</text>"));
    // A bound far above the data is named, not drawn (it would flatten the plot).
    let (_dir, _, html, _, _) = rendered(&Spec { expect: "p99_ms = 600000.0\n", ..Spec::default() });
    let warehouse = svgs(&html).into_iter().find(|s| s.contains(r#"id="latency-warehouse""#)).unwrap();
    assert!(!warehouse.contains(r#"id="latency-bound""#) && warehouse.contains(">p99 bound 600.0 s (above the scale)</text>"), "{warehouse}");
}

#[test]
fn result_json_has_the_fields_the_reports_read() {
    let dir = TempDir::new();
    record(&dir.0, &Spec::default());
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.0.join("result.json")).unwrap()).unwrap();
    for field in [
        "schema",
        "verdict",
        "reasons",
        "notes",
        "scenario",
        "seed",
        "profile",
        "run_id",
        "acknowledged",
        "load_events",
        "hops",
        "final_state",
        "latency_ms",
        "latency_ms_by_hop",
        "max_unavailability_s",
        "unavailability_windows",
        "offered_rate",
        "achieved_rate",
        "operations",
        "quiesced",
        "dead_letters",
        "malformed",
        "components_down",
    ] {
        assert!(v.get(field).is_some(), "result.json lacks {field}");
    }
    for hop in ["raw", "changes", "warehouse", "lake"] {
        for field in [
            "acknowledged",
            "delivered",
            "lost",
            "lost_by_last_seen",
            "lost_examples",
            "duplicated",
            "duplicated_examples",
            "phantom",
            "phantom_examples",
            "out_of_order",
            "out_of_order_examples",
            "unknown_committed",
        ] {
            assert!(v["hops"][hop].get(field).is_some(), "result.json lacks hops.{hop}.{field}");
        }
    }
    for stage in STAGES {
        for p in ["count", "p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_ms_by_hop"][stage][p].is_number(), "latency_ms_by_hop.{stage}.{p}");
        }
    }
    for field in ["start_s", "duration_s", "recovered"] {
        assert!(v["unavailability_windows"][0].get(field).is_some(), "unavailability_windows[].{field}");
    }
    assert!(v["final_state"]["match"].is_boolean());
}

#[test]
fn a_missing_or_corrupt_result_is_an_error_naming_the_file() {
    let dir = TempDir::new();
    record(&dir.0, &Spec::default());
    let result = dir.0.join("result.json");
    std::fs::write(&result, "{ not json").unwrap();
    let e = render(&dir.0).unwrap_err();
    assert!(e.to_string().contains(&result.display().to_string()), "{e}");
    assert_eq!(e.exit_code(), crate::error::EXIT_SETUP);
    std::fs::remove_file(&result).unwrap();
    let e = render(&dir.0).unwrap_err();
    assert!(e.to_string().contains("result.json"), "{e}");
    assert_eq!(e.exit_code(), crate::error::EXIT_SETUP);
    assert!(!dir.0.join("report.html").exists(), "nothing rendered without a result");
    let gone = dir.0.join("gone");
    let e = render(&gone).unwrap_err();
    assert!(e.to_string().contains(&format!("{}: no such run directory", gone.display())), "{e}");
}

#[test]
fn missing_optional_inputs_leave_their_part_empty_and_say_so() {
    let dir = TempDir::new();
    record(&dir.0, &Spec::default());
    for f in ["latency.hlog", "faults.jsonl", "history.jsonl"] {
        std::fs::remove_file(dir.0.join(f)).unwrap();
    }
    std::fs::write(dir.0.join("run.json"), "[]").unwrap();
    let out = render(&dir.0).unwrap();
    for f in ["latency.hlog", "faults.jsonl", "history.jsonl", "run.json"] {
        assert!(out.problems.iter().any(|p| p.contains(f)), "{f}: {:?}", out.problems);
    }
    let html = std::fs::read_to_string(dir.0.join("report.html")).unwrap();
    let svgs = svgs(&html);
    assert_eq!(svgs.iter().filter(|s| s.contains(r#"id="latency-"#)).count(), 5, "the plots are there, empty");
    assert!(html.contains("no latency recorded for this stage (latency.hlog)") && html.contains("Recorded files this report could not use"));
    // The load start comes from the unavailability windows when run.json is unreadable.
    let rec = Recorded::load(&dir.0).unwrap();
    assert_eq!(rec.load_start_us, T0);
    testcases(&std::fs::read_to_string(dir.0.join("junit.xml")).unwrap());
}

#[test]
fn the_recorded_run_reads_back_its_windows_faults_and_throughput() {
    let dir = TempDir::new();
    record(&dir.0, &Spec::default());
    let rec = Recorded::load(&dir.0).unwrap();
    assert_eq!((rec.load_start_us, rec.load_s), (T0, 30.0));
    let f = &rec.faults[0];
    assert_eq!((f.id, f.kind.as_str(), f.components.clone(), f.start_s, f.end_s), (0, "isolate", vec!["kafka-2".to_string()], 10.0, Some(18.0)));
    let warehouse = rec.stage("warehouse").unwrap();
    assert_eq!(warehouse.windows.len(), 30, "one window per second of load");
    assert_eq!(warehouse.windows[0].start_s, 0.0);
    // The warehouse is the third hop: 3 × 150 ms after the intended time; events intended in
    // the fault's first second wait until the heal at 18 s.
    let near = |got: f64, want: f64| (got - want).abs() <= want / 500.0;
    assert!(near(warehouse.windows[0].max, 450.0), "{:?}", warehouse.windows[0]);
    let stalled = &warehouse.windows[10];
    assert!(stalled.p50 > 7_400.0 && stalled.max > 8_400.0 && stalled.max < 8_520.0, "{stalled:?}");
    assert_eq!(warehouse.overall.as_ref().unwrap().len(), 150);
    let t = &rec.throughput;
    assert_eq!((t.offered[0], t.acknowledged[0], t.offered.iter().sum::<f64>()), (5.0, 5.0, 150.0));
    assert_eq!(t.warehouse[12], 0.0, "nothing arrives during the fault");
    assert!(t.warehouse[18] >= 40.0, "the backlog lands at the heal: {:?}", t.warehouse);
}

#[test]
fn compare_shows_two_runs_side_by_side() {
    let (a, b) = (TempDir::new(), TempDir::new());
    record(&a.0, &Spec::default());
    record(&b.0, &Spec { duplicate_at: Some(Hop::Raw), fault: None, ..Spec::default() });
    let (ra, rb) = (Recorded::load(&a.0).unwrap(), Recorded::load(&b.0).unwrap());
    let c = compare::compare(&ra, &rb);
    let line = |label: &str| c.text.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{label}: {}", c.text)).to_string();
    assert!(line("verdict").contains("PASS") && line("verdict").contains("*FAIL"), "{}", c.text);
    assert!(line("raw: delivered").ends_with("*151 / 0 / 1 / 0 / 0"), "{}", c.text);
    assert!(line("faults").contains("#0 isolate kafka-2 10–18 s") && line("faults").ends_with("*none"), "{}", c.text);
    assert!(line("warehouse: p50").contains(" / "), "{}", c.text);
    let svgs = svgs(&c.html);
    assert!(svgs.iter().any(|s| s.contains(r#"id="compare-percentiles""#) && s.contains(r#"id="compare-percentiles-b""#)));
    assert!(c.html.contains(r#"<tr class="differs"><td class="label">verdict</td>"#));
    assert_eq!(compare::default_out(&ra, &rb), b.0.join("compare-synthetic-20270115T080000Z.html"));
}

#[test]
fn escaping_covers_markup_quotes_and_characters_xml_forbids() {
    assert_eq!(escape("a<b>&\"c\"'d'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
    assert_eq!(escape("tab\tnl\nbell\u{7}nul\u{0}"), "tab\tnl\nbell\u{FFFD}nul\u{FFFD}");
    let xml = format!("<a b=\"{}\">{}</a>", escape("\"x\"\u{1b}[31m"), escape("</a><script>"));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(doc.root_element().attribute("b"), Some("\"x\"\u{FFFD}[31m"));
    assert_eq!(doc.root_element().text(), Some("</a><script>"));
    assert_eq!((count(0), count(999), count(1_000), count(1_234_567)), ("0".into(), "999".into(), "1,000".into(), "1,234,567".into()));
    assert_eq!(utc(1_795_612_207_899_033), "2026-11-25T13:10:07Z");
    assert_eq!(href("logs/kafka 1#.log"), "logs/kafka%201%23.log");
}

/// Judges a synthetic run in memory with default expectations.
fn judge_synthetic(s: &crate::checker::tests::Synthetic) -> RunResult {
    let scenario = Scenario::parse("name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 4\n", "t").unwrap();
    let end = s.ops.iter().map(|o| o.intended_us).max().unwrap_or(SYNTHETIC_T0) + 1;
    let meta = RunMeta { quiesced: true, load_start_us: SYNTHETIC_T0, load_end_us: end, ..Default::default() };
    let mut c = Checker::new(&s.ops);
    for (hop, obs) in &s.hops {
        c.observe_all(*hop, obs);
    }
    let report = c.report(&s.final_state);
    let latency = Latency::measure(&s.ops, c.arrivals(), SYNTHETIC_T0, end);
    RunResult::new(&scenario, &meta, report, &latency)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The invariants agree with the verdict: a single injected anomaly violates exactly the
    /// invariant of its class and hop.
    #[test]
    fn the_invariants_agree_with_the_verdict(specs in specs(), a in anomaly(), hop in 0usize..4, pick in any::<usize>()) {
        let expect = Expect::default();
        let mut s = synthetic(&specs, 2);
        let clean = judge_synthetic(&s);
        let held = invariants::judge(&clean, Some(&expect));
        prop_assert!(held.iter().all(|i| !matches!(i.status, Status::Violated { .. })), "{:?}", held);
        prop_assert_eq!(clean.verdict == Verdict::Pass, held.iter().all(|i| matches!(i.status, Status::Held | Status::NotChecked(_))));

        let hop = Hop::ALL[hop];
        let expected = inject(&mut s, a, hop, pick);
        prop_assume!(expected.is_some());
        let (at, class, _) = expected.unwrap();
        let r = judge_synthetic(&s);
        prop_assert_eq!(r.verdict, Verdict::Fail);
        let violated: Vec<String> = invariants::judge(&r, Some(&expect)).iter().filter(|i| matches!(i.status, Status::Violated { .. })).map(|i| i.name()).collect();
        let check = match class {
            "lost" => "no loss",
            "duplicated" => "no duplicates",
            "phantom" => "no phantoms",
            "out_of_order" => "in order",
            "wrong_operation" => "right operation",
            "lake_state" => "lake state matches",
            _ => "final state matches",
        };
        let name = at.map_or(check.to_string(), |h| format!("{}: {check}", h.as_str()));
        prop_assert_eq!(violated, vec![name]);
    }
}
