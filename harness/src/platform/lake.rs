//! The lake's S3 server: SeaweedFS (`weed mini`, Apache-2.0), built from the Go module proxy
//! into the jar cache's `bin/` once, serving S3 on 127.0.0.1 with the stack's own static
//! credentials and all data in the run directory. Users who point the lake at MinIO or AWS S3
//! give the endpoint and keys instead (`StackConfig::lake_endpoint`), and no server is started.

use std::process::Command;
use std::time::Duration;

use cdc_pipeline::lake::{Lake, LakeConfig};

use crate::config::StackConfig;
use crate::error::{Error, Result};
use crate::platform::process::{self, on_path};
use crate::platform::{ensure_dir, write_file, Layout};
use crate::progress;

pub const NAME: &str = "lake";
/// SeaweedFS release built (a pseudo-version of the Go module: its go.mod has replace
/// directives, so `go install` refuses it and the harness builds inside the module instead).
pub const SEAWEEDFS_VERSION: &str = "v0.0.0-20261109003541-7506e5f91cd6";
const MODULE: &str = "github.com/seaweedfs/seaweedfs";

/// The lake settings the sink gets.
pub fn lake_config(cfg: &StackConfig) -> LakeConfig {
    LakeConfig {
        endpoint: cfg.lake_endpoint.clone().unwrap_or_else(|| format!("http://127.0.0.1:{}", cfg.lake_s3_port)),
        bucket: cfg.lake_bucket.clone(),
        region: "us-east-1".into(),
        access_key: cfg.lake_access_key.clone(),
        secret_key: cfg.lake_secret_key.clone(),
        prefix: "customer_360".into(),
        batch_max: 1000,
        batch_wait: Duration::from_secs(1),
    }
}

/// Where the built SeaweedFS binary lives: `<cache>/bin/weed`.
pub fn binary(layout: &Layout) -> std::path::PathBuf {
    layout.cache.join("bin").join("weed")
}

/// `<cache>/bin/weed`, built if missing. Needs the Go toolchain.
pub fn provision(layout: &Layout) -> Result<std::path::PathBuf> {
    let bin = binary(layout);
    let marker = layout.cache.join("bin").join("weed.version");
    if bin.is_file() && std::fs::read_to_string(&marker).map(|v| v.trim() == SEAWEEDFS_VERSION).unwrap_or(false) {
        progress::note(&format!("seaweedfs: cached in {}", bin.display()));
        return Ok(bin);
    }
    if !on_path("go") {
        return Err(Error::Missing {
            what: "the Go toolchain (SeaweedFS, the lake's S3 server, is built from the Go module proxy)".into(),
            remedy: "install Go 1.24 or newer and put `go` on PATH, or point the lake at an existing S3 endpoint".into(),
        });
    }
    ensure_dir(&layout.cache.join("bin"))?;
    let log = layout.cache.join("seaweedfs-build.log");
    progress::note(&format!("seaweedfs {SEAWEEDFS_VERSION}: downloading and building (a few minutes the first time; log: {})", log.display()));
    let mut download = Command::new("go");
    download.args(["mod", "download", &format!("{MODULE}@{SEAWEEDFS_VERSION}")]);
    crate::platform::provision::run_logged(&log, "go mod download seaweedfs", &mut download)?;
    let gomodcache = process::run({
        let mut c = Command::new("go");
        c.args(["env", "GOMODCACHE"]);
        c
    })?;
    let module_dir = std::path::Path::new(gomodcache.trim()).join(format!("{MODULE}@{SEAWEEDFS_VERSION}"));
    let staging = bin.with_extension("staging");
    let mut build = Command::new("go");
    build.current_dir(&module_dir).arg("build").arg("-o").arg(&staging).arg("./weed");
    crate::platform::provision::run_logged(&log, "go build weed", &mut build)?;
    std::fs::rename(&staging, &bin).map_err(|e| Error::io("installing weed", &bin, e))?;
    write_file(&marker, SEAWEEDFS_VERSION)?;
    Ok(bin)
}

/// SeaweedFS's listening ports besides S3: `(flag, port)`, ten consecutive ports from
/// `cfg.lake_port_base`, each gRPC port set explicitly (its default, port + 10000, would land in
/// the ephemeral port range or on another stack's port).
pub fn ports(cfg: &StackConfig) -> Vec<(&'static str, u16)> {
    let b = cfg.lake_port_base;
    vec![
        ("master.port", b),
        ("master.port.grpc", b + 1),
        ("volume.port", b + 2),
        ("volume.port.grpc", b + 3),
        ("filer.port", b + 4),
        ("filer.port.grpc", b + 5),
        ("admin.port", b + 6),
        ("admin.port.grpc", b + 7),
        ("s3.port.grpc", b + 8),
    ]
}

/// Starts `weed mini` with S3 on `cfg.lake_s3_port` and its other ports from [`ports`].
/// Returns its pid.
pub fn start(cfg: &StackConfig, layout: &Layout, weed: &std::path::Path) -> Result<u32> {
    let dir = layout.dir(NAME);
    ensure_dir(&dir.join("data"))?;
    let s3_config = dir.join("s3.json");
    let identities = serde_json::json!({
        "identities": [{
            "name": "cdc-chaos",
            "credentials": [{"accessKey": cfg.lake_access_key, "secretKey": cfg.lake_secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]
        }]
    });
    write_file(&s3_config, &serde_json::to_string_pretty(&identities).expect("json"))?;
    let mut cmd = Command::new(weed);
    // Its own log files go to the run directory (default: /tmp/weed.*).
    cmd.arg(format!("-logdir={}", dir.display()))
        .arg("mini")
        .arg(format!("-dir={}", dir.join("data").display()))
        .arg(format!("-s3.config={}", s3_config.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
        .arg(format!("-s3.port={}", cfg.lake_s3_port));
    for (flag, port) in ports(cfg) {
        cmd.arg(format!("-{flag}={port}"));
    }
    cmd.args([
        "-admin.port.legacy=0",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        // No traffic leaves this host.
        "-master.telemetry=false",
    ]);
    process::spawn_detached(NAME, cmd, &layout.log(NAME))
}

/// Waits until the S3 API answers signed requests, and makes the bucket.
pub fn wait_ready(cfg: &StackConfig, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    let lake = Lake::new(&lake_config(cfg)).map_err(|e| Error::component(NAME, e.to_string()))?;
    let mut last = String::new();
    process::wait_until("lake S3 API", timeout, Duration::from_millis(500), alive, || match lake.ensure_bucket() {
        Ok(()) => Ok(true),
        Err(e) => {
            last = e.to_string();
            Ok(false)
        }
    })
    .map_err(|e| Error::component(NAME, format!("{e}; last answer: {last}")))
}
