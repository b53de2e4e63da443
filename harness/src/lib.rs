//! cdc-chaos: deploys a real-time CDC pipeline (PostgreSQL + MariaDB → Kafka Connect/Debezium →
//! a 3-node Kafka cluster → a Rust 3-table join → warehouse + lake), drives it with database
//! changes, injects faults and checks that every change lands exactly once.
//!
//! Modules: `profile` (durability settings as data), `platform` (starting the real stack),
//! `audit` (live settings against the profile).

pub mod audit;
pub mod config;
pub mod error;
pub mod platform;
pub mod profile;
pub mod progress;
/// Java `.properties` files, shared with the pipeline (which reads the rendered client configs).
pub use cdc_pipeline::properties;

pub use config::StackConfig;
pub use error::{Error, Result};
pub use profile::Profile;
