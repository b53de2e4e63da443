//! MariaDB (Debian package) as the stack's own server in its run directory: database `fleet` with
//! `vehicles`, binary log in ROW format with FULL row images (GTIDs are always on in MariaDB), as
//! Debezium's MariaDB connector needs.

use std::process::Command;
use std::time::Duration;

use crate::config::StackConfig;
use crate::error::{Error, Result};
use crate::platform::process::{self, on_path, run};
use crate::platform::{ensure_dir, write_file, Layout};

pub const NAME: &str = "mariadb";
/// The schema of `fleet`, applied at every start (idempotent).
pub const FLEET_SQL: &str = include_str!("../../sql/fleet.sql");
/// Server options Debezium's MariaDB connector and the checker rely on (binary log in ROW format
/// with full row images, strict GTIDs, durable commits, binlogs kept), the same on every platform;
/// the binlog's location (`--log-bin=...`) is the platform's.
pub const CDC_SETTINGS: &[&str] = &[
    "--server-id=1",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--gtid-strict-mode=ON",
    "--log-slave-updates=ON",
    "--sync-binlog=1",
    "--innodb-flush-log-at-trx-commit=1",
    "--expire-logs-days=0",
];
pub const USER: &str = "cdc";
pub const PASSWORD: &str = "cdc";

fn first_on_path(names: &[&str]) -> Option<String> {
    names.iter().find(|n| on_path(n)).map(|n| n.to_string())
}

fn server_binary() -> Option<String> {
    first_on_path(&["mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld"])
}

fn missing() -> Error {
    Error::Missing { what: "MariaDB server (mariadbd)".into(), remedy: "apt-get install -y mariadb-server".into() }
}

/// The server's unix socket.
pub fn socket(layout: &Layout) -> std::path::PathBuf {
    layout.dir(NAME).join("mariadb.sock")
}

/// Initialises the data directory (once) and starts the server. Returns its pid.
pub fn start(cfg: &StackConfig, layout: &Layout) -> Result<u32> {
    let server = server_binary().ok_or_else(missing)?;
    let dir = layout.dir(NAME);
    let data = dir.join("data");
    ensure_dir(&dir)?;
    let user = if crate::config::is_root() { "root".to_string() } else { std::env::var("USER").unwrap_or_default() };
    if !data.join("mysql").is_dir() {
        crate::progress::note("mariadb-install-db (first start)");
        let install = first_on_path(&["mariadb-install-db", "mysql_install_db"]).ok_or_else(missing)?;
        let mut cmd = Command::new(install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", "--innodb-log-file-size=16M"]);
        run(cmd).map_err(|e| Error::component(NAME, format!("initialising {}: {e}", data.display())))?;
    }
    let mut cmd = Command::new(server);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket(layout).display()))
        .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
        .arg(format!("--log-bin={}", data.join("binlog").display()))
        .arg(format!("--port={}", cfg.mariadb_port))
        .arg(format!("--user={user}"))
        .args(CDC_SETTINGS)
        .args([
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--performance-schema=OFF",
        ]);
    process::spawn_detached(NAME, cmd, &layout.log(NAME))
}

/// A `mariadb` client command connected as root through the socket.
pub fn client(layout: &Layout) -> Command {
    let bin = first_on_path(&["mariadb", "mysql"]).unwrap_or_else(|| "mariadb".into());
    let mut cmd = Command::new(bin);
    cmd.arg("--no-defaults").arg("-uroot").arg(format!("--socket={}", socket(layout).display()));
    cmd
}

/// Waits until the server accepts queries, then applies the `fleet` schema.
pub fn wait_ready_and_migrate(layout: &Layout, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    wait_ready(layout, timeout, alive)?;
    let script = layout.dir(NAME).join("fleet.sql");
    write_file(&script, FLEET_SQL)?;
    let mut cmd = client(layout);
    cmd.arg("-e").arg(format!("source {}", script.display()));
    run(cmd).map_err(|e| Error::component(NAME, format!("applying the fleet schema: {e}")))?;
    Ok(())
}

/// Waits until the server accepts queries (crash recovery, after a kill, included).
pub fn wait_ready(layout: &Layout, timeout: Duration, alive: impl FnMut() -> Result<()>) -> Result<()> {
    process::wait_until("mariadb to accept connections", timeout, Duration::from_millis(300), alive, || {
        let mut cmd = client(layout);
        cmd.args(["-e", "SELECT 1"]);
        Ok(run(cmd).is_ok())
    })
}
