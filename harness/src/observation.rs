//! What each hop of the pipeline holds after a run: one [`Observation`] per record that carries an
//! event, in the hop's own order, saved as `observed/<hop>.tsv` in the run directory so that
//! `cdc-chaos check` can re-check a run without the stack.
//!
//! The hops, in pipeline order: `raw` (the Debezium topics), `changes` (the join's output topic),
//! then the two sinks fed from it, `warehouse` (the applied-event log) and `lake` (the Parquet
//! objects). Order within a file is the hop's delivery order: by partition then offset for
//! topics, by `seq` for the warehouse log, by offset for the lake. A row always lives in one
//! partition, so per-row order is the file's order.

use std::io::{BufWriter, Write};
use std::path::Path;

use cdc_pipeline::decode::Table;

use crate::history::{EventKey, EventOp, WriteId};
use crate::{Error, Result};

/// A hop of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hop {
    Raw,
    Changes,
    Warehouse,
    Lake,
}

impl Hop {
    pub const ALL: [Hop; 4] = [Hop::Raw, Hop::Changes, Hop::Warehouse, Hop::Lake];

    pub fn as_str(self) -> &'static str {
        match self {
            Hop::Raw => "raw",
            Hop::Changes => "changes",
            Hop::Warehouse => "warehouse",
            Hop::Lake => "lake",
        }
    }

    /// The hop an event passes through before this one (the sinks both read `changes`).
    pub fn upstream(self) -> Option<Hop> {
        match self {
            Hop::Raw => None,
            Hop::Changes => Some(Hop::Raw),
            Hop::Warehouse | Hop::Lake => Some(Hop::Changes),
        }
    }

    /// The file of this hop in a run directory.
    pub fn file(self, run_dir: &Path) -> std::path::PathBuf {
        crate::run_dir::RunDir::new(run_dir).observed(self.as_str())
    }
}

/// One event-carrying record of a hop: the event (whose [`EventKey::op`] is the operation the
/// hop reports) and where the hop holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub key: EventKey,
    /// Kafka partition (raw, changes, lake) or 0 (warehouse).
    pub partition: i32,
    /// Kafka offset (raw, changes, lake) or the applied-event `seq` (warehouse).
    pub offset: i64,
    /// When the record reached this hop, µs since the epoch: the Kafka record timestamp (raw),
    /// the join's processing time (changes), the sink's commit time (warehouse, lake).
    pub ts_us: i64,
}

const HEADER: &str = "partition\toffset\tdatabase\ttable\tpk\twrite_id\top\tts_us";

fn table_of(s: &str) -> Option<Table> {
    match s {
        "customers" => Some(Table::Customers),
        "flights" => Some(Table::Flights),
        "vehicles" => Some(Table::Vehicles),
        _ => None,
    }
}

impl Observation {
    fn to_line(self, out: &mut String) {
        use std::fmt::Write as _;
        let k = &self.key;
        let op = k.op.as_str();
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{op}\t{}",
            self.partition,
            self.offset,
            k.database(),
            k.table.as_str(),
            k.pk,
            k.write,
            self.ts_us
        );
    }

    /// Parses one line of an observation file.
    pub fn parse(line: &str) -> std::result::Result<Observation, String> {
        let mut f = [""; 8];
        let mut fields = 0;
        for (i, part) in line.split('\t').enumerate() {
            if i < f.len() {
                f[i] = part;
            }
            fields = i + 1;
        }
        if fields != f.len() {
            return Err(format!("{fields} fields, expected 8 ({HEADER})"));
        }
        let num = |i: usize, name: &str| f[i].parse::<i64>().map_err(|_| format!("{name} {:?} is not an integer", f[i]));
        let table = table_of(f[3]).ok_or_else(|| format!("unknown table {:?}", f[3]))?;
        if f[2] != table.database() {
            return Err(format!("table {} is not in database {:?}", f[3], f[2]));
        }
        let write: WriteId = f[5].parse()?;
        let op = EventOp::parse(f[6]).ok_or_else(|| format!("unknown op {:?}", f[6]))?;
        let partition = num(0, "partition")?;
        let partition = i32::try_from(partition).map_err(|_| format!("partition {partition} is out of range"))?;
        Ok(Observation { key: EventKey { table, pk: num(4, "pk")?, write, op }, partition, offset: num(1, "offset")?, ts_us: num(7, "ts_us")? })
    }
}

