//! `report.html` as a browser shows it: headless Chromium (Debian package `chromium`) renders a
//! synthetic run's report; the DOM it built must hold the SVG plots with their data, and the
//! screenshot must be a real page.
//!
//! Chromium is installed the way the harness provisions Debian packages (`apt-get install -y
//! --no-install-recommends`, non-interactive) when the test runs as root; otherwise the test
//! fails naming the command that installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cdc_chaos::history::{EventKey, EventOp, HistoryWriter, Kind, Line, Phase, RowOp, WriteId};
use cdc_chaos::faults::{FaultRecord, Proof};
use cdc_chaos::observation::{self, FinalState, Hop, Observation};
use cdc_chaos::scenario::{FaultKind, Scenario};
use cdc_pipeline::decode::Table;
use serde_json::json;

const STAGES: [&str; 5] = ["source", "raw", "changes", "warehouse", "lake"];

/// The Chromium binary, installed with apt-get when missing and running as root.
fn chromium() -> PathBuf {
    let find = || ["chromium", "chromium-browser"].into_iter().find(|p| cdc_chaos::platform::process::on_path(p)).map(PathBuf::from);
    if let Some(p) = find() {
        return p;
    }
    let remedy = "apt-get update && apt-get install -y --no-install-recommends chromium";
    assert!(cdc_chaos::config::is_root(), "missing Debian package chromium (headless browser for the report test): run `sudo {remedy}`");
    for args in [&["update"][..], &["install", "-y", "--no-install-recommends", "chromium"][..]] {
        let out = Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null()).output().expect("apt-get runs");
        assert!(out.status.success(), "`apt-get {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    find().unwrap_or_else(|| panic!("chromium still missing after `{remedy}`"))
}

/// Runs Chromium headless on `page` with `args`, at most two minutes; returns stdout.
fn headless(browser: &Path, profile: &Path, args: &[&str], page: &Path) -> String {
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,4000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?} exited with {status}");
            return reader.join().unwrap();
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A recorded run: 40 s of load at 5 single-row inserts per second, a fault from 10 s to 20 s
/// during which nothing reaches the warehouse; checked, so `result.json` and `latency.hlog`
/// exist.
fn recorded_run(dir: &Path) {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let text = "name = \"browser\"\nseed = 5\nduration = \"40s\"\n[load]\nrate = 5\n[[faults]]\nat = \"10s\"\nkind = \"kill\"\ntarget = \"kafka-1\"\nfor = \"10s\"\n";
    std::fs::write(dir.join("scenario.toml"), Scenario::parse(text, "browser").unwrap().resolved()).unwrap();
    let (t0, s) = (1_800_000_000_000_000i64, 1_000_000i64);
    let mut h = HistoryWriter::create(&dir.join("history.jsonl")).unwrap();
    let mut obs = Vec::new();
    for i in 0..200i64 {
        let intended = t0 + i * s / 5;
        let row = RowOp { table: Table::Customers, pk: 1 + i, kind: Kind::Insert, customer_id: None, affected: None };
        let write = WriteId::new(6, i as u64);
        h.write(&Line::Invoke { index: i as u64, worker: "crm-0".into(), phase: Phase::Load, intended_us: intended, time_us: intended, write_id: Some(write.0), rows: vec![row] })
            .unwrap();
        let tx = (700 + i).to_string();
        h.write(&Line::Ok { index: i as u64, time_us: intended + 2_000, tx: Some(tx.clone()), affected: vec![true] }).unwrap();
        let key = EventKey { table: Table::Customers, pk: 1 + i, write, op: EventOp::Upsert };
        let arrives = if (10 * s..20 * s).contains(&(intended - t0)) { t0 + 20 * s + (i % 5) * 20_000 } else { intended + (i % 9) * 30_000 };
        obs.push((arrives, key));
    }
    h.flush().unwrap();
    for (n, hop) in Hop::ALL.into_iter().enumerate() {
        let mut o: Vec<Observation> =
            obs.iter().enumerate().map(|(i, (at, key))| Observation { key: *key, partition: 0, offset: i as i64, ts_us: at + (n as i64 + 1) * 120_000 }).collect();
        o.sort_by_key(|x| x.ts_us);
        observation::write(dir, hop, &o).unwrap();
    }
    let customer = json!({"id": 1, "name": "Ana"});
    let mut doc = customer.clone();
    doc["flights"] = json!([]);
    doc["vehicles"] = json!([]);
    FinalState { customers: vec![customer.as_object().unwrap().clone()], flights: vec![], vehicles: vec![], lake: Some([(1, doc.clone())].into()), warehouse: [(1, doc)].into() }.write(dir).unwrap();
    let fault = |event: &str, at: i64| FaultRecord {
        id: 0,
        event: event.into(),
        kind: FaultKind::Kill,
        target: "kafka-1".into(),
        components: vec!["kafka-1".into()],
        detail: String::new(),
        time_us: t0 + at * s,
        evidence: vec![Proof { claim: format!("kafka-1 (pid 7) {}", if event == "start" { "gone" } else { "running again" }), held: true, time_us: t0 + at * s }],
    };
    let journal = [fault("start", 10), fault("heal", 20)].iter().map(|f| serde_json::to_string(f).unwrap() + "\n").collect::<String>();
    std::fs::write(dir.join("faults.jsonl"), journal).unwrap();
    std::fs::write(dir.join("logs/kafka-1.log"), "started\n").unwrap();
    cdc_chaos::run_dir::RunMeta {
        run_id: "browser-1".into(),
        scenario: "browser".into(),
        seed: 5,
        profile: "durable".into(),
        platform: "local".into(),
        warmup_start_us: t0,
        load_start_us: t0,
        load_end_us: t0 + 40 * s,
        quiesced: true,
        offered_rate: 5.0,
        ..Default::default()
    }
    .write(dir)
    .unwrap();
    let r = cdc_chaos::result::check_run(dir).unwrap();
    assert_eq!(r.verdict, cdc_chaos::result::Verdict::Pass, "{:?}", r.reasons);
}

/// The `points` of the polyline with `id` in `dom`.
fn points<'a>(dom: &'a str, id: &str) -> Vec<&'a str> {
    let at = dom.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no element {id} in the DOM"));
    let tag_end = at + dom[at..].find('>').unwrap();
    let tag = &dom[dom[..at].rfind('<').unwrap()..tag_end];
    assert!(tag.starts_with("<polyline"), "{id} is a polyline: {tag}");
    let p = tag.find(r#"points=""#).unwrap_or_else(|| panic!("{id} has points: {tag}")) + r#"points=""#.len();
    tag[p..p + tag[p..].find('"').unwrap()].split_whitespace().collect()
}

