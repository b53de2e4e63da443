//! The lake sink: `customer_360.changes` as Parquet objects in an S3 bucket (SeaweedFS here;
//! MinIO or AWS S3 by configuration), exactly once.
//!
//! Each batch becomes one object named after the Kafka offset of its first record,
//! `<prefix>/partition=<p>/<first offset>.parquet` (zero-padded to 20 digits, so names sort by
//! offset). The bucket itself is the progress record: on start the sink reads the partition's last
//! object and resumes after the highest offset it holds, so a batch written before a crash is not
//! written again and a batch cut short is written whole. Reads use `read_committed`.
//!
//! Objects form a chain: each one starts at the first record after the one before it, so the key
//! of the next object is fixed by what the bucket holds. Every object is written with
//! `If-None-Match: *` (create only), which makes each append a compare-and-set on the chain's
//! end: when a killed sink's last PUT lands after its successor listed the bucket, or two sinks
//! run at once, both write the same key, one of them gets `412 Precondition Failed`, and the
//! loser starts its session again from the bucket. Without that, the late object and the
//! successor's overlap and the lake holds those changes twice. An endpoint that ignores the
//! header is refused at start ([`Lake::ensure_conditional_writes`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::RowAccessor;
use parquet::schema::parser::parse_message_type;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rusty_s3::actions::{CreateBucket, ListObjectsV2, PutObject, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use crate::config::ClientFiles;
use crate::error::{Error, Result};
use crate::exactly_once::OUTPUT;
use crate::metrics::Metrics;
use crate::record::parse_change;
use crate::session::{collect_batch, supervise, LoopError};

/// Where the lake is.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// S3 endpoint, e.g. `http://127.0.0.1:28333`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Key prefix of the objects.
    pub prefix: String,
    pub batch_max: usize,
    pub batch_wait: Duration,
}

/// One change as stored in the lake.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LakeRow {
    pub database: String,
    pub tx: String,
    pub table_name: String,
    pub pk: i64,
    pub op: String,
    pub position: String,
    pub source_ts_us: i64,
    pub join_ts_us: i64,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// The affected documents, as JSON.
    pub documents: String,
    /// When the sink wrote the object holding the row, µs since the epoch (0 in objects written
    /// before this column existed).
    pub sink_ts_us: i64,
    /// The event's write id (0 for none, and in objects written before this column existed).
    pub write_id: i64,
}

const SCHEMA: &str = "message customer_360_change {
    REQUIRED BYTE_ARRAY database (UTF8);
    REQUIRED BYTE_ARRAY tx (UTF8);
    REQUIRED BYTE_ARRAY table_name (UTF8);
    REQUIRED INT64 pk;
    REQUIRED BYTE_ARRAY op (UTF8);
    REQUIRED BYTE_ARRAY position (UTF8);
    REQUIRED INT64 source_ts_us;
    REQUIRED INT64 join_ts_us;
    REQUIRED INT32 kafka_partition;
    REQUIRED INT64 kafka_offset;
    REQUIRED BYTE_ARRAY documents (UTF8);
    REQUIRED INT64 sink_ts_us;
    REQUIRED INT64 write_id;
}";

/// Encodes rows as one Parquet file (one row group, Snappy-compressed).
pub fn encode(rows: &[LakeRow]) -> Result<Vec<u8>> {
    let e = || Error::parquet("encoding a lake object");
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(e())?);
    let props = Arc::new(WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build());
    let mut buf = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut buf, schema, props).map_err(e())?;
    let mut rg = writer.next_row_group().map_err(e())?;
    let strings = |f: fn(&LakeRow) -> &str| -> Vec<ByteArray> { rows.iter().map(|r| ByteArray::from(f(r))).collect() };
    let mut column = 0;
    while let Some(mut col) = rg.next_column().map_err(e())? {
        let result = match column {
            0 => col.typed::<ByteArrayType>().write_batch(&strings(|r| &r.database), None, None),
            1 => col.typed::<ByteArrayType>().write_batch(&strings(|r| &r.tx), None, None),
            2 => col.typed::<ByteArrayType>().write_batch(&strings(|r| &r.table_name), None, None),
            3 => col.typed::<Int64Type>().write_batch(&rows.iter().map(|r| r.pk).collect::<Vec<_>>(), None, None),
            4 => col.typed::<ByteArrayType>().write_batch(&strings(|r| &r.op), None, None),
            5 => col.typed::<ByteArrayType>().write_batch(&strings(|r| &r.position), None, None),
            6 => col.typed::<Int64Type>().write_batch(&rows.iter().map(|r| r.source_ts_us).collect::<Vec<_>>(), None, None),
            7 => col.typed::<Int64Type>().write_batch(&rows.iter().map(|r| r.join_ts_us).collect::<Vec<_>>(), None, None),
            8 => col.typed::<Int32Type>().write_batch(&rows.iter().map(|r| r.kafka_partition).collect::<Vec<_>>(), None, None),
            9 => col.typed::<Int64Type>().write_batch(&rows.iter().map(|r| r.kafka_offset).collect::<Vec<_>>(), None, None),
            10 => col.typed::<ByteArrayType>().write_batch(&strings(|r| &r.documents), None, None),
            11 => col.typed::<Int64Type>().write_batch(&rows.iter().map(|r| r.sink_ts_us).collect::<Vec<_>>(), None, None),
            _ => col.typed::<Int64Type>().write_batch(&rows.iter().map(|r| r.write_id).collect::<Vec<_>>(), None, None),
        };
        result.map_err(e())?;
        col.close().map_err(e())?;
        column += 1;
    }
    rg.close().map_err(e())?;
    writer.close().map_err(e())?;
    Ok(buf)
}

