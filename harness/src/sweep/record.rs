//! The record of a capacity sweep (`sweep.json`): the plan of offered rates, the objective each
//! step must meet, every step's figures, and the conclusion (maximum sustainable rate, knee).
//! [`crate::sweep`] runs the steps; `report::sweep` renders this record.

use crate::latency::Percentiles;
use crate::result::{RunResult, Verdict};
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
}
