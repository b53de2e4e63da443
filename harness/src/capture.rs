//! Reading what every hop of the live stack holds: the positions that mark the start of a run and
//! tell when the pipeline has quiesced, the event-carrying records of each hop after the marks
//! (as [`Observation`]s), and the final state of the sources and the warehouse.
//!
//! Kafka is read with `isolation.level=read_committed` (what a downstream consumer may see,
//! whatever the profile's own consumers use), from the marks to the end of every partition.
//! Records that are not events are counted, never dropped silently: undecodable records (with
//! their coordinates and reason) and snapshot reads. Every event is kept with the write id its
//! record carries, whichever run that names: telling this run's events from earlier runs' is the
//! checker's work, not the capture's, and nothing here trusts the coordinates a record says it
//! came from. The lake, whose object keys the sink chooses, is read whole: its rows past the
//! `changes` mark, and any row of this run below it.
//!
//! The decoding of one record of each hop is a pure function ([`raw_record`], [`change_record`],
//! [`applied_event`], [`lake_row`], [`fold_lake`]); the rest reads the stores.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdc_pipeline::decode::{decode, Decoded, Op, Table};
use cdc_pipeline::lake::{Lake, LakeRow};
use cdc_pipeline::record::parse_change;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Map, Value};

use ::postgres as postgres_client;

use crate::history::{EventKey, EventOp, WriteId};
use crate::observation::{FinalState, Observation};
use crate::platform::stack::Endpoints;
use crate::platform::topics;
use crate::run_dir::{HopExtras, Marks};
use crate::{Error, Result};

const EXAMPLES: usize = 20;
const KAFKA_TIMEOUT: Duration = Duration::from_secs(20);

fn kafka_err(what: &str, e: KafkaError) -> Error {
    Error::component("kafka", format!("{what}: {e}"))
}

fn consumer(stack: &Endpoints) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", stack.topo.bootstrap())
        .set("group.id", "cdc-chaos-checker")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("socket.timeout.ms", "10000")
        .create()
        .map_err(|e| kafka_err("creating the checker's consumer", e))
}

/// Next offset (high watermark) of every partition of `topic`, as `topic/partition`.
fn end_offsets(c: &BaseConsumer, topic: &str) -> Result<BTreeMap<String, i64>> {
    let md = c.fetch_metadata(Some(topic), KAFKA_TIMEOUT).map_err(|e| kafka_err(&format!("metadata of {topic}"), e))?;
    let t = md.topics().first().filter(|t| t.error().is_none()).ok_or_else(|| Error::component("kafka", format!("topic {topic} is missing")))?;
    let mut out = BTreeMap::new();
    for p in t.partitions() {
        let (_, high) = c.fetch_watermarks(topic, p.id(), KAFKA_TIMEOUT).map_err(|e| kafka_err(&format!("end offset of {topic}/{}", p.id()), e))?;
        out.insert(format!("{topic}/{}", p.id()), high);
    }
    Ok(out)
}

fn warehouse(stack: &Endpoints) -> Result<postgres_client::Client> {
    postgres_client::Client::connect(&stack.warehouse, postgres_client::NoTls)
        .map_err(|e| Error::component("warehouse", format!("connecting: {e}")))
}


/// Where every hop stands now: the marks of a run.
pub fn marks(stack: &Endpoints) -> Result<Marks> {
    let c = consumer(stack)?;
    let mut raw = BTreeMap::new();
    for t in topics::RAW {
        raw.extend(end_offsets(&c, t)?);
    }
    let seq: Option<i64> = warehouse(stack)?
        .query_one("SELECT max(seq) FROM applied_events", &[])
        .map_err(|e| Error::component("warehouse", format!("reading applied_events: {e}")))?
        .get(0);
    Ok(Marks { raw, changes: end_offsets(&c, topics::CUSTOMER_360)?, dead_letter: end_offsets(&c, topics::DEAD_LETTER)?, warehouse_seq: seq.unwrap_or(0) })
}

/// A fingerprint of every hop's position: equal fingerprints a while apart mean nothing moved.
pub fn positions(stack: &Endpoints) -> Result<Vec<i64>> {
    let m = marks(stack)?;
    let mut v: Vec<i64> = m.raw.values().chain(m.changes.values()).copied().collect();
    v.push(m.warehouse_seq);
    let lake = Lake::new(&stack.lake).map_err(|e| Error::component("lake", e.to_string()))?;
    v.push(lake.list("customer_360/").map_err(|e| Error::component("lake", e.to_string()))?.len() as i64);
    Ok(v)
}

