//! The Kubernetes manifests (`manifests/`): every file parses into the Kubernetes API's types
//! (k8s-openapi, Kubernetes 1.34) with no field the API does not have; both overlays build with
//! the real `kustomize` (installed into the cache from the Go module proxy) into objects that
//! reference only Secrets, ConfigMaps and keys that exist, carry the `durable` profile's values,
//! run the pipeline's real command line and follow the sizing of their overlay; and no committed
//! file holds a password. No cluster is involved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodSpec, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use cdc_chaos::platform::kind::{kustomize, manifests};
use cdc_chaos::platform::{mariadb, postgres};
use cdc_chaos::properties;

mod common;
use common::repo;

/// A Kubernetes object of a kind the manifests use.
#[derive(Debug)]
enum Object {
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    Secret(Secret),
    Service(Service),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
    Job(Job),
    Pdb(PodDisruptionBudget),
}

/// Removes strategic-merge-patch directives (`$patch`, ...), which are not API fields.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// The first path where `original` has something `typed` (its round trip through the API type)
/// lost or changed: a field the API does not have, or a value of the wrong type.
fn first_loss(original: &Value, typed: &Value, path: &str) -> Option<String> {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, v)| match b.get(k) {
            Some(w) => first_loss(v, w, &format!("{path}.{k}")),
            None if v.is_null() => None,
            None => Some(format!("{path}.{k}")),
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a.iter().zip(b).enumerate().find_map(|(i, (v, w))| first_loss(v, w, &format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        _ => Some(path.to_string()),
    }
}

fn typed<T: DeserializeOwned + Serialize>(at: &str, value: &Value) -> Result<T, String> {
    let t: T = serde_json::from_value(value.clone()).map_err(|e| format!("{at}: {e}"))?;
    let back = serde_json::to_value(&t).expect("serialises");
    match first_loss(value, &back, "") {
        None => Ok(t),
        Some(path) => Err(format!("{at}: field {path} is not part of the Kubernetes API (a typo, or in the wrong place?)")),
    }
}

/// Parses one YAML document (already converted to JSON) into its API type.
fn parse_object(at: &str, mut value: Value) -> Result<Object, String> {
    strip_directives(&mut value);
    let api = value["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let at = format!("{at} ({api} {kind} {})", value["metadata"]["name"].as_str().unwrap_or("?"));
    Ok(match (api.as_str(), kind.as_str()) {
        ("v1", "Namespace") => Object::Namespace(typed(&at, &value)?),
        ("v1", "ConfigMap") => Object::ConfigMap(typed(&at, &value)?),
        ("v1", "Secret") => Object::Secret(typed(&at, &value)?),
        ("v1", "Service") => Object::Service(typed(&at, &value)?),
        ("apps/v1", "StatefulSet") => Object::StatefulSet(typed(&at, &value)?),
        ("apps/v1", "Deployment") => Object::Deployment(typed(&at, &value)?),
        ("batch/v1", "Job") => Object::Job(typed(&at, &value)?),
        ("policy/v1", "PodDisruptionBudget") => Object::Pdb(typed(&at, &value)?),
        _ => return Err(format!("{at}: not a kind these manifests use")),
    })
}

/// Every document of a YAML stream, as JSON values with the document's index.
fn documents(at: &str, text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).map_err(|e| format!("{at}, document {}: {e}", i + 1))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn parse_stream(at: &str, text: &str) -> Result<Vec<Object>, String> {
    documents(at, text)?.into_iter().enumerate().map(|(i, v)| parse_object(&format!("{at}, document {}", i + 1), v)).collect()
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_manifest_and_patch_parses_into_kubernetes_types() {
    let dir = repo().join("manifests");
    let mut parsed = 0;
    let mut errors = Vec::new();
    for path in files(&dir, ".yaml") {
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "kustomization.yaml" || name == "kind-cluster.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        match parse_stream(&path.display().to_string(), &text) {
            Ok(objects) => parsed += objects.len(),
            Err(e) => errors.push(e),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(parsed >= 40, "only {parsed} objects found under {}", dir.display());
}

#[test]
fn the_api_types_catch_misplaced_fields() {
    let bad = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  selector: {}\n  template:\n    spec:\n      containers:\n        - name: c\n          resource:\n            requests: {cpu: 1}\n";
    let e = parse_stream("bad.yaml", bad).unwrap_err();
    assert!(e.contains("bad.yaml") && e.contains(".spec.template.spec.containers[0].resource"), "{e}");
}

#[test]
fn kind_cluster_has_one_control_plane_and_three_workers() {
    let text = std::fs::read_to_string(repo().join("manifests/kind-cluster.yaml")).unwrap();
    let v = &documents("kind-cluster.yaml", &text).unwrap()[0];
    assert_eq!(v["apiVersion"], "kind.x-k8s.io/v1alpha4");
    assert_eq!(v["kind"], "Cluster");
    let roles: Vec<&str> = v["nodes"].as_array().unwrap().iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["control-plane", "worker", "worker", "worker"]);
}

/// Password-like keys (`password`, `secret-key`, `access-key`, `token`, ...) followed by `=` or
/// `:` and a literal value. References (`${dir:...}`, `$(VAR)`, `$VAR`, `%s`, a Secret's
/// name), the `.env.example` placeholder `CHANGE-ME` and empty values are not literals.
fn literal_secrets(text: &str) -> Vec<(usize, String)> {
    const KEYS: &[&str] = &["password", "passwd", "secret-key", "secret_key", "secretkey", "access-key", "access_key", "accesskey", "token"];
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lower = line.to_ascii_lowercase();
        for key in KEYS {
            let mut from = 0;
            while let Some(at) = lower[from..].find(key) {
                let end = from + at + key.len();
                from = end;
                // The rest of the key (e.g. `-password`, `_PASSWORD"`), then the separator.
                let rest = &line[end..];
                let after_key = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '"' | '\''));
                let Some(value) = after_key.trim_start().strip_prefix(['=', ':']) else { continue };
                let value = value.trim().trim_matches(['"', '\'']);
                let reference = value.is_empty()
                    || value.starts_with('$')
                    || value.starts_with('%')
                    || value.starts_with(":'")
                    || value == "CHANGE-ME"
                    || value.starts_with('|')
                    || value.starts_with('#');
                if !reference {
                    out.push((i + 1, line.trim().to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn no_committed_manifest_holds_a_password() {
    let dir = repo().join("manifests");
    let mut found = Vec::new();
    for path in files(&dir, "") {
        // secrets/*.env are the deploy-time values, ignored by git.
        if path.extension().is_some_and(|e| e == "env") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (line, text) in literal_secrets(&text) {
            found.push(format!("{}:{line}: {text}", path.display()));
        }
    }
    assert!(found.is_empty(), "password-like keys with literal values:\n{}", found.join("\n"));
    let gitignore = std::fs::read_to_string(repo().join(".gitignore")).unwrap();
    assert!(gitignore.lines().any(|l| l == "/manifests/overlays/*/secrets/*.env"), "the Secrets' env files must be ignored by git");
}

#[test]
fn the_secret_scan_finds_literals_and_spares_references() {
    let hits = literal_secrets("a:\n  password: hunter2\nb=${dir:/x:crm-password}\nCDC_LAKE_SECRET_KEY=abc\nkey: lake-secret-key\nsecret-key=CHANGE-ME\nx: $(WAREHOUSE_PASSWORD)\n");
    let lines: Vec<usize> = hits.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 4], "{hits:?}");
}

/// The objects of one `kustomize build`, by (kind, namespace, name).
struct Built {
    overlay: String,
    objects: Vec<Object>,
}

impl Built {
    fn config_map(&self, ns: &str, name: &str) -> &ConfigMap {
        self.objects
            .iter()
            .find_map(|o| match o {
                Object::ConfigMap(c) if c.metadata.namespace.as_deref() == Some(ns) && c.metadata.name.as_deref() == Some(name) => Some(c),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{}: no ConfigMap {ns}/{name}", self.overlay))
    }
    fn data(&self, ns: &str, name: &str, key: &str) -> &str {
        self.config_map(ns, name).data.as_ref().and_then(|d| d.get(key)).unwrap_or_else(|| panic!("{}: ConfigMap {ns}/{name} has no {key}", self.overlay))
    }
    fn properties(&self, ns: &str, name: &str, key: &str) -> BTreeMap<String, String> {
        properties::parse(self.data(ns, name, key))
    }
    fn secret_keys(&self, ns: &str, name: &str) -> Option<Vec<String>> {
        self.objects.iter().find_map(|o| match o {
            Object::Secret(s) if s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name) => {
                Some(s.data.as_ref().map(|d| d.keys().cloned().collect()).unwrap_or_default())
            }
            _ => None,
        })
    }
    fn stateful_set(&self, name: &str) -> Option<&StatefulSet> {
        self.objects.iter().find_map(|o| match o {
            Object::StatefulSet(s) if s.metadata.name.as_deref() == Some(name) => Some(s),
            _ => None,
        })
    }
    /// Every pod spec: (what, namespace, spec).
    fn pods(&self) -> Vec<(String, String, &PodSpec)> {
        self.objects
            .iter()
            .filter_map(|o| {
                let (kind, meta, spec) = match o {
                    Object::StatefulSet(s) => ("StatefulSet", &s.metadata, s.spec.as_ref()?.template.spec.as_ref()?),
                    Object::Deployment(d) => ("Deployment", &d.metadata, d.spec.as_ref()?.template.spec.as_ref()?),
                    Object::Job(j) => ("Job", &j.metadata, j.spec.as_ref()?.template.spec.as_ref()?),
                    _ => return None,
                };
                let ns = meta.namespace.clone().unwrap_or_default();
                Some((format!("{} {kind} {ns}/{}", self.overlay, meta.name.as_deref().unwrap_or("?")), ns, spec))
            })
            .collect()
    }
    fn container(&self, workload: &str, container: &str) -> &k8s_openapi::api::core::v1::Container {
        self.pods()
            .into_iter()
            .find(|(what, _, _)| what.ends_with(&format!("/{workload}")))
            .and_then(|(_, _, spec)| spec.containers.iter().find(|c| c.name == container))
            .unwrap_or_else(|| panic!("{}: no container {container} in {workload}", self.overlay))
    }
}

/// Copies `manifests/` into a temporary directory, with every `secrets/*.env` made from its
/// `.env.example` (test values only), and runs `kustomize build` on `overlay`.
fn build(kustomize: &Path, overlay: &str) -> Built {
    let tmp = std::env::temp_dir().join(format!("cdcc-manifests-{overlay}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    common::copy_manifests(&tmp);
    let out = kustomize::build(kustomize, &tmp.join("overlays").join(overlay)).unwrap_or_else(|e| panic!("kustomize build of overlay {overlay}: {e}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let objects = parse_stream(&format!("kustomize build overlays/{overlay}"), &out).unwrap_or_else(|e| panic!("{e}"));
    Built { overlay: overlay.into(), objects }
}

fn kustomize_binary() -> PathBuf {
    let cache = cdc_chaos::StackConfig::default().cache;
    kustomize::provision(&cache).unwrap_or_else(|e| panic!("the overlays are built with the real kustomize, which could not be had: {e}"))
}

/// Every Secret, ConfigMap and key a pod refers to exists in the pod's namespace, and every
/// script a container runs from a mounted ConfigMap is a key of it.
fn check_references(b: &Built) {
    let mut problems = Vec::new();
    for (what, ns, spec) in b.pods() {
        let volumes = spec.volumes.clone().unwrap_or_default();
        for v in &volumes {
            if let Some(cm) = &v.config_map {
                if !b.objects.iter().any(|o| matches!(o, Object::ConfigMap(c) if c.metadata.namespace.as_deref() == Some(&ns) && c.metadata.name.as_deref() == Some(&cm.name))) {
                    problems.push(format!("{what}: volume {} refers to a missing ConfigMap {ns}/{}", v.name, cm.name));
                }
            }
            if let Some(s) = &v.secret {
                let name = s.secret_name.clone().unwrap_or_default();
                if b.secret_keys(&ns, &name).is_none() {
                    problems.push(format!("{what}: volume {} refers to a missing Secret {ns}/{name}", v.name));
                }
            }
        }
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            for env in c.env.iter().flatten() {
                if let Some(r) = env.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()) {
                    match b.secret_keys(&ns, &r.name) {
                        None => problems.push(format!("{what}: {} env {} refers to a missing Secret {ns}/{}", c.name, env.name, r.name)),
                        Some(keys) if !keys.contains(&r.key) => problems.push(format!("{what}: {} env {}: Secret {ns}/{} has no key {} (it has {keys:?})", c.name, env.name, r.name, r.key)),
                        Some(_) => {}
                    }
                }
            }
            for arg in c.command.iter().flatten().chain(c.args.iter().flatten()) {
                for m in c.volume_mounts.iter().flatten() {
                    let Some(file) = arg.strip_prefix(&format!("{}/", m.mount_path)) else { continue };
                    let Some(cm) = volumes.iter().find(|v| v.name == m.name).and_then(|v| v.config_map.as_ref()) else { continue };
                    if !b.config_map(&ns, &cm.name).data.as_ref().is_some_and(|d| d.contains_key(file)) {
                        problems.push(format!("{what}: {} runs {arg}, but ConfigMap {ns}/{} has no key {file}", c.name, cm.name));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `durable` profile's values in the rendered cluster: brokers, topics, Connect, clients.
fn check_durable_profile(b: &Built) {
    let o = &b.overlay;
    let server = b.properties("cdc-ingestion", "kafka-config", "server.properties");
    for (k, v) in [
        ("min.insync.replicas", "2"),
        ("default.replication.factor", "3"),
        ("unclean.leader.election.enable", "false"),
        ("auto.create.topics.enable", "false"),
        ("log.flush.interval.messages", "1"),
        ("log.flush.interval.ms", "100"),
        ("offsets.topic.replication.factor", "3"),
        ("transaction.state.log.replication.factor", "3"),
        ("transaction.state.log.min.isr", "2"),
        ("process.roles", "broker,controller"),
        ("node.id", manifests::NODE_ID),
    ] {
        assert_eq!(server.get(k).map(String::as_str), Some(v), "{o}: server.properties {k}");
    }
    let topics = manifests::parse_topics_table(b.data("cdc-ingestion", "kafka-topics", "topics.txt")).unwrap();
    assert_eq!(topics.len(), 10, "{o}: {topics:?}");
    for t in &topics {
        assert_eq!(t.replication_factor, 3, "{o}: topic {}", t.name);
        let config: BTreeMap<_, _> = t.config.iter().cloned().collect();
        assert_eq!(config.get("min.insync.replicas").map(String::as_str), Some("2"), "{o}: topic {}", t.name);
        assert_eq!(config.get("unclean.leader.election.enable").map(String::as_str), Some("false"), "{o}: topic {}", t.name);
    }
    let changes = topics.iter().find(|t| t.name == "customer_360.changes").unwrap();
    assert_eq!(changes.partitions, 1, "{o}: the join's output is a total order");

    let worker = b.properties("cdc-ingestion", "connect-config", "worker.properties");
    for (k, v) in [
        ("exactly.once.source.support", "enabled"),
        ("producer.acks", "all"),
        ("producer.enable.idempotence", "true"),
        ("consumer.isolation.level", "read_committed"),
        ("config.storage.replication.factor", "3"),
        ("topic.creation.enable", "false"),
    ] {
        assert_eq!(worker.get(k).map(String::as_str), Some(v), "{o}: worker.properties {k}");
    }
    for name in ["crm-source.json", "fleet-source.json"] {
        let c: Value = serde_json::from_str(b.data("cdc-ingestion", "connectors", name)).unwrap();
        assert_eq!(c["exactly.once.support"], "required", "{o}: {name}");
        assert!(c["database.password"].as_str().unwrap().starts_with("${dir:"), "{o}: {name}");
    }
    let producer = b.properties("cdc-processing", "pipeline-clients", "producer.properties");
    let consumer = b.properties("cdc-processing", "pipeline-clients", "consumer.properties");
    let processing = b.properties("cdc-processing", "pipeline-clients", "processing.properties");
    assert_eq!(producer["acks"], "all", "{o}");
    assert_eq!(producer["enable.idempotence"], "true", "{o}");
    assert_eq!(producer["max.in.flight.requests.per.connection"], "1", "{o}");
    assert_eq!(consumer["enable.auto.commit"], "false", "{o}");
    assert_eq!(consumer["isolation.level"], "read_committed", "{o}");
    assert_eq!(processing["processing.guarantee"], "exactly_once", "{o}");
    assert_eq!(processing["replication.factor"], "3", "{o}");
}

/// Kafka's StatefulSet: three nodes of Kafka 4.3.1 (the official image in production, the local
/// build on kind), the five listeners, a volume per
/// node, the disruption budget, anti-affinity (`required` or `preferred`).
fn check_kafka(b: &Built, required: bool) {
    let o = &b.overlay;
    let s = b.stateful_set("kafka").unwrap_or_else(|| panic!("{o}: no kafka StatefulSet"));
    let spec = s.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(3), "{o}");
    assert_eq!(spec.service_name.as_deref(), Some("kafka"), "{o}");
    assert_eq!(spec.volume_claim_templates.as_ref().map(Vec::len), Some(1), "{o}");
    let c = b.container("kafka", "kafka");
    // kind runs the image built on this machine (`--create-cluster`); production the official one.
    let image = if required { "apache/kafka:4.3.1" } else { "cdc-chaos/kafka:4.3.1" };
    assert_eq!(c.image.as_deref(), Some(image), "{o}");
    let ports: Vec<i32> = c.ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(ports, [9092, 9093, 9094, 9095, 9096], "{o}");
    let anti = spec.template.spec.as_ref().unwrap().affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref()).unwrap();
    assert_eq!(anti.required_during_scheduling_ignored_during_execution.is_some(), required, "{o}: required anti-affinity");
    assert_eq!(anti.preferred_during_scheduling_ignored_during_execution.is_some(), !required, "{o}: preferred anti-affinity");
    let pdb = b
        .objects
        .iter()
        .find_map(|o| match o {
            Object::Pdb(p) if p.metadata.name.as_deref() == Some("kafka") => Some(p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{o}: no PodDisruptionBudget"));
    assert_eq!(pdb.spec.as_ref().unwrap().max_unavailable, Some(IntOrString::Int(1)), "{o}");
    let service = b.objects.iter().find_map(|x| match x {
        Object::Service(s) if s.metadata.name.as_deref() == Some("kafka") => Some(s),
        _ => None,
    });
    assert_eq!(service.and_then(|s| s.spec.as_ref()?.cluster_ip.clone()).as_deref(), Some("None"), "{o}: headless Service");
}

/// The databases run with the local platform's CDC settings; the pipeline's args parse with its
/// own command line.
fn check_commands(b: &Built) {
    let o = &b.overlay;
    let args = |w: &str, c: &str| b.container(w, c).args.clone().unwrap_or_default();
    let pg = args("postgres", "postgres");
    for s in postgres::CDC_SETTINGS {
        assert!(pg.windows(2).any(|w| w[0] == "-c" && w[1] == *s), "{o}: postgres lacks -c {s}: {pg:?}");
    }
    let maria = args("mariadb", "mariadb");
    for s in mariadb::CDC_SETTINGS {
        assert!(maria.iter().any(|a| a == s), "{o}: mariadb lacks {s}: {maria:?}");
    }
    for (workload, sub) in [("join", "join"), ("warehouse-sink", "warehouse"), ("lake-sink", "lake")] {
        let c = b.container(workload, workload);
        assert_eq!(c.command.as_deref(), Some(&["cdc-chaos".to_string()][..]), "{o}: {workload}");
        let a = c.args.clone().unwrap_or_default();
        assert_eq!(a.get(..2), Some(&["pipeline".to_string(), sub.to_string()][..]), "{o}: {workload}: {a:?}");
        // The keys come from the environment (the Secret); given here as flags.
        let mut argv = vec!["cdc-pipeline".to_string()];
        argv.extend(a[1..].iter().cloned());
        if sub == "lake" {
            argv.extend(["--access-key", "k", "--secret-key", "s"].map(String::from));
        }
        let cli = cdc_pipeline::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{o}: {workload}'s args do not parse as `cdc-chaos pipeline`: {e}"));
        let clients = match cli.command {
            cdc_pipeline::cli::Command::Join { clients, .. } | cdc_pipeline::cli::Command::Warehouse { clients, .. } | cdc_pipeline::cli::Command::Lake { clients, .. } => clients,
        };
        assert!(c.volume_mounts.iter().flatten().any(|m| Path::new(&m.mount_path) == clients), "{o}: {workload}: --clients {} is not mounted", clients.display());
    }
}

fn requests(b: &Built, workload: &str, container: &str) -> (String, String) {
    let r = b.container(workload, container).resources.clone().and_then(|r| r.requests).unwrap_or_else(|| panic!("{}: {workload} has no requests", b.overlay));
    (r["cpu"].0.clone(), r["memory"].0.clone())
}

/// Pod templates of the long-running workloads: (what, namespace, labels, spec).
fn workloads(b: &Built) -> Vec<(String, String, BTreeMap<String, String>, &PodSpec)> {
    b.objects
        .iter()
        .filter_map(|o| {
            let (meta, template) = match o {
                Object::StatefulSet(s) => (&s.metadata, &s.spec.as_ref()?.template),
                Object::Deployment(d) => (&d.metadata, &d.spec.as_ref()?.template),
                _ => return None,
            };
            let ns = meta.namespace.clone().unwrap_or_default();
            let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
            Some((format!("{} {ns}/{}", b.overlay, meta.name.as_deref().unwrap_or("?")), ns, labels, template.spec.as_ref()?))
        })
        .collect()
}

/// What `run --platform kind` relies on: every port forward reaches a workload that exposes its
/// port, Kafka has the harness listener its forwards serve, every long-running pod can be paused
/// from inside (it shares its process namespace), and the pipeline's pods are ready only with a
/// running session.
fn check_run_reaches(b: &Built) {
    use cdc_chaos::platform::kind::forward::PodChoice;
    use cdc_chaos::platform::kind::stack::forward_specs;
    let all = workloads(b);
    for f in forward_specs() {
        let matching: Vec<_> = all
            .iter()
            .filter(|(what, ns, labels, _)| {
                ns == &f.namespace
                    && match &f.pods {
                        PodChoice::Named(pod) => pod.rsplit_once('-').is_some_and(|(set, _)| what.ends_with(&format!("/{set}"))),
                        PodChoice::Labelled(sel) => {
                            let values = sel.split_once('(').map(|(_, v)| v.trim_end_matches(')')).unwrap_or_default();
                            labels.get("app.kubernetes.io/name").is_some_and(|n| values.split(',').any(|v| v == n))
                        }
                    }
            })
            .collect();
        assert!(!matching.is_empty(), "{}: no workload for the forward to {} ({:?} in {})", b.overlay, f.component, f.pods, f.namespace);
        for (what, _, _, spec) in matching {
            let ports: Vec<i32> = spec.containers.iter().flat_map(|c| c.ports.iter().flatten().map(|p| p.container_port)).collect();
            assert!(ports.contains(&i32::from(f.port)), "{what}: the forward to {} needs port {}, the pod exposes {ports:?}", f.component, f.port);
        }
    }
    let server = b.properties("cdc-ingestion", "kafka-config", "server.properties");
    assert!(server["listeners"].contains(&format!("HARNESS://0.0.0.0:{}", manifests::KAFKA_HARNESS_PORT)), "{}", b.overlay);
    assert!(b.data("cdc-ingestion", "kafka-config", "start.sh").contains(&format!("harness_port=$(({} + ordinal))", manifests::HARNESS_LOCAL_BASE)));
    for (what, _, labels, spec) in &all {
        assert_eq!(spec.share_process_namespace, Some(true), "{what}: the pause fault needs shareProcessNamespace");
        if ["join", "warehouse-sink", "lake-sink"].contains(&labels.get("app.kubernetes.io/name").map(String::as_str).unwrap_or("")) {
            let probe = spec.containers[0].readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).map(|h| h.path.clone().unwrap_or_default());
            assert_eq!(probe.as_deref(), Some("/ready"), "{what}: ready only with a running session");
        }
    }
}

#[test]
fn overlays_build_with_kustomize_into_the_durable_cluster() {
    let kustomize = kustomize_binary();
    let kind = build(&kustomize, "kind");
    let production = build(&kustomize, "production");
    for b in [&kind, &production] {
        check_references(b);
        check_durable_profile(b);
        check_commands(b);
        let namespaces: Vec<String> = b.objects.iter().filter_map(|o| match o {
            Object::Namespace(n) => n.metadata.name.clone(),
            _ => None,
        }).collect();
        let mut want: Vec<&str> = cdc_chaos::platform::kind::NAMESPACES.to_vec();
        want.sort();
        assert_eq!(namespaces, want, "{}", b.overlay);
        let secrets = b.objects.iter().filter(|o| matches!(o, Object::Secret(_))).count();
        assert_eq!(secrets, 5, "{}: one generated Secret per namespace", b.overlay);
        for (what, _, spec) in b.pods() {
            for c in &spec.containers {
                assert!(c.resources.as_ref().and_then(|r| r.requests.as_ref()).is_some(), "{what}: container {} has no resource requests", c.name);
                assert!(c.resources.as_ref().and_then(|r| r.limits.as_ref()).is_some(), "{what}: container {} has no limits", c.name);
            }
        }
    }
    check_kafka(&kind, false);
    check_kafka(&production, true);
    check_run_reaches(&kind);
    check_run_reaches(&production);
    // The seed's sizing table in production, scaled down in kind.
    assert_eq!(requests(&production, "kafka", "kafka"), ("6".into(), "32Gi".into()));
    assert_eq!(requests(&kind, "kafka", "kafka"), ("250m".into(), "1Gi".into()));
    assert_eq!(requests(&production, "connect", "connect"), ("2".into(), "3Gi".into()));
    let storage = |b: &Built| b.stateful_set("kafka").unwrap().spec.as_ref().unwrap().volume_claim_templates.as_ref().unwrap()[0].spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0.clone();
    assert_eq!(storage(&production), "3Ti");
    assert_eq!(storage(&kind), "2Gi");
    let connect_replicas = |b: &Built| {
        b.objects.iter().find_map(|o| match o {
            Object::Deployment(d) if d.metadata.name.as_deref() == Some("connect") => d.spec.as_ref()?.replicas,
            _ => None,
        })
    };
    assert_eq!(connect_replicas(&production), Some(2));
    assert_eq!(connect_replicas(&kind), Some(1));
    // The lake: SeaweedFS in kind, MinIO in production, behind the same Service.
    assert!(kind.stateful_set("seaweedfs").is_some() && kind.stateful_set("minio").is_none());
    assert!(production.stateful_set("minio").is_some() && production.stateful_set("seaweedfs").is_none());
}

#[test]
fn manifests_render_writes_the_committed_files_and_check_finds_stale_ones() {
    let out = std::env::temp_dir().join(format!("cdcc-manifests-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_cdc-chaos")).arg("manifests").arg("render").args(args).output().expect("runs");
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let dir = out.to_str().unwrap();
    let (code, stdout, stderr) = run(&["--profile", "durable", "--out", dir]);
    assert_eq!(code, 0, "{stderr}");
    let committed = repo().join(manifests::COMMITTED_DIR);
    let mut names: Vec<String> = files(&committed, "").iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in &names {
        assert_eq!(std::fs::read(out.join(name)).unwrap(), std::fs::read(committed.join(name)).unwrap(), "{name} differs from the committed file");
        assert!(stdout.contains(name.as_str()), "{stdout}");
    }
    assert_eq!(files(&out, "").len(), names.len());
    assert_eq!(run(&["--out", dir, "--check"]).0, 0);

    std::fs::write(out.join("kafka-config.yaml"), "edited\n").unwrap();
    std::fs::write(out.join("old.yaml"), "left over\n").unwrap();
    let (code, stdout, stderr) = run(&["--out", dir, "--check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("kafka-config.yaml: differs") && stdout.contains("old.yaml: not part of the rendering"), "{stdout}");
    assert!(stderr.contains("cdc-chaos manifests render --profile durable"), "{stderr}");
    // Rendering again repairs the directory, stale files included.
    assert_eq!(run(&["--out", dir]).0, 0);
    assert_eq!(run(&["--out", dir, "--check"]).0, 0);
    assert!(!out.join("old.yaml").exists());
    let (code, _, stderr) = run(&["--profile", "sturdy", "--out", dir]);
    assert_eq!(code, 2, "{stderr}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The data of every generated ConfigMap, by (name, key).
fn generated_data() -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for path in files(&repo().join(manifests::COMMITTED_DIR), ".yaml") {
        if path.ends_with("kustomization.yaml") {
            continue;
        }
        for o in parse_stream(&path.display().to_string(), &std::fs::read_to_string(&path).unwrap()).unwrap() {
            if let Object::ConfigMap(c) = o {
                for (k, v) in c.data.unwrap_or_default() {
                    out.insert((c.metadata.name.clone().unwrap(), k), v);
                }
            }
        }
    }
    out
}

/// A sandbox for the generated scripts: every absolute path they use moved under a temporary
/// directory, stub programs (Kafka's tools, curl, psql) that log their arguments, and the
/// mounted ConfigMaps' files in place.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(format!("cdcc-scripts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let data = generated_data();
        for (mount, configmap) in [("kafka", "kafka-config"), ("topics", "kafka-topics"), ("connect", "connect-config"), ("connectors", "connectors")] {
            std::fs::create_dir_all(dir.join(mount)).unwrap();
            for ((cm, key), text) in &data {
                if cm == configmap {
                    std::fs::write(dir.join(mount).join(key), text).unwrap();
                }
            }
        }
        let log = dir.join("calls.log");
        let stub = |name: &str, extra: &str| {
            let path = dir.join("bin").join(name);
            std::fs::write(&path, format!("#!/bin/bash\necho \"{name} $*\" >> {}\n{extra}", log.display())).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        for tool in ["kafka-storage.sh", "kafka-server-start.sh", "kafka-broker-api-versions.sh", "connect-distributed.sh", "curl"] {
            stub(tool, "");
        }
        // `--list` answers with every topic of the plan; psql logs the SQL it is given.
        stub("kafka-topics.sh", &format!("if [[ \" $* \" == *\" --list \"* ]]; then grep -v '^#' {} | cut -d' ' -f1; fi\n", dir.join("topics/topics.txt").display()));
        stub("psql", &format!("cat >> {}\n", log.display()));
        Sandbox { dir }
    }

    /// Runs generated script `key` of ConfigMap `configmap` with `env`; returns the stubs' log.
    fn run(&self, configmap: &str, key: &str, env: &[(&str, &str)]) -> String {
        let data = generated_data();
        let mut script = data[&(configmap.to_string(), key.to_string())].clone();
        let d = self.dir.display().to_string();
        // `/tmp/` first: the sandbox itself lies under it.
        for (from, to) in [
            ("/tmp/", format!("{d}/")),
            ("/opt/kafka/bin/", format!("{d}/bin/")),
            ("/etc/cdc-chaos/connectors", format!("{d}/connectors")),
            ("/etc/cdc-chaos/connect", format!("{d}/connect")),
            ("/etc/cdc-chaos/kafka", format!("{d}/kafka")),
            ("/etc/cdc-chaos/topics", format!("{d}/topics")),
            ("/var/lib/kafka/data", format!("{d}/data")),
        ] {
            script = script.replace(from, &to);
        }
        let shell = if script.starts_with("#!/bin/sh") { "sh" } else { "bash" };
        let stderr = self.dir.join("stderr.log");
        let mut child = std::process::Command::new(shell)
            .arg("-c")
            .arg(&script)
            .envs(env.iter().copied())
            .env("PATH", format!("{d}/bin:{}", std::env::var("PATH").unwrap_or_default()))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        // A script waiting for something the stubs never give loops: 20 s is plenty.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{configmap}/{key} still runs after 20 s: {}", std::fs::read_to_string(&stderr).unwrap_or_default());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(status.success(), "{configmap}/{key}: {status}\n{}", std::fs::read_to_string(&stderr).unwrap_or_default());
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn kafka_start_gives_each_pod_its_node_id_host_and_harness_port() {
    let sb = Sandbox::new("kafka");
    let log = sb.run("kafka-config", "start.sh", &[("HOSTNAME", "kafka-2")]);
    let server = properties::parse(&std::fs::read_to_string(sb.dir.join("server.properties")).unwrap());
    assert_eq!(server["node.id"], "3");
    assert_eq!(
        server["advertised.listeners"],
        "PLAINTEXT://kafka-2.kafka.cdc-ingestion.svc.cluster.local:9092,CONNECT://kafka-2.kafka.cdc-ingestion.svc.cluster.local:9094,PIPELINE://kafka-2.kafka.cdc-ingestion.svc.cluster.local:9095,HARNESS://127.0.0.1:39094"
    );
    assert!(server.values().all(|v| !v.contains('@') || v.contains("@kafka-")), "a placeholder is left: {server:?}");
    let id = generated_data()[&("kafka-config".to_string(), "cluster.id".to_string())].trim().to_string();
    let config = sb.dir.join("server.properties").display().to_string();
    assert!(log.contains(&format!("kafka-storage.sh format --ignore-formatted --cluster-id {id} --config {config}")), "{log}");
    assert!(log.contains(&format!("kafka-server-start.sh {config}")), "{log}");
}

#[test]
fn the_topic_job_creates_every_planned_topic_with_its_configs() {
    let sb = Sandbox::new("topics");
    let log = sb.run("kafka-topics", "create-topics.sh", &[]);
    let creates: Vec<&str> = log.lines().filter(|l| l.starts_with("kafka-topics.sh") && l.contains("--create")).collect();
    assert_eq!(creates.len(), 10, "{log}");
    let customers = creates.iter().find(|l| l.contains("--topic crm.public.customers ")).unwrap();
    for part in ["--partitions 3", "--replication-factor 3", "--if-not-exists", "--config min.insync.replicas=2", "--config unclean.leader.election.enable=false", "--config retention.ms=-1"] {
        assert!(customers.contains(part), "{part}: {customers}");
    }
    // Every topic exists (the stub lists the plan): the wait ends at once.
    sb.run("kafka-topics", "wait-topics.sh", &[]);
}

#[test]
fn connect_advertises_its_pod_ip_and_registers_both_connectors() {
    let sb = Sandbox::new("connect");
    let log = sb.run("connect-config", "start.sh", &[("POD_IP", "10.244.1.7")]);
    let worker = properties::parse(&std::fs::read_to_string(sb.dir.join("worker.properties")).unwrap());
    assert_eq!(worker["rest.advertised.host.name"], "10.244.1.7");
    assert!(log.contains(&format!("connect-distributed.sh {}", sb.dir.join("worker.properties").display())), "{log}");
    let log = sb.run("connectors", "register.sh", &[]);
    for name in ["crm-source", "fleet-source"] {
        let put = format!("-X PUT -H Content-Type: application/json --data @{}/connectors/{name}.json http://connect.cdc-ingestion.svc.cluster.local:8083/connectors/{name}/config", sb.dir.display());
        assert!(log.contains(&put), "{put}\n{log}");
    }
}

#[test]
fn the_cdc_role_takes_its_password_from_the_environment() {
    let sb = Sandbox::new("crm");
    let log = sb.run("crm-init", "00-cdc-role.sh", &[("POSTGRES_USER", "postgres"), ("CDC_PASSWORD", "from-the-secret")]);
    assert!(log.contains("psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres -v cdc_password=from-the-secret"), "{log}");
    assert!(log.contains("format('CREATE ROLE cdc LOGIN REPLICATION PASSWORD %L', :'cdc_password')"), "{log}");
    let crm = &generated_data()[&("crm-init".to_string(), "10-crm.sql".to_string())];
    assert!(!crm.contains("CREATE ROLE") && crm.contains("SET ROLE cdc;"), "{crm}");
}
