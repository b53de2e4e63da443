//! The exactly-once checker (docs/architecture.md, Semantics): the run's history against what each hop holds.
//!
//! Owns the per-hop verdict on every event — *lost*, *duplicated*, *phantom*, *wrong operation*,
//! *out of order* — and the final-state comparison of the warehouse and of the lake's folded
//! documents with the join recomputed from the sources.
//!
//! Events are identified by the writing operation's write id ([`EventKey`]), so every event a hop
//! holds is attributed to exactly one operation of exactly one run, whatever that operation's
//! outcome. The acknowledged events are [`Operation::events`] of every `ok` operation, warm-up
//! included. For each hop, in the hop's own order:
//! - an acknowledged event never observed is **lost**; the report says where it was last seen:
//!   the nearest hop upstream ([`Hop::upstream`]) that holds it, or `source` if none does;
//! - an event of an operation whose outcome is **unknown** may be absent everywhere; once it is
//!   seen at any hop its operation did commit, and from then on it is held to the rules of an
//!   acknowledged event at every hop (lost where missing, duplicated where repeated), and so is
//!   every insert of that operation (an insert always changes its row); such events are counted as
//!   `unknown_committed`, for information;
//! - an event observed more often than it was written is **duplicated** (events and extra copies
//!   are both counted);
//! - an event with this run's write id that its operation did not make — a failed operation's,
//!   a row the operation did not change, an operation the history does not have — or with no
//!   write id at all is a **phantom**;
//! - an event whose row and write id match an event of the operation but whose operation
//!   (upsert/delete) is the other one is a **wrong operation**; it counts as a delivery of the
//!   event it stands for, so it is not also lost;
//! - an event whose write id names another run is an earlier run's (a backlog): counted as
//!   `earlier_runs`, not checked. The run is the history's, not a position the pipeline reports;
//! - per source row, the first arrivals of acknowledged events must follow commit order (the
//!   order of their operations' completion: writers serialize each row, so acknowledgement order
//!   is commit order for one row). Each first arrival after an event of the same row that
//!   committed later is one **out of order**.
//!
//! The work is linear: one hash lookup per observation (two for one that matches nothing). Memory
//! is per event its [`EventKey`] (24 bytes), a small record (52 bytes: per hop a saturating copy
//! count and the first arrival time) and a `u32` slot in a hash table of positions, about 90 bytes
//! in all. Totals are exact; only examples are capped.
//!
//! [`Checker`] is the streaming form (feed observations hop by hop, e.g. straight from
//! `observed/<hop>.tsv`); [`check`] and [`check_dir`] are the one-call forms. The per-event
//! arrival times the checker keeps feed the latency figures ([`Checker::arrivals`]).

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::path::Path;

use cdc_pipeline::decode::Table;
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use serde_json::{Map, Value};

use crate::history::{EventKey, Kind, Operation, Outcome};
use crate::observation::{self, FinalState, Hop, Observation};
use crate::Result;

/// Examples kept per hop and anomaly class; counts are always exact.
pub const MAX_EXAMPLES: usize = 50;
/// Final-state differences described in words.
pub const MAX_DIFFERENCES: usize = 10;

const UNSEEN: i64 = i64::MIN;
const NONE: u32 = u32::MAX;

/// What the history says about an observed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Acknowledged by its database.
    Acknowledged,
    /// An event of an operation whose outcome is unknown.
    Unknown,
    /// Nobody wrote it.
    Phantom,
}

/// Per-event record: 52 bytes.
#[derive(Debug, Clone, Copy)]
struct EventState {
    /// First (earliest) arrival per hop, µs since the epoch, or [`UNSEEN`].
    first_us: [i64; 4],
    /// Position of the acknowledging operation in the operations slice, or [`NONE`].
    op: u32,
    /// Index of the source row (for the order check), or [`NONE`].
    row: u32,
    /// Copies seen per hop, saturating at 255.
    count: [u8; 4],
    /// Copies allowed: times acknowledged (normally 1), 1 for an unknown write, 0 for a phantom.
    allowed: u8,
    origin: Origin,
    /// For an unknown write: the event must exist if its operation committed (an insert).
    certain: bool,
}

impl EventState {
    fn new(op: u32, row: u32, allowed: u8, origin: Origin) -> EventState {
        EventState { first_us: [UNSEEN; 4], op, row, count: [0; 4], allowed, origin, certain: false }
    }

    fn seen_anywhere(&self) -> bool {
        self.count.iter().any(|&c| c > 0)
    }
}

/// Running counts of one hop.
#[derive(Debug, Clone, Default)]
struct Tally {
    observations: u64,
    duplicated: u64,
    duplicate_copies: u64,
    phantom: u64,
    phantom_observations: u64,
    out_of_order: u64,
    unknown_committed: u64,
    wrong_operation: u64,
    earlier_runs: u64,
    duplicate_examples: Vec<u32>,
    phantom_examples: Vec<(EventKey, i32, i64)>,
    order_examples: Vec<(u32, u32, i32, i64)>,
    wrong_examples: Vec<(EventKey, i32, i64)>,
}

/// The first arrival of one acknowledged event at each hop, for the latency figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Position of the acknowledging operation in the operations slice given to the checker.
    pub op: usize,
    /// Earliest arrival per hop (indexed like [`Hop::ALL`]), µs since the epoch.
    pub first_us: [Option<i64>; 4],
}

/// Counts of operations by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperationCounts {
    /// Operations committed and acknowledged by their database.
    pub ok: u64,
    /// Operations that definitely did not commit.
    pub fail: u64,
    /// Operations whose outcome is unknown (timeout or connection lost during commit, or no
    /// completion recorded).
    pub unknown: u64,
    /// `ok` operations without a write id (histories that predate write ids): their events
    /// cannot be identified, so they are not checked.
    #[serde(default)]
    pub ok_without_write_id: u64,
}

/// A lost event and where it was last seen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LostExample {
    /// The event: `database/table:pk/op/write id`.
    pub event: String,
    /// The `index` of the operation that wrote it (as in `history.jsonl`).
    pub operation: u64,
    /// The nearest hop upstream that holds the event (`raw`, `changes`), or `source` if no hop
    /// does: the event was acknowledged by its database and never reached Kafka.
    pub last_seen: String,
}

/// An event that arrived more often than it was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DuplicateExample {
    /// The event: `database/table:pk/op/write id`.
    pub event: String,
    /// Copies that arrived (saturates at 255).
    pub copies: u32,
}

/// An event that arrived although nobody acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhantomExample {
    /// The event: `database/table:pk/op/write id`.
    pub event: String,
    /// Where it was first seen at this hop: Kafka partition (0 for the warehouse).
    pub partition: i32,
    /// Kafka offset, or the warehouse's applied-event `seq`.
    pub offset: i64,
}

/// An event that arrived after a later change of the same row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderExample {
    /// The event that arrived late: `database/table:pk/op/write id`.
    pub event: String,
    /// The event of the same row, committed later, that had already arrived.
    pub arrived_after: String,
    /// Where the late event arrived: Kafka partition (0 for the warehouse).
    pub partition: i32,
    /// Kafka offset, or the warehouse's applied-event `seq`.
    pub offset: i64,
}

