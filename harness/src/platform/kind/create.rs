//! `--create-cluster`: the kind cluster of `manifests/kind-cluster.yaml`, every image in it built
//! on this machine. Steps, each skipped when already done:
//!
//! 1. a Docker engine ([`super::engine`]: found, or installed and started);
//! 2. the `kind` binary, from the Go module proxy into the cache;
//! 3. the node image with the control plane's images in it ([`super::images::node`]) and the
//!    workloads' images ([`super::images::build_workloads`]);
//! 4. the cluster (unless `kind get clusters` lists it), then its pod network
//!    ([`super::network`]) and every node Ready;
//! 5. the workloads' images loaded into the workers with `kind load docker-image`, one at a time
//!    (kind skips an image every node already has, but given several it loads them all into
//!    every node that misses any).
//!
//! Before the cluster is created and before images are loaded, [`super::space`] checks that the
//! Docker engine's disk has room for what they add.
//!
//! `--delete-cluster` deletes the cluster and stops the Docker engine if the harness started it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::binaries::{go_tool, KIND_MODULE, KIND_VERSION};
use crate::error::{Error, Result};
use crate::platform::process;
use crate::platform::provision::run_logged;
use crate::platform::Layout;
use super::space;
use crate::progress;

/// The cluster's name (`name:` in `manifests/kind-cluster.yaml`).
pub const CLUSTER_NAME: &str = "cdc-chaos";
/// The cluster's configuration, relative to the repository's root.
pub const CLUSTER_CONFIG: &str = "manifests/kind-cluster.yaml";

/// Whether `kind get clusters` lists this harness's cluster.
pub fn cluster_exists(kind: &Path) -> Result<bool> {
    let mut get = Command::new(kind);
    get.args(["get", "clusters"]);
    Ok(process::run(get)?.lines().any(|l| l.trim() == CLUSTER_NAME))
}

/// The cached `kind` binary, if a Docker engine answers and it lists this harness's cluster.
pub fn existing_cluster(cache: &Path) -> Result<Option<PathBuf>> {
    let kind = cache.join("bin").join("kind");
    if !kind.is_file() || !super::engine::answers() {
        return Ok(None);
    }
    Ok(cluster_exists(&kind)?.then_some(kind))
}

/// The command that loads `tags` into `nodes` of the cluster.
pub fn load_command(kind: &Path, tags: &[String], nodes: &[String]) -> Command {
    let mut load = Command::new(kind);
    load.args(["load", "docker-image", "--name", CLUSTER_NAME, "--nodes", &nodes.join(",")]).args(tags);
    load
}

/// The node container of the control plane.
pub fn control_plane_node() -> String {
    format!("{CLUSTER_NAME}-control-plane")
}

/// The worker nodes' containers, as kind names them (`<cluster>-worker`, `-worker2`, …), for a
/// cluster configuration with `count` workers. The control plane keeps kubeadm's `NoSchedule`
/// taint when a cluster has workers, so no workload runs there and no workload image goes there.
pub fn worker_nodes(count: usize) -> Vec<String> {
    (1..=count).map(|i| if i == 1 { format!("{CLUSTER_NAME}-worker") } else { format!("{CLUSTER_NAME}-worker{i}") }).collect()
}

/// How many nodes of each role a kind cluster configuration has: (control planes, workers).
pub fn node_roles(config: &str) -> Result<(usize, usize)> {
    let v: serde_yaml::Value = serde_yaml::from_str(config).map_err(|e| Error::Usage(format!("{CLUSTER_CONFIG}: {e}")))?;
    let nodes = v["nodes"].as_sequence().ok_or_else(|| Error::Usage(format!("{CLUSTER_CONFIG}: no `nodes` list")))?;
    let role = |r: &str| nodes.iter().filter(|n| n["role"].as_str() == Some(r)).count();
    Ok((role("control-plane"), role("worker")))
}

/// Creates the cluster if it does not exist, sets up its network and loads the images into its
/// workers, after checking the Docker engine's disk has room for what it adds; `repo` is the
/// repository's root. Returns the `kind` binary used.
pub fn create_cluster(layout: &Layout, repo: &Path, overlay: &Path) -> Result<PathBuf> {
    let cache = &layout.cache;
    let config = repo.join(CLUSTER_CONFIG);
    let config_text = std::fs::read_to_string(&config).map_err(|e| Error::io(format!("{CLUSTER_CONFIG} (run from the repository's root)"), &config, e))?;
    let (control_planes, worker_count) = node_roles(&config_text)?;
    let secrets = overlay.join("secrets");
    if secrets.is_dir() && !secrets.join("sources.env").is_file() {
        let mut make = Command::new("sh");
        make.arg(repo.join("manifests/make-secrets.sh")).arg(overlay);
        progress::step(&format!("secrets: {}", process::run(make)?.trim()));
    }
    super::engine::ensure(cache)?;
    let kind = go_tool(cache, "kind", KIND_MODULE, KIND_VERSION)?;
    progress::step(&format!("images: building what changed (log: {})", super::images::log_file(cache).display()));
    let node = super::images::node(cache, repo)?;
    let workloads = super::images::build_workloads(layout, repo)?;
    let workers = worker_nodes(worker_count);
    let root = space::docker_root()?;
    let exists = cluster_exists(&kind)?;
    let mut placements = Vec::new();
    for tag in &workloads {
        let id = super::images::image_id(tag)?;
        let missing = if exists { workers.iter().filter(|w| space::id_on_node(w, tag).as_deref() != Some(id.as_str())).count() } else { workers.len() };
        placements.push(space::Placement::loaded(tag, space::image_bytes(tag)?, missing));
    }
    if exists {
        progress::step(&format!("kind cluster {CLUSTER_NAME} exists"));
    } else {
        let nodes = control_planes + worker_count;
        placements.push(space::Placement::node_image(&node, space::image_bytes(&node)?, nodes));
        room(&root, &placements, &format!("a kind cluster of {nodes} nodes with the workloads' images"))?;
        progress::step(&format!("creating kind cluster {CLUSTER_NAME} from {CLUSTER_CONFIG} with {node}"));
        let mut create = Command::new(&kind);
        create.current_dir(repo).args(["create", "cluster", "--config", CLUSTER_CONFIG, "--image", &node, "--retain"]);
        run_logged(&cache.join("kind").join("create.log"), "kind create cluster", &mut create)?;
        placements.pop();
    }
    super::network::configure(&control_plane_node(), 300)?;
    let loads: Vec<space::Placement> = placements.into_iter().filter(|p| p.nodes > 0).collect();
    if !loads.is_empty() {
        room(&root, &loads, &format!("loading {} images into the workers", loads.len()))?;
    }
    // One image at a time: given several, kind loads them all into every node missing any.
    for p in &loads {
        run_logged(&cache.join("kind").join("load.log"), &format!("kind load docker-image {}", p.tag), &mut load_command(&kind, std::slice::from_ref(&p.tag), &workers))?;
    }
    Ok(kind)
}

