//! What a run directory recorded, read back for the reports.
//!
//! [`Recorded::load`] reads `result.json` (required: without it there is no verdict to report),
//! `run.json`, `scenario.toml`, `faults.jsonl`, `latency.hlog`, `history.jsonl` and
//! `observed/warehouse.tsv`, and derives what the plots need: per-second latency windows per
//! stage, fault windows (start and heal paired by fault id) and per-second throughput. Any input
//! but `result.json` may be missing or unreadable: its part of the report stays empty and the
//! reason goes to [`Recorded::problems`]. Nothing here touches the live stack.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use crate::history::{Outcome, Phase};
use crate::latency::STAGES;
use crate::faults::Proof;
use crate::observation::{self, Hop};
use crate::result::RunResult;
use crate::run_dir::{RunDir, RunMeta};
use crate::scenario::{Expect, Scenario};
use crate::{Error, Result};

/// Latency of one stage in one one-second window of intended time, ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Window start, seconds after the load start.
    pub start_s: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// Events measured in the window.
    pub count: u64,
}

/// One stage's latency from `latency.hlog`: its windows and their sum.
#[derive(Debug, Clone)]
pub struct Stage {
    /// `source`, `raw`, `changes`, `warehouse` or `lake`.
    pub name: &'static str,
    /// By start time.
    pub windows: Vec<Window>,
    /// Every window added up, µs; `None` when the log holds nothing for the stage.
    pub overall: Option<Histogram<u64>>,
}

/// A fault from `faults.jsonl`: its `start` paired with its `heal`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    pub id: usize,
    /// `kill`, `pause`, `isolate`, ...
    pub kind: String,
    /// The target as the scenario wrote it (`leader:crm.public.customers/0`, `connect`, ...).
    pub target: String,
    /// The components it hit (`kafka-2`, ...).
    pub components: Vec<String>,
    /// How a role target was resolved ("leader of ... is node 2; ...").
    pub detail: String,
    /// Seconds after the load start.
    pub start_s: f64,
    /// Seconds after the load start; `None` when no heal was recorded.
    pub end_s: Option<f64>,
    /// What the heal line says (errors while healing, "end of the load").
    pub heal_detail: String,
    /// What was checked as the fault took effect, and as it was healed.
    pub evidence: Vec<Proof>,
    pub heal_evidence: Vec<Proof>,
}

impl FaultWindow {
    /// `#0 isolate kafka-2`: what a plot band is labelled with. A cut of clients is labelled with
    /// who was cut (`#1 cut-clients connect`), not with the nodes whose rules cut it.
    pub fn label(&self) -> String {
        let hit = if self.components.is_empty() || self.kind == "cut-clients" { self.target.clone() } else { self.components.join("+") };
        format!("#{} {} {hit}", self.id, self.kind)
    }

    /// The whole story in one line: kind, target, node, resolution, when.
    pub fn describe(&self) -> String {
        let end = self.end_s.map_or("no heal recorded".to_string(), |e| format!("healed at {e:.1} s"));
        let detail = if self.detail.is_empty() { String::new() } else { format!(" ({})", self.detail) };
        format!("fault #{} {} {} → {}{detail}: from {:.1} s, {end}", self.id, self.kind, self.target, self.components.join(", "), self.start_s)
    }
}

/// A fault the nemesis could not apply (`error` lines of `faults.jsonl`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultError {
    pub id: usize,
    pub kind: String,
    pub target: String,
    /// Seconds after the load start.
    pub at_s: f64,
    pub error: String,
}

/// Row changes per second, second `i` covering `[i, i+1)` s after the load start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throughput {
    /// Row changes the load meant to send in each second (by intended time).
    pub offered: Vec<f64>,
    /// Row changes the databases acknowledged in each second (by completion time).
    pub acknowledged: Vec<f64>,
    /// Row changes of operations that failed or whose outcome is unknown (by completion time).
    pub not_acknowledged: Vec<f64>,
    /// Events the warehouse committed in each second.
    pub warehouse: Vec<f64>,
}

/// The configuration profile a run used, as far as the run directory tells.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileText {
    /// Where the text comes from and how far it can be trusted.
    pub source: String,
    /// The profile file's TOML.
    pub text: String,
}

