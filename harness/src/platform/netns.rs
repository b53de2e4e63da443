//! Network namespaces for Kafka nodes: one namespace per node, each joined to a bridge in the root
//! namespace by a veth pair, so that faults can cut links between nodes with iptables.
//!
//! Owns creating and removing namespaces, links and the harness's iptables rules (tagged with the
//! comment `cdc-chaos:<prefix>`). It never touches a namespace, link or rule it did not make: every name
//! starts with the configured prefix, and every rule carries the tag.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::platform::process::run;
use crate::platform::state::StackState;
use crate::platform::Topology;
use crate::progress;

/// The comment on every iptables rule the harness adds for the stack whose names start with
/// `prefix`: stacks with different prefixes never remove each other's rules.
pub fn rule_tag(prefix: &str) -> String {
    format!("cdc-chaos:{prefix}")
}

fn ip(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run(cmd)
}

/// Veth end in the root namespace for node `id`.
fn host_veth(prefix: &str, id: u16) -> String {
    format!("{prefix}-v{id}")
}

/// Creates the bridge and one namespace per node. Each object is recorded in `state` (and saved
/// through `save`) before it is made, so that a crash midway leaves nothing `down` cannot find.
pub fn setup(
    topo: &Topology,
    prefix: &str,
    state: &mut StackState,
    save: &mut dyn FnMut(&StackState) -> Result<()>,
) -> Result<()> {
    let (Some(bridge), Some(bridge_addr)) = (&topo.bridge, &topo.bridge_addr) else {
        return Ok(());
    };
    progress::note(&format!("bridge {bridge} {bridge_addr}/24, {} namespaces", topo.nodes.len()));
    if !link_exists(bridge) {
        state.links.push(bridge.clone());
        save(state)?;
        ip(&["link", "add", bridge, "type", "bridge"])?;
    }
    ip(&["addr", "replace", &format!("{bridge_addr}/24"), "dev", bridge])?;
    ip(&["link", "set", bridge, "up"])?;
    for node in &topo.nodes {
        let ns = node.netns.as_deref().expect("namespaced topology");
        let veth = host_veth(prefix, node.id);
        if !namespace_exists(ns) {
            state.namespaces.push(ns.to_string());
            save(state)?;
            ip(&["netns", "add", ns])?;
        }
        write_netns_etc(ns, &node.host, &node.name)?;
        if !link_exists(&veth) {
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
        }
        ip(&["link", "set", &veth, "master", bridge, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&["-n", ns, "addr", "replace", &format!("{}/24", node.host), "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", ns, "route", "replace", "default", "via", bridge_addr])?;
    }
    allow_bridge_forwarding(bridge, &rule_tag(prefix), state, save)?;
    Ok(())
}

/// `ip netns exec` bind-mounts `/etc/netns/<ns>/*` over `/etc`: give each namespace a hosts file
/// and a resolver that answers at once, since the host's name server is unreachable from inside and
/// every lookup (the JVM makes several at start-up) would otherwise hang for its full timeout.
fn write_netns_etc(ns: &str, host: &str, name: &str) -> Result<()> {
    let dir = std::path::Path::new("/etc/netns").join(ns);
    crate::platform::write_file(&dir.join("hosts"), &format!("127.0.0.1 localhost\n{host} {name} {ns}\n"))?;
    crate::platform::write_file(&dir.join("resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
}

/// With `br_netfilter` loaded, bridged frames traverse the root namespace's FORWARD chain, whose
/// policy may be DROP (Docker sets it so). Accept traffic between the harness's own ports.
fn allow_bridge_forwarding(
    bridge: &str,
    tag: &str,
    state: &mut StackState,
    save: &mut dyn FnMut(&StackState) -> Result<()>,
) -> Result<()> {
    let bridged = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .map(|v| v.trim() == "1")
        .unwrap_or(false);
    if !bridged {
        return Ok(());
    }
    let rule: Vec<String> = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT", "-m", "comment", "--comment", tag]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !state.iptables.contains(&rule) {
        state.iptables.push(rule.clone());
        save(state)?;
        let mut cmd = Command::new("iptables");
        cmd.arg("-I").args(&rule);
        run(cmd)?;
    }
    Ok(())
}

/// Removes every namespace, link and root-namespace iptables rule in `state`, and any leftover
/// object carrying the prefix or tag (from a state file that was lost). Errors are collected, not
/// fatal: as much as possible is removed.
pub fn teardown(prefix: &str, state: &mut StackState) -> Vec<String> {
    let mut errors = Vec::new();
    for rule in std::mem::take(&mut state.iptables) {
        let mut cmd = Command::new("iptables");
        cmd.arg("-D").args(&rule);
        if let Err(e) = run(cmd) {
            if !e.to_string().contains("does a matching rule exist") && !e.to_string().contains("Bad rule") {
                errors.push(e.to_string());
            }
        }
    }
    errors.extend(remove_tagged_rules(&rule_tag(prefix)));
    let mut namespaces = std::mem::take(&mut state.namespaces);
    namespaces.extend(list_namespaces().into_iter().filter(|n| n.starts_with(&format!("{prefix}-"))));
    namespaces.sort();
    namespaces.dedup();
    for ns in namespaces {
        if namespace_exists(&ns) {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                errors.push(e.to_string());
            }
        }
        let etc = std::path::Path::new("/etc/netns").join(&ns);
        if etc.exists() {
            if let Err(e) = std::fs::remove_dir_all(&etc) {
                errors.push(format!("removing {}: {e}", etc.display()));
            }
        }
    }
    // Veth ends in the root namespace go with their namespace, but not always at once.
    for link in list_links().into_iter().filter(|l| l.starts_with(&format!("{prefix}-v"))) {
        let _ = ip(&["link", "del", &link]);
    }
    let mut links = std::mem::take(&mut state.links);
    links.extend(list_links().into_iter().filter(|l| l.starts_with(&format!("{prefix}-"))));
    links.sort();
    links.dedup();
    for link in links {
        if link_exists(&link) {
            if let Err(e) = ip(&["link", "del", &link]) {
                errors.push(e.to_string());
            }
        }
    }
    errors
}

/// Deletes every rule tagged `tag` from the root namespace's filter table.
fn remove_tagged_rules(tag: &str) -> Vec<String> {
    let Ok(dump) = iptables_save() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for line in tagged_rules(&dump, tag) {
        let mut cmd = Command::new("iptables");
        cmd.arg("-D").args(shell_split(&line));
        if let Err(e) = run(cmd) {
            errors.push(e.to_string());
        }
    }
    errors
}

/// The root namespace's filter table, as `iptables-save` prints it.
fn iptables_save() -> Result<String> {
    let mut cmd = Command::new("iptables-save");
    cmd.args(["-t", "filter"]);
    run(cmd)
}

/// The `-A ...` lines of an `iptables-save` dump that carry `tag`, without the `-A`.
pub fn tagged_rules(dump: &str, tag: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| l.starts_with("-A ") && l.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w[0] == "--comment" && w[1].trim_matches('"') == tag))
        .map(|l| l[3..].to_string())
        .collect()
}

