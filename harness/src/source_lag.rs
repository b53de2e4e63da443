//! Whether each Debezium connector had captured its database's acknowledged transactions when the
//! run ended: the last source offset Kafka Connect committed for it (read from Connect's offsets
//! topic after quiescence, kept in `run.json`) against the acknowledged transactions of the
//! history. A connector whose committed offset stops short of them stopped capturing — its task
//! failed or hangs — or had not yet committed their offsets: the diagnosis behind changes lost
//! with their last sighting at the source, which the checker alone cannot tell from a skip.
//!
//! MariaDB offsets carry a GTID set (`gtids`, `domain-server-sequence` per domain) and the history
//! each transaction's GTID (`@@last_gtid`): sequence numbers are commit order, so the comparison
//! is exact — but for the transaction the offset was inside (`event` set: Debezium names the
//! set completed before it), which counts as read. PostgreSQL offsets carry the `txId` of the last transaction read and the history the
//! 32-bit xid: xids are assigned at the first write, not at commit, so up to one transaction per
//! writer may legitimately have a larger xid than the last one committed (`tolerance`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::history::{Operation, Outcome};

/// A connector and the database it captures.
pub struct Capture<'a> {
    pub connector: &'a str,
    pub database: &'a str,
}

/// How far a connector's committed offset is behind the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Behind {
    pub connector: String,
    pub database: String,
    /// The committed position, as the offset names it (`GTID 0-1-67`, `txId 812`).
    pub committed: String,
    /// Acknowledged transactions that changed a row and come after it.
    pub transactions: usize,
    /// The last of them, as the history names it.
    pub last: String,
}

impl std::fmt::Display for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the last source offset Kafka Connect committed is {}, and {} acknowledged {} transactions come after it (the last {}): the connector had stopped capturing, or not committed their offsets, when the run ended",
            self.connector, self.committed, self.transactions, self.database, self.last
        )
    }
}

/// The connectors of `captures` whose committed offsets stop short of their database's
/// acknowledged transactions. `tolerance`: transactions a PostgreSQL offset may trail by (the
/// writers of that database). A connector with no committed offset, or an offset that names no
/// position this module reads, is left out.
pub fn behind(ops: &[Operation], offsets: &BTreeMap<String, Value>, captures: &[Capture], tolerance: usize) -> Vec<Behind> {
    let mut out = Vec::new();
    for c in captures {
        let Some(offset) = offsets.get(c.connector) else { continue };
        let changed = ops
            .iter()
            .filter(|o| o.database() == c.database && o.outcome == Outcome::Ok)
            .filter(|o| o.rows.iter().any(|r| r.affected == Some(true)))
            .filter_map(|o| o.tx.as_deref());
        let found = if let Some(gtids) = offset.get("gtids").and_then(Value::as_str) {
            let committed = gtid_set(gtids);
            // An offset inside a transaction (`event`: events of it already emitted) names the
            // set before it: the next sequence number is the transaction it was reading.
            let reading = u64::from(offset.get("event").is_some());
            let after: Vec<(u64, &str)> = changed
                .filter_map(|tx| gtid(tx).map(|(domain, seq)| (domain, seq, tx)))
                .filter(|(domain, seq, _)| committed.get(domain).is_none_or(|c| *seq > c + reading))
                .map(|(_, seq, tx)| (seq, tx))
                .collect();
            let last = after.iter().max().map(|(_, tx)| tx.to_string());
            (!after.is_empty()).then(|| (format!("GTID {gtids}"), after.len(), last.unwrap_or_default()))
        } else if let Some(tx_id) = offset.get("txId").and_then(Value::as_u64) {
            let after: Vec<u64> = changed.filter_map(|tx| tx.parse::<u64>().ok()).filter(|x| *x > tx_id).collect();
            (after.len() > tolerance).then(|| (format!("txId {tx_id}"), after.len(), after.iter().max().map(u64::to_string).unwrap_or_default()))
        } else {
            None
        };
        if let Some((committed, transactions, last)) = found {
            out.push(Behind { connector: c.connector.into(), database: c.database.into(), committed, transactions, last });
        }
    }
    out
}

/// `domain-server-sequence` → (domain, sequence).
fn gtid(s: &str) -> Option<(u64, u64)> {
    let mut parts = s.trim().split('-');
    let (domain, _server, seq) = (parts.next()?.parse().ok()?, parts.next()?, parts.next()?.parse().ok()?);
    parts.next().is_none().then_some((domain, seq))
}

