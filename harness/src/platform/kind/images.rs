//! Every image the kind platform runs, built on this machine: no image registry is needed.
//!
//! - [`BASE`], a Debian bookworm root filesystem from `debootstrap --variant=minbase`, imported
//!   with `docker import`. Every other image starts from it.
//! - The node image ([`NODE`]), assembled as kind's own build does it (`kind build node-image`
//!   always pulls from registries): `docker/kind/node.Dockerfile` (systemd, Debian's containerd
//!   and runc, the CNI plugins, kind's entrypoint and units from the kind module, the
//!   Kubernetes binaries built by [`super::binaries`]), then the control plane's images imported
//!   into its containerd and the container committed.
//! - The control plane's images ([`components`]: kube-apiserver, controller manager, scheduler,
//!   kube-proxy, etcd, CoreDNS, pause, local-path-provisioner), one binary each on [`BASE`],
//!   under the repository `cdc-chaos/` that `manifests/kind-cluster.yaml` gives kubeadm.
//! - The workloads' images ([`workloads`]): Kafka from the jars the local platform runs,
//!   Connect with the Debezium plugins, the pipeline (this harness's binary), PostgreSQL and
//!   MariaDB from Debian, SeaweedFS, curl — `docker/*.Dockerfile`, which the kind overlay's
//!   `images:` maps the base manifests' image names to.
//!
//! Each image carries the sha256 of its inputs (Dockerfile, context files, the image it starts
//! from) as the label [`INPUTS_LABEL`]; an image whose label matches is not built again, so a
//! second run rebuilds only what changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::binaries;
use crate::error::{Error, Result};
use crate::platform::process::{self, on_path};
use crate::platform::provision::run_logged;
use crate::platform::{ensure_dir, write_file, Layout};
use crate::progress;

/// The image every other starts from.
pub const BASE: &str = "cdc-chaos/debian:bookworm";
/// The Debian release and mirror of [`BASE`].
pub const DEBIAN_SUITE: &str = "bookworm";
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// The label holding an image's input hash.
pub const INPUTS_LABEL: &str = "io.cdc-chaos.inputs";
/// The repository kubeadm takes the control plane's images from (`imageRepository` in
/// `manifests/kind-cluster.yaml`).
pub const REPOSITORY: &str = "cdc-chaos";
/// The node image `kind create cluster --image` runs.
pub const NODE: &str = "cdc-chaos/kind-node:v1.34.4";
/// The etcd image tag kubeadm [`binaries::VERSION`] asks for.
pub const ETCD_TAG: &str = "3.6.5-0";
/// The pause release kubeadm [`binaries::VERSION`] asks for.
pub const PAUSE_VERSION: &str = "3.10.1";
/// The CoreDNS release kubeadm [`binaries::VERSION`] deploys.
pub const COREDNS_VERSION: &str = "v1.12.1";
/// crictl, for the nodes (the release line of [`binaries::VERSION`]).
pub const CRICTL_VERSION: &str = "v1.34.0";
/// The local-path-provisioner release the nodes' default StorageClass runs.
pub const LOCAL_PATH_VERSION: &str = "v0.0.30";
/// The kind release whose node files (entrypoint, units, storage manifest) the node image uses.
pub use super::binaries::KIND_VERSION;

fn dir(cache: &Path) -> PathBuf {
    cache.join("kind")
}
/// The log of every image build.
pub fn log_file(cache: &Path) -> PathBuf {
    dir(cache).join("images.log")
}

/// `docker image inspect`'s input label of `tag`, `None` when there is no such image.
fn inputs_of(tag: &str) -> Option<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["image", "inspect", "--format", &format!("{{{{index .Config.Labels \"{INPUTS_LABEL}\"}}}}"), tag]);
    process::run(cmd).ok().map(|s| s.trim().to_string())
}

/// The image id of `tag`.
pub fn image_id(tag: &str) -> Result<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["image", "inspect", "--format", "{{.Id}}", tag]);
    process::run(cmd).map(|s| s.trim().to_string())
}

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A Docker build: a context directory the harness assembles, and the image it makes.
#[derive(Debug, Clone)]
pub struct ImageBuild {
    /// The image's tag.
    pub tag: String,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Files and directories copied into the context: (source, path in the context).
    pub copy: Vec<(PathBuf, String)>,
    /// Files written into the context: (path in the context, text).
    pub write: Vec<(String, String)>,
}

