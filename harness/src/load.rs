//! The load generator: open-loop, rate-controlled writers against PostgreSQL `crm` and MariaDB
//! `fleet`, recording every operation in the run's history as it happens.
//!
//! Two halves. [`Generator`] is pure: from the scenario's seed it yields the same sequence of
//! intended operations every time — which database and writer, which rows, what kind of change,
//! what values — and when each is due (uniform spacing at the offered rate). [`drive`] executes
//! them: one async task per writer, each sleeping until an operation's intended time and sending it
//! then, however late (so a stalled database shows up as latency measured from the intended time —
//! coordinated omission corrected — instead of as a slower offered rate).
//!
//! Every row an operation changes gets the operation's [`WriteId`] in its `write_id` column (a
//! delete sets it first, then deletes the row), so that each change event names the operation and
//! the run that made it.
//!
//! Each writer owns the keys `k` with `k % connections == writer`, so one row never has two
//! operations in flight and a row's commit order is its acknowledgement order — the order the
//! checker holds every hop to. Outcomes: `ok` (committed and acknowledged), `fail` (definitely not
//! committed: refused, rolled back, timed out before commit, or never sent because the database was
//! unreachable), `unknown` (timeout or lost connection during commit). Database unavailability
//! never stops the run: writers reconnect, with a short back-off.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdc_pipeline::decode::Table;
use cdc_pipeline::record::now_us;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

use crate::history::{HistoryWriter, Kind, Line, Phase, RowOp, WriteId};
use crate::platform::stack::Targets;
use crate::scenario::{Keys, Load, Scenario};
use crate::{Error, Result};

/// The two source databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Db {
    Crm,
    Fleet,
}

impl Db {
    pub fn of(table: Table) -> Db {
        match table {
            Table::Customers | Table::Flights => Db::Crm,
            Table::Vehicles => Db::Fleet,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Db::Crm => "crm",
            Db::Fleet => "fleet",
        }
    }
}

/// Column values of one row change (what the SQL writes besides the key).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Customer { name: String, gender: &'static str, address: String, phone: String, email: String, birth_days: i32, profession: &'static str },
    Flight { customer_id: i64, airport: &'static str, airline: &'static str, iata_code: String },
    Vehicle { customer_id: i64, model_year: i32, model: String, manufacturer: &'static str, vehicle_year: i32, category: &'static str },
    /// A delete or move carries no values besides the key (and the new customer of a move).
    None,
}

/// One planned row change.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRow {
    pub row: RowOp,
    pub values: Values,
}

/// One planned operation (a source transaction).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOp {
    pub index: u64,
    pub db: Db,
    /// Writer of `db` that owns the rows' keys.
    pub writer: u32,
    /// When it is due, from the start of the load.
    pub due: Duration,
    pub rows: Vec<PlannedRow>,
}

const FIRST: &[&str] = &["Ana", "Bruno", "Chen", "Dara", "Emeka", "Fatima", "Gustav", "Hana", "Ivo", "Jun", "Kemal", "Lea"];
const LAST: &[&str] = &["Silva", "Okafor", "Novak", "Tanaka", "Berg", "Haddad", "Moreau", "Kowalski", "Reyes", "Lund"];
const STREETS: &[&str] = &["Harbour Rd", "Elm St", "Rua Augusta", "Ringstrasse", "Calle Mayor", "Nile Ave"];
const PROFESSIONS: &[&str] = &["engineer", "nurse", "teacher", "pilot", "chef", "lawyer", "farmer", "designer"];
const AIRPORTS: &[&str] = &["GRU", "LHR", "NRT", "JFK", "CDG", "FRA", "SYD", "DXB", "LOS", "YYZ"];
const AIRLINES: &[&str] = &["LATAM", "British Airways", "ANA", "Delta", "Air France", "Lufthansa", "Qantas", "Emirates"];
const MANUFACTURERS: &[&str] = &["Toyota", "Volkswagen", "Ford", "Hyundai", "Renault", "Fiat", "BYD", "Tesla"];
const CATEGORIES: &[&str] = &["sedan", "hatchback", "suv", "pickup", "van", "coupe"];
const TABLES: [Table; 3] = [Table::Customers, Table::Flights, Table::Vehicles];

