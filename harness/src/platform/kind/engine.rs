//! The Docker engine kind runs its nodes in: one that already answers, or Debian's `docker.io`
//! installed and `dockerd` started by the harness (and stopped again by `down
//! --delete-cluster`).
//!
//! kind's nodes are privileged containers, and a privileged container asks runc for every
//! capability. Where the capability bounding set lacks one (some sandboxes and CI runners lack
//! `CAP_SYS_RESOURCE`), runc refuses them all: "unable to apply caps: operation not
//! permitted". The engine the harness starts then gets `docker/kind/runc-capfix` as its default
//! runtime, a wrapper that drops `CAP_SYS_RESOURCE` from each container's configuration before
//! running runc. An engine the harness did not start is never reconfigured: if it lacks the
//! wrapper on such a machine, the error says how to give it one. `dockerd` sets the FORWARD
//! chain's policy to DROP; stopping the engine the harness started gives back the policy it
//! found.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::platform::process::{self, on_path};
use crate::platform::{ensure_dir, write_file};
use crate::progress;

/// The component named in this module's errors.
pub const COMPONENT: &str = "docker";
/// The runtime name the wrapper is registered under.
pub const RUNTIME: &str = "cdc-chaos-capfix";
/// The wrapper's text (`docker/kind/runc-capfix`).
pub const RUNC_CAPFIX: &str = include_str!("../../../../docker/kind/runc-capfix");
/// `CAP_SYS_RESOURCE`'s bit in the capability sets.
const CAP_SYS_RESOURCE: u32 = 24;

/// The engine's files: `<cache>/kind/`.
fn dir(cache: &Path) -> PathBuf {
    cache.join("kind")
}
/// The pid of a `dockerd` this harness started; present only while it runs.
fn pid_file(cache: &Path) -> PathBuf {
    dir(cache).join("dockerd.pid")
}
/// Where a started engine logs.
pub fn log_file(cache: &Path) -> PathBuf {
    dir(cache).join("dockerd.log")
}
/// Where the wrapper is written for the engine the harness starts.
pub fn wrapper_path(cache: &Path) -> PathBuf {
    dir(cache).join("runc-capfix")
}

/// Whether this process's capability bounding set (`CapBnd` of `/proc/self/status`) holds
/// `CAP_SYS_RESOURCE`.
pub fn bounding_set_has_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    bounding_set_has(&status, CAP_SYS_RESOURCE)
}

fn bounding_set_has(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_none_or(|set| set & (1 << cap) != 0)
}

/// `docker info` fields, or `None` when no engine answers.
fn info(field: &str) -> Option<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["info", "--format", &format!("{{{{{field}}}}}")]);
    process::run(cmd).ok().map(|s| s.trim().to_string())
}

/// Whether a Docker engine answers.
pub fn answers() -> bool {
    on_path("docker") && info(".ServerVersion").is_some()
}

/// What `ensure` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// An engine answered already (its version).
    Running(String),
    /// The harness started `dockerd` (its pid).
    Started(u32),
}

/// Why an already running engine cannot run kind's nodes here, if it cannot.
fn unusable(default_runtime: &str, has_sys_resource: bool) -> Option<String> {
    if has_sys_resource || default_runtime == RUNTIME {
        return None;
    }
    Some(format!(
        "a Docker engine is running whose default runtime is {default_runtime:?}, and this machine's capability bounding set lacks CAP_SYS_RESOURCE, so kind's privileged node containers fail under it (\"unable to apply caps: operation not permitted\"). The harness does not reconfigure an engine it did not start: stop that engine (the harness then starts its own), or register docker/kind/runc-capfix as its default runtime (daemon.json: {{\"runtimes\": {{\"{RUNTIME}\": {{\"path\": \"/usr/local/bin/runc-capfix\"}}}}, \"default-runtime\": \"{RUNTIME}\"}}) and restart it"
    ))
}

/// A Docker engine that can run kind's nodes: one already answering (checked, never changed),
/// or `dockerd` started here — Debian's `docker.io` installed first when missing.
pub fn ensure(cache: &Path) -> Result<Engine> {
    if !on_path("docker") && !on_path("dockerd") {
        install(cache)?;
    }
    if let Some(version) = info(".ServerVersion") {
        let runtime = info(".DefaultRuntime").unwrap_or_default();
        if let Some(why) = unusable(&runtime, bounding_set_has_sys_resource()) {
            return Err(Error::Usage(why));
        }
        progress::step(&format!("Docker engine {version} answers (default runtime {runtime})"));
        return Ok(Engine::Running(version));
    }
    if !crate::config::is_root() {
        return Err(Error::Usage("no Docker engine answers, and starting one needs root: run as root, or start dockerd yourself".into()));
    }
    if !on_path("dockerd") {
        install(cache)?;
    }
    start(cache).map(Engine::Started)
}

fn install(cache: &Path) -> Result<()> {
    if !crate::config::is_root() {
        return Err(Error::Missing { what: "Docker (kind runs the cluster's nodes as containers)".into(), remedy: "apt-get install -y docker.io (as root)".into() });
    }
    progress::step("installing a Docker engine (Debian's docker.io)");
    crate::platform::provision::apt_install(&dir(cache).join("docker-install.log"), &["docker.io"])
}

/// The policy of the root namespace's FORWARD chain (`ACCEPT`, `DROP`), as `iptables -S` says.
fn forward_policy() -> Option<String> {
    let mut cmd = Command::new("iptables");
    cmd.args(["-w", "-S", "FORWARD"]);
    let out = process::run(cmd).ok()?;
    out.lines().find_map(|l| l.strip_prefix("-P FORWARD ")).map(|p| p.trim().to_string())
}

