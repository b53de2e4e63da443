//! [`KindStack`]: the stack deployed on the kubeconfig's cluster, as a run drives it
//! (`run`/`replay`/`sweep`/`status --platform kind`).
//!
//! The harness runs on its own machine and reaches the cluster through port forwards
//! ([`super::forward`]): the load generator writes to the source databases, the capture reads
//! Kafka, the warehouse and the lake, the supervisor talks to Connect's REST API — the same code
//! as on the local platform, pointed at the local ends of the forwards. Kafka is the one client
//! a plain forward cannot serve (a client connects to the address each broker advertises), so
//! every node has a `HARNESS` listener that advertises `127.0.0.1:<39092 + ordinal>`, the fixed
//! local port of that node's forward. Keeping the harness outside the cluster keeps one clock for
//! the history, the fault timeline and the checker, and writes `reports/<run-id>/` where the
//! user is, as on the local platform; the price is that the harness's machine must reach the API
//! server for the length of the run.
//!
//! Health comes from the API (each component's pods ready; readiness probes check what the local
//! platform checks, the pipeline's `/ready` included) plus the connectors' states from Connect.
//! Faults go through [`super::faults`]; role targets (partition leader, group coordinator) are
//! resolved from Kafka's metadata through the forwards, the active controller and the
//! transaction coordinator by running Kafka's own tools in a broker pod.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use cdc_pipeline::lake::LakeConfig;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, AttachParams, ListParams, LogParams};
use rand::rngs::StdRng;
use tokio::io::AsyncReadExt;

use super::cluster::{api_error, KindCluster, COMPONENT};
use super::faults::{KindFault, KindFaults, Roles, SeededRoles};
use super::forward::{self, Forward, ForwardSpec, PodChoice};
use super::manifests::{self as m, HARNESS_LOCAL_BASE, KAFKA_HARNESS_PORT, KAFKA_NODES, KAFKA_SERVICE};
use super::{NS_INGESTION, NS_LAKE, NS_PROCESSING, NS_SOURCES, NS_WAREHOUSE};
use crate::error::{Error, Result};
use crate::platform::stack::{Applied, Healed, Injector};
use crate::platform::stack::{all_healthy, unhealthy, ComponentStatus, Health, Targets};
use crate::platform::stack::{Endpoints, Stack};
use crate::platform::{connect, roles, KafkaNode, Topology};
use crate::profile::Profile;
use crate::progress;
use crate::scenario::{FaultSpec, Target};

/// How to reach and deploy the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct KindOptions {
    /// The kustomize overlay `ensure` applies when the stack is not up.
    pub overlay: PathBuf,
    /// Longest wait for the applied workloads to be ready.
    pub ready_timeout: Duration,
}

/// The label that names a component's pods.
const NAME_LABEL: &str = "app.kubernetes.io/name";

/// A component of the cluster: its name as on the local platform, where its pods are.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: String,
    pub namespace: &'static str,
    pub pods: PodChoice,
}

/// Every component, in the order `status` lists them (as the local platform does).
pub fn components() -> Vec<Component> {
    let labelled = |name: &str, namespace: &'static str, values: &str| Component { name: name.into(), namespace, pods: PodChoice::Labelled(format!("{NAME_LABEL} in ({values})")) };
    let mut out = vec![labelled("postgres", NS_SOURCES, "postgres"), labelled("mariadb", NS_SOURCES, "mariadb")];
    out.extend((1..=KAFKA_NODES).map(|id| Component { name: format!("kafka-{id}"), namespace: NS_INGESTION, pods: PodChoice::Named(super::faults::kafka_pod(id)) }));
    out.extend([
        labelled("connect", NS_INGESTION, "connect"),
        labelled("warehouse", NS_WAREHOUSE, "warehouse"),
        labelled("lake", NS_LAKE, "seaweedfs,minio"),
        labelled("join", NS_PROCESSING, "join"),
        labelled("warehouse-sink", NS_PROCESSING, "warehouse-sink"),
        labelled("lake-sink", NS_PROCESSING, "lake-sink"),
    ]);
    out
}

/// The local port of Kafka node `id`'s forward: what its `HARNESS` listener advertises.
pub fn harness_port(id: u16) -> u16 {
    HARNESS_LOCAL_BASE + id - 1
}

