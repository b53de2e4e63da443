//! Wire formats of the pipeline's output topics: one [`ChangeRecord`] on `customer_360.changes`
//! per input change, one [`DeadLetter`] on `customer_360.dead-letter` per record that could not be
//! decoded. The sinks and the checker read these; the join writes them.

use crate::decode::{Change, EventId, Op};
use crate::join::{DocumentChange, JoinState, Touched};

/// Where a record came from in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coordinates {
    /// A raw CDC topic's name is kept without a copy (see [`Coordinates::of`]).
    pub topic: std::borrow::Cow<'static, str>,
    pub partition: i32,
    pub offset: i64,
}

impl Coordinates {
    /// The coordinates of a record of `topic`: the name of one of the raw CDC topics is borrowed,
    /// any other copied.
    pub fn of(topic: &str, partition: i32, offset: i64) -> Coordinates {
        let topic = match crate::decode::Table::of_topic(topic) {
            Some(table) => table.topic().into(),
            None => topic.to_string().into(),
        };
        Coordinates { topic, partition, offset }
    }
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

/// The bytes of the [`ChangeRecord`] of a change `state` has just applied ([`JoinState::update`]
/// gave `touched`): what serializing `ChangeRecord::new` with its documents gives, each document
/// written from the state's row texts straight into the record instead of being parsed and
/// rendered again.
pub fn encode(change: &Change, state: &JoinState, touched: &Touched, input: &Coordinates, join_ts_us: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + 1536 * touched.len());
    encode_into(&mut out, change, state, touched, input, join_ts_us);
    out
}

/// [`encode`], appending to `out`: the join's loop keeps one buffer for every record it produces
/// (the producer copies the bytes).
pub fn encode_into(out: &mut Vec<u8>, change: &Change, state: &JoinState, touched: &Touched, input: &Coordinates, join_ts_us: i64) {
    write_head(out, change, input, join_ts_us);
    for (i, customer_id) in touched.ids().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"customer_id\":");
        integer(out, customer_id);
        out.extend_from_slice(b",\"document\":");
        if !state.write_document(customer_id, out) {
            out.extend_from_slice(b"null");
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// Writes a [`ChangeRecord`]'s fields before its documents, in its order, and opens the
/// `documents` array: the field names are constants, the values are written as serde_json
/// writes them (`ChangeRecord`'s derived form; `write_id` left out when there is none).
fn write_head(out: &mut Vec<u8>, change: &Change, input: &Coordinates, join_ts_us: i64) {
    let id = &change.id;
    out.extend_from_slice(b"{\"event\":{\"database\":");
    string(out, &id.database);
    out.extend_from_slice(b",\"tx\":");
    string(out, &id.tx);
    out.extend_from_slice(b",\"table\":");
    name(out, id.table.as_str());
    out.extend_from_slice(b",\"pk\":");
    integer(out, id.pk);
    if let Some(w) = id.write_id {
        out.extend_from_slice(b",\"write_id\":");
        integer(out, w);
    }
    out.extend_from_slice(b"},\"op\":");
    name(out, change.op.as_str());
    out.extend_from_slice(b",\"position\":");
    string(out, &change.position);
    out.extend_from_slice(b",\"source_ts_us\":");
    integer(out, change.source_ts_us);
    out.extend_from_slice(b",\"join_ts_us\":");
    integer(out, join_ts_us);
    out.extend_from_slice(b",\"input\":{\"topic\":");
    string(out, &input.topic);
    out.extend_from_slice(b",\"partition\":");
    integer(out, i64::from(input.partition));
    out.extend_from_slice(b",\"offset\":");
    integer(out, input.offset);
    out.extend_from_slice(b"},\"documents\":[");
}

/// One of the pipeline's own names (a table, an op): quoted, nothing in it to escape.
fn name(out: &mut Vec<u8>, name: &'static str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

/// A JSON string: as is between quotes when nothing in it needs escaping, else as serde_json
/// escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec");
    }
}

fn integer(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Row, Table};

    /// Identity fields carry whatever the sources put there: the head escapes what JSON must.
    #[test]
    fn heads_with_characters_to_escape_read_back() {
        for text in ["plain", "a\"quote", "back\\slash", "new\nline", "tab\t\u{1}", "é ü 😀", ""] {
            let change = Change {
                id: EventId { database: text.into(), tx: text.into(), table: Table::Vehicles, pk: -3, write_id: Some(i64::MAX) },
                op: Op::Delete,
                row: Row::parse(r#"{"id": -3, "customer_id": 1}"#).unwrap(),
                source_ts_us: i64::MIN,
                position: text.into(),
            };
            let input = Coordinates { topic: text.into(), partition: i32::MAX, offset: 0 };
            // An orphan vehicle's delete: no document, the head alone.
            let mut state = JoinState::new();
            let touched = state.update(&change);
            let bytes = encode(&change, &state, &touched, &input, 5);
            assert_eq!(parse_change(&bytes).unwrap(), ChangeRecord::new(&change, vec![], input, 5), "{text:?}");
        }
    }
}