/// Reads `topics` from `from` (per `topic/partition`) to the end of every partition, calling
/// `visit(topic, partition, offset, timestamp_us, key, value)` for every record.
fn read_topics(
    stack: &Endpoints,
    topics: &[&str],
    from: &BTreeMap<String, i64>,
    mut visit: impl FnMut(&str, i32, i64, i64, Option<&[u8]>, Option<&[u8]>),
) -> Result<()> {
    let c = consumer(stack)?;
    let mut tpl = TopicPartitionList::new();
    let mut pending = std::collections::BTreeSet::new();
    let mut ends = BTreeMap::new();
    for t in topics {
        for (tp, end) in end_offsets(&c, t)? {
            ends.insert(tp.clone(), end);
            let p: i32 = tp.rsplit_once('/').and_then(|(_, p)| p.parse().ok()).expect("topic/partition");
            let start = from.get(&tp).copied().unwrap_or(0);
            if start < end {
                tpl.add_partition_offset(t, p, Offset::Offset(start)).expect("offset");
                pending.insert(tp);
            }
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    c.assign(&tpl).map_err(|e| kafka_err("assigning partitions", e))?;
    let mut last_progress = Instant::now();
    while !pending.is_empty() {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let ts = m.timestamp().to_millis().unwrap_or(0) * 1000;
                visit(m.topic(), m.partition(), m.offset(), ts, m.key(), m.payload());
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                // The event names only the partition: compare every position with its end.
                let pos = c.position().map_err(|e| kafka_err("consumer position", e))?;
                for e in pos.elements() {
                    let tp = format!("{}/{}", e.topic(), e.partition());
                    if let (Offset::Offset(o), Some(end)) = (e.offset(), ends.get(&tp)) {
                        if o >= *end {
                            pending.remove(&tp);
                        }
                    }
                }
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) | None => {}
            Some(Err(e)) => tracing::warn!("reading {topics:?}: {e}"),
        }
        if last_progress.elapsed() > Duration::from_secs(60) {
            return Err(Error::component("kafka", format!("reading {topics:?}: no progress for 60 s; still unread: {pending:?}")));
        }
    }
    Ok(())
}

fn note(extras: &mut HopExtras, what: String) {
    extras.malformed += 1;
    if extras.malformed_examples.len() < EXAMPLES {
        extras.malformed_examples.push(what);
    }
}

fn event_op(op: Op) -> EventOp {
    match op {
        Op::Upsert => EventOp::Upsert,
        Op::Delete => EventOp::Delete,
    }
}

fn table_named(s: &str) -> Option<Table> {
    [Table::Customers, Table::Flights, Table::Vehicles].into_iter().find(|t| t.as_str() == s)
}

/// The event of a record naming `table`, `pk`, `op` and `write_id` as text or columns.
fn event(table: &str, pk: i64, op: &str, write_id: Option<i64>) -> std::result::Result<EventKey, String> {
    let table = table_named(table).ok_or_else(|| format!("unknown table {table:?}"))?;
    let op = EventOp::parse(op).ok_or_else(|| format!("unknown op {op:?}"))?;
    Ok(EventKey { table, pk, write: WriteId::from_column(write_id), op })
}

/// What one record of a hop is.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An event.
    Event(Observation),
    /// A snapshot read (`op: r`) of a raw topic: a connector re-snapshotted.
    Snapshot,
    /// Not an event and nothing to count (a tombstone after a delete).
    Nothing,
    /// Undecodable: why.
    Malformed(String),
}

impl Record {
    fn count(self, out: &mut Vec<Observation>, extras: &mut HopExtras, at: impl FnOnce() -> String) {
        match self {
            Record::Event(o) => out.push(o),
            Record::Snapshot => extras.snapshot_records += 1,
            Record::Nothing => {}
            Record::Malformed(e) => note(extras, format!("{}: {e}", at())),
        }
    }
}

