//! `cdc-chaos run <scenario>`: one run from start to verdict, and the run directory it leaves.
//!
//! Brings the stack up if needed, waits until the pipeline has quiesced and marks every hop's
//! position (the capture starts there), offers the warm-up and the load — every write carrying a
//! write id that names this run and its operation —,
//! waits until every hop has quiesced again (bounded: past the scenario's `quiesce_timeout` the
//! verdict is `unknown`), captures what each hop holds and the final state, and checks it.
//!
//! The run directory it leaves is [`crate::run_dir`]; `cdc-chaos check <run-dir>` re-checks it
//! without the stack.

use std::collections::BTreeMap;

use crate::platform::stack::Health;
use crate::run_dir::{run_id, RunDir, RunMeta};
use crate::{Error, Result};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The local stack's settings (on kind: the cache and the home of the fault journal).
    pub cfg: crate::StackConfig,
    /// Directory that receives `<run-id>/`.
    pub reports: std::path::PathBuf,
    /// The platform the stack runs on (brought up if it is not).
    pub deployment: crate::platform::deployment::Deployment,
}

impl RunOptions {
    /// A run on the local stack `cfg`.
    pub fn local(cfg: crate::StackConfig, reports: std::path::PathBuf) -> RunOptions {
        RunOptions { cfg, reports, deployment: crate::platform::deployment::Deployment::Local }
    }
}

/// Whether the pipeline came to rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Quiescence {
    pub quiesced: bool,
    pub note: Option<String>,
    pub waited: std::time::Duration,
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
        let down: Vec<String> = rows.iter().filter(|r| r.health == Health::Down).map(|r| r.name.clone()).collect();
        // Unreachable or degraded (a failed connector, a session being rebuilt): not resting.
        let sick: Vec<String> = rows.iter().filter(|r| !matches!(r.health, Health::Healthy | Health::Down)).map(|r| format!("{} {}: {}", r.name, r.health, r.detail)).collect();
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
        if matches!(opts.deployment, crate::platform::deployment::Deployment::Local) && (opts.cfg.loopback || !crate::config::is_root()) {
            return Err(Error::Usage(format!(
                "scenario {}: fault {} at {} is a network partition, which needs the Kafka nodes in network namespaces: run as root, without --loopback",
                scenario.name,
                f.kind.as_str(),
                f.at
            )));
        }
    }
    // The platform answers before anything is written.
    let stack = crate::platform::deployment::open(&opts.cfg, &opts.deployment)?;
    let stack = stack.as_ref();
    let now_us = cdc_pipeline::record::now_us();
    let now_s = now_us / 1_000_000;
    let id = run_id(&scenario.name, now_s);
    let run_tag = crate::history::run_tag(now_us);
    let dir = opts.reports.join(&id);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating the run directory", &dir, e))?;
    let run_dir = RunDir::new(&dir);
    let _mirror = crate::progress::mirror_to(run_dir.run_log());
    step(&format!("run {id}: scenario {} (seed {}), profile {} (settings {}), reports in {}", scenario.name, scenario.seed, profile.label(), profile.identity(), dir.display()));
    for (path, text) in [(run_dir.scenario(), scenario.resolved()), (run_dir.profile(), profile_text), (run_dir.faults(), String::new())] {
        std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))?;
    }

    crate::progress::catch_interrupts();
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
        run_dir.history().display()
    ));
    let history = crate::history::HistoryWriter::create(&run_dir.history())?;
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
    if crate::progress::interrupted() {
        return Err(Error::Interrupted { dir: dir.to_path_buf() });
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
        stack.status()?.into_iter().filter(|r| r.health != Health::Healthy).map(|r| format!("{} ({})", r.name, r.health)).collect();
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
