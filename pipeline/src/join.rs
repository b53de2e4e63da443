//! The `customer_360` join (docs/architecture.md, Semantics): a document per existing customer holding its columns plus
//! the current `flights[]` and `vehicles[]` whose `customer_id` matches, ordered by id.
//!
//! Owns the join state and the rule "every input change gives exactly one output record" naming
//! the documents it affected: none (an orphan flight or vehicle), one, or two (a row that moved
//! between customers). Flights and vehicles of a missing customer stay in state and appear when
//! the customer does. It must not know about Kafka: offsets and transactions belong to the loop.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::decode::{Change, EventId, Op, Table};

type Row = Map<String, Value>;

/// The current rows of the three tables, and which flights and vehicles each customer id has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinState {
    customers: BTreeMap<i64, Row>,
    flights: BTreeMap<i64, Row>,
    vehicles: BTreeMap<i64, Row>,
    flights_of: BTreeMap<i64, BTreeSet<i64>>,
    vehicles_of: BTreeMap<i64, BTreeSet<i64>>,
}

/// A document change: the new document of `customer_id`, or `None` when the customer is gone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DocumentChange {
    pub customer_id: i64,
    pub document: Option<Value>,
}

/// The one output record of one input change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    pub event: EventId,
    pub source_ts_us: i64,
    /// Zero, one or two documents, ordered by customer id.
    pub documents: Vec<DocumentChange>,
}

fn customer_id(row: &Row) -> i64 {
    row.get("customer_id").and_then(Value::as_i64).unwrap_or(i64::MIN)
}

impl JoinState {
    pub fn new() -> JoinState {
        JoinState::default()
    }

    /// Applies one change and returns its output record.
    pub fn apply(&mut self, change: &Change) -> Output {
        let pk = change.id.pk;
        let mut touched = BTreeSet::new();
        match change.id.table {
            Table::Customers => {
                match change.op {
                    Op::Upsert => {
                        self.customers.insert(pk, change.row.clone());
                    }
                    Op::Delete => {
                        self.customers.remove(&pk);
                    }
                }
                touched.insert(pk);
            }
            Table::Flights | Table::Vehicles => {
                let (rows, index) = match change.id.table {
                    Table::Flights => (&mut self.flights, &mut self.flights_of),
                    _ => (&mut self.vehicles, &mut self.vehicles_of),
                };
                if let Some(old) = rows.remove(&pk) {
                    let owner = customer_id(&old);
                    if let Some(set) = index.get_mut(&owner) {
                        set.remove(&pk);
                        if set.is_empty() {
                            index.remove(&owner);
                        }
                    }
                    touched.insert(owner);
                }
                if change.op == Op::Upsert {
                    let owner = customer_id(&change.row);
                    rows.insert(pk, change.row.clone());
                    index.entry(owner).or_default().insert(pk);
                    touched.insert(owner);
                }
                // Documents exist only for existing customers: an orphan's change affects none.
                touched.retain(|c| self.customers.contains_key(c));
            }
        }
        let documents = touched
            .into_iter()
            .map(|customer_id| DocumentChange { customer_id, document: self.document(customer_id) })
            .collect();
        Output { event: change.id.clone(), source_ts_us: change.source_ts_us, documents }
    }

    /// The current document of `customer_id`, or `None` if the customer does not exist.
    pub fn document(&self, customer_id: i64) -> Option<Value> {
        let customer = self.customers.get(&customer_id)?;
        let collect = |rows: &BTreeMap<i64, Row>, index: &BTreeMap<i64, BTreeSet<i64>>| -> Vec<Value> {
            index
                .get(&customer_id)
                .map(|ids| ids.iter().filter_map(|id| rows.get(id)).cloned().map(Value::Object).collect())
                .unwrap_or_default()
        };
        let mut doc = customer.clone();
        doc.insert("flights".into(), Value::Array(collect(&self.flights, &self.flights_of)));
        doc.insert("vehicles".into(), Value::Array(collect(&self.vehicles, &self.vehicles_of)));
        Some(Value::Object(doc))
    }

    /// Every current document, by customer id.
    pub fn documents(&self) -> BTreeMap<i64, Value> {
        self.customers.keys().filter_map(|id| Some((*id, self.document(*id)?))).collect()
    }
}

