//! End-to-end tests of the pipeline against the real stack: changes written to PostgreSQL and
//! MariaDB reach the warehouse exactly once, through a join that is killed with SIGKILL mid-stream.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cdc_chaos::platform::{pipeline, topics};
use cdc_chaos::Profile;
use cdc_chaos_e2e::*;
use cdc_pipeline::join::recompute;
use cdc_pipeline::record::{parse_change, DeadLetter};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Map, Value};

/// A deterministic mix of single-row changes over small key spaces: inserts, updates, deletes,
/// flights and vehicles moving between customers, orphans whose customer does not exist (yet).
/// Every statement changes exactly one row, so it is exactly one event.
struct Workload {
    seed: u64,
    exists: [BTreeSet<i64>; 3],
}

impl Workload {
    fn next(&mut self) -> u64 {
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.seed >> 33
    }

    /// Statement `i`: (true for crm / false for fleet, SQL).
    fn statement(&mut self, i: usize) -> (bool, String) {
        let r = self.next();
        let table = (r % 3) as usize;
        let id = 1 + ((r / 3) % if table == 0 { 30 } else { 50 }) as i64;
        let owner = 1 + ((r / 151) % 36) as i64;
        let delete = self.exists[table].contains(&id) && (r / 7).is_multiple_of(6);
        if delete {
            self.exists[table].remove(&id);
        } else {
            self.exists[table].insert(id);
        }
        let sql = match (table, delete) {
            (0, true) => format!("DELETE FROM customers WHERE id = {id}"),
            (0, false) => format!("INSERT INTO customers (id, name) VALUES ({id}, 'c{i}') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"),
            (1, true) => format!("DELETE FROM flights WHERE id = {id}"),
            (1, false) => format!(
                "INSERT INTO flights (id, customer_id, airport) VALUES ({id}, {owner}, 'a{i}') ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, airport = EXCLUDED.airport"
            ),
            (_, true) => format!("DELETE FROM vehicles WHERE id = {id}"),
            (_, false) => format!(
                "INSERT INTO vehicles (id, customer_id, model) VALUES ({id}, {owner}, 'm{i}') ON DUPLICATE KEY UPDATE customer_id = VALUES(customer_id), model = VALUES(model)"
            ),
        };
        (table < 2, sql)
    }
}

fn row(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// The join recomputed from the source databases, on the columns the workload writes.
fn expected_documents(stack: &cdc_chaos::platform::local::LocalStack) -> BTreeMap<i64, Value> {
    let pg = |sql: &str| psql_rows(stack.cfg.postgres_port, "crm", sql);
    let customers: Vec<_> = pg("SELECT id || '|' || name FROM customers")
        .iter()
        .map(|l| {
            let (id, name) = l.split_once('|').unwrap();
            row(&[("id", json!(id.parse::<i64>().unwrap())), ("name", json!(name))])
        })
        .collect();
    let flights: Vec<_> = pg("SELECT id || '|' || customer_id || '|' || airport FROM flights")
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            row(&[("id", json!(f[0].parse::<i64>().unwrap())), ("customer_id", json!(f[1].parse::<i64>().unwrap())), ("airport", json!(f[2]))])
        })
        .collect();
    let vehicles: Vec<_> = mariadb_rows(stack, "SELECT CONCAT(id, '|', customer_id, '|', model) FROM vehicles")
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            row(&[("id", json!(f[0].parse::<i64>().unwrap())), ("customer_id", json!(f[1].parse::<i64>().unwrap())), ("model", json!(f[2]))])
        })
        .collect();
    recompute(&customers, &flights, &vehicles)
}

