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
    /// The settings a scenario's `[profile.overrides]` changed, as `section.key = value`.
    pub overrides: Vec<String>,
}

/// A profile as a scenario names it: a built-in name or a path, and settings that replace the
/// profile's own (`[profile.overrides.<section>]`, the sections of a profile file).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileRef {
    pub name: String,
    pub overrides: toml::Table,
}

/// The sections `[profile.overrides]` may change, as in a profile file.
const OVERRIDABLE: &[&str] = &["producer", "consumer", "broker", "topics", "processing", "connect"];

impl ProfileRef {
    pub fn named(name: &str) -> ProfileRef {
        ProfileRef { name: name.to_string(), overrides: toml::Table::new() }
    }
}

impl std::fmt::Display for ProfileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&label_of(&self.name, flatten("", &self.overrides).len()))
    }
}

fn label_of(name: &str, overrides: usize) -> String {
    match overrides {
        0 => name.to_string(),
        1 => format!("{name} + 1 override"),
        n => format!("{name} + {n} overrides"),
    }
}

/// `profile = "weak"`, or `[profile]` with `name` and `[profile.overrides.<section>]`.
impl<'de> Deserialize<'de> for ProfileRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        match toml::Value::deserialize(d)? {
            toml::Value::String(name) => Ok(ProfileRef::named(&name)),
            toml::Value::Table(mut t) => {
                let name = match t.remove("name") {
                    Some(toml::Value::String(n)) => n,
                    Some(v) => return Err(D::Error::custom(format!("profile.name must be a string, got {}", v.type_str()))),
                    None => return Err(D::Error::custom("[profile] needs `name` (a built-in profile or a path) next to its overrides")),
                };
                let overrides = match t.remove("overrides") {
                    Some(toml::Value::Table(o)) => o,
                    Some(v) => return Err(D::Error::custom(format!("profile.overrides must be a table, got {}", v.type_str()))),
                    None => toml::Table::new(),
                };
                if let Some(k) = t.keys().next() {
                    return Err(D::Error::custom(format!("[profile] has an unknown key {k:?}: it takes `name` and `[profile.overrides.<section>]`")));
                }
                for (section, v) in &overrides {
                    if !OVERRIDABLE.contains(&section.as_str()) {
                        return Err(D::Error::custom(format!(
                            "[profile.overrides] has an unknown section {section:?}: the sections are {}",
                            OVERRIDABLE.join(", ")
                        )));
                    }
                    if !v.is_table() {
                        return Err(D::Error::custom(format!("[profile.overrides] {section} must be a table of settings, got {}", v.type_str())));
                    }
                }
                Ok(ProfileRef { name, overrides })
            }
            v => Err(D::Error::custom(format!("profile must be a name or a table, got {}", v.type_str()))),
        }
    }
}

impl serde::Serialize for ProfileRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.overrides.is_empty() {
            return s.serialize_str(&self.name);
        }
        let mut t = toml::Table::new();
        t.insert("name".into(), toml::Value::String(self.name.clone()));
        t.insert("overrides".into(), toml::Value::Table(self.overrides.clone()));
        t.serialize(s)
    }
}

/// Every leaf of `t` as `prefix.key = value`, in key order.
fn flatten(prefix: &str, t: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else if k.contains('.') { format!("{prefix}.{k:?}") } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(inner) => out.extend(flatten(&key, inner)),
            v => out.push(format!("{key} = {v}")),
        }
    }
    out
}

