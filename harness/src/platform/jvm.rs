//! Command lines of the stack's JVMs (Kafka nodes, Kafka Connect, Kafka's command-line tools):
//! small heaps, since everything shares two cores, and log4j2 writing to the component's directory.

use std::path::Path;
use std::process::Command;

use crate::platform::Layout;

/// The `java` binary: `$JAVA_HOME/bin/java` if set, else `java` on PATH.
pub fn java_binary() -> String {
    std::env::var("JAVA_HOME")
        .ok()
        .map(|h| format!("{h}/bin/java"))
        .filter(|p| Path::new(p).is_file())
        .unwrap_or_else(|| "java".into())
}

/// A JVM command for a long-running server: `heap` max heap, serial GC, log4j2 into `log_file`,
/// optionally inside network namespace `netns`.
pub fn server(layout: &Layout, netns: Option<&str>, heap: &str, classpath: &str, log_file: &Path, main: &str) -> Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, &java_binary()]);
            c
        }
        None => Command::new(java_binary()),
    };
    cmd.args([
        format!("-Xms{}", min_heap(heap)),
        format!("-Xmx{heap}"),
        "-XX:+UseSerialGC".into(),
        "-XX:+ExitOnOutOfMemoryError".into(),
        "-Xss512k".into(),
        "-Djava.awt.headless=true".into(),
        format!("-Dlog4j2.configurationFile={}", layout.log4j_config().display()),
        // java.util.logging (used by the MariaDB binlog client) into log4j2 as well.
        "-Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager".into(),
        format!("-Dcdc.log.file={}", log_file.display()),
        "-cp".into(),
        classpath.into(),
        main.into(),
    ]);
    cmd
}

/// A JVM command for a short-lived Kafka tool (format storage, describe the quorum).
pub fn tool(layout: &Layout, main: &str) -> Command {
    let mut cmd = Command::new(java_binary());
    cmd.args([
        "-Xmx128m".to_string(),
        "-XX:+UseSerialGC".into(),
        "-XX:TieredStopAtLevel=1".into(),
        format!("-Dlog4j2.configurationFile={}", layout.log4j_config().display()),
        format!("-Dcdc.log.file={}", layout.home.join("tools.log").display()),
        "-cp".into(),
        layout.kafka_classpath(),
        main.into(),
    ]);
    cmd
}

fn min_heap(heap: &str) -> String {
    // Start at a quarter of the maximum: memory is committed only as the component needs it.
    let (num, unit) = heap.split_at(heap.find(|c: char| !c.is_ascii_digit()).unwrap_or(heap.len()));
    match num.parse::<u64>() {
        Ok(n) if n >= 4 => format!("{}{unit}", n / 4),
        _ => heap.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn min_heap_is_a_quarter() {
        assert_eq!(super::min_heap("512m"), "128m");
        assert_eq!(super::min_heap("2g"), "2g");
    }
}
