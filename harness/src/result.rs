//! A run's verdict and `result.json` (docs/scenarios.md).
//!
//! Owns the verdict rule and the result schema. [`check_run`] reads a run directory
//! (`scenario.toml`, `run.json`, `history.jsonl`, `observed/<hop>.tsv`, `final_state.json`),
//! runs the checker and the latency measurement, writes `result.json` and `latency.hlog` next to
//! them and returns the [`RunResult`].
//!
//! `result.json` (schema version 1; every field is documented on [`RunResult`] and the types it
//! holds):
//!
//! ```text
//! { "schema": 1, "verdict": "pass" | "fail" | "unknown", "reasons": [..], "notes": [..],
//!   "scenario", "seed", "profile", "run_id",
//!   "acknowledged", "load_events",
//!   "hops": { "raw" | "changes" | "warehouse" | "lake": {
//!       "acknowledged", "observations", "delivered",
//!       "lost", "lost_by_last_seen": {"source"|"raw"|"changes": n}, "lost_examples": [{event, operation, last_seen}],
//!       "duplicated", "duplicate_copies", "duplicated_examples": [{event, copies}],
//!       "phantom", "phantom_observations", "phantom_examples": [{event, partition, offset}],
//!       "out_of_order", "out_of_order_examples": [{event, arrived_after, partition, offset}],
//!       "wrong_operation", "wrong_operation_examples": [{event, expected, partition, offset}],
//!       "unknown_committed", "earlier_runs" } },
//!   "final_state": { "match", "expected_documents", "warehouse_documents", "mismatched_keys", "differences" },
//!   "lake_state": { the same, for the lake's folded documents },
//!   "latency_ms": {count, p50, p90, p99, p999, max},
//!   "latency_ms_by_hop": { "source" | "raw" | "changes" | "warehouse" | "lake": {count, p50, ..} },
//!   "max_unavailability_s", "unavailability_windows": [{start_us, end_us, start_s, duration_s, recovered}],
//!   "offered_rate", "achieved_rate", "operations": {ok, fail, unknown, ok_without_write_id},
//!   "quiesced", "quiesce_note", "dead_letters", "malformed": {hop: n}, "components_down": [..],
//!   "recoveries": [{time_us, component, target, action, detail}],
//!   "faults_unproven": [..] }
//! ```
//!
//! The verdict: `fail` if any expectation of the scenario ([`Expect`]) is violated; `unknown` if
//! the pipeline did not quiesce and nothing *definite* was violated, or if nothing was violated
//! but no event was acknowledged (nothing to check); else `pass`. Definite violations hold
//! whether or not the pipeline quiesced: duplicates, phantoms, wrong operations, out-of-order
//! arrivals, malformed records, dead letters, a latency or unavailability bound exceeded. A loss
//! or a final-state difference (of the warehouse or of the lake) is conclusive only after
//! quiescence (the event may still be in flight). A run that would pass is `unknown` if one of its
//! faults did not show that it took effect ([`crate::faults`]): not applied, no evidence, or a
//! check of it that did not hold.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::checker::{CheckReport, Checker, FinalStateReport, HopReport, OperationCounts};
use crate::error::{EXIT_PASS, EXIT_UNKNOWN, EXIT_VIOLATION};
use crate::latency::{ByStage, Gap, Latency, Percentiles};
use crate::observation::{self, FinalState, Hop};
use crate::run_dir::{RunDir, RunMeta};
use crate::scenario::{Expect, ExpectedVerdict, Invariant, Scenario};
use crate::{Error, Result};

/// Version of the `result.json` schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every expectation held and the pipeline quiesced.
    Pass,
    /// An expectation was violated.
    Fail,
    /// Nothing definite was violated, but the run cannot be judged (not quiesced, or nothing
    /// acknowledged).
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Unknown => "unknown",
        }
    }
}

/// `result.json`: the verdict and the figures behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// Schema version of this document ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// `pass`, `fail` or `unknown`.
    pub verdict: Verdict,
    /// Why the verdict is not `pass`, one human-readable line each (empty on `pass`).
    pub reasons: Vec<String>,
    /// Facts worth knowing that do not decide the verdict (unknown writes that committed,
    /// snapshot records, components down, ...).
    pub notes: Vec<String>,
    /// Scenario name.
    pub scenario: String,
    /// The seed the run's load was derived from.
    pub seed: u64,
    /// Durability profile of the stack.
    pub profile: String,
    /// The run's id (its directory name under `reports/`).
    pub run_id: String,
    /// Distinct acknowledged events, warm-up included (each hop is checked against them).
    pub acknowledged: u64,
    /// Acknowledged events of the measured load (warm-up excluded).
    pub load_events: u64,
    /// Exactly-once findings per hop: `raw`, `changes`, `warehouse`, `lake`.
    pub hops: BTreeMap<Hop, HopReport>,
    /// Warehouse `customer_360` against the join recomputed from the sources.
    pub final_state: FinalStateReport,
    /// The lake's documents (its change records folded) against the same join; absent for run
    /// directories without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lake_state: Option<FinalStateReport>,
    /// Intended send → warehouse commit latency (the end-to-end figure), ms.
    pub latency_ms: Percentiles,
    /// Intended send → each stage, ms: `source` (database acknowledgement), then each hop.
    pub latency_ms_by_hop: ByStage,
    /// Longest stretch without warehouse progress that began while load was offered, s.
    pub max_unavailability_s: f64,
    /// The longest such stretches (those of at least 1 s, else the longest), by start.
    pub unavailability_windows: Vec<Gap>,
    /// Row changes per second the scenario offered.
    pub offered_rate: f64,
    /// Acknowledged row changes per second of measured load.
    pub achieved_rate: f64,
    /// Operations by outcome, warm-up included.
    pub operations: OperationCounts,
    /// Whether every hop quiesced before the capture; if not, losses are not conclusive.
    pub quiesced: bool,
    /// Why the pipeline did not quiesce, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesce_note: Option<String>,
    /// Records written to `customer_360.dead-letter` during the run.
    pub dead_letters: u64,
    /// Records per hop that could not be decoded.
    pub malformed: BTreeMap<String, u64>,
    /// Components not running at the end of the run.
    pub components_down: Vec<String>,
    /// Failed connectors the supervisor restarted during the run (`recoveries.jsonl`).
    #[serde(default)]
    pub recoveries: Vec<crate::supervisor::Recovery>,
    /// Faults of `faults.jsonl` that did not show they took effect, one line each (not applied,
    /// no evidence, or a check of it that did not hold): a run that would pass is `unknown`.
    #[serde(default)]
    pub faults_unproven: Vec<String>,
    /// The verdict the scenario expects (`[expect] verdict`).
    #[serde(default)]
    pub expected_verdict: ExpectedVerdict,
    /// The invariants this run violated, whatever the verdict.
    #[serde(default)]
    pub violated: Vec<Invariant>,
    /// Whether the run ended as the scenario expects: its verdict, and for an expected `fail`
    /// every invariant of `[expect] violated` among the violations. Decides the exit code.
    #[serde(default = "yes")]
    pub as_expected: bool,
    /// Why the run did not end as expected (empty when it did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unexpected: Vec<String>,
}

