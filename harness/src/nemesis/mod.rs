//! The nemesis: carries out a scenario's fault timeline on a stack through its platform's
//! [`Injector`], records every fault in the run's `faults.jsonl`, and heals what is left.
//!
//! Owns the timeline and the record (docs/faults.md); the platforms own applying and healing
//! one fault (`platform::local::faults`: signals and iptables rules in the Kafka nodes'
//! namespaces; `platform::kind::faults`: the Kubernetes API and iptables in the pods). Each
//! journals a fault before applying it, so that another process can heal it: the end of the
//! load heals what is left, so does a panic (the handle's `Drop`), Ctrl-C (the load stops, then
//! the run heals), the next `run` and `cdc-chaos down`. Each fault's start and heal are recorded
//! with the evidence checked on the way ([`crate::faults`]), a role target's resolution and its
//! age among it ([`role_proof`]).
//!
//! Timeline: faults start at their `at` and heal after their `for`; a heal runs on its own thread
//! (a restart waits until the component serves), so a slow heal does not hold the next fault
//! back, unless that fault says `after_heals`: it waits for the heals still running, and the rest
//! of the timeline moves back by the wait.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdc_pipeline::record::now_us;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::faults::{FaultRecord, Proof};
use crate::platform::stack::Injector;
use crate::scenario::{FaultSpec, Target};
use crate::{Error, Result};

pub mod journal;
pub mod plan;

/// Applies faults on the scenario's timeline from a thread; [`Nemesis::finish`] heals the rest.
pub struct Nemesis {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    inner: Arc<Inner>,
}

struct Inner {
    injector: Box<dyn Injector>,
    schedule: Vec<FaultSpec>,
    record: Mutex<std::fs::File>,
    record_path: PathBuf,
    /// Heals under way, by the time they were due: each runs on a thread of its own, so that a
    /// slow restart does not hold back the faults after it.
    heals: Mutex<Vec<(Duration, std::thread::JoinHandle<()>)>>,
}

impl Inner {
    fn record(&self, r: &FaultRecord) {
        let line = serde_json::to_string(r).expect("fault record serializes");
        let mut f = self.record.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(f, "{line}") {
            tracing::error!("{}: {e}", self.record_path.display());
        }
        crate::progress::note(&format!(
            "fault {} {}: {} {}{}",
            r.id,
            r.event,
            r.kind.as_str(),
            r.components.join("+"),
            if r.detail.is_empty() { String::new() } else { format!(" ({})", r.detail) }
        ));
    }

    fn record_event(&self, id: usize, event: &str, components: Vec<String>, detail: String, evidence: Vec<Proof>) {
        let f = &self.schedule[id];
        for p in evidence.iter().filter(|p| !p.held) {
            crate::progress::note(&format!("fault {id} {event}: not proven: {}", p.claim));
        }
        self.record(&FaultRecord { id, event: event.into(), kind: f.kind, target: f.target.to_string(), components, detail, time_us: now_us(), evidence });
    }
}

impl Nemesis {
    /// Starts applying `schedule` (times from `base`) through `injector`. `seed` drives random
    /// targets.
    pub fn start(injector: Box<dyn Injector>, schedule: Vec<FaultSpec>, run_dir: &Path, base: Instant, seed: u64) -> Result<Nemesis> {
        let record_path = crate::run_dir::RunDir::new(run_dir).faults();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&record_path)
            .map_err(|e| Error::io("opening the fault timeline", &record_path, e))?;
        let inner = Arc::new(Inner { injector, schedule, record: Mutex::new(file), record_path, heals: Mutex::new(Vec::new()) });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (inner, stop) = (inner.clone(), stop.clone());
            std::thread::Builder::new()
                .name("nemesis".into())
                .spawn(move || timeline(&inner, base, seed, &stop))
                .map_err(|e| Error::component("nemesis", e.to_string()))?
        };
        Ok(Nemesis { stop, thread: Some(thread), inner })
    }

    /// Stops the timeline and heals every fault still in force (restarting what was stopped).
    pub fn finish(mut self) -> Result<()> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let heals = std::mem::take(&mut *self.inner.heals.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, h) in heals {
            let _ = h.join();
        }
        let mut errors = Vec::new();
        for id in self.inner.injector.in_force().into_iter().rev() {
            if let Some(h) = self.inner.injector.heal(id) {
                errors.extend(h.errors);
                self.inner.record_event(id, "heal", h.components, "end of the load".into(), h.evidence);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::component("nemesis", format!("healing: {}", errors.join("; "))))
        }
    }
}

