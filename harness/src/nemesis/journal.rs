//! The journal of faults in force: a JSON file each platform writes before it applies a fault
//! and rewrites once the fault is healed, so that another process — the next run, `cdc-chaos
//! down` — heals what a crashed one left (`<home>/faults-active.json` on the local platform,
//! `<home>/kind/faults-active.json` on kind). One type for both; each platform's entry says what
//! it must undo.
//!
//! A journal that cannot be read is an error, never "no faults in force": healing would then
//! skip faults that are still in force. The error names the file and how to heal by hand.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// The journal file at one path, of entries `T`.
#[derive(Debug, Clone)]
pub struct Journal<T> {
    path: PathBuf,
    entries: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Journal<T> {
    pub fn at(path: impl Into<PathBuf>) -> Journal<T> {
        Journal { path: path.into(), entries: PhantomData }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The faults in force: none when the file does not exist. `heal_by_hand` says how to undo
    /// them without the journal (it ends the error's message).
    pub fn load(&self, heal_by_hand: &str) -> Result<Vec<T>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("reading the fault journal", &self.path, e)),
        };
        serde_json::from_str(&text).map_err(|e| Error::Journal {
            path: self.path.clone(),
            message: format!("not a fault journal ({e}); faults it recorded may still be in force: {heal_by_hand}, then delete the file"),
        })
    }

    /// Replaces the journal with `entries`, atomically (a crash leaves the old or the new one).
    pub fn save(&self, entries: &[T]) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the fault journal's directory", dir, e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(entries).expect("a journal serializes")).map_err(|e| Error::io("journaling faults", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io("journaling faults", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_round_trips_is_empty_when_missing_and_an_error_when_corrupt() {
        let dir = std::env::temp_dir().join(format!("cdcc-journal-{}", std::process::id()));
        let j: Journal<(u32, String)> = Journal::at(dir.join("sub").join("faults-active.json"));
        assert_eq!(j.load("x").unwrap(), vec![], "no file: nothing in force");
        j.save(&[(1, "kafka-2".into())]).unwrap();
        assert_eq!(j.load("x").unwrap(), vec![(1, "kafka-2".to_string())]);
        std::fs::write(j.path(), "{\"truncated").unwrap();
        let e = j.load("run `iptables -S` in each namespace").unwrap_err().to_string();
        assert!(e.contains("faults-active.json") && e.contains("not a fault journal") && e.contains("run `iptables -S` in each namespace, then delete the file"), "{e}");
        assert_eq!(std::fs::read_to_string(j.path()).unwrap(), "{\"truncated", "a corrupt journal is left as it is");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
