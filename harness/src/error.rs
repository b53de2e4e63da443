//! The harness's error type and the exit codes it maps to.
//!
//! Every error names the component it concerns, where (address, file, line) and, where one exists,
//! the remedy. Exit codes are part of the CLI's contract and documented in the README:
//! 0 pass, 1 invariant violated, 2 setup/harness error, 3 unknown.

use std::path::{Path, PathBuf};

/// Result type of the harness library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code: the run passed (or the command succeeded).
pub const EXIT_PASS: i32 = 0;
/// Exit code: an invariant was violated (lost / duplicated event, audit mismatch, ...).
pub const EXIT_VIOLATION: i32 = 1;
/// Exit code: the harness could not set up or run (bad input, a component failed to start).
pub const EXIT_SETUP: i32 = 2;
/// Exit code: the outcome is unknown.
pub const EXIT_UNKNOWN: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source} (path: {path})")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("profile {name:?}: {message}")]
    Profile { name: String, message: String },

    #[error("{component}: {message}{}", log_tail_suffix(.log, .tail))]
    Component {
        component: String,
        message: String,
        /// The component's log file, if it has one.
        log: Option<PathBuf>,
        /// The last lines of that log.
        tail: Option<String>,
    },

    #[error("port {port} on {address} needed by {component} is already in use; stop whatever listens there (`ss -ltnp 'sport = :{port}'`) or run `cdc-chaos down`")]
    PortBusy { component: String, address: String, port: u16 },

    #[error("missing {what}: {remedy}")]
    Missing { what: String, remedy: String },

    #[error("command `{command}` failed: {message}")]
    Command { command: String, message: String },

    /// The command line or a setting asks for something this command cannot do.
    #[error("{0}")]
    Usage(String),

    /// A file the harness recorded (a run directory's, the stack's state, a sweep's) that cannot
    /// be read as what it should hold: the file, the line where there is one, and why.
    #[error("{}{}: {message}", .path.display(), .line.map(|n| format!(":{n}")).unwrap_or_default())]
    Record { path: PathBuf, line: Option<usize>, message: String },

    /// A fault that this stack cannot carry out, and why.
    #[error("{0}")]
    Fault(String),

    /// The run was interrupted (Ctrl-C, SIGTERM): the load stopped and every fault was healed.
    #[error("interrupted: the load stopped and every fault was healed; the history so far is in {}", .dir.display())]
    Interrupted { dir: PathBuf },

    /// Too little disk space for what is about to be written.
    #[error("{what} needs {} free on {} ({} free there): make room there (`docker system df` shows what the Docker engine keeps; `cdc-chaos --platform kind down --delete-cluster` removes the cluster's volumes)", gb(*.needed), .path.display(), gb(*.free))]
    NoSpace { what: String, path: PathBuf, needed: u64, free: u64 },

    #[error("fault journal {}: {message}", .path.display())]
    Journal { path: PathBuf, message: String },

    #[error("audit: {failed} of {total} settings differ from profile {profile:?}")]
    AuditMismatch { profile: String, failed: usize, total: usize },
}

/// `bytes` in GB with one decimal.
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

fn log_tail_suffix(log: &Option<PathBuf>, tail: &Option<String>) -> String {
    match (log, tail) {
        (Some(log), Some(tail)) if !tail.trim().is_empty() => {
            let indented: Vec<String> = tail.lines().map(|l| format!("    {l}")).collect();
            format!("\n  last lines of {}:\n{}", log.display(), indented.join("\n"))
        }
        (Some(log), _) => format!(" (log: {})", log.display()),
        _ => String::new(),
    }
}

impl Error {
    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::AuditMismatch { .. } => EXIT_VIOLATION,
            _ => EXIT_SETUP,
        }
    }

    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), path: path.into(), source }
    }

    /// A recorded file `path` (at `line`, counted from 1, if given) that does not hold what it should.
    pub fn record(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Error::Record { path: path.into(), line, message: message.into() }
    }

    pub fn component(component: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Component { component: component.into(), message: message.into(), log: None, tail: None }
    }

    /// A component error carrying the tail of the component's log.
    pub fn component_with_log(
        component: impl Into<String>,
        message: impl Into<String>,
        log: impl Into<PathBuf>,
    ) -> Self {
        let log = log.into();
        let tail = log_tail(&log, 20);
        Error::Component { component: component.into(), message: message.into(), log: Some(log), tail }
    }
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    Some(all[all.len().saturating_sub(lines)..].join("\n"))
}
