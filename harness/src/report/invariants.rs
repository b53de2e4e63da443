//! The invariants a run is judged by, one by one, as the reports list them (and `junit.xml`
//! turns into test cases): per hop no loss, no duplicates, no phantoms, in order; the final
//! state; the unavailability bound; the latency bound (when the scenario sets one); no dead
//! letters; no malformed records; the faults took effect; quiescence.
//!
//! Whether each holds is the verdict's own rule, [`crate::result::violations`], read off
//! `result.json` and the scenario's `[expect]`: a violation it finds makes the invariant
//! violated — a loss or a final-state difference only once the pipeline quiesced, *inconclusive*
//! before (the event may still be in flight). This module adds what a reader needs besides: the
//! claim, the examples, and why an invariant was not checked. Not quiescing is itself a violated
//! invariant: the pipeline must come to rest after the load.

use crate::result::{violations, RunResult};
use crate::scenario::{Expect, Invariant as Rule};

/// How an invariant fared.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// It held.
    Held,
    /// It was violated: why, and examples (one per line, may be empty).
    Violated { message: String, details: String },
    /// It could not be decided (not quiesced, nothing acknowledged): why.
    Inconclusive(String),
    /// The scenario does not ask for it: why.
    NotChecked(String),
}

impl Status {
    /// `held`, `violated`, `inconclusive`, `not checked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Violated { .. } => "violated",
            Status::Inconclusive(_) => "inconclusive",
            Status::NotChecked(_) => "not checked",
        }
    }

    /// The one-line explanation (empty when it held).
    pub fn message(&self) -> &str {
        match self {
            Status::Held => "",
            Status::Violated { message, .. } => message,
            Status::Inconclusive(m) | Status::NotChecked(m) => m,
        }
    }
}

/// One invariant and how it fared.
#[derive(Debug, Clone, PartialEq)]
pub struct Invariant {
    /// The hop it concerns (`raw`, `changes`, `warehouse`, `lake`), or `None` for the whole run.
    pub hop: Option<&'static str>,
    /// What is checked: `no loss`, `final state matches`, ...
    pub check: &'static str,
    /// What it claims, for people.
    pub claim: String,
    pub status: Status,
}

impl Invariant {
    /// `raw: no loss`, `final state matches`, ... (the JUnit test case name).
    pub fn name(&self) -> String {
        match self.hop {
            Some(hop) => format!("{hop}: {}", self.check),
            None => self.check.to_string(),
        }
    }
}

/// The checks made at every hop, in the order the reports list them.
pub const HOP_CHECKS: [&str; 5] = ["no loss", "no duplicates", "no phantoms", "right operation", "in order"];

fn held_or(violated: Option<(String, String)>) -> Status {
    match violated {
        Some((message, details)) => Status::Violated { message, details },
        None => Status::Held,
    }
}

/// Up to `n` example lines, and a count of the rest.
fn examples<T>(items: &[T], total: u64, n: usize, line: impl Fn(&T) -> String) -> String {
    let mut out: Vec<String> = items.iter().take(n).map(line).collect();
    let shown = out.len() as u64;
    if total > shown {
        out.push(format!("… and {} more", total - shown));
    }
    out.join("\n")
}

