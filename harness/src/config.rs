//! Settings of the local stack, with every default in one place.
//!
//! `StackConfig::default()` is what `cdc-chaos up` uses; the CLI and tests override single fields
//! with the chained setters. Nothing here talks to a process or the network.

use std::path::PathBuf;

/// Where and how the local stack runs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StackConfig {
    /// Run directory of the stack: data, rendered configs, logs, `state.json`.
    /// Default: `$CDC_CHAOS_HOME`, else `/var/lib/cdc-chaos` as root, else
    /// `$HOME/.local/state/cdc-chaos`.
    pub home: PathBuf,
    /// Cache of resolved jars (Kafka, Connect, Debezium): `$CDC_CHAOS_CACHE`, else
    /// `$HOME/.cache/cdc-chaos`. Shared by every stack on the host.
    pub cache: PathBuf,
    /// Number of Kafka nodes (each broker + controller). Default 3.
    pub kafka_nodes: u16,
    /// First three octets of the bridge subnet when nodes run in network namespaces.
    /// Default `10.231.0`: the bridge is `.1`, node N is `.(10+N)`.
    pub subnet: String,
    /// Prefix of every network namespace, veth and bridge the harness makes. Default `cdcc`.
    pub net_prefix: String,
    /// Broker port (namespaces: on every node's address; loopback: first node, then +1 ...).
    pub kafka_port: u16,
    /// Controller port (as above).
    pub controller_port: u16,
    /// Kafka broker JVM heap (`-Xmx`). Default `512m`.
    pub kafka_heap: String,
    /// Kafka Connect JVM heap. Default `768m`.
    pub connect_heap: String,
    /// PostgreSQL port on 127.0.0.1. Default 25432 (below the ephemeral port range).
    pub postgres_port: u16,
    /// MariaDB port on 127.0.0.1. Default 23306.
    pub mariadb_port: u16,
    /// Warehouse PostgreSQL port on 127.0.0.1. Default 25433.
    pub warehouse_port: u16,
    /// Prometheus metrics port of the join on 127.0.0.1. Default 29101.
    pub join_metrics_port: u16,
    /// Prometheus metrics port of the warehouse sink on 127.0.0.1. Default 29102.
    pub sink_metrics_port: u16,
    /// Prometheus metrics port of the lake sink on 127.0.0.1. Default 29103.
    pub lake_sink_metrics_port: u16,
    /// S3 port of the lake's SeaweedFS on 127.0.0.1. Default 28380.
    pub lake_s3_port: u16,
    /// First of SeaweedFS's ten other ports (master, volume, filer, admin and their gRPC ports).
    /// Default 21330.
    pub lake_port_base: u16,
    /// An existing S3 endpoint (MinIO, AWS S3, ...) for the lake instead of the local SeaweedFS.
    /// Default: none (SeaweedFS is started).
    pub lake_endpoint: Option<String>,
    /// Bucket of the lake. Default `cdc-chaos-lake`.
    pub lake_bucket: String,
    /// S3 credentials of the lake. Default: the local server's static `cdc-chaos` identity.
    pub lake_access_key: String,
    pub lake_secret_key: String,
    /// Kafka Connect REST port on 127.0.0.1. Default 28083.
    pub connect_port: u16,
    /// Run Kafka nodes on loopback instead of network namespaces (no partition faults then).
    /// Default: false as root, true otherwise.
    pub loopback: bool,
    /// Seconds to wait for each component to become ready. Default 180.
    pub ready_timeout_secs: u64,
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

impl Default for StackConfig {
    fn default() -> Self {
        let home_env = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
        let home = std::env::var_os("CDC_CHAOS_HOME").map(PathBuf::from).unwrap_or_else(|| {
            if is_root() {
                PathBuf::from("/var/lib/cdc-chaos")
            } else {
                home_env.join(".local/state/cdc-chaos")
            }
        });
        let cache = std::env::var_os("CDC_CHAOS_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home_env.join(".cache/cdc-chaos"));
        StackConfig {
            home,
            cache,
            kafka_nodes: 3,
            subnet: "10.231.0".into(),
            net_prefix: "cdcc".into(),
            kafka_port: 9092,
            controller_port: 9093,
            kafka_heap: "512m".into(),
            connect_heap: "768m".into(),
            postgres_port: 25432,
            mariadb_port: 23306,
            connect_port: 28083,
            warehouse_port: 25433,
            join_metrics_port: 29101,
            sink_metrics_port: 29102,
            lake_sink_metrics_port: 29103,
            lake_s3_port: 28380,
            lake_port_base: 21330,
            lake_endpoint: None,
            lake_bucket: "cdc-chaos-lake".into(),
            lake_access_key: "cdc-chaos".into(),
            lake_secret_key: "cdc-chaos-local-secret".into(),
            loopback: !is_root(),
            ready_timeout_secs: 180,
        }
    }
}

impl StackConfig {
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = home.into();
        self
    }
    pub fn cache(mut self, cache: impl Into<PathBuf>) -> Self {
        self.cache = cache.into();
        self
    }
    pub fn loopback(mut self, loopback: bool) -> Self {
        self.loopback = loopback;
        self
    }
    pub fn postgres_port(mut self, port: u16) -> Self {
        self.postgres_port = port;
        self
    }
    pub fn mariadb_port(mut self, port: u16) -> Self {
        self.mariadb_port = port;
        self
    }
    pub fn connect_port(mut self, port: u16) -> Self {
        self.connect_port = port;
        self
    }
    pub fn ready_timeout_secs(mut self, secs: u64) -> Self {
        self.ready_timeout_secs = secs;
        self
    }
}
