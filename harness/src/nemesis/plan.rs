//! What a fault does, decided once for both platforms before either carries it out: which
//! components a process fault hits, which Kafka node a target names, and which traffic a
//! partition drops. Pure: Kafka's roles and the seeded random choices come from a [`Roles`], so
//! the same fault with the same answers gives the same [`Plan`] on the local platform and on kind;
//! each platform's executor (`platform::local::faults`, `platform::kind::faults`) only turns a
//! plan into signals, pod deletions, iptables rules or Kubernetes objects.

use rand::rngs::StdRng;
use rand::Rng;

use crate::platform::Client;
use crate::scenario::{FaultKind, FaultSpec, Target};
use crate::{Error, Result};

/// Resolves a node-like target to a Kafka node (1-based id), with how it was resolved (for the
/// fault timeline; empty when the target named the node itself).
pub trait Roles {
    fn node(&mut self, target: &Target) -> Result<(u16, String)>;
}

/// Resolves the targets that need no Kafka metadata: `kafka-<n>` among `nodes`, and
/// `random-broker` drawn from the seeded generator. A Kafka role is an error naming it: a
/// platform resolves roles itself and hands the rest here.
pub struct SeededRoles {
    pub nodes: Vec<u16>,
    pub rng: StdRng,
}

impl Roles for SeededRoles {
    fn node(&mut self, target: &Target) -> Result<(u16, String)> {
        match target {
            Target::Node(n) if self.nodes.contains(n) => Ok((*n, String::new())),
            Target::Node(n) => Err(Error::Fault(format!("there is no kafka-{n}: the stack has {} nodes", self.nodes.len()))),
            Target::RandomBroker if !self.nodes.is_empty() => {
                let n = self.nodes[self.rng.random_range(0..self.nodes.len())];
                Ok((n, format!("random node {n}")))
            }
            Target::RandomBroker => Err(Error::Fault("random-broker: the stack has no Kafka node".into())),
            other => Err(Error::Fault(format!("target {other}: a Kafka role is resolved from the cluster's metadata, not drawn"))),
        }
    }
}

/// The components the target `pipeline` stands for.
pub const PIPELINE: [&str; 3] = ["join", "warehouse-sink", "lake-sink"];

/// The component name of Kafka node `n`.
pub fn kafka(n: u16) -> String {
    format!("kafka-{n}")
}

/// Which traffic a partition drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// `node` drops every packet from and to its `peers` (the other Kafka nodes) and, with
    /// `clients`, from and to every client as well (`isolate`; `split` without).
    Node { node: u16, peers: Vec<u16>, clients: bool },
    /// `to` drops what `from` sends it (`one-way`).
    OneWay { from: u16, to: u16 },
    /// Every node drops its clients (`cut-clients`): all of them (`None`), or only what reaches
    /// one client's own listener.
    Clients { nodes: Vec<u16>, client: Option<Client> },
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Its kind's signal to each of these components at once (`kafka-<n>`, `connect`, `join`, …).
    Processes(Vec<String>),
    /// A partition.
    Partition(Cut),
}

/// A fault, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub kind: FaultKind,
    pub action: Action,
    /// How its targets were resolved, one part per target (empty parts left out).
    pub resolved: Vec<String>,
}

impl Plan {
    /// The resolution and `what` the platform made of it, `; `-separated.
    pub fn detail(&self, what: &str) -> String {
        self.resolved.iter().map(String::as_str).chain([what]).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ")
    }
}

