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

use crate::scenario::{Dur, Positive, Scenario};
use crate::{Error, Result};

pub mod record;

pub use record::{Objective, Plan, Step, Sweep, SATURATION};

/// Writes `sweep.json`, `sweep.md` and `sweep.html` into `dir`.
pub fn write(sweep: &Sweep, dir: &Path) -> Result<()> {
    let json = dir.join("sweep.json");
    std::fs::write(&json, serde_json::to_string_pretty(sweep).expect("json")).map_err(|e| Error::io("writing", &json, e))?;
    let md = dir.join("sweep.md");
    std::fs::write(&md, sweep.markdown()).map_err(|e| Error::io("writing", &md, e))?;
    crate::report::sweep::render(dir).map(|_| ())
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
    drop(crate::platform::deployment::open(&opts.run.cfg, &opts.run.deployment)?);
    let id = crate::run_dir::run_id(&format!("sweep-{}", scenario.name), cdc_pipeline::record::now_us() / 1_000_000);
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
    // sweep.log holds every line of the sweep, each step's run included; a step's run.log its own.
    let _mirror = crate::progress::mirror_to(dir.join("sweep.log"));
    for (i, rate) in rates.iter().enumerate() {
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
                write(&out, &dir)?;
                return Err(Error::component("sweep", format!("step {rate} changes/s could not run: {e}; the steps so far are in {}", dir.display())));
            }
        };
        let p = st.latency_ms_by_hop.get(&opts.objective.hop).map_or(0.0, |p| p.p99);
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
        write(&out, &dir)?;
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
