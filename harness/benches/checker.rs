//! The exactly-once checker on large synthetic runs, in memory: a history of transactions of one
//! to three rows over the three tables (98% ok, 1% failed, 1% unknown) and four hops that each
//! deliver every acknowledged event once, in commit order. One iteration indexes the history,
//! feeds the four hops and builds the report; throughput is in events (each checked at four
//! hops). Also the latency measurement over the same run.
//!
//! `cargo bench -p cdc-chaos --bench checker`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cdc_chaos::checker::Checker;
use cdc_chaos::history::{EventKey, Kind, Operation, Outcome, Phase, RowOp, Tx};
use cdc_chaos::latency::Latency;
use cdc_chaos::observation::{FinalState, Hop, ObsOp, Observation};
use cdc_pipeline::decode::Table;

const T0: i64 = 1_700_000_000_000_000;
/// Rows per table the load writes to.
const KEYS: u64 = 200_000;

/// A synthetic run of about `events` acknowledged events: the operations and one hop's
/// observations (the other hops deliver the same records, later).
fn run(events: usize) -> (Vec<Operation>, Vec<Observation>) {
    let mut seed: u64 = 7;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut ops = Vec::with_capacity(events / 2 + 1);
    let mut observed = Vec::with_capacity(events + events / 50);
    let mut i: u64 = 0;
    while observed.len() < events {
        let r = next();
        let fleet = r % 3 == 0;
        let rows: Vec<RowOp> = (0..1 + next() % 3)
            .map(|n| {
                let table = if fleet {
                    Table::Vehicles
                } else if (r >> 2) % 2 == 0 {
                    Table::Customers
                } else {
                    Table::Flights
                };
                // Distinct keys within one transaction.
                let pk = ((next() % (KEYS / 4)) * 4 + n) as i64;
                RowOp { table, pk, kind: Kind::Update, customer_id: None, affected: Some(true) }
            })
            .collect();
        let outcome = match r % 100 {
            0 => Outcome::Fail,
            1 => Outcome::Unknown,
            _ => Outcome::Ok,
        };
        let tx = if fleet { format!("0-1-{}", 1000 + i) } else { (1000 + i).to_string() };
        let intended_us = T0 + i as i64 * 20;
        let op = Operation {
            index: i,
            worker: "w".into(),
            phase: Phase::Load,
            intended_us,
            invoke_us: intended_us + 5,
            complete_us: Some(intended_us + 500),
            outcome,
            tx: (outcome != Outcome::Fail).then_some(tx),
            rows,
            error: None,
        };
        if outcome == Outcome::Ok {
            let table = op.rows[0].table;
            let tx = Tx::parse(table, op.tx.as_deref().unwrap()).unwrap();
            for row in &op.rows {
                observed.push(Observation {
                    key: EventKey { table: row.table, pk: row.pk, tx },
                    op: ObsOp::Upsert,
                    partition: (row.pk % 6) as i32,
                    offset: observed.len() as i64,
                    ts_us: intended_us + 2_000,
                });
            }
        }
        ops.push(op);
        i += 1;
    }
    (ops, observed)
}

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

criterion_group!(benches, checker);
criterion_main!(benches);
