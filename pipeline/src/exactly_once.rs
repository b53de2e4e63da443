//! The join's processing loop: raw CDC topics in, `customer_360.changes` (and dead letters) out,
//! exactly once.
//!
//! Under `exactly_once` the loop consumes with `isolation.level=read_committed` and auto-commit
//! off, and writes each batch's outputs and a checkpoint (the next input offsets, a record on
//! [`checkpoint::TOPIC`]) in one Kafka transaction of a producer with a stable `transactional.id`:
//! a restarted instance fences the old one (its next transactional call fails fatally), and a
//! transaction cut short by a crash is aborted, so neither its outputs nor its checkpoint are
//! ever read. Under `at_least_once` outputs are flushed first and the checkpoint written after.
//!
//! **State after a restart** is rebuilt from the input topics themselves (they keep every record):
//! before producing anything, every input partition is replayed from its beginning up to the
//! last committed checkpoint into the join state, without output. This gives exactly the state the
//! previous instance had committed, whatever the interleaving of partitions, because the join
//! state is a function of each source row's latest version and every row lives in one partition,
//! in order. The replay must be complete before the first output: a document emitted while another
//! partition is still replaying would miss rows of that partition. No changelog topic is needed;
//! the cost is a replay time that grows with the topics. Any failed or aborted transaction
//! restarts the session the same way, since the in-memory state already holds the aborted batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::{ClientFiles, Guarantee};
use crate::error::{Error, Result};
use crate::decode::{decode, Decoded};
use crate::join::JoinState;
use crate::metrics::Metrics;
use crate::checkpoint;
use crate::record::{self, now_us, Coordinates, DeadLetter};
use crate::session::{Watchdog, collect_batch, supervise, tolerate, LoopError};

/// Input topics (Debezium's raw CDC topics).
pub const INPUTS: [&str; 3] = ["crm.public.customers", "crm.public.flights", "fleet.fleet.vehicles"];
pub const OUTPUT: &str = "customer_360.changes";
pub const DEAD_LETTER: &str = "customer_360.dead-letter";
/// The join's consumer group. Its committed offsets are read only when the checkpoint topic holds no
/// record yet: they are where a join that committed its offsets to the group (before
/// [`checkpoint`]) stopped. Nothing commits to it any more.
pub const GROUP: &str = "cdc-chaos-join";
/// Transactional id of the join: stable, so a restarted instance fences its predecessor.
pub const TRANSACTIONAL_ID: &str = "cdc-chaos-join";

/// Tunables of the loop.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Most records per transaction.
    pub batch_max: usize,
    /// Longest a batch waits for more records after its first (see [`collect_batch`]).
    pub batch_wait: Duration,
    /// Timeout of transactional calls: 6 s, about the time a dead coordinator's broker takes to be
    /// fenced under `durable` (a 3 s session; 4–7 s measured from the kill). The watchdog starts
    /// the process over 2 s past it ([`LoopConfig::call_limit`]).
    pub txn_timeout: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            batch_max: 2000,
            batch_wait: Duration::from_millis(20),
            txn_timeout: Duration::from_secs(6),
        }
    }
}

impl LoopConfig {
    /// How long a transactional call may block before the watchdog starts the process over: 2 s
    /// past its own timeout.
    pub fn call_limit(&self) -> Duration {
        self.txn_timeout + Duration::from_secs(2)
    }
}

/// A failed call into the Kafka client: fatal when the client can no longer be used
/// ([`Error::is_fatal_client_error`]), a restart of the session otherwise.
fn classify(what: &str, e: KafkaError) -> LoopError {
    LoopError::from(Error::kafka(what, e))
}

/// Counts failed deliveries, so that an at-least-once batch is not committed past a lost write.
#[derive(Default)]
pub struct DeliveryCounter {
    failed: AtomicU64,
}

impl ClientContext for DeliveryCounter {
    /// librdkafka's own log lines, into the join's log (target `librdkafka`): its errors (the
    /// `rdkafka` crate sets the level from the `log` crate's, which nothing here raises), and
    /// everything down to the debug contexts named by [`KAFKA_DEBUG`] when it is set. They are
    /// served while the loop polls the producer, so they appear within a millisecond or so of
    /// being written while a batch commits.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel::*;
        match level {
            Emerg | Alert | Critical | Error => tracing::error!(target: "librdkafka", "{fac} {message}"),
            Warning => tracing::warn!(target: "librdkafka", "{fac} {message}"),
            Notice | Info | Debug => tracing::info!(target: "librdkafka", "{fac} {message}"),
        }
    }
}

