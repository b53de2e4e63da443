//! Helpers of the end-to-end tests: a stack configuration that does not collide with a user's
//! stack (own home, ports, namespace prefix and subnet), SQL through the real clients, and a
//! read_committed reader of raw CDC topics.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cdc_chaos::platform::local::LocalStack;
use cdc_chaos::platform::{mariadb, postgres};
use cdc_chaos::StackConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

/// End-to-end tests share one host: they take turns.
pub static STACK: Mutex<()> = Mutex::new(());

fn test_root() -> std::path::PathBuf {
    std::env::temp_dir().join("cdc-chaos-e2e")
}

/// A stack configuration for test `name`: home under the temp dir, ports and names of its own.
pub fn test_config(name: &str) -> StackConfig {
    let mut cfg = StackConfig::default()
        .home(test_root().join(name))
        .postgres_port(15432)
        .mariadb_port(13306)
        .connect_port(18083)
        .ready_timeout_secs(240);
    cfg.net_prefix = "cdce".into();
    cfg.subnet = "10.232.0".into();
    cfg.kafka_port = 29092;
    cfg.warehouse_port = 15433;
    cfg.join_metrics_port = 19101;
    cfg.sink_metrics_port = 19102;
    cfg.lake_sink_metrics_port = 19103;
    cfg.lake_s3_port = 17333;
    cfg.lake_port_base = 12330;
    cfg.controller_port = 29093;
    cfg
}

/// A test's stack, brought down when the test ends, passed or failed (data purged if it passed).
pub struct TestStack(pub LocalStack);

impl std::ops::Deref for TestStack {
    type Target = LocalStack;
    fn deref(&self) -> &LocalStack {
        &self.0
    }
}

impl std::ops::DerefMut for TestStack {
    fn deref_mut(&mut self) -> &mut LocalStack {
        &mut self.0
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // A failed test keeps its data and logs for inspection (the next run purges them).
        let purge = !std::thread::panicking();
        if !purge {
            eprintln!("test failed: logs kept in {}", self.0.layout.home.display());
        }
        if let Err(e) = self.0.down(purge) {
            eprintln!("cleaning up {}: {e}", self.0.layout.home.display());
        }
    }
}

/// Takes the host for one test and clears whatever a previous, aborted run of any test left.
pub fn fresh_stack(name: &str) -> (std::sync::MutexGuard<'static, ()>, TestStack) {
    let guard = STACK.lock().unwrap_or_else(|p| p.into_inner());
    if let Ok(entries) = std::fs::read_dir(test_root()) {
        for e in entries.flatten() {
            if let Some(other) = e.file_name().to_str() {
                let _ = LocalStack::new(test_config(other)).down(true);
            }
        }
    }
    (guard, TestStack(LocalStack::new(test_config(name))))
}

/// Runs SQL in `crm` as the superuser.
pub fn crm(stack: &LocalStack, sql: &str) {
    let mut cmd = postgres::psql(stack.cfg.postgres_port, "crm");
    cmd.args(["-c", sql]);
    check(cmd);
}

/// Runs SQL in `fleet` as root.
pub fn fleet(stack: &LocalStack, sql: &str) {
    let mut cmd = mariadb::client(&stack.layout);
    cmd.args(["fleet", "-e", sql]);
    check(cmd);
}

fn check(mut cmd: Command) {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// One Debezium change event read back from Kafka: operation and row id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub op: String,
    pub id: i64,
}

/// Reads `topic` with isolation.level=read_committed until `want` holds for the Debezium changes
/// seen, or `timeout` passes; then reads the topic again from the beginning to the end of every
/// partition and returns every change it holds (tombstones skipped), so that a change beyond
/// what `want` waited for — a duplicate — is in the result.
pub fn read_changes(bootstrap: &str, topic: &str, timeout: Duration, want: impl Fn(&[Change]) -> bool) -> Vec<Change> {
    let parse = |payload: &[u8]| {
        let v: Value = serde_json::from_slice(payload).expect("Debezium JSON");
        let row = if v["op"] == "d" { &v["before"] } else { &v["after"] };
        Change { op: v["op"].as_str().unwrap_or("?").to_string(), id: row["id"].as_i64().unwrap_or(-1) }
    };
    let mut seen = Vec::new();
    read_topic(bootstrap, topic, timeout, |payload| {
        if let Some(p) = payload {
            seen.push(parse(p));
        }
        want(&seen)
    });
    read_to_end(bootstrap, topic).iter().flatten().map(|p| parse(p)).collect()
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cdc-chaos-e2e")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer")
}

/// Calls `visit` with every value of `topic` (all partitions, from the beginning,
/// read_committed; tombstones skipped), and with `None` when a poll found nothing, until it
/// returns true or `timeout` passes.
fn read_topic(bootstrap: &str, topic: &str, timeout: Duration, mut visit: impl FnMut(Option<&[u8]>) -> bool) {
    let consumer = consumer(bootstrap);
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(20)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let done = match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => m.payload().is_some_and(|p| visit(Some(p))),
            _ => visit(None),
        };
        if done {
            return;
        }
    }
}

/// Every record value of `topic` (None for tombstones), all partitions from the beginning to
/// their end as of the call, read_committed. Fails the test if the end is not reached in 60 s.
pub fn read_to_end(bootstrap: &str, topic: &str) -> Vec<Option<Vec<u8>>> {
    let consumer = consumer(bootstrap);
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(20)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in md.topics()[0].partitions() {
        let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(20)).expect("watermarks");
        if high > 0 {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        assert!(Instant::now() < deadline, "{topic}: end not reached in 60 s; partitions left: {ends:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.payload().map(<[u8]>::to_vec)),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                for e in consumer.position().expect("position").elements() {
                    if let (Offset::Offset(o), Some(end)) = (e.offset(), ends.get(&e.partition())) {
                        if o >= *end {
                            ends.remove(&e.partition());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Resident memory per component, for the test log.
pub fn rss_report(stack: &LocalStack) -> BTreeMap<String, u64> {
    stack.status().unwrap().into_iter().map(|s| (s.name, s.rss_kib.unwrap_or(0) / 1024)).collect()
}

/// Rows of a query through `psql -At`, one string per row.
pub fn psql_rows(port: u16, db: &str, sql: &str) -> Vec<String> {
    let mut cmd = postgres::psql(port, db);
    cmd.args(["-A", "-t", "-c", sql]);
    let out = cmd.output().expect("psql runs");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

/// Rows of a query through the `mariadb` client (batch mode, no column names).
pub fn mariadb_rows(stack: &LocalStack, sql: &str) -> Vec<String> {
    let mut cmd = mariadb::client(&stack.layout);
    cmd.args(["fleet", "-N", "-B", "-r", "-e", sql]);
    let out = cmd.output().expect("mariadb runs");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

/// Runs SQL statements in `crm`, each in its own transaction (a psql script, not one `-c`).
pub fn crm_script(stack: &LocalStack, statements: &[String]) {
    let path = stack.layout.home.join(format!("script-{}.sql", std::process::id()));
    std::fs::write(&path, statements.join(";\n") + ";\n").unwrap();
    let mut cmd = postgres::psql(stack.cfg.postgres_port, "crm");
    cmd.arg("-f").arg(&path);
    check(cmd);
}

/// Runs SQL statements in `fleet`, each autocommitted.
pub fn fleet_script(stack: &LocalStack, statements: &[String]) {
    fleet(stack, &(statements.join(";\n") + ";"));
}
