//! The nemesis: applies a scenario's faults to the local stack on its timeline and heals them.
//!
//! Owns fault application and healing (DESIGN §5): SIGKILL and restart, SIGSTOP and SIGCONT,
//! graceful restart, and network partitions made of iptables DROP rules inside the Kafka nodes'
//! namespaces (isolate a node, majority/minority split, one-way, clients cut from the cluster).
//! Role targets (partition leader, active controller, transaction coordinator, random node) are
//! resolved when the fault starts, and the node it hit is recorded.
//!
//! Heal guarantee: every active fault is journaled in `<home>/faults-active.json` before it is
//! applied, and removed only once healed. The end of the load heals what is left, so does a
//! panic (the handle's `Drop`), Ctrl-C (the load stops, then the run heals), the next `run`
//! and `cdc-chaos down`. Each fault's start and heal are appended to the run's `faults.jsonl`
//! with the evidence checked on the way ([`crate::faults`]): on the local stack the pid gone or in
//! state `T` (and still so at the heal, after how long), a TCP probe across every cut getting no
//! answer (and connecting again after the heal), a role target's resolution and its age.
//!
//! Timeline: faults start at their `at` and heal after their `for`; a heal runs on its own thread
//! (a restart waits until the component serves), so a slow heal does not hold the next fault
//! back, unless that fault says `after_heals`: it waits for the heals still running, and the rest
//! of the timeline moves back by the wait.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdc_pipeline::record::now_us;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::faults::{FaultRecord, Proof};
use crate::platform::local::LocalStack;
use crate::platform::netns::Reach;
use crate::platform::{netns, pipeline, process, roles, Client};
use crate::scenario::{FaultKind, FaultSpec, Target};
use crate::{Error, Result};

/// Set by SIGINT / SIGTERM during a run: the load stops early and every fault is healed.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes Ctrl-C and SIGTERM to [`INTERRUPTED`] instead of ending the process mid-fault.
pub fn catch_interrupts() {
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// A fault in force, as journaled: enough to heal it from another process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActiveFault {
    pub id: usize,
    pub kind: FaultKind,
    pub target: String,
    /// Components the fault hit.
    pub components: Vec<String>,
    /// Paused processes (SIGCONT heals them).
    #[serde(default)]
    pub paused: Vec<u32>,
    /// Stopped components (a restart heals them).
    #[serde(default)]
    pub stopped: Vec<String>,
    /// iptables rules: (namespace, arguments after `-A`/`-D`).
    #[serde(default)]
    pub rules: Vec<(String, Vec<String>)>,
    /// The processes a kill, restart or pause hit: (component, pid).
    #[serde(default)]
    pub pids: Vec<(String, u32)>,
    /// Connections a partition cuts, probed while it is in force and after its heal.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// When the fault took effect, µs since the epoch.
    #[serde(default)]
    pub started_us: i64,
}

/// A TCP connection across a cut: from a node's namespace (or the host) to an address.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    /// The namespace it starts in; `None` for the host's.
    pub from_ns: Option<String>,
    /// Who it starts from, for the record (`kafka-2`, `host 10.231.0.1`).
    pub from: String,
    /// `address:port` of a listener across the cut.
    pub to: String,
}

/// How long a probe across a cut waits for an answer before it counts as blocked: a SYN-ACK over
/// the stack's veth bridge takes well under a millisecond.
const PROBE_BLOCKED_AFTER: Duration = Duration::from_millis(500);
/// How long a probe after a heal may take to get across.
const PROBE_PASSES_WITHIN: Duration = Duration::from_secs(2);
/// How long a signalled process may take to show the state the signal puts it in.
const SIGNAL_SETTLES_WITHIN: Duration = Duration::from_secs(2);
/// How old a role target's resolution may be when the fault takes effect for the node to count as
/// the role holder at that moment.
const ROLE_FRESH: Duration = Duration::from_secs(2);

/// Runs every probe at once (each waits up to `timeout`), in order.
fn run_probes(probes: &[Probe], timeout: Duration) -> Vec<(Probe, Reach)> {
    let addrs: Vec<_> = probes.iter().map(|p| p.to.parse::<std::net::SocketAddr>()).collect();
    let valid: Vec<_> = probes.iter().zip(&addrs).filter_map(|(p, a)| a.as_ref().ok().map(|a| (p.from_ns.as_deref(), *a))).collect();
    let mut reached = netns::probe_all(&valid, timeout).into_iter();
    probes
        .iter()
        .zip(addrs)
        .map(|(p, a)| match a {
            Ok(_) => (p.clone(), reached.next().expect("one outcome per address")),
            Err(e) => (p.clone(), Reach::Failed(format!("{}: {e}", p.to))),
        })
        .collect()
}

/// Proofs that every probe got no answer; `since` names how long the cut has been in force.
fn blocked_proofs(probes: &[Probe], since: Option<f64>) -> Vec<Proof> {
    run_probes(probes, PROBE_BLOCKED_AFTER)
        .into_iter()
        .map(|(p, r)| {
            let (still, after) = since.map_or((String::new(), String::new()), |s| ("still ".to_string(), format!(" after {s:.1} s")));
            match r {
                Reach::Blocked => Proof::new(true, format!("{} → {} {still}blocked{after} (no answer in {:.1} s)", p.from, p.to, PROBE_BLOCKED_AFTER.as_secs_f64())),
                other => Proof::new(false, format!("{} → {} not blocked{after}: {}", p.from, p.to, other.describe())),
            }
        })
        .collect()
}

