//! End-to-end tests of the local platform against the real stack: PostgreSQL, MariaDB, three
//! KRaft Kafka nodes in network namespaces, Kafka Connect with the Debezium connectors.

use std::time::{Duration, Instant};

use cdc_chaos::platform::stack::Health;
use cdc_chaos::platform::topics;
use cdc_chaos::{audit, Profile};
use cdc_chaos_e2e::*;

#[test]
fn up_captures_changes_audits_and_down_leaves_nothing() {
    let (_host, stack) = fresh_stack("lifecycle");
    let profile = Profile::load("durable").unwrap();

    let t = Instant::now();
    let status = stack.up(&profile).expect("up");
    let cold = t.elapsed();
    assert_eq!(status.len(), 11, "{status:?}");
    for s in &status {
        assert_eq!(s.health, Health::Healthy, "{s:?}");
    }
    eprintln!("up: {:.1}s, RSS MiB: {:?}", cold.as_secs_f64(), rss_report(&stack));

    crm(&stack, "INSERT INTO customers (id, name, email) VALUES (1, 'Ada', 'ada@example.org')");
    crm(&stack, "UPDATE customers SET email = 'ada@lovelace.org' WHERE id = 1");
    crm(&stack, "DELETE FROM customers WHERE id = 1");
    crm(&stack, "INSERT INTO flights (id, customer_id, airport, airline, iata_code) VALUES (10, 1, 'LIS', 'TAP', 'TP')");
    crm(&stack, "UPDATE flights SET airport = 'OPO' WHERE id = 10");
    crm(&stack, "DELETE FROM flights WHERE id = 10");
    fleet(&stack, "INSERT INTO vehicles (id, customer_id, model, manufacturer) VALUES (20, 1, 'Model T', 'Ford')");
    fleet(&stack, "UPDATE vehicles SET model = 'Model A' WHERE id = 20");
    fleet(&stack, "DELETE FROM vehicles WHERE id = 20");

    let bootstrap = stack.topo.bootstrap();
    for (topic, id) in [(topics::CUSTOMERS, 1), (topics::FLIGHTS, 10), (topics::VEHICLES, 20)] {
        let want = vec![Change { op: "c".into(), id }, Change { op: "u".into(), id }, Change { op: "d".into(), id }];
        let seen = read_changes(&bootstrap, topic, Duration::from_secs(120), |seen| seen.len() >= 3);
        assert_eq!(seen, want, "changes read back from {topic} with read_committed, to its end: each once");
    }

    let rows = audit::audit(&stack.layout, &stack.topo, &profile).expect("audit");
    let bad: Vec<_> = rows.iter().filter(|r| !r.ok).collect();
    assert!(bad.is_empty(), "audit differences: {bad:#?}");
    for t in topics::plan(&profile) {
        let find = |setting: &str| rows.iter().find(|r| r.scope == format!("topic {}", t.name) && r.setting == setting).cloned();
        assert_eq!(find("replication.factor").and_then(|r| r.actual).as_deref(), Some("3"), "{}", t.name);
        assert_eq!(find("min.insync.replicas").and_then(|r| r.actual).as_deref(), Some("2"), "{}", t.name);
    }

    stack.down(false).expect("down");
    assert_eq!(stack.leftovers(), Vec::<String>::new());
    assert!(stack.status().unwrap().is_empty());

    // Up after down: the data is kept, and the stack comes back.
    let t = Instant::now();
    let status = stack.up(&profile).expect("second up");
    eprintln!("warm up: {:.1}s", t.elapsed().as_secs_f64());
    assert!(status.iter().all(|s| s.health == Health::Healthy), "{status:?}");
    let seen = read_changes(&bootstrap, topics::CUSTOMERS, Duration::from_secs(30), |seen| seen.len() >= 3);
    assert_eq!(seen.len(), 3, "data kept across down/up: {seen:?}");

    stack.down(true).expect("down --purge");
    assert_eq!(stack.leftovers(), Vec::<String>::new());
}

#[test]
fn a_component_that_fails_to_start_is_named_and_everything_is_stopped() {
    let (_host, stack) = fresh_stack("broken-broker");
    // A broker setting Kafka rejects at start-up: the nodes exit, after the databases started.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/durable.toml")).unwrap();
    let text = text.replace("\"log.flush.interval.ms\" = 100", "\"log.flush.interval.ms\" = \"soon\"");
    let profile = Profile::parse(&text, "broken.toml").unwrap();

    let err = stack.up(&profile).expect_err("a broker with an invalid setting cannot start").to_string();
    assert!(err.contains("kafka-1"), "error names the node: {err}");
    assert!(err.contains("log.flush.interval.ms"), "error shows the log tail with the cause: {err}");
    assert_eq!(stack.leftovers(), Vec::<String>::new(), "nothing left running after a failed up");
    assert!(stack.status().unwrap().is_empty());
}

#[test]
fn a_broker_that_dies_during_start_up_is_named_with_its_log() {
    let (_host, mut stack) = fresh_stack("dying-broker");
    // Storage formats (the tool has its own heap), then every broker JVM refuses to start.
    stack.cfg.kafka_heap = "1k".into();
    let err = stack.up(&Profile::load("durable").unwrap()).expect_err("a JVM with a 1k heap cannot start").to_string();
    assert!(err.contains("kafka-1: exited during start-up"), "{err}");
    assert!(err.contains("last lines of") && err.contains("heap"), "error carries the log tail: {err}");
    assert_eq!(stack.leftovers(), Vec::<String>::new(), "nothing left running after a failed up");
}

#[test]
fn a_busy_port_is_named_before_anything_starts() {
    let (_host, stack) = fresh_stack("busy-port");
    let listener = std::net::TcpListener::bind(("127.0.0.1", stack.cfg.mariadb_port)).unwrap();
    let err = stack.up(&Profile::load("durable").unwrap()).expect_err("port taken").to_string();
    assert!(err.contains("mariadb") && err.contains(&stack.cfg.mariadb_port.to_string()), "{err}");
    drop(listener);
    assert_eq!(stack.leftovers(), Vec::<String>::new());
}
