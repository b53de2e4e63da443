//! Configuration profiles: the durability settings of every Kafka layer, as data.
//!
//! A profile is a TOML file (`profiles/durable.toml`, `profiles/weak.toml`, or an SRE's own file)
//! with one section per layer of the seed's tables: `[producer]`, `[consumer]`, `[broker]`,
//! `[topics]`, `[processing]` and `[connect]`. It is parsed and validated once, here; the platform
//! code only reads the resolved string maps. This module owns the file format and its validation,
//! and the client-side renderings (producer and consumer properties); broker and Connect files are
//! rendered by `platform::kafka` and `platform::connect` from the maps resolved here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::properties::Properties;

/// The profiles shipped with the harness, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("durable", include_str!("../../profiles/durable.toml")),
    ("weak", include_str!("../../profiles/weak.toml")),
];

/// How the pipeline processes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Kafka transactions: consumed offsets committed with the produced records.
    ExactlyOnce,
    /// Offsets committed after processing; redelivery after a crash duplicates output.
    AtLeastOnce,
}

impl Guarantee {
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::ExactlyOnce => "exactly_once",
            Guarantee::AtLeastOnce => "at_least_once",
        }
    }
}

/// A validated profile. Every setting is a string, exactly as it will be written for Kafka.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Where it was read from (`builtin:durable` or a file path).
    pub source: String,
    /// Settings of every Kafka producer the stack runs (Connect's source producers, the pipeline).
    pub producer: Properties,
    /// Settings of every Kafka consumer the stack runs (the pipeline, the sinks, the checker).
    pub consumer: Properties,
    /// Broker settings (server.properties of every node).
    pub broker: Properties,
    /// Replication factor of every topic the harness creates.
    pub replication_factor: u16,
    /// Partitions of the data topics (raw CDC topics and the join output).
    pub partitions: u32,
    /// Topic-level configs of every topic the harness creates.
    pub topic_config: Properties,
    /// Processing guarantee of the pipeline ("Streams" row of the seed).
    pub guarantee: Guarantee,
    /// Kafka Connect worker settings.
    pub connect_worker: Properties,
    /// Settings added to every Debezium connector's configuration.
    pub connector: Properties,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    producer: BTreeMap<String, toml::Value>,
    #[serde(default)]
    consumer: BTreeMap<String, toml::Value>,
    #[serde(default)]
    broker: BTreeMap<String, toml::Value>,
    topics: TopicsSection,
    processing: ProcessingSection,
    #[serde(default)]
    connect: ConnectSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsSection {
    replication_factor: u16,
    partitions: u32,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessingSection {
    guarantee: Guarantee,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectSection {
    #[serde(default)]
    worker: BTreeMap<String, toml::Value>,
    #[serde(default)]
    connector: BTreeMap<String, toml::Value>,
}

impl Profile {
    /// Loads a profile by built-in name (`durable`, `weak`), by name from `./profiles/`, or by path.
    pub fn load(name_or_path: &str) -> Result<Profile> {
        let looks_like_path = name_or_path.ends_with(".toml") || name_or_path.contains('/');
        if !looks_like_path {
            if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
                return Profile::parse(text, &format!("builtin:{name_or_path}"));
            }
            let local = PathBuf::from("profiles").join(format!("{name_or_path}.toml"));
            if local.is_file() {
                return Profile::load_file(&local);
            }
            let builtin: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(Error::Profile {
                name: name_or_path.to_string(),
                message: format!(
                    "unknown profile; built-in profiles are {}, or give a path to a .toml file (looked in {})",
                    builtin.join(", "),
                    local.display()
                ),
            });
        }
        Profile::load_file(Path::new(name_or_path))
    }

    fn load_file(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading profile", path, e))?;
        Profile::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a profile. `source` names the file in error messages.
    pub fn parse(text: &str, source: &str) -> Result<Profile> {
        let err = |message: String| Error::Profile { name: source.to_string(), message };
        let file: ProfileFile = toml::from_str(text).map_err(|e| err(describe_toml_error(text, &e)))?;
        let section = |name: &str, map: &BTreeMap<String, toml::Value>| -> Result<Properties> {
            let mut out = Properties::new();
            for (k, v) in map {
                check_key(k).map_err(|m| err(format!("[{name}] {m}")))?;
                let s = scalar(v).ok_or_else(|| {
                    err(format!("[{name}] {k:?}: value must be a string, number or boolean, got {}", v.type_str()))
                })?;
                out.insert(k.clone(), s);
            }
            Ok(out)
        };
        let profile = Profile {
            name: file.name.clone(),
            description: file.description.trim().to_string(),
            source: source.to_string(),
            producer: section("producer", &file.producer)?,
            consumer: section("consumer", &file.consumer)?,
            broker: section("broker", &file.broker)?,
            replication_factor: file.topics.replication_factor,
            partitions: file.topics.partitions,
            topic_config: section("topics.config", &file.topics.config)?,
            guarantee: file.processing.guarantee,
            connect_worker: section("connect.worker", &file.connect.worker)?,
            connector: section("connect.connector", &file.connect.connector)?,
        };
        profile.validate().map_err(err)?;
        Ok(profile)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.replication_factor == 0 {
            return Err("[topics] replication_factor must be at least 1".into());
        }
        if self.partitions == 0 {
            return Err("[topics] partitions must be at least 1".into());
        }
        if let Some(isr) = self.topic_config.get("min.insync.replicas") {
            let isr: u16 = isr
                .parse()
                .map_err(|_| format!("[topics.config] min.insync.replicas {isr:?} is not a number"))?;
            if isr == 0 || isr > self.replication_factor {
                return Err(format!(
                    "[topics.config] min.insync.replicas = {isr} with replication_factor = {}: every acks=all write would be rejected",
                    self.replication_factor
                ));
            }
        }
        if let Some(v) = self.connect_worker.get("exactly.once.source.support") {
            if !["enabled", "disabled", "preparing"].contains(&v.as_str()) {
                return Err(format!(
                    "[connect.worker] exactly.once.source.support = {v:?}: must be enabled, disabled or preparing"
                ));
            }
        }
        let worker_eos = self.connect_worker.get("exactly.once.source.support").map(String::as_str);
        if self.connector.get("exactly.once.support").map(String::as_str) == Some("required")
            && worker_eos != Some("enabled")
        {
            return Err("[connect.connector] exactly.once.support = \"required\" needs [connect.worker] exactly.once.source.support = \"enabled\"".into());
        }
        if self.guarantee == Guarantee::ExactlyOnce
            && self.consumer.get("isolation.level").map(String::as_str) != Some("read_committed")
        {
            return Err("[processing] guarantee = \"exactly_once\" needs [consumer] isolation.level = \"read_committed\"".into());
        }
        Ok(())
    }

    /// Checks the profile fits a cluster of `nodes` brokers.
    pub fn check_cluster_size(&self, nodes: u16) -> Result<()> {
        let err = |message: String| Error::Profile { name: self.name.clone(), message };
        if self.replication_factor > nodes {
            return Err(err(format!(
                "[topics] replication_factor = {} but the cluster has {nodes} nodes",
                self.replication_factor
            )));
        }
        for key in ["default.replication.factor", "offsets.topic.replication.factor", "transaction.state.log.replication.factor"] {
            if let Some(v) = self.broker.get(key) {
                if v.parse::<u16>().map(|rf| rf > nodes).unwrap_or(false) {
                    return Err(err(format!("[broker] {key} = {v} but the cluster has {nodes} nodes")));
                }
            }
        }
        Ok(())
    }

    /// Properties of every Kafka producer the stack runs (the pipeline reads this file).
    pub fn producer_properties(&self, bootstrap: &str) -> Properties {
        let mut p = self.producer.clone();
        p.insert("bootstrap.servers".into(), bootstrap.into());
        p
    }

    /// Properties of every Kafka consumer the stack runs.
    pub fn consumer_properties(&self, bootstrap: &str) -> Properties {
        let mut p = self.consumer.clone();
        p.insert("bootstrap.servers".into(), bootstrap.into());
        p
    }

    /// Properties of the pipeline's processing loop ("Streams" layer of the seed).
    pub fn processing_properties(&self) -> Properties {
        let mut p = Properties::new();
        p.insert("processing.guarantee".into(), self.guarantee.as_str().into());
        p.insert("replication.factor".into(), self.replication_factor.to_string());
        p
    }
}

fn check_key(k: &str) -> std::result::Result<(), String> {
    let ok = !k.is_empty()
        && k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{k:?} is not a Kafka setting name (lower case, digits, '.', '_', '-')"))
    }
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A TOML error as "line L, column C: message".
pub(crate) fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            // The line itself names the field (a value's own error does not).
            let text_line = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}, column {col} (`{text_line}`): {}", e.message())
        }
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for (name, _) in BUILTIN {
            let p = Profile::load(name).unwrap();
            assert_eq!(&p.name, name);
            p.check_cluster_size(3).unwrap();
        }
    }

    #[test]
    fn unknown_profile_names_the_choices() {
        let e = Profile::load("nope").unwrap_err().to_string();
        assert!(e.contains("\"nope\"") && e.contains("durable") && e.contains("weak"), "{e}");
    }

    #[test]
    fn errors_name_line_and_field() {
        let text = "name = \"x\"\n[topics]\nreplication_factor = \"three\"\npartitions = 1\n[processing]\nguarantee = \"at_least_once\"\n";
        let e = Profile::parse(text, "my.toml").unwrap_err().to_string();
        assert!(e.contains("my.toml") && e.contains("line 3"), "{e}");

        let text = "name = \"x\"\nbogus = 1\n[topics]\nreplication_factor = 1\npartitions = 1\n[processing]\nguarantee = \"at_least_once\"\n";
        let e = Profile::parse(text, "my.toml").unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn rejects_inconsistent_settings() {
        let base = |extra: &str| {
            format!(
                "name = \"x\"\n[consumer]\n\"isolation.level\" = \"read_committed\"\n[topics]\nreplication_factor = 2\npartitions = 1\n[topics.config]\n{extra}\n[processing]\nguarantee = \"exactly_once\"\n"
            )
        };
        let e = Profile::parse(&base("\"min.insync.replicas\" = 3"), "f").unwrap_err().to_string();
        assert!(e.contains("min.insync.replicas = 3"), "{e}");
        let e = Profile::parse(&base("\"Bad Key\" = 1"), "f").unwrap_err().to_string();
        assert!(e.contains("Bad Key"), "{e}");
        let e = Profile::parse(&base("\"a.b\" = [1]"), "f").unwrap_err().to_string();
        assert!(e.contains("array"), "{e}");
        let p = Profile::parse(&base("\"min.insync.replicas\" = 2"), "f").unwrap();
        let e = p.check_cluster_size(1).unwrap_err().to_string();
        assert!(e.contains("replication_factor = 2"), "{e}");
    }

    #[test]
    fn exactly_once_needs_read_committed() {
        let text = "name = \"x\"\n[topics]\nreplication_factor = 1\npartitions = 1\n[processing]\nguarantee = \"exactly_once\"\n";
        let e = Profile::parse(text, "f").unwrap_err().to_string();
        assert!(e.contains("read_committed"), "{e}");
    }
}