fn yes() -> bool {
    true
}

impl RunResult {
    /// Assembles the result of a run and judges it against `scenario.expect`.
    pub fn new(scenario: &Scenario, meta: &RunMeta, check: CheckReport, latency: &Latency) -> RunResult {
        let malformed = Hop::ALL.iter().map(|h| (h.as_str().to_string(), meta.extras.get(h.as_str()).map_or(0, |x| x.malformed))).collect();
        let mut r = RunResult {
            schema: SCHEMA_VERSION,
            verdict: Verdict::Pass,
            reasons: Vec::new(),
            notes: Vec::new(),
            scenario: if meta.scenario.is_empty() { scenario.name.clone() } else { meta.scenario.clone() },
            seed: meta.seed,
            profile: if meta.profile.is_empty() { scenario.profile.to_string() } else { meta.profile.clone() },
            run_id: meta.run_id.clone(),
            acknowledged: check.acknowledged,
            load_events: latency.load_events,
            hops: check.hops,
            final_state: check.final_state,
            lake_state: check.lake_state,
            latency_ms: latency.overall(),
            latency_ms_by_hop: latency.by_stage(),
            max_unavailability_s: latency.max_unavailability_s,
            unavailability_windows: latency.gaps.clone(),
            offered_rate: meta.offered_rate,
            achieved_rate: latency.achieved_rate,
            operations: check.operations,
            quiesced: meta.quiesced,
            quiesce_note: meta.quiesce_note.clone(),
            dead_letters: meta.dead_letters,
            malformed,
            components_down: meta.components_down.clone(),
            recoveries: Vec::new(),
            faults_unproven: Vec::new(),
            expected_verdict: scenario.expect.verdict,
            violated: Vec::new(),
            as_expected: true,
            unexpected: Vec::new(),
        };
        r.notes = notes(&r, meta);
        r.judge(&scenario.expect);
        r
    }

    /// Sets the verdict, its reasons, the violated invariants and whether that is as expected.
    pub fn judge(&mut self, expect: &Expect) {
        self.expected_verdict = expect.verdict;
        let found = violations(self, expect);
        self.violated = found.iter().map(|v| v.invariant).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        (self.verdict, self.reasons) = verdict_of(self, found);
        self.unexpected = match (expect.verdict, self.verdict) {
            (_, Verdict::Unknown) => vec!["the verdict is unknown".to_string()],
            (ExpectedVerdict::Pass, Verdict::Pass) => Vec::new(),
            (ExpectedVerdict::Pass, Verdict::Fail) => vec!["expected to pass".to_string()],
            (ExpectedVerdict::Fail, Verdict::Pass) => vec![format!(
                "expected to fail{}, but nothing was violated: this negative control no longer catches what it was written for",
                list_of(&expect.violated).map(|l| format!(" with {l} violated")).unwrap_or_default()
            )],
            (ExpectedVerdict::Fail, Verdict::Fail) => expect
                .violated
                .iter()
                .filter(|i| !self.violated.contains(i))
                .map(|i| format!("expected {} to be violated, but it held (violated: {})", i.as_str(), list_of(&self.violated).unwrap_or_default()))
                .collect(),
        };
        self.as_expected = self.unexpected.is_empty();
    }

    /// The process exit code: 0 if the run ended as expected (a pass, or for a negative control
    /// the expected failure), 3 if the verdict is unknown, else 1.
    pub fn exit_code(&self) -> i32 {
        match (self.verdict, self.as_expected) {
            (Verdict::Unknown, _) => EXIT_UNKNOWN,
            (_, true) => EXIT_PASS,
            (_, false) => EXIT_VIOLATION,
        }
    }

    /// `result.json` in a run directory.
    pub fn file(run_dir: &Path) -> PathBuf {
        RunDir::new(run_dir).result()
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = RunResult::file(run_dir);
        let text = serde_json::to_string_pretty(self).expect("a result serializes");
        std::fs::write(&path, text + "\n").map_err(|e| Error::io("writing the result", &path, e))
    }

