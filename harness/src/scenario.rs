//! Scenario files (docs/scenarios.md): what a run does — name, seed, profile, duration, the load to offer
//! and what must hold at the end. TOML under `scenarios/`; the format is documented in docs/scenarios.md.
//!
//! Parsed and validated here, once: every value is checked while it is read, so an error names the
//! file, line, column and field, and nothing starts. Durations are strings with a unit (`"90s"`,
//! `"2m"`, `"500ms"`). The resolved scenario — defaults filled in — is written into the run
//! directory, so a run can be replayed from its report.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use cdc_pipeline::decode::Table;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::history::Kind;
use crate::{Error, Result};

/// A duration written with a unit: `ms`, `s`, `m` or `h` (`"90s"`, `"1.5m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    pub fn parse(text: &str) -> std::result::Result<Dur, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| format!("{text:?} is not a duration like \"90s\", \"2m\" or \"500ms\""))?;
        let factor = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{text:?} has no unit; write e.g. \"{num}s\"")),
            other => return Err(format!("unknown unit {other:?} in {text:?} (ms, s, m, h)")),
        };
        Ok(Dur(Duration::from_secs_f64(n * factor)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A number that must be > 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Positive(pub f64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Positive, D::Error> {
        let v = f64::deserialize(d)?;
        if v.is_finite() && v > 0.0 {
            Ok(Positive(v))
        } else {
            Err(serde::de::Error::custom(format!("must be a number greater than 0, got {v}")))
        }
    }
}

/// How keys are drawn from a table's key space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Keys {
    /// Every key equally likely.
    Uniform,
    /// Zipf-distributed: key 1 hottest. `exponent` > 0 (1.0 is classic Zipf).
    Zipf { exponent: Positive },
}

/// Weights of the operations on one table. Absent operations have weight 0.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub insert: u32,
    #[serde(default)]
    pub update: u32,
    #[serde(default)]
    pub delete: u32,
    /// Move the row to another customer (flights and vehicles only).
    #[serde(default, rename = "move")]
    pub move_: u32,
}

impl Mix {
    pub fn total(&self) -> u32 {
        self.insert + self.update + self.delete + self.move_
    }

    /// (kind, weight) pairs.
    pub fn weights(&self) -> [(Kind, u32); 4] {
        [(Kind::Insert, self.insert), (Kind::Update, self.update), (Kind::Delete, self.delete), (Kind::Move, self.move_)]
    }
}

/// The operation mix per table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mixes {
    #[serde(default)]
    pub customers: Mix,
    #[serde(default)]
    pub flights: Mix,
    #[serde(default)]
    pub vehicles: Mix,
}

impl Mixes {
    pub fn of(&self, table: Table) -> &Mix {
        match table {
            Table::Customers => &self.customers,
            Table::Flights => &self.flights,
            Table::Vehicles => &self.vehicles,
        }
    }
}

impl Default for Mixes {
    fn default() -> Mixes {
        Mixes {
            customers: Mix { insert: 3, update: 5, delete: 1, move_: 0 },
            flights: Mix { insert: 3, update: 3, delete: 1, move_: 2 },
            vehicles: Mix { insert: 3, update: 3, delete: 1, move_: 2 },
        }
    }
}

/// Number of distinct primary keys per table (ids 1..=n).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpace {
    pub customers: u32,
    pub flights: u32,
    pub vehicles: u32,
}

impl KeySpace {
    pub fn of(&self, table: Table) -> u32 {
        match table {
            Table::Customers => self.customers,
            Table::Flights => self.flights,
            Table::Vehicles => self.vehicles,
        }
    }
}

impl Default for KeySpace {
    fn default() -> KeySpace {
        KeySpace { customers: 200, flights: 600, vehicles: 400 }
    }
}

/// The load offered to the source databases, open loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Row changes per second offered (transactions per second = rate / mean rows per transaction).
    pub rate: Positive,
    /// Rows per transaction: `n`, or drawn uniformly from `[min, max]`.
    #[serde(default = "default_rows_per_tx", deserialize_with = "rows_per_tx")]
    pub rows_per_tx: [u32; 2],
    /// Connections (writers) per source database. Each owns a slice of the key space, so one
    /// row's changes are never in flight concurrently and commit order is acknowledgement order.
    #[serde(default = "default_connections")]
    pub connections: u32,
    #[serde(default = "default_keys")]
    pub keys: Keys,
    #[serde(default)]
    pub key_space: KeySpace,
    #[serde(default)]
    pub mix: Mixes,
    /// Longest a transaction may take before its outcome is recorded as unknown.
    #[serde(default = "default_op_timeout")]
    pub timeout: Dur,
}

