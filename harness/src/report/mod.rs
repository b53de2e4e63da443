//! Per-run reports for people (docs/scenarios.md): `report.html`, `summary.md` and `junit.xml`, rendered
//! from a run directory's recorded files only — never from the live stack — and `compare`, two
//! runs side by side.
//!
//! Owns the three report files and what they show. It reads what `run` and `check` wrote and
//! writes only the report files; it never changes `result.json` or the verdict. `run` renders
//! after writing `result.json`, `check` after rewriting it, and `cdc-chaos report <run-dir>`
//! re-renders on demand.
//!
//! Files: `recorded.rs` (reading a run directory: latency windows, fault windows, throughput),
//! `invariants.rs` (each invariant and how it fared), `svg.rs` (the plotting helper),
//! `html.rs` (`report.html`), `summary.rs` (`summary.md`), `junit.rs` (`junit.xml`),
//! `compare.rs` (two runs), `sweep.rs` (a capacity sweep's `sweep.html`).

pub mod compare;
mod html;
pub mod invariants;
mod junit;
pub mod recorded;
mod summary;
pub mod sweep;
pub mod svg;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use recorded::Recorded;

use crate::run_dir::RunDir;
use crate::{Error, Result};

/// What [`render`] wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The files written: `report.html`, `summary.md`, `junit.xml`.
    pub files: Vec<PathBuf>,
    /// Inputs that could not be read (their part of the report is empty), naming the file.
    pub problems: Vec<String>,
}

/// Renders `report.html`, `summary.md` and `junit.xml` into the run directory `dir` from its
/// recorded files. Errors when `dir` or its `result.json` is missing or unreadable, or when a
/// report file cannot be written.
pub fn render(dir: &Path) -> Result<Rendered> {
    let rec = Recorded::load(dir)?;
    let mut files = Vec::new();
    let run = RunDir::new(dir);
    for (path, text) in [(run.report_html(), html::render(&rec)), (run.summary(), summary::render(&rec)), (run.junit(), junit::render(&rec))] {
        std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", run.relative(&path)), &path, e))?;
        files.push(path);
    }
    Ok(Rendered { files, problems: rec.problems })
}

/// Escapes text for XML and HTML (element text and attribute values alike), and replaces the
/// characters XML 1.0 does not allow (control characters but tab, newline and carriage return)
/// with U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A link target: a relative path (or an absolute one, after `file://`) percent-encoded where
/// a URL needs it.
pub fn href(rel: &str) -> String {
    let mut out = String::new();
    for b in rel.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A count with thousands separators: 12,345.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// µs since the epoch as `2026-11-25T13:10:07Z`.
pub fn utc(us: i64) -> String {
    let ((y, m, d), (hh, mm, ss)) = crate::run_dir::civil_utc(us.div_euclid(1_000_000));
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// A latency for prose: 850 µs, 5.5 ms, 828 ms, 2.9 s.
pub fn human_ms(v: f64) -> String {
    if v <= 0.0 {
        "0 ms".into()
    } else if v < 1.0 {
        format!("{:.0} µs", v * 1000.0)
    } else if v < 10.0 {
        format!("{v:.1} ms")
    } else if v < 1000.0 {
        format!("{v:.0} ms")
    } else {
        format!("{:.1} s", v / 1000.0)
    }
}

/// A latency in ms for tables: `5.51`, `828`, `2,863`.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        count(v.round() as u64)
    }
}

#[cfg(test)]
mod tests;
