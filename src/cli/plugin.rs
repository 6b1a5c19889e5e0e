//! `drydock plugin serve`: a built-in driver served as a Docker remote network driver plugin on
//! a unix socket, for a dockerd (the machine's, or a lab host's) to run networks through it
//! (`runtime::plugin`). It works in the network namespace it runs in, which must be dockerd's.
//! `drydock plugin check` judges a plugin's protocol (`conformance::plugin_check`).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::time::Duration;

use drydock_conformance::plugin_check;
use drydock_conformance::run::Options;
use drydock_conformance::scenario::{DRYDOCK_WORD, PluginRun, SOCKET_WORD};
use drydock_conformance::suite::{self, TargetKind};
use drydock_netsim::Netns;
use drydock_runtime::plugin::{PluginServer, SERVED, serve};

use super::conform;

/// Where dockerd looks for plugin sockets (hard-coded in dockerd, whatever its flags).
const PLUGINS_DIR: &str = "/run/docker/plugins";

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Serve a built-in driver as a Docker network plugin on a unix socket, in this network
    /// namespace, until interrupted.
    Serve(ServeArgs),
    /// Judge a network plugin by the calls dockerd 20.10 makes and what it does with the
    /// answers (its protocol; run it in the plugin's network namespace, where its links are).
    Check(CheckArgs),
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The plugin's name (`docker network create -d NAME`); alone, its socket is
    /// /run/docker/plugins/NAME.sock [default with --serve DRIVER: drydock-DRIVER].
    #[arg(long, alias = "name", required_unless_present_any = ["socket", "serve"])]
    driver: Option<String>,
    /// The socket of a plugin running in this network namespace: its protocol only.
    #[arg(long, conflicts_with_all = ["run", "serve"])]
    socket: Option<PathBuf>,
    /// The plugin's command, words split on spaces, `{socket}` standing for the socket it must
    /// listen on: started in a lab host of its own for the protocol checks, then on each docker
    /// host of each `driver: any` scenario, run with it on every --target.
    #[arg(long, requires = "driver", conflicts_with = "serve")]
    run: Option<String>,
    /// A built-in driver served as the plugin (`drydock plugin serve`, with the built-in IPAM),
    /// checked as --run checks a command.
    #[arg(long, value_parser = SERVED)]
    serve: Option<String>,
    /// The engines the scenarios run on (with --run or --serve).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "reference,docker"
    )]
    target: Vec<TargetKind>,
    /// Scenario files or folders (default: scenarios/); only `driver: any` ones run.
    paths: Vec<PathBuf>,
    /// Reports to write: junit=FILE,json=FILE,md=FILE (each file name gets the target's name
    /// before its extension).
    #[arg(long, value_delimiter = ',')]
    report: Vec<String>,
    /// Keep the captures of failed scenarios: DIR/TARGET/SCENARIO.pcapng.
    #[arg(long)]
    keep_pcaps: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The built-in driver to serve.
    #[arg(long, value_parser = SERVED)]
    driver: String,
    /// The plugin's name, as `docker network create -d NAME` gives it (not a built-in
    /// driver's: dockerd would never ask the plugin).
    #[arg(long)]
    name: String,
    /// Also serve the built-in IPAM (Docker 20.10's default pools) under the same name
    /// (`docker network create --ipam-driver NAME`); only `default` is served.
    #[arg(long, value_parser = ["default"])]
    ipam: Option<String>,
    /// The socket [default: /run/docker/plugins/NAME.sock, where dockerd looks].
    #[arg(long)]
    socket: Option<PathBuf>,
}

pub(crate) fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Serve(args) => serve_plugin(args),
        PluginCommand::Check(args) => check_plugin(args),
    }
}

