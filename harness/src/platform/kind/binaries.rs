//! Every program the kind platform builds instead of downloading: no release archive or image
//! registry is needed, only the Go module proxy (and a C compiler for `pause`). Each lands in the
//! cache's `bin/` with a `<name>.version` marker, so that a second use builds nothing.
//!
//! - The Kubernetes commands (`kubeadm`, `kubelet`, `kubectl` and the control plane's four) from
//!   `k8s.io/kubernetes` [`VERSION`], in one `go build` of a module that requires it (its
//!   staging modules pinned, as its own go.mod replaces them), with the version ldflags that
//!   kubeadm's version checks read.
//! - `etcd` from `go.etcd.io/etcd/server/v3` (its go.mod has replace directives, so it too is
//!   built from a module of our own), at the release kubeadm [`VERSION`] deploys.
//! - `pause`, the pod sandbox: one C file of the kubernetes module, linked statically.
//! - Tools installed with `go install <module>@<version>` ([`go_tool`]): kind, kustomize,
//!   crictl, CoreDNS, local-path-provisioner.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::platform::process::on_path;
use crate::platform::provision::run_logged;
use crate::platform::{ensure_dir, write_file};
use crate::progress;

/// The Kubernetes release built (the API version `k8s-openapi` is compiled for, 1.34; this
/// host has cgroup v1, which kubelet refuses from 1.35 on).
pub const VERSION: &str = "v1.34.4";
/// The release of the staging modules (`k8s.io/api`, `k8s.io/apiserver`, ...) of [`VERSION`].
pub const STAGING_VERSION: &str = "v0.34.4";
/// The modules `k8s.io/kubernetes`'s go.mod replaces with its `staging/` directories.
pub const STAGING_MODULES: &[&str] = &[
    "k8s.io/api",
    "k8s.io/apiextensions-apiserver",
    "k8s.io/apimachinery",
    "k8s.io/apiserver",
    "k8s.io/cli-runtime",
    "k8s.io/client-go",
    "k8s.io/cloud-provider",
    "k8s.io/cluster-bootstrap",
    "k8s.io/code-generator",
    "k8s.io/component-base",
    "k8s.io/component-helpers",
    "k8s.io/controller-manager",
    "k8s.io/cri-api",
    "k8s.io/cri-client",
    "k8s.io/csi-translation-lib",
    "k8s.io/dynamic-resource-allocation",
    "k8s.io/endpointslice",
    "k8s.io/externaljwt",
    "k8s.io/kms",
    "k8s.io/kube-aggregator",
    "k8s.io/kube-controller-manager",
    "k8s.io/kube-proxy",
    "k8s.io/kube-scheduler",
    "k8s.io/kubectl",
    "k8s.io/kubelet",
    "k8s.io/metrics",
    "k8s.io/mount-utils",
    "k8s.io/pod-security-admission",
    "k8s.io/sample-apiserver",
    "k8s.io/sample-cli-plugin",
    "k8s.io/sample-controller",
];

/// The commands of `k8s.io/kubernetes/cmd/` this module can build.
pub const KUBERNETES_COMMANDS: &[&str] =
    &["kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"];

/// Imports each command's package so that `go mod tidy` keeps every module they need.
const TOOLS_GO: &str = r#"//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubeadm/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
	_ "k8s.io/kubectl/pkg/cmd"
)
"#;

/// The go.mod of the module that builds the Kubernetes commands.
pub fn go_mod() -> String {
    let mut s = format!("module cdc-chaos.local/kubernetes\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes {VERSION}\n\nreplace (\n");
    for m in STAGING_MODULES {
        s.push_str(&format!("\t{m} => {m} {STAGING_VERSION}\n"));
    }
    s.push_str(")\n");
    s
}

