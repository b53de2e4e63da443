//! Scenario files (DESIGN §6): what a run does — name, seed, profile, duration, the load to offer
//! and what must hold at the end. TOML under `scenarios/`; the format is documented in the README.
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
        if ms % 1000 == 0 {
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
}

fn yes() -> bool {
    true
}

impl Default for Expect {
    fn default() -> Expect {
        Expect { lost: 0, duplicated: 0, phantom: 0, out_of_order: 0, final_state: true, p99_ms: None, max_unavailability_s: None }
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
    /// Profile name (`durable`, `weak`) or path.
    #[serde(default = "default_profile")]
    pub profile: String,
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
    #[serde(default)]
    pub expect: Expect,
}

fn default_profile() -> String {
    "durable".into()
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
        Ok(())
    }

    /// Mean rows per transaction.
    pub fn mean_rows_per_tx(&self) -> f64 {
        f64::from(self.load.rows_per_tx[0] + self.load.rows_per_tx[1]) / 2.0
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
        assert_eq!((s.profile.as_str(), s.warmup, s.load.connections), ("durable", Dur::secs(10), 4));
        assert_eq!(s.load.rows_per_tx, [1, 1]);
        let two = Scenario::parse(&format!("{MINIMAL}rows_per_tx = 2\n"), "t").unwrap();
        assert_eq!(two.load.rows_per_tx, [2, 2]);
        assert_eq!(s.expect, Expect::default());
        let again = Scenario::parse(&s.resolved(), "resolved").unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 1);
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