/// The forwards a run needs: one per Kafka node (at its advertised port), and one to each of
/// the source databases, the warehouse, the lake and Connect's REST API (any free port).
pub fn forward_specs() -> Vec<ForwardSpec> {
    let find = |name: &str| components().into_iter().find(|c| c.name == name).expect("a component");
    let to = |name: &str, port: u16| {
        let c = find(name);
        ForwardSpec { component: c.name, namespace: c.namespace.into(), pods: c.pods, port, local_port: 0 }
    };
    let mut out: Vec<ForwardSpec> = (1..=KAFKA_NODES)
        .map(|id| ForwardSpec {
            component: format!("kafka-{id}"),
            namespace: NS_INGESTION.into(),
            pods: PodChoice::Named(super::faults::kafka_pod(id)),
            port: KAFKA_HARNESS_PORT,
            local_port: harness_port(id),
        })
        .collect();
    out.extend([
        to("postgres", m::POSTGRES_PORT),
        to("mariadb", m::MARIADB_PORT),
        to("warehouse", m::POSTGRES_PORT),
        to("lake", m::LAKE_PORT),
        to("connect", m::CONNECT_PORT),
    ]);
    out
}

/// The credentials the harness's clients use, read from the Secrets the overlay generated.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub crm_password: String,
    pub fleet_password: String,
    pub warehouse_password: String,
    pub lake_access_key: String,
    pub lake_secret_key: String,
}

/// `key=value` connection-string quoting (libpq): single quotes, `\` and `'` escaped.
fn pq_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes a URL's userinfo part.
fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The endpoints of a cluster whose forwards listen at `local(component)`.
pub fn endpoints(local: impl Fn(&str) -> String, creds: &Credentials) -> Endpoints {
    let port = |c: &str| -> u16 { local(c).rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0) };
    let nodes = (1..=KAFKA_NODES)
        .map(|id| KafkaNode {
            id,
            name: format!("kafka-{id}"),
            netns: None,
            host: "127.0.0.1".into(),
            broker_port: harness_port(id),
            controller_port: 0,
            connect_port: None,
            pipeline_port: None,
        })
        .collect();
    let topo = Topology {
        network: "kubernetes (port forwards)".into(),
        bridge: None,
        bridge_addr: None,
        nodes,
        postgres: local("postgres"),
        mariadb: local("mariadb"),
        connect: local("connect"),
        warehouse: local("warehouse"),
        join_metrics: String::new(),
        sink_metrics: String::new(),
        lake_sink_metrics: String::new(),
        lake: local("lake"),
    };
    Endpoints {
        sources: Targets {
            postgres: format!("host=127.0.0.1 port={} user=cdc password={} dbname=crm connect_timeout=3", port("postgres"), pq_quote(&creds.crm_password)),
            mariadb: format!("mysql://cdc:{}@127.0.0.1:{}/fleet", url_encode(&creds.fleet_password), port("mariadb")),
        },
        warehouse: format!("host=127.0.0.1 port={} user=postgres password={} dbname=warehouse connect_timeout=10", port("warehouse"), pq_quote(&creds.warehouse_password)),
        lake: LakeConfig {
            endpoint: format!("http://{}", local("lake")),
            bucket: LAKE_BUCKET.into(),
            region: "us-east-1".into(),
            access_key: creds.lake_access_key.clone(),
            secret_key: creds.lake_secret_key.clone(),
            prefix: "customer_360".into(),
            batch_max: 1000,
            batch_wait: Duration::from_secs(1),
        },
        topo,
    }
}

/// The lake's bucket: the lake sink's `--bucket` in the manifests.
pub const LAKE_BUCKET: &str = "cdc-chaos-lake";

/// One key of a Secret, as text.
async fn secret_key(client: &kube::Client, namespace: &str, secret: &str, key: &str) -> Result<String> {
    let s = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(secret)
        .await
        .map_err(|e| api_error(format!("reading Secret {namespace}/{secret} (generated by the overlay from secrets/*.env)"), e))?;
    let bytes = s
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| Error::component(COMPONENT, format!("Secret {namespace}/{secret} has no key {key}")))?;
    String::from_utf8(bytes.0.clone()).map_err(|_| Error::component(COMPONENT, format!("Secret {namespace}/{secret} key {key} is not UTF-8")))
}

/// Reads the credentials from the cluster's Secrets.
pub async fn credentials(client: &kube::Client) -> Result<Credentials> {
    Ok(Credentials {
        crm_password: secret_key(client, NS_SOURCES, "source-credentials", "cdc-password").await?,
        fleet_password: secret_key(client, NS_SOURCES, "source-credentials", "mariadb-cdc-password").await?,
        warehouse_password: secret_key(client, NS_WAREHOUSE, "warehouse-credentials", "postgres-password").await?,
        lake_access_key: secret_key(client, NS_LAKE, "lake-credentials", "access-key").await?,
        lake_secret_key: secret_key(client, NS_LAKE, "lake-credentials", "secret-key").await?,
    })
}