/// The warehouse's documents, projected on the same columns.
fn warehouse_documents(stack: &cdc_chaos::platform::local::LocalStack) -> BTreeMap<i64, Value> {
    let project = |v: &Value, keys: &[&str]| -> Value {
        Value::Object(keys.iter().map(|k| (k.to_string(), v[*k].clone())).collect())
    };
    psql_rows(stack.cfg.warehouse_port, "warehouse", "SELECT customer_id || E'\\t' || document::text FROM customer_360")
        .iter()
        .map(|l| {
            let (id, doc) = l.split_once('\t').unwrap();
            let doc: Value = serde_json::from_str(doc).unwrap();
            let mut out = project(&doc, &["id", "name"]);
            let list = |k: &str, cols: &[&str]| Value::Array(doc[k].as_array().unwrap().iter().map(|r| project(r, cols)).collect());
            out["flights"] = list("flights", &["id", "customer_id", "airport"]);
            out["vehicles"] = list("vehicles", &["id", "customer_id", "model"]);
            (id.parse().unwrap(), out)
        })
        .collect()
}

fn applied_count(stack: &cdc_chaos::platform::local::LocalStack) -> usize {
    psql_rows(stack.cfg.warehouse_port, "warehouse", "SELECT count(*) FROM applied_events")[0].parse().unwrap()
}

