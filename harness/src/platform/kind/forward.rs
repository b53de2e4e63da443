//! Port forwards from this machine into the cluster's pods through the Kubernetes API (the
//! `portforward` subresource, as `kubectl port-forward` uses): how the harness's own clients —
//! the load generator, the capture of every hop, the final state, the supervisor — reach a
//! cluster while the harness runs outside it.
//!
//! Each [`Forward`] is a local listener on `127.0.0.1`. Every connection it accepts opens its
//! own stream to a pod chosen at that moment ([`choose_pod`]), so after the nemesis deletes a
//! pod the next connection reaches its successor, as a Service would. The forwarded traffic
//! enters the pod's network namespace on its loopback: NetworkPolicy partitions between pods do
//! not cut the harness off, as iptables partitions between the Kafka nodes do not cut off the
//! harness on the local platform.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::Client;
use tokio::net::{TcpListener, TcpStream};

use super::cluster::{api_error, COMPONENT};
use crate::error::{Error, Result};

/// The pods a forward reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum PodChoice {
    /// One pod by name (a Kafka node: each advertises its own forward).
    Named(String),
    /// Any ready pod matching a label selector (a Deployment's pods).
    Labelled(String),
}

/// One forward: what it reaches and where it listens.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardSpec {
    /// The component it reaches (`kafka-1`, `postgres`, ...), for messages.
    pub component: String,
    pub namespace: String,
    pub pods: PodChoice,
    /// The port inside the pod.
    pub port: u16,
    /// The local port; 0 for any free one.
    pub local_port: u16,
}

/// A running forward; stops when dropped.
pub struct Forward {
    pub spec: ForwardSpec,
    /// The local address its clients connect to.
    pub local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forward {
    /// `127.0.0.1:<local port>`.
    pub fn addr(&self) -> String {
        self.local.to_string()
    }
}

/// Whether `pod` can take a forwarded connection: running, not being deleted, and ready.
pub fn pod_serves(pod: &Pod) -> bool {
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    running && ready && pod.metadata.deletion_timestamp.is_none()
}

/// The pod a new connection goes to: the first (by name) that serves; otherwise the first
/// running one (a pod that is not ready yet may still answer, and the client's own retry
/// decides); `None` when no pod runs.
pub fn choose_pod(pods: &[Pod]) -> Option<String> {
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let running = |p: &&&Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && p.metadata.deletion_timestamp.is_none();
    sorted.iter().find(|p| pod_serves(p)).or_else(|| sorted.iter().find(running)).and_then(|p| p.metadata.name.clone())
}

/// Starts forwarding `spec`. Must be called within a Tokio runtime that keeps running (the
/// accept loop and each connection are tasks of it). An error names the local port if it is
/// taken.
pub async fn start(client: Client, spec: ForwardSpec) -> Result<Forward> {
    let listener = TcpListener::bind(("127.0.0.1", spec.local_port)).await.map_err(|e| {
        Error::component(
            COMPONENT,
            format!("port forward to {} ({}:{}): cannot listen on 127.0.0.1:{}: {e}", spec.component, spec.namespace, spec.port, spec.local_port),
        )
    })?;
    let local = listener.local_addr().map_err(|e| Error::component(COMPONENT, format!("port forward to {}: {e}", spec.component)))?;
    let task = {
        let spec = spec.clone();
        tokio::spawn(async move {
            loop {
                let socket = match listener.accept().await {
                    Ok((socket, _)) => socket,
                    Err(e) => {
                        // Out of file descriptors, say: back off rather than spin.
                        tracing::warn!("port forward to {}: accepting: {e}", spec.component);
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let (client, spec) = (client.clone(), spec.clone());
                tokio::spawn(async move {
                    if let Err(e) = relay(client, &spec, socket).await {
                        tracing::debug!("{e}");
                    }
                });
            }
        })
    };
    Ok(Forward { spec, local, task })
}

/// The name of the pod a new connection of `spec` goes to now.
async fn target_pod(api: &Api<Pod>, spec: &ForwardSpec) -> Result<String> {
    match &spec.pods {
        PodChoice::Named(name) => Ok(name.clone()),
        PodChoice::Labelled(selector) => {
            let pods = api
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| api_error(format!("listing the pods of {} ({}/{selector})", spec.component, spec.namespace), e))?;
            choose_pod(&pods.items)
                .ok_or_else(|| Error::component(COMPONENT, format!("no running pod of {} ({}/{selector})", spec.component, spec.namespace)))
        }
    }
}

/// Relays one accepted connection to a pod until either side closes.
async fn relay(client: Client, spec: &ForwardSpec, mut socket: TcpStream) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client, &spec.namespace);
    let pod = target_pod(&api, spec).await?;
    let what = format!("port forward to {}/{pod}:{}", spec.namespace, spec.port);
    let mut pf = api.portforward(&pod, &[spec.port]).await.map_err(|e| api_error(&what, e))?;
    let mut upstream = pf.take_stream(spec.port).ok_or_else(|| Error::component(COMPONENT, format!("{what}: no stream")))?;
    let copied = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
    drop(upstream);
    let _ = pf.join().await;
    copied.map(|_| ()).map_err(|e| Error::component(COMPONENT, format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, phase: &str, ready: bool, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                deletion_timestamp: deleting.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_ready_pod_is_chosen_over_a_starting_or_terminating_one() {
        let pods = [pod("join-a", "Running", false, false), pod("join-b", "Running", true, true), pod("join-c", "Running", true, false)];
        assert_eq!(choose_pod(&pods).as_deref(), Some("join-c"));
    }

    #[test]
    fn a_running_pod_that_is_not_ready_is_better_than_none() {
        let pods = [pod("x-b", "Pending", false, false), pod("x-a", "Running", false, false)];
        assert_eq!(choose_pod(&pods).as_deref(), Some("x-a"));
        assert_eq!(choose_pod(&[pod("x", "Pending", false, false), pod("y", "Running", true, true)]), None);
        assert_eq!(choose_pod(&[]), None);
    }

    #[tokio::test]
    async fn a_taken_local_port_is_an_error_naming_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let (client, _) = crate::platform::kind::mock::serve(|_| crate::platform::kind::mock::Reply::Json(200, crate::platform::kind::mock::success()));
        let spec = ForwardSpec { component: "kafka-1".into(), namespace: "cdc-ingestion".into(), pods: PodChoice::Named("kafka-0".into()), port: 9096, local_port: port };
        let e = start(client, spec).await.err().expect("the port is taken").to_string();
        assert!(e.contains(&format!("127.0.0.1:{port}")) && e.contains("kafka-1"), "{e}");
    }
}