fn default_rows_per_tx() -> [u32; 2] {
    [1, 1]
}

fn rows_per_tx<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<[u32; 2], D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(u32),
        Range([u32; 2]),
    }
    match Either::deserialize(d) {
        Ok(Either::One(n)) => Ok([n, n]),
        Ok(Either::Range(r)) => Ok(r),
        Err(_) => Err(serde::de::Error::custom("must be a count (e.g. 2) or a range [min, max]")),
    }
}
fn default_connections() -> u32 {
    4
}
fn default_keys() -> Keys {
    Keys::Uniform
}
fn default_op_timeout() -> Dur {
    Dur::secs(5)
}

/// What must hold at the end for the verdict to be `pass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Lost events allowed, per hop.
    #[serde(default)]
    pub lost: u64,
    /// Duplicated events allowed, per hop.
    #[serde(default)]
    pub duplicated: u64,
    /// Phantom events (arrived, never acknowledged nor of unknown outcome) allowed, per hop.
    #[serde(default)]
    pub phantom: u64,
    /// Events applied out of commit order (per source row) allowed, per hop.
    #[serde(default)]
    pub out_of_order: u64,
    /// Whether the warehouse must equal the join recomputed from the sources.
    #[serde(default = "yes")]
    pub final_state: bool,
    /// Bound on the p99 of source-intent → warehouse latency, in ms.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Bound on the longest stretch without warehouse progress while load was offered, in s.
    #[serde(default)]
    pub max_unavailability_s: Option<f64>,
    /// The verdict the scenario must end with: `pass`, or `fail` for a negative control (a
    /// configuration or a component known to break an invariant). A run that ends as expected
    /// exits 0.
    #[serde(default, skip_serializing_if = "ExpectedVerdict::is_pass")]
    pub verdict: ExpectedVerdict,
    /// With `verdict = "fail"`: the invariants that must be among the run's violations (the
    /// bounds above decide what violates them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violated: Vec<Invariant>,
}

/// The verdict a scenario expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVerdict {
    #[default]
    Pass,
    Fail,
}

impl ExpectedVerdict {
    pub fn is_pass(&self) -> bool {
        *self == ExpectedVerdict::Pass
    }
}

/// What a run is checked for; each violation the checker reports names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// An acknowledged change never arrived at a hop.
    Lost,
    /// A change arrived at a hop more than once.
    Duplicated,
    /// A record arrived that no acknowledged (or unknown) write made.
    Phantom,
    /// A record carries another operation than its write made.
    WrongOperation,
    /// A row's changes arrived out of commit order.
    OutOfOrder,
    /// A record could not be read.
    Malformed,
    /// Records went to the dead-letter topic.
    DeadLetters,
    /// The latency bound (`p99_ms`) was exceeded.
    Latency,
    /// The unavailability bound (`max_unavailability_s`) was exceeded.
    Unavailability,
    /// The warehouse (or the lake's folded documents) differ from the join of the sources.
    FinalState,
}

impl Invariant {
    pub fn as_str(self) -> &'static str {
        match self {
            Invariant::Lost => "lost",
            Invariant::Duplicated => "duplicated",
            Invariant::Phantom => "phantom",
            Invariant::WrongOperation => "wrong_operation",
            Invariant::OutOfOrder => "out_of_order",
            Invariant::Malformed => "malformed",
            Invariant::DeadLetters => "dead_letters",
            Invariant::Latency => "latency",
            Invariant::Unavailability => "unavailability",
            Invariant::FinalState => "final_state",
        }
    }
}

fn yes() -> bool {
    true
}

impl Default for Expect {
    fn default() -> Expect {
        Expect {
            lost: 0,
            duplicated: 0,
            phantom: 0,
            out_of_order: 0,
            final_state: true,
            p99_ms: None,
            max_unavailability_s: None,
            verdict: ExpectedVerdict::Pass,
            violated: Vec::new(),
        }
    }
}

