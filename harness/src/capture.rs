//! Reading what every hop of the live stack holds: the positions that mark the start of a run and
//! tell when the pipeline has quiesced, the event-carrying records of each hop after the marks
//! (as [`Observation`]s), and the final state of the sources and the warehouse.
//!
//! Kafka is read with `isolation.level=read_committed` (what a downstream consumer may see,
//! whatever the profile's own consumers use), from the marks to the end of every partition.
//! Records that are not events are counted, never dropped silently: undecodable records (with
//! their coordinates and reason) and snapshot reads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cdc_pipeline::decode::{decode, Decoded, Op, Table};
use cdc_pipeline::lake::Lake;
use cdc_pipeline::record::parse_change;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Map, Value};

use ::postgres as postgres_client;

use crate::history::{EventKey, Tx};
use crate::observation::{FinalState, ObsOp, Observation};
use crate::platform::stack::Endpoints;
use crate::platform::topics;
use crate::run::{HopExtras, Marks};
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
    let lake = Lake::new(&stack.lake).map_err(|e| Error::component("lake", e))?;
    v.push(lake.list("customer_360/").map_err(|e| Error::component("lake", e))?.len() as i64);
    Ok(v)
}

/// Reads `topics` from `from` (per `topic/partition`) to the end of every partition, calling
/// `visit(topic, partition, offset, timestamp_us, value)` for every record.
fn read_topics(stack: &Endpoints, topics: &[&str], from: &BTreeMap<String, i64>, mut visit: impl FnMut(&str, i32, i64, i64, Option<&[u8]>)) -> Result<()> {
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
                visit(m.topic(), m.partition(), m.offset(), ts, m.payload());
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

fn key(table: Table, pk: i64, tx: &str) -> std::result::Result<EventKey, String> {
    let tx = Tx::parse(table, tx).ok_or_else(|| format!("transaction id {tx:?} is not a {} id", table.database()))?;
    Ok(EventKey { table, pk, tx })
}

fn obs_op(op: Op) -> ObsOp {
    match op {
        Op::Upsert => ObsOp::Upsert,
        Op::Delete => ObsOp::Delete,
    }
}

/// The raw CDC topics after the marks. Timestamps are the Kafka record timestamps.
pub fn raw(stack: &Endpoints, marks: &Marks) -> Result<(Vec<Observation>, HopExtras)> {
    let mut out = Vec::new();
    let mut extras = HopExtras::default();
    read_topics(stack, topics::RAW, &marks.raw, |topic, partition, offset, ts_us, value| match decode(topic, value) {
        Ok(Decoded::Tombstone) => {}
        Ok(Decoded::Change(c)) if c.id.tx == "snapshot" => extras.snapshot_records += 1,
        Ok(Decoded::Change(c)) => match key(c.id.table, c.id.pk, &c.id.tx) {
            Ok(key) => out.push(Observation { key, op: obs_op(c.op), partition, offset, ts_us }),
            Err(e) => note(&mut extras, format!("{topic}/{partition}/{offset}: {e}")),
        },
        Err(e) => note(&mut extras, format!("{topic}/{partition}/{offset}: {e}")),
    })?;
    Ok((out, extras))
}

/// Output records (partition, offset) of changes made before the run.
pub type Earlier = BTreeSet<(i32, i64)>;

/// `customer_360.changes` after the marks. Timestamps are the join's processing times. Records
/// whose input precedes the raw marks belong to changes made before the run (a backlog): they are
/// counted, not observed, and returned so that the sinks' copies of them are skipped too.
pub fn changes(stack: &Endpoints, marks: &Marks) -> Result<(Vec<Observation>, HopExtras, Earlier)> {
    let mut out = Vec::new();
    let mut extras = HopExtras::default();
    let mut earlier = Earlier::new();
    read_topics(stack, &[topics::CUSTOMER_360], &marks.changes, |topic, partition, offset, _, value| {
        let Some(value) = value else { return note(&mut extras, format!("{topic}/{partition}/{offset}: null value")) };
        match parse_change(value).and_then(|r| Ok((key(r.event.table, r.event.pk, &r.event.tx)?, r))) {
            Ok((_, r)) if r.input.offset < marks.raw.get(&format!("{}/{}", r.input.topic, r.input.partition)).copied().unwrap_or(0) => {
                extras.earlier_records += 1;
                earlier.insert((partition, offset));
            }
            Ok((key, r)) => out.push(Observation { key, op: obs_op(r.op), partition, offset, ts_us: r.join_ts_us }),
            Err(e) => note(&mut extras, format!("{topic}/{partition}/{offset}: {e}")),
        }
    })?;
    Ok((out, extras, earlier))
}

/// Records on the dead-letter topic after the marks.
pub fn dead_letters(stack: &Endpoints, marks: &Marks) -> Result<u64> {
    let mut n = 0;
    read_topics(stack, &[topics::DEAD_LETTER], &marks.dead_letter, |_, _, _, _, _| n += 1)?;
    Ok(n)
}

/// The warehouse's applied-event log after the mark, in `seq` order. Timestamps are the sink's
/// commit times.
pub fn warehouse_log(stack: &Endpoints, marks: &Marks, earlier: &Earlier) -> Result<(Vec<Observation>, HopExtras)> {
    let mut db = warehouse(stack)?;
    let rows = db
        .query(
            "SELECT seq, table_name, pk, tx, op, (extract(epoch FROM sink_commit_ts) * 1000000)::bigint, topic_partition, topic_offset
             FROM applied_events WHERE seq > $1 ORDER BY seq",
            &[&marks.warehouse_seq],
        )
        .map_err(|e| Error::component("warehouse", format!("reading applied_events: {e}")))?;
    let mut out = Vec::with_capacity(rows.len());
    let mut extras = HopExtras::default();
    for r in rows {
        let (seq, table, pk, tx, op, ts): (i64, String, i64, String, String, i64) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        if earlier.contains(&(r.get::<_, i32>(6), r.get::<_, i64>(7))) {
            extras.earlier_records += 1;
            continue;
        }
        let parsed = table_named(&table)
            .ok_or_else(|| format!("unknown table {table:?}"))
            .and_then(|t| key(t, pk, &tx))
            .and_then(|k| Ok((k, op_named(&op).ok_or_else(|| format!("unknown op {op:?}"))?)));
        match parsed {
            Ok((key, op)) => out.push(Observation { key, op, partition: 0, offset: seq, ts_us: ts }),
            Err(e) => note(&mut extras, format!("applied_events seq {seq}: {e}")),
        }
    }
    Ok((out, extras))
}

fn table_named(s: &str) -> Option<Table> {
    [Table::Customers, Table::Flights, Table::Vehicles].into_iter().find(|t| t.as_str() == s)
}

fn op_named(s: &str) -> Option<ObsOp> {
    match s {
        "upsert" => Some(ObsOp::Upsert),
        "delete" => Some(ObsOp::Delete),
        _ => None,
    }
}

/// The lake's rows whose offsets are past the mark, in object-key (offset) order. Timestamps are
/// the sink's object write times.
pub fn lake_rows(stack: &Endpoints, marks: &Marks, earlier: &Earlier) -> Result<(Vec<Observation>, HopExtras)> {
    let lake = Lake::new(&stack.lake).map_err(|e| Error::component("lake", e))?;
    let rows = lake.read_all().map_err(|e| Error::component("lake", e))?;
    let mut out = Vec::new();
    let mut extras = HopExtras::default();
    for r in rows {
        let mark = marks.changes.get(&format!("{}/{}", topics::CUSTOMER_360, r.kafka_partition)).copied().unwrap_or(0);
        if r.kafka_offset < mark {
            continue;
        }
        if earlier.contains(&(r.kafka_partition, r.kafka_offset)) {
            extras.earlier_records += 1;
            continue;
        }
        let parsed = table_named(&r.table_name)
            .ok_or_else(|| format!("unknown table {:?}", r.table_name))
            .and_then(|t| key(t, r.pk, &r.tx))
            .and_then(|k| Ok((k, op_named(&r.op).ok_or_else(|| format!("unknown op {:?}", r.op))?)));
        match parsed {
            Ok((key, op)) => out.push(Observation { key, op, partition: r.kafka_partition, offset: r.kafka_offset, ts_us: r.sink_ts_us }),
            Err(e) => note(&mut extras, format!("lake row at offset {}: {e}", r.kafka_offset)),
        }
    }
    Ok((out, extras))
}

/// The source tables (rendered as Debezium renders them: dates as days since the epoch; without
/// `updated_at`) and the warehouse's documents.
pub fn final_state(stack: &Endpoints) -> Result<FinalState> {
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
           'email', email, 'birth_date', birth_date - DATE '1970-01-01', 'profession', profession) FROM customers",
    )?;
    let flights = json_rows(
        &mut crm,
        "SELECT json_build_object('id', id, 'customer_id', customer_id, 'airport', airport, 'airline', airline, 'iata_code', iata_code) FROM flights",
    )?;
    let vehicles = fleet_vehicles(&stack.sources.mariadb)?;
    let warehouse = warehouse(stack)?
        .query("SELECT customer_id, document FROM customer_360", &[])
        .map_err(|e| Error::component("warehouse", format!("reading customer_360: {e}")))?
        .into_iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, Value>(1)))
        .collect();
    Ok(FinalState { customers, flights, vehicles, warehouse })
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
                   'manufacturer', manufacturer, 'vehicle_year', vehicle_year, 'category', category) FROM vehicles",
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