/// Everything the reports show about one run.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The run directory.
    pub dir: PathBuf,
    /// `result.json`.
    pub result: RunResult,
    /// `run.json`, when readable.
    pub meta: Option<RunMeta>,
    /// `scenario.toml` as recorded (resolved, with the seed).
    pub scenario_text: Option<String>,
    /// The scenario's expectations, when `scenario.toml` parses.
    pub expect: Option<Expect>,
    /// The scenario's description, when `scenario.toml` parses.
    pub description: Option<String>,
    /// The profile's definition, when it can be found (`run.json` records only its name).
    pub profile: Option<ProfileText>,
    /// µs since the epoch at which the measured load started (0 if unknown).
    pub load_start_us: i64,
    /// Length of the measured load, s.
    pub load_s: f64,
    /// Faults by id.
    pub faults: Vec<FaultWindow>,
    pub fault_errors: Vec<FaultError>,
    /// Per stage, in [`STAGES`] order.
    pub stages: Vec<Stage>,
    pub throughput: Throughput,
    /// The run directory's files worth opening, relative paths, with their sizes: the run's own
    /// files, then `logs/` (every component's log).
    pub files: Vec<(String, u64)>,
    /// Inputs that could not be read, one line each, naming the file.
    pub problems: Vec<String>,
}

impl Recorded {
    /// Reads a run directory. Errors (exit code 2) when the directory or its `result.json` is
    /// missing or unreadable; every other input is optional.
    pub fn load(dir: &Path) -> Result<Recorded> {
        if !dir.is_dir() {
            return Err(Error::Usage(format!("{}: no such run directory", dir.display())));
        }
        let result = RunResult::read(dir)?;
        let mut problems = Vec::new();
        let meta = match RunMeta::read(dir) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(format!("run.json: {e}"));
                None
            }
        };
        let scenario_path = RunDir::new(dir).scenario();
        let scenario_text = match std::fs::read_to_string(&scenario_path) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(format!("{}: {e}", scenario_path.display()));
                None
            }
        };
        let scenario = scenario_text.as_deref().and_then(|t| match Scenario::parse(t, &scenario_path.display().to_string()) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("{e} (the scenario's bounds are unknown)"));
                None
            }
        });
        let load_start_us = meta.as_ref().map(|m| m.load_start_us).or_else(|| {
            // Unavailability windows carry both clocks.
            result.unavailability_windows.first().map(|g| g.start_us - (g.start_s * 1e6).round() as i64)
        });
        if load_start_us.is_none() {
            problems.push("the load start is unknown (no run.json, no unavailability window): times are shown as recorded".into());
        }
        let load_start_us = load_start_us.unwrap_or(0);
        let load_s = meta.as_ref().map_or(0.0, |m| (m.load_end_us - m.load_start_us) as f64 / 1e6).max(0.0);

        let (faults, fault_errors) = match read_faults(&RunDir::new(dir).faults(), load_start_us) {
            Ok(f) => f,
            Err(e) => {
                problems.push(e);
                (Vec::new(), Vec::new())
            }
        };
        let stages = match read_hlog(&RunDir::new(dir).latency(), load_start_us) {
            Ok(s) => s,
            Err(e) => {
                problems.push(e);
                STAGES.iter().map(|name| Stage { name, windows: Vec::new(), overall: None }).collect()
            }
        };
        let throughput = throughput(dir, load_start_us, &mut problems);
        let profile = saved_profile(dir).or_else(|| profile_text(scenario.as_ref().map_or(result.profile.as_str(), |s| s.profile.name.as_str())));
        let description = scenario.as_ref().map(|s| s.description.clone());
        let expect = scenario.map(|s| s.expect);
        Ok(Recorded {
            dir: dir.to_path_buf(),
            result,
            meta,
            scenario_text,
            expect,
            description,
            profile,
            load_start_us,
            load_s,
            faults,
            fault_errors,
            stages,
            throughput,
            files: listing(dir),
            problems,
        })
    }

    /// The run's id: `result.json`'s, else the directory's name.
    pub fn run_id(&self) -> String {
        if self.result.run_id.is_empty() {
            self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            self.result.run_id.clone()
        }
    }

    /// Seconds after the load start that the time plots span: the load, every fault and the
    /// warehouse catching up afterwards.
    pub fn time_span_s(&self) -> f64 {
        let mut end = self.load_s;
        for f in &self.faults {
            end = end.max(f.end_s.unwrap_or(f.start_s));
        }
        for s in &self.stages {
            if let Some(w) = s.windows.last() {
                end = end.max(w.start_s + 1.0);
            }
        }
        end = end.max(self.throughput.warehouse.len() as f64).max(self.throughput.offered.len() as f64);
        if end > 0.0 {
            end
        } else {
            1.0
        }
    }

    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// When the run started (the warm-up), µs since the epoch, if known.
    pub fn started_us(&self) -> Option<i64> {
        self.meta.as_ref().map(|m| m.warmup_start_us).filter(|&t| t > 0)
    }
}

