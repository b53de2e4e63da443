//! `summary.md`: the run in brief, for pasting into an incident ticket — verdict and reasons,
//! scenario / seed / profile / run id, per-hop table, final state, latency percentiles per
//! stage, unavailability, fault timeline, notes, and the command that reproduces the run.

use std::fmt::Write as _;

use super::invariants::{self, Status};
use super::recorded::Recorded;
use super::{count, ms};

/// Escapes a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the summary.
pub fn render(rec: &Recorded) -> String {
    let r = &rec.result;
    let id = rec.run_id();
    let mut s = String::new();
    let _ = writeln!(s, "## cdc-chaos run `{id}`: **{}**\n", r.verdict.as_str().to_uppercase());
    let _ = writeln!(s, "| scenario | seed | profile | run id | started | quiesced |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| {} | {} | {} | `{}` | {} | {} |\n",
        cell(&r.scenario),
        r.seed,
        cell(&r.profile),
        id,
        rec.started_us().map(super::utc).unwrap_or_else(|| "—".into()),
        if r.quiesced {
            rec.meta.as_ref().map_or("yes".to_string(), |m| format!("yes, {:.0} s after the load", m.quiesce_s))
        } else {
            format!("**no**{}", r.quiesce_note.as_deref().map(|n| format!(" ({})", cell(n))).unwrap_or_default())
        }
    );
    if r.reasons.is_empty() {
        let _ = writeln!(s, "Every invariant held.\n");
    } else {
        let _ = writeln!(s, "**Why {}:**\n", r.verdict.as_str());
        for reason in &r.reasons {
            let _ = writeln!(s, "- {reason}");
        }
        s.push('\n');
    }

    let inv = invariants::judge(r, rec.expect.as_ref());
    let off: Vec<String> = inv.iter().filter(|i| !matches!(i.status, Status::Held)).map(|i| format!("{} ({})", i.name(), i.status.as_str())).collect();
    let _ = writeln!(
        s,
        "Invariants: {} held of {}{}.\n",
        inv.iter().filter(|i| i.status == Status::Held).count(),
        inv.len(),
        if off.is_empty() { String::new() } else { format!("; {}", off.join(", ")) }
    );

    let _ = writeln!(s, "### Delivery per hop\n");
    let _ = writeln!(s, "| hop | acknowledged | delivered | lost | lost, last seen at | duplicated | phantom | wrong op | out of order | unknown-committed |");
    let _ = writeln!(s, "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for (hop, h) in &r.hops {
        let by: Vec<String> = h.lost_by_last_seen.iter().map(|(at, n)| format!("{n} at {at}")).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            hop.as_str(),
            count(h.acknowledged),
            count(h.delivered),
            count(h.lost),
            if by.is_empty() { "—".into() } else { by.join(", ") },
            count(h.duplicated),
            count(h.phantom),
            count(h.wrong_operation),
            count(h.out_of_order),
            count(h.unknown_committed)
        );
    }
    let f = &r.final_state;
    let _ = writeln!(
        s,
        "\n**Final state:** {} ({} documents expected, {} in the warehouse){}\n",
        if f.matches { "match".to_string() } else { format!("{} customers differ", f.mismatched_keys.len()) },
        count(f.expected_documents),
        count(f.warehouse_documents),
        f.differences.first().map(|d| format!("; e.g. {d}")).unwrap_or_default()
    );
    if let Some(l) = &r.lake_state {
        let _ = writeln!(
            s,
            "**Lake state** (its change records folded): {} ({} documents){}\n",
            if l.matches { "match".to_string() } else { format!("{} customers differ", l.mismatched_keys.len()) },
            count(l.warehouse_documents),
            l.differences.first().map(|d| format!("; e.g. {d}")).unwrap_or_default()
        );
    }
    let _ = writeln!(
        s,
        "Operations: {} ok, {} fail, {} unknown · offered {:.1}/s, achieved {:.1}/s · dead letters {} · components down: {}\n",
        count(r.operations.ok),
        count(r.operations.fail),
        count(r.operations.unknown),
        r.offered_rate,
        r.achieved_rate,
        r.dead_letters,
        if r.components_down.is_empty() { "none".into() } else { r.components_down.join(", ") }
    );

    let _ = writeln!(s, "### Latency (ms, from intended send)\n");
    let _ = writeln!(s, "| stage | events | p50 | p90 | p99 | p99.9 | max |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    let b = &r.latency_ms_by_hop;
    for (name, p) in [("source", &b.source), ("raw", &b.raw), ("changes", &b.changes), ("warehouse", &b.warehouse), ("lake", &b.lake)] {
        let _ = writeln!(s, "| {name} | {} | {} | {} | {} | {} | {} |", count(p.count), ms(p.p50), ms(p.p90), ms(p.p99), ms(p.p999), ms(p.max));
    }

    let _ = writeln!(s, "\n### Unavailability\n");
    let bound = rec.expect.as_ref().and_then(|e| e.max_unavailability_s).map(|b| format!(" (bound {b} s)")).unwrap_or_default();
    let _ = writeln!(s, "Longest stretch without warehouse progress: **{:.1} s**{bound}.", r.max_unavailability_s);
    if !r.unavailability_windows.is_empty() {
        let w: Vec<String> = r
            .unavailability_windows
            .iter()
            .map(|g| format!("{:.1}–{:.1} s{}", g.start_s, g.start_s + g.duration_s, if g.recovered { "" } else { " (not recovered)" }))
            .collect();
        let _ = writeln!(s, "Windows (s after the load start): {}.", w.join(", "));
    }

    let _ = writeln!(s, "\n### Faults\n");
    if rec.faults.is_empty() && rec.fault_errors.is_empty() {
        let _ = writeln!(s, "None injected.");
    } else {
        let _ = writeln!(s, "| # | kind | target | hit | start (s) | heal (s) | resolved as |");
        let _ = writeln!(s, "|---:|---|---|---|---:|---:|---|");
        for f in &rec.faults {
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {} | {:.1} | {} | {} |",
                f.id,
                f.kind,
                f.target,
                cell(&f.components.join(", ")),
                f.start_s,
                f.end_s.map_or("not recorded".into(), |e| format!("{e:.1}")),
                if f.detail.is_empty() { "—".to_string() } else { cell(&f.detail) }
            );
        }
        for e in &rec.fault_errors {
            let _ = writeln!(s, "| {} | {} | `{}` | — | {:.1} | — | **not applied**: {} |", e.id, e.kind, e.target, e.at_s, cell(&e.error));
        }
    }

    if !r.notes.is_empty() || !rec.problems.is_empty() {
        let _ = writeln!(s, "\n### Notes\n");
        for n in r.notes.iter().chain(&rec.problems) {
            let _ = writeln!(s, "- {n}");
        }
    }

    let dir = rec.dir.display();
    let _ = writeln!(s, "\n### Reproduce\n\n    cdc-chaos replay {dir}\n");
    let _ = writeln!(
        s,
        "Same seed, same load, same fault schedule. Full report: `{dir}/report.html`; logs: `{dir}/logs/`; history: `{dir}/history.jsonl`."
    );
    s
}
