//! The join's checkpoint: the next offset to read of every input partition, kept as one record on
//! a topic of its own (`customer_360.join-checkpoints`) and written inside the same Kafka
//! transaction as the outputs it covers. The last committed checkpoint says where a restarted join
//! resumes.
//!
//! The offsets are not committed to a consumer group (`send_offsets_to_transaction`): that adds
//! two sequential round trips to every transaction (`AddOffsetsToTxn` to the transaction
//! coordinator, `TxnOffsetCommit` to the group coordinator, each a replicated append) and a
//! second coordinator the commit depends on, and librdkafka's call can wait for ever when that
//! coordinator's broker goes away (confluentinc/librdkafka#5456, #5511). A record on a topic the
//! transaction already writes to costs neither: it is one more partition in the same
//! `AddPartitionsToTxn`, its marker written beside the output's.
//!
//! Every record holds the whole map, so the last one is enough; the topic is compacted on one key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::Error;
use crate::session::{tolerate, LoopError};

/// The topic of the join's checkpoints (one partition, compacted).
pub const TOPIC: &str = "customer_360.join-checkpoints";
/// The key of every checkpoint.
pub const KEY: &str = "cdc-chaos-join";

/// Next offset to read, per input (topic, partition).
pub type Positions = HashMap<(String, i32), i64>;

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    inputs: Vec<Input>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    topic: String,
    partition: i32,
    next: i64,
}

/// The checkpoint of `positions`, inputs in (topic, partition) order.
pub fn encode(positions: &Positions) -> Vec<u8> {
    let mut inputs: Vec<Input> = positions.iter().map(|((topic, partition), next)| Input { topic: topic.clone(), partition: *partition, next: *next }).collect();
    inputs.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    serde_json::to_vec(&Record { inputs }).expect("a checkpoint is JSON")
}

/// The positions of a checkpoint, or what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<Positions, String> {
    let record: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut positions = Positions::new();
    for i in record.inputs {
        if i.next < 0 {
            return Err(format!("{}/{}: negative offset {}", i.topic, i.partition, i.next));
        }
        if positions.insert((i.topic.clone(), i.partition), i.next).is_some() {
            return Err(format!("{}/{} appears twice", i.topic, i.partition));
        }
    }
    Ok(positions)
}

/// The positions of the last committed checkpoint, `None` when the topic holds none.
///
/// Reads from a window at the end of the partition, widening it until a record is found:
/// transaction markers and aborted records take offsets too, so the last record is not at the
/// end. Call it after `init_transactions`, which completes or aborts the previous instance's
/// transaction, so that everything up to the high watermark is readable.
pub fn read_last(consumer: &BaseConsumer, stop: &AtomicBool) -> Result<Option<Positions>, LoopError> {
    let retry = |what: &str, e| LoopError::Retry(Error::kafka(format!("{what} of {TOPIC}"), e));
    let (low, high) = consumer.fetch_watermarks(TOPIC, 0, Duration::from_secs(10)).map_err(|e| retry("watermarks", e))?;
    if high <= low {
        return Ok(None);
    }
    let mut window = 64;
    loop {
        let start = (high - window).max(low);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(start)).expect("valid offset");
        consumer.assign(&tpl).map_err(|e| retry("assign", e))?;
        let mut last = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if Instant::now() > deadline {
                return Err(LoopError::Retry(Error::Topic {
                    topic: TOPIC.into(),
                    message: format!("did not reach the high watermark {high} from {start} in 30 s"),
                }));
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let positions = decode(m.payload().unwrap_or_default()).map_err(|message| {
                        LoopError::Fatal(Error::Checkpoint { topic: TOPIC.into(), offset: m.offset(), message })
                    })?;
                    last = Some(positions);
                    if m.offset() + 1 >= high {
                        break;
                    }
                }
                Some(Err(e)) => tolerate(consumer, &format!("reading {TOPIC}"), &e).map_err(LoopError::from)?,
                None => {
                    let at = consumer.position().map_err(|e| retry("position", e))?;
                    let pos = at.find_partition(TOPIC, 0).and_then(|p| if let Offset::Offset(o) = p.offset() { Some(o) } else { None });
                    if pos.is_some_and(|p| p >= high) {
                        break;
                    }
                }
            }
        }
        if last.is_some() || start == low {
            return Ok(last);
        }
        window *= 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_what_is_wrong() {
        assert!(decode(b"{\"inputs\":[{\"topic\":\"t\",\"partition\":0,\"next\":-1}]}").unwrap_err().contains("t/0: negative offset -1"));
        let twice = b"{\"inputs\":[{\"topic\":\"t\",\"partition\":0,\"next\":1},{\"topic\":\"t\",\"partition\":0,\"next\":2}]}";
        assert_eq!(decode(twice).unwrap_err(), "t/0 appears twice");
        assert!(decode(b"{\"inputs\":[{\"topic\":\"t\",\"partition\":0}]}").unwrap_err().contains("missing field `next`"));
        assert!(decode(b"").is_err());
    }

    #[test]
    fn is_ordered_json() {
        let p: Positions = [(("b".to_string(), 1), 7), (("a".to_string(), 2), 3), (("a".to_string(), 0), 0)].into_iter().collect();
        assert_eq!(
            String::from_utf8(encode(&p)).unwrap(),
            r#"{"inputs":[{"topic":"a","partition":0,"next":0},{"topic":"a","partition":2,"next":3},{"topic":"b","partition":1,"next":7}]}"#
        );
    }

    proptest! {
        #[test]
        fn decodes_what_it_encodes(p in proptest::collection::hash_map(("[a-z._-]{1,20}", 0i32..64), 0i64..i64::MAX, 0..20)) {
            prop_assert_eq!(decode(&encode(&p)).unwrap(), p);
        }
    }
}
