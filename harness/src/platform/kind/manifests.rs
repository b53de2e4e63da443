//! Renders the profile-derived part of the Kubernetes manifests: ConfigMaps holding every
//! configuration file the cluster's components read, written to `manifests/base/generated/` by
//! `cdc-chaos manifests render` (the `durable` rendering is committed there; a test fails when
//! it and a fresh rendering differ).
//!
//! One source of truth: each file comes from the local platform's own function — Kafka's
//! [`server_properties`](crate::platform::kafka::server_properties), the topic
//! [`plan`](crate::platform::topics::plan), Connect's
//! [`worker_properties`](crate::platform::connect::worker_properties) and connector
//! configurations, the profile's client files, the databases' schemas — called with the
//! in-cluster [`topology`]. What the cluster changes is addresses and identities only:
//!
//! - Kafka: one `server.properties` for the three nodes of the StatefulSet, with the node's
//!   identity left as `@NODE_ID@` (pod ordinal + 1) and `@ORDINAL@` (in its advertised host
//!   name), which `start.sh` substitutes when the pod starts; listeners bind every interface.
//! - Connect: `rest.advertised.host.name` is `@POD_IP@` (the pod's IP, substituted at start);
//!   connector passwords are `${dir:...}` references to the mounted Secret, resolved by the
//!   worker's `DirectoryConfigProvider` — no password is rendered.
//! - Source schemas: the statements that create the `cdc` users with a literal password are
//!   left out; the database images create them from the Secret instead.
//!
//! Owns rendering and writing files only; it reads no cluster and starts nothing.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{service_host, NS_INGESTION, NS_LAKE, NS_PROCESSING, NS_SOURCES, NS_WAREHOUSE};
use crate::error::{Error, Result};
use crate::platform::topics::{self, TopicSpec};
use crate::platform::{connect, kafka, mariadb, postgres, Client, KafkaNode, Topology};
use crate::profile::Profile;
use crate::properties::{self, Properties};

/// Kafka nodes of the StatefulSet (pods `kafka-0` .. `kafka-2`, node ids 1 .. 3).
pub const KAFKA_NODES: u16 = 3;
/// The StatefulSet's name and its headless Service's name.
pub const KAFKA_SERVICE: &str = "kafka";
/// Ports of every Kafka node: the harness and inter-broker traffic, the controller quorum,
/// Kafka Connect's own listener and the pipeline's own listener (as on the local platform).
pub const KAFKA_PORT: u16 = 9092;
pub const CONTROLLER_PORT: u16 = 9093;
pub const KAFKA_CONNECT_PORT: u16 = 9094;
pub const KAFKA_PIPELINE_PORT: u16 = 9095;
/// The harness's listener when it runs outside the cluster: reached through a port forward, so
/// each node advertises `127.0.0.1:<HARNESS_LOCAL_BASE + ordinal>`, the local end of its forward.
pub const KAFKA_HARNESS_PORT: u16 = 9096;
pub const HARNESS_LOCAL_BASE: u16 = 39092;
/// Placeholder of the harness listener's advertised port, substituted by `start.sh`.
pub const HARNESS_PORT: &str = "@HARNESS_PORT@";
/// Kafka's log directory: a subdirectory of the persistent volume's mount (whose root may hold
/// `lost+found`, which Kafka refuses as a log directory).
pub const KAFKA_LOG_DIR: &str = "/var/lib/kafka/data/kraft-logs";
/// Kafka Connect's Service and REST port.
pub const CONNECT_SERVICE: &str = "connect";
pub const CONNECT_PORT: u16 = 8083;
/// Where the Connect image keeps the Debezium plugins (`docker/connect.Dockerfile`).
pub const CONNECT_PLUGINS: &str = "/opt/connect/plugins";
/// Where the Connect pod mounts the connector credentials Secret (one file per key).
pub const CONNECT_SECRETS: &str = "/etc/cdc-chaos/connect-secrets";
/// Services of the databases and the lake, and their ports.
pub const POSTGRES_SERVICE: &str = "postgres";
pub const MARIADB_SERVICE: &str = "mariadb";
pub const WAREHOUSE_SERVICE: &str = "warehouse";
pub const LAKE_SERVICE: &str = "lake";
pub const POSTGRES_PORT: u16 = 5432;
pub const MARIADB_PORT: u16 = 3306;
pub const LAKE_PORT: u16 = 9000;
/// Metrics ports of the join, the warehouse sink and the lake sink.
pub const JOIN_METRICS_PORT: u16 = 9101;
pub const SINK_METRICS_PORT: u16 = 9102;
pub const LAKE_SINK_METRICS_PORT: u16 = 9103;

