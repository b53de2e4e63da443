//! The fault timeline of a run (`faults.jsonl`) and the evidence that each fault took effect.
//!
//! Every line is a [`FaultRecord`]: a fault's `start`, its `heal`, or an `error` (it could not be
//! applied). A `start` carries the [`Proof`]s checked while the fault was coming into force — the
//! process gone (`kill`, `restart`) or stopped (`pause`, state `T`), a TCP probe across the cut
//! that got no answer (partitions), the role holder as resolved just before (role targets) — and
//! a `heal` those checked when it ended: still gone, stopped or cut after how long, then running
//! again or the probe passing again.
//!
//! A fault that was not applied, carries no proof, or has a proof that did not hold leaves the run
//! `unknown` ([`unproven`]): a pass must not rest on a fault that may have done nothing.

use std::collections::BTreeMap;
use std::path::Path;

use crate::scenario::FaultKind;

/// One check that a fault took effect (or ended).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Proof {
    /// What was checked and what it found, e.g. `kafka-2 (pid 4242) gone` or
    /// `10.231.0.12 → 10.231.0.11:9092 blocked (no answer in 1.0 s)`.
    pub claim: String,
    /// Whether the fault did what it should have (`false`: the claim says what was found instead).
    pub held: bool,
    /// When it was checked, µs since the epoch.
    pub time_us: i64,
}

impl Proof {
    pub fn new(held: bool, claim: impl Into<String>) -> Proof {
        Proof { claim: claim.into(), held, time_us: cdc_pipeline::record::now_us() }
    }
}

/// One line of `faults.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaultRecord {
    pub id: usize,
    /// `start`, `heal`, or `error` (the fault could not be applied).
    pub event: String,
    pub kind: FaultKind,
    pub target: String,
    pub components: Vec<String>,
    /// How a role target was resolved, e.g. "leader of crm.public.customers/0 is node 2".
    pub detail: String,
    pub time_us: i64,
    /// What was checked when the fault started or healed (empty in timelines that predate it).
    #[serde(default)]
    pub evidence: Vec<Proof>,
}

/// Reads a fault timeline; an unreadable file or a line that is not a record is an error naming
/// the file and the line.
pub fn read(path: &Path) -> crate::Result<Vec<FaultRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io("reading the fault timeline", path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| serde_json::from_str(line).map_err(|e| crate::Error::record(path, Some(n + 1), format!("not a fault record: {e}"))))
        .collect()
}

/// Why the faults of a timeline do not show that they took effect, one line per fault: not
/// applied, no evidence recorded, or a check that did not hold. Empty when every fault proved
/// itself.
pub fn unproven(records: &[FaultRecord]) -> Vec<String> {
    let mut by_id: BTreeMap<usize, Vec<&FaultRecord>> = BTreeMap::new();
    for r in records {
        by_id.entry(r.id).or_default().push(r);
    }
    let mut reasons = Vec::new();
    for (id, rs) in by_id {
        let first = rs[0];
        let name = format!("fault #{id} {} {}", first.kind.as_str(), first.target);
        if let Some(e) = rs.iter().find(|r| r.event == "error") {
            reasons.push(format!("{name} was not applied: {}", e.detail));
            continue;
        }
        let Some(start) = rs.iter().find(|r| r.event == "start") else { continue };
        if start.evidence.is_empty() {
            reasons.push(format!("{name}: no evidence that it took effect was recorded"));
            continue;
        }
        let failed: Vec<&str> = rs.iter().flat_map(|r| &r.evidence).filter(|p| !p.held).map(|p| p.claim.as_str()).collect();
        if !failed.is_empty() {
            reasons.push(format!("{name} → {}: {}", start.components.join("+"), failed.join("; ")));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: usize, event: &str, evidence: Vec<Proof>) -> FaultRecord {
        FaultRecord {
            id,
            event: event.into(),
            kind: FaultKind::Kill,
            target: "leader:crm.public.customers/0".into(),
            components: vec!["kafka-2".into()],
            detail: String::new(),
            time_us: 1,
            evidence,
        }
    }

    #[test]
    fn a_fault_proves_itself_only_with_evidence_that_held() {
        let ok = || vec![Proof::new(true, "kafka-2 (pid 7) gone")];
        assert!(unproven(&[record(0, "start", ok()), record(0, "heal", ok())]).is_empty());
        assert!(unproven(&[]).is_empty());

        let none = unproven(&[record(0, "start", vec![]), record(0, "heal", ok())]);
        assert_eq!(none, vec!["fault #0 kill leader:crm.public.customers/0: no evidence that it took effect was recorded"]);

        let failed = unproven(&[record(1, "start", ok()), record(1, "heal", vec![Proof::new(false, "kafka-2 running again (pid 9) before the heal")])]);
        assert_eq!(failed, vec!["fault #1 kill leader:crm.public.customers/0 → kafka-2: kafka-2 running again (pid 9) before the heal"]);

        let mut error = record(2, "error", vec![]);
        error.detail = "there is no kafka-7".into();
        assert_eq!(unproven(&[error]), vec!["fault #2 kill leader:crm.public.customers/0 was not applied: there is no kafka-7"]);
    }

    #[test]
    fn timelines_before_evidence_still_read_and_bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("cdc-chaos-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = crate::run_dir::RunDir::new(&dir).faults();
        std::fs::write(&path, "{\"id\":0,\"event\":\"start\",\"kind\":\"pause\",\"target\":\"controller\",\"components\":[\"kafka-1\"],\"detail\":\"\",\"time_us\":5}\n\nnot json\n").unwrap();
        let e = read(&path).unwrap_err();
        assert!(matches!(&e, crate::Error::Record { line: Some(3), .. }), "{e:?}");
        assert!(e.to_string().contains("faults.jsonl:3: not a fault record"), "{e}");
        std::fs::write(&path, "{\"id\":0,\"event\":\"start\",\"kind\":\"pause\",\"target\":\"controller\",\"components\":[\"kafka-1\"],\"detail\":\"\",\"time_us\":5}\n").unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records[0].evidence, vec![]);
        assert_eq!(unproven(&records).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
