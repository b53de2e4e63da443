//! Every row of the seed's durability tables reaches the configuration file of the layer it
//! belongs to, under `durable`; and `weak` renders the seed's "default" column.

use cdc_chaos::platform::{connect, kafka, topics, Client, Topology};
use cdc_chaos::properties::{self, Properties};
use cdc_chaos::{Profile, StackConfig};
use proptest::prelude::*;

/// Every file the stack renders from a profile, parsed back as Kafka would read it.
struct Rendered {
    broker: Vec<Properties>,
    worker: Properties,
    producer: Properties,
    consumer: Properties,
    processing: Properties,
    topics: Vec<topics::TopicSpec>,
    connectors: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn render(profile: &Profile) -> Rendered {
    let topo = Topology::new(&StackConfig::default().loopback(false));
    let bootstrap = topo.bootstrap();
    let roundtrip = |p: &Properties| properties::parse(&properties::render("test", p));
    Rendered {
        broker: topo.nodes.iter().map(|n| roundtrip(&kafka::server_properties(profile, &topo, n, "/data"))).collect(),
        worker: roundtrip(&connect::worker_properties(profile, &topo, "/plugins")),
        producer: roundtrip(&profile.producer_properties(&bootstrap)),
        consumer: roundtrip(&profile.consumer_properties(&bootstrap)),
        processing: roundtrip(&profile.processing_properties()),
        topics: topics::plan(profile),
        connectors: vec![connect::crm_connector(profile, &topo), connect::fleet_connector(profile, &topo)],
    }
}

fn topic_config<'a>(t: &'a topics::TopicSpec, key: &str) -> Option<&'a str> {
    t.config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn durable_puts_every_seed_row_in_its_file() {
    let r = render(&Profile::load("durable").unwrap());
    // Producer table: every producer the stack runs (pipeline clients and Connect's producers).
    for (key, value) in [("acks", "all"), ("enable.idempotence", "true"), ("max.in.flight.requests.per.connection", "1")] {
        assert_eq!(r.producer.get(key).map(String::as_str), Some(value), "producer.properties {key}");
        assert_eq!(r.worker.get(&format!("producer.{key}")).map(String::as_str), Some(value), "worker.properties producer.{key}");
        // Debezium's schema history producer too.
        assert_eq!(r.connectors[1][&format!("schema.history.internal.producer.{key}")], value);
    }
    // Streams table: replication factor 3 everywhere, exactly-once processing.
    assert_eq!(r.processing["processing.guarantee"], "exactly_once");
    assert_eq!(r.processing["replication.factor"], "3");
    for t in &r.topics {
        assert_eq!(t.replication_factor, 3, "topic {}", t.name);
    }
    for key in ["config.storage.replication.factor", "offset.storage.replication.factor", "status.storage.replication.factor"] {
        assert_eq!(r.worker[key], "3", "{key}");
    }
    assert_eq!(r.worker["exactly.once.source.support"], "enabled");
    for c in &r.connectors {
        assert_eq!(c["exactly.once.support"], "required");
    }
    // Broker table, on every node.
    for b in &r.broker {
        assert_eq!(b["default.replication.factor"], "3");
        assert_eq!(b["auto.create.topics.enable"], "false");
        assert_eq!(b["min.insync.replicas"], "2");
        assert_eq!(b["unclean.leader.election.enable"], "false");
        let msgs: u64 = b["log.flush.interval.messages"].parse().unwrap();
        let ms: u64 = b["log.flush.interval.ms"].parse().unwrap();
        assert!(msgs <= 10 && ms <= 1000, "flush intervals must be low: {msgs} messages, {ms} ms");
        assert_eq!(b["transaction.state.log.min.isr"], "2");
        assert_eq!(b["process.roles"], "broker,controller");
    }
    // Topic-level protection on every topic the harness creates.
    for t in &r.topics {
        assert_eq!(topic_config(t, "min.insync.replicas"), Some("2"), "topic {}", t.name);
        assert_eq!(topic_config(t, "unclean.leader.election.enable"), Some("false"), "topic {}", t.name);
    }
    // Consumer table.
    assert_eq!(r.consumer["enable.auto.commit"], "false");
    assert_eq!(r.consumer["isolation.level"], "read_committed");
    assert_eq!(r.worker["consumer.isolation.level"], "read_committed");
    assert_eq!(r.connectors[1]["schema.history.internal.consumer.isolation.level"], "read_committed");
}