fn check_plugin(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let plugin = match (&args.serve, &args.run) {
        (Some(driver), _) => {
            let name = args.driver.clone().unwrap_or(format!("drydock-{driver}"));
            check_name(&name)?;
            served(driver, &name)
        }
        (None, Some(run)) => {
            let name = args.driver.clone().context("--driver")?;
            PluginRun::parse(&name, run).map_err(|e| anyhow::anyhow!("--run: {e}"))?
        }
        (None, None) => return check_socket(args),
    };
    let verdicts = super::runtime()?.block_on(plugin_check::check_in_lab(&plugin));
    let verdicts = verdicts.map_err(anyhow::Error::msg)?;
    let protocol = print_verdicts(&verdicts, &format!("plugin {} in a lab host", plugin.name));
    println!();
    let paths = match args.paths.is_empty() {
        true => vec![PathBuf::from("scenarios")],
        false => args.paths,
    };
    let scenarios = suite::load(&paths, None)?;
    let scenarios: Vec<_> = scenarios.into_iter().filter(|s| s.any_driver).collect();
    println!(
        "{} driver-agnostic scenarios with plugin {} as their networks' driver",
        scenarios.len(),
        plugin.name
    );
    let run = conform::Suite {
        scenarios,
        targets: args.target,
        options: Options {
            jobs: 2,
            timeout: Duration::from_secs(180),
            probe_timeout: Duration::from_secs(1),
            plugin: Some(plugin),
        },
        reports: conform::parse_reports(&args.report)?,
        keep_pcaps: args.keep_pcaps,
    };
    let scenarios = run.run()?;
    Ok(match protocol {
        true => scenarios,
        false => ExitCode::FAILURE,
    })
}

/// Built-in driver `driver` and the built-in IPAM served as plugin `name` by this program
/// (`drydock plugin serve`), as a plugin to start.
pub(crate) fn served(driver: &str, name: &str) -> PluginRun {
    let command = [DRYDOCK_WORD, "plugin", "serve", "--driver", driver]
        .into_iter()
        .chain(["--ipam", "default", "--name", name, "--socket", SOCKET_WORD])
        .map(str::to_string)
        .collect();
    PluginRun {
        name: name.to_string(),
        command,
    }
}

/// The protocol checks of the plugin at --socket (or found by --driver's name).
fn check_socket(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // clap makes sure of one of them.
    let by_name = |name: String| Path::new(PLUGINS_DIR).join(format!("{name}.sock"));
    let socket = (args.socket.or_else(|| args.driver.map(by_name))).context("--driver")?;
    let netns = Netns::open("/proc/self/ns/net").context("this process's network namespace")?;
    let verdicts = super::runtime()?.block_on(plugin_check::check(&socket, &netns));
    let passed = print_verdicts(&verdicts, &socket.display().to_string());
    Ok(match passed {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// Prints each verdict and the count; whether every check passed.
fn print_verdicts(verdicts: &[plugin_check::Verdict], what: &str) -> bool {
    for verdict in verdicts {
        println!("{verdict}");
    }
    let passed = verdicts.iter().filter(|v| v.failure.is_none()).count();
    println!("{passed} of {} checks passed ({what})", verdicts.len());
    passed == verdicts.len()
}

fn serve_plugin(args: ServeArgs) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let socket = (args.socket.clone())
        .unwrap_or_else(|| Path::new(PLUGINS_DIR).join(format!("{}.sock", args.name)));
    let host = Netns::open("/proc/self/ns/net").context("this process's network namespace")?;
    let server = PluginServer::new(&args.driver, args.ipam.is_some(), host);
    let server = server.map_err(anyhow::Error::msg)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let listener = bind(&socket)?;
        println!(
            "serving the {} driver as network plugin {} on {}",
            args.driver,
            args.name,
            socket.display()
        );
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let served = tokio::select! {
            served = serve(listener, server) => served.context("serving"),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminate.recv() => Ok(()),
        };
        let _ = std::fs::remove_file(&socket);
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A plugin name dockerd would look up ([`drydock_runtime::plugin::check_name`]).
fn check_name(name: &str) -> anyhow::Result<()> {
    drydock_runtime::plugin::check_name(name).map_err(anyhow::Error::msg)
}

/// Listens on `socket`, replacing a stale socket (nothing answers there) but never a served
/// one or another file.
fn bind(socket: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", socket.display());
        }
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            bail!("{} is served already", socket.display());
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("cannot remove the stale {}", socket.display()))?;
    }
    tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_built_ins_and_odd_characters_are_refused() {
        assert!(check_name("drydock-bridge").is_ok());
        let builtin = check_name("bridge").unwrap_err().to_string();
        assert!(builtin.contains("drydock-bridge"), "{builtin}");
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
    }
}
