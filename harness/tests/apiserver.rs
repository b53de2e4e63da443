//! `--platform kind`'s Kubernetes client against a real API server: kube-apiserver 1.34 on etcd,
//! started on loopback for each test (`platform::kind::apiserver`), with no controller,
//! scheduler or kubelet. The kind overlay (built with the real kustomize) is applied with
//! server-side apply; readiness is watched while the tests write the workloads' status
//! subresources as their controllers would; faults create and delete real NetworkPolicies and
//! pods (which stay Pending: nothing schedules them); `up` and `down` reach the server through a
//! kubeconfig. The binaries are provisioned into the cache if missing (kube-apiserver is built
//! from the Go module proxy the first time, a few minutes); a test fails, never skips, if they
//! cannot be had.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::Client;
use serde_json::{json, Value};

use cdc_chaos::platform::kind::apiserver::{self, LocalApiServer};
use cdc_chaos::platform::kind::cluster::{parse_manifests, KindCluster, ObjectRef, FIELD_MANAGER};
use cdc_chaos::platform::kind::faults::{KindFault, KindFaults, Roles, SeededRoles, FAULT_LABEL};
use cdc_chaos::platform::kind::{self, kustomize, NAMESPACES, NS_INGESTION, NS_PROCESSING, NS_WAREHOUSE};
use cdc_chaos::scenario::{Dur, FaultKind, FaultSpec, Target};

/// Longest any one test may run once the binaries are there.
const TEST_BOUND: Duration = Duration::from_secs(240);

mod common;
use common::repo;

fn cache() -> PathBuf {
    cdc_chaos::StackConfig::default().cache
}

/// kube-apiserver, etcd and kustomize, provisioned once per test process.
struct Binaries {
    kube_apiserver: PathBuf,
    etcd: PathBuf,
    kustomize: PathBuf,
}

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();
    let provisioned = BINARIES.get_or_init(|| {
        let cache = cache();
        let found = || -> cdc_chaos::Result<Binaries> {
            Ok(Binaries { kube_apiserver: apiserver::provision(&cache)?, etcd: apiserver::etcd(&cache)?, kustomize: kustomize::provision(&cache)? })
        };
        found().map_err(|e| e.to_string())
    });
    match provisioned {
        Ok(b) => b,
        Err(e) => panic!("these tests run a real kube-apiserver on etcd, which could not be had: {e}"),
    }
}

async fn server() -> LocalApiServer {
    let b = binaries();
    LocalApiServer::start(&b.kube_apiserver, &b.etcd, Duration::from_secs(90)).await.unwrap_or_else(|e| panic!("starting the local API server: {e}"))
}

async fn bounded<T>(what: &str, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, test).await.unwrap_or_else(|_| panic!("{what}: not done in {}s", TEST_BOUND.as_secs()))
}

/// A copy of `manifests/` with every `secrets/*.env` made from its `.env.example` (test values
/// only), removed when dropped.
struct Overlay {
    root: PathBuf,
}

