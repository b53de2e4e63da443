//! The `customer_360` join (docs/architecture.md, Semantics): a document per existing customer holding its columns plus
//! the current `flights[]` and `vehicles[]` whose `customer_id` matches, ordered by id.
//!
//! Owns the join state and the rule "every input change gives exactly one output record" naming
//! the documents it affected: none (an orphan flight or vehicle), one, or two (a row that moved
//! between customers). Flights and vehicles of a missing customer stay in state and appear when
//! the customer does. It must not know about Kafka: offsets and transactions belong to the loop.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use serde_json::{Map, Value};

use crate::decode::{Change, EventId, Op, Row, Table};

/// A row's columns, as the checker's oracle ([`recompute`]) takes them.
pub type Columns = Map<String, Value>;

/// The current rows of the three tables: customers by id, flights and vehicles under the
/// customer id they name, ordered by their own id, so that a document is written by walking one
/// customer's rows. Rows are kept as the text Debezium sent; a document is their texts spliced
/// together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinState {
    customers: HashMap<i64, Row>,
    flights: Owned,
    vehicles: Owned,
}

/// The flights or the vehicles: each row under its owner's id, and each row's owner by its id.
/// A customer has a handful of rows: a vector sorted by id holds them in one allocation.
#[derive(Debug, Clone, Default, PartialEq)]
struct Owned {
    by_owner: HashMap<i64, Vec<(i64, Row)>>,
    owner_of: HashMap<i64, i64>,
}

impl Owned {
    /// Removes row `pk`, returning the owner it had.
    fn remove(&mut self, pk: i64) -> Option<i64> {
        let was = self.owner_of.remove(&pk)?;
        if let Some(rows) = self.by_owner.get_mut(&was) {
            if let Ok(at) = rows.binary_search_by_key(&pk, |(id, _)| *id) {
                rows.remove(at);
            }
            if rows.is_empty() {
                self.by_owner.remove(&was);
            }
        }
        Some(was)
    }

    /// Puts row `pk` under its owner, returning that owner.
    fn insert(&mut self, pk: i64, row: &Row) -> i64 {
        let owner = owner(row);
        self.owner_of.insert(pk, owner);
        let rows = self.by_owner.entry(owner).or_default();
        match rows.binary_search_by_key(&pk, |(id, _)| *id) {
            Ok(at) => rows[at].1 = row.clone(),
            Err(at) => rows.insert(at, (pk, row.clone())),
        }
        owner
    }

    /// The rows of `customer_id`, by id.
    fn of(&self, customer_id: i64) -> impl Iterator<Item = &Row> {
        self.by_owner.get(&customer_id).into_iter().flatten().map(|(_, row)| row)
    }
}

/// A document change: the new document of `customer_id`, or `None` when the customer is gone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DocumentChange {
    pub customer_id: i64,
    pub document: Option<Value>,
}

/// A document change as the join makes it: the document as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentText {
    pub customer_id: i64,
    /// The document's JSON object, or `None` when the customer is gone.
    pub document: Option<String>,
}

impl DocumentText {
    /// The same change with the document parsed.
    pub fn parsed(&self) -> DocumentChange {
        DocumentChange {
            customer_id: self.customer_id,
            document: self.document.as_deref().map(|d| serde_json::from_str(d).expect("a document the join made is JSON")),
        }
    }
}

/// The one output record of one input change.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub event: EventId,
    pub source_ts_us: i64,
    /// Zero, one or two documents, ordered by customer id.
    pub documents: Vec<DocumentText>,
}

/// The customers whose documents one change affected: none, one or two, in increasing id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touched([Option<i64>; 2]);

impl Touched {
    fn new(mut ids: [Option<i64>; 2]) -> Touched {
        if let [Some(a), Some(b)] = ids {
            if b < a {
                ids = [Some(b), Some(a)];
            }
        }
        if ids[0].is_none() {
            ids = [ids[1], None];
        }
        Touched(ids)
    }

    /// The customer ids, in increasing order.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().flatten().copied()
    }

    /// How many documents.
    pub fn len(&self) -> usize {
        self.0.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }
}

fn owner(row: &Row) -> i64 {
    row.customer_id.unwrap_or(i64::MIN)
}

impl JoinState {
    pub fn new() -> JoinState {
        JoinState::default()
    }

    /// Applies one change and returns its output record.
    pub fn apply(&mut self, change: &Change) -> Output {
        let touched = self.update(change);
        let documents = touched.ids().map(|customer_id| DocumentText { customer_id, document: self.document_text(customer_id) }).collect();
        Output { event: change.id.clone(), source_ts_us: change.source_ts_us, documents }
    }

