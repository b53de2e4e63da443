//! The disk space a kind cluster takes on the Docker engine's disk, checked before it is taken.
//!
//! Each node container keeps its `/var` in a volume under the engine's root directory: created
//! with the node image's `/var` (the control plane's images in its containerd), then every
//! workload image `kind load docker-image` imports into a worker (a layer archive streamed into
//! containerd's content store, then unpacked). The cluster with every workload image on its three
//! workers took 21 GB here; a disk that fills half-way fails deep inside `ctr images import` with
//! `no space left on device`. [`require`] says beforehand how much is needed, how much is free and where.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::platform::process;

/// What is kept free beyond the estimate: the pods' own writes, logs, etcd.
pub const MARGIN: u64 = 2 << 30;
/// Copies of an image a node keeps, in halves: the layer archives in containerd's content store,
/// and the layers unpacked into its snapshotter, less what images share (the Debian base). On
/// this machine the workers held about 1.4 times the sizes of the images loaded into them.
pub const HALF_COPIES: u64 = 3;

/// An image to be placed on nodes: its size, on how many nodes it is missing, and how many
/// halves of it a node keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub tag: String,
    pub bytes: u64,
    pub nodes: usize,
    pub half_copies: u64,
}

impl Placement {
    /// A workload image `kind load` imports: [`HALF_COPIES`] halves per node.
    pub fn loaded(tag: &str, bytes: u64, nodes: usize) -> Self {
        Placement { tag: tag.into(), bytes, nodes, half_copies: HALF_COPIES }
    }

    /// The node image: one copy per node, its `/var` copied into the node's volume (the control
    /// plane's images as packed content, unpacked only where a pod runs them).
    pub fn node_image(tag: &str, bytes: u64, nodes: usize) -> Self {
        Placement { tag: tag.into(), bytes, nodes, half_copies: 2 }
    }
}

/// Bytes the placements take, plus [`MARGIN`]: 23.5 GB for the 4-node cluster with every image
/// (docs/kubernetes.md), whose creation took 21 GB on this machine.
pub fn needed(placements: &[Placement]) -> u64 {
    placements.iter().map(|p| p.bytes.saturating_mul(p.half_copies * p.nodes as u64) / 2).sum::<u64>() + MARGIN
}

/// The Docker engine's root directory (where images and volumes live).
pub fn docker_root() -> Result<PathBuf> {
    let mut info = Command::new("docker");
    info.args(["info", "--format", "{{.DockerRootDir}}"]);
    Ok(PathBuf::from(process::run(info)?.trim()))
}

/// Bytes free to an unprivileged writer on the filesystem of `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Usage(format!("{}: a path with a NUL byte", path.display())))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a statvfs the call fills in.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(Error::io("statvfs", path, std::io::Error::last_os_error()));
    }
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

/// The size of a local image (`docker image inspect`).
pub fn image_bytes(tag: &str) -> Result<u64> {
    let mut cmd = Command::new("docker");
    cmd.args(["image", "inspect", "--format", "{{.Size}}", tag]);
    let out = process::run(cmd)?;
    out.trim().parse().map_err(|_| Error::component("docker", format!("`docker image inspect` gave {:?} as the size of {tag}", out.trim())))
}

/// The image id a node's containerd holds under `tag`, read from `crictl inspecti`'s JSON
/// (`status.id`) the way `kind load` decides whether a node has an image; `None` when it has none.
pub fn id_on_node(node: &str, tag: &str) -> Option<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["exec", node, "crictl", "inspecti", tag]);
    process::run(cmd).ok().and_then(|out| crictl_image_id(&out))
}

/// `status.id` of `crictl inspecti`'s output.
pub fn crictl_image_id(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["status"]["id"].as_str().map(str::to_string)
}

/// Fails, before anything is written, when the filesystem of `root` has less than `need` bytes
/// free for `what`; otherwise the bytes free.
pub fn require(root: &Path, need: u64, what: &str) -> Result<u64> {
    let free = free_bytes(root)?;
    if free >= need {
        return Ok(free);
    }
    Err(Error::NoSpace { what: what.into(), path: root.into(), needed: need, free })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_image_counts_one_and_a_half_times_per_node_missing_it_the_node_image_once() {
        let p = [Placement::loaded("a", 500, 3), Placement::loaded("b", 1_000, 0), Placement::loaded("c", 7, 1), Placement::node_image("n", 100, 4)];
        assert_eq!(needed(&p), 1_500 * 3 / 2 + 7 * 3 / 2 + 400 + MARGIN);
        assert_eq!(needed(&[]), MARGIN);
    }

    #[test]
    fn the_image_id_is_crictls_status_id() {
        let out = r#"{"status": {"id": "sha256:385552dc", "repoTags": ["docker.io/cdc-chaos/connect:dev"]}, "info": {}}"#;
        assert_eq!(crictl_image_id(out).as_deref(), Some("sha256:385552dc"));
        assert_eq!(crictl_image_id("{}"), None);
        assert_eq!(crictl_image_id("FATA[0000] no such image"), None);
    }

    #[test]
    fn too_little_space_names_the_need_the_free_space_and_the_place() {
        let dir = std::env::temp_dir();
        assert!(require(&dir, 0, "nothing").is_ok());
        let e = require(&dir, u64::MAX, "loading cdc-chaos/kafka:4.3.1 into 3 nodes").unwrap_err().to_string();
        assert!(e.starts_with("loading cdc-chaos/kafka:4.3.1 into 3 nodes needs 18446744073.7 GB free on "), "{e}");
        assert!(e.contains(&dir.display().to_string()) && e.contains("GB free there"), "{e}");
        let missing = free_bytes(Path::new("/no/such/dir")).unwrap_err().to_string();
        assert!(missing.contains("/no/such/dir"), "{missing}");
    }
}