/// One record of a raw CDC topic; `ts_us` is its Kafka timestamp.
pub fn raw_record(topic: &str, partition: i32, offset: i64, ts_us: i64, value: Option<&[u8]>) -> Record {
    match decode(topic, value) {
        Ok(Decoded::Tombstone) => Record::Nothing,
        Ok(Decoded::Change(c)) if c.id.tx == "snapshot" => Record::Snapshot,
        Ok(Decoded::Change(c)) => Record::Event(Observation {
            key: EventKey { table: c.id.table, pk: c.id.pk, write: WriteId::from_column(c.id.write_id), op: event_op(c.op) },
            partition,
            offset,
            ts_us,
        }),
        Err(e) => Record::Malformed(e.to_string()),
    }
}

/// One record of `customer_360.changes`, timed by the join's processing time.
pub fn change_record(partition: i32, offset: i64, value: Option<&[u8]>) -> Record {
    let Some(value) = value else { return Record::Malformed("null value".into()) };
    match parse_change(value) {
        Ok(r) => Record::Event(Observation {
            key: EventKey { table: r.event.table, pk: r.event.pk, write: WriteId::from_column(r.event.write_id), op: event_op(r.op) },
            partition,
            offset,
            ts_us: r.join_ts_us,
        }),
        Err(e) => Record::Malformed(e.to_string()),
    }
}

/// One row of the warehouse's `applied_events`: (seq, table, pk, op, write_id, commit time).
pub fn applied_event(seq: i64, table: &str, pk: i64, op: &str, write_id: Option<i64>, ts_us: i64) -> Record {
    match event(table, pk, op, write_id) {
        Ok(key) => Record::Event(Observation { key, partition: 0, offset: seq, ts_us }),
        Err(e) => Record::Malformed(e),
    }
}

/// One row of the lake, if it is to be checked: past `mark` (the `changes` mark of its
/// partition), or below it but written by this run (`run`): a sink that wrote one of this run's
/// events under old coordinates does not hide it that way.
pub fn lake_row(r: &LakeRow, mark: i64, run: u32) -> Option<Record> {
    if r.kafka_offset < mark && WriteId::from_column(Some(r.write_id)).run() != run {
        return None;
    }
    Some(match event(&r.table_name, r.pk, &r.op, Some(r.write_id)) {
        Ok(key) => Record::Event(Observation { key, partition: r.kafka_partition, offset: r.kafka_offset, ts_us: r.sink_ts_us }),
        Err(e) => Record::Malformed(e),
    })
}

/// The lake's documents: its change records folded in the join's processing order
/// (`join_ts_us`, then partition and offset), each record's documents replacing (or, when
/// `null`, deleting) the customer's document. What a data scientist reading the whole lake gets.
pub fn fold_lake(rows: &[LakeRow]) -> std::result::Result<BTreeMap<i64, Value>, String> {
    let mut order: Vec<&LakeRow> = rows.iter().collect();
    order.sort_by_key(|r| (r.join_ts_us, r.kafka_partition, r.kafka_offset));
    let mut docs = BTreeMap::new();
    for r in order {
        let changes: Vec<cdc_pipeline::join::DocumentChange> = serde_json::from_str(&r.documents)
            .map_err(|e| format!("lake row at {}/{}: documents are not a list of document changes: {e}", r.kafka_partition, r.kafka_offset))?;
        for d in changes {
            match d.document {
                Some(doc) => docs.insert(d.customer_id, doc),
                None => docs.remove(&d.customer_id),
            };
        }
    }
    Ok(docs)
}

/// The raw CDC topics after the marks. Timestamps are the Kafka record timestamps.
pub fn raw(stack: &Endpoints, marks: &Marks) -> Result<(Vec<Observation>, HopExtras)> {
    let mut out = Vec::new();
    let mut extras = HopExtras::default();
    read_topics(stack, topics::RAW, &marks.raw, |topic, partition, offset, ts_us, _, value| {
        raw_record(topic, partition, offset, ts_us, value).count(&mut out, &mut extras, || format!("{topic}/{partition}/{offset}"))
    })?;
    Ok((out, extras))
}

/// `customer_360.changes` after the marks. Timestamps are the join's processing times.
pub fn changes(stack: &Endpoints, marks: &Marks) -> Result<(Vec<Observation>, HopExtras)> {
    let mut out = Vec::new();
    let mut extras = HopExtras::default();
    read_topics(stack, &[topics::CUSTOMER_360], &marks.changes, |topic, partition, offset, _, _, value| {
        change_record(partition, offset, value).count(&mut out, &mut extras, || format!("{topic}/{partition}/{offset}"))
    })?;
    Ok((out, extras))
}