/// The join computed from scratch from the three tables' current rows (the checker's oracle).
pub fn recompute(customers: &[Row], flights: &[Row], vehicles: &[Row]) -> BTreeMap<i64, Value> {
    let by_owner = |rows: &[Row], owner: i64| -> Vec<Value> {
        let mut v: Vec<&Row> = rows.iter().filter(|r| customer_id(r) == owner).collect();
        v.sort_by_key(|r| r.get("id").and_then(Value::as_i64));
        v.into_iter().cloned().map(Value::Object).collect()
    };
    customers
        .iter()
        .filter_map(|c| {
            let id = c.get("id").and_then(Value::as_i64)?;
            let mut doc = c.clone();
            doc.insert("flights".into(), Value::Array(by_owner(flights, id)));
            doc.insert("vehicles".into(), Value::Array(by_owner(vehicles, id)));
            Some((id, Value::Object(doc)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn change(table: Table, op: Op, pk: i64, owner: i64, version: u32) -> Change {
        let mut row = Map::new();
        row.insert("id".into(), json!(pk));
        if table == Table::Customers {
            row.insert("name".into(), json!(format!("c{pk}v{version}")));
        } else {
            row.insert("customer_id".into(), json!(owner));
            row.insert("v".into(), json!(version));
        }
        Change {
            id: EventId { database: table.database().into(), tx: version.to_string(), table, pk, write_id: None },
            op,
            row,
            before: None,
            source_ts_us: i64::from(version),
            position: version.to_string(),
        }
    }

    #[test]
    fn orphans_wait_for_their_customer_and_moves_touch_both_documents() {
        let mut s = JoinState::new();
        let out = s.apply(&change(Table::Flights, Op::Upsert, 10, 1, 1));
        assert!(out.documents.is_empty(), "an orphan flight affects no document");
        let out = s.apply(&change(Table::Customers, Op::Upsert, 1, 0, 2));
        assert_eq!(out.documents.len(), 1);
        assert_eq!(out.documents[0].document.as_ref().unwrap()["flights"][0]["id"], 10);
        s.apply(&change(Table::Customers, Op::Upsert, 2, 0, 3));
        let out = s.apply(&change(Table::Flights, Op::Upsert, 10, 2, 4));
        assert_eq!(out.documents.iter().map(|d| d.customer_id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(out.documents[0].document.as_ref().unwrap()["flights"], json!([]));
        let out = s.apply(&change(Table::Customers, Op::Delete, 2, 0, 5));
        assert_eq!(out.documents, vec![DocumentChange { customer_id: 2, document: None }]);
        assert_eq!(s.documents().len(), 1);
    }

    /// A random change over a small key space (so that ids collide, move and come back).
    fn arb_change() -> impl Strategy<Value = (u8, bool, i64, i64)> {
        (0u8..3, prop::bool::weighted(0.25), 0i64..6, 0i64..4)
    }

    fn to_change(i: usize, (t, delete, pk, owner): (u8, bool, i64, i64)) -> Change {
        let table = [Table::Customers, Table::Flights, Table::Vehicles][t as usize];
        change(table, if delete { Op::Delete } else { Op::Upsert }, pk, owner, i as u32)
    }

    /// The three tables after applying `changes` directly (the source databases' view).
    fn tables(changes: &[Change]) -> [Vec<Row>; 3] {
        let mut t: [BTreeMap<i64, Row>; 3] = Default::default();
        for c in changes {
            let i = c.id.table as usize;
            match c.op {
                Op::Upsert => {
                    t[i].insert(c.id.pk, c.row.clone());
                }
                Op::Delete => {
                    t[i].remove(&c.id.pk);
                }
            }
        }
        t.map(|m| m.into_values().collect())
    }

    proptest! {
        /// Incremental state equals the join recomputed from the tables, after any sequence.
        #[test]
        fn incremental_equals_recomputed(raw in prop::collection::vec(arb_change(), 0..60)) {
            let changes: Vec<Change> = raw.into_iter().enumerate().map(|(i, r)| to_change(i, r)).collect();
            let mut s = JoinState::new();
            let mut last: BTreeMap<i64, Option<Value>> = BTreeMap::new();
            for c in &changes {
                let out = s.apply(c);
                prop_assert_eq!(&out.event, &c.id, "one output per input, carrying its identity");
                for d in out.documents {
                    last.insert(d.customer_id, d.document);
                }
            }
            let [cs, fs, vs] = tables(&changes);
            let want = recompute(&cs, &fs, &vs);
            prop_assert_eq!(&s.documents(), &want);
            // The output stream, folded, gives the same documents (a deletion removes one).
            let folded: BTreeMap<i64, Value> = last.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
            prop_assert_eq!(folded, want);
        }

        /// Applying a prefix, restarting from state rebuilt out of the prefix, and applying the
        /// rest gives the same outputs as one uninterrupted run.
        #[test]
        fn restart_gives_the_same_output(raw in prop::collection::vec(arb_change(), 0..60), cut in 0usize..60) {
            let changes: Vec<Change> = raw.into_iter().enumerate().map(|(i, r)| to_change(i, r)).collect();
            let cut = cut.min(changes.len());
            let mut whole = JoinState::new();
            let all: Vec<Output> = changes.iter().map(|c| whole.apply(c)).collect();
            let mut rebuilt = JoinState::new();
            for c in &changes[..cut] {
                rebuilt.apply(c);
            }
            let rest: Vec<Output> = changes[cut..].iter().map(|c| rebuilt.apply(c)).collect();
            prop_assert_eq!(&all[cut..], &rest[..]);
        }
    }
}