impl Drop for Nemesis {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.finish_inner() {
                eprintln!("{e}");
            }
        }
    }
}

/// Events of the timeline: (time, fault index, true = apply / false = heal).
fn events(schedule: &[FaultSpec]) -> Vec<(Duration, usize, bool)> {
    let mut ev: Vec<(Duration, usize, bool)> =
        schedule.iter().enumerate().flat_map(|(i, f)| [(f.at.0, i, true), (f.at.0 + f.for_.0, i, false)]).collect();
    // Heals before applies at the same instant; otherwise by time, then fault order.
    ev.sort_by_key(|(t, i, apply)| (*t, *apply, *i));
    ev
}

/// How late a fault may start before its record says so.
const LATE: Duration = Duration::from_secs(1);

fn timeline(inner: &Arc<Inner>, base: Instant, seed: u64, stop: &AtomicBool) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7461_7267_6574);
    let events = events(&inner.schedule);
    // How far `after_heals` waits have pushed the timeline back.
    let mut shift = Duration::ZERO;
    for (n, &(at, i, apply)) in events.iter().enumerate() {
        let stopped = || stop.load(Ordering::SeqCst) || crate::progress::interrupted();
        let due_at = base + at + shift;
        while Instant::now() < due_at && !stopped() {
            std::thread::sleep(due_at.saturating_duration_since(Instant::now()).min(Duration::from_millis(200)));
        }
        if stopped() {
            // A fault the load ended before is one the run did not test.
            for &(at, i, _) in events[n..].iter().filter(|e| e.2) {
                let why = format!("the load ended before it was due at {:.1} s", (at + shift).as_secs_f64());
                inner.record_event(i, "error", vec![], why, vec![]);
            }
            return;
        }
        if apply {
            let spec = &inner.schedule[i];
            // Heals due at the same instant come first, as before a fault that may hit the same
            // component; an `after_heals` fault waits for every heal still running.
            let due: Vec<_> = {
                let mut heals = inner.heals.lock().unwrap_or_else(|p| p.into_inner());
                let (now, later) = std::mem::take(&mut *heals).into_iter().partition(|(t, _)| spec.after_heals || *t == at);
                *heals = later;
                now
            };
            for (_, h) in due {
                let _ = h.join();
            }
            let late = Instant::now().saturating_duration_since(due_at);
            let waited = spec.after_heals && late > Duration::from_millis(100);
            if spec.after_heals {
                shift += late;
            }
            match inner.injector.apply(i, spec, &mut rng) {
                Ok(a) => {
                    let detail = if waited {
                        let why = format!("applied {:.1} s late, once the heals before it had finished", late.as_secs_f64());
                        [a.detail, why].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ")
                    } else if late > LATE {
                        [a.detail, format!("applied {:.1} s late", late.as_secs_f64())].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ")
                    } else {
                        a.detail
                    };
                    inner.record_event(i, "start", a.components, detail, a.evidence)
                }
                Err(e) => inner.record_event(i, "error", vec![], e.to_string(), vec![]),
            }
        } else {
            let healer = inner.clone();
            let spawned = std::thread::Builder::new().name(format!("heal-{i}")).spawn(move || {
                if let Some(h) = healer.injector.heal(i) {
                    healer.record_event(i, "heal", h.components, h.errors.join("; "), h.evidence);
                }
            });
            match spawned {
                Ok(h) => inner.heals.lock().unwrap_or_else(|p| p.into_inner()).push((at, h)),
                // Left in force: the end of the load heals it.
                Err(e) => tracing::error!("fault {i}: starting its heal: {e}"),
            }
        }
    }
}

