//! Command-line interface: argument parsing and dispatch.
//!
//! Commands that create namespaces enter a user namespace first when run without privileges;
//! the kernel allows that only while the process has one thread, so it happens here, before any
//! runtime starts.

mod bench;
mod conform;
mod coverage;
mod docker;
mod doctor;
mod engines;
mod holder;
mod in_host;
mod lab;
mod lab_dns;
mod plugin;
mod table;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drydock_netsim::{registry, userns};

/// Docker's container networking, rebuilt in Rust and proven.
#[derive(Parser)]
#[command(name = "drydock", version, about)]
struct Cli {
    /// More logs (-v: info, -vv: debug); DRYDOCK_LOG=filter overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The lab host whose reference engine docker commands go to (`LAB/HOST`).
    #[arg(short = 'H', long = "host", value_name = "LAB/HOST")]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Labs of simulated hosts made of network namespaces.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Run conformance scenarios against an engine, and report.
    Conform(conform::ConformArgs),
    /// Benchmarks beside Docker and podman's stack: `bench attach` times per-container attach,
    /// `bench dns` measures the embedded DNS with dnsperf.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Docker network plugins: `plugin serve` serves a built-in driver as one, `plugin check`
    /// judges one.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Which of moby v20.10's networking tests the scenarios cover (the table in COVERAGE.md).
    Coverage(coverage::CoverageArgs),
    /// What this kernel supports, and what drydock uses where it does not.
    Doctor {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove persistent labs and anything a crashed run left behind.
    Gc,
    /// Any docker command line, with -H LAB/HOST: the docker CLI on PATH, DOCKER_HOST set to
    /// that lab host's engine (Docker Engine API 1.41 on a socket; `drydock lab env`).
    #[command(external_subcommand)]
    Docker(Vec<String>),
}

/// Parses the command line, runs the command, and turns errors into a message and exit code 1.
pub(crate) fn main() -> ExitCode {
    // `drydock -H LAB/HOST ...` is the docker CLI's, all of it (`--help` included).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let done = match docker::shortcut(&args) {
        Some((host, rest)) => {
            init_logging(0);
            docker::run(Some(host), rest)
        }
        None => {
            let cli = Cli::parse();
            init_logging(cli.verbose);
            run(cli.command, cli.host.as_deref())
        }
    };
    match done {
        Ok(code) => code,
        Err(error) => {
            eprintln!("drydock: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, host: Option<&str>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Docker(args) => docker::run(host, &args),
        Command::Lab(command) => lab::run(command),
        Command::Conform(args) => conform::run(args),
        Command::Coverage(args) => coverage::run(args),
        Command::Plugin(command) => plugin::run(command),
        Command::Bench(command) => bench::run(command),
        Command::Doctor { json } => {
            enter_rootless_if_needed()?;
            doctor::run(json)
        }
        Command::Gc => {
            let mut report = registry::gc()?;
            match drydock_conformance::targets::docker::gc_leftovers() {
                Ok(removed) => report.removed.extend(removed),
                Err(e) => report.errors.push(format!("docker target leftovers: {e}")),
            }
            match engines::gc_state() {
                Ok(removed) => report.removed.extend(removed),
                Err(e) => report.errors.push(format!("engine state directories: {e}")),
            }
            match engines::gc_sockets() {
                Ok(removed) => report.removed.extend(removed),
                Err(e) => report.errors.push(format!("engine sockets: {e}")),
            }
            if report.removed.is_empty() && report.errors.is_empty() {
                println!("nothing to remove");
            }
            for item in &report.removed {
                println!("removed {item}");
            }
            for error in &report.errors {
                eprintln!("drydock: error: gc: {error}");
            }
            Ok(if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("DRYDOCK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Without CAP_NET_ADMIN and CAP_SYS_ADMIN, enters a user namespace where this user is root.
/// Call before any thread starts.
fn enter_rootless_if_needed() -> anyhow::Result<()> {
    if !userns::is_privileged() {
        userns::enter_new()?;
        tracing::info!("running rootless, in a user namespace of our own");
    }
    Ok(())
}

/// A runtime for the async parts (netlink). One thread: labs are built sequentially.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
