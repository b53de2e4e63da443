//! `--create-cluster`: the kind cluster of `manifests/kind-cluster.yaml` with this repository's
//! two images in it. Needs a Docker engine (kind runs its nodes as containers and `docker build`
//! makes the images) — checked first, before anything is installed — and the `kind` binary,
//! installed from the Go module proxy into the cache like kustomize.
//!
//! Steps, each skipped when already done: create the cluster (unless `kind get clusters` lists
//! it), build `cdc-chaos/connect:dev` and `cdc-chaos/pipeline:dev` from `docker/`, and
//! `kind load docker-image` both into the cluster's nodes. The other images (Kafka, PostgreSQL,
//! MariaDB, SeaweedFS, curl) are pulled by the nodes from their registries.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::kustomize::go_tool;
use crate::error::{Error, Result};
use crate::platform::process::{self, on_path};
use crate::progress;

/// The kind release installed.
pub const KIND_VERSION: &str = "v0.33.0";
const KIND_MODULE: &str = "sigs.k8s.io/kind";
/// The cluster's name (`name:` in `manifests/kind-cluster.yaml`).
pub const CLUSTER_NAME: &str = "cdc-chaos";
/// The cluster's configuration, relative to the repository's root.
pub const CLUSTER_CONFIG: &str = "manifests/kind-cluster.yaml";

/// The images this repository builds: (tag, Dockerfile), as the manifests name them.
pub const IMAGES: [(&str, &str); 2] = [("cdc-chaos/connect:dev", "docker/connect.Dockerfile"), ("cdc-chaos/pipeline:dev", "docker/pipeline.Dockerfile")];

/// Checks that a Docker engine answers (`docker info`): an error saying what needs it otherwise.
pub fn check_docker() -> Result<()> {
    let needs = "--create-cluster needs a Docker engine: kind runs the cluster's nodes as containers and `docker build` makes the connect and pipeline images";
    if !on_path("docker") {
        return Err(Error::Usage(format!("{needs}, and `docker` is not on PATH; or create the cluster elsewhere and point KUBECONFIG at it")));
    }
    let mut cmd = Command::new("docker");
    cmd.args(["info", "--format", "{{.ServerVersion}}"]);
    process::run(cmd).map(|_| ()).map_err(|e| Error::Usage(format!("{needs}, and `docker info` fails: {e}")))
}

/// The commands `--create-cluster` runs after the cluster exists, in order.
pub fn image_commands(kind: &Path, repo: &Path) -> Vec<Command> {
    let mut out = Vec::new();
    for (tag, dockerfile) in IMAGES {
        let mut build = Command::new("docker");
        build.current_dir(repo).args(["build", "-f", dockerfile, "-t", tag, "."]);
        out.push(build);
    }
    for (tag, _) in IMAGES {
        let mut load = Command::new(kind);
        load.args(["load", "docker-image", tag, "--name", CLUSTER_NAME]);
        out.push(load);
    }
    out
}

/// Creates the cluster if it does not exist and loads the images; `repo` is the repository's
/// root (the Dockerfiles' context). Returns the `kind` binary used.
pub fn create_cluster(cache: &Path, repo: &Path) -> Result<PathBuf> {
    check_docker()?;
    if !repo.join(CLUSTER_CONFIG).is_file() {
        return Err(Error::Usage(format!("{} not found: run from the repository's root", repo.join(CLUSTER_CONFIG).display())));
    }
    let kind = go_tool(cache, "kind", KIND_MODULE, KIND_VERSION)?;
    let mut get = Command::new(&kind);
    get.args(["get", "clusters"]);
    let existing = process::run(get)?;
    if existing.lines().any(|l| l.trim() == CLUSTER_NAME) {
        progress::step(&format!("kind cluster {CLUSTER_NAME} exists"));
    } else {
        progress::step(&format!("creating kind cluster {CLUSTER_NAME} from {CLUSTER_CONFIG}"));
        let mut create = Command::new(&kind);
        create.current_dir(repo).args(["create", "cluster", "--config", CLUSTER_CONFIG, "--wait", "5m"]);
        process::run(create)?;
    }
    for cmd in image_commands(&kind, repo) {
        progress::step(&format!("{cmd:?}"));
        process::run(cmd)?;
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_built_then_loaded_into_the_named_cluster() {
        let cmds: Vec<String> = image_commands(Path::new("/c/bin/kind"), Path::new("/repo"))
            .iter()
            .map(|c| format!("{} {}", c.get_program().to_string_lossy(), c.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")))
            .collect();
        assert_eq!(
            cmds,
            [
                "docker build -f docker/connect.Dockerfile -t cdc-chaos/connect:dev .",
                "docker build -f docker/pipeline.Dockerfile -t cdc-chaos/pipeline:dev .",
                "/c/bin/kind load docker-image cdc-chaos/connect:dev --name cdc-chaos",
                "/c/bin/kind load docker-image cdc-chaos/pipeline:dev --name cdc-chaos",
            ]
        );
    }

    #[test]
    fn the_images_are_the_ones_the_manifests_run() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let manifests = [root.join("manifests/base/ingestion/connect.yaml"), root.join("manifests/base/processing/pipeline.yaml")];
        let text: String = manifests.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        for (tag, dockerfile) in IMAGES {
            assert!(text.contains(&format!("image: {tag}")), "{tag} is not in the manifests");
            assert!(root.join(dockerfile).is_file(), "{dockerfile}");
        }
        let config = std::fs::read_to_string(root.join(CLUSTER_CONFIG)).unwrap();
        assert!(config.contains(&format!("name: {CLUSTER_NAME}")));
    }
}