    pub fn read(run_dir: &Path) -> Result<RunResult> {
        let path = RunResult::file(run_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading the result", &path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::record(&path, None, e.to_string()))
    }

    /// A short plain-text summary: verdict, a table per hop, latency, reasons and notes.
    pub fn summary_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "verdict: {} — scenario {} (seed {}, profile {}), run {}",
            self.verdict.as_str().to_uppercase(),
            self.scenario,
            self.seed,
            self.profile,
            self.run_id
        );
        if self.expected_verdict == ExpectedVerdict::Fail {
            let violated = list_of(&self.violated).map(|l| format!(" (violated: {l})")).unwrap_or_default();
            match self.as_expected {
                true => _ = writeln!(s, "expected: fail — as expected, a negative control{violated}"),
                false => _ = writeln!(s, "expected: fail — NOT as expected{violated}: {}", self.unexpected.join("; ")),
            }
        }
        let _ = writeln!(
            s,
            "{:<10} {:>12} {:>10} {:>8} {:>11} {:>8} {:>9} {:>13} {:>18}",
            "hop", "acknowledged", "delivered", "lost", "duplicated", "phantom", "wrong-op", "out-of-order", "unknown-committed"
        );
        for (hop, h) in &self.hops {
            let _ = writeln!(
                s,
                "{:<10} {:>12} {:>10} {:>8} {:>11} {:>8} {:>9} {:>13} {:>18}",
                hop.as_str(),
                h.acknowledged,
                h.delivered,
                h.lost,
                h.duplicated,
                h.phantom,
                h.wrong_operation,
                h.out_of_order,
                h.unknown_committed
            );
        }
        let f = &self.final_state;
        if f.matches {
            let _ = writeln!(s, "final state: match ({} documents)", f.expected_documents);
        } else {
            let _ = writeln!(s, "final state: {} customers differ: {}", f.mismatched_keys.len(), ids(&f.mismatched_keys));
        }
        let l = &self.latency_ms;
        let _ = writeln!(
            s,
            "latency intent→warehouse: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms ({} events)",
            l.p50, l.p90, l.p99, l.p999, l.max, l.count
        );
        let _ = writeln!(
            s,
            "unavailability: max {:.1} s; throughput: offered {:.1}/s, achieved {:.1}/s; operations: {} ok, {} fail, {} unknown",
            self.max_unavailability_s, self.offered_rate, self.achieved_rate, self.operations.ok, self.operations.fail, self.operations.unknown
        );
        for (title, lines) in [("reasons", &self.reasons), ("notes", &self.notes)] {
            if !lines.is_empty() {
                let _ = writeln!(s, "{title}:");
                for l in lines {
                    let _ = writeln!(s, "  - {l}");
                }
            }
        }
        s
    }
}

/// `lost, duplicated`, or `None` for no invariant.
fn list_of(invariants: &[Invariant]) -> Option<String> {
    (!invariants.is_empty()).then(|| invariants.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", "))
}

/// The first few ids, comma-separated.
fn ids(keys: &[i64]) -> String {
    let mut s = keys.iter().take(10).map(i64::to_string).collect::<Vec<_>>().join(", ");
    if keys.len() > 10 {
        let _ = write!(s, ", … ({} more)", keys.len() - 10);
    }
    s
}

/// Informational lines.
fn notes(r: &RunResult, meta: &RunMeta) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(n) = &r.quiesce_note {
        notes.push(format!("quiescence: {n}"));
    }
    let committed: Vec<String> =
        r.hops.iter().filter(|(_, h)| h.unknown_committed > 0).map(|(hop, h)| format!("{} at {}", h.unknown_committed, hop.as_str())).collect();
    if !committed.is_empty() {
        notes.push(format!("writes of unknown outcome that did commit: {}", committed.join(", ")));
    }
    if r.operations.ok_without_write_id > 0 {
        notes.push(format!("{} acknowledged operations have no write id (a history that predates them): their events were not checked", r.operations.ok_without_write_id));
    }
    let earlier: Vec<String> = r.hops.iter().filter(|(_, h)| h.earlier_runs > 0).map(|(hop, h)| format!("{} at {}", h.earlier_runs, hop.as_str())).collect();
    if !earlier.is_empty() {
        notes.push(format!("records of earlier runs' writes arrived during the run (a backlog; not checked): {}", earlier.join(", ")));
    }
    for (hop, x) in &meta.extras {
        if x.snapshot_records > 0 {
            notes.push(format!("{hop}: {} snapshot records (a connector re-snapshotted)", x.snapshot_records));
        }
        if x.earlier_records > 0 {
            notes.push(format!("{hop}: {} records of changes made before the run arrived during it (a backlog; not checked)", x.earlier_records));
        }
        for e in x.malformed_examples.iter().take(3) {
            notes.push(format!("{hop}: malformed record: {e}"));
        }
    }
    if !r.components_down.is_empty() {
        notes.push(format!("components down at the end: {}", r.components_down.join(", ")));
    }
    notes
}

/// Notes on the supervisor's restarts, timed from the start of the measured load.
fn recovery_notes(recoveries: &[crate::supervisor::Recovery], load_start_us: i64) -> Vec<String> {
    recoveries
        .iter()
        .map(|r| {
            let first = r.detail.lines().next().unwrap_or("");
            format!("supervisor: {} {} at {:+.1} s ({first})", r.action, r.target, (r.time_us - load_start_us) as f64 / 1e6)
        })
        .collect()
}

/// One violation of the run's expectations: the rule the verdict (`result.json`) and the
/// reports' invariant list (`report::invariants`) are both read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub invariant: Invariant,
    /// The hop it concerns (`raw`, …), `lake` for the lake's state, `None` for the whole run.
    pub scope: Option<&'static str>,
    /// Holds whatever happens later; else conclusive only after quiescence (a loss, a
    /// final-state difference: the event may still be in flight).
    pub definite: bool,
    /// The reason, as the verdict lists it.
    pub message: String,
}