/// Checks the Docker engine's disk has room for `placements`, and says how much it needs.
fn room(root: &Path, placements: &[space::Placement], what: &str) -> Result<()> {
    let need = space::needed(placements);
    let free = space::require(root, need, what)?;
    progress::note(&format!("disk: {what} needs about {}, {} free on {}", crate::error::gb(need), crate::error::gb(free), root.display()));
    Ok(())
}

/// `kind export logs` of the cluster into `dir` (every node's journal, kubelet and containerd
/// logs, every pod's logs), when the cluster is this harness's kind cluster; whether it was.
pub fn export_logs(cache: &Path, dir: &Path) -> Result<bool> {
    let Some(kind) = existing_cluster(cache)? else {
        return Ok(false);
    };
    let mut export = Command::new(&kind);
    export.args(["export", "logs"]).arg(dir).args(["--name", CLUSTER_NAME]);
    process::run(export)?;
    Ok(true)
}

/// Deletes the cluster if it exists, then stops the Docker engine if the harness started it.
pub fn delete_cluster(cache: &Path) -> Result<()> {
    if super::engine::answers() {
        let kind = go_tool(cache, "kind", KIND_MODULE, KIND_VERSION)?;
        let mut delete = Command::new(&kind);
        delete.args(["delete", "cluster", "--name", CLUSTER_NAME]);
        process::run(delete)?;
        progress::step(&format!("deleted kind cluster {CLUSTER_NAME}"));
    }
    if let Some(pid) = super::engine::stop_if_started(cache)? {
        progress::step(&format!("stopped the Docker engine the harness had started (dockerd pid {pid})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_loaded_into_the_named_clusters_workers() {
        let c = load_command(Path::new("/c/bin/kind"), &["cdc-chaos/kafka:4.3.1".into(), "cdc-chaos/connect:dev".into()], &worker_nodes(2));
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["load", "docker-image", "--name", "cdc-chaos", "--nodes", "cdc-chaos-worker,cdc-chaos-worker2", "cdc-chaos/kafka:4.3.1", "cdc-chaos/connect:dev"]);
    }

    #[test]
    fn the_clusters_configuration_has_one_control_plane_and_three_workers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let config = std::fs::read_to_string(root.join(CLUSTER_CONFIG)).unwrap();
        assert_eq!(node_roles(&config).unwrap(), (1, 3));
        assert_eq!(worker_nodes(3), ["cdc-chaos-worker", "cdc-chaos-worker2", "cdc-chaos-worker3"]);
        assert!(node_roles("kind: Cluster\n").unwrap_err().to_string().contains("no `nodes` list"));
        assert!(node_roles("nodes: [").unwrap_err().to_string().contains(CLUSTER_CONFIG));
    }

    #[test]
    fn the_overlay_runs_the_images_built_here() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let overlay = std::fs::read_to_string(root.join("manifests/overlays/kind/kustomization.yaml")).unwrap();
        let base: String = ["ingestion/connect.yaml", "ingestion/kafka.yaml", "ingestion/topics-job.yaml", "processing/pipeline.yaml", "sources/postgres.yaml", "sources/mariadb.yaml", "warehouse/postgres.yaml", "lake/seaweedfs.yaml"]
            .iter()
            .map(|p| std::fs::read_to_string(root.join("manifests/base").join(p)).unwrap())
            .collect();
        let names: std::collections::BTreeSet<&str> = base
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .map(|i| i.split(':').next().unwrap())
            .collect();
        for name in names {
            if name.starts_with("cdc-chaos/") {
                continue;
            }
            assert!(overlay.contains(&format!("- name: {name}\n")), "the kind overlay does not map {name}");
        }
        for tag in [super::super::images::KAFKA, super::super::images::POSTGRES, super::super::images::MARIADB, super::super::images::CURL] {
            let (name, version) = tag.split_once(':').unwrap();
            assert!(overlay.contains(&format!("newName: {name}\n    newTag: \"{version}\"")), "{tag} not in the overlay");
        }
        let config = std::fs::read_to_string(root.join(CLUSTER_CONFIG)).unwrap();
        assert!(config.contains(&format!("name: {CLUSTER_NAME}")));
    }
}