/// `over` laid on `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
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
        let (text, source) = Profile::text_of(name_or_path)?;
        Profile::parse(&text, &source)
    }

    /// A scenario's profile: the named one with its overrides laid on it. Returns the profile and
    /// its resolved text (what the run directory keeps as `profile.toml`).
    pub fn resolve(r: &ProfileRef) -> Result<(Profile, String)> {
        let (text, source) = Profile::text_of(&r.name)?;
        if r.overrides.is_empty() {
            return Ok((Profile::parse(&text, &source)?, text));
        }
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| Error::Profile { name: source.clone(), message: describe_toml_error(&text, &e) })?;
        merge(&mut table, &r.overrides);
        let changed = flatten("", &r.overrides);
        let mut resolved = format!("# {source} with the scenario's [profile.overrides]:\n");
        for c in &changed {
            resolved.push_str(&format!("#   {c}\n"));
        }
        resolved.push_str(&toml::to_string(&table).expect("a TOML table serializes"));
        let mut p = Profile::parse(&resolved, &format!("{source} with [profile.overrides]"))?;
        p.overrides = changed;
        Ok((p, resolved))
    }

    /// The text of a profile and where it came from.
    fn text_of(name_or_path: &str) -> Result<(String, String)> {
        let looks_like_path = name_or_path.ends_with(".toml") || name_or_path.contains('/');
        if !looks_like_path {
            if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
                return Ok((text.to_string(), format!("builtin:{name_or_path}")));
            }
            let local = PathBuf::from("profiles").join(format!("{name_or_path}.toml"));
            if local.is_file() {
                return Profile::read_file(&local);
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
        Profile::read_file(Path::new(name_or_path))
    }

    fn read_file(path: &Path) -> Result<(String, String)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading profile", path, e))?;
        Ok((text, path.display().to_string()))
    }

    /// The name with the overrides, if any: `weak`, `weak + 2 overrides`.
    pub fn label(&self) -> String {
        label_of(&self.name, self.overrides.len())
    }

    /// A hash of every setting (not the name, description or source): two profiles with the same
    /// identity deploy the same stack, two with different ones do not.
    pub fn identity(&self) -> String {
        use sha2::Digest;
        let settings = serde_json::json!({
            "producer": self.producer,
            "consumer": self.consumer,
            "broker": self.broker,
            "replication_factor": self.replication_factor,
            "partitions": self.partitions,
            "topic_config": self.topic_config,
            "guarantee": self.guarantee,
            "connect_worker": self.connect_worker,
            "connector": self.connector,
        });
        let digest = sha2::Sha256::digest(settings.to_string().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
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
            overrides: Vec::new(),
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
        if worker_eos == Some("enabled") {
            // Connect's transactional source producers are idempotent: they refuse to start otherwise.
            if let Some(acks) = self.producer.get("acks").filter(|a| !["all", "-1"].contains(&a.as_str())) {
                return Err(format!("[connect.worker] exactly.once.source.support = \"enabled\" needs [producer] acks = \"all\" (got {acks:?}): Connect's transactional producers are idempotent"));
            }
            if self.producer.get("enable.idempotence").map(String::as_str) == Some("false") {
                return Err("[connect.worker] exactly.once.source.support = \"enabled\" needs [producer] enable.idempotence = true: Connect's transactional producers are idempotent".into());
            }
        }
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

    fn overrides(text: &str) -> ProfileRef {
        #[derive(Deserialize)]
        struct S {
            profile: ProfileRef,
        }
        toml::from_str::<S>(text).map(|s| s.profile).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn overrides_replace_single_settings_and_change_the_identity() {
        let weak = Profile::load("weak").unwrap();
        let r = overrides(
            "[profile]\nname = \"weak\"\n[profile.overrides.consumer]\n\"enable.auto.commit\" = false\n[profile.overrides.topics]\nreplication_factor = 3\n[profile.overrides.connect.worker]\n\"offset.flush.interval.ms\" = 60000\n",
        );
        assert_eq!(r.to_string(), "weak + 3 overrides");
        let (p, text) = Profile::resolve(&r).unwrap();
        assert_eq!(p.consumer["enable.auto.commit"], "false");
        assert_eq!(p.consumer["isolation.level"], weak.consumer["isolation.level"], "untouched settings stay");
        assert_eq!((p.replication_factor, p.partitions), (3, weak.partitions));
        assert_eq!(p.connect_worker["offset.flush.interval.ms"], "60000");
        assert_eq!(p.connect_worker["exactly.once.source.support"], "disabled");
        assert_eq!(p.label(), "weak + 3 overrides");
        assert!(text.contains("enable.auto.commit") && text.starts_with("# builtin:weak"), "{text}");
        assert_eq!(Profile::parse(&text, "resolved").unwrap().consumer, p.consumer, "the saved text is the profile the run used");
        assert_ne!(p.identity(), weak.identity());
        // The identity is the settings': same settings, same identity, whatever the name.
        let (plain, _) = Profile::resolve(&ProfileRef::named("weak")).unwrap();
        assert_eq!(plain.identity(), weak.identity());
        let renamed = Profile { name: "other".into(), description: String::new(), source: "x".into(), ..weak.clone() };
        assert_eq!(renamed.identity(), weak.identity());
        let mut one = weak.clone();
        one.connector.insert("snapshot.mode".into(), "when_needed".into());
        assert_ne!(one.identity(), weak.identity());
    }

    #[test]
    fn bad_overrides_are_named() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            profile: ProfileRef,
        }
        let e = toml::from_str::<S>("[profile]\nname = \"weak\"\n[profile.overrides.brokers]\na = 1\n").unwrap_err().to_string();
        assert!(e.contains("\"brokers\"") && e.contains("producer, consumer"), "{e}");
        let e = toml::from_str::<S>("[profile.overrides.broker]\na = 1\n").unwrap_err().to_string();
        assert!(e.contains("needs `name`"), "{e}");
        let e = toml::from_str::<S>("[profile]\nname = \"weak\"\nextra = 1\n").unwrap_err().to_string();
        assert!(e.contains("\"extra\""), "{e}");
        // Values are checked by the profile's own validation, naming the setting.
        let r = overrides("[profile]\nname = \"weak\"\n[profile.overrides.topics]\nreplication_factor = \"three\"\n");
        let e = Profile::resolve(&r).unwrap_err().to_string();
        assert!(e.contains("replication_factor") && e.contains("builtin:weak with [profile.overrides]"), "{e}");
        let r = overrides("[profile]\nname = \"weak\"\n[profile.overrides.connect.worker]\n\"exactly.once.source.support\" = \"yes\"\n");
        let e = Profile::resolve(&r).unwrap_err().to_string();
        assert!(e.contains("exactly.once.source.support"), "{e}");
        let r = overrides("[profile]\nname = \"nope\"\n[profile.overrides.broker]\na = 1\n");
        assert!(Profile::resolve(&r).unwrap_err().to_string().contains("unknown profile"));
    }

    #[test]
    fn exactly_once_source_support_needs_an_idempotent_producer() {
        let r = overrides("[profile]\nname = \"weak\"\n[profile.overrides.connect.worker]\n\"exactly.once.source.support\" = \"enabled\"\n");
        let e = Profile::resolve(&r).unwrap_err().to_string();
        assert!(e.contains("acks = \"all\"") && e.contains("\"1\""), "{e}");
        let r = overrides("[profile]\nname = \"weak\"\n[profile.overrides.connect.worker]\n\"exactly.once.source.support\" = \"enabled\"\n[profile.overrides.producer]\nacks = \"all\"\n");
        assert!(Profile::resolve(&r).unwrap_err().to_string().contains("enable.idempotence"));
        let r = overrides("[profile]\nname = \"weak\"\n[profile.overrides.connect.worker]\n\"exactly.once.source.support\" = \"enabled\"\n[profile.overrides.producer]\nacks = \"all\"\n\"enable.idempotence\" = true\n");
        Profile::resolve(&r).unwrap();
    }

    #[test]
    fn exactly_once_needs_read_committed() {
        let text = "name = \"x\"\n[topics]\nreplication_factor = 1\npartitions = 1\n[processing]\nguarantee = \"exactly_once\"\n";
        let e = Profile::parse(text, "f").unwrap_err().to_string();
        assert!(e.contains("read_committed"), "{e}");
    }
}
