//! Latency, unavailability and throughput of a run (docs/architecture.md, Semantics; docs/scenarios.md, Reports).
//!
//! Owns the latency figures: for every acknowledged event of the measured load (warm-up
//! excluded), the time from its operation's *intended* send time — the open-loop schedule's, so
//! a stalled database or pipeline cannot hide its own delay (coordinated omission) — to its first
//! arrival at each hop, plus the `source` stage: intended time to the database's
//! acknowledgement. HdrHistograms in µs, 3 significant digits, overall and per one-second window
//! of intended time; the windows are written as an HdrHistogram interval log (`latency.hlog`,
//! one tagged histogram per stage and window, timestamps relative to the load start).
//!
//! Also owns *unavailability* — the longest stretch without warehouse progress while load was
//! offered — and the achieved throughput.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use crate::checker::Arrival;
use crate::history::{Operation, Phase};
use crate::observation::Hop;
use crate::{Error, Result};

/// Width of a latency window, µs.
pub const WINDOW_US: i64 = 1_000_000;
/// Unavailability windows reported besides the longest: those of at least this many µs.
pub const REPORTED_GAP_US: i64 = 1_000_000;
/// Unavailability windows listed at most (the longest ones).
pub const MAX_GAPS: usize = 20;

/// The measured stages: `source` (intent → database acknowledgement), then each hop.
pub const STAGES: [&str; 5] = ["source", "raw", "changes", "warehouse", "lake"];
const WAREHOUSE: usize = 3;
/// Latencies are kept as u32 µs: longer ones (over 71 minutes) saturate.
const MISSING: u32 = u32::MAX;

/// Latency percentiles of one stage, in ms.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Events measured (acknowledged load events that arrived at this stage).
    pub count: u64,
    /// Median, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// 99.9th percentile, ms.
    pub p999: f64,
    /// Largest, ms.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Percentiles per stage, in pipeline order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ByStage {
    /// Intended send → acknowledged by the source database.
    pub source: Percentiles,
    /// Intended send → first record in the raw CDC topic.
    pub raw: Percentiles,
    /// Intended send → first join output record.
    pub changes: Percentiles,
    /// Intended send → first commit in the warehouse.
    pub warehouse: Percentiles,
    /// Intended send → first Parquet object in the lake.
    pub lake: Percentiles,
}

/// A stretch without warehouse progress while load was offered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gap {
    /// Start: the last warehouse arrival before it (or the load start), µs since the epoch.
    pub start_us: i64,
    /// End: the next warehouse arrival, or the load end if none came before it.
    pub end_us: i64,
    /// Start, seconds after the load start.
    pub start_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
    /// Whether warehouse progress resumed (false: nothing arrived after the start until the
    /// load ended).
    pub recovered: bool,
}

/// Everything measured; [`Latency::write_hlog`] writes the per-window histograms.
#[derive(Debug, Clone)]
pub struct Latency {
    overall: [Histogram<u64>; 5],
    hlog: Vec<u8>,
    /// Longest stretch without warehouse progress while load was offered, s.
    pub max_unavailability_s: f64,
    /// The longest stretches of at least 1 s (at most 20; or else just the longest), by start
    /// time.
    pub gaps: Vec<Gap>,
    /// Acknowledged events of the measured load.
    pub load_events: u64,
    /// `load_events` per second of load.
    pub achieved_rate: f64,
    /// One-second windows written to the interval log.
    pub windows: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram precision")
}