/// The seed-driven sequence of intended operations.
pub struct Generator {
    rng: StdRng,
    load: Load,
    index: u64,
    /// Seconds between operations.
    interval: f64,
    zipf: [Option<Zipf<f64>>; 3],
    /// Per table, indexed by id: whether the row exists if every planned change committed.
    exists: [Vec<bool>; 3],
}

impl Generator {
    pub fn new(scenario: &Scenario) -> Generator {
        let load = scenario.load.clone();
        let zipf = TABLES.map(|t| match load.keys {
            Keys::Uniform => None,
            Keys::Zipf { exponent } => Zipf::new(f64::from(load.key_space.of(t).max(1)), exponent.0).ok(),
        });
        let exists = TABLES.map(|t| vec![false; load.key_space.of(t) as usize + 1]);
        Generator {
            rng: StdRng::seed_from_u64(scenario.seed),
            interval: scenario.mean_rows_per_tx() / load.rate.0,
            load,
            index: 0,
            zipf,
            exists,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.rng.random_range(0..total);
        for (t, w) in items {
            if x < *w {
                return *t;
            }
            x -= w;
        }
        unreachable!("weights sum to total")
    }

    /// A key index in 0..n from the scenario's distribution.
    fn key_index(&mut self, table: Table) -> u32 {
        let n = self.load.key_space.of(table);
        match &self.zipf[table as usize] {
            Some(z) => (z.sample(&mut self.rng) as u32).clamp(1, n) - 1,
            None => self.rng.random_range(0..n),
        }
    }

    /// A key of `table` owned by `writer`: ids are 1..=n, writer owns ids with (id-1) % W == writer.
    fn owned_key(&mut self, table: Table, writer: u32) -> i64 {
        let w = self.load.connections;
        let n = self.load.key_space.of(table);
        let k = self.key_index(table);
        let mut owned = k - k % w + writer;
        if owned >= n {
            owned -= w;
        }
        i64::from(owned) + 1
    }

    fn customer(&mut self) -> i64 {
        i64::from(self.key_index(Table::Customers)) + 1
    }

    fn values(&mut self, table: Table, kind: Kind, customer_id: Option<i64>) -> Values {
        let i = self.index;
        match (table, kind) {
            (_, Kind::Delete | Kind::Move) => Values::None,
            (Table::Customers, _) => {
                let (first, last) = (self.pick(FIRST), self.pick(LAST));
                Values::Customer {
                    name: format!("{first} {last}"),
                    gender: self.pick(&["F", "M", "X"]),
                    address: format!("{} {}", self.rng.random_range(1..999), self.pick(STREETS)),
                    phone: format!("+{:011}", self.rng.random_range(0..99_999_999_999u64)),
                    email: format!("{}.{}.{i}@example.com", first.to_lowercase(), last.to_lowercase()),
                    birth_days: self.rng.random_range(-12_000..12_000),
                    profession: self.pick(PROFESSIONS),
                }
            }
            (Table::Flights, _) => Values::Flight {
                customer_id: customer_id.expect("flights have a customer"),
                airport: self.pick(AIRPORTS),
                airline: self.pick(AIRLINES),
                iata_code: format!("{}{}", self.pick(&["LA", "BA", "NH", "DL", "AF", "LH"]), 100 + i % 9000),
            },
            (Table::Vehicles, _) => Values::Vehicle {
                customer_id: customer_id.expect("vehicles have a customer"),
                model_year: self.rng.random_range(1995..2027),
                model: format!("M{}", i),
                manufacturer: self.pick(MANUFACTURERS),
                vehicle_year: self.rng.random_range(1995..2027),
                category: self.pick(CATEGORIES),
            },
        }
    }

    /// Whether the sequence so far leaves row (table, pk) existing, had every operation
    /// committed.
    fn exists(&self, table: Table, pk: i64) -> bool {
        self.exists[table as usize].get(pk as usize).copied().unwrap_or(false)
    }

    fn apply(&mut self, row: &RowOp) {
        let slot = &mut self.exists[row.table as usize][row.pk as usize];
        match row.kind {
            Kind::Insert => *slot = true,
            Kind::Delete => *slot = false,
            Kind::Update | Kind::Move => {}
        }
    }

    /// A row change of `table` by `writer`. Updates, deletes and moves pick a key the sequence
    /// has inserted (up to 8 draws from the key distribution); when there is none, the change
    /// becomes an insert — so nearly every planned change is a real one, while the sequence
    /// depends on the seed alone.
    fn row(&mut self, table: Table, writer: u32) -> PlannedRow {
        let mix = *self.load.mix.of(table);
        let mut kind = self.weighted(&mix.weights());
        let mut pk = self.owned_key(table, writer);
        if kind != Kind::Insert {
            let mut draws = 1;
            while !self.exists(table, pk) && draws < 8 {
                pk = self.owned_key(table, writer);
                draws += 1;
            }
            if !self.exists(table, pk) {
                kind = Kind::Insert;
            }
        }
        let customer_id = match (table, kind) {
            (Table::Customers, _) | (_, Kind::Delete) => None,
            _ => Some(self.customer()),
        };
        // An update of a flight or vehicle keeps its customer: the SQL does not touch it.
        let customer_id = if kind == Kind::Update { None } else { customer_id };
        let values = self.values(table, kind, customer_id.or(Some(0)));
        PlannedRow { row: RowOp { table, pk, kind, customer_id, affected: None }, values }
    }
}

impl Iterator for Generator {
    type Item = PlannedOp;

