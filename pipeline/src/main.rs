//! `cdc-pipeline join|warehouse`: the pipeline processes (the harness starts them with `up`).

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CDC_CHAOS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    std::process::exit(cdc_pipeline::cli::run(cdc_pipeline::cli::Cli::parse()));
}