/// An event delivered as the other operation (an upsert as a delete, or the reverse).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WrongOperationExample {
    /// The event as it arrived: `database/table:pk/op/write id`.
    pub event: String,
    /// What its operation did to the row: `upsert` or `delete`.
    pub expected: String,
    /// Where it arrived: Kafka partition (0 for the warehouse).
    pub partition: i32,
    /// Kafka offset, or the warehouse's applied-event `seq`.
    pub offset: i64,
}

/// The exactly-once findings of one hop.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HopReport {
    /// Acknowledged events of the run (distinct), the same for every hop.
    pub acknowledged: u64,
    /// Event-carrying records the hop held.
    pub observations: u64,
    /// Acknowledged events that arrived at least once.
    pub delivered: u64,
    /// Acknowledged events, and events of unknown operations that did commit, that never
    /// arrived (conclusive only once the run quiesced).
    pub lost: u64,
    /// Lost events by where they were last seen (`source`, `raw`, `changes`); sums to `lost`.
    pub lost_by_last_seen: BTreeMap<String, u64>,
    /// The first lost events, in commit order (at most 50).
    pub lost_examples: Vec<LostExample>,
    /// Events that arrived more often than they were written.
    pub duplicated: u64,
    /// Extra copies beyond the first, over all duplicated events.
    pub duplicate_copies: u64,
    /// The first duplicated events, in arrival order (at most 50).
    pub duplicated_examples: Vec<DuplicateExample>,
    /// Distinct events that arrived although no operation of the run made them (events of
    /// failed operations, of rows an operation did not change, without a write id).
    pub phantom: u64,
    /// Records carrying phantom events (at least `phantom`).
    pub phantom_observations: u64,
    /// The first phantom events, in arrival order (at most 50).
    pub phantom_examples: Vec<PhantomExample>,
    /// First arrivals of acknowledged events after an event of the same row that committed
    /// later.
    pub out_of_order: u64,
    /// The first out-of-order arrivals (at most 50).
    pub out_of_order_examples: Vec<OrderExample>,
    /// Distinct events of operations of unknown outcome that arrived, so did commit
    /// (informational).
    pub unknown_committed: u64,
    /// Records carrying an event as the other operation (upsert for delete or the reverse).
    #[serde(default)]
    pub wrong_operation: u64,
    /// The first of them (at most 50).
    #[serde(default)]
    pub wrong_operation_examples: Vec<WrongOperationExample>,
    /// Records of events written by earlier runs (a backlog; not checked).
    #[serde(default)]
    pub earlier_runs: u64,
}

impl HopReport {
    /// The anomalies of this hop as (class, count), only those that occurred. Classes: `lost`,
    /// `duplicated`, `phantom`, `wrong_operation`, `out_of_order`.
    pub fn anomalies(&self) -> Vec<(&'static str, u64)> {
        [
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("phantom", self.phantom),
            ("wrong_operation", self.wrong_operation),
            ("out_of_order", self.out_of_order),
        ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The final-state comparison of one store — the warehouse's `customer_360`, or the lake's
/// documents folded from its change records — against the join recomputed from the source
/// tables, ignoring `updated_at` (its rendering differs between the database and Debezium) in
/// documents and in their `flights[]` / `vehicles[]` entries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinalStateReport {
    /// Whether the store equals the recomputed join.
    #[serde(rename = "match")]
    pub matches: bool,
    /// Documents the recomputed join has (one per source customer).
    pub expected_documents: u64,
    /// Documents the store has (named `warehouse_documents` for the lake too).
    pub warehouse_documents: u64,
    /// Customer ids whose document is missing from the store, extra in it, or different,
    /// ascending.
    pub mismatched_keys: Vec<i64>,
    /// What differs, for the first few mismatched keys (at most 10).
    pub differences: Vec<String>,
}

/// Everything the checker found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckReport {
    /// Distinct acknowledged events in the history.
    pub acknowledged: u64,
    pub operations: OperationCounts,
    /// Per hop, in pipeline order.
    pub hops: BTreeMap<Hop, HopReport>,
    pub final_state: FinalStateReport,
    /// The lake's folded documents against the recomputed join (None when the run directory has
    /// no lake documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lake_state: Option<FinalStateReport>,
}

impl CheckReport {
    /// The findings of one hop.
    pub fn hop(&self, hop: Hop) -> &HopReport {
        &self.hops[&hop]
    }