    fn next(&mut self) -> Option<PlannedOp> {
        let weights: Vec<(Table, u32)> = TABLES.iter().map(|t| (*t, self.load.mix.of(*t).total())).filter(|(_, w)| *w > 0).collect();
        let first = self.weighted(&weights);
        let db = Db::of(first);
        let writer = self.rng.random_range(0..self.load.connections);
        let [lo, hi] = self.load.rows_per_tx;
        let n = self.rng.random_range(lo..=hi) as usize;
        let same_db: Vec<(Table, u32)> = weights.iter().copied().filter(|(t, _)| Db::of(*t) == db).collect();
        let head = self.row(first, writer);
        self.apply(&head.row);
        let mut rows: Vec<PlannedRow> = vec![head];
        let mut attempts = 0;
        while rows.len() < n && attempts < 50 {
            attempts += 1;
            let table = self.weighted(&same_db);
            let candidate = self.row(table, writer);
            // One change per row per transaction: two would share an event identity.
            if !rows.iter().any(|r| r.row.table == table && r.row.pk == candidate.row.pk) {
                self.apply(&candidate.row);
                rows.push(candidate);
            }
        }
        let op = PlannedOp { index: self.index, db, writer, due: Duration::from_secs_f64(self.index as f64 * self.interval), rows };
        self.index += 1;
        Some(op)
    }
}

/// Counters of a load run, shared with the progress reporter.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub unknown: AtomicU64,
    /// Rows changed by acknowledged operations (events).
    pub events: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> [u64; 5] {
        [&self.sent, &self.ok, &self.fail, &self.unknown, &self.events].map(|c| c.load(Ordering::Relaxed))
    }
}

/// What a load run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoadSummary {
    pub operations: u64,
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
    pub events: u64,
    /// µs since the epoch.
    pub warmup_start_us: i64,
    pub load_start_us: i64,
    pub load_end_us: i64,
}

type History = Arc<Mutex<HistoryWriter>>;

fn record(history: &History, line: Line) {
    if let Err(e) = history.lock().unwrap_or_else(|p| p.into_inner()).write(&line) {
        tracing::error!("{e}");
    }
}

/// Offers the scenario's warm-up and load to the databases, writing the history to `history`;
/// operation `i` writes [`WriteId::new`]`(run, i)`. `progress` is called about every `every` with
/// the counters and the elapsed time.
pub fn drive(
    scenario: &Scenario,
    targets: &Targets,
    run: u32,
    history: HistoryWriter,
    every: Duration,
    progress: impl Fn(&Counters, Duration) + Send,
) -> Result<LoadSummary> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::component("load", format!("runtime: {e}")))?;
    let history: History = Arc::new(Mutex::new(history));
    let counters = Arc::new(Counters::default());
    let summary = rt.block_on(offer(scenario, targets, run, history.clone(), counters.clone(), every, progress));
    history.lock().unwrap_or_else(|p| p.into_inner()).flush()?;
    Ok(summary)
}

