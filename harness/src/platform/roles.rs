//! Kafka roles resolved at the moment a fault needs them: the leader of a partition, the active
//! controller (the KRaft quorum leader) and the transaction coordinator of a transactional id,
//! each as a node id (`1..=3`, component `kafka-<id>`).
//!
//! What both platforms share: partition leaders and group coordinators from cluster metadata
//! (librdkafka), the parsing of Kafka's tools' answers, and how a resolution reads in the fault
//! timeline. The quorum leader and the transaction coordinator, which librdkafka does not
//! expose, each platform asks Kafka's own tools for (`platform::local::roles` from the cached
//! jars, `platform::kind::stack` in a broker pod).

use std::time::Duration;

use rdkafka::consumer::Consumer;

use crate::error::{Error, Result};
use crate::platform::kafka;
use crate::platform::Topology;
use crate::scenario::Target;

/// Longest wait for cluster metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Ids of every Kafka node of `topo`.
pub fn nodes(topo: &Topology) -> Vec<i32> {
    topo.nodes.iter().map(|n| i32::from(n.id)).collect()
}

/// The transactional id of the join's producer: the `coordinator` target's.
pub const JOIN_TRANSACTIONAL_ID: &str = "cdc-chaos-join";

/// How `role` was resolved to node `n`, for the fault timeline.
pub fn describe(role: &Target, n: u16) -> String {
    match role {
        Target::Leader { topic, partition } => format!("leader of {topic}/{partition} is node {n}"),
        Target::Controller => format!("active controller is node {n}"),
        Target::Coordinator => format!("transaction coordinator of {JOIN_TRANSACTIONAL_ID} is node {n}"),
        Target::GroupCoordinator(group) => format!("coordinator of group {group} is node {n}"),
        other => format!("{other} is node {n}"),
    }
}

/// The node leading `topic`/`partition` now, from the metadata of `topo`'s cluster. An error if
/// the partition has no leader (-1), or the topic or partition does not exist.
pub fn partition_leader(topo: &Topology, topic: &str, partition: i32) -> Result<i32> {
    let bootstrap = topo.bootstrap();
    let consumer = kafka::metadata_client(&bootstrap)?;
    let md = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| Error::component("kafka", format!("metadata of {topic} from {bootstrap}: {e}")))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| Error::component("kafka", format!("no metadata for topic {topic}")))?;
    if let Some(e) = t.error() {
        return Err(Error::component(
            "kafka",
            format!("topic {topic}: {:?}", rdkafka::types::RDKafkaErrorCode::from(e)),
        ));
    }
    let p = t.partitions().iter().find(|p| p.id() == partition).ok_or_else(|| {
        Error::component(
            "kafka",
            format!("topic {topic} has no partition {partition} ({} partitions)", t.partitions().len()),
        )
    })?;
    leader_of(topic, partition, p.leader(), p.replicas(), p.isr(), &nodes(topo))
}

/// Checks a partition's leader from metadata: a node of the stack, not -1 (no leader).
fn leader_of(topic: &str, partition: i32, leader: i32, replicas: &[i32], isr: &[i32], nodes: &[i32]) -> Result<i32> {
    if leader < 0 {
        return Err(Error::component(
            "kafka",
            format!("{topic}/{partition} has no leader (replicas {replicas:?}, in-sync {isr:?})"),
        ));
    }
    if !nodes.contains(&leader) {
        return Err(Error::component(
            "kafka",
            format!("{topic}/{partition} is led by node {leader}, not a node of the stack ({nodes:?})"),
        ));
    }
    Ok(leader)
}

/// The coordinator of `transactional_id` in `kafka-transactions describe` output, checked
/// against the cluster's node ids.
pub fn coordinator_in(out: &str, transactional_id: &str, nodes: &[i32]) -> Result<i32> {
    let id = parse_coordinator(out).ok_or_else(|| {
        Error::component(
            "kafka",
            format!("no coordinator of {transactional_id:?} in the transactions tool's answer: {}", first_line(out)),
        )
    })?;
    if !nodes.contains(&id) {
        return Err(Error::component(
            "kafka",
            format!("coordinator of {transactional_id:?} is node {id}, not a node of the stack"),
        ));
    }
    Ok(id)
}

