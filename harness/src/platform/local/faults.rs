//! Faults on the local stack: SIGKILL and restart, SIGSTOP and SIGCONT, graceful restart, and
//! network partitions made of iptables DROP rules inside the Kafka nodes' namespaces (isolate a
//! node, majority/minority split, one-way, clients cut from the cluster). Role targets
//! (partition leader, active controller, transaction coordinator, random node) are resolved when
//! the fault starts, and the node it hit is recorded.
//!
//! Heal guarantee: every active fault is journaled in `<home>/faults-active.json` before it is
//! applied, and removed only once healed ([`heal_journal`] heals what a crashed run left).
//! Evidence ([`crate::faults`]): the pid gone or in state `T` (and still so at the heal, after
//! how long), a TCP probe across every cut getting no answer (and connecting again after the
//! heal).

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cdc_pipeline::record::now_us;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::roles;
use super::LocalStack;
use crate::faults::Proof;
use crate::nemesis::journal::Journal;
use crate::nemesis::plan::{kafka, plan, Action, Cut, Roles, SeededRoles};
use crate::nemesis::role_proof;
use crate::platform::stack::{Applied, Healed, Injector};
use crate::platform::netns::Reach;
use crate::platform::{netns, process, Client};
use crate::scenario::{FaultKind, FaultSpec, Target};
use crate::{Error, Result};

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

/// The local stack's journal of faults in force.
fn journal(stack: &LocalStack) -> Journal<ActiveFault> {
    Journal::at(stack.layout.home.join("faults-active.json"))
}

/// How to heal the local stack's faults without their journal.
fn heal_by_hand(stack: &LocalStack) -> String {
    format!(
        "delete the iptables rules commented {} in each Kafka node's namespace (`ip netns exec <namespace> iptables -S`), send SIGCONT to every stopped process of the stack (state T in `ps -eo pid,stat,args`), and restart what is down (`cdc-chaos up`)",
        tag(stack)
    )
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
    let journal = journal(stack);
    let faults = journal.load(&heal_by_hand(stack))?;
    let mut healed = Vec::new();
    let mut errors = Vec::new();
    for f in &faults {
        errors.extend(heal(stack, f, restart));
        healed.push(format!("{} {}", f.kind.as_str(), f.components.join("+")));
    }
    if !faults.is_empty() {
        journal.save(&[])?;
    }
    if errors.is_empty() {
        Ok(healed)
    } else {
        Err(Error::component("nemesis", format!("healing {}: {}", healed.join(", "), errors.join("; "))))
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
            return Err(Error::Fault(
                "partition faults need the Kafka nodes in network namespaces (root, without --loopback)".into(),
            ));
        }
        Ok(LocalFaults { stack, active: Mutex::new(Vec::new()) })
    }

    fn write_journal(&self) -> Result<()> {
        journal(&self.stack).save(&self.active.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Journals `active` as in force, before it is applied.
    fn push(&self, active: &ActiveFault) -> Result<()> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).push(active.clone());
        self.write_journal()
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
        if let Err(e) = self.write_journal() {
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

/// Role targets resolved on the local stack when the fault starts, the rest drawn from the seed.
struct LocalRoles<'a> {
    stack: &'a LocalStack,
    seeded: SeededRoles,
}

impl Roles for LocalRoles<'_> {
    fn node(&mut self, target: &Target) -> Result<(u16, String)> {
        if target.is_role() {
            let n = roles::resolve(self.stack, target)?;
            return Ok((n, crate::platform::roles::describe(target, n)));
        }
        self.seeded.node(target)
    }
}

fn tag(stack: &LocalStack) -> String {
    format!("{}:fault", netns::rule_tag(&stack.cfg.net_prefix))
}

/// Drops TCP packets to (`--dport`) or from (`--sport`) `port`.
fn port_drop_rule(chain: &str, flag: &str, port: &str, tag: &str) -> Vec<String> {
    [chain, "-p", "tcp", flag, port, "-j", "DROP", "-m", "comment", "--comment", tag].iter().map(|s| s.to_string()).collect()
}