/// Waits up to [`SIGNAL_SETTLES_WITHIN`] for `pid`'s state to satisfy `want`; returns the last
/// state seen.
fn settle(pid: u32, want: impl Fn(Option<char>) -> bool) -> Option<char> {
    let deadline = Instant::now() + SIGNAL_SETTLES_WITHIN;
    loop {
        let s = process::state(pid);
        if want(s) || Instant::now() >= deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn state_name(s: Option<char>) -> String {
    s.map_or("gone".to_string(), |c| format!("state {c}"))
}

/// What a fault did once applied: the components it hit, how its target was resolved, and the
/// evidence that it took effect.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub components: Vec<String>,
    pub detail: String,
    pub evidence: Vec<Proof>,
}

/// What healing a fault did: the components it hit, errors while healing, and the evidence of how
/// long it held and that it ended.
#[derive(Debug, Clone, Default)]
pub struct Healed {
    pub components: Vec<String>,
    pub errors: Vec<String>,
    pub evidence: Vec<Proof>,
}

fn journal_path(stack: &LocalStack) -> PathBuf {
    stack.layout.home.join("faults-active.json")
}

fn load_journal(stack: &LocalStack) -> Vec<ActiveFault> {
    std::fs::read_to_string(journal_path(stack)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn save_journal(stack: &LocalStack, faults: &[ActiveFault]) -> Result<()> {
    let path = journal_path(stack);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(faults).expect("journal serializes")).map_err(|e| Error::io("journaling faults", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("journaling faults", &path, e))
}

fn iptables(ns: &str, op: &str, args: &[String]) -> Result<()> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "iptables", "-w", op])
        .args(args)
        .output()
        .map_err(|e| Error::Command { command: format!("ip netns exec {ns} iptables"), message: e.to_string() })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: format!("ip netns exec {ns} iptables {op} {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Heals one fault. With `restart`, stopped components are started again (not when the whole
/// stack is about to go down).
fn heal(stack: &LocalStack, f: &ActiveFault, restart: bool) -> Vec<String> {
    let mut errors = Vec::new();
    for pid in &f.paused {
        unsafe {
            libc::kill(*pid as i32, libc::SIGCONT);
        }
    }
    for (ns, rule) in &f.rules {
        if netns::namespace_exists(ns) {
            if let Err(e) = iptables(ns, "-D", rule) {
                errors.push(e.to_string());
            }
        }
    }
    if restart {
        for c in &f.stopped {
            match stack.restart_component(c) {
                Ok(_) => {}
                Err(e) => errors.push(format!("restarting {c}: {e}")),
            }
        }
    }
    errors
}

/// Heals every fault journaled for `stack` (a crashed run's, or before `down`). Returns what
/// was healed.
pub fn heal_journal(stack: &LocalStack, restart: bool) -> Result<Vec<String>> {
    let faults = load_journal(stack);
    let mut healed = Vec::new();
    let mut errors = Vec::new();
    for f in &faults {
        errors.extend(heal(stack, f, restart));
        healed.push(format!("{} {}", f.kind.as_str(), f.components.join("+")));
    }
    if !faults.is_empty() {
        save_journal(stack, &[])?;
    }
    if errors.is_empty() {
        Ok(healed)
    } else {
        Err(Error::component("nemesis", format!("healing {}: {}", healed.join(", "), errors.join("; "))))
    }
}

/// Where faults land: the local stack (signals, iptables in the Kafka nodes' namespaces) or a
/// cluster (the Kubernetes API). Each journals what is in force before applying it, so that
/// another process can heal it.
pub trait Injector: Send + Sync {
    /// Applies `f` as fault `id` now: the components it hit, how its target was resolved and the
    /// evidence that it took effect.
    fn apply(&self, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<Applied>;
    /// Heals fault `id` if it is in force: the components it hit, the errors of healing and the
    /// evidence of its end.
    fn heal(&self, id: usize) -> Option<Healed>;
    /// Ids of the faults in force, oldest first.
    fn in_force(&self) -> Vec<usize>;
}

/// Applies faults on the scenario's timeline from a thread; [`Nemesis::finish`] heals the rest.
pub struct Nemesis {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    inner: Arc<Inner>,
}

struct Inner {
    injector: Box<dyn Injector>,
    schedule: Vec<FaultSpec>,
    record: Mutex<std::fs::File>,
    record_path: PathBuf,
    /// Heals under way, by the time they were due: each runs on a thread of its own, so that a
    /// slow restart does not hold back the faults after it.
    heals: Mutex<Vec<(Duration, std::thread::JoinHandle<()>)>>,
}

impl Inner {
    fn record(&self, r: &FaultRecord) {
        let line = serde_json::to_string(r).expect("fault record serializes");
        let mut f = self.record.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(f, "{line}") {
            tracing::error!("{}: {e}", self.record_path.display());
        }
        crate::progress::note(&format!(
            "fault {} {}: {} {}{}",
            r.id,
            r.event,
            r.kind.as_str(),
            r.components.join("+"),
            if r.detail.is_empty() { String::new() } else { format!(" ({})", r.detail) }
        ));
    }

    fn record_event(&self, id: usize, event: &str, components: Vec<String>, detail: String, evidence: Vec<Proof>) {
        let f = &self.schedule[id];
        for p in evidence.iter().filter(|p| !p.held) {
            crate::progress::note(&format!("fault {id} {event}: not proven: {}", p.claim));
        }
        self.record(&FaultRecord { id, event: event.into(), kind: f.kind, target: f.target.to_string(), components, detail, time_us: now_us(), evidence });
    }
}

/// The local stack's faults: signals to its processes and iptables rules in its Kafka nodes'
/// namespaces, journaled in `<home>/faults-active.json`.
pub struct LocalFaults {
    stack: LocalStack,
    active: Mutex<Vec<ActiveFault>>,
}

impl LocalFaults {
    /// Checks that `schedule` can run on `stack`: partitions need the nodes in namespaces.
    pub fn new(stack: LocalStack, schedule: &[FaultSpec]) -> Result<LocalFaults> {
        if schedule.iter().any(|f| f.kind.is_partition()) && stack.topo.nodes.iter().any(|n| n.netns.is_none()) {
            return Err(Error::Usage(
                "partition faults need the Kafka nodes in network namespaces (root, without --loopback)".into(),
            ));
        }
        Ok(LocalFaults { stack, active: Mutex::new(Vec::new()) })
    }

    fn journal(&self) -> Result<()> {
        save_journal(&self.stack, &self.active.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Journals `active` as in force, before it is applied.
    fn push(&self, active: &ActiveFault) -> Result<()> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).push(active.clone());
        self.journal()
    }
}

impl Injector for LocalFaults {
    fn apply(&self, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<Applied> {
        apply_fault(self, id, f, rng)
    }

    fn heal(&self, id: usize) -> Option<Healed> {
        let taken = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            active.iter().position(|a| a.id == id).map(|p| active.remove(p))?
        };
        let lasted = (now_us() - taken.started_us) as f64 / 1e6;
        let mut evidence = still_in_force(&self.stack, &taken, lasted);
        let mut errors = heal(&self.stack, &taken, true);
        if let Err(e) = self.journal() {
            errors.push(e.to_string());
        }
        // Faults that came into force while this one healed may hit what it healed.
        let others = self.active.lock().unwrap_or_else(|p| p.into_inner()).clone();
        evidence.extend(ended(&self.stack, &taken, &others));
        Some(Healed { components: taken.components, errors, evidence })
    }

    fn in_force(&self) -> Vec<usize> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|a| a.id).collect()
    }
}

/// The node a target names now, with how it was resolved.
fn resolve_node(stack: &LocalStack, target: &Target, rng: &mut StdRng) -> Result<(u16, String)> {
    let nodes: Vec<u16> = stack.topo.nodes.iter().map(|n| n.id).collect();
    Ok(match target {
        Target::Node(n) if nodes.contains(n) => (*n, String::new()),
        Target::Node(n) => return Err(Error::Usage(format!("there is no kafka-{n}: the stack has {} nodes", nodes.len()))),
        Target::RandomBroker => {
            let n = nodes[rng.random_range(0..nodes.len())];
            (n, format!("random node {n}"))
        }
        role => {
            let n = roles::resolve(stack, role)?;
            (n, roles::describe(role, n))
        }
    })
}

/// Components a process fault hits.
fn resolve_processes(stack: &LocalStack, target: &Target, rng: &mut StdRng) -> Result<(Vec<String>, String)> {
    match target {
        Target::TwoBrokers => {
            let mut nodes: Vec<u16> = stack.topo.nodes.iter().map(|n| n.id).collect();
            let a = nodes.remove(rng.random_range(0..nodes.len()));
            let b = nodes.remove(rng.random_range(0..nodes.len()));
            Ok((vec![format!("kafka-{a}"), format!("kafka-{b}")], format!("random nodes {a} and {b}")))
        }
        Target::Component(c) if c == "pipeline" => Ok((PIPELINE.iter().map(|c| c.to_string()).collect(), "the join and both sinks".into())),
        Target::Component(c) => Ok((vec![c.clone()], String::new())),
        Target::Cluster => Err(Error::Usage("a process fault needs a process, not the whole cluster".into())),
        node => {
            let (n, detail) = resolve_node(stack, node, rng)?;
            Ok((vec![format!("kafka-{n}")], detail))
        }
    }
}

fn tag(stack: &LocalStack) -> String {
    format!("{}:fault", netns::rule_tag(&stack.cfg.net_prefix))
}

/// The components the target `pipeline` stands for.
const PIPELINE: [&str; 3] = [pipeline::JOIN, pipeline::SINK, pipeline::LAKE_SINK];

/// Drops TCP packets to (`--dport`) or from (`--sport`) `port`.
fn port_drop_rule(chain: &str, flag: &str, port: &str, tag: &str) -> Vec<String> {
    [chain, "-p", "tcp", flag, port, "-j", "DROP", "-m", "comment", "--comment", tag].iter().map(|s| s.to_string()).collect()
}

fn drop_rule(chain: &str, flag: &str, addr: &str, tag: &str) -> Vec<String> {
    [chain, flag, addr, "-j", "DROP", "-m", "comment", "--comment", tag].iter().map(|s| s.to_string()).collect()
}

impl Nemesis {
    /// Starts applying `schedule` (times from `base`) through `injector`. `seed` drives random
    /// targets.
    pub fn start(injector: Box<dyn Injector>, schedule: Vec<FaultSpec>, run_dir: &Path, base: Instant, seed: u64) -> Result<Nemesis> {
        let record_path = run_dir.join("faults.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&record_path)
            .map_err(|e| Error::io("opening the fault timeline", &record_path, e))?;
        let inner = Arc::new(Inner { injector, schedule, record: Mutex::new(file), record_path, heals: Mutex::new(Vec::new()) });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (inner, stop) = (inner.clone(), stop.clone());
            std::thread::Builder::new()
                .name("nemesis".into())
                .spawn(move || timeline(&inner, base, seed, &stop))
                .map_err(|e| Error::component("nemesis", e.to_string()))?
        };
        Ok(Nemesis { stop, thread: Some(thread), inner })
    }

    /// Stops the timeline and heals every fault still in force (restarting what was stopped).
    pub fn finish(mut self) -> Result<()> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let heals = std::mem::take(&mut *self.inner.heals.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, h) in heals {
            let _ = h.join();
        }
        let mut errors = Vec::new();
        for id in self.inner.injector.in_force().into_iter().rev() {
            if let Some(h) = self.inner.injector.heal(id) {
                errors.extend(h.errors);
                self.inner.record_event(id, "heal", h.components, "end of the load".into(), h.evidence);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::component("nemesis", format!("healing: {}", errors.join("; "))))
        }
    }
}