/// The profile the deployed Kafka configuration was rendered from: the `from profile <name>`
/// of the first line of `server.properties` in ConfigMap `kafka-config`.
pub fn deployed_profile(server_properties: &str) -> Option<String> {
    let first = server_properties.lines().next()?;
    let (_, rest) = first.split_once("from profile ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// Health of one component from its pods: `healthy` if one is ready, `unreachable` if one runs
/// but none is ready, `down` if none runs; with the pods' names and states.
pub fn pod_health(pods: &[Pod]) -> (Health, String) {
    let describe = |p: &Pod| {
        let name = p.metadata.name.clone().unwrap_or_default();
        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Unknown".into());
        let ready = if forward::pod_serves(p) { "ready" } else { "not ready" };
        let deleting = if p.metadata.deletion_timestamp.is_some() { ", terminating" } else { "" };
        format!("{name} {phase} {ready}{deleting}")
    };
    let detail = pods.iter().map(describe).collect::<Vec<_>>().join(", ");
    if pods.iter().any(forward::pod_serves) {
        (Health::Healthy, detail)
    } else if pods.iter().any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")) {
        (Health::Unreachable, detail)
    } else {
        (Health::Down, if detail.is_empty() { "no pod".into() } else { detail })
    }
}

/// The stack on the kubeconfig's cluster, with its port forwards while it lives.
pub struct KindStack {
    rt: tokio::runtime::Runtime,
    cluster: KindCluster,
    cache: PathBuf,
    home: PathBuf,
    opts: KindOptions,
    open: Mutex<Option<(Endpoints, Vec<Forward>)>>,
}

impl KindStack {
    /// Reaches the kubeconfig's cluster (an error naming what to do if none answers).
    pub fn connect(cfg: &crate::StackConfig, opts: KindOptions) -> Result<KindStack> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::component(COMPONENT, format!("starting the Kubernetes client's runtime: {e}")))?;
        let cluster = rt.block_on(KindCluster::connect())?;
        Ok(KindStack { rt, cluster, cache: cfg.cache.clone(), home: cfg.home.clone(), opts, open: Mutex::new(None) })
    }

    fn client(&self) -> kube::Client {
        self.cluster.client().clone()
    }

    /// Opens the forwards and reads the credentials, once.
    fn open(&self) -> Result<Endpoints> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((e, _)) = open.as_ref() {
            return Ok(e.clone());
        }
        let client = self.client();
        let (endpoints, forwards) = self.rt.block_on(async {
            let creds = credentials(&client).await?;
            let mut forwards = Vec::new();
            for spec in forward_specs() {
                forwards.push(forward::start(client.clone(), spec).await?);
            }
            let local = |c: &str| forwards.iter().find(|f| f.spec.component == c).map(Forward::addr).unwrap_or_default();
            Ok::<_, Error>((endpoints(local, &creds), forwards))
        })?;
        progress::note(&format!(
            "port forwards: {}",
            forwards.iter().map(|f| format!("{} {}", f.spec.component, f.addr())).collect::<Vec<_>>().join(", ")
        ));
        *open = Some((endpoints.clone(), forwards));
        Ok(endpoints)
    }

    async fn pods_of(&self, c: &Component) -> Result<Vec<Pod>> {
        let api: Api<Pod> = Api::namespaced(self.client(), c.namespace);
        match &c.pods {
            PodChoice::Named(name) => Ok(api.get_opt(name).await.map_err(|e| api_error(format!("reading pod {}/{name}", c.namespace), e))?.into_iter().collect()),
            PodChoice::Labelled(selector) => Ok(api
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| api_error(format!("listing the pods of {} ({}/{selector})", c.name, c.namespace), e))?
                .items),
        }
    }

    fn overlay_for(&self, profile: &Profile) -> Result<PathBuf> {
        overlay_for(&self.cache, &self.home, &self.opts.overlay, profile)
    }

    /// The profile the cluster's Kafka runs, if it is deployed.
    fn running_profile(&self) -> Result<Option<String>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client(), NS_INGESTION);
        let cm = self.rt.block_on(api.get_opt("kafka-config")).map_err(|e| api_error("reading ConfigMap cdc-ingestion/kafka-config", e))?;
        Ok(cm.and_then(|c| c.data).and_then(|d| d.get("server.properties").and_then(|t| deployed_profile(t))))
    }

    /// Resolves role targets on this cluster.
    fn roles(&self) -> Result<ClusterRoles> {
        Ok(ClusterRoles { handle: self.rt.handle().clone(), client: self.client(), topo: self.open()?.topo })
    }
}

