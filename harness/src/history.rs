//! The run's history: every operation the load generator intended and what became of it.
//!
//! One operation is one source-database transaction of one or more row changes. It is recorded as
//! it happens, as two JSON lines in `history.jsonl`: an `invoke` line (intended time — for
//! coordinated-omission correction —, invoke time, the rows) when it is sent, and a completion line
//! (`ok`, `fail` or `unknown`, with the transaction id and which rows changed) when it returns. A
//! timeout or a lost connection during commit is `unknown`, never `fail`; an invoke without a
//! completion (the harness died) reads back as `unknown` too.
//!
//! Owns the event identity as the checker uses it: [`EventKey`] — table (which names the
//! database), primary key, the writing operation's [`WriteId`] and upsert/delete, packed into a
//! `Copy` value, so that ten million of them fit in a hash map. The source transaction id
//! (PostgreSQL xid, MariaDB GTID) is recorded for people reading the history, not for identity.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::Path;

use cdc_pipeline::decode::Table;

use crate::{Error, Result};

/// The write id of an operation: a value unique to one operation of one run, which the load
/// generator writes into the `write_id` column of every row the operation changes (a delete
/// first sets it, then deletes the row, so the delete's before image carries it too). Every event
/// a hop delivers is attributed by it to exactly one operation of exactly one run, whatever the
/// operation's outcome and without the source's transaction id. Packed as `run << 32 | index`:
/// the run's tag ([`run_tag`]) and the operation's index; 0 is no write id (a row not written by
/// the harness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WriteId(pub u64);

impl WriteId {
    /// No write id: the row was written by someone other than the load generator.
    pub const NONE: WriteId = WriteId(0);

    /// The write id of operation `index` of the run tagged `run` (tags are nonzero and below
    /// 2^31, so the value is a positive BIGINT).
    pub fn new(run: u32, index: u64) -> WriteId {
        debug_assert!(run != 0 && run < 1 << 31, "run tag {run}");
        WriteId(u64::from(run) << 32 | (index & 0xffff_ffff))
    }

    /// From the `write_id` column: NULL or a value that is no write id is [`WriteId::NONE`].
    pub fn from_column(v: Option<i64>) -> WriteId {
        match v {
            Some(x) if x > 0 && (x >> 32) != 0 => WriteId(x as u64),
            _ => WriteId::NONE,
        }
    }

    /// The value written to the `write_id` column.
    pub fn column(self) -> i64 {
        self.0 as i64
    }

    /// The run's tag (0 for no write id).
    pub fn run(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The operation's index within its run.
    pub fn index(self) -> u64 {
        self.0 & 0xffff_ffff
    }

    pub fn is_none(self) -> bool {
        self.run() == 0
    }
}

impl fmt::Display for WriteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            write!(f, "none")
        } else {
            write!(f, "{}.{}", self.run(), self.index())
        }
    }
}

impl std::str::FromStr for WriteId {
    type Err = String;

    /// The form of [`fmt::Display`]: `run.index`, or `none`.
    fn from_str(s: &str) -> std::result::Result<WriteId, String> {
        if s == "none" {
            return Ok(WriteId::NONE);
        }
        let bad = || format!("write id {s:?} is not `run.index` or `none`");
        let (run, index) = s.split_once('.').ok_or_else(bad)?;
        let run: u32 = run.parse().map_err(|_| bad())?;
        let index: u64 = index.parse().map_err(|_| bad())?;
        if run == 0 || run >= 1 << 31 || index > 0xffff_ffff {
            return Err(bad());
        }
        Ok(WriteId::new(run, index))
    }
}

/// The tag of a run that started at `start_us` (µs since the epoch): seconds since 2020-01-01,
/// so that runs on one stack, which never start in the same second, have distinct tags, and an
/// earlier run's tag is smaller. Valid until 2088.
pub fn run_tag(start_us: i64) -> u32 {
    const EPOCH_2020_S: i64 = 1_577_836_800;
    (start_us / 1_000_000 - EPOCH_2020_S).clamp(1, (1 << 31) - 1) as u32
}

/// What an event did to its row, as a hop reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventOp {
    /// Insert or update: the row now exists.
    Upsert,
    /// The row is gone.
    Delete,
}

