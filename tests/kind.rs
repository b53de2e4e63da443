//! End-to-end test of the kind platform on a live cluster: `--create-cluster` (the Docker
//! engine started if none answers, every image built here or found up to date, the cluster
//! created unless it exists, its pod network, the workloads' images loaded), then a short
//! scenario with a Kafka pod kill held for its `for` and an iptables partition of a leader,
//! run through the port forwards: the verdict passes, every hop delivers what was acknowledged,
//! each fault recorded the evidence that it took effect and healed. A cluster this test
//! created is deleted at the end, passed or failed (with a Docker engine it started); one that
//! existed is kept.
//!
//! Needs root (a Docker engine, kind's privileged nodes) and, the first time, the Go module
//! proxy and Debian's mirror: about 10 minutes to build the images on 2 cores, then about 6
//! minutes a run (cluster creation, image loading, deployment, scenario).

use std::path::Path;

use cdc_chaos::platform::kind;
use cdc_chaos::platform::deployment::Deployment;
use cdc_chaos::run::{run, RunOptions};
use cdc_chaos::scenario::Scenario;
use serde_json::Value;

const SCENARIO: &str = r#"
name = "kind-e2e"
description = "A Kafka leader's pod killed and kept down 15 s, then the leader of another partition isolated 15 s, at 20 changes/s."
seed = 11
profile = "durable"
warmup = "10s"
duration = "50s"
settle = "10s"
quiesce_timeout = "300s"

[load]
rate = 20
rows_per_tx = [1, 3]
connections = 2
timeout = "5s"

[load.key_space]
customers = 100
flights = 200
vehicles = 150

[[faults]]
at = "5s"
kind = "kill"
target = "leader:crm.public.customers/0"
for = "15s"

[[faults]]
at = "30s"
kind = "isolate"
target = "leader:fleet.fleet.vehicles/0"
for = "15s"

[expect]
lost = 0
duplicated = 0
out_of_order = 0
final_state = true
max_unavailability_s = 90
"#;

#[test]
fn a_pod_kill_and_a_partition_on_a_live_kind_cluster_lose_nothing() {
    assert!(cdc_chaos::config::is_root(), "the kind end-to-end test starts a Docker engine and privileged node containers: run it as root");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&repo).unwrap();
    let cfg = cdc_chaos_e2e::test_config("kind");
    let layout = cdc_chaos::platform::Layout::new(&cfg);
    // Deletes the cluster (and a Docker engine the harness started) when the test ends, however
    // it ends, unless the cluster existed before: a failure half-way through creating it would
    // otherwise leave its nodes' volumes filling the disk.
    struct Cleanup {
        cache: std::path::PathBuf,
        existed: bool,
    }
    impl Drop for Cleanup {
        fn drop(&mut self) {
            if !self.existed {
                if let Err(e) = kind::create::delete_cluster(&self.cache) {
                    eprintln!("deleting the kind cluster: {e}");
                }
            }
        }
    }
    let cleanup = Cleanup { cache: layout.cache.clone(), existed: kind::create::existing_cluster(&layout.cache).expect("kind get clusters").is_some() };
    let overlay = repo.join(kind::KIND_OVERLAY);
    kind::create::create_cluster(&layout, &repo, &overlay).expect("--create-cluster");

    let scenario = Scenario::parse(SCENARIO, "tests/kind.rs").unwrap();
    let opts = RunOptions {
        cfg: cfg.clone(),
        reports: cfg.home.join("reports"),
        deployment: Deployment::Kind(kind::stack::KindOptions { overlay: kind::KIND_OVERLAY.into(), ready_timeout: std::time::Duration::from_secs(900) }),
    };
    let (dir, result) = run(&scenario, &opts).unwrap_or_else(|e| panic!("run on kind: {e}"));
    eprintln!("{}", result.summary_text());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    let faults: Vec<Value> = std::fs::read_to_string(dir.join("faults.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let logs_exported = dir.join("logs/kind").is_dir();
    drop(cleanup);

    assert_eq!(v["verdict"], "pass", "{v}");
    for hop in ["raw", "changes", "warehouse", "lake"] {
        let h = &v["hops"][hop];
        assert!(h["acknowledged"].as_u64().unwrap() > 500, "{hop}: {h}");
        assert_eq!(h["delivered"], h["acknowledged"], "{hop}: {h}");
        for k in ["lost", "duplicated", "phantom", "out_of_order"] {
            assert_eq!(h[k], 0, "{hop}.{k}: {h}");
        }
    }
    let starts: Vec<&Value> = faults.iter().filter(|f| f["event"] == "start").collect();
    assert_eq!(starts.len(), 2, "{faults:?}");
    for s in &starts {
        let evidence = s["evidence"].as_array().unwrap();
        assert!(!evidence.is_empty() && evidence.iter().all(|p| p["held"] == true), "{s}");
    }
    let heals: Vec<&Value> = faults.iter().filter(|f| f["event"] == "heal").collect();
    assert_eq!(heals.len(), 2, "{faults:?}");
    assert!(heals.iter().flat_map(|h| h["evidence"].as_array().cloned().unwrap_or_default()).all(|p| p["held"] == true), "{heals:?}");
    assert!(logs_exported, "kind export logs into the run directory");
}