impl Drop for Nemesis {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.finish_inner() {
                eprintln!("{e}");
            }
        }
    }
}

/// Events of the timeline: (time, fault index, true = apply / false = heal).
fn events(schedule: &[FaultSpec]) -> Vec<(Duration, usize, bool)> {
    let mut ev: Vec<(Duration, usize, bool)> =
        schedule.iter().enumerate().flat_map(|(i, f)| [(f.at.0, i, true), (f.at.0 + f.for_.0, i, false)]).collect();
    // Heals before applies at the same instant; otherwise by time, then fault order.
    ev.sort_by_key(|(t, i, apply)| (*t, *apply, *i));
    ev
}

/// How late a fault may start before its record says so.
const LATE: Duration = Duration::from_secs(1);

fn timeline(inner: &Arc<Inner>, base: Instant, seed: u64, stop: &AtomicBool) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7461_7267_6574);
    let events = events(&inner.schedule);
    // How far `after_heals` waits have pushed the timeline back.
    let mut shift = Duration::ZERO;
    for (n, &(at, i, apply)) in events.iter().enumerate() {
        let stopped = || stop.load(Ordering::SeqCst) || INTERRUPTED.load(Ordering::SeqCst);
        let due_at = base + at + shift;
        while Instant::now() < due_at && !stopped() {
            std::thread::sleep(due_at.saturating_duration_since(Instant::now()).min(Duration::from_millis(200)));
        }
        if stopped() {
            // A fault the load ended before is one the run did not test.
            for &(at, i, _) in events[n..].iter().filter(|e| e.2) {
                let why = format!("the load ended before it was due at {:.1} s", (at + shift).as_secs_f64());
                inner.record_event(i, "error", vec![], why, vec![]);
            }
            return;
        }
        if apply {
            let spec = &inner.schedule[i];
            // Heals due at the same instant come first, as before a fault that may hit the same
            // component; an `after_heals` fault waits for every heal still running.
            let due: Vec<_> = {
                let mut heals = inner.heals.lock().unwrap_or_else(|p| p.into_inner());
                let (now, later) = std::mem::take(&mut *heals).into_iter().partition(|(t, _)| spec.after_heals || *t == at);
                *heals = later;
                now
            };
            for (_, h) in due {
                let _ = h.join();
            }
            let late = Instant::now().saturating_duration_since(due_at);
            let waited = spec.after_heals && late > Duration::from_millis(100);
            if spec.after_heals {
                shift += late;
            }
            match inner.injector.apply(i, spec, &mut rng) {
                Ok(a) => {
                    let detail = if waited {
                        let why = format!("applied {:.1} s late, once the heals before it had finished", late.as_secs_f64());
                        [a.detail, why].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ")
                    } else if late > LATE {
                        [a.detail, format!("applied {:.1} s late", late.as_secs_f64())].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ")
                    } else {
                        a.detail
                    };
                    inner.record_event(i, "start", a.components, detail, a.evidence)
                }
                Err(e) => inner.record_event(i, "error", vec![], e.to_string(), vec![]),
            }
        } else {
            let healer = inner.clone();
            let spawned = std::thread::Builder::new().name(format!("heal-{i}")).spawn(move || {
                if let Some(h) = healer.injector.heal(i) {
                    healer.record_event(i, "heal", h.components, h.errors.join("; "), h.evidence);
                }
            });
            match spawned {
                Ok(h) => inner.heals.lock().unwrap_or_else(|p| p.into_inner()).push((at, h)),
                // Left in force: the end of the load heals it.
                Err(e) => tracing::error!("fault {i}: starting its heal: {e}"),
            }
        }
    }
}

