//! Platforms the stack runs on. `local` (this host) is the default: every component a process of
//! this machine, Kafka nodes in network namespaces on a bridge so that links can be cut.
//!
//! This module owns the stack's topology (who listens where) and its layout on disk; each
//! component's own module renders its configuration and knows its command line.

pub mod connect;
pub mod deployment;
pub mod jvm;
pub mod kafka;
pub mod kind;
pub mod lake;
pub mod local;
pub mod mariadb;
pub mod netns;
pub mod postgres;
pub mod pipeline;
pub mod process;
pub mod provision;
pub mod roles;
pub mod stack;
pub mod state;
pub mod topics;

use std::path::{Path, PathBuf};

use crate::config::StackConfig;

/// One Kafka node (broker + controller, KRaft combined mode).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KafkaNode {
    /// KRaft node id, 1-based.
    pub id: u16,
    /// Component name, `kafka-<id>`.
    pub name: String,
    /// Network namespace the node runs in (`None` on loopback).
    pub netns: Option<String>,
    /// Address clients and peers use.
    pub host: String,
    pub broker_port: u16,
    pub controller_port: u16,
    /// Listener only Kafka Connect uses (namespaces only), so that a fault can cut Connect alone
    /// from the cluster by port.
    #[serde(default)]
    pub connect_port: Option<u16>,
    /// Listener only the pipeline (join and sinks) uses (namespaces only).
    #[serde(default)]
    pub pipeline_port: Option<u16>,
}

/// Which Kafka client a bootstrap list is for: each reaches the brokers on its own listener
/// when the nodes run in namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// The harness itself (set-up, capture, roles) and inter-broker traffic: `PLAINTEXT`.
    Harness,
    /// Kafka Connect and its connectors: `CONNECT`.
    Connect,
    /// The join and both sinks: `PIPELINE`.
    Pipeline,
}

impl KafkaNode {
    pub fn broker_addr(&self) -> String {
        format!("{}:{}", self.host, self.broker_port)
    }
    /// The port `client` reaches this node on.
    pub fn client_port(&self, client: Client) -> u16 {
        match client {
            Client::Harness => None,
            Client::Connect => self.connect_port,
            Client::Pipeline => self.pipeline_port,
        }
        .unwrap_or(self.broker_port)
    }
    pub fn client_addr(&self, client: Client) -> String {
        format!("{}:{}", self.host, self.client_port(client))
    }
    pub fn controller_addr(&self) -> String {
        format!("{}:{}", self.host, self.controller_port)
    }
}

/// Where every component of the local stack listens.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Topology {
    /// `namespaces` or `loopback`.
    pub network: String,
    /// Bridge joining the node namespaces (`None` on loopback).
    pub bridge: Option<String>,
    /// Address of the bridge in the root namespace.
    pub bridge_addr: Option<String>,
    pub nodes: Vec<KafkaNode>,
    pub postgres: String,
    pub mariadb: String,
    pub connect: String,
    pub warehouse: String,
    /// Metrics endpoints of the join and the warehouse sink.
    pub join_metrics: String,
    pub sink_metrics: String,
    pub lake_sink_metrics: String,
    /// The lake's S3 endpoint.
    pub lake: String,
}

