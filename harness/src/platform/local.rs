//! The `local` platform: the whole source-to-Kafka stack as processes of this host.
//!
//! `up` provisions what is missing, makes the network namespaces, starts PostgreSQL, MariaDB, three
//! Kafka nodes and Kafka Connect, creates every topic, registers the Debezium connectors and returns
//! when all of it is healthy. Every process and namespace is recorded in `state.json` before the
//! next step, and if any step fails everything already started is stopped again. `down` undoes it
//! all, also after a crash (it sweeps processes running from the stack's home and namespaces with
//! the stack's prefix); `status` reports each component.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::StackConfig;
use crate::error::{Error, Result};
use crate::platform::process;
use crate::platform::state::{ComponentState, StackState};
use crate::platform::{connect, ensure_dir, kafka, lake, mariadb, netns, pipeline, postgres, provision, topics, write_file, Layout, Topology};
use crate::profile::Profile;
use crate::progress;
use crate::properties;

/// The local stack: settings, files and addresses.
pub struct LocalStack {
    pub cfg: StackConfig,
    pub layout: Layout,
    pub topo: Topology,
}

/// Health of one component, as `status` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentStatus {
    pub name: String,
    pub pid: u32,
    pub address: String,
    pub netns: Option<String>,
    /// `healthy`, `unreachable` (process lives, port does not answer), `degraded` (e.g. a
    /// connector not running) or `down` (process gone).
    pub health: String,
    pub rss_kib: Option<u64>,
    pub detail: String,
    pub log: String,
}

/// Exclusive use of a stack home by one harness command at a time.
struct HomeLock {
    _file: std::fs::File,
}

fn lock_home(home: &Path) -> Result<HomeLock> {
    ensure_dir(home)?;
    let path = home.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("opening lock", &path, e))?;
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Usage(format!(
            "another cdc-chaos command is using the stack in {} (lock {}); wait for it to finish",
            home.display(),
            path.display()
        )));
    }
    Ok(HomeLock { _file: file })
}

impl LocalStack {
    pub fn new(cfg: StackConfig) -> LocalStack {
        let layout = Layout::new(&cfg);
        let topo = Topology::new(&cfg);
        LocalStack { cfg, layout, topo }
    }

    fn state(&self) -> Result<StackState> {
        StackState::load(&self.layout.state_file())
    }