impl EventOp {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOp::Upsert => "upsert",
            EventOp::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<EventOp> {
        match s {
            "upsert" => Some(EventOp::Upsert),
            "delete" => Some(EventOp::Delete),
            _ => None,
        }
    }

    /// The other operation.
    pub fn flipped(self) -> EventOp {
        match self {
            EventOp::Upsert => EventOp::Delete,
            EventOp::Delete => EventOp::Upsert,
        }
    }
}

/// Identity of one row change (docs/architecture.md, Semantics), compact: the row, the operation that wrote it (its
/// write id) and what it did. An operation's row yields one event (`upsert`), or two for a delete
/// (the `upsert` setting the write id, then the `delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub table: Table,
    pub pk: i64,
    pub write: WriteId,
    pub op: EventOp,
}

impl EventKey {
    pub fn database(&self) -> &'static str {
        self.table.database()
    }

    /// The row this event changed: (table, pk). Ordering is checked per row.
    pub fn row(&self) -> (Table, i64) {
        (self.table, self.pk)
    }
}

impl fmt::Display for EventKey {
    /// `database/table:pk/op/write`, e.g. `crm/customers:7/upsert/217000000.42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}/{}/{}", self.database(), self.table.as_str(), self.pk, self.op.as_str(), self.write)
    }
}

/// What the load generator meant to do to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Insert (an upsert: if the row exists it is updated, still one change).
    Insert,
    Update,
    Delete,
    /// Move a flight or vehicle to another customer.
    Move,
}

/// One row of an operation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RowOp {
    pub table: Table,
    pub pk: i64,
    pub kind: Kind,
    /// The customer a flight or vehicle gets (insert, move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<i64>,
    /// Whether the row changed (known for `ok` operations): an update or delete of a missing
    /// row changes nothing and is no event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected: Option<bool>,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Committed and acknowledged by the database.
    Ok,
    /// Definitely not committed (refused, rolled back, or never sent).
    Fail,
    /// May or may not have committed (timeout or connection lost during commit).
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Which part of the run an operation belongs to. Warm-up operations are checked for
/// exactly-once delivery but are not part of latency and throughput figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Warmup,
    Load,
}

/// One operation, invoke and completion merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Position in the seed-driven sequence of intended operations.
    pub index: u64,
    pub worker: String,
    pub phase: Phase,
    /// When the open-loop schedule meant to send it, µs since the epoch.
    pub intended_us: i64,
    pub invoke_us: i64,
    /// When the database answered (None if it never did).
    pub complete_us: Option<i64>,
    pub outcome: Outcome,
    /// The source transaction, when known (PostgreSQL: before commit; MariaDB: after).
    pub tx: Option<String>,
    /// The value the operation wrote into `write_id` (None in histories that predate it).
    pub write_id: Option<WriteId>,
    pub rows: Vec<RowOp>,
    pub error: Option<String>,
}

impl Operation {
    /// The source database of the operation's rows.
    pub fn database(&self) -> &'static str {
        self.rows.first().map(|r| r.table.database()).unwrap_or("crm")
    }

    /// The events `row` makes if it changes: an upsert, or for a delete the upsert setting the
    /// write id and then the delete. None without a write id.
    pub fn row_events(&self, row: &RowOp) -> impl Iterator<Item = EventKey> {
        let (table, pk) = (row.table, row.pk);
        let ops: &[EventOp] = if row.kind == Kind::Delete { &[EventOp::Upsert, EventOp::Delete] } else { &[EventOp::Upsert] };
        let write = self.write_id;
        ops.iter().filter_map(move |&op| Some(EventKey { table, pk, write: write?, op }))
    }

    /// The acknowledged events: those of rows that changed in an `ok` operation, in commit order
    /// within the transaction.
    pub fn events(&self) -> impl Iterator<Item = EventKey> + '_ {
        let ok = self.outcome == Outcome::Ok;
        self.rows.iter().filter(move |r| ok && r.affected == Some(true)).flat_map(move |r| self.row_events(r))
    }
}

/// A line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Invoke {
        index: u64,
        worker: String,
        phase: Phase,
        intended_us: i64,
        time_us: i64,
        /// The operation's [`WriteId`] (as its column value).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        write_id: Option<u64>,
        rows: Vec<RowOp>,
    },
    Ok { index: u64, time_us: i64, tx: Option<String>, affected: Vec<bool> },
    Fail { index: u64, time_us: i64, error: String },
    Unknown { index: u64, time_us: i64, tx: Option<String>, error: String },
}