/// Resolves role targets on a cluster: partition leaders and group coordinators from Kafka's
/// metadata through the forwards, the active controller and the transaction coordinator by
/// running Kafka's own tools in a broker pod.
pub struct ClusterRoles {
    handle: tokio::runtime::Handle,
    client: kube::Client,
    topo: Topology,
}

impl ClusterRoles {
    /// Runs `command` in Kafka node `id`'s container and returns its standard output.
    async fn exec_in_kafka(&self, id: u16, command: &[&str]) -> Result<String> {
        let pod = super::faults::kafka_pod(id);
        let what = format!("`{}` in pod {NS_INGESTION}/{pod}", command.join(" "));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NS_INGESTION);
        let run = async {
            let mut p = api
                .exec(&pod, command.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &AttachParams::default().container(KAFKA_SERVICE).stdout(true).stderr(false))
                .await
                .map_err(|e| api_error(&what, e))?;
            let mut out = String::new();
            if let Some(mut stdout) = p.stdout() {
                stdout.read_to_string(&mut out).await.map_err(|e| Error::component(COMPONENT, format!("{what}: {e}")))?;
            }
            p.join().await.map_err(|e| Error::component(COMPONENT, format!("{what}: {e}")))?;
            Ok::<_, Error>(out)
        };
        tokio::time::timeout(Duration::from_secs(40), run).await.map_err(|_| Error::component(COMPONENT, format!("{what}: no answer in 40 s")))?
    }

    /// Resolves a role target to a Kafka node of the cluster.
    pub fn resolve(&self, role: &Target) -> Result<u16> {
        let topo = &self.topo;
        let nodes = roles::nodes(topo);
        let n = match role {
            Target::Leader { topic, partition } => roles::partition_leader(topo, topic, *partition)?,
            Target::GroupCoordinator(group) => roles::group_coordinator(topo, group)?,
            Target::Controller => {
                let mut errors = Vec::new();
                let mut found = None;
                for id in 1..=KAFKA_NODES {
                    let cmd = ["/opt/kafka/bin/kafka-metadata-quorum.sh", "--bootstrap-controller", "localhost:9093", "describe", "--status"];
                    match self.handle.block_on(self.exec_in_kafka(id, &cmd)) {
                        Ok(out) => match crate::platform::kafka::parse_quorum_leader(&out) {
                            Some(l) if nodes.contains(&l) => {
                                found = Some(l);
                                break;
                            }
                            _ => errors.push(format!("kafka-{id}: no quorum leader ({})", roles::first_line(&out))),
                        },
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                found.ok_or_else(|| Error::component("kafka", format!("no node names the active controller: {}", errors.join("; "))))?
            }
            Target::Coordinator => {
                let mut errors = Vec::new();
                let mut found = None;
                for id in 1..=KAFKA_NODES {
                    let cmd = ["/opt/kafka/bin/kafka-transactions.sh", "--bootstrap-server", "localhost:9092", "describe", "--transactional-id", roles::JOIN_TRANSACTIONAL_ID];
                    match self.handle.block_on(self.exec_in_kafka(id, &cmd)).and_then(|out| roles::coordinator_in(&out, roles::JOIN_TRANSACTIONAL_ID, &nodes)) {
                        Ok(n) => {
                            found = Some(n);
                            break;
                        }
                        Err(e) => errors.push(format!("kafka-{id}: {e}")),
                    }
                }
                found.ok_or_else(|| Error::component("kafka", errors.join("; ")))?
            }
            other => return Err(Error::Fault(format!("{other} is not one Kafka node"))),
        };
        Ok(n as u16)
    }
}


impl Stack for KindStack {
    fn platform(&self) -> &'static str {
        "kind"
    }

    fn endpoints(&self) -> Result<Endpoints> {
        self.open()
    }

    fn status(&self) -> Result<Vec<ComponentStatus>> {
        let mut out = Vec::new();
        for c in components() {
            let pods = self.rt.block_on(self.pods_of(&c))?;
            let (mut health, mut detail) = pod_health(&pods);
            if c.name == connect::NAME && health == Health::Healthy {
                if let Ok(e) = self.open() {
                    let (running, states) = connect::connectors_health(&e.topo);
                    if !running {
                        health = Health::Degraded;
                    }
                    detail = states;
                }
            }
            out.push(ComponentStatus {
                name: c.name.clone(),
                pid: 0,
                address: match &c.pods {
                    PodChoice::Named(n) => format!("{}/{n}", c.namespace),
                    PodChoice::Labelled(_) => format!("{}/{}", c.namespace, c.name),
                },
                netns: None,
                health,
                rss_kib: None,
                detail,
                log: String::new(),
            });
        }
        Ok(out)
    }

    fn ensure(&self, profile: &Profile) -> Result<()> {
        if !profile.overrides.is_empty() {
            return Err(Error::Usage(format!(
                "the scenario overrides settings of profile {} ({}); the cluster deploys a committed rendering of a whole profile: write the settings into a profile file, render it (`cdc-chaos manifests render --profile FILE --out DIR`) and pass --overlay, or run on --platform local",
                profile.name,
                profile.overrides.join(", ")
            )));
        }
        let overlay = self.overlay_for(profile)?;
        let yaml = super::build_overlay(&self.cache, &overlay)?;
        if let Some(p) = self.running_profile()? {
            if p != profile.name {
                progress::step(&format!(
                    "the cluster runs profile {p}, the scenario wants {}: redeploying from {} (the namespaces go, with their volumes)",
                    profile.name,
                    overlay.display()
                ));
                self.rt.block_on(async {
                    self.cluster.delete(&yaml).await?;
                    self.cluster.wait_namespaces_gone(super::NAMESPACES, self.opts.ready_timeout).await
                })?;
            } else {
                let rows = self.status()?;
                if all_healthy(&rows) {
                    progress::step(&format!("cluster stack is up (profile {p})"));
                    return Ok(());
                }
                progress::step(&format!("cluster stack is not healthy ({}): applying {} again", unhealthy(&rows).join(", "), overlay.display()));
            }
        } else {
            progress::step(&format!("deploying {} on the cluster", overlay.display()));
        }
        self.rt.block_on(async {
            let applied = self.cluster.apply(&yaml).await?;
            self.cluster.wait_ready(&applied, self.opts.ready_timeout).await
        })
    }

    fn heal_leftovers(&self) -> Result<Vec<String>> {
        self.rt.block_on(async { KindFaults::new(self.cluster.clone(), KindFaults::journal_path(&self.home)).await?.heal_all().await })
    }

    fn injector(&self, schedule: &[FaultSpec]) -> Result<Box<dyn Injector>> {
        let faults = self.rt.block_on(KindFaults::new(self.cluster.clone(), KindFaults::journal_path(&self.home)))?;
        let roles = if schedule.iter().any(|f| std::iter::once(&f.target).chain(f.to.as_ref()).any(Target::is_role)) { Some(self.roles()?) } else { None };
        Ok(Box::new(KindInjector { handle: self.rt.handle().clone(), roles, faults, active: Mutex::new(Vec::new()) }))
    }

    fn copy_logs(&self, dir: &Path) {
        let logs = dir.join("logs");
        let _ = std::fs::create_dir_all(&logs);
        for c in components() {
            let Ok(pods) = self.rt.block_on(self.pods_of(&c)) else { continue };
            let api: Api<Pod> = Api::namespaced(self.client(), c.namespace);
            for (i, p) in pods.iter().enumerate() {
                let Some(name) = p.metadata.name.clone() else { continue };
                let container = c.name.starts_with("kafka-").then(|| KAFKA_SERVICE.to_string());
                let suffix = if pods.len() > 1 { format!("-{i}") } else { String::new() };
                for previous in [true, false] {
                    let params = LogParams { container: container.clone(), previous, ..Default::default() };
                    if let Ok(text) = self.rt.block_on(api.logs(&name, &params)) {
                        let file = logs.join(format!("{}{suffix}{}.log", c.name, if previous { ".previous" } else { "" }));
                        let _ = std::fs::write(file, text);
                    }
                }
            }
        }
        match super::create::export_logs(&self.cache, &logs.join("kind")) {
            Ok(true) => progress::note(&format!("kind export logs: {}", logs.join("kind").display())),
            Ok(false) => {}
            Err(e) => progress::note(&format!("kind export logs failed: {e}")),
        }
    }
}