/// Decodes a Parquet object written by [`encode`].
pub fn decode(bytes: Vec<u8>) -> Result<Vec<LakeRow>> {
    let e = || Error::parquet("decoding a lake object");
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).map_err(e())?;
    let rows = reader.get_row_iter(None).map_err(e())?;
    let mut out = Vec::new();
    for row in rows {
        let r = row.map_err(e())?;
        let s = |i: usize| r.get_string(i).cloned().map_err(e());
        out.push(LakeRow {
            database: s(0)?,
            tx: s(1)?,
            table_name: s(2)?,
            pk: r.get_long(3).map_err(e())?,
            op: s(4)?,
            position: s(5)?,
            source_ts_us: r.get_long(6).map_err(e())?,
            join_ts_us: r.get_long(7).map_err(e())?,
            kafka_partition: r.get_int(8).map_err(e())?,
            kafka_offset: r.get_long(9).map_err(e())?,
            documents: s(10)?,
            sink_ts_us: if r.len() > 11 { r.get_long(11).map_err(e())? } else { 0 },
            write_id: if r.len() > 12 { r.get_long(12).map_err(e())? } else { 0 },
        });
    }
    Ok(out)
}

/// The object key of a batch whose first record has offset `first`.
pub fn object_key(prefix: &str, partition: i32, first: i64) -> String {
    format!("{prefix}/partition={partition}/{first:020}.parquet")
}

/// The partition and first offset of an object key written by [`object_key`] (or of the
/// `<first>-<last>.parquet` keys of earlier versions, which sort the same way).
pub fn parse_object_key(key: &str) -> Option<(i32, i64)> {
    let (dir, file) = key.rsplit_once('/')?;
    let partition = dir.rsplit_once("partition=")?.1.parse().ok()?;
    let stem = file.strip_suffix(".parquet")?;
    let first = stem.split_once('-').map(|(f, _)| f).unwrap_or(stem);
    Some((partition, first.parse().ok()?))
}

/// What a create-only PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    /// The key existed: another writer appended to the chain first.
    Exists,
}

/// The operations the sink needs from an object store (S3 here, a map in the tests).
pub trait Store {
    /// Every key under `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    fn get(&self, key: &str) -> Result<Vec<u8>>;
    /// Writes `key` only if it does not exist.
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<Put>;
}

/// The highest Kafka offset the lake holds for `partition`: the largest offset in the chain's
/// last object (None for an empty partition).
pub fn stored_through(store: &impl Store, prefix: &str, partition: i32) -> Result<Option<i64>> {
    let last = store.list(&format!("{prefix}/partition={partition}/"))?.into_iter().filter_map(|k| parse_object_key(&k).map(|(_, f)| (f, k))).max();
    let Some((_, key)) = last else { return Ok(None) };
    let rows = decode(store.get(&key)?).map_err(|e| in_object(&key, e))?;
    Ok(rows.iter().map(|r| r.kafka_offset).max())
}

/// Appends a batch (rows of one partition in offset order) to the chain, create only.
pub fn append(store: &impl Store, prefix: &str, partition: i32, rows: &[LakeRow]) -> Result<Put> {
    let key = object_key(prefix, partition, rows[0].kafka_offset);
    store.put_new(&key, &encode(rows)?)
}

/// `e`, a Parquet error, said of the object `key`.
fn in_object(key: &str, e: Error) -> Error {
    match e {
        Error::Parquet { source, .. } => Error::Parquet { what: format!("decoding lake object {key}"), source },
        e => e,
    }
}

