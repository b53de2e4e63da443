//! `cdc-chaos run <scenario>`: one run from start to verdict, and the run directory it leaves.
//!
//! Brings the stack up if needed, waits until the pipeline has quiesced and marks every hop's
//! position (the capture starts there), offers the warm-up and the load — every write carrying a
//! write id that names this run and its operation —,
//! waits until every hop has quiesced again (bounded: past the scenario's `quiesce_timeout` the
//! verdict is `unknown`), captures what each hop holds and the final state, and checks it.
//!
//! A run directory (`reports/<run-id>/`) holds: `scenario.toml` (resolved, with the seed),
//! `profile.toml` (the profile's text), `run.json` ([`RunMeta`]), `history.jsonl`,
//! `observed/<hop>.tsv`, `final_state.json`, `faults.jsonl`, `recoveries.jsonl` (the
//! supervisor's restarts), `result.json`, `latency.hlog`, `report.html`, `summary.md`,
//! `junit.xml`, `run.log` and `logs/` (every component's log).
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

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The local stack's settings (on kind: the cache and the home of the fault journal).
    pub cfg: crate::StackConfig,
    /// Directory that receives `<run-id>/`.
    pub reports: std::path::PathBuf,
    /// The platform the stack runs on (brought up if it is not).
    pub deployment: crate::platform::stack::Deployment,
}

impl RunOptions {
    /// A run on the local stack `cfg`.
    pub fn local(cfg: crate::StackConfig, reports: std::path::PathBuf) -> RunOptions {
        RunOptions { cfg, reports, deployment: crate::platform::stack::Deployment::Local }
    }
}

/// Whether the pipeline came to rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Quiescence {
    pub quiesced: bool,
    pub note: Option<String>,
    pub waited: std::time::Duration,
}

/// The profile's text as the run used it, saved in the run directory.
pub const PROFILE_FILE: &str = "profile.toml";

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

