//! Progress of long-running steps: one line per step on stderr, with elapsed time, mirrored to
//! the run directory's `harness.log`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

static LOG: Mutex<Option<PathBuf>> = Mutex::new(None);
static START: Mutex<Option<Instant>> = Mutex::new(None);

/// Mirrors progress lines to `path` from now on.
pub fn log_to(path: PathBuf) {
    *LOG.lock().unwrap() = Some(path);
}

fn elapsed() -> f64 {
    let mut start = START.lock().unwrap();
    start.get_or_insert_with(Instant::now).elapsed().as_secs_f64()
}

fn emit(line: String) {
    eprintln!("{line}");
    if let Some(path) = LOG.lock().unwrap().as_ref() {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// A step starts.
pub fn step(what: &str) {
    emit(format!("[{:>6.1}s] {what}", elapsed()));
}

/// A detail within the current step.
pub fn note(what: &str) {
    emit(format!("[{:>6.1}s]   {what}", elapsed()));
}
