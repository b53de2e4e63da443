//! The run directory (`reports/<run-id>/`): every file a run leaves, by name, and the records
//! that belong to no single stage — [`RunMeta`] (`run.json`: marks, load window, quiescence,
//! per-hop extras) and the run's id. Whatever reads or writes a run directory names its files
//! through [`RunDir`]; `docs/scenarios.md` describes each of [`RunDir::FILES`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A run directory, and the path of each file in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Every file and directory a run writes, with what it holds (in the order a reader meets
    /// them).
    pub const FILES: &'static [(&'static str, &'static str)] = &[
        ("scenario.toml", "the scenario, resolved: every default written out, with the seed"),
        ("profile.toml", "the profile's text as the run used it"),
        ("run.json", "marks, load window, quiescence, malformed and snapshot records per hop, dead letters"),
        ("history.jsonl", "one invoke line and one ok/fail/unknown line per operation"),
        ("observed/", "every event-carrying record of each hop, in the hop's order (raw.tsv, changes.tsv, warehouse.tsv, lake.tsv)"),
        ("final_state.json", "the sources' rows and the warehouse's and the lake's documents at the end"),
        ("faults.jsonl", "each fault's start and heal, with the evidence that it took effect"),
        ("recoveries.jsonl", "the connector restarts the supervisor made"),
        ("result.json", "the verdict and every count"),
        ("latency.hlog", "one HdrHistogram per hop per second"),
        ("run.log", "the run's progress lines"),
        ("logs/", "every component's log"),
        ("report.html", "the report, self-contained"),
        ("summary.md", "the report in brief"),
        ("junit.xml", "one test case per invariant"),
    ];

    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str) -> PathBuf {
        debug_assert!(RunDir::FILES.iter().any(|(f, _)| *f == name), "{name} is not in RunDir::FILES");
        self.path.join(name)
    }

    pub fn scenario(&self) -> PathBuf {
        self.file("scenario.toml")
    }
    pub fn profile(&self) -> PathBuf {
        self.file("profile.toml")
    }
    pub fn meta(&self) -> PathBuf {
        self.file("run.json")
    }
    pub fn history(&self) -> PathBuf {
        self.file("history.jsonl")
    }
    /// `observed/<hop>.tsv` (`raw`, `changes`, `warehouse`, `lake`: `observation::Hop::as_str`).
    pub fn observed(&self, hop: &str) -> PathBuf {
        self.file("observed/").join(format!("{hop}.tsv"))
    }
    pub fn final_state(&self) -> PathBuf {
        self.file("final_state.json")
    }
    pub fn faults(&self) -> PathBuf {
        self.file("faults.jsonl")
    }
    pub fn recoveries(&self) -> PathBuf {
        self.file("recoveries.jsonl")
    }
    pub fn result(&self) -> PathBuf {
        self.file("result.json")
    }
    pub fn latency(&self) -> PathBuf {
        self.file("latency.hlog")
    }
    pub fn run_log(&self) -> PathBuf {
        self.file("run.log")
    }
    pub fn logs(&self) -> PathBuf {
        self.file("logs/")
    }
    pub fn report_html(&self) -> PathBuf {
        self.file("report.html")
    }
    pub fn summary(&self) -> PathBuf {
        self.file("summary.md")
    }
    pub fn junit(&self) -> PathBuf {
        self.file("junit.xml")
    }
    /// A file's path relative to the run directory, for links between its files.
    pub fn relative(&self, file: &Path) -> String {
        file.strip_prefix(&self.path).unwrap_or(file).display().to_string()
    }
}

/// Where each hop stood when the run began: only later records belong to the run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Marks {
    /// Next offset per raw topic and partition (`topic/partition`).
    pub raw: BTreeMap<String, i64>,
    /// Next offset per partition of `customer_360.changes` (also the lake's mark).
    pub changes: BTreeMap<String, i64>,
    /// Next offset per partition of `customer_360.dead-letter`.
    #[serde(default)]
    pub dead_letter: BTreeMap<String, i64>,
    /// Highest `applied_events.seq` of the warehouse.
    pub warehouse_seq: i64,
}

