//! End-to-end test of `cdc-chaos run`: the smoke scenario against the real local stack passes with
//! no event lost, duplicated, phantom or out of order at any hop and a final-state match; the
//! recorded run re-checks without the stack, and the same run with one warehouse record doubled
//! fails on exactly that.

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
    let (dir, result) = run(&scenario, &RunOptions { cfg: stack.cfg.clone(), reports }).expect("run");
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
    for f in ["scenario.toml", "run.json", "history.jsonl", "observed/raw.tsv", "observed/lake.tsv", "final_state.json", "latency.hlog", "logs/join.log"] {
        assert!(dir.join(f).is_file(), "{f} in the run directory");
    }

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
