//! Wire formats of the pipeline's output topics: one [`ChangeRecord`] on `customer_360.changes`
//! per input change, one [`DeadLetter`] on `customer_360.dead-letter` per record that could not be
//! decoded. The sinks and the checker read these; the join writes them.

use crate::decode::{Change, EventId, Op};
use crate::join::DocumentChange;

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
        format!("{}:{}", self.event.table.as_str(), self.event.pk)
    }
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
