//! Faults on a cluster through the Kubernetes API (`--platform kind`), with a journal so that
//! every fault can be healed from another process.
//!
//! Owns applying and healing one fault: `kill` SIGKILLs the pods' processes by exec (`kill -KILL
//! -1`, as `pause` stops them: a pod delete alone is a clean shutdown, since the kubelet gives
//! every container at least 2 s of grace after a SIGTERM), deletes the pods with a grace period
//! of 0 and keeps them down for the fault's `for`, as a SIGKILLed process stays down on the local
//! platform — a StatefulSet's pod by tainting its node `NoSchedule` first (its volume binds it
//! to that node, so the replacement stays Pending until the heal removes the taint), a
//! Deployment's pods by scaling it to 0 right after (scaling first would stop them gracefully;
//! the heal scales it back); `restart` deletes them
//! with their own grace period and lets their controller start new ones at once,
//! `pause` runs `kill -STOP -1` in the container (every process the shell may signal but the
//! namespace's init; `kill -CONT -1` heals it) — only in pods that share their process namespace
//! (`shareProcessNamespace`, as the Kafka StatefulSet does), because the kernel ignores SIGSTOP
//! sent to a PID namespace's init from inside it, and a container's server is its init
//! otherwise — and partitions are
//! NetworkPolicy objects — or, when Chaos Mesh is installed (its `chaos-mesh.org` API group is
//! discovered, never assumed), `NetworkChaos` objects, and `PodChaos` for `kill`. Every object a
//! fault creates carries the label [`FAULT_LABEL`]`=<fault id>`.
//!
//! Heal guarantee: a fault is journaled before it is applied and removed once healed; healing
//! deletes the objects by label selector (so even a fault a crash kept out of the journal is
//! healed by [`KindFaults::heal_all`]), sends `kill -CONT -1` into the journaled paused pods,
//! removes the [`FAULT_LABEL`] taint from every node and scales back every Deployment annotated
//! [`REPLICAS_ANNOTATION`].
//!
//! Partitions are iptables rules in the Kafka pods instead ([`Mechanism::Iptables`]) when their
//! StatefulSet carries the [`NETFAULT_CONTAINER`] with `NET_ADMIN`, as the manifests' does: the
//! local platform's DROP rules, independent of the network plugin; every rule is commented
//! `cdc-chaos:fault:<id>`, journaled with its pod, and swept by that comment.
//!
//! Role targets resolve to a node id through [`Roles`]; Kafka node `N` is the pod `kafka-<N-1>`
//! of the StatefulSet in [`NS_INGESTION`].

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, AttachParams, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersion};
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::{json, Value};

use super::cluster::{api_error, is_not_found, KindCluster, COMPONENT};
use super::manifests::{KAFKA_CONNECT_PORT, KAFKA_NODES, KAFKA_PIPELINE_PORT, KAFKA_SERVICE};
use super::{NAMESPACES, NS_INGESTION, NS_LAKE, NS_PROCESSING, NS_SOURCES, NS_WAREHOUSE};
use crate::error::{Error, Result};
use crate::faults::Proof;
use crate::nemesis::journal::Journal;
use crate::nemesis::plan::{plan, Action, Cut, Plan, PIPELINE};
use crate::platform::Client as KafkaClient;
use crate::scenario::{FaultKind, FaultSpec};

/// The label of every object a fault creates; its value is the fault's id.
pub const FAULT_LABEL: &str = "cdc-chaos/fault";
/// The annotation of a Deployment a kill scaled to 0: its replicas before.
pub const REPLICAS_ANNOTATION: &str = "cdc-chaos/fault-replicas";
/// The label that names a component's pods.
const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label the StatefulSet controller gives each of its pods.
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The pipeline's components.
/// Chaos Mesh's API group and version.
const CHAOS_MESH: &str = "chaos-mesh.org";
const CHAOS_MESH_VERSION: &str = "v1alpha1";

/// The pod of Kafka node `id` (1-based): `kafka-<id - 1>`.
pub fn kafka_pod(id: u16) -> String {
    format!("{KAFKA_SERVICE}-{}", id - 1)
}

pub use crate::nemesis::plan::{Roles, SeededRoles};

/// The Kafka nodes of the cluster, as node ids.
pub fn kafka_nodes() -> Vec<u16> {
    (1..=KAFKA_NODES).collect()
}

/// The container of each Kafka pod that runs `iptables` with `NET_ADMIN` (the pod's network
/// namespace is shared by its containers).
pub const NETFAULT_CONTAINER: &str = "netfault";
/// The comment of every iptables rule a fault adds: `cdc-chaos:fault:<id>`.
pub const RULE_TAG: &str = "cdc-chaos:fault";

/// How partitions and kills are made on this cluster.
#[derive(Debug, Clone)]
pub enum Mechanism {
    /// NetworkPolicy objects and pod deletion (any cluster whose network plugin enforces
    /// NetworkPolicy).
    Native,
    /// iptables DROP rules inside the Kafka pods (their [`NETFAULT_CONTAINER`]), as the local
    /// platform drops inside the nodes' namespaces; pod deletion for kills. Works whatever the
    /// network plugin.
    Iptables,
    /// Chaos Mesh's `PodChaos` and `NetworkChaos`.
    ChaosMesh { pod_chaos: Box<ApiResource>, network_chaos: Box<ApiResource> },
}

/// Discovers whether Chaos Mesh serves `PodChaos` and `NetworkChaos` on this cluster.
pub async fn detect(client: &Client) -> Result<Mechanism> {
    let gv = GroupVersion::gv(CHAOS_MESH, CHAOS_MESH_VERSION);
    match kube::discovery::pinned_group(client, &gv).await {
        Ok(group) => {
            let find = |kind: &str| group.recommended_kind(kind).map(|(ar, _)| ar);
            match (find("PodChaos"), find("NetworkChaos")) {
                (Some(pod_chaos), Some(network_chaos)) => Ok(Mechanism::ChaosMesh { pod_chaos: Box::new(pod_chaos), network_chaos: Box::new(network_chaos) }),
                _ => Err(Error::component(
                    COMPONENT,
                    format!("{CHAOS_MESH}/{CHAOS_MESH_VERSION} is served without PodChaos and NetworkChaos: a partial Chaos Mesh install"),
                )),
            }
        }
        Err(e) if is_not_found(&e) => {
            // Without Chaos Mesh: iptables where the Kafka pods carry the netfault container.
            let sets: Api<StatefulSet> = Api::namespaced(client.clone(), NS_INGESTION);
            let set = sets.get_opt(KAFKA_SERVICE).await.map_err(|e| api_error(format!("reading StatefulSet {NS_INGESTION}/{KAFKA_SERVICE}"), e))?;
            Ok(if set.as_ref().is_some_and(has_netfault) { Mechanism::Iptables } else { Mechanism::Native })
        }
        Err(e) => Err(api_error(format!("discovering {CHAOS_MESH}/{CHAOS_MESH_VERSION} (Chaos Mesh)"), e)),
    }
}

/// Whether the StatefulSet's pods carry the [`NETFAULT_CONTAINER`] with `NET_ADMIN`.
pub fn has_netfault(set: &StatefulSet) -> bool {
    let containers = set.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|p| p.containers.as_slice()).unwrap_or_default();
    containers.iter().any(|c| {
        c.name == NETFAULT_CONTAINER
            && c.security_context
                .as_ref()
                .and_then(|s| s.capabilities.as_ref())
                .and_then(|c| c.add.as_ref())
                .is_some_and(|add| add.iter().any(|a| a == "NET_ADMIN"))
    })
}

/// One iptables rule in one Kafka pod: the pod's name and the arguments after `-A`/`-D`.
pub type PodRule = (String, Vec<String>);

fn rule(id: usize, args: &[&str]) -> Vec<String> {
    let tag = format!("{RULE_TAG}:{id}");
    args.iter().map(|s| s.to_string()).chain(["-m", "comment", "--comment", tag.as_str(), "-j", "DROP"].map(String::from)).collect()
}

/// The iptables rules of a planned partition, given each Kafka node's pod IP, with the pods it
/// hits and its detail: the local platform's rules, in the pods. `isolate` drops everything but
/// the pod's loopback (which port forwards use), `split` the other Kafka pods, `one-way a→b` what
/// b receives from a, `cut-clients` the client's own listener port (9094 Connect, 9095 the
/// pipeline) in every Kafka pod.
pub fn iptables_rules(id: usize, plan: &Plan, ips: &std::collections::BTreeMap<u16, String>) -> Result<(Vec<PodRule>, Vec<String>, String)> {
    let ip = |n: u16| ips.get(&n).cloned().ok_or_else(|| Error::component(COMPONENT, format!("pod {NS_INGESTION}/{} has no IP (not running?)", kafka_pod(n))));
    let mut rules = Vec::new();
    match partition(plan)? {
        Cut::Node { node, peers, clients } => {
            let pod = kafka_pod(*node);
            let what = if *clients {
                rules.push((pod.clone(), rule(id, &["INPUT", "!", "-i", "lo"])));
                rules.push((pod.clone(), rule(id, &["OUTPUT", "!", "-o", "lo"])));
                "everything but its loopback".to_string()
            } else {
                let mut cut = Vec::new();
                for p in peers {
                    let a = ip(*p)?;
                    rules.push((pod.clone(), rule(id, &["INPUT", "-s", &a])));
                    rules.push((pod.clone(), rule(id, &["OUTPUT", "-d", &a])));
                    cut.push(format!("{} ({a})", kafka_pod(*p)));
                }
                cut.join(", ")
            };
            Ok((rules, vec![format!("{NS_INGESTION}/{pod}")], plan.detail(&format!("{pod} cut from {what}"))))
        }
        Cut::OneWay { from, to } => {
            rules.push((kafka_pod(*to), rule(id, &["INPUT", "-s", &ip(*from)?])));
            let pods = vec![format!("{NS_INGESTION}/{}", kafka_pod(*from)), format!("{NS_INGESTION}/{}", kafka_pod(*to))];
            Ok((rules, pods, plan.detail(&format!("{} → {} dropped", kafka_pod(*from), kafka_pod(*to)))))
        }
        Cut::Clients { nodes, client } => {
            let ports: Vec<u16> = match client {
                None => vec![KAFKA_CONNECT_PORT, KAFKA_PIPELINE_PORT],
                Some(KafkaClient::Connect) => vec![KAFKA_CONNECT_PORT],
                Some(_) => vec![KAFKA_PIPELINE_PORT],
            };
            let mut pods = Vec::new();
            for n in nodes {
                for port in &ports {
                    let port = port.to_string();
                    rules.push((kafka_pod(*n), rule(id, &["INPUT", "-p", "tcp", "--dport", &port])));
                    rules.push((kafka_pod(*n), rule(id, &["OUTPUT", "-p", "tcp", "--sport", &port])));
                }
                pods.push(format!("{NS_INGESTION}/{}", kafka_pod(*n)));
            }
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            Ok((rules, pods, plan.detail(&format!("{} cut from every Kafka node (listener port {})", clients_name(client), ports.join(", ")))))
        }
    }
}