/// An S3 client: signed requests sent with `ureq`.
pub struct Lake {
    bucket: Bucket,
    credentials: Credentials,
    agent: ureq::Agent,
    prefix: String,
}

const SIGNED_FOR: Duration = Duration::from_secs(600);

impl Lake {
    pub fn new(cfg: &LakeConfig) -> Result<Lake> {
        let url = cfg.endpoint.parse().map_err(|e| Error::S3 { what: format!("lake endpoint {:?}", cfg.endpoint), message: format!("{e}") })?;
        let bucket = Bucket::new(url, UrlStyle::Path, cfg.bucket.clone(), cfg.region.clone())
            .map_err(|e| Error::S3 { what: format!("bucket {:?}", cfg.bucket), message: e.to_string() })?;
        let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).http_status_as_error(false).build().into();
        Ok(Lake { bucket, credentials: Credentials::new(cfg.access_key.clone(), cfg.secret_key.clone()), agent, prefix: cfg.prefix.clone() })
    }

    fn check(what: &str, resp: Result<http::Response<ureq::Body>, ureq::Error>, ok: &[u16]) -> Result<String> {
        let mut resp = resp.map_err(|e| Error::S3 { what: what.into(), message: e.to_string() })?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        if ok.contains(&status) {
            Ok(body)
        } else {
            Err(Error::S3Status { what: what.into(), status, body: body.chars().take(300).collect() })
        }
    }

    /// Creates the bucket if it does not exist.
    pub fn ensure_bucket(&self) -> Result<()> {
        let url = CreateBucket::new(&self.bucket, &self.credentials).sign(SIGNED_FOR);
        let resp = self.agent.put(url.as_str()).send_empty();
        Lake::check(&format!("creating bucket {}", self.bucket.name()), resp, &[200, 409]).map(|_| ())
    }

    /// Every object key under `prefix`.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let body = Lake::check(&format!("listing {prefix}"), self.agent.get(url.as_str()).call(), &[200])?;
            let parsed = ListObjectsV2::parse_response(&body).map_err(|e| Error::S3 { what: format!("listing {prefix}"), message: e.to_string() })?;
            keys.extend(parsed.contents.into_iter().map(|o| o.key));
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }

    /// Writes `key` with `If-None-Match: *`. A 409 (a conflicting conditional write still in
    /// progress, as AWS S3 answers) counts as the key being taken as well.
    pub fn put_new(&self, key: &str, bytes: &[u8]) -> Result<Put> {
        let mut action = PutObject::new(&self.bucket, Some(&self.credentials), key);
        action.headers_mut().insert("if-none-match", "*");
        let url = action.sign(SIGNED_FOR);
        let resp = self.agent.put(url.as_str()).header("if-none-match", "*").send(bytes);
        match Lake::check(&format!("PUT {key}"), resp, &[200]) {
            Ok(_) => Ok(Put::Created),
            Err(e) if e.is_s3_status(412) || e.is_s3_status(409) => Ok(Put::Exists),
            Err(e) => Err(e),
        }
    }

    /// Refuses an endpoint that ignores `If-None-Match`: a second create-only PUT of one probe
    /// key (`<prefix>.conditional-write-probe`, outside the data's prefix) must be refused.
    pub fn ensure_conditional_writes(&self) -> Result<()> {
        let key = format!("{}.conditional-write-probe", self.prefix);
        self.put_new(&key, b"probe")?;
        match self.put_new(&key, b"probe")? {
            Put::Exists => Ok(()),
            Put::Created => Err(Error::S3Unsuitable {
                endpoint: self.bucket.base_url().to_string(),
                message: format!(
                    "ignores If-None-Match (it overwrote {key}): the lake sink needs conditional writes (AWS S3, MinIO and SeaweedFS have them) to write each change exactly once"
                ),
            }),
        }
    }

    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let url = rusty_s3::actions::GetObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNED_FOR);
        let what = || format!("GET {key}");
        let mut resp = self.agent.get(url.as_str()).call().map_err(|e| Error::S3 { what: what(), message: e.to_string() })?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            return Err(Error::S3Status { what: what(), status, body: body.chars().take(300).collect() });
        }
        resp.body_mut().with_config().limit(1 << 30).read_to_vec().map_err(|e| Error::S3 { what: what(), message: e.to_string() })
    }

    /// Every change stored in the lake, in offset order.
    pub fn read_all(&self) -> Result<Vec<LakeRow>> {
        let mut keys = self.list(&format!("{}/", self.prefix))?;
        keys.sort();
        let mut rows = Vec::new();
        for k in keys {
            rows.extend(decode(self.get(&k)?).map_err(|e| in_object(&k, e))?);
        }
        Ok(rows)
    }
}