/// Where the FORWARD policy found before starting `dockerd` is kept (dockerd sets it to DROP).
fn policy_file(cache: &Path) -> PathBuf {
    dir(cache).join("forward-policy")
}

fn start(cache: &Path) -> Result<u32> {
    ensure_dir(&dir(cache))?;
    if let Some(policy) = forward_policy() {
        write_file(&policy_file(cache), &policy)?;
    }
    let mut cmd = Command::new("dockerd");
    if !bounding_set_has_sys_resource() {
        let wrapper = wrapper_path(cache);
        let runc = ["/usr/sbin/runc", "/usr/bin/runc"].into_iter().find(|p| Path::new(p).is_file()).unwrap_or("/usr/sbin/runc");
        write_file(&wrapper, &RUNC_CAPFIX.replace("/usr/sbin/runc}", &format!("{runc}}}")))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).map_err(|e| Error::io("making the runc wrapper executable", &wrapper, e))?;
        cmd.arg("--add-runtime").arg(format!("{RUNTIME}={}", wrapper.display())).args(["--default-runtime", RUNTIME]);
    }
    let log = log_file(cache);
    let pid = process::spawn_detached(COMPONENT, cmd, &log)?;
    write_file(&pid_file(cache), &pid.to_string())?;
    process::wait_until(
        "the Docker engine",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || if process::is_alive(pid) { Ok(()) } else { Err(Error::component_with_log(COMPONENT, "dockerd exited while starting", log.clone())) },
        || Ok(info(".ServerVersion").is_some()),
    )?;
    progress::step(&format!(
        "started a Docker engine (dockerd pid {pid}, log {}); `--platform kind down --delete-cluster` stops it",
        log.display()
    ));
    Ok(pid)
}

/// Stops the `dockerd` this harness started, if it runs; the pid it stopped.
pub fn stop_if_started(cache: &Path) -> Result<Option<u32>> {
    let file = pid_file(cache);
    let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse::<u32>().ok()) else {
        return Ok(None);
    };
    let ours = std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim() == "dockerd").unwrap_or(false);
    let stopped = ours && process::stop(pid, libc::SIGTERM, Duration::from_secs(30));
    let _ = std::fs::remove_file(&file);
    // dockerd set the FORWARD chain's policy to DROP; give back the one it found.
    if let Ok(before) = std::fs::read_to_string(policy_file(cache)) {
        let before = before.trim();
        if stopped && forward_policy().is_some_and(|now| now != before) {
            let mut cmd = Command::new("iptables");
            cmd.args(["-w", "-P", "FORWARD", before]);
            process::run(cmd)?;
            progress::note(&format!("FORWARD policy back to {before}, as before the Docker engine started"));
        }
        let _ = std::fs::remove_file(policy_file(cache));
    }
    Ok(stopped.then_some(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounding_set_is_read_from_proc_status() {
        assert!(bounding_set_has("Name:\tx\nCapBnd:\t000001ffffffffff\n", CAP_SYS_RESOURCE));
        assert!(!bounding_set_has("CapBnd:\t000001fffeffffff\n", CAP_SYS_RESOURCE));
        assert!(bounding_set_has("no such line\n", CAP_SYS_RESOURCE), "unknown means: do not wrap");
    }

    #[test]
    fn a_running_engine_without_the_wrapper_is_refused_only_where_it_matters() {
        assert_eq!(unusable("runc", true), None);
        assert_eq!(unusable(RUNTIME, false), None);
        let why = unusable("runc", false).unwrap();
        assert!(why.contains("does not reconfigure an engine it did not start") && why.contains("\"default-runtime\": \"cdc-chaos-capfix\""), "{why}");
    }

    #[test]
    fn the_wrapper_drops_the_capability_from_bundles_and_exec_processes() {
        let dir = std::env::temp_dir().join(format!("cdcc-capfix-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bundle")).unwrap();
        let config = r#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_SYS_TIME"],"effective":["CAP_SYS_RESOURCE"],"permitted":["CAP_SYS_RESOURCE","CAP_KILL"]}}}"#;
        std::fs::write(dir.join("bundle/config.json"), config).unwrap();
        std::fs::write(dir.join("process.json"), "{\n  \"capabilities\": {\n    \"bounding\": [\n      \"CAP_KILL\",\n      \"CAP_SYS_RESOURCE\"\n    ]\n  }\n}\n").unwrap();
        // A stand-in for runc that prints its arguments: the wrapper must pass them unchanged.
        std::fs::write(dir.join("fake-runc"), "#!/bin/sh\necho \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("fake-runc"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("capfix"), RUNC_CAPFIX).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("sh").arg(dir.join("capfix")).args(args).env("RUNC_CAPFIX_RUNC", dir.join("fake-runc")).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let bundle = dir.join("bundle");
        let args = ["--root", "/run/x", "create", "--bundle", bundle.to_str().unwrap(), "id1"];
        assert_eq!(run(&args).trim(), args.join(" "));
        let fixed = std::fs::read_to_string(dir.join("bundle/config.json")).unwrap();
        assert_eq!(fixed, r#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_TIME"],"effective":[],"permitted":["CAP_KILL"]}}}"#);
        let process = dir.join("process.json");
        run(&["exec", "--process", process.to_str().unwrap(), "id1"]);
        let fixed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&process).unwrap()).unwrap();
        assert_eq!(fixed["capabilities"]["bounding"], serde_json::json!(["CAP_KILL"]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