/// The cut of a planned partition; an error for a process fault.
fn partition(plan: &Plan) -> Result<&Cut> {
    match &plan.action {
        Action::Partition(cut) => Ok(cut),
        Action::Processes(_) => Err(Error::Fault(format!("{} is not a partition", plan.kind.as_str()))),
    }
}

/// How a `cut-clients` target reads: `cluster`, `connect`, `pipeline`.
fn clients_name(client: &Option<KafkaClient>) -> &'static str {
    match client {
        None => "cluster",
        Some(KafkaClient::Connect) => "connect",
        Some(_) => "pipeline",
    }
}

/// A connection a partition must block while in force and let through once healed: from the
/// netfault container of `pod` to `ip:port`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    pub pod: String,
    pub ip: String,
    pub port: u16,
}

/// The probes that show `rules` in force, read from the rules themselves: an isolated pod
/// reaches no peer's broker port, a split pod not the peers it is cut from, a one-way cut
/// blocks the source pod's connections to the cut pod, a client cut blocks each pod's own
/// listener port.
pub fn iptables_probes(rules: &[PodRule], ips: &std::collections::BTreeMap<u16, String>) -> Vec<Probe> {
    let pod_of_ip = |ip: &str| ips.iter().find(|(_, a)| a.as_str() == ip).map(|(n, _)| kafka_pod(*n));
    let ip_of_pod = |pod: &str| ips.iter().find(|(n, _)| kafka_pod(**n) == pod).map(|(_, a)| a.clone());
    let mut probes = Vec::new();
    let mut push = |p: Probe| {
        if !probes.contains(&p) {
            probes.push(p);
        }
    };
    for (pod, r) in rules {
        let args: Vec<&str> = r.iter().map(String::as_str).collect();
        let after = |flag: &str| args.iter().position(|a| *a == flag).and_then(|i| args.get(i + 1)).copied();
        match (args.first().copied(), args.get(1).copied()) {
            (Some("OUTPUT"), Some("!")) => {
                for (n, ip) in ips {
                    if kafka_pod(*n) != *pod {
                        push(Probe { pod: pod.clone(), ip: ip.clone(), port: super::manifests::KAFKA_PORT });
                    }
                }
            }
            (Some("OUTPUT"), Some("-d")) => {
                if let Some(ip) = after("-d") {
                    push(Probe { pod: pod.clone(), ip: ip.into(), port: super::manifests::KAFKA_PORT });
                }
            }
            (Some("INPUT"), Some("-s")) => {
                let Some(src) = after("-s") else { continue };
                let paired = rules.iter().any(|(p, o)| p == pod && o.first().map(String::as_str) == Some("OUTPUT") && o.iter().any(|a| a == src));
                if let (false, Some(from), Some(to)) = (paired, pod_of_ip(src), ip_of_pod(pod)) {
                    push(Probe { pod: from, ip: to, port: super::manifests::KAFKA_PORT });
                }
            }
            (Some("INPUT"), Some("-p")) => {
                if let (Some(port), Some(own)) = (after("--dport").and_then(|p| p.parse().ok()), ip_of_pod(pod)) {
                    push(Probe { pod: pod.clone(), ip: own, port });
                }
            }
            _ => {}
        }
    }
    probes
}

/// The script a probe runs: a TCP connection, given up after [`PROBE_SECS`] (exit 124).
fn probe_script(p: &Probe) -> String {
    format!("timeout {PROBE_SECS} bash -c 'exec 3<>/dev/tcp/{}/{}'", p.ip, p.port)
}

/// How long a probe waits for a connection.
const PROBE_SECS: u64 = 2;

/// `sh -c` script that deletes `rule` if it is there (a pod replaced meanwhile has none).
fn delete_script(rule: &[String]) -> String {
    let r = rule.join(" ");
    format!("if iptables -w -C {r} 2>/dev/null; then iptables -w -D {r}; fi")
}

/// `sh -c` script that deletes every rule any fault added in this pod.
/// (`iptables -S` quotes the comment, hence `eval`.)
const SWEEP_SCRIPT: &str = "iptables -w -S | grep -e 'cdc-chaos:fault:' | sed 's/^-A /-D /' | while read -r r; do eval iptables -w \"$r\"; done";

/// A set of pods: one by name, or a component's pods by label.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pods {
    pub namespace: String,
    /// One pod by name (a Kafka node).
    pub name: Option<String>,
    /// Otherwise the values of `app.kubernetes.io/name` that select them.
    pub components: Vec<String>,
    /// The container to exec into (none: the pod's default container).
    pub container: Option<String>,
}

impl Pods {
    fn kafka(id: u16) -> Pods {
        Pods { namespace: NS_INGESTION.into(), name: Some(kafka_pod(id)), components: vec![], container: Some("kafka".into()) }
    }

    fn component(namespace: &str, components: &[&str]) -> Pods {
        Pods { namespace: namespace.into(), name: None, components: components.iter().map(|c| c.to_string()).collect(), container: None }
    }

    /// The Kubernetes label selector (`matchLabels`/`matchExpressions`) of these pods.
    fn selector(&self) -> Value {
        match &self.name {
            Some(name) => json!({"matchLabels": {POD_NAME_LABEL: name}}),
            None => json!({"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": self.components}]}),
        }
    }

    /// A Chaos Mesh selector of these pods.
    fn chaos_selector(&self) -> Value {
        match &self.name {
            Some(name) => json!({"pods": {self.namespace.clone(): [name]}}),
            None => json!({"namespaces": [self.namespace], "expressionSelectors": [{"key": NAME_LABEL, "operator": "In", "values": self.components}]}),
        }
    }

    /// `app.kubernetes.io/name in (a,b)`: the list query's selector.
    fn list_selector(&self) -> String {
        format!("{NAME_LABEL} in ({})", self.components.join(","))
    }

    fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{}/{n}", self.namespace),
            None => format!("{}/{}", self.namespace, self.components.join("+")),
        }
    }
}

/// The pods of a component target.
fn component_pods(c: &str) -> Result<Pods> {
    Ok(match c {
        "connect" => Pods::component(NS_INGESTION, &["connect"]),
        "pipeline" => Pods::component(NS_PROCESSING, &PIPELINE),
        "join" | "warehouse-sink" | "lake-sink" => Pods::component(NS_PROCESSING, &[c]),
        "postgres" | "mariadb" => Pods::component(NS_SOURCES, &[c]),
        "warehouse" => Pods::component(NS_WAREHOUSE, &["warehouse"]),
        "lake" => Pods::component(NS_LAKE, &["seaweedfs", "minio"]),
        other => return Err(Error::Fault(format!("{other:?} is no component of the cluster"))),
    })
}

/// The pods of a planned process fault's components (`kafka-<n>` by name, the others by label),
/// one set per namespace.
pub fn process_targets(components: &[String]) -> Result<Vec<Pods>> {
    let mut out: Vec<Pods> = Vec::new();
    for c in components {
        let pods = match c.strip_prefix("kafka-").and_then(|n| n.parse::<u16>().ok()) {
            Some(n) => Pods::kafka(n),
            None => component_pods(c)?,
        };
        match out.iter_mut().find(|p| p.name.is_none() && pods.name.is_none() && p.namespace == pods.namespace) {
            Some(same) => same.components.extend(pods.components),
            None => out.push(pods),
        }
    }
    Ok(out)
}

/// A fault in force on the cluster, as journaled.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KindFault {
    pub id: usize,
    pub kind: FaultKind,
    pub target: String,
    /// How the target was resolved.
    pub detail: String,
    /// Pods hit (`namespace/name`, or `namespace/component`).
    pub pods: Vec<String>,
    /// Pods stopped with SIGSTOP: (namespace, pod, container).
    #[serde(default)]
    pub paused: Vec<(String, String, Option<String>)>,
    /// Whether objects labelled [`FAULT_LABEL`]`=<id>` were created (partitions, Chaos Mesh).
    #[serde(default)]
    pub labelled: bool,
    /// iptables rules added in Kafka pods ([`Mechanism::Iptables`]).
    #[serde(default)]
    pub rules: Vec<PodRule>,
    /// What keeps a killed target down until the heal.
    #[serde(default)]
    pub held: Vec<Held>,
    /// Connections the fault's iptables rules block.
    #[serde(default)]
    pub probes: Vec<Probe>,
}

/// What keeps a killed pod from coming back before its fault heals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Held {
    /// The node of a StatefulSet's pod, tainted `cdc-chaos/fault=<id>:NoSchedule`.
    Node { node: String },
    /// A Deployment scaled to 0 from `replicas`.
    Deployment { namespace: String, name: String, replicas: i32 },
}

/// The owner of `pod` of `kind`, from its ownerReferences.
fn owner(pod: &Pod, kind: &str) -> Option<String> {
    pod.metadata.owner_references.as_ref()?.iter().find(|o| o.kind == kind).map(|o| o.name.clone())
}

/// `taints` with a `cdc-chaos/fault=<id>:NoSchedule` taint, or with none of [`FAULT_LABEL`]
/// when `id` is `None`.
fn with_fault_taint(taints: &[Value], id: Option<usize>) -> Vec<Value> {
    let mut out: Vec<Value> = taints.iter().filter(|t| t["key"] != FAULT_LABEL).cloned().collect();
    if let Some(id) = id {
        out.push(json!({"key": FAULT_LABEL, "value": id.to_string(), "effect": "NoSchedule"}));
    }
    out
}

/// How to heal the cluster's faults without their journal.
const HEAL_BY_HAND: &str = "delete every object labelled cdc-chaos/fault (`kubectl delete networkpolicy,podchaos,networkchaos -A -l cdc-chaos/fault`), remove the taint cdc-chaos/fault from every node, scale back every Deployment annotated cdc-chaos/fault-replicas, run `kill -CONT -1` in paused pods and `cdc-chaos --platform kind down` (which sweeps the iptables rules commented cdc-chaos:fault)";