impl Store for Lake {
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Lake::list(self, prefix)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        Lake::get(self, key)
    }
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<Put> {
        Lake::put_new(self, key, bytes)
    }
}

/// Runs the lake sink until `stop` is set; failures restart the session from the bucket's state.
pub fn run(files: &ClientFiles, cfg: &LakeConfig, metrics: &Metrics, stop: &AtomicBool) -> Result<()> {
    supervise("lake", metrics, stop, || session(files, cfg, metrics, stop))
}

fn session(files: &ClientFiles, cfg: &LakeConfig, metrics: &Metrics, stop: &AtomicBool) -> Result<(), LoopError> {
    let lake = Lake::new(cfg).map_err(LoopError::Fatal)?;
    lake.ensure_bucket().map_err(LoopError::Retry)?;
    lake.ensure_conditional_writes().map_err(LoopError::Retry)?;
    let consumer: BaseConsumer = files.consumer_config("cdc-chaos-lake").create().map_err(|e| Error::kafka("consumer", e))?;
    let md = consumer.fetch_metadata(Some(OUTPUT), Duration::from_secs(10)).map_err(|e| Error::kafka(format!("metadata of {OUTPUT}"), e))?;
    let topic = md.topics().first().filter(|t| t.error().is_none()).ok_or_else(|| Error::Topic { topic: OUTPUT.into(), message: "missing".into() })?;
    let mut tpl = TopicPartitionList::new();
    for p in topic.partitions() {
        let done = stored_through(&lake, &cfg.prefix, p.id()).map_err(LoopError::Retry)?;
        tpl.add_partition_offset(OUTPUT, p.id(), done.map(|l| Offset::Offset(l + 1)).unwrap_or(Offset::Beginning)).expect("offset");
    }
    consumer.assign(&tpl).map_err(|e| Error::kafka("assign", e))?;
    metrics.ready.store(1, Ordering::Relaxed);
    tracing::info!("lake session: resuming at {tpl:?}");

    while !stop.load(Ordering::Relaxed) {
        let mut batch: std::collections::BTreeMap<i32, Vec<LakeRow>> = Default::default();
        for m in collect_batch(&consumer, cfg.batch_max, cfg.batch_wait)? {
            let Some(payload) = m.payload() else { continue };
            let rec = match parse_change(payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("{OUTPUT}/{}/{}: {e}", m.partition(), m.offset());
                    metrics.dead_letters.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            batch.entry(m.partition()).or_default().push(LakeRow {
                database: rec.event.database.to_string(),
                tx: rec.event.tx.clone(),
                table_name: rec.event.table.as_str().into(),
                pk: rec.event.pk,
                op: rec.op.as_str().into(),
                position: rec.position.clone(),
                source_ts_us: rec.source_ts_us,
                join_ts_us: rec.join_ts_us,
                kafka_partition: m.partition(),
                kafka_offset: m.offset(),
                documents: serde_json::to_string(&rec.documents).expect("json"),
                sink_ts_us: 0,
                write_id: rec.event.write_id.unwrap_or(0),
            });
            metrics.records_in.fetch_add(1, Ordering::Relaxed);
        }
        for (partition, mut rows) in batch {
            let written = crate::record::now_us();
            rows.iter_mut().for_each(|r| r.sink_ts_us = written);
            let t = Instant::now();
            if append(&lake, &cfg.prefix, partition, &rows).map_err(LoopError::Retry)? == Put::Exists {
                return Err(LoopError::Retry(Error::S3Status {
                    what: format!("PUT {}", object_key(&cfg.prefix, partition, rows[0].kafka_offset)),
                    status: 412,
                    body: "the key exists: another writer (a killed sink's late PUT, or a second sink) appended it first; resuming from the bucket".into(),
                }));
            }
            metrics.observe_commit(t.elapsed().as_secs_f64());
            metrics.commits.fetch_add(1, Ordering::Relaxed);
            metrics.events_out.fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(offset: i64) -> LakeRow {
        LakeRow {
            database: "crm".into(),
            tx: format!("{}", 700 + offset),
            table_name: "customers".into(),
            pk: offset * 3,
            op: "upsert".into(),
            position: format!("lsn:{offset}"),
            source_ts_us: 1_700_000_000_000_000 + offset,
            join_ts_us: 1_700_000_000_100_000 + offset,
            kafka_partition: 0,
            kafka_offset: offset,
            documents: format!("[{{\"customer_id\":{offset},\"document\":null}}]"),
            sink_ts_us: 1_700_000_000_200_000 + offset,
            write_id: (7 << 32) + offset,
        }
    }

    #[test]
    fn parquet_round_trips() {
        let rows: Vec<LakeRow> = (0..50).map(row).collect();
        let bytes = encode(&rows).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(decode(bytes).unwrap(), rows);
    }

    #[test]
    fn object_keys_carry_and_sort_by_offsets() {
        let k = object_key("customer_360", 0, 7);
        assert_eq!(k, "customer_360/partition=0/00000000000000000007.parquet");
        assert_eq!(parse_object_key(&k), Some((0, 7)));
        assert_eq!(parse_object_key("customer_360/partition=2/00000000000000000007-00000000000000000120.parquet"), Some((2, 7)));
        assert!(object_key("p", 0, 9) < object_key("p", 0, 100));
        assert_eq!(parse_object_key("customer_360/partition=0/garbage.parquet"), None);
    }

    /// An object store with S3's create-only semantics.
    #[derive(Default)]
    struct MemStore(std::cell::RefCell<std::collections::BTreeMap<String, Vec<u8>>>);

    impl Store for MemStore {
        fn list(&self, prefix: &str) -> Result<Vec<String>> {
            Ok(self.0.borrow().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
        }
        fn get(&self, key: &str) -> Result<Vec<u8>> {
            self.0.borrow().get(key).cloned().ok_or_else(|| Error::S3Status { what: format!("GET {key}"), status: 404, body: String::new() })
        }
        fn put_new(&self, key: &str, bytes: &[u8]) -> Result<Put> {
            let mut m = self.0.borrow_mut();
            if m.contains_key(key) {
                return Ok(Put::Exists);
            }
            m.insert(key.into(), bytes.to_vec());
            Ok(Put::Created)
        }
    }

    /// One sink session over the committed records `log` (offsets with gaps where transaction
    /// markers are): resume from the store, append batches of the given sizes; returns false when
    /// an append found its key taken (the session would restart). With `die_after`, the session is
    /// killed with its next batch's PUT in flight, which it returns to be landed later.
    fn sink_session(store: &MemStore, log: &[i64], sizes: &[usize], die_after: Option<usize>) -> (bool, Option<(String, Vec<u8>)>) {
        let resume = stored_through(store, "p", 0).unwrap().map(|o| o + 1).unwrap_or(0);
        let mut pending: &[i64] = &log[log.partition_point(|&o| o < resume)..];
        for (i, &n) in sizes.iter().enumerate() {
            if pending.is_empty() {
                break;
            }
            let (batch, rest) = pending.split_at(n.min(pending.len()));
            let rows: Vec<LakeRow> = batch.iter().map(|&o| row(o)).collect();
            if die_after == Some(i) {
                return (true, Some((object_key("p", 0, batch[0]), encode(&rows).unwrap())));
            }
            if append(store, "p", 0, &rows).unwrap() == Put::Exists {
                return (false, None);
            }
            pending = rest;
        }
        (true, None)
    }

    proptest::proptest! {
        /// However killed sinks' late PUTs interleave with their successors' sessions, the
        /// objects read in key order hold every committed record once, in offset order.
        #[test]
        fn late_puts_of_killed_sinks_neither_duplicate_nor_lose(
            gaps in proptest::collection::vec(1i64..3, 1..120),
            crashes in proptest::collection::vec(
                (proptest::collection::vec(1usize..30, 1..8), 0usize..8, 0usize..4, proptest::collection::vec(1usize..30, 0..4)),
                0..5,
            ),
        ) {
            let log: Vec<i64> = gaps.iter().scan(0i64, |o, g| { *o += g; Some(*o) }).collect();
            let store = MemStore::default();
            for (sizes, die_after, land_after, before) in &crashes {
                let (_, late) = sink_session(&store, &log, sizes, Some(*die_after));
                // The successor starts, possibly writes some batches, then the late PUT lands.
                let head: Vec<usize> = before.iter().copied().take(*land_after).collect();
                sink_session(&store, &log, &head, None);
                if let Some((key, bytes)) = late {
                    store.put_new(&key, &bytes).unwrap();
                }
            }
            // Sessions that lost a race restart from the bucket until the log is written.
            for _ in 0..log.len() + 2 {
                if sink_session(&store, &log, &[7; 200], None).0 {
                    break;
                }
            }
            let mut stored = Vec::new();
            for key in store.list("p/").unwrap() {
                stored.extend(decode(store.get(&key).unwrap()).unwrap().into_iter().map(|r| r.kafka_offset));
            }
            proptest::prop_assert_eq!(stored, log);
        }
    }
}