/// Placeholders substituted when a pod starts.
pub const ORDINAL: &str = "@ORDINAL@";
pub const NODE_ID: &str = "@NODE_ID@";
pub const POD_IP: &str = "@POD_IP@";

/// Keys of the connector-credentials Secret (files under [`CONNECT_SECRETS`]).
pub const CRM_PASSWORD_KEY: &str = "crm-password";
pub const FLEET_PASSWORD_KEY: &str = "fleet-password";

/// Where each ConfigMap is mounted in its pods.
pub const KAFKA_CONFIG_DIR: &str = "/etc/cdc-chaos/kafka";
pub const TOPICS_DIR: &str = "/etc/cdc-chaos/topics";
pub const CONNECT_CONFIG_DIR: &str = "/etc/cdc-chaos/connect";
pub const CONNECTORS_DIR: &str = "/etc/cdc-chaos/connectors";

/// The directory, relative to the repository, that holds the committed `durable` rendering.
pub const COMMITTED_DIR: &str = "manifests/base/generated";

/// Host name of Kafka pod `ordinal` through the headless Service.
pub fn kafka_host(ordinal: &str) -> String {
    format!("{KAFKA_SERVICE}-{ordinal}.{}", service_host(KAFKA_SERVICE, NS_INGESTION))
}

fn kafka_node(id: u16, host: String) -> KafkaNode {
    KafkaNode {
        id,
        name: format!("kafka-{id}"),
        netns: None,
        host,
        broker_port: KAFKA_PORT,
        controller_port: CONTROLLER_PORT,
        connect_port: Some(KAFKA_CONNECT_PORT),
        pipeline_port: Some(KAFKA_PIPELINE_PORT),
    }
}

/// Where every component listens inside the cluster. Connect's address is the one its REST
/// server binds (`0.0.0.0`); the pipeline's metrics endpoints likewise.
pub fn topology() -> Topology {
    let addr = |service: &str, ns: &str, port: u16| format!("{}:{port}", service_host(service, ns));
    Topology {
        network: "kubernetes".into(),
        bridge: None,
        bridge_addr: None,
        nodes: (1..=KAFKA_NODES).map(|id| kafka_node(id, kafka_host(&(id - 1).to_string()))).collect(),
        postgres: addr(POSTGRES_SERVICE, NS_SOURCES, POSTGRES_PORT),
        mariadb: addr(MARIADB_SERVICE, NS_SOURCES, MARIADB_PORT),
        connect: format!("0.0.0.0:{CONNECT_PORT}"),
        warehouse: addr(WAREHOUSE_SERVICE, NS_WAREHOUSE, POSTGRES_PORT),
        join_metrics: format!("0.0.0.0:{JOIN_METRICS_PORT}"),
        sink_metrics: format!("0.0.0.0:{SINK_METRICS_PORT}"),
        lake_sink_metrics: format!("0.0.0.0:{LAKE_SINK_METRICS_PORT}"),
        lake: addr(LAKE_SERVICE, NS_LAKE, LAKE_PORT),
    }
}

