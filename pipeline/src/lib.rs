//! The pipeline of cdc-chaos: decodes Debezium change events from the three raw CDC topics and
//! joins them into `customer_360` documents (docs/architecture.md, Semantics).
//!
//! `decode` turns a Kafka record into a [`decode::Change`] (or says why it cannot); `join` keeps
//! the state of the three tables and emits, for every change, one [`join::Output`].

pub mod decode;
pub mod join;
pub mod config;
pub mod error;
pub mod exactly_once;
pub mod checkpoint;
pub mod metrics;
pub mod properties;
pub mod record;
pub mod warehouse;
pub mod cli;
pub mod lake;
pub mod session;
