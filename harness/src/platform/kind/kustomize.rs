//! The `kustomize` binary that builds `manifests/` — installed once from the Go module proxy into
//! the cache's `bin/` (like SeaweedFS, see [`crate::platform::lake`]), with a version marker so
//! that a second use needs no network — and `kustomize build`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::platform::process::{self, on_path};
use crate::platform::{ensure_dir, write_file};
use crate::progress;

/// The kustomize release used (the newest that builds with this machine's Go 1.26).
pub const VERSION: &str = "v5.8.2";
const MODULE: &str = "sigs.k8s.io/kustomize/kustomize/v5";

/// Where the installed binary lives: `<cache>/bin/kustomize`.
pub fn binary(cache: &Path) -> PathBuf {
    cache.join("bin").join("kustomize")
}

/// `<cache>/bin/kustomize` at [`VERSION`], installed if missing. Needs the Go toolchain and the
/// Go module proxy the first time.
pub fn provision(cache: &Path) -> Result<PathBuf> {
    go_tool(cache, "kustomize", MODULE, VERSION)
}

/// `<cache>/bin/<name>`, built by `go install <module>@<version>` if missing or of another
/// version (a `<name>.version` marker records it), so that a second use needs no network.
pub fn go_tool(cache: &Path, name: &str, module: &str, version: &str) -> Result<PathBuf> {
    let bin = cache.join("bin").join(name);
    let marker = cache.join("bin").join(format!("{name}.version"));
    if bin.is_file() && std::fs::read_to_string(&marker).map(|v| v.trim() == version).unwrap_or(false) {
        return Ok(bin);
    }
    let remedy = format!("GOBIN={} go install {module}@{version}", cache.join("bin").display());
    let missing = |why: String| Error::Missing { what: format!("{name} {version} ({why})"), remedy: remedy.clone() };
    if !on_path("go") {
        return Err(missing("it is installed from the Go module proxy and `go` is not on PATH".into()));
    }
    let staging = cache.join("bin").join(format!("{name}.staging"));
    ensure_dir(&staging)?;
    let log = cache.join(format!("{name}-install.log"));
    progress::note(&format!("{name} {version}: installing from the Go module proxy (log: {})", log.display()));
    let mut cmd = Command::new("go");
    cmd.args(["install", &format!("{module}@{version}")]).env("GOBIN", &staging);
    crate::platform::provision::run_logged(&log, &format!("go install {module}@{version}"), &mut cmd)
        .map_err(|e| missing(format!("`go install` failed: {e}")))?;
    let built = staging.join(name);
    std::fs::rename(&built, &bin).map_err(|e| Error::io(format!("installing {name}"), &bin, e))?;
    let _ = std::fs::remove_dir(&staging);
    write_file(&marker, version)?;
    Ok(bin)
}

/// `kustomize build <dir>`: the manifests as one YAML stream.
pub fn build(kustomize: &Path, dir: &Path) -> Result<String> {
    let mut cmd = Command::new(kustomize);
    cmd.arg("build").arg(dir);
    process::run(cmd)
}
