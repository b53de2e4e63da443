//! End-to-end test of `cdc-chaos run`: the smoke scenario against the real local stack passes with
//! no event lost, duplicated, phantom or out of order at any hop and a final-state match, and
//! leaves its reports; the recorded run re-checks without the stack, and the same run with one
//! warehouse record doubled fails on exactly that. A two-step sweep of the same scenario on the
//! same stack measures each rate and renders its curve. A real backlog of an earlier run is
//! recognised by its write ids.

use std::path::Path;

use cdc_chaos::run::{run, RunOptions};
use cdc_chaos::scenario::Scenario;
use cdc_chaos_e2e::*;
use serde_json::Value;

fn result_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

#[test]
fn smoke_scenario_passes_and_its_record_rechecks() {
    let (_host, stack) = fresh_stack("run");
    let scenario = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml")).unwrap();
    let reports = stack.layout.home.join("reports");
    let (dir, result) = run(&scenario, &RunOptions::local(stack.cfg.clone(), reports)).expect("run");
    let v = result_json(&dir);
    eprintln!("{}", result.summary_text());
    eprintln!("result.json: {}", serde_json::to_string_pretty(&v).unwrap());
    eprintln!("memory (MiB): {:?}", rss_report(&stack));
    for hop in ["raw", "changes", "warehouse", "lake"] {
        let h = &v["hops"][hop];
        assert!(h["acknowledged"].as_u64().unwrap() > 1000, "{hop}: the smoke load acknowledges >1000 events: {h}");
        for k in ["lost", "duplicated", "phantom", "out_of_order"] {
            assert_eq!(h[k], 0, "{hop}.{k}: {h}");
        }
        assert_eq!(h["delivered"], h["acknowledged"], "{hop}");
    }
    assert_eq!(v["final_state"]["match"], true, "{}", v["final_state"]);
    assert_eq!(v["verdict"], "pass", "{v}");
    assert_eq!(result.exit_code(), 0);
    for f in ["scenario.toml", "profile.toml", "run.json", "history.jsonl", "observed/raw.tsv", "observed/lake.tsv", "final_state.json", "latency.hlog", "logs/join.log"] {
        assert!(dir.join(f).is_file(), "{f} in the run directory");
    }
    // The run brought the stack up: run.log holds the start-up and everything after it.
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
    for line in ["provisioning (profile durable", "stack up in", "waiting for every hop to quiesce", "checking", "rendering report.html"] {
        assert!(log.contains(line), "run.log has {line:?}:\n{log}");
    }

    // The reports of a real run: one latency plot per stage, the curve, the throughput, a JUnit
    // case per invariant with no failure.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    for id in ["verdict", "latency-source", "latency-raw", "latency-changes", "latency-warehouse", "latency-lake", "percentiles", "throughput"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "report.html has #{id}");
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml");
    assert!(junit.matches("<testcase ").count() >= 20, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(summary.contains("PASS") && summary.contains("cdc-chaos replay"), "{summary}");

    // Re-checking the record without touching the stack gives the same verdict and counts.
    let again = cdc_chaos::result::check_run(&dir).unwrap();
    assert_eq!(again.exit_code(), 0);
    assert_eq!(result_json(&dir)["hops"], v["hops"]);

    // The same record with one warehouse row doubled: a duplicate at the warehouse, nothing else.
    let wh = dir.join("observed/warehouse.tsv");
    let text = std::fs::read_to_string(&wh).unwrap();
    let line = text.lines().nth(1).unwrap().to_string();
    std::fs::write(&wh, format!("{text}{line}\n")).unwrap();
    let bad = cdc_chaos::result::check_run(&dir).unwrap();
    let v = result_json(&dir);
    assert_eq!(bad.exit_code(), 1, "{v}");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["hops"]["warehouse"]["duplicated"], 1);
    for hop in ["raw", "changes", "lake"] {
        assert_eq!(v["hops"][hop]["duplicated"], 0, "{hop}");
    }
}

#[test]
fn a_two_step_sweep_measures_each_rate_and_renders_the_curve() {
    let (_host, stack) = fresh_stack("sweep");
    let scenario = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml")).unwrap();
    let opts = cdc_chaos::sweep::SweepOptions {
        run: RunOptions::local(stack.cfg.clone(), stack.layout.home.join("reports")),
        plan: cdc_chaos::sweep::Plan { start: 20.0, factor: Some(2.0), step: None, max: 40.0 },
        objective: cdc_chaos::sweep::Objective { hop: "warehouse".into(), p99_ms: 60_000.0 },
        duration: Some(cdc_chaos::scenario::Dur::secs(20)),
        keep_going: true,
    };
    let (dir, sweep) = cdc_chaos::sweep::sweep(&scenario, &opts).expect("sweep");
    eprint!("{}", sweep.markdown());
    let rates: Vec<f64> = sweep.steps.iter().map(|s| s.offered_rate).collect();
    assert_eq!(rates, [20.0, 40.0]);
    for s in &sweep.steps {
        assert_eq!(s.verdict, "pass", "{s:?}");
        assert_eq!(s.anomalies, 0, "{s:?}");
        assert!(s.latency_ms_by_hop["warehouse"].count > 0, "{s:?}");
        assert!(dir.join(&s.run_id).join("report.html").is_file(), "{}", s.run_id);
    }
    let best = sweep.steps.iter().filter(|s| s.meets_objective).map(|s| s.offered_rate).reduce(f64::max);
    assert_eq!(sweep.max_sustainable_rate, best);
    let json: cdc_chaos::sweep::Sweep = serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json, sweep);
    let html = std::fs::read_to_string(dir.join("sweep.html")).unwrap();
    assert!(html.contains("id=\"curve\"") && html.contains("id=\"p99\""), "sweep.html has the curve");
}