fn drop_rule(chain: &str, flag: &str, addr: &str, tag: &str) -> Vec<String> {
    [chain, flag, addr, "-j", "DROP", "-m", "comment", "--comment", tag].iter().map(|s| s.to_string()).collect()
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
    let nodes: Vec<u16> = stack.topo.nodes.iter().map(|n| n.id).collect();
    let seeded = SeededRoles { nodes: nodes.clone(), rng: StdRng::seed_from_u64(rng.random()) };
    let plan = plan(f, &nodes, &mut LocalRoles { stack, seeded })?;
    let resolved = Instant::now();
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
    let applied;
    let mut evidence = Vec::new();
    match &plan.action {
        Action::Processes(components) => {
            detail = plan.detail("");
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
        Action::Partition(cut) => {
            let tag = tag(stack);
            let nodes = &stack.topo.nodes;
            let host = stack.topo.bridge_addr.clone().ok_or_else(|| Error::Fault("partition faults need network namespaces".into()))?;
            let ns_of = |n: u16| nodes.iter().find(|x| x.id == n).and_then(|x| x.netns.clone()).expect("node namespace");
            let ip_of = |n: u16| nodes.iter().find(|x| x.id == n).map(|x| x.host.clone()).expect("node address");
            let addr_of = |n: u16| nodes.iter().find(|x| x.id == n).map(|x| x.broker_addr()).expect("node address");
            let from_node = |n: u16| Probe { from_ns: Some(ns_of(n)), from: format!("kafka-{n}"), to: String::new() };
            let from_host = Probe { from_ns: None, from: format!("host {host}"), to: String::new() };
            let mut rules: Vec<(String, Vec<String>)> = Vec::new();
            let mut probes: Vec<Probe> = Vec::new();
            match cut {
                Cut::Clients { nodes: cut_nodes, client } => {
                    if let Some(c) = client {
                        if nodes.iter().any(|n| n.client_port(*c) == n.broker_port) {
                            return Err(Error::Fault(format!("cut-clients {}: the nodes have no listener of its own (namespaces needed)", f.target)));
                        }
                    }
                    for n in nodes.iter().filter(|n| cut_nodes.contains(&n.id)) {
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
                                let port = n.client_port(*c).to_string();
                                rules.push((ns.clone(), port_drop_rule("INPUT", "--dport", &port, &tag)));
                                rules.push((ns, port_drop_rule("OUTPUT", "--sport", &port, &tag)));
                                probes.push(Probe { to: n.client_addr(*c), ..from_host.clone() });
                            }
                        }
                        active.components.push(n.name.clone());
                    }
                    detail = plan.detail(&match client {
                        None => format!("clients at {host} cut from every node"),
                        Some(c) => format!(
                            "{} cut from every node (its listener, port {})",
                            if *c == Client::Connect { "kafka connect" } else { "the pipeline (join, warehouse-sink, lake-sink)" },
                            nodes.first().map_or(0, |n| n.client_port(*c))
                        ),
                    });
                }
                Cut::OneWay { from: a, to: b } => {
                    detail = plan.detail(&format!("node {a} → node {b} dropped"));
                    rules.push((ns_of(*b), drop_rule("INPUT", "-s", &ip_of(*a), &tag)));
                    probes.push(Probe { to: addr_of(*b), ..from_node(*a) });
                    active.components = vec![kafka(*a), kafka(*b)];
                }
                Cut::Node { node: n, peers, clients } => {
                    let ns = ns_of(*n);
                    let mut cut_from: Vec<String> = peers.iter().map(|p| ip_of(*p)).collect();
                    probes.extend(peers.iter().map(|p| Probe { to: addr_of(*p), ..from_node(*n) }));
                    if *clients {
                        cut_from.push(host.clone());
                        probes.push(Probe { to: addr_of(*n), ..from_host.clone() });
                    }
                    detail = plan.detail(&format!("node {n} cut from {}", cut_from.join(", ")));
                    for p in &cut_from {
                        rules.push((ns.clone(), drop_rule("INPUT", "-s", p, &tag)));
                        rules.push((ns.clone(), drop_rule("OUTPUT", "-d", p, &tag)));
                    }
                    active.components = vec![kafka(*n)];
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
    fn the_plans_component_names_are_the_local_stacks() {
        use crate::platform::pipeline;
        assert_eq!(crate::nemesis::plan::PIPELINE, [pipeline::JOIN, pipeline::SINK, pipeline::LAKE_SINK]);
        let topo = crate::platform::Topology::new(&crate::StackConfig::default());
        assert!(topo.nodes.iter().all(|n| n.name == kafka(n.id)), "{:?}", topo.nodes);
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
