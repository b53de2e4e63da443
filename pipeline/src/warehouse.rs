//! The warehouse sink: `customer_360.changes` into PostgreSQL, exactly once.
//!
//! Each batch is one database transaction holding three writes: the documents upserted into
//! `customer_360` (deleted when the customer is gone), one row per applied change in the
//! append-only `applied_events` log — which has **no** unique constraint on the event identity,
//! so a duplicate delivery shows up as two rows for the checker instead of being swallowed — and
//! the next offset to read in `sink_offsets`. On start the sink reads from the stored offsets, so
//! a crash at any moment neither loses nor repeats a change. Reads use `read_committed`: changes of
//! aborted join transactions are never applied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::ClientFiles;
use crate::error::{Error, Result};
use crate::exactly_once::OUTPUT;
use crate::metrics::Metrics;
use crate::record::parse_change;
use crate::session::{collect_batch, supervise, LoopError};

/// Tables of the warehouse, created if missing (idempotent).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customer_360 (
    customer_id  BIGINT PRIMARY KEY,
    document     JSONB NOT NULL,
    source_ts_us BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS applied_events (
    seq            BIGSERIAL PRIMARY KEY,
    database       TEXT NOT NULL,
    tx             TEXT NOT NULL,
    table_name     TEXT NOT NULL,
    pk             BIGINT NOT NULL,
    op             TEXT NOT NULL,
    position       TEXT NOT NULL,
    source_ts_us   BIGINT NOT NULL,
    join_ts_us     BIGINT NOT NULL,
    sink_commit_ts TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    topic_partition INT NOT NULL,
    topic_offset   BIGINT NOT NULL,
    write_id       BIGINT
);
ALTER TABLE applied_events ADD COLUMN IF NOT EXISTS write_id BIGINT;
CREATE INDEX IF NOT EXISTS applied_events_identity ON applied_events (database, tx, table_name, pk);
CREATE TABLE IF NOT EXISTS sink_offsets (
    topic       TEXT NOT NULL,
    partition   INT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
";

#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// libpq-style connection string of the warehouse database.
    pub dsn: String,
    pub batch_max: usize,
    pub batch_wait: Duration,
}

/// What one batch writes, decided before any of it is written: in the batch's order, the
/// document upserts and deletes of every change record, one applied-event row per record, and per
/// partition the next offset to read. A record that is not a change record is rejected (named,
/// skipped, its offset still consumed) so that one bad record cannot stop the warehouse; a
/// record without a value (a tombstone) is consumed and applies nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// (customer id, new document or None to delete it, source commit time), in order.
    pub documents: Vec<(i64, Option<serde_json::Value>, i64)>,
    pub applied: Vec<Applied>,
    pub next_offsets: std::collections::BTreeMap<i32, i64>,
    /// Why each rejected record was skipped, with its coordinates.
    pub rejected: Vec<String>,
}

/// One row of `applied_events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub record: crate::record::ChangeRecord,
    pub partition: i32,
    pub offset: i64,
}