/// Appends history lines to a file as they happen.
pub struct HistoryWriter {
    out: BufWriter<std::fs::File>,
    path: std::path::PathBuf,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> Result<HistoryWriter> {
        let f = std::fs::File::create(path).map_err(|e| Error::io("creating the history", path, e))?;
        Ok(HistoryWriter { out: BufWriter::new(f), path: path.to_path_buf() })
    }

    pub fn write(&mut self, line: &Line) -> Result<()> {
        let mut s = serde_json::to_string(line).expect("history lines serialize");
        s.push('\n');
        self.out.write_all(s.as_bytes()).map_err(|e| Error::io("writing the history", &self.path, e))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io("writing the history", &self.path, e))
    }
}

/// The kind of a history line (its `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineType {
    Invoke,
    Ok,
    Fail,
    Unknown,
}

/// A history line as read: every variant's fields flat, so that a line deserializes in one pass
/// (an internally tagged enum buffers each line before deserializing it); which fields a `type`
/// needs is checked after.
#[derive(serde::Deserialize)]
struct FlatLine<'a> {
    #[serde(rename = "type")]
    kind: LineType,
    index: u64,
    time_us: i64,
    #[serde(default, borrow)]
    worker: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    phase: Option<Phase>,
    #[serde(default)]
    intended_us: Option<i64>,
    #[serde(default)]
    write_id: Option<u64>,
    #[serde(default)]
    rows: Option<Vec<RowOp>>,
    #[serde(default, borrow)]
    tx: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    affected: Option<Vec<bool>>,
    #[serde(default, borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
}

/// Reads a history file: operations in index order. A completion without its invoke, a bad line
/// or a duplicate completion is an error naming the line. The lines are parsed on a second
/// thread while this one merges invokes and completions into operations ([`crate::lines`]).
pub fn read(path: &Path) -> Result<Vec<Operation>> {
    let expected = std::fs::metadata(path).map(|m| m.len() / 300).unwrap_or(0) as usize;
    let mut ops: Vec<Operation> = Vec::with_capacity(expected);
    let mut slot: rustc_hash::FxHashMap<u64, u32> = rustc_hash::FxHashMap::with_capacity_and_hasher(expected, Default::default());
    let parse = |n: usize, l: &str| if l.trim().is_empty() { Ok(None) } else { parse_line(l).map(|line| Some((n, line))) };
    crate::lines::parse(path, "the history", parse, |(n, line)| {
        merge(&mut ops, &mut slot, line).map_err(|m| Error::record(path, Some(n), m))
    })?;
    for op in ops.iter_mut().filter(|o| o.complete_us.is_none()) {
        op.error = Some("no completion recorded".into());
    }
    ops.sort_by_key(|o| o.index);
    Ok(ops)
}

/// Parses one line of `history.jsonl`.
fn parse_line(line: &str) -> std::result::Result<Line, String> {
    let p: FlatLine = serde_json::from_str(line).map_err(|e| format!("not a history line: {e}"))?;
    let (kind, index, time_us) = (p.kind, p.index, p.time_us);
    let missing = |field: &str| format!("not a history line: {kind:?} line of operation {index} without `{field}`");
    let text = |v: Option<std::borrow::Cow<'_, str>>, field: &str| v.map(String::from).ok_or_else(|| missing(field));
    Ok(match kind {
        LineType::Invoke => Line::Invoke {
            index,
            worker: text(p.worker, "worker")?,
            phase: p.phase.ok_or_else(|| missing("phase"))?,
            intended_us: p.intended_us.ok_or_else(|| missing("intended_us"))?,
            time_us,
            write_id: p.write_id,
            rows: p.rows.ok_or_else(|| missing("rows"))?,
        },
        LineType::Ok => Line::Ok { index, time_us, tx: p.tx.map(String::from), affected: p.affected.ok_or_else(|| missing("affected"))? },
        LineType::Fail => Line::Fail { index, time_us, error: text(p.error, "error")? },
        LineType::Unknown => Line::Unknown { index, time_us, tx: p.tx.map(String::from), error: text(p.error, "error")? },
    })
}