#[test]
fn weak_renders_the_seed_defaults() {
    let r = render(&Profile::load("weak").unwrap());
    assert_eq!(r.producer["acks"], "1");
    assert_eq!(r.producer["enable.idempotence"], "false");
    assert_eq!(r.producer["max.in.flight.requests.per.connection"], "5");
    assert_eq!(r.processing["processing.guarantee"], "at_least_once");
    for t in &r.topics {
        assert_eq!(t.replication_factor, 1);
    }
    for b in &r.broker {
        assert_eq!(b["default.replication.factor"], "1");
        assert_eq!(b["auto.create.topics.enable"], "true");
        assert_eq!(b["min.insync.replicas"], "1");
        assert_eq!(b["unclean.leader.election.enable"], "true");
        assert!(!b.contains_key("log.flush.interval.messages"), "weak leaves flushing to the OS");
    }
    assert_eq!(r.consumer["enable.auto.commit"], "true");
    assert_eq!(r.worker["exactly.once.source.support"], "disabled");
    for c in &r.connectors {
        assert!(!c.contains_key("exactly.once.support"));
    }
}

#[test]
fn every_node_knows_the_whole_quorum_and_its_own_address() {
    let topo = Topology::new(&StackConfig::default().loopback(false));
    let p = Profile::load("durable").unwrap();
    for n in &topo.nodes {
        let b = kafka::server_properties(&p, &topo, n, "/d");
        assert_eq!(b["node.id"], n.id.to_string());
        assert_eq!(b["controller.quorum.voters"], "1@10.231.0.11:9093,2@10.231.0.12:9093,3@10.231.0.13:9093");
        // A listener per kind of client, so that a fault can cut Connect or the pipeline alone.
        let h = &n.host;
        assert_eq!(b["advertised.listeners"], format!("PLAINTEXT://{h}:9092,CONNECT://{h}:9094,PIPELINE://{h}:9095"));
        assert_eq!(b["listeners"], format!("PLAINTEXT://{h}:9092,CONNECT://{h}:9094,PIPELINE://{h}:9095,CONTROLLER://{h}:9093"));
        assert_eq!(b["listener.security.protocol.map"], "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONNECT:PLAINTEXT,PIPELINE:PLAINTEXT");
        assert_eq!(b["inter.broker.listener.name"], "PLAINTEXT");
    }
    assert_eq!(topo.bootstrap_for(Client::Connect), "10.231.0.11:9094,10.231.0.12:9094,10.231.0.13:9094");
    assert_eq!(topo.bootstrap_for(Client::Pipeline), "10.231.0.11:9095,10.231.0.12:9095,10.231.0.13:9095");
    assert_eq!(topo.bootstrap(), "10.231.0.11:9092,10.231.0.12:9092,10.231.0.13:9092");
    let lo = Topology::new(&StackConfig::default().loopback(true));
    let ports: std::collections::BTreeSet<u16> = lo.nodes.iter().flat_map(|n| [n.broker_port, n.controller_port]).collect();
    assert_eq!(ports.len(), 6, "loopback nodes need distinct ports");
    for n in &lo.nodes {
        let b = kafka::server_properties(&p, &lo, n, "/d");
        assert_eq!(b["advertised.listeners"], format!("PLAINTEXT://{}", n.broker_addr()), "on loopback every client shares one listener");
    }
    assert_eq!(lo.bootstrap_for(Client::Connect), lo.bootstrap());
}

proptest! {
    /// Whatever an SRE's profile sets for a layer ends up, unchanged, in that layer's file.
    #[test]
    fn custom_settings_reach_their_file(
        key in "[a-z][a-z0-9]{0,6}(\\.[a-z0-9]{1,6}){1,3}",
        value in "[A-Za-z0-9_.,:/=-]{1,20}",
        layer in 0usize..4,
    ) {
        let section = ["broker", "producer", "consumer", "connect.worker"][layer];
        prop_assume!(key != "isolation.level");
        let custom = format!("\"{key}\" = \"{value}\"\n");
        let (in_consumer, elsewhere) = if section == "consumer" {
            (custom, String::new())
        } else {
            (String::new(), format!("[{section}]\n{custom}"))
        };
        let text = format!(
            "name = \"custom\"\n[consumer]\n\"isolation.level\" = \"read_committed\"\n{in_consumer}{elsewhere}[topics]\nreplication_factor = 3\npartitions = 2\n[processing]\nguarantee = \"exactly_once\"\n"
        );
        let p = Profile::parse(&text, "custom.toml").unwrap();
        let r = render(&p);
        match section {
            "broker" => for b in &r.broker { prop_assert_eq!(b.get(&key), Some(&value)); },
            "producer" => {
                prop_assert_eq!(r.producer.get(&key), Some(&value));
                prop_assert_eq!(r.worker.get(&format!("producer.{key}")), Some(&value));
            }
            "consumer" => prop_assert_eq!(r.consumer.get(&key), Some(&value)),
            _ => prop_assert_eq!(r.worker.get(&key), Some(&value)),
        }
    }
}
