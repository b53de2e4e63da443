//! The deployment's connector supervisor.
//!
//! Kafka Connect never restarts a failed connector or task by itself: in production an operator
//! does (Strimzi's `autoRestart`, or a runbook). A Debezium task fails, for instance, when its
//! exactly-once producer cannot commit a transaction while a broker is partitioned away, or when
//! the worker's zombie fencing times out after a rebalance. With exactly-once source support a
//! restarted task resumes from the offsets committed with its last transaction, so a restart loses
//! and repeats nothing; without it (the weak profile) it may repeat or skip, and the checker says
//! so.
//!
//! During a run a [`Supervisor`] thread polls both connectors every 2 s and restarts a failed one
//! with a back-off (5 s after the failure is seen, then 10, 20, 40, at most 60 s; reset once the
//! connector has run for 60 s). Every restart is appended to `recoveries.jsonl` in the run
//! directory with the failure's trace, and `result.json` counts them in its notes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::platform::connect;
use crate::platform::Topology;
use crate::run_dir::RunDir;
use crate::{Error, Result};

/// One action the supervisor took.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    pub time_us: i64,
    /// The component acted on (`connect`).
    pub component: String,
    /// What was restarted (a connector name).
    pub target: String,
    /// `restart` (accepted by the worker) or `restart-refused` (with the reason in `detail`).
    pub action: String,
    /// The state and the first lines of the failure's trace.
    pub detail: String,
}

/// Reads `recoveries.jsonl` of a run directory (none if the file does not exist).
pub fn read(dir: &Path) -> Result<Vec<Recovery>> {
    let path = RunDir::new(dir).recoveries();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading", &path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::record(&path, Some(i + 1), format!("not a recovery record: {e}"))))
        .collect()
}

/// Back-off before the `attempt`-th restart of a connector (1-based): 5, 10, 20, 40, 60, 60 … s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((5u64 << attempt.saturating_sub(1).min(4)).min(60))
}

/// Restart bookkeeping of one connector.
#[derive(Debug, Default)]
struct Track {
    failed_since: Option<Instant>,
    running_since: Option<Instant>,
    attempts: u32,
}

impl Track {
    /// Feeds one observation; returns whether to restart now.
    fn observe(&mut self, failed: bool, running: bool, now: Instant) -> bool {
        if running {
            self.failed_since = None;
            let since = *self.running_since.get_or_insert(now);
            if now.duration_since(since) >= Duration::from_secs(60) {
                self.attempts = 0;
            }
            return false;
        }
        self.running_since = None;
        if !failed {
            return false;
        }
        let since = *self.failed_since.get_or_insert(now);
        if now.duration_since(since) >= backoff(self.attempts + 1) {
            self.attempts += 1;
            self.failed_since = None;
            return true;
        }
        false
    }
}

/// The supervisor thread; stops (and is joined) by [`Supervisor::stop`] or when dropped.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts watching the connectors of `topo`, logging to `<dir>/recoveries.jsonl`.
    pub fn start(topo: Topology, dir: &Path) -> Result<Supervisor> {
        let path = RunDir::new(dir).recoveries();
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io("opening", &path, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("supervisor".into())
            .spawn(move || watch(&topo, &flag, &mut file, &path))
            .map_err(|e| Error::component("supervisor", format!("starting its thread: {e}")))?;
        Ok(Supervisor { stop, handle: Some(handle) })
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.halt();
    }
}

fn watch(topo: &Topology, stop: &AtomicBool, file: &mut std::fs::File, path: &Path) {
    let mut tracks: BTreeMap<&str, Track> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        for name in [connect::CRM_CONNECTOR, connect::FLEET_CONNECTOR] {
            // A worker that is down or restarting answers nothing: the nemesis or the stack's
            // own restart handles that, not this supervisor.
            let Ok(s) = connect::status(topo, name) else { continue };
            if !tracks.entry(name).or_default().observe(s.failed(), s.running(), Instant::now()) {
                continue;
            }
            let state = format!("connector {} tasks {:?}", s.connector, s.tasks);
            let trace = s.trace.clone().unwrap_or_default();
            let first = trace.lines().next().unwrap_or("").to_string();
            let (action, detail) = match connect::restart_failed(topo, name) {
                Ok(true) => ("restart", format!("{state}: {trace}")),
                Ok(false) => ("restart-refused", format!("{state}: worker rebalancing (HTTP 409); {trace}")),
                Err(e) => ("restart-refused", format!("{state}: {e}; {trace}")),
            };
            if action == "restart-refused" {
                // Asked again on the next poll, without waiting out another back-off.
                if let Some(t) = tracks.get_mut(name) {
                    t.attempts = t.attempts.saturating_sub(1);
                }
            }
            crate::progress::note(&format!("supervisor: {name} failed ({state}; {first}): {action}"));
            let rec = Recovery { time_us: cdc_pipeline::record::now_us(), component: connect::NAME.into(), target: name.into(), action: action.into(), detail };
            let line = serde_json::to_string(&rec).unwrap_or_default();
            if writeln!(file, "{line}").and_then(|_| file.flush()).is_err() {
                crate::progress::note(&format!("supervisor: could not append to {}", path.display()));
            }
        }
        for _ in 0..20 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (1..=7).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
    }

    #[test]
    fn restarts_after_the_backoff_and_resets_after_a_minute_of_running() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut t = Track::default();
        assert!(!t.observe(true, false, at(0)));
        assert!(!t.observe(true, false, at(4)));
        assert!(t.observe(true, false, at(5)), "first restart 5 s after the failure was seen");
        // Failed again right away: the second attempt waits 10 s.
        assert!(!t.observe(true, false, at(6)));
        assert!(!t.observe(true, false, at(15)));
        assert!(t.observe(true, false, at(16)));
        // Passing states (UNASSIGNED, RESTARTING) neither restart nor reset.
        assert!(!t.observe(false, false, at(17)));
        assert!(!t.observe(false, true, at(20)));
        assert!(!t.observe(false, true, at(81)));
        assert_eq!(t.attempts, 0, "a minute of running resets the back-off");
        assert!(!t.observe(true, false, at(82)));
        assert!(t.observe(true, false, at(87)));
    }

    #[test]
    fn a_running_connector_is_never_restarted() {
        let t0 = Instant::now();
        let mut t = Track::default();
        for s in 0..600 {
            assert!(!t.observe(false, true, t0 + Duration::from_secs(s)));
        }
    }

    #[test]
    fn reads_back_what_it_wrote_and_names_a_bad_line() {
        let dir = std::env::temp_dir().join(format!("cdc-chaos-supervisor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read(&dir).unwrap().is_empty());
        let r = Recovery { time_us: 1, component: "connect".into(), target: "crm-source".into(), action: "restart".into(), detail: "x".into() };
        std::fs::write(RunDir::new(&dir).recoveries(), format!("{}\nnot json\n", serde_json::to_string(&r).unwrap())).unwrap();
        let e = read(&dir).unwrap_err().to_string();
        assert!(e.contains("recoveries.jsonl:2"), "{e}");
        std::fs::write(RunDir::new(&dir).recoveries(), format!("{}\n", serde_json::to_string(&r).unwrap())).unwrap();
        assert_eq!(read(&dir).unwrap(), vec![r]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