/// A real backlog: an earlier run's changes reach the raw topics while the join is down, the
/// marks are taken, then the join comes back and works through them while this run's load is
/// offered. The earlier run's events arrive at `changes`, the warehouse and the lake during this
/// run, and are recognised by their write ids — counted, not checked, whatever input offsets the
/// join reports — while every event of this run is checked as usual.
#[test]
fn a_backlog_of_an_earlier_run_is_recognised_by_its_write_ids() {
    use cdc_chaos::checker::Checker;
    use cdc_chaos::history::{read, run_tag, HistoryWriter, Operation};
    use cdc_chaos::observation::Hop;
    use cdc_chaos::platform::stack::Stack;
    use cdc_chaos::{capture, load};
    use std::time::{Duration, Instant};

    let (_host, stack) = fresh_stack("backlog");
    stack.up(&cdc_chaos::Profile::load("durable").unwrap()).expect("up");
    let endpoints = stack.endpoints().unwrap();
    let dir = stack.layout.home.join("backlog");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = Scenario::parse("name = \"backlog\"\nseed = 3\nwarmup = \"0s\"\nduration = \"8s\"\n[load]\nrate = 30\nconnections = 2\n", "backlog").unwrap();
    let events = |ops: &[Operation]| ops.iter().map(|o| o.events().count()).sum::<usize>() as u64;

    // The earlier run, 100 s "ago" by its tag, with the join down.
    stack.stop_component("join", false, Duration::from_secs(60)).unwrap();
    let now = cdc_pipeline::record::now_us();
    load::drive(&scenario, &endpoints.sources, run_tag(now) - 100, HistoryWriter::create(&dir.join("earlier.jsonl")).unwrap(), Duration::from_secs(5), |_, _| {}).unwrap();
    let earlier = events(&read(&dir.join("earlier.jsonl")).unwrap());
    assert!(earlier > 100, "the earlier run acknowledged {earlier} events");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (raw, _) = capture::raw(&endpoints, &Default::default()).unwrap();
        if raw.len() as u64 >= earlier {
            break;
        }
        assert!(Instant::now() < deadline, "the earlier run's {earlier} events did not all reach the raw topics: {}", raw.len());
        std::thread::sleep(Duration::from_secs(1));
    }

    // This run: marks with the backlog unprocessed, the join back, the load.
    let marks = capture::marks(&endpoints).unwrap();
    stack.restart_component("join").unwrap();
    let tag = run_tag(cdc_pipeline::record::now_us());
    load::drive(&scenario, &endpoints.sources, tag, HistoryWriter::create(&dir.join("history.jsonl")).unwrap(), Duration::from_secs(5), |_, _| {}).unwrap();
    let rested = cdc_chaos::run::quiesce(&*stack, Duration::from_secs(5), Duration::from_secs(240));
    assert!(rested.quiesced, "{:?}", rested.note);

    let ops = read(&dir.join("history.jsonl")).unwrap();
    let (lake, _, lake_documents) = capture::lake(&endpoints, &marks, tag).unwrap();
    let hops = [
        (Hop::Raw, capture::raw(&endpoints, &marks).unwrap().0),
        (Hop::Changes, capture::changes(&endpoints, &marks).unwrap().0),
        (Hop::Warehouse, capture::warehouse_log(&endpoints, &marks).unwrap().0),
        (Hop::Lake, lake),
    ];
    let final_state = capture::final_state(&endpoints, lake_documents).unwrap();
    let mut checker = Checker::new(&ops);
    assert_eq!(checker.run(), tag);
    for (hop, obs) in &hops {
        checker.observe_all(*hop, obs);
    }
    let report = checker.report(&final_state);
    eprintln!("backlog: {earlier} earlier events; {}", serde_json::to_string(&report.hops).unwrap());
    assert_eq!(report.anomalies(), vec![], "{:?}", report.final_state.differences);
    assert!(report.acknowledged > 100 && report.acknowledged == events(&ops));
    assert_eq!(report.hop(Hop::Raw).earlier_runs, 0, "the backlog was in the raw topics before the marks");
    for hop in [Hop::Changes, Hop::Warehouse, Hop::Lake] {
        let h = report.hop(hop);
        assert_eq!((h.earlier_runs, h.delivered), (earlier, report.acknowledged), "{}: the whole backlog arrived during the run, and is not this run's", hop.as_str());
    }
    assert_eq!(report.lake_state.as_ref().map(|l| l.matches), Some(true), "{:?}", report.lake_state);
}