/// Splits an iptables-save rule into arguments (it quotes only comments with spaces).
fn shell_split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn list_namespaces() -> Vec<String> {
    ip(&["netns", "list"])
        .map(|out| out.lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect())
        .unwrap_or_default()
}

fn list_links() -> Vec<String> {
    ip(&["-o", "link", "show"])
        .map(|out| {
            out.lines()
                .filter_map(|l| l.split(':').nth(1))
                .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub fn namespace_exists(ns: &str) -> bool {
    list_namespaces().iter().any(|n| n == ns)
}

fn link_exists(link: &str) -> bool {
    let mut cmd = Command::new("ip");
    cmd.args(["link", "show", link]);
    run(cmd).is_ok()
}

/// Names of leftover namespaces, links and tagged rules: empty when the host is clean.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(|n| format!("namespace {n}"))
        .collect();
    out.extend(list_links().into_iter().filter(|l| l.starts_with(&format!("{prefix}-"))).map(|l| format!("link {l}")));
    if let Ok(dump) = iptables_save() {
        out.extend(tagged_rules(&dump, &rule_tag(prefix)).into_iter().map(|r| format!("iptables rule {r}")));
    }
    if let Ok(entries) = std::fs::read_dir("/etc/netns") {
        out.extend(
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .filter(|n| n.starts_with(&format!("{prefix}-")))
                .map(|n| format!("/etc/netns/{n}")),
        );
    }
    out
}

/// What a TCP connection attempt met on its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The peer accepted the connection.
    Connected,
    /// The peer's host answered with a reset: nothing listens there, but the path is open.
    Refused,
    /// No answer within the timeout, or a local rule refused to send: the packets were dropped.
    Blocked,
    /// The attempt could not be made (no such namespace, no route, ...).
    Failed(String),
}

impl Reach {
    /// Whether packets got across (connected or refused).
    pub fn reached(&self) -> bool {
        matches!(self, Reach::Connected | Reach::Refused)
    }

    pub fn describe(&self) -> String {
        match self {
            Reach::Connected => "connected".into(),
            Reach::Refused => "refused (the path is open)".into(),
            Reach::Blocked => "no answer".into(),
            Reach::Failed(e) => format!("could not probe: {e}"),
        }
    }
}

/// Tries a TCP connection to `to` from inside network namespace `from` (the root namespace when
/// `None`) for at most `timeout`, and closes it at once.
pub fn probe(from: Option<&str>, to: SocketAddr, timeout: Duration) -> Reach {
    probe_all(&[(from, to)], timeout).remove(0)
}

/// [`probe`] for each of `targets` at once, each on a thread of its own (entering a network
/// namespace changes only the calling thread's), in order.
pub fn probe_all(targets: &[(Option<&str>, SocketAddr)], timeout: Duration) -> Vec<Reach> {
    let attempt = |from: Option<String>, to: SocketAddr| {
        move || -> Reach {
            if let Some(ns) = &from {
                let path = format!("/run/netns/{ns}");
                let file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) => return Reach::Failed(format!("{path}: {e}")),
                };
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Reach::Failed(format!("entering namespace {ns}: {}", std::io::Error::last_os_error()));
                }
            }
            match TcpStream::connect_timeout(&to, timeout) {
                Ok(_) => Reach::Connected,
                Err(e) => match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => Reach::Refused,
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock | std::io::ErrorKind::PermissionDenied => Reach::Blocked,
                    _ => Reach::Failed(e.to_string()),
                },
            }
        }
    };
    let threads: Vec<_> = targets
        .iter()
        .map(|(from, to)| std::thread::Builder::new().name("probe".into()).spawn(attempt(from.map(str::to_string), *to)))
        .collect();
    threads
        .into_iter()
        .map(|t| match t {
            Ok(t) => t.join().unwrap_or_else(|_| Reach::Failed("the probe thread panicked".into())),
            Err(e) => Reach::Failed(format!("starting the probe thread: {e}")),
        })
        .collect()
}

