//! Large synthetic runs for the checker benchmarks: a history of transactions of one to three
//! rows over the three tables (98% ok, 1% failed, 1% unknown) and hops that each deliver every
//! acknowledged event once, in commit order, each hop 1 ms after the one upstream.
//!
//! [`run`] builds one in memory; [`write_run_dir`] records one as `cdc-chaos run` does
//! (`scenario.toml`, `run.json`, `history.jsonl`, `observed/<hop>.tsv`, `final_state.json`, an
//! empty `faults.jsonl`), so that `cdc-chaos check <dir>` can be measured on it.

#![allow(dead_code)]

use std::path::Path;

use cdc_chaos::history::{EventKey, EventOp, HistoryWriter, Kind, Line, Operation, Outcome, Phase, RowOp, WriteId};
use cdc_chaos::observation::{self, FinalState, Hop, Observation};
use cdc_chaos::run_dir::RunMeta;
use cdc_pipeline::decode::Table;

pub const T0: i64 = 1_700_000_000_000_000;
/// Rows per table the load writes to.
const KEYS: u64 = 200_000;
/// Intended operations per second (one every 20 µs).
const STEP_US: i64 = 20;

/// A synthetic run of about `events` acknowledged events: the operations and one hop's
/// observations (the other hops deliver the same records, later).
pub fn run(events: usize) -> (Vec<Operation>, Vec<Observation>) {
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
        let intended_us = T0 + i as i64 * STEP_US;
        let op = Operation {
            index: i,
            worker: if fleet { "fleet-0".into() } else { "crm-0".into() },
            phase: Phase::Load,
            intended_us,
            invoke_us: intended_us + 5,
            complete_us: Some(intended_us + 500),
            outcome,
            tx: (outcome != Outcome::Fail).then_some(tx),
            write_id: Some(WriteId::new(11, i)),
            rows,
            error: (outcome != Outcome::Ok).then(|| "synthetic".to_string()),
        };
        if outcome == Outcome::Ok {
            let write = op.write_id.unwrap();
            for row in &op.rows {
                observed.push(Observation {
                    key: EventKey { table: row.table, pk: row.pk, write, op: EventOp::Upsert },
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

/// The history lines of one operation, as the load generator writes them.
fn lines(op: &Operation) -> [Line; 2] {
    let invoke = Line::Invoke {
        index: op.index,
        worker: op.worker.clone(),
        phase: op.phase,
        intended_us: op.intended_us,
        time_us: op.invoke_us,
        write_id: op.write_id.map(|w| w.0),
        rows: op.rows.iter().map(|r| RowOp { affected: None, ..r.clone() }).collect(),
    };
    let time_us = op.complete_us.unwrap();
    let error = op.error.clone().unwrap_or_default();
    let done = match op.outcome {
        Outcome::Ok => Line::Ok { index: op.index, time_us, tx: op.tx.clone(), affected: op.rows.iter().map(|r| r.affected == Some(true)).collect() },
        Outcome::Fail => Line::Fail { index: op.index, time_us, error },
        Outcome::Unknown => Line::Unknown { index: op.index, time_us, tx: op.tx.clone(), error },
    };
    [invoke, done]
}

/// Records a synthetic run of about `events` events into `dir` as `cdc-chaos run` would.
pub fn write_run_dir(dir: &Path, events: usize, scenario: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("scenario.toml"), scenario).unwrap();
    let (ops, observed) = run(events);
    let mut history = HistoryWriter::create(&dir.join("history.jsonl")).unwrap();
    for op in &ops {
        for line in lines(op) {
            history.write(&line).unwrap();
        }
    }
    history.flush().unwrap();
    for (n, hop) in Hop::ALL.into_iter().enumerate() {
        let later: Vec<Observation> = observed.iter().map(|o| Observation { ts_us: o.ts_us + 1_000 * n as i64, ..*o }).collect();
        observation::write(dir, hop, &later).unwrap();
    }
    FinalState::default().write(dir).unwrap();
    std::fs::write(dir.join("faults.jsonl"), "").unwrap();
    let end = ops.last().map_or(T0, |o| o.intended_us + STEP_US);
    let meta = RunMeta {
        run_id: "synthetic".into(),
        scenario: "synthetic".into(),
        seed: 7,
        profile: "durable".into(),
        platform: "local".into(),
        warmup_start_us: T0,
        load_start_us: T0,
        load_end_us: end,
        quiesced: true,
        offered_rate: ops.iter().map(|o| o.rows.len()).sum::<usize>() as f64 * 1e6 / (end - T0).max(1) as f64,
        ..RunMeta::default()
    };
    meta.write(dir).unwrap();
}