/// Every profile-derived configuration of the cluster, before it is written as ConfigMaps.
#[derive(Debug, Clone)]
pub struct Rendering {
    /// The profile's name.
    pub profile: String,
    /// `server.properties` of every Kafka node, with [`NODE_ID`] and [`ORDINAL`] to substitute.
    pub server_properties: Properties,
    /// The KRaft cluster id every node formats its storage with (derived from the profile's
    /// name, so that a rendering is reproducible).
    pub cluster_id: String,
    /// Every topic the cluster needs.
    pub topics: Vec<TopicSpec>,
    /// Kafka Connect's worker configuration, with [`POD_IP`] to substitute.
    pub worker: Properties,
    /// The two connectors' configurations (name, config), passwords as Secret references.
    pub connectors: Vec<(&'static str, Map<String, Value>)>,
    /// The pipeline's client files.
    pub producer: Properties,
    pub consumer: Properties,
    pub processing: Properties,
    /// The source databases' schemas, without the statements that set passwords.
    pub crm_sql: String,
    pub fleet_sql: String,
}

/// Renders every profile-derived configuration of the cluster from `profile`.
pub fn render(profile: &Profile) -> Result<Rendering> {
    profile.check_cluster_size(KAFKA_NODES)?;
    let topo = topology();
    let template = kafka_node(1, kafka_host(ORDINAL));
    let mut server = kafka::server_properties(profile, &topo, &template, KAFKA_LOG_DIR);
    server.insert("node.id".into(), NODE_ID.into());
    let listeners = server.get("listeners").cloned().unwrap_or_default().replace(&template.host, "0.0.0.0");
    server.insert("listeners".into(), format!("{listeners},HARNESS://0.0.0.0:{KAFKA_HARNESS_PORT}"));
    let advertised = server.get("advertised.listeners").cloned().unwrap_or_default();
    server.insert("advertised.listeners".into(), format!("{advertised},HARNESS://127.0.0.1:{HARNESS_PORT}"));
    let map = server.get("listener.security.protocol.map").cloned().unwrap_or_default();
    server.insert("listener.security.protocol.map".into(), format!("{map},HARNESS:PLAINTEXT"));

    let mut worker = connect::worker_properties(profile, &topo, CONNECT_PLUGINS);
    worker.insert("rest.advertised.host.name".into(), POD_IP.into());
    worker.insert("config.providers".into(), "dir".into());
    worker.insert("config.providers.dir.class".into(), "org.apache.kafka.common.config.provider.DirectoryConfigProvider".into());

    let secret = |key: &str| Value::String(format!("${{dir:{CONNECT_SECRETS}:{key}}}"));
    let mut crm = connect::crm_connector(profile, &topo);
    crm.insert("database.password".into(), secret(CRM_PASSWORD_KEY));
    let mut fleet = connect::fleet_connector(profile, &topo);
    fleet.insert("database.password".into(), secret(FLEET_PASSWORD_KEY));

    let bootstrap = topo.bootstrap_for(Client::Pipeline);
    let mut id = [0u8; 16];
    id.copy_from_slice(&Sha256::digest(format!("cdc-chaos/{}", profile.name).as_bytes())[..16]);
    Ok(Rendering {
        profile: profile.name.clone(),
        server_properties: server,
        cluster_id: kafka::cluster_id_of(id),
        topics: topics::plan(profile),
        worker,
        connectors: vec![(connect::CRM_CONNECTOR, crm), (connect::FLEET_CONNECTOR, fleet)],
        producer: profile.producer_properties(&bootstrap),
        consumer: profile.consumer_properties(&bootstrap),
        processing: profile.processing_properties(),
        crm_sql: crm_sql_without_password()?,
        fleet_sql: fleet_sql_without_password()?,
    })
}

/// `harness/sql/crm.sql` without its `CREATE ROLE cdc ... PASSWORD` statement (the statement
/// through its `\gexec`): `00-cdc-role.sh` creates the role from the Secret.
fn crm_sql_without_password() -> Result<String> {
    let lines: Vec<&str> = postgres::CRM_SQL.lines().collect();
    let start = lines.iter().position(|l| l.contains("CREATE ROLE cdc")).ok_or_else(|| drifted("harness/sql/crm.sql", "no `CREATE ROLE cdc` statement"))?;
    let end = lines[start..]
        .iter()
        .position(|l| l.trim_end().ends_with("\\gexec"))
        .map(|i| start + i)
        .ok_or_else(|| drifted("harness/sql/crm.sql", &format!("the `CREATE ROLE cdc` statement at line {} has no `\\gexec`", start + 1)))?;
    let mut out: Vec<&str> = lines[..start].to_vec();
    out.push("-- Role cdc: created by 00-cdc-role.sh with the password of the Secret.");
    out.extend(&lines[end + 1..]);
    Ok(out.join("\n") + "\n")
}

/// `harness/sql/fleet.sql` without its `CREATE USER ... IDENTIFIED BY` statements and the grants
/// to `'cdc'@'localhost'`: the MariaDB image creates `'cdc'@'%'` from the Secret
/// (`MARIADB_USER`, `MARIADB_PASSWORD`), and no client of the cluster connects locally.
fn fleet_sql_without_password() -> Result<String> {
    let lines: Vec<&str> = mariadb::FLEET_SQL.lines().collect();
    if !lines.iter().any(|l| l.contains("IDENTIFIED BY")) {
        return Err(drifted("harness/sql/fleet.sql", "no `CREATE USER ... IDENTIFIED BY` statement"));
    }
    let mut out = Vec::new();
    let mut noted = false;
    for l in lines {
        if l.contains("IDENTIFIED BY") || l.contains("'cdc'@'localhost'") {
            if !noted {
                out.push("-- User 'cdc'@'%': created by the MariaDB image from MARIADB_USER and MARIADB_PASSWORD (the Secret).");
                noted = true;
            }
            continue;
        }
        out.push(l);
    }
    Ok(out.join("\n") + "\n")
}

fn drifted(file: &str, what: &str) -> Error {
    Error::component("manifests", format!("{file}: {what}; the Kubernetes rendering (harness/src/platform/kind/manifests.rs) must follow the change"))
}

/// One generated file: its name in the output directory and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedFile {
    pub name: String,
    pub text: String,
}