impl Overlay {
    fn new(name: &str) -> Overlay {
        let root = std::env::temp_dir().join(format!("cdcc-apiserver-manifests-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        common::copy_manifests(&root);
        Overlay { root }
    }

    /// `overlays/kind`.
    fn kind(&self) -> PathBuf {
        self.root.join("overlays").join("kind")
    }

    /// `kustomize build overlays/kind`.
    fn build(&self) -> String {
        kustomize::build(&binaries().kustomize, &self.kind()).unwrap_or_else(|e| panic!("kustomize build of the kind overlay: {e}"))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The object `at` as the server holds it now (`None`: not found).
async fn get(client: &Client, at: &ObjectRef) -> Option<DynamicObject> {
    let gvk = GroupVersionKind::try_from(&kube::core::TypeMeta { api_version: at.api_version.clone(), kind: at.kind.clone() }).unwrap();
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = match (caps.scope, &at.namespace) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    api.get_opt(&at.name).await.unwrap_or_else(|e| panic!("reading {at}: {e}"))
}

fn rfc3339_now() -> String {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ((y, mo, d), (h, mi, s)) = cdc_chaos::run_dir::civil_utc(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Writes the status subresource of a workload as its controller does once it is ready (a Job:
/// complete).
async fn make_ready(client: &Client, at: &ObjectRef) {
    let ns = at.namespace.as_deref().unwrap();
    let now = rfc3339_now();
    let params = PatchParams::default();
    let done = match at.kind.as_str() {
        "StatefulSet" => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
            let n = api.get(&at.name).await.unwrap().spec.unwrap().replicas.unwrap_or(1);
            let status = json!({"status": {"observedGeneration": 1, "replicas": n, "readyReplicas": n, "currentReplicas": n, "updatedReplicas": n, "availableReplicas": n}});
            api.patch_status(&at.name, &params, &Patch::Merge(&status)).await.map(|_| ())
        }
        "Deployment" => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let n = api.get(&at.name).await.unwrap().spec.unwrap().replicas.unwrap_or(1);
            let status = json!({"status": {
                "observedGeneration": 1, "replicas": n, "readyReplicas": n, "updatedReplicas": n, "availableReplicas": n,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed.", "lastUpdateTime": now, "lastTransitionTime": now},
                ],
            }});
            api.patch_status(&at.name, &params, &Patch::Merge(&status)).await.map(|_| ())
        }
        "Job" => {
            let api: Api<Job> = Api::namespaced(client.clone(), ns);
            let status = json!({"status": {
                "startTime": now, "completionTime": now, "succeeded": 1, "active": 0, "ready": 0, "terminating": 0,
                "uncountedTerminatedPods": {},
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                ],
            }});
            api.patch_status(&at.name, &params, &Patch::Merge(&status)).await.map(|_| ())
        }
        other => panic!("{other} is not a workload"),
    };
    done.unwrap_or_else(|e| panic!("writing the ready status of {at}: {e}"));
}

fn is_workload(o: &ObjectRef) -> bool {
    matches!(o.kind.as_str(), "StatefulSet" | "Deployment" | "Job")
}

#[tokio::test]
async fn apply_is_a_server_side_apply_owned_by_the_harness_and_idempotent() {
    binaries();
    let overlay = Overlay::new("apply");
    let yaml = overlay.build();
    bounded("apply", async {
        let server = server().await;
        let client = server.client().await.unwrap();
        let cluster = KindCluster::new(client.clone());

        let applied = cluster.apply(&yaml).await.unwrap_or_else(|e| panic!("applying the kind overlay: {e}"));
        let expected: Vec<ObjectRef> = parse_manifests(&yaml).unwrap().into_iter().map(|m| m.at).collect();
        assert_eq!(applied, expected, "every object of the overlay, namespaces first");
        for kind in ["Namespace", "ConfigMap", "Secret", "Service", "StatefulSet", "Deployment", "Job", "PodDisruptionBudget"] {
            assert!(applied.iter().any(|o| o.kind == kind), "no {kind} applied");
        }

        let mut versions = Vec::new();
        for at in &applied {
            let object = get(&client, at).await.unwrap_or_else(|| panic!("{at} was applied but is not on the server"));
            let managers = object.metadata.managed_fields.clone().unwrap_or_default();
            assert!(
                managers.iter().any(|m| m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")),
                "{at}: no Apply by field manager {FIELD_MANAGER}: {managers:?}"
            );
            versions.push(object.metadata.resource_version.clone().unwrap());
        }
        let kafka: StatefulSet = Api::namespaced(client.clone(), NS_INGESTION).get("kafka").await.unwrap();
        assert_eq!(kafka.spec.as_ref().unwrap().replicas, Some(3));
        assert_eq!(kafka.spec.as_ref().unwrap().template.spec.as_ref().unwrap().share_process_namespace, Some(true));

        // Applying the same manifests again changes nothing: no object is written again.
        let again = cluster.apply(&yaml).await.unwrap();
        assert_eq!(again, applied);
        for (at, before) in applied.iter().zip(&versions) {
            let now = get(&client, at).await.unwrap().metadata.resource_version.unwrap();
            assert_eq!(&now, before, "{at} was written again by an identical apply");
        }

        // A field another manager took is taken back: the apply forces conflicts.
        let other = PatchParams::apply("someone-else").force();
        let scaled = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kafka", "namespace": NS_INGESTION}, "spec": {"replicas": 5}});
        Api::<StatefulSet>::namespaced(client.clone(), NS_INGESTION).patch("kafka", &other, &Patch::Apply(&scaled)).await.unwrap();
        let unforced = Api::<StatefulSet>::namespaced(client.clone(), NS_INGESTION)
            .patch("kafka", &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kafka", "namespace": NS_INGESTION}, "spec": {"replicas": 3}})))
            .await;
        assert!(matches!(&unforced, Err(kube::Error::Api(s)) if s.code == 409), "an unforced apply conflicts: {unforced:?}");
        cluster.apply(&yaml).await.unwrap();
        let kafka: StatefulSet = Api::namespaced(client.clone(), NS_INGESTION).get("kafka").await.unwrap();
        assert_eq!(kafka.spec.unwrap().replicas, Some(3));

        // The server validates what it is given: a refusal names the object.
        let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n  namespace: cdc-lake\ndata: {a: b}\n";
        let err = cluster.apply(bad).await.unwrap_err().to_string();
        assert!(err.contains("applying ConfigMap cdc-lake/Not_A_Name") && err.contains("Invalid"), "{err}");
        // A kind the server does not serve is named with its apiVersion.
        let unknown = "apiVersion: chaos-mesh.org/v1alpha1\nkind: PodChaos\nmetadata:\n  name: x\n  namespace: cdc-lake\n";
        let err = cluster.apply(unknown).await.unwrap_err().to_string();
        assert!(err.contains("PodChaos cdc-lake/x: the API does not serve chaos-mesh.org/v1alpha1"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn wait_ready_watches_the_workloads_until_their_controllers_report_them_ready() {
    binaries();
    let overlay = Overlay::new("wait");
    let yaml = overlay.build();
    bounded("wait_ready", async {
        let server = server().await;
        let client = server.client().await.unwrap();
        let cluster = KindCluster::new(client.clone());
        let applied = cluster.apply(&yaml).await.unwrap();
        let workloads: Vec<ObjectRef> = applied.iter().filter(|o| is_workload(o)).cloned().collect();
        assert_eq!(workloads.len(), 11, "{workloads:?}");

        // No controller runs: nothing gets ready, and the error names a workload and its status.
        let started = std::time::Instant::now();
        let err = cluster.wait_ready(&applied, Duration::from_secs(2)).await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "the timeout is kept: {:?}", started.elapsed());
        let named = workloads.iter().find(|o| err.contains(&format!("{o} not ready in time; last status: "))).unwrap_or_else(|| panic!("no workload named: {err}"));
        let status = match named.kind.as_str() {
            "StatefulSet" if named.name == "kafka" => "readyReplicas 0 of 3",
            "StatefulSet" => "readyReplicas 0 of 1",
            "Deployment" => "no Available condition yet (availableReplicas 0)",
            _ => "active 0, succeeded 0, failed 0",
        };
        assert!(err.ends_with(status), "{err}");

        // Every workload but Kafka reported ready while the watches run: still waiting.
        let wait = cluster.wait_ready(&applied, Duration::from_secs(60));
        tokio::pin!(wait);
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut wait).await.is_err(), "ready before any status was written");
        let kafka = workloads.iter().find(|o| o.name == "kafka").unwrap().clone();
        for w in workloads.iter().filter(|o| **o != kafka) {
            make_ready(&client, w).await;
        }
        assert!(tokio::time::timeout(Duration::from_secs(2), &mut wait).await.is_err(), "ready while Kafka has no ready replica");
        make_ready(&client, &kafka).await;
        let outcome = tokio::time::timeout(Duration::from_secs(20), &mut wait).await;
        outcome.expect("wait_ready saw Kafka get ready through its watch").unwrap_or_else(|e| panic!("wait_ready: {e}"));
        // Ready already: returns from the first list.
        cluster.wait_ready(&applied, Duration::from_secs(10)).await.unwrap();

        // A Job its controller marked failed fails the wait at once.
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "doomed", "namespace": NS_INGESTION},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "busybox"}]}}},
        });
        let jobs: Api<Job> = Api::namespaced(client.clone(), NS_INGESTION);
        jobs.create(&PostParams::default(), &serde_json::from_value(job).unwrap()).await.unwrap();
        let now = rfc3339_now();
        let failed = json!({"status": {
            "startTime": now, "failed": 1, "active": 0, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
            ],
        }});
        jobs.patch_status("doomed", &PatchParams::default(), &Patch::Merge(&failed)).await.unwrap_or_else(|e| panic!("marking the Job failed: {e}"));
        let doomed = ObjectRef { api_version: "batch/v1".into(), kind: "Job".into(), namespace: Some(NS_INGESTION.into()), name: "doomed".into() };
        let started = std::time::Instant::now();
        let err = cluster.wait_ready(&[doomed], Duration::from_secs(30)).await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "a failed Job ends the wait at once: {:?}", started.elapsed());
        assert!(err.contains("Job cdc-ingestion/doomed failed: Failed (BackoffLimitExceeded: Job has reached the specified backoff limit)"), "{err}");
    })
    .await;
}

