//! Every topic of the stack, created by the harness — never auto-created: the raw CDC topics, the
//! join output, the pipeline's dead letters, the join's checkpoints, Kafka Connect's internal topics
//! and Debezium's schema history. Replication factor and topic configs come from the profile.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::error::{Error, Result};
use crate::profile::Profile;

/// Raw CDC topic of `crm.public.customers` (Debezium: `<topic.prefix>.<schema>.<table>`).
pub const CUSTOMERS: &str = "crm.public.customers";
/// Raw CDC topic of `crm.public.flights`.
pub const FLIGHTS: &str = "crm.public.flights";
/// Raw CDC topic of `fleet.vehicles` (Debezium MariaDB: `<topic.prefix>.<database>.<table>`).
pub const VEHICLES: &str = "fleet.fleet.vehicles";
/// The join's output.
pub const CUSTOMER_360: &str = "customer_360.changes";
/// Records the pipeline could not decode, with the reason and their source coordinates.
pub const DEAD_LETTER: &str = "customer_360.dead-letter";
/// The join's checkpoints: its next input offsets, written in its transactions (`cdc_pipeline::checkpoint`).
pub const JOIN_CHECKPOINTS: &str = cdc_pipeline::checkpoint::TOPIC;
/// Kafka Connect's internal topics.
pub const CONNECT_CONFIGS: &str = "cdc-chaos.connect-configs";
pub const CONNECT_OFFSETS: &str = "cdc-chaos.connect-offsets";
pub const CONNECT_STATUS: &str = "cdc-chaos.connect-status";
/// Debezium MariaDB's schema history.
pub const SCHEMA_HISTORY: &str = "fleet.schema-history";

/// The raw CDC topics, one per source table.
pub const RAW: &[&str] = &[CUSTOMERS, FLIGHTS, VEHICLES];

/// One topic to create.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u16,
    pub config: Vec<(String, String)>,
}

/// Every topic of the stack under `profile`.
pub fn plan(profile: &Profile) -> Vec<TopicSpec> {
    let spec = |name: &str, partitions: u32, extra: &[(&str, &str)]| {
        let mut config: Vec<(String, String)> = profile.topic_config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (k, v) in extra {
            config.retain(|(ck, _)| ck != k);
            config.push((k.to_string(), v.to_string()));
        }
        config.sort();
        TopicSpec { name: name.into(), partitions, replication_factor: profile.replication_factor, config }
    };
    // Data topics keep everything: the checker reads every hop back after the run.
    let keep = [("cleanup.policy", "delete"), ("retention.ms", "-1"), ("retention.bytes", "-1")];
    let compact = [("cleanup.policy", "compact")];
    let p = profile.partitions;
    vec![
        spec(CUSTOMERS, p, &keep),
        spec(FLIGHTS, p, &keep),
        spec(VEHICLES, p, &keep),
        // One partition: the join's output is a total order, so the sinks apply documents in the
        // order the join produced them.
        spec(CUSTOMER_360, 1, &keep),
        spec(DEAD_LETTER, 1, &keep),
        // Every checkpoint holds all the join's positions: only the last one matters.
        spec(JOIN_CHECKPOINTS, 1, &compact),
        spec(CONNECT_CONFIGS, 1, &compact),
        spec(CONNECT_OFFSETS, 5, &compact),
        spec(CONNECT_STATUS, 3, &compact),
        spec(SCHEMA_HISTORY, 1, &keep),
    ]
}

/// Creates every topic of `plan` that does not exist yet. Returns the names created.
pub fn create(bootstrap: &str, plan: &[TopicSpec]) -> Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(|e| Error::component("kafka", format!("admin client for {bootstrap}: {e}")))?;
    let new: Vec<NewTopic> = plan
        .iter()
        .map(|t| {
            let mut n = NewTopic::new(&t.name, t.partitions as i32, TopicReplication::Fixed(i32::from(t.replication_factor)));
            for (k, v) in &t.config {
                n = n.set(k, v);
            }
            n
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))).request_timeout(Some(Duration::from_secs(40)));
    let results = futures_executor::block_on(admin.create_topics(&new, &opts))
        .map_err(|e| Error::component("kafka", format!("creating topics: {e}")))?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::component("kafka", format!("creating topic {name}: {code}")));
            }
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_gets_the_profile_replication() {
        for name in ["durable", "weak"] {
            let p = Profile::load(name).unwrap();
            for t in plan(&p) {
                assert_eq!(t.replication_factor, p.replication_factor, "{}", t.name);
                let isr = t.config.iter().find(|(k, _)| k == "min.insync.replicas").map(|(_, v)| v.clone());
                assert_eq!(isr, p.topic_config.get("min.insync.replicas").cloned(), "{}", t.name);
            }
        }
    }

    #[test]
    fn connect_topics_are_compacted_and_data_topics_keep_everything() {
        let p = Profile::load("durable").unwrap();
        let plan = plan(&p);
        let get = |name: &str, key: &str| {
            plan.iter().find(|t| t.name == name).unwrap().config.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        };
        for t in [CONNECT_CONFIGS, CONNECT_OFFSETS, CONNECT_STATUS, JOIN_CHECKPOINTS] {
            assert_eq!(get(t, "cleanup.policy").as_deref(), Some("compact"));
        }
        for t in RAW.iter().chain([&CUSTOMER_360]) {
            assert_eq!(get(t, "retention.ms").as_deref(), Some("-1"));
        }
        assert_eq!(plan.iter().find(|t| t.name == CONNECT_CONFIGS).unwrap().partitions, 1);
    }
}