/// Waits until no hop's position has moved for `settle` while every component is healthy, at most
/// `limit`. A component that stays down for 30 s, or unhealthy otherwise (a failed connector the
/// supervisor could not bring back, a session that is never rebuilt) for 90 s, ends the wait: the
/// pipeline is broken, not resting.
pub fn quiesce(stack: &dyn crate::platform::stack::Stack, settle: std::time::Duration, limit: std::time::Duration) -> Quiescence {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let endpoints = match stack.endpoints() {
        Ok(e) => e,
        Err(e) => return Quiescence { quiesced: false, note: Some(format!("the stack is unreachable: {e}")), waited: start.elapsed() },
    };
    let mut last: Option<Vec<i64>> = None;
    let mut still_since = Instant::now();
    let mut down_since: Option<(Instant, Vec<String>)> = None;
    let mut sick_since: Option<(Instant, Vec<String>)> = None;
    let mut next_note = Instant::now() + Duration::from_secs(10);
    loop {
        match crate::capture::positions(&endpoints) {
            Ok(p) if last.as_ref() == Some(&p) => {}
            Ok(p) => {
                last = Some(p);
                still_since = Instant::now();
            }
            Err(e) => {
                crate::progress::note(&format!("reading positions: {e}"));
                still_since = Instant::now();
            }
        }
        let rows = stack.status().unwrap_or_default();
        let down: Vec<String> = rows.iter().filter(|r| r.health == "down").map(|r| r.name.clone()).collect();
        // Unreachable or degraded (a failed connector, a session being rebuilt): not resting.
        let sick: Vec<String> = rows.iter().filter(|r| r.health != "healthy" && r.health != "down").map(|r| format!("{} {}: {}", r.name, r.health, r.detail)).collect();
        sick_since = match (sick.is_empty(), sick_since) {
            (true, _) => None,
            (false, Some((t, _))) => Some((t, sick)),
            (false, None) => Some((Instant::now(), sick)),
        };
        if let Some((t, what)) = &sick_since {
            if t.elapsed() >= Duration::from_secs(90) {
                return Quiescence { quiesced: false, note: Some(format!("unhealthy for 90 s: {}", what.join("; "))), waited: start.elapsed() };
            }
        }
        down_since = match (down.is_empty(), down_since) {
            (true, _) => None,
            (false, Some((t, _))) => Some((t, down.clone())),
            (false, None) => Some((Instant::now(), down.clone())),
        };
        if let Some((t, names)) = &down_since {
            if t.elapsed() >= Duration::from_secs(30) {
                return Quiescence { quiesced: false, note: Some(format!("down for 30 s: {}", names.join(", "))), waited: start.elapsed() };
            }
        }
        if down_since.is_none() && sick_since.is_none() && still_since.elapsed() >= settle {
            return Quiescence { quiesced: true, note: None, waited: start.elapsed() };
        }
        if start.elapsed() >= limit {
            return Quiescence {
                quiesced: false,
                note: Some(format!("hops still moving after {}s (last change {:.0}s ago)", limit.as_secs(), still_since.elapsed().as_secs_f64())),
                waited: start.elapsed(),
            };
        }
        if Instant::now() >= next_note {
            crate::progress::note(&format!("waiting for quiescence: last movement {:.0}s ago", still_since.elapsed().as_secs_f64()));
            next_note += Duration::from_secs(10);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `scenario` end to end and checks it. Returns the run directory and the result.
pub fn run(scenario: &crate::scenario::Scenario, opts: &RunOptions) -> Result<(std::path::PathBuf, crate::result::RunResult)> {
    use crate::progress::{note, step};
    use crate::{capture, load, observation};
    use std::time::Duration;

    let (profile, profile_text) = crate::Profile::resolve(&scenario.profile)?;
    let schedule = scenario.schedule();
    if let Some(f) = schedule.iter().find(|f| f.kind.is_partition()) {
        if matches!(opts.deployment, crate::platform::stack::Deployment::Local) && (opts.cfg.loopback || !crate::config::is_root()) {
            return Err(Error::Usage(format!(
                "scenario {}: fault {} at {} is a network partition, which needs the Kafka nodes in network namespaces: run as root, without --loopback",
                scenario.name,
                f.kind.as_str(),
                f.at
            )));
        }
    }
    // The platform answers before anything is written.
    let stack = crate::platform::stack::open(&opts.cfg, &opts.deployment)?;
    let stack = stack.as_ref();
    let now_us = cdc_pipeline::record::now_us();
    let now_s = now_us / 1_000_000;
    let id = run_id(&scenario.name, now_s);
    let run_tag = crate::history::run_tag(now_us);
    let dir = opts.reports.join(&id);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating the run directory", &dir, e))?;
    crate::progress::log_to(dir.join("run.log"));
    step(&format!("run {id}: scenario {} (seed {}), profile {} (settings {}), reports in {}", scenario.name, scenario.seed, profile.label(), profile.identity(), dir.display()));
    std::fs::write(dir.join("scenario.toml"), scenario.resolved()).map_err(|e| Error::io("writing", dir.join("scenario.toml"), e))?;
    std::fs::write(dir.join(PROFILE_FILE), profile_text).map_err(|e| Error::io("writing", dir.join(PROFILE_FILE), e))?;
    std::fs::write(dir.join("faults.jsonl"), "").map_err(|e| Error::io("writing", dir.join("faults.jsonl"), e))?;

    crate::nemesis::catch_interrupts();
    let healed = stack.heal_leftovers()?;
    if !healed.is_empty() {
        note(&format!("healed faults a previous run left: {}", healed.join(", ")));
    }
    stack.ensure(&profile)?;
    let endpoints = stack.endpoints()?;
    let supervisor = crate::supervisor::Supervisor::start(endpoints.topo.clone(), &dir)?;

    step("waiting for the pipeline to rest before marking positions");
    let before = quiesce(stack, Duration::from_secs(3), Duration::from_secs(120));
    if !before.quiesced {
        note(&format!("the pipeline did not rest before the run ({}); marking anyway", before.note.clone().unwrap_or_default()));
    }
    let marks = capture::marks(&endpoints)?;

    let rate = scenario.load.rate.0;
    step(&format!(
        "offering {rate} changes/s: warm-up {}, then {} (history: {})",
        scenario.warmup,
        scenario.duration,
        dir.join("history.jsonl").display()
    ));
    let history = crate::history::HistoryWriter::create(&dir.join("history.jsonl"))?;
    let total = scenario.warmup.0 + scenario.duration.0;
    let nemesis = if schedule.is_empty() {
        None
    } else {
        note(&format!("{} faults scheduled (timeline in faults.jsonl)", schedule.len()));
        let base = std::time::Instant::now() + scenario.warmup.0;
        Some(crate::nemesis::Nemesis::start(stack.injector(&schedule)?, schedule, &dir, base, scenario.seed)?)
    };
    let summary = load::drive(scenario, &endpoints.sources, run_tag, history, Duration::from_secs(10), |c, elapsed| {
        let [sent, ok, fail, unknown, events] = c.snapshot();
        note(&format!(
            "load {:>4.0}s/{:.0}s: {sent} transactions sent, {ok} ok, {fail} fail, {unknown} unknown, {events} row changes acknowledged",
            elapsed.as_secs_f64(),
            total.as_secs_f64()
        ));
    })?;
    note(&format!(
        "load done: {} transactions, {} ok, {} fail, {} unknown, {} row changes acknowledged",
        summary.operations, summary.ok, summary.fail, summary.unknown, summary.events
    ));
    if let Some(n) = nemesis {
        step("healing every fault still in force");
        if let Err(e) = n.finish() {
            note(&format!("{e}"));
        }
    }
    if crate::nemesis::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::Usage(format!("interrupted: the load stopped and every fault was healed; the history so far is in {}", dir.display())));
    }

    step(&format!("waiting for every hop to quiesce (still for {}, at most {})", scenario.settle, scenario.quiesce_timeout));
    let after = quiesce(stack, scenario.settle.0, scenario.quiesce_timeout.0);
    match &after.note {
        None => note(&format!("quiesced after {:.0}s", after.waited.as_secs_f64())),
        Some(n) => note(&format!("not quiesced: {n}")),
    }

    step("capturing every hop and the final state");
    let mut extras = BTreeMap::new();
    let (lake, lake_extras, lake_documents) = capture::lake(&endpoints, &marks, run_tag)?;
    for (hop, (obs, ex)) in [
        (crate::observation::Hop::Raw, capture::raw(&endpoints, &marks)?),
        (crate::observation::Hop::Changes, capture::changes(&endpoints, &marks)?),
        (crate::observation::Hop::Warehouse, capture::warehouse_log(&endpoints, &marks)?),
        (crate::observation::Hop::Lake, (lake, lake_extras)),
    ] {
        let mut extra = String::new();
        if ex.malformed > 0 {
            extra += &format!(", {} malformed", ex.malformed);
        }
        note(&format!("{}: {} events{extra}", hop.as_str(), obs.len()));
        observation::write(&dir, hop, &obs)?;
        extras.insert(hop.as_str().to_string(), ex);
    }
    capture::final_state(&endpoints, lake_documents)?.write(&dir)?;
    let dead_letters = capture::dead_letters(&endpoints, &marks)?;
    // Where each connector stood: without it a connector that stopped capturing looks like
    // changes lost at the source (see `source_lag`).
    let source_offsets = capture::source_offsets(&endpoints).unwrap_or_else(|e| {
        note(&format!("reading Kafka Connect's committed source offsets: {e}"));
        BTreeMap::new()
    });
    supervisor.stop();
    let components_down: Vec<String> =
        stack.status()?.into_iter().filter(|r| r.health != "healthy").map(|r| format!("{} ({})", r.name, r.health)).collect();
    stack.copy_logs(&dir);

    let meta = RunMeta {
        run_id: id.clone(),
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        profile: profile.label(),
        platform: stack.platform().into(),
        run_tag,
        warmup_start_us: summary.warmup_start_us,
        load_start_us: summary.load_start_us,
        load_end_us: summary.load_end_us,
        quiesced: after.quiesced,
        quiesce_note: after.note.clone(),
        quiesce_s: after.waited.as_secs_f64(),
        offered_rate: rate,
        marks,
        extras,
        dead_letters,
        components_down,
        source_offsets,
    };
    meta.write(&dir)?;

    step("checking");
    let result = crate::result::check_run(&dir)?;
    step("rendering report.html, summary.md and junit.xml");
    match crate::report::render(&dir) {
        Ok(r) => r.problems.iter().for_each(|p| note(&format!("report: {p}"))),
        Err(e) => note(&format!("the reports could not be rendered (the verdict stands; `cdc-chaos report {}` retries): {e}", dir.display())),
    }
    Ok((dir, result))
}