/// What a fault does (docs/faults.md). Every fault is healed after its `for`, and at the end of the
/// load at the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL the target's process(es); start them again when healed.
    Kill,
    /// SIGSTOP; SIGCONT when healed.
    Pause,
    /// Stop gracefully (SIGTERM, wait for exit); start again when healed.
    Restart,
    /// Cut a Kafka node from the other nodes and from every client.
    Isolate,
    /// Majority/minority split: the target node on one side, the other nodes on the other;
    /// clients still reach both sides.
    Split,
    /// The target node's packets to `to` are dropped (the other direction flows).
    OneWay,
    /// Cut clients from the cluster: `cluster` cuts every client (Kafka Connect, the pipeline,
    /// the harness), `connect` only Kafka Connect, `pipeline` only the join and the sinks (each
    /// reaches the brokers on its own listener).
    CutClients,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Isolate => "isolate",
            FaultKind::Split => "split",
            FaultKind::OneWay => "one-way",
            FaultKind::CutClients => "cut-clients",
        }
    }

    /// Partitions: need network namespaces.
    pub fn is_partition(self) -> bool {
        matches!(self, FaultKind::Isolate | FaultKind::Split | FaultKind::OneWay | FaultKind::CutClients)
    }
}

/// What a fault hits, resolved when the fault starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `kafka-<n>`.
    Node(u16),
    /// `random-broker`: a node drawn from the seed.
    RandomBroker,
    /// `two-brokers`: two nodes drawn from the seed, at once.
    TwoBrokers,
    /// `leader:<topic>/<partition>`: the partition's leader.
    Leader { topic: String, partition: i32 },
    /// `controller`: the active KRaft controller.
    Controller,
    /// `coordinator`: the transaction coordinator of the join (`cdc-chaos-join`).
    Coordinator,
    /// `group-coordinator:<group>`: the coordinator of a consumer or Connect group (e.g.
    /// `cdc-chaos-connect`, the Kafka Connect workers' group).
    GroupCoordinator(String),
    /// `cluster`: every node (for `cut-clients`).
    Cluster,
    /// Any other component by name: `connect`, `join`, `warehouse-sink`, `lake-sink`,
    /// `postgres`, `mariadb`, `warehouse`, `lake`; `pipeline` is the join and both sinks.
    Component(String),
}

const COMPONENTS: &[&str] = &["connect", "pipeline", "join", "warehouse-sink", "lake-sink", "postgres", "mariadb", "warehouse", "lake"];

impl Target {
    /// Whether it names a role (a partition's leader, the active controller, a coordinator),
    /// resolved from the cluster's metadata when the fault starts.
    pub fn is_role(&self) -> bool {
        matches!(self, Target::Leader { .. } | Target::Controller | Target::Coordinator | Target::GroupCoordinator(_))
    }

    pub fn parse(s: &str) -> std::result::Result<Target, String> {
        let s = s.trim();
        if let Some(n) = s.strip_prefix("kafka-") {
            return n.parse().ok().filter(|n| *n >= 1).map(Target::Node).ok_or_else(|| format!("{s:?}: node numbers start at 1 (kafka-1)"));
        }
        if let Some(tp) = s.strip_prefix("leader:") {
            let (topic, p) = tp.rsplit_once('/').ok_or_else(|| format!("{s:?}: write leader:<topic>/<partition>"))?;
            let partition = p.parse().map_err(|_| format!("{s:?}: partition {p:?} is not a number"))?;
            return Ok(Target::Leader { topic: topic.to_string(), partition });
        }
        if let Some(group) = s.strip_prefix("group-coordinator:") {
            if group.trim().is_empty() {
                return Err(format!("{s:?}: write group-coordinator:<group id>"));
            }
            return Ok(Target::GroupCoordinator(group.trim().to_string()));
        }
        Ok(match s {
            "random-broker" => Target::RandomBroker,
            "two-brokers" => Target::TwoBrokers,
            "controller" => Target::Controller,
            "coordinator" => Target::Coordinator,
            "cluster" => Target::Cluster,
            c if COMPONENTS.contains(&c) => Target::Component(c.to_string()),
            other => {
                return Err(format!(
                    "unknown target {other:?}: kafka-<n>, random-broker, two-brokers, leader:<topic>/<partition>, controller, coordinator, group-coordinator:<group>, cluster, {}",
                    COMPONENTS.join(", ")
                ))
            }
        })
    }

    /// Whether the target names a set of Kafka clients `cut-clients` can cut: `cluster` (all),
    /// `connect`, `pipeline`.
    pub fn is_client_group(&self) -> bool {
        matches!(self, Target::Cluster) || matches!(self, Target::Component(c) if c == "connect" || c == "pipeline")
    }

