//! `drydock plugin serve`: a built-in driver served as a Docker remote network driver plugin on
//! a unix socket, for a dockerd (the machine's, or a lab host's) to run networks through it
//! (`runtime::plugin`). It works in the network namespace it runs in, which must be dockerd's.
//! `drydock plugin check` judges a plugin's protocol (`conformance::plugin_check`).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use drydock_conformance::plugin_check;
use drydock_netsim::Netns;
use drydock_runtime::plugin::{PluginServer, SERVED, serve};

/// Where dockerd looks for plugin sockets (hard-coded in dockerd, whatever its flags).
const PLUGINS_DIR: &str = "/run/docker/plugins";

/// Driver names dockerd never asks a plugin for (its built-ins come first).
const BUILTIN_NAMES: [&str; 6] = ["bridge", "host", "null", "overlay", "macvlan", "ipvlan"];

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
    /// The plugin's name: its socket is /run/docker/plugins/NAME.sock.
    #[arg(long, required_unless_present = "socket")]
    name: Option<String>,
    /// The plugin's socket.
    #[arg(long)]
    socket: Option<PathBuf>,
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
    // clap makes sure of one of them.
    let by_name = |name: String| Path::new(PLUGINS_DIR).join(format!("{name}.sock"));
    let socket = (args.socket.or_else(|| args.name.map(by_name))).context("--name or --socket")?;
    let netns = Netns::open("/proc/self/ns/net").context("this process's network namespace")?;
    let verdicts = super::runtime()?.block_on(plugin_check::check(&socket, &netns));
    for verdict in &verdicts {
        println!("{verdict}");
    }
    let passed = verdicts.iter().filter(|v| v.failure.is_none()).count();
    println!(
        "{passed} of {} checks passed ({})",
        verdicts.len(),
        socket.display()
    );
    Ok(match passed == verdicts.len() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
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

/// A plugin name dockerd would look up: not a built-in driver's, and fit for a file name.
fn check_name(name: &str) -> anyhow::Result<()> {
    if BUILTIN_NAMES.contains(&name) {
        bail!(
            "{name:?} is a built-in driver's name: dockerd never asks a plugin for it; pick another, such as drydock-{name}"
        );
    }
    let fit = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if name.is_empty() || !name.chars().all(fit) {
        bail!("{name:?} is not a plugin name: letters, digits, '.', '_' and '-' only");
    }
    Ok(())
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
