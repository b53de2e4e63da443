//! Kafka Connect in distributed mode with the Debezium PostgreSQL and MariaDB connectors on its
//! plugin path: rendering the worker config from the profile, starting the JVM, registering the
//! connectors through the REST API and waiting until they and their tasks run — also after the
//! worker was killed and started again.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::StackConfig;
use crate::error::{Error, Result};
use crate::platform::process;
use crate::platform::topics;
use crate::platform::{jvm, mariadb, postgres, write_file, Client, Layout, Topology};
use crate::profile::Profile;
use crate::properties::{self, Properties};

pub const NAME: &str = "connect";
const CONNECT_MAIN: &str = "org.apache.kafka.connect.cli.ConnectDistributed";
/// Connector names.
pub const CRM_CONNECTOR: &str = "crm-source";
pub const FLEET_CONNECTOR: &str = "fleet-source";

/// The worker's configuration: identity, internal topics, converters, then the profile's
/// producer settings (prefixed `producer.`), consumer settings (`consumer.`) and `[connect.worker]`.
pub fn worker_properties(profile: &Profile, topo: &Topology, plugin_path: &str) -> Properties {
    let mut p = Properties::new();
    let rf = profile.replication_factor.to_string();
    for (k, v) in [
        ("bootstrap.servers", topo.bootstrap_for(Client::Connect)),
        ("group.id", "cdc-chaos-connect".into()),
        ("key.converter", "org.apache.kafka.connect.json.JsonConverter".into()),
        ("value.converter", "org.apache.kafka.connect.json.JsonConverter".into()),
        ("key.converter.schemas.enable", "false".into()),
        ("value.converter.schemas.enable", "false".into()),
        ("config.storage.topic", topics::CONNECT_CONFIGS.into()),
        ("offset.storage.topic", topics::CONNECT_OFFSETS.into()),
        ("status.storage.topic", topics::CONNECT_STATUS.into()),
        ("config.storage.replication.factor", rf.clone()),
        ("offset.storage.replication.factor", rf.clone()),
        ("status.storage.replication.factor", rf),
        ("offset.flush.interval.ms", "1000".into()),
        ("listeners", format!("http://{}", topo.connect)),
        ("rest.advertised.host.name", "127.0.0.1".into()),
        ("rest.advertised.port", topo.connect_port().to_string()),
        ("plugin.path", plugin_path.into()),
        ("plugin.discovery", "service_load".into()),
        // Topics come from the harness only.
        ("topic.creation.enable", "false".into()),
        // One worker: a worker that lost its group coordinator stops its tasks (KAFKA-9184) and
        // rejoins as a new member; with the default 5-minute delay the leader (itself) holds
        // the "lost" connectors back that long before assigning them again. 0 reassigns them at
        // once (KAFKA-15693). Measured: isolating the coordinator's node for 20 s left both
        // connectors unassigned for the rest of the run.
        ("scheduled.rebalance.max.delay.ms", "0".into()),
    ] {
        p.insert(k.into(), v);
    }
    for (k, v) in &profile.producer {
        p.insert(format!("producer.{k}"), v.clone());
    }
    for (k, v) in &profile.consumer {
        p.insert(format!("consumer.{k}"), v.clone());
    }
    for (k, v) in &profile.connect_worker {
        p.insert(k.clone(), v.clone());
    }
    p
}

/// Debezium PostgreSQL connector for `crm` (pgoutput decoder, publication made by the schema).
pub fn crm_connector(profile: &Profile, topo: &Topology) -> Map<String, Value> {
    let mut c = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": topo.postgres_host(),
        "database.port": topo.postgres_port().to_string(),
        "database.user": postgres::USER,
        "database.password": postgres::PASSWORD,
        "database.dbname": "crm",
        "topic.prefix": "crm",
        "table.include.list": "public.customers,public.flights",
        "slot.name": "cdc_chaos_crm",
        "publication.name": "cdc_chaos_crm",
        "publication.autocreate.mode": "disabled",
        "snapshot.mode": "initial",
        "tombstones.on.delete": "true",
        "decimal.handling.mode": "string",
        "time.precision.mode": "connect",
    });
    merge_profile(&mut c, profile);
    c.as_object().cloned().expect("object")
}

