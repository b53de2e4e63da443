//! Provisioning: installs what this host lacks — Debian packages (PostgreSQL, MariaDB, iptables,
//! Java, Maven) and the Kafka / Connect / Debezium jars from Maven Central — with visible progress,
//! idempotently. A second `up` finds everything in place and needs no network.
//!
//! Without root nothing is installed: the error names what is missing and the command that
//! installs it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::is_root;
use crate::error::{Error, Result};
use crate::platform::process::on_path;
use crate::platform::{ensure_dir, postgres, write_file, Layout};
use crate::progress;

/// The Maven project that resolves every jar, embedded so the binary works from any directory.
pub const JAVA_FILES: &[(&str, &str)] = &[
    ("pom.xml", include_str!("../../../java/pom.xml")),
    ("kafka/pom.xml", include_str!("../../../java/kafka/pom.xml")),
    ("debezium-postgres/pom.xml", include_str!("../../../java/debezium-postgres/pom.xml")),
    ("debezium-mariadb/pom.xml", include_str!("../../../java/debezium-mariadb/pom.xml")),
];
/// log4j2 configuration of every JVM of the stack (writes to `-Dcdc.log.file`).
pub const LOG4J2: &str = include_str!("../../../java/log4j2.properties");

/// A Debian package and how to tell it is installed.
struct Need {
    package: &'static str,
    present: fn() -> bool,
}

fn needs(namespaces: bool) -> Vec<Need> {
    let mut v = vec![
        Need { package: "openjdk-17-jre-headless", present: || on_path("java") || std::env::var_os("JAVA_HOME").is_some() },
        Need { package: "maven", present: || on_path("mvn") },
        Need { package: "postgresql", present: || postgres::bin_dir().is_some() },
        Need { package: "mariadb-server", present: || on_path("mariadbd") || Path::new("/usr/sbin/mariadbd").is_file() },
        Need { package: "mariadb-client", present: || on_path("mariadb") },
        Need { package: "iproute2", present: || on_path("ip") },
    ];
    if namespaces {
        v.push(Need { package: "iptables", present: || on_path("iptables") && on_path("iptables-save") });
    }
    v
}

/// Debian packages the stack needs that are not installed.
pub fn missing_packages(namespaces: bool) -> Vec<&'static str> {
    needs(namespaces).into_iter().filter(|n| !(n.present)()).map(|n| n.package).collect()
}

/// Installs missing Debian packages (as root), then resolves the jars.
pub fn provision(layout: &Layout, namespaces: bool) -> Result<()> {
    let missing = missing_packages(namespaces);
    if !missing.is_empty() {
        if !is_root() {
            return Err(Error::Missing {
                what: format!("Debian packages {}", missing.join(", ")),
                remedy: format!("sudo apt-get update && sudo apt-get install -y --no-install-recommends {}", missing.join(" ")),
            });
        }
        apt_install(&layout.home.join("provision.log"), &missing)?;
        let still = missing_packages(namespaces);
        if !still.is_empty() {
            return Err(Error::Missing { what: format!("Debian packages {}", still.join(", ")), remedy: format!("apt-get install -y {}", still.join(" ")) });
        }
    } else {
        progress::note("packages: all present");
    }
    resolve_jars(layout)
}

/// Installs Debian `packages` with apt-get (as root), their output appended to `log`, without
/// letting them start system services.
pub(crate) fn apt_install(log: &Path, packages: &[&str]) -> Result<()> {
    progress::note(&format!("installing {} with apt-get (log: {})", packages.join(" "), log.display()));
    // Packages must not start system services (a system MariaDB on port 3306, a PostgreSQL
    // cluster): policy-rc.d answers "not allowed" while we install, as Debian's docs describe.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        write_file(policy, "#!/bin/sh\n# cdc-chaos provisioning: do not start services\nexit 101\n")?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755));
    }
    let result = (|| {
        run_logged(log, "apt-get update", Command::new("apt-get").arg("update"))?;
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "--no-install-recommends"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive");
        run_logged(log, &format!("apt-get install {}", packages.join(" ")), &mut cmd)
    })();
    if own_policy {
        let _ = std::fs::remove_file(policy);
    }
    result
}

/// Runs a command with its output appended to `log`, a progress note every 15 s, and the log's
/// tail in the error if it fails.
pub(crate) fn run_logged(log: &Path, what: &str, cmd: &mut Command) -> Result<()> {
    if let Some(parent) = log.parent() {
        ensure_dir(parent)?;
    }
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| Error::io("opening log", log, e))?;
    let err = out.try_clone().map_err(|e| Error::io("opening log", log, e))?;
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::Command { command: what.into(), message: e.to_string() })?;
    let mut last = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                progress::note(&format!("{what}: done in {:.0}s", started.elapsed().as_secs_f64()));
                return Ok(());
            }
            Ok(Some(status)) => {
                return Err(Error::Component {
                    component: "provisioning".into(),
                    message: format!("`{what}` failed ({status})"),
                    log: Some(log.to_path_buf()),
                    tail: crate::error::log_tail(log, 20),
                })
            }
            Ok(None) => {}
            Err(e) => return Err(Error::Command { command: what.into(), message: e.to_string() }),
        }
        if last.elapsed() >= Duration::from_secs(15) {
            progress::note(&format!("{what}: running for {:.0}s", started.elapsed().as_secs_f64()));
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Fingerprint of the embedded Maven project: the jar directory is rebuilt when it changes.
fn java_fingerprint() -> String {
    let mut h = Sha256::new();
    for (name, text) in JAVA_FILES {
        h.update(name.as_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Resolves the jars into `<cache>/lib` once (marker file `.complete` holds the fingerprint).
pub fn resolve_jars(layout: &Layout) -> Result<()> {
    let lib = layout.lib();
    let marker = lib.join(".complete");
    let fingerprint = java_fingerprint();
    if std::fs::read_to_string(&marker).map(|m| m.trim() == fingerprint).unwrap_or(false) {
        progress::note(&format!("jars: cached in {}", lib.display()));
        return Ok(());
    }
    if !on_path("mvn") {
        return Err(Error::Missing { what: "Maven (mvn)".into(), remedy: "apt-get install -y maven".into() });
    }
    let project = layout.cache.join("java");
    for (name, text) in JAVA_FILES {
        write_file(&project.join(name), text)?;
    }
    let staging = layout.cache.join("lib.staging");
    let _ = std::fs::remove_dir_all(&staging);
    ensure_dir(&staging)?;
    let log = layout.cache.join("maven.log");
    progress::note(&format!("jars: resolving Kafka, Connect and Debezium from Maven Central (log: {})", log.display()));
    let mut cmd = Command::new("mvn");
    cmd.args(["-B", "-f"])
        .arg(project.join("pom.xml"))
        .arg("package")
        .arg(format!("-Dcdc.lib={}", staging.display()));
    run_logged(&log, "mvn package", &mut cmd)?;
    let _ = std::fs::remove_dir_all(&lib);
    std::fs::rename(&staging, &lib).map_err(|e| Error::io("moving resolved jars", &lib, e))?;
    write_file(&marker, &fingerprint)?;
    Ok(())
}

/// Writes the log4j2 configuration every JVM of the stack uses.
pub fn write_log4j(layout: &Layout) -> Result<()> {
    write_file(&layout.log4j_config(), LOG4J2)
}