/// Plans `spec` on a stack of Kafka `nodes`.
pub fn plan(spec: &FaultSpec, nodes: &[u16], roles: &mut dyn Roles) -> Result<Plan> {
    let mut resolved = Vec::new();
    let action = match spec.kind {
        FaultKind::Kill | FaultKind::Pause | FaultKind::Restart => Action::Processes(processes(&spec.target, nodes, roles, &mut resolved)?),
        FaultKind::Isolate | FaultKind::Split => {
            let (node, detail) = roles.node(&spec.target)?;
            resolved.push(detail);
            Action::Partition(Cut::Node { node, peers: nodes.iter().copied().filter(|p| *p != node).collect(), clients: spec.kind == FaultKind::Isolate })
        }
        FaultKind::OneWay => {
            let to = spec.to.as_ref().ok_or_else(|| Error::Fault("one-way needs `to`".into()))?;
            let (a, da) = roles.node(&spec.target)?;
            let (b, db) = roles.node(to)?;
            if a == b {
                return Err(Error::Fault(format!("one-way: {} and {to} are both node {a}", spec.target)));
            }
            resolved.extend([da, db]);
            Action::Partition(Cut::OneWay { from: a, to: b })
        }
        FaultKind::CutClients => {
            let client = match &spec.target {
                Target::Cluster => None,
                Target::Component(c) if c == "connect" => Some(Client::Connect),
                Target::Component(c) if c == "pipeline" => Some(Client::Pipeline),
                other => return Err(Error::Fault(format!("cut-clients cuts cluster, connect or pipeline, not {other}"))),
            };
            Action::Partition(Cut::Clients { nodes: nodes.to_vec(), client })
        }
    };
    resolved.retain(|d| !d.is_empty());
    Ok(Plan { kind: spec.kind, action, resolved })
}

/// The components a process fault hits.
fn processes(target: &Target, nodes: &[u16], roles: &mut dyn Roles, resolved: &mut Vec<String>) -> Result<Vec<String>> {
    Ok(match target {
        Target::TwoBrokers => {
            if nodes.len() < 2 {
                return Err(Error::Fault(format!("two-brokers: the stack has {} Kafka node(s)", nodes.len())));
            }
            // Two distinct nodes: the second drawn among the others.
            let (a, _) = roles.node(&Target::RandomBroker)?;
            let others: Vec<u16> = nodes.iter().copied().filter(|n| *n != a).collect();
            let (pick, _) = roles.node(&Target::RandomBroker)?;
            let b = others[usize::from(pick) % others.len()];
            resolved.push(format!("random nodes {a} and {b}"));
            vec![kafka(a), kafka(b)]
        }
        Target::Component(c) if c == "pipeline" => {
            resolved.push("the join and both sinks".into());
            PIPELINE.iter().map(|c| c.to_string()).collect()
        }
        Target::Component(c) => vec![c.clone()],
        Target::Cluster => return Err(Error::Fault("a process fault needs a process, not the whole cluster".into())),
        node => {
            let (n, detail) = roles.node(node)?;
            resolved.push(detail);
            vec![kafka(n)]
        }
    })
}

