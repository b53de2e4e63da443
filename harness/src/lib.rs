//! cdc-chaos: deploys a real-time CDC pipeline (PostgreSQL + MariaDB → Kafka Connect/Debezium →
//! a 3-node Kafka cluster → a Rust 3-table join → warehouse + lake), drives it with database
//! changes, injects faults and checks that every change lands exactly once.
//!
//! Modules: `profile` (durability settings as data), `platform` (starting the real stack),
//! `audit` (live settings against the profile), `scenario` (what a run does), `load` (the
//! open-loop load generator), `history` (what it did), `observation` (what each hop holds),
//! `checker` (exactly-once per hop, final state), `latency` (HdrHistograms), `result`
//! (`result.json`), `report` (`report.html`, `summary.md`, `junit.xml`, comparisons), `run` (one
//! run end to end).

pub mod audit;
pub mod capture;
pub mod checker;
pub mod cli;
pub mod config;
pub mod error;
pub mod faults;
pub mod history;
pub mod latency;
pub mod lines;
pub mod load;
pub mod nemesis;
pub mod observation;
pub mod platform;
pub mod profile;
pub mod progress;
pub mod report;
pub mod result;
pub mod run;
pub mod run_dir;
pub mod scenario;
pub mod source_lag;
pub mod supervisor;
pub mod sweep;
/// Java `.properties` files, shared with the pipeline (which reads the rendered client configs).
pub use cdc_pipeline::properties;

pub use config::StackConfig;
pub use error::{Error, Result};
pub use profile::Profile;