fn secs_after(t_us: i64, load_start_us: i64) -> f64 {
    (t_us - load_start_us) as f64 / 1e6
}

/// `faults.jsonl`: windows by id, and faults that could not be applied.
fn read_faults(path: &Path, load_start_us: i64) -> std::result::Result<(Vec<FaultWindow>, Vec<FaultError>), String> {
    let mut windows: BTreeMap<usize, FaultWindow> = BTreeMap::new();
    let mut errors = Vec::new();
    for r in crate::faults::read(path).map_err(|e| e.to_string())? {
        let at = secs_after(r.time_us, load_start_us);
        match r.event.as_str() {
            "start" => {
                windows.insert(
                    r.id,
                    FaultWindow {
                        id: r.id,
                        kind: r.kind.as_str().to_string(),
                        target: r.target,
                        components: r.components,
                        detail: r.detail,
                        start_s: at,
                        end_s: None,
                        heal_detail: String::new(),
                        evidence: r.evidence,
                        heal_evidence: Vec::new(),
                    },
                );
            }
            "heal" => match windows.get_mut(&r.id) {
                Some(w) => {
                    w.end_s = Some(at);
                    w.heal_detail = r.detail;
                    w.heal_evidence = r.evidence;
                }
                None => return Err(format!("{}: heal of fault {} that never started", path.display(), r.id)),
            },
            "error" => errors.push(FaultError { id: r.id, kind: r.kind.as_str().to_string(), target: r.target, at_s: at, error: r.detail }),
            other => return Err(format!("{}: fault {}: unknown fault event {other:?} (start, heal, error)", path.display(), r.id)),
        }
    }
    Ok((windows.into_values().collect(), errors))
}

/// `latency.hlog`: per stage, the one-second windows and their sum.
fn read_hlog(path: &Path, load_start_us: i64) -> std::result::Result<Vec<Stage>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut base_s: Option<f64> = None;
    let mut by_tag: BTreeMap<String, Vec<(f64, Histogram<u64>)>> = BTreeMap::new();
    let mut decoder = Deserializer::new();
    for (n, entry) in IntervalLogIterator::new(&bytes).enumerate() {
        let entry = entry.map_err(|e| format!("{}: entry {}: {e:?}", path.display(), n + 1))?;
        match entry {
            LogEntry::BaseTime(t) => base_s = Some(t.as_secs_f64()),
            LogEntry::StartTime(t) => {
                base_s.get_or_insert(t.as_secs_f64());
            }
            LogEntry::Interval(h) => {
                let tag = h.tag().map_or("", |t| t.as_str()).to_string();
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .map_err(|e| format!("{}: histogram {} ({tag}): not base64: {e}", path.display(), n + 1))?;
                let hist: Histogram<u64> =
                    decoder.deserialize(&mut raw.as_slice()).map_err(|e| format!("{}: histogram {} ({tag}): {e:?}", path.display(), n + 1))?;
                let t = h.start_timestamp().as_secs_f64();
                // Relative to the log's base time if it has one, else absolute.
                let absolute = base_s.map_or(t, |b| b + t);
                let start_s = if load_start_us > 0 { absolute - load_start_us as f64 / 1e6 } else { t };
                by_tag.entry(tag).or_default().push((start_s, hist));
            }
        }
    }
    Ok(STAGES
        .iter()
        .map(|name| {
            let mut entries = by_tag.remove(*name).unwrap_or_default();
            entries.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut overall: Option<Histogram<u64>> = None;
            let windows = entries
                .iter()
                .filter(|(_, h)| !h.is_empty())
                .map(|(start_s, h)| {
                    match overall.as_mut() {
                        Some(o) => o.add(h).expect("auto-resizing histograms add"),
                        None => {
                            let mut o = h.clone();
                            o.auto(true);
                            overall = Some(o);
                        }
                    }
                    let ms = |us: u64| us as f64 / 1000.0;
                    Window {
                        start_s: (*start_s * 1000.0).round() / 1000.0,
                        p50: ms(h.value_at_quantile(0.5)),
                        p99: ms(h.value_at_quantile(0.99)),
                        max: ms(h.max()),
                        count: h.len(),
                    }
                })
                .collect();
            Stage { name, windows, overall }
        })
        .collect())
}

