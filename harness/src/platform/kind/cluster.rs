//! [`KindCluster`]: the harness's client of a Kubernetes API (`--platform kind`), built on
//! `kube::Client`.
//!
//! Owns three things: applying the manifests (the output of `kustomize build`, see
//! [`super::kustomize`]) with server-side apply under the field manager [`FIELD_MANAGER`],
//! waiting for the applied workloads by watching them, and deleting what was applied. Kinds are
//! resolved through API discovery (one group-version at a time), so any object kustomize emits is
//! applied as a `DynamicObject`; namespaces go first and are deleted last.
//!
//! It injects no fault (that is [`super::faults`]) and never creates or deletes a cluster.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::runtime::watcher::watch_object;
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::progress;

/// The field manager of every server-side apply: the fields the harness owns.
pub const FIELD_MANAGER: &str = "cdc-chaos";

/// What to do when no cluster answers.
pub const CREATE_CLUSTER: &str = "create one with `cdc-chaos --platform kind --create-cluster up` (it builds every image here, then runs `kind create cluster --config manifests/kind-cluster.yaml`)";

/// The component named in this module's errors.
pub(crate) const COMPONENT: &str = "kubernetes";

pub(crate) fn api_error(what: impl fmt::Display, e: kube::Error) -> Error {
    Error::component(COMPONENT, format!("{what}: {e}"))
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// One object of a manifest stream: its kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A parsed manifest: the object and where it sits in the stream.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub object: DynamicObject,
    pub gvk: GroupVersionKind,
    pub at: ObjectRef,
}

/// Parses a YAML stream (documents separated by `---`) into objects, namespaces first, the
/// others in stream order. An empty document is skipped; a document without `apiVersion`,
/// `kind` or `metadata.name` is an error naming its position.
pub fn parse_manifests(yaml: &str) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| Error::component(COMPONENT, format!("manifest document {}: {e}", i + 1)))?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject = serde_yaml::from_value(value)
            .map_err(|e| Error::component(COMPONENT, format!("manifest document {}: not a Kubernetes object: {e}", i + 1)))?;
        let types = object.types.clone().ok_or_else(|| {
            Error::component(COMPONENT, format!("manifest document {}: no apiVersion and kind", i + 1))
        })?;
        let name = object
            .metadata
            .name
            .clone()
            .ok_or_else(|| Error::component(COMPONENT, format!("manifest document {} ({}): no metadata.name", i + 1, types.kind)))?;
        let gvk = GroupVersionKind::try_from(&types)
            .map_err(|e| Error::component(COMPONENT, format!("manifest document {} ({} {name}): {e}", i + 1, types.kind)))?;
        let at = ObjectRef { api_version: types.api_version.clone(), kind: types.kind.clone(), namespace: object.metadata.namespace.clone(), name };
        out.push(Manifest { object, gvk, at });
    }
    // A stable sort: namespaces first, everything else keeps kustomize's order.
    out.sort_by_key(|m| if m.gvk.group.is_empty() && m.gvk.kind == "Namespace" { 0 } else { 1 });
    Ok(out)
}

/// Whether an applied workload is there yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet, with the status that says why.
    Waiting(String),
    /// It will never be (a failed Job).
    Failed(String),
}

/// A StatefulSet is ready when all its replicas are ready.
pub fn statefulset_readiness(s: &StatefulSet) -> Readiness {
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = s.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    if ready >= want {
        Readiness::Ready
    } else {
        Readiness::Waiting(format!("readyReplicas {ready} of {want}"))
    }
}

/// A Deployment is ready when its `Available` condition is true.
pub fn deployment_readiness(d: &Deployment) -> Readiness {
    let available = d.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Available"));
    match available {
        Some(c) if c.status == "True" => Readiness::Ready,
        Some(c) => Readiness::Waiting(format!(
            "Available={} ({}: {})",
            c.status,
            c.reason.as_deref().unwrap_or("no reason"),
            c.message.as_deref().unwrap_or("no message")
        )),
        None => Readiness::Waiting(format!(
            "no Available condition yet (availableReplicas {})",
            d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
        )),
    }
}

