//! Settings of a pipeline process, read once from the client configuration files the harness
//! rendered from the profile (`producer.properties`, `consumer.properties`,
//! `processing.properties` in one directory).

use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;

use crate::error::{Error, Result};
use crate::properties::{self, Properties};

/// Processing guarantee, from `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

#[derive(Debug, Clone)]
pub struct ClientFiles {
    pub dir: PathBuf,
    pub producer: Properties,
    pub consumer: Properties,
    pub guarantee: Guarantee,
}

fn read(path: &Path) -> Result<Properties> {
    std::fs::read_to_string(path).map(|t| properties::parse(&t)).map_err(|e| Error::Config { path: path.into(), message: e.to_string() })
}

impl ClientFiles {
    pub fn load(dir: &Path) -> Result<ClientFiles> {
        let producer = read(&dir.join("producer.properties"))?;
        let consumer = read(&dir.join("consumer.properties"))?;
        let processing = read(&dir.join("processing.properties"))?;
        let guarantee = match processing.get("processing.guarantee").map(String::as_str) {
            Some("exactly_once") => Guarantee::ExactlyOnce,
            Some("at_least_once") => Guarantee::AtLeastOnce,
            other => {
                return Err(Error::Config {
                    path: dir.join("processing.properties"),
                    message: format!("processing.guarantee must be exactly_once or at_least_once, got {other:?}"),
                })
            }
        };
        for (name, p) in [("producer", &producer), ("consumer", &consumer)] {
            if !p.contains_key("bootstrap.servers") {
                return Err(Error::Config { path: dir.join(format!("{name}.properties")), message: "no bootstrap.servers".into() });
            }
        }
        Ok(ClientFiles { dir: dir.to_path_buf(), producer, consumer, guarantee })
    }

    /// A librdkafka configuration from the producer file (librdkafka takes the Java names used).
    pub fn producer_config(&self) -> ClientConfig {
        to_client_config(&self.producer)
    }

    /// A librdkafka consumer configuration for `group`, offsets committed by the caller only.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = to_client_config(&self.consumer);
        c.set("group.id", group);
        // Offsets are stored explicitly (in the transaction, or after the output is written).
        c.set("enable.auto.offset.store", "false");
        c
    }
}

fn to_client_config(p: &Properties) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in p {
        c.set(k, v);
    }
    c.set("log_level", "4");
    c
}
