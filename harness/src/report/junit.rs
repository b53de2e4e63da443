//! `junit.xml`: the run as one JUnit test suite, one test case per invariant (see
//! [`super::invariants`]) — a violated invariant is a `<failure>` carrying the reason (and
//! examples in its text), an inconclusive or unchecked one is `<skipped>` with why. The suite's
//! properties carry the verdict, run id, seed and profile; `<system-out>` the plain summary.
//!
//! Written by hand: every text and attribute goes through [`super::escape`], which also drops
//! the characters XML 1.0 forbids.

use std::fmt::Write as _;

use super::escape;
use super::invariants::{self, Status};
use super::recorded::Recorded;
use crate::scenario::ExpectedVerdict;

/// Renders the document.
pub fn render(rec: &Recorded) -> String {
    let r = &rec.result;
    let mut inv = invariants::judge(r, rec.expect.as_ref());
    if r.expected_verdict == ExpectedVerdict::Fail {
        // A negative control: its violations are what it exists to show; whether it showed
        // them is one test case of its own.
        for i in inv.iter_mut() {
            if let Status::Violated { message, .. } = &i.status {
                i.status = Status::NotChecked(format!("violated, as this negative control expects: {message}"));
            }
        }
        inv.push(invariants::Invariant {
            hop: None,
            check: "fails as [expect] says",
            claim: "the negative control violates the invariants it was written for".into(),
            status: match r.as_expected {
                true => Status::Held,
                false => Status::Violated { message: r.unexpected.join("; "), details: String::new() },
            },
        });
    }
    let failures = inv.iter().filter(|i| matches!(i.status, Status::Violated { .. })).count();
    let skipped = inv.iter().filter(|i| matches!(i.status, Status::Inconclusive(_) | Status::NotChecked(_))).count();
    let time = rec.meta.as_ref().map_or(0.0, |m| (m.load_end_us - m.warmup_start_us) as f64 / 1e6 + m.quiesce_s).max(0.0);
    let timestamp = rec.started_us().map(|t| super::utc(t).trim_end_matches('Z').to_string());
    let classname = format!("cdc-chaos.{}", r.scenario);

    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        r#"<testsuites name="cdc-chaos" tests="{n}" failures="{failures}" errors="0" skipped="{skipped}" time="{time:.3}">"#,
        n = inv.len()
    );
    let _ = writeln!(
        s,
        r#"  <testsuite name="{name}" tests="{n}" failures="{failures}" errors="0" skipped="{skipped}" time="{time:.3}"{ts}>"#,
        name = escape(&format!("{} ({})", r.scenario, rec.run_id())),
        n = inv.len(),
        ts = timestamp.map(|t| format!(r#" timestamp="{t}""#)).unwrap_or_default()
    );
    s.push_str("    <properties>\n");
    for (name, value) in [
        ("verdict", r.verdict.as_str().to_string()),
        ("expected_verdict", if r.expected_verdict == ExpectedVerdict::Fail { "fail" } else { "pass" }.to_string()),
        ("as_expected", r.as_expected.to_string()),
        ("run_id", rec.run_id()),
        ("scenario", r.scenario.clone()),
        ("seed", r.seed.to_string()),
        ("profile", r.profile.clone()),
        ("replay", format!("cdc-chaos replay {}", rec.dir.display())),
    ] {
        let _ = writeln!(s, r#"      <property name="{name}" value="{}"/>"#, escape(&value));
    }
    s.push_str("    </properties>\n");
    for i in &inv {
        let open = format!(r#"    <testcase name="{}" classname="{}" time="0""#, escape(&i.name()), escape(&classname));
        match &i.status {
            Status::Held => {
                let _ = writeln!(s, "{open}/>");
            }
            Status::Violated { message, details } => {
                let _ = writeln!(s, "{open}>");
                let _ = writeln!(
                    s,
                    r#"      <failure message="{}" type="invariant violated">{}</failure>"#,
                    escape(message),
                    escape(if details.is_empty() { message } else { details })
                );
                s.push_str("    </testcase>\n");
            }
            Status::Inconclusive(m) | Status::NotChecked(m) => {
                let _ = writeln!(s, "{open}>");
                let _ = writeln!(s, r#"      <skipped message="{}"/>"#, escape(m));
                s.push_str("    </testcase>\n");
            }
        }
    }
    let _ = writeln!(s, "    <system-out>{}</system-out>", escape(&r.summary_text()));
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