/// A Job is ready when it is `Complete`, and failed for good when it is `Failed`.
pub fn job_readiness(j: &Job) -> Readiness {
    let conditions = j.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let holds = |t: &str| conditions.iter().find(|c| c.type_ == t && c.status == "True");
    if holds("Complete").is_some() {
        return Readiness::Ready;
    }
    if let Some(c) = holds("Failed") {
        return Readiness::Failed(format!(
            "Failed ({}: {})",
            c.reason.as_deref().unwrap_or("no reason"),
            c.message.as_deref().unwrap_or("no message")
        ));
    }
    let s = j.status.as_ref();
    Readiness::Waiting(format!(
        "active {}, succeeded {}, failed {}",
        s.and_then(|s| s.active).unwrap_or(0),
        s.and_then(|s| s.succeeded).unwrap_or(0),
        s.and_then(|s| s.failed).unwrap_or(0)
    ))
}

/// A client of one cluster's API.
#[derive(Clone)]
pub struct KindCluster {
    client: Client,
}

impl KindCluster {
    /// The cluster of the environment's kubeconfig (`KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account), checked to answer.
    pub async fn connect() -> Result<KindCluster> {
        let unreachable = |e: String| Error::component(COMPONENT, format!("no Kubernetes API reachable: {e}; {CREATE_CLUSTER}"));
        let config = kube::Config::infer().await.map_err(|e| unreachable(format!("no usable kubeconfig ({e})")))?;
        let url = config.cluster_url.clone();
        let client = Client::try_from(config).map_err(|e| unreachable(format!("a client of {url}: {e}")))?;
        let version = client.apiserver_version().await.map_err(|e| unreachable(format!("{url} gave no Kubernetes version ({e})")))?;
        tracing::info!("Kubernetes API {}.{} ({})", version.major, version.minor, version.git_version);
        Ok(KindCluster { client })
    }

    /// A cluster reached through `client` (tests hand in a mock API server).
    pub fn new(client: Client) -> KindCluster {
        KindCluster { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resolves each manifest's kind to its API resource and scope, one discovery call per kind.
    async fn resolve(&self, manifests: &[Manifest]) -> Result<Vec<(ApiResource, ApiCapabilities)>> {
        let mut known: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
        let mut out = Vec::with_capacity(manifests.len());
        for m in manifests {
            if !known.contains_key(&m.gvk) {
                let found = kube::discovery::pinned_kind(&self.client, &m.gvk)
                    .await
                    .map_err(|e| api_error(format!("{}: the API does not serve {}", m.at, m.at.api_version), e))?;
                known.insert(m.gvk.clone(), found);
            }
            out.push(known[&m.gvk].clone());
        }
        Ok(out)
    }

    fn api_for(&self, m: &Manifest, ar: &ApiResource, caps: &ApiCapabilities) -> Result<Api<DynamicObject>> {
        Ok(match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), ar),
            Scope::Namespaced => {
                let ns = m.at.namespace.as_deref().ok_or_else(|| {
                    Error::component(COMPONENT, format!("{}: a namespaced {} without metadata.namespace", m.at, m.at.kind))
                })?;
                Api::namespaced_with(self.client.clone(), ns, ar)
            }
        })
    }

    /// Server-side applies every object of `yaml` (namespaces first), forcing conflicts: the
    /// harness owns the fields it sets. Returns what was applied, in order.
    pub async fn apply(&self, yaml: &str) -> Result<Vec<ObjectRef>> {
        let manifests = parse_manifests(yaml)?;
        let resolved = self.resolve(&manifests).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut applied = Vec::new();
        for (m, (ar, caps)) in manifests.iter().zip(&resolved) {
            let api = self.api_for(m, ar, caps)?;
            api.patch(&m.at.name, &params, &Patch::Apply(&m.object)).await.map_err(|e| api_error(format!("applying {}", m.at), e))?;
            applied.push(m.at.clone());
        }
        progress::note(&format!("kubernetes: applied {} objects", applied.len()));
        Ok(applied)
    }

    /// Deletes every object of `yaml` in the reverse order (namespaces last); one already gone
    /// is no error. Returns what was deleted.
    pub async fn delete(&self, yaml: &str) -> Result<Vec<ObjectRef>> {
        let manifests = parse_manifests(yaml)?;
        let resolved = self.resolve(&manifests).await?;
        let mut deleted = Vec::new();
        for (m, (ar, caps)) in manifests.iter().zip(&resolved).rev() {
            let api = self.api_for(m, ar, caps)?;
            match api.delete(&m.at.name, &DeleteParams::background()).await {
                Ok(_) => deleted.push(m.at.clone()),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api_error(format!("deleting {}", m.at), e)),
            }
        }
        progress::note(&format!("kubernetes: deleted {} objects", deleted.len()));
        Ok(deleted)
    }

    /// Waits until none of `namespaces` exists any more (a deleted namespace stays
    /// `Terminating` while its objects go), for at most `timeout`.
    pub async fn wait_namespaces_gone(&self, namespaces: &[&str], timeout: Duration) -> Result<()> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let deadline = tokio::time::Instant::now() + timeout;
        for ns in namespaces {
            loop {
                match api.get_opt(ns).await {
                    Ok(None) => break,
                    Ok(Some(_)) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_secs(1)).await,
                    Ok(Some(_)) => return Err(Error::component(COMPONENT, format!("namespace {ns} still exists {}s after its delete", timeout.as_secs()))),
                    Err(e) => return Err(api_error(format!("reading namespace {ns}"), e)),
                }
            }
        }
        progress::note(&format!("kubernetes: namespaces {} are gone", namespaces.join(", ")));
        Ok(())
    }

    /// Waits, by watching them all at once, until every StatefulSet and Deployment of `applied`
    /// is ready and every Job complete, for at most `timeout`. The error names the first object
    /// that was not, with its last status.
    pub async fn wait_ready(&self, applied: &[ObjectRef], timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let waits = applied.iter().filter_map(|o| {
            let ns = o.namespace.clone()?;
            let client = self.client.clone();
            Some(async move {
                match o.kind.as_str() {
                    "StatefulSet" => await_ready(Api::<StatefulSet>::namespaced(client, &ns), o, statefulset_readiness, deadline).await,
                    "Deployment" => await_ready(Api::<Deployment>::namespaced(client, &ns), o, deployment_readiness, deadline).await,
                    "Job" => await_ready(Api::<Job>::namespaced(client, &ns), o, job_readiness, deadline).await,
                    _ => Ok(()),
                }
            })
        });
        let waits: Vec<_> = waits.collect();
        progress::note(&format!("kubernetes: waiting up to {}s for the workloads to be ready", timeout.as_secs()));
        futures::future::try_join_all(waits).await?;
        Ok(())
    }
}

