//! The `local` platform: the whole source-to-Kafka stack as processes of this host.
//!
//! `up` provisions what is missing, makes the network namespaces, starts PostgreSQL, MariaDB, three
//! Kafka nodes and Kafka Connect, creates every topic, registers the Debezium connectors and returns
//! when all of it is healthy. Every process and namespace is recorded in `state.json` before the
//! next step, and if any step fails everything already started is stopped again. `down` undoes it
//! all, also after a crash (it sweeps processes running from the stack's home and namespaces with
//! the stack's prefix); `status` reports each component.
//!
//! For the fault injector it also stops one component (gracefully or by SIGKILL) and starts it
//! again exactly as `up` did — same command line, rendered configuration and namespace — waiting
//! until it serves again. These may be called from any thread of a process that does not hold the
//! stack's home lock (a `run` does not): changes to `state.json` take the lock only briefly, one
//! thread at a time.


pub mod faults;
pub mod roles;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::StackConfig;
use crate::error::{Error, Result};
use crate::platform::process;
use crate::platform::stack::{all_healthy, unhealthy, ComponentStatus, Health, Targets};
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

/// Where the load reaches the local source databases.
fn targets(cfg: &StackConfig) -> Targets {
    Targets {
        postgres: format!("host=127.0.0.1 port={} user=cdc password=cdc dbname=crm connect_timeout=3", cfg.postgres_port),
        mariadb: format!("mysql://cdc:cdc@127.0.0.1:{}/fleet", cfg.mariadb_port),
    }
}

/// Exclusive use of a stack home by one harness command at a time.
struct HomeLock {
    _file: std::fs::File,
}

fn lock_home(home: &Path) -> Result<HomeLock> {
    try_lock_home(home)?.ok_or_else(|| lock_busy(home))
}

fn lock_busy(home: &Path) -> Error {
    Error::Usage(format!(
        "another cdc-chaos command is using the stack in {} (lock {}); wait for it to finish",
        home.display(),
        home.join(".lock").display()
    ))
}

/// The home lock, or `None` if another holder has it.
fn try_lock_home(home: &Path) -> Result<Option<HomeLock>> {
    ensure_dir(home)?;
    let path = home.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("opening lock", &path, e))?;
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    Ok(Some(HomeLock { _file: file }))
}

/// Changes to `state.json` by [`LocalStack::restart_component`], one thread of this process at a
/// time (the home lock is a `flock`, which a second thread could not take but would not wait for).
static STATE_CHANGES: Mutex<()> = Mutex::new(());