/// Environment variable naming librdkafka debug contexts (`eos,broker,msg`, say) to turn on in the
/// join's producer, for an incident's reproduction; its lines go to the join's log.
pub const KAFKA_DEBUG: &str = "CDC_CHAOS_KAFKA_DEBUG";

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs the join until `stop` is set or a fatal error. Sessions that fail are restarted with
/// backoff.
pub fn run(files: &ClientFiles, cfg: &LoopConfig, metrics: &Metrics, stop: &AtomicBool) -> Result<()> {
    // A transactional call of librdkafka's can block past its timeout while a coordinator is away
    // (send_offsets_to_transaction did, confluentinc/librdkafka#5456, #5511, before the input
    // offsets moved to checkpoints of the join's own). The watchdog restarts the process when a
    // call outlives its limit ([`LoopConfig::call_limit`]); the restarted join fences the stuck transaction and
    // loses nothing (docs/pipeline.md).
    let watchdog = Watchdog::start();
    let positions = Positions::default();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("lag".into())
            .spawn_scoped(scope, || measure_lag(files, metrics, &positions, stop, &done))
            .expect("lag thread");
        let result = supervise("join", metrics, stop, || session(files, cfg, metrics, stop, &watchdog, &positions));
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// The next offset the join will read of each input partition, as its processing loop last
/// committed them.
type Positions = std::sync::Mutex<checkpoint::Positions>;

/// Measures the join's consumer lag every 5 s from a thread of its own, with a client of its own,
/// until `stop` or `done`. Querying the partitions' high watermarks with the processing
/// consumer, on the processing thread, waited behind that consumer's fetch long-polls on the same
/// broker connections and held every batch behind it: about 2 s every 7 s (docs/pipeline.md).
fn measure_lag(files: &ClientFiles, metrics: &Metrics, positions: &Positions, stop: &AtomicBool, done: &AtomicBool) {
    let Ok(client) = files.consumer_config(&format!("{GROUP}-lag")).create::<BaseConsumer>() else { return };
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) && !done.load(Ordering::Relaxed) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        next = Instant::now() + Duration::from_secs(5);
        let at: Vec<((String, i32), i64)> = positions.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect();
        if at.is_empty() {
            continue;
        }
        let mut total = 0;
        for ((topic, partition), pos) in at {
            match client.fetch_watermarks(&topic, partition, Duration::from_secs(2)) {
                Ok((_, high)) => total += (high - pos).max(0),
                Err(_) => {
                    total = -1;
                    break;
                }
            }
        }
        metrics.consumer_lag.store(total, Ordering::Relaxed);
    }
}

/// Waits until every record produced has been delivered and its report served, serving the
/// producer's events without blocking and sleeping [`FLUSH_STEP`] whenever none was left; a
/// timeout is `KafkaError::Flush`.
///
/// The rdkafka crate's own `flush`, which its `commit_transaction` calls first, polls in steps of
/// 100 ms, and each step lasts its whole 100 ms (`BaseProducer::poll` returns at its deadline,
/// not at the first event): every commit of the join cost at least 100 ms that way, whatever the
/// brokers took. Called before `commit_transaction`, this leaves that `flush` nothing to wait for.
/// `poll` with a short timeout is no way out either: once less than a millisecond of it is left,
/// it polls librdkafka with a timeout of 0 ms until its deadline, a busy wait (steps of 1 ms took a
/// third of a core at 1,500 events/s, most of it reading the clock).
fn flush(producer: &BaseProducer<DeliveryCounter>, timeout: Duration) -> Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    loop {
        let before = producer.in_flight_count();
        if before == 0 {
            return Ok(());
        }
        // A zero timeout serves at most one event and returns.
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() < before {
            continue;
        }
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        std::thread::sleep(FLUSH_STEP);
    }
}

/// How long [`flush`] sleeps when no delivery report was waiting: a commit waits at most this much
/// longer than its last acknowledgement.
const FLUSH_STEP: Duration = Duration::from_micros(200);

