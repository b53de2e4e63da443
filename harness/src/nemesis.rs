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
//! and `cdc-chaos down`. Each fault's start and heal are appended to the run's `faults.jsonl`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdc_pipeline::record::now_us;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::platform::local::LocalStack;
use crate::platform::{netns, pipeline, roles, Client};
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
}

/// One line of `faults.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaultRecord {
    pub id: usize,
    /// `start`, `heal`, or `error` (the fault could not be applied).
    pub event: String,
    pub kind: FaultKind,
    pub target: String,
    pub components: Vec<String>,
    /// How a role target was resolved, e.g. "leader of crm.public.customers/0 is node 2".
    pub detail: String,
    pub time_us: i64,
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
    /// Applies `f` as fault `id` now. Returns the components it hit and how its target was
    /// resolved.
    fn apply(&self, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<(Vec<String>, String)>;
    /// Heals fault `id` if it is in force: the components it hit and the errors of healing.
    fn heal(&self, id: usize) -> Option<(Vec<String>, Vec<String>)>;
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

    fn record_event(&self, id: usize, event: &str, components: Vec<String>, detail: String) {
        let f = &self.schedule[id];
        self.record(&FaultRecord { id, event: event.into(), kind: f.kind, target: f.target.to_string(), components, detail, time_us: now_us() });
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
    fn apply(&self, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<(Vec<String>, String)> {
        apply_fault(self, id, f, rng)
    }

    fn heal(&self, id: usize) -> Option<(Vec<String>, Vec<String>)> {
        let taken = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            active.iter().position(|a| a.id == id).map(|p| active.remove(p))
        }?;
        let mut errors = heal(&self.stack, &taken, true);
        if let Err(e) = self.journal() {
            errors.push(e.to_string());
        }
        Some((taken.components, errors))
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
        let inner = Arc::new(Inner { injector, schedule, record: Mutex::new(file), record_path });
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
        let mut errors = Vec::new();
        for id in self.inner.injector.in_force().into_iter().rev() {
            if let Some((components, e)) = self.inner.injector.heal(id) {
                errors.extend(e);
                self.inner.record_event(id, "heal", components, "end of the load".into());
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

fn timeline(inner: &Inner, base: Instant, seed: u64, stop: &AtomicBool) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7461_7267_6574);
    for (at, i, apply) in events(&inner.schedule) {
        while Instant::now() < base + at {
            if stop.load(Ordering::SeqCst) || INTERRUPTED.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep((base + at).saturating_duration_since(Instant::now()).min(Duration::from_millis(200)));
        }
        if apply {
            match inner.injector.apply(i, &inner.schedule[i], &mut rng) {
                Ok((components, detail)) => inner.record_event(i, "start", components, detail),
                Err(e) => inner.record_event(i, "error", vec![], e.to_string()),
            }
        } else if let Some((components, errors)) = inner.injector.heal(i) {
            inner.record_event(i, "heal", components, errors.join("; "));
        }
    }
}

fn apply_fault(inner: &LocalFaults, id: usize, f: &FaultSpec, rng: &mut StdRng) -> Result<(Vec<String>, String)> {
    let stack = &inner.stack;
    let mut active = ActiveFault { id, kind: f.kind, target: f.target.to_string(), components: vec![], paused: vec![], stopped: vec![], rules: vec![] };
    let detail;
    match f.kind {
        FaultKind::Kill | FaultKind::Pause | FaultKind::Restart => {
            let (components, d) = resolve_processes(stack, &f.target, rng)?;
            detail = d;
            active.components = components.clone();
            if f.kind == FaultKind::Pause {
                active.paused = components.iter().map(|c| stack.pid_of(c)).collect::<Result<_>>()?;
            } else {
                active.stopped = components.clone();
            }
            // Journal first: a crash between the signal and the journal must not leave a fault
            // nobody knows about.
            inner.push(&active)?;
            match f.kind {
                FaultKind::Pause => {
                    for pid in &active.paused {
                        unsafe {
                            libc::kill(*pid as i32, libc::SIGSTOP);
                        }
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
                }
            }
        }
        FaultKind::Isolate | FaultKind::Split | FaultKind::OneWay | FaultKind::CutClients => {
            let tag = tag(stack);
            let nodes = &stack.topo.nodes;
            let host = stack.topo.bridge_addr.clone().ok_or_else(|| Error::Usage("partition faults need network namespaces".into()))?;
            let ns_of = |n: u16| nodes.iter().find(|x| x.id == n).and_then(|x| x.netns.clone()).expect("node namespace");
            let ip_of = |n: u16| nodes.iter().find(|x| x.id == n).map(|x| x.host.clone()).expect("node address");
            let mut rules: Vec<(String, Vec<String>)> = Vec::new();
            match f.kind {
                FaultKind::CutClients => {
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
                            }
                            // Only the client's own listener: both directions of its connections.
                            Some(c) => {
                                let port = n.client_port(c).to_string();
                                rules.push((ns.clone(), port_drop_rule("INPUT", "--dport", &port, &tag)));
                                rules.push((ns, port_drop_rule("OUTPUT", "--sport", &port, &tag)));
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
                    if a == b {
                        return Err(Error::Usage(format!("one-way: {} and {} are both node {a}", f.target, f.to.as_ref().expect("validated"))));
                    }
                    detail = [da, db, format!("node {a} → node {b} dropped")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
                    rules.push((ns_of(b), drop_rule("INPUT", "-s", &ip_of(a), &tag)));
                    active.components = vec![format!("kafka-{a}"), format!("kafka-{b}")];
                }
                kind => {
                    let (n, d) = resolve_node(stack, &f.target, rng)?;
                    let ns = ns_of(n);
                    let mut peers: Vec<String> = nodes.iter().filter(|x| x.id != n).map(|x| x.host.clone()).collect();
                    if kind == FaultKind::Isolate {
                        peers.push(host.clone());
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
            inner.push(&active)?;
            for (ns, rule) in &rules {
                iptables(ns, "-A", rule)?;
            }
        }
    }
    Ok((active.components, detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;

    fn spec(at: u64, kind: FaultKind, for_: u64) -> FaultSpec {
        FaultSpec { at: Dur::secs(at), kind, target: Target::RandomBroker, for_: Dur::secs(for_), to: None }
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
        };
        let text = serde_json::to_string(&vec![f.clone()]).unwrap();
        assert_eq!(serde_json::from_str::<Vec<ActiveFault>>(&text).unwrap(), vec![f]);
    }
}