/// The linker flags that give the commands their version (`/version`, kubeadm's checks,
/// `kubectl version`).
pub fn ldflags() -> String {
    let minor = VERSION.trim_start_matches('v').split('.').nth(1).unwrap_or_default();
    let mut s = String::from("-s -w");
    for v in ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"] {
        s.push_str(&format!(" -X {v}.gitVersion={VERSION} -X {v}.gitMajor=1 -X {v}.gitMinor={minor} -X {v}.gitTreeState=clean"));
    }
    s
}

fn bin_dir(cache: &Path) -> PathBuf {
    cache.join("bin")
}

/// Whether `<cache>/bin/<name>` exists with its marker at `version`.
fn cached(cache: &Path, name: &str, version: &str) -> Option<PathBuf> {
    let bin = bin_dir(cache).join(name);
    let marker = bin_dir(cache).join(format!("{name}.version"));
    (bin.is_file() && std::fs::read_to_string(marker).map(|v| v.trim() == version).unwrap_or(false)).then_some(bin)
}

fn install(cache: &Path, built: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let bin = bin_dir(cache).join(name);
    std::fs::rename(built, &bin).map_err(|e| Error::io(format!("installing {name}"), &bin, e))?;
    write_file(&bin_dir(cache).join(format!("{name}.version")), version)?;
    Ok(bin)
}

fn need_go(what: &str, remedy: String) -> Result<()> {
    if on_path("go") {
        Ok(())
    } else {
        Err(Error::Missing { what: format!("{what} (built from the Go module proxy, and `go` is not on PATH)"), remedy })
    }
}

/// How the Kubernetes commands are built, as the error messages show it.
pub fn kubernetes_build_command(cache: &Path) -> String {
    format!(
        "with `go` on PATH and the Go module proxy reachable, the harness writes {src}/go.mod (k8s.io/kubernetes {VERSION}, staging modules {STAGING_VERSION}), then runs `go mod tidy` and `CGO_ENABLED=0 go build -trimpath -ldflags '{}' -o {} k8s.io/kubernetes/cmd/<command>...` there (log: {})",
        ldflags(),
        bin_dir(cache).display(),
        cache.join("kubernetes-build.log").display(),
        src = bin_dir(cache).join("kubernetes.src").display(),
    )
}

/// `<cache>/bin/<name>` for each of `names` (from [`KUBERNETES_COMMANDS`]) at [`VERSION`],
/// the missing ones built together (the first time: about 5 minutes and 1.8 GB of memory on 2
/// cores for one, each further command a few minutes more).
pub fn kubernetes(cache: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    if let Some(unknown) = names.iter().find(|n| !KUBERNETES_COMMANDS.contains(n)) {
        return Err(Error::Usage(format!("{unknown} is not one of the Kubernetes commands built here ({})", KUBERNETES_COMMANDS.join(", "))));
    }
    let missing: Vec<&str> = names.iter().copied().filter(|n| cached(cache, n, VERSION).is_none()).collect();
    if !missing.is_empty() {
        let fail = |why: String| Error::Missing { what: format!("{} {VERSION} ({why})", missing.join(", ")), remedy: kubernetes_build_command(cache) };
        need_go(&missing.join(", "), kubernetes_build_command(cache))?;
        let src = bin_dir(cache).join("kubernetes.src");
        let _ = std::fs::remove_dir_all(&src);
        write_file(&src.join("go.mod"), &go_mod())?;
        write_file(&src.join("tools.go"), TOOLS_GO)?;
        let log = cache.join("kubernetes-build.log");
        progress::note(&format!("Kubernetes {VERSION}: building {} from the Go module proxy (minutes the first time; log: {})", missing.join(", "), log.display()));
        let mut tidy = Command::new("go");
        tidy.current_dir(&src).args(["mod", "tidy"]);
        run_logged(&log, &format!("go mod tidy (k8s.io/kubernetes {VERSION})"), &mut tidy).map_err(|e| fail(format!("resolving the modules failed: {e}")))?;
        let staging = bin_dir(cache).join("kubernetes.staging");
        let _ = std::fs::remove_dir_all(&staging);
        ensure_dir(&staging)?;
        let mut build = Command::new("go");
        build.current_dir(&src).env("CGO_ENABLED", "0").args(["build", "-trimpath", "-buildvcs=false", "-ldflags", &ldflags(), "-o"]);
        build.arg(format!("{}/", staging.display()));
        build.args(missing.iter().map(|n| format!("k8s.io/kubernetes/cmd/{n}")));
        run_logged(&log, &format!("go build {} {VERSION}", missing.join(" ")), &mut build).map_err(|e| fail(format!("the build failed: {e}")))?;
        for name in &missing {
            install(cache, &staging.join(name), name, VERSION)?;
        }
        let _ = std::fs::remove_dir_all(&staging);
        let _ = std::fs::remove_dir_all(&src);
    }
    Ok(names.iter().map(|n| bin_dir(cache).join(n)).collect())
}

