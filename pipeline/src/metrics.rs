//! Prometheus metrics of a pipeline process: counters and a commit-latency histogram, served in the
//! text exposition format on `GET /metrics` of the process's own port; `GET /ready` answers 200
//! while a session processes input and 503 otherwise (the Kubernetes readiness probe).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Upper bounds (seconds) of the transaction commit latency buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Metrics of one pipeline process (the join, or a sink).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read from the input topics (including replayed ones).
    pub records_in: AtomicU64,
    /// Change records written (join) or applied (sink).
    pub events_out: AtomicU64,
    /// Records sent to the dead-letter topic.
    pub dead_letters: AtomicU64,
    /// Committed transactions (Kafka or database).
    pub commits: AtomicU64,
    /// Aborted transactions and restarted sessions.
    pub aborts: AtomicU64,
    /// 1 while a session is processing (state rebuilt, positions found), else 0.
    pub ready: AtomicI64,
    /// Consumer lag summed over the input partitions, at the last measurement.
    pub consumer_lag: AtomicI64,
    commit_buckets: [AtomicU64; BUCKETS.len()],
    commit_count: AtomicU64,
    commit_sum_us: AtomicU64,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn observe_commit(&self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.commit_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.commit_count.fetch_add(1, Ordering::Relaxed);
        self.commit_sum_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The text exposition of every metric, names prefixed `cdc_<component>_`.
    pub fn render(&self, component: &str) -> String {
        let p = format!("cdc_{component}");
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            out.push_str(&format!("# HELP {p}_{name} {help}\n# TYPE {p}_{name} counter\n{p}_{name} {v}\n"));
        };
        counter("records_in_total", "Records read from the input topics.", self.records_in.load(Ordering::Relaxed));
        counter("events_out_total", "Change records written or applied.", self.events_out.load(Ordering::Relaxed));
        counter("dead_letters_total", "Records sent to the dead-letter topic.", self.dead_letters.load(Ordering::Relaxed));
        counter("commits_total", "Committed transactions.", self.commits.load(Ordering::Relaxed));
        counter("aborts_total", "Aborted transactions and restarted sessions.", self.aborts.load(Ordering::Relaxed));
        out.push_str(&format!(
            "# HELP {p}_ready 1 while a session is processing input.\n# TYPE {p}_ready gauge\n{p}_ready {}\n",
            self.ready.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP {p}_consumer_lag Records behind the input partitions' high watermarks.\n# TYPE {p}_consumer_lag gauge\n{p}_consumer_lag {}\n",
            self.consumer_lag.load(Ordering::Relaxed)
        ));
        out.push_str(&format!("# HELP {p}_commit_seconds Transaction commit latency.\n# TYPE {p}_commit_seconds histogram\n"));
        for (i, le) in BUCKETS.iter().enumerate() {
            out.push_str(&format!("{p}_commit_seconds_bucket{{le=\"{le}\"}} {}\n", self.commit_buckets[i].load(Ordering::Relaxed)));
        }
        let count = self.commit_count.load(Ordering::Relaxed);
        out.push_str(&format!("{p}_commit_seconds_bucket{{le=\"+Inf\"}} {count}\n"));
        out.push_str(&format!("{p}_commit_seconds_sum {}\n", self.commit_sum_us.load(Ordering::Relaxed) as f64 / 1e6));
        out.push_str(&format!("{p}_commit_seconds_count {count}\n"));
        out
    }
}

/// Serves `GET /metrics` on `addr` from a background thread. Fails if the port stays taken for
/// 10 s: a killed predecessor's socket closes only once all of its threads have exited, which
/// can be after its main thread already shows as dead.
pub fn serve(addr: &str, component: &'static str, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(addr) {
            Ok(l) => break l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    };
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let (status, body) = if request_line.starts_with("GET /metrics") {
                ("200 OK", metrics.render(component))
            } else if request_line.starts_with("GET /ready") {
                // A readiness probe: ready while a session processes input.
                match metrics.ready.load(Ordering::Relaxed) {
                    1 => ("200 OK", "ready\n".to_string()),
                    _ => ("503 Service Unavailable", "no running session\n".to_string()),
                }
            } else {
                ("404 Not Found", "try /metrics or /ready\n".to_string())
            };
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.dead_letters.fetch_add(2, Ordering::Relaxed);
        m.observe_commit(0.02);
        m.observe_commit(3.0);
        let text = m.render("join");
        assert!(text.contains("cdc_join_dead_letters_total 2\n"), "{text}");
        assert!(text.contains("cdc_join_ready 0\n"), "{text}");
        assert!(text.contains("cdc_join_commit_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("cdc_join_commit_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("cdc_join_commit_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("cdc_join_commit_seconds_count 2\n"));
    }

    #[test]
    fn serves_over_http() {
        let m = Metrics::new();
        m.commits.fetch_add(5, Ordering::Relaxed);
        let port = (22000..23000).find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok()).unwrap();
        let m2 = m.clone();
        serve(&format!("127.0.0.1:{port}"), "sink", m).unwrap();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut s, &mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200") && body.contains("cdc_sink_commits_total 5"), "{body}");
        let ready = || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(s, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut body = String::new();
            std::io::Read::read_to_string(&mut s, &mut body).unwrap();
            body
        };
        assert!(ready().starts_with("HTTP/1.1 503"));
        m2.ready.store(1, Ordering::Relaxed);
        assert!(ready().starts_with("HTTP/1.1 200"));
    }
}