/// Records on the dead-letter topic after the marks.
pub fn dead_letters(stack: &Endpoints, marks: &Marks) -> Result<u64> {
    let mut n = 0;
    read_topics(stack, &[topics::DEAD_LETTER], &marks.dead_letter, |_, _, _, _, _, _| n += 1)?;
    Ok(n)
}

/// The source offsets Kafka Connect has committed, by connector: the latest value of each
/// `["<connector>", {partition}]` key of its offsets topic (a tombstone removes it).
pub fn source_offsets(stack: &Endpoints) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    read_topics(stack, &[topics::CONNECT_OFFSETS], &BTreeMap::new(), |_, _, _, _, key, value| {
        if let Some(connector) = key.and_then(|k| serde_json::from_slice::<Value>(k).ok()).and_then(|k| k.get(0).and_then(Value::as_str).map(String::from)) {
            match value.map(serde_json::from_slice::<Value>) {
                Some(Ok(v)) => {
                    out.insert(connector, v);
                }
                None => {
                    out.remove(&connector);
                }
                Some(Err(e)) => tracing::warn!("{}: an offset of {connector} is not JSON: {e}", topics::CONNECT_OFFSETS),
            }
        }
    })?;
    Ok(out)
}

/// The warehouse's applied-event log after the mark, in `seq` order. Timestamps are the sink's
/// commit times.
pub fn warehouse_log(stack: &Endpoints, marks: &Marks) -> Result<(Vec<Observation>, HopExtras)> {
    let mut db = warehouse(stack)?;
    let rows = db
        .query(
            "SELECT seq, table_name, pk, op, write_id, (extract(epoch FROM sink_commit_ts) * 1000000)::bigint
             FROM applied_events WHERE seq > $1 ORDER BY seq",
            &[&marks.warehouse_seq],
        )
        .map_err(|e| Error::component("warehouse", format!("reading applied_events: {e}")))?;
    let mut out = Vec::with_capacity(rows.len());
    let mut extras = HopExtras::default();
    for r in rows {
        let seq: i64 = r.get(0);
        applied_event(seq, r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)).count(&mut out, &mut extras, || format!("applied_events seq {seq}"));
    }
    Ok((out, extras))
}

/// The lake's rows to check ([`lake_row`]), in object-key (offset) order, and its documents
/// ([`fold_lake`]). Timestamps are the sink's object write times.
pub fn lake(stack: &Endpoints, marks: &Marks, run: u32) -> Result<(Vec<Observation>, HopExtras, BTreeMap<i64, Value>)> {
    let lake = Lake::new(&stack.lake).map_err(|e| Error::component("lake", e.to_string()))?;
    let rows = lake.read_all().map_err(|e| Error::component("lake", e.to_string()))?;
    let mut out = Vec::new();
    let mut extras = HopExtras::default();
    for r in &rows {
        let mark = marks.changes.get(&format!("{}/{}", topics::CUSTOMER_360, r.kafka_partition)).copied().unwrap_or(0);
        if let Some(record) = lake_row(r, mark, run) {
            record.count(&mut out, &mut extras, || format!("lake row at {}/{}", r.kafka_partition, r.kafka_offset));
        }
    }
    let documents = fold_lake(&rows).map_err(|e| Error::component("lake", e))?;
    Ok((out, extras, documents))
}

