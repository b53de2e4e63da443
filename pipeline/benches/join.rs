//! The join step alone — decode a Debezium record, update the join state, encode the output
//! record — over a realistic mix of the three tables (customers, flights and vehicles moving
//! between 1,000 customers). Throughput is reported as change events per second on one core.
//!
//! `cargo bench -p cdc-pipeline --bench join`; the `floor` group is the cost of only checking
//! that each record is JSON.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

use cdc_pipeline::decode::{decode, Decoded};
use cdc_pipeline::join::JoinState;
use cdc_pipeline::record::{self, Coordinates};

/// `n` raw Debezium records (topic, value) from a deterministic generator.
fn records(n: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut seed: u64 = 7;
    (0..n)
        .map(|i| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = seed >> 33;
            let (topic, after, source) = match r % 3 {
                0 => (
                    "crm.public.customers",
                    json!({"id": (r / 3) % 1000, "name": format!("customer {i}"), "email": "x@example.org", "address": "1 Main St", "phone": "555", "gender": "f", "birth_date": 7000, "profession": "pilot", "updated_at": "2026-11-25T09:41:58.801831Z"}),
                    json!({"txId": i, "lsn": i * 100, "ts_us": 1_700_000_000_000_000i64 + i as i64}),
                ),
                1 => (
                    "crm.public.flights",
                    json!({"id": (r / 3) % 3000, "customer_id": (r / 7) % 1000, "airport": "LIS", "airline": "TAP", "iata_code": "TP", "updated_at": "2026-11-25T09:41:58.801831Z"}),
                    json!({"txId": i, "lsn": i * 100, "ts_us": 1_700_000_000_000_000i64 + i as i64}),
                ),
                _ => (
                    "fleet.fleet.vehicles",
                    json!({"id": (r / 3) % 2000, "customer_id": (r / 7) % 1000, "model_year": 2020, "model": "T", "manufacturer": "Ford", "vehicle_year": 2021, "category": "car", "updated_at": "2026-11-25T09:41:58.801831Z"}),
                    json!({"gtid": format!("0-1-{i}"), "file": "binlog.000001", "pos": i * 200, "row": 0, "ts_ms": 1_700_000_000_000i64 + i as i64}),
                ),
            };
            (topic, json!({"before": null, "after": after, "op": "c", "source": source, "ts_ms": 0}).to_string().into_bytes())
        })
        .collect()
}

fn join_step(c: &mut Criterion) {
    const N: usize = 10_000;
    let input = records(N);
    let mut group = c.benchmark_group("join");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    // The step's parts, so that a change shows where its time went.
    group.bench_function("decode", |b| {
        b.iter(|| input.iter().filter(|(topic, value)| matches!(decode(topic, Some(value)), Ok(Decoded::Change(_)))).count())
    });
    group.bench_function("decode+apply", |b| {
        b.iter(|| {
            let mut state = JoinState::new();
            let mut documents = 0usize;
            for (topic, value) in &input {
                if let Ok(Decoded::Change(change)) = decode(topic, Some(value)) {
                    documents += state.update(&change).len();
                }
            }
            documents
        })
    });
    group.bench_function("decode+apply+encode", |b| {
        b.iter(|| {
            let mut state = JoinState::new();
            let (mut bytes, mut out) = (0usize, Vec::new());
            for (offset, (topic, value)) in input.iter().enumerate() {
                if let Ok(Decoded::Change(change)) = decode(topic, Some(value)) {
                    let touched = state.update(&change);
                    let input = Coordinates::of(topic, 0, offset as i64);
                    // As the join's loop does: one buffer, cleared for each record.
                    out.clear();
                    record::encode_into(&mut out, &change, &state, &touched, &input, 0);
                    bytes += out.len();
                }
            }
            bytes
        })
    });
    group.finish();

    // What any decoder must spend: reading each record through once to check it is JSON.
    let mut group = c.benchmark_group("floor");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.bench_function("validate", |b| {
        b.iter(|| input.iter().filter(|(_, v)| serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok()).count())
    });
    group.finish();
}

criterion_group!(benches, join_step);
criterion_main!(benches);