impl Latency {
    /// Measures from the first arrivals of the acknowledged events (see
    /// [`crate::checker::Checker::arrivals`]); `ops` is the slice the arrivals' `op` positions
    /// refer to. `load_start_us..load_end_us` is the measured load.
    pub fn measure(ops: &[Operation], arrivals: impl IntoIterator<Item = Arrival>, load_start_us: i64, load_end_us: i64) -> Latency {
        // (window, latency per stage) per load event; warehouse arrival times of every event.
        let mut samples: Vec<(u32, [u32; 5])> = Vec::new();
        let mut warehouse: Vec<i64> = Vec::new();
        for a in arrivals {
            if let Some(t) = a.first_us[Hop::Warehouse as usize] {
                warehouse.push(t);
            }
            let op = &ops[a.op];
            if op.phase != Phase::Load {
                continue;
            }
            let since = |t: Option<i64>| t.map_or(MISSING, |t| (t - op.intended_us).clamp(0, i64::from(MISSING - 1)) as u32);
            let mut lat = [MISSING; 5];
            lat[0] = since(op.complete_us);
            for hop in Hop::ALL {
                lat[1 + hop as usize] = since(a.first_us[hop as usize]);
            }
            let window = ((op.intended_us - load_start_us).max(0) / WINDOW_US).min(i64::from(u32::MAX)) as u32;
            samples.push((window, lat));
        }
        if !samples.windows(2).all(|w| w[0].0 <= w[1].0) {
            samples.sort_by_key(|s| s.0);
        }

        let mut overall: [Histogram<u64>; 5] = std::array::from_fn(|_| histogram());
        let mut window: [Histogram<u64>; 5] = std::array::from_fn(|_| histogram());
        let mut hlog = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let start = std::time::UNIX_EPOCH + Duration::from_micros(load_start_us.max(0) as u64);
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("cdc-chaos latency: µs from intended send to first arrival, per stage, per second of intended time")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut hlog, &mut serializer)
            .expect("writing to memory");
        let mut windows = 0;
        let mut rest = samples.as_slice();
        while let Some(&(w, _)) = rest.first() {
            let n = rest.iter().position(|s| s.0 != w).unwrap_or(rest.len());
            for (_, lat) in &rest[..n] {
                for (stage, &v) in lat.iter().enumerate() {
                    if v != MISSING {
                        // Auto-resizing histograms take any u32 value.
                        window[stage].record(u64::from(v)).expect("auto-resizing histogram");
                        overall[stage].record(u64::from(v)).expect("auto-resizing histogram");
                    }
                }
            }
            for (stage, h) in window.iter_mut().enumerate() {
                if !h.is_empty() {
                    let at = Duration::from_micros(u64::from(w) * WINDOW_US as u64);
                    log.write_histogram(h, at, Duration::from_micros(WINDOW_US as u64), Tag::new(STAGES[stage])).expect("serializing a histogram to memory");
                    h.reset();
                }
            }
            windows += 1;
            rest = &rest[n..];
        }
        drop(log);

        let (max_unavailability_s, gaps) = unavailability(warehouse, load_start_us, load_end_us);
        let load_events = samples.len() as u64;
        let seconds = (load_end_us - load_start_us) as f64 / 1e6;
        Latency {
            overall,
            hlog,
            max_unavailability_s,
            gaps,
            load_events,
            achieved_rate: if seconds > 0.0 { load_events as f64 / seconds } else { 0.0 },
            windows,
        }
    }

    /// Percentiles of the warehouse stage: intent → warehouse commit, the end-to-end figure.
    pub fn overall(&self) -> Percentiles {
        Percentiles::of(&self.overall[WAREHOUSE])
    }

    /// Percentiles of every stage.
    pub fn by_stage(&self) -> ByStage {
        let p = |i: usize| Percentiles::of(&self.overall[i]);
        ByStage { source: p(0), raw: p(1), changes: p(2), warehouse: p(3), lake: p(4) }
    }

    /// The whole-run histogram of a stage (`STAGES` index: 0 source, 1 raw, ... 4 lake).
    pub fn histogram(&self, stage: usize) -> &Histogram<u64> {
        &self.overall[stage]
    }

    /// The interval log, as bytes.
    pub fn hlog(&self) -> &[u8] {
        &self.hlog
    }

    /// Writes the interval log to `path`.
    pub fn write_hlog(&self, path: &Path) -> Result<()> {
        std::fs::File::create(path).and_then(|mut f| f.write_all(&self.hlog)).map_err(|e| Error::io("writing the latency log", path, e))
    }
}