    fn save(&self, s: &StackState) -> Result<()> {
        s.save(&self.layout.state_file())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.ready_timeout_secs)
    }

    /// Starts the stack under `profile` and returns once every component is healthy.
    pub fn up(&self, profile: &Profile) -> Result<Vec<ComponentStatus>> {
        let _lock = lock_home(&self.layout.home)?;
        progress::log_to(self.layout.home.join("harness.log"));
        let started = Instant::now();
        profile.check_cluster_size(self.cfg.kafka_nodes)?;
        let mut state = self.state()?;
        if !state.components.is_empty() {
            let alive: Vec<&ComponentState> = state.components.iter().filter(|c| process::is_alive(c.pid)).collect();
            if !alive.is_empty() {
                if state.profile.as_deref() == Some(profile.name.as_str()) && alive.len() == state.components.len() {
                    progress::step(&format!("stack already up in {} (profile {})", self.layout.home.display(), profile.name));
                    return self.status_of(&state);
                }
                return Err(Error::Usage(format!(
                    "a stack is already running from {} (profile {}, {} of {} processes alive); run `cdc-chaos down` first",
                    self.layout.home.display(),
                    state.profile.as_deref().unwrap_or("?"),
                    alive.len(),
                    state.components.len()
                )));
            }
        }
        // Leftovers of a stack that died: clear them before starting anew.
        if !state.is_empty() {
            progress::step("clearing leftovers of a previous stack");
            self.teardown(&mut state);
            self.save(&state)?;
        }
        let marker = self.layout.home.join("profile");
        if let Ok(previous) = std::fs::read_to_string(&marker) {
            if previous.trim() != profile.name {
                return Err(Error::Usage(format!(
                    "the data in {} was made under profile {:?}; run `cdc-chaos down --purge` before starting under {:?}",
                    self.layout.home.display(),
                    previous.trim(),
                    profile.name
                )));
            }
        }

        progress::step(&format!("provisioning (profile {}, network {})", profile.name, self.topo.network));
        provision::provision(&self.layout, !self.cfg.loopback)?;
        let weed = match self.cfg.lake_endpoint {
            None => Some(lake::provision(&self.layout)?),
            Some(_) => None,
        };
        if self.cfg.loopback {
            progress::note("loopback network: Kafka nodes share 127.0.0.1, partition faults are unavailable");
        } else {
            netns::check_available()?;
        }
        self.check_ports()?;
        write_file(&marker, &profile.name)?;
        provision::write_log4j(&self.layout)?;

        state.profile = Some(profile.name.clone());
        state.profile_source = Some(profile.source.clone());
        state.topology = Some(self.topo.clone());
        self.save(&state)?;
        match self.start_all(profile, weed.as_deref(), &mut state) {
            Ok(()) => {
                self.save(&state)?;
                progress::step(&format!("stack up in {:.1}s", started.elapsed().as_secs_f64()));
                self.status_of(&state)
            }
            Err(e) => {
                progress::step(&format!("start-up failed: stopping everything that was started ({e})"));
                self.teardown(&mut state);
                let _ = self.save(&state);
                Err(e)
            }
        }
    }

    fn check_ports(&self) -> Result<()> {
        process::ensure_port_free(postgres::NAME, "127.0.0.1", self.topo.postgres_port())?;
        process::ensure_port_free(mariadb::NAME, "127.0.0.1", self.topo.mariadb_port())?;
        process::ensure_port_free(connect::NAME, "127.0.0.1", self.topo.connect_port())?;
        process::ensure_port_free(postgres::WAREHOUSE, "127.0.0.1", self.topo.warehouse_port())?;
        process::ensure_port_free(pipeline::JOIN, "127.0.0.1", self.cfg.join_metrics_port)?;
        process::ensure_port_free(pipeline::SINK, "127.0.0.1", self.cfg.sink_metrics_port)?;
        process::ensure_port_free(pipeline::LAKE_SINK, "127.0.0.1", self.cfg.lake_sink_metrics_port)?;
        if self.cfg.lake_endpoint.is_none() {
            process::ensure_port_free(lake::NAME, "127.0.0.1", self.cfg.lake_s3_port)?;
            for (_, port) in lake::ports(&self.cfg) {
                process::ensure_port_free(lake::NAME, "127.0.0.1", port)?;
            }
        }
        if self.cfg.loopback {
            for n in &self.topo.nodes {
                process::ensure_port_free(&n.name, &n.host, n.broker_port)?;
                process::ensure_port_free(&n.name, &n.host, n.controller_port)?;
            }
        }
        Ok(())
    }

    fn record(&self, state: &mut StackState, name: &str, pid: u32, address: String, netns: Option<String>, stop_signal: i32) -> Result<()> {
        state.components.retain(|c| c.name != name);
        state.components.push(ComponentState { name: name.into(), pid, address, netns, log: self.layout.log(name), stop_signal });
        self.save(state)
    }

    /// A check that fails at once, with the tail of its log, when `name`'s process has exited.
    fn alive_check(&self, name: &str, pid: u32) -> impl FnMut() -> Result<()> {
        let log = self.layout.log(name);
        let name = name.to_string();
        move || {
            if process::is_alive(pid) {
                Ok(())
            } else {
                Err(Error::component_with_log(&name, format!("exited during start-up (pid {pid})"), &log))
            }
        }
    }

    fn start_all(&self, profile: &Profile, weed: Option<&Path>, state: &mut StackState) -> Result<()> {
        let t = self.timeout();
        if !self.cfg.loopback {
            progress::step("network namespaces");
            let mut save = |s: &StackState| self.save(s);
            netns::setup(&self.topo, &self.cfg.net_prefix, state, &mut save)?;
        }

        for (name, port, address, sql) in [
            (postgres::NAME, self.topo.postgres_port(), &self.topo.postgres, postgres::CRM_SQL.to_string()),
            (postgres::WAREHOUSE, self.topo.warehouse_port(), &self.topo.warehouse, postgres::warehouse_sql()),
        ] {
            progress::step(&format!("{name} (PostgreSQL) on {address}"));
            let pid = postgres::start(&self.layout, name, port)?;
            self.record(state, name, pid, address.clone(), None, libc::SIGINT)?;
            postgres::wait_ready_and_migrate(port, &self.layout, name, &sql, t, self.alive_check(name, pid))?;
        }

        progress::step(&format!("mariadb on {}", self.topo.mariadb));
        let pid = mariadb::start(&self.cfg, &self.layout)?;
        self.record(state, mariadb::NAME, pid, self.topo.mariadb.clone(), None, libc::SIGTERM)?;
        mariadb::wait_ready_and_migrate(&self.layout, t, self.alive_check(mariadb::NAME, pid))?;

        if let Some(weed) = weed {
            progress::step(&format!("lake (SeaweedFS S3) on {}", self.topo.lake));
            let pid = lake::start(&self.cfg, &self.layout, weed)?;
            self.record(state, lake::NAME, pid, self.topo.lake.clone(), None, libc::SIGTERM)?;
            lake::wait_ready(&self.cfg, t, self.alive_check(lake::NAME, pid))?;
        }

        let cluster_id = kafka::cluster_id(&self.layout)?;
        let mut pids = Vec::new();
        for node in &self.topo.nodes {
            progress::step(&format!("{} on {}{}", node.name, node.broker_addr(), node.netns.as_ref().map(|n| format!(" (namespace {n})")).unwrap_or_default()));
            let pid = kafka::start_node(&self.cfg, &self.layout, profile, &self.topo, node, &cluster_id)?;
            self.record(state, &node.name, pid, node.broker_addr(), node.netns.clone(), libc::SIGTERM)?;
            pids.push((node.name.clone(), pid));
        }
        progress::step(&format!("waiting for {} brokers and a controller quorum leader", self.topo.nodes.len()));
        let mut checks: Vec<_> = pids.iter().map(|(n, p)| self.alive_check(n, *p)).collect();
        let leader = kafka::wait_ready(&self.layout, &self.topo, t, || checks.iter_mut().try_for_each(|c| c()))?;
        progress::note(&format!("brokers registered, quorum leader is node {leader}"));

        let plan = topics::plan(profile);
        progress::step(&format!("creating {} topics (replication factor {})", plan.len(), profile.replication_factor));
        let created = topics::create(&self.topo.bootstrap(), &plan)?;
        progress::note(&format!("{} created, {} already there", created.len(), plan.len() - created.len()));

        progress::step(&format!("kafka connect on {}", self.topo.connect));
        let pid = connect::start(&self.cfg, &self.layout, profile, &self.topo)?;
        self.record(state, connect::NAME, pid, self.topo.connect.clone(), None, libc::SIGTERM)?;
        connect::wait_rest(&self.topo, t, self.alive_check(connect::NAME, pid))?;
        connect::register_and_wait(&self.layout, profile, &self.topo, t, self.alive_check(connect::NAME, pid))?;

        self.write_client_configs(profile)?;
        for name in [pipeline::JOIN, pipeline::SINK, pipeline::LAKE_SINK] {
            self.start_pipeline_process(name, &self.topo, state)?;
        }
        Ok(())
    }

    /// Client configurations for the pipeline, the sinks and the checker.
    fn write_client_configs(&self, profile: &Profile) -> Result<()> {
        let dir = self.layout.clients_dir();
        let bootstrap = self.topo.bootstrap();
        let header = |what: &str| format!("{what} — rendered by cdc-chaos from profile {}", profile.name);
        write_file(&dir.join("producer.properties"), &properties::render(&header("Kafka producers"), &profile.producer_properties(&bootstrap)))?;
        write_file(&dir.join("consumer.properties"), &properties::render(&header("Kafka consumers"), &profile.consumer_properties(&bootstrap)))?;
        write_file(&dir.join("processing.properties"), &properties::render(&header("Pipeline processing"), &profile.processing_properties()))?;
        Ok(())
    }

    /// Stops every process, removes namespaces and rules. Best effort: keeps going on errors.
    fn teardown(&self, state: &mut StackState) -> Vec<String> {
        let components = std::mem::take(&mut state.components);
        // Kafka's clients first (Connect and the pipeline), then the Kafka nodes together, then
        // the databases.
        let order = |c: &ComponentState| match c.name.as_str() {
            connect::NAME | pipeline::JOIN | pipeline::SINK | pipeline::LAKE_SINK => 0,
            n if n.starts_with("kafka-") => 1,
            _ => 2,
        };
        for stage in 0..3 {
            let handles: Vec<_> = components
                .iter()
                .filter(|c| order(c) == stage)
                .map(|c| {
                    let c = c.clone();
                    std::thread::spawn(move || {
                        if process::stop(c.pid, c.stop_signal, Duration::from_secs(30)) {
                            progress::note(&format!("stopped {} (pid {})", c.name, c.pid));
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
        }
        for pid in stray_processes(&self.layout.home) {
            progress::note(&format!("stopping stray process {pid} running from {}", self.layout.home.display()));
            process::stop(pid, libc::SIGTERM, Duration::from_secs(15));
        }
        let errors = if self.cfg.loopback && state.namespaces.is_empty() && state.links.is_empty() && state.iptables.is_empty() {
            Vec::new()
        } else {
            netns::teardown(&self.cfg.net_prefix, state)
        };
        for e in &errors {
            progress::note(&format!("teardown: {e}"));
        }
        errors
    }

    /// Sends `signal` to a component's process (e.g. SIGKILL to crash it). Errors if the
    /// component is unknown.
    pub fn signal(&self, name: &str, signal: i32) -> Result<u32> {
        let state = self.state()?;
        let c = state.component(name).ok_or_else(|| Error::Usage(format!("no component {name:?} in {}", self.layout.state_file().display())))?;
        process::signal(c.pid, signal);
        Ok(c.pid)
    }

    /// Starts a pipeline process (`join` or `warehouse-sink`) again after it died, and waits until
    /// it serves its metrics. Returns the new pid.
    pub fn restart_pipeline(&self, name: &str) -> Result<u32> {
        let _lock = lock_home(&self.layout.home)?;
        let mut state = self.state()?;
        let topo = state.topology.clone().unwrap_or_else(|| self.topo.clone());
        if let Some(old) = state.component(name) {
            if process::is_alive(old.pid) {
                return Err(Error::Usage(format!("{name} is still running (pid {})", old.pid)));
            }
        }
        self.start_pipeline_process(name, &topo, &mut state)
    }

    /// Starts one pipeline process, records it, and waits until it serves its metrics.
    fn start_pipeline_process(&self, name: &str, topo: &Topology, state: &mut StackState) -> Result<u32> {
        let (pid, metrics) = match name {
            pipeline::JOIN => (pipeline::start_join(&self.layout, topo)?, topo.join_metrics.clone()),
            pipeline::SINK => (pipeline::start_sink(&self.layout, topo)?, topo.sink_metrics.clone()),
            pipeline::LAKE_SINK => (pipeline::start_lake_sink(&self.layout, topo, &lake::lake_config(&self.cfg))?, topo.lake_sink_metrics.clone()),
            other => {
                return Err(Error::Usage(format!(
                    "{other:?} is not a pipeline process ({}, {} or {})",
                    pipeline::JOIN,
                    pipeline::SINK,
                    pipeline::LAKE_SINK
                )))
            }
        };
        progress::step(&format!("{name} (metrics on http://{metrics}/metrics)"));
        self.record(state, name, pid, metrics.clone(), None, libc::SIGTERM)?;
        pipeline::wait_ready(name, &metrics, self.timeout(), self.alive_check(name, pid))?;
        Ok(pid)
    }

    /// Stops everything and removes every namespace and rule; with `purge` also the data.
    pub fn down(&self, purge: bool) -> Result<()> {
        let _lock = lock_home(&self.layout.home)?;
        progress::log_to(self.layout.home.join("harness.log"));
        let mut state = self.state()?;
        progress::step(&format!("stopping the stack in {}", self.layout.home.display()));
        // Namespaces of a stack whose state file was lost are still found by their prefix.
        let errors = self.teardown(&mut state);
        state.profile = None;
        state.topology = None;
        self.save(&state)?;
        if purge {
            progress::step(&format!("purging data in {}", self.layout.home.display()));
            purge_home(&self.layout.home)?;
        }
        let left = self.leftovers();
        if !left.is_empty() || !errors.is_empty() {
            return Err(Error::component("down", format!("could not remove everything: {}", [left, errors].concat().join("; "))));
        }
        progress::step("stack down");
        Ok(())
    }

    /// Processes, namespaces and rules of this stack that still exist (empty after `down`).
    pub fn leftovers(&self) -> Vec<String> {
        let mut out: Vec<String> = stray_processes(&self.layout.home).into_iter().map(|p| format!("process {p}")).collect();
        if crate::config::is_root() {
            out.extend(netns::leftovers(&self.cfg.net_prefix));
        }
        out
    }

    /// Health of every component of the stack.
    pub fn status(&self) -> Result<Vec<ComponentStatus>> {
        let state = self.state()?;
        self.status_of(&state)
    }

    fn status_of(&self, state: &StackState) -> Result<Vec<ComponentStatus>> {
        let topo = state.topology.clone().unwrap_or_else(|| self.topo.clone());
        let mut out = Vec::new();
        for c in &state.components {
            let alive = process::is_alive(c.pid);
            let reachable = alive && process::tcp_reachable(&c.address, Duration::from_secs(1));
            let (mut health, mut detail) = match (alive, reachable) {
                (false, _) => ("down", "process not running".to_string()),
                (true, false) => ("unreachable", format!("no answer on {}", c.address)),
                (true, true) => ("healthy", String::new()),
            };
            if matches!(c.name.as_str(), pipeline::JOIN | pipeline::SINK | pipeline::LAKE_SINK) && reachable && !pipeline::is_ready(&c.address) {
                health = "degraded";
                detail = "no running session (rebuilding, or retrying after an error: see its log)".into();
            }
            if c.name == connect::NAME && reachable {
                let mut states = Vec::new();
                for name in [connect::CRM_CONNECTOR, connect::FLEET_CONNECTOR] {
                    match connect::status(&topo, name) {
                        Ok(s) => {
                            if !s.running() {
                                health = "degraded";
                            }
                            states.push(format!("{name}: {} tasks {:?}", s.connector, s.tasks));
                        }
                        Err(_) => {
                            health = "degraded";
                            states.push(format!("{name}: not registered"));
                        }
                    }
                }
                detail = states.join(", ");
            }
            out.push(ComponentStatus {
                name: c.name.clone(),
                pid: c.pid,
                address: c.address.clone(),
                netns: c.netns.clone(),
                health: health.into(),
                rss_kib: if alive { process::rss_kib(c.pid) } else { None },
                detail,
                log: c.log.display().to_string(),
            });
        }
        Ok(out)
    }
}

/// Renders `status` as a table.
pub fn status_table(rows: &[ComponentStatus]) -> String {
    if rows.is_empty() {
        return "no stack is running (start one with `cdc-chaos up`)\n".into();
    }
    let mut out = format!("{:<14} {:>8} {:<22} {:<12} {:>9}  {}\n", "COMPONENT", "PID", "ADDRESS", "HEALTH", "RSS MiB", "DETAIL");
    for r in rows {
        out.push_str(&format!(
            "{:<14} {:>8} {:<22} {:<12} {:>9}  {}\n",
            r.name,
            r.pid,
            r.address,
            r.health,
            r.rss_kib.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into()),
            r.detail
        ));
    }
    out
}

/// Pids of processes whose command line mentions `home` (servers started from it), other than
/// this process and its ancestors.
fn stray_processes(home: &Path) -> Vec<u32> {
    let needle = home.display().to_string();
    if needle.len() < 4 {
        return Vec::new();
    }
    let mut exclude = vec![std::process::id()];
    let mut pid = std::process::id();
    while let Some(ppid) = parent_pid(pid) {
        if ppid <= 1 {
            break;
        }
        exclude.push(ppid);
        pid = ppid;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if exclude.contains(&pid) || !process::is_alive(pid) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let mentions = cmdline.split(' ').any(|arg| mentions_dir(arg, &needle));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let is_harness = matches!(comm.trim(), "cdc-chaos" | "cargo");
        if mentions && !is_harness {
            out.push(pid);
        }
    }
    out
}

/// Whether a command-line argument names `dir` or a path inside it (`/a/b`, `/a/b/x`,
/// `--opt=/a/b/x`), and not a sibling that merely shares the prefix (`/a/b2`).
fn mentions_dir(arg: &str, dir: &str) -> bool {
    let value = arg.split_once('=').map(|(_, v)| v).unwrap_or(arg);
    [arg, value].iter().any(|v| *v == dir || v.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')))
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Removes the stack's data, keeping the home directory itself.
fn purge_home(home: &Path) -> Result<()> {
    let entries = std::fs::read_dir(home).map_err(|e| Error::io("listing home", home, e))?;
    for e in entries.flatten() {
        if e.file_name() == ".lock" {
            continue;
        }
        let p = e.path();
        let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        r.map_err(|err| Error::io("purging", &p, err))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_is_not_mistaken_for_its_siblings() {
        let home = "/var/lib/cdc-chaos";
        assert!(mentions_dir("/var/lib/cdc-chaos/kafka-1/server.properties", home));
        assert!(mentions_dir("--datadir=/var/lib/cdc-chaos/mariadb/data", home));
        assert!(mentions_dir("-Dcdc.log.file=/var/lib/cdc-chaos/connect/connect.log", home));
        assert!(mentions_dir("/var/lib/cdc-chaos", home));
        assert!(!mentions_dir("/var/lib/cdc-chaos-other/kafka-1/server.properties", home));
        assert!(!mentions_dir("--datadir=/var/lib/cdc-chaos2/data", home));
    }

    #[test]
    fn status_table_shows_every_component() {
        let rows = vec![ComponentStatus {
            name: "kafka-1".into(),
            pid: 7,
            address: "10.231.0.11:9092".into(),
            netns: Some("cdcc-kafka-1".into()),
            health: "healthy".into(),
            rss_kib: Some(2048),
            detail: String::new(),
            log: "/x".into(),
        }];
        let t = status_table(&rows);
        assert!(t.contains("kafka-1") && t.contains("10.231.0.11:9092") && t.contains("healthy") && t.contains(" 2 "), "{t}");
        assert!(status_table(&[]).contains("no stack is running"));
    }
}