/// The invariants of `r` judged against `expect` (`None`: the scenario could not be read, so
/// its bounds are unknown and the default expectations apply to counts).
pub fn judge(r: &RunResult, expect: Option<&Expect>) -> Vec<Invariant> {
    let default = Expect::default();
    let e = expect.unwrap_or(&default);
    let not_quiesced = (!r.quiesced).then(|| {
        format!("not conclusive: the pipeline did not quiesce{}", r.quiesce_note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())
    });
    let found = violations(r, e);
    let violated = |rule: Rule, scope: Option<&str>| found.iter().any(|v| v.invariant == rule && v.scope == scope);
    let mut out = Vec::new();
    for (hop, h) in &r.hops {
        let name = hop.as_str();
        let loss = if violated(Rule::Lost, Some(name)) {
            let by: Vec<String> = h.lost_by_last_seen.iter().map(|(at, n)| format!("{n} at {at}")).collect();
            let message = format!("{} acknowledged events lost (allowed {}); last seen: {}", h.lost, e.lost, by.join(", "));
            match &not_quiesced {
                Some(why) => Status::Inconclusive(format!("{why}; {message}")),
                None => held_or(Some((
                    message,
                    examples(&h.lost_examples, h.lost, 20, |x| format!("{} (operation {}) last seen at {}", x.event, x.operation, x.last_seen)),
                ))),
            }
        } else if h.acknowledged == 0 {
            Status::Inconclusive("no event was acknowledged: nothing to check delivery of".into())
        } else {
            Status::Held
        };
        out.push(Invariant { hop: Some(name), check: HOP_CHECKS[0], claim: format!("every acknowledged event reached {name}"), status: loss });
        out.push(Invariant {
            hop: Some(name),
            check: HOP_CHECKS[1],
            claim: format!("no event reached {name} more than once"),
            status: held_or(violated(Rule::Duplicated, Some(name)).then(|| {
                (
                    format!("{} events duplicated, {} extra copies (allowed {})", h.duplicated, h.duplicate_copies, e.duplicated),
                    examples(&h.duplicated_examples, h.duplicated, 20, |x| format!("{} ×{}", x.event, x.copies)),
                )
            })),
        });
        out.push(Invariant {
            hop: Some(name),
            check: HOP_CHECKS[2],
            claim: format!("everything that reached {name} was written by an operation of the run that did not fail"),
            status: held_or(violated(Rule::Phantom, Some(name)).then(|| {
                (
                    format!("{} phantom events, never acknowledged (allowed {})", h.phantom, e.phantom),
                    examples(&h.phantom_examples, h.phantom, 20, |x| format!("{} at {}/{}", x.event, x.partition, x.offset)),
                )
            })),
        });
        out.push(Invariant {
            hop: Some(name),
            check: HOP_CHECKS[3],
            claim: format!("every event reached {name} as the operation its write made (upsert or delete)"),
            status: held_or(violated(Rule::WrongOperation, Some(name)).then(|| {
                (
                    format!("{} records carry the wrong operation", h.wrong_operation),
                    examples(&h.wrong_operation_examples, h.wrong_operation, 20, |x| format!("{} at {}/{} (its operation made an {})", x.event, x.partition, x.offset, x.expected)),
                )
            })),
        });
        out.push(Invariant {
            hop: Some(name),
            check: HOP_CHECKS[4],
            claim: format!("each source row's events reached {name} in commit order"),
            status: held_or(violated(Rule::OutOfOrder, Some(name)).then(|| {
                (
                    format!("{} events out of commit order (allowed {})", h.out_of_order, e.out_of_order),
                    examples(&h.out_of_order_examples, h.out_of_order, 20, |x| {
                        format!("{} arrived after {} at {}/{}", x.event, x.arrived_after, x.partition, x.offset)
                    }),
                )
            })),
        });
    }
    for (check, claim, f, scope) in [
        ("final state matches", "the warehouse's customer_360 equals the join recomputed from the source tables", Some(&r.final_state), None),
        ("lake state matches", "the lake's documents, its change records folded, equal the join recomputed from the source tables", r.lake_state.as_ref(), Some("lake")),
    ] {
        let status = match f {
            _ if !e.final_state => Status::NotChecked("the scenario does not expect it ([expect] final_state = false)".into()),
            None => Status::NotChecked("the run directory has no lake documents".into()),
            Some(_) if !violated(Rule::FinalState, scope) => Status::Held,
            Some(f) => {
                let message = format!("{} customers differ from the join recomputed from the sources", f.mismatched_keys.len());
                match &not_quiesced {
                    Some(why) => Status::Inconclusive(format!("{why}; {message}")),
                    None => Status::Violated { message, details: f.differences.join("\n") },
                }
            }
        };
        out.push(Invariant { hop: None, check, claim: claim.into(), status });
    }
    let unavailability = match (expect, expect.and_then(|e| e.max_unavailability_s)) {
        (None, _) => Status::NotChecked(format!("scenario.toml unreadable: bound unknown (measured {:.1} s)", r.max_unavailability_s)),
        (Some(_), None) => Status::NotChecked(format!("the scenario sets no max_unavailability_s (measured {:.1} s)", r.max_unavailability_s)),
        (Some(_), Some(bound)) => held_or(violated(Rule::Unavailability, None).then(|| {
            let at = r.unavailability_windows.iter().max_by(|a, b| a.duration_s.total_cmp(&b.duration_s));
            let at = at.map(|g| format!(" (from {:.1} s to {:.1} s after the load start)", g.start_s, g.start_s + g.duration_s)).unwrap_or_default();
            (format!("unavailable for {:.1} s{at}, more than the bound of {bound} s", r.max_unavailability_s), String::new())
        })),
    };
    out.push(Invariant {
        hop: None,
        check: "max unavailability within bound",
        claim: "the warehouse never went without progress for longer than the bound while load was offered".into(),
        status: unavailability,
    });
    if let Some(bound) = expect.and_then(|e| e.p99_ms) {
        let status = if r.latency_ms.count == 0 {
            Status::Inconclusive("no latency was measured (no load event reached the warehouse)".into())
        } else {
            held_or(
                violated(Rule::Latency, None)
                    .then(|| (format!("latency p99 {:.1} ms exceeds the bound of {bound} ms", r.latency_ms.p99), String::new())),
            )
        };
        out.push(Invariant {
            hop: None,
        check: "latency p99 within bound",
            claim: format!("p99 of intended send → warehouse commit is at most {bound} ms"),
            status,
        });
    }
    out.push(Invariant {
        hop: None,
        check: "no dead letters",
        claim: "the join wrote nothing to customer_360.dead-letter".into(),
        status: held_or(violated(Rule::DeadLetters, None).then(|| (format!("{} records on the dead-letter topic", r.dead_letters), String::new()))),
    });
    let malformed: Vec<String> = r.malformed.iter().filter(|(_, n)| **n > 0).map(|(hop, n)| format!("{hop}: {n}")).collect();
    out.push(Invariant {
        hop: None,
        check: "no malformed records",
        claim: "every record of every hop could be decoded".into(),
        status: held_or(violated(Rule::Malformed, None).then(|| (format!("malformed records: {}", malformed.join(", ")), String::new()))),
    });
    out.push(Invariant {
        hop: None,
        check: "faults took effect",
        claim: "every fault was applied and its evidence held: the process gone or stopped, the probe across the cut blocked, the role holder hit".into(),
        status: if r.faults_unproven.is_empty() {
            Status::Held
        } else {
            Status::Inconclusive(format!("{} faults did not show that they took effect: {}", r.faults_unproven.len(), r.faults_unproven.join("; ")))
        },
    });
    out.push(Invariant {
        hop: None,
        check: "quiesced",
        claim: "every hop came to rest after the load, within the scenario's quiesce_timeout".into(),
        status: held_or(not_quiesced.map(|_| {
            (
                format!(
                    "the pipeline did not quiesce{}: losses and final-state differences are not conclusive",
                    r.quiesce_note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
                ),
                String::new(),
            )
        })),
    });
    out
}

