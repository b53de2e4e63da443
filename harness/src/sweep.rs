//! `cdc-chaos sweep`: capacity planning.
//!
//! Runs a scenario (with its faults, or none) again and again at a rising offered rate — from
//! `start`, multiplied by `factor` or increased by `step`, up to `max` — and measures at each step
//! the achieved rate and every hop's latency percentiles. A step *meets the objective* when the run
//! passes (nothing lost, duplicated, out of order; final state matches), the chosen hop's p99 is
//! within the bound, and the load generator achieved at least 90 % of the offered rate. The
//! highest rate meeting it is the maximum sustainable rate; the first rate that misses it is past
//! the knee of the throughput–latency curve, and the sweep stops there unless asked to go on.
//!
//! Output: `reports/sweep-<scenario>-<UTC>/` holding one run directory per step (each a complete
//! run, with its own report) and `sweep.json` ([`Sweep`]), `sweep.md`, `sweep.html` (the curve,
//! see `report::sweep`) and `sweep.log`; all three are rewritten after every step, so an
//! interrupted sweep keeps what it measured.

use std::path::{Path, PathBuf};

use crate::latency::Percentiles;
use crate::result::{RunResult, Verdict};
use crate::scenario::{Dur, Positive, Scenario};
use crate::{Error, Result};

/// A step's achieved rate must reach this share of the offered rate.
pub const SATURATION: f64 = 0.9;

/// What a step must meet.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Objective {
    /// The hop whose latency is bounded (`warehouse` = intended time → warehouse commit).
    pub hop: String,
    /// Bound on that hop's p99, ms.
    pub p99_ms: f64,
}

/// How the offered rate rises.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub start: f64,
    /// Multiply by this at each step (> 1), or …
    pub factor: Option<f64>,
    /// … add this at each step (> 0).
    pub step: Option<f64>,
    pub max: f64,
}

impl Plan {
    /// Checks the plan; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |flag: &str, why: String| Err(Error::Usage(format!("sweep: {flag}: {why}")));
        if !(self.start.is_finite() && self.start > 0.0) {
            return bad("--start", format!("{} is not a positive rate", self.start));
        }
        if !(self.max.is_finite() && self.max >= self.start) {
            return bad("--max", format!("{} is below --start {}", self.max, self.start));
        }
        match (self.factor, self.step) {
            (Some(_), Some(_)) => bad("--factor/--step", "give one of them, not both".into()),
            (Some(f), None) if !(f.is_finite() && f > 1.0) => bad("--factor", format!("{f} must be above 1")),
            (None, Some(s)) if !(s.is_finite() && s > 0.0) => bad("--step", format!("{s} must be above 0")),
            _ => Ok(()),
        }?;
        if self.rates().len() > 50 {
            return bad("--max", format!("{} steps from {} to {}; at most 50", self.rates().len(), self.start, self.max));
        }
        Ok(())
    }

    /// The offered rates, rising, from `start` to at most `max` (default factor 2).
    pub fn rates(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let mut r = self.start;
        while r <= self.max * (1.0 + 1e-9) && out.len() <= 50 {
            out.push((r * 1000.0).round() / 1000.0);
            r = match self.step {
                Some(s) => r + s,
                None => r * self.factor.unwrap_or(2.0),
            };
        }
        out
    }
}

/// One step of a sweep.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Offered rate, row changes/s.
    pub offered_rate: f64,
    pub achieved_rate: f64,
    /// The step's run id (its directory inside the sweep directory); empty if it did not run.
    pub run_id: String,
    /// `pass`, `fail`, `unknown`, or `error` if the run could not be carried out.
    pub verdict: String,
    /// Lost + duplicated + phantom + out-of-order events over every hop.
    pub anomalies: u64,
    /// Latency from intended time per hop (`source`, `raw`, `changes`, `warehouse`, `lake`).
    pub latency_ms_by_hop: std::collections::BTreeMap<String, Percentiles>,
    pub max_unavailability_s: f64,
    pub meets_objective: bool,
    /// Why the step misses the objective (empty if it meets it).
    pub why: String,
}

