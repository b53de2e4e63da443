//! What the join and both sinks share: a session that fails is restarted with backoff (state and
//! positions rebuilt from what was committed), and input is read in batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::message::OwnedMessage;

use crate::metrics::Metrics;

/// Why a session ended.
#[derive(Debug)]
pub enum LoopError {
    /// Restart the session (state rebuilt): aborted transaction, lost connection, ...
    Retry(String),
    /// Stop the process: fenced by a newer instance, bad configuration.
    Fatal(String),
}

impl std::fmt::Display for LoopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopError::Retry(m) => write!(f, "{m} (restarting the session)"),
            LoopError::Fatal(m) => write!(f, "{m}"),
        }
    }
}

impl From<String> for LoopError {
    fn from(m: String) -> LoopError {
        LoopError::Retry(m)
    }
}

/// Runs `session` until `stop` is set or it fails fatally; a session that fails otherwise is
/// started again after a backoff (0.5 s doubling to 10 s), counted in `aborts`.
pub fn supervise(what: &str, metrics: &Metrics, stop: &AtomicBool, mut session: impl FnMut() -> Result<(), LoopError>) -> Result<(), String> {
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        let result = session();
        metrics.ready.store(0, Ordering::Relaxed);
        match result {
            Ok(()) => return Ok(()),
            Err(LoopError::Fatal(m)) => return Err(m),
            Err(LoopError::Retry(m)) => {
                metrics.aborts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{what} session ended: {m}; restarting in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    Ok(())
}

/// Polls up to `max` records, for at most `wait`.
pub fn collect_batch(consumer: &BaseConsumer, max: usize, wait: Duration) -> Result<Vec<OwnedMessage>, String> {
    let started = Instant::now();
    let mut batch = Vec::new();
    while batch.len() < max && started.elapsed() < wait {
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(m)) => batch.push(m.detach()),
            Some(Err(e)) => return Err(format!("consuming: {e}")),
            None => {}
        }
    }
    Ok(batch)
}
