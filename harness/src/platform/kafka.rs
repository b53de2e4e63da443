//! Apache Kafka nodes in KRaft combined mode (broker + controller), started from the Maven Central
//! jars: rendering `server.properties` from the profile, formatting storage, starting the JVM,
//! waiting until every broker is registered and the controller quorum has a leader (or, after a
//! restart, until one node has rejoined), and running Kafka's own command-line tools.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::config::StackConfig;
use crate::error::{Error, Result};
use crate::platform::process::{self, run};
use crate::platform::{jvm, write_file, KafkaNode, Layout, Topology};
use crate::profile::Profile;
use crate::properties::{self, Properties};

/// Main class of a Kafka server.
const KAFKA_MAIN: &str = "kafka.Kafka";
/// Kafka's storage tool (`kafka-storage.sh`).
const STORAGE_TOOL: &str = "kafka.tools.StorageTool";
/// Kafka's metadata quorum tool (`kafka-metadata-quorum.sh`).
pub const QUORUM_TOOL: &str = "org.apache.kafka.tools.MetadataQuorumCommand";
/// Kafka's transactions tool (`kafka-transactions.sh`).
pub const TRANSACTIONS_TOOL: &str = "org.apache.kafka.tools.TransactionsCommand";

/// `server.properties` of `node`: the node's identity and listeners, then the profile's `[broker]`
/// settings (which win on conflict, so a profile can tune anything).
pub fn server_properties(profile: &Profile, topo: &Topology, node: &KafkaNode, log_dir: &str) -> Properties {
    let mut p = Properties::new();
    let set = |p: &mut Properties, k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    set(&mut p, "process.roles", "broker,controller".into());
    set(&mut p, "node.id", node.id.to_string());
    set(&mut p, "controller.quorum.voters", topo.quorum_voters());
    // A listener per kind of client (where the node has its own address), so that a fault can
    // cut Kafka Connect or the pipeline alone by port; metadata answers each client with the
    // addresses of the listener it came in on.
    let mut advertised = vec![format!("PLAINTEXT://{}", node.broker_addr())];
    for (name, port) in [("CONNECT", node.connect_port), ("PIPELINE", node.pipeline_port)] {
        if let Some(port) = port {
            advertised.push(format!("{name}://{}:{port}", node.host));
        }
    }
    let names: Vec<&str> = advertised.iter().filter_map(|l| l.split("://").next()).collect();
    let protocols: Vec<String> = ["CONTROLLER"].into_iter().chain(names.iter().copied()).map(|n| format!("{n}:PLAINTEXT")).collect();
    set(&mut p, "listeners", format!("{},CONTROLLER://{}", advertised.join(","), node.controller_addr()));
    set(&mut p, "advertised.listeners", advertised.join(","));
    set(&mut p, "controller.listener.names", "CONTROLLER".into());
    set(&mut p, "inter.broker.listener.name", "PLAINTEXT".into());
    set(&mut p, "listener.security.protocol.map", protocols.join(","));
    set(&mut p, "log.dirs", log_dir.into());
    set(&mut p, "num.partitions", profile.partitions.to_string());
    // Small thread pools: three nodes, Connect and the databases share two cores.
    set(&mut p, "num.network.threads", "2".into());
    set(&mut p, "num.io.threads", "2".into());
    set(&mut p, "num.replica.fetchers", "1".into());
    set(&mut p, "background.threads", "2".into());
    set(&mut p, "group.initial.rebalance.delay.ms", "0".into());
    set(&mut p, "log.retention.hours", "-1".into());
    for (k, v) in &profile.broker {
        p.insert(k.clone(), v.clone());
    }
    p
}

/// Renders `server.properties` of `node` and formats its storage (once), then starts it. Returns
/// its pid.
pub fn start_node(cfg: &StackConfig, layout: &Layout, profile: &Profile, topo: &Topology, node: &KafkaNode, cluster_id: &str) -> Result<u32> {
    prepare_node(layout, profile, topo, node, cluster_id)?;
    spawn_node(cfg, layout, node)
}

/// Renders `server.properties` of `node` and formats its storage if that was never done.
pub fn prepare_node(layout: &Layout, profile: &Profile, topo: &Topology, node: &KafkaNode, cluster_id: &str) -> Result<()> {
    let dir = layout.dir(&node.name);
    let data = dir.join("data");
    let props = server_properties(profile, topo, node, &data.display().to_string());
    let config = dir.join("server.properties");
    write_file(&config, &properties::render(&format!("{} — rendered by cdc-chaos from profile {}", node.name, profile.name), &props))?;
    if !data.join("meta.properties").exists() {
        let mut cmd = jvm::tool(layout, STORAGE_TOOL);
        // `--cluster-id=<id>`: an id kept from before ids were kept clear of a leading `-`
        // still parses as a value.
        cmd.arg("format").arg(format!("--cluster-id={cluster_id}")).arg("-c").arg(&config).arg("--ignore-formatted");
        run(cmd).map_err(|e| Error::component(&node.name, format!("formatting storage in {}: {e}", data.display())))?;
    }
    Ok(())
}