/// The overlay that deploys `profile`: `--overlay` if it does; for another profile, when
/// `--overlay` is the repository's kind overlay, an overlay of it written into the home
/// whose patches replace each generated ConfigMap's data with `profile`'s rendering.
pub fn overlay_for(cache: &Path, home: &Path, overlay: &Path, profile: &Profile) -> Result<PathBuf> {
    let yaml = super::build_overlay(cache, overlay)?;
    let deploys = profile_of_overlay(&yaml);
    if deploys.as_deref() == Some(profile.name.as_str()) {
        return Ok(overlay.to_path_buf());
    }
    let ours = std::fs::canonicalize(overlay).ok();
    let repository = std::fs::canonicalize(super::KIND_OVERLAY).ok();
    let Some(base) = ours.filter(|o| Some(o) == repository.as_ref()) else {
        return Err(Error::Usage(format!(
            "{} deploys profile {:?}, the scenario wants {:?}: pass --overlay with a rendering of it (`cdc-chaos manifests render --profile {} --out DIR`)",
            overlay.display(),
            deploys.unwrap_or_default(),
            profile.name,
            profile.name
        )));
    };
    let dir = home.join("kind").join(format!("overlay-{}", profile.name));
    crate::platform::ensure_dir(&dir)?;
    let dir = std::fs::canonicalize(&dir).map_err(|e| Error::io("resolving the profile overlay's directory", &dir, e))?;
    // kustomize takes no absolute path to another kustomization.
    let text = profile_overlay(&relative(&dir, &base), profile)?;
    crate::platform::write_file(&dir.join("kustomization.yaml"), &text)?;
    Ok(dir)
}