/// Roles that need no Kafka metadata: named nodes only.
struct Named;

impl Roles for Named {
    fn node(&mut self, target: &Target) -> cdc_chaos::Result<(u16, String)> {
        match target {
            Target::Node(n) => Ok((*n, String::new())),
            other => panic!("unexpected target {other}"),
        }
    }
}

fn fault(kind: FaultKind, target: &str, to: Option<&str>) -> FaultSpec {
    FaultSpec { at: Dur::secs(0), kind, target: Target::parse(target).unwrap(), for_: Dur::secs(10), to: to.map(|t| Target::parse(t).unwrap()), after_heals: false }
}

/// The built overlay with the Kafka StatefulSet's `netfault` container removed: a cluster
/// whose partitions are NetworkPolicies.
fn without_netfault(yaml: &str) -> String {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let mut v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if v["kind"] == "StatefulSet" && v["metadata"]["name"] == "kafka" {
            let containers = v["spec"]["template"]["spec"]["containers"].as_array_mut().unwrap();
            let before = containers.len();
            containers.retain(|c| c["name"] != kind::faults::NETFAULT_CONTAINER);
            assert_eq!(containers.len(), before - 1, "the manifests' Kafka pods carry netfault");
        }
        docs.push(serde_yaml::to_string(&v).unwrap());
    }
    docs.join("---\n")
}

/// Kafka's pods.
const KAFKA_PODS: &[(&str, &str, &str)] = &[("StatefulSet", "kafka", "kafka-0"), ("StatefulSet", "kafka", "kafka-1"), ("StatefulSet", "kafka", "kafka-2")];
/// A pod of each workload the faults below hit.
const PODS: &[(&str, &str, &str)] = &[
    ("StatefulSet", "kafka", "kafka-0"),
    ("StatefulSet", "kafka", "kafka-1"),
    ("StatefulSet", "kafka", "kafka-2"),
    ("Deployment", "connect", "connect-6d5f-abcde"),
    ("Deployment", "join", "join-7c9b-fghij"),
    ("Deployment", "warehouse-sink", "warehouse-sink-5b8d-klmno"),
    ("Deployment", "lake-sink", "lake-sink-64f7-pqrst"),
];

