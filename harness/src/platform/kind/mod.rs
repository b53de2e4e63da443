//! The `kind` platform (DESIGN §8): the whole architecture on Kubernetes, deployed from
//! `manifests/` (kustomize: `manifests/base`, overlays `kind` and `production`).
//!
//! What exists today is the part that must never drift from the local platform: [`manifests`]
//! renders, from a profile, every configuration file the cluster's components read — each Kafka
//! node's `server.properties`, the topic plan, the Connect worker and connector configurations,
//! the pipeline's client files and the databases' schemas — by calling the local platform's own
//! rendering functions with an in-cluster [`Topology`](crate::platform::Topology). Its output for
//! `durable` is committed in `manifests/base/generated/`; `cdc-chaos manifests render` writes it.
//! [`kustomize`] installs the `kustomize` binary into the cache and builds the overlays.
//!
//! [`cluster`] talks to a cluster's API through `kube`: server-side apply of the built overlay,
//! readiness by watching, deletion (`up`/`down --platform kind`). [`faults`] injects and heals
//! faults through the same API: pod deletion, exec (SIGSTOP/SIGCONT), NetworkPolicy partitions,
//! or Chaos Mesh objects when the cluster serves them.

pub mod cluster;
pub mod faults;
pub mod kustomize;
pub mod manifests;
#[cfg(test)]
mod mock;

/// Namespace of the source databases (PostgreSQL `crm`, MariaDB `fleet`).
pub const NS_SOURCES: &str = "cdc-sources";
/// Namespace of Kafka and Kafka Connect.
pub const NS_INGESTION: &str = "cdc-ingestion";
/// Namespace of the pipeline: the join and both sinks.
pub const NS_PROCESSING: &str = "cdc-processing";
/// Namespace of the warehouse PostgreSQL.
pub const NS_WAREHOUSE: &str = "cdc-warehouse";
/// Namespace of the lake's S3 server (SeaweedFS; MinIO in the `production` overlay).
pub const NS_LAKE: &str = "cdc-lake";

/// Every namespace, in deployment order.
pub const NAMESPACES: &[&str] = &[NS_SOURCES, NS_INGESTION, NS_PROCESSING, NS_WAREHOUSE, NS_LAKE];

/// `<service>.<namespace>.svc.cluster.local`: a Service's address from any namespace.
pub fn service_host(service: &str, namespace: &str) -> String {
    format!("{service}.{namespace}.svc.cluster.local")
}