/// Per-second offered, acknowledged and failed row changes from `history.jsonl`, and warehouse
/// commits from `observed/warehouse.tsv`.
fn throughput(dir: &Path, load_start_us: i64, problems: &mut Vec<String>) -> Throughput {
    fn add(series: &mut Vec<f64>, t_us: i64, load_start_us: i64, n: f64) {
        if t_us < load_start_us {
            return;
        }
        let i = ((t_us - load_start_us) / 1_000_000) as usize;
        if series.len() <= i {
            series.resize(i + 1, 0.0);
        }
        series[i] += n;
    }
    let mut t = Throughput::default();
    match crate::history::read(&RunDir::new(dir).history()) {
        Ok(ops) => {
            for op in ops.iter().filter(|o| o.phase == Phase::Load) {
                add(&mut t.offered, op.intended_us, load_start_us, op.rows.len() as f64);
                let Some(done) = op.complete_us else { continue };
                match op.outcome {
                    Outcome::Ok => {
                        let changed = op.rows.iter().filter(|r| r.affected != Some(false)).count();
                        add(&mut t.acknowledged, done, load_start_us, changed as f64);
                    }
                    Outcome::Fail | Outcome::Unknown => add(&mut t.not_acknowledged, done, load_start_us, op.rows.len() as f64),
                }
            }
        }
        Err(e) => problems.push(format!("throughput: {e}")),
    }
    if let Err(e) = observation::for_each(dir, Hop::Warehouse, |o| add(&mut t.warehouse, o.ts_us, load_start_us, 1.0)) {
        problems.push(format!("warehouse throughput: {e}"));
    }
    let len = [&t.offered, &t.acknowledged, &t.not_acknowledged, &t.warehouse].iter().map(|s| s.len()).max().unwrap_or(0);
    for s in [&mut t.offered, &mut t.acknowledged, &mut t.not_acknowledged, &mut t.warehouse] {
        s.resize(len, 0.0);
    }
    t
}

/// The profile's definition: `run.json` records only the profile's name, so this is the
/// built-in profile of that name as this harness ships it, or the profile file the scenario
/// names, as it reads now. `name` is the scenario's `profile` (a name or a path).
/// `profile.toml` of the run directory: the profile's text saved when the run started.
fn saved_profile(dir: &Path) -> Option<ProfileText> {
    let path = RunDir::new(dir).profile();
    std::fs::read_to_string(&path).ok().map(|text| ProfileText { source: format!("{}, saved when the run started", RunDir::new(dir).relative(&path)), text })
}

/// The profile by name, as it reads now (runs recorded before `profile.toml` was saved).
fn profile_text(name: &str) -> Option<ProfileText> {
    if let Some((_, text)) = crate::profile::BUILTIN.iter().find(|(n, _)| *n == name) {
        return Some(ProfileText {
            source: format!("built-in profile {name:?} as this build of cdc-chaos ships it (run.json records only the profile's name)"),
            text: text.to_string(),
        });
    }
    let path = Path::new(name);
    std::fs::read_to_string(path).ok().map(|text| ProfileText {
        source: format!("profile file {} as it reads now (run.json records only its name; it may have changed since the run)", path.display()),
        text,
    })
}

/// The recorded files of a run directory worth linking to, with their sizes: those that exist,
/// in a fixed order, then every file of `logs/`, by name. (The report files are not listed.)
fn listing(dir: &Path) -> Vec<(String, u64)> {
    // The recorded files, not the reports and not the directories (their files come below).
    let run = RunDir::new(dir);
    let recorded = [run.run_log(), run.result(), run.history(), run.faults(), run.recoveries(), run.latency(), run.scenario(), run.profile(), run.meta(), run.final_state()]
        .into_iter()
        .chain(Hop::ALL.map(|h| run.observed(h.as_str())))
        .map(|p| run.relative(&p))
        .collect::<Vec<String>>();
    let size = |rel: &str| std::fs::metadata(dir.join(rel)).ok().filter(|m| m.is_file()).map(|m| m.len());
    let mut out: Vec<(String, u64)> = recorded.iter().filter_map(|rel| size(rel).map(|n| (rel.clone(), n))).collect();
    let mut logs: Vec<(String, u64)> = std::fs::read_dir(run.logs())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            Some((format!("logs/{name}"), m.len()))
        })
        .collect();
    logs.sort();
    out.extend(logs);
    out
}
