//! The kind cluster's pod network, set up by the harness: each node gets a CNI bridge over its
//! pod CIDR (the `bridge`, `host-local` and `portmap` plugins of Debian's
//! containernetworking-plugins, in the node image) and a route to every other node's pod CIDR
//! through that node. kind's own network plugin, kindnetd, is not published as a Go module, so
//! it cannot be built here (`manifests/kind-cluster.yaml` disables it).
//!
//! Pod-to-pod traffic is never masqueraded, so a pod sees its peers' own addresses — the
//! iptables faults in the Kafka pods match on them. Traffic from a pod to anything outside the
//! pod network (the nodes, the API server behind its Service) leaves with the node's address.
//! No NetworkPolicy is enforced: nothing implements them on this network (kindnetd would do it
//! through nfqueue, which this kernel lacks), so the kind faults use iptables in the pods.
//!
//! Routes live in the nodes' network namespaces: a node container that restarts loses them,
//! and `--create-cluster` (which runs this again) restores them.

use std::process::Command;

use crate::error::{Error, Result};
use crate::platform::process;
use crate::progress;

/// The cluster's pod network (`networking.podSubnet` in `manifests/kind-cluster.yaml`).
pub const POD_SUBNET: &str = "10.244.0.0/16";
/// The CNI configuration's file in each node.
pub const CNI_FILE: &str = "/etc/cni/net.d/10-cdc-chaos.conflist";
/// The comment tagging the harness's masquerade rule in each node.
const RULE_TAG: &str = "cdc-chaos:pod-egress";

/// A node of the cluster as the network needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name (also its container's name).
    pub name: String,
    /// Its pod CIDR, given by the controller manager.
    pub pod_cidr: String,
    /// Its address on kind's Docker network.
    pub ip: String,
}

/// Parses `name podCIDR internalIP` lines (the jsonpath output of [`nodes`]).
pub fn parse_nodes(text: &str) -> Result<Vec<Node>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, cidr, ip] => Ok(Node { name: name.to_string(), pod_cidr: cidr.to_string(), ip: ip.to_string() }),
                _ => Err(Error::component("kind network", format!("a node without a pod CIDR or address yet: {l:?}"))),
            }
        })
        .collect()
}

/// The CNI configuration of a node whose pods take addresses from `pod_cidr`.
pub fn cni_config(pod_cidr: &str) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "cdc-chaos",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": { "type": "host-local", "ranges": [[{ "subnet": pod_cidr }]], "routes": [{ "dst": "0.0.0.0/0" }] }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } }
        ]
    })
    .to_string()
}

/// The shell script that sets up `node`'s side of the network, given every node.
pub fn node_script(node: &Node, all: &[Node]) -> String {
    let mut s = String::from("set -e\nmkdir -p /etc/cni/net.d\n");
    s.push_str(&format!("cat > {CNI_FILE}.tmp <<'EOF'\n{}\nEOF\nmv {CNI_FILE}.tmp {CNI_FILE}\n", cni_config(&node.pod_cidr)));
    for other in all.iter().filter(|o| o.name != node.name) {
        s.push_str(&format!("ip route replace {} via {}\n", other.pod_cidr, other.ip));
    }
    let rule = format!("POSTROUTING -s {POD_SUBNET} ! -d {POD_SUBNET} -m comment --comment {RULE_TAG} -j MASQUERADE");
    s.push_str(&format!("iptables -w -t nat -C {rule} 2>/dev/null || iptables -w -t nat -A {rule}\n"));
    s
}

fn docker_exec(node: &str, script: &str) -> Result<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["exec", node, "sh", "-c", script]);
    process::run(cmd)
}

/// The cluster's nodes, read through the control plane node's `kubectl`.
pub fn nodes(control_plane: &str) -> Result<Vec<Node>> {
    let jsonpath = r#"{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}"#;
    let out = docker_exec(control_plane, &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o jsonpath='{jsonpath}'"))?;
    parse_nodes(&out)
}

/// Sets up every node's bridge, routes and masquerade rule, then waits until every node is
/// Ready.
pub fn configure(control_plane: &str, timeout_secs: u64) -> Result<Vec<Node>> {
    let all = nodes(control_plane)?;
    for node in &all {
        docker_exec(&node.name, &node_script(node, &all))?;
    }
    progress::step(&format!(
        "pod network: {}",
        all.iter().map(|n| format!("{} {} via {}", n.name, n.pod_cidr, n.ip)).collect::<Vec<_>>().join(", ")
    ));
    docker_exec(control_plane, &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf wait --for=condition=Ready nodes --all --timeout={timeout_secs}s"))?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<Node> {
        parse_nodes("cdc-chaos-control-plane 10.244.0.0/24 172.18.0.3\ncdc-chaos-worker 10.244.1.0/24 172.18.0.2\n").unwrap()
    }

    #[test]
    fn nodes_are_read_from_the_jsonpath_lines_and_a_node_without_a_cidr_is_an_error() {
        assert_eq!(nodes()[1], Node { name: "cdc-chaos-worker".into(), pod_cidr: "10.244.1.0/24".into(), ip: "172.18.0.2".into() });
        let err = parse_nodes("cdc-chaos-worker2  172.18.0.4\n").unwrap_err().to_string();
        assert!(err.contains("without a pod CIDR"), "{err}");
    }

    #[test]
    fn each_node_routes_the_others_pod_cidrs_and_masquerades_only_leaving_traffic() {
        let all = nodes();
        let s = node_script(&all[0], &all);
        assert!(s.contains("ip route replace 10.244.1.0/24 via 172.18.0.2\n"), "{s}");
        assert!(!s.contains("10.244.0.0/24 via"), "no route to itself: {s}");
        assert!(s.contains("-s 10.244.0.0/16 ! -d 10.244.0.0/16"), "{s}");
        let cni: serde_json::Value = serde_json::from_str(&cni_config("10.244.0.0/24")).unwrap();
        assert_eq!(cni["plugins"][0]["ipMasq"], false, "pod-to-pod traffic keeps its addresses");
        assert_eq!(cni["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.0.0/24");
    }
}