/// Creates `pods` as the controllers of their workloads in `yaml` would — the template's
/// labels (a StatefulSet's pods with their pod-name label too), containers (by name; no image
/// is ever pulled) and process namespace sharing — after the `default` service account that
/// the controller manager gives each namespace. Nothing schedules them: they stay Pending,
/// without an IP.
async fn create_pods(client: &Client, yaml: &str, pods: &[(&str, &str, &str)]) {
    for ns in NAMESPACES {
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap();
        match Api::<ServiceAccount>::namespaced(client.clone(), ns).create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("creating the default service account of {ns}: {e}"),
        }
    }
    let manifests = parse_manifests(yaml).unwrap();
    for (kind, workload, name) in pods {
        let m = manifests.iter().find(|m| m.at.kind == *kind && m.at.name == *workload).unwrap_or_else(|| panic!("no {kind} {workload}"));
        let ns = m.at.namespace.clone().unwrap();
        let template = &m.object.data["spec"]["template"];
        let mut labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
        if *kind == "StatefulSet" {
            labels.insert("statefulset.kubernetes.io/pod-name".into(), json!(name));
        }
        let containers: Vec<Value> =
            template["spec"]["containers"].as_array().unwrap().iter().map(|c| json!({"name": c["name"], "image": "registry.invalid/none:0"})).collect();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"shareProcessNamespace": template["spec"]["shareProcessNamespace"], "containers": containers},
        });
        Api::<Pod>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &serde_json::from_value(pod).unwrap())
            .await
            .unwrap_or_else(|e| panic!("creating pod {ns}/{name}: {e}"));
    }
}

/// Writes a Kafka pod's IP into its status, as the kubelet does once its sandbox runs.
async fn give_ip(client: &Client, pod: &str, ip: &str) {
    let status = json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}});
    Api::<Pod>::namespaced(client.clone(), NS_INGESTION).patch_status(pod, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap_or_else(|e| panic!("writing the IP of {pod}: {e}"));
}

async fn pod_exists(client: &Client, ns: &str, name: &str) -> bool {
    Api::<Pod>::namespaced(client.clone(), ns).get_opt(name).await.unwrap().is_some()
}

/// Every NetworkPolicy of the architecture's namespaces: (namespace/name, fault label).
async fn network_policies(client: &Client) -> BTreeSet<(String, Option<String>)> {
    let mut out = BTreeSet::new();
    for ns in NAMESPACES {
        for p in Api::<NetworkPolicy>::namespaced(client.clone(), ns).list(&ListParams::default()).await.unwrap() {
            let label = p.metadata.labels.as_ref().and_then(|l| l.get(FAULT_LABEL).cloned());
            out.insert((format!("{ns}/{}", p.metadata.name.unwrap()), label));
        }
    }
    out
}

fn policies(entries: &[(&str, &str)]) -> BTreeSet<(String, Option<String>)> {
    entries.iter().map(|(name, id)| (name.to_string(), Some(id.to_string()))).collect()
}