/// Commits the open transaction, calling `commit_transaction` again while it fails with an error
/// librdkafka marks retriable (the coordinator's broker unreachable, the coordinator moving), until
/// `timeout`. Retrying is what librdkafka asks of a retriable commit error; giving up at the
/// first one restarted the whole session after every coordinator move.
fn commit(producer: &BaseProducer<DeliveryCounter>, timeout: Duration) -> Result<(), LoopError> {
    let deadline = Instant::now() + timeout;
    loop {
        match producer.commit_transaction(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && Instant::now() + Duration::from_millis(50) < deadline => {
                tracing::warn!("commit_transaction: {e}; retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(classify("commit_transaction", e)),
        }
    }
}

fn produce(producer: &BaseProducer<DeliveryCounter>, topic: &str, key: &str, value: &[u8]) -> Result<(), LoopError> {
    let mut record = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                producer.poll(Duration::from_millis(50));
                record = r;
            }
            Err((e, _)) => return Err(classify(&format!("producing to {topic}"), e)),
        }
    }
}

/// One session: connect, rebuild state, then process batches until stopped or an error.
pub fn session(
    files: &ClientFiles,
    cfg: &LoopConfig,
    metrics: &Metrics,
    stop: &AtomicBool,
    watchdog: &Watchdog,
    positions: &Positions,
) -> Result<(), LoopError> {
    let eos = files.guarantee == Guarantee::ExactlyOnce;
    let consumer: BaseConsumer = files.consumer_config(GROUP).create().map_err(|e| LoopError::Fatal(Error::kafka("consumer", e)))?;
    let mut pc = files.producer_config();
    if eos {
        pc.set("transactional.id", TRANSACTIONAL_ID);
        pc.set("transaction.timeout.ms", "60000");
    }
    // How often the producer asks for the leaders of the partitions it writes, whether or not it
    // saw a leader fail: librdkafka's default is 5 min, and after the output partition's leader
    // was SIGKILLed it went on with the dead leader for 4.7 s, 1.8 s past the node's fencing,
    // while the transaction's flush waited for it. The cost: one small metadata request (two
    // topics) every 500 ms.
    pc.set("topic.metadata.refresh.interval.ms", "500");
    if let Some(contexts) = std::env::var(KAFKA_DEBUG).ok().filter(|c| !c.is_empty()) {
        pc.set("debug", contexts);
        pc.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    let producer: BaseProducer<DeliveryCounter> =
        pc.create_with_context(DeliveryCounter::default()).map_err(|e| LoopError::Fatal(Error::kafka("producer", e)))?;
    let result = process(files, cfg, metrics, stop, &consumer, &producer, watchdog, positions);
    // librdkafka reports a fatal error as a generic `_FATAL` at the call that hit it; the cause
    // (e.g. "producer fenced by a newer instance") is kept on the client.
    match (result, producer.client().fatal_error()) {
        (Err(LoopError::Fatal(e)), Some((code, reason))) => Err(LoopError::Fatal(Error::KafkaFatal { what: e.to_string(), code, reason })),
        (r, _) => r,
    }
}

/// The body of a session, with its clients.
fn process(
    files: &ClientFiles,
    cfg: &LoopConfig,
    metrics: &Metrics,
    stop: &AtomicBool,
    consumer: &BaseConsumer,
    producer: &BaseProducer<DeliveryCounter>,
    watchdog: &Watchdog,
    positions: &Positions,
) -> Result<(), LoopError> {
    let eos = files.guarantee == Guarantee::ExactlyOnce;
    if eos {
        let _w = watchdog.watch("init_transactions", cfg.call_limit());
        producer.init_transactions(cfg.txn_timeout).map_err(|e| classify("init_transactions", e))?;
    }

    // Every partition of every input topic, from the beginning; the last committed checkpoint says
    // where output resumes.
    let mut all = TopicPartitionList::new();
    for topic in INPUTS {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| LoopError::Retry(Error::kafka(format!("metadata of {topic}"), e)))?;
        let t = md.topics().first().filter(|t| t.error().is_none() && !t.partitions().is_empty());
        let t = t.ok_or_else(|| LoopError::Retry(Error::Topic { topic: topic.into(), message: "no partitions yet".into() }))?;
        for p in t.partitions() {
            all.add_partition_offset(topic, p.id(), Offset::Beginning).expect("valid offset");
        }
    }
    let mut resume = resume_positions(files, &all, stop)?;
    let t = Instant::now();
    let mut state = JoinState::new();
    let replayed = replay(files, &all, &resume, &mut state, stop)?;
    if stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    tracing::info!("join session: state rebuilt from {replayed} records in {:.1}s; resuming output at {resume:?}", t.elapsed().as_secs_f64());
    let mut from = TopicPartitionList::new();
    for ((topic, partition), at) in &resume {
        let offset = if *at > 0 { Offset::Offset(*at) } else { Offset::Beginning };
        from.add_partition_offset(topic, *partition, offset).expect("valid offset");
    }
    consumer.assign(&from).map_err(|e| LoopError::Retry(Error::kafka("assign", e)))?;
    *positions.lock().unwrap_or_else(|p| p.into_inner()) = resume.clone();
    metrics.ready.store(1, Ordering::Relaxed);

    // The output record being written; its allocation is kept from one record to the next.
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let batch = collect_batch(consumer, cfg.batch_max, cfg.batch_wait).map_err(LoopError::Retry)?;
        if batch.is_empty() {
            continue;
        }
        metrics.records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);

        // Where this batch leaves the inputs: the checkpoint it commits.
        let mut after = resume.clone();
        let mut in_txn = false;
        let (mut outputs, mut dead) = (0u64, 0u64);
        for m in &batch {
            let key = (m.topic().to_string(), m.partition());
            let input = Coordinates::of(m.topic(), m.partition(), m.offset());
            let decoded = decode(m.topic(), m.payload());
            if eos && !in_txn && !matches!(decoded, Ok(Decoded::Tombstone)) {
                producer.begin_transaction().map_err(|e| classify("begin_transaction", e))?;
                in_txn = true;
            }
            match &decoded {
                Ok(Decoded::Change(c)) => {
                    let touched = state.update(c);
                    out.clear();
                    record::encode_into(&mut out, c, &state, &touched, &input, now_us());
                    produce(producer, OUTPUT, &record::key(&c.id), &out)?;
                    outputs += 1;
                }
                Ok(Decoded::Tombstone) => {}
                Err(e) => {
                    let dl = DeadLetter {
                        reason: e.reason.clone(),
                        input: input.clone(),
                        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        value: m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
                    };
                    let key = format!("{}/{}/{}", input.topic, input.partition, input.offset);
                    produce(producer, DEAD_LETTER, &key, &serde_json::to_vec(&dl).expect("json"))?;
                    tracing::warn!("dead letter {key}: {}", e.reason);
                    dead += 1;
                }
            }
            after.insert(key, m.offset() + 1);
        }
        let checkpoint_record = checkpoint::encode(&after);
        let t = Instant::now();
        if eos {
            if !in_txn {
                producer.begin_transaction().map_err(|e| classify("begin_transaction", e))?;
            }
            produce(producer, checkpoint::TOPIC, checkpoint::KEY, &checkpoint_record)?;
            // A transaction that fails is not aborted here: `abort_transaction` needs the
            // coordinator too, and waits its whole timeout when that coordinator's broker is the one
            // gone. The next session's `init_transactions` ends it (completes it if its commit
            // reached the coordinator, aborts it otherwise), and the checkpoint that session reads
            // is the one of whichever outcome that was.
            let w = watchdog.watch("flush", cfg.call_limit());
            flush(producer, cfg.txn_timeout).map_err(|e| classify("flush before commit_transaction", e))?;
            drop(w);
            let _w = watchdog.watch("commit_transaction", cfg.call_limit());
            commit(producer, cfg.txn_timeout)?;
        } else {
            // Every record so far delivered, or the session starts over.
            let deliver = || {
                flush(producer, cfg.txn_timeout).map_err(|e| classify("flush", e))?;
                match producer.context().failed.load(Ordering::Relaxed) {
                    0 => Ok(()),
                    failed => Err(LoopError::Retry(Error::Undelivered { failed })),
                }
            };
            let _w = watchdog.watch("flush", cfg.call_limit());
            deliver()?;
            produce(producer, checkpoint::TOPIC, checkpoint::KEY, &checkpoint_record)?;
            deliver()?;
        }
        metrics.observe_commit(t.elapsed().as_secs_f64());
        metrics.commits.fetch_add(1, Ordering::Relaxed);
        metrics.events_out.fetch_add(outputs, Ordering::Relaxed);
        metrics.dead_letters.fetch_add(dead, Ordering::Relaxed);
        positions.lock().unwrap_or_else(|p| p.into_inner()).clone_from(&after);
        resume = after;
    }
    Ok(())
}

