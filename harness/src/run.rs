//! `cdc-chaos run <scenario>`: one run from start to verdict, and the run directory it leaves.
//!
//! Brings the stack up if needed, waits until the pipeline has quiesced and marks every hop's
//! position (events before the mark belong to earlier runs), offers the warm-up and the load,
//! waits until every hop has quiesced again (bounded: past the scenario's `quiesce_timeout` the
//! verdict is `unknown`), captures what each hop holds and the final state, and checks it.
//!
//! A run directory (`reports/<run-id>/`) holds: `scenario.toml` (resolved, with the seed),
//! `run.json` ([`RunMeta`]), `history.jsonl`, `observed/<hop>.tsv`, `final_state.json`,
//! `faults.jsonl`, `result.json`, `latency.hlog`, `run.log` and `logs/` (every component's log).
//! `cdc-chaos check <run-dir>` re-checks it without the stack.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

/// Where each hop stood when the run began: only later records belong to the run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Marks {
    /// Next offset per raw topic and partition (`topic/partition`).
    pub raw: BTreeMap<String, i64>,
    /// Next offset per partition of `customer_360.changes` (also the lake's mark).
    pub changes: BTreeMap<String, i64>,
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
}

/// Facts about a run that the checker needs besides the history and the hops (`run.json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunMeta {
    pub run_id: String,
    pub scenario: String,
    pub seed: u64,
    pub profile: String,
    pub platform: String,
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
}

impl RunMeta {
    pub fn file(run_dir: &Path) -> std::path::PathBuf {
        run_dir.join("run.json")
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = RunMeta::file(run_dir);
        std::fs::write(&path, serde_json::to_string_pretty(self).expect("run meta serializes"))
            .map_err(|e| Error::io("writing run.json", &path, e))
    }

    pub fn read(run_dir: &Path) -> Result<RunMeta> {
        let path = RunMeta::file(run_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading run.json", &path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
    }
}