/// `to` relative to the directory `from` (both absolute).
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

/// A kustomization (as JSON, which kustomize reads as YAML) of overlay `base` whose patches give
/// every ConfigMap of `profile`'s rendering its data.
pub fn profile_overlay(base: &Path, profile: &Profile) -> Result<String> {
    let mut patches = Vec::new();
    for file in super::manifests::render(profile)?.files()? {
        if file.name == "kustomization.yaml" {
            continue;
        }
        for m in super::cluster::parse_manifests(&file.text)? {
            if m.gvk.kind != "ConfigMap" {
                continue;
            }
            let data = m.object.data.get("data").cloned().unwrap_or_else(|| serde_json::json!({}));
            let patch = serde_json::json!([{"op": "replace", "path": "/data", "value": data}]);
            patches.push(serde_json::json!({
                "target": {"kind": "ConfigMap", "name": m.at.name, "namespace": m.at.namespace},
                "patch": patch.to_string(),
            }));
        }
    }
    let k = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [base.display().to_string()],
        "patches": patches,
    });
    Ok(format!(
        "# Profile {} on the kind overlay {}: written by cdc-chaos for a run under that profile.\n{}\n",
        profile.name,
        base.display(),
        serde_json::to_string_pretty(&k).expect("json")
    ))
}

/// The profile a built overlay deploys: the one its `kafka-config` was rendered from.
pub fn profile_of_overlay(yaml: &str) -> Option<String> {
    let manifests = super::cluster::parse_manifests(yaml).ok()?;
    let cm = manifests.iter().find(|m| m.at.kind == "ConfigMap" && m.at.name == "kafka-config")?;
    cm.object.data["data"]["server.properties"].as_str().and_then(deployed_profile)
}

/// Faults on the cluster during a run: [`KindFaults`], role targets resolved first.
struct KindInjector {
    handle: tokio::runtime::Handle,
    roles: Option<ClusterRoles>,
    faults: KindFaults,
    active: Mutex<Vec<KindFault>>,
}

/// Targets resolved before a fault is applied, the rest drawn by a seeded generator.
struct Resolved {
    known: Vec<(Target, u16, String)>,
    seeded: SeededRoles,
}

impl Roles for Resolved {
    fn node(&mut self, target: &Target) -> Result<(u16, String)> {
        match self.known.iter().find(|(t, _, _)| t == target) {
            Some((_, n, d)) => Ok((*n, d.clone())),
            None => self.seeded.node(target),
        }
    }
}