async fn offer(scenario: &Scenario, targets: &Targets, run: u32, history: History, counters: Arc<Counters>, every: Duration, progress: impl Fn(&Counters, Duration)) -> LoadSummary {
    let start = Instant::now();
    let start_us = now_us();
    let warmup = scenario.warmup.0;
    let end = warmup + scenario.duration.0;
    // Operations not sent by then are recorded as not attempted.
    let give_up = start + end + scenario.load.timeout.0 * 2;
    let op_timeout = scenario.load.timeout.0;
    let mut senders = std::collections::HashMap::new();
    let mut tasks = Vec::new();
    for db in [Db::Crm, Db::Fleet] {
        for w in 0..scenario.load.connections {
            let (tx, rx) = mpsc::unbounded_channel::<PlannedOp>();
            senders.insert((db, w), tx);
            let ctx = Writer {
                name: format!("{}-{w}", db.as_str()),
                db,
                run,
                targets: targets.clone(),
                history: history.clone(),
                counters: counters.clone(),
                start,
                start_us,
                warmup,
                give_up,
                op_timeout,
            };
            tasks.push(tokio::spawn(ctx.run(rx)));
        }
    }
    let mut next_report = start + every;
    for op in Generator::new(scenario) {
        if op.due >= end || crate::progress::interrupted() {
            break;
        }
        // Hand each operation to its writer shortly before it is due (bounded memory).
        let hand_over = (start + op.due).checked_sub(Duration::from_millis(200)).unwrap_or(start);
        loop {
            let now = Instant::now();
            if now >= next_report {
                progress(&counters, now - start);
                history.lock().unwrap_or_else(|p| p.into_inner()).flush().ok();
                next_report += every;
            }
            if now >= hand_over {
                break;
            }
            sleep_until(hand_over.min(next_report)).await;
        }
        counters.sent.fetch_add(1, Ordering::Relaxed);
        let _ = senders[&(op.db, op.writer)].send(op);
    }
    drop(senders);
    let load_end_us = start_us + end.as_micros() as i64;
    let mut all = futures_join(tasks);
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = sleep_until(next_report) => {
                progress(&counters, Instant::now() - start);
                history.lock().unwrap_or_else(|p| p.into_inner()).flush().ok();
                next_report += every;
            }
        }
    }
    let [sent, ok, fail, unknown, events] = counters.snapshot();
    LoadSummary {
        operations: sent,
        ok,
        fail,
        unknown,
        events,
        warmup_start_us: start_us,
        load_start_us: start_us + warmup.as_micros() as i64,
        load_end_us,
    }
}

/// Waits for every task.
fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(async move {
        for t in tasks {
            let _ = t.await;
        }
    })
}

/// One writer: a connection to one database, executing the operations it owns in order.
struct Writer {
    name: String,
    db: Db,
    /// The run's tag, for the operations' write ids.
    run: u32,
    targets: Targets,
    history: History,
    counters: Arc<Counters>,
    start: Instant,
    start_us: i64,
    warmup: Duration,
    give_up: Instant,
    op_timeout: Duration,
}

/// How an executed operation ended.
enum Done {
    Ok { tx: Option<String>, affected: Vec<bool> },
    Fail(String),
    Unknown { tx: Option<String>, error: String },
}

/// An open connection.
enum Conn {
    Pg(tokio_postgres::Client, tokio::task::JoinHandle<()>),
    Maria(mysql_async::Conn),
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Conn::Pg(_, task) = self {
            task.abort();
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF: Duration = Duration::from_millis(500);

impl Writer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<PlannedOp>) {
        let mut conn: Option<Conn> = None;
        // After a failed connect, operations fail fast (not sent) until then.
        let mut unreachable: Option<(Instant, String)> = None;
        while let Some(op) = rx.recv().await {
            let due = self.start + op.due;
            sleep_until(due).await;
            let rows: Vec<RowOp> = op.rows.iter().map(|r| r.row.clone()).collect();
            let write = WriteId::new(self.run, op.index);
            record(
                &self.history,
                Line::Invoke {
                    index: op.index,
                    worker: self.name.clone(),
                    phase: if op.due < self.warmup { Phase::Warmup } else { Phase::Load },
                    intended_us: self.start_us + op.due.as_micros() as i64,
                    time_us: now_us(),
                    write_id: Some(write.0),
                    rows,
                },
            );
            let done = if Instant::now() > self.give_up {
                Done::Fail("not sent: the load ended before this writer got to it".into())
            } else {
                self.execute(&op, write, &mut conn, &mut unreachable).await
            };
            let time_us = now_us();
            let line = match done {
                Done::Ok { tx, affected } => {
                    self.counters.ok.fetch_add(1, Ordering::Relaxed);
                    self.counters.events.fetch_add(affected.iter().filter(|a| **a).count() as u64, Ordering::Relaxed);
                    Line::Ok { index: op.index, time_us, tx, affected }
                }
                Done::Fail(error) => {
                    self.counters.fail.fetch_add(1, Ordering::Relaxed);
                    Line::Fail { index: op.index, time_us, error }
                }
                Done::Unknown { tx, error } => {
                    self.counters.unknown.fetch_add(1, Ordering::Relaxed);
                    Line::Unknown { index: op.index, time_us, tx, error }
                }
            };
            record(&self.history, line);
        }
    }

