//! The `kind` platform (docs/kubernetes.md): the whole architecture on Kubernetes, deployed from
//! `manifests/` (kustomize: `manifests/base`, overlays `kind` and `production`).
//!
//! The part that must never drift from the local platform is [`manifests`]: it renders, from a
//! profile, every configuration file the cluster's components read — each Kafka node's
//! `server.properties`, the topic plan, the Connect worker and connector configurations, the
//! pipeline's client files and the databases' schemas — by calling the local platform's own
//! rendering functions with an in-cluster [`Topology`](crate::platform::Topology). Its output for
//! `durable` is committed in `manifests/base/generated/`; `cdc-chaos manifests render` writes it.
//! [`kustomize`] installs the `kustomize` binary into the cache and builds the overlays.
//!
//! [`cluster`] talks to a cluster's API through `kube`: server-side apply of the built overlay,
//! readiness by watching, deletion (`up`/`down --platform kind`). [`faults`] injects and heals
//! faults through the same API: pod deletion, exec (SIGSTOP/SIGCONT), NetworkPolicy partitions,
//! or Chaos Mesh objects when the cluster serves them. [`stack`] is the stack a run drives on a
//! cluster (`run`/`replay`/`sweep`/`status --platform kind`): health from the API, the
//! harness's clients through the port forwards of [`forward`]. [`apiserver`] runs a real
//! kube-apiserver on an etcd on this host, without nodes, which [`cluster`] and [`faults`] are
//! tested against.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

pub mod apiserver;
pub mod binaries;
pub mod cluster;
pub mod create;
pub mod engine;
pub mod faults;
pub mod forward;
pub mod images;
pub mod kustomize;
pub mod manifests;
pub mod network;
pub mod space;
pub mod stack;
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

/// The overlay `up` and `down` deploy on kind, relative to the repository's root.
pub const KIND_OVERLAY: &str = "manifests/overlays/kind";

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::component(cluster::COMPONENT, format!("starting the Kubernetes client's runtime: {e}")))
}

/// `kustomize build <overlay>`, kustomize installed into `cache` if missing.
pub(crate) fn build_overlay(cache: &Path, overlay: &Path) -> Result<String> {
    if !overlay.join("kustomization.yaml").is_file() {
        return Err(Error::Usage(format!(
            "{} is not a kustomize overlay (no kustomization.yaml): run from the repository's root or pass --overlay",
            overlay.display()
        )));
    }
    let kustomize = kustomize::provision(cache)?;
    kustomize::build(&kustomize, overlay)
}

/// `up --platform kind`: reaches the kubeconfig's cluster, builds `overlay` (or, for another
/// profile than its own, the overlay [`stack::overlay_for`] writes), applies it with
/// server-side apply and waits (watching) until Kafka, every Deployment and both Jobs are
/// ready, at most `timeout`. The images must be in the cluster already (docs/kubernetes.md).
pub fn up(cache: &Path, home: &Path, overlay: &Path, profile: &crate::profile::Profile, timeout: Duration) -> Result<Vec<cluster::ObjectRef>> {
    let rt = runtime()?;
    let cluster = rt.block_on(cluster::KindCluster::connect())?;
    let overlay = stack::overlay_for(cache, home, overlay, profile)?;
    let yaml = build_overlay(cache, &overlay)?;
    rt.block_on(async {
        let applied = cluster.apply(&yaml).await?;
        cluster.wait_ready(&applied, timeout).await?;
        Ok(applied)
    })
}

/// `down --platform kind`: heals every fault (journaled in `home`, or labelled on the
/// cluster), then deletes what `overlay` applies, namespaces last.
pub fn down(cache: &Path, home: &Path, overlay: &Path) -> Result<Vec<cluster::ObjectRef>> {
    let rt = runtime()?;
    let cluster = rt.block_on(cluster::KindCluster::connect())?;
    let yaml = build_overlay(cache, overlay)?;
    rt.block_on(async {
        let faults = faults::KindFaults::new(cluster.clone(), faults::KindFaults::journal_path(home)).await?;
        for healed in faults.heal_all().await? {
            crate::progress::note(&format!("healed {healed}"));
        }
        cluster.delete(&yaml).await
    })
}
