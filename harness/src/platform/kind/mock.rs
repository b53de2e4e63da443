//! A mock Kubernetes API server for the tests of [`super::cluster`] and [`super::faults`]: a
//! `tower_test` service behind a real `kube::Client`, answering each request from a scenario
//! (a function of the request) and recording every request it saw — method, path, query,
//! content type and body — for the test to assert on.
//!
//! Test-only: compiled under `cfg(test)`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

/// One request the mock API server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Query parameters, percent-decoded; a repeated key keeps every value.
    pub query: BTreeMap<String, Vec<String>>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Seen {
    /// The query parameter's first value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn is_watch(&self) -> bool {
        self.param("watch") == Some("true")
    }
}

/// How the mock answers one request.
pub enum Reply {
    /// A status code and a JSON body.
    Json(u16, Value),
    /// A watch stream: each event a line of JSON.
    Events(Vec<Value>),
    /// No answer: the request stays pending (a watch with nothing new).
    Hold,
}

/// The requests seen so far.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    pub fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// Every request but the GETs (discovery, reads, lists and watches): what changed the cluster.
    pub fn writes(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method != "GET").collect()
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A client whose API server is `scenario`, and the recorder of what it was asked.
pub fn serve(mut scenario: impl FnMut(&Seen) -> Reply + Send + 'static) -> (Client, Recorder) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let recorder = Recorder::default();
    let log = recorder.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for pair in parts.uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                query.entry(decode(k)).or_default().push(decode(v));
            }
            let seen = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query,
                content_type: parts.headers.get(http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()),
                body: if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) },
            };
            let reply = scenario(&seen);
            log.0.lock().unwrap().push(seen);
            match reply {
                Reply::Json(code, body) => {
                    let response = Response::builder().status(code).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap();
                    send.send_response(response);
                }
                Reply::Events(events) => {
                    let mut text = Vec::new();
                    for e in events {
                        text.extend(serde_json::to_vec(&e).unwrap());
                        text.push(b'\n');
                    }
                    send.send_response(Response::builder().status(200).body(Body::from(text)).unwrap());
                }
                Reply::Hold => held.push(send),
            }
        }
    });
    (Client::new(service, "default"), recorder)
}

/// The discovery answer (`APIResourceList`) of a group-version: `(plural, kind, namespaced)`.
pub fn resource_list(group_version: &str, resources: &[(&str, &str, bool)]) -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources.iter().map(|(plural, kind, namespaced)| json!({
            "name": plural,
            "singularName": "",
            "namespaced": namespaced,
            "kind": kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        })).collect::<Vec<_>>(),
    })
}

/// Discovery of the groups the manifests use: core, apps, batch, policy, networking.
pub fn discovery(path: &str) -> Option<Value> {
    Some(match path {
        "/api/v1" => resource_list(
            "v1",
            &[
                ("namespaces", "Namespace", false),
                ("configmaps", "ConfigMap", true),
                ("secrets", "Secret", true),
                ("services", "Service", true),
                ("pods", "Pod", true),
            ],
        ),
        "/apis/apps/v1" => resource_list("apps/v1", &[("statefulsets", "StatefulSet", true), ("deployments", "Deployment", true)]),
        "/apis/batch/v1" => resource_list("batch/v1", &[("jobs", "Job", true)]),
        "/apis/policy/v1" => resource_list("policy/v1", &[("poddisruptionbudgets", "PodDisruptionBudget", true)]),
        "/apis/networking.k8s.io/v1" => resource_list("networking.k8s.io/v1", &[("networkpolicies", "NetworkPolicy", true)]),
        _ => return None,
    })
}

/// A `Status` answer.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

/// A successful `Status` (the answer to a DELETE).
pub fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200})
}

/// The API's answer to a PATCH or POST: the object itself; to a DELETE: success.
pub fn echo(seen: &Seen) -> Value {
    if seen.method != "DELETE" && seen.body.is_object() && seen.body.get("kind").is_some() {
        seen.body.clone()
    } else {
        success()
    }
}