/// Watches one object until `check` says it is ready, fails, or `deadline` passes.
pub(crate) async fn await_ready<K>(api: Api<K>, at: &ObjectRef, check: fn(&K) -> Readiness, deadline: tokio::time::Instant) -> Result<()>
where
    K: Resource + Clone + fmt::Debug + Send + DeserializeOwned + 'static,
{
    let mut last = "not seen yet".to_string();
    let watched = async {
        let mut stream = std::pin::pin!(watch_object(api, &at.name).default_backoff());
        while let Some(event) = stream.next().await {
            match event {
                Ok(Some(obj)) => match check(&obj) {
                    Readiness::Ready => {
                        progress::note(&format!("kubernetes: {at} ready"));
                        return Ok(());
                    }
                    Readiness::Waiting(status) => last = status,
                    Readiness::Failed(status) => return Err(Error::component(COMPONENT, format!("{at} failed: {status}"))),
                },
                Ok(None) => last = "does not exist".into(),
                Err(e) => last = format!("watch error: {e}"),
            }
        }
        Err(Error::component(COMPONENT, format!("{at}: the watch ended")))
    };
    let outcome = tokio::time::timeout_at(deadline, watched).await;
    match outcome {
        Ok(done) => done,
        Err(_) => Err(Error::component(COMPONENT, format!("{at} not ready in time; last status: {last}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::kind::mock::{self, Reply};
    use serde_json::json;

    const STREAM: &str = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: kafka
  namespace: cdc-ingestion
spec:
  replicas: 3
  serviceName: kafka
  selector: {matchLabels: {app.kubernetes.io/name: kafka}}
  template:
    metadata: {labels: {app.kubernetes.io/name: kafka}}
    spec: {containers: [{name: kafka, image: apache/kafka:4.3.1}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: create-topics
  namespace: cdc-ingestion
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: create-topics, image: apache/kafka:4.3.1}]}
---
apiVersion: v1
kind: Namespace
metadata:
  name: cdc-ingestion
---
apiVersion: v1
kind: Namespace
metadata:
  name: cdc-sources
";

    /// An API server that knows the manifests' kinds and accepts every write.
    fn accepting(seen: &mock::Seen) -> Reply {
        match mock::discovery(&seen.path) {
            Some(list) => Reply::Json(200, list),
            None => Reply::Json(200, mock::echo(seen)),
        }
    }

    fn kafka(ready: i32) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "kafka", "namespace": "cdc-ingestion", "resourceVersion": "7"},
            "spec": {"replicas": 3, "serviceName": "kafka", "selector": {}, "template": {}},
            "status": {"replicas": 3, "readyReplicas": ready},
        })
    }

    fn kafka_ref() -> ObjectRef {
        ObjectRef { api_version: "apps/v1".into(), kind: "StatefulSet".into(), namespace: Some("cdc-ingestion".into()), name: "kafka".into() }
    }

    #[test]
    fn namespaces_come_first_in_stream_order() {
        let names: Vec<String> = parse_manifests(STREAM).unwrap().iter().map(|m| m.at.to_string()).collect();
        assert_eq!(names, ["Namespace cdc-ingestion", "Namespace cdc-sources", "StatefulSet cdc-ingestion/kafka", "Job cdc-ingestion/create-topics"]);
    }

    #[test]
    fn a_document_without_a_name_is_named_by_position() {
        let err = parse_manifests("apiVersion: v1\nkind: Namespace\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err().to_string();
        assert!(err.contains("manifest document 1 (Namespace): no metadata.name"), "{err}");
    }

    #[test]
    fn every_committed_base_manifest_parses_namespaces_first() {
        fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    yaml_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "yaml") && !path.ends_with("kustomization.yaml") {
                    out.push(path);
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/base");
        let mut files = Vec::new();
        yaml_files(&base, &mut files);
        files.sort();
        let stream: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        let manifests = parse_manifests(&stream.join("\n---\n")).unwrap();
        let namespaces = manifests.iter().take_while(|m| m.at.kind == "Namespace").count();
        assert_eq!(namespaces, crate::platform::kind::NAMESPACES.len());
        assert!(manifests[namespaces..].iter().all(|m| m.at.kind != "Namespace"));
        for kind in ["StatefulSet", "Deployment", "Job", "Service", "ConfigMap", "PodDisruptionBudget"] {
            assert!(manifests.iter().any(|m| m.at.kind == kind), "no {kind} in {}", base.display());
        }
        let kafka = manifests.iter().find(|m| m.at.to_string() == "StatefulSet cdc-ingestion/kafka").expect("the Kafka StatefulSet");
        assert_eq!(kafka.object.data["spec"]["replicas"], 3);
    }

    #[tokio::test]
    async fn apply_is_a_forced_server_side_apply_namespaces_first() {
        let (client, recorder) = mock::serve(accepting);
        let applied = KindCluster::new(client).apply(STREAM).await.unwrap();
        assert_eq!(applied.len(), 4);
        let writes = recorder.writes();
        let paths: Vec<&str> = writes.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/api/v1/namespaces/cdc-ingestion",
                "/api/v1/namespaces/cdc-sources",
                "/apis/apps/v1/namespaces/cdc-ingestion/statefulsets/kafka",
                "/apis/batch/v1/namespaces/cdc-ingestion/jobs/create-topics",
            ]
        );
        for w in &writes {
            assert_eq!(w.method, "PATCH", "{}", w.path);
            assert_eq!(w.content_type.as_deref(), Some("application/apply-patch+yaml"), "{}", w.path);
            assert_eq!(w.param("fieldManager"), Some(FIELD_MANAGER), "{}", w.path);
            assert_eq!(w.param("force"), Some("true"), "{}", w.path);
        }
        assert_eq!(writes[2].body["spec"]["replicas"], 3);
        assert_eq!(writes[2].body["kind"], "StatefulSet");
    }

    #[tokio::test]
    async fn apply_names_the_object_the_api_refused() {
        let (client, _) = mock::serve(|seen| match mock::discovery(&seen.path) {
            Some(list) => Reply::Json(200, list),
            None if seen.path.ends_with("/jobs/create-topics") => {
                Reply::Json(422, mock::status(422, "Invalid", "spec.template.spec.containers[0].image: Required value"))
            }
            None => Reply::Json(200, mock::echo(seen)),
        });
        let err = KindCluster::new(client).apply(STREAM).await.unwrap_err().to_string();
        assert!(err.contains("applying Job cdc-ingestion/create-topics"), "{err}");
        assert!(err.contains("Required value"), "{err}");
    }

    #[tokio::test]
    async fn delete_goes_in_reverse_and_namespaces_last() {
        let (client, recorder) = mock::serve(|seen| match mock::discovery(&seen.path) {
            Some(list) => Reply::Json(200, list),
            None if seen.path.ends_with("/jobs/create-topics") => Reply::Json(404, mock::status(404, "NotFound", "jobs \"create-topics\" not found")),
            None => Reply::Json(200, mock::echo(seen)),
        });
        let deleted = KindCluster::new(client).delete(STREAM).await.unwrap();
        let names: Vec<String> = deleted.iter().map(|o| o.to_string()).collect();
        assert_eq!(names, ["StatefulSet cdc-ingestion/kafka", "Namespace cdc-sources", "Namespace cdc-ingestion"]);
        assert!(recorder.writes().iter().all(|w| w.method == "DELETE"));
    }

    #[tokio::test]
    async fn wait_returns_once_the_watched_statefulset_has_three_ready_replicas() {
        let mut watches = 0;
        let (client, recorder) = mock::serve(move |seen| {
            if seen.is_watch() {
                watches += 1;
                if watches == 1 {
                    return Reply::Events(vec![
                        json!({"type": "MODIFIED", "object": kafka(2)}),
                        json!({"type": "MODIFIED", "object": kafka(3)}),
                    ]);
                }
                return Reply::Hold;
            }
            Reply::Json(200, json!({"apiVersion": "apps/v1", "kind": "StatefulSetList", "metadata": {"resourceVersion": "7"}, "items": [kafka(1)]}))
        });
        KindCluster::new(client).wait_ready(&[kafka_ref()], Duration::from_secs(10)).await.unwrap();
        let seen = recorder.seen();
        assert!(seen.iter().all(|s| s.path == "/apis/apps/v1/namespaces/cdc-ingestion/statefulsets"), "{seen:?}");
        assert!(seen.iter().all(|s| s.param("fieldSelector") == Some("metadata.name=kafka")), "{seen:?}");
        assert!(seen.iter().any(|s| s.is_watch()), "readiness is watched, not polled: {seen:?}");
    }

    #[tokio::test]
    async fn wait_times_out_naming_the_object_and_its_last_status() {
        let (client, _) = mock::serve(|seen| {
            if seen.is_watch() {
                return Reply::Hold;
            }
            Reply::Json(200, json!({"apiVersion": "apps/v1", "kind": "StatefulSetList", "metadata": {"resourceVersion": "7"}, "items": [kafka(2)]}))
        });
        let err = KindCluster::new(client).wait_ready(&[kafka_ref()], Duration::from_millis(300)).await.unwrap_err().to_string();
        assert!(err.contains("StatefulSet cdc-ingestion/kafka not ready"), "{err}");
        assert!(err.contains("readyReplicas 2 of 3"), "{err}");
    }

    #[test]
    fn a_failed_job_fails_at_once() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "register-connectors"},
            "status": {"failed": 6, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]},
        }))
        .unwrap();
        assert_eq!(job_readiness(&job), Readiness::Failed("Failed (BackoffLimitExceeded: Job has reached the specified backoff limit)".into()));
        let done: Job = serde_json::from_value(json!({"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}})).unwrap();
        assert_eq!(job_readiness(&done), Readiness::Ready);
    }

    #[test]
    fn a_deployment_is_ready_when_available() {
        let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "join"}, "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}]}})).unwrap();
        assert_eq!(deployment_readiness(&d), Readiness::Waiting("Available=False (MinimumReplicasUnavailable: Deployment does not have minimum availability.)".into()));
        let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "join"}, "status": {"conditions": [{"type": "Available", "status": "True"}]}})).unwrap();
        assert_eq!(deployment_readiness(&d), Readiness::Ready);
    }
}