impl Step {
    /// Judges a finished run against `objective`.
    pub fn from_result(offered: f64, r: &RunResult, objective: &Objective) -> Step {
        let anomalies = r.hops.values().map(|h| h.lost + h.duplicated + h.phantom + h.out_of_order).sum();
        let latency_ms_by_hop: std::collections::BTreeMap<String, Percentiles> =
            serde_json::to_value(&r.latency_ms_by_hop).ok().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
        let mut why = Vec::new();
        if r.verdict != Verdict::Pass {
            why.push(format!("verdict {}", verdict_str(r.verdict)));
        }
        match latency_ms_by_hop.get(&objective.hop) {
            Some(p) if p.count > 0 && p.p99 <= objective.p99_ms => {}
            Some(p) if p.count > 0 => why.push(format!("{} p99 {:.0} ms > {:.0} ms", objective.hop, p.p99, objective.p99_ms)),
            _ => why.push(format!("no event reached {}", objective.hop)),
        }
        if r.achieved_rate < SATURATION * offered {
            why.push(format!("achieved {:.1}/s < {:.0} % of offered", r.achieved_rate, SATURATION * 100.0));
        }
        Step {
            offered_rate: offered,
            achieved_rate: r.achieved_rate,
            run_id: r.run_id.clone(),
            verdict: verdict_str(r.verdict).into(),
            anomalies,
            latency_ms_by_hop,
            max_unavailability_s: r.max_unavailability_s,
            meets_objective: why.is_empty(),
            why: why.join("; "),
        }
    }
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Unknown => "unknown",
    }
}

/// A sweep's outcome (`sweep.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sweep {
    pub id: String,
    pub scenario: String,
    pub seed: u64,
    pub profile: String,
    /// Measured load per step (the scenario's duration, or the override).
    pub duration: String,
    pub faults: usize,
    pub plan: Plan,
    pub objective: Objective,
    pub steps: Vec<Step>,
    /// Highest offered rate that met the objective, if any did.
    pub max_sustainable_rate: Option<f64>,
    /// The first rate past it that missed the objective (the knee), if one was reached.
    pub knee_rate: Option<f64>,
}

impl Sweep {
    /// Fills `max_sustainable_rate` and `knee_rate` from the steps.
    pub fn conclude(&mut self) {
        self.max_sustainable_rate = self.steps.iter().filter(|s| s.meets_objective).map(|s| s.offered_rate).reduce(f64::max);
        let best = self.max_sustainable_rate.unwrap_or(0.0);
        self.knee_rate = self.steps.iter().filter(|s| !s.meets_objective && s.offered_rate > best).map(|s| s.offered_rate).reduce(f64::min);
    }

    /// 0 if some rate met the objective, 1 if none did.
    pub fn exit_code(&self) -> i32 {
        if self.max_sustainable_rate.is_some() {
            crate::error::EXIT_PASS
        } else {
            crate::error::EXIT_VIOLATION
        }
    }

    /// `sweep.md`: the table and the conclusion.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Sweep {}\n\nScenario **{}** (seed {}, profile {}, {} fault(s)), {} of load per step. Objective: p99 intended→{} ≤ {:.0} ms, verdict pass, achieved ≥ {:.0} % of offered.\n\n",
            self.id,
            self.scenario,
            self.seed,
            self.profile,
            self.faults,
            self.duration,
            self.objective.hop,
            self.objective.p99_ms,
            SATURATION * 100.0
        );
        out += &match (self.max_sustainable_rate, self.knee_rate) {
            (Some(m), Some(k)) => format!("**Maximum sustainable rate: {m} changes/s** ({} p99 {:.0} ms); {k} changes/s missed the objective.\n\n", self.objective.hop, self.p99_at(m)),
            (Some(m), None) => format!("**Maximum sustainable rate: at least {m} changes/s** ({} p99 {:.0} ms): every step met the objective; raise --max to find the knee.\n\n", self.objective.hop, self.p99_at(m)),
            (None, _) => "**No rate met the objective.**\n\n".into(),
        };
        out += "| offered/s | achieved/s | verdict | anomalies | source p99 | raw p99 | changes p99 | warehouse p50 | warehouse p99 | warehouse p99.9 | lake p99 | max unavailability | meets |\n";
        out += "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
        for s in &self.steps {
            let p = |hop: &str, f: fn(&Percentiles) -> f64| s.latency_ms_by_hop.get(hop).filter(|p| p.count > 0).map_or("–".into(), |p| format!("{:.0} ms", f(p)));
            out += &format!(
                "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} |\n",
                s.offered_rate,
                s.achieved_rate,
                s.verdict,
                s.anomalies,
                p("source", |p| p.p99),
                p("raw", |p| p.p99),
                p("changes", |p| p.p99),
                p("warehouse", |p| p.p50),
                p("warehouse", |p| p.p99),
                p("warehouse", |p| p.p999),
                p("lake", |p| p.p99),
                s.max_unavailability_s,
                if s.meets_objective { "yes".to_string() } else { format!("no: {}", s.why) }
            );
        }
        out += "\nEach step is a complete run in this directory (`<run id>/report.html`).\n";
        out
    }

    fn p99_at(&self, rate: f64) -> f64 {
        self.steps.iter().find(|s| s.offered_rate == rate).and_then(|s| s.latency_ms_by_hop.get(&self.objective.hop)).map_or(0.0, |p| p.p99)
    }

    /// Writes `sweep.json`, `sweep.md` and `sweep.html` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = dir.join("sweep.json");
        std::fs::write(&json, serde_json::to_string_pretty(self).expect("json")).map_err(|e| Error::io("writing", &json, e))?;
        let md = dir.join("sweep.md");
        std::fs::write(&md, self.markdown()).map_err(|e| Error::io("writing", &md, e))?;
        crate::report::sweep::render(dir).map(|_| ())
    }
}