/// Consumer settings the profile's `[consumer]` does not pass to Debezium's schema-history
/// consumer. That consumer re-reads its topic from the first record at every task start
/// (`KafkaSchemaHistory` subscribes with a group and relies on `enable.auto.commit=false` and
/// `auto.offset.reset=earliest`, its own defaults); a committed group offset makes the next
/// recovery begin at the end, find no history, and fail the task ("The database schema history
/// couldn't be recovered") — see `docs/findings/mariadb-schema-history-auto-commit.md`. A
/// connector setting (`[connect.connector]`) still sets them, as a user's configuration would.
pub const SCHEMA_HISTORY_CONSUMER_OWN: &[&str] = &["enable.auto.commit", "auto.commit.interval.ms", "auto.offset.reset", "group.id"];

/// Debezium MariaDB connector for `fleet` (schema history in its own topic).
pub fn fleet_connector(profile: &Profile, topo: &Topology) -> Map<String, Value> {
    let mut c = json!({
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "tasks.max": "1",
        "database.hostname": topo.mariadb_host(),
        "database.port": topo.mariadb_port().to_string(),
        "database.user": mariadb::USER,
        "database.password": mariadb::PASSWORD,
        "database.server.id": "5401",
        // The binlog client reconnects after a MariaDB restart only on its keep-alive timer
        // (default one minute; measured: streaming resumed 2 min after a restart).
        "connect.keep.alive.interval.ms": "2000",
        "database.ssl.mode": "disable",
        "topic.prefix": "fleet",
        "database.include.list": "fleet",
        "table.include.list": "fleet.vehicles",
        "include.schema.changes": "false",
        "snapshot.mode": "initial",
        "tombstones.on.delete": "true",
        "decimal.handling.mode": "string",
        "time.precision.mode": "connect",
        "schema.history.internal.kafka.bootstrap.servers": topo.bootstrap_for(Client::Connect),
        "schema.history.internal.kafka.topic": topics::SCHEMA_HISTORY,
    });
    let obj = c.as_object_mut().expect("object");
    for (k, v) in &profile.producer {
        obj.insert(format!("schema.history.internal.producer.{k}"), Value::String(v.clone()));
    }
    for (k, v) in profile.consumer.iter().filter(|(k, _)| !SCHEMA_HISTORY_CONSUMER_OWN.contains(&k.as_str())) {
        obj.insert(format!("schema.history.internal.consumer.{k}"), Value::String(v.clone()));
    }
    merge_profile(&mut c, profile);
    c.as_object().cloned().expect("object")
}

fn merge_profile(c: &mut Value, profile: &Profile) {
    let obj = c.as_object_mut().expect("object");
    for (k, v) in &profile.connector {
        obj.insert(k.clone(), Value::String(v.clone()));
    }
}

/// Renders the worker config and starts the worker. Returns its pid.
pub fn start(cfg: &StackConfig, layout: &Layout, profile: &Profile, topo: &Topology) -> Result<u32> {
    render(layout, profile, topo)?;
    spawn(cfg, layout)
}

/// Renders the worker config (and, for reference, each connector's config) from the profile.
pub fn render(layout: &Layout, profile: &Profile, topo: &Topology) -> Result<()> {
    let dir = layout.dir(NAME);
    let props = worker_properties(profile, topo, &layout.plugins().display().to_string());
    let config = dir.join("worker.properties");
    write_file(&config, &properties::render(&format!("Kafka Connect worker — rendered by cdc-chaos from profile {}", profile.name), &props))?;
    for (name, c) in [(CRM_CONNECTOR, crm_connector(profile, topo)), (FLEET_CONNECTOR, fleet_connector(profile, topo))] {
        write_file(&dir.join(format!("{name}.json")), &serde_json::to_string_pretty(&c).expect("json"))?;
    }
    Ok(())
}

