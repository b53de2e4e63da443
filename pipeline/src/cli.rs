//! Command line of the pipeline processes (`cdc-pipeline join|warehouse ...`, also reachable as
//! `cdc-chaos pipeline ...`). Exit codes: 0 stopped on request, 2 configuration or fatal error.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::ClientFiles;
use crate::error::Error;
use crate::exactly_once::{self, LoopConfig};
use crate::lake::{self, LakeConfig};
use crate::metrics::{self, Metrics};
use crate::warehouse::{self, SinkConfig};

#[derive(Parser, Debug)]
#[command(name = "cdc-pipeline", about = "The customer_360 join and its sinks")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Join the raw CDC topics into customer_360.changes, exactly once
    Join {
        /// Directory of producer.properties, consumer.properties, processing.properties
        #[arg(long)]
        clients: PathBuf,
        /// Address of the Prometheus metrics endpoint
        #[arg(long)]
        metrics: String,
        /// Most records per transaction
        #[arg(long, default_value_t = 2000)]
        batch_max: usize,
    },
    /// Apply customer_360.changes to the warehouse database, exactly once
    Warehouse {
        #[arg(long)]
        clients: PathBuf,
        #[arg(long)]
        metrics: String,
        /// Connection string of the warehouse, e.g. "host=127.0.0.1 port=25433 user=postgres dbname=warehouse"
        #[arg(long)]
        dsn: String,
        #[arg(long, default_value_t = 500)]
        batch_max: usize,
    },
    /// Write customer_360.changes as Parquet objects to an S3 bucket, exactly once
    Lake {
        #[arg(long)]
        clients: PathBuf,
        #[arg(long)]
        metrics: String,
        /// S3 endpoint, e.g. http://127.0.0.1:28380
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        bucket: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long, env = "CDC_LAKE_ACCESS_KEY")]
        access_key: String,
        #[arg(long, env = "CDC_LAKE_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
        /// Key prefix of the objects
        #[arg(long, default_value = "customer_360")]
        prefix: String,
        #[arg(long, default_value_t = 1000)]
        batch_max: usize,
    },
}

/// Runs a pipeline command; returns the exit code.
pub fn run(cli: Cli) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let m = Metrics::new();
    let result = match cli.command {
        Command::Join { clients, metrics: addr, batch_max } => ClientFiles::load(&clients).and_then(|files| {
            metrics::serve(&addr, "join", m.clone()).map_err(|source| Error::Metrics { address: addr.clone(), source })?;
            let cfg = LoopConfig { batch_max, ..LoopConfig::default() };
            exactly_once::run(&files, &cfg, &m, &stop)
        }),
        Command::Warehouse { clients, metrics: addr, dsn, batch_max } => ClientFiles::load(&clients).and_then(|files| {
            metrics::serve(&addr, "warehouse", m.clone()).map_err(|source| Error::Metrics { address: addr.clone(), source })?;
            let cfg = SinkConfig { dsn, batch_max, batch_wait: Duration::from_millis(20) };
            warehouse::run(&files, &cfg, &m, &stop)
        }),
        Command::Lake { clients, metrics: addr, endpoint, bucket, region, access_key, secret_key, prefix, batch_max } => {
            ClientFiles::load(&clients).and_then(|files| {
                metrics::serve(&addr, "lake", m.clone()).map_err(|source| Error::Metrics { address: addr.clone(), source })?;
                let cfg = LakeConfig { endpoint, bucket, region, access_key, secret_key, prefix, batch_max, batch_wait: Duration::from_secs(1) };
                lake::run(&files, &cfg, &m, &stop)
            })
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