fn journal(home: &Path) -> Vec<KindFault> {
    match std::fs::read_to_string(KindFaults::journal_path(home)) {
        Ok(text) => serde_json::from_str(&text).unwrap(),
        Err(_) => Vec::new(),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cdcc-apiserver-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn faults_create_labelled_network_policies_and_delete_pods_and_heal_removes_them() {
    binaries();
    let overlay = Overlay::new("faults");
    let yaml = without_netfault(&overlay.build());
    let home = tempdir("faults");
    bounded("faults", async {
        let server = server().await;
        let client = server.client().await.unwrap();
        let cluster = KindCluster::new(client.clone());
        cluster.apply(&yaml).await.unwrap();
        create_pods(&client, &yaml, PODS).await;
        let faults = KindFaults::new(cluster.clone(), KindFaults::journal_path(&home)).await.unwrap();
        assert!(matches!(faults.mechanism(), kind::faults::Mechanism::Native), "no Chaos Mesh, no netfault container");

        // Every partition kind makes NetworkPolicies the server accepts, labelled with the fault.
        let (isolate, _) = faults.apply(1, &fault(FaultKind::Isolate, "kafka-3", None), &mut Named).await.unwrap();
        let (split, _) = faults.apply(2, &fault(FaultKind::Split, "kafka-1", None), &mut Named).await.unwrap();
        let (one_way, _) = faults.apply(3, &fault(FaultKind::OneWay, "kafka-1", Some("kafka-2")), &mut Named).await.unwrap();
        let (cut, _) = faults.apply(4, &fault(FaultKind::CutClients, "cluster", None), &mut Named).await.unwrap();
        assert_eq!(
            network_policies(&client).await,
            policies(&[
                ("cdc-ingestion/cdc-chaos-fault-1-isolate", "1"),
                ("cdc-ingestion/cdc-chaos-fault-2-split", "2"),
                ("cdc-ingestion/cdc-chaos-fault-3-one-way", "3"),
                ("cdc-ingestion/cdc-chaos-fault-4-cut-0", "4"),
                ("cdc-processing/cdc-chaos-fault-4-cut-1", "4"),
            ])
        );
        let policy = Api::<NetworkPolicy>::namespaced(client.clone(), NS_INGESTION).get("cdc-chaos-fault-1-isolate").await.unwrap();
        let spec = policy.spec.unwrap();
        assert_eq!(spec.pod_selector.and_then(|s| s.match_labels).unwrap()["statefulset.kubernetes.io/pod-name"], "kafka-2");
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string(), "Egress".to_string()]));
        // `ingress: []` comes back absent: with policyTypes Ingress, both deny every peer.
        assert!(spec.ingress.unwrap_or_default().is_empty(), "nothing may reach the isolated node");
        assert_eq!(spec.egress.unwrap().len(), 1, "DNS only");
        // The pods a selector picks are the pods the manifests label: the cut's selector matches
        // the pipeline's pods on this server.
        let cut_policy = Api::<NetworkPolicy>::namespaced(client.clone(), NS_PROCESSING).get("cdc-chaos-fault-4-cut-1").await.unwrap();
        let expressions = cut_policy.spec.unwrap().pod_selector.unwrap().match_expressions.unwrap();
        let selector = format!("{} in ({})", expressions[0].key, expressions[0].values.clone().unwrap().join(","));
        let matched: BTreeSet<String> = Api::<Pod>::namespaced(client.clone(), NS_PROCESSING)
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect();
        assert_eq!(matched.len(), 3, "{selector}: {matched:?}");
        assert_eq!(journal(&home).iter().map(|f| f.id).collect::<Vec<_>>(), [1, 2, 3, 4]);

        // Kills SIGKILL by exec (which this server, without a kubelet, refuses: that proof
        // fails), then delete the pods: one Kafka node by name, the pipeline by label. These pods
        // have no controller, so nothing is held. Connect is restarted.
        let (killed, evidence) = faults.apply(5, &fault(FaultKind::Kill, "kafka-2", None), &mut Named).await.unwrap();
        assert!(!pod_exists(&client, NS_INGESTION, "kafka-1").await, "kafka-1 was killed");
        let claims: Vec<(bool, &str)> = evidence.iter().map(|p| (p.held, p.claim.as_str())).collect();
        assert!(!claims[0].0 && claims[0].1.contains("SIGKILL by exec failed") && claims[0].1.contains("does not have a host assigned"), "{claims:?}");
        assert_eq!(claims[1], (true, "pod cdc-ingestion/kafka-1 deleted"), "the API shows the pod gone");
        assert!(killed.held.is_empty(), "a pod without a controller needs no hold: {:?}", killed.held);
        assert!(pod_exists(&client, NS_INGESTION, "kafka-0").await && pod_exists(&client, NS_INGESTION, "kafka-2").await);
        let (pipeline, evidence) = faults.apply(6, &fault(FaultKind::Kill, "pipeline", None), &mut Named).await.unwrap();
        assert_eq!(pipeline.pods, ["cdc-processing/join+warehouse-sink+lake-sink"]);
        assert!(evidence.len() == 6 && evidence.iter().filter(|p| p.held && p.claim.ends_with(" deleted")).count() == 3, "{evidence:?}");
        assert!(Api::<Pod>::namespaced(client.clone(), NS_PROCESSING).list(&ListParams::default()).await.unwrap().items.is_empty(), "every pipeline pod was killed");
        faults.apply(7, &fault(FaultKind::Restart, "connect", None), &mut Named).await.unwrap();
        assert!(!pod_exists(&client, NS_INGESTION, "connect-6d5f-abcde").await, "connect was restarted");
        // A second kill of a component with no pod left says so.
        let err = faults.apply(8, &fault(FaultKind::Kill, "pipeline", None), &mut Named).await.unwrap_err().to_string();
        assert!(err.contains("no pod of cdc-processing/join+warehouse-sink+lake-sink"), "{err}");
        assert!(!journal(&home).iter().any(|f| f.id == 8), "a kill that found no pod applied nothing: nothing to heal");

        // Pause: the pod is journaled before the exec, which a server without nodes cannot run.
        let err = faults.apply(10, &fault(FaultKind::Pause, "kafka-1", None), &mut Named).await.unwrap_err().to_string();
        assert!(err.contains("`kill -STOP -1` in pod cdc-ingestion/kafka-0") && err.contains("does not have a host assigned"), "{err}");
        let paused = journal(&home).into_iter().find(|f| f.id == 10).expect("the paused pod is journaled");
        assert_eq!(paused.paused, [(NS_INGESTION.to_string(), "kafka-0".to_string(), Some("kafka".to_string()))]);
        let err = faults.heal(&paused).await.unwrap_err().to_string();
        assert!(err.contains("`kill -CONT -1` in pod cdc-ingestion/kafka-0"), "{err}");
        assert!(journal(&home).iter().any(|f| f.id == 10), "a fault that could not be healed stays journaled");
        Api::<Pod>::namespaced(client.clone(), NS_INGESTION).delete("kafka-0", &DeleteParams::default().grace_period(0)).await.unwrap();
        faults.heal(&paused).await.unwrap();

        // Healing one partition deletes its objects only.
        faults.heal(&isolate).await.unwrap();
        faults.heal(&cut).await.unwrap();
        assert_eq!(network_policies(&client).await, policies(&[("cdc-ingestion/cdc-chaos-fault-2-split", "2"), ("cdc-ingestion/cdc-chaos-fault-3-one-way", "3")]));
        faults.heal(&split).await.unwrap();
        faults.heal(&one_way).await.unwrap();
        assert!(network_policies(&client).await.is_empty());
        // The kills stay journaled until healed (their pods come back by their controllers).
        assert_eq!(journal(&home).iter().map(|f| f.id).collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(faults.heal_all().await.unwrap().len(), 3);
        assert!(journal(&home).is_empty());
    })
    .await;
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test]
async fn heal_all_after_a_crash_removes_every_labelled_object_and_nothing_else() {
    binaries();
    let overlay = Overlay::new("crash");
    let yaml = without_netfault(&overlay.build());
    let home = tempdir("crash");
    bounded("heal_all", async {
        let server = server().await;
        let client = server.client().await.unwrap();
        let cluster = KindCluster::new(client.clone());
        // On an empty cluster (no namespace of the architecture yet) healing and deleting
        // find nothing and fail nowhere.
        let faults = KindFaults::new(cluster.clone(), KindFaults::journal_path(&home)).await.unwrap();
        assert!(faults.heal_all().await.unwrap().is_empty());
        assert!(cluster.delete(&yaml).await.unwrap().is_empty());
        drop(faults);
        cluster.apply(&yaml).await.unwrap();
        {
            let faults = KindFaults::new(cluster.clone(), KindFaults::journal_path(&home)).await.unwrap();
            faults.apply(1, &fault(FaultKind::Isolate, "kafka-2", None), &mut Named).await.unwrap();
            faults.apply(2, &fault(FaultKind::CutClients, "pipeline", None), &mut Named).await.unwrap();
            // The process dies here: its faults are journaled and their objects in force.
        }
        // A labelled object no journal knows of (its journal lost), and a policy of someone else.
        let stray = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "cdc-chaos-fault-7-isolate", "namespace": NS_WAREHOUSE, "labels": {FAULT_LABEL: "7"}},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        });
        let theirs = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": NS_WAREHOUSE, "labels": {"team": "dba"}},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        });
        for p in [stray, theirs] {
            Api::<NetworkPolicy>::namespaced(client.clone(), NS_WAREHOUSE).create(&PostParams::default(), &serde_json::from_value(p).unwrap()).await.unwrap();
        }
        assert_eq!(network_policies(&client).await.len(), 4);
        assert_eq!(journal(&home).len(), 2);

        let faults = KindFaults::new(cluster.clone(), KindFaults::journal_path(&home)).await.unwrap();
        let healed = faults.heal_all().await.unwrap();
        assert_eq!(healed, ["isolate cdc-ingestion/kafka-1", "cut-clients cdc-processing/join+warehouse-sink+lake-sink"]);
        let left = network_policies(&client).await;
        assert_eq!(left, [("cdc-warehouse/default-deny".to_string(), None)].into_iter().collect());
        assert!(journal(&home).is_empty());
        // Nothing left to heal: a second heal_all is a no-op.
        assert!(faults.heal_all().await.unwrap().is_empty());
    })
    .await;
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test]
async fn iptables_partitions_are_journaled_before_their_exec_and_pods_without_an_ip_hold_none() {
    binaries();
    let overlay = Overlay::new("iptables");
    let yaml = overlay.build();
    let home = tempdir("iptables");
    bounded("iptables", async {
        let server = server().await;
        let client = server.client().await.unwrap();
        let cluster = KindCluster::new(client.clone());
        cluster.apply(&yaml).await.unwrap();
        create_pods(&client, &yaml, KAFKA_PODS).await;
        // The manifests' Kafka StatefulSet carries the netfault container: partitions are
        // iptables rules in the pods, whatever the network plugin.
        let faults = KindFaults::new(cluster.clone(), KindFaults::journal_path(&home)).await.unwrap();
        assert!(matches!(faults.mechanism(), kind::faults::Mechanism::Iptables));

        // No pod has an IP yet: a split (which drops the peers' addresses) cannot be made, and
        // nothing is journaled.
        let err = faults.apply(1, &fault(FaultKind::Split, "kafka-1", None), &mut Named).await.unwrap_err().to_string();
        assert!(err.contains("pod cdc-ingestion/kafka-1 has no IP (not running?)"), "{err}");
        assert!(journal(&home).is_empty());
        // Pending pods hold no rule: healing everything has nothing to do and fails nowhere.
        assert!(faults.heal_all().await.unwrap().is_empty());

        // With the IPs their kubelets would report, the rules name them; each fault is
        // journaled before its first exec, which this server cannot run (no node).
        for (pod, ip) in [("kafka-0", "10.244.1.10"), ("kafka-1", "10.244.2.11"), ("kafka-2", "10.244.3.12")] {
            give_ip(&client, pod, ip).await;
        }
        let err = faults.apply(2, &fault(FaultKind::Split, "kafka-1", None), &mut Named).await.unwrap_err().to_string();
        assert!(
            err.contains("`iptables -w -A INPUT -s 10.244.2.11 -m comment --comment cdc-chaos:fault:2 -j DROP` in pod cdc-ingestion/kafka-0")
                && err.contains("does not have a host assigned"),
            "{err}"
        );
        let split = journal(&home).into_iter().find(|f| f.id == 2).expect("journaled before the exec");
        let rules: Vec<String> = split.rules.iter().map(|(pod, r)| format!("{pod}: {}", r.join(" "))).collect();
        assert_eq!(
            rules,
            [
                "kafka-0: INPUT -s 10.244.2.11 -m comment --comment cdc-chaos:fault:2 -j DROP",
                "kafka-0: OUTPUT -d 10.244.2.11 -m comment --comment cdc-chaos:fault:2 -j DROP",
                "kafka-0: INPUT -s 10.244.3.12 -m comment --comment cdc-chaos:fault:2 -j DROP",
                "kafka-0: OUTPUT -d 10.244.3.12 -m comment --comment cdc-chaos:fault:2 -j DROP",
            ]
        );
        assert!(network_policies(&client).await.is_empty(), "no NetworkPolicy with iptables");
        // A pod that may hold the rules but cannot be reached keeps the fault journaled.
        let err = faults.heal(&split).await.unwrap_err().to_string();
        assert!(err.contains("in pod cdc-ingestion/kafka-0") && err.contains("does not have a host assigned"), "{err}");
        assert_eq!(journal(&home).len(), 1);
        // Its pod deleted (and back from its controller, Pending, without an IP): the rules went
        // with the old pod's network namespace, and the heal is done.
        Api::<Pod>::namespaced(client.clone(), NS_INGESTION).delete("kafka-0", &DeleteParams::default().grace_period(0)).await.unwrap();
        create_pods(&client, &yaml, &KAFKA_PODS[..1]).await;
        faults.heal(&split).await.unwrap();
        assert!(journal(&home).is_empty());
        // The sweep of unjournaled rules execs into every pod that may hold one.
        let err = faults.heal_all().await.unwrap_err().to_string();
        assert!(err.contains("in pod cdc-ingestion/kafka-1") && err.contains("in pod cdc-ingestion/kafka-2") && !err.contains("kafka-0"), "{err}");
    })
    .await;
    let _ = std::fs::remove_dir_all(&home);
}