/// The source tables (rendered as Debezium renders them: dates as days since the epoch; without
/// `updated_at`), the warehouse's documents and the lake's (`lake`, from [`lake`]).
pub fn final_state(stack: &Endpoints, lake: BTreeMap<i64, Value>) -> Result<FinalState> {
    let mut crm = postgres_client::Client::connect(&stack.sources.postgres, postgres_client::NoTls)
    .map_err(|e| Error::component("postgres", format!("connecting to crm: {e}")))?;
    let json_rows = |db: &mut postgres_client::Client, sql: &str| -> Result<Vec<Map<String, Value>>> {
        db.query(sql, &[])
            .map_err(|e| Error::component("postgres", format!("{sql}: {e}")))?
            .into_iter()
            .map(|r| match r.get::<_, Value>(0) {
                Value::Object(m) => Ok(m),
                other => Err(Error::component("postgres", format!("{sql}: not an object: {other}"))),
            })
            .collect()
    };
    let customers = json_rows(
        &mut crm,
        "SELECT json_build_object('id', id, 'name', name, 'gender', gender, 'address', address, 'phone', phone,
           'email', email, 'birth_date', birth_date - DATE '1970-01-01', 'profession', profession, 'write_id', write_id) FROM customers",
    )?;
    let flights = json_rows(
        &mut crm,
        "SELECT json_build_object('id', id, 'customer_id', customer_id, 'airport', airport, 'airline', airline, 'iata_code', iata_code,
           'write_id', write_id) FROM flights",
    )?;
    let vehicles = fleet_vehicles(&stack.sources.mariadb)?;
    let warehouse = warehouse(stack)?
        .query("SELECT customer_id, document FROM customer_360", &[])
        .map_err(|e| Error::component("warehouse", format!("reading customer_360: {e}")))?
        .into_iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, Value>(1)))
        .collect();
    Ok(FinalState { customers, flights, vehicles, warehouse, lake: Some(lake) })
}

