//! The `cdc-chaos` command line: every subcommand and option, parsed by clap. `main.rs` carries
//! the commands out; the definition lives in the library so that tests parse the commands the
//! documentation shows (`harness/tests/docs.rs`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cdc-chaos", version, about = "Proves (or disproves) exactly-once delivery of a CDC pipeline under faults")]
pub struct Cli {
    /// Run directory of the stack: data, configs, logs, state [default: $CDC_CHAOS_HOME, else /var/lib/cdc-chaos as root]
    #[arg(long, global = true, env = "CDC_CHAOS_HOME")]
    pub home: Option<PathBuf>,
    /// Cache of resolved jars [default: $CDC_CHAOS_CACHE, else ~/.cache/cdc-chaos]
    #[arg(long, global = true, env = "CDC_CHAOS_CACHE")]
    pub cache: Option<PathBuf>,
    /// Run the Kafka nodes on 127.0.0.1 instead of network namespaces (no partition faults)
    #[arg(long, global = true)]
    pub loopback: bool,
    /// Where the stack runs: `local` (processes of this machine) or `kind` (the Kubernetes cluster of the kubeconfig, reached through port forwards)
    #[arg(long, global = true, value_enum, default_value = "local")]
    pub platform: Platform,
    /// With --platform kind: the kustomize overlay `up` (and a run whose stack is not up) applies and `down` deletes
    #[arg(long, global = true, default_value = crate::platform::kind::KIND_OVERLAY)]
    pub overlay: PathBuf,
    /// With --platform kind: first create the kind cluster of manifests/kind-cluster.yaml, building every image it runs (starts a Docker engine if none answers)
    #[arg(long, global = true)]
    pub create_cluster: bool,
    /// With --platform kind down: delete the kind cluster, and stop the Docker engine if the harness started it
    #[arg(long, global = true)]
    pub delete_cluster: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    Local,
    Kind,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start the stack (provisioning what is missing) and return when it is healthy
    Up {
        /// Configuration profile: `durable`, `weak`, or a path to a profile file
        #[arg(long, default_value = "durable")]
        profile: String,
        /// Seconds to wait for each component to become ready
        #[arg(long, default_value_t = 180)]
        timeout: u64,
        /// Write the lake to this S3 endpoint (MinIO, AWS S3, ...) instead of starting SeaweedFS
        #[arg(long, requires_all = ["lake_access_key", "lake_secret_key"])]
        lake_endpoint: Option<String>,
        /// Bucket of the lake
        #[arg(long, default_value = "cdc-chaos-lake")]
        lake_bucket: String,
        /// Access key for --lake-endpoint
        #[arg(long, env = "CDC_LAKE_ACCESS_KEY")]
        lake_access_key: Option<String>,
        /// Secret key for --lake-endpoint
        #[arg(long, env = "CDC_LAKE_SECRET_KEY", hide_env_values = true)]
        lake_secret_key: Option<String>,
    },
    /// Stop every component and remove the network namespaces and iptables rules
    Down {
        /// Also delete the data (databases, Kafka logs)
        #[arg(long)]
        purge: bool,
    },
    /// List every component: name, pid, address, health
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run a pipeline process (the join or the warehouse sink); `up` starts them
    #[command(hide = true)]
    Pipeline {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a scenario end to end: stack up if needed, load, quiesce, check; writes reports/<run-id>/
    Run {
        /// Scenario file (TOML), e.g. scenarios/smoke.toml
        scenario: PathBuf,
        /// Directory receiving the run directory
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Override the scenario's seed
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run a recorded run's resolved scenario again: same seed, same load, same fault schedule
    Replay {
        /// A run directory, e.g. reports/leader-kill-20261125T120000Z
        run_dir: PathBuf,
        /// Directory receiving the new run directory
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Capacity planning: run a scenario at rising offered rates until a latency objective is missed
    Sweep {
        /// Scenario file (TOML) whose load (and faults, if any) each step runs
        scenario: PathBuf,
        /// First offered rate, row changes/s
        #[arg(long, default_value_t = 40.0)]
        start: f64,
        /// Multiply the rate by this at each step [default: 2 unless --step is given]
        #[arg(long)]
        factor: Option<f64>,
        /// Add this to the rate at each step instead of multiplying
        #[arg(long)]
        step: Option<f64>,
        /// Highest offered rate
        #[arg(long, default_value_t = 640.0)]
        max: f64,
        /// Latency objective: p99 from intended time to --hop, milliseconds
        #[arg(long, default_value_t = 5000.0)]
        p99_ms: f64,
        /// The hop the objective bounds: source, raw, changes, warehouse, lake
        #[arg(long, default_value = "warehouse")]
        hop: String,
        /// Measured load per step [default: the scenario's duration]
        #[arg(long, value_parser = parse_dur)]
        duration: Option<crate::scenario::Dur>,
        /// Go on past the first rate that misses the objective
        #[arg(long)]
        keep_going: bool,
        /// Directory receiving the sweep directory
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Re-check a recorded run directory without the stack (rewrites its result.json)
    Check {
        /// A run directory, e.g. reports/smoke-20261125T120000Z
        run_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Render report.html, summary.md and junit.xml of a recorded run directory again, from its files (sweep.html of a sweep directory)
    Report {
        /// A run directory, e.g. reports/smoke-20261125T120000Z
        run_dir: PathBuf,
    },
    /// Show two recorded runs side by side: a table on stdout and an HTML page
    Compare {
        /// The first run directory (A)
        run_a: PathBuf,
        /// The second run directory (B)
        run_b: PathBuf,
        /// Where to write the HTML page [default: <RUN_B>/compare-<run A's id>.html]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Kubernetes manifests (manifests/): render the profile-derived ConfigMaps
    Manifests {
        #[command(subcommand)]
        command: ManifestsCommand,
    },
    /// Compare the live cluster's and clients' settings with the profile, row by row
    Audit {
        /// Profile to compare against [default: the one the stack was started with]
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ManifestsCommand {
    /// Write the ConfigMaps rendered from a profile (Kafka, topics, Connect, pipeline clients,
    /// source schemas) and their kustomization.yaml; `durable`'s are committed in manifests/base/generated
    Render {
        /// Configuration profile: `durable`, `weak`, or a path to a profile file
        #[arg(long, default_value = "durable")]
        profile: String,
        /// Output directory
        #[arg(long, default_value = crate::platform::kind::manifests::COMMITTED_DIR)]
        out: PathBuf,
        /// Write nothing: list the files that differ from the rendering, exit 1 if any does
        #[arg(long)]
        check: bool,
    },
}

fn parse_dur(s: &str) -> Result<crate::scenario::Dur, String> {
    crate::scenario::Dur::parse(s)
}