/// Starts the worker on its rendered `worker.properties`. Returns its pid.
pub fn spawn(cfg: &StackConfig, layout: &Layout) -> Result<u32> {
    let config = layout.dir(NAME).join("worker.properties");
    if !config.is_file() {
        return Err(Error::component(NAME, format!("{} is missing: the worker was never started by `up`", config.display())));
    }
    let mut cmd = jvm::server(layout, None, &cfg.connect_heap, &layout.kafka_classpath(), &layout.log(NAME), CONNECT_MAIN);
    cmd.arg(&config);
    process::spawn_detached(NAME, cmd, &layout.log(NAME))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(base: &str, path: &str) -> Result<(u16, Value)> {
    let url = format!("http://{base}{path}");
    let mut resp = agent().get(&url).call().map_err(|e| Error::component(NAME, format!("GET {url}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::String(body))))
}

/// Waits until the worker's REST API answers.
pub fn wait_rest(topo: &Topology, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    process::wait_until("kafka connect REST API", timeout, Duration::from_millis(500), alive, || {
        Ok(matches!(get(&topo.connect, "/connectors"), Ok((200, _))))
    })
}

/// What the worker logs once it has joined its group and started the connectors and tasks
/// assigned to it.
const STARTED_WORK: &str = "Finished starting connectors and tasks";

/// Waits until a worker started when its log was `since` bytes long has joined its group and
/// started its connectors and tasks. After a kill the status topic still says RUNNING, from the
/// worker that died, until the new one has rejoined (which waits out the dead member's session):
/// the REST status alone cannot tell.
pub fn wait_started_work(layout: &Layout, since: u64, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    let log = layout.log(NAME);
    let mut pos = since;
    let mut partial = String::new();
    process::wait_until("kafka connect to rejoin its group and start its tasks", timeout, Duration::from_millis(500), alive, || {
        let Ok(mut f) = std::fs::File::open(&log) else { return Ok(false) };
        let mut chunk = Vec::new();
        if f.seek(SeekFrom::Start(pos)).and_then(|_| f.read_to_end(&mut chunk)).is_err() {
            return Ok(false);
        }
        pos += chunk.len() as u64;
        partial.push_str(&String::from_utf8_lossy(&chunk));
        if partial.contains(STARTED_WORK) {
            return Ok(true);
        }
        // Keep only an unfinished last line: the marker may be cut between two reads.
        if let Some(end) = partial.rfind('\n') {
            partial.drain(..=end);
        }
        Ok(false)
    })
}

/// Creates or updates a connector (`PUT /connectors/<name>/config` is idempotent).
pub fn register(topo: &Topology, name: &str, config: &Map<String, Value>) -> Result<()> {
    let url = format!("http://{}/connectors/{name}/config", topo.connect);
    // A worker that has just started may answer 409 (rebalance in progress) for a while.
    let mut last = String::new();
    for _ in 0..60 {
        let mut resp = agent()
            .put(&url)
            .send_json(Value::Object(config.clone()))
            .map_err(|e| Error::component(NAME, format!("PUT {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        match status {
            200 | 201 => return Ok(()),
            409 | 500 | 503 => {
                last = format!("{status}: {body}");
                std::thread::sleep(Duration::from_secs(1));
            }
            _ => return Err(Error::component(NAME, format!("registering connector {name}: HTTP {status}: {body}"))),
        }
    }
    Err(Error::component(NAME, format!("registering connector {name}: {last}")))
}

/// State of a connector and its tasks (`RUNNING`, `FAILED`, ...), with the first task trace.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConnectorStatus {
    pub name: String,
    pub connector: String,
    pub tasks: Vec<String>,
    pub trace: Option<String>,
}

impl ConnectorStatus {
    pub fn running(&self) -> bool {
        self.connector == "RUNNING" && !self.tasks.is_empty() && self.tasks.iter().all(|t| t == "RUNNING")
    }
    pub fn failed(&self) -> bool {
        self.connector == "FAILED" || self.tasks.iter().any(|t| t == "FAILED")
    }
}

pub fn status(topo: &Topology, name: &str) -> Result<ConnectorStatus> {
    let (code, v) = get(&topo.connect, &format!("/connectors/{name}/status"))?;
    if code != 200 {
        return Err(Error::component(NAME, format!("status of {name}: HTTP {code}: {v}")));
    }
    Ok(parse_status(name, &v))
}

fn parse_status(name: &str, v: &Value) -> ConnectorStatus {
    let s = |v: &Value| v.as_str().unwrap_or("UNKNOWN").to_string();
    let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
    let trace = v["connector"]["trace"]
        .as_str()
        .or_else(|| tasks.iter().find_map(|t| t["trace"].as_str()))
        .map(|t| t.lines().take(8).collect::<Vec<_>>().join("\n"));
    ConnectorStatus { name: name.into(), connector: s(&v["connector"]["state"]), tasks: tasks.iter().map(|t| s(&t["state"])).collect(), trace }
}

/// Whether both connectors of `topo`'s Connect run, with each one's state (`status`'s detail
/// for Connect, on every platform).
pub fn connectors_health(topo: &Topology) -> (bool, String) {
    let mut running = true;
    let mut states = Vec::new();
    for name in [CRM_CONNECTOR, FLEET_CONNECTOR] {
        match status(topo, name) {
            Ok(s) => {
                running &= s.running();
                states.push(format!("{name}: {} tasks {:?}", s.connector, s.tasks));
            }
            Err(_) => {
                running = false;
                states.push(format!("{name}: not registered"));
            }
        }
    }
    (running, states.join(", "))
}

/// Restarts a connector's failed instance and failed tasks
/// (`POST /connectors/<name>/restart?includeTasks=true&onlyFailed=true`). Returns whether the
/// worker accepted the request; a worker in a rebalance answers 409 and is asked again later.
pub fn restart_failed(topo: &Topology, name: &str) -> Result<bool> {
    let url = format!("http://{}/connectors/{name}/restart?includeTasks=true&onlyFailed=true", topo.connect);
    let mut resp = agent().post(&url).send_empty().map_err(|e| Error::component(NAME, format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    match status {
        200..=299 => Ok(true),
        409 => Ok(false),
        _ => Err(Error::component(NAME, format!("restarting {name}: HTTP {status}: {body}"))),
    }
}

/// Live configuration of a connector, as the worker holds it.
pub fn connector_config(topo: &Topology, name: &str) -> Result<Map<String, Value>> {
    let (code, v) = get(&topo.connect, &format!("/connectors/{name}/config"))?;
    match (code, v) {
        (200, Value::Object(m)) => Ok(m),
        (code, v) => Err(Error::component(NAME, format!("config of {name}: HTTP {code}: {v}"))),
    }
}

/// Registers both connectors and waits until they and their tasks run ([`wait_running`]).
pub fn register_and_wait(layout: &Layout, profile: &Profile, topo: &Topology, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    for (name, c) in [(CRM_CONNECTOR, crm_connector(profile, topo)), (FLEET_CONNECTOR, fleet_connector(profile, topo))] {
        // An unchanged config is not PUT again: Connect would restart the connector for nothing.
        if connector_config(topo, name).map(|live| same_config(&live, &c)).unwrap_or(false) {
            crate::progress::note(&format!("connector {name} already registered with this configuration"));
            continue;
        }
        crate::progress::note(&format!("registering connector {name} ({})", c["connector.class"].as_str().unwrap_or("")));
        register(topo, name, &c)?;
    }
    wait_running(layout, topo, timeout, alive)
}

/// Waits until both connectors and their tasks run. A connector that fails is reported with its
/// stack trace.
pub fn wait_running(layout: &Layout, topo: &Topology, timeout: Duration, mut alive: impl FnMut() -> Result<()>) -> Result<()> {
    for name in [CRM_CONNECTOR, FLEET_CONNECTOR] {
        let mut last = None;
        // The status topic may still hold the previous run's states, and a (re)started connector
        // passes through UNASSIGNED: only RUNNING seen on consecutive polls over 2 s counts.
        let mut running_since: Option<std::time::Instant> = None;
        process::wait_until(&format!("connector {name} to run"), timeout, Duration::from_millis(500), &mut alive, || {
            let s = match status(topo, name) {
                Ok(s) => s,
                Err(_) => return Ok(false),
            };
            if s.failed() {
                return Err(Error::component_with_log(
                    format!("connector {name}"),
                    format!("failed: connector {} tasks {:?}\n{}", s.connector, s.tasks, s.trace.clone().unwrap_or_default()),
                    layout.log(NAME),
                ));
            }
            running_since = if s.running() { running_since.or_else(|| Some(std::time::Instant::now())) } else { None };
            last = Some(s);
            Ok(running_since.is_some_and(|t| t.elapsed() >= Duration::from_secs(2)))
        })
        .map_err(|e| match &last {
            Some(s) => Error::component(format!("connector {name}"), format!("{e}; last state: connector {} tasks {:?}", s.connector, s.tasks)),
            None => e,
        })?;
    }
    Ok(())
}

/// Whether the worker's live config of a connector equals `wanted` (Connect adds `name`).
fn same_config(live: &Map<String, Value>, wanted: &Map<String, Value>) -> bool {
    let strip = |m: &Map<String, Value>| {
        let mut m = m.clone();
        m.remove("name");
        m
    };
    strip(live) == strip(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_config_with_name_equals_wanted() {
        let wanted = json!({"a": "1"}).as_object().cloned().unwrap();
        let live = json!({"a": "1", "name": "x"}).as_object().cloned().unwrap();
        assert!(same_config(&live, &wanted));
        let changed = json!({"a": "2", "name": "x"}).as_object().cloned().unwrap();
        assert!(!same_config(&changed, &wanted));
    }

    /// Under `weak` the schema-history consumer once auto-committed its position: the second
    /// restart of the worker found no history and the fleet task failed, which the run reported
    /// as every later MariaDB change lost.
    #[test]
    fn schema_history_consumer_keeps_its_own_offsets_under_every_profile() {
        let topo = Topology::new(&StackConfig::default());
        for (name, _) in crate::profile::BUILTIN {
            let p = Profile::load(name).unwrap();
            let c = fleet_connector(&p, &topo);
            for k in SCHEMA_HISTORY_CONSUMER_OWN {
                assert!(!c.contains_key(&format!("schema.history.internal.consumer.{k}")), "{name}: {k} reaches the schema-history consumer");
            }
            for (k, v) in p.consumer.iter().filter(|(k, _)| !SCHEMA_HISTORY_CONSUMER_OWN.contains(&k.as_str())) {
                assert_eq!(c[&format!("schema.history.internal.consumer.{k}")], Value::String(v.clone()), "{name}: {k}");
            }
        }
        // A connector setting is the user's own configuration and still wins.
        let mut p = Profile::load("weak").unwrap();
        p.connector.insert("schema.history.internal.consumer.enable.auto.commit".into(), "true".into());
        assert_eq!(fleet_connector(&p, &topo)["schema.history.internal.consumer.enable.auto.commit"], "true");
    }

    #[test]
    fn parses_connect_status() {
        let v = json!({"name":"x","connector":{"state":"RUNNING","worker_id":"w"},"tasks":[{"id":0,"state":"FAILED","trace":"boom\nat x"}]});
        let s = parse_status("x", &v);
        assert!(s.failed() && !s.running());
        assert_eq!(s.trace.as_deref(), Some("boom\nat x"));
        let v = json!({"connector":{"state":"RUNNING"},"tasks":[{"id":0,"state":"RUNNING"}]});
        assert!(parse_status("x", &v).running());
        let v = json!({"connector":{"state":"RUNNING"},"tasks":[]});
        assert!(!parse_status("x", &v).running());
    }
}