/// Writes a hop's observations (creating `observed/`).
pub fn write(run_dir: &Path, hop: Hop, observations: &[Observation]) -> Result<()> {
    let path = hop.file(run_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    let f = std::fs::File::create(&path).map_err(|e| Error::io("writing observations", &path, e))?;
    let mut out = BufWriter::new(f);
    let mut buf = String::with_capacity(1 << 16);
    buf.push_str(HEADER);
    buf.push('\n');
    for o in observations {
        o.to_line(&mut buf);
        if buf.len() > 1 << 15 {
            out.write_all(buf.as_bytes()).map_err(|e| Error::io("writing observations", &path, e))?;
            buf.clear();
        }
    }
    out.write_all(buf.as_bytes()).and_then(|_| out.flush()).map_err(|e| Error::io("writing observations", &path, e))
}

/// Streams a hop's observations in file order into `visit`. A malformed line is an error naming
/// the file and line; the observations before it have been visited. The file is parsed on a
/// second thread while `visit` runs ([`crate::lines`]).
pub fn for_each(run_dir: &Path, hop: Hop, mut visit: impl FnMut(Observation)) -> Result<()> {
    let path = hop.file(run_dir);
    let parse = |n: usize, l: &str| match (n, l) {
        (1, HEADER) => Ok(None),
        (1, _) => Err(format!("header {l:?}, expected {HEADER:?}")),
        (_, "") => Ok(None),
        _ => Observation::parse(l).map(Some),
    };
    let lines = crate::lines::parse(&path, "observations", parse, |o| {
        visit(o);
        Ok(())
    })?;
    if lines == 0 {
        return Err(Error::record(path, None, format!("empty, expected the header {HEADER:?}")));
    }
    Ok(())
}

/// Reads a hop's observations into memory.
pub fn read(run_dir: &Path, hop: Hop) -> Result<Vec<Observation>> {
    let mut v = Vec::new();
    for_each(run_dir, hop, |o| v.push(o))?;
    Ok(v)
}

/// The source tables, the warehouse's `customer_360` and the lake's documents at the end of a
/// run, for the final-state check (`final_state.json`). Rows are as Debezium renders them (dates
/// as days since the epoch).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinalState {
    pub customers: Vec<serde_json::Map<String, serde_json::Value>>,
    pub flights: Vec<serde_json::Map<String, serde_json::Value>>,
    pub vehicles: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Warehouse documents by customer id.
    pub warehouse: std::collections::BTreeMap<i64, serde_json::Value>,
    /// The lake's documents by customer id: its change records folded in processing order
    /// (absent in run directories that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lake: Option<std::collections::BTreeMap<i64, serde_json::Value>>,
}

impl FinalState {
    pub fn file(run_dir: &Path) -> std::path::PathBuf {
        crate::run_dir::RunDir::new(run_dir).final_state()
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = FinalState::file(run_dir);
        let text = serde_json::to_string(self).expect("final state serializes");
        std::fs::write(&path, text).map_err(|e| Error::io("writing the final state", &path, e))
    }

    pub fn read(run_dir: &Path) -> Result<FinalState> {
        let path = FinalState::file(run_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading the final state", &path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::record(path, None, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("cdc-chaos-obs-{}", std::process::id()));
        let obs = vec![
            Observation {
                key: EventKey { table: Table::Flights, pk: 7, write: WriteId::new(501, 3), op: EventOp::Upsert },
                partition: 1,
                offset: 40,
                ts_us: 1_700_000_000_000_000,
            },
            Observation {
                key: EventKey { table: Table::Vehicles, pk: -3, write: WriteId::NONE, op: EventOp::Delete },
                partition: 0,
                offset: 2,
                ts_us: 5,
            },
        ];
        write(&dir, Hop::Lake, &obs).unwrap();
        assert_eq!(read(&dir, Hop::Lake).unwrap(), obs);
        let path = Hop::Lake.file(&dir);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\tnone\t", "\t0.x\t")).unwrap();
        let e = read(&dir, Hop::Lake).unwrap_err().to_string();
        assert!(e.contains("lake.tsv:3") && e.contains("write id \"0.x\""), "{e}");
        std::fs::write(&path, "partition\toffset\n").unwrap();
        assert!(read(&dir, Hop::Lake).unwrap_err().to_string().contains("header"));
        std::fs::write(&path, "").unwrap();
        assert!(read(&dir, Hop::Lake).unwrap_err().to_string().contains("empty"));
        std::fs::write(&path, format!("{HEADER}\n1\t2\tcrm\tflights\t3\t4.1\tupsert\t5\textra\n")).unwrap();
        assert!(read(&dir, Hop::Lake).unwrap_err().to_string().contains("lake.tsv:2: 9 fields"));
        std::fs::write(&path, format!("{HEADER}\n9999999999\t2\tcrm\tflights\t3\t4.1\tupsert\t5\n")).unwrap();
        assert!(read(&dir, Hop::Lake).unwrap_err().to_string().contains("partition 9999999999 is out of range"));

        // Many batches through the parsing thread, in order, and an error far in names its line.
        let many: Vec<Observation> = (0..40_000).map(|i| Observation { offset: i, ..obs[0] }).collect();
        write(&dir, Hop::Raw, &many).unwrap();
        assert_eq!(read(&dir, Hop::Raw).unwrap(), many);
        let path = Hop::Raw.file(&dir);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("x\n");
        std::fs::write(&path, text).unwrap();
        let mut visited = 0;
        let e = for_each(&dir, Hop::Raw, |_| visited += 1).unwrap_err().to_string();
        assert!(e.contains(&format!("raw.tsv:{}:", many.len() + 2)), "{e}");
        assert_eq!(visited, many.len(), "every observation before the bad line is visited");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
