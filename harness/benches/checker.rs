//! The exactly-once checker on large synthetic runs, in memory: a history of transactions of one
//! to three rows over the three tables (98% ok, 1% failed, 1% unknown) and four hops that each
//! deliver every acknowledged event once, in commit order. One iteration indexes the history,
//! feeds the four hops and builds the report; throughput is in events (each checked at four
//! hops). Also the latency measurement over the same run.
//!
//! Then `cdc-chaos check` on a recorded run of 1M events (reading and parsing the files included);
//! `examples/synthetic_run.rs` records larger ones for measuring the command itself.
//!
//! `cargo bench -p cdc-chaos --bench checker`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cdc_chaos::checker::Checker;
use cdc_chaos::history::Operation;
use cdc_chaos::latency::Latency;
use cdc_chaos::observation::{FinalState, Hop, Observation};

mod synthetic;
use synthetic::{run, T0};

/// Checks the run: index the history, feed four hops, report.
fn check<'a>(ops: &'a [Operation], observed: &[Observation], final_state: &FinalState) -> Checker<'a> {
    let mut checker = Checker::new(ops);
    for (n, hop) in Hop::ALL.into_iter().enumerate() {
        for o in observed {
            checker.observe(hop, &Observation { ts_us: o.ts_us + 1_000 * n as i64, ..*o });
        }
    }
    black_box(checker.report(final_state));
    checker
}

fn checker(c: &mut Criterion) {
    let final_state = FinalState::default();
    let mut group = c.benchmark_group("checker");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for (name, events) in [("1M events x 4 hops", 1_000_000), ("10M events x 4 hops", 10_000_000)] {
        let (ops, observed) = run(events);
        group.throughput(Throughput::Elements(observed.len() as u64));
        group.measurement_time(Duration::from_secs(if events > 1_000_000 { 140 } else { 15 }));
        group.bench_function(name, |b| b.iter(|| drop(check(&ops, &observed, &final_state))));
    }
    group.finish();

    let mut group = c.benchmark_group("latency");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));
    let (ops, observed) = run(10_000_000);
    let checked = check(&ops, &observed, &final_state);
    let end = ops.last().map_or(T0, |o| o.intended_us);
    group.throughput(Throughput::Elements(observed.len() as u64));
    group.bench_function("10M events x 5 stages", |b| b.iter(|| black_box(Latency::measure(&ops, checked.arrivals(), T0, end))));
    group.finish();
}

/// `cdc-chaos check` on a recorded run: read `history.jsonl` and the four `observed/<hop>.tsv`,
/// check, measure latency, write `result.json` and `latency.hlog`.
fn check_run(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("cdc-chaos-bench-run-{}", std::process::id()));
    let events = 1_000_000;
    synthetic::write_run_dir(&dir, events, include_str!("../../scenarios/smoke.toml"));
    let mut group = c.benchmark_group("check_run");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(40));
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function("1M events x 4 hops, recorded", |b| b.iter(|| black_box(cdc_chaos::result::check_run(&dir).unwrap())));
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, checker, check_run);
criterion_main!(benches);
