//! Kafka roles on the local stack: the quorum leader and the transaction coordinator from
//! Kafka's own command-line tools run from the cached jars, each bounded in time so that a node
//! that is down or cut off is skipped; partition leaders and group coordinators from metadata
//! ([`crate::platform::roles`]).

use std::time::Duration;

use super::LocalStack;
use crate::error::{Error, Result};
use crate::platform::kafka;
use crate::platform::roles::{coordinator_in, first_line, group_coordinator, nodes, partition_leader, JOIN_TRANSACTIONAL_ID};
use crate::scenario::Target;

/// Longest run of one Kafka tool (JVM start-up included).
const TOOL_TIMEOUT: Duration = Duration::from_secs(25);

/// Resolves a role target (`leader:`, `controller`, `coordinator`, `group-coordinator:`) on
/// the local stack to a node id.
pub fn resolve(stack: &LocalStack, role: &Target) -> Result<u16> {
    let n = match role {
        Target::Leader { topic, partition } => partition_leader(&stack.topo, topic, *partition)?,
        Target::Controller => active_controller(stack)?,
        Target::Coordinator => transaction_coordinator(stack, JOIN_TRANSACTIONAL_ID)?,
        Target::GroupCoordinator(group) => group_coordinator(&stack.topo, group)?,
        other => return Err(Error::Fault(format!("{other} is not one Kafka node"))),
    };
    Ok(n as u16)
}

/// The active controller: the KRaft quorum leader, asked of each node's controller listener in
/// turn (`kafka-metadata-quorum --bootstrap-controller <node> describe --status`) until one
/// answers with a leader.
pub fn active_controller(stack: &LocalStack) -> Result<i32> {
    let ids = nodes(&stack.topo);
    let mut errors = Vec::new();
    for node in &stack.topo.nodes {
        let addr = node.controller_addr();
        let args = ["--bootstrap-controller", addr.as_str(), "describe", "--status"];
        match kafka::run_tool(&stack.layout, kafka::QUORUM_TOOL, &args, TOOL_TIMEOUT) {
            Ok(out) => match kafka::parse_quorum_leader(&out) {
                Some(id) if ids.contains(&id) => return Ok(id),
                Some(id) => errors.push(format!("{}: leader {id} is not a node of the stack", node.name)),
                None => errors.push(format!("{}: no quorum leader ({})", node.name, first_line(&out))),
            },
            Err(e) => errors.push(format!("{}: {e}", node.name)),
        }
    }
    Err(Error::component("kafka", format!("no node names the active controller: {}", errors.join("; "))))
}

/// The transaction coordinator of `transactional_id`
/// (`kafka-transactions describe --transactional-id <id>`). An error if the id is unknown to the
/// cluster (no producer initialised it yet).
pub fn transaction_coordinator(stack: &LocalStack, transactional_id: &str) -> Result<i32> {
    let bootstrap = stack.topo.bootstrap();
    let args = ["--bootstrap-server", bootstrap.as_str(), "describe", "--transactional-id", transactional_id];
    let out = kafka::run_tool(&stack.layout, kafka::TRANSACTIONS_TOOL, &args, TOOL_TIMEOUT)?;
    coordinator_in(&out, transactional_id, &nodes(&stack.topo))
}