/// Checks that namespaces can be used here: root (or CAP_NET_ADMIN), `ip` and `iptables`.
pub fn check_available() -> Result<()> {
    if !crate::config::is_root() {
        return Err(Error::Missing {
            what: "root privileges for network namespaces".into(),
            remedy: "run as root (or with CAP_NET_ADMIN), or pass --loopback (partition faults are then unavailable)".into(),
        });
    }
    for tool in ["ip", "iptables", "iptables-save"] {
        if !crate::platform::process::on_path(tool) {
            return Err(Error::Missing {
                what: format!("`{tool}`"),
                remedy: "apt-get install -y iproute2 iptables".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_tagged_rules() {
        let dump = "*filter\n:INPUT ACCEPT [0:0]\n-A FORWARD -i cdcc-br0 -o cdcc-br0 -m comment --comment cdc-chaos:cdcc -j ACCEPT\n-A FORWARD -i cdce-br0 -m comment --comment cdc-chaos:cdce -j ACCEPT\n-A FORWARD -j DOCKER\nCOMMIT\n";
        assert_eq!(tagged_rules(dump, &rule_tag("cdcc")), vec!["FORWARD -i cdcc-br0 -o cdcc-br0 -m comment --comment cdc-chaos:cdcc -j ACCEPT"]);
    }

    #[test]
    fn splits_quoted_comments() {
        assert_eq!(shell_split("INPUT -m comment --comment \"a b\" -j DROP"), vec!["INPUT", "-m", "comment", "--comment", "a b", "-j", "DROP"]);
    }
    /// Runs `f` on a thread inside namespace `ns`.
    fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        std::thread::spawn(move || {
            assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            f()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_probe_is_blocked_by_a_drop_rule_and_passes_without_it() {
        if !crate::config::is_root() || !crate::platform::process::on_path("iptables") {
            eprintln!("skipped: needs root and iptables for a namespace of its own");
            return;
        }
        let ns = format!("cdcct-probe-{}", std::process::id());
        let _ = ip(&["netns", "del", &ns]);
        ip(&["netns", "add", &ns]).unwrap();
        ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]).unwrap();
        let listener = in_namespace(&ns, || std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let open: SocketAddr = listener.local_addr().unwrap();
        let closed = in_namespace(&ns, || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap());
        let t = Duration::from_millis(500);
        let rule = ["OUTPUT", "-p", "tcp", "--dport", &open.port().to_string(), "-j", "DROP"];
        let run = || {
            let before = probe(Some(&ns), open, t);
            let refused = probe(Some(&ns), closed, t);
            ip(&[&["netns", "exec", &ns, "iptables", "-w", "-A"][..], &rule[..]].concat()).unwrap();
            let cut = probe(Some(&ns), open, t);
            ip(&[&["netns", "exec", &ns, "iptables", "-w", "-D"][..], &rule[..]].concat()).unwrap();
            let healed = probe(Some(&ns), open, t);
            // The root namespace has no such listener: the same address there is not the same path.
            (before, refused, cut, healed, probe(Some("cdcct-no-such-namespace"), open, t))
        };
        let outcome = run();
        drop(listener);
        ip(&["netns", "del", &ns]).unwrap();
        let (before, refused, cut, healed, missing) = outcome;
        assert_eq!(before, Reach::Connected);
        assert_eq!(refused, Reach::Refused);
        assert!(refused.reached());
        assert_eq!(cut, Reach::Blocked);
        assert!(!cut.reached());
        assert_eq!(healed, Reach::Connected);
        assert!(matches!(&missing, Reach::Failed(e) if e.contains("cdcct-no-such-namespace")), "{missing:?}");
    }
}