/// Merges one line into the operations read so far (`slot`: index → position in `ops`).
fn merge(ops: &mut Vec<Operation>, slot: &mut rustc_hash::FxHashMap<u64, u32>, line: Line) -> std::result::Result<(), String> {
    let (index, time_us) = match &line {
        Line::Invoke { index, time_us, .. } | Line::Ok { index, time_us, .. } | Line::Fail { index, time_us, .. } | Line::Unknown { index, time_us, .. } => {
            (*index, *time_us)
        }
    };
    if let Line::Invoke { worker, phase, intended_us, write_id, rows, .. } = line {
        if slot.contains_key(&index) {
            return Err(format!("operation {index} invoked twice"));
        }
        let position = u32::try_from(ops.len()).map_err(|_| "more than 2^32 operations".to_string())?;
        slot.insert(index, position);
        ops.push(Operation {
            index,
            worker,
            phase,
            intended_us,
            invoke_us: time_us,
            complete_us: None,
            outcome: Outcome::Unknown,
            tx: None,
            write_id: write_id.map(WriteId).filter(|w| !w.is_none()),
            rows,
            error: None,
        });
        return Ok(());
    }
    let op = match slot.get(&index) {
        Some(&p) => &mut ops[p as usize],
        None => return Err(format!("completion of operation {index}, which was never invoked")),
    };
    if op.complete_us.is_some() {
        return Err(format!("operation {index} completed twice"));
    }
    op.complete_us = Some(time_us);
    match line {
        Line::Ok { tx, affected, .. } => {
            if affected.len() != op.rows.len() {
                return Err(format!("operation {index}: {} affected flags for {} rows", affected.len(), op.rows.len()));
            }
            for (r, a) in op.rows.iter_mut().zip(affected) {
                r.affected = Some(a);
            }
            op.outcome = Outcome::Ok;
            op.tx = tx;
        }
        Line::Fail { error, .. } => {
            op.outcome = Outcome::Fail;
            op.error = Some(error);
        }
        Line::Unknown { tx, error, .. } => {
            op.outcome = Outcome::Unknown;
            op.tx = tx;
            op.error = Some(error);
        }
        Line::Invoke { .. } => unreachable!("handled above"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn write_ids_round_trip(run in 1u32..(1 << 31), index in 0u64..=0xffff_ffff) {
            let w = WriteId::new(run, index);
            prop_assert_eq!((w.run(), w.index()), (run, index));
            prop_assert!(w.column() > 0);
            prop_assert_eq!(WriteId::from_column(Some(w.column())), w);
            prop_assert_eq!(w.to_string().parse::<WriteId>(), Ok(w));
        }
    }

    #[test]
    fn values_that_are_no_write_id_read_as_none() {
        for v in [None, Some(0), Some(-5), Some(17)] {
            assert_eq!(WriteId::from_column(v), WriteId::NONE, "{v:?}");
        }
        assert_eq!("none".parse::<WriteId>(), Ok(WriteId::NONE));
        for bad in ["", "1", "0.5", "x.1", "1.x", "2147483648.1", "1.4294967296"] {
            assert!(bad.parse::<WriteId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn run_tags_are_seconds_since_2020_and_grow() {
        assert_eq!(run_tag(1_577_836_801_000_000), 1);
        assert!(run_tag(1_800_000_000_000_000) < run_tag(1_800_000_001_000_000));
        assert_eq!(run_tag(0), 1, "clamped, never 0");
    }

    fn write_lines(lines: &[Line]) -> (tempdir::Dir, std::path::PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("history.jsonl");
        let mut w = HistoryWriter::create(&path).unwrap();
        for l in lines {
            w.write(l).unwrap();
        }
        w.flush().unwrap();
        (dir, path)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir().join(format!("cdc-chaos-history-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn invoke(index: u64, rows: Vec<RowOp>) -> Line {
        Line::Invoke { index, worker: "crm-0".into(), phase: Phase::Load, intended_us: 10, time_us: 11, write_id: Some(WriteId::new(9, index).0), rows }
    }

    fn row(table: Table, pk: i64, kind: Kind) -> RowOp {
        RowOp { table, pk, kind, customer_id: None, affected: None }
    }

    #[test]
    fn merges_invokes_and_completions_and_yields_acknowledged_events() {
        let (_d, path) = write_lines(&[
            invoke(0, vec![row(Table::Customers, 1, Kind::Insert), row(Table::Flights, 2, Kind::Update)]),
            invoke(1, vec![row(Table::Vehicles, 3, Kind::Delete)]),
            invoke(2, vec![row(Table::Customers, 4, Kind::Insert)]),
            Line::Ok { index: 0, time_us: 20, tx: Some("77".into()), affected: vec![true, false] },
            Line::Unknown { index: 1, time_us: 30, tx: None, error: "connection lost".into() },
        ]);
        let ops = read(&path).unwrap();
        assert_eq!(ops.len(), 3);
        let events: Vec<EventKey> = ops[0].events().collect();
        assert_eq!(events, vec![EventKey { table: Table::Customers, pk: 1, write: WriteId::new(9, 0), op: EventOp::Upsert }]);
        assert_eq!(events[0].to_string(), "crm/customers:1/upsert/9.0");
        assert_eq!((ops[0].tx.as_deref(), ops[0].write_id), (Some("77"), Some(WriteId::new(9, 0))));
        assert_eq!((ops[1].outcome, ops[1].events().count()), (Outcome::Unknown, 0));
        // A delete is two events: the upsert that sets the write id, then the delete.
        let deleted: Vec<String> = ops[1].row_events(&ops[1].rows[0]).map(|k| k.to_string()).collect();
        assert_eq!(deleted, vec!["fleet/vehicles:3/upsert/9.1", "fleet/vehicles:3/delete/9.1"]);
        assert_eq!(ops[2].outcome, Outcome::Unknown, "an invoke without completion is unknown");
        assert_eq!(ops[2].complete_us, None);
    }

    #[test]
    fn inconsistent_histories_name_the_line() {
        let (_d, path) = write_lines(&[Line::Ok { index: 5, time_us: 1, tx: None, affected: vec![] }]);
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("never invoked"), "{e}");
        let (_d, path) = write_lines(&[
            invoke(0, vec![row(Table::Customers, 1, Kind::Insert)]),
            Line::Fail { index: 0, time_us: 2, error: "x".into() },
            Line::Fail { index: 0, time_us: 3, error: "x".into() },
        ]);
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(":3:") && e.contains("completed twice"), "{e}");
    }

    #[test]
    fn lines_missing_a_field_or_malformed_name_the_line_and_the_field() {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("history.jsonl");
        let good = serde_json::to_string(&invoke(0, vec![row(Table::Customers, 1, Kind::Insert)])).unwrap();
        for (second, wanted) in [
            (r#"{"type":"ok","index":0,"time_us":5,"tx":"9"}"#, "without `affected`"),
            (r#"{"type":"fail","index":0,"time_us":5}"#, "without `error`"),
            (r#"{"type":"invoke","index":1,"time_us":5,"worker":"w","phase":"load","intended_us":1}"#, "without `rows`"),
            (r#"{"type":"retry","index":0,"time_us":5}"#, "unknown variant"),
            (r#"{"type":"ok","index":0"#, "not a history line"),
        ] {
            std::fs::write(&path, format!("{good}\n\n{second}\n")).unwrap();
            let e = read(&path).unwrap_err().to_string();
            assert!(e.contains("history.jsonl:3:") && e.contains(wanted), "{second}: {e}");
        }
    }

    #[test]
    fn long_histories_read_back_whole_and_an_error_far_in_names_its_line() {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("history.jsonl");
        let mut w = HistoryWriter::create(&path).unwrap();
        let n = 3 * 8_192 + 17;
        for i in 0..n {
            w.write(&invoke(i, vec![row(Table::Flights, i as i64, Kind::Update)])).unwrap();
            w.write(&Line::Ok { index: i, time_us: 20 + i as i64, tx: Some((1000 + i).to_string()), affected: vec![true] }).unwrap();
        }
        w.flush().unwrap();
        let ops = read(&path).unwrap();
        assert_eq!(ops.len() as u64, n);
        assert!(ops.iter().enumerate().all(|(i, o)| o.index == i as u64 && o.outcome == Outcome::Ok && o.events().count() == 1));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"type\":\"ok\",\"index\":5,\"time_us\":1,\"tx\":null,\"affected\":[true]}\n");
        std::fs::write(&path, text).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(&format!("history.jsonl:{}:", 2 * n + 1)) && e.contains("completed twice"), "{e}");
    }
}
