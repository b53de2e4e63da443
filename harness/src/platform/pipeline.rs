//! The pipeline processes of the stack: the join (`join`), the warehouse sink (`warehouse-sink`)
//! and the lake sink (`lake-sink`), run by this same executable (`cdc-chaos pipeline join|warehouse ...`, the
//! code of the `cdc-pipeline` crate), each with its Prometheus metrics on its own port.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::platform::{postgres, process, Layout, Topology};

pub const JOIN: &str = "join";
pub const SINK: &str = "warehouse-sink";
pub const LAKE_SINK: &str = "lake-sink";

/// The `cdc-chaos` executable: this process's own, or (from a test binary in `target/*/deps`)
/// the one Cargo built beside it, or the one on PATH.
pub fn executable() -> Result<PathBuf> {
    let me = std::env::current_exe().map_err(|e| Error::io("finding the running executable", "/proc/self/exe", e))?;
    if me.file_name().and_then(|n| n.to_str()) == Some("cdc-chaos") {
        return Ok(me);
    }
    let dir = me.parent().map(PathBuf::from).unwrap_or_default();
    for candidate in [dir.join("cdc-chaos"), dir.join("../cdc-chaos")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    if process::on_path("cdc-chaos") {
        return Ok(PathBuf::from("cdc-chaos"));
    }
    Err(Error::Missing {
        what: "the cdc-chaos executable (it runs the pipeline processes)".into(),
        remedy: "cargo build -p cdc-chaos".into(),
    })
}

fn command(args: &[String]) -> Result<Command> {
    let mut cmd = Command::new(executable()?);
    cmd.arg("pipeline").args(args).env("CDC_CHAOS_LOG", "info");
    Ok(cmd)
}

/// Starts the join. Returns its pid.
pub fn start_join(layout: &Layout, topo: &Topology) -> Result<u32> {
    crate::platform::ensure_dir(&layout.dir(JOIN))?;
    let cmd = command(&[
        "join".into(),
        "--clients".into(),
        layout.clients_dir().display().to_string(),
        "--metrics".into(),
        topo.join_metrics.clone(),
    ])?;
    process::spawn_detached(JOIN, cmd, &layout.log(JOIN))
}

/// Starts the warehouse sink. Returns its pid.
pub fn start_sink(layout: &Layout, topo: &Topology) -> Result<u32> {
    crate::platform::ensure_dir(&layout.dir(SINK))?;
    let cmd = command(&[
        "warehouse".into(),
        "--clients".into(),
        layout.clients_dir().display().to_string(),
        "--metrics".into(),
        topo.sink_metrics.clone(),
        "--dsn".into(),
        postgres::warehouse_dsn(topo.warehouse_port()),
    ])?;
    process::spawn_detached(SINK, cmd, &layout.log(SINK))
}

/// Starts the lake sink. Returns its pid.
pub fn start_lake_sink(layout: &Layout, topo: &Topology, lake: &cdc_pipeline::lake::LakeConfig) -> Result<u32> {
    crate::platform::ensure_dir(&layout.dir(LAKE_SINK))?;
    let mut cmd = command(&[
        "lake".into(),
        "--clients".into(),
        layout.clients_dir().display().to_string(),
        "--metrics".into(),
        topo.lake_sink_metrics.clone(),
        "--endpoint".into(),
        lake.endpoint.clone(),
        "--bucket".into(),
        lake.bucket.clone(),
        "--region".into(),
        lake.region.clone(),
        "--prefix".into(),
        lake.prefix.clone(),
    ])?;
    // Credentials through the environment, not the process list.
    cmd.env("CDC_LAKE_ACCESS_KEY", &lake.access_key).env("CDC_LAKE_SECRET_KEY", &lake.secret_key);
    process::spawn_detached(LAKE_SINK, cmd, &layout.log(LAKE_SINK))
}

/// Waits until a pipeline process reports a running session (`cdc_<name>_ready 1` on its metrics
/// endpoint): its state is rebuilt and, for the join, its transactional producer initialised.
pub fn wait_ready(name: &str, metrics: &str, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    process::wait_until(&format!("{name} to start processing (http://{metrics}/metrics)"), timeout, Duration::from_millis(200), alive, || {
        Ok(is_ready(metrics))
    })
}

/// Whether the process serving `metrics` reports a running session.
pub fn is_ready(metrics: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).build().into();
    match agent.get(&format!("http://{metrics}/metrics")).call() {
        Ok(mut resp) => resp.body_mut().read_to_string().map(|b| ready_in(&b)).unwrap_or(false),
        Err(_) => false,
    }
}

fn ready_in(exposition: &str) -> bool {
    exposition.lines().any(|l| l.starts_with("cdc_") && l.ends_with("_ready 1"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_readiness_from_the_exposition() {
        assert!(super::ready_in("# TYPE cdc_join_ready gauge\ncdc_join_ready 1\n"));
        assert!(!super::ready_in("cdc_join_ready 0\n"));
        assert!(!super::ready_in(""));
    }
}