/// The coordinator of consumer or Connect group `group`: the leader of the `__consumer_offsets`
/// partition the group hashes to, which is how brokers place a group
/// (`abs(groupId.hashCode()) % partitions`, Java's `String.hashCode`).
pub fn group_coordinator(topo: &Topology, group: &str) -> Result<i32> {
    const OFFSETS: &str = "__consumer_offsets";
    let bootstrap = topo.bootstrap();
    let consumer = kafka::metadata_client(&bootstrap)?;
    let md = consumer
        .fetch_metadata(Some(OFFSETS), METADATA_TIMEOUT)
        .map_err(|e| Error::component("kafka", format!("metadata of {OFFSETS} from {bootstrap}: {e}")))?;
    let partitions = md.topics().iter().find(|t| t.name() == OFFSETS).map_or(0, |t| t.partitions().len());
    if partitions == 0 {
        return Err(Error::component("kafka", format!("{OFFSETS} does not exist yet: no group has committed or joined")));
    }
    partition_leader(topo, OFFSETS, group_partition(group, partitions as i32))
}

/// The `__consumer_offsets` partition of `group` among `partitions`.
fn group_partition(group: &str, partitions: i32) -> i32 {
    // Java's String.hashCode over UTF-16 code units, then Kafka's Utils.abs (clears the sign bit).
    let hash = group.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (hash & 0x7fff_ffff) % partitions
}

/// The `CoordinatorId` column of `kafka-transactions describe` output: a header row and one row
/// per transactional id, columns separated by tabs and padded with spaces (an empty column, such
/// as `TopicPartitions` outside a transaction, is blanks).
fn parse_coordinator(out: &str) -> Option<i32> {
    let columns = |l: &str| l.split('\t').map(str::trim).map(String::from).collect::<Vec<_>>();
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let column = lines.by_ref().find_map(|l| columns(l).iter().position(|h| h == "CoordinatorId"))?;
    columns(lines.next()?).get(column)?.parse().ok()
}

pub(crate) fn first_line(out: &str) -> &str {
    out.lines().find(|l| !l.trim().is_empty()).unwrap_or("empty output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_hash_to_partitions_as_java_does() {
        // From Java 17: `(s.hashCode() & 0x7fffffff) % 50`; "cdc-chaos-connect".hashCode() is
        // negative (-1948270286), and "é€x" has characters beyond ASCII.
        assert_eq!(group_partition("cdc-chaos-connect", 50), 12);
        assert_eq!(group_partition("test", 50), 48);
        assert_eq!(group_partition("cdc-chaos-join", 50), 2);
        assert_eq!(group_partition("é€x", 50), 17);
        assert_eq!(group_partition("", 50), 0);
        for p in 1..=64 {
            assert!((0..p).contains(&group_partition("cdc-chaos-join", p)));
        }
    }

    /// `kafka-transactions --bootstrap-server ... describe --transactional-id cdc-chaos-join`
    /// (Kafka 4.3.1), outside a transaction.
    const DESCRIBE_IDLE: &str = "CoordinatorId\tTransactionalId\tProducerId\tProducerEpoch\tTransactionState\tTransactionTimeoutMs\t\
        CurrentTransactionStartTimeMs\tTransactionDurationMs\tTopicPartitions\t\n\
        1            \tcdc-chaos-join \t1002      \t0            \tEmpty           \t60000               \t\
        None                         \tNone                 \t               \t\n";

    #[test]
    fn reads_the_coordinator_from_the_transactions_tool() {
        assert_eq!(parse_coordinator(DESCRIBE_IDLE), Some(1));
        let ongoing = DESCRIBE_IDLE
            .replace("1            \tcdc-chaos-join", "3            \tcdc-chaos-join")
            .replace("Empty  ", "Ongoing")
            .replace("\t               \t\n", "\tcustomer_360.changes-0,__consumer_offsets-7\t\n");
        assert_eq!(parse_coordinator(&ongoing), Some(3));
        // Only the header, or an error message: no coordinator.
        assert_eq!(parse_coordinator(DESCRIBE_IDLE.lines().next().unwrap()), None);
        assert_eq!(parse_coordinator("Failed to describe transaction state of transactional-id `nope`"), None);
        assert_eq!(parse_coordinator(""), None);
    }

    #[test]
    fn a_partition_without_leader_is_an_error_naming_it() {
        assert_eq!(leader_of("crm.public.customers", 0, 2, &[2, 3, 1], &[2, 3, 1], &[1, 2, 3]).unwrap(), 2);
        let e = leader_of("crm.public.customers", 0, -1, &[2, 3, 1], &[], &[1, 2, 3]).unwrap_err().to_string();
        assert!(
            e.contains("crm.public.customers/0") && e.contains("no leader") && e.contains("[2, 3, 1]"),
            "{e}"
        );
        let e = leader_of("t", 1, 7, &[7], &[7], &[1, 2, 3]).unwrap_err().to_string();
        assert!(e.contains("node 7"), "{e}");
    }
}