/// How long a restart waits for the home lock while another command holds it.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// The file in the home that names the profile (identity and label) its data was made under.
const PROFILE_MARKER: &str = "profile";

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

    /// `<identity> (<label>)` of the profile the data in the home was made under, if any.
    fn data_profile(&self) -> Option<String> {
        std::fs::read_to_string(self.layout.home.join(PROFILE_MARKER)).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// Starts the stack under `profile` and returns once every component is healthy.
    pub fn up(&self, profile: &Profile) -> Result<Vec<ComponentStatus>> {
        let _lock = lock_home(&self.layout.home)?;
        let _mirror = progress::mirror_to(self.layout.home.join("harness.log"));
        let started = Instant::now();
        profile.check_cluster_size(self.cfg.kafka_nodes)?;
        let mut state = self.state()?;
        if !state.components.is_empty() {
            let alive: Vec<&ComponentState> = state.components.iter().filter(|c| process::is_alive(c.pid)).collect();
            if !alive.is_empty() {
                if state.profile_identity.as_deref() == Some(profile.identity().as_str()) && alive.len() == state.components.len() {
                    progress::step(&format!("stack already up in {} (profile {})", self.layout.home.display(), profile.label()));
                    return self.status_of(&state);
                }
                return Err(Error::Usage(format!(
                    "a stack is already running from {} (profile {}, settings {}, {} of {} processes alive); run `cdc-chaos down` first",
                    self.layout.home.display(),
                    state.profile.as_deref().unwrap_or("?"),
                    state.profile_identity.as_deref().unwrap_or("?"),
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
        if let Some(previous) = self.data_profile().filter(|p| !p.starts_with(&profile.identity())) {
            return Err(Error::Usage(format!(
                "the data in {} was made under profile {}; run `cdc-chaos down --purge` before starting under {} (settings {})",
                self.layout.home.display(),
                previous,
                profile.label(),
                profile.identity()
            )));
        }

        progress::step(&format!("provisioning (profile {}, network {})", profile.name, self.topo.network));
        provision::provision(&self.layout, !self.cfg.loopback)?;
        let with_lake = self.cfg.lake_endpoint.is_none();
        if with_lake {
            lake::provision(&self.layout)?;
        }
        if self.cfg.loopback {
            progress::note("loopback network: Kafka nodes share 127.0.0.1, partition faults are unavailable");
        } else {
            netns::check_available()?;
        }
        self.check_ports()?;
        write_file(&self.layout.home.join(PROFILE_MARKER), &format!("{} ({})", profile.identity(), profile.label()))?;
        provision::write_log4j(&self.layout)?;

        state.profile = Some(profile.label());
        state.profile_source = Some(profile.source.clone());
        state.profile_identity = Some(profile.identity());
        state.topology = Some(self.topo.clone());
        self.save(&state)?;
        match self.start_all(profile, with_lake, &mut state) {
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

    /// Records a started process in `state.json` (replacing an earlier record of the component).
    fn record(&self, state: &mut StackState, c: ComponentState) -> Result<u32> {
        let pid = c.pid;
        state.components.retain(|old| old.name != c.name);
        state.components.push(c);
        self.save(state)?;
        Ok(pid)
    }

    /// Starts the process of component `name` as `up` does — on the configuration `up` rendered,
    /// in its namespace — and records it. Returns its pid; does not wait for it to serve.
    fn launch(&self, state: &mut StackState, name: &str, topo: &Topology) -> Result<u32> {
        let (pid, address, netns, stop_signal) = match name {
            // PostgreSQL's fast shutdown.
            postgres::NAME => (postgres::start(&self.layout, name, topo.postgres_port())?, topo.postgres.clone(), None, libc::SIGINT),
            postgres::WAREHOUSE => (postgres::start(&self.layout, name, topo.warehouse_port())?, topo.warehouse.clone(), None, libc::SIGINT),
            mariadb::NAME => (mariadb::start(&self.cfg, &self.layout)?, topo.mariadb.clone(), None, libc::SIGTERM),
            lake::NAME => (lake::start(&self.cfg, &self.layout, &lake::binary(&self.layout))?, topo.lake.clone(), None, libc::SIGTERM),
            connect::NAME => (connect::spawn(&self.cfg, &self.layout)?, topo.connect.clone(), None, libc::SIGTERM),
            pipeline::JOIN => (pipeline::start_join(&self.layout, topo)?, topo.join_metrics.clone(), None, libc::SIGTERM),
            pipeline::SINK => (pipeline::start_sink(&self.layout, topo)?, topo.sink_metrics.clone(), None, libc::SIGTERM),
            pipeline::LAKE_SINK => {
                (pipeline::start_lake_sink(&self.layout, topo, &lake::lake_config(&self.cfg))?, topo.lake_sink_metrics.clone(), None, libc::SIGTERM)
            }
            _ => match topo.nodes.iter().find(|n| n.name == name) {
                Some(node) => (kafka::spawn_node(&self.cfg, &self.layout, node)?, node.broker_addr(), node.netns.clone(), libc::SIGTERM),
                None => return Err(self.unknown_component(name, topo)),
            },
        };
        self.record(state, ComponentState { name: name.into(), pid, address, netns, log: self.layout.log(name), stop_signal })
    }

    fn unknown_component(&self, name: &str, topo: &Topology) -> Error {
        let mut known = vec![postgres::NAME.to_string(), postgres::WAREHOUSE.into(), mariadb::NAME.into()];
        if self.cfg.lake_endpoint.is_none() {
            known.push(lake::NAME.into());
        }
        known.extend(topo.nodes.iter().map(|n| n.name.clone()));
        known.extend([connect::NAME, pipeline::JOIN, pipeline::SINK, pipeline::LAKE_SINK].map(String::from));
        Error::Usage(format!("no component {name:?} in the stack in {} (components: {})", self.layout.home.display(), known.join(", ")))
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

    fn start_all(&self, profile: &Profile, with_lake: bool, state: &mut StackState) -> Result<()> {
        let t = self.timeout();
        let topo = &self.topo;
        if !self.cfg.loopback {
            progress::step("network namespaces");
            let mut save = |s: &StackState| self.save(s);
            netns::setup(topo, &self.cfg.net_prefix, state, &mut save)?;
        }

        for (name, port, address, sql) in [
            (postgres::NAME, topo.postgres_port(), &topo.postgres, postgres::CRM_SQL.to_string()),
            (postgres::WAREHOUSE, topo.warehouse_port(), &topo.warehouse, postgres::warehouse_sql()),
        ] {
            progress::step(&format!("{name} (PostgreSQL) on {address}"));
            let pid = self.launch(state, name, topo)?;
            postgres::wait_ready_and_migrate(port, &self.layout, name, &sql, t, self.alive_check(name, pid))?;
        }

        progress::step(&format!("mariadb on {}", topo.mariadb));
        let pid = self.launch(state, mariadb::NAME, topo)?;
        mariadb::wait_ready_and_migrate(&self.layout, t, self.alive_check(mariadb::NAME, pid))?;

        if with_lake {
            progress::step(&format!("lake (SeaweedFS S3) on {}", topo.lake));
            let pid = self.launch(state, lake::NAME, topo)?;
            lake::wait_ready(&self.cfg, t, self.alive_check(lake::NAME, pid))?;
        }

        let cluster_id = kafka::cluster_id(&self.layout)?;
        let mut pids = Vec::new();
        for node in &topo.nodes {
            progress::step(&format!("{} on {}{}", node.name, node.broker_addr(), node.netns.as_ref().map(|n| format!(" (namespace {n})")).unwrap_or_default()));
            kafka::prepare_node(&self.layout, profile, topo, node, &cluster_id)?;
            pids.push((node.name.clone(), self.launch(state, &node.name, topo)?));
        }
        progress::step(&format!("waiting for {} brokers and a controller quorum leader", topo.nodes.len()));
        let mut checks: Vec<_> = pids.iter().map(|(n, p)| self.alive_check(n, *p)).collect();
        let leader = kafka::wait_ready(&self.layout, topo, t, || checks.iter_mut().try_for_each(|c| c()))?;
        progress::note(&format!("brokers registered, quorum leader is node {leader}"));

        let plan = topics::plan(profile);
        progress::step(&format!("creating {} topics (replication factor {})", plan.len(), profile.replication_factor));
        let created = topics::create(&topo.bootstrap(), &plan)?;
        progress::note(&format!("{} created, {} already there", created.len(), plan.len() - created.len()));

        progress::step(&format!("kafka connect on {}", topo.connect));
        connect::render(&self.layout, profile, topo)?;
        let pid = self.launch(state, connect::NAME, topo)?;
        connect::wait_rest(topo, t, self.alive_check(connect::NAME, pid))?;
        connect::register_and_wait(&self.layout, profile, topo, t, self.alive_check(connect::NAME, pid))?;

        self.write_client_configs(profile)?;
        for name in [pipeline::JOIN, pipeline::SINK, pipeline::LAKE_SINK] {
            self.start_pipeline_process(name, topo, state)?;
        }
        Ok(())
    }

    /// Client configurations for the pipeline, the sinks and the checker.
    fn write_client_configs(&self, profile: &Profile) -> Result<()> {
        let dir = self.layout.clients_dir();
        let bootstrap = self.topo.bootstrap_for(crate::platform::Client::Pipeline);
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

    /// Starts a pipeline process (`join`, `warehouse-sink` or `lake-sink`) again after it died,
    /// and waits until it serves its metrics. Returns the new pid.
    pub fn restart_pipeline(&self, name: &str) -> Result<u32> {
        if !matches!(name, pipeline::JOIN | pipeline::SINK | pipeline::LAKE_SINK) {
            return Err(Error::Usage(format!("{name:?} is not a pipeline process ({}, {} or {})", pipeline::JOIN, pipeline::SINK, pipeline::LAKE_SINK)));
        }
        self.restart_component(name)
    }

    /// Starts one pipeline process, records it, and waits until it serves its metrics.
    fn start_pipeline_process(&self, name: &str, topo: &Topology, state: &mut StackState) -> Result<u32> {
        let pid = self.launch(state, name, topo)?;
        let metrics = state.component(name).map(|c| c.address.clone()).unwrap_or_default();
        progress::step(&format!("{name} (metrics on http://{metrics}/metrics)"));
        pipeline::wait_ready(name, &metrics, self.timeout(), self.alive_check(name, pid))?;
        Ok(pid)
    }

    /// Pid of component `name`'s process, as recorded (it may have exited since).
    pub fn pid_of(&self, name: &str) -> Result<u32> {
        let state = self.state()?;
        let topo = state.topology.clone().unwrap_or_else(|| self.topo.clone());
        state.component(name).map(|c| c.pid).ok_or_else(|| self.unknown_component(name, &topo))
    }

    /// Starts component `name` again after its process exited (killed or stopped), exactly as
    /// `up` started it, records the new pid and waits until it serves: a Kafka node until it is an
    /// unfenced broker again and the quorum has a leader, Connect until its REST API answers and
    /// both connectors run, the databases until they accept connections (after crash recovery),
    /// the lake until S3 answers, a pipeline process until it reports a running session. Errors
    /// if the component is still running (paused included) or is not part of the stack. Returns
    /// the new pid.
    pub fn restart_component(&self, name: &str) -> Result<u32> {
        let started = Instant::now();
        let log_mark;
        let (pid, topo) = {
            let _lock = self.lock_for_change()?;
            let mut state = self.state()?;
            let topo = state.topology.clone().unwrap_or_else(|| self.topo.clone());
            let old = state.component(name).cloned().ok_or_else(|| self.unknown_component(name, &topo))?;
            if process::is_alive(old.pid) {
                return Err(Error::Usage(format!("{name} is still running (pid {})", old.pid)));
            }
            // Children of the dead process (PostgreSQL's backends) that outlive it would keep
            // what it held: the new server would refuse to start.
            if !wait_group_gone(old.pid, Duration::from_secs(10)) {
                return Err(Error::component(name, format!("processes of the previous {name} (process group {}) are still running", old.pid)));
            }
            log_mark = std::fs::metadata(self.layout.log(name)).map(|m| m.len()).unwrap_or(0);
            (self.launch(&mut state, name, &topo)?, topo)
        };
        progress::note(&format!("{name}: started again (pid {pid}), waiting until it serves"));
        self.wait_serving(name, pid, &topo, log_mark)?;
        progress::note(&format!("{name}: serving again after {:.1}s", started.elapsed().as_secs_f64()));
        Ok(pid)
    }

    /// Waits until component `name`, just started again as `pid` when its log was `log_mark`
    /// bytes long, serves.
    fn wait_serving(&self, name: &str, pid: u32, topo: &Topology, log_mark: u64) -> Result<()> {
        let t = self.timeout();
        let alive = self.alive_check(name, pid);
        match name {
            postgres::NAME => postgres::wait_ready(topo.postgres_port(), name, t, alive),
            postgres::WAREHOUSE => postgres::wait_ready(topo.warehouse_port(), name, t, alive),
            mariadb::NAME => mariadb::wait_ready(&self.layout, t, alive),
            lake::NAME => lake::wait_ready(&self.cfg, t, alive),
            connect::NAME => {
                connect::wait_rest(topo, t, alive)?;
                connect::wait_started_work(&self.layout, log_mark, t, self.alive_check(name, pid))?;
                connect::wait_running(&self.layout, topo, t, self.alive_check(name, pid))
            }
            pipeline::JOIN => pipeline::wait_ready(name, &topo.join_metrics, t, alive),
            pipeline::SINK => pipeline::wait_ready(name, &topo.sink_metrics, t, alive),
            pipeline::LAKE_SINK => pipeline::wait_ready(name, &topo.lake_sink_metrics, t, alive),
            _ => match topo.nodes.iter().find(|n| n.name == name) {
                Some(node) => kafka::wait_node_ready(&self.layout, node, t, alive).map(|_| ()),
                None => Err(self.unknown_component(name, topo)),
            },
        }
    }

    /// Stops component `name`: with `graceful`, its stop signal (SIGTERM; SIGINT for PostgreSQL),
    /// continuing it if it was paused; else SIGKILL to its whole process group (PostgreSQL's
    /// backends die with it, as in a crash of the server). Returns once every process of the
    /// group has exited (a zombie nobody reaps counts as exited); errors if that takes longer
    /// than `timeout` (the process is left as it is), or if the component is not running.
    pub fn stop_component(&self, name: &str, graceful: bool, timeout: Duration) -> Result<()> {
        // Not while a restart of it is recording its new pid.
        let state = {
            let _lock = self.lock_for_change()?;
            self.state()?
        };
        let topo = state.topology.clone().unwrap_or_else(|| self.topo.clone());
        let c = state.component(name).ok_or_else(|| self.unknown_component(name, &topo))?;
        if !process::is_alive(c.pid) {
            return Err(Error::Usage(format!("{name} is not running (pid {} has exited)", c.pid)));
        }
        let leads_group = process_group(c.pid) == Some(c.pid);
        let target = |sig: i32| {
            if leads_group {
                unsafe {
                    libc::kill(-(c.pid as i32), sig);
                }
            } else {
                process::signal(c.pid, sig);
            }
        };
        let signal = if graceful { c.stop_signal } else { libc::SIGKILL };
        if graceful {
            process::signal(c.pid, signal);
            target(libc::SIGCONT);
        } else {
            target(libc::SIGKILL);
        }
        let deadline = Instant::now() + timeout;
        while process::is_alive(c.pid) || (leads_group && !group_members(c.pid).is_empty()) {
            if Instant::now() >= deadline {
                return Err(Error::component_with_log(
                    name,
                    format!("still running {}s after signal {signal} (pid {})", timeout.as_secs(), c.pid),
                    &c.log,
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        progress::note(&format!("{name}: stopped ({}, pid {})", if graceful { "gracefully" } else { "SIGKILL" }, c.pid));
        Ok(())
    }

    /// This thread's turn to change `state.json`: first among this process's threads, then
    /// against other commands (waiting up to [`LOCK_WAIT`] for one that holds the home lock).
    fn lock_for_change(&self) -> Result<(MutexGuard<'static, ()>, HomeLock)> {
        let turn = STATE_CHANGES.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            if let Some(lock) = try_lock_home(&self.layout.home)? {
                return Ok((turn, lock));
            }
            if Instant::now() >= deadline {
                return Err(lock_busy(&self.layout.home));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops everything and removes every namespace and rule; with `purge` also the data.
    pub fn down(&self, purge: bool) -> Result<()> {
        let _lock = lock_home(&self.layout.home)?;
        let _mirror = progress::mirror_to(self.layout.home.join("harness.log"));
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
                (false, _) => (Health::Down, "process not running".to_string()),
                (true, false) => (Health::Unreachable, format!("no answer on {}", c.address)),
                (true, true) => (Health::Healthy, String::new()),
            };
            if matches!(c.name.as_str(), pipeline::JOIN | pipeline::SINK | pipeline::LAKE_SINK) && reachable && !pipeline::is_ready(&c.address) {
                health = Health::Degraded;
                detail = "no running session (rebuilding, or retrying after an error: see its log)".into();
            }
            if c.name == connect::NAME && reachable {
                let (running, states) = connect::connectors_health(&topo);
                if !running {
                    health = Health::Degraded;
                }
                detail = states;
            }
            out.push(ComponentStatus {
                name: c.name.clone(),
                pid: c.pid,
                address: c.address.clone(),
                netns: c.netns.clone(),
                health,
                rss_kib: if alive { process::rss_kib(c.pid) } else { None },
                detail,
                log: c.log.display().to_string(),
            });
        }
        Ok(out)
    }
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

/// Process group of `pid`, from /proc.
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()
}

/// Live (not zombie) processes of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| process_group(pid) == Some(pgid) && process::is_alive(pid))
        .collect()
}

/// Waits up to `timeout` until no process of group `pgid` lives. Whether none does.
fn wait_group_gone(pgid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if group_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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

impl crate::platform::stack::Stack for LocalStack {
    fn platform(&self) -> &'static str {
        "local"
    }

    fn endpoints(&self) -> Result<crate::platform::stack::Endpoints> {
        Ok(crate::platform::stack::Endpoints {
            topo: self.topo.clone(),
            sources: targets(&self.cfg),
            warehouse: postgres::warehouse_dsn(self.cfg.warehouse_port),
            lake: lake::lake_config(&self.cfg),
        })
    }

    fn status(&self) -> Result<Vec<ComponentStatus>> {
        LocalStack::status(self)
    }

    fn ensure(&self, profile: &Profile) -> Result<()> {
        let rows = self.status()?;
        let state = StackState::load(&self.layout.state_file())?;
        let healthy = all_healthy(&rows);
        let identity = profile.identity();
        if let Some(previous) = self.data_profile().filter(|p| !p.starts_with(&identity)) {
            // Other settings (a scenario's overrides, another profile): another stack.
            progress::step(&format!(
                "the stack in {} was made under profile {previous}, the scenario wants {} (settings {identity}): redeploying",
                self.layout.home.display(),
                profile.label()
            ));
            self.down(true)?;
            return self.up(profile).map(|_| ());
        }
        if healthy && state.profile_identity.as_deref() == Some(identity.as_str()) {
            progress::step(&format!("stack is up (profile {}, settings {identity})", profile.label()));
            return Ok(());
        }
        if !rows.is_empty() {
            progress::step(&format!("stack is not healthy ({}): restarting it", unhealthy(&rows).join(", ")));
            self.down(false)?;
        }
        self.up(profile).map(|_| ())
    }

    fn heal_leftovers(&self) -> Result<Vec<String>> {
        faults::heal_journal(self, true)
    }

    fn injector(&self, schedule: &[crate::scenario::FaultSpec]) -> Result<Box<dyn crate::platform::stack::Injector>> {
        Ok(Box::new(faults::LocalFaults::new(LocalStack::new(self.cfg.clone()), schedule)?))
    }

    fn copy_logs(&self, dir: &Path) {
        let logs = dir.join("logs");
        let _ = std::fs::create_dir_all(&logs);
        for r in self.status().unwrap_or_default() {
            let from = std::path::PathBuf::from(&r.log);
            if from.is_file() {
                let _ = std::fs::copy(&from, logs.join(format!("{}.log", r.name)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::state::StackState;

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

    /// A stack in a temporary home whose state records `sh -c script` as component `join`.
    fn stack_with_process(tag: &str, script: &str) -> (LocalStack, u32) {
        let home = std::env::temp_dir().join(format!("cdcc-local-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let stack = LocalStack::new(StackConfig::default().home(&home).loopback(true));
        ensure_dir(&home).unwrap();
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", script]);
        let pid = process::spawn_detached("test", cmd, &home.join("test.log")).unwrap();
        let mut state = StackState::default();
        let c = ComponentState { name: pipeline::JOIN.into(), pid, address: "127.0.0.1:9".into(), netns: None, log: home.join("test.log"), stop_signal: libc::SIGTERM };
        stack.record(&mut state, c).unwrap();
        (stack, pid)
    }

    fn wait_for_group(pgid: u32, members: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_members(pgid).len() < members && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(group_members(pgid).len(), members, "group {pgid}");
    }

    #[test]
    fn sigkill_stops_a_component_with_its_whole_process_group() {
        let (stack, pid) = stack_with_process("kill", "sleep 60 & exec sleep 61");
        wait_for_group(pid, 2);
        assert_eq!(stack.pid_of(pipeline::JOIN).unwrap(), pid);
        let e = stack.restart_component(pipeline::JOIN).unwrap_err().to_string();
        assert!(e.contains("still running") && e.contains(&pid.to_string()), "{e}");

        stack.stop_component(pipeline::JOIN, false, Duration::from_secs(5)).unwrap();
        assert!(!process::is_alive(pid));
        assert!(group_members(pid).is_empty(), "the background child died with its group leader");
        let e = stack.stop_component(pipeline::JOIN, false, Duration::from_secs(5)).unwrap_err().to_string();
        assert!(e.contains("not running"), "{e}");
        let e = stack.pid_of("kafka-9").unwrap_err().to_string();
        assert!(e.contains("kafka-9") && e.contains("kafka-1") && e.contains("connect"), "lists the components: {e}");
        std::fs::remove_dir_all(&stack.layout.home).unwrap();
    }

    #[test]
    fn a_graceful_stop_that_is_ignored_times_out_and_leaves_the_process() {
        let (stack, pid) = stack_with_process("term", "trap '' TERM; echo ready; while :; do sleep 0.1; done");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !crate::error::log_tail(&stack.layout.home.join("test.log"), 1).unwrap_or_default().contains("ready") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let e = stack.stop_component(pipeline::JOIN, true, Duration::from_millis(500)).unwrap_err().to_string();
        assert!(e.contains("still running") && e.contains("signal 15"), "{e}");
        assert!(process::is_alive(pid));
        stack.stop_component(pipeline::JOIN, false, Duration::from_secs(5)).unwrap();
        assert!(!process::is_alive(pid));
        std::fs::remove_dir_all(&stack.layout.home).unwrap();
    }

    #[test]
    fn restarts_wait_their_turn_for_the_home_lock() {
        let (stack, pid) = stack_with_process("lock", "exec sleep 60");
        // Another command holds the lock for a moment; threads of this process queue behind it.
        let held = lock_home(&stack.layout.home).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let started = Instant::now();
        let errors: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3).map(|_| s.spawn(|| stack.restart_component(pipeline::JOIN).unwrap_err().to_string())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        release.join().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        for e in errors {
            assert!(e.contains("still running"), "got the lock, then refused to start a running component: {e}");
        }
        process::stop(pid, libc::SIGKILL, Duration::from_secs(5));
        std::fs::remove_dir_all(&stack.layout.home).unwrap();
    }
}