/// Starts the JVM of `node` on its rendered `server.properties` (in the node's namespace, if
/// any). Returns its pid.
pub fn spawn_node(cfg: &StackConfig, layout: &Layout, node: &KafkaNode) -> Result<u32> {
    let config = layout.dir(&node.name).join("server.properties");
    if !config.is_file() {
        return Err(Error::component(&node.name, format!("{} is missing: the node was never started by `up`", config.display())));
    }
    let log = layout.log(&node.name);
    let mut cmd = jvm::server(layout, node.netns.as_deref(), &cfg.kafka_heap, &layout.kafka_classpath(), &log, KAFKA_MAIN);
    cmd.arg(&config);
    process::spawn_detached(&node.name, cmd, &log)
}

/// The cluster id, made once per stack home and kept with the data.
pub fn cluster_id(layout: &Layout) -> Result<String> {
    let path = layout.home.join("cluster.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("reading random bytes", "/dev/urandom", e))?;
    let id = cluster_id_of(bytes);
    write_file(&path, &id)?;
    Ok(id)
}

/// A cluster id from 16 random bytes: URL-safe base64, never starting with `-` (Kafka's own
/// `Uuid.randomUuid` rule: command-line parsers would read such an id as an option; one id in
/// 64 did, and `kafka-storage format -t -E…` failed).
pub(crate) fn cluster_id_of(mut bytes: [u8; 16]) -> String {
    bytes[0] &= 0x7f;
    base64_url(&bytes)
}

/// URL-safe base64 without padding: the form of a Kafka cluster id (22 characters for 16 bytes).
pub(crate) fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A quiet client for metadata requests (`fetch_metadata`, watermarks) to `bootstrap`.
pub fn metadata_client(bootstrap: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(|e| Error::component("kafka", format!("client for {bootstrap}: {e}")))
}

/// Ids of the brokers registered in the cluster's metadata, as seen from `bootstrap`.
pub fn registered_brokers(bootstrap: &str, timeout: Duration) -> Result<Vec<i32>> {
    let consumer = metadata_client(bootstrap)?;
    let md = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| Error::component("kafka", format!("metadata from {bootstrap}: {e}")))?;
    let mut ids: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    ids.sort();
    Ok(ids)
}

/// The controller quorum's leader id, from `kafka-metadata-quorum describe --status`.
pub fn quorum_leader(layout: &Layout, bootstrap: &str) -> Result<Option<i32>> {
    let mut cmd: Command = jvm::tool(layout, QUORUM_TOOL);
    cmd.args(["--bootstrap-server", bootstrap, "describe", "--status"]);
    let out = run(cmd)?;
    Ok(parse_quorum_leader(&out))
}

/// The `LeaderId:` of `kafka-metadata-quorum describe --status` output; `None` for no leader (-1).
pub fn parse_quorum_leader(out: &str) -> Option<i32> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("LeaderId:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|id: &i32| *id >= 0)
}

/// Waits until every node is registered as a broker and the quorum has a leader.
pub fn wait_ready(layout: &Layout, topo: &Topology, timeout: Duration, mut alive: impl FnMut() -> Result<()>) -> Result<i32> {
    let bootstrap = topo.bootstrap();
    let want: Vec<i32> = topo.nodes.iter().map(|n| i32::from(n.id)).collect();
    let mut seen = Vec::new();
    process::wait_until("kafka brokers to register", timeout, Duration::from_millis(500), &mut alive, || {
        seen = registered_brokers(&bootstrap, Duration::from_secs(3)).unwrap_or_default();
        Ok(seen == want)
    })
    .map_err(|e| Error::component("kafka", format!("{e}; registered brokers: {seen:?}, expected {want:?}")))?;
    let mut leader = None;
    process::wait_until("kafka controller quorum leader", timeout, Duration::from_secs(1), alive, || {
        leader = quorum_leader(layout, &bootstrap).ok().flatten();
        Ok(leader.is_some())
    })?;
    Ok(leader.unwrap_or(-1))
}