#[test]
fn changes_reach_the_warehouse_exactly_once_through_join_crashes() {
    let (_host, stack) = fresh_stack("pipeline");
    stack.up(&Profile::load("durable").unwrap()).expect("up");
    let bootstrap = stack.topo.bootstrap();

    // A record Debezium would never write: it must go to the dead-letter topic, not stop the join.
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    producer.send(BaseRecord::to(topics::CUSTOMERS).key("{\"id\":0}").payload("this is not json").partition(0)).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    const N: usize = 300;
    let mut w = Workload { seed: 42, exists: Default::default() };
    let mut statements: Vec<(bool, String)> = (0..N).map(|i| w.statement(i)).collect();
    // The last changes are written after a second join instance has started (see below).
    let last_chunk = statements.split_off(N - 25);
    let writer = {
        let stack = cdc_chaos::platform::local::LocalStack::new(stack.cfg.clone());
        std::thread::spawn(move || {
            for chunk in statements.chunks(25) {
                let crm: Vec<String> = chunk.iter().filter(|(c, _)| *c).map(|(_, s)| s.clone()).collect();
                let fleet: Vec<String> = chunk.iter().filter(|(c, _)| !*c).map(|(_, s)| s.clone()).collect();
                crm_script(&stack, &crm);
                fleet_script(&stack, &fleet);
                std::thread::sleep(Duration::from_millis(400));
            }
        })
    };

    // SIGKILL the join twice and each sink once while changes flow.
    for (name, after) in [(pipeline::JOIN, 1500), (pipeline::SINK, 1000), (pipeline::LAKE_SINK, 500), (pipeline::JOIN, 1500)] {
        std::thread::sleep(Duration::from_millis(after));
        let pid = stack.signal(name, libc_sigkill()).unwrap();
        while std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let new = stack.restart_pipeline(name).expect("restart");
        eprintln!("killed {name} (pid {pid}), restarted as {new}");
    }
    writer.join().unwrap();

    // A second join with the same transactional id fences the running one: the old instance
    // must stop at its next transaction (which fails fatally), the new one carries on.
    let old = stack.status().unwrap().into_iter().find(|c| c.name == pipeline::JOIN).unwrap().pid;
    let zombie_fencer = std::process::Command::new(pipeline::executable().unwrap())
        .args(["pipeline", "join", "--clients"])
        .arg(stack.layout.clients_dir())
        .args(["--metrics", "127.0.0.1:19104"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(stack.layout.home.join("second-join.log")).unwrap())
        .spawn()
        .unwrap();
    let second_log = stack.layout.home.join("second-join.log");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !std::fs::read_to_string(&second_log).unwrap_or_default().contains("resuming output") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let crm_last: Vec<String> = last_chunk.iter().filter(|(c, _)| *c).map(|(_, s)| s.clone()).collect();
    let fleet_last: Vec<String> = last_chunk.iter().filter(|(c, _)| !*c).map(|(_, s)| s.clone()).collect();
    crm_script(&stack, &crm_last);
    fleet_script(&stack, &fleet_last);
    while !is_zombie(old) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(is_zombie(old), "the fenced join (pid {old}) is still running");
    let log = std::fs::read_to_string(stack.layout.log(pipeline::JOIN)).unwrap();
    assert!(log.to_lowercase().contains("fenced"), "the old join says it was fenced: {}", &log[log.len().saturating_sub(2000)..]);

    let deadline = Instant::now() + Duration::from_secs(240);
    while applied_count(&stack) < N && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3)); // let any duplicate arrive
    assert_eq!(applied_count(&stack), N, "every change applied once in the warehouse");
    let dups = psql_rows(
        stack.cfg.warehouse_port,
        "warehouse",
        "SELECT database || ' ' || tx || ' ' || table_name || ' ' || pk || ' x' || count(*) FROM applied_events GROUP BY database, tx, table_name, pk HAVING count(*) > 1",
    );
    assert!(dups.is_empty(), "duplicated events in the warehouse: {dups:?}");

    // One output record per input change on customer_360.changes, none twice.
    let outputs: Vec<Vec<u8>> = read_to_end(&bootstrap, topics::CUSTOMER_360).into_iter().flatten().collect();
    assert_eq!(outputs.len(), N, "join output records");
    let ids: BTreeSet<String> = outputs.iter().map(|o| serde_json::to_string(&parse_change(o).unwrap().event).unwrap()).collect();
    assert_eq!(ids.len(), N, "distinct event identities in the join output");

    let dead: Vec<Vec<u8>> = read_to_end(&bootstrap, topics::DEAD_LETTER).into_iter().flatten().collect();
    assert_eq!(dead.len(), 1, "one dead letter");
    let dl: DeadLetter = serde_json::from_slice(&dead[0]).unwrap();
    assert!(dl.reason.contains("not JSON"), "{dl:?}");
    assert_eq!((&*dl.input.topic, dl.input.partition), (topics::CUSTOMERS, 0));
    assert_eq!(dl.value.as_deref(), Some("this is not json"));

    // The lake holds every change once: as many rows as changes, offsets strictly increasing
    // (transaction markers take offsets too, so they are not contiguous), the same records the
    // warehouse applied.
    let lake = cdc_pipeline::lake::Lake::new(&cdc_chaos::platform::lake::lake_config(&stack.cfg)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rows = lake.read_all().unwrap();
    while rows.len() < N && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        rows = lake.read_all().unwrap();
    }
    let offsets: Vec<i64> = rows.iter().map(|r| r.kafka_offset).collect();
    assert_eq!(offsets.len(), N, "lake rows");
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "lake offsets strictly increasing: {offsets:?}");
    let applied: Vec<i64> = psql_rows(stack.cfg.warehouse_port, "warehouse", "SELECT topic_offset FROM applied_events ORDER BY topic_offset")
        .iter()
        .map(|o| o.parse().unwrap())
        .collect();
    assert_eq!(offsets, applied, "the lake and the warehouse hold the same records");
    let lake_ids: BTreeSet<(String, String, String, i64)> =
        rows.iter().map(|r| (r.database.clone(), r.tx.clone(), r.table_name.clone(), r.pk)).collect();
    assert_eq!(lake_ids.len(), N, "distinct event identities in the lake");
    // Appends are create-only, so a killed sink's late PUT cannot overlap its successor's object.
    let first = lake.list("customer_360/").unwrap().into_iter().next().unwrap();
    assert_eq!(lake.put_new(&first, b"a late PUT").unwrap(), cdc_pipeline::lake::Put::Exists, "{first} is not overwritten");

    let mut zombie_fencer = zombie_fencer;
    let _ = zombie_fencer.kill();
    let _ = zombie_fencer.wait();

    let want = expected_documents(&stack);
    assert!(want.len() > 5, "the workload leaves customers behind: {}", want.len());
    assert_eq!(warehouse_documents(&stack), want, "warehouse customer_360 equals the join recomputed from the sources");
}

fn libc_sigkill() -> i32 {
    9
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z ")).unwrap_or(true)
}