/// Where output resumes: the last committed checkpoint, or, when the checkpoint topic holds
/// none yet, the group's committed offsets ([`GROUP`]); 0 for a partition neither names.
fn resume_positions(files: &ClientFiles, all: &TopicPartitionList, stop: &AtomicBool) -> Result<checkpoint::Positions, LoopError> {
    let reader: BaseConsumer =
        files.consumer_config(&format!("{GROUP}-checkpoint")).create().map_err(|e| LoopError::Fatal(Error::kafka("checkpoint consumer", e)))?;
    let mut resume: checkpoint::Positions = all.elements().iter().map(|e| ((e.topic().to_string(), e.partition()), 0)).collect();
    if let Some(last) = checkpoint::read_last(&reader, stop)? {
        resume.extend(last);
        return Ok(resume);
    }
    if stop.load(Ordering::Relaxed) {
        return Ok(resume);
    }
    let committed = reader
        .committed_offsets(all.clone(), Duration::from_secs(10))
        .map_err(|e| LoopError::Retry(Error::kafka(format!("committed offsets of group {GROUP}"), e)))?;
    for e in committed.elements() {
        if let Offset::Offset(o) = e.offset() {
            resume.insert((e.topic().to_string(), e.partition()), o);
        }
    }
    Ok(resume)
}