impl Plan {
    /// The plan of a batch of `(partition, offset, value)` records of the output topic.
    pub fn of<'a>(batch: impl IntoIterator<Item = (i32, i64, Option<&'a [u8]>)>) -> Plan {
        let mut plan = Plan::default();
        for (partition, offset, payload) in batch {
            let next = plan.next_offsets.entry(partition).or_insert(offset + 1);
            *next = (*next).max(offset + 1);
            let Some(payload) = payload else { continue };
            let record = match parse_change(payload) {
                Ok(r) => r,
                Err(e) => {
                    plan.rejected.push(format!("{OUTPUT}/{partition}/{offset}: {e}"));
                    continue;
                }
            };
            for d in &record.documents {
                plan.documents.push((d.customer_id, d.document.clone(), record.source_ts_us));
            }
            plan.applied.push(Applied { record, partition, offset });
        }
        plan
    }

    /// Each customer's document as the batch leaves it: its last new document, or `None` when
    /// its last change deleted it (the batch is one transaction: no earlier version of the
    /// batch is ever visible), in customer id order.
    pub fn final_documents(&self) -> std::collections::BTreeMap<i64, (Option<&serde_json::Value>, i64)> {
        self.documents.iter().map(|(customer_id, document, source_ts_us)| (*customer_id, (document.as_ref(), *source_ts_us))).collect()
    }

    /// Writes the plan in `tx` (the caller commits): one statement per table, whatever the
    /// batch's size (a statement per row held the sink to about 500 changes/s, behind the join).
    fn write(&self, tx: &mut postgres::Transaction<'_>) -> Result<()> {
        let (mut upserted, mut docs, mut ts, mut deleted) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (customer_id, (document, source_ts_us)) in self.final_documents() {
            match document {
                Some(d) => {
                    upserted.push(customer_id);
                    docs.push(d);
                    ts.push(source_ts_us);
                }
                None => deleted.push(customer_id),
            }
        }
        if !upserted.is_empty() {
            tx.execute(
                "INSERT INTO customer_360 (customer_id, document, source_ts_us)
                 SELECT * FROM unnest($1::bigint[], $2::jsonb[], $3::bigint[])
                 ON CONFLICT (customer_id) DO UPDATE SET document = EXCLUDED.document,
                   source_ts_us = EXCLUDED.source_ts_us, updated_at = clock_timestamp()",
                &[&upserted, &docs, &ts],
            )
            .map_err(Error::warehouse("writing customer_360"))?;
        }
        if !deleted.is_empty() {
            tx.execute("DELETE FROM customer_360 WHERE customer_id = ANY($1)", &[&deleted]).map_err(Error::warehouse("writing customer_360"))?;
        }
        if !self.applied.is_empty() {
            fn column<'a, T>(applied: &'a [Applied], field: impl Fn(&'a Applied) -> T) -> Vec<T> {
                applied.iter().map(field).collect()
            }
            let a = &self.applied[..];
            let (database, txid) = (column(a, |a| &*a.record.event.database), column(a, |a| a.record.event.tx.as_str()));
            let (table, op, position) = (column(a, |a| a.record.event.table.as_str()), column(a, |a| a.record.op.as_str()), column(a, |a| a.record.position.as_str()));
            let (pk, write_id) = (column(a, |a| a.record.event.pk), column(a, |a| a.record.event.write_id));
            let (source_ts, join_ts) = (column(a, |a| a.record.source_ts_us), column(a, |a| a.record.join_ts_us));
            let (partition, offset) = (column(a, |a| a.partition), column(a, |a| a.offset));
            // `seq` follows the batch's order: the rows are inserted in their ordinality.
            tx.execute(
                "INSERT INTO applied_events (database, tx, table_name, pk, op, position, source_ts_us, join_ts_us, topic_partition, topic_offset, write_id)
                 SELECT database, tx, table_name, pk, op, position, source_ts_us, join_ts_us, topic_partition, topic_offset, write_id
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::int[], $10::bigint[], $11::bigint[])
                   WITH ORDINALITY AS u(database, tx, table_name, pk, op, position, source_ts_us, join_ts_us, topic_partition, topic_offset, write_id, n)
                 ORDER BY n",
                &[&database, &txid, &table, &pk, &op, &position, &source_ts, &join_ts, &partition, &offset, &write_id],
            )
            .map_err(Error::warehouse("writing applied_events"))?;
        }
        for (p, o) in &self.next_offsets {
            tx.execute(
                "INSERT INTO sink_offsets (topic, partition, next_offset) VALUES ($1, $2, $3)
                 ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
                &[&OUTPUT, p, o],
            )
            .map_err(Error::warehouse("writing sink_offsets"))?;
        }
        Ok(())
    }
}

/// Runs the sink until `stop` is set. Database or Kafka failures restart the session with backoff,
/// from the offsets stored in the database.
pub fn run(files: &ClientFiles, cfg: &SinkConfig, metrics: &Metrics, stop: &AtomicBool) -> Result<()> {
    supervise("warehouse", metrics, stop, || session(files, cfg, metrics, stop).map_err(LoopError::Retry))
}