/// Width and height from a PNG's header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn chromium_renders_the_report_with_its_plots() {
    let browser = chromium();
    let root = std::env::temp_dir().join(format!("cdcc-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("browser-1");
    recorded_run(&dir);
    cdc_chaos::report::render(&dir).unwrap();
    let page = dir.join("report.html");

    let dom = headless(&browser, &root.join("profile"), &["--dump-dom"], &page);
    assert!(dom.contains(r#"id="verdict""#) && dom.contains(">PASS</div>"), "the verdict banner");
    for stage in STAGES {
        assert!(dom.contains(&format!(r#"<svg class="plot" id="latency-{stage}""#)), "the {stage} latency plot");
        for series in ["p50", "p99", "max"] {
            let pts = points(&dom, &format!("latency-{stage}-{series}"));
            assert!(pts.len() >= 35, "{stage} {series}: one point per second of load, got {}", pts.len());
        }
        assert!(points(&dom, &format!("percentile-{stage}")).len() > 50, "{stage}'s percentile curve");
    }
    assert_eq!(dom.matches(">#0 kill kafka-1</text>").count(), 6, "the fault band is labelled on every plot over time");
    assert!(points(&dom, "throughput-offered").len() >= 40 && points(&dom, "throughput-warehouse").len() >= 40);

    let shot = root.join("report.png");
    headless(&browser, &root.join("profile"), &[&format!("--screenshot={}", shot.display())], &page);
    let png = std::fs::read(&shot).expect("the screenshot is written");
    assert_eq!(png_size(&png), (1280, 4000));
    assert!(png.len() > 60_000, "a page of tables and plots, not a blank one: {} bytes", png.len());
    std::fs::remove_dir_all(&root).unwrap();
}