impl Injector for KindInjector {
    fn apply(&self, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<Applied> {
        let mut known = Vec::new();
        for t in std::iter::once(&f.target).chain(f.to.as_ref()).filter(|t| t.is_role()) {
            let roles = self.roles.as_ref().ok_or_else(|| Error::component("nemesis", format!("{t}: no role resolver")))?;
            let n = roles.resolve(t)?;
            known.push((t.clone(), n, roles::describe(t, n)));
        }
        let seed: u64 = rand::Rng::random(rng);
        let mut resolved = Resolved { known, seeded: SeededRoles { nodes: super::faults::kafka_nodes(), rng: rand::SeedableRng::seed_from_u64(seed) } };
        let (fault, evidence) = self.handle.block_on(self.faults.apply(id, f, &mut resolved))?;
        let out = Applied { components: fault.pods.clone(), detail: fault.detail.clone(), evidence };
        self.active.lock().unwrap_or_else(|p| p.into_inner()).push(fault);
        Ok(out)
    }

    fn heal(&self, id: usize) -> Option<Healed> {
        let taken = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            active.iter().position(|a| a.id == id).map(|p| active.remove(p))
        }?;
        let (errors, evidence) = match self.handle.block_on(self.faults.heal_with_proofs(&taken)) {
            Ok(evidence) => (vec![], evidence),
            Err(e) => (vec![e.to_string()], vec![]),
        };
        Some(Healed { components: taken.pods, errors, evidence })
    }

    fn in_force(&self) -> Vec<usize> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|a| a.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::kind::mock::{self, Reply};
    use serde_json::json;

    fn creds() -> Credentials {
        Credentials {
            crm_password: "p'w\\d".into(),
            fleet_password: "a b/c@d".into(),
            warehouse_password: "wh".into(),
            lake_access_key: "ak".into(),
            lake_secret_key: "sk".into(),
        }
    }

    #[test]
    fn each_kafka_node_is_forwarded_at_the_port_it_advertises() {
        let specs = forward_specs();
        for id in 1..=KAFKA_NODES {
            let f = specs.iter().find(|f| f.component == format!("kafka-{id}")).unwrap();
            assert_eq!((f.port, f.local_port), (KAFKA_HARNESS_PORT, 39091 + id));
            assert_eq!(f.pods, PodChoice::Named(format!("kafka-{}", id - 1)));
        }
        for c in ["postgres", "mariadb", "warehouse", "lake", "connect"] {
            assert_eq!(specs.iter().find(|f| f.component == c).unwrap().local_port, 0, "{c}: any free port");
        }
    }

    #[test]
    fn endpoints_point_every_client_at_its_forward_with_the_secrets() {
        let local = |c: &str| format!("127.0.0.1:{}", 40000 + c.len());
        let e = endpoints(local, &creds());
        assert_eq!(e.topo.bootstrap(), "127.0.0.1:39092,127.0.0.1:39093,127.0.0.1:39094");
        assert_eq!(e.topo.connect, "127.0.0.1:40007");
        assert_eq!(e.sources.postgres, r"host=127.0.0.1 port=40008 user=cdc password='p\'w\\d' dbname=crm connect_timeout=3");
        assert_eq!(e.sources.mariadb, "mysql://cdc:a%20b%2Fc%40d@127.0.0.1:40007/fleet");
        assert!(mysql_async::Opts::from_url(&e.sources.mariadb).is_ok());
        assert_eq!(mysql_async::Opts::from_url(&e.sources.mariadb).unwrap().pass(), Some("a b/c@d"));
        let pg: tokio_postgres::Config = e.sources.postgres.parse().unwrap();
        assert_eq!(pg.get_password(), Some(&b"p'w\\d"[..]));
        assert!(e.warehouse.contains("port=40009 user=postgres password='wh' dbname=warehouse"));
        assert_eq!((e.lake.endpoint.as_str(), e.lake.bucket.as_str(), e.lake.access_key.as_str()), ("http://127.0.0.1:40004", LAKE_BUCKET, "ak"));
    }

    #[test]
    fn the_lake_bucket_is_the_lake_sinks() {
        let pipeline = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/base/processing/pipeline.yaml")).unwrap();
        assert!(pipeline.contains(&format!("- --bucket\n            - {LAKE_BUCKET}\n")), "the lake sink's --bucket is {LAKE_BUCKET}");
    }

    #[test]
    fn the_profile_overlay_names_its_base_relatively() {
        assert_eq!(relative(Path::new("/var/lib/cdc-chaos/kind/overlay-weak"), Path::new("/work/main/manifests/overlays/kind")), Path::new("../../../../../work/main/manifests/overlays/kind"));
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/c/d")), Path::new("../c/d"));
    }