    /// Applies one change to the state and says which documents it changed; their new texts
    /// are [`JoinState::write_document`]'s (the join's loop writes them straight into the output
    /// record, [`crate::record::encode`]).
    pub fn update(&mut self, change: &Change) -> Touched {
        let pk = change.id.pk;
        // At most two customers: the row's owner before and after.
        let mut touched: [Option<i64>; 2] = [None, None];
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
                touched[0] = Some(pk);
            }
            Table::Flights | Table::Vehicles => {
                let rows = match change.id.table {
                    Table::Flights => &mut self.flights,
                    _ => &mut self.vehicles,
                };
                touched[0] = rows.remove(pk);
                if change.op == Op::Upsert {
                    let now = rows.insert(pk, &change.row);
                    if touched[0] != Some(now) {
                        touched[1] = Some(now);
                    }
                }
                // Documents exist only for existing customers: an orphan's change affects none.
                for t in &mut touched {
                    if t.is_some_and(|c| !self.customers.contains_key(&c)) {
                        *t = None;
                    }
                }
            }
        }
        Touched::new(touched)
    }

    /// The current document of `customer_id` as JSON text — the customer's columns, then
    /// `flights` and `vehicles`, each ordered by id — or `None` if the customer does not exist.
    pub fn document_text(&self, customer_id: i64) -> Option<String> {
        let mut doc = Vec::new();
        self.write_document(customer_id, &mut doc)
            .then(|| String::from_utf8(doc).expect("a document is spliced from row texts, which are UTF-8"))
    }

    /// Appends the current document of `customer_id` (as [`JoinState::document_text`] gives it)
    /// to `out`; false, with nothing written, if the customer does not exist.
    pub fn write_document(&self, customer_id: i64, out: &mut Vec<u8>) -> bool {
        let Some(customer) = self.customers.get(&customer_id) else { return false };
        // The customer's object without its closing brace (a row's text is a JSON object).
        let open = customer.json.trim_end().strip_suffix('}').expect("a row's text is a JSON object");
        out.extend_from_slice(open.as_bytes());
        if !open.trim_end().ends_with('{') {
            out.push(b',');
        }
        for (name, rows) in [(&b"\"flights\":["[..], &self.flights), (&b",\"vehicles\":["[..], &self.vehicles)] {
            out.extend_from_slice(name);
            for (i, r) in rows.of(customer_id).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(r.json.as_bytes());
            }
            out.push(b']');
        }
        out.push(b'}');
        true
    }

    /// The current document of `customer_id`, parsed, or `None` if the customer does not exist.
    pub fn document(&self, customer_id: i64) -> Option<Value> {
        self.document_text(customer_id).map(|d| serde_json::from_str(&d).expect("a document the join made is JSON"))
    }

    /// Every current document, by customer id.
    pub fn documents(&self) -> BTreeMap<i64, Value> {
        self.customers.keys().filter_map(|id| Some((*id, self.document(*id)?))).collect()
    }
}

/// The join computed from scratch from the three tables' current rows (the checker's oracle).
pub fn recompute(customers: &[Columns], flights: &[Columns], vehicles: &[Columns]) -> BTreeMap<i64, Value> {
    let customer_id = |row: &Columns| row.get("customer_id").and_then(Value::as_i64).unwrap_or(i64::MIN);
    let by_owner = |rows: &[Columns], owner: i64| -> Vec<Value> {
        let mut v: Vec<&Columns> = rows.iter().filter(|r| customer_id(r) == owner).collect();
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
            row: Row::from_columns(&row).unwrap(),
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
        assert_eq!(out.documents[0].parsed().document.unwrap()["flights"][0]["id"], 10);
        s.apply(&change(Table::Customers, Op::Upsert, 2, 0, 3));
        let out = s.apply(&change(Table::Flights, Op::Upsert, 10, 2, 4));
        assert_eq!(out.documents.iter().map(|d| d.customer_id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(out.documents[0].parsed().document.unwrap()["flights"], json!([]));
        let out = s.apply(&change(Table::Customers, Op::Delete, 2, 0, 5));
        assert_eq!(out.documents, vec![DocumentText { customer_id: 2, document: None }]);
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
    fn tables(changes: &[Change]) -> [Vec<Columns>; 3] {
        let mut t: [BTreeMap<i64, Columns>; 3] = Default::default();
        for c in changes {
            let i = c.id.table as usize;
            match c.op {
                Op::Upsert => {
                    t[i].insert(c.id.pk, c.row.columns());
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
                    let d = d.parsed();
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

        /// Every output record's bytes, as the join writes them, read back as the record built
        /// from parsed documents: the wire format is the one the sinks and the checker read.
        #[test]
        fn encoded_records_read_back_as_built(raw in prop::collection::vec(arb_change(), 0..40)) {
            let changes: Vec<Change> = raw.into_iter().enumerate().map(|(i, r)| to_change(i, r)).collect();
            let mut s = JoinState::new();
            let mut applied = JoinState::new();
            for (offset, c) in changes.iter().enumerate() {
                let out = s.apply(c);
                let input = crate::record::Coordinates { topic: "crm.public.flights".into(), partition: 2, offset: offset as i64 };
                let touched = applied.update(c);
                prop_assert_eq!(touched.ids().collect::<Vec<_>>(), out.documents.iter().map(|d| d.customer_id).collect::<Vec<_>>());
                let bytes = crate::record::encode(c, &applied, &touched, &input, 77);
                let want = crate::record::ChangeRecord::new(c, out.documents.iter().map(DocumentText::parsed).collect(), input, 77);
                prop_assert_eq!(crate::record::parse_change(&bytes).unwrap(), want);
            }
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