impl Topology {
    pub fn new(cfg: &StackConfig) -> Topology {
        let nodes = (1..=cfg.kafka_nodes)
            .map(|id| {
                if cfg.loopback {
                    KafkaNode {
                        id,
                        name: format!("kafka-{id}"),
                        netns: None,
                        host: "127.0.0.1".into(),
                        broker_port: cfg.kafka_port + 10_000 + id * 10,
                        controller_port: cfg.kafka_port + 10_001 + id * 10,
                        connect_port: None,
                        pipeline_port: None,
                    }
                } else {
                    KafkaNode {
                        id,
                        name: format!("kafka-{id}"),
                        netns: Some(format!("{}-kafka-{id}", cfg.net_prefix)),
                        host: format!("{}.{}", cfg.subnet, 10 + id),
                        broker_port: cfg.kafka_port,
                        controller_port: cfg.controller_port,
                        connect_port: Some(cfg.kafka_port + 2),
                        pipeline_port: Some(cfg.kafka_port + 3),
                    }
                }
            })
            .collect();
        Topology {
            network: if cfg.loopback { "loopback".into() } else { "namespaces".into() },
            bridge: (!cfg.loopback).then(|| format!("{}-br0", cfg.net_prefix)),
            bridge_addr: (!cfg.loopback).then(|| format!("{}.1", cfg.subnet)),
            nodes,
            postgres: format!("127.0.0.1:{}", cfg.postgres_port),
            mariadb: format!("127.0.0.1:{}", cfg.mariadb_port),
            connect: format!("127.0.0.1:{}", cfg.connect_port),
            warehouse: format!("127.0.0.1:{}", cfg.warehouse_port),
            join_metrics: format!("127.0.0.1:{}", cfg.join_metrics_port),
            sink_metrics: format!("127.0.0.1:{}", cfg.sink_metrics_port),
            lake_sink_metrics: format!("127.0.0.1:{}", cfg.lake_sink_metrics_port),
            lake: format!("127.0.0.1:{}", cfg.lake_s3_port),
        }
    }

    /// `bootstrap.servers` for the harness's own clients.
    pub fn bootstrap(&self) -> String {
        self.bootstrap_for(Client::Harness)
    }

    /// `bootstrap.servers` for `client`: its own listener where it has one.
    pub fn bootstrap_for(&self, client: Client) -> String {
        self.nodes.iter().map(|n| n.client_addr(client)).collect::<Vec<_>>().join(",")
    }

    /// `controller.quorum.voters` of the KRaft quorum.
    pub fn quorum_voters(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}@{}", n.id, n.controller_addr()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Host part of the source PostgreSQL's address.
    pub fn postgres_host(&self) -> String {
        host_of(&self.postgres)
    }
    /// Host part of the source MariaDB's address.
    pub fn mariadb_host(&self) -> String {
        host_of(&self.mariadb)
    }
    pub fn postgres_port(&self) -> u16 {
        port_of(&self.postgres)
    }
    pub fn mariadb_port(&self) -> u16 {
        port_of(&self.mariadb)
    }
    pub fn connect_port(&self) -> u16 {
        port_of(&self.connect)
    }
    pub fn warehouse_port(&self) -> u16 {
        port_of(&self.warehouse)
    }
}

fn host_of(addr: &str) -> String {
    addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr).to_string()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0)
}

/// The stack's files under its home directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub home: PathBuf,
    pub cache: PathBuf,
}

impl Layout {
    pub fn new(cfg: &StackConfig) -> Layout {
        Layout { home: cfg.home.clone(), cache: cfg.cache.clone() }
    }
    /// Directory of one component (`kafka-1`, `postgres`, `connect`, ...).
    pub fn dir(&self, component: &str) -> PathBuf {
        self.home.join(component)
    }
    /// The component's main log (stdout + stderr of its process).
    pub fn log(&self, component: &str) -> PathBuf {
        self.dir(component).join(format!("{component}.log"))
    }
    pub fn state_file(&self) -> PathBuf {
        self.home.join("state.json")
    }
    /// Rendered client configurations (producer, consumer, processing) for the pipeline and checker.
    pub fn clients_dir(&self) -> PathBuf {
        self.home.join("clients")
    }
    /// Resolved jars: `<lib>/kafka/*.jar`, `<lib>/plugins/<connector>/*.jar`.
    pub fn lib(&self) -> PathBuf {
        self.cache.join("lib")
    }
    pub fn kafka_classpath(&self) -> String {
        format!("{}/*", self.lib().join("kafka").display())
    }
    pub fn plugins(&self) -> PathBuf {
        self.lib().join("plugins")
    }
    pub fn log4j_config(&self) -> PathBuf {
        self.home.join("log4j2.properties")
    }
}

/// Creates `dir` and its parents.
pub fn ensure_dir(dir: &Path) -> crate::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("creating directory", dir, e))
}

/// Writes `text` to `path` (creating parents).
pub fn write_file(path: &Path, text: &str) -> crate::Result<()> {
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    std::fs::write(path, text).map_err(|e| crate::Error::io("writing file", path, e))
}