/// Every row of `fleet.vehicles` as a JSON object (MariaDB's `JSON_OBJECT`), read from `url`.
fn fleet_vehicles(url: &str) -> Result<Vec<Map<String, Value>>> {
    use mysql_async::prelude::Queryable;
    let err = |e: mysql_async::Error| Error::component("mariadb", format!("reading fleet.vehicles: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::component("mariadb", format!("starting a runtime: {e}")))?;
    let rows: Vec<String> = rt.block_on(async {
        let opts = mysql_async::Opts::from_url(url).map_err(|e| Error::Usage(format!("fleet URL: {e}")))?;
        let mut conn = tokio::time::timeout(Duration::from_secs(20), mysql_async::Conn::new(opts))
            .await
            .map_err(|_| Error::component("mariadb", "connecting to fleet: no answer in 20 s"))?
            .map_err(err)?;
        let rows = conn
            .query(
                "SELECT JSON_OBJECT('id', id, 'customer_id', customer_id, 'model_year', model_year, 'model', model,
                   'manufacturer', manufacturer, 'vehicle_year', vehicle_year, 'category', category, 'write_id', write_id) FROM vehicles",
            )
            .await
            .map_err(err)?;
        let _ = conn.disconnect().await;
        Ok::<_, Error>(rows)
    })?;
    rows.iter()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(Error::component("mariadb", format!("vehicles: not a JSON object: {l}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const W: i64 = (9 << 32) | 5;

    fn debezium(op: &str, before: Value, after: Value) -> Vec<u8> {
        json!({"before": before, "after": after, "op": op, "source": {"txId": 771, "lsn": 2345, "ts_us": 1_700_000_000_000_001i64}}).to_string().into_bytes()
    }

    fn obs(table: Table, pk: i64, write: i64, op: EventOp, partition: i32, offset: i64, ts_us: i64) -> Record {
        Record::Event(Observation { key: EventKey { table, pk, write: WriteId::from_column(Some(write)), op }, partition, offset, ts_us })
    }

    #[test]
    fn raw_records_carry_the_write_id_of_their_row_image() {
        let up = debezium("u", json!({"id": 3, "write_id": 1}), json!({"id": 3, "write_id": W}));
        assert_eq!(raw_record("crm.public.customers", 1, 40, 77, Some(&up)), obs(Table::Customers, 3, W, EventOp::Upsert, 1, 40, 77));
        let del = debezium("d", json!({"id": 4, "customer_id": 1, "write_id": W}), Value::Null);
        assert_eq!(raw_record("crm.public.flights", 0, 2, 5, Some(&del)), obs(Table::Flights, 4, W, EventOp::Delete, 0, 2, 5));
        // A row nobody of ours wrote: an event without a write id (the checker calls it a phantom).
        let foreign = debezium("c", Value::Null, json!({"id": 5}));
        assert_eq!(raw_record("crm.public.customers", 0, 3, 5, Some(&foreign)), obs(Table::Customers, 5, 0, EventOp::Upsert, 0, 3, 5));
        let snap = json!({"after": {"id": 1}, "op": "r", "source": {"lsn": 1, "ts_ms": 1}}).to_string().into_bytes();
        assert_eq!(raw_record("crm.public.customers", 0, 0, 0, Some(&snap)), Record::Snapshot);
        assert_eq!(raw_record("crm.public.customers", 0, 0, 0, None), Record::Nothing);
        assert!(matches!(raw_record("crm.public.customers", 0, 0, 0, Some(b"{")), Record::Malformed(e) if e.contains("not JSON")));
    }

    fn change(pk: i64, op: &str, write_id: Option<i64>, input_offset: i64) -> Vec<u8> {
        let mut event = json!({"database": "fleet", "tx": "0-1-9", "table": "vehicles", "pk": pk});
        if let Some(w) = write_id {
            event["write_id"] = json!(w);
        }
        json!({"event": event, "op": op, "position": "b:1:0", "source_ts_us": 1, "join_ts_us": 900,
               "input": {"topic": "fleet.fleet.vehicles", "partition": 0, "offset": input_offset}, "documents": []})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn change_records_are_events_whatever_input_offset_they_claim() {
        // The input coordinates are the join's word: an old offset hides nothing.
        for input in [0, 1_000_000] {
            assert_eq!(change_record(2, 8, Some(&change(6, "upsert", Some(W), input))), obs(Table::Vehicles, 6, W, EventOp::Upsert, 2, 8, 900));
        }
        assert_eq!(change_record(2, 9, Some(&change(6, "delete", None, 0))), obs(Table::Vehicles, 6, 0, EventOp::Delete, 2, 9, 900));
        assert!(matches!(change_record(0, 0, None), Record::Malformed(e) if e == "null value"));
        assert!(matches!(change_record(0, 0, Some(b"[]")), Record::Malformed(e) if e.contains("not a customer_360 change record")));
    }

    #[test]
    fn applied_events_name_their_seq_and_bad_rows_are_malformed() {
        assert_eq!(applied_event(12, "flights", 3, "delete", Some(W), 50), obs(Table::Flights, 3, W, EventOp::Delete, 0, 12, 50));
        assert!(matches!(applied_event(1, "planes", 3, "upsert", None, 0), Record::Malformed(e) if e.contains("unknown table \"planes\"")));
        assert!(matches!(applied_event(1, "flights", 3, "merge", None, 0), Record::Malformed(e) if e.contains("unknown op \"merge\"")));
    }

    fn row(partition: i32, offset: i64, write_id: i64, join_ts_us: i64, documents: Value) -> LakeRow {
        LakeRow {
            database: "crm".into(),
            tx: "1".into(),
            table_name: "customers".into(),
            pk: 1,
            op: "upsert".into(),
            position: "lsn:1".into(),
            source_ts_us: 1,
            join_ts_us,
            kafka_partition: partition,
            kafka_offset: offset,
            documents: documents.to_string(),
            sink_ts_us: 70,
            write_id,
        }
    }

    #[test]
    fn lake_rows_past_the_mark_or_of_this_run_are_checked() {
        let earlier = (8 << 32) | 1;
        assert_eq!(lake_row(&row(0, 10, earlier, 0, json!([])), 10, 9), Some(obs(Table::Customers, 1, earlier, EventOp::Upsert, 0, 10, 70)));
        assert_eq!(lake_row(&row(0, 9, earlier, 0, json!([])), 10, 9), None, "an earlier run's row below the mark");
        assert_eq!(lake_row(&row(0, 3, W, 0, json!([])), 10, 9), Some(obs(Table::Customers, 1, W, EventOp::Upsert, 0, 3, 70)), "this run's row below the mark");
        let mut bad = row(0, 11, W, 0, json!([]));
        bad.op = "x".into();
        assert!(matches!(lake_row(&bad, 10, 9), Some(Record::Malformed(_))));
    }

    #[test]
    fn the_lake_folds_in_processing_order() {
        let rows = vec![
            row(1, 5, W, 300, json!([{"customer_id": 1, "document": {"v": 3}}])),
            row(0, 7, W, 100, json!([{"customer_id": 1, "document": {"v": 1}}, {"customer_id": 2, "document": {"v": 1}}])),
            row(0, 8, W, 200, json!([{"customer_id": 2, "document": null}])),
        ];
        assert_eq!(fold_lake(&rows).unwrap(), BTreeMap::from([(1, json!({"v": 3}))]));
        let e = fold_lake(&[row(0, 4, W, 1, json!({"no": "list"}))]).unwrap_err();
        assert!(e.contains("lake row at 0/4"), "{e}");
    }
}