impl ImageBuild {
    fn new(tag: impl Into<String>, dockerfile: impl Into<String>) -> ImageBuild {
        ImageBuild { tag: tag.into(), dockerfile: dockerfile.into(), copy: Vec::new(), write: Vec::new() }
    }
    fn copy(mut self, from: impl Into<PathBuf>, to: &str) -> ImageBuild {
        self.copy.push((from.into(), to.into()));
        self
    }
    fn write(mut self, to: &str, text: impl Into<String>) -> ImageBuild {
        self.write.push((to.into(), text.into()));
        self
    }
}

/// Copies `from` (file or directory, recursively, keeping modes) to `to`, hashing every path
/// and content into `h` in a stable order.
fn copy_hashed(from: &Path, to: &Path, rel: &str, h: &mut Sha256) -> Result<()> {
    let meta = std::fs::metadata(from).map_err(|e| Error::io("reading an image's input", from, e))?;
    if meta.is_dir() {
        ensure_dir(to)?;
        let mut entries: Vec<_> = std::fs::read_dir(from)
            .map_err(|e| Error::io("listing an image's input", from, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for name in entries {
            let n = name.to_string_lossy();
            copy_hashed(&from.join(&name), &to.join(&name), &format!("{rel}/{n}"), h)?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        ensure_dir(parent)?;
    }
    let bytes = std::fs::read(from).map_err(|e| Error::io("reading an image's input", from, e))?;
    use std::os::unix::fs::PermissionsExt;
    h.update(rel.as_bytes());
    h.update([0]);
    h.update(format!("{:o}", meta.permissions().mode() & 0o111).as_bytes());
    h.update(&bytes);
    std::fs::write(to, &bytes).map_err(|e| Error::io("writing an image's context", to, e))?;
    std::fs::set_permissions(to, meta.permissions()).map_err(|e| Error::io("writing an image's context", to, e))?;
    Ok(())
}

/// Assembles the context of `b` in `<cache>/kind/context/<name>` and returns it with the input
/// hash (which covers the image the Dockerfile starts from, by id).
fn assemble(cache: &Path, b: &ImageBuild) -> Result<(PathBuf, String)> {
    let name: String = b.tag.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    let ctx = dir(cache).join("context").join(name);
    let _ = std::fs::remove_dir_all(&ctx);
    ensure_dir(&ctx)?;
    let mut h = Sha256::new();
    h.update(b.dockerfile.as_bytes());
    for from in b.dockerfile.lines().filter_map(|l| l.strip_prefix("ARG BASE=")) {
        h.update(image_id(from.trim()).map_err(|_| Error::component("images", format!("{} starts from {from}, which is not built", b.tag)))?.as_bytes());
    }
    write_file(&ctx.join("Dockerfile"), &b.dockerfile)?;
    for (from, to) in &b.copy {
        copy_hashed(from, &ctx.join(to), to, &mut h)?;
    }
    for (to, text) in &b.write {
        h.update(to.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        write_file(&ctx.join(to), text)?;
    }
    Ok((ctx, hex(h)))
}

/// Builds `b` unless an image of its tag carries its input hash. Whether it built.
pub fn build(cache: &Path, b: &ImageBuild) -> Result<bool> {
    let (ctx, inputs) = assemble(cache, b)?;
    if inputs_of(&b.tag).as_deref() == Some(inputs.as_str()) {
        progress::note(&format!("image {}: up to date", b.tag));
        let _ = std::fs::remove_dir_all(&ctx);
        return Ok(false);
    }
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_BUILDKIT", "0")
        .args(["build", "--force-rm", "--label", &format!("{INPUTS_LABEL}={inputs}"), "-t", &b.tag])
        .arg(&ctx);
    run_logged(&log_file(cache), &format!("docker build {}", b.tag), &mut cmd)?;
    let _ = std::fs::remove_dir_all(&ctx);
    Ok(true)
}

/// [`BASE`]: `debootstrap --variant=minbase` of [`DEBIAN_SUITE`], imported. Needs root.
pub fn base(cache: &Path) -> Result<()> {
    let inputs = {
        let mut h = Sha256::new();
        h.update(format!("debootstrap --variant=minbase {DEBIAN_SUITE} {DEBIAN_MIRROR}").as_bytes());
        hex(h)
    };
    if inputs_of(BASE).as_deref() == Some(inputs.as_str()) {
        progress::note(&format!("image {BASE}: up to date"));
        return Ok(());
    }
    if !on_path("debootstrap") {
        crate::platform::provision::apt_install(&dir(cache).join("debootstrap-install.log"), &["debootstrap"])?;
    }
    let rootfs = dir(cache).join("rootfs-debian");
    let _ = std::fs::remove_dir_all(&rootfs);
    ensure_dir(&dir(cache))?;
    let log = log_file(cache);
    progress::step(&format!("image {BASE}: debootstrap {DEBIAN_SUITE} from {DEBIAN_MIRROR} (a few minutes; log: {})", log.display()));
    let mut boot = Command::new("debootstrap");
    boot.args(["--variant=minbase", DEBIAN_SUITE]).arg(&rootfs).arg(DEBIAN_MIRROR);
    run_logged(&log, &format!("debootstrap {DEBIAN_SUITE}"), &mut boot)?;
    // Package lists and caches are fetched again by each image that installs packages.
    let _ = std::fs::remove_dir_all(rootfs.join("var/cache/apt/archives"));
    let _ = std::fs::remove_dir_all(rootfs.join("var/lib/apt/lists"));
    let tar = Command::new("tar").arg("-C").arg(&rootfs).args(["-c", "."]).stdout(Stdio::piped()).spawn();
    let mut tar = tar.map_err(|e| Error::Command { command: "tar".into(), message: e.to_string() })?;
    let mut import = Command::new("docker");
    import
        .args(["import", "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        .args(["--change", &format!("LABEL {INPUTS_LABEL}={inputs}"), "--change", "CMD [\"/bin/bash\"]", "-", BASE])
        .stdin(tar.stdout.take().expect("piped"));
    // Not process::run, which gives the command no stdin.
    let imported = import.output().map_err(|e| Error::Command { command: "docker import".into(), message: e.to_string() })?;
    let tarred = tar.wait().map_err(|e| Error::Command { command: "tar".into(), message: e.to_string() })?;
    if !imported.status.success() || !tarred.success() {
        return Err(Error::Command {
            command: format!("tar -C {} -c . | docker import - {BASE}", rootfs.display()),
            message: format!("tar {tarred}, docker import {}: {}", imported.status, String::from_utf8_lossy(&imported.stderr).trim()),
        });
    }
    let _ = std::fs::remove_dir_all(&rootfs);
    let mut check = Command::new("docker");
    check.args(["run", "--rm", BASE, "/bin/sh", "-c", "test -x /usr/bin/apt-get"]);
    if let Err(e) = process::run(check) {
        let mut rm = Command::new("docker");
        rm.args(["rmi", BASE]);
        let _ = process::run(rm);
        return Err(Error::component("images", format!("{BASE} was imported but does not run a shell with apt-get ({e}); it is removed, so the next run imports it again")));
    }
    Ok(())
}

/// A control plane image: one binary on [`BASE`] in `/usr/local/bin`, with Debian `packages`
/// and an entrypoint when the workload that runs it gives only arguments.
fn component(tag: &str, bin: &Path, packages: &[&str], entrypoint: bool) -> ImageBuild {
    let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut d = format!("# {tag}: built by cdc-chaos (platform/kind/images.rs)\nARG BASE={BASE}\nFROM ${{BASE}}\n");
    if !packages.is_empty() {
        d.push_str(&format!(
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*\n",
            packages.join(" ")
        ));
    }
    d.push_str(&format!("COPY bin/ /usr/local/bin/\nRUN chmod 0755 /usr/local/bin/{name}\n"));
    if entrypoint {
        d.push_str(&format!("ENTRYPOINT [\"/usr/local/bin/{name}\"]\n"));
    }
    ImageBuild::new(tag, d).copy(bin, &format!("bin/{name}"))
}

/// The image names the cluster's own workloads run, as kubeadm and the nodes' manifests name
/// them.
pub fn component_tag(name: &str) -> String {
    let version = match name {
        "etcd" => ETCD_TAG.to_string(),
        "coredns" => COREDNS_VERSION.to_string(),
        "pause" => PAUSE_VERSION.to_string(),
        "local-path-provisioner" => LOCAL_PATH_VERSION.to_string(),
        _ => binaries::VERSION.to_string(),
    };
    format!("{REPOSITORY}/{name}:{version}")
}

/// The control plane's images, their binaries built first.
pub fn components(cache: &Path) -> Result<Vec<ImageBuild>> {
    let kube = binaries::kubernetes(cache, &["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"])?;
    let mut out: Vec<ImageBuild> = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
        .iter()
        .zip(&kube)
        .map(|(n, bin)| component(&component_tag(n), bin, &[], false))
        .collect();
    out.push(component(&component_tag("kube-proxy"), &kube[3], &["iptables", "conntrack", "ipset", "kmod"], false));
    let etcd_bin = binaries::etcd(cache)?;
    let etcd_ctx = dir(cache).join("etcd-bin");
    ensure_dir(&etcd_ctx)?;
    let etcd_path = etcd_ctx.join("etcd");
    std::fs::copy(&etcd_bin, &etcd_path).map_err(|e| Error::io("staging etcd", &etcd_path, e))?;
    out.push(component(&component_tag("etcd"), &etcd_path, &[], false));
    let coredns = binaries::go_tool(cache, "coredns", "github.com/coredns/coredns", COREDNS_VERSION)?;
    out.push(component(&component_tag("coredns"), &coredns, &[], true));
    let pause = binaries::pause(cache, PAUSE_VERSION)?;
    out.push(component(&component_tag("pause"), &pause, &[], true));
    let lpp = binaries::go_tool(cache, "local-path-provisioner", "github.com/rancher/local-path-provisioner", LOCAL_PATH_VERSION)?;
    out.push(component(&component_tag("local-path-provisioner"), &lpp, &[], false));
    Ok(out)
}

/// The directory of the kind module (its node files), downloaded through the Go module proxy.
fn kind_module(cache: &Path) -> Result<PathBuf> {
    let mut cmd = Command::new("go");
    cmd.args(["mod", "download", "-json", &format!("sigs.k8s.io/kind@{KIND_VERSION}")]).current_dir(cache);
    let out = process::run(cmd)?;
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["Dir"].as_str().map(PathBuf::from))
        .ok_or_else(|| Error::component("images", format!("`go mod download sigs.k8s.io/kind@{KIND_VERSION}` gave no directory: {out}")))
}

/// kind's default StorageClass manifest (`pkg/build/nodeimage/const_storage.go`), with the
/// provisioner and helper images built here.
pub fn storage_manifest(const_storage_go: &str) -> Result<String> {
    let start = "const defaultStorageManifest = `";
    let rest = const_storage_go
        .split_once(start)
        .map(|(_, rest)| rest)
        .ok_or_else(|| Error::component("images", "kind's const_storage.go has no defaultStorageManifest"))?;
    let rest = rest
        .replace("` + storageProvisionerImage + `", &component_tag("local-path-provisioner"))
        .replace("` + storageHelperImage + `", BASE);
    let (manifest, after) = rest.split_once('`').ok_or_else(|| Error::component("images", "kind's storage manifest does not end"))?;
    if !after.starts_with('\n') {
        return Err(Error::component("images", "kind's storage manifest refers to a constant this harness does not know"));
    }
    let manifest = manifest.to_string();
    Ok(manifest)
}

/// The node image's Dockerfile build (before the control plane's images are imported).
fn node_base(cache: &Path, repo: &Path) -> Result<ImageBuild> {
    let kind = kind_module(cache)?;
    let files = kind.join("images/base/files");
    let bins = binaries::kubernetes(cache, &["kubeadm", "kubelet", "kubectl"])?;
    let crictl = binaries::go_tool(cache, "crictl", "sigs.k8s.io/cri-tools/cmd/crictl", CRICTL_VERSION)?;
    let dockerfile = read(&repo.join("docker/kind/node.Dockerfile"))?;
    let containerd = read(&repo.join("docker/kind/containerd-config.toml"))?.replace("@PAUSE_IMAGE@", &component_tag("pause"));
    let storage = storage_manifest(&read(&kind.join("pkg/build/nodeimage/const_storage.go"))?)?;
    let mut b = ImageBuild::new(format!("{NODE}-base"), dockerfile)
        .copy(files.join("usr"), "rootfs/usr")
        .copy(files.join("kind/bin"), "rootfs/kind/bin")
        .copy(files.join("etc/systemd"), "rootfs/etc/systemd")
        .copy(files.join("etc/sysctl.d"), "rootfs/etc/sysctl.d")
        .copy(files.join("etc/default"), "rootfs/etc/default")
        .copy(files.join("etc/crictl.yaml"), "rootfs/etc/crictl.yaml")
        .copy(repo.join("docker/kind/runc-capfix"), "rootfs/usr/local/bin/runc-capfix")
        .copy(repo.join("docker/kind/containerd-oom.conf"), "rootfs/etc/systemd/system/containerd.service.d/10-oom-score.conf")
        .copy(&crictl, "rootfs/usr/local/bin/crictl")
        .write("rootfs/etc/containerd/config.toml", containerd)
        .write("rootfs/kind/version", binaries::VERSION)
        .write("rootfs/kind/manifests/default-storage.yaml", storage);
    for bin in bins {
        let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        b = b.copy(&bin, &format!("rootfs/usr/bin/{name}"));
    }
    Ok(b)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("reading an image's input", path, e))
}

/// Builds [`BASE`], the control plane's images and the node image [`NODE`] as needed; returns
/// [`NODE`].
pub fn node(cache: &Path, repo: &Path) -> Result<String> {
    base(cache)?;
    let components = components(cache)?;
    for c in &components {
        build(cache, c)?;
    }
    let base_build = node_base(cache, repo)?;
    build(cache, &base_build)?;
    let mut h = Sha256::new();
    h.update(image_id(&base_build.tag)?.as_bytes());
    h.update(image_id(BASE)?.as_bytes());
    for c in &components {
        h.update(c.tag.as_bytes());
        h.update(image_id(&c.tag)?.as_bytes());
    }
    let inputs = hex(h);
    if inputs_of(NODE).as_deref() == Some(inputs.as_str()) {
        progress::note(&format!("image {NODE}: up to date"));
        return Ok(NODE.into());
    }
    progress::step(&format!("image {NODE}: importing {} control plane images and the base into the node's containerd", components.len()));
    let log = log_file(cache);
    let archives = dir(cache).join("node-images");
    let _ = std::fs::remove_dir_all(&archives);
    ensure_dir(&archives)?;
    // The base too: the default StorageClass's helper pods run it.
    for (i, tag) in components.iter().map(|c| c.tag.as_str()).chain([BASE]).enumerate() {
        let mut save = Command::new("docker");
        save.args(["save", "-o"]).arg(archives.join(format!("{i}.tar"))).arg(tag);
        run_logged(&log, &format!("docker save {tag}"), &mut save)?;
    }
    let container = format!("cdc-chaos-node-build-{}", std::process::id());
    let mut run = Command::new("docker");
    run.args(["run", "-d", "--name", &container, "--entrypoint", "sleep", "--security-opt", "seccomp=unconfined", "-v"])
        .arg(format!("{}:/images:ro", archives.display()))
        .args([&base_build.tag, "infinity"]);
    run_logged(&log, "docker run (node build container)", &mut run)?;
    let result = (|| {
        let exec = |what: &str, script: &str| {
            let mut cmd = Command::new("docker");
            cmd.args(["exec", &container, "bash", "-c", script]);
            run_logged(&log, what, &mut cmd)
        };
        exec("start containerd", "nohup containerd > /var/log/containerd-build.log 2>&1 &")?;
        exec(
            "wait for containerd",
            "for i in $(seq 1 30); do [ -S /run/containerd/containerd.sock ] && ctr version > /dev/null 2>&1 && exit 0; sleep 1; done; cat /var/log/containerd-build.log; exit 1",
        )?;
        exec(
            "ctr images import",
            "set -e; for f in /images/*.tar; do ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests \"$f\"; done; ctr --namespace=k8s.io images list -q",
        )?;
        // The container's init (`sleep`) reaps nothing, so a stopped containerd stays a zombie:
        // it has stopped when its socket no longer answers.
        exec("stop containerd", "pkill -x containerd; for i in $(seq 1 30); do ctr version > /dev/null 2>&1 || exit 0; sleep 1; done; exit 1")?;
        exec("clean up", "rm -f /var/log/containerd-build.log")?;
        let mut commit = Command::new("docker");
        commit
            .args(["commit", "--change", r#"ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]"#])
            .args(["--change", &format!("LABEL {INPUTS_LABEL}={inputs}"), &container, NODE]);
        run_logged(&log, &format!("docker commit {NODE}"), &mut commit)
    })();
    let mut rm = Command::new("docker");
    rm.args(["rm", "-f", "-v", &container]);
    let _ = process::run(rm);
    let _ = std::fs::remove_dir_all(&archives);
    result?;
    Ok(NODE.into())
}

/// The `cdc-chaos` executable the pipeline image runs ([`crate::platform::pipeline::executable`]),
/// without its debug information when `strip` is there (a test build's is ten times larger).
fn stripped_executable(cache: &Path) -> Result<PathBuf> {
    let exe = crate::platform::pipeline::executable()?;
    if !on_path("strip") {
        return Ok(exe);
    }
    let out = dir(cache).join("pipeline-bin").join("cdc-chaos");
    ensure_dir(out.parent().expect("a parent"))?;
    let mut strip = Command::new("strip");
    strip.arg("--strip-debug").arg("-o").arg(&out).arg(&exe);
    process::run(strip)?;
    Ok(out)
}

/// The workloads' images: (image name in `manifests/base`, tag built here, build).
pub fn workloads(layout: &Layout, repo: &Path) -> Result<Vec<(&'static str, ImageBuild)>> {
    let docker = repo.join("docker");
    let dockerfile = |name: &str| read(&docker.join(format!("{name}.Dockerfile")));
    crate::platform::provision::resolve_jars(layout)?;
    let weed = crate::platform::lake::provision(layout)?;
    let me = stripped_executable(&layout.cache)?;
    let seaweedfs_tag = format!("{REPOSITORY}/seaweedfs:{}", crate::platform::lake::SEAWEEDFS_VERSION);
    Ok(vec![
        (
            "apache/kafka",
            ImageBuild::new(KAFKA, dockerfile("kafka")?)
                .copy(layout.lib().join("kafka"), "libs")
                .copy(docker.join("kafka/bin"), "kafka/bin")
                .copy(docker.join("kafka/config"), "kafka/config"),
        ),
        ("cdc-chaos/connect", ImageBuild::new(CONNECT, dockerfile("connect")?).copy(layout.plugins(), "plugins")),
        ("cdc-chaos/pipeline", ImageBuild::new(PIPELINE, dockerfile("pipeline")?).copy(me, "bin/cdc-chaos")),
        ("postgres", ImageBuild::new(POSTGRES, dockerfile("postgres")?).copy(docker.join("postgres"), "postgres")),
        ("mariadb", ImageBuild::new(MARIADB, dockerfile("mariadb")?).copy(docker.join("mariadb"), "mariadb")),
        ("chrislusf/seaweedfs", ImageBuild::new(seaweedfs_tag, dockerfile("seaweedfs")?).copy(weed, "bin/weed")),
        ("curlimages/curl", ImageBuild::new(CURL, dockerfile("curl")?)),
    ])
}

/// The workloads' tags (the kind overlay's `images:` maps the base manifests' names to them).
pub const KAFKA: &str = "cdc-chaos/kafka:4.3.1";
pub const CONNECT: &str = "cdc-chaos/connect:dev";
pub const PIPELINE: &str = "cdc-chaos/pipeline:dev";
pub const POSTGRES: &str = "cdc-chaos/postgres:15";
pub const MARIADB: &str = "cdc-chaos/mariadb:10.11";
pub const CURL: &str = "cdc-chaos/curl:bookworm";

/// Builds the workloads' images as needed (Kafka before Connect, which starts from it); their
/// tags, in order.
pub fn build_workloads(layout: &Layout, repo: &Path) -> Result<Vec<String>> {
    base(&layout.cache)?;
    let mut tags = Vec::new();
    for (_, b) in workloads(layout, repo)? {
        build(&layout.cache, &b)?;
        tags.push(b.tag);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_storage_manifest_gets_the_images_built_here() {
        let go = "package x\n\nconst defaultStorageManifest = `\nkind: Deployment\n  image: ` + storageProvisionerImage + `\n  helper: ` + storageHelperImage + `\n`\n\nconst other = 1\n";
        let m = storage_manifest(go).unwrap();
        assert_eq!(m, "\nkind: Deployment\n  image: cdc-chaos/local-path-provisioner:v0.0.30\n  helper: cdc-chaos/debian:bookworm\n");
        let unknown = "const defaultStorageManifest = `\n  image: ` + somethingElse + `\n`\n";
        assert!(storage_manifest(unknown).is_err());
        assert!(storage_manifest("package x").is_err());
    }

    #[test]
    fn the_control_plane_images_are_under_the_repository_kubeadm_is_given() {
        assert_eq!(component_tag("kube-apiserver"), "cdc-chaos/kube-apiserver:v1.34.4");
        assert_eq!(component_tag("etcd"), "cdc-chaos/etcd:3.6.5-0");
        assert_eq!(component_tag("coredns"), "cdc-chaos/coredns:v1.12.1");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let config = std::fs::read_to_string(root.join(super::super::create::CLUSTER_CONFIG)).unwrap();
        assert!(config.contains(&format!("imageRepository: {REPOSITORY}\n")), "{config}");
        let containerd = std::fs::read_to_string(root.join("docker/kind/containerd-config.toml")).unwrap();
        assert!(containerd.contains("sandbox_image = \"@PAUSE_IMAGE@\""));
    }

    #[test]
    fn a_component_image_is_its_binary_on_the_base() {
        let b = component("cdc-chaos/coredns:v1.12.1", Path::new("/c/bin/coredns"), &[], true);
        assert!(b.dockerfile.contains("ARG BASE=cdc-chaos/debian:bookworm\nFROM ${BASE}\n"), "{}", b.dockerfile);
        assert!(b.dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/coredns\"]"), "{}", b.dockerfile);
        assert_eq!(b.copy, [(PathBuf::from("/c/bin/coredns"), "bin/coredns".to_string())]);
        let p = component("cdc-chaos/kube-proxy:v1.34.4", Path::new("/c/bin/kube-proxy"), &["iptables"], false);
        assert!(p.dockerfile.contains("apt-get install -y --no-install-recommends iptables"), "{}", p.dockerfile);
        assert!(!p.dockerfile.contains("ENTRYPOINT"));
    }

    #[test]
    fn every_dockerfile_starts_from_a_base_built_here() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for entry in std::fs::read_dir(root.join("docker")).unwrap().chain(std::fs::read_dir(root.join("docker/kind")).unwrap()) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "Dockerfile") {
                let text = std::fs::read_to_string(&path).unwrap();
                let base = text.lines().find_map(|l| l.strip_prefix("ARG BASE=")).unwrap_or_else(|| panic!("{} has no ARG BASE", path.display()));
                assert!(base.starts_with("cdc-chaos/"), "{}: {base}", path.display());
                assert!(text.contains("FROM ${BASE}\n"), "{}", path.display());
                assert_eq!(text.matches("\nFROM ").count(), 1, "{}: one stage, from the local base", path.display());
            }
        }
    }

    #[test]
    fn the_kafka_image_has_every_tool_the_kind_platform_runs_in_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut named = std::collections::BTreeSet::new();
        for file in ["src/platform/kind/stack.rs", "src/platform/kind/manifests.rs"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            for (i, _) in text.match_indices("/opt/kafka/bin/") {
                let rest = &text[i + "/opt/kafka/bin/".len()..];
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')).unwrap_or(rest.len());
                named.insert(rest[..end].to_string());
            }
        }
        assert!(named.contains("kafka-metadata-quorum.sh") && named.contains("kafka-server-start.sh"), "{named:?}");
        for script in named {
            let path = root.join("../docker/kafka/bin").join(&script);
            assert!(path.is_file(), "{script} is run in the Kafka image but docker/kafka/bin has no such script");
        }
    }

    #[test]
    fn copying_a_context_hashes_paths_contents_and_modes() {
        let dir = std::env::temp_dir().join(format!("cdcc-images-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src/sub")).unwrap();
        std::fs::write(dir.join("src/a"), "a").unwrap();
        std::fs::write(dir.join("src/sub/b"), "b").unwrap();
        let hash = |to: &str| {
            let mut h = Sha256::new();
            copy_hashed(&dir.join("src"), &dir.join(to), "x", &mut h).unwrap();
            hex(h)
        };
        let first = hash("out1");
        assert_eq!(std::fs::read_to_string(dir.join("out1/sub/b")).unwrap(), "b");
        assert_eq!(hash("out2"), first, "stable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("src/a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let executable = hash("out3");
        assert_ne!(executable, first, "a mode change is an input");
        std::fs::write(dir.join("src/sub/b"), "B").unwrap();
        assert_ne!(hash("out4"), executable, "a content change is an input");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