/// Every expectation of `expect` the run violates.
pub fn violations(r: &RunResult, expect: &Expect) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut definite = |invariant: Invariant, scope: Option<&'static str>, message: String| found.push(Violation { invariant, scope, definite: true, message });
    let mut pending_list = Vec::new();
    let mut pending = |invariant: Invariant, scope: Option<&'static str>, message: String| pending_list.push(Violation { invariant, scope, definite: false, message });
    for (hop, h) in &r.hops {
        let hop = hop.as_str();
        if h.lost > expect.lost {
            let by: Vec<String> = h.lost_by_last_seen.iter().map(|(at, n)| format!("{n} at {at}")).collect();
            let example = h.lost_examples.first().map(|x| format!("; e.g. {} (operation {})", x.event, x.operation)).unwrap_or_default();
            pending(Invariant::Lost, Some(hop), format!("{hop}: {} acknowledged events lost (allowed {}); last seen: {}{example}", h.lost, expect.lost, by.join(", ")));
        }
        if h.duplicated > expect.duplicated {
            let example = h.duplicated_examples.first().map(|x| format!("; e.g. {} ×{}", x.event, x.copies)).unwrap_or_default();
            definite(Invariant::Duplicated, Some(hop), format!("{hop}: {} events duplicated, {} extra copies (allowed {}){example}", h.duplicated, h.duplicate_copies, expect.duplicated));
        }
        if h.phantom > expect.phantom {
            let example = h.phantom_examples.first().map(|x| format!("; e.g. {} at {}/{}", x.event, x.partition, x.offset)).unwrap_or_default();
            definite(Invariant::Phantom, Some(hop), format!("{hop}: {} phantom events, never acknowledged (allowed {}){example}", h.phantom, expect.phantom));
        }
        if h.wrong_operation > 0 {
            let example = h.wrong_operation_examples.first().map(|x| format!("; e.g. {} (its operation made an {})", x.event, x.expected)).unwrap_or_default();
            definite(Invariant::WrongOperation, Some(hop), format!("{hop}: {} records carry the wrong operation{example}", h.wrong_operation));
        }
        if h.out_of_order > expect.out_of_order {
            let example = h.out_of_order_examples.first().map(|x| format!("; e.g. {} after {}", x.event, x.arrived_after)).unwrap_or_default();
            definite(Invariant::OutOfOrder, Some(hop), format!("{hop}: {} events out of commit order (allowed {}){example}", h.out_of_order, expect.out_of_order));
        }
    }
    for (hop, n) in &r.malformed {
        if *n > 0 {
            definite(Invariant::Malformed, None, format!("{hop}: {n} malformed records"));
        }
    }
    if r.dead_letters > 0 {
        definite(Invariant::DeadLetters, None, format!("{} records on the dead-letter topic", r.dead_letters));
    }
    if let Some(bound) = expect.p99_ms {
        if r.latency_ms.count > 0 && r.latency_ms.p99 > bound {
            definite(Invariant::Latency, None, format!("latency p99 {:.1} ms exceeds the bound of {bound} ms", r.latency_ms.p99));
        }
    }
    if let Some(bound) = expect.max_unavailability_s {
        if r.max_unavailability_s > bound {
            let at = r.unavailability_windows.iter().max_by(|a, b| a.duration_s.total_cmp(&b.duration_s));
            let at = at.map(|g| format!(" (from {:.1} s to {:.1} s after the load start)", g.start_s, g.start_s + g.duration_s)).unwrap_or_default();
            definite(Invariant::Unavailability, None, format!("unavailable for {:.1} s{at}, more than the bound of {bound} s", r.max_unavailability_s));
        }
    }
    if expect.final_state && !r.final_state.matches {
        let first = r.final_state.differences.first().map(|d| format!("; {d}")).unwrap_or_default();
        pending(Invariant::FinalState, None, format!(
            "final state: {} customers differ from the join recomputed from the sources: {}{first}",
            r.final_state.mismatched_keys.len(),
            ids(&r.final_state.mismatched_keys)
        ));
    }
    if let Some(l) = r.lake_state.as_ref().filter(|l| expect.final_state && !l.matches) {
        let first = l.differences.first().map(|d| format!("; {d}")).unwrap_or_default();
        pending(Invariant::FinalState, Some("lake"), format!(
            "lake: the documents folded from its change records differ from the join recomputed from the sources for {} customers: {}{first}",
            l.mismatched_keys.len(),
            ids(&l.mismatched_keys)
        ));
    }

    found.extend(pending_list);
    found
}

/// The verdict and its reasons from the violations found.
fn verdict_of(r: &RunResult, found: Vec<Violation>) -> (Verdict, Vec<String>) {
    let (definite, pending): (Vec<Violation>, Vec<Violation>) = found.into_iter().partition(|v| v.definite);
    let mut definite: Vec<String> = definite.into_iter().map(|v| v.message).collect();
    let pending: Vec<String> = pending.into_iter().map(|v| v.message).collect();
    let not_quiesced = (!r.quiesced).then(|| {
        format!(
            "the pipeline did not quiesce{}: losses and final-state differences are not conclusive",
            r.quiesce_note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
        )
    });
    if !definite.is_empty() {
        definite.extend(pending);
        definite.extend(not_quiesced);
        return (Verdict::Fail, definite);
    }
    if let Some(why) = not_quiesced {
        let mut reasons = vec![why];
        reasons.extend(pending.into_iter().map(|p| format!("not conclusive: {p}")));
        return (Verdict::Unknown, reasons);
    }
    if !pending.is_empty() {
        return (Verdict::Fail, pending);
    }
    if !r.faults_unproven.is_empty() {
        let mut reasons = vec!["a fault did not show that it took effect, so a pass would not mean the pipeline survived it".to_string()];
        reasons.extend(r.faults_unproven.iter().cloned());
        return (Verdict::Unknown, reasons);
    }
    if r.acknowledged == 0 {
        return (Verdict::Unknown, vec!["no event was acknowledged: there was nothing to check delivery of".to_string()]);
    }
    (Verdict::Pass, Vec::new())
}