/// Runs `f` (which makes a runtime of its own, as `kind::up` and `kind::down` do) on a thread
/// of its own, for at most two minutes.
async fn off_runtime<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    tokio::time::timeout(Duration::from_secs(120), rx).await.unwrap_or_else(|_| panic!("{what}: not done in 120s")).unwrap()
}

/// `up` and `down --platform kind` as the CLI runs them: the cluster found through
/// `KUBECONFIG`, the overlay built by kustomize from the cache. (The only test of this process
/// that reads `KUBECONFIG`.)
#[tokio::test]
async fn up_and_down_reach_the_server_through_the_kubeconfig() {
    binaries();
    let overlay = Overlay::new("updown");
    let home = tempdir("updown");
    let yaml = overlay.build();
    let dir = overlay.kind();
    bounded("up and down", async {
        let server = server().await;
        std::env::set_var("KUBECONFIG", server.kubeconfig());
        let client = server.client().await.unwrap();

        // Nothing gets ready without controllers: `up` applies everything, then times out.
        let d = dir.clone();
        let err = off_runtime("up", move || kind::up(&cache(), &home_of(&d), &d, &durable(), Duration::from_secs(2))).await.unwrap_err().to_string();
        assert!(err.contains("not ready in time"), "{err}");
        let expected: Vec<ObjectRef> = parse_manifests(&yaml).unwrap().into_iter().map(|m| m.at).collect();
        for at in &expected {
            assert!(get(&client, at).await.is_some(), "{at} not applied by up");
        }
        for at in expected.iter().filter(|o| is_workload(o)) {
            make_ready(&client, at).await;
        }
        let d = dir.clone();
        let applied = off_runtime("up", move || kind::up(&cache(), &home_of(&d), &d, &durable(), Duration::from_secs(30))).await.unwrap_or_else(|e| panic!("up once every workload is ready: {e}"));
        assert_eq!(applied, expected);

        // Kafka's pods never started (Pending: nothing schedules them), and a fault journaled
        // whose exec could not run.
        create_pods(&client, &yaml, KAFKA_PODS).await;
        let faults = KindFaults::new(KindCluster::new(client.clone()), KindFaults::journal_path(&home)).await.unwrap();
        let err = faults
            .apply(1, &fault(FaultKind::Isolate, "random-broker", None), &mut SeededRoles { nodes: vec![1, 2, 3], rng: rand::SeedableRng::seed_from_u64(3) })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not have a host assigned"), "{err}");
        assert_eq!(journal(&home).len(), 1);

        // `down` heals it (a pod without an IP holds no rule) and deletes everything,
        // namespaces last; without a namespace controller the namespaces stay Terminating.
        let (d, h) = (dir.clone(), home.clone());
        let deleted = off_runtime("down", move || kind::down(&cache(), &h, &d)).await.unwrap_or_else(|e| panic!("down: {e}"));
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(deleted, reversed, "everything the overlay applies, in reverse: namespaces last");
        assert!(journal(&home).is_empty(), "down healed the journaled fault");
        assert!(network_policies(&client).await.is_empty());
        for at in &expected {
            if at.kind == "Namespace" {
                let ns: Namespace = Api::all(client.clone()).get(&at.name).await.unwrap();
                assert!(ns.metadata.deletion_timestamp.is_some(), "{at}: deletion requested");
                assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Terminating"), "{at}");
            } else {
                assert!(get(&client, at).await.is_none(), "{at} still exists after down");
            }
        }
        // `up` while they terminate is refused, naming the first object it could not create.
        let d = dir.clone();
        let err = off_runtime("up", move || kind::up(&cache(), &home_of(&d), &d, &durable(), Duration::from_secs(5))).await.unwrap_err().to_string();
        assert!(err.contains("applying ") && err.contains("because it is being terminated"), "{err}");
        // `down` again while the namespaces terminate: nothing fails.
        let (d, h) = (dir.clone(), home.clone());
        let again = off_runtime("down", move || kind::down(&cache(), &h, &d)).await.unwrap_or_else(|e| panic!("a second down: {e}"));
        assert!(again.iter().all(|o| o.kind == "Namespace"), "{again:?}");
        std::env::remove_var("KUBECONFIG");
    })
    .await;
    let _ = std::fs::remove_dir_all(&home);
}

