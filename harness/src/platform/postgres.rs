//! PostgreSQL (Debian package) as the stack's own clusters in its run directory: the source
//! (`postgres`: database `crm` with `customers` and `flights`, `wal_level=logical` for Debezium's
//! pgoutput decoder) and the warehouse (`warehouse`: database `warehouse`), each its own server
//! so that a fault on one leaves the other running.
//!
//! PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` OS user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::config::is_root;
use crate::error::{Error, Result};
use crate::platform::process::{self, run};
use crate::platform::{ensure_dir, write_file, Layout};

/// Component name of the source cluster.
pub const NAME: &str = "postgres";
/// Component name of the warehouse cluster.
pub const WAREHOUSE: &str = "warehouse";
/// The schema of `crm`, applied at every start (idempotent).
pub const CRM_SQL: &str = include_str!("../../sql/crm.sql");

/// The warehouse database and the sink's tables (idempotent).
pub fn warehouse_sql() -> String {
    format!(
        "SELECT 'CREATE DATABASE warehouse' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'warehouse') \\gexec\n\\connect warehouse\n{}",
        cdc_pipeline::warehouse::SCHEMA
    )
}

/// Connection string of the warehouse database on `port`.
pub fn warehouse_dsn(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=warehouse")
}
/// Server settings Debezium's pgoutput decoder and the checker rely on, the same on every
/// platform (`postgres -c <setting>`; the Kubernetes manifests pass them as container args).
pub const CDC_SETTINGS: &[&str] = &["wal_level=logical", "max_wal_senders=10", "max_replication_slots=10", "fsync=on", "synchronous_commit=on"];

/// Role Debezium connects as.
pub const USER: &str = "cdc";
pub const PASSWORD: &str = "cdc";

/// Directory of the newest installed PostgreSQL server binaries (`/usr/lib/postgresql/<v>/bin`).
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn os_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let uid = run({
        let mut c = Command::new("id");
        c.args(["-u", "postgres"]);
        c
    })
    .ok()?;
    let gid = run({
        let mut c = Command::new("id");
        c.args(["-g", "postgres"]);
        c
    })
    .ok()?;
    Some((uid.trim().parse().ok()?, gid.trim().parse().ok()?))
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| Error::io("chown to postgres", path, e))?;
    }
    Ok(())
}

/// Initialises the cluster `name` (once) and starts its server on `port`. Returns its pid.
pub fn start(layout: &Layout, name: &str, port: u16) -> Result<u32> {
    let bin = bin_dir().ok_or_else(|| Error::Missing {
        what: "PostgreSQL server (/usr/lib/postgresql/*/bin/postgres)".into(),
        remedy: "apt-get install -y postgresql".into(),
    })?;
    let owner = os_user();
    if is_root() && owner.is_none() {
        return Err(Error::Missing { what: "the `postgres` OS user".into(), remedy: "apt-get install -y postgresql".into() });
    }
    let dir = layout.dir(name);
    let data = dir.join("data");
    ensure_dir(&dir)?;
    chown(&dir, owner)?;
    let log = layout.log(name);
    if !log.exists() {
        write_file(&log, "")?;
    }
    chown(&log, owner)?;
    if !data.join("PG_VERSION").exists() {
        crate::progress::note("initdb (first start)");
        let mut cmd = Command::new(bin.join("initdb"));
        cmd.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]);
        as_owner(&mut cmd, owner);
        run(cmd).map_err(|e| {
            Error::component(name, format!("initdb in {} failed (the postgres user must be able to enter every parent directory): {e}", data.display()))
        })?;
    }
    remove_stale_lock_files(&data, &dir, port);
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D").arg(&data).args(["-p", &port.to_string()]);
    let local = [
        "listen_addresses=127.0.0.1".to_string(),
        format!("unix_socket_directories={}", dir.display()),
        "shared_buffers=64MB".into(),
        "logging_collector=off".into(),
    ];
    for setting in CDC_SETTINGS.iter().map(|s| s.to_string()).chain(local) {
        cmd.args(["-c", &setting]);
    }
    as_owner(&mut cmd, owner);
    process::spawn_detached(name, cmd, &log)
}

/// Removes the lock files a killed server left (`postmaster.pid`, the socket's `.lock`) when the
/// process they name is gone. PostgreSQL itself only asks whether that pid exists, and the
/// zombie of a killed server that nobody reaped still does: it would refuse to start.
fn remove_stale_lock_files(data: &Path, socket_dir: &Path, port: u16) {
    for lock in [data.join("postmaster.pid"), socket_dir.join(format!(".s.PGSQL.{port}.lock"))] {
        let Ok(text) = std::fs::read_to_string(&lock) else { continue };
        let owner = text.lines().next().and_then(|l| l.trim().trim_start_matches('-').parse::<u32>().ok());
        if owner.is_some_and(|pid| !process::is_alive(pid)) {
            crate::progress::note(&format!("removing {} left by a server that is gone", lock.display()));
            let _ = std::fs::remove_file(&lock);
        }
    }
}

/// A `psql` command connected as the superuser to `db`.
pub fn psql(port: u16, db: &str) -> Command {
    let psql = bin_dir().map(|b| b.join("psql")).filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("psql"));
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", db]);
    cmd
}

/// Waits until cluster `name` accepts queries on `port`, then applies `sql` (a psql script).
pub fn wait_ready_and_migrate(port: u16, layout: &Layout, name: &str, sql: &str, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    wait_ready(port, name, timeout, alive)?;
    let script = layout.dir(name).join("schema.sql");
    write_file(&script, sql)?;
    let mut cmd = psql(port, "postgres");
    cmd.arg("-f").arg(&script);
    run(cmd).map_err(|e| Error::component(name, format!("applying {}: {e}", script.display())))?;
    Ok(())
}

/// Waits until cluster `name` accepts queries on `port` (crash recovery, after a kill, included).
pub fn wait_ready(port: u16, name: &str, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    process::wait_until(&format!("{name} to accept connections"), timeout, Duration::from_millis(300), alive, || {
        let mut cmd = psql(port, "postgres");
        cmd.args(["-c", "SELECT 1"]);
        Ok(run(cmd).is_ok())
    })
}
