//! The `cdc-chaos` command's user-visible behaviour on bad input: clear errors, documented exit
//! codes, nothing started.

use std::process::Command;

fn cdc_chaos(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-chaos"))
        .args(args)
        .env("CDC_CHAOS_HOME", home)
        .env("CDC_CHAOS_CACHE", home.join("cache"))
        .output()
        .expect("runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn temp_home(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cdcc-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn unknown_profile_is_a_setup_error_naming_the_choices() {
    let home = temp_home("profile");
    let (code, _, err) = cdc_chaos(&home, &["up", "--profile", "sturdy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"sturdy\"") && err.contains("durable, weak"), "{err}");
    assert!(!home.join("state.json").exists(), "nothing started");
}

#[test]
fn a_bad_profile_file_names_line_and_field() {
    let home = temp_home("badfile");
    std::fs::create_dir_all(&home).unwrap();
    let file = home.join("mine.toml");
    std::fs::write(&file, "name = \"mine\"\n[topics]\nreplication_factor = 3\npartitions = \"many\"\n[processing]\nguarantee = \"at_least_once\"\n").unwrap();
    let (code, _, err) = cdc_chaos(&home, &["up", "--profile", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mine.toml") && err.contains("line 4"), "{err}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn unknown_flags_are_rejected() {
    let home = temp_home("flags");
    let (code, _, err) = cdc_chaos(&home, &["up", "--profil", "durable"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--profil"), "{err}");
}

#[test]
fn status_without_a_stack_says_so() {
    let home = temp_home("status");
    let (code, out, _) = cdc_chaos(&home, &["status"]);
    assert_eq!(code, 3);
    assert!(out.contains("no stack is running"), "{out}");
    let (code, out, _) = cdc_chaos(&home, &["status", "--json"]);
    assert_eq!(code, 3);
    assert_eq!(out.trim(), "[]");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_bad_scenario_names_file_line_and_field_and_starts_nothing() {
    let home = temp_home("scenario");
    std::fs::create_dir_all(&home).unwrap();
    let file = home.join("mine.toml");
    std::fs::write(&file, "name = \"mine\"\nseed = 1\nduration = \"30s\"\n[load]\nrate = 0\n").unwrap();
    let reports = home.join("reports");
    let (code, _, err) = cdc_chaos(&home, &["run", file.to_str().unwrap(), "--reports", reports.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mine.toml") && err.contains("line 5") && err.contains("rate"), "{err}");
    assert!(!home.join("state.json").exists() && !reports.exists(), "nothing started");
    let (code, _, err) = cdc_chaos(&home, &["run", home.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&home).unwrap();
}

/// A small recorded run: one acknowledged insert per table, delivered once at every hop.
fn recorded_run(dir: &std::path::Path) {
    use cdc_chaos::history::{EventKey, EventOp, HistoryWriter, Kind, Line, Phase, RowOp, WriteId};
    use cdc_chaos::observation::{self, FinalState, Hop, Observation};
    use cdc_pipeline::decode::Table;
    use serde_json::json;
    std::fs::create_dir_all(dir).unwrap();
    let scenario = cdc_chaos::scenario::Scenario::parse("name = \"rec\"\nseed = 3\nduration = \"10s\"\n[load]\nrate = 1\n", "rec").unwrap();
    std::fs::write(dir.join("scenario.toml"), scenario.resolved()).unwrap();
    let t0 = 1_800_000_000_000_000i64;
    let rows = [(Table::Customers, 1, None, "41"), (Table::Flights, 2, Some(1), "42"), (Table::Vehicles, 3, Some(1), "0-1-7")];
    let mut h = HistoryWriter::create(&dir.join("history.jsonl")).unwrap();
    let mut obs = Vec::new();
    for (i, (table, pk, customer_id, tx)) in rows.iter().enumerate() {
        let t = t0 + i as i64 * 1_000_000;
        let row = RowOp { table: *table, pk: *pk, kind: Kind::Insert, customer_id: *customer_id, affected: None };
        let write = WriteId::new(4, i as u64);
        h.write(&Line::Invoke { index: i as u64, worker: "w".into(), phase: Phase::Load, intended_us: t, time_us: t, write_id: Some(write.0), rows: vec![row] }).unwrap();
        h.write(&Line::Ok { index: i as u64, time_us: t + 1000, tx: Some(tx.to_string()), affected: vec![true] }).unwrap();
        let key = EventKey { table: *table, pk: *pk, write, op: EventOp::Upsert };
        obs.push(Observation { key, partition: 0, offset: i as i64, ts_us: t + 500_000 });
    }
    h.flush().unwrap();
    for hop in Hop::ALL {
        observation::write(dir, hop, &obs).unwrap();
    }
    let customer = json!({"id": 1, "name": "Ana"});
    let flight = json!({"id": 2, "customer_id": 1});
    let vehicle = json!({"id": 3, "customer_id": 1});
    let mut doc = customer.clone();
    doc["flights"] = json!([flight.clone()]);
    doc["vehicles"] = json!([vehicle.clone()]);
    let obj = |v: &serde_json::Value| v.as_object().unwrap().clone();
    FinalState { customers: vec![obj(&customer)], flights: vec![obj(&flight)], vehicles: vec![obj(&vehicle)], lake: Some([(1, doc.clone())].into()), warehouse: [(1, doc)].into() }
        .write(dir)
        .unwrap();
    let meta = cdc_chaos::run_dir::RunMeta {
        run_id: "rec-1".into(),
        scenario: "rec".into(),
        seed: 3,
        profile: "durable".into(),
        platform: "local".into(),
        warmup_start_us: t0,
        load_start_us: t0,
        load_end_us: t0 + 3_000_000,
        quiesced: true,
        offered_rate: 1.0,
        ..Default::default()
    };
    meta.write(dir).unwrap();
}

#[test]
fn check_rechecks_a_recorded_run_and_fails_on_a_doubled_record() {
    let home = temp_home("check");
    let dir = home.join("rec-1");
    recorded_run(&dir);
    let (code, out, err) = cdc_chaos(&home, &["check", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS"), "{out}");
    let lake = dir.join("observed/lake.tsv");
    let text = std::fs::read_to_string(&lake).unwrap();
    let second = text.lines().nth(2).unwrap().to_string();
    std::fs::write(&lake, format!("{text}{second}\n")).unwrap();
    let (code, out, err) = cdc_chaos(&home, &["check", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["verdict"].as_str(), v["hops"]["lake"]["duplicated"].as_u64(), v["hops"]["warehouse"]["duplicated"].as_u64()), (Some("fail"), Some(1), Some(0)));
    let (code, _, err) = cdc_chaos(&home, &["check", home.join("nowhere").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nowhere"), "{err}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn partitions_without_namespaces_are_refused_before_anything_starts() {
    let home = temp_home("loopback");
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/partition-isolate-leader.toml");
    let reports = home.join("reports");
    let (code, _, err) = cdc_chaos(&home, &["--loopback", "run", scenario.to_str().unwrap(), "--reports", reports.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("isolate") && err.contains("network namespaces"), "{err}");
    assert!(!home.join("state.json").exists() && !reports.exists(), "nothing started");
}

#[test]
fn a_bad_sweep_plan_names_the_flag_and_starts_nothing() {
    let home = temp_home("sweep");
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let reports = home.join("reports");
    let s = scenario.to_str().unwrap();
    let r = reports.to_str().unwrap();
    for (args, expect) in [
        (vec!["--factor", "2", "--step", "10"], "not both"),
        (vec!["--factor", "0.5"], "--factor"),
        (vec!["--start", "100", "--max", "50"], "--max"),
        (vec!["--hop", "nowhere"], "--hop"),
        (vec!["--p99-ms=-1"], "--p99-ms"),
        (vec!["--duration", "1h", "--start", "1", "--step", "1", "--max", "500"], "at most 50"),
    ] {
        let mut all = vec!["sweep", s, "--reports", r];
        all.extend(args.iter().copied());
        let (code, _, err) = cdc_chaos(&home, &all);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let (code, _, err) = cdc_chaos(&home, &["sweep", s, "--reports", r, "--duration", "ten minutes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--duration"), "{err}");
    assert!(!home.join("state.json").exists() && !reports.exists(), "nothing started");
}

#[test]
fn replay_of_a_missing_run_names_its_scenario_file() {
    let home = temp_home("replay");
    let (code, _, err) = cdc_chaos(&home, &["replay", home.join("gone").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("gone/scenario.toml"), "{err}");
}

/// A JUnit document's test cases: (name, has a failure).
fn junit_cases(path: &std::path::Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    doc.descendants().filter(|n| n.has_tag_name("testcase")).map(|c| (c.attribute("name").unwrap().to_string(), c.children().any(|n| n.has_tag_name("failure")))).collect()
}

#[test]
fn check_renders_the_reports_and_report_renders_them_again() {
    let home = temp_home("report");
    let dir = home.join("rec-1");
    recorded_run(&dir);
    std::fs::write(dir.join("faults.jsonl"), "").unwrap();
    let (code, out, err) = cdc_chaos(&home, &["check", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("report: {}", dir.join("report.html").display())), "{out}");
    for f in ["report.html", "summary.md", "junit.xml"] {
        assert!(dir.join(f).is_file(), "check writes {f}");
    }
    let cases = junit_cases(&dir.join("junit.xml"));
    assert!(cases.iter().any(|c| c.0 == "lake: no duplicates") && cases.iter().all(|c| !c.1), "{cases:?}");

    // A doubled lake record: check fails the run, and the report and JUnit say where.
    let lake = dir.join("observed/lake.tsv");
    let text = std::fs::read_to_string(&lake).unwrap();
    std::fs::write(&lake, format!("{text}{}\n", text.lines().nth(2).unwrap())).unwrap();
    let (code, out, err) = cdc_chaos(&home, &["check", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    serde_json::from_str::<serde_json::Value>(&out).expect("--json prints JSON only");
    let failed: Vec<String> = junit_cases(&dir.join("junit.xml")).into_iter().filter(|c| c.1).map(|c| c.0).collect();
    assert_eq!(failed, vec!["lake: no duplicates"]);

    // report re-renders from the files alone.
    std::fs::remove_file(dir.join("report.html")).unwrap();
    let (code, out, err) = cdc_chaos(&home, &["report", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(r#"<div class="banner fail" id="verdict">"#) && html.contains(r#"id="latency-warehouse""#));
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("| lake | 3 | 3 | 0 | — | 1 | 0 | 0 | 0 |"), "{md}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn report_and_compare_name_a_missing_or_corrupt_result() {
    let home = temp_home("report-bad");
    let (code, _, err) = cdc_chaos(&home, &["report", home.join("nowhere").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nowhere: no such run directory"), "{err}");
    let dir = home.join("rec-1");
    recorded_run(&dir);
    let (code, _, err) = cdc_chaos(&home, &["report", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rec-1/result.json"), "never checked, no result: {err}");
    std::fs::write(dir.join("result.json"), "{\"schema\": 1").unwrap();
    let (code, _, err) = cdc_chaos(&home, &["report", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rec-1/result.json") && err.contains("EOF"), "{err}");
    let (code, _, err) = cdc_chaos(&home, &["compare", dir.to_str().unwrap(), home.join("other").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("result.json"), "{err}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn compare_prints_a_table_and_writes_a_page() {
    let home = temp_home("compare");
    let (a, b) = (home.join("rec-a"), home.join("rec-b"));
    for d in [&a, &b] {
        recorded_run(d);
    }
    let lake = b.join("observed/lake.tsv");
    let text = std::fs::read_to_string(&lake).unwrap();
    std::fs::write(&lake, format!("{text}{}\n", text.lines().nth(2).unwrap())).unwrap();
    for d in [&a, &b] {
        cdc_chaos(&home, &["check", d.to_str().unwrap()]);
    }
    let (code, out, err) = cdc_chaos(&home, &["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let verdict = out.lines().find(|l| l.starts_with("verdict")).unwrap_or_else(|| panic!("{out}"));
    assert!(verdict.contains("PASS") && verdict.contains("*FAIL"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("lake: delivered") && l.ends_with("*3 / 0 / 1 / 0 / 0")), "{out}");
    let page = b.join("compare-rec-1.html");
    assert!(out.contains(&format!("comparison: {}", page.display())) && page.is_file(), "{out}");
    let out_file = home.join("cmp.html");
    let (code, out, err) = cdc_chaos(&home, &["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--out", out_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read_to_string(&out_file).unwrap().contains(r#"id="compare-percentiles""#));
    std::fs::remove_dir_all(&home).unwrap();
}

/// `cdc-chaos` with a kubeconfig whose server is a closed port of this host.
fn cdc_chaos_kind(home: &std::path::Path, args: &[&str]) -> (i32, String) {
    std::fs::create_dir_all(home).unwrap();
    let kubeconfig = home.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: \"https://127.0.0.1:9\"}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n  context: {cluster: gone, user: u}\ncurrent-context: c\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-chaos"))
        .args(args)
        .env("CDC_CHAOS_HOME", home)
        .env("CDC_CHAOS_CACHE", home.join("cache"))
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn kind_up_and_down_without_a_cluster_say_how_to_create_one() {
    let home = temp_home("kind-unreachable");
    for command in ["up", "down"] {
        let (code, err) = cdc_chaos_kind(&home, &["--platform", "kind", command]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("no Kubernetes API reachable: https://127.0.0.1:9/"), "{err}");
        assert!(err.contains("kind create cluster --config manifests/kind-cluster.yaml"), "{err}");
    }
    assert!(!home.join("cache").exists(), "nothing installed before a cluster answers");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn kind_run_and_status_without_a_cluster_say_how_to_create_one() {
    let home = temp_home("kind-run");
    let smoke = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/smoke.toml");
    for args in [&["--platform", "kind", "run", smoke][..], &["--platform", "kind", "status"], &["--platform", "kind", "sweep", smoke]] {
        let (code, err) = cdc_chaos_kind(&home, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("no Kubernetes API reachable: https://127.0.0.1:9/"), "{args:?}: {err}");
        assert!(err.contains("kind create cluster --config manifests/kind-cluster.yaml"), "{err}");
    }
    assert!(!std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports").exists(), "no run directory before the cluster answers");
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn create_and_delete_cluster_are_refused_where_they_mean_nothing() {
    let home = temp_home("kind-create");
    let (code, err) = cdc_chaos_kind(&home, &["--create-cluster", "status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--create-cluster is for --platform kind"), "{err}");
    for args in [&["--delete-cluster", "down"][..], &["--platform", "kind", "--delete-cluster", "status"]] {
        let (code, err) = cdc_chaos_kind(&home, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("--delete-cluster is for `--platform kind down`"), "{args:?}: {err}");
    }
    assert!(!home.join("cache").exists(), "nothing installed");
    std::fs::remove_dir_all(&home).unwrap();
}