/// `cdc-chaos` itself against the server (its own process, its own `KUBECONFIG`).
fn cdc_chaos_on(server: &LocalApiServer, home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdc-chaos"))
        .args(args)
        .env("KUBECONFIG", server.kubeconfig())
        .env("CDC_CHAOS_HOME", home)
        .output()
        .expect("runs cdc-chaos");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// What `run --platform kind` reads of a cluster before it offers any load: the credentials
/// from the Secrets the overlay generated, every component's health from its pods, and the
/// profile its overlay deploys — a scenario of another profile is refused before anything is
/// applied when the overlay is not the repository's.
#[tokio::test]
async fn a_run_reads_credentials_health_and_profile_from_the_cluster() {
    use cdc_chaos::platform::kind::stack;
    binaries();
    let overlay = Overlay::new("run");
    let home = tempdir("run");
    let yaml = overlay.build();
    bounded("run's view of the cluster", async {
        let server = server().await;
        let client = server.client().await.unwrap();
        KindCluster::new(client.clone()).apply(&yaml).await.unwrap();

        let creds = stack::credentials(&client).await.unwrap_or_else(|e| panic!("credentials from the overlay's Secrets: {e}"));
        let test_value = "test-only-value".to_string();
        assert_eq!(
            creds,
            stack::Credentials { crm_password: test_value.clone(), fleet_password: test_value.clone(), warehouse_password: test_value.clone(), lake_access_key: test_value.clone(), lake_secret_key: test_value },
        );
        assert_eq!(stack::profile_of_overlay(&yaml).as_deref(), Some("durable"));

        // Kafka's pods exist; kafka-0 runs and is ready, as a kubelet would report it (without
        // an IP: with one, the run's first step — sweeping fault rules a crash may have left —
        // would exec into it, and this server has no kubelet to exec through).
        create_pods(&client, &yaml, KAFKA_PODS).await;
        let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        Api::<Pod>::namespaced(client.clone(), NS_INGESTION).patch_status("kafka-0", &PatchParams::default(), &Patch::Merge(&ready)).await.unwrap();

        let (server_ref, home_ref) = (&server, home.clone());
        let (code, out, err) = cdc_chaos_on(server_ref, &home_ref, &["--platform", "kind", "status", "--json"]);
        assert_eq!(code, 3, "not every component is healthy: {out}{err}");
        let rows: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"));
        let health = |name: &str| rows.iter().find(|r| r["name"] == name).map(|r| (r["health"].as_str().unwrap().to_string(), r["detail"].as_str().unwrap().to_string())).unwrap();
        assert_eq!(health("kafka-1"), ("healthy".into(), "kafka-0 Running ready".into()));
        assert_eq!(health("kafka-2").0, "down");
        assert_eq!(health("kafka-2").1, "kafka-1 Pending not ready");
        assert_eq!(health("join"), ("down".into(), "no pod".into()));
        assert_eq!(rows.len(), 11, "{out}");

        // The overlay deploys durable, and it is not the repository's kind overlay (which a
        // run of another profile redeploys through a profile overlay of its own): a weak
        // scenario is refused before anything is applied, naming both profiles.
        let reports = home.join("reports");
        let scenario = repo().join("scenarios/weak-negative-control.toml");
        let dir = overlay.kind();
        let (code, out, err) = cdc_chaos_on(
            server_ref,
            &home_ref,
            &["--platform", "kind", "--overlay", dir.to_str().unwrap(), "run", scenario.to_str().unwrap(), "--reports", reports.to_str().unwrap()],
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(r#"deploys profile "durable", the scenario wants "weak""#), "{err}");
        assert!(!reports.exists() || std::fs::read_dir(&reports).map(|d| d.count()).unwrap_or(0) <= 1, "nothing run");
    })
    .await;
    let _ = std::fs::remove_dir_all(&home);
}

/// The durable profile, which the overlays' committed rendering deploys.
fn durable() -> cdc_chaos::profile::Profile {
    cdc_chaos::profile::Profile::load("durable").unwrap()
}

/// A home for `up`'s profile overlays, beside the test's overlay.
fn home_of(overlay: &std::path::Path) -> std::path::PathBuf {
    overlay.with_extension("home")
}
