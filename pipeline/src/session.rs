//! What the join and both sinks share: a session that fails is restarted with backoff (state and
//! positions rebuilt from what was committed), and input is read in batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::message::OwnedMessage;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// Restart the session (state rebuilt): aborted transaction, lost connection, ...
    #[error("{0} (restarting the session)")]
    Retry(Error),
    /// Stop the process: fenced by a newer instance, bad configuration.
    #[error("{0}")]
    Fatal(Error),
}

impl From<Error> for LoopError {
    /// A fatal client error stops the process; anything else restarts the session.
    fn from(e: Error) -> LoopError {
        if e.is_fatal_client_error() {
            LoopError::Fatal(e)
        } else {
            LoopError::Retry(e)
        }
    }
}

/// Runs `session` until `stop` is set or it fails fatally; a session that fails otherwise is
/// started again after a backoff (0.5 s doubling to 10 s), counted in `aborts`.
pub fn supervise(what: &str, metrics: &Metrics, stop: &AtomicBool, mut session: impl FnMut() -> Result<(), LoopError>) -> Result<()> {
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        let result = session();
        metrics.ready.store(0, Ordering::Relaxed);
        match result {
            Ok(()) => return Ok(()),
            Err(LoopError::Fatal(e)) => return Err(e),
            Err(LoopError::Retry(e)) => {
                metrics.aborts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{what} session ended: {e}; restarting in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    Ok(())
}

/// How long [`collect_batch`] waits for a first record before returning an empty batch (so that
/// the loop sees a stop request).
const IDLE: Duration = Duration::from_millis(100);

/// Polls up to `max` records: waits up to 100 ms for the first, then goes on polling for at most
/// `linger` after it. A batch therefore closes `linger` after its first record arrived, not after a
/// fixed window — at a low rate a record waits `linger`, not a whole window, and at a high rate
/// the records that came in while the previous batch was committed fill the next at once.
/// Consumer errors are the client's reports of trouble it recovers from by itself (a broker
/// unreachable, a leader moving): they are logged and polling goes on — restarting the session
/// for them kept the join from making progress for as long as any one broker was down
/// (`leader-kill` scenario). A fatal client error ends the session.
pub fn collect_batch(consumer: &BaseConsumer, max: usize, linger: Duration) -> Result<Vec<OwnedMessage>> {
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut batch = Vec::new();
    while batch.len() < max {
        let deadline = first.map_or(started + IDLE, |f| f + linger);
        let now = Instant::now();
        // Under a millisecond left, `poll` would be handed 0 ms and return at once, again and
        // again until the deadline: a busy wait. The batch ends that much sooner instead.
        if now + Duration::from_millis(1) > deadline {
            break;
        }
        match consumer.poll((deadline - now).min(Duration::from_millis(20))) {
            Some(Ok(m)) => {
                first.get_or_insert(now);
                batch.push(m.detach());
            }
            Some(Err(e)) => tolerate(consumer, "consuming", &e)?,
            None => {}
        }
    }
    Ok(batch)
}

/// A consumer's error from `poll`: logged when the client recovers from it by itself (a broker
/// unreachable, a leader moving), an error when the client has hit a fatal one.
pub fn tolerate(consumer: &BaseConsumer, what: &str, e: &rdkafka::error::KafkaError) -> Result<()> {
    use rdkafka::consumer::Consumer as _;
    if let Some((code, reason)) = consumer.client().fatal_error() {
        return Err(Error::KafkaFatal { what: format!("{what}: {e}"), code, reason });
    }
    tracing::warn!("{what}: {e} (the client retries)");
    Ok(())
}

/// Guards calls into the Kafka client that must return within their timeout but can block for
/// ever: librdkafka's `send_offsets_to_transaction` ignored its timeout and waited indefinitely
/// when the group coordinator's broker died (confluentinc/librdkafka#5456, #5511 — found by the
/// `leader-kill` scenario: the join stopped producing after a broker kill, with no error); the
/// join no longer calls it ([`crate::checkpoint`]), and the watchdog stays for the calls it still
/// makes. A call still blocked past its own limit makes the process start over: it re-executes
/// itself with the same command line (same pid), so a fresh client rebuilds the state and fences
/// the stuck producer's transaction.
pub struct Watchdog {
    /// The guarded call in progress, if any.
    call: std::sync::Mutex<Option<Call>>,
}

/// A guarded call: what it is, when it began (µs since the epoch) and how long it may run.
#[derive(Clone, Copy)]
struct Call {
    what: &'static str,
    since_us: i64,
    limit: Duration,
}

/// A guarded call in progress (ends when dropped; logged if it took [`Watchdog::SLOW`] or more).
pub struct Watched<'a>(&'a Watchdog);

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        if let Some(call) = self.0.lock().take() {
            let took = Duration::from_micros(crate::record::now_us().saturating_sub(call.since_us).max(0) as u64);
            if took >= Watchdog::SLOW {
                tracing::warn!("{} took {:.1}s", call.what, took.as_secs_f64());
            }
        }
    }
}