/// The proof that a role target was the role holder when the fault took effect: the resolution
/// was at most [`ROLE_FRESH`] old.
fn role_proof(f: &FaultSpec, detail: &str, resolved: Instant, applied: Instant) -> Option<Proof> {
    if !f.target.is_role() && !f.to.as_ref().is_some_and(Target::is_role) {
        return None;
    }
    let age = applied.saturating_duration_since(resolved);
    Some(Proof::new(age <= ROLE_FRESH, format!("{detail} (resolved {} ms before the fault took effect)", age.as_millis())))
}

/// Evidence, just before the heal, that fault `f` is still in force after `lasted` seconds.
fn still_in_force(stack: &LocalStack, f: &ActiveFault, lasted: f64) -> Vec<Proof> {
    match f.kind {
        FaultKind::Pause => f
            .pids
            .iter()
            .map(|(c, pid)| match process::state(*pid) {
                Some('T') => Proof::new(true, format!("{c} (pid {pid}) stopped for {lasted:.1} s")),
                s => Proof::new(false, format!("{c} (pid {pid}) no longer stopped after {lasted:.1} s ({})", state_name(s))),
            })
            .collect(),
        FaultKind::Kill | FaultKind::Restart => f
            .pids
            .iter()
            .map(|(c, pid)| {
                let now = stack.pid_of(c).ok().filter(|p| process::is_alive(*p));
                match now {
                    None => Proof::new(true, format!("{c} down for {lasted:.1} s (pid {pid} gone until the heal)")),
                    Some(p) => Proof::new(false, format!("{c} running again (pid {p}) before the heal, {lasted:.1} s after the fault")),
                }
            })
            .collect(),
        _ => blocked_proofs(&f.probes, Some(lasted)),
    }
}

