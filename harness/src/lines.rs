//! Line-oriented run files (`history.jsonl`, `observed/<hop>.tsv`) read on a second thread: it
//! reads and parses while the caller's thread consumes what it parsed, batch by batch through a
//! bounded channel, so a run of millions of events is checked while it is being read and memory
//! holds a few batches of parsed lines, whatever the file's size.

use std::io::BufRead;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};

use crate::{Error, Result};

/// Lines parsed per batch handed from the parsing thread to the consumer.
const BATCH: usize = 8_192;

/// Reads `path` line by line. `parse` gets each line's number (from 1) and its text without the
/// line ending, and returns a value, `None` to skip the line, or an error message; `visit` gets
/// every value, in file order, on the caller's thread. A parse error is
/// reported as `<path>:<line>: <message>` once every earlier line has been visited; an error
/// from `visit` stops the reading and is returned as it is. Returns the number of lines read.
pub fn parse<T: Send>(
    path: &Path,
    what: &str,
    parse: impl Fn(usize, &str) -> std::result::Result<Option<T>, String> + Send,
    mut visit: impl FnMut(T) -> Result<()>,
) -> Result<usize> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(format!("reading {what}"), path, e))?;
    let (tx, rx) = sync_channel::<Vec<T>>(4);
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || read(f, path, what, &parse, tx));
        for batch in rx {
            for value in batch {
                visit(value)?;
            }
        }
        parser.join().unwrap_or_else(|_| Err(Error::record(path, None, "the parser panicked")))
    })
}

/// The parsing thread: sends batches to `out` until the end of the file, the first bad line
/// (after sending the lines before it) or the consumer's going away.
fn read<T>(
    f: std::fs::File,
    path: &Path,
    what: &str,
    parse: &impl Fn(usize, &str) -> std::result::Result<Option<T>, String>,
    out: SyncSender<Vec<T>>,
) -> Result<usize> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
    let mut raw = Vec::with_capacity(256);
    let mut batch = Vec::with_capacity(BATCH);
    let mut n = 0usize;
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw).map_err(|e| Error::io(format!("reading {what}"), path, e))? == 0 {
            break;
        }
        n += 1;
        let parsed = std::str::from_utf8(&raw).map_err(|_| "not UTF-8".to_string()).and_then(|l| parse(n, l.trim_end_matches(['\n', '\r'])));
        match parsed {
            Ok(Some(value)) => batch.push(value),
            Ok(None) => {}
            Err(m) => {
                let _ = out.send(batch);
                return Err(Error::record(path, Some(n), m));
            }
        }
        if batch.len() == BATCH && out.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
            return Ok(n);
        }
    }
    if !batch.is_empty() {
        let _ = out.send(batch);
    }
    Ok(n)
}