impl Watchdog {
    /// How often the watchdog's thread looks: a stuck call is caught at most this late.
    pub const EVERY: Duration = Duration::from_millis(250);
    /// A guarded call that returns after this long is logged with its duration, so that a stall
    /// can be traced to the call that held the loop.
    pub const SLOW: Duration = Duration::from_secs(1);

    fn new() -> Watchdog {
        Watchdog { call: std::sync::Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Call>> {
        self.call.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A watchdog checking every [`Watchdog::EVERY`] from its own thread.
    pub fn start() -> std::sync::Arc<Watchdog> {
        let w = std::sync::Arc::new(Watchdog::new());
        let watched = w.clone();
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(Watchdog::EVERY);
                if let Some(stuck) = watched.stuck(crate::record::now_us()) {
                    tracing::error!("{stuck}; starting the process over");
                    restart_process();
                }
            })
            .expect("watchdog thread");
        w
    }

    /// Marks the start of a guarded call that must return within `limit`.
    pub fn watch(&self, what: &'static str, limit: Duration) -> Watched<'_> {
        *self.lock() = Some(Call { what, since_us: crate::record::now_us(), limit });
        Watched(self)
    }

    /// Why the process is stuck at `now_us`, if a guarded call has run longer than its limit.
    pub fn stuck(&self, now_us: i64) -> Option<String> {
        let call = (*self.lock())?;
        let running = Duration::from_micros(now_us.saturating_sub(call.since_us).max(0) as u64);
        (running > call.limit).then(|| {
            format!("{} has not returned for {:.1}s (limit {:.1}s)", call.what, running.as_secs_f64(), call.limit.as_secs_f64())
        })
    }
}

/// Replaces this process with a fresh copy of itself (same executable, arguments and pid); exits
/// with status 70 if that is impossible (e.g. the executable was replaced on disk).
fn restart_process() -> ! {
    use std::os::unix::process::CommandExt;
    if let Ok(exe) = std::env::current_exe() {
        let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec();
        tracing::error!("re-executing: {err}");
    }
    std::process::exit(70)
}

#[cfg(test)]
mod watchdog_tests {
    use super::*;

    #[test]
    fn a_call_is_stuck_only_past_its_own_limit_and_only_while_in_progress() {
        let w = Watchdog::new();
        assert_eq!(w.stuck(1_000_000_000), None, "nothing in progress");
        let guard = w.watch("init_transactions", Duration::from_secs(3));
        let start = w.lock().unwrap().since_us;
        assert_eq!(w.stuck(start + 2_900_000), None);
        let msg = w.stuck(start + 3_500_000).unwrap();
        assert!(msg.contains("init_transactions has not returned for 3.5s (limit 3.0s)"), "{msg}");
        drop(guard);
        assert_eq!(w.stuck(start + 100_000_000), None, "the call returned");
        let _guard = w.watch("commit_transaction", Duration::from_secs(8));
        let start = w.lock().unwrap().since_us;
        assert_eq!(w.stuck(start + 3_500_000), None, "the next call has a limit of its own");
        assert!(w.stuck(start + 8_500_000).unwrap().contains("commit_transaction"));
    }
}