/// The kind release installed (built from the Go module proxy), and its module; the node image
/// uses the same release's node files.
pub const KIND_VERSION: &str = "v0.33.0";
pub const KIND_MODULE: &str = "sigs.k8s.io/kind";

/// The etcd release kubeadm [`VERSION`] deploys (`kubeadm config images list`: etcd 3.6.5-0).
pub const ETCD_VERSION: &str = "v3.6.5";

const ETCD_MAIN_GO: &str = r#"package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
"#;

/// `<cache>/bin/etcd-server` at [`ETCD_VERSION`] (named apart from an `etcd` on PATH, which
/// the local API server uses).
pub fn etcd(cache: &Path) -> Result<PathBuf> {
    const NAME: &str = "etcd-server";
    if let Some(bin) = cached(cache, NAME, ETCD_VERSION) {
        return Ok(bin);
    }
    let src = bin_dir(cache).join("etcd.src");
    let log = cache.join("etcd-build.log");
    let remedy = format!("write a module requiring go.etcd.io/etcd/server/v3 {ETCD_VERSION} whose main calls etcdmain.Main, then `go mod tidy && CGO_ENABLED=0 go build` it (log: {})", log.display());
    need_go("etcd", remedy.clone())?;
    let _ = std::fs::remove_dir_all(&src);
    write_file(&src.join("go.mod"), &format!("module cdc-chaos.local/etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"))?;
    write_file(&src.join("main.go"), ETCD_MAIN_GO)?;
    progress::note(&format!("etcd {ETCD_VERSION}: building from the Go module proxy (log: {})", log.display()));
    let fail = |e: Error| Error::Missing { what: format!("etcd {ETCD_VERSION} ({e})"), remedy: remedy.clone() };
    let mut tidy = Command::new("go");
    tidy.current_dir(&src).args(["mod", "tidy"]);
    run_logged(&log, "go mod tidy (etcd)", &mut tidy).map_err(fail)?;
    let staging = bin_dir(cache).join("etcd-server.staging");
    let mut build = Command::new("go");
    build.current_dir(&src).env("CGO_ENABLED", "0").args(["build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o"]).arg(&staging).arg(".");
    run_logged(&log, &format!("go build etcd {ETCD_VERSION}"), &mut build).map_err(fail)?;
    let _ = std::fs::remove_dir_all(&src);
    install(cache, &staging, NAME, ETCD_VERSION)
}