    /// Every anomaly as (hop, class, count), plus `(None, "final_state", mismatched keys)` when
    /// the warehouse's final state differs and `(None, "lake_state", …)` when the lake's does.
    pub fn anomalies(&self) -> Vec<(Option<Hop>, &'static str, u64)> {
        let mut out: Vec<(Option<Hop>, &'static str, u64)> =
            self.hops.iter().flat_map(|(h, r)| r.anomalies().into_iter().map(move |(c, n)| (Some(*h), c, n))).collect();
        if !self.final_state.matches {
            out.push((None, "final_state", self.final_state.mismatched_keys.len() as u64));
        }
        if let Some(l) = self.lake_state.as_ref().filter(|l| !l.matches) {
            out.push((None, "lake_state", l.mismatched_keys.len() as u64));
        }
        out
    }
}

/// The streaming checker: built from the history, fed every hop's observations in the hop's
/// order, then asked for its [`CheckReport`].
pub struct Checker<'a> {
    ops: &'a [Operation],
    /// The run's tag: write ids with another one are earlier runs' (0: the history has none).
    run: u32,
    /// Operation index → position in `ops`.
    by_index: FxHashMap<u64, u32>,
    /// Positions in `keys` / `events`, hashed by key.
    index: HashTable<u32>,
    /// Each event's key, by position.
    keys: Vec<EventKey>,
    events: Vec<EventState>,
    /// Per hop and source row, the latest-committed event seen so far (acknowledged events are
    /// indexed in commit order), or [`NONE`]. One array per hop keeps a hop's working set small.
    rows: [Vec<u32>; 4],
    acknowledged: u64,
    operations: OperationCounts,
    tallies: [Tally; 4],
}

impl<'a> Checker<'a> {
    /// Indexes the events of `ops` (any order; positions in this slice identify the operations
    /// in [`Arrival::op`]): those acknowledged, and those an unknown operation may have made.
    pub fn new(ops: &'a [Operation]) -> Checker<'a> {
        assert!(ops.len() < NONE as usize, "more than 2^32 operations");
        let capacity: usize = ops.iter().filter(|o| o.outcome != Outcome::Fail).map(|o| o.rows.len()).sum();
        let mut runs: FxHashMap<u32, usize> = FxHashMap::default();
        for w in ops.iter().filter_map(|o| o.write_id) {
            *runs.entry(w.run()).or_default() += 1;
        }
        let run = runs.into_iter().max_by_key(|&(r, n)| (n, r)).map_or(0, |(r, _)| r);
        let mut c = Checker {
            ops,
            run,
            by_index: FxHashMap::with_capacity_and_hasher(ops.len(), Default::default()),
            index: HashTable::with_capacity(capacity),
            keys: Vec::with_capacity(capacity),
            events: Vec::with_capacity(capacity),
            rows: Default::default(),
            acknowledged: 0,
            operations: OperationCounts::default(),
            tallies: Default::default(),
        };

        let mut ok: Vec<u32> = Vec::with_capacity(ops.len());
        for (pos, op) in ops.iter().enumerate() {
            c.by_index.insert(op.index, pos as u32);
            match op.outcome {
                Outcome::Ok => c.operations.ok += 1,
                Outcome::Fail => c.operations.fail += 1,
                Outcome::Unknown => c.operations.unknown += 1,
            }
            match (op.outcome, op.write_id) {
                (Outcome::Ok, Some(_)) => ok.push(pos as u32),
                (Outcome::Ok, None) => c.operations.ok_without_write_id += 1,
                (Outcome::Unknown, Some(_)) => {
                    for r in &op.rows {
                        for key in op.row_events(r) {
                            if c.find(&key).is_none() {
                                let e = c.push(key, EventState::new(pos as u32, NONE, 1, Origin::Unknown));
                                c.events[e as usize].certain = r.kind == Kind::Insert;
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        // Acknowledged events are indexed in commit order — operations by completion time, ties
        // by index — so that an event's index is its commit rank.
        ok.sort_unstable_by_key(|&i| (ops[i as usize].complete_us.unwrap_or(i64::MAX), ops[i as usize].index));
        let mut row_index: FxHashMap<(Table, i64), u32> = FxHashMap::default();
        for pos in ok {
            for key in ops[pos as usize].events() {
                match c.find(&key) {
                    Some(e) => {
                        let ev = &mut c.events[e as usize];
                        ev.allowed = ev.allowed.saturating_add(1);
                    }
                    None => {
                        let next = row_index.len() as u32;
                        let row = *row_index.entry(key.row()).or_insert(next);
                        c.push(key, EventState::new(pos, row, 1, Origin::Acknowledged));
                        c.acknowledged += 1;
                    }
                }
            }
        }
        c.rows = std::array::from_fn(|_| vec![NONE; row_index.len()]);
        c
    }

    /// The run's tag, as the history's write ids give it (0 if they give none).
    pub fn run(&self) -> u32 {
        self.run
    }

    /// The position of `key`, if indexed.
    fn find(&self, key: &EventKey) -> Option<u32> {
        let keys = &self.keys;
        self.index.find(FxBuildHasher.hash_one(key), |&e| keys[e as usize] == *key).copied()
    }

    /// Indexes a new event; returns its position.
    fn push(&mut self, key: EventKey, state: EventState) -> u32 {
        let e = self.events.len() as u32;
        self.keys.push(key);
        self.events.push(state);
        let keys = &self.keys;
        self.index.insert_unique(FxBuildHasher.hash_one(key), e, |&x| FxBuildHasher.hash_one(keys[x as usize]));
        e
    }

    /// Feeds one observation of `hop`. Observations of one hop must come in the hop's order.
    pub fn observe(&mut self, hop: Hop, o: &Observation) {
        let h = hop as usize;
        let e = match self.find(&o.key) {
            Some(e) => e,
            None if !o.key.write.is_none() && o.key.write.run() != self.run => {
                // An earlier run's write: a backlog, not this run's to check.
                let tally = &mut self.tallies[h];
                tally.observations += 1;
                tally.earlier_runs += 1;
                return;
            }
            None => match self.find(&EventKey { op: o.key.op.flipped(), ..o.key }) {
                Some(e) => {
                    let tally = &mut self.tallies[h];
                    tally.wrong_operation += 1;
                    if tally.wrong_examples.len() < MAX_EXAMPLES {
                        tally.wrong_examples.push((o.key, o.partition, o.offset));
                    }
                    e
                }
                // A failed operation's event, a row its operation did not change, an operation
                // the history does not have, or no write id: nobody wrote it.
                None => self.push(o.key, EventState::new(NONE, NONE, 0, Origin::Phantom)),
            },
        };
        let tally = &mut self.tallies[h];
        tally.observations += 1;
        let ev = &mut self.events[e as usize];
        let seen = ev.count[h];
        ev.count[h] = seen.saturating_add(1);
        ev.first_us[h] = if seen == 0 { o.ts_us } else { ev.first_us[h].min(o.ts_us) };
        match ev.origin {
            Origin::Phantom => {
                tally.phantom_observations += 1;
                if seen == 0 {
                    tally.phantom += 1;
                    if tally.phantom_examples.len() < MAX_EXAMPLES {
                        tally.phantom_examples.push((o.key, o.partition, o.offset));
                    }
                }
                return;
            }
            Origin::Unknown if seen == 0 => tally.unknown_committed += 1,
            Origin::Acknowledged if seen == 0 => {
                let latest = &mut self.rows[h][ev.row as usize];
                if *latest != NONE && e < *latest {
                    tally.out_of_order += 1;
                    if tally.order_examples.len() < MAX_EXAMPLES {
                        tally.order_examples.push((e, *latest, o.partition, o.offset));
                    }
                } else {
                    *latest = e;
                }
            }
            _ => {}
        }
        if seen >= ev.allowed {
            tally.duplicate_copies += 1;
            if seen == ev.allowed {
                tally.duplicated += 1;
                if tally.duplicate_examples.len() < MAX_EXAMPLES {
                    tally.duplicate_examples.push(e);
                }
            }
        }
    }

    /// Feeds a hop's observations in order.
    pub fn observe_all<'o>(&mut self, hop: Hop, observations: impl IntoIterator<Item = &'o Observation>) {
        for o in observations {
            self.observe(hop, o);
        }
    }

    /// The first arrivals of every acknowledged event, in commit order.
    pub fn arrivals(&self) -> impl Iterator<Item = Arrival> + '_ {
        self.events
            .iter()
            .filter(|e| e.origin == Origin::Acknowledged)
            .map(|e| Arrival { op: e.op as usize, first_us: e.first_us.map(|t| (t != UNSEEN).then_some(t)) })
    }

    /// The findings so far, with the final-state comparison of `final_state`.
    pub fn report(&self, final_state: &FinalState) -> CheckReport {
        let mut hops: [HopReport; 4] = Default::default();
        let mut lost_examples: [Vec<(u32, &'static str)>; 4] = Default::default();
        // Unknown operations one of whose events arrived somewhere: they committed.
        let committed: FxHashSet<u32> = self.events.iter().filter(|ev| ev.origin == Origin::Unknown && ev.seen_anywhere()).map(|ev| ev.op).collect();
        for (e, ev) in self.events.iter().enumerate() {
            let required = match ev.origin {
                Origin::Acknowledged => true,
                Origin::Unknown => ev.seen_anywhere() || (ev.certain && committed.contains(&ev.op)),
                Origin::Phantom => false,
            };
            if !required {
                continue;
            }
            for hop in Hop::ALL {
                let h = hop as usize;
                if ev.count[h] > 0 && ev.origin == Origin::Acknowledged {
                    hops[h].delivered += 1;
                }
                if ev.count[h] >= ev.allowed {
                    continue;
                }
                let r = &mut hops[h];
                r.lost += 1;
                let last_seen = last_seen(hop, &ev.count);
                *r.lost_by_last_seen.entry(last_seen.to_string()).or_default() += 1;
                if lost_examples[h].len() < MAX_EXAMPLES {
                    lost_examples[h].push((e as u32, last_seen));
                }
            }
        }

        let name = |e: &u32| self.keys[*e as usize].to_string();

        for hop in Hop::ALL {
            let h = hop as usize;
            let (t, r) = (&self.tallies[h], &mut hops[h]);
            r.acknowledged = self.acknowledged;
            r.observations = t.observations;
            r.duplicated = t.duplicated;
            r.duplicate_copies = t.duplicate_copies;
            r.phantom = t.phantom;
            r.phantom_observations = t.phantom_observations;
            r.out_of_order = t.out_of_order;
            r.unknown_committed = t.unknown_committed;
            r.wrong_operation = t.wrong_operation;
            r.earlier_runs = t.earlier_runs;
            r.wrong_operation_examples = t
                .wrong_examples
                .iter()
                .map(|(k, partition, offset)| WrongOperationExample { event: k.to_string(), expected: k.op.flipped().as_str().into(), partition: *partition, offset: *offset })
                .collect();
            r.lost_examples = lost_examples[h]
                .iter()
                .map(|(e, seen)| LostExample { event: name(e), operation: self.ops[self.events[*e as usize].op as usize].index, last_seen: seen.to_string() })
                .collect();
            r.duplicated_examples =
                t.duplicate_examples.iter().map(|e| DuplicateExample { event: name(e), copies: u32::from(self.events[*e as usize].count[h]) }).collect();
            r.phantom_examples = t
                .phantom_examples
                .iter()
                .map(|(k, partition, offset)| PhantomExample { event: k.to_string(), partition: *partition, offset: *offset })
                .collect();
            r.out_of_order_examples = t
                .order_examples
                .iter()
                .map(|(e, after, partition, offset)| OrderExample { event: name(e), arrived_after: name(after), partition: *partition, offset: *offset })
                .collect();
        }
        CheckReport {
            acknowledged: self.acknowledged,
            operations: self.operations.clone(),
            hops: Hop::ALL.into_iter().zip(hops).collect(),
            final_state: check_final_state(final_state),
            lake_state: check_lake_state(final_state),
        }
    }
}

/// Where an event missing at `hop` was last seen: the nearest upstream hop holding it, else
/// `source`.
fn last_seen(hop: Hop, count: &[u8; 4]) -> &'static str {
    let mut up = hop.upstream();
    while let Some(u) = up {
        if count[u as usize] > 0 {
            return u.as_str();
        }
        up = u.upstream();
    }
    "source"
}

/// Checks in memory: the history, each hop's observations in the hop's order (hops not given
/// are checked as empty), and the final state.
pub fn check<'o>(ops: &[Operation], hops: impl IntoIterator<Item = (Hop, &'o [Observation])>, final_state: &FinalState) -> CheckReport {
    let mut checker = Checker::new(ops);
    for (hop, observations) in hops {
        checker.observe_all(hop, observations);
    }
    checker.report(final_state)
}

/// Checks a run directory: `history.jsonl`, `observed/<hop>.tsv` (streamed) and
/// `final_state.json`.
pub fn check_dir(dir: &Path) -> Result<CheckReport> {
    let ops = crate::history::read(&crate::run_dir::RunDir::new(dir).history())?;
    let final_state = FinalState::read(dir)?;
    let mut checker = Checker::new(&ops);
    for hop in Hop::ALL {
        observation::for_each(dir, hop, |o| checker.observe(hop, &o))?;
    }
    Ok(checker.report(&final_state))
}

/// Compares the warehouse with the join recomputed from the source tables.
pub fn check_final_state(state: &FinalState) -> FinalStateReport {
    compare_store(state, &state.warehouse, "warehouse")
}

/// Compares the lake's folded documents with the join recomputed from the source tables (None
/// without lake documents).
pub fn check_lake_state(state: &FinalState) -> Option<FinalStateReport> {
    state.lake.as_ref().map(|lake| compare_store(state, lake, "lake"))
}

/// Compares `store`'s documents (named `name` in the differences) with the recomputed join.
fn compare_store(state: &FinalState, store: &BTreeMap<i64, Value>, name: &str) -> FinalStateReport {
    let expected = cdc_pipeline::join::recompute(&state.customers, &state.flights, &state.vehicles);
    let mut keys: Vec<i64> = expected.keys().chain(store.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    let mut report =
        FinalStateReport { matches: true, expected_documents: expected.len() as u64, warehouse_documents: store.len() as u64, ..Default::default() };
    for id in keys {
        let difference = match (expected.get(&id), store.get(&id)) {
            (Some(_), None) => Some(format!("customer {id}: missing from the {name}")),
            (None, Some(_)) => Some(format!("customer {id}: in the {name}, but not in the source")),
            (Some(e), Some(w)) => document_difference(e, w, name).map(|d| format!("customer {id}: {d}")),
            (None, None) => None,
        };
        if let Some(d) = difference {
            report.matches = false;
            report.mismatched_keys.push(id);
            if report.differences.len() < MAX_DIFFERENCES {
                report.differences.push(d);
            }
        }
    }
    report
}

const IGNORED: &str = "updated_at";

/// The first difference between a recomputed document and the store's (`name`), ignoring
/// `updated_at` in the document and in its `flights[]` / `vehicles[]` entries.
fn document_difference(expected: &Value, actual: &Value, name: &str) -> Option<String> {
    let (Value::Object(e), Value::Object(a)) = (expected, actual) else {
        return (!same(expected, actual)).then(|| format!("source {expected}, {name} {actual}"));
    };
    for (field, ev) in e.iter().filter(|(k, _)| *k != IGNORED) {
        let Some(av) = a.get(field) else {
            return Some(format!("{field}: missing from the {name}"));
        };
        let differs = match field.as_str() {
            "flights" | "vehicles" => children_difference(ev, av, name),
            _ => (!same(ev, av)).then(|| format!("source {ev}, {name} {av}")),
        };
        if let Some(d) = differs {
            return Some(format!("{field}: {d}"));
        }
    }
    a.keys().find(|k| *k != IGNORED && !e.contains_key(*k)).map(|k| format!("{k}: only in the {name}"))
}

/// The first difference between two `flights[]` / `vehicles[]` arrays.
fn children_difference(expected: &Value, actual: &Value, name: &str) -> Option<String> {
    let (Value::Array(e), Value::Array(a)) = (expected, actual) else {
        return (!same(expected, actual)).then(|| format!("source {expected}, {name} {actual}"));
    };
    let ids = |v: &[Value]| v.iter().map(|x| x.get("id").map_or("?".to_string(), Value::to_string)).collect::<Vec<_>>();
    if e.len() != a.len() || ids(e) != ids(a) {
        return Some(format!("source ids [{}], {name} ids [{}]", ids(e).join(", "), ids(a).join(", ")));
    }
    e.iter().zip(a).find_map(|(x, y)| {
        let id = x.get("id").map_or("?".to_string(), Value::to_string);
        let (Value::Object(xo), Value::Object(yo)) = (x, y) else {
            return (!same(x, y)).then(|| format!("[id={id}]: source {x}, {name} {y}"));
        };
        object_difference(xo, yo, name).map(|d| format!("[id={id}].{d}"))
    })
}

/// The first differing field of two flat rows, ignoring `updated_at`.
fn object_difference(e: &Map<String, Value>, a: &Map<String, Value>, name: &str) -> Option<String> {
    for (field, ev) in e.iter().filter(|(k, _)| *k != IGNORED) {
        match a.get(field) {
            None => return Some(format!("{field}: missing from the {name}")),
            Some(av) if !same(ev, av) => return Some(format!("{field}: source {ev}, {name} {av}")),
            Some(_) => {}
        }
    }
    a.keys().find(|k| *k != IGNORED && !e.contains_key(*k)).map(|k| format!("{k}: only in the {name}"))
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::history::{EventOp, Phase, RowOp, WriteId};
    use proptest::prelude::*;
    use serde_json::json;

    /// A synthetic run: operations, clean hops (exactly the acknowledged events, in commit
    /// order per row, spread over partitions) and a consistent final state.
    #[derive(Debug, Clone)]
    pub struct Synthetic {
        pub ops: Vec<Operation>,
        pub hops: BTreeMap<Hop, Vec<Observation>>,
        pub final_state: FinalState,
    }

    impl Synthetic {
        pub fn check(&self) -> CheckReport {
            check(&self.ops, self.hops.iter().map(|(h, o)| (*h, o.as_slice())), &self.final_state)
        }
    }

    pub const T0: i64 = 1_700_000_000_000_000;
    /// The synthetic runs' tag.
    pub const RUN: u32 = 5;

    fn tx_text(table: Table, n: u64) -> String {
        match table {
            Table::Vehicles => format!("0-1-{n}"),
            _ => n.to_string(),
        }
    }

    /// One generated operation: (database is fleet?, rows as (table choice, pk, affected), outcome
    /// 0..10, an unknown operation committed, completion jitter). A row's kind follows its pk:
    /// delete (pk % 3 == 0, two events), insert (1), update (2).
    pub type OpSpec = (bool, Vec<(bool, i64, bool)>, u8, bool, i64);

    pub fn op_spec() -> impl Strategy<Value = OpSpec> {
        (any::<bool>(), prop::collection::vec((any::<bool>(), 1i64..6, prop::bool::weighted(0.9)), 1..4), 0u8..10, any::<bool>(), 0i64..3_000)
    }

    /// Builds a synthetic run from operation specs: ok (70%), fail (15%), unknown (15%; some of
    /// which did commit and arrive whole).
    pub fn synthetic(specs: &[OpSpec], partitions: i32) -> Synthetic {
        let mut ops = Vec::new();
        let mut delivered: Vec<(i64, u64, EventKey)> = Vec::new();
        for (i, (fleet, rows, outcome, committed, jitter)) in specs.iter().enumerate() {
            let i = i as u64;
            let mut seen = std::collections::BTreeSet::new();
            let rows: Vec<RowOp> = rows
                .iter()
                .map(|(second, pk, affected)| {
                    let table = match (fleet, second) {
                        (true, _) => Table::Vehicles,
                        (false, false) => Table::Customers,
                        (false, true) => Table::Flights,
                    };
                    (table, *pk, *affected)
                })
                .filter(|(t, pk, _)| seen.insert((*t, *pk)))
                .map(|(table, pk, affected)| RowOp {
                    table,
                    pk,
                    kind: [Kind::Delete, Kind::Insert, Kind::Update][(pk % 3) as usize],
                    customer_id: None,
                    affected: Some(affected),
                })
                .collect();
            let table = rows[0].table;
            let intended = T0 + i as i64 * 1_000;
            let complete = intended + 500 + jitter;
            let outcome = match outcome {
                0..=6 => Outcome::Ok,
                7 | 8 => Outcome::Unknown,
                _ => Outcome::Fail,
            };
            let mut op = Operation {
                index: i,
                worker: "w".into(),
                phase: if i < 3 { Phase::Warmup } else { Phase::Load },
                intended_us: intended,
                invoke_us: intended + 10,
                complete_us: Some(complete),
                outcome,
                tx: (outcome == Outcome::Ok).then(|| tx_text(table, 100 + i)),
                write_id: Some(WriteId::new(RUN, i)),
                rows,
                error: None,
            };
            if outcome != Outcome::Ok {
                for r in &mut op.rows {
                    r.affected = None;
                }
            }
            for k in op.events() {
                delivered.push((complete, i, k));
            }
            // Some unknown writes did commit: every event of their rows arrives.
            if outcome == Outcome::Unknown && *committed {
                for r in &op.rows {
                    for k in op.row_events(r) {
                        delivered.push((complete, i, k));
                    }
                }
            }
            ops.push(op);
        }
        delivered.sort_by_key(|(c, i, _)| (*c, *i));
        let mut hops = BTreeMap::new();
        for (n, hop) in Hop::ALL.into_iter().enumerate() {
            let mut by_partition: Vec<Vec<Observation>> = vec![Vec::new(); partitions as usize];
            for (complete, _, key) in &delivered {
                let p = (key.pk.rem_euclid(i64::from(partitions))) as usize;
                let offset = by_partition[p].len() as i64;
                by_partition[p].push(Observation { key: *key, partition: p as i32, offset, ts_us: complete + 1_000 * (n as i64 + 1) });
            }
            hops.insert(hop, by_partition.concat());
        }
        Synthetic { ops, hops, final_state: final_state_fixture() }
    }

    /// Three customers, flights and vehicles; the warehouse and the lake as the join,
    /// `updated_at` rendered differently.
    pub fn final_state_fixture() -> FinalState {
        let row = |v: Value| v.as_object().unwrap().clone();
        let customers = (1..=3).map(|id| row(json!({"id": id, "name": format!("c{id}"), "updated_at": 1_700_000_000_000i64}))).collect::<Vec<_>>();
        let flights = (1..=4).map(|id| row(json!({"id": id, "customer_id": id % 3 + 1, "airport": "LIS", "updated_at": 5}))).collect::<Vec<_>>();
        let vehicles = (1..=2).map(|id| row(json!({"id": id, "customer_id": 2, "model": "T", "updated_at": 6}))).collect::<Vec<_>>();
        let mut warehouse = cdc_pipeline::join::recompute(&customers, &flights, &vehicles);
        for doc in warehouse.values_mut() {
            doc["updated_at"] = json!("2023-11-14T22:13:20Z");
            for child in ["flights", "vehicles"] {
                for entry in doc[child].as_array_mut().unwrap() {
                    entry["updated_at"] = json!("2023-11-14T22:13:20.000001Z");
                }
            }
        }
        FinalState { customers, flights, vehicles, lake: Some(warehouse.clone()), warehouse }
    }

    pub fn specs() -> impl Strategy<Value = Vec<OpSpec>> {
        prop::collection::vec(op_spec(), 4..60)
    }

    /// An injectable anomaly.
    #[derive(Debug, Clone, Copy)]
    pub enum Anomaly {
        Drop,
        Duplicate,
        Reorder,
        Phantom,
        FailedWrite,
        FinalState,
        /// An event of an unknown operation that committed, dropped at one hop.
        UnknownDropped,
        /// An acknowledged event delivered as the other operation.
        WrongOperation,
        /// A lake document that differs.
        LakeState,
        /// An event delivered again with a stale (earlier) offset.
        StaleReemit,
    }

    pub fn anomaly() -> impl Strategy<Value = Anomaly> {
        prop_oneof![
            Just(Anomaly::Drop),
            Just(Anomaly::Duplicate),
            Just(Anomaly::Reorder),
            Just(Anomaly::Phantom),
            Just(Anomaly::FailedWrite),
            Just(Anomaly::FinalState),
            Just(Anomaly::UnknownDropped),
            Just(Anomaly::WrongOperation),
            Just(Anomaly::LakeState),
            Just(Anomaly::StaleReemit),
        ]
    }

    /// Injects `anomaly` at `hop`, choosing its target with `pick`. Returns the expected
    /// anomaly, or None when the run offers no target for it (no event, no row with two events,
    /// no failed operation).
    pub fn inject(s: &mut Synthetic, anomaly: Anomaly, hop: Hop, pick: usize) -> Option<(Option<Hop>, &'static str, u64)> {
        let acknowledged: FxHashSet<EventKey> = s.ops.iter().flat_map(|o| o.events()).collect();
        let possible: FxHashSet<EventKey> = s.ops.iter().filter(|o| o.outcome != Outcome::Fail).flat_map(|o| o.rows.iter().flat_map(move |r| o.row_events(r))).collect();
        let unknown_seen: FxHashSet<EventKey> = s.hops[&Hop::Raw].iter().map(|o| o.key).filter(|k| !acknowledged.contains(k)).collect();
        let obs = s.hops.get_mut(&hop).unwrap();
        let acked_positions: Vec<usize> = (0..obs.len()).filter(|&i| acknowledged.contains(&obs[i].key)).collect();
        match anomaly {
            Anomaly::Drop => {
                let &i = acked_positions.get(pick % acked_positions.len().max(1))?;
                obs.remove(i);
                Some((Some(hop), "lost", 1))
            }
            Anomaly::Duplicate => {
                let &i = acked_positions.get(pick % acked_positions.len().max(1))?;
                let copy = obs[i];
                let at = (i + 1 + pick % 3).min(obs.len());
                obs.insert(at, copy);
                Some((Some(hop), "duplicated", 1))
            }
            Anomaly::StaleReemit => {
                let &i = acked_positions.get(pick % acked_positions.len().max(1))?;
                let copy = Observation { offset: 0, ..obs[i] };
                obs.push(copy);
                Some((Some(hop), "duplicated", 1))
            }
            Anomaly::Reorder => {
                // Two acknowledged events of one row that are adjacent in that row's sequence,
                // of different operations.
                let mut pairs = Vec::new();
                let mut last: FxHashMap<(Table, i64), usize> = FxHashMap::default();
                for &i in &acked_positions {
                    if let Some(prev) = last.insert(obs[i].key.row(), i) {
                        if obs[prev].key.write != obs[i].key.write {
                            pairs.push((prev, i));
                        }
                    }
                }
                let &(a, b) = pairs.get(pick % pairs.len().max(1))?;
                // A delete's two events must not be split by the swap: each side is one event.
                let same_op = |x: usize, y: usize| obs.get(y).is_some_and(|o: &Observation| o.key.write == obs[x].key.write && o.key.row() == obs[x].key.row());
                if same_op(a, a + 1) || (b > 0 && same_op(b, b - 1) && b - 1 != a) || same_op(b, b + 1) || (a > 0 && same_op(a, a - 1)) {
                    return None;
                }
                obs.swap(a, b);
                Some((Some(hop), "out_of_order", 1))
            }
            Anomaly::Phantom => {
                let write = if pick.is_multiple_of(2) { WriteId::NONE } else { WriteId::new(RUN, 9_000_000 + (pick % 1_000) as u64) };
                let key = EventKey { table: Table::Customers, pk: 1_000 + (pick % 1_000) as i64, write, op: EventOp::Upsert };
                let at = pick % (obs.len() + 1);
                obs.insert(at, Observation { key, partition: 0, offset: 77, ts_us: T0 });
                Some((Some(hop), "phantom", 1))
            }
            Anomaly::FailedWrite => {
                // A failed operation's row arriving after all.
                let failed: Vec<&Operation> = s.ops.iter().filter(|o| o.outcome == Outcome::Fail).collect();
                let op = failed.get(pick % failed.len().max(1))?;
                let key = op.row_events(&op.rows[0]).next().unwrap();
                let at = pick % (obs.len() + 1);
                obs.insert(at, Observation { key, partition: 1, offset: 5, ts_us: T0 });
                Some((Some(hop), "phantom", 1))
            }
            Anomaly::UnknownDropped => {
                let positions: Vec<usize> = (0..obs.len()).filter(|&i| unknown_seen.contains(&obs[i].key)).collect();
                let &i = positions.get(pick % positions.len().max(1))?;
                // Dropped at raw, every hop still has it downstream, so raw alone misses it.
                obs.remove(i);
                Some((Some(hop), "lost", 1))
            }
            Anomaly::WrongOperation => {
                let candidates: Vec<usize> = acked_positions.iter().copied().filter(|&i| !possible.contains(&EventKey { op: obs[i].key.op.flipped(), ..obs[i].key })).collect();
                let &i = candidates.get(pick % candidates.len().max(1))?;
                obs[i].key.op = obs[i].key.op.flipped();
                Some((Some(hop), "wrong_operation", 1))
            }
            Anomaly::LakeState => {
                let l = s.final_state.lake.as_mut().unwrap();
                match pick % 3 {
                    0 => {
                        l.remove(&3);
                    }
                    1 => {
                        l.insert(77, json!({"id": 77, "flights": [], "vehicles": []}));
                    }
                    _ => {
                        l.get_mut(&1).unwrap()["name"] = json!("stale");
                    }
                }
                Some((None, "lake_state", 1))
            }
            Anomaly::FinalState => {
                let w = &mut s.final_state.warehouse;
                match pick % 4 {
                    0 => {
                        w.remove(&2);
                    }
                    1 => {
                        w.insert(42, json!({"id": 42, "flights": [], "vehicles": []}));
                    }
                    2 => {
                        w.get_mut(&2).unwrap()["name"] = json!("someone else");
                    }
                    _ => {
                        w.get_mut(&2).unwrap()["vehicles"][0]["model"] = json!("S");
                    }
                }
                Some((None, "final_state", 1))
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn clean_runs_have_no_anomaly(specs in specs(), partitions in 1i32..4) {
            let s = synthetic(&specs, partitions);
            let r = s.check();
            prop_assert_eq!(r.anomalies(), vec![]);
            let acked: FxHashSet<EventKey> = s.ops.iter().flat_map(|o| o.events()).collect();
            prop_assert_eq!(r.acknowledged, acked.len() as u64);
            for h in Hop::ALL {
                prop_assert_eq!(r.hop(h).delivered, r.acknowledged);
            }
        }

        #[test]
        fn every_single_anomaly_is_caught_as_itself(specs in specs(), partitions in 1i32..4, a in anomaly(), hop in 0usize..4, pick in any::<usize>()) {
            let mut s = synthetic(&specs, partitions);
            let hop = Hop::ALL[hop];
            let expected = inject(&mut s, a, hop, pick);
            prop_assume!(expected.is_some(), "the run offers no target for {:?}", a);
            let r = s.check();
            prop_assert_eq!(r.anomalies(), vec![expected.unwrap()], "{:?}", a);
        }

        /// Events an earlier run wrote are recognised by their write id, wherever they arrive,
        /// and checked for nothing.
        #[test]
        fn earlier_runs_events_are_counted_not_checked(specs in specs(), hop in 0usize..4, n in 1usize..5) {
            let mut s = synthetic(&specs, 2);
            let hop = Hop::ALL[hop];
            let obs = s.hops.get_mut(&hop).unwrap();
            for i in 0..n {
                let key = EventKey { table: Table::Flights, pk: 3, write: WriteId::new(RUN - 1, i as u64 % 2), op: EventOp::Upsert };
                obs.insert(i.min(obs.len()), Observation { key, partition: 0, offset: 0, ts_us: T0 });
            }
            let r = s.check();
            prop_assert_eq!(r.anomalies(), vec![]);
            prop_assert_eq!(r.hop(hop).earlier_runs, n as u64);
        }
    }

    fn op(index: u64, outcome: Outcome, rows: &[(Table, i64)], complete_us: i64) -> Operation {
        Operation {
            index,
            worker: "w".into(),
            phase: Phase::Load,
            intended_us: complete_us - 100,
            invoke_us: complete_us - 90,
            complete_us: Some(complete_us),
            outcome,
            tx: None,
            write_id: Some(WriteId::new(RUN, index)),
            rows: rows
                .iter()
                .map(|(t, pk)| RowOp { table: *t, pk: *pk, kind: Kind::Update, customer_id: None, affected: (outcome == Outcome::Ok).then_some(true) })
                .collect(),
            error: None,
        }
    }

    /// The upsert of row (table, pk) by operation `index` of this run.
    fn obs(table: Table, pk: i64, index: u64) -> Observation {
        Observation { key: EventKey { table, pk, write: WriteId::new(RUN, index), op: EventOp::Upsert }, partition: 0, offset: 0, ts_us: 0 }
    }

    fn name(table: Table, pk: i64, index: u64) -> String {
        obs(table, pk, index).key.to_string()
    }

    #[test]
    fn lost_events_say_where_they_were_last_seen() {
        let ops = vec![
            op(0, Outcome::Ok, &[(Table::Customers, 1)], 100),
            op(1, Outcome::Ok, &[(Table::Customers, 2)], 200),
            op(2, Outcome::Ok, &[(Table::Vehicles, 3)], 300),
        ];
        let raw = [obs(Table::Customers, 1, 0), obs(Table::Customers, 2, 1)];
        let changes = [obs(Table::Customers, 1, 0)];
        let r = check(&ops, [(Hop::Raw, &raw[..]), (Hop::Changes, &changes[..])], &FinalState::default());
        let w = r.hop(Hop::Warehouse);
        assert_eq!(w.lost, 3);
        let seen: Vec<(&str, &str, u64)> = w.lost_examples.iter().map(|x| (x.event.as_str(), x.last_seen.as_str(), x.operation)).collect();
        assert_eq!(seen, vec![("crm/customers:1/upsert/5.0", "changes", 0), ("crm/customers:2/upsert/5.1", "raw", 1), ("fleet/vehicles:3/upsert/5.2", "source", 2)]);
        assert_eq!(w.lost_by_last_seen, BTreeMap::from([("changes".into(), 1), ("raw".into(), 1), ("source".into(), 1)]));
        assert_eq!((r.hop(Hop::Raw).lost, r.hop(Hop::Raw).lost_examples[0].last_seen.as_str()), (1, "source"));
        assert_eq!(r.hop(Hop::Changes).lost_by_last_seen, BTreeMap::from([("raw".into(), 1), ("source".into(), 1)]));
    }

    #[test]
    fn duplicates_count_events_and_extra_copies() {
        let ops = vec![op(0, Outcome::Ok, &[(Table::Customers, 1), (Table::Flights, 2)], 100)];
        let lake = [obs(Table::Customers, 1, 0), obs(Table::Customers, 1, 0), obs(Table::Flights, 2, 0), obs(Table::Customers, 1, 0)];
        let r = check(&ops, [(Hop::Lake, &lake[..])], &FinalState::default());
        let l = r.hop(Hop::Lake);
        assert_eq!((l.duplicated, l.duplicate_copies, l.delivered, l.observations), (1, 2, 2, 4));
        assert_eq!(l.duplicated_examples, vec![DuplicateExample { event: name(Table::Customers, 1, 0), copies: 3 }]);
        assert_eq!(r.hop(Hop::Raw).lost, 2);
    }

    #[test]
    fn phantoms_are_events_no_operation_of_the_run_made() {
        let mut update_of_missing = op(3, Outcome::Ok, &[(Table::Flights, 8)], 400);
        update_of_missing.rows[0].affected = Some(false);
        let ops = vec![op(0, Outcome::Unknown, &[(Table::Customers, 1)], 100), op(2, Outcome::Fail, &[(Table::Customers, 9)], 300), update_of_missing];
        let foreign = Observation { key: EventKey { write: WriteId::NONE, ..obs(Table::Customers, 4, 0).key }, ..obs(Table::Customers, 4, 0) };
        let raw = [
            obs(Table::Customers, 1, 0), // the unknown write committed
            obs(Table::Customers, 2, 0), // a row the unknown operation did not write: phantom
            obs(Table::Customers, 9, 2), // the failed write: phantom
            obs(Table::Customers, 9, 2),
            obs(Table::Flights, 8, 3),  // a row the ok operation did not change: phantom
            obs(Table::Flights, 8, 77), // an operation the history does not have: phantom
            foreign,                    // no write id: phantom
        ];
        let r = check(&ops, [(Hop::Raw, &raw[..])], &FinalState::default());
        let h = r.hop(Hop::Raw);
        assert_eq!((h.unknown_committed, h.phantom, h.phantom_observations, h.duplicated), (1, 5, 6, 0));
        assert_eq!(h.phantom_examples[0].event, name(Table::Customers, 2, 0));
        assert_eq!(r.operations, OperationCounts { ok: 1, fail: 1, unknown: 1, ok_without_write_id: 0 });
        // An unknown write that arrives twice is a duplicate.
        let twice = [obs(Table::Customers, 1, 0), obs(Table::Customers, 1, 0)];
        assert_eq!(check(&ops, [(Hop::Raw, &twice[..])], &FinalState::default()).hop(Hop::Raw).duplicated, 1);
    }

    /// Without a transaction id the unknown write is still one operation's: another unknown
    /// event on the same row is no longer excused.
    #[test]
    fn an_unknown_operation_excuses_only_its_own_events() {
        let ops = vec![op(0, Outcome::Unknown, &[(Table::Vehicles, 7)], 100), op(1, Outcome::Fail, &[(Table::Vehicles, 7)], 200)];
        let raw = [obs(Table::Vehicles, 7, 0), obs(Table::Vehicles, 7, 1)];
        let h = check(&ops, [(Hop::Raw, &raw[..])], &FinalState::default()).hop(Hop::Raw).clone();
        assert_eq!((h.unknown_committed, h.phantom), (1, 1));
        assert_eq!(h.phantom_examples[0].event, name(Table::Vehicles, 7, 1));
    }

    #[test]
    fn an_unknown_write_seen_anywhere_must_arrive_everywhere() {
        let mut o = op(0, Outcome::Unknown, &[(Table::Customers, 1), (Table::Flights, 2), (Table::Flights, 3)], 100);
        o.rows[1].kind = Kind::Insert;
        let ops = vec![o];
        // Absent everywhere: it may not have committed.
        assert_eq!(check(&ops, [], &FinalState::default()).anomalies(), vec![]);
        // Its customer row arrived at raw and changes only: it committed, and the join's copy
        // is missing from both sinks; its insert must be everywhere; the update of flight 3
        // may have changed nothing.
        let seen = [obs(Table::Customers, 1, 0)];
        let r = check(&ops, [(Hop::Raw, &seen[..]), (Hop::Changes, &seen[..])], &FinalState::default());
        assert_eq!(r.anomalies(), vec![(Some(Hop::Raw), "lost", 1), (Some(Hop::Changes), "lost", 1), (Some(Hop::Warehouse), "lost", 2), (Some(Hop::Lake), "lost", 2)]);
        assert_eq!(r.hop(Hop::Raw).lost_examples[0].event, name(Table::Flights, 2, 0));
        assert_eq!(r.hop(Hop::Warehouse).lost_by_last_seen, BTreeMap::from([("changes".into(), 1), ("source".into(), 1)]));
        assert_eq!((r.hop(Hop::Raw).unknown_committed, r.hop(Hop::Raw).delivered), (1, 0));
    }

    #[test]
    fn an_event_delivered_as_the_other_operation_is_a_wrong_operation() {
        let mut d = op(1, Outcome::Ok, &[(Table::Flights, 4)], 200);
        d.rows[0].kind = Kind::Delete;
        let ops = vec![op(0, Outcome::Ok, &[(Table::Customers, 1)], 100), d];
        let as_delete = Observation { key: EventKey { op: EventOp::Delete, ..obs(Table::Customers, 1, 0).key }, ..obs(Table::Customers, 1, 0) };
        let delete_events: Vec<Observation> =
            ops[1].events().map(|key| Observation { key, partition: 0, offset: 0, ts_us: 0 }).collect();
        assert_eq!(delete_events.len(), 2, "a delete is its write-id upsert and the delete");
        let hop = [vec![as_delete], delete_events].concat();
        let r = check(&ops, [(Hop::Changes, &hop[..])], &FinalState::default());
        let h = r.hop(Hop::Changes);
        assert_eq!((h.wrong_operation, h.lost, h.phantom, h.delivered), (1, 0, 0, 3));
        assert_eq!(h.wrong_operation_examples[0], WrongOperationExample { event: "crm/customers:1/delete/5.0".into(), expected: "upsert".into(), partition: 0, offset: 0 });
    }

    #[test]
    fn order_is_commit_order_per_row() {
        // Row customers:1 written by ops 0 and 2; completion times give commit order 2 before 0.
        let ops = vec![
            op(0, Outcome::Ok, &[(Table::Customers, 1)], 500),
            op(1, Outcome::Ok, &[(Table::Customers, 2)], 100),
            op(2, Outcome::Ok, &[(Table::Customers, 1)], 300),
        ];
        let in_order = [obs(Table::Customers, 1, 2), obs(Table::Customers, 2, 1), obs(Table::Customers, 1, 0)];
        let r = check(&ops, [(Hop::Changes, &in_order[..])], &FinalState::default());
        assert_eq!(r.hop(Hop::Changes).out_of_order, 0);
        let swapped = [obs(Table::Customers, 1, 0), obs(Table::Customers, 2, 1), obs(Table::Customers, 1, 2), obs(Table::Customers, 1, 0)];
        let h = check(&ops, [(Hop::Changes, &swapped[..])], &FinalState::default()).hop(Hop::Changes).clone();
        assert_eq!((h.out_of_order, h.duplicated), (1, 1));
        assert_eq!(h.out_of_order_examples[0].event, name(Table::Customers, 1, 2));
        assert_eq!(h.out_of_order_examples[0].arrived_after, name(Table::Customers, 1, 0));
    }

    #[test]
    fn ok_operations_without_a_write_id_are_counted_and_not_checked() {
        let mut o = op(0, Outcome::Ok, &[(Table::Customers, 1)], 100);
        o.write_id = None;
        let ops = vec![o, op(1, Outcome::Ok, &[(Table::Customers, 2)], 200)];
        let raw = [obs(Table::Customers, 2, 1)];
        let r = check(&ops, [(Hop::Raw, &raw[..])], &FinalState::default());
        assert_eq!((r.acknowledged, r.operations.ok_without_write_id, r.hop(Hop::Raw).phantom), (1, 1, 0));
    }

    #[test]
    fn arrivals_are_the_earliest_per_hop() {
        let ops = vec![op(0, Outcome::Ok, &[(Table::Customers, 1)], 100)];
        let mut a = obs(Table::Customers, 1, 0);
        a.ts_us = 50;
        let mut b = a;
        b.ts_us = 40;
        let mut c = Checker::new(&ops);
        c.observe_all(Hop::Warehouse, &[a, b]);
        assert_eq!(c.arrivals().collect::<Vec<_>>(), vec![Arrival { op: 0, first_us: [None, None, Some(40), None] }]);
    }

    #[test]
    fn final_state_ignores_updated_at_and_names_differences() {
        let mut s = final_state_fixture();
        assert!(check_final_state(&s).matches);
        s.warehouse.get_mut(&2).unwrap()["flights"][0]["airport"] = json!("OPO");
        s.warehouse.get_mut(&3).unwrap()["flights"] = json!([]);
        s.warehouse.remove(&1);
        s.warehouse.insert(9, json!({}));
        let r = check_final_state(&s);
        assert!(!r.matches);
        assert_eq!(r.mismatched_keys, vec![1, 2, 3, 9]);
        assert_eq!(r.differences[0], "customer 1: missing from the warehouse");
        assert!(r.differences[1].starts_with("customer 2: flights: [id=1].airport: source \"LIS\", warehouse \"OPO\""), "{}", r.differences[1]);
        assert!(r.differences[2].contains("source ids [2], warehouse ids []"), "{}", r.differences[2]);
        assert!(r.differences[3].contains("not in the source"));
        // Numbers compare by value.
        let mut s = final_state_fixture();
        s.warehouse.get_mut(&1).unwrap()["id"] = json!(1.0);
        assert!(check_final_state(&s).matches);
    }

    #[test]
    fn the_lake_is_compared_too_and_names_itself() {
        let mut s = final_state_fixture();
        assert_eq!(check_lake_state(&s).map(|r| r.matches), Some(true));
        s.lake.as_mut().unwrap().get_mut(&2).unwrap()["vehicles"] = json!([]);
        let r = check_lake_state(&s).unwrap();
        assert_eq!(r.mismatched_keys, vec![2]);
        assert!(r.differences[0].contains("source ids [1, 2], lake ids []"), "{}", r.differences[0]);
        assert!(check_final_state(&s).matches, "the warehouse is not the lake");
        s.lake = None;
        assert_eq!(check_lake_state(&s), None, "run directories without lake documents");
    }

    #[test]
    fn report_serializes_hops_by_name() {
        let s = synthetic(&[(false, vec![(false, 1, true)], 0, false, 0)], 1);
        let r = s.check();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["hops"]["warehouse"]["delivered"], json!(1));
        assert_eq!(v["final_state"]["match"], json!(true));
        let back: CheckReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
