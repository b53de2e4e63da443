//! The `cdc-chaos` command. Exit codes: 0 success / pass, 1 invariant violated (e.g. audit
//! mismatch), 2 setup or harness error (bad input, a component that failed), 3 unknown outcome.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use cdc_chaos::cli::{Cli, Command, ManifestsCommand, Platform};

use cdc_chaos::platform::deployment::Deployment;
use cdc_chaos::platform::local::LocalStack;
use cdc_chaos::platform::stack::{all_healthy, status_table, ComponentStatus};
use cdc_chaos::run_dir::RunDir;
use cdc_chaos::{audit, error, Profile, StackConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("pipeline") {
        // The pipeline processes: their own command line, logging at info to their log file.
        use clap::Parser as _;
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CDC_CHAOS_LOG").unwrap_or_else(|_| "info".into()))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
        let cli = cdc_pipeline::cli::Cli::parse_from(std::iter::once("cdc-chaos pipeline".to_string()).chain(args.into_iter().skip(2)));
        return ExitCode::from(cdc_pipeline::cli::run(cli) as u8);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CDC_CHAOS_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// `report.html` of a run directory if it was rendered, else the directory.
fn report_path(dir: &std::path::Path) -> PathBuf {
    let html = RunDir::new(dir).report_html();
    if html.is_file() {
        html
    } else {
        dir.to_path_buf()
    }
}

/// Renders a checked run's reports; a failure is reported on stderr and leaves the verdict and
/// the exit code alone. Returns whether they were rendered.
fn render_reports(dir: &std::path::Path) -> bool {
    match cdc_chaos::report::render(dir) {
        Ok(r) => {
            for p in &r.problems {
                eprintln!("note: report: {p}");
            }
            true
        }
        Err(e) => {
            eprintln!("warning: the reports of {} could not be rendered (the verdict stands): {e}", dir.display());
            false
        }
    }
}

/// `--platform kind`: `up`, `down` and `status` through the Kubernetes API (`run`, `replay` and
/// `sweep` go through [`Deployment::Kind`]).
fn run_kind(command: Command, cfg: &StackConfig, overlay: PathBuf, delete_cluster: bool) -> cdc_chaos::Result<i32> {
    use cdc_chaos::platform::kind;
    match command {
        Command::Up { profile, timeout, lake_endpoint, .. } => {
            if lake_endpoint.is_some() {
                return Err(cdc_chaos::Error::Usage("--lake-endpoint is for the local platform; on kind the overlay chooses the lake".into()));
            }
            let profile = Profile::load(&profile)?;
            let applied = kind::up(&cfg.cache, &cfg.home, &overlay, &profile, std::time::Duration::from_secs(timeout))?;
            println!("{} objects applied from {}; Kafka, every Deployment and both Jobs are ready", applied.len(), overlay.display());
            Ok(error::EXIT_PASS)
        }
        Command::Down { purge } => {
            if purge {
                return Err(cdc_chaos::Error::Usage("--purge is for the local platform: on kind, `down` deletes the namespaces and with them the volumes' claims".into()));
            }
            if delete_cluster {
                kind::create::delete_cluster(&cfg.cache)?;
                let _ = std::fs::remove_file(kind::faults::KindFaults::journal_path(&cfg.home));
                return Ok(error::EXIT_PASS);
            }
            let deleted = kind::down(&cfg.cache, &cfg.home, &overlay)?;
            println!("{} objects deleted", deleted.len());
            Ok(error::EXIT_PASS)
        }
        Command::Manifests { .. } | Command::Check { .. } | Command::Report { .. } | Command::Compare { .. } => Err(cdc_chaos::Error::Usage(
            "this command works on files and takes no --platform".into(),
        )),
        Command::Status { json } => {
            let opts = kind::stack::KindOptions { overlay, ready_timeout: KIND_READY_TIMEOUT };
            let stack = kind::stack::KindStack::connect(cfg, opts)?;
            let rows = cdc_chaos::platform::stack::Stack::status(&stack)?;
            print_status(&rows, json)
        }
        Command::Audit { .. } => Err(cdc_chaos::Error::Usage(
            "audit reads the local stack's live settings; on kind the deployed settings are the committed rendering, which `cdc-chaos manifests render --check` compares with the profile".into(),
        )),
        _ => unreachable!("run, replay and sweep take the common path"),
    }
}

/// Longest wait for a cluster's workloads to be ready when a run deploys them.
const KIND_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(900);

fn print_status(rows: &[ComponentStatus], json: bool) -> cdc_chaos::Result<i32> {
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    } else {
        print!("{}", status_table(rows));
    }
    Ok(if all_healthy(rows) { error::EXIT_PASS } else { error::EXIT_UNKNOWN })
}

fn run(cli: Cli) -> cdc_chaos::Result<i32> {
    let mut cfg = StackConfig::default();
    if let Some(h) = cli.home {
        cfg.home = h;
    }
    if let Some(c) = cli.cache {
        cfg.cache = c;
    }
    if cli.loopback {
        cfg.loopback = true;
    }
    if cli.create_cluster {
        if cli.platform != Platform::Kind {
            return Err(cdc_chaos::Error::Usage("--create-cluster is for --platform kind".into()));
        }
        let layout = cdc_chaos::platform::Layout::new(&cfg);
        cdc_chaos::platform::kind::create::create_cluster(&layout, std::path::Path::new("."), &cli.overlay)?;
    }
    if cli.delete_cluster && !(cli.platform == Platform::Kind && matches!(cli.command, Command::Down { .. })) {
        return Err(cdc_chaos::Error::Usage("--delete-cluster is for `--platform kind down`".into()));
    }
    let deployment = match cli.platform {
        Platform::Local => Deployment::Local,
        Platform::Kind => {
            if !matches!(cli.command, Command::Run { .. } | Command::Replay { .. } | Command::Sweep { .. }) {
                return run_kind(cli.command, &cfg, cli.overlay, cli.delete_cluster);
            }
            Deployment::Kind(cdc_chaos::platform::kind::stack::KindOptions { overlay: cli.overlay, ready_timeout: KIND_READY_TIMEOUT })
        }
    };
    match cli.command {
        Command::Pipeline { .. } => unreachable!("handled before parsing"),
        Command::Up { profile, timeout, lake_endpoint, lake_bucket, lake_access_key, lake_secret_key } => {
            let profile = Profile::load(&profile)?;
            cfg.ready_timeout_secs = timeout;
            cfg.lake_bucket = lake_bucket;
            if lake_endpoint.is_some() {
                cfg.lake_endpoint = lake_endpoint;
                cfg.lake_access_key = lake_access_key.unwrap_or_default();
                cfg.lake_secret_key = lake_secret_key.unwrap_or_default();
            }
            let stack = LocalStack::new(cfg);
            let rows = stack.up(&profile)?;
            print!("{}", status_table(&rows));
            Ok(error::EXIT_PASS)
        }
        Command::Down { purge } => {
            let stack = LocalStack::new(cfg);
            // Resume paused processes first: a stopped process cannot act on SIGTERM.
            if let Err(e) = cdc_chaos::platform::local::faults::heal_journal(&stack, false) {
                eprintln!("{e}");
            }
            stack.down(purge)?;
            Ok(error::EXIT_PASS)
        }
        Command::Status { json } => {
            let rows = LocalStack::new(cfg).status()?;
            print_status(&rows, json)
        }
        Command::Run { scenario, reports, seed } => {
            let mut s = cdc_chaos::scenario::Scenario::load(&scenario)?;
            if let Some(seed) = seed {
                s.seed = seed;
            }
            let (dir, result) = cdc_chaos::run::run(&s, &cdc_chaos::run::RunOptions { cfg, reports, deployment })?;
            print!("{}", result.summary_text());
            println!("report: {}", report_path(&dir).display());
            Ok(result.exit_code())
        }
        Command::Replay { run_dir, reports } => {
            let s = cdc_chaos::scenario::Scenario::load(&RunDir::new(&run_dir).scenario())?;
            let (dir, result) = cdc_chaos::run::run(&s, &cdc_chaos::run::RunOptions { cfg, reports, deployment })?;
            print!("{}", result.summary_text());
            println!("report: {} (replay of {})", report_path(&dir).display(), run_dir.display());
            Ok(result.exit_code())
        }
        Command::Sweep { scenario, start, factor, step, max, p99_ms, hop, duration, keep_going, reports } => {
            let s = cdc_chaos::scenario::Scenario::load(&scenario)?;
            let opts = cdc_chaos::sweep::SweepOptions {
                run: cdc_chaos::run::RunOptions { cfg, reports, deployment },
                plan: cdc_chaos::sweep::Plan { start, factor, step, max },
                objective: cdc_chaos::sweep::Objective { hop, p99_ms },
                duration,
                keep_going,
            };
            let (dir, sweep) = cdc_chaos::sweep::sweep(&s, &opts)?;
            print!("{}", sweep.markdown());
            println!("sweep: {}", dir.display());
            Ok(sweep.exit_code())
        }
        Command::Check { run_dir, json } => {
            let result = cdc_chaos::result::check_run(&run_dir)?;
            let rendered = render_reports(&run_dir);
            if json {
                println!("{}", serde_json::to_string_pretty(&result).expect("json"));
            } else {
                print!("{}", result.summary_text());
                if rendered {
                    println!("report: {}", RunDir::new(&run_dir).report_html().display());
                }
            }
            Ok(result.exit_code())
        }
        Command::Report { run_dir } if run_dir.join("sweep.json").is_file() => {
            println!("{}", cdc_chaos::report::sweep::render(&run_dir)?.display());
            Ok(error::EXIT_PASS)
        }
        Command::Report { run_dir } => {
            let rendered = cdc_chaos::report::render(&run_dir)?;
            for p in &rendered.problems {
                eprintln!("note: {p}");
            }
            for f in &rendered.files {
                println!("{}", f.display());
            }
            Ok(error::EXIT_PASS)
        }
        Command::Compare { run_a, run_b, out } => {
            use cdc_chaos::report::{compare, Recorded};
            let (a, b) = (Recorded::load(&run_a)?, Recorded::load(&run_b)?);
            for (name, r) in [("A", &a), ("B", &b)] {
                for p in &r.problems {
                    eprintln!("note: {name}: {p}");
                }
            }
            let c = compare::compare(&a, &b);
            let out = out.unwrap_or_else(|| compare::default_out(&a, &b));
            std::fs::write(&out, &c.html).map_err(|e| cdc_chaos::Error::io("writing the comparison", &out, e))?;
            print!("{}", c.text);
            println!("comparison: {}", out.display());
            Ok(error::EXIT_PASS)
        }
        Command::Manifests { command: ManifestsCommand::Render { profile, out, check } } => {
            use cdc_chaos::platform::kind::manifests;
            let profile = Profile::load(&profile)?;
            let files = manifests::render(&profile)?.files()?;
            if check {
                let diff = manifests::differences(&out, &files);
                for d in &diff {
                    println!("{d}");
                }
                if !diff.is_empty() {
                    eprintln!("{} is not the rendering of profile {:?}: run `cdc-chaos manifests render --profile {} --out {}`", out.display(), profile.name, profile.name, out.display());
                    return Ok(error::EXIT_VIOLATION);
                }
                println!("{}: up to date with profile {:?}", out.display(), profile.name);
                return Ok(error::EXIT_PASS);
            }
            for path in manifests::write(&out, &files)? {
                println!("{}", path.display());
            }
            Ok(error::EXIT_PASS)
        }
        Command::Audit { profile, json } => {
            let stack = LocalStack::new(cfg);
            let state = cdc_chaos::platform::state::StackState::load(&stack.layout.state_file())?;
            let name = profile.or(state.profile_source.clone().map(|s| s.trim_start_matches("builtin:").to_string())).ok_or_else(|| {
                cdc_chaos::Error::Usage("no stack is running here and no --profile given".into())
            })?;
            let profile = Profile::load(&name)?;
            let topo = state.topology.clone().unwrap_or(stack.topo.clone());
            let rows = audit::audit(&stack.layout, &topo, &profile)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
            } else {
                print!("{}", audit::table(&rows));
            }
            let failed = rows.iter().filter(|r| !r.ok).count();
            if failed > 0 {
                return Err(cdc_chaos::Error::AuditMismatch { profile: profile.name, failed, total: rows.len() });
            }
            Ok(error::EXIT_PASS)
        }
    }
}
