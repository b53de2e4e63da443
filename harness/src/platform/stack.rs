//! [`Stack`]: what a run needs of a deployed stack, whatever its platform — where the harness's
//! own clients reach each component ([`Endpoints`]), every component's health, bringing it up,
//! its faults and its logs, and the types both platforms report in ([`ComponentStatus`],
//! [`Health`]). `local` ([`LocalStack`](crate::platform::local::LocalStack)) and `kind`
//! ([`KindStack`](crate::platform::kind::stack::KindStack)) implement it; the run, the capture of
//! every hop and quiescence use nothing else. [`deployment`](crate::platform::deployment) picks one.

use std::path::Path;

use rand::rngs::StdRng;

use cdc_pipeline::lake::LakeConfig;

use crate::faults::Proof;
use crate::platform::Topology;
use crate::profile::Profile;
use crate::scenario::FaultSpec;
use crate::Result;

/// Where the harness's own clients (load generator, capture, final state, roles, supervisor)
/// reach the stack, with their credentials.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The stack as the harness reaches it: Kafka's bootstrap list (`topo.bootstrap()`), the
    /// Connect REST address (`topo.connect`).
    pub topo: Topology,
    /// The source databases: `crm` (tokio-postgres / postgres connection string, a role that
    /// reads and writes its tables) and `fleet` (mysql URL).
    pub sources: Targets,
    /// postgres connection string of the warehouse database.
    pub warehouse: String,
    /// The lake's S3 endpoint, bucket and keys.
    pub lake: LakeConfig,
}

/// A deployed stack a run drives.
pub trait Stack: Send + Sync {
    /// `local` or `kind` (recorded in `run.json`).
    fn platform(&self) -> &'static str;
    /// Where the harness reaches every component now.
    fn endpoints(&self) -> Result<Endpoints>;
    /// Health of every component.
    fn status(&self) -> Result<Vec<ComponentStatus>>;
    /// Brings the stack up with `profile` unless it already runs healthy with it.
    fn ensure(&self, profile: &Profile) -> Result<()>;
    /// Heals every fault a previous run left in force; returns what was healed.
    fn heal_leftovers(&self) -> Result<Vec<String>>;
    /// What applies `schedule`'s faults to this stack; an error if one cannot run here.
    fn injector(&self, schedule: &[FaultSpec]) -> Result<Box<dyn Injector>>;
    /// Copies every component's log into `dir`.
    fn copy_logs(&self, dir: &Path);
}

/// What a fault did once applied: the components it hit, how its target was resolved, and the
/// evidence that it took effect.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub components: Vec<String>,
    pub detail: String,
    pub evidence: Vec<Proof>,
}

/// What healing a fault did: the components it hit, errors while healing, and the evidence of how
/// long it held and that it ended.
#[derive(Debug, Clone, Default)]
pub struct Healed {
    pub components: Vec<String>,
    pub errors: Vec<String>,
    pub evidence: Vec<Proof>,
}

/// Carries out faults on one stack, when the nemesis's timeline says: the local stack (signals,
/// iptables in the Kafka nodes' namespaces) or a cluster (the Kubernetes API). Each journals what
/// is in force before applying it, so that another process can heal it.
pub trait Injector: Send + Sync {
    /// Applies `f` as fault `id` now: the components it hit, how its target was resolved and the
    /// evidence that it took effect.
    fn apply(&self, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<Applied>;
    /// Heals fault `id` if it is in force: the components it hit, the errors of healing and the
    /// evidence of its end.
    fn heal(&self, id: usize) -> Option<Healed>;
    /// Ids of the faults in force, oldest first.
    fn in_force(&self) -> Vec<usize>;
}

/// Where the load goes: the source databases, as the harness reaches them.
#[derive(Debug, Clone)]
pub struct Targets {
    /// tokio-postgres connection string of `crm`.
    pub postgres: String,
    /// mysql_async URL of `fleet`.
    pub mariadb: String,
}

/// Health of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Running and serving.
    Healthy,
    /// The process (or a pod) runs, but its port does not answer (or no pod is ready).
    Unreachable,
    /// Serving, but not doing its work: a connector not running, a pipeline process without a
    /// session.
    Degraded,
    /// Not running.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unreachable => "unreachable",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Health of one component, as `status` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentStatus {
    pub name: String,
    /// The process (0 on kind: a component is its pods).
    pub pid: u32,
    pub address: String,
    pub netns: Option<String>,
    pub health: Health,
    pub rss_kib: Option<u64>,
    /// Why not healthy, or what the component reports (e.g. the connectors' states, the pods).
    pub detail: String,
    pub log: String,
}

/// Whether there is a stack and every component of it is healthy.
pub fn all_healthy(rows: &[ComponentStatus]) -> bool {
    !rows.is_empty() && rows.iter().all(|r| r.health == Health::Healthy)
}

/// `name health` of every component that is not healthy.
pub fn unhealthy(rows: &[ComponentStatus]) -> Vec<String> {
    rows.iter().filter(|r| r.health != Health::Healthy).map(|r| format!("{} {}", r.name, r.health)).collect()
}

/// The `status` table: one line per component.
pub fn status_table(rows: &[ComponentStatus]) -> String {
    if rows.is_empty() {
        return "no stack is running (start one with `cdc-chaos up`)\n".into();
    }
    let mut out = format!("{:<14} {:>8} {:<22} {:<12} {:>9}  {}\n", "COMPONENT", "PID", "ADDRESS", "HEALTH", "RSS MiB", "DETAIL");
    for r in rows {
        out.push_str(&format!(
            "{:<14} {:>8} {:<22} {:<12} {:>9}  {}\n",
            r.name,
            r.pid,
            r.address,
            r.health,
            r.rss_kib.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into()),
            r.detail
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_shows_every_component() {
        let rows = vec![ComponentStatus {
            name: "kafka-1".into(),
            pid: 7,
            address: "10.231.0.11:9092".into(),
            netns: Some("cdcc-kafka-1".into()),
            health: Health::Healthy,
            rss_kib: Some(2048),
            detail: String::new(),
            log: "/x".into(),
        }];
        let t = status_table(&rows);
        assert!(t.contains("kafka-1") && t.contains("10.231.0.11:9092") && t.contains("healthy") && t.contains(" 2 "), "{t}");
        assert!(status_table(&[]).contains("no stack is running"));
    }
}