/// A MariaDB GTID set (`0-1-67,1-2-5`) → the highest sequence per domain.
fn gtid_set(s: &str) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for (domain, seq) in s.split(',').filter_map(gtid) {
        let e = out.entry(domain).or_insert(seq);
        *e = (*e).max(seq);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Phase, RowOp};
    use cdc_pipeline::decode::Table;
    use proptest::prelude::*;
    use serde_json::json;

    fn op(index: u64, table: Table, tx: &str, affected: bool) -> Operation {
        Operation {
            index,
            worker: format!("{}-0", table.database()),
            phase: Phase::Load,
            intended_us: 0,
            invoke_us: 0,
            complete_us: Some(1),
            outcome: Outcome::Ok,
            tx: Some(tx.into()),
            write_id: None,
            rows: vec![RowOp { table, pk: 1, kind: crate::history::Kind::Update, customer_id: None, affected: Some(affected) }],
            error: None,
        }
    }

    const CAPTURES: [Capture; 2] = [Capture { connector: "crm-source", database: "crm" }, Capture { connector: "fleet-source", database: "fleet" }];

    #[test]
    fn a_mariadb_connector_that_stopped_is_behind_by_the_gtids_after_its_offset() {
        let ops: Vec<Operation> = (60..=70).map(|n| op(n, Table::Vehicles, &format!("0-1-{n}"), true)).chain([op(99, Table::Vehicles, "0-1-99", false)]).collect();
        let offsets = BTreeMap::from([("fleet-source".to_string(), json!({"file": "binlog.000001", "pos": 88312, "gtids": "0-1-67", "row": 1}))]);
        let b = behind(&ops, &offsets, &CAPTURES, 0);
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].committed.as_str(), b[0].transactions, b[0].last.as_str()), ("GTID 0-1-67", 3, "0-1-70"), "a no-op (0-1-99) is no event");
        assert!(b[0].to_string().starts_with("fleet-source: the last source offset Kafka Connect committed is GTID 0-1-67, and 3 acknowledged fleet transactions"), "{}", b[0]);
        let caught_up = BTreeMap::from([("fleet-source".to_string(), json!({"gtids": "0-1-70"}))]);
        assert_eq!(behind(&ops, &caught_up, &CAPTURES, 0), vec![]);
        // The last record of 0-1-70 carries the set before it, and the events it had read.
        let inside_the_last = BTreeMap::from([("fleet-source".to_string(), json!({"gtids": "0-1-69", "event": 2, "row": 1}))]);
        assert_eq!(behind(&ops, &inside_the_last, &CAPTURES, 0), vec![]);
        let inside_an_earlier = BTreeMap::from([("fleet-source".to_string(), json!({"gtids": "0-1-68", "event": 2, "row": 1}))]);
        assert_eq!(behind(&ops, &inside_an_earlier, &CAPTURES, 0)[0].transactions, 1);
        assert_eq!(behind(&ops, &BTreeMap::new(), &CAPTURES, 0), vec![], "no committed offset: nothing to compare");
    }

    #[test]
    fn a_postgres_connector_may_trail_by_the_transactions_in_flight() {
        let ops: Vec<Operation> = [810, 812, 811, 813].iter().map(|x| op(*x, Table::Customers, &x.to_string(), true)).collect();
        let offsets = BTreeMap::from([("crm-source".to_string(), json!({"lsn": 1, "txId": 811}))]);
        assert_eq!(behind(&ops, &offsets, &CAPTURES, 2), vec![]);
        let b = behind(&ops, &offsets, &CAPTURES, 1);
        assert_eq!((b[0].committed.as_str(), b[0].transactions, b[0].last.as_str()), ("txId 811", 2, "813"));
    }

    proptest! {
        /// Exactly the GTIDs past the committed sequence count, whatever the order of the history.
        #[test]
        fn gtids_past_the_offset_count(seqs in proptest::collection::vec(1u64..500, 1..60), committed in 0u64..500) {
            let ops: Vec<Operation> = seqs.iter().enumerate().map(|(i, s)| op(i as u64, Table::Vehicles, &format!("0-1-{s}"), true)).collect();
            let offsets = BTreeMap::from([("fleet-source".to_string(), json!({"gtids": format!("0-1-{committed},1-2-900")}))]);
            let n = seqs.iter().filter(|s| **s > committed).count();
            let b = behind(&ops, &offsets, &CAPTURES, 0);
            prop_assert_eq!(b.first().map(|b| b.transactions).unwrap_or(0), n);
            if n > 0 {
                prop_assert_eq!(b[0].last.clone(), format!("0-1-{}", seqs.iter().max().unwrap()));
            }
        }
    }
}