/// Kafka's start script: node id and host name from the pod's ordinal, storage formatted once.
fn kafka_start() -> String {
    format!(
        r#"#!/bin/bash
# Starts one Kafka node of the StatefulSet: node id = pod ordinal + 1 (kafka-0 is node 1).
set -euo pipefail
ordinal="${{HOSTNAME##*-}}"
node_id=$((ordinal + 1))
# The harness's listener advertises the local end of its port forward to this pod.
harness_port=$(({HARNESS_LOCAL_BASE} + ordinal))
sed -e "s/{ORDINAL}/${{ordinal}}/g" -e "s/{NODE_ID}/${{node_id}}/g" -e "s/{HARNESS_PORT}/${{harness_port}}/g" {KAFKA_CONFIG_DIR}/server.properties > /tmp/server.properties
mkdir -p {KAFKA_LOG_DIR}
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$(cat {KAFKA_CONFIG_DIR}/cluster.id)" --config /tmp/server.properties
exec /opt/kafka/bin/kafka-server-start.sh /tmp/server.properties
"#
    )
}

/// Bootstrap list of the harness's listener, for the topic Job.
fn harness_bootstrap() -> String {
    topology().bootstrap_for(Client::Harness)
}

/// Creates every topic of `topics.txt` that does not exist yet (a Job; it fails, and is
/// retried, until every broker is up).
fn create_topics() -> String {
    format!(
        r#"#!/bin/bash
# Creates every topic of topics.txt that does not exist yet; brokers never auto-create topics.
set -euo pipefail
bootstrap="{bootstrap}"
until /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "$bootstrap" > /dev/null 2>&1; do
  echo "waiting for the brokers at $bootstrap"
  sleep 5
done
grep -v '^#' {TOPICS_DIR}/topics.txt | while read -r name partitions rf configs; do
  args=()
  for c in ${{configs//,/ }}; do args+=(--config "$c"); done
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor "$rf" "${{args[@]}}"
done
"#,
        bootstrap = harness_bootstrap()
    )
}

/// Waits until every topic of `topics.txt` exists (Connect's init container: the worker must
/// not create its internal topics itself, without the profile's topic configs).
fn wait_topics() -> String {
    format!(
        r#"#!/bin/bash
# Waits until every topic of topics.txt exists.
set -euo pipefail
bootstrap="{bootstrap}"
want=$(grep -v '^#' {TOPICS_DIR}/topics.txt | cut -d' ' -f1 | sort)
until have=$(/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --list 2> /dev/null | sort) \
    && [ -z "$(comm -23 <(echo "$want") <(echo "$have"))" ]; do
  echo "waiting for topics: $(comm -23 <(echo "$want") <(echo "${{have:-}}") | tr '\n' ' ')"
  sleep 5
done
"#,
        bootstrap = harness_bootstrap()
    )
}

/// Connect's start script: the pod's IP into `rest.advertised.host.name`.
fn connect_start() -> String {
    format!(
        r#"#!/bin/bash
# Starts the Kafka Connect worker, advertising the pod's IP to the other workers.
set -euo pipefail
sed -e "s/{POD_IP}/${{POD_IP}}/g" {CONNECT_CONFIG_DIR}/worker.properties > /tmp/worker.properties
exec /opt/kafka/bin/connect-distributed.sh /tmp/worker.properties
"#
    )
}

/// Registers (or updates) every connector of the `connectors` ConfigMap through Connect's REST
/// API; `PUT /connectors/<name>/config` is idempotent.
fn register_connectors() -> String {
    let url = format!("http://{}:{CONNECT_PORT}", service_host(CONNECT_SERVICE, NS_INGESTION));
    format!(
        r#"#!/bin/sh
# Registers or updates every connector (*.json, named after the file) through Connect's REST API.
set -eu
url="{url}"
until curl -sf "$url/connectors" > /dev/null; do
  echo "waiting for $url"
  sleep 5
done
for f in {CONNECTORS_DIR}/*.json; do
  name=$(basename "$f" .json)
  until curl -sf -X PUT -H 'Content-Type: application/json' --data @"$f" "$url/connectors/$name/config"; do
    echo "retrying $name"
    sleep 5
  done
  echo
done
"#
    )
}

/// `00-cdc-role.sh` of the source PostgreSQL's init scripts: the `cdc` role, with the password
/// from the environment (the Secret), quoted by PostgreSQL itself.
fn cdc_role_script() -> String {
    format!(
        r#"#!/bin/bash
# Creates Debezium's role cdc with the password of the Secret ($CDC_PASSWORD).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v cdc_password="$CDC_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE {user} LOGIN REPLICATION PASSWORD %L', :'cdc_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{user}') \gexec
SQL
"#,
        user = postgres::USER
    )
}

/// The topic plan as a table: `name partitions replication_factor key=value,...`.
fn topics_table(topics: &[TopicSpec]) -> Result<String> {
    let mut out = String::from("# name partitions replication_factor configs (key=value,...)\n");
    for t in topics {
        let mut configs = Vec::new();
        for (k, v) in &t.config {
            if k.contains([',', '=']) || v.contains(',') || k.contains(char::is_whitespace) || v.contains(char::is_whitespace) {
                return Err(Error::component("manifests", format!("topic {}: config {k}={v:?} cannot be written to topics.txt (no whitespace or ',' allowed)", t.name)));
            }
            configs.push(format!("{k}={v}"));
        }
        let _ = writeln!(out, "{} {} {} {}", t.name, t.partitions, t.replication_factor, configs.join(","));
    }
    Ok(out)
}

/// Parses `topics.txt` back (for tests and checks): the inverse of [`topics_table`].
pub fn parse_topics_table(text: &str) -> std::result::Result<Vec<TopicSpec>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty()) {
        let at = |what: &str| format!("topics.txt line {}: {what}: {line:?}", i + 1);
        let fields: Vec<&str> = line.split(' ').collect();
        let [name, partitions, rf, configs] = fields[..] else { return Err(at("expected 4 fields")) };
        let config = configs
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| c.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| at("config without '='")))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        out.push(TopicSpec {
            name: name.into(),
            partitions: partitions.parse().map_err(|_| at("partitions"))?,
            replication_factor: rf.parse().map_err(|_| at("replication factor"))?,
            config,
        });
    }
    Ok(out)
}

impl Rendering {
    /// The generated files: one YAML file per component (ConfigMaps) and their
    /// `kustomization.yaml`.
    pub fn files(&self) -> Result<Vec<GeneratedFile>> {
        let header = |what: &str| {
            format!(
                "# {what} — generated by `cdc-chaos manifests render --profile {p}` from profile {p:?}.\n\
                 # Do not edit: render again (a test fails when this file and the rendering differ).\n",
                p = self.profile
            )
        };
        let props = |what: &str, p: &Properties| properties::render(&format!("{what} — rendered by cdc-chaos from profile {}", self.profile), p);
        let json = |c: &Map<String, Value>| serde_json::to_string_pretty(c).expect("json") + "\n";

        let mut files = Vec::new();
        let mut file = |name: &str, what: &str, maps: Vec<ConfigMap>| -> Result<()> {
            let mut text = header(what);
            for (i, m) in maps.iter().enumerate() {
                if i > 0 {
                    text.push_str("---\n");
                }
                m.write(&mut text)?;
            }
            files.push(GeneratedFile { name: name.into(), text });
            Ok(())
        };
        file(
            "kafka-config.yaml",
            "Kafka nodes: server.properties (one template for every node), the cluster id, the start script",
            vec![ConfigMap::new("kafka-config", NS_INGESTION, "kafka")
                .with("cluster.id", &format!("{}\n", self.cluster_id))
                .with("server.properties", &props("Kafka node (node.id and host substituted from the pod ordinal at start)", &self.server_properties))
                .with("start.sh", &kafka_start())],
        )?;
        file(
            "kafka-topics.yaml",
            "Every topic of the stack (the harness's topic plan) and the scripts that create and await them",
            vec![ConfigMap::new("kafka-topics", NS_INGESTION, "kafka-topics")
                .with("create-topics.sh", &create_topics())
                .with("topics.txt", &topics_table(&self.topics)?)
                .with("wait-topics.sh", &wait_topics())],
        )?;
        let mut connectors = ConfigMap::new("connectors", NS_INGESTION, "connect");
        for (name, c) in &self.connectors {
            connectors = connectors.with(&format!("{name}.json"), &json(c));
        }
        file(
            "connect-config.yaml",
            "Kafka Connect: the worker's configuration and start script; the Debezium connectors and the script that registers them",
            vec![
                ConfigMap::new("connect-config", NS_INGESTION, "connect")
                    .with("start.sh", &connect_start())
                    .with("worker.properties", &props("Kafka Connect worker (rest.advertised.host.name substituted at start)", &self.worker)),
                connectors.with("register.sh", &register_connectors()),
            ],
        )?;
        file(
            "pipeline-clients.yaml",
            "The pipeline's Kafka client files (join, warehouse sink, lake sink)",
            vec![ConfigMap::new("pipeline-clients", NS_PROCESSING, "pipeline")
                .with("consumer.properties", &props("Kafka consumers", &self.consumer))
                .with("processing.properties", &props("Pipeline processing", &self.processing))
                .with("producer.properties", &props("Kafka producers", &self.producer))],
        )?;
        file(
            "sources-init.yaml",
            "The source databases' schemas (harness/sql), run by the images' entrypoints on first start",
            vec![
                ConfigMap::new("crm-init", NS_SOURCES, "postgres").with("00-cdc-role.sh", &cdc_role_script()).with("10-crm.sql", &self.crm_sql),
                ConfigMap::new("fleet-init", NS_SOURCES, "mariadb").with("10-fleet.sql", &self.fleet_sql),
            ],
        )?;
        let mut kustomization = header("The generated manifests");
        kustomization.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
        for f in &files {
            let _ = writeln!(kustomization, "  - {}", f.name);
        }
        files.push(GeneratedFile { name: "kustomization.yaml".into(), text: kustomization });
        Ok(files)
    }
}

/// Writes `files` into `dir` (created if missing) and removes `.yaml` files there that the
/// rendering no longer has. Returns the paths written.
pub fn write(dir: &Path, files: &[GeneratedFile]) -> Result<Vec<std::path::PathBuf>> {
    crate::platform::ensure_dir(dir)?;
    for stale in stale_extra(dir, files) {
        let path = dir.join(&stale);
        std::fs::remove_file(&path).map_err(|e| Error::io("removing a file the rendering no longer has", &path, e))?;
    }
    let mut written = Vec::new();
    for f in files {
        let path = dir.join(&f.name);
        crate::platform::write_file(&path, &f.text)?;
        written.push(path);
    }
    Ok(written)
}

/// `.yaml` files in `dir` that the rendering does not have.
fn stale_extra(dir: &Path, files: &[GeneratedFile]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut extra: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && !files.iter().any(|f| &f.name == n))
        .collect();
    extra.sort();
    extra
}

/// How `dir` differs from `files`: one line per file missing, different or extra. Empty when
/// the directory holds exactly the rendering.
pub fn differences(dir: &Path, files: &[GeneratedFile]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let path = dir.join(&f.name);
        match std::fs::read_to_string(&path) {
            Err(_) => out.push(format!("{}: missing", path.display())),
            Ok(text) if text != f.text => {
                let line = text.lines().zip(f.text.lines()).position(|(a, b)| a != b).unwrap_or_else(|| text.lines().count().min(f.text.lines().count()));
                out.push(format!("{}: differs from the rendering from line {}", path.display(), line + 1));
            }
            Ok(_) => {}
        }
    }
    for extra in stale_extra(dir, files) {
        out.push(format!("{}: not part of the rendering", dir.join(extra).display()));
    }
    out
}

/// A ConfigMap written as YAML by hand (the harness carries no YAML library): string data as
/// literal block scalars, every other scalar double-quoted (JSON strings are valid YAML).
struct ConfigMap {
    name: String,
    namespace: String,
    component: String,
    data: Vec<(String, String)>,
}

impl ConfigMap {
    fn new(name: &str, namespace: &str, component: &str) -> ConfigMap {
        ConfigMap { name: name.into(), namespace: namespace.into(), component: component.into(), data: Vec::new() }
    }

    fn with(mut self, key: &str, value: &str) -> ConfigMap {
        self.data.push((key.into(), value.into()));
        self
    }

    fn write(&self, out: &mut String) -> Result<()> {
        let q = |s: &str| serde_json::to_string(s).expect("json");
        let _ = write!(
            out,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n    app.kubernetes.io/part-of: cdc-chaos\n    app.kubernetes.io/component: {}\ndata:\n",
            q(&self.name),
            q(&self.namespace),
            q(&self.component)
        );
        for (key, value) in &self.data {
            let bad = |why: &str| Error::component("manifests", format!("ConfigMap {}/{}, key {key:?}: {why}", self.namespace, self.name));
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                return Err(bad("not a valid ConfigMap key ([-._a-zA-Z0-9]+)"));
            }
            if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\n' && *c != '\t') {
                return Err(bad(&format!("control character {c:?} cannot be written as a literal block")));
            }
            if value.starts_with([' ', '\t', '\n']) {
                return Err(bad("a value starting with whitespace cannot be written as a literal block"));
            }
            let chomp = if !value.ends_with('\n') {
                "-"
            } else if value.ends_with("\n\n") {
                "+"
            } else {
                ""
            };
            let _ = writeln!(out, "  {key}: |{chomp}");
            for line in value.lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StackConfig;

    fn durable() -> Profile {
        Profile::load("durable").unwrap()
    }

    /// The repository's root (the harness crate's parent).
    fn repo() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    /// The local platform's topology with the Kafka nodes in namespaces (each node's own
    /// listeners for Connect and the pipeline, as in the cluster).
    fn local() -> Topology {
        Topology::new(&StackConfig::default().loopback(false))
    }

    /// Compares two renderings of one file key by key: every key present in both with the same
    /// value, except `addresses` (which must be present in both and may differ) and
    /// `cluster_only` (present in the cluster's rendering alone).
    fn agree(file: &str, local: &Properties, cluster: &Properties, addresses: &[&str], cluster_only: &[&str]) {
        for (k, v) in local {
            let c = cluster.get(k).unwrap_or_else(|| panic!("{file}: {k} is rendered locally ({v}) but not for the cluster"));
            if !addresses.contains(&k.as_str()) {
                assert_eq!(c, v, "{file}: {k} differs: local {v:?}, cluster {c:?}");
            }
        }
        for (k, v) in cluster {
            assert!(local.contains_key(k) || cluster_only.contains(&k.as_str()), "{file}: {k}={v} is rendered for the cluster alone");
        }
    }

    fn strings(m: &Map<String, Value>) -> Properties {
        m.iter().map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))).collect()
    }

    #[test]
    fn the_committed_rendering_is_current() {
        let files = render(&durable()).unwrap().files().unwrap();
        let diff = differences(&repo().join(COMMITTED_DIR), &files);
        assert!(diff.is_empty(), "{} is stale; run `cargo run -- manifests render --profile durable`:\n{}", COMMITTED_DIR, diff.join("\n"));
    }

    #[test]
    fn rendering_twice_gives_the_same_bytes() {
        for name in ["durable", "weak"] {
            let p = Profile::load(name).unwrap();
            assert_eq!(render(&p).unwrap().files().unwrap(), render(&p).unwrap().files().unwrap(), "{name}");
        }
    }

    #[test]
    fn kafka_nodes_agree_with_the_local_platform_row_by_row() {
        for name in ["durable", "weak"] {
            let p = Profile::load(name).unwrap();
            let r = render(&p).unwrap();
            let topo = local();
            for node in &topo.nodes {
                let l = kafka::server_properties(&p, &topo, node, "/data");
                agree(
                    &format!("{name}: server.properties of {}", node.name),
                    &l,
                    &r.server_properties,
                    &["node.id", "listeners", "advertised.listeners", "listener.security.protocol.map", "controller.quorum.voters", "log.dirs"],
                    &[],
                );
            }
            for (k, v) in &p.broker {
                assert_eq!(r.server_properties.get(k), Some(v), "{name}: [broker] {k}");
            }
            assert_eq!(r.server_properties["node.id"], NODE_ID);
            assert_eq!(
                r.server_properties["advertised.listeners"],
                format!("PLAINTEXT://{h}:9092,CONNECT://{h}:9094,PIPELINE://{h}:9095,HARNESS://127.0.0.1:{HARNESS_PORT}", h = kafka_host(ORDINAL))
            );
            assert_eq!(
                r.server_properties["listeners"],
                "PLAINTEXT://0.0.0.0:9092,CONNECT://0.0.0.0:9094,PIPELINE://0.0.0.0:9095,CONTROLLER://0.0.0.0:9093,HARNESS://0.0.0.0:9096"
            );
            assert_eq!(r.server_properties["listener.security.protocol.map"], "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONNECT:PLAINTEXT,PIPELINE:PLAINTEXT,HARNESS:PLAINTEXT");
            assert_eq!(
                r.server_properties["controller.quorum.voters"],
                "1@kafka-0.kafka.cdc-ingestion.svc.cluster.local:9093,2@kafka-1.kafka.cdc-ingestion.svc.cluster.local:9093,3@kafka-2.kafka.cdc-ingestion.svc.cluster.local:9093"
            );
        }
    }

    #[test]
    fn topics_agree_with_the_local_plan() {
        for name in ["durable", "weak"] {
            let p = Profile::load(name).unwrap();
            let r = render(&p).unwrap();
            let text = topics_table(&r.topics).unwrap();
            assert_eq!(parse_topics_table(&text).unwrap(), topics::plan(&p), "{name}");
        }
        let e = parse_topics_table("t 1 3 a=b\nt 1\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn connect_agrees_with_the_local_platform_row_by_row() {
        for name in ["durable", "weak"] {
            let p = Profile::load(name).unwrap();
            let r = render(&p).unwrap();
            let topo = local();
            agree(
                &format!("{name}: worker.properties"),
                &connect::worker_properties(&p, &topo, "/plugins"),
                &r.worker,
                &["bootstrap.servers", "listeners", "rest.advertised.host.name", "rest.advertised.port", "plugin.path"],
                &["config.providers", "config.providers.dir.class"],
            );
            let addresses = ["database.hostname", "database.port", "database.password", "schema.history.internal.kafka.bootstrap.servers"];
            let local = [connect::crm_connector(&p, &topo), connect::fleet_connector(&p, &topo)];
            for ((cname, c), l) in r.connectors.iter().zip(local) {
                agree(&format!("{name}: {cname}"), &strings(&l), &strings(c), &addresses, &[]);
            }
            assert_eq!(r.worker["bootstrap.servers"], topology().bootstrap_for(Client::Connect));
            assert!(r.worker["bootstrap.servers"].contains("kafka-2.kafka.cdc-ingestion.svc.cluster.local:9094"));
        }
    }

    #[test]
    fn pipeline_clients_agree_with_the_local_platform() {
        for name in ["durable", "weak"] {
            let p = Profile::load(name).unwrap();
            let r = render(&p).unwrap();
            let b = local().bootstrap_for(Client::Pipeline);
            agree("producer.properties", &p.producer_properties(&b), &r.producer, &["bootstrap.servers"], &[]);
            agree("consumer.properties", &p.consumer_properties(&b), &r.consumer, &["bootstrap.servers"], &[]);
            agree("processing.properties", &p.processing_properties(), &r.processing, &[], &[]);
            assert!(r.producer["bootstrap.servers"].ends_with("kafka-2.kafka.cdc-ingestion.svc.cluster.local:9095"));
        }
    }

    #[test]
    fn no_password_is_rendered() {
        let r = render(&durable()).unwrap();
        for (name, c) in &r.connectors {
            let v = c["database.password"].as_str().unwrap();
            assert!(v.starts_with("${dir:") && v.ends_with("-password}"), "{name}: {v}");
        }
        assert!(!r.crm_sql.contains("PASSWORD"), "{}", r.crm_sql);
        assert!(r.crm_sql.contains("CREATE TABLE IF NOT EXISTS customers") && r.crm_sql.contains("\\connect crm"));
        assert!(!r.fleet_sql.contains("IDENTIFIED BY") && !r.fleet_sql.contains("'cdc'@'localhost'"), "{}", r.fleet_sql);
        assert!(r.fleet_sql.contains("TO 'cdc'@'%'"));
        for f in r.files().unwrap() {
            assert!(!f.text.contains("PASSWORD ''") && !f.text.contains("IDENTIFIED BY"), "{}", f.name);
        }
    }

    #[test]
    fn literal_blocks_keep_the_text() {
        let mut out = String::new();
        ConfigMap::new("m", "ns", "c").with("a.txt", "x\n\n  y\n").with("b", "no newline").with("c", "two\n\n").write(&mut out).unwrap();
        assert_eq!(
            out,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"m\"\n  namespace: \"ns\"\n  labels:\n    app.kubernetes.io/part-of: cdc-chaos\n    app.kubernetes.io/component: \"c\"\ndata:\n  a.txt: |\n    x\n\n      y\n  b: |-\n    no newline\n  c: |+\n    two\n\n"
        );
        let e = ConfigMap::new("m", "ns", "c").with("bad key", "v").write(&mut String::new()).unwrap_err().to_string();
        assert!(e.contains("ns/m") && e.contains("bad key"), "{e}");
        let e = ConfigMap::new("m", "ns", "c").with("k", " lead").write(&mut String::new()).unwrap_err().to_string();
        assert!(e.contains("whitespace"), "{e}");
    }
}
