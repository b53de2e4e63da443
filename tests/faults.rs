//! End-to-end tests of the nemesis: scenarios from `scenarios/` against the real local stack.
//! Under `durable` a leader kill, an isolated leader and Kafka Connect cut from the cluster leave
//! no event lost, duplicated, phantom or out of order and the final state matching; the weak
//! profile's negative control must be caught at the hop and in the class it shows, and its durable
//! twin must pass.
//! Every fault is healed: no fault rule, paused process or journal entry survives a run. Every
//! fault shows that it took effect (its evidence in `faults.jsonl` held: the process gone, the
//! probe across the cut blocked, then passing after the heal), and the load was not starved: at
//! least half of what the scenario offered was acknowledged.

use std::path::{Path, PathBuf};

use cdc_chaos::platform::stack::Health;
use cdc_chaos::run::{run, RunOptions};
use cdc_chaos::scenario::Scenario;
use cdc_chaos_e2e::*;
use serde_json::Value;

fn scenario(name: &str) -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"))).unwrap()
}

/// Runs a scenario on a fresh test stack; returns result.json, the fault timeline and the stack.
fn run_scenario(name: &str) -> (Value, Vec<Value>, PathBuf, (std::sync::MutexGuard<'static, ()>, TestStack)) {
    let (host, stack) = fresh_stack(&name.replace('/', "-"));
    let reports = stack.layout.home.join("reports");
    let (dir, result) = run(&scenario(name), &RunOptions::local(stack.cfg.clone(), reports)).expect("run");
    eprintln!("{}", result.summary_text());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    let faults: Vec<Value> = std::fs::read_to_string(dir.join("faults.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    eprintln!("faults: {}", faults.iter().map(Value::to_string).collect::<Vec<_>>().join("\n"));
    (v, faults, dir, (host, stack))
}

/// Every fault healed and every component healthy again.
fn assert_healed(stack: &TestStack, faults: &[Value]) {
    assert_no_fault_left(stack, faults);
    let status = stack.status().unwrap();
    assert!(status.iter().all(|s| s.health == Health::Healthy), "{status:?}");
}

/// Every fault started was healed, and nothing of one is left: no journal entry, no fault rule.
fn assert_no_fault_left(stack: &TestStack, faults: &[Value]) {
    let starts = faults.iter().filter(|f| f["event"] == "start").count();
    let heals = faults.iter().filter(|f| f["event"] == "heal").count();
    assert!(starts >= 1, "a fault started: {faults:?}");
    assert_eq!(starts, heals, "every fault healed: {faults:?}");
    assert!(faults.iter().all(|f| f["event"] != "error"), "{faults:?}");
    let journal = std::fs::read_to_string(stack.layout.home.join("faults-active.json")).unwrap_or_default();
    assert!(journal.trim() == "[]" || journal.is_empty(), "journal empty: {journal}");
    let rules = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("for ns in $(ip netns list | awk '{{print $1}}' | grep ^{}); do ip netns exec $ns iptables-save; done", stack.cfg.net_prefix))
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains(":fault"), "no fault rule left: {rules}");
}

/// Every fault proved itself: evidence at its start and heal, all of it held, and claims of the
/// kinds `expected` (fragments such as "gone", "blocked") among it.
fn assert_proven(v: &Value, faults: &[Value], expected: &[&str]) {
    assert_eq!(v["faults_unproven"], Value::Array(vec![]), "{}", v["faults_unproven"]);
    let mut claims = Vec::new();
    for f in faults.iter().filter(|f| f["event"] != "error") {
        let evidence = f["evidence"].as_array().unwrap_or_else(|| panic!("no evidence: {f}"));
        assert!(!evidence.is_empty(), "{} of fault {} carries evidence: {f}", f["event"], f["id"]);
        for p in evidence {
            assert_eq!(p["held"], true, "{p}");
            claims.push(p["claim"].as_str().unwrap().to_string());
        }
    }
    eprintln!("evidence:\n  {}", claims.join("\n  "));
    for e in expected {
        assert!(claims.iter().any(|c| c.contains(e)), "a claim containing {e:?} among {claims:?}");
    }
}

/// The load reached the databases: at least half the events the scenario offered were
/// acknowledged (a fault that starved the load would otherwise pass with nothing to check).
fn assert_load_floor(name: &str, v: &Value) {
    let s = scenario(name);
    let offered = s.load.rate.0 * s.duration.0.as_secs_f64();
    let acknowledged = v["load_events"].as_u64().unwrap() as f64;
    assert!(acknowledged >= offered / 2.0, "{acknowledged} events acknowledged, fewer than half of the {offered} offered");
}

fn assert_exactly_once(v: &Value) {
    for hop in ["raw", "changes", "warehouse", "lake"] {
        let h = &v["hops"][hop];
        for k in ["lost", "duplicated", "phantom", "out_of_order"] {
            assert_eq!(h[k], 0, "{hop}.{k}: {h}");
        }
    }
    assert_eq!(v["final_state"]["match"], true, "{}", v["final_state"]);
    assert_eq!(v["verdict"], "pass", "{v}");
}

#[test]
fn leader_kill_loses_nothing() {
    let (v, faults, _dir, (_host, stack)) = run_scenario("leader-kill");
    assert_exactly_once(&v);
    assert_load_floor("leader-kill", &v);
    assert_proven(&v, &faults, &[") gone", "resolved", "down for", "running again"]);
    let start = faults.iter().find(|f| f["event"] == "start").unwrap();
    assert!(start["detail"].as_str().unwrap().contains("leader of crm.public.customers/0 is node"), "{start}");
    assert_healed(&stack, &faults);
}

/// Kafka Connect alone cut from the cluster (its own listener): the worker loses its group
/// coordinator and stops its tasks; they must be assigned again once the cut heals.
#[test]
fn connect_cut_from_the_cluster_loses_nothing() {
    let (v, faults, _dir, (_host, stack)) = run_scenario("partition-connect-cut");
    assert_exactly_once(&v);
    assert_load_floor("partition-connect-cut", &v);
    assert_proven(&v, &faults, &["blocked (no answer", "still blocked after", "passes again"]);
    let start = faults.iter().find(|f| f["event"] == "start").unwrap();
    assert!(start["detail"].as_str().unwrap().contains("kafka connect cut from every node"), "{start}");
    assert_healed(&stack, &faults);
}

#[test]
fn isolated_leader_loses_nothing() {
    let (v, faults, _dir, (_host, stack)) = run_scenario("partition-isolate-leader");
    assert_exactly_once(&v);
    assert_load_floor("partition-isolate-leader", &v);
    assert_proven(&v, &faults, &["blocked (no answer", "passes again", "resolved"]);
    let start = faults.iter().find(|f| f["event"] == "start").unwrap();
    assert!(start["detail"].as_str().unwrap().contains("cut from"), "{start}");
    assert_healed(&stack, &faults);
}

/// The weak profile's negative control fails where it is meant to: Kafka Connect without
/// exactly-once source support re-emits what it had written before each SIGKILL, so the raw hop
/// holds duplicates. Its durable twin, the same load and faults, passes
/// ([`durable_twin_of_the_negative_control_passes`]).
#[test]
fn weak_profile_negative_control_is_caught() {
    let (v, faults, _dir, (_host, stack)) = run_scenario("weak-negative-control");
    let raw = &v["hops"]["raw"];
    eprintln!("weak: raw {raw}");
    assert_eq!(v["verdict"], "fail", "{v}");
    assert_load_floor("weak-negative-control", &v);
    assert_proven(&v, &faults, &[") gone"]);
    assert!(raw["duplicated"].as_u64().unwrap() > 0, "the negative control must show duplicates at the raw hop: {raw}");
    // At-least-once repeats, it never skips: when the weak profile's auto-committing consumer
    // settings reached Debezium's schema-history consumer, the second restart failed the MariaDB
    // task and every later fleet change was lost (docs/findings/).
    assert_eq!(raw["lost"], 0, "{raw}");
    assert_eq!((&v["as_expected"], &v["violated"][0]), (&Value::Bool(true), &Value::from("duplicated")), "{v}");
    let notes = v["notes"].as_array().unwrap();
    assert!(!notes.iter().any(|n| n.as_str().unwrap().contains("the last source offset Kafka Connect committed")), "both connectors caught up: {notes:?}");
    assert!(
        v["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().starts_with("raw: ") && r.as_str().unwrap().contains("duplicated")),
        "a reason names the raw hop's duplicates: {}",
        v["reasons"]
    );
    assert_healed(&stack, &faults);
}

#[test]
fn durable_twin_of_the_negative_control_passes() {
    let (v, faults, _dir, (_host, stack)) = run_scenario("weak-negative-control-durable");
    assert_exactly_once(&v);
    assert_load_floor("weak-negative-control-durable", &v);
    assert_proven(&v, &faults, &[") gone", "down for"]);
    assert_healed(&stack, &faults);
}

/// The finding of `docs/findings/mariadb-schema-history-auto-commit.md`: with its schema-history
/// consumer auto-committing, the MariaDB connector cannot recover its schema history after the
/// second worker restart and captures nothing from then on — under the durable profile. The
/// PostgreSQL connector, which keeps no schema history, loses nothing.
#[test]
fn mariadb_schema_history_auto_commit_loses_fleet_changes() {
    let (v, faults, _dir, (_host, stack)) = run_scenario("findings/mariadb-schema-history/repro");
    let raw = &v["hops"]["raw"];
    assert_eq!((&v["verdict"], &v["as_expected"]), (&Value::from("fail"), &Value::Bool(true)), "{v}");
    assert_proven(&v, &faults, &[") gone"]);
    assert!(raw["lost"].as_u64().unwrap() > 0, "{raw}");
    let examples = raw["lost_examples"].as_array().unwrap();
    assert!(examples.iter().all(|x| x["event"].as_str().unwrap().starts_with("fleet/vehicles:")), "only MariaDB's changes are lost: {raw}");
    assert!(examples.iter().all(|x| x["last_seen"] == "source"), "{raw}");
    assert_eq!(raw["duplicated"], 0, "{raw}");
    // The diagnosis: Connect's committed offset for the MariaDB connector stops at the second
    // kill, the PostgreSQL connector's does not.
    let notes: Vec<&str> = v["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(notes.iter().any(|n| n.starts_with("fleet-source: the last source offset Kafka Connect committed is GTID")), "{notes:?}");
    assert!(!notes.iter().any(|n| n.starts_with("crm-source:")), "{notes:?}");
    // Every fault healed. The finding itself may leave the MariaDB connector's task failed (its
    // schema recovery gives up after 50 s, before or after the run ends): Connect is then
    // degraded for that connector alone, and every other component is healthy.
    assert_no_fault_left(&stack, &faults);
    let status = stack.status().unwrap();
    for s in &status {
        if s.name == "connect" && s.health == Health::Degraded {
            let (crm, fleet) = s.detail.split_once("fleet-source:").unwrap_or_else(|| panic!("{s:?}"));
            assert!(fleet.contains("FAILED"), "the MariaDB connector failed: {s:?}");
            assert!(crm.contains("crm-source: RUNNING tasks [\"RUNNING\"]"), "the PostgreSQL connector runs: {s:?}");
        } else {
            assert_eq!(s.health, Health::Healthy, "{s:?}");
        }
    }
}