    #[test]
    fn another_profile_is_deployed_by_replacing_every_generated_config_map() {
        let weak = Profile::load("weak").unwrap();
        let text = profile_overlay(Path::new("/repo/manifests/overlays/kind"), &weak).unwrap();
        let (comment, json) = text.split_once('\n').unwrap();
        assert!(comment.starts_with("# Profile weak on the kind overlay /repo/manifests/overlays/kind"), "{comment}");
        let k: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(k["resources"], json!(["/repo/manifests/overlays/kind"]));
        let patches = k["patches"].as_array().unwrap();
        let names: Vec<&str> = patches.iter().map(|p| p["target"]["name"].as_str().unwrap()).collect();
        for cm in ["kafka-config", "connect-config", "crm-init", "fleet-init"] {
            assert!(names.contains(&cm), "{cm} not patched: {names:?}");
        }
        let kafka = patches.iter().find(|p| p["target"]["name"] == "kafka-config").unwrap();
        let ops: serde_json::Value = serde_json::from_str(kafka["patch"].as_str().unwrap()).unwrap();
        assert_eq!(ops[0]["op"], "replace");
        assert_eq!(ops[0]["path"], "/data");
        assert_eq!(deployed_profile(ops[0]["value"]["server.properties"].as_str().unwrap()).as_deref(), Some("weak"));
    }

    #[test]
    fn the_deployed_profile_is_read_from_the_rendering() {
        let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/base/generated/kafka-config.yaml")).unwrap();
        let manifests = super::super::cluster::parse_manifests(&committed).unwrap();
        let text = manifests[0].object.data["data"]["server.properties"].as_str().unwrap();
        assert_eq!(deployed_profile(text).as_deref(), Some("durable"));
        assert_eq!(deployed_profile("broker.id=1\n"), None);
    }

    fn pod(name: &str, phase: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    #[test]
    fn health_comes_from_the_pods_readiness() {
        assert_eq!(pod_health(&[pod("join-1", "Running", false), pod("join-2", "Running", true)]).0, Health::Healthy);
        let (h, d) = pod_health(&[pod("join-1", "Running", false)]);
        assert_eq!((h, d.as_str()), (Health::Unreachable, "join-1 Running not ready"));
        assert_eq!(pod_health(&[pod("kafka-0", "Pending", false)]).0, Health::Down);
        assert_eq!(pod_health(&[]), (Health::Down, "no pod".to_string()));
    }

    #[test]
    fn components_are_named_as_on_the_local_platform() {
        let names: Vec<String> = components().into_iter().map(|c| c.name).collect();
        for local in ["postgres", "mariadb", "kafka-1", "kafka-2", "kafka-3", "connect", "warehouse", "lake", "join", "warehouse-sink", "lake-sink"] {
            assert!(names.iter().any(|n| n == local), "{local}");
        }
    }

    fn secret(keys: &[(&str, &str)]) -> serde_json::Value {
        use base64::Engine;
        let data: serde_json::Map<String, serde_json::Value> =
            keys.iter().map(|(k, v)| (k.to_string(), json!(base64::engine::general_purpose::STANDARD.encode(v)))).collect();
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": data})
    }

    #[tokio::test]
    async fn credentials_come_from_the_generated_secrets() {
        let (client, _) = mock::serve(|seen| match seen.path.as_str() {
            "/api/v1/namespaces/cdc-sources/secrets/source-credentials" => Reply::Json(200, secret(&[("cdc-password", "c"), ("mariadb-cdc-password", "m")])),
            "/api/v1/namespaces/cdc-warehouse/secrets/warehouse-credentials" => Reply::Json(200, secret(&[("postgres-password", "w")])),
            "/api/v1/namespaces/cdc-lake/secrets/lake-credentials" => Reply::Json(200, secret(&[("access-key", "a"), ("secret-key", "s")])),
            _ => Reply::Json(404, mock::status(404, "NotFound", "not found")),
        });
        let c = credentials(&client).await.unwrap();
        assert_eq!(c, Credentials { crm_password: "c".into(), fleet_password: "m".into(), warehouse_password: "w".into(), lake_access_key: "a".into(), lake_secret_key: "s".into() });
    }

    #[tokio::test]
    async fn a_missing_secret_or_key_is_named() {
        let (client, _) = mock::serve(|seen| match seen.path.as_str() {
            "/api/v1/namespaces/cdc-sources/secrets/source-credentials" => Reply::Json(200, secret(&[("cdc-password", "c")])),
            _ => Reply::Json(404, mock::status(404, "NotFound", "secrets not found")),
        });
        let e = credentials(&client).await.unwrap_err().to_string();
        assert!(e.contains("Secret cdc-sources/source-credentials has no key mariadb-cdc-password"), "{e}");
        let (client, _) = mock::serve(|_| Reply::Json(404, mock::status(404, "NotFound", "secrets not found")));
        let e = credentials(&client).await.unwrap_err().to_string();
        assert!(e.contains("reading Secret cdc-sources/source-credentials"), "{e}");
    }
}