fn load_journal(path: &Path) -> Result<Vec<KindFault>> {
    Journal::at(path).load(HEAL_BY_HAND)
}

fn save_journal(path: &Path, faults: &[KindFault]) -> Result<()> {
    Journal::at(path).save(faults)
}

/// Egress to the cluster's DNS, which every partition leaves open.
fn dns_egress() -> Value {
    json!({"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]})
}

/// Every pod of every namespace but the Kafka nodes.
fn not_kafka() -> Value {
    json!({"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": NAME_LABEL, "operator": "NotIn", "values": [KAFKA_SERVICE]}]}})
}

fn labels(id: usize) -> Value {
    json!({FAULT_LABEL: id.to_string(), "app.kubernetes.io/managed-by": "cdc-chaos"})
}

fn network_policy(id: usize, suffix: &str, pods: &Pods, policy_types: &[&str], ingress: Value, egress: Value) -> Value {
    let mut spec = json!({"podSelector": pods.selector(), "policyTypes": policy_types});
    if policy_types.contains(&"Ingress") {
        spec["ingress"] = ingress;
    }
    if policy_types.contains(&"Egress") {
        spec["egress"] = egress;
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": format!("cdc-chaos-fault-{id}-{suffix}"), "namespace": pods.namespace, "labels": labels(id)},
        "spec": spec,
    })
}

fn network_chaos(id: usize, from: &Pods, direction: &str, to: Value) -> Value {
    json!({
        "apiVersion": format!("{CHAOS_MESH}/{CHAOS_MESH_VERSION}"),
        "kind": "NetworkChaos",
        "metadata": {"name": format!("cdc-chaos-fault-{id}"), "namespace": from.namespace, "labels": labels(id)},
        "spec": {"action": "partition", "mode": "all", "selector": from.chaos_selector(), "direction": direction, "target": {"mode": "all", "selector": to}},
    })
}

/// The client pods `cut-clients` cuts: all (Connect and the pipeline), or one client's.
fn clients(client: &Option<KafkaClient>) -> Vec<Pods> {
    let connect = Pods::component(NS_INGESTION, &["connect"]);
    let pipeline = Pods::component(NS_PROCESSING, &PIPELINE);
    match client {
        None => vec![connect, pipeline],
        Some(KafkaClient::Connect) => vec![connect],
        Some(_) => vec![pipeline],
    }
}

/// The objects that make a planned partition, with the pods it hits and its detail:
/// NetworkPolicies ([`Mechanism::Native`]) or one NetworkChaos per cut side.
pub fn partition_objects(id: usize, plan: &Plan, mechanism: &Mechanism) -> Result<(Vec<Value>, Vec<String>, String)> {
    let chaos = matches!(mechanism, Mechanism::ChaosMesh { .. });
    let kafka_all = Pods::component(NS_INGESTION, &[KAFKA_SERVICE]);
    match partition(plan)? {
        Cut::Node { node, peers, clients: isolate } => {
            let pod = Pods::kafka(*node);
            let peers: Vec<String> = peers.iter().copied().map(kafka_pod).collect();
            let objects = match (*isolate, chaos) {
                // Cut from everything but DNS.
                (true, false) => vec![network_policy(id, "isolate", &pod, &["Ingress", "Egress"], json!([]), json!([dns_egress()]))],
                (true, true) => vec![network_chaos(id, &pod, "both", json!({"namespaces": NAMESPACES}))],
                // Cut from the other Kafka nodes only; clients reach both sides.
                (false, false) => vec![network_policy(
                    id,
                    "split",
                    &pod,
                    &["Ingress", "Egress"],
                    json!([{"from": [not_kafka()]}]),
                    json!([{"to": [not_kafka()]}, dns_egress()]),
                )],
                (false, true) => vec![network_chaos(id, &pod, "both", json!({"pods": {NS_INGESTION: peers}}))],
            };
            let what = if *isolate { "every pod" } else { "the other Kafka nodes" };
            Ok((objects, vec![pod.describe()], plan.detail(&format!("{} cut from {what}", kafka_pod(*node)))))
        }
        Cut::OneWay { from, to } => {
            let (pa, pb) = (Pods::kafka(*from), Pods::kafka(*to));
            let objects = if chaos {
                vec![network_chaos(id, &pa, "to", json!({"pods": {NS_INGESTION: [kafka_pod(*to)]}}))]
            } else {
                // Connections node a opens to node b are dropped; NetworkPolicy is stateful,
                // so replies on connections node b opened still flow.
                let source = json!({"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": POD_NAME_LABEL, "operator": "NotIn", "values": [kafka_pod(*from)]}]}});
                vec![network_policy(id, "one-way", &pb, &["Ingress"], json!([{"from": [source]}]), Value::Null)]
            };
            Ok((objects, vec![pa.describe(), pb.describe()], plan.detail(&format!("{} → {} dropped", kafka_pod(*from), kafka_pod(*to)))))
        }
        Cut::Clients { client, .. } => {
            let cut = clients(client);
            let objects = cut
                .iter()
                .enumerate()
                .map(|(i, pods)| {
                    if chaos {
                        let mut o = network_chaos(id, pods, "both", kafka_all.chaos_selector());
                        o["metadata"]["name"] = json!(format!("cdc-chaos-fault-{id}-{i}"));
                        o
                    } else {
                        network_policy(id, &format!("cut-{i}"), pods, &["Egress"], Value::Null, json!([{"to": [not_kafka()]}, dns_egress()]))
                    }
                })
                .collect();
            let names: Vec<String> = cut.iter().map(Pods::describe).collect();
            Ok((objects, names.clone(), plan.detail(&format!("{} cut from the Kafka nodes", names.join(", ")))))
        }
    }
}

/// Applies and heals faults on one cluster, journaling them in `journal`.
pub struct KindFaults {
    cluster: KindCluster,
    mechanism: Mechanism,
    journal: PathBuf,
}

impl KindFaults {
    /// Detects the fault mechanism (Chaos Mesh or native) of `cluster`.
    pub async fn new(cluster: KindCluster, journal: PathBuf) -> Result<KindFaults> {
        let mechanism = detect(cluster.client()).await?;
        Ok(KindFaults { cluster, mechanism, journal })
    }

    pub fn mechanism(&self) -> &Mechanism {
        &self.mechanism
    }

    /// The journal's path: `<home>/kind/faults-active.json` by convention.
    pub fn journal_path(home: &Path) -> PathBuf {
        home.join("kind").join("faults-active.json")
    }

    fn client(&self) -> Client {
        self.cluster.client().clone()
    }

    async fn journal_push(&self, f: &KindFault) -> Result<()> {
        let mut all = load_journal(&self.journal)?;
        all.retain(|x| x.id != f.id);
        all.push(f.clone());
        save_journal(&self.journal, &all)
    }

    /// The names of the pods `pods` stands for now.
    async fn pod_names(&self, pods: &Pods) -> Result<Vec<String>> {
        if let Some(n) = &pods.name {
            return Ok(vec![n.clone()]);
        }
        let api: Api<Pod> = Api::namespaced(self.client(), &pods.namespace);
        let list = api
            .list(&ListParams::default().labels(&pods.list_selector()))
            .await
            .map_err(|e| api_error(format!("listing the pods of {}", pods.describe()), e))?;
        let names: Vec<String> = list.items.into_iter().filter_map(|p| p.metadata.name).collect();
        if names.is_empty() {
            return Err(Error::component(COMPONENT, format!("no pod of {} ({})", pods.describe(), pods.list_selector())));
        }
        Ok(names)
    }

    async fn signal(&self, namespace: &str, pod: &str, container: Option<&str>, signal: &str) -> Result<()> {
        self.run_in(namespace, pod, container, ["sh".into(), "-c".into(), format!("kill -{signal} -1")].to_vec()).await
    }