    async fn connect(&self) -> std::result::Result<Conn, String> {
        match self.db {
            Db::Crm => {
                let (client, connection) = timeout(CONNECT_TIMEOUT, tokio_postgres::connect(&self.targets.postgres, tokio_postgres::NoTls))
                    .await
                    .map_err(|_| format!("connecting to crm: no answer in {CONNECT_TIMEOUT:?}"))?
                    .map_err(|e| format!("connecting to crm: {e}"))?;
                let task = tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Conn::Pg(client, task))
            }
            Db::Fleet => {
                let opts = mysql_async::Opts::from_url(&self.targets.mariadb).map_err(|e| format!("fleet URL: {e}"))?;
                let c = timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(opts))
                    .await
                    .map_err(|_| format!("connecting to fleet: no answer in {CONNECT_TIMEOUT:?}"))?
                    .map_err(|e| format!("connecting to fleet: {e}"))?;
                Ok(Conn::Maria(c))
            }
        }
    }

    async fn execute(&self, op: &PlannedOp, write: WriteId, conn: &mut Option<Conn>, unreachable: &mut Option<(Instant, String)>) -> Done {
        if conn.is_none() {
            if let Some((until, why)) = unreachable.as_ref() {
                if Instant::now() < *until {
                    return Done::Fail(format!("not sent: {why}"));
                }
            }
            match self.connect().await {
                Ok(c) => {
                    *conn = Some(c);
                    *unreachable = None;
                }
                Err(e) => {
                    *unreachable = Some((Instant::now() + BACKOFF, e.clone()));
                    return Done::Fail(format!("not sent: {e}"));
                }
            }
        }
        let committing = AtomicBool::new(false);
        let tx_seen: Mutex<Option<String>> = Mutex::new(None);
        let result = {
            let c = conn.as_mut().expect("connected");
            timeout(self.op_timeout, exec(c, op, write, &committing, &tx_seen)).await
        };
        let tx = tx_seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let in_commit = committing.load(Ordering::Relaxed);
        match result {
            Ok(Ok(affected)) => Done::Ok { tx, affected },
            Ok(Err(ExecError { message, server })) => {
                // The connection's state is unclear after any error: start afresh.
                *conn = None;
                if in_commit && !server {
                    Done::Unknown { tx, error: format!("during commit: {message}") }
                } else {
                    Done::Fail(message)
                }
            }
            Err(_) => {
                *conn = None;
                if in_commit {
                    Done::Unknown { tx, error: format!("commit not answered within {:?}", self.op_timeout) }
                } else {
                    Done::Fail(format!("timed out after {:?} before commit (rolled back)", self.op_timeout))
                }
            }
        }
    }
}

struct ExecError {
    message: String,
    /// The server answered with an error (as opposed to an I/O failure).
    server: bool,
}

fn pg_err(e: tokio_postgres::Error) -> ExecError {
    ExecError { server: e.as_db_error().is_some(), message: e.to_string() }
}

fn my_err(e: mysql_async::Error) -> ExecError {
    ExecError { server: matches!(e, mysql_async::Error::Server(_)), message: e.to_string() }
}