/// `<cache>/bin/pause`: `build/pause/linux/pause.c` of `k8s.io/kubernetes` [`VERSION`] (the
/// module [`kubernetes`] downloads), linked statically with the host's C compiler.
pub fn pause(cache: &Path, version: &str) -> Result<PathBuf> {
    if let Some(bin) = cached(cache, "pause", version) {
        return Ok(bin);
    }
    let log = cache.join("pause-build.log");
    let remedy = format!("gcc -Os -static -DVERSION={version} -o {} <GOMODCACHE>/k8s.io/kubernetes@{VERSION}/build/pause/linux/pause.c", bin_dir(cache).join("pause").display());
    need_go("pause", remedy.clone())?;
    if !on_path("gcc") {
        return Err(Error::Missing { what: "gcc (the pod sandbox `pause` is one C file)".into(), remedy: "apt-get install -y gcc libc6-dev".into() });
    }
    let mut download = Command::new("go");
    download.args(["mod", "download", "-json", &format!("k8s.io/kubernetes@{VERSION}")]).current_dir(std::env::temp_dir());
    let out = crate::platform::process::run(download)?;
    let dir = serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["Dir"].as_str().map(PathBuf::from))
        .ok_or_else(|| Error::Missing { what: format!("the k8s.io/kubernetes {VERSION} module (`go mod download -json` gave no Dir)"), remedy: remedy.clone() })?;
    let staging = bin_dir(cache).join("pause.staging");
    ensure_dir(&bin_dir(cache))?;
    let mut cc = Command::new("gcc");
    cc.args(["-Os", "-static", "-Wall", "-Werror", &format!("-DVERSION={version}"), "-o"]).arg(&staging).arg(dir.join("build/pause/linux/pause.c"));
    run_logged(&log, "gcc pause.c", &mut cc).map_err(|e| Error::Missing { what: format!("pause {version} ({e})"), remedy })?;
    install(cache, &staging, "pause", version)
}

/// `<cache>/bin/<name>`, built by `CGO_ENABLED=0 go install <module>@<version>` if missing or
/// of another version, so that a second use needs no network.
pub fn go_tool(cache: &Path, name: &str, module: &str, version: &str) -> Result<PathBuf> {
    if let Some(bin) = cached(cache, name, version) {
        return Ok(bin);
    }
    let remedy = format!("CGO_ENABLED=0 GOBIN={} go install {module}@{version}", bin_dir(cache).display());
    need_go(&format!("{name} {version}"), remedy.clone())?;
    let staging = bin_dir(cache).join(format!("{name}.staging"));
    ensure_dir(&staging)?;
    let log = cache.join(format!("{name}-install.log"));
    progress::note(&format!("{name} {version}: installing from the Go module proxy (log: {})", log.display()));
    let mut cmd = Command::new("go");
    cmd.args(["install", "-trimpath", "-ldflags", "-s -w", &format!("{module}@{version}")]).env("GOBIN", &staging).env("CGO_ENABLED", "0");
    run_logged(&log, &format!("go install {module}@{version}"), &mut cmd)
        .map_err(|e| Error::Missing { what: format!("{name} {version} (`go install` failed: {e})"), remedy })?;
    // `go install` names the binary after the module path's last element.
    let built = std::fs::read_dir(&staging)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path())
        .ok_or_else(|| Error::component("provisioning", format!("`go install {module}@{version}` left no binary in {}", staging.display())))?;
    let bin = install(cache, &built, name, version)?;
    let _ = std::fs::remove_dir(&staging);
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_staging_module_is_pinned_to_the_release() {
        let m = go_mod();
        assert!(m.contains("require k8s.io/kubernetes v1.34.4\n"), "{m}");
        assert!(m.contains("\tk8s.io/apiserver => k8s.io/apiserver v0.34.4\n"), "{m}");
        assert_eq!(m.matches(" => ").count(), STAGING_MODULES.len());
        assert!(ldflags().contains("k8s.io/component-base/version.gitMinor=34"), "{}", ldflags());
        assert!(ldflags().contains("k8s.io/client-go/pkg/version.gitVersion=v1.34.4"), "{}", ldflags());
    }

    #[test]
    fn every_command_built_is_imported_by_the_tools_file() {
        for c in KUBERNETES_COMMANDS.iter().filter(|c| **c != "kubectl") {
            assert!(TOOLS_GO.contains(&format!("k8s.io/kubernetes/cmd/{c}/app")), "{c}");
        }
    }

    #[test]
    fn an_unknown_command_is_refused_by_name() {
        let err = kubernetes(Path::new("/nonexistent"), &["kube-dns"]).unwrap_err().to_string();
        assert!(err.contains("kube-dns is not one of the Kubernetes commands"), "{err}");
    }
}