/// Options of a sweep.
pub struct SweepOptions {
    pub run: crate::run::RunOptions,
    pub plan: Plan,
    pub objective: Objective,
    /// Replaces the scenario's load duration at each step.
    pub duration: Option<Dur>,
    /// Run every step, also past the first one that misses the objective.
    pub keep_going: bool,
}

/// Runs the sweep; returns its directory and outcome. A step whose run fails to carry out (a
/// harness or stack error) ends the sweep; what was measured so far is kept.
pub fn sweep(scenario: &Scenario, opts: &SweepOptions) -> Result<(PathBuf, Sweep)> {
    use crate::progress::step;
    opts.plan.validate()?;
    if !["source", "raw", "changes", "warehouse", "lake"].contains(&opts.objective.hop.as_str()) {
        return Err(Error::Usage(format!("sweep: --hop {:?}: one of source, raw, changes, warehouse, lake", opts.objective.hop)));
    }
    if !(opts.objective.p99_ms.is_finite() && opts.objective.p99_ms > 0.0) {
        return Err(Error::Usage(format!("sweep: --p99-ms {}: a positive bound in milliseconds", opts.objective.p99_ms)));
    }
    let mut base = scenario.clone();
    if let Some(d) = opts.duration {
        base.duration = d;
    }
    base.check().map_err(|e| Error::Usage(format!("sweep: scenario {} with --duration {}: {e}", base.name, base.duration)))?;
    // The platform answers before anything is written (each step connects again).
    drop(crate::platform::stack::open(&opts.run.cfg, &opts.run.deployment)?);
    let id = crate::run::run_id(&format!("sweep-{}", scenario.name), cdc_pipeline::record::now_us() / 1_000_000);
    let dir = opts.run.reports.join(&id);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating the sweep directory", &dir, e))?;
    let rates = opts.plan.rates();
    let mut out = Sweep {
        id: id.clone(),
        scenario: base.name.clone(),
        seed: base.seed,
        profile: base.profile.to_string(),
        duration: base.duration.to_string(),
        faults: base.schedule().len(),
        plan: opts.plan.clone(),
        objective: opts.objective.clone(),
        steps: Vec::new(),
        max_sustainable_rate: None,
        knee_rate: None,
    };
    for (i, rate) in rates.iter().enumerate() {
        // Each step's run logs to its own run.log; the sweep's own lines go to sweep.log.
        crate::progress::log_to(dir.join("sweep.log"));
        step(&format!("sweep {id}: step {}/{}: {rate} changes/s", i + 1, rates.len()));
        let mut s = base.clone();
        s.load.rate = Positive(*rate);
        let step_opts = crate::run::RunOptions { cfg: opts.run.cfg.clone(), reports: dir.clone(), deployment: opts.run.deployment.clone() };
        let result = crate::run::run(&s, &step_opts);
        let st = match result {
            Ok((_, r)) => Step::from_result(*rate, &r, &opts.objective),
            Err(e) => {
                out.steps.push(Step {
                    offered_rate: *rate,
                    achieved_rate: 0.0,
                    run_id: String::new(),
                    verdict: "error".into(),
                    anomalies: 0,
                    latency_ms_by_hop: Default::default(),
                    max_unavailability_s: 0.0,
                    meets_objective: false,
                    why: e.to_string(),
                });
                out.conclude();
                out.write(&dir)?;
                return Err(Error::component("sweep", format!("step {rate} changes/s could not run: {e}; the steps so far are in {}", dir.display())));
            }
        };
        let p = st.latency_ms_by_hop.get(&opts.objective.hop).map_or(0.0, |p| p.p99);
        crate::progress::log_to(dir.join("sweep.log"));
        step(&format!(
            "sweep step {rate}/s: achieved {:.1}/s, {} p99 {p:.0} ms, verdict {}: {}",
            st.achieved_rate,
            opts.objective.hop,
            st.verdict,
            if st.meets_objective { "meets the objective".to_string() } else { format!("misses it ({})", st.why) }
        ));
        let missed = !st.meets_objective;
        out.steps.push(st);
        out.conclude();
        out.write(&dir)?;
        if missed && !opts.keep_going {
            break;
        }
    }
    Ok((dir, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan(start: f64, factor: Option<f64>, step: Option<f64>, max: f64) -> Plan {
        Plan { start, factor, step, max }
    }

    #[test]
    fn rates_rise_by_factor_or_step() {
        assert_eq!(plan(20.0, Some(2.0), None, 200.0).rates(), [20.0, 40.0, 80.0, 160.0]);
        assert_eq!(plan(50.0, None, Some(50.0), 200.0).rates(), [50.0, 100.0, 150.0, 200.0]);
        assert_eq!(plan(20.0, None, None, 80.0).rates(), [20.0, 40.0, 80.0], "factor 2 by default");
        assert_eq!(plan(10.0, Some(1.5), None, 40.0).rates(), [10.0, 15.0, 22.5, 33.75]);
    }

    #[test]
    fn bad_plans_name_the_flag() {
        let e = |p: Plan| p.validate().unwrap_err().to_string();
        assert!(e(plan(0.0, None, None, 10.0)).contains("--start"));
        assert!(e(plan(10.0, None, None, 5.0)).contains("--max"));
        assert!(e(plan(10.0, Some(2.0), Some(5.0), 50.0)).contains("not both"));
        assert!(e(plan(10.0, Some(1.0), None, 50.0)).contains("--factor"));
        assert!(e(plan(10.0, None, Some(-1.0), 50.0)).contains("--step"));
        assert!(e(plan(1.0, None, Some(1.0), 1000.0)).contains("at most 50"));
    }

    fn step(rate: f64, meets: bool) -> Step {
        Step {
            offered_rate: rate,
            achieved_rate: rate,
            run_id: format!("r{rate}"),
            verdict: "pass".into(),
            anomalies: 0,
            latency_ms_by_hop: Default::default(),
            max_unavailability_s: 0.0,
            meets_objective: meets,
            why: String::new(),
        }
    }

    fn sweep_of(steps: Vec<Step>) -> Sweep {
        let mut s = Sweep {
            id: "sweep-t".into(),
            scenario: "t".into(),
            seed: 1,
            profile: "durable".into(),
            duration: "60s".into(),
            faults: 0,
            plan: plan(10.0, None, None, 80.0),
            objective: Objective { hop: "warehouse".into(), p99_ms: 1000.0 },
            steps,
            max_sustainable_rate: None,
            knee_rate: None,
        };
        s.conclude();
        s
    }

    #[test]
    fn the_knee_is_the_first_miss_above_the_best_rate() {
        let s = sweep_of(vec![step(10.0, true), step(20.0, true), step(40.0, false), step(80.0, false)]);
        assert_eq!((s.max_sustainable_rate, s.knee_rate), (Some(20.0), Some(40.0)));
        assert_eq!(s.exit_code(), 0);
        assert!(s.markdown().contains("Maximum sustainable rate: 20 changes/s"), "{}", s.markdown());
        let none = sweep_of(vec![step(10.0, false)]);
        assert_eq!((none.max_sustainable_rate, none.knee_rate), (None, Some(10.0)));
        assert_eq!(none.exit_code(), 1);
        assert!(none.markdown().contains("No rate met"));
        let all = sweep_of(vec![step(10.0, true), step(20.0, true)]);
        assert_eq!(all.knee_rate, None);
        assert!(all.markdown().contains("at least 20"));
    }

    proptest! {
        /// The maximum sustainable rate always met the objective, and no step above it did.
        #[test]
        fn max_sustainable_is_the_highest_meeting_rate(meets in proptest::collection::vec(any::<bool>(), 1..12)) {
            let steps: Vec<Step> = meets.iter().enumerate().map(|(i, m)| step(10.0 * (i + 1) as f64, *m)).collect();
            let s = sweep_of(steps);
            match s.max_sustainable_rate {
                Some(m) => {
                    prop_assert!(s.steps.iter().any(|x| x.offered_rate == m && x.meets_objective));
                    prop_assert!(s.steps.iter().all(|x| x.offered_rate <= m || !x.meets_objective));
                    if let Some(k) = s.knee_rate { prop_assert!(k > m); }
                }
                None => prop_assert!(meets.iter().all(|m| !m)),
            }
        }
    }
}