/// Runs one operation as one transaction, writing `write` into every row it changes. Returns
/// which rows changed.
async fn exec(conn: &mut Conn, op: &PlannedOp, write: WriteId, committing: &AtomicBool, tx_seen: &Mutex<Option<String>>) -> std::result::Result<Vec<bool>, ExecError> {
    let w = write.column();
    let mut affected = Vec::with_capacity(op.rows.len());
    match conn {
        Conn::Pg(client, _) => {
            let tx = client.transaction().await.map_err(pg_err)?;
            // Debezium reports the 32-bit xid; txid_current() carries the epoch above it.
            let xid: i64 = tx.query_one("SELECT (txid_current() % 4294967296)::bigint", &[]).await.map_err(pg_err)?.get(0);
            *tx_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(xid.to_string());
            for r in &op.rows {
                let n = pg_row(&tx, r, w).await.map_err(pg_err)?;
                affected.push(n > 0);
            }
            committing.store(true, Ordering::Relaxed);
            tx.commit().await.map_err(pg_err)?;
        }
        Conn::Maria(c) => {
            use mysql_async::prelude::Queryable;
            c.query_drop("START TRANSACTION").await.map_err(my_err)?;
            for r in &op.rows {
                affected.push(maria_row(c, r, w).await.map_err(my_err)?);
            }
            committing.store(true, Ordering::Relaxed);
            c.query_drop("COMMIT").await.map_err(my_err)?;
            // A transaction that changed no row writes nothing to the binlog: no GTID, no event
            // (and @@last_gtid would still name the session's previous transaction).
            if !affected.contains(&true) {
                return Ok(affected);
            }
            // The GTID is known only now. It is recorded for people reading the history; the
            // events are identified by the write id, so a GTID that cannot be read changes
            // nothing about the outcome.
            match c.query_first::<String, _>("SELECT @@last_gtid").await {
                Ok(Some(g)) if !g.is_empty() => *tx_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(g),
                Ok(_) => {}
                Err(e) => tracing::warn!("committed, but reading @@last_gtid failed: {e}"),
            }
        }
    }
    Ok(affected)
}

