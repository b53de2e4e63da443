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
    topic_offset   BIGINT NOT NULL
);
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

/// Runs the sink until `stop` is set. Database or Kafka failures restart the session with backoff,
/// from the offsets stored in the database.
pub fn run(files: &ClientFiles, cfg: &SinkConfig, metrics: &Metrics, stop: &AtomicBool) -> Result<(), String> {
    supervise("warehouse", metrics, stop, || session(files, cfg, metrics, stop).map_err(LoopError::Retry))
}

fn session(files: &ClientFiles, cfg: &SinkConfig, metrics: &Metrics, stop: &AtomicBool) -> Result<(), String> {
    let mut db = Client::connect(&cfg.dsn, NoTls).map_err(|e| format!("warehouse {}: {e}", cfg.dsn))?;
    db.batch_execute(SCHEMA).map_err(|e| format!("warehouse schema: {e}"))?;
    let consumer: BaseConsumer = files.consumer_config("cdc-chaos-warehouse").create().map_err(|e| format!("consumer: {e}"))?;
    let md = consumer.fetch_metadata(Some(OUTPUT), Duration::from_secs(10)).map_err(|e| format!("metadata of {OUTPUT}: {e}"))?;
    let topic = md.topics().first().filter(|t| t.error().is_none()).ok_or_else(|| format!("topic {OUTPUT} missing"))?;
    let mut tpl = TopicPartitionList::new();
    for p in topic.partitions() {
        let stored: Option<i64> = db
            .query_opt("SELECT next_offset FROM sink_offsets WHERE topic = $1 AND partition = $2", &[&OUTPUT, &p.id()])
            .map_err(|e| format!("reading sink_offsets: {e}"))?
            .map(|r| r.get(0));
        tpl.add_partition_offset(OUTPUT, p.id(), stored.map(Offset::Offset).unwrap_or(Offset::Beginning)).expect("offset");
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    metrics.ready.store(1, Ordering::Relaxed);

    while !stop.load(Ordering::Relaxed) {
        let batch = collect_batch(&consumer, cfg.batch_max, cfg.batch_wait).map_err(|e| format!("{OUTPUT}: {e}"))?;
        if batch.is_empty() {
            continue;
        }
        metrics.records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let t = Instant::now();
        let mut tx = db.transaction().map_err(|e| format!("begin: {e}"))?;
        let mut next = std::collections::BTreeMap::new();
        for m in &batch {
            next.insert(m.partition(), m.offset() + 1);
            let Some(payload) = m.payload() else { continue };
            // The join writes only valid records; anything else is reported and skipped so that
            // one bad record cannot stop the warehouse.
            let rec = match parse_change(payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("{OUTPUT}/{}/{}: {e}", m.partition(), m.offset());
                    metrics.dead_letters.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            for d in &rec.documents {
                match &d.document {
                    Some(doc) => tx.execute(
                        "INSERT INTO customer_360 (customer_id, document, source_ts_us) VALUES ($1, $2, $3)
                         ON CONFLICT (customer_id) DO UPDATE SET document = EXCLUDED.document,
                           source_ts_us = EXCLUDED.source_ts_us, updated_at = clock_timestamp()",
                        &[&d.customer_id, doc, &rec.source_ts_us],
                    ),
                    None => tx.execute("DELETE FROM customer_360 WHERE customer_id = $1", &[&d.customer_id]),
                }
                .map_err(|e| format!("writing customer_360: {e}"))?;
            }
            tx.execute(
                "INSERT INTO applied_events (database, tx, table_name, pk, op, position, source_ts_us, join_ts_us, topic_partition, topic_offset)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &rec.event.database,
                    &rec.event.tx,
                    &rec.event.table.as_str(),
                    &rec.event.pk,
                    &rec.op.as_str(),
                    &rec.position,
                    &rec.source_ts_us,
                    &rec.join_ts_us,
                    &m.partition(),
                    &m.offset(),
                ],
            )
            .map_err(|e| format!("writing applied_events: {e}"))?;
            metrics.events_out.fetch_add(1, Ordering::Relaxed);
        }
        for (p, o) in next {
            tx.execute(
                "INSERT INTO sink_offsets (topic, partition, next_offset) VALUES ($1, $2, $3)
                 ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
                &[&OUTPUT, &p, &o],
            )
            .map_err(|e| format!("writing sink_offsets: {e}"))?;
        }
        tx.commit().map_err(|e| format!("commit: {e}"))?;
        metrics.observe_commit(t.elapsed().as_secs_f64());
        metrics.commits.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
