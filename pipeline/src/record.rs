//! Wire formats of the pipeline's output topics: one [`ChangeRecord`] on `customer_360.changes`
//! per input change, one [`DeadLetter`] on `customer_360.dead-letter` per record that could not be
//! decoded. The sinks and the checker read these; the join writes them.

use std::io::Write as _;

use crate::decode::{Change, EventId, Op};
use crate::join::{DocumentChange, Output};

/// Where a record came from in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coordinates {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The join's output for one input change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangeRecord {
    pub event: EventId,
    pub op: Op,
    /// Position in the source log (LSN or binlog file:pos:row).
    pub position: String,
    /// Source commit time, µs since the epoch.
    pub source_ts_us: i64,
    /// When the join processed the change, µs since the epoch.
    pub join_ts_us: i64,
    /// The raw CDC record it came from.
    pub input: Coordinates,
    /// The documents the change affected: none, one or two.
    pub documents: Vec<DocumentChange>,
}

impl ChangeRecord {
    pub fn new(change: &Change, documents: Vec<DocumentChange>, input: Coordinates, join_ts_us: i64) -> ChangeRecord {
        ChangeRecord {
            event: change.id.clone(),
            op: change.op,
            position: change.position.clone(),
            source_ts_us: change.source_ts_us,
            join_ts_us,
            input,
            documents,
        }
    }

    /// Kafka key of the record: the source row (`table:pk`).
    pub fn key(&self) -> String {
        key(&self.event)
    }
}

/// Kafka key of the record of `event`: the source row (`table:pk`).
pub fn key(event: &EventId) -> String {
    format!("{}:{}", event.table.as_str(), event.pk)
}

/// The fields of a [`ChangeRecord`] before its documents, in its order.
#[derive(serde::Serialize)]
struct Head<'a> {
    event: &'a EventId,
    op: Op,
    position: &'a str,
    source_ts_us: i64,
    join_ts_us: i64,
    input: &'a Coordinates,
}

/// The bytes of the [`ChangeRecord`] of `change` and its join output: what serializing
/// `ChangeRecord::new(change, documents, input, join_ts_us)` gives, with the documents written
/// from the join's texts instead of being parsed and rendered again.
pub fn encode(change: &Change, output: &Output, input: &Coordinates, join_ts_us: i64) -> Vec<u8> {
    let head = Head { event: &change.id, op: change.op, position: &change.position, source_ts_us: change.source_ts_us, join_ts_us, input };
    let size = 256 + output.documents.iter().map(|d| d.document.as_ref().map_or(4, String::len) + 40).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    serde_json::to_writer(&mut out, &head).expect("a record head serializes");
    debug_assert_eq!(out.last(), Some(&b'}'));
    out.pop();
    out.extend_from_slice(b",\"documents\":[");
    for (i, d) in output.documents.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write!(out, "{{\"customer_id\":{},\"document\":", d.customer_id).expect("writing to a Vec");
        out.extend_from_slice(d.document.as_deref().unwrap_or("null").as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// A record the join could not decode, with the reason and its source coordinates.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub reason: String,
    pub input: Coordinates,
    /// The record's key and value, as text (lossy for non-UTF-8 bytes).
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Parses a `ChangeRecord` from JSON bytes.
pub fn parse_change(bytes: &[u8]) -> crate::error::Result<ChangeRecord> {
    serde_json::from_slice(bytes).map_err(|source| crate::error::Error::ChangeRecord { source })
}