    /// Whether the target is one Kafka node.
    pub fn is_node(&self) -> bool {
        matches!(
            self,
            Target::Node(_) | Target::RandomBroker | Target::Leader { .. } | Target::Controller | Target::Coordinator | Target::GroupCoordinator(_)
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(n) => write!(f, "kafka-{n}"),
            Target::RandomBroker => f.write_str("random-broker"),
            Target::TwoBrokers => f.write_str("two-brokers"),
            Target::Leader { topic, partition } => write!(f, "leader:{topic}/{partition}"),
            Target::Controller => f.write_str("controller"),
            Target::Coordinator => f.write_str("coordinator"),
            Target::GroupCoordinator(g) => write!(f, "group-coordinator:{g}"),
            Target::Cluster => f.write_str("cluster"),
            Target::Component(c) => f.write_str(c),
        }
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Target, D::Error> {
        Target::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// One fault of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When it starts, from the start of the measured load (after the warm-up).
    pub at: Dur,
    pub kind: FaultKind,
    #[serde(default = "default_target")]
    pub target: Target,
    /// How long until it is healed.
    #[serde(rename = "for", default = "default_fault_for")]
    pub for_: Dur,
    /// `one-way` only: the node that stops receiving from `target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Target>,
    /// Start only once every heal due by `at` has finished (a restarted component serves
    /// again), however long that takes; the wait shifts the rest of the timeline. For faults
    /// whose meaning depends on the previous one having healed (a second kill that must hit a
    /// worker that recovered).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_heals: bool,
}

fn default_target() -> Target {
    Target::RandomBroker
}
fn default_fault_for() -> Dur {
    Dur::secs(10)
}

/// Faults drawn from the seed: starting at `start`, one fault after another, each lasting a
/// duration drawn from `for`, followed by a fault-free `gap` and an exponentially distributed
/// wait of mean `interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFaults {
    pub kinds: Vec<FaultKind>,
    #[serde(default = "default_targets")]
    pub targets: Vec<Target>,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(rename = "for", default = "default_random_for")]
    pub for_: [Dur; 2],
    #[serde(default = "default_gap")]
    pub gap: Dur,
    #[serde(default = "default_start")]
    pub start: Dur,
}

fn default_targets() -> Vec<Target> {
    vec![Target::RandomBroker]
}
fn default_interval() -> Dur {
    Dur::secs(20)
}
fn default_random_for() -> [Dur; 2] {
    [Dur::secs(5), Dur::secs(15)]
}
fn default_gap() -> Dur {
    Dur::secs(10)
}
fn default_start() -> Dur {
    Dur::secs(5)
}

/// Checks one fault; returns (field, message).
fn check_fault(f: &FaultSpec, duration: Duration) -> std::result::Result<(), (&'static str, String)> {
    if f.at.0 >= duration {
        return Err(("at", format!("{} {} is not before the end of the load ({})", f.kind.as_str(), f.at, Dur(duration))));
    }
    check_kind_target(f.kind, &f.target)?;
    match (f.kind, &f.to) {
        (FaultKind::OneWay, None) => Err(("to", "one-way needs `to`, the node that stops receiving from `target`".into())),
        (FaultKind::OneWay, Some(to)) if !to.is_node() => Err(("to", format!("{to} is not one Kafka node"))),
        (FaultKind::OneWay, Some(_)) => Ok(()),
        (_, Some(_)) => Err(("to", format!("`to` is for one-way faults, not {}", f.kind.as_str()))),
        _ => Ok(()),
    }
}

fn check_kind_target(kind: FaultKind, target: &Target) -> std::result::Result<(), (&'static str, String)> {
    match kind {
        FaultKind::CutClients if !target.is_client_group() && *target != Target::RandomBroker => Err((
            "target",
            format!("cut-clients cuts clients from the whole cluster: target must be \"cluster\" (every client), \"connect\" or \"pipeline\", not {target}"),
        )),
        FaultKind::Isolate | FaultKind::Split | FaultKind::OneWay if !target.is_node() => {
            Err(("target", format!("{} partitions one Kafka node; {target} is not one", kind.as_str())))
        }
        FaultKind::Kill | FaultKind::Pause | FaultKind::Restart if *target == Target::Cluster => {
            Err(("target", format!("{} needs a process, not the whole cluster", kind.as_str())))
        }
        _ => Ok(()),
    }
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Drives every random choice of the run: the same seed gives the same operations.
    pub seed: u64,
    /// Profile name (`durable`, `weak`) or path, or `[profile]` with `name` and
    /// `[profile.overrides.<section>]` (single settings of that profile replaced).
    #[serde(default = "default_profile")]
    pub profile: crate::profile::ProfileRef,
    /// How long the load is offered (after the warm-up).
    pub duration: Dur,
    /// Load offered before the measured part; checked for delivery, not in latency figures.
    #[serde(default = "default_warmup")]
    pub warmup: Dur,
    /// How long every hop's position must stay still to call the pipeline quiesced.
    #[serde(default = "default_settle")]
    pub settle: Dur,
    /// Longest wait for quiescence after the load; past it the verdict is `unknown`.
    #[serde(default = "default_quiesce_timeout")]
    pub quiesce_timeout: Dur,
    pub load: Load,
    /// Faults at fixed times (docs/faults.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
    /// Faults drawn from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_faults: Option<RandomFaults>,
    #[serde(default)]
    pub expect: Expect,
}

