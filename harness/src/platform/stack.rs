//! [`Stack`]: what a run needs of a deployed stack, whatever its platform — where the harness's
//! own clients reach each component ([`Endpoints`]), every component's health, bringing it up,
//! its faults and its logs. `local` ([`LocalStack`](crate::platform::local::LocalStack)) and
//! `kind` ([`KindStack`](crate::platform::kind::stack::KindStack)) implement it; the run, the
//! capture of every hop and quiescence use nothing else.

use std::path::Path;

use cdc_pipeline::lake::LakeConfig;

use crate::load::Targets;
use crate::nemesis::Injector;
use crate::platform::local::ComponentStatus;
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
    /// Health of every component: `healthy`, `down`, or another state naming why not.
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

/// Which platform a command's stack runs on.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Deployment {
    /// This machine (`--platform local`, the default).
    #[default]
    Local,
    /// The kubeconfig's cluster (`--platform kind`).
    Kind(crate::platform::kind::stack::KindOptions),
}

/// The stack of `deployment`: the local one of `cfg`, or a connection to the cluster (its port
/// forwards open while the returned stack lives).
pub fn open(cfg: &crate::StackConfig, deployment: &Deployment) -> Result<Box<dyn Stack>> {
    Ok(match deployment {
        Deployment::Local => Box::new(crate::platform::local::LocalStack::new(cfg.clone())),
        Deployment::Kind(opts) => Box::new(crate::platform::kind::stack::KindStack::connect(cfg, opts.clone())?),
    })
}