impl Cut {
    /// The Kafka nodes the partition hits (for the record).
    pub fn nodes_hit(&self) -> Vec<u16> {
        match self {
            Cut::Node { node, .. } => vec![*node],
            Cut::OneWay { from, to } => vec![*from, *to],
            Cut::Clients { nodes, .. } => nodes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn spec(kind: FaultKind, target: &str, to: Option<&str>) -> FaultSpec {
        FaultSpec { at: Dur::secs(1), kind, target: Target::parse(target).unwrap(), for_: Dur::secs(5), to: to.map(|t| Target::parse(t).unwrap()), after_heals: false }
    }

    /// Node 2 leads everything; the rest is seeded.
    struct LeaderIsTwo(SeededRoles);

    impl Roles for LeaderIsTwo {
        fn node(&mut self, target: &Target) -> Result<(u16, String)> {
            if target.is_role() {
                return Ok((2, format!("{target} is node 2")));
            }
            self.0.node(target)
        }
    }

    fn roles(seed: u64) -> LeaderIsTwo {
        LeaderIsTwo(SeededRoles { nodes: vec![1, 2, 3], rng: StdRng::seed_from_u64(seed) })
    }

    #[test]
    fn partitions_name_what_each_node_drops() {
        let p = plan(&spec(FaultKind::Isolate, "leader:crm.public.customers/0", None), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!(p.action, Action::Partition(Cut::Node { node: 2, peers: vec![1, 3], clients: true }));
        assert_eq!(p.detail("kafka-2 cut"), "leader:crm.public.customers/0 is node 2; kafka-2 cut");
        let p = plan(&spec(FaultKind::Split, "kafka-3", None), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!(p.action, Action::Partition(Cut::Node { node: 3, peers: vec![1, 2], clients: false }));
        assert_eq!(p.detail(""), "", "kafka-3 needs no resolving");
        let p = plan(&spec(FaultKind::OneWay, "kafka-1", Some("controller")), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!(p.action, Action::Partition(Cut::OneWay { from: 1, to: 2 }));
        let p = plan(&spec(FaultKind::CutClients, "connect", None), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!(p.action, Action::Partition(Cut::Clients { nodes: vec![1, 2, 3], client: Some(Client::Connect) }));
        let p = plan(&spec(FaultKind::CutClients, "cluster", None), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!(p.action, Action::Partition(Cut::Clients { nodes: vec![1, 2, 3], client: None }));
    }

    #[test]
    fn process_faults_name_their_components() {
        let p = plan(&spec(FaultKind::Kill, "pipeline", None), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!(p.action, Action::Processes(vec!["join".into(), "warehouse-sink".into(), "lake-sink".into()]));
        let p = plan(&spec(FaultKind::Pause, "controller", None), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!((p.action, p.resolved), (Action::Processes(vec!["kafka-2".into()]), vec!["controller is node 2".to_string()]));
        let p = plan(&spec(FaultKind::Restart, "connect", None), &[1, 2, 3], &mut roles(1)).unwrap();
        assert_eq!(p.action, Action::Processes(vec!["connect".into()]));
    }

    #[test]
    fn impossible_faults_are_errors_naming_why() {
        let err = |s: FaultSpec| plan(&s, &[1, 2, 3], &mut roles(1)).unwrap_err().to_string();
        assert!(err(spec(FaultKind::Kill, "kafka-4", None)).contains("there is no kafka-4: the stack has 3 nodes"));
        assert!(err(spec(FaultKind::OneWay, "kafka-2", Some("controller"))).contains("both node 2"));
        assert!(err(spec(FaultKind::CutClients, "kafka-1", None)).contains("cut-clients cuts cluster, connect or pipeline"));
        assert!(err(spec(FaultKind::Kill, "cluster", None)).contains("not the whole cluster"));
        let mut seeded = SeededRoles { nodes: vec![1, 2, 3], rng: StdRng::seed_from_u64(1) };
        assert!(plan(&spec(FaultKind::Kill, "controller", None), &[1, 2, 3], &mut seeded).unwrap_err().to_string().contains("resolved from the cluster's metadata"));
    }

    proptest! {
        #[test]
        fn two_brokers_are_two_distinct_nodes_and_the_seed_decides_them(seed in any::<u64>(), n in 2u16..6) {
            let nodes: Vec<u16> = (1..=n).collect();
            let planned = |seed| plan(&spec(FaultKind::Kill, "two-brokers", None), &nodes, &mut SeededRoles { nodes: nodes.clone(), rng: StdRng::seed_from_u64(seed) }).unwrap();
            let p = planned(seed);
            let Action::Processes(c) = &p.action else { panic!("{p:?}") };
            prop_assert_eq!(c.len(), 2);
            prop_assert_ne!(&c[0], &c[1]);
            prop_assert!(c.iter().all(|x| nodes.iter().any(|n| kafka(*n) == *x)));
            prop_assert_eq!(planned(seed), p, "the same seed, the same nodes");
        }

        #[test]
        fn a_node_cut_drops_every_peer_and_only_peers(node in 1u16..6, n in 1u16..6, isolate in any::<bool>()) {
            prop_assume!(node <= n);
            let nodes: Vec<u16> = (1..=n).collect();
            let kind = if isolate { FaultKind::Isolate } else { FaultKind::Split };
            let p = plan(&spec(kind, &format!("kafka-{node}"), None), &nodes, &mut SeededRoles { nodes: nodes.clone(), rng: StdRng::seed_from_u64(0) }).unwrap();
            let Action::Partition(Cut::Node { node: hit, peers, clients }) = p.action else { panic!() };
            prop_assert_eq!(hit, node);
            prop_assert_eq!(clients, isolate);
            prop_assert_eq!(peers.len(), nodes.len() - 1);
            prop_assert!(!peers.contains(&node) && peers.iter().all(|x| nodes.contains(x)));
        }
    }
}
