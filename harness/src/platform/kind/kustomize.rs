//! The `kustomize` binary that builds `manifests/` — installed once from the Go module proxy into
//! the cache's `bin/` (like SeaweedFS, see [`crate::platform::lake`]), with a version marker so
//! that a second use needs no network — and `kustomize build`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::binaries::go_tool;
use crate::error::Result;
use crate::platform::process;

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

/// `kustomize build <dir>`: the manifests as one YAML stream.
pub fn build(kustomize: &Path, dir: &Path) -> Result<String> {
    let mut cmd = Command::new(kustomize);
    cmd.arg("build").arg(dir);
    process::run(cmd)
}