/// Evidence, just after the heal, that fault `f` ended: processes running again (unless a fault
/// in force, among `others`, stopped them again meanwhile), probes passing (unless a partition in
/// force may cut them too).
fn ended(stack: &LocalStack, f: &ActiveFault, others: &[ActiveFault]) -> Vec<Proof> {
    let partitions_left: Vec<usize> = others.iter().filter(|a| a.kind.is_partition()).map(|a| a.id).collect();
    let hit_again = |c: &str| others.iter().find(|a| !a.kind.is_partition() && a.components.iter().any(|x| x == c)).map(|a| a.id);
    match f.kind {
        FaultKind::Pause => f
            .pids
            .iter()
            .map(|(c, pid)| match (settle(*pid, |s| s != Some('T')), hit_again(c)) {
                (s @ Some(st), _) if st != 'T' && st != 'Z' && st != 'X' => Proof::new(true, format!("{c} (pid {pid}) running again ({})", state_name(s))),
                (s, Some(k)) => Proof::new(true, format!("{c} (pid {pid}) {} after SIGCONT, with fault #{k} in force on it", state_name(s))),
                (s, None) => Proof::new(false, format!("{c} (pid {pid}) not running after SIGCONT ({})", state_name(s))),
            })
            .collect(),
        FaultKind::Kill | FaultKind::Restart => f
            .pids
            .iter()
            .map(|(c, old)| match (stack.pid_of(c).ok().filter(|p| process::is_alive(*p)), hit_again(c)) {
                (Some(p), _) => Proof::new(true, format!("{c} running again (pid {p}, was {old})")),
                (None, Some(k)) => Proof::new(true, format!("{c} started again, then hit by fault #{k} before it served")),
                (None, None) => Proof::new(false, format!("{c} not running after the heal")),
            })
            .collect(),
        _ => run_probes(&f.probes, PROBE_PASSES_WITHIN)
            .into_iter()
            .map(|(p, r)| match r {
                r if r.reached() => Proof::new(true, format!("{} → {} passes again ({})", p.from, p.to, r.describe())),
                r if !partitions_left.is_empty() && !r.reached() => Proof::new(
                    true,
                    format!("{} → {} still {} after the heal, with partition fault #{} in force", p.from, p.to, r.describe(), partitions_left.iter().map(usize::to_string).collect::<Vec<_>>().join(", #")),
                ),
                r => Proof::new(false, format!("{} → {} does not pass after the heal: {}", p.from, p.to, r.describe())),
            })
            .collect(),
    }
}