    /// Runs `command` in `container` of pod `namespace/pod`; an error carries the status's
    /// message.
    async fn run_in(&self, namespace: &str, pod: &str, container: Option<&str>, command: Vec<String>) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client(), namespace);
        let mut params = AttachParams::default().stdout(true).stderr(true);
        if let Some(c) = container {
            params = params.container(c);
        }
        let shown = match command.as_slice() {
            [sh, c, script] if sh == "sh" && c == "-c" => script.clone(),
            _ => command.join(" "),
        };
        let what = format!("`{shown}` in pod {namespace}/{pod}");
        let mut process = api.exec(pod, command, &params).await.map_err(|e| api_error(&what, e))?;
        let status = match process.take_status() {
            Some(s) => s.await,
            None => None,
        };
        process.join().await.map_err(|e| Error::component(COMPONENT, format!("{what}: {e}")))?;
        match status {
            Some(s) if s.status.as_deref() == Some("Failure") => Err(Error::component(COMPONENT, format!("{what}: {}", s.message.unwrap_or_default()))),
            _ => Ok(()),
        }
    }

    /// Whether Kafka pod `pod` may hold iptables rules: a pod deleted meanwhile took its rules
    /// with its network namespace, and a pod without an IP (not scheduled, or its sandbox not
    /// started yet) has no network namespace of its own that a rule could be in — nor a running
    /// container to exec into, so `down` would otherwise fail on a Pending Kafka pod.
    async fn may_hold_rules(&self, pod: &str) -> Result<bool> {
        match Api::<Pod>::namespaced(self.client(), NS_INGESTION).get_opt(pod).await {
            Ok(found) => Ok(found.and_then(|p| p.status).and_then(|s| s.pod_ip).is_some()),
            Err(e) => Err(api_error(format!("reading pod {NS_INGESTION}/{pod}"), e)),
        }
    }

    /// A pod can be paused from inside only if its server is not its PID namespace's init.
    async fn check_pausable(&self, namespace: &str, pod: &str) -> Result<()> {
        let found = Api::<Pod>::namespaced(self.client(), namespace).get(pod).await.map_err(|e| api_error(format!("reading pod {namespace}/{pod}"), e))?;
        if found.spec.as_ref().and_then(|s| s.share_process_namespace) == Some(true) {
            Ok(())
        } else {
            Err(Error::Fault(format!(
                "pause of pod {namespace}/{pod}: it does not share its process namespace (spec.shareProcessNamespace), so its server is PID 1 of its own namespace and the kernel ignores a SIGSTOP sent from inside the pod; set shareProcessNamespace: true in its manifest"
            )))
        }
    }

    /// What pod `namespace/name` is after a delete: gone, replaced by a pod of another uid, or
    /// terminating prove the delete; the same pod still running does not.
    async fn deleted_proof(&self, namespace: &str, name: &str, uid: Option<&str>) -> Proof {
        let pod = format!("pod {namespace}/{name}");
        match Api::<Pod>::namespaced(self.client(), namespace).get_opt(name).await {
            Ok(None) => Proof::new(true, format!("{pod} deleted")),
            Ok(Some(p)) if p.metadata.uid.is_some() && p.metadata.uid.as_deref() != uid => {
                Proof::new(true, format!("{pod} replaced (uid {} → {})", uid.unwrap_or("unknown"), p.metadata.uid.unwrap_or_default()))
            }
            Ok(Some(p)) if p.metadata.deletion_timestamp.is_some() => Proof::new(true, format!("{pod} terminating")),
            Ok(Some(_)) => Proof::new(false, format!("{pod} still there after its delete (uid {})", uid.unwrap_or("unknown"))),
            Err(e) => Proof::new(false, format!("reading {pod} after its delete: {e}")),
        }
    }

    /// Applies `spec` as fault `id`, journaling it first. Returns what is in force, and the
    /// evidence that it took effect: each deleted pod gone, replaced or terminating. Pauses,
    /// Chaos Mesh's kills and partitions carry none yet (the run is then `unknown`).
    pub async fn apply(&self, id: usize, spec: &FaultSpec, roles: &mut dyn Roles) -> Result<(KindFault, Vec<Proof>)> {
        let plan = plan(spec, &kafka_nodes(), roles)?;
        let mut evidence = Vec::new();
        let mut fault = KindFault { id, kind: spec.kind, target: spec.target.to_string(), detail: String::new(), pods: vec![], paused: vec![], labelled: false, rules: vec![], held: vec![], probes: vec![] };
        match &plan.action {
            Action::Processes(components) => {
                let targets = process_targets(components)?;
                fault.detail = plan.detail("");
                fault.pods = targets.iter().map(Pods::describe).collect();
                match (spec.kind, &self.mechanism) {
                    (FaultKind::Kill, Mechanism::ChaosMesh { pod_chaos, .. }) => {
                        fault.labelled = true;
                        self.journal_push(&fault).await?;
                        for (i, pods) in targets.iter().enumerate() {
                            let object = json!({
                                "apiVersion": format!("{CHAOS_MESH}/{CHAOS_MESH_VERSION}"),
                                "kind": "PodChaos",
                                "metadata": {"name": format!("cdc-chaos-fault-{id}-{i}"), "namespace": pods.namespace, "labels": labels(id)},
                                "spec": {"action": "pod-kill", "mode": "all", "gracePeriod": 0, "selector": pods.chaos_selector()},
                            });
                            self.create(pod_chaos, &object).await?;
                        }
                    }
                    (FaultKind::Kill, _) => {
                        let mut names = Vec::new();
                        for pods in &targets {
                            for name in self.pod_names(pods).await? {
                                if let Some(held) = self.hold_for(&pods.namespace, &name).await? {
                                    if !fault.held.contains(&held) {
                                        fault.held.push(held);
                                    }
                                }
                                names.push((pods.namespace.clone(), name, pods.container.clone()));
                            }
                        }
                        self.journal_push(&fault).await?;
                        // A node is tainted before the delete, so that the StatefulSet's
                        // replacement never starts. A Deployment is scaled to 0 only after it:
                        // scaling first would have its ReplicaSet delete the pod gracefully
                        // (SIGTERM, the server's clean shutdown) before the delete arrives.
                        for held in fault.held.iter().filter(|h| matches!(h, Held::Node { .. })) {
                            self.hold(id, held).await?;
                        }
                        for (namespace, name, container) in names {
                            let api: Api<Pod> = Api::namespaced(self.client(), &namespace);
                            let uid = api.get_opt(&name).await.ok().flatten().and_then(|p| p.metadata.uid);
                            // A delete is no SIGKILL: the kubelet stops a container with at least
                            // 2 s of grace, SIGTERM first, so servers shut down cleanly. SIGKILL
                            // from inside first, as a pause sends SIGSTOP.
                            evidence.push(match self.signal(&namespace, &name, container.as_deref(), "KILL").await {
                                Ok(()) => Proof::new(true, format!("pod {namespace}/{name}: its processes SIGKILLed")),
                                Err(e) => Proof::new(false, format!("pod {namespace}/{name}: SIGKILL by exec failed ({e})")),
                            });
                            match api.delete(&name, &DeleteParams::default().grace_period(0)).await {
                                Ok(_) => {}
                                // A Deployment scaled to 0 may have removed it already.
                                Err(e) if is_not_found(&e) => {}
                                Err(e) => return Err(api_error(format!("deleting pod {namespace}/{name}"), e)),
                            }
                            evidence.push(self.deleted_proof(&namespace, &name, uid.as_deref()).await);
                        }
                        for held in fault.held.iter().filter(|h| matches!(h, Held::Deployment { .. })) {
                            self.hold(id, held).await?;
                        }
                    }
                    (FaultKind::Restart, _) => {
                        self.journal_push(&fault).await?;
                        let params = DeleteParams::default();
                        for pods in &targets {
                            let api: Api<Pod> = Api::namespaced(self.client(), &pods.namespace);
                            for name in self.pod_names(pods).await? {
                                let uid = api.get_opt(&name).await.ok().flatten().and_then(|p| p.metadata.uid);
                                api.delete(&name, &params).await.map_err(|e| api_error(format!("deleting pod {}/{name}", pods.namespace), e))?;
                                evidence.push(self.deleted_proof(&pods.namespace, &name, uid.as_deref()).await);
                            }
                        }
                    }
                    _ => {
                        for pods in &targets {
                            for name in self.pod_names(pods).await? {
                                self.check_pausable(&pods.namespace, &name).await?;
                                fault.paused.push((pods.namespace.clone(), name, pods.container.clone()));
                            }
                        }
                        self.journal_push(&fault).await?;
                        for (ns, pod, container) in &fault.paused {
                            self.signal(ns, pod, container.as_deref(), "STOP").await?;
                        }
                        for (ns, pod, container) in &fault.paused {
                            evidence.push(self.stopped_proof(ns, pod, container.as_deref(), true).await);
                        }
                    }
                }
            }
            _ if matches!(self.mechanism, Mechanism::Iptables) => {
                let mut ips = std::collections::BTreeMap::new();
                let api: Api<Pod> = Api::namespaced(self.client(), NS_INGESTION);
                for n in 1..=KAFKA_NODES {
                    let pod = api.get_opt(&kafka_pod(n)).await.map_err(|e| api_error(format!("reading pod {NS_INGESTION}/{}", kafka_pod(n)), e))?;
                    if let Some(ip) = pod.and_then(|p| p.status).and_then(|s| s.pod_ip) {
                        ips.insert(n, ip);
                    }
                }
                let (rules, pods, detail) = iptables_rules(id, &plan, &ips)?;
                fault.pods = pods;
                fault.detail = detail;
                fault.rules = rules;
                fault.probes = iptables_probes(&fault.rules, &ips);
                self.journal_push(&fault).await?;
                for (pod, r) in &fault.rules {
                    let mut cmd = vec!["iptables".to_string(), "-w".into(), "-A".into()];
                    cmd.extend(r.iter().cloned());
                    self.run_in(NS_INGESTION, pod, Some(NETFAULT_CONTAINER), cmd).await?;
                }
                for p in &fault.probes {
                    evidence.push(self.probe(p, true).await);
                }
            }
            _ => {
                let (objects, pods, detail) = partition_objects(id, &plan, &self.mechanism)?;
                fault.pods = pods;
                fault.detail = detail;
                fault.labelled = true;
                self.journal_push(&fault).await?;
                for object in &objects {
                    let ar = match &self.mechanism {
                        Mechanism::ChaosMesh { network_chaos, .. } => network_chaos.as_ref().clone(),
                        Mechanism::Native | Mechanism::Iptables => ApiResource::erase::<NetworkPolicy>(&()),
                    };
                    self.create(&ar, object).await?;
                }
            }
        }
        Ok((fault, evidence))
    }

    /// What keeps pod `namespace/name` down once killed: its node (a StatefulSet's pod, bound
    /// there by its volume) or its Deployment; nothing for a pod no controller owns, which
    /// nothing brings back.
    async fn hold_for(&self, namespace: &str, name: &str) -> Result<Option<Held>> {
        let pod = Api::<Pod>::namespaced(self.client(), namespace).get(name).await.map_err(|e| api_error(format!("reading pod {namespace}/{name}"), e))?;
        if owner(&pod, "StatefulSet").is_some() {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).ok_or_else(|| {
                Error::component(COMPONENT, format!("kill of pod {namespace}/{name}: it runs on no node yet, so nothing can keep its replacement down"))
            })?;
            return Ok(Some(Held::Node { node }));
        }
        let Some(rs) = owner(&pod, "ReplicaSet") else {
            if let Some(other) = pod.metadata.owner_references.as_ref().and_then(|o| o.first()) {
                return Err(Error::component(COMPONENT, format!("kill of pod {namespace}/{name}: owned by {} {}, which this harness cannot keep from replacing it", other.kind, other.name)));
            }
            return Ok(None);
        };
        let rs = Api::<ReplicaSet>::namespaced(self.client(), namespace).get(&rs).await.map_err(|e| api_error(format!("reading ReplicaSet {namespace}/{rs}"), e))?;
        let deployment = rs
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.iter().find(|o| o.kind == "Deployment"))
            .map(|o| o.name.clone())
            .ok_or_else(|| Error::component(COMPONENT, format!("kill of pod {namespace}/{name}: its ReplicaSet has no Deployment")))?;
        let d = Api::<Deployment>::namespaced(self.client(), namespace).get(&deployment).await.map_err(|e| api_error(format!("reading Deployment {namespace}/{deployment}"), e))?;
        let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(1);
        Ok(Some(Held::Deployment { namespace: namespace.into(), name: deployment, replicas }))
    }

    async fn taint(&self, node: &str, id: Option<usize>) -> Result<()> {
        let api: Api<Node> = Api::all(self.client());
        let found = api.get(node).await.map_err(|e| api_error(format!("reading node {node}"), e))?;
        let taints: Vec<Value> = found.spec.and_then(|s| s.taints).unwrap_or_default().into_iter().map(|t| serde_json::to_value(t).expect("taint")).collect();
        let patch = json!({"spec": {"taints": with_fault_taint(&taints, id)}});
        api.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| api_error(format!("tainting node {node}"), e))?;
        Ok(())
    }

    async fn scale(&self, namespace: &str, name: &str, replicas: i32, annotation: Option<i32>) -> Result<()> {
        let api: Api<Deployment> = Api::namespaced(self.client(), namespace);
        let patch = json!({
            "metadata": {"annotations": {REPLICAS_ANNOTATION: annotation.map(|r| r.to_string())}},
            "spec": {"replicas": replicas},
        });
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| api_error(format!("scaling Deployment {namespace}/{name} to {replicas}"), e))?;
        Ok(())
    }

    async fn hold(&self, id: usize, held: &Held) -> Result<()> {
        match held {
            Held::Node { node } => self.taint(node, Some(id)).await,
            Held::Deployment { namespace, name, replicas } => self.scale(namespace, name, 0, Some(*replicas)).await,
        }
    }

    async fn release(&self, held: &Held) -> Result<()> {
        match held {
            Held::Node { node } => self.taint(node, None).await,
            Held::Deployment { namespace, name, replicas } => self.scale(namespace, name, *replicas, None).await,
        }
    }

    /// Releases what a crash kept out of the journal: every node's fault taint, every
    /// Deployment annotated with the replicas a kill took away.
    async fn release_unjournaled(&self) -> Vec<String> {
        let mut errors = Vec::new();
        match Api::<Node>::all(self.client()).list(&ListParams::default()).await {
            Ok(nodes) => {
                for n in nodes.items {
                    let tainted = n.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| t.iter().any(|t| t.key == FAULT_LABEL));
                    if let (true, Some(name)) = (tainted, n.metadata.name) {
                        if let Err(e) = self.taint(&name, None).await {
                            errors.push(e.to_string());
                        }
                    }
                }
            }
            Err(e) => errors.push(api_error("listing the nodes", e).to_string()),
        }
        for ns in NAMESPACES {
            match Api::<Deployment>::namespaced(self.client(), ns).list(&ListParams::default()).await {
                Ok(list) => {
                    for d in list.items {
                        let replicas = d.metadata.annotations.as_ref().and_then(|a| a.get(REPLICAS_ANNOTATION)).and_then(|r| r.parse::<i32>().ok());
                        if let (Some(r), Some(name)) = (replicas, d.metadata.name) {
                            if let Err(e) = self.scale(ns, &name, r, None).await {
                                errors.push(e.to_string());
                            }
                        }
                    }
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => errors.push(api_error(format!("listing the Deployments of {ns}"), e).to_string()),
            }
        }
        errors
    }

    /// Runs `p` and says whether it shows the fault in force (`blocked`) or healed.
    async fn probe(&self, p: &Probe, blocked: bool) -> Proof {
        let what = format!("{} → {}:{}", p.pod, p.ip, p.port);
        match self.run_in(NS_INGESTION, &p.pod, Some(NETFAULT_CONTAINER), vec!["sh".into(), "-c".into(), probe_script(p)]).await {
            Ok(()) if blocked => Proof::new(false, format!("{what} connects: not blocked")),
            Ok(()) => Proof::new(true, format!("{what} connects again")),
            Err(e) if e.to_string().contains("exit code 124") => {
                Proof::new(blocked, format!("{what} {} (no answer in {PROBE_SECS} s)", if blocked { "blocked" } else { "still blocked after the heal" }))
            }
            Err(e) => Proof::new(false, format!("{what}: the probe failed: {e}")),
        }
    }

    async fn create(&self, ar: &ApiResource, object: &Value) -> Result<()> {
        let ns = object["metadata"]["namespace"].as_str().expect("fault objects are namespaced");
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let obj: DynamicObject = serde_json::from_value(object.clone()).expect("fault objects are objects");
        Api::<DynamicObject>::namespaced_with(self.client(), ns, ar)
            .create(&PostParams::default(), &obj)
            .await
            .map_err(|e| api_error(format!("creating {} {ns}/{name}", ar.kind), e))?;
        Ok(())
    }

    /// The kinds of labelled objects faults may create on this cluster.
    fn labelled_kinds(&self) -> Vec<ApiResource> {
        let mut kinds = vec![ApiResource::erase::<NetworkPolicy>(&())];
        if let Mechanism::ChaosMesh { pod_chaos, network_chaos } = &self.mechanism {
            kinds.push(pod_chaos.as_ref().clone());
            kinds.push(network_chaos.as_ref().clone());
        }
        kinds
    }

    /// Deletes, in every namespace of the architecture, the objects matching `selector`.
    async fn delete_labelled(&self, selector: &str) -> Vec<String> {
        let mut errors = Vec::new();
        for ar in self.labelled_kinds() {
            for ns in NAMESPACES {
                let api: Api<DynamicObject> = Api::namespaced_with(self.client(), ns, &ar);
                match api.delete_collection(&DeleteParams::default(), &ListParams::default().labels(selector)).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => errors.push(format!("deleting {} in {ns} labelled {selector}: {e}", ar.plural)),
                }
            }
        }
        errors
    }

    /// Heals `f` and returns the evidence: that a kill's target stayed down until the heal
    /// (read just before it), and that each partition probe connects again after it.
    pub async fn heal_with_proofs(&self, f: &KindFault) -> Result<Vec<Proof>> {
        let mut out = Vec::new();
        for held in &f.held {
            out.push(self.still_down(f, held).await);
        }
        self.heal(f).await?;
        for (ns, pod, container) in &f.paused {
            out.push(self.stopped_proof(ns, pod, container.as_deref(), false).await);
        }
        for p in &f.probes {
            out.push(self.probe(p, false).await);
        }
        Ok(out)
    }

    /// Whether processes of pod `ns/pod` are stopped (state `T` in the pod's shared `/proc`)
    /// when `stopped`, or none is after the heal. A pod gone by the heal took its stopped
    /// processes with it.
    async fn stopped_proof(&self, ns: &str, pod: &str, container: Option<&str>, stopped: bool) -> Proof {
        const ANY_STOPPED: &str = "grep -qs '^State:[[:space:]]*T' /proc/[0-9]*/status";
        if !stopped && matches!(Api::<Pod>::namespaced(self.client(), ns).get_opt(pod).await, Ok(None)) {
            return Proof::new(true, format!("pod {ns}/{pod} gone by the heal, its stopped processes with it"));
        }
        let script = if stopped { ANY_STOPPED.to_string() } else { format!("! {ANY_STOPPED}") };
        let held = self.run_in(ns, pod, container, vec!["sh".into(), "-c".into(), script]).await;
        match (stopped, held) {
            (true, Ok(())) => Proof::new(true, format!("pod {ns}/{pod}: its processes stopped (state T)")),
            (true, Err(e)) => Proof::new(false, format!("pod {ns}/{pod}: no process stopped after SIGSTOP ({e})")),
            (false, Ok(())) => Proof::new(true, format!("pod {ns}/{pod}: no process stopped after SIGCONT")),
            (false, Err(e)) => Proof::new(false, format!("pod {ns}/{pod}: a process still stopped after SIGCONT ({e})")),
        }
    }

    /// Whether what `held` keeps down is still down.
    async fn still_down(&self, f: &KindFault, held: &Held) -> Proof {
        match held {
            Held::Node { node } => {
                let mut running = Vec::new();
                let mut down = Vec::new();
                for pod in &f.pods {
                    let Some((ns, name)) = pod.split_once('/') else { continue };
                    match Api::<Pod>::namespaced(self.client(), ns).get_opt(name).await {
                        Ok(Some(p)) if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") => running.push(pod.clone()),
                        Ok(_) => down.push(pod.clone()),
                        Err(e) => return Proof::new(false, format!("reading pod {pod}: {e}")),
                    }
                }
                if running.is_empty() {
                    Proof::new(true, format!("{} kept down until the heal (node {node} tainted NoSchedule)", down.join(", ")))
                } else {
                    Proof::new(false, format!("{} running again before the heal", running.join(", ")))
                }
            }
            Held::Deployment { namespace, name, .. } => match Api::<Deployment>::namespaced(self.client(), namespace).get(name).await {
                Ok(d) => {
                    let pods = d.status.and_then(|s| s.replicas).unwrap_or(0);
                    Proof::new(pods == 0, format!("Deployment {namespace}/{name} at {pods} pods until the heal"))
                }
                Err(e) => Proof::new(false, format!("reading Deployment {namespace}/{name}: {e}")),
            },
        }
    }

    /// Heals one fault: resumes its paused pods, deletes its labelled objects, and drops it
    /// from the journal.
    pub async fn heal(&self, f: &KindFault) -> Result<()> {
        let mut errors = Vec::new();
        for (ns, pod, container) in &f.paused {
            // A pod deleted meanwhile is gone with its stopped process: nothing to resume.
            match Api::<Pod>::namespaced(self.client(), ns).get_opt(pod).await {
                Ok(None) => continue,
                Ok(Some(_)) => {}
                Err(e) => {
                    errors.push(api_error(format!("reading pod {ns}/{pod}"), e).to_string());
                    continue;
                }
            }
            if let Err(e) = self.signal(ns, pod, container.as_deref(), "CONT").await {
                errors.push(e.to_string());
            }
        }
        for (pod, r) in &f.rules {
            match self.may_hold_rules(pod).await {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            }
            if let Err(e) = self.run_in(NS_INGESTION, pod, Some(NETFAULT_CONTAINER), vec!["sh".into(), "-c".into(), delete_script(r)]).await {
                errors.push(e.to_string());
            }
        }
        for held in &f.held {
            if let Err(e) = self.release(held).await {
                errors.push(e.to_string());
            }
        }
        if f.labelled {
            errors.extend(self.delete_labelled(&format!("{FAULT_LABEL}={}", f.id)).await);
        }
        if !errors.is_empty() {
            return Err(Error::component("nemesis", format!("healing fault {} ({} {}): {}", f.id, f.kind.as_str(), f.target, errors.join("; "))));
        }
        let mut all = load_journal(&self.journal)?;
        all.retain(|x| x.id != f.id);
        save_journal(&self.journal, &all)
    }

    /// Heals every journaled fault, then deletes every object any fault left labelled (also
    /// those a crash kept out of the journal). Returns what was healed.
    pub async fn heal_all(&self) -> Result<Vec<String>> {
        let mut healed = Vec::new();
        let mut errors = Vec::new();
        for f in load_journal(&self.journal)? {
            match self.heal(&f).await {
                Ok(()) => healed.push(format!("{} {}", f.kind.as_str(), f.pods.join("+"))),
                Err(e) => errors.push(e.to_string()),
            }
        }
        errors.extend(self.delete_labelled(FAULT_LABEL).await);
        errors.extend(self.release_unjournaled().await);
        if matches!(self.mechanism, Mechanism::Iptables) {
            // Rules a crash kept out of the journal: every tagged rule of every Kafka pod.
            for n in 1..=KAFKA_NODES {
                let pod = kafka_pod(n);
                match self.may_hold_rules(&pod).await {
                    Ok(true) => {
                        if let Err(e) = self.run_in(NS_INGESTION, &pod, Some(NETFAULT_CONTAINER), vec!["sh".into(), "-c".into(), SWEEP_SCRIPT.into()]).await {
                            errors.push(e.to_string());
                        }
                    }
                    Ok(false) => {}
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        if errors.is_empty() {
            Ok(healed)
        } else {
            Err(Error::component("nemesis", errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::kind::mock::{self, Reply};
    use crate::scenario::{Dur, Target};
    use rand::rngs::StdRng;

    /// Roles as a cluster would answer them: the leader of every partition is node 2.
    struct LeaderIsTwo;

    impl Roles for LeaderIsTwo {
        fn node(&mut self, target: &Target) -> Result<(u16, String)> {
            match target {
                Target::Leader { topic, partition } => Ok((2, format!("leader of {topic}/{partition} is node 2"))),
                Target::Node(n) => Ok((*n, String::new())),
                other => panic!("unexpected target {other}"),
            }
        }
    }

    /// `s` planned on the cluster's three nodes, roles answered by [`LeaderIsTwo`].
    fn planned(s: &FaultSpec) -> Plan {
        plan(s, &kafka_nodes(), &mut LeaderIsTwo).unwrap()
    }

    fn spec(kind: FaultKind, target: &str) -> FaultSpec {
        FaultSpec { at: Dur::secs(0), kind, target: Target::parse(target).unwrap(), for_: Dur::secs(10), to: None, after_heals: false }
    }

    fn chaos_mesh_list() -> Value {
        mock::resource_list("chaos-mesh.org/v1alpha1", &[("podchaos", "PodChaos", true), ("networkchaos", "NetworkChaos", true)])
    }

    /// A cluster with or without Chaos Mesh that accepts every write.
    fn cluster(chaos_mesh: bool) -> impl FnMut(&mock::Seen) -> Reply + Send + 'static {
        let mut world = kill_world();
        move |seen| {
            if seen.path == "/apis/chaos-mesh.org/v1alpha1" {
                return if chaos_mesh { Reply::Json(200, chaos_mesh_list()) } else { Reply::Json(404, mock::status(404, "NotFound", "the server could not find the requested resource")) };
            }
            if let Some(reply) = world(seen) {
                return reply;
            }
            if seen.method == "GET" && seen.path == "/apis/apps/v1/namespaces/cdc-ingestion/statefulsets/kafka" {
                return Reply::Json(404, mock::status(404, "NotFound", "statefulsets not found"));
            }
            match mock::discovery(&seen.path) {
                Some(list) => Reply::Json(200, list),
                None => Reply::Json(200, mock::echo(seen)),
            }
        }
    }

    async fn faults(chaos_mesh: bool, dir: &Path) -> (KindFaults, mock::Recorder) {
        let (client, recorder) = mock::serve(cluster(chaos_mesh));
        let f = KindFaults::new(KindCluster::new(client), KindFaults::journal_path(dir)).await.unwrap();
        (f, recorder)
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cdc-chaos-kind-faults-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// The objects a kill reads and writes: pods (Kafka's owned by their StatefulSet on node
    /// `worker-<ordinal>`, others by a ReplicaSet of a Deployment named before their hash),
    /// nodes and Deployments; a deleted pod is gone.
    fn kill_world() -> impl FnMut(&mock::Seen) -> Option<Reply> {
        let mut deleted = std::collections::BTreeSet::new();
        move |seen| {
            let parts: Vec<&str> = seen.path.trim_start_matches('/').split('/').collect();
            let deployment_of = |pod: &str| pod.rsplitn(3, '-').nth(2).unwrap_or(pod).to_string();
            match (seen.method.as_str(), parts.as_slice()) {
                ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => Some(if deleted.contains(*name) {
                    Reply::Json(404, mock::status(404, "NotFound", "pods not found"))
                } else if let Some(ordinal) = name.strip_prefix("kafka-") {
                    Reply::Json(200, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "kafka", "uid": "s"}]},
                        "spec": {"nodeName": format!("worker-{ordinal}"), "containers": []}}))
                } else {
                    Reply::Json(200, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{}-rs", deployment_of(name)), "uid": "r"}]},
                        "spec": {"containers": []}}))
                }),
                ("DELETE", ["api", "v1", "namespaces", _, "pods", name]) => {
                    deleted.insert(name.to_string());
                    None
                }
                ("GET", ["apis", "apps", "v1", "namespaces", ns, "replicasets", rs]) => Some(Reply::Json(200, json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": rs, "namespace": ns, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": rs.trim_end_matches("-rs"), "uid": "d"}]}}))),
                ("GET" | "PATCH", ["apis", "apps", "v1", "namespaces", ns, "deployments", name]) => {
                    Some(Reply::Json(200, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns}, "spec": {"replicas": 2, "selector": {}, "template": {}}})))
                }
                ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments"]) => Some(Reply::Json(200, json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": []}))),
                ("GET" | "PATCH", ["api", "v1", "nodes", name]) => {
                    Some(Reply::Json(200, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"taints": [{"key": "other", "effect": "NoExecute"}]}})))
                }
                ("GET", ["api", "v1", "nodes"]) => Some(Reply::Json(200, json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": []}))),
                _ => None,
            }
        }
    }

    #[tokio::test]
    async fn kill_deletes_the_leaders_pod_with_no_grace_period() {
        let dir = tempdir("kill");
        let (faults, recorder) = faults(false, &dir).await;
        assert!(matches!(faults.mechanism(), Mechanism::Native));
        let (f, evidence) = faults.apply(0, &spec(FaultKind::Kill, "leader:crm.public.customers/0"), &mut LeaderIsTwo).await.unwrap();
        // SIGKILL from inside first (this mock answers no exec, so that proof fails), then the delete.
        let claims: Vec<(bool, &str)> = evidence.iter().map(|p| (p.held, p.claim.as_str())).collect();
        assert_eq!(claims.len(), 2, "{claims:?}");
        assert!(!claims[0].0 && claims[0].1.starts_with("pod cdc-ingestion/kafka-1: SIGKILL by exec failed"), "{claims:?}");
        assert_eq!(claims[1], (true, "pod cdc-ingestion/kafka-1 deleted"));
        let exec = recorder.seen().into_iter().find(|s| s.path.ends_with("/exec")).unwrap();
        assert_eq!(exec.path, "/api/v1/namespaces/cdc-ingestion/pods/kafka-1/exec");
        assert_eq!(exec.query["command"], ["sh", "-c", "kill -KILL -1"]);
        assert_eq!(exec.param("container"), Some("kafka"));
        assert_eq!(f.detail, "leader of crm.public.customers/0 is node 2");
        let writes = recorder.writes();
        assert_eq!(writes.len(), 2, "{writes:?}");
        // Its node first, so that the StatefulSet's replacement (bound there by its volume) stays Pending.
        assert_eq!((writes[0].method.as_str(), writes[0].path.as_str()), ("PATCH", "/api/v1/nodes/worker-1"));
        assert_eq!(writes[0].body["spec"]["taints"], json!([{"key": "other", "effect": "NoExecute"}, {"key": FAULT_LABEL, "value": "0", "effect": "NoSchedule"}]));
        assert_eq!(writes[1].method, "DELETE");
        assert_eq!(writes[1].path, "/api/v1/namespaces/cdc-ingestion/pods/kafka-1");
        assert_eq!(writes[1].body["gracePeriodSeconds"], 0);
        assert_eq!(f.held, [Held::Node { node: "worker-1".into() }]);
        assert_eq!(load_journal(&KindFaults::journal_path(&dir)).unwrap(), vec![f.clone()]);
        faults.heal(&f).await.unwrap();
        let healed = recorder.writes();
        assert_eq!(healed.len(), 3);
        assert_eq!((healed[2].method.as_str(), healed[2].path.as_str()), ("PATCH", "/api/v1/nodes/worker-1"));
        assert_eq!(healed[2].body["spec"]["taints"], json!([{"key": "other", "effect": "NoExecute"}]), "only the fault's taint goes");
        assert!(load_journal(&KindFaults::journal_path(&dir)).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_component_kill_deletes_every_pod_of_its_label() {
        let dir = tempdir("component");
        let mut world = kill_world();
        let (client, recorder) = mock::serve(move |seen| {
            if seen.path == "/apis/chaos-mesh.org/v1alpha1" {
                return Reply::Json(404, mock::status(404, "NotFound", "not found"));
            }
            if seen.path == "/apis/apps/v1/namespaces/cdc-ingestion/statefulsets/kafka" {
                return Reply::Json(404, mock::status(404, "NotFound", "statefulsets not found"));
            }
            if seen.method == "GET" && seen.path == "/api/v1/namespaces/cdc-processing/pods" {
                return Reply::Json(200, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                    {"metadata": {"name": "join-5d9c-abcde"}}, {"metadata": {"name": "warehouse-sink-7f-xyz"}}, {"metadata": {"name": "lake-sink-6b-qrs"}}
                ]}));
            }
            world(seen).unwrap_or_else(|| Reply::Json(200, mock::echo(seen)))
        });
        let faults = KindFaults::new(KindCluster::new(client), KindFaults::journal_path(&dir)).await.unwrap();
        let (f, _) = faults.apply(1, &spec(FaultKind::Kill, "pipeline"), &mut LeaderIsTwo).await.unwrap();
        let list = recorder.seen().into_iter().find(|s| s.path == "/api/v1/namespaces/cdc-processing/pods").unwrap();
        assert_eq!(list.param("labelSelector"), Some("app.kubernetes.io/name in (join,warehouse-sink,lake-sink)"));
        let writes = recorder.writes();
        // Each pod killed, then its Deployment scaled to 0 (its replicas kept in an annotation):
        // scaling first would have the ReplicaSet stop the pod gracefully.
        let scaled: Vec<(&str, &Value)> = writes.iter().filter(|w| w.method == "PATCH").map(|w| (w.path.rsplit('/').next().unwrap(), &w.body)).collect();
        assert_eq!(scaled.iter().map(|(d, _)| *d).collect::<Vec<_>>(), ["join", "warehouse-sink", "lake-sink"]);
        assert_eq!(*scaled[0].1, json!({"metadata": {"annotations": {REPLICAS_ANNOTATION: "2"}}, "spec": {"replicas": 0}}));
        let deleted: Vec<String> = writes.iter().filter(|w| w.method == "DELETE").map(|w| w.path.rsplit('/').next().unwrap().to_string()).collect();
        assert_eq!(deleted, ["join-5d9c-abcde", "warehouse-sink-7f-xyz", "lake-sink-6b-qrs"]);
        assert!(writes.iter().rposition(|w| w.method == "DELETE") < writes.iter().position(|w| w.method == "PATCH"), "killed before scaled");
        faults.heal(&f).await.unwrap();
        let back: Vec<Value> = recorder.writes()[writes.len()..].iter().map(|w| w.body.clone()).collect();
        assert_eq!(back[0], json!({"metadata": {"annotations": {REPLICAS_ANNOTATION: null}}, "spec": {"replicas": 2}}));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn isolate_creates_a_labelled_network_policy_and_heal_deletes_by_label() {
        let dir = tempdir("isolate");
        let (faults, recorder) = faults(false, &dir).await;
        let (f, evidence) = faults.apply(3, &spec(FaultKind::Isolate, "kafka-3"), &mut LeaderIsTwo).await.unwrap();
        assert!(evidence.is_empty(), "no probe across a network policy yet: {evidence:?}");
        let created = recorder.writes();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].method, "POST");
        assert_eq!(created[0].path, "/apis/networking.k8s.io/v1/namespaces/cdc-ingestion/networkpolicies");
        let policy = &created[0].body;
        assert_eq!(policy["metadata"]["labels"][FAULT_LABEL], "3");
        assert_eq!(policy["spec"]["podSelector"]["matchLabels"][POD_NAME_LABEL], "kafka-2");
        assert_eq!(policy["spec"]["ingress"], json!([]));
        assert_eq!(policy["spec"]["egress"], json!([dns_egress()]));
        assert_eq!(load_journal(&KindFaults::journal_path(&dir)).unwrap().len(), 1);

        faults.heal(&f).await.unwrap();
        let deletes: Vec<mock::Seen> = recorder.writes().into_iter().skip(1).collect();
        assert_eq!(deletes.len(), NAMESPACES.len(), "one collection delete per namespace: {deletes:?}");
        for d in &deletes {
            assert_eq!(d.method, "DELETE");
            assert!(d.path.ends_with("/networkpolicies"), "{}", d.path);
            assert_eq!(d.param("labelSelector"), Some("cdc-chaos/fault=3"));
        }
        assert!(load_journal(&KindFaults::journal_path(&dir)).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn cut_clients_denies_egress_from_the_clients_to_the_kafka_pods() {
        let (objects, _, detail) = partition_objects(4, &planned(&spec(FaultKind::CutClients, "pipeline")), &Mechanism::Native).unwrap();
        assert_eq!(objects.len(), 1);
        let p = &objects[0];
        assert_eq!(p["metadata"]["namespace"], NS_PROCESSING);
        assert_eq!(p["spec"]["policyTypes"], json!(["Egress"]));
        assert_eq!(p["spec"]["podSelector"]["matchExpressions"][0]["values"], json!(PIPELINE));
        assert_eq!(p["spec"]["egress"][0]["to"][0]["podSelector"]["matchExpressions"][0], json!({"key": NAME_LABEL, "operator": "NotIn", "values": ["kafka"]}));
        assert!(p["spec"].get("ingress").is_none());
        assert_eq!(detail, "cdc-processing/join+warehouse-sink+lake-sink cut from the Kafka nodes");
        // Every object parses as the API's NetworkPolicy.
        for o in &objects {
            serde_json::from_value::<NetworkPolicy>(o.clone()).unwrap();
        }
    }

    #[tokio::test]
    async fn heal_all_sweeps_every_labelled_object_even_unjournaled_ones() {
        let dir = tempdir("sweep");
        let (faults, recorder) = faults(false, &dir).await;
        assert!(faults.heal_all().await.unwrap().is_empty());
        let deletes = recorder.writes();
        assert_eq!(deletes.len(), NAMESPACES.len());
        assert!(deletes.iter().all(|d| d.param("labelSelector") == Some(FAULT_LABEL)));
    }

    #[tokio::test]
    async fn chaos_mesh_is_detected_and_used_instead() {
        let dir = tempdir("chaos");
        let (faults, recorder) = faults(true, &dir).await;
        assert!(matches!(faults.mechanism(), Mechanism::ChaosMesh { .. }));
        faults.apply(5, &spec(FaultKind::Split, "kafka-1"), &mut LeaderIsTwo).await.unwrap();
        faults.apply(6, &spec(FaultKind::Kill, "leader:crm.public.customers/0"), &mut LeaderIsTwo).await.unwrap();
        let writes = recorder.writes();
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert_eq!(writes[0].path, "/apis/chaos-mesh.org/v1alpha1/namespaces/cdc-ingestion/networkchaos");
        assert_eq!(writes[0].body["spec"]["action"], "partition");
        assert_eq!(writes[0].body["spec"]["selector"], json!({"pods": {"cdc-ingestion": ["kafka-0"]}}));
        assert_eq!(writes[0].body["spec"]["target"]["selector"], json!({"pods": {"cdc-ingestion": ["kafka-1", "kafka-2"]}}));
        assert_eq!(writes[1].path, "/apis/chaos-mesh.org/v1alpha1/namespaces/cdc-ingestion/podchaos");
        assert_eq!(writes[1].body["spec"]["action"], "pod-kill");
        assert_eq!(writes[1].body["spec"]["selector"], json!({"pods": {"cdc-ingestion": ["kafka-1"]}}));
        assert_eq!(writes[1].body["metadata"]["labels"][FAULT_LABEL], "6");
        // Healing with Chaos Mesh also sweeps its kinds.
        let before = recorder.writes().len();
        faults.heal_all().await.unwrap();
        let swept: Vec<String> = recorder.writes()[before..].iter().map(|w| w.path.rsplit('/').next().unwrap().to_string()).collect();
        for kind in ["networkpolicies", "podchaos", "networkchaos"] {
            assert!(swept.iter().any(|p| p == kind), "{kind} not swept: {swept:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn pause_journals_the_pod_then_execs_kill_stop_in_its_container() {
        let dir = tempdir("pause");
        let mut reads = 0;
        let mut inner = cluster(false);
        let (client, recorder) = mock::serve(move |seen| {
            if seen.method == "GET" && seen.path == "/api/v1/namespaces/cdc-ingestion/pods/kafka-0" {
                reads += 1;
                // There while the fault starts; gone (replaced, say) by the heal.
                if reads == 1 {
                    return Reply::Json(200, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kafka-0"}, "spec": {"shareProcessNamespace": true, "containers": []}}));
                }
                return Reply::Json(404, mock::status(404, "NotFound", "pods not found"));
            }
            inner(seen)
        });
        let faults = KindFaults::new(KindCluster::new(client), KindFaults::journal_path(&dir)).await.unwrap();
        // The mock answers the exec without upgrading the connection: the error names the pod,
        // and the pod is journaled already, so a heal will send it SIGCONT.
        let err = faults.apply(7, &spec(FaultKind::Pause, "kafka-1"), &mut LeaderIsTwo).await.unwrap_err().to_string();
        assert!(err.contains("`kill -STOP -1` in pod cdc-ingestion/kafka-0"), "{err}");
        let exec = recorder.seen().into_iter().find(|s| s.path.ends_with("/exec")).unwrap();
        assert_eq!(exec.path, "/api/v1/namespaces/cdc-ingestion/pods/kafka-0/exec");
        assert_eq!(exec.query["command"], ["sh", "-c", "kill -STOP -1"]);
        assert_eq!(exec.param("container"), Some("kafka"));
        let journal = load_journal(&KindFaults::journal_path(&dir)).unwrap();
        assert_eq!(journal[0].paused, vec![("cdc-ingestion".to_string(), "kafka-0".to_string(), Some("kafka".to_string()))]);
        // The pod is gone by the heal (this API server has no pods): nothing to resume, and the
        // fault leaves the journal.
        faults.heal(&journal[0]).await.unwrap();
        let seen = recorder.seen();
        assert!(seen.iter().any(|s| s.method == "GET" && s.path == "/api/v1/namespaces/cdc-ingestion/pods/kafka-0"), "{seen:?}");
        assert_eq!(seen.iter().filter(|s| s.path.ends_with("/exec")).count(), 1, "no SIGCONT to a pod that is gone");
        assert!(load_journal(&KindFaults::journal_path(&dir)).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn pause_is_refused_where_the_server_would_be_pid_1() {
        let dir = tempdir("pid1");
        let mut inner = cluster(false);
        let (client, recorder) = mock::serve(move |seen| {
            if seen.method == "GET" && seen.path == "/api/v1/namespaces/cdc-ingestion/pods/kafka-2" {
                return Reply::Json(200, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kafka-2"}, "spec": {"containers": []}}));
            }
            inner(seen)
        });
        let faults = KindFaults::new(KindCluster::new(client), KindFaults::journal_path(&dir)).await.unwrap();
        let err = faults.apply(8, &spec(FaultKind::Pause, "kafka-3"), &mut LeaderIsTwo).await.unwrap_err().to_string();
        assert!(err.contains("pause of pod cdc-ingestion/kafka-2") && err.contains("shareProcessNamespace"), "{err}");
        assert!(!recorder.seen().iter().any(|s| s.path.ends_with("/exec")), "no exec that would do nothing");
        assert!(load_journal(&KindFaults::journal_path(&dir)).unwrap().is_empty());
    }

    #[test]
    fn seeded_roles_name_what_they_cannot_resolve() {
        use rand::SeedableRng;
        let mut roles = SeededRoles { nodes: kafka_nodes(), rng: StdRng::seed_from_u64(1) };
        assert_eq!(roles.node(&Target::Node(3)).unwrap().0, 3);
        assert!(roles.node(&Target::Node(4)).unwrap_err().to_string().contains("there is no kafka-4"));
        let err = roles.node(&Target::Controller).unwrap_err().to_string();
        assert!(err.contains("target controller: a Kafka role is resolved from the cluster's metadata"), "{err}");
    }

    fn ips() -> std::collections::BTreeMap<u16, String> {
        [(1, "10.244.1.5"), (2, "10.244.2.7"), (3, "10.244.3.9")].into_iter().map(|(n, ip)| (n, ip.to_string())).collect()
    }

    fn rules_text(rules: &[PodRule]) -> Vec<String> {
        rules.iter().map(|(pod, r)| format!("{pod}: {}", r.join(" "))).collect()
    }

    #[test]
    fn each_partition_is_probed_where_its_rules_must_block() {
        let probes = |kind, target: &str| {
            let (rules, _, _) = iptables_rules(1, &planned(&spec(kind, target)), &ips()).unwrap();
            iptables_probes(&rules, &ips()).into_iter().map(|p| format!("{} → {}:{}", p.pod, p.ip, p.port)).collect::<Vec<_>>()
        };
        let isolate = probes(FaultKind::Isolate, "kafka-2");
        assert_eq!(isolate, ["kafka-1 → 10.244.1.5:9092", "kafka-1 → 10.244.3.9:9092"]);
        assert_eq!(probes(FaultKind::Split, "kafka-1"), ["kafka-0 → 10.244.2.7:9092", "kafka-0 → 10.244.3.9:9092"]);
        let one_way = FaultSpec { to: Some(Target::Node(3)), ..spec(FaultKind::OneWay, "kafka-1") };
        let (rules, _, _) = iptables_rules(1, &planned(&one_way), &ips()).unwrap();
        let p: Vec<String> = iptables_probes(&rules, &ips()).into_iter().map(|p| format!("{} → {}:{}", p.pod, p.ip, p.port)).collect();
        assert_eq!(p, ["kafka-0 → 10.244.3.9:9092"], "from the source to the cut pod");
        assert_eq!(probes(FaultKind::CutClients, "connect"), ["kafka-0 → 10.244.1.5:9094", "kafka-1 → 10.244.2.7:9094", "kafka-2 → 10.244.3.9:9094"]);
        assert_eq!(probe_script(&Probe { pod: "kafka-0".into(), ip: "10.0.0.1".into(), port: 9092 }), "timeout 2 bash -c 'exec 3<>/dev/tcp/10.0.0.1/9092'");
    }

    #[test]
    fn iptables_partitions_are_the_local_platforms_rules_in_the_pods() {
        let (rules, pods, detail) = iptables_rules(3, &planned(&spec(FaultKind::Split, "leader:crm.public.customers/0")), &ips()).unwrap();
        assert_eq!(
            rules_text(&rules),
            [
                "kafka-1: INPUT -s 10.244.1.5 -m comment --comment cdc-chaos:fault:3 -j DROP",
                "kafka-1: OUTPUT -d 10.244.1.5 -m comment --comment cdc-chaos:fault:3 -j DROP",
                "kafka-1: INPUT -s 10.244.3.9 -m comment --comment cdc-chaos:fault:3 -j DROP",
                "kafka-1: OUTPUT -d 10.244.3.9 -m comment --comment cdc-chaos:fault:3 -j DROP",
            ]
        );
        assert_eq!(pods, ["cdc-ingestion/kafka-1"]);
        assert_eq!(detail, "leader of crm.public.customers/0 is node 2; kafka-1 cut from kafka-0 (10.244.1.5), kafka-2 (10.244.3.9)");
        let (rules, _, _) = iptables_rules(4, &planned(&spec(FaultKind::Isolate, "kafka-3")), &ips()).unwrap();
        assert_eq!(rules_text(&rules), ["kafka-2: INPUT ! -i lo -m comment --comment cdc-chaos:fault:4 -j DROP", "kafka-2: OUTPUT ! -o lo -m comment --comment cdc-chaos:fault:4 -j DROP"]);
        let mut one_way = spec(FaultKind::OneWay, "kafka-1");
        one_way.to = Some(Target::Node(3));
        let (rules, pods, _) = iptables_rules(5, &planned(&one_way), &ips()).unwrap();
        assert_eq!(rules_text(&rules), ["kafka-2: INPUT -s 10.244.1.5 -m comment --comment cdc-chaos:fault:5 -j DROP"]);
        assert_eq!(pods, ["cdc-ingestion/kafka-0", "cdc-ingestion/kafka-2"]);
        let (rules, pods, detail) = iptables_rules(6, &planned(&spec(FaultKind::CutClients, "connect")), &ips()).unwrap();
        assert_eq!(rules.len(), 6);
        assert_eq!(rules_text(&rules)[..2], ["kafka-0: INPUT -p tcp --dport 9094 -m comment --comment cdc-chaos:fault:6 -j DROP", "kafka-0: OUTPUT -p tcp --sport 9094 -m comment --comment cdc-chaos:fault:6 -j DROP"]);
        assert_eq!(pods.len(), 3);
        assert_eq!(detail, "connect cut from every Kafka node (listener port 9094)");
        let (rules, _, _) = iptables_rules(7, &planned(&spec(FaultKind::CutClients, "cluster")), &ips()).unwrap();
        assert_eq!(rules.len(), 12);
        // A node without an IP (its pod not running) is named.
        let mut missing = ips();
        missing.remove(&3);
        let err = iptables_rules(8, &planned(&spec(FaultKind::Split, "kafka-1")), &missing).unwrap_err().to_string();
        assert!(err.contains("pod cdc-ingestion/kafka-2 has no IP"), "{err}");
    }

    /// The scripts the netfault container runs, run here by this host's iptables in a network
    /// namespace of their own: the rules go in, `delete_script` removes one (and is a no-op when
    /// it is gone), the sweep removes every tagged rule and only those.
    #[test]
    fn the_iptables_scripts_add_and_remove_exactly_the_tagged_rules() {
        use std::process::Command;
        assert!(crate::config::is_root(), "this test runs iptables in a network namespace: run it as root");
        let ns = format!("cdcu-netfault-{}", std::process::id());
        let sh = |script: &str| {
            let out = Command::new("ip").args(["netns", "exec", &ns, "sh", "-c", script]).output().expect("ip netns exec");
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        /// Removes the namespace, with its rules, however the test ends.
        struct Netns(String);
        impl Drop for Netns {
            fn drop(&mut self) {
                let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
            }
        }
        assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success());
        let _guard = Netns(ns.clone());
        let (mut rules, _, _) = iptables_rules(3, &planned(&spec(FaultKind::Split, "kafka-1")), &ips()).unwrap();
        rules.extend(iptables_rules(4, &planned(&spec(FaultKind::Isolate, "kafka-1")), &ips()).unwrap().0);
        for (_, r) in &rules {
            sh(&format!("iptables -w -A {}", r.join(" ")));
        }
        sh("iptables -w -A INPUT -s 192.0.2.1 -m comment --comment someone-else -j DROP");
        let tagged = |listing: &str| listing.lines().filter(|l| l.contains("cdc-chaos:fault:")).count();
        assert_eq!(tagged(&sh("iptables -w -S")), 6);
        sh(&delete_script(&rules[0].1));
        sh(&delete_script(&rules[0].1));
        assert_eq!(tagged(&sh("iptables -w -S")), 5);
        sh(SWEEP_SCRIPT);
        let left = sh("iptables -w -S");
        assert_eq!(tagged(&left), 0, "{left}");
        assert!(left.contains("someone-else"), "the sweep removes only the faults' rules: {left}");
    }

    #[tokio::test]
    async fn a_kafka_statefulset_with_netfault_makes_partitions_iptables_rules_by_exec() {
        let dir = tempdir("iptables");
        let (client, recorder) = mock::serve(|seen| {
            if seen.path == "/apis/chaos-mesh.org/v1alpha1" {
                return Reply::Json(404, mock::status(404, "NotFound", "not found"));
            }
            if seen.method == "GET" && seen.path == "/apis/apps/v1/namespaces/cdc-ingestion/statefulsets/kafka" {
                return Reply::Json(200, json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kafka"}, "spec": {"selector": {}, "serviceName": "kafka", "template": {"spec": {"containers": [
                    {"name": "kafka"},
                    {"name": "netfault", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}
                ]}}}}));
            }
            if let Some(pod) = seen.path.strip_prefix("/api/v1/namespaces/cdc-ingestion/pods/").filter(|p| !p.contains('/')) {
                let ip = format!("10.244.0.{}", 10 + pod.bytes().last().unwrap() - b'0');
                return Reply::Json(200, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "status": {"podIP": ip}}));
            }
            Reply::Json(200, mock::echo(seen))
        });
        let faults = KindFaults::new(KindCluster::new(client), KindFaults::journal_path(&dir)).await.unwrap();
        assert!(matches!(faults.mechanism(), Mechanism::Iptables));
        // The mock does not upgrade the exec: the first rule's exec fails naming it, after the
        // journal holds every rule.
        let err = faults.apply(9, &spec(FaultKind::Isolate, "kafka-2"), &mut LeaderIsTwo).await.unwrap_err().to_string();
        assert!(err.contains("`iptables -w -A INPUT ! -i lo -m comment --comment cdc-chaos:fault:9 -j DROP` in pod cdc-ingestion/kafka-1"), "{err}");
        let exec = recorder.seen().into_iter().find(|s| s.path.ends_with("/exec")).unwrap();
        assert_eq!(exec.path, "/api/v1/namespaces/cdc-ingestion/pods/kafka-1/exec");
        assert_eq!(exec.param("container"), Some(NETFAULT_CONTAINER));
        assert_eq!(exec.query["command"][..4], ["iptables", "-w", "-A", "INPUT"]);
        let journal = load_journal(&KindFaults::journal_path(&dir)).unwrap();
        assert_eq!(journal[0].rules.len(), 2);
        assert!(!journal[0].labelled, "no object to delete by label");
        assert!(recorder.writes().iter().all(|w| !w.path.contains("networkpolicies")), "no NetworkPolicy");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
