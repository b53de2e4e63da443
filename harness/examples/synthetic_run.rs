//! Records a synthetic run directory of about EVENTS events (default 10,000,000), every one
//! delivered exactly once at each hop, for measuring `cdc-chaos check` and `cdc-chaos report`
//! on runs larger than a machine's stack produces:
//!
//! ```text
//! cargo run --release -p cdc-chaos --example synthetic_run -- /tmp/run-10m 10000000
//! /usr/bin/time -v target/release/cdc-chaos check /tmp/run-10m
//! ```

#[path = "../benches/synthetic/mod.rs"]
mod synthetic;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), events) = (args.next(), args.next()) else {
        eprintln!("usage: synthetic_run DIR [EVENTS]");
        std::process::exit(2);
    };
    let events: usize = match events.as_deref().map(str::parse).unwrap_or(Ok(10_000_000)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("synthetic_run: EVENTS: {e}");
            std::process::exit(2);
        }
    };
    let dir = std::path::PathBuf::from(dir);
    let scenario = include_str!("../../scenarios/smoke.toml");
    synthetic::write_run_dir(&dir, events, scenario);
    println!("{}: about {events} events recorded", dir.display());
}