fn apply_fault(inner: &LocalFaults, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<Applied> {
    let stack = &inner.stack;
    let mut active = ActiveFault {
        id,
        kind: f.kind,
        target: f.target.to_string(),
        components: vec![],
        paused: vec![],
        stopped: vec![],
        rules: vec![],
        pids: vec![],
        probes: vec![],
        started_us: 0,
    };
    let detail;
    let resolved;
    let applied;
    let mut evidence = Vec::new();
    match f.kind {
        FaultKind::Kill | FaultKind::Pause | FaultKind::Restart => {
            let (components, d) = resolve_processes(stack, &f.target, rng)?;
            resolved = Instant::now();
            detail = d;
            active.components = components.clone();
            active.pids = components.iter().map(|c| Ok((c.clone(), stack.pid_of(c)?))).collect::<Result<_>>()?;
            if f.kind == FaultKind::Pause {
                active.paused = active.pids.iter().map(|(_, p)| *p).collect();
            } else {
                active.stopped = components.clone();
            }
            active.started_us = now_us();
            // Journal first: a crash between the signal and the journal must not leave a fault
            // nobody knows about.
            inner.push(&active)?;
            applied = Instant::now();
            match f.kind {
                FaultKind::Pause => {
                    for pid in &active.paused {
                        unsafe {
                            libc::kill(*pid as i32, libc::SIGSTOP);
                        }
                    }
                    for (c, pid) in &active.pids {
                        evidence.push(match settle(*pid, |s| s == Some('T')) {
                            Some('T') => Proof::new(true, format!("{c} (pid {pid}) stopped (state T)")),
                            s => Proof::new(false, format!("{c} (pid {pid}) not stopped by SIGSTOP ({})", state_name(s))),
                        });
                    }
                }
                kind => {
                    // Two brokers at once: signal both before waiting for either.
                    let graceful = kind == FaultKind::Restart;
                    let handles: Vec<_> = components
                        .iter()
                        .map(|c| {
                            let stack = LocalStack::new(stack.cfg.clone());
                            let c = c.clone();
                            std::thread::spawn(move || stack.stop_component(&c, graceful, Duration::from_secs(60)))
                        })
                        .collect();
                    for h in handles {
                        h.join().map_err(|_| Error::component("nemesis", "stopping thread panicked"))??;
                    }
                    for (c, pid) in &active.pids {
                        evidence.push(if process::is_alive(*pid) {
                            Proof::new(false, format!("{c} (pid {pid}) still running after the stop ({})", state_name(process::state(*pid))))
                        } else {
                            Proof::new(true, format!("{c} (pid {pid}) gone"))
                        });
                    }
                }
            }
        }
        FaultKind::Isolate | FaultKind::Split | FaultKind::OneWay | FaultKind::CutClients => {
            let tag = tag(stack);
            let nodes = &stack.topo.nodes;
            let host = stack.topo.bridge_addr.clone().ok_or_else(|| Error::Usage("partition faults need network namespaces".into()))?;
            let ns_of = |n: u16| nodes.iter().find(|x| x.id == n).and_then(|x| x.netns.clone()).expect("node namespace");
            let ip_of = |n: u16| nodes.iter().find(|x| x.id == n).map(|x| x.host.clone()).expect("node address");
            let addr_of = |n: u16| nodes.iter().find(|x| x.id == n).map(|x| x.broker_addr()).expect("node address");
            let from_node = |n: u16| Probe { from_ns: Some(ns_of(n)), from: format!("kafka-{n}"), to: String::new() };
            let from_host = Probe { from_ns: None, from: format!("host {host}"), to: String::new() };
            let mut rules: Vec<(String, Vec<String>)> = Vec::new();
            let mut probes: Vec<Probe> = Vec::new();
            match f.kind {
                FaultKind::CutClients => {
                    resolved = Instant::now();
                    let client = match &f.target {
                        Target::Component(c) if c == "connect" => Some(Client::Connect),
                        Target::Component(c) if c == "pipeline" => Some(Client::Pipeline),
                        _ => None,
                    };
                    for n in nodes {
                        let ns = n.netns.clone().expect("node namespace");
                        match client {
                            // Everything from the host side: the harness, Connect, the pipeline.
                            None => {
                                rules.push((ns.clone(), drop_rule("INPUT", "-s", &host, &tag)));
                                rules.push((ns, drop_rule("OUTPUT", "-d", &host, &tag)));
                                probes.push(Probe { to: n.broker_addr(), ..from_host.clone() });
                            }
                            // Only the client's own listener: both directions of its connections.
                            Some(c) => {
                                let port = n.client_port(c).to_string();
                                rules.push((ns.clone(), port_drop_rule("INPUT", "--dport", &port, &tag)));
                                rules.push((ns, port_drop_rule("OUTPUT", "--sport", &port, &tag)));
                                probes.push(Probe { to: n.client_addr(c), ..from_host.clone() });
                            }
                        }
                        active.components.push(n.name.clone());
                    }
                    detail = match client {
                        None => format!("clients at {host} cut from every node"),
                        Some(c) => format!(
                            "{} cut from every node (its listener, port {})",
                            if c == Client::Connect { "kafka connect" } else { "the pipeline (join, warehouse-sink, lake-sink)" },
                            nodes.first().map_or(0, |n| n.client_port(c))
                        ),
                    };
                    if let Some(c) = client {
                        if nodes.iter().any(|n| n.client_port(c) == n.broker_port) {
                            return Err(Error::Usage(format!("cut-clients {}: the nodes have no listener of its own (namespaces needed)", f.target)));
                        }
                    }
                }
                FaultKind::OneWay => {
                    let (a, da) = resolve_node(stack, &f.target, rng)?;
                    let (b, db) = resolve_node(stack, f.to.as_ref().expect("validated"), rng)?;
                    resolved = Instant::now();
                    if a == b {
                        return Err(Error::Usage(format!("one-way: {} and {} are both node {a}", f.target, f.to.as_ref().expect("validated"))));
                    }
                    detail = [da, db, format!("node {a} → node {b} dropped")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
                    rules.push((ns_of(b), drop_rule("INPUT", "-s", &ip_of(a), &tag)));
                    probes.push(Probe { to: addr_of(b), ..from_node(a) });
                    active.components = vec![format!("kafka-{a}"), format!("kafka-{b}")];
                }
                kind => {
                    let (n, d) = resolve_node(stack, &f.target, rng)?;
                    resolved = Instant::now();
                    let ns = ns_of(n);
                    let mut peers: Vec<String> = nodes.iter().filter(|x| x.id != n).map(|x| x.host.clone()).collect();
                    probes.extend(nodes.iter().filter(|x| x.id != n).map(|x| Probe { to: x.broker_addr(), ..from_node(n) }));
                    if kind == FaultKind::Isolate {
                        peers.push(host.clone());
                        probes.push(Probe { to: addr_of(n), ..from_host.clone() });
                    }
                    detail = [d, format!("node {n} cut from {}", peers.join(", "))].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
                    for p in &peers {
                        rules.push((ns.clone(), drop_rule("INPUT", "-s", p, &tag)));
                        rules.push((ns.clone(), drop_rule("OUTPUT", "-d", p, &tag)));
                    }
                    active.components = vec![format!("kafka-{n}")];
                }
            }
            active.rules = rules.clone();
            active.probes = probes;
            active.started_us = now_us();
            inner.push(&active)?;
            applied = Instant::now();
            for (ns, rule) in &rules {
                iptables(ns, "-A", rule)?;
            }
            evidence.extend(blocked_proofs(&active.probes, None));
        }
    }
    evidence.extend(role_proof(f, &detail, resolved, applied));
    Ok(Applied { components: active.components, detail, evidence })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;

    fn spec(at: u64, kind: FaultKind, for_: u64) -> FaultSpec {
        FaultSpec { at: Dur::secs(at), kind, target: Target::RandomBroker, for_: Dur::secs(for_), to: None, after_heals: false }
    }

    #[test]
    fn events_heal_before_applying_at_the_same_instant() {
        let ev = events(&[spec(10, FaultKind::Kill, 5), spec(15, FaultKind::Pause, 5), spec(0, FaultKind::Isolate, 30)]);
        assert_eq!(
            ev,
            vec![
                (Duration::from_secs(0), 2, true),
                (Duration::from_secs(10), 0, true),
                (Duration::from_secs(15), 0, false),
                (Duration::from_secs(15), 1, true),
                (Duration::from_secs(20), 1, false),
                (Duration::from_secs(30), 2, false),
            ]
        );
    }

    fn paused_fault(pid: u32) -> ActiveFault {
        ActiveFault {
            id: 0,
            kind: FaultKind::Pause,
            target: "kafka-1".into(),
            components: vec!["kafka-1".into()],
            paused: vec![pid],
            stopped: vec![],
            rules: vec![],
            pids: vec![("kafka-1".into(), pid)],
            probes: vec![],
            started_us: now_us(),
        }
    }

    #[test]
    fn a_pause_is_proven_by_the_stopped_state_and_its_end_by_the_running_one() {
        let home = std::env::temp_dir().join(format!("cdc-chaos-nemesis-{}", std::process::id()));
        let stack = LocalStack::new(crate::config::StackConfig::default().home(&home).loopback(true));
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let f = paused_fault(child.id());
        process::signal(child.id(), libc::SIGSTOP);
        assert_eq!(settle(child.id(), |s| s == Some('T')), Some('T'));
        let held = still_in_force(&stack, &f, 3.0);
        assert_eq!((held[0].held, held[0].claim.as_str()), (true, format!("kafka-1 (pid {}) stopped for 3.0 s", child.id()).as_str()));
        process::signal(child.id(), libc::SIGCONT);
        let end = ended(&stack, &f, &[]);
        assert!(end[0].held && end[0].claim.contains("running again (state "), "{end:?}");
        // A pause that something else ended early does not count as having held.
        let early = still_in_force(&stack, &f, 3.0);
        assert!(!early[0].held && early[0].claim.contains("no longer stopped after 3.0 s (state "), "{early:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let gone = ended(&stack, &f, &[]);
        assert!(!gone[0].held && gone[0].claim.contains("not running after SIGCONT (gone)"), "{gone:?}");
    }

    #[test]
    fn a_probe_that_gets_an_answer_disproves_a_cut() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let probes = [
            Probe { from_ns: None, from: "host".into(), to: closed.to_string() },
            Probe { from_ns: None, from: "host".into(), to: listener.local_addr().unwrap().to_string() },
        ];
        let proofs = blocked_proofs(&probes, Some(2.0));
        assert_eq!(proofs.iter().map(|p| p.held).collect::<Vec<_>>(), [false, false]);
        assert_eq!(proofs[0].claim, format!("host → {closed} not blocked after 2.0 s: refused (the path is open)"));
        assert!(proofs[1].claim.ends_with("not blocked after 2.0 s: connected"), "{}", proofs[1].claim);
        let bad = blocked_proofs(&[Probe { from_ns: None, from: "host".into(), to: "nowhere".into() }], None);
        assert!(!bad[0].held && bad[0].claim.contains("could not probe: nowhere"), "{bad:?}");
    }

    #[test]
    fn a_role_is_proven_only_by_a_fresh_resolution() {
        let now = Instant::now();
        let leader = FaultSpec { target: Target::parse("leader:crm.public.customers/0").unwrap(), ..spec(0, FaultKind::Kill, 5) };
        let fresh = role_proof(&leader, "leader of crm.public.customers/0 is node 2", now, now + Duration::from_millis(40)).unwrap();
        assert_eq!((fresh.held, fresh.claim.as_str()), (true, "leader of crm.public.customers/0 is node 2 (resolved 40 ms before the fault took effect)"));
        assert!(!role_proof(&leader, "x", now, now + ROLE_FRESH + Duration::from_millis(1)).unwrap().held);
        assert_eq!(role_proof(&spec(0, FaultKind::Kill, 5), "random node 2", now, now), None, "not a role");
    }

    /// (fault, `apply` or `healed`, ms after the base).
    type Log = Arc<Mutex<Vec<(usize, &'static str, u128)>>>;

    /// Records when each fault was applied and healed; heals take `heal_takes`.
    struct Recording {
        base: Instant,
        heal_takes: Duration,
        log: Log,
        active: Mutex<Vec<usize>>,
    }

    impl Injector for Recording {
        fn apply(&self, id: usize, _: &FaultSpec, _: &mut StdRng) -> Result<Applied> {
            self.log.lock().unwrap().push((id, "apply", self.base.elapsed().as_millis()));
            self.active.lock().unwrap().push(id);
            Ok(Applied { components: vec!["connect".into()], detail: String::new(), evidence: vec![Proof::new(true, "connect (pid 1) gone")] })
        }
        fn heal(&self, id: usize) -> Option<Healed> {
            self.active.lock().unwrap().retain(|a| *a != id);
            std::thread::sleep(self.heal_takes);
            self.log.lock().unwrap().push((id, "healed", self.base.elapsed().as_millis()));
            Some(Healed { components: vec!["connect".into()], errors: vec![], evidence: vec![] })
        }
        fn in_force(&self) -> Vec<usize> {
            self.active.lock().unwrap().clone()
        }
    }

    fn ms(at: u64, for_: u64) -> FaultSpec {
        FaultSpec { at: Dur(Duration::from_millis(at)), kind: FaultKind::Kill, target: Target::Component("connect".into()), for_: Dur(Duration::from_millis(for_)), to: None, after_heals: false }
    }

    #[test]
    fn a_slow_heal_does_not_hold_back_the_next_fault_and_faults_after_the_load_are_recorded_unapplied() {
        let dir = std::env::temp_dir().join(format!("cdc-chaos-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let injector = Recording { base, heal_takes: Duration::from_millis(800), log: log.clone(), active: Mutex::new(vec![]) };
        // Fault 0 heals at 100 ms (taking 800 ms), fault 1 is due at 300 ms, fault 2 long after
        // the load.
        let n = Nemesis::start(Box::new(injector), vec![ms(0, 100), ms(300, 100), ms(60_000, 100)], &dir, base, 1).unwrap();
        std::thread::sleep(Duration::from_millis(1_200));
        n.finish().unwrap();
        let log = log.lock().unwrap().clone();
        let at = |id: usize, what: &str| log.iter().find(|e| e.0 == id && e.1 == what).map(|e| e.2).unwrap_or_else(|| panic!("{id} {what}: {log:?}"));
        assert!(at(1, "apply") < 700, "fault 1 applied on time while fault 0 healed: {log:?}");
        assert!(at(0, "healed") >= 900 && at(1, "healed") >= 1_200, "{log:?}");
        assert!(log.iter().all(|e| e.0 != 2), "fault 2 never applied: {log:?}");
        let records = crate::faults::read(&dir.join("faults.jsonl")).unwrap();
        let events: Vec<(usize, &str)> = records.iter().map(|r| (r.id, r.event.as_str())).collect();
        assert_eq!(events.iter().filter(|e| e.1 == "heal").count(), 2, "{events:?}");
        let unapplied = records.iter().find(|r| r.id == 2).unwrap();
        assert_eq!((unapplied.event.as_str(), unapplied.detail.as_str()), ("error", "the load ended before it was due at 60.0 s"));
        assert_eq!(crate::faults::unproven(&records), vec!["fault #2 kill connect was not applied: the load ended before it was due at 60.0 s"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_after_heals_fault_waits_for_the_slow_heal_and_shifts_the_rest_of_the_timeline() {
        let dir = std::env::temp_dir().join(format!("cdc-chaos-after-heals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let injector = Recording { base, heal_takes: Duration::from_millis(800), log: log.clone(), active: Mutex::new(vec![]) };
        // Fault 0 heals at 100 ms and takes 800 ms; fault 1 (at 300 ms) waits for it; fault 2 is
        // due 200 ms after fault 1 on the schedule.
        let waits = FaultSpec { after_heals: true, ..ms(300, 100) };
        let n = Nemesis::start(Box::new(injector), vec![ms(0, 100), waits, ms(500, 50)], &dir, base, 1).unwrap();
        std::thread::sleep(Duration::from_millis(3_500));
        n.finish().unwrap();
        let log = log.lock().unwrap().clone();
        let at = |id: usize, what: &str| log.iter().find(|e| e.0 == id && e.1 == what).map(|e| e.2).unwrap_or_else(|| panic!("{id} {what}: {log:?}"));
        assert!(at(1, "apply") >= at(0, "healed"), "fault 1 waited for fault 0's heal: {log:?}");
        // Fault 1 still lasts its 100 ms, and fault 2 keeps its 200 ms distance from fault 1.
        assert!(at(1, "healed") >= at(1, "apply") + 100 + 800, "{log:?}");
        assert!(at(2, "apply") >= at(1, "apply") + 200, "{log:?}");
        let records = crate::faults::read(&dir.join("faults.jsonl")).unwrap();
        let start = records.iter().find(|r| r.id == 1 && r.event == "start").unwrap();
        assert!(start.detail.contains("s late, once the heals before it had finished"), "{}", start.detail);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rules_are_tagged_drops() {
        assert_eq!(
            drop_rule("INPUT", "-s", "10.231.0.12", "cdc-chaos:cdcc:fault"),
            ["INPUT", "-s", "10.231.0.12", "-j", "DROP", "-m", "comment", "--comment", "cdc-chaos:cdcc:fault"].map(String::from).to_vec()
        );
    }

    #[test]
    fn journal_round_trips() {
        let f = ActiveFault {
            id: 3,
            kind: FaultKind::Isolate,
            target: "controller".into(),
            components: vec!["kafka-2".into()],
            paused: vec![],
            stopped: vec![],
            rules: vec![("cdcc-kafka-2".into(), drop_rule("INPUT", "-s", "10.231.0.11", "t"))],
            pids: vec![],
            probes: vec![Probe { from_ns: Some("cdcc-kafka-2".into()), from: "kafka-2".into(), to: "10.231.0.11:9092".into() }],
            started_us: 7,
        };
        let text = serde_json::to_string(&vec![f.clone()]).unwrap();
        assert_eq!(serde_json::from_str::<Vec<ActiveFault>>(&text).unwrap(), vec![f]);
    }
}