/// Records a hop held that are not events: counted, with examples, never silently dropped.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HopExtras {
    /// Records that could not be decoded (coordinates and reason of the first few).
    pub malformed: u64,
    pub malformed_examples: Vec<String>,
    /// Snapshot reads (`op: r`) in the raw topics: a connector re-snapshotted during the run.
    pub snapshot_records: u64,
    /// Records of changes made before the run that reached this hop during it (run directories
    /// that predate write ids; the checker now counts them itself, as `earlier_runs`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub earlier_records: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Facts about a run that the checker needs besides the history and the hops (`run.json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunMeta {
    pub run_id: String,
    pub scenario: String,
    pub seed: u64,
    pub profile: String,
    pub platform: String,
    /// The run's tag in its write ids ([`crate::history::run_tag`]; 0 in older run directories).
    #[serde(default)]
    pub run_tag: u32,
    /// µs since the epoch: warm-up start, measured load start, load end.
    pub warmup_start_us: i64,
    pub load_start_us: i64,
    pub load_end_us: i64,
    /// Whether every hop quiesced before the capture; if not, why.
    pub quiesced: bool,
    pub quiesce_note: Option<String>,
    /// Seconds from the end of the load until quiescence (or until giving up).
    pub quiesce_s: f64,
    /// Row changes per second the scenario offered.
    pub offered_rate: f64,
    pub marks: Marks,
    /// Per hop (`raw`, `changes`, `warehouse`, `lake`).
    pub extras: BTreeMap<String, HopExtras>,
    /// Records on `customer_360.dead-letter` written during the run.
    pub dead_letters: u64,
    /// Components not running at the end of the run.
    pub components_down: Vec<String>,
    /// The source offsets Kafka Connect had committed for each connector after quiescence.
    #[serde(default)]
    pub source_offsets: BTreeMap<String, serde_json::Value>,
}

impl RunMeta {
    pub fn file(run_dir: &Path) -> PathBuf {
        RunDir::new(run_dir).meta()
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = RunMeta::file(run_dir);
        std::fs::write(&path, serde_json::to_string_pretty(self).expect("run meta serializes"))
            .map_err(|e| Error::io("writing run.json", &path, e))
    }

    pub fn read(run_dir: &Path) -> Result<RunMeta> {
        let path = RunMeta::file(run_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading run.json", &path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::record(&path, None, e.to_string()))
    }
}

/// `<scenario>-<UTC time>`, e.g. `smoke-20261125T114005Z`.
pub fn run_id(name: &str, unix_s: i64) -> String {
    let ((y, m, d), (hh, mm, ss)) = civil_utc(unix_s);
    format!("{name}-{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

/// Seconds since the epoch as UTC ((year, month, day), (hour, minute, second)).
pub fn civil_utc(unix_s: i64) -> ((i64, i64, i64), (i64, i64, i64)) {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    ((y, m, d), (secs / 3600, secs % 3600 / 60, secs % 60))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_under_the_directory_and_listed() {
        let d = RunDir::new("/r/smoke-20261125T114005Z");
        let all = [d.scenario(), d.profile(), d.meta(), d.history(), d.observed("lake"), d.final_state(), d.faults(), d.recoveries(), d.result(), d.latency(), d.run_log(), d.logs(), d.report_html(), d.summary(), d.junit()];
        for p in &all {
            assert!(p.starts_with(d.path()), "{}", p.display());
        }
        assert_eq!(d.relative(&d.observed("lake")), "observed/lake.tsv");
        assert_eq!(all.len(), RunDir::FILES.len(), "one accessor per listed file");
    }

    #[test]
    fn run_ids_are_utc_times() {
        assert_eq!(run_id("smoke", 1_764_070_805), "smoke-20251125T114005Z");
        assert_eq!(civil_utc(0), ((1970, 1, 1), (0, 0, 0)));
        assert_eq!(civil_utc(951_782_400), ((2000, 2, 29), (0, 0, 0)));
    }
}
