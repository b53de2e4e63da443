//! Progress of long-running steps, and the interrupt that ends them early.
//!
//! Progress: one line per step on stderr, with the time since the process started, mirrored to
//! every log file a caller holds a [`Mirror`] of: a run's `run.log` for as long as the run lasts,
//! the stack home's `harness.log` while the stack is brought up or down, a sweep's `sweep.log`
//! for the whole sweep. Mirrors nest: a run that has to bring the stack up writes the start-up's
//! lines to both files, and once `up` returns its mirror ends and the run's goes on.
//!
//! Interrupt: Ctrl-C and SIGTERM during a run set one flag instead of ending the process in the
//! middle of a fault; the load stops at its next operation, the nemesis heals what is in force,
//! and the run ends with exit code 2.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

static MIRRORS: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT_MIRROR: AtomicU64 = AtomicU64::new(0);
static START: Mutex<Option<Instant>> = Mutex::new(None);

/// Progress lines go to a file while this lives (see [`mirror_to`]).
#[must_use = "the mirror ends when this is dropped"]
pub struct Mirror {
    id: u64,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        MIRRORS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.id);
    }
}

/// Mirrors progress lines to `path` (appending) until the returned [`Mirror`] is dropped, besides
/// every other mirror in force.
pub fn mirror_to(path: PathBuf) -> Mirror {
    let id = NEXT_MIRROR.fetch_add(1, Ordering::SeqCst);
    MIRRORS.lock().unwrap_or_else(|e| e.into_inner()).push((id, path));
    Mirror { id }
}

fn elapsed() -> f64 {
    let mut start = START.lock().unwrap_or_else(|e| e.into_inner());
    start.get_or_insert_with(Instant::now).elapsed().as_secs_f64()
}

fn emit(line: String) {
    eprintln!("{line}");
    let mirrors = MIRRORS.lock().unwrap_or_else(|e| e.into_inner());
    let mut written: Vec<&PathBuf> = Vec::new();
    for (_, path) in mirrors.iter() {
        if written.contains(&path) {
            continue;
        }
        written.push(path);
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

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes Ctrl-C and SIGTERM to [`interrupted`] instead of ending the process mid-fault.
pub fn catch_interrupts() {
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether Ctrl-C or SIGTERM arrived since [`catch_interrupts`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_nest_and_each_ends_with_its_guard() {
        let dir = std::env::temp_dir().join(format!("cdcc-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (run, home) = (dir.join("run.log"), dir.join("harness.log"));
        let run_mirror = mirror_to(run.clone());
        step("mirror test: run starts");
        {
            let _up = mirror_to(home.clone());
            let _same = mirror_to(run.clone());
            step("mirror test: the stack comes up");
        }
        step("mirror test: load");
        drop(run_mirror);
        step("mirror test: after the run");
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
        // Other tests may write progress lines meanwhile: only this test's count.
        let ours = |p: &PathBuf| -> Vec<String> { read(p).lines().filter_map(|l| l.split_once("] mirror test: ")).map(|(_, l)| l.to_string()).collect() };
        let run_lines = ours(&run);
        assert_eq!(run_lines, ["run starts", "the stack comes up", "load"], "once per line, even with two mirrors of the file");
        assert_eq!(ours(&home), ["the stack comes up"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