fn default_profile() -> crate::profile::ProfileRef {
    crate::profile::ProfileRef::named("durable")
}
fn default_warmup() -> Dur {
    Dur::secs(10)
}
fn default_settle() -> Dur {
    Dur::secs(10)
}
fn default_quiesce_timeout() -> Dur {
    Dur::secs(300)
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading scenario", path, e))?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a scenario; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Scenario> {
        let err = |m: String| Error::Usage(format!("scenario {source}: {m}"));
        let s: Scenario = toml::from_str(text).map_err(|e| err(crate::profile::describe_toml_error(text, &e)))?;
        s.validate().map_err(|(field, m)| err(format!("{}{field}: {m}", line_of(text, field))))?;
        Ok(s)
    }

    /// The cross-field checks again, after a field was changed in code (e.g. a sweep's
    /// duration): the error names the field.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.validate().map_err(|(field, m)| format!("{field}: {m}"))
    }

    /// Cross-field checks (single values are checked while parsing). Returns (field, message).
    fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(("name", format!("{:?} must be non-empty and use only letters, digits, '-', '_' and '.' (it names the report directory)", self.name)));
        }
        if self.duration.0 < Duration::from_secs(1) {
            return Err(("duration", format!("{} is shorter than 1s", self.duration)));
        }
        if self.settle.0 < Duration::from_secs(1) {
            return Err(("settle", format!("{} is shorter than 1s", self.settle)));
        }
        if self.quiesce_timeout.0 <= self.settle.0 {
            return Err(("quiesce_timeout", format!("{} must be longer than settle ({})", self.quiesce_timeout, self.settle)));
        }
        let l = &self.load;
        let [lo, hi] = l.rows_per_tx;
        if lo == 0 || lo > hi {
            return Err(("rows_per_tx", format!("[{lo}, {hi}] must be [min, max] with 1 <= min <= max")));
        }
        if l.connections == 0 || l.connections > 64 {
            return Err(("connections", format!("{} must be between 1 and 64", l.connections)));
        }
        if l.timeout.0 < Duration::from_millis(100) {
            return Err(("timeout", format!("{} is shorter than 100ms", l.timeout)));
        }
        for t in [Table::Customers, Table::Flights, Table::Vehicles] {
            let n = l.key_space.of(t);
            if l.mix.of(t).total() > 0 && n < l.connections * hi {
                return Err(("key_space", format!(
                    "{} has {n} keys; it needs at least connections x max rows per transaction = {} so that each writer owns enough keys",
                    t.as_str(),
                    l.connections * hi
                )));
            }
        }
        if l.mix.customers.move_ > 0 {
            return Err(("move", "customers cannot move: only flights and vehicles have a customer_id".into()));
        }
        if l.mix.customers.total() + l.mix.flights.total() + l.mix.vehicles.total() == 0 {
            return Err(("mix", "every weight is 0: there is nothing to offer".into()));
        }
        if self.expect.verdict.is_pass() && !self.expect.violated.is_empty() {
            return Err(("violated", "lists invariants a run must violate: it needs verdict = \"fail\"".into()));
        }
        if self.expect.violated.contains(&Invariant::Latency) && self.expect.p99_ms.is_none() {
            return Err(("violated", "\"latency\" can be violated only with a p99_ms bound".into()));
        }
        if self.expect.violated.contains(&Invariant::Unavailability) && self.expect.max_unavailability_s.is_none() {
            return Err(("violated", "\"unavailability\" can be violated only with a max_unavailability_s bound".into()));
        }
        if self.expect.violated.contains(&Invariant::FinalState) && !self.expect.final_state {
            return Err(("violated", "\"final_state\" can be violated only with final_state = true".into()));
        }
        for f in &self.faults {
            check_fault(f, self.duration.0)?;
        }
        if let Some(r) = &self.random_faults {
            if r.kinds.is_empty() || r.targets.is_empty() {
                return Err(("kinds", "random_faults needs at least one kind and one target".into()));
            }
            if r.for_[0] > r.for_[1] || r.for_[0].0.is_zero() {
                return Err(("for", format!("[{}, {}] must be [min, max] with 0 < min <= max", r.for_[0], r.for_[1])));
            }
            if r.interval.0 < Duration::from_secs(1) {
                return Err(("interval", format!("{} is shorter than 1s", r.interval)));
            }
            for k in &r.kinds {
                for t in &r.targets {
                    if *k == FaultKind::OneWay {
                        return Err(("kinds", "one-way needs a `to` node: put it in the [[faults]] timeline".into()));
                    }
                    check_kind_target(*k, t).map_err(|(_, m)| ("targets", m))?;
                }
            }
        }
        Ok(())
    }

    /// Mean rows per transaction.
    pub fn mean_rows_per_tx(&self) -> f64 {
        f64::from(self.load.rows_per_tx[0] + self.load.rows_per_tx[1]) / 2.0
    }

    /// Every fault of the run, timeline and random draws, by start time. The random part comes
    /// from the seed alone: the same scenario gives the same schedule.
    pub fn schedule(&self) -> Vec<FaultSpec> {
        use rand::{Rng, SeedableRng};
        let mut out = self.faults.clone();
        if let Some(r) = &self.random_faults {
            let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ 0x006e_656d_6573_6973);
            let exp = rand_distr::Exp::new(1.0 / r.interval.0.as_secs_f64()).expect("interval > 0");
            let mut t = r.start.0;
            while t < self.duration.0 {
                let kind = r.kinds[rng.random_range(0..r.kinds.len())];
                let target = r.targets[rng.random_range(0..r.targets.len())].clone();
                let lo = r.for_[0].0.as_millis() as u64;
                let hi = r.for_[1].0.as_millis() as u64;
                let for_ = Dur(Duration::from_millis(rng.random_range(lo..=hi)));
                let target = if kind == FaultKind::CutClients && !target.is_client_group() { Target::Cluster } else { target };
                out.push(FaultSpec { at: Dur(t), kind, target, for_, to: None, after_heals: false });
                let wait: f64 = rand_distr::Distribution::sample(&exp, &mut rng);
                t += for_.0 + r.gap.0 + Duration::from_secs_f64(wait.min(3600.0));
            }
        }
        out.sort_by_key(|f| f.at);
        out
    }

    /// The scenario with every default written out (TOML), as saved in the run directory.
    pub fn resolved(&self) -> String {
        toml::to_string(self).expect("a scenario serializes")
    }

    /// Row changes offered per table and kind, per second (for the report).
    pub fn offered_by_table(&self) -> BTreeMap<&'static str, f64> {
        let total: u32 = [Table::Customers, Table::Flights, Table::Vehicles].iter().map(|t| self.load.mix.of(*t).total()).sum();
        [Table::Customers, Table::Flights, Table::Vehicles]
            .iter()
            .map(|t| (t.as_str(), self.load.rate.0 * f64::from(self.load.mix.of(*t).total()) / f64::from(total.max(1))))
            .collect()
    }
}