/// Checks a run directory: reads `scenario.toml`, `run.json`, `history.jsonl`,
/// `observed/<hop>.tsv`, `final_state.json` and `faults.jsonl` (when there), writes `result.json` and `latency.hlog` into it
/// and returns the result. A missing or corrupt input is an error naming the file.
pub fn check_run(dir: &Path) -> Result<RunResult> {
    let run = RunDir::new(dir);
    let scenario = Scenario::load(&run.scenario())?;
    let meta = RunMeta::read(dir)?;
    let ops = crate::history::read(&run.history())?;
    let final_state = FinalState::read(dir)?;
    let mut checker = Checker::new(&ops);
    for hop in Hop::ALL {
        observation::for_each(dir, hop, |o| checker.observe(hop, &o))?;
    }
    let report = checker.report(&final_state);
    let latency = Latency::measure(&ops, checker.arrivals(), meta.load_start_us, meta.load_end_us);
    drop(checker);
    let mut result = RunResult::new(&scenario, &meta, report, &latency);
    let captures = [
        crate::source_lag::Capture { connector: crate::platform::connect::CRM_CONNECTOR, database: "crm" },
        crate::source_lag::Capture { connector: crate::platform::connect::FLEET_CONNECTOR, database: "fleet" },
    ];
    let writers = scenario.load.connections as usize;
    result.notes.extend(crate::source_lag::behind(&ops, &meta.source_offsets, &captures, writers).iter().map(|b| b.to_string()));
    result.recoveries = crate::supervisor::read(dir)?;
    result.notes.extend(recovery_notes(&result.recoveries, meta.load_start_us));
    let timeline = RunDir::new(dir).faults();
    if timeline.exists() {
        result.faults_unproven = crate::faults::unproven(&crate::faults::read(&timeline)?);
        result.judge(&scenario.expect);
        if result.verdict == Verdict::Fail {
            result.notes.extend(result.faults_unproven.iter().map(|f| format!("not proven to have taken effect: {f}")));
        }
    }
    result.write(dir)?;
    latency.write_hlog(&RunDir::new(dir).latency())?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::tests::{anomaly, inject, specs, synthetic, Synthetic, RUN, T0};
    use crate::history::{EventKey, EventOp, WriteId};
    use crate::history::{HistoryWriter, Kind, Line, Operation, Outcome, Phase, RowOp};
    use crate::observation::Observation;
    use crate::run_dir::HopExtras;
    use cdc_pipeline::decode::Table;
    use proptest::prelude::*;
    use serde_json::json;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("cdc-chaos-result-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Everything a run directory holds, in memory.
    struct Fixture {
        ops: Vec<Operation>,
        hops: BTreeMap<Hop, Vec<Observation>>,
        final_state: FinalState,
        meta: RunMeta,
        expect: String,
    }

    const MS: i64 = 1_000;

    fn row(table: Table, pk: i64, kind: Kind) -> RowOp {
        RowOp { table, pk, kind, customer_id: None, affected: None }
    }

    fn operation(index: u64, phase: Phase, intended_us: i64, outcome: Outcome, tx: Option<&str>, rows: Vec<RowOp>) -> Operation {
        let ok = outcome == Outcome::Ok;
        Operation {
            index,
            worker: "crm-0".into(),
            phase,
            intended_us,
            invoke_us: intended_us + MS,
            complete_us: Some(intended_us + 5 * MS),
            outcome,
            tx: tx.map(str::to_string),
            write_id: Some(WriteId::new(RUN, index)),
            rows: rows.into_iter().map(|r| RowOp { affected: ok.then_some(true), ..r }).collect(),
            error: (!ok).then(|| "refused".to_string()),
        }
    }

    /// The upsert of row (table, pk) by operation `index`.
    fn key(table: Table, pk: i64, index: u64) -> EventKey {
        EventKey { table, pk, write: WriteId::new(RUN, index), op: EventOp::Upsert }
    }

    /// A small clean run: a warm-up transaction of two rows, three load transactions (one on
    /// MariaDB), a failed write, an unknown write that did commit and one that never completed.
    fn fixture() -> Fixture {
        let ops = vec![
            operation(
                0,
                Phase::Warmup,
                T0 - 2_000 * MS,
                Outcome::Ok,
                Some("100"),
                vec![row(Table::Customers, 1, Kind::Insert), row(Table::Flights, 1, Kind::Insert)],
            ),
            operation(1, Phase::Load, T0 + 100 * MS, Outcome::Ok, Some("101"), vec![row(Table::Customers, 2, Kind::Insert)]),
            operation(2, Phase::Load, T0 + 200 * MS, Outcome::Ok, Some("0-1-7"), vec![row(Table::Vehicles, 1, Kind::Insert)]),
            operation(3, Phase::Load, T0 + 300 * MS, Outcome::Ok, Some("102"), vec![row(Table::Customers, 1, Kind::Update)]),
            operation(4, Phase::Load, T0 + 400 * MS, Outcome::Fail, None, vec![row(Table::Customers, 3, Kind::Insert)]),
            operation(5, Phase::Load, T0 + 500 * MS, Outcome::Unknown, Some("104"), vec![row(Table::Customers, 4, Kind::Insert)]),
            Operation { complete_us: None, ..operation(6, Phase::Load, T0 + 600 * MS, Outcome::Unknown, None, vec![row(Table::Customers, 5, Kind::Delete)]) },
        ];
        let arrived = [
            (key(Table::Customers, 1, 0), &ops[0]),
            (key(Table::Flights, 1, 0), &ops[0]),
            (key(Table::Customers, 2, 1), &ops[1]),
            (key(Table::Vehicles, 1, 2), &ops[2]),
            (key(Table::Customers, 1, 3), &ops[3]),
            (key(Table::Customers, 4, 5), &ops[5]),
        ];
        let hops = Hop::ALL
            .into_iter()
            .enumerate()
            .map(|(n, hop)| {
                let obs = arrived
                    .iter()
                    .enumerate()
                    .map(|(i, (k, op))| Observation {
                        key: *k,
                        partition: 0,
                        offset: i as i64,
                        ts_us: op.complete_us.unwrap() + 10 * MS * (n as i64 + 1),
                    })
                    .collect();
                (hop, obs)
            })
            .collect();
        let meta = RunMeta {
            run_id: "test-run".into(),
            scenario: "t".into(),
            seed: 7,
            profile: "durable".into(),
            platform: "local".into(),
            warmup_start_us: T0 - 3_000 * MS,
            load_start_us: T0,
            load_end_us: T0 + 1_000 * MS,
            quiesced: true,
            offered_rate: 4.0,
            ..Default::default()
        };
        Fixture { ops, hops, final_state: crate::checker::tests::final_state_fixture(), meta, expect: String::new() }
    }

    impl Fixture {
        fn hop(&mut self, hop: Hop) -> &mut Vec<Observation> {
            self.hops.get_mut(&hop).unwrap()
        }

        fn write(&self, dir: &Path) {
            let text = format!("name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 4\n[expect]\n{}", self.expect);
            let scenario = Scenario::parse(&text, "test").unwrap();
            std::fs::write(dir.join("scenario.toml"), scenario.resolved()).unwrap();
            self.meta.write(dir).unwrap();
            let mut w = HistoryWriter::create(&dir.join("history.jsonl")).unwrap();
            for op in &self.ops {
                let rows = op.rows.iter().map(|r| RowOp { affected: None, ..r.clone() }).collect();
                w.write(&Line::Invoke {
                    index: op.index,
                    worker: op.worker.clone(),
                    phase: op.phase,
                    intended_us: op.intended_us,
                    time_us: op.invoke_us,
                    write_id: op.write_id.map(|w| w.0),
                    rows,
                })
                .unwrap();
            }
            for op in &self.ops {
                let Some(time_us) = op.complete_us else { continue };
                let (index, tx, error) = (op.index, op.tx.clone(), op.error.clone().unwrap_or_default());
                let line = match op.outcome {
                    Outcome::Ok => Line::Ok { index, time_us, tx, affected: op.rows.iter().map(|r| r.affected == Some(true)).collect() },
                    Outcome::Fail => Line::Fail { index, time_us, error },
                    Outcome::Unknown => Line::Unknown { index, time_us, tx, error },
                };
                w.write(&line).unwrap();
            }
            w.flush().unwrap();
            for (hop, obs) in &self.hops {
                observation::write(dir, *hop, obs).unwrap();
            }
            self.final_state.write(dir).unwrap();
        }

        fn check(&self) -> RunResult {
            let dir = TempDir::new();
            self.write(&dir.0);
            let r = check_run(&dir.0).unwrap();
            assert_eq!(RunResult::read(&dir.0).unwrap(), r, "result.json holds the result");
            r
        }
    }

    /// Anomalies of a result: (hop, class, count).
    fn anomalies(r: &RunResult) -> Vec<(&'static str, &'static str, u64)> {
        let mut out: Vec<_> = r.hops.iter().flat_map(|(h, x)| x.anomalies().into_iter().map(move |(c, n)| (h.as_str(), c, n))).collect();
        if !r.final_state.matches {
            out.push(("", "final_state", r.final_state.mismatched_keys.len() as u64));
        }
        if let Some(l) = r.lake_state.as_ref().filter(|l| !l.matches) {
            out.push(("", "lake_state", l.mismatched_keys.len() as u64));
        }
        out
    }

    fn remove(obs: &mut Vec<Observation>, k: EventKey) {
        obs.retain(|o| o.key != k);
    }

    #[test]
    fn clean_run_passes_and_writes_its_outputs() {
        let f = fixture();
        let dir = TempDir::new();
        f.write(&dir.0);
        let r = check_run(&dir.0).unwrap();
        assert_eq!((r.verdict, r.exit_code(), r.reasons.clone()), (Verdict::Pass, 0, vec![]));
        assert_eq!(anomalies(&r), vec![]);
        assert_eq!((r.acknowledged, r.load_events), (5, 3));
        assert_eq!(r.operations, OperationCounts { ok: 4, fail: 1, unknown: 2, ok_without_write_id: 0 });
        for h in r.hops.values() {
            assert_eq!((h.acknowledged, h.delivered, h.observations, h.unknown_committed), (5, 5, 6, 1));
        }
        assert!(r.notes.iter().any(|n| n.contains("unknown outcome that did commit")), "{:?}", r.notes);
        // Latency: intent → warehouse is 5 ms to the database plus 30 ms; source is 5 ms.
        let near = |got: f64, want: f64| (got - want).abs() <= want / 500.0;
        assert!(near(r.latency_ms.p50, 35.0) && r.latency_ms.count == 3, "{:?}", r.latency_ms);
        assert!(near(r.latency_ms_by_hop.source.max, 5.0) && near(r.latency_ms_by_hop.lake.max, 45.0), "{:?}", r.latency_ms_by_hop);
        assert_eq!((r.achieved_rate, r.offered_rate), (3.0, 4.0));
        // The warehouse went quiet after op 3's arrival at 335 ms until the load ended at 1 s.
        assert!((r.max_unavailability_s - 0.665).abs() < 1e-9, "{}", r.max_unavailability_s);
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.0.join("result.json")).unwrap()).unwrap();
        assert_eq!(json["verdict"], json!("pass"));
        assert_eq!(json["hops"]["lake"]["lost"], json!(0));
        assert_eq!(json["final_state"]["match"], json!(true));
        assert_eq!(json["malformed"]["raw"], json!(0));
        assert!(json["latency_ms_by_hop"]["source"]["p999"].is_number());
        let hlog = std::fs::read(dir.0.join("latency.hlog")).unwrap();
        let intervals = hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&hlog)
            .filter(|e| matches!(e, Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(_))))
            .count();
        assert_eq!(intervals, 5, "one window, five stages");
        let text = r.summary_text();
        assert!(text.starts_with("verdict: PASS") && text.contains("warehouse") && text.contains("p99"), "{text}");
    }

    fn timeline(dir: &Path, records: &[crate::faults::FaultRecord]) {
        let text: String = records.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        std::fs::write(RunDir::new(dir).faults(), text).unwrap();
    }

    fn fault(event: &str, evidence: Vec<crate::faults::Proof>) -> crate::faults::FaultRecord {
        crate::faults::FaultRecord {
            id: 0,
            event: event.into(),
            kind: crate::scenario::FaultKind::Pause,
            target: "controller".into(),
            components: vec!["kafka-3".into()],
            detail: "the active controller is node 3".into(),
            time_us: T0,
            evidence,
        }
    }

    #[test]
    fn a_fault_without_evidence_makes_a_passing_run_unknown_and_a_failing_one_still_fails() {
        use crate::faults::Proof;
        let dir = TempDir::new();
        fixture().write(&dir.0);
        let stopped = || vec![Proof::new(true, "kafka-3 (pid 9) stopped (state T)")];
        timeline(&dir.0, &[fault("start", stopped()), fault("heal", vec![Proof::new(true, "kafka-3 (pid 9) running again (state S)")])]);
        let r = check_run(&dir.0).unwrap();
        assert_eq!((r.verdict, r.faults_unproven.clone()), (Verdict::Pass, vec![]));

        timeline(&dir.0, &[fault("start", vec![]), fault("heal", vec![])]);
        let r = check_run(&dir.0).unwrap();
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Unknown, 3));
        assert_eq!(r.reasons[1], "fault #0 pause controller: no evidence that it took effect was recorded");
        let inv = crate::report::invariants::judge(&r, None);
        let faults = inv.iter().find(|i| i.check == "faults took effect").unwrap();
        assert!(faults.status.message().contains("no evidence"), "{:?}", faults.status);

        timeline(&dir.0, &[fault("start", stopped()), fault("heal", vec![Proof::new(false, "kafka-3 (pid 9) no longer stopped after 10.0 s (state S)")])]);
        let r = check_run(&dir.0).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.reasons[1].ends_with("kafka-3: kafka-3 (pid 9) no longer stopped after 10.0 s (state S)"), "{:?}", r.reasons);

        let mut f = fixture();
        let copy = f.hop(Hop::Lake)[2];
        f.hop(Hop::Lake).push(copy);
        f.write(&dir.0);
        timeline(&dir.0, &[fault("start", vec![])]);
        let r = check_run(&dir.0).unwrap();
        assert_eq!(r.verdict, Verdict::Fail, "a duplicate is a duplicate whatever the fault did");
        assert!(r.notes.iter().any(|n| n.starts_with("not proven to have taken effect: fault #0")), "{:?}", r.notes);

        std::fs::write(RunDir::new(&dir.0).faults(), "{\"id\": 0}\n").unwrap();
        let e = check_run(&dir.0).unwrap_err().to_string();
        assert!(e.contains("faults.jsonl:1: not a fault record"), "{e}");
    }

    #[test]
    fn lost_events_report_where_they_were_last_seen() {
        let mut f = fixture();
        let (c2, v1) = (key(Table::Customers, 2, 1), key(Table::Vehicles, 1, 2));
        remove(f.hop(Hop::Warehouse), c2);
        for hop in Hop::ALL {
            remove(f.hop(hop), v1);
        }
        let r = f.check();
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Fail, 1));
        assert_eq!(anomalies(&r), vec![("raw", "lost", 1), ("changes", "lost", 1), ("warehouse", "lost", 2), ("lake", "lost", 1)]);
        let w = &r.hops[&Hop::Warehouse];
        let seen: Vec<(&str, &str)> = w.lost_examples.iter().map(|x| (x.event.as_str(), x.last_seen.as_str())).collect();
        assert_eq!(seen, vec![("crm/customers:2/upsert/5.1", "changes"), ("fleet/vehicles:1/upsert/5.2", "source")]);
        assert_eq!(r.hops[&Hop::Lake].lost_examples[0].last_seen, "source");
        assert!(r.reasons.iter().any(|x| x.starts_with("warehouse: 2 acknowledged events lost") && x.contains("1 at changes, 1 at source")), "{:?}", r.reasons);
        assert!(r.summary_text().starts_with("verdict: FAIL"));
    }

    #[test]
    fn a_duplicate_fails_the_run() {
        let mut f = fixture();
        let copy = f.hop(Hop::Lake)[2];
        f.hop(Hop::Lake).push(copy);
        let r = f.check();
        assert_eq!((r.verdict, anomalies(&r)), (Verdict::Fail, vec![("lake", "duplicated", 1)]));
        assert_eq!(r.hops[&Hop::Lake].duplicated_examples[0].event, "crm/customers:2/upsert/5.1");
        assert!(r.reasons[0].starts_with("lake: 1 events duplicated, 1 extra copies"), "{:?}", r.reasons);
    }

    #[test]
    fn a_negative_control_ends_as_expected_only_with_its_violations() {
        let mut f = fixture();
        let copy = f.hop(Hop::Lake)[2];
        f.hop(Hop::Lake).push(copy);
        let mut r = f.check();
        assert_eq!((r.violated.clone(), r.as_expected, r.exit_code()), (vec![Invariant::Duplicated], false, 1));
        let control = |violated: Vec<Invariant>| Expect { verdict: ExpectedVerdict::Fail, violated, ..Expect::default() };
        r.judge(&control(vec![Invariant::Duplicated]));
        assert_eq!((r.verdict, r.as_expected, r.exit_code()), (Verdict::Fail, true, 0));
        assert!(r.summary_text().contains("expected: fail — as expected, a negative control (violated: duplicated)"), "{}", r.summary_text());
        r.judge(&control(vec![Invariant::Duplicated, Invariant::Lost]));
        assert_eq!((r.verdict, r.as_expected, r.exit_code()), (Verdict::Fail, false, 1));
        assert_eq!(r.unexpected, vec!["expected lost to be violated, but it held (violated: duplicated)".to_string()]);
        let mut clean = fixture().check();
        clean.judge(&control(vec![Invariant::Duplicated]));
        assert_eq!((clean.verdict, clean.as_expected, clean.exit_code()), (Verdict::Pass, false, 1));
        assert!(clean.unexpected[0].contains("no longer catches"), "{:?}", clean.unexpected);
        let json: RunResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(json, r);
    }

    #[test]
    fn a_failed_write_that_arrives_is_a_phantom() {
        let mut f = fixture();
        let o = Observation { key: key(Table::Customers, 3, 4), partition: 0, offset: 9, ts_us: T0 };
        f.hop(Hop::Raw).insert(3, o);
        let r = f.check();
        assert_eq!((r.verdict, anomalies(&r)), (Verdict::Fail, vec![("raw", "phantom", 1)]));
        assert_eq!(r.hops[&Hop::Raw].phantom_examples[0].event, "crm/customers:3/upsert/5.4");
    }

    #[test]
    fn events_of_a_row_out_of_commit_order_fail_the_run() {
        let mut f = fixture();
        let changes = f.hop(Hop::Changes);
        let a = changes.iter().position(|o| o.key == key(Table::Customers, 1, 0)).unwrap();
        let b = changes.iter().position(|o| o.key == key(Table::Customers, 1, 3)).unwrap();
        changes.swap(a, b);
        let r = f.check();
        assert_eq!((r.verdict, anomalies(&r)), (Verdict::Fail, vec![("changes", "out_of_order", 1)]));
        let x = &r.hops[&Hop::Changes].out_of_order_examples[0];
        assert_eq!((x.event.as_str(), x.arrived_after.as_str()), ("crm/customers:1/upsert/5.0", "crm/customers:1/upsert/5.3"));
    }

    #[test]
    fn a_final_state_difference_fails_the_run_when_expected() {
        let mut f = fixture();
        f.final_state.warehouse.get_mut(&2).unwrap()["name"] = json!("not c2");
        let r = f.check();
        assert_eq!((r.verdict, anomalies(&r)), (Verdict::Fail, vec![("", "final_state", 1)]));
        assert_eq!(r.final_state.mismatched_keys, vec![2]);
        assert!(r.reasons[0].contains("customer 2: name: source \"c2\", warehouse \"not c2\""), "{:?}", r.reasons);
        f.expect = "final_state = false\n".into();
        assert_eq!(f.check().verdict, Verdict::Pass);
    }

    #[test]
    fn without_quiescence_a_loss_is_unknown_but_a_duplicate_fails() {
        let mut f = fixture();
        f.meta.quiesced = false;
        f.meta.quiesce_note = Some("warehouse still moving after 300s".into());
        remove(f.hop(Hop::Lake), key(Table::Customers, 1, 3));
        let r = f.check();
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Unknown, 3));
        assert!(r.reasons[0].contains("did not quiesce (warehouse still moving after 300s)"), "{:?}", r.reasons);
        assert!(r.reasons[1].starts_with("not conclusive: lake: 1 acknowledged events lost"), "{:?}", r.reasons);
        let copy = f.hop(Hop::Warehouse)[0];
        f.hop(Hop::Warehouse).push(copy);
        let r = f.check();
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Fail, 1));
        assert!(r.reasons.iter().any(|x| x.contains("did not quiesce")));
        // Quiesced but nothing acknowledged: nothing was checked.
        let mut f = fixture();
        f.ops.retain(|o| o.outcome != Outcome::Ok);
        for hop in Hop::ALL {
            f.hop(hop).retain(|o| o.key == key(Table::Customers, 4, 5));
        }
        let r = f.check();
        assert_eq!(r.verdict, Verdict::Unknown, "{:?}", r.reasons);
        // ... unless what was checked is wrong.
        f.final_state.warehouse.remove(&1);
        assert_eq!(f.check().verdict, Verdict::Fail);
    }

    #[test]
    fn dead_letters_and_malformed_records_fail_the_run() {
        let mut f = fixture();
        f.meta.dead_letters = 2;
        let r = f.check();
        assert_eq!((r.verdict, r.reasons.clone()), (Verdict::Fail, vec!["2 records on the dead-letter topic".to_string()]));
        let mut f = fixture();
        f.meta.extras.insert("changes".into(), HopExtras { malformed: 1, malformed_examples: vec!["0/17: not JSON".into()], snapshot_records: 0, earlier_records: 0 });
        let r = f.check();
        assert_eq!((r.verdict, r.reasons.clone()), (Verdict::Fail, vec!["changes: 1 malformed records".to_string()]));
        assert_eq!(r.malformed["changes"], 1);
        assert!(r.notes.iter().any(|n| n.contains("0/17: not JSON")));
    }

    #[test]
    fn latency_and_unavailability_bounds() {
        let mut f = fixture();
        f.expect = "p99_ms = 10.0\n".into();
        let r = f.check();
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.reasons[0].starts_with("latency p99 35.") && r.reasons[0].ends_with("exceeds the bound of 10 ms"), "{:?}", r.reasons);
        f.expect = "max_unavailability_s = 0.5\n".into();
        let r = f.check();
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.reasons[0].starts_with("unavailable for 0.7 s (from 0.3 s to 1.0 s"), "{:?}", r.reasons);
        f.expect = "p99_ms = 100.0\nmax_unavailability_s = 1.0\n".into();
        assert_eq!(f.check().verdict, Verdict::Pass);
    }

    #[test]
    fn missing_or_corrupt_inputs_name_the_file() {
        let f = fixture();
        type Damage = fn(&Path);
        let cases: [(&str, Damage); 6] = [
            ("scenario.toml", |d| std::fs::remove_file(d.join("scenario.toml")).unwrap()),
            ("run.json", |d| std::fs::write(d.join("run.json"), "{").unwrap()),
            ("history.jsonl", |d| std::fs::remove_file(d.join("history.jsonl")).unwrap()),
            ("history.jsonl:", |d| std::fs::write(d.join("history.jsonl"), "{\"type\": \"ok\"}\n").unwrap()),
            ("lake.tsv", |d| std::fs::remove_file(Hop::Lake.file(d)).unwrap()),
            ("final_state.json", |d| std::fs::write(d.join("final_state.json"), "[]").unwrap()),
        ];
        for (file, damage) in cases {
            let dir = TempDir::new();
            f.write(&dir.0);
            damage(&dir.0);
            let e = check_run(&dir.0).unwrap_err();
            assert!(e.to_string().contains(file), "{file}: {e}");
            assert_eq!(e.exit_code(), crate::error::EXIT_SETUP);
            assert!(!RunResult::file(&dir.0).exists(), "no result for a run that cannot be checked");
        }
    }

    /// Judges a synthetic run in memory, quiesced, with default expectations.
    fn judge_synthetic(s: &Synthetic) -> RunResult {
        let scenario = Scenario::parse("name = \"t\"\nseed = 7\nduration = \"30s\"\n[load]\nrate = 4\n", "t").unwrap();
        let end = s.ops.iter().map(|o| o.intended_us).max().unwrap_or(T0) + 1;
        let meta = RunMeta { quiesced: true, load_start_us: T0, load_end_us: end, ..Default::default() };
        let mut c = Checker::new(&s.ops);
        for (hop, obs) in &s.hops {
            c.observe_all(*hop, obs);
        }
        let report = c.report(&s.final_state);
        let latency = Latency::measure(&s.ops, c.arrivals(), T0, end);
        RunResult::new(&scenario, &meta, report, &latency)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn clean_synthetic_runs_pass(specs in specs(), partitions in 1i32..4) {
            let r = judge_synthetic(&synthetic(&specs, partitions));
            let expected = if r.acknowledged > 0 { Verdict::Pass } else { Verdict::Unknown };
            prop_assert_eq!(r.verdict, expected, "{:?}", r.reasons);
        }

        #[test]
        fn any_single_anomaly_fails_the_run(specs in specs(), partitions in 1i32..4, a in anomaly(), hop in 0usize..4, pick in any::<usize>()) {
            let mut s = synthetic(&specs, partitions);
            let hop = Hop::ALL[hop];
            let expected = inject(&mut s, a, hop, pick);
            prop_assume!(expected.is_some(), "the run offers no target for {:?}", a);
            let (at, class, n) = expected.unwrap();
            let r = judge_synthetic(&s);
            prop_assert_eq!(r.verdict, Verdict::Fail);
            prop_assert_eq!(anomalies(&r), vec![(at.map_or("", Hop::as_str), class, n)]);
            prop_assert_eq!(r.reasons.len(), 1, "{:?}", r.reasons);
        }
    }
}