fn session(files: &ClientFiles, cfg: &SinkConfig, metrics: &Metrics, stop: &AtomicBool) -> Result<()> {
    let mut db = Client::connect(&cfg.dsn, NoTls).map_err(Error::warehouse(format!("connecting to warehouse {}", cfg.dsn)))?;
    db.batch_execute(SCHEMA).map_err(Error::warehouse("creating the warehouse schema"))?;
    let consumer: BaseConsumer = files.consumer_config("cdc-chaos-warehouse").create().map_err(|e| Error::kafka("consumer", e))?;
    let md = consumer.fetch_metadata(Some(OUTPUT), Duration::from_secs(10)).map_err(|e| Error::kafka(format!("metadata of {OUTPUT}"), e))?;
    let topic = md.topics().first().filter(|t| t.error().is_none()).ok_or_else(|| Error::Topic { topic: OUTPUT.into(), message: "missing".into() })?;
    let mut tpl = TopicPartitionList::new();
    for p in topic.partitions() {
        let stored: Option<i64> = db
            .query_opt("SELECT next_offset FROM sink_offsets WHERE topic = $1 AND partition = $2", &[&OUTPUT, &p.id()])
            .map_err(Error::warehouse("reading sink_offsets"))?
            .map(|r| r.get(0));
        tpl.add_partition_offset(OUTPUT, p.id(), stored.map(Offset::Offset).unwrap_or(Offset::Beginning)).expect("offset");
    }
    consumer.assign(&tpl).map_err(|e| Error::kafka("assign", e))?;
    metrics.ready.store(1, Ordering::Relaxed);

    while !stop.load(Ordering::Relaxed) {
        let batch = collect_batch(&consumer, cfg.batch_max, cfg.batch_wait)?;
        if batch.is_empty() {
            continue;
        }
        metrics.records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let plan = Plan::of(batch.iter().map(|m| (m.partition(), m.offset(), m.payload())));
        for bad in &plan.rejected {
            tracing::error!("{bad}");
        }
        metrics.dead_letters.fetch_add(plan.rejected.len() as u64, Ordering::Relaxed);
        let t = Instant::now();
        let mut tx = db.transaction().map_err(Error::warehouse("begin"))?;
        plan.write(&mut tx)?;
        metrics.events_out.fetch_add(plan.applied.len() as u64, Ordering::Relaxed);
        tx.commit().map_err(Error::warehouse("commit"))?;
        metrics.observe_commit(t.elapsed().as_secs_f64());
        metrics.commits.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{EventId, Op, Table};
    use crate::join::DocumentChange;
    use crate::record::{ChangeRecord, Coordinates};
    use serde_json::json;

    fn record(pk: i64, documents: Vec<DocumentChange>) -> Vec<u8> {
        let r = ChangeRecord {
            event: EventId { database: "crm".into(), tx: "7".into(), table: Table::Flights, pk, write_id: Some(1 << 32 | pk) },
            op: Op::Upsert,
            position: format!("lsn:{pk}"),
            source_ts_us: 100 + pk,
            join_ts_us: 200 + pk,
            input: Coordinates { topic: "crm.public.flights".into(), partition: 0, offset: pk },
            documents,
        };
        serde_json::to_vec(&r).unwrap()
    }

    fn doc(customer_id: i64, document: Option<serde_json::Value>) -> DocumentChange {
        DocumentChange { customer_id, document }
    }

    #[test]
    fn a_batch_applies_every_record_in_order_and_consumes_every_offset() {
        let moved = record(1, vec![doc(3, Some(json!({"id": 3}))), doc(4, Some(json!({"id": 4})))]);
        let orphan = record(2, vec![]);
        let gone = record(5, vec![doc(3, None)]);
        let batch: Vec<(i32, i64, Option<&[u8]>)> =
            vec![(0, 10, Some(&moved)), (1, 4, Some(&orphan)), (0, 11, None), (0, 12, Some(&gone)), (1, 5, Some(b"not json"))];
        let plan = Plan::of(batch);
        assert_eq!(plan.documents, vec![(3, Some(json!({"id": 3})), 101), (4, Some(json!({"id": 4})), 101), (3, None, 105)]);
        let four = json!({"id": 4});
        assert_eq!(
            plan.final_documents(),
            std::collections::BTreeMap::from([(3, (None, 105)), (4, (Some(&four), 101))]),
            "what the batch leaves: customer 3 moved in, then deleted; 4 written once"
        );
        let applied: Vec<(i64, i32, i64, Option<i64>)> = plan.applied.iter().map(|a| (a.record.event.pk, a.partition, a.offset, a.record.event.write_id)).collect();
        assert_eq!(applied, vec![(1, 0, 10, Some(1 << 32 | 1)), (2, 1, 4, Some(1 << 32 | 2)), (5, 0, 12, Some(1 << 32 | 5))]);
        assert_eq!(plan.next_offsets, std::collections::BTreeMap::from([(0, 13), (1, 6)]), "tombstones and rejected records are consumed too");
        assert_eq!(plan.rejected.len(), 1);
        assert!(plan.rejected[0].starts_with("customer_360.changes/1/5: not a customer_360 change record"), "{}", plan.rejected[0]);
    }

    #[test]
    fn the_next_offset_is_past_the_highest_even_out_of_order() {
        let r = record(1, vec![]);
        let plan = Plan::of(vec![(2, 9, Some(&r[..])), (2, 7, Some(&r[..]))]);
        assert_eq!(plan.next_offsets[&2], 10);
        assert_eq!(plan.applied.len(), 2, "a record delivered twice is applied twice, for the checker to see");
    }
}