/// Waits until `node`, just restarted, serves Kafka requests and is an unfenced broker of the
/// cluster again (the metadata it answers lists it: a KRaft broker opens its listeners for
/// requests only once the controller has unfenced it), and the quorum has a leader. Other nodes
/// may be down meanwhile. Returns the quorum leader's id.
pub fn wait_node_ready(layout: &Layout, node: &KafkaNode, timeout: Duration, mut alive: impl FnMut() -> Result<()>) -> Result<i32> {
    let addr = node.broker_addr();
    let id = i32::from(node.id);
    let mut seen = Vec::new();
    process::wait_until(&format!("{} to rejoin the cluster", node.name), timeout, Duration::from_millis(500), &mut alive, || {
        seen = registered_brokers(&addr, Duration::from_secs(3)).unwrap_or_default();
        Ok(seen.contains(&id))
    })
    .map_err(|e| Error::component(&node.name, format!("{e}; brokers it lists: {seen:?}")))?;
    let mut leader = None;
    process::wait_until("kafka controller quorum leader", timeout, Duration::from_secs(1), alive, || {
        leader = quorum_leader(layout, &addr).ok().flatten();
        Ok(leader.is_some())
    })?;
    Ok(leader.unwrap_or(-1))
}

/// Admin client settings of the tools run by [`run_tool`]: every call gives up within seconds,
/// so that a node that is down or cut off costs a bounded wait.
const TOOL_CLIENT_CONFIG: &str = "request.timeout.ms=4000\ndefault.api.timeout.ms=8000\nsocket.connection.setup.timeout.ms=3000\nsocket.connection.setup.timeout.max.ms=3000\n";

/// Runs Kafka tool `main` with `--command-config` (short client timeouts) followed by `args`, and
/// returns its standard output. Killed, and an error, after `timeout`.
pub fn run_tool(layout: &Layout, main: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let config = layout.home.join("tools.properties");
    if std::fs::read_to_string(&config).ok().as_deref() != Some(TOOL_CLIENT_CONFIG) {
        write_file(&config, TOOL_CLIENT_CONFIG)?;
    }
    let mut cmd = jvm::tool(layout, main);
    // A top-level option: before the tool's subcommand.
    cmd.arg("--command-config").arg(&config).args(args);
    let shown = format!("{} {}", main.rsplit('.').next().unwrap_or(main), args.join(" "));
    let failed = |message: String| Error::Command { command: shown.clone(), message };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e}", jvm::java_binary())))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => {
            // The exception's message, not its stack frames.
            let detail = if err.trim().is_empty() { &out } else { &err };
            let lines: Vec<&str> = detail.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("at ") && !l.starts_with("...")).take(3).collect();
            Err(failed(format!("{s}: {}", lines.join(" | "))))
        }
        None => Err(failed(format!("no answer within {}s", timeout.as_secs()))),
    }
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        assert_eq!(base64_url(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64_url(&[0xffu8; 16]).len(), 22);
        assert!(base64_url(&[0xf8u8; 16]).starts_with('-'), "a raw id can start with '-'");
        for b in 0..=255u8 {
            let id = cluster_id_of([b; 16]);
            assert!(!id.starts_with('-') && !id.starts_with('_'), "{b}: {id}");
            assert_eq!(id.len(), 22);
        }
    }

    #[test]
    fn parses_quorum_leader() {
        let out = "ClusterId:              abc\nLeaderId:               2\nLeaderEpoch:            5\n";
        assert_eq!(parse_quorum_leader(out), Some(2));
        assert_eq!(parse_quorum_leader("LeaderId: -1\n"), None);
        assert_eq!(parse_quorum_leader("nothing"), None);
    }

    #[test]
    fn parses_the_quorum_tools_real_output() {
        // `kafka-metadata-quorum --bootstrap-controller 10.233.0.12:31093 describe --status`
        // (Kafka 4.3.1).
        let out = "ClusterId:              Ot6ZRMAtnK0EbRfdmvLUow\nLeaderId:               1\nLeaderEpoch:            1\n\
                   HighWatermark:          252\nMaxFollowerLag:         0\nMaxFollowerLagTimeMs:   0\n\
                   CurrentVoters:          [{\"id\": 1, \"endpoints\": [\"CONTROLLER://10.233.0.11:31093\"]}, \
                   {\"id\": 2, \"endpoints\": [\"CONTROLLER://10.233.0.12:31093\"]}, \
                   {\"id\": 3, \"endpoints\": [\"CONTROLLER://10.233.0.13:31093\"]}]\nCurrentObservers:       []\n";
        assert_eq!(parse_quorum_leader(out), Some(1));
    }
}