/// "line N, " of the first line assigning `field`, if there is one.
fn line_of(text: &str, field: &str) -> String {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(field).is_some_and(|rest| rest.trim_start().starts_with('='))
                || l.starts_with(&format!("[load.{field}")) || l.starts_with(&format!("[{field}"))
        })
        .map(|n| format!("line {}, ", n + 1))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 20\n";

    #[test]
    fn minimal_scenario_gets_defaults_and_round_trips() {
        let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!((s.profile.name.as_str(), s.warmup, s.load.connections), ("durable", Dur::secs(10), 4));
        assert_eq!(s.load.rows_per_tx, [1, 1]);
        let two = Scenario::parse(&format!("{MINIMAL}rows_per_tx = 2\n"), "t").unwrap();
        assert_eq!(two.load.rows_per_tx, [2, 2]);
        assert_eq!(s.expect, Expect::default());
        let again = Scenario::parse(&s.resolved(), "resolved").unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn profile_overrides_round_trip() {
        let text = format!("{MINIMAL}[profile]\nname = \"weak\"\n[profile.overrides.connect.connector]\n\"snapshot.mode\" = \"when_needed\"\n");
        let s = Scenario::parse(&text, "t.toml").unwrap();
        assert_eq!(s.profile.to_string(), "weak + 1 override");
        assert_eq!(Scenario::parse(&s.resolved(), "resolved").unwrap(), s);
        let e = Scenario::parse(&format!("{MINIMAL}[profile]\nname = \"weak\"\n[profile.overrides.kafka]\na = 1\n"), "t.toml").unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("\"kafka\""), "{e}");
    }

    /// Every scenario of the library, `scenarios/` and its folders (`scenarios/findings/`).
    fn library() -> Vec<std::path::PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "toml") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios"), &mut out);
        out.sort();
        out
    }

    #[test]
    fn shipped_scenarios_parse_and_their_profiles_resolve() {
        let all = library();
        assert!(!all.is_empty());
        for p in all {
            let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            crate::Profile::resolve(&s.profile).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }

    /// A negative control (a scenario under the `weak` profile, expected to fail) proves the
    /// checker can fail only if the same load and faults pass under `durable`: each has a twin
    /// `<name>-durable.toml` that differs in name, description and profile alone.
    #[test]
    fn every_negative_control_has_a_durable_twin() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut controls = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let weak = Scenario::load(&p).unwrap();
            if weak.profile != crate::profile::ProfileRef::named("weak") {
                continue;
            }
            controls += 1;
            let twin_path = dir.join(format!("{}-durable.toml", weak.name));
            let twin = Scenario::load(&twin_path).unwrap_or_else(|e| panic!("{}: the durable twin of {}: {e}", twin_path.display(), weak.name));
            assert_eq!(twin.profile, crate::profile::ProfileRef::named("durable"), "{}", twin_path.display());
            assert!(twin.expect.verdict.is_pass(), "{}: the durable twin must pass", twin_path.display());
            assert!(!weak.expect.verdict.is_pass(), "{}: a negative control expects verdict = \"fail\"", p.display());
            let expect = Expect { verdict: weak.expect.verdict, violated: weak.expect.violated.clone(), ..twin.expect.clone() };
            let same = Scenario { name: weak.name.clone(), description: weak.description.clone(), profile: weak.profile.clone(), expect, ..twin };
            assert_eq!(same, weak, "{} differs from {} in more than name, description, profile and expected verdict", twin_path.display(), p.display());
        }
        assert!(controls >= 1, "the library has a negative control");
    }

    const WITH_FAULTS: &str = "name = \"t\"\nseed = 7\nduration = \"60s\"\n[load]\nrate = 20\n\
        [[faults]]\nat = \"10s\"\nkind = \"kill\"\ntarget = \"leader:crm.public.customers/0\"\nfor = \"15s\"\n\
        [[faults]]\nat = \"30s\"\nkind = \"one-way\"\ntarget = \"kafka-1\"\nto = \"kafka-2\"\n\
        [random_faults]\nkinds = [\"pause\", \"isolate\"]\ntargets = [\"random-broker\", \"controller\"]\ninterval = \"10s\"\n";

    #[test]
    fn faults_parse_resolve_and_round_trip() {
        let s = Scenario::parse(WITH_FAULTS, "t").unwrap();
        assert_eq!(s.faults[0].target, Target::Leader { topic: "crm.public.customers".into(), partition: 0 });
        assert_eq!(s.faults[1].to, Some(Target::Node(2)));
        assert_eq!(s.faults[1].for_, Dur::secs(10), "default duration");
        assert_eq!(Scenario::parse(&s.resolved(), "resolved").unwrap(), s);
        let schedule = s.schedule();
        assert!(schedule.len() > 3, "{schedule:?}");
        assert!(schedule.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(schedule.iter().all(|f| f.at.0 < Duration::from_secs(60)));
    }

    #[test]
    fn client_cuts_and_group_coordinators() {
        let base = "name = \"t\"\nseed = 7\nduration = \"60s\"\n[load]\nrate = 20\n[[faults]]\nat = \"10s\"\n";
        for t in ["cluster", "connect", "pipeline"] {
            let s = Scenario::parse(&format!("{base}kind = \"cut-clients\"\ntarget = \"{t}\"\n"), "t").unwrap();
            assert!(s.faults[0].target.is_client_group(), "{t}");
            assert_eq!(Scenario::parse(&s.resolved(), "resolved").unwrap(), s);
        }
        let e = error(&format!("{base}kind = \"cut-clients\"\ntarget = \"join\"\n"));
        assert!(e.contains("line 9") && e.contains("\"connect\" or \"pipeline\""), "{e}");
        let s = Scenario::parse(&format!("{base}kind = \"isolate\"\ntarget = \"group-coordinator:cdc-chaos-connect\"\n"), "t").unwrap();
        assert_eq!(s.faults[0].target, Target::GroupCoordinator("cdc-chaos-connect".into()));
        assert_eq!(Scenario::parse(&s.resolved(), "resolved").unwrap(), s);
        let e = error(&format!("{base}kind = \"isolate\"\ntarget = \"group-coordinator:\"\n"));
        assert!(e.contains("group-coordinator:<group id>"), "{e}");
        let s = Scenario::parse(&format!("{base}kind = \"kill\"\ntarget = \"pipeline\"\n"), "t").unwrap();
        assert_eq!(s.faults[0].target, Target::Component("pipeline".into()));
    }

    #[test]
    fn bad_faults_name_line_and_field() {
        let base = "name = \"t\"\nseed = 7\nduration = \"60s\"\n[load]\nrate = 20\n[[faults]]\nat = \"10s\"\n";
        let e = error(&format!("{base}kind = \"explode\"\n"));
        assert!(e.contains("line 8") && e.contains("explode"), "{e}");
        let e = error(&format!("{base}kind = \"kill\"\ntarget = \"kafka-0\"\n"));
        assert!(e.contains("line 9") && e.contains("kafka-1"), "{e}");
        let e = error(&format!("{base}kind = \"isolate\"\ntarget = \"connect\"\n"));
        assert!(e.contains("target") && e.contains("not one"), "{e}");
        let e = error(&format!("{base}kind = \"one-way\"\ntarget = \"kafka-1\"\n"));
        assert!(e.contains("`to`"), "{e}");
        let e = error("name = \"t\"\nseed = 7\nduration = \"60s\"\n[load]\nrate = 20\n[[faults]]\nat = \"90s\"\nkind = \"kill\"\n");
        assert!(e.contains("line 7") && e.contains("not before the end"), "{e}");
    }

    proptest::proptest! {
        /// The same scenario gives the same schedule; every fault starts within the load and
        /// random faults never overlap (each is followed by its gap).
        #[test]
        fn schedules_come_from_the_seed(seed in proptest::prelude::any::<u64>()) {
            let text = WITH_FAULTS.replace("seed = 7", &format!("seed = {seed}"));
            let s = Scenario::parse(&text, "t").unwrap();
            let a = s.schedule();
            proptest::prop_assert_eq!(&a, &s.schedule());
            proptest::prop_assert!(a.iter().all(|f| f.at.0 < Duration::from_secs(60)));
            let random: Vec<&FaultSpec> = a.iter().filter(|f| matches!(f.kind, FaultKind::Pause | FaultKind::Isolate)).collect();
            for w in random.windows(2) {
                proptest::prop_assert!(w[0].at.0 + w[0].for_.0 + Duration::from_secs(10) <= w[1].at.0, "{:?}", w);
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("90s").unwrap(), Dur::secs(90));
        assert_eq!(Dur::parse("1.5m").unwrap(), Dur::secs(90));
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert!(Dur::parse("10").unwrap_err().contains("no unit"));
        assert!(Dur::parse("10 parsecs").unwrap_err().contains("unknown unit"));
        assert_eq!(Dur::parse("250ms").unwrap().to_string(), "250ms");
    }

    fn error(text: &str) -> String {
        Scenario::parse(text, "bad.toml").unwrap_err().to_string()
    }

    #[test]
    fn bad_files_name_line_and_field() {
        let e = error("name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = -3\n");
        assert!(e.contains("bad.toml") && e.contains("line 5") && e.contains("greater than 0"), "{e}");
        let e = error("name = \"t\"\nseed = 7\nduration = \"30\"\n[load]\nrate = 3\n");
        assert!(e.contains("line 3"), "{e}");
        let e = error("name = \"t\"\nseed = 7\nduration = \"30s\"\nbogus = 1\n[load]\nrate = 3\n");
        assert!(e.contains("line 4") && e.contains("bogus"), "{e}");
        let e = error("name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 3\nrows_per_tx = [3, 1]\n");
        assert!(e.contains("line 6") && e.contains("rows_per_tx"), "{e}");
        let e = error("name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 3\n[load.mix.customers]\nmove = 1\n");
        assert!(e.contains("line 7") && e.contains("cannot move"), "{e}");
        let e = error("name = \"a b\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 3\n");
        assert!(e.contains("line 1") && e.contains("name"), "{e}");
        let e = error("name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 3\nconnections = 8\n[load.key_space]\ncustomers = 4\nflights = 100\nvehicles = 100\n");
        assert!(e.contains("key_space") && e.contains("customers has 4 keys"), "{e}");
        let e = error("name = \"t\"\nseed = 7\nduration = \"30s\"\n");
        assert!(e.contains("load"), "{e}");
    }
}