/// One row change in PostgreSQL, setting `write_id` to `w`. Returns the rows changed.
async fn pg_row(tx: &tokio_postgres::Transaction<'_>, r: &PlannedRow, w: i64) -> std::result::Result<u64, tokio_postgres::Error> {
    let pk = r.row.pk;
    match (&r.values, r.row.table, r.row.kind) {
        (_, table, Kind::Delete) => {
            let name = if table == Table::Customers { "customers" } else { "flights" };
            // The delete's before image then carries this operation's write id.
            tx.execute(&format!("UPDATE {name} SET write_id = $2 WHERE id = $1"), &[&pk, &w]).await?;
            tx.execute(&format!("DELETE FROM {name} WHERE id = $1"), &[&pk]).await
        }
        (_, Table::Flights, Kind::Move) => {
            let to = r.row.customer_id.unwrap_or(0);
            tx.execute("UPDATE flights SET customer_id = $2, updated_at = now(), write_id = $3 WHERE id = $1 AND customer_id <> $2", &[&pk, &to, &w]).await
        }
        (Values::Customer { name, gender, address, phone, email, birth_days, profession }, _, Kind::Insert) => {
            tx.execute(
                "INSERT INTO customers (id, name, gender, address, phone, email, birth_date, profession, write_id)
                 VALUES ($1, $2, $3, $4, $5, $6, DATE '1970-01-01' + $7::int, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, gender = EXCLUDED.gender, address = EXCLUDED.address,
                   phone = EXCLUDED.phone, email = EXCLUDED.email, birth_date = EXCLUDED.birth_date,
                   profession = EXCLUDED.profession, updated_at = now(), write_id = EXCLUDED.write_id",
                &[&pk, name, gender, address, phone, email, birth_days, profession, &w],
            )
            .await
        }
        (Values::Customer { address, phone, email, profession, .. }, _, _) => {
            tx.execute(
                "UPDATE customers SET address = $2, phone = $3, email = $4, profession = $5, updated_at = now(), write_id = $6 WHERE id = $1",
                &[&pk, address, phone, email, profession, &w],
            )
            .await
        }
        (Values::Flight { customer_id, airport, airline, iata_code }, _, Kind::Insert) => {
            tx.execute(
                "INSERT INTO flights (id, customer_id, airport, airline, iata_code, write_id) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, airport = EXCLUDED.airport,
                   airline = EXCLUDED.airline, iata_code = EXCLUDED.iata_code, updated_at = now(), write_id = EXCLUDED.write_id",
                &[&pk, customer_id, airport, airline, iata_code, &w],
            )
            .await
        }
        (Values::Flight { airport, airline, iata_code, .. }, _, _) => {
            tx.execute(
                "UPDATE flights SET airport = $2, airline = $3, iata_code = $4, updated_at = now(), write_id = $5 WHERE id = $1",
                &[&pk, airport, airline, iata_code, &w],
            )
            .await
        }
        (v, t, k) => unreachable!("no SQL for {k:?} on {t:?} with {v:?}"),
    }
}

/// One row change in MariaDB, setting `write_id` to `w`. Returns whether the row changed.
async fn maria_row(c: &mut mysql_async::Conn, r: &PlannedRow, w: i64) -> std::result::Result<bool, mysql_async::Error> {
    use mysql_async::prelude::Queryable;
    let pk = r.row.pk;
    match (&r.values, r.row.kind) {
        (_, Kind::Delete) => {
            // The delete's before image then carries this operation's write id.
            c.exec_drop("UPDATE vehicles SET write_id = ? WHERE id = ?", (w, pk)).await?;
            c.exec_drop("DELETE FROM vehicles WHERE id = ?", (pk,)).await?;
        }
        (_, Kind::Move) => {
            let to = r.row.customer_id.unwrap_or(0);
            c.exec_drop(
                "UPDATE vehicles SET customer_id = ?, updated_at = CURRENT_TIMESTAMP(6), write_id = ? WHERE id = ? AND customer_id <> ?",
                (to, w, pk, to),
            )
            .await?;
        }
        (Values::Vehicle { customer_id, model_year, model, manufacturer, vehicle_year, category }, Kind::Insert) => {
            c.exec_drop(
                "INSERT INTO vehicles (id, customer_id, model_year, model, manufacturer, vehicle_year, category, write_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE customer_id = VALUES(customer_id), model_year = VALUES(model_year), model = VALUES(model),
                   manufacturer = VALUES(manufacturer), vehicle_year = VALUES(vehicle_year), category = VALUES(category),
                   updated_at = CURRENT_TIMESTAMP(6), write_id = VALUES(write_id)",
                (pk, customer_id, model_year, model, manufacturer, vehicle_year, category, w),
            )
            .await?;
        }
        (Values::Vehicle { model, vehicle_year, category, .. }, _) => {
            c.exec_drop(
                "UPDATE vehicles SET model = ?, vehicle_year = ?, category = ?, updated_at = CURRENT_TIMESTAMP(6), write_id = ? WHERE id = ?",
                (model, vehicle_year, category, w, pk),
            )
            .await?;
        }
        (v, k) => unreachable!("no SQL for {k:?} on vehicles with {v:?}"),
    }
    Ok(c.affected_rows() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scenario(seed: u64, connections: u32, rows: [u32; 2], zipf: bool) -> Scenario {
        let keys = if zipf { "keys = { kind = \"zipf\", exponent = 1.1 }\n" } else { "" };
        let text = format!(
            "name = \"t\"\nseed = {seed}\nduration = \"10s\"\n[load]\nrate = 50\nconnections = {connections}\nrows_per_tx = [{}, {}]\n{keys}",
            rows[0], rows[1]
        );
        Scenario::parse(&text, "t").unwrap()
    }

    #[test]
    fn same_seed_same_operations_other_seed_other_operations() {
        let a: Vec<PlannedOp> = Generator::new(&scenario(1, 4, [1, 3], false)).take(500).collect();
        let b: Vec<PlannedOp> = Generator::new(&scenario(1, 4, [1, 3], false)).take(500).collect();
        let c: Vec<PlannedOp> = Generator::new(&scenario(2, 4, [1, 3], false)).take(500).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn schedule_follows_the_rate_and_the_mix() {
        let s = scenario(3, 4, [2, 2], false);
        let ops: Vec<PlannedOp> = Generator::new(&s).take_while(|o| o.due < Duration::from_secs(10)).collect();
        // 50 rows/s at 2 rows per transaction: 25 transactions per second.
        assert_eq!(ops.len(), 250);
        let rows: Vec<&PlannedRow> = ops.iter().flat_map(|o| &o.rows).collect();
        let moves = rows.iter().filter(|r| r.row.kind == Kind::Move).count();
        let customers = rows.iter().filter(|r| r.row.table == Table::Customers).count();
        assert!(moves > 20 && customers > 60, "moves {moves}, customer rows {customers}");
        assert!(rows.iter().all(|r| r.row.table != Table::Customers || r.row.kind != Kind::Move));
    }

    /// Databases that refuse connections do not stop the load: every operation is recorded,
    /// as `fail` (never sent), and the run ends on time.
    #[test]
    fn unreachable_databases_fail_operations_without_stopping_the_run() {
        let text = "name = \"t\"\nseed = 5\nwarmup = \"1s\"\nduration = \"2s\"\n[load]\nrate = 40\nconnections = 2\n";
        let s = Scenario::parse(text, "t").unwrap();
        // Port 1 on loopback: connection refused at once.
        let targets = Targets { postgres: "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=1".into(), mariadb: "mysql://x:x@127.0.0.1:1/x".into() };
        let dir = std::env::temp_dir().join(format!("cdc-chaos-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let started = std::time::Instant::now();
        let summary = drive(&s, &targets, 77, HistoryWriter::create(&path).unwrap(), Duration::from_secs(1), |_, _| {}).unwrap();
        assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
        let ops = crate::history::read(&path).unwrap();
        assert_eq!(ops.len() as u64, summary.operations);
        assert_eq!(summary.operations, 120, "40 rows/s for 3 s, one row per transaction");
        assert!(ops.iter().all(|o| o.outcome == crate::history::Outcome::Fail), "{:?}", ops.iter().find(|o| o.outcome != crate::history::Outcome::Fail));
        assert!(ops.iter().all(|o| o.error.as_deref().is_some_and(|e| e.starts_with("not sent"))));
        assert!(ops.iter().any(|o| o.phase == Phase::Warmup) && ops.iter().any(|o| o.phase == Phase::Load));
        assert!(ops.iter().all(|o| o.write_id == Some(WriteId::new(77, o.index))), "every operation records its write id");
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest! {
        /// Every row of an operation is in the operation's database, is owned by its writer, is in
        /// the key space, and appears once; moves and inserts of flights and vehicles name a
        /// customer in the customers' key space.
        #[test]
        fn operations_respect_ownership_and_identity(seed in any::<u64>(), conns in 1u32..6, lo in 1u32..3, extra in 0u32..3, zipf in any::<bool>()) {
            let s = scenario(seed, conns, [lo, lo + extra], zipf);
            for op in Generator::new(&s).take(300) {
                prop_assert!(!op.rows.is_empty() && op.rows.len() <= (lo + extra) as usize);
                prop_assert!(op.writer < conns);
                let mut seen = std::collections::HashSet::new();
                for r in &op.rows {
                    prop_assert_eq!(Db::of(r.row.table), op.db);
                    let n = i64::from(s.load.key_space.of(r.row.table));
                    prop_assert!(r.row.pk >= 1 && r.row.pk <= n, "pk {} outside 1..={}", r.row.pk, n);
                    prop_assert_eq!(((r.row.pk - 1) % i64::from(conns)) as u32, op.writer);
                    prop_assert!(seen.insert((r.row.table, r.row.pk)), "row twice in one transaction");
                    if let Some(c) = r.row.customer_id {
                        prop_assert!(c >= 1 && c <= i64::from(s.load.key_space.customers));
                    }
                    if matches!(r.row.kind, Kind::Move) || (r.row.kind == Kind::Insert && r.row.table != Table::Customers) {
                        prop_assert!(r.row.customer_id.is_some());
                    }
                }
            }
        }

        /// Had every operation committed, every update, delete and move would change a row
        /// that exists: the plan offers real changes, not no-ops.
        #[test]
        fn updates_deletes_and_moves_target_existing_rows(seed in any::<u64>(), lo in 1u32..3, zipf in any::<bool>()) {
            let s = scenario(seed, 3, [lo, lo + 1], zipf);
            let mut exists = std::collections::HashSet::new();
            for op in Generator::new(&s).take(1000) {
                for r in &op.rows {
                    let key = (r.row.table, r.row.pk);
                    match r.row.kind {
                        Kind::Insert => { exists.insert(key); }
                        Kind::Delete => prop_assert!(exists.remove(&key), "delete of missing {:?}", key),
                        Kind::Update | Kind::Move => prop_assert!(exists.contains(&key), "{:?} of missing {:?}", r.row.kind, key),
                    }
                }
            }
        }
    }
}
