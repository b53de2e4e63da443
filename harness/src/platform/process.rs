//! Processes of the stack: starting them detached (they outlive the `cdc-chaos up` that started
//! them), checking they live, stopping them. The tail of a log is `error::log_tail`.
//!
//! Owns signals and pids only; what a component's command line is belongs to its own module.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Starts `cmd` in its own process group with stdout and stderr appended to `log`, and returns
/// its pid. The process is not waited for: it keeps running after the harness exits.
pub fn spawn_detached(component: &str, mut cmd: Command, log: &Path) -> Result<u32> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io(format!("{component}: opening log"), log, e))?;
    let err = out.try_clone().map_err(|e| Error::io(format!("{component}: opening log"), log, e))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    let program = format!("{:?}", cmd.get_program());
    let child = cmd
        .spawn()
        .map_err(|e| Error::component(component, format!("cannot start {program}: {e}")))?;
    Ok(child.id())
}

/// Whether `pid` is a live (not zombie) process. Reaps it first if it is our own exited child.
pub fn is_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    unsafe {
        let mut status = 0;
        if libc::waitpid(pid as i32, &mut status, libc::WNOHANG) == pid as i32 {
            return false;
        }
    }
    !matches!(state(pid), Some('Z') | Some('X') | None)
}

/// The scheduler state of `pid` as `/proc/<pid>/stat` gives it (`R`, `S`, `D`, `T` stopped by a
/// signal, `Z` zombie, ...); `None` when there is no such process.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself hold parentheses.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).and_then(|s| s.chars().next())
}

/// Sends `signal` to `pid`. A process that no longer exists is not an error.
pub fn signal(pid: u32, signal: i32) {
    if pid > 0 {
        unsafe {
            libc::kill(pid as i32, signal);
        }
    }
}

/// Stops `pid`: `first` signal (SIGTERM, SIGINT for PostgreSQL's fast shutdown), then SIGKILL
/// after `grace`. Returns once the process is gone. A stopped (SIGSTOP) process is continued first
/// so that it can handle the signal.
pub fn stop(pid: u32, first: i32, grace: Duration) -> bool {
    if !is_alive(pid) {
        return false;
    }
    signal(pid, first);
    signal(pid, libc::SIGCONT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Resident set size of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Whether a TCP connection to `addr` succeeds within `timeout`.
pub fn tcp_reachable(addr: &str, timeout: Duration) -> bool {
    let Ok(addrs) = addr.to_socket_addrs() else { return false };
    addrs.into_iter().any(|a: SocketAddr| TcpStream::connect_timeout(&a, timeout).is_ok())
}

/// Fails with `PortBusy` if something already listens on `host:port`.
pub fn ensure_port_free(component: &str, host: &str, port: u16) -> Result<()> {
    // Binding is the test: connecting instead could "succeed" by a TCP self-connect when the
    // port lies in the ephemeral range and nothing listens.
    let busy = || Error::PortBusy { component: component.into(), address: host.into(), port };
    match TcpListener::bind((host, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(busy()),
        // Address not on this host (yet): a namespace address, checked inside the namespace.
        Err(_) => Ok(()),
    }
}

/// Polls `check` every `every` until it returns `Ok(true)` or `timeout` passes. While waiting,
/// `alive` is consulted so that a component that died is reported at once, not after the timeout.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut alive: impl FnMut() -> Result<()>,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_note = Instant::now();
    let started = Instant::now();
    loop {
        if check()? {
            return Ok(());
        }
        alive()?;
        if Instant::now() >= deadline {
            return Err(Error::component(what, format!("not ready after {}s", timeout.as_secs())));
        }
        if last_note.elapsed() >= Duration::from_secs(10) {
            crate::progress::note(&format!("still waiting for {what} ({}s)", started.elapsed().as_secs()));
            last_note = Instant::now();
        }
        std::thread::sleep(every);
    }
}

/// Runs a command to completion, capturing output; a non-zero exit is an error carrying stderr.
pub fn run(mut cmd: Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command { command: shown.clone(), message: e.to_string() })?;
    if !out.status.success() {
        let mut msg = format!("{}", out.status);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let detail = if stderr.trim().is_empty() { stdout } else { stderr };
        let lines: Vec<&str> = detail.lines().collect();
        let last = &lines[lines.len().saturating_sub(15)..];
        if !last.is_empty() {
            msg.push_str(":\n    ");
            msg.push_str(&last.join("\n    "));
        }
        return Err(Error::Command { command: shown, message: msg });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program` is found on PATH.
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::log_tail as tail;

    #[test]
    fn spawn_detect_and_stop_a_process() {
        let dir = std::env::temp_dir().join(format!("cdcc-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("sleep.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 30"]);
        let pid = spawn_detached("sleeper", cmd, &log).unwrap();
        assert!(is_alive(pid));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !tail(&log, 5).unwrap_or_default().contains("started") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(stop(pid, libc::SIGTERM, Duration::from_secs(5)));
        assert!(!is_alive(pid));
        assert!(tail(&log, 5).unwrap().contains("started"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn busy_port_is_reported() {
        // An address not on this host (yet) is checked later, inside its namespace.
        ensure_port_free("thing", "10.231.255.254", 9092).unwrap();
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let e = ensure_port_free("thing", "127.0.0.1", port).unwrap_err().to_string();
        assert!(e.contains("thing") && e.contains(&port.to_string()), "{e}");
    }
    #[test]
    fn a_stopped_process_shows_state_t_until_continued() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let wait_for = |want: &dyn Fn(Option<char>) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !want(state(pid)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            state(pid)
        };
        assert!(matches!(wait_for(&|s| s == Some('S')), Some('S')));
        signal(pid, libc::SIGSTOP);
        assert_eq!(wait_for(&|s| s == Some('T')), Some('T'));
        signal(pid, libc::SIGCONT);
        assert_ne!(wait_for(&|s| s != Some('T')), Some('T'));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(state(pid), None);
        assert!(!is_alive(pid));
    }
}