/// How old a role target's resolution may be when the fault takes effect for the node to count as
/// the role holder at that moment.
pub const ROLE_FRESH: Duration = Duration::from_secs(2);

/// The proof that a role target was the role holder when the fault took effect: the resolution
/// was at most [`ROLE_FRESH`] old.
pub fn role_proof(f: &FaultSpec, detail: &str, resolved: Instant, applied: Instant) -> Option<Proof> {
    if !f.target.is_role() && !f.to.as_ref().is_some_and(Target::is_role) {
        return None;
    }
    let age = applied.saturating_duration_since(resolved);
    Some(Proof::new(age <= ROLE_FRESH, format!("{detail} (resolved {} ms before the fault took effect)", age.as_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::stack::{Applied, Healed};
    use crate::scenario::FaultKind;
    use crate::scenario::Dur;

    fn spec(at: u64, kind: FaultKind, for_: u64) -> FaultSpec {
        FaultSpec { at: Dur::secs(at), kind, target: Target::RandomBroker, for_: Dur::secs(for_), to: None, after_heals: false }
    }

    #[test]
    fn events_heal_before_applying_at_the_same_instant() {
        let ev = events(&[spec(10, FaultKind::Kill, 5), spec(15, FaultKind::Pause, 5), spec(0, FaultKind::Isolate, 30)]);
        assert_eq!(
            ev,
            vec![
                (Duration::from_secs(0), 2, true),
                (Duration::from_secs(10), 0, true),
                (Duration::from_secs(15), 0, false),
                (Duration::from_secs(15), 1, true),
                (Duration::from_secs(20), 1, false),
                (Duration::from_secs(30), 2, false),
            ]
        );
    }

    #[test]
    fn a_role_is_proven_only_by_a_fresh_resolution() {
        let now = Instant::now();
        let leader = FaultSpec { target: Target::parse("leader:crm.public.customers/0").unwrap(), ..spec(0, FaultKind::Kill, 5) };
        let fresh = role_proof(&leader, "leader of crm.public.customers/0 is node 2", now, now + Duration::from_millis(40)).unwrap();
        assert_eq!((fresh.held, fresh.claim.as_str()), (true, "leader of crm.public.customers/0 is node 2 (resolved 40 ms before the fault took effect)"));
        assert!(!role_proof(&leader, "x", now, now + ROLE_FRESH + Duration::from_millis(1)).unwrap().held);
        assert_eq!(role_proof(&spec(0, FaultKind::Kill, 5), "random node 2", now, now), None, "not a role");
    }

    /// (fault, `apply` or `healed`, ms after the base).
    type Log = Arc<Mutex<Vec<(usize, &'static str, u128)>>>;

    /// Records when each fault was applied and healed; heals take `heal_takes`.
    struct Recording {
        base: Instant,
        heal_takes: Duration,
        log: Log,
        active: Mutex<Vec<usize>>,
    }

    impl Injector for Recording {
        fn apply(&self, id: usize, _: &FaultSpec, _: &mut StdRng) -> Result<Applied> {
            self.log.lock().unwrap().push((id, "apply", self.base.elapsed().as_millis()));
            self.active.lock().unwrap().push(id);
            Ok(Applied { components: vec!["connect".into()], detail: String::new(), evidence: vec![Proof::new(true, "connect (pid 1) gone")] })
        }
        fn heal(&self, id: usize) -> Option<Healed> {
            self.active.lock().unwrap().retain(|a| *a != id);
            std::thread::sleep(self.heal_takes);
            self.log.lock().unwrap().push((id, "healed", self.base.elapsed().as_millis()));
            Some(Healed { components: vec!["connect".into()], errors: vec![], evidence: vec![] })
        }
        fn in_force(&self) -> Vec<usize> {
            self.active.lock().unwrap().clone()
        }
    }

    fn ms(at: u64, for_: u64) -> FaultSpec {
        FaultSpec { at: Dur(Duration::from_millis(at)), kind: FaultKind::Kill, target: Target::Component("connect".into()), for_: Dur(Duration::from_millis(for_)), to: None, after_heals: false }
    }

    #[test]
    fn a_slow_heal_does_not_hold_back_the_next_fault_and_faults_after_the_load_are_recorded_unapplied() {
        let dir = std::env::temp_dir().join(format!("cdc-chaos-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let injector = Recording { base, heal_takes: Duration::from_millis(800), log: log.clone(), active: Mutex::new(vec![]) };
        // Fault 0 heals at 100 ms (taking 800 ms), fault 1 is due at 300 ms, fault 2 long after
        // the load.
        let n = Nemesis::start(Box::new(injector), vec![ms(0, 100), ms(300, 100), ms(60_000, 100)], &dir, base, 1).unwrap();
        std::thread::sleep(Duration::from_millis(1_200));
        n.finish().unwrap();
        let log = log.lock().unwrap().clone();
        let at = |id: usize, what: &str| log.iter().find(|e| e.0 == id && e.1 == what).map(|e| e.2).unwrap_or_else(|| panic!("{id} {what}: {log:?}"));
        assert!(at(1, "apply") < 700, "fault 1 applied on time while fault 0 healed: {log:?}");
        assert!(at(0, "healed") >= 900 && at(1, "healed") >= 1_200, "{log:?}");
        assert!(log.iter().all(|e| e.0 != 2), "fault 2 never applied: {log:?}");
        let records = crate::faults::read(&dir.join("faults.jsonl")).unwrap();
        let events: Vec<(usize, &str)> = records.iter().map(|r| (r.id, r.event.as_str())).collect();
        assert_eq!(events.iter().filter(|e| e.1 == "heal").count(), 2, "{events:?}");
        let unapplied = records.iter().find(|r| r.id == 2).unwrap();
        assert_eq!((unapplied.event.as_str(), unapplied.detail.as_str()), ("error", "the load ended before it was due at 60.0 s"));
        assert_eq!(crate::faults::unproven(&records), vec!["fault #2 kill connect was not applied: the load ended before it was due at 60.0 s"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_after_heals_fault_waits_for_the_slow_heal_and_shifts_the_rest_of_the_timeline() {
        let dir = std::env::temp_dir().join(format!("cdc-chaos-after-heals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let injector = Recording { base, heal_takes: Duration::from_millis(800), log: log.clone(), active: Mutex::new(vec![]) };
        // Fault 0 heals at 100 ms and takes 800 ms; fault 1 (at 300 ms) waits for it; fault 2 is
        // due 200 ms after fault 1 on the schedule.
        let waits = FaultSpec { after_heals: true, ..ms(300, 100) };
        let n = Nemesis::start(Box::new(injector), vec![ms(0, 100), waits, ms(500, 50)], &dir, base, 1).unwrap();
        std::thread::sleep(Duration::from_millis(3_500));
        n.finish().unwrap();
        let log = log.lock().unwrap().clone();
        let at = |id: usize, what: &str| log.iter().find(|e| e.0 == id && e.1 == what).map(|e| e.2).unwrap_or_else(|| panic!("{id} {what}: {log:?}"));
        assert!(at(1, "apply") >= at(0, "healed"), "fault 1 waited for fault 0's heal: {log:?}");
        // Fault 1 still lasts its 100 ms, and fault 2 keeps its 200 ms distance from fault 1.
        assert!(at(1, "healed") >= at(1, "apply") + 100 + 800, "{log:?}");
        assert!(at(2, "apply") >= at(1, "apply") + 200, "{log:?}");
        let records = crate::faults::read(&dir.join("faults.jsonl")).unwrap();
        let start = records.iter().find(|r| r.id == 1 && r.event == "start").unwrap();
        assert!(start.detail.contains("s late, once the heals before it had finished"), "{}", start.detail);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