/// The longest stretch without warehouse progress that started while load was offered, in s,
/// and the longest stretches. `arrivals` are warehouse arrival times, any order.
pub fn unavailability(mut arrivals: Vec<i64>, load_start_us: i64, load_end_us: i64) -> (f64, Vec<Gap>) {
    arrivals.sort_unstable();
    let gap = |start_us: i64, end_us: i64, recovered: bool| Gap {
        start_us,
        end_us,
        start_s: (start_us - load_start_us) as f64 / 1e6,
        duration_s: (end_us - start_us) as f64 / 1e6,
        recovered,
    };
    let mut gaps = Vec::new();
    let mut last = load_start_us;
    for &t in arrivals.iter().filter(|&&t| t > load_start_us) {
        if last >= load_end_us {
            break;
        }
        if t > last {
            gaps.push(gap(last, t, true));
        }
        last = t;
    }
    if last < load_end_us {
        gaps.push(gap(last, load_end_us, false));
    }
    let max = gaps.iter().map(|g| g.end_us - g.start_us).max().unwrap_or(0);
    // The longest stretches of at least REPORTED_GAP_US, or else just the longest.
    gaps.sort_by_key(|g| std::cmp::Reverse(g.end_us - g.start_us));
    let long = gaps.iter().take(MAX_GAPS).take_while(|g| g.end_us - g.start_us >= REPORTED_GAP_US).count();
    gaps.truncate(if long > 0 { long } else { usize::from(max > 0) });
    gaps.sort_by_key(|g| g.start_us);
    (max as f64 / 1e6, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    const T0: i64 = 1_700_000_000_000_000;

    fn op(phase: Phase, intended_us: i64, complete_us: i64) -> Operation {
        Operation {
            index: 0,
            worker: "w".into(),
            phase,
            intended_us,
            invoke_us: intended_us,
            complete_us: Some(complete_us),
            outcome: Outcome::Ok,
            tx: Some("1".into()),
            write_id: None,
            rows: vec![],
            error: None,
        }
    }

    fn arrival(op: usize, delays_us: [Option<i64>; 4], base: i64) -> Arrival {
        Arrival { op, first_us: delays_us.map(|d| d.map(|d| base + d)) }
    }

    #[test]
    fn latency_is_measured_from_the_intended_time_and_warmup_is_excluded() {
        // A load op intended at T0+0.5s, sent late (stalled), acknowledged 100 ms after intent.
        let ops = vec![
            op(Phase::Warmup, T0 - 5_000_000, T0 - 4_999_000),
            op(Phase::Load, T0 + 500_000, T0 + 600_000),
            op(Phase::Load, T0 + 1_200_000, T0 + 1_210_000),
        ];
        let arrivals = vec![
            arrival(0, [Some(1), Some(2), Some(3), Some(4)], T0 - 5_000_000),
            arrival(1, [Some(150_000), Some(200_000), Some(250_000), None], T0 + 500_000),
            arrival(2, [Some(20_000), Some(30_000), Some(40_000), Some(50_000)], T0 + 1_200_000),
        ];
        let l = Latency::measure(&ops, arrivals, T0, T0 + 2_000_000);
        let s = l.by_stage();
        // HdrHistogram reports the highest value equivalent at 3 significant digits.
        let near = |got: f64, want: f64| (got - want).abs() <= want / 1000.0;
        assert_eq!(s.source.count, 2);
        assert!(near(s.source.max, 100.0), "{:?}", s.source);
        assert_eq!(s.warehouse.count, 2);
        assert!(near(s.warehouse.p50, 40.0) && near(s.warehouse.max, 250.0), "{:?}", s.warehouse);
        assert_eq!(l.overall(), s.warehouse);
        assert_eq!(s.lake.count, 1);
        assert!(near(s.lake.max, 50.0), "{:?}", s.lake);
        assert_eq!((l.load_events, l.achieved_rate, l.windows), (2, 1.0, 2));

        // The interval log: tagged histograms per window, relative to the load start.
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(l.hlog()) {
            if let Ok(LogEntry::Interval(h)) = entry {
                seen.push((h.tag().map(|t| t.as_str().to_string()).unwrap(), h.start_timestamp().as_secs()));
            }
        }
        assert!(seen.contains(&("warehouse".to_string(), 0)) && seen.contains(&("lake".to_string(), 1)), "{seen:?}");
        assert!(!seen.contains(&("lake".to_string(), 0)), "window 0 has no lake arrival");
        assert_eq!(seen.len(), 5 + 4);
        let text = String::from_utf8(l.hlog().to_vec()).unwrap();
        assert!(text.contains("#[BaseTime: 1700000000.000"), "{text}");
    }

    #[test]
    fn unavailability_is_the_longest_gap_starting_during_the_load() {
        let s = 1_000_000;
        // Arrivals at 1, 2, 6 (gap of 4 s), 7, 9.5 (gap 2.5 s), then after the load (end 10).
        let arrivals = vec![7 * s, s, 2 * s, 6 * s, 9 * s + s / 2, 30 * s, -5 * s];
        let (max, gaps) = unavailability(arrivals, 0, 10 * s);
        assert_eq!(max, 20.5, "9.5 s → 30 s starts during the load");
        let listed: Vec<(f64, f64, bool)> = gaps.iter().map(|g| (g.start_s, g.duration_s, g.recovered)).collect();
        assert_eq!(listed, vec![(0.0, 1.0, true), (1.0, 1.0, true), (2.0, 4.0, true), (6.0, 1.0, true), (7.0, 2.5, true), (9.5, 20.5, true)]);
        // Nothing after 2 s: the stretch runs to the load end, unrecovered.
        let (max, gaps) = unavailability(vec![s, 2 * s], 0, 10 * s);
        assert_eq!((max, gaps.last().unwrap().recovered), (8.0, false));
        // Nothing at all.
        assert_eq!(unavailability(vec![], 0, 10 * s).0, 10.0);
        // A gap starting after the load end does not count.
        assert_eq!(unavailability(vec![s / 2, 10 * s, 40 * s], 0, 10 * s).0, 9.5);
        // Steady progress: the longest small gap is still reported.
        let (max, gaps) = unavailability((1..=100).map(|i| i * s / 10).collect(), 0, 10 * s);
        assert_eq!((max, gaps.len(), gaps[0].start_s), (0.1, 1, 0.0), "only the longest, the first of equals");
    }

    #[test]
    fn empty_runs_measure_nothing() {
        let l = Latency::measure(&[], std::iter::empty(), T0, T0);
        assert_eq!((l.overall(), l.load_events, l.achieved_rate, l.windows), (Percentiles::default(), 0, 0.0, 0));
    }
}