/// Applies every input record before `resume` (per partition) to `state`, without output.
/// Returns how many records were applied.
fn replay(
    files: &ClientFiles,
    all: &TopicPartitionList,
    resume: &HashMap<(String, i32), i64>,
    state: &mut JoinState,
    stop: &AtomicBool,
) -> Result<u64, LoopError> {
    let mut pending: HashMap<(String, i32), i64> = resume.iter().filter(|(_, at)| **at > 0).map(|(k, v)| (k.clone(), *v)).collect();
    if pending.is_empty() {
        return Ok(0);
    }
    let consumer: BaseConsumer = files
        .consumer_config(&format!("{GROUP}-replay"))
        .create()
        .map_err(|e| LoopError::Fatal(Error::kafka("replay consumer", e)))?;
    consumer.assign(all).map_err(|e| LoopError::Retry(Error::kafka("replay assign", e)))?;
    let mut applied = 0u64;
    let mut idle_since = Instant::now();
    let mut idle_rounds = 0;
    while !pending.is_empty() && !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                idle_since = Instant::now();
                idle_rounds = 0;
                let key = (m.topic().to_string(), m.partition());
                let Some(end) = pending.get(&key).copied() else { continue };
                if m.offset() < end {
                    if let Ok(Decoded::Change(c)) = decode(m.topic(), m.payload()) {
                        state.update(&c);
                        applied += 1;
                    }
                }
                if m.offset() + 1 >= end {
                    pending.remove(&key);
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&key.0, key.1);
                    let _ = consumer.pause(&tpl);
                }
            }
            // A broker still down when the process starts over (a watchdog restart after a
            // coordinator's kill) is not a reason to start the replay over again. But while the
            // client reports trouble, a partition that yields nothing is not complete: the
            // count of quiet rounds that would take it as complete starts again.
            Some(Err(e)) => {
                tolerate(&consumer, "replaying", &e)?;
                idle_rounds = 0;
            }
            None => {
                // The last records before a committed offset may be transaction markers, which a
                // read_committed consumer never returns: a partition whose position reached the
                // end offset is done (the client's own position, no broker asked), and one whose
                // log holds nothing more is done too (asked after a second without records).
                let positions = consumer.position().map_err(|e| LoopError::Retry(Error::kafka("replay position", e)))?;
                pending.retain(|(topic, partition), end| position_of(&positions, topic, *partition) < *end);
                if !pending.is_empty() && idle_since.elapsed() > Duration::from_secs(1) {
                    idle_rounds += 1;
                    pending.retain(|(topic, partition), end| {
                        let pos = position_of(&positions, topic, *partition);
                        let high = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5)).map(|(_, h)| h).unwrap_or(i64::MAX);
                        let open = pos < *end && pos < high;
                        // Should the position never move past trailing markers, a partition that
                        // yields nothing for 10 s is taken as complete (and said so).
                        if open && idle_rounds >= 10 {
                            tracing::warn!("replay of {topic}/{partition}: no records for 10 s at position {pos} (end {end}, high watermark {high}); taking it as complete");
                            return false;
                        }
                        open
                    });
                    idle_since = Instant::now();
                }
            }
        }
    }
    Ok(applied)
}

/// A partition's position in `positions` (0 when it has none yet).
fn position_of(positions: &TopicPartitionList, topic: &str, partition: i32) -> i64 {
    positions.find_partition(topic, partition).and_then(|p| if let Offset::Offset(o) = p.offset() { Some(o) } else { None }).unwrap_or(0)
}
