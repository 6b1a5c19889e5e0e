//! `drydock bench`: drydock's reference engine measured beside Docker Engine and podman's
//! network stack (netavark, aardvark-dns), each in a fresh one-host lab on this machine.
//!
//! - `attach` (`attach.rs`): how long attaching a container to a bridge network takes.
//! - `dns` (`dns.rs`): queries per second and latency of the embedded DNS servers, by dnsperf.
//! - `throughput` (`throughput.rs`): iperf3 between containers on two docker hosts, per
//!   datapath (raw veth, kernel macvlan, userspace ipvlan, userspace 802.1Q, the swarm overlay
//!   of drydock and of Docker).
//! - `convergence` (`convergence.rs`): how long a node of a swarm takes to see another node's
//!   new container on an overlay, and to forget it when that node dies; `swarm.rs` forms the
//!   swarms of both, `witness.rs` reads a node's FDB and asks its embedded DNS.
//! - `cli` (`cli.rs`): the real docker CLI's `run -d`, through drydock's Engine API socket and
//!   against dockerd.
//!
//! This module holds what they share: the lab, the reference engine and Docker set up on it,
//! netavark's container namespaces, the programs they run, and the notes and figures printed.

mod attach;
mod cli;
mod convergence;
mod dns;
mod swarm;
mod throughput;
mod witness;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Subcommand;
use drydock_conformance::run::Running;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::reference::PLUGINS_DIR_PREFIX;
use drydock_conformance::targets::{Target, lab_resolvers};
use drydock_netsim::{Lab, Netns, Topology};
use drydock_runtime::api::body::ContainerCreate;
use drydock_runtime::api::cli::DockerCommand;
use drydock_runtime::api::dispatch::dispatch;
use drydock_runtime::api::request;
use drydock_runtime::api::spec::{ContainerSpec, NetworkSpec};
use drydock_runtime::engine::{Engine, Options};
use drydock_runtime::plugin::discovery::PluginDirs;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

/// Benchmarks.
#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Time per-container attach (namespace, veth, address, routes, DNS resolver) for N
    /// containers on one bridge network, beside Docker and netavark.
    Attach(attach::AttachArgs),
    /// Queries per second and latency of the embedded DNS (a container name, a network alias,
    /// an unknown name), by dnsperf in a container, beside Docker and aardvark-dns.
    Dns(dns::DnsArgs),
    /// Single-stream TCP throughput (iperf3) between containers on two docker hosts, per
    /// datapath: raw veth, kernel macvlan, userspace ipvlan, userspace 802.1Q, and the swarm
    /// overlay (drydock's and Docker's).
    Throughput(throughput::ThroughputArgs),
    /// How long node A of a swarm takes to see a container joining an overlay on node B (its
    /// FDB entry, its name in A's DNS), and to forget it when B dies, beside Docker.
    Convergence(convergence::ConvergenceArgs),
    /// How long the real docker CLI takes to `docker run -d`, against drydock's Engine API
    /// socket and against dockerd.
    Cli(cli::CliArgs),
}

/// Runs a benchmark.
pub(crate) fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Attach(args) => attach::attach(args),
        BenchCommand::Dns(args) => dns::dns(args),
        BenchCommand::Throughput(args) => throughput::throughput(args),
        BenchCommand::Convergence(args) => convergence::convergence(args),
        BenchCommand::Cli(args) => cli::cli(args),
    }
}

/// The lab's only host: the docker host.
const HOST: &str = "h1";
/// The user-defined bridge network every container joins.
const NETWORK: &str = "net";
/// Published ports are `FIRST_PORT + i`.
const FIRST_PORT: usize = 10000;
/// Pause after each run, so that the kernel's teardown of the last lab (namespaces, veths)
/// does not run during the next one.
const SETTLE: Duration = Duration::from_secs(1);
/// Where Debian installs netavark.
const NETAVARK: &str = "/usr/lib/podman/netavark";
/// The subnet of netavark's bridge network (`netavark_options`) and its gateway.
const NETAVARK_SUBNET: &str = "10.89.0.0/16";
/// The gateway of [`NETAVARK_SUBNET`], on the bridge in the lab host.
const NETAVARK_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 1);

/// Milliseconds, rounded to the microsecond (for JSON).
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A duration for a table: `0.85 ms`, `12.3 ms`, `1.20 s`.
fn show(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// A progress bar on a terminal (none in CI logs and pipes).
fn progress(prefix: String, len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        let bar = ProgressBar::hidden();
        bar.set_prefix(prefix);
        return bar;
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {elapsed} {msg}")
            .expect("a valid template"),
    );
    bar.set_prefix(prefix);
    bar
}

/// The notes every benchmark starts with: the machine and the build profile.
fn notes() -> BTreeMap<&'static str, String> {
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    BTreeMap::from([("machine", machine()), ("build", build.to_string())])
}

/// Prints notes as `key: value` lines.
fn print_notes(notes: &BTreeMap<&str, String>) {
    for (key, value) in notes {
        println!("{key}: {value}");
    }
}

/// The 1, 5 and 15 minute load averages, from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// "CPU model, N CPUs, Linux RELEASE".
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} CPUs, Linux {}", release.trim())
}

/// The lab `bench`: `hosts` on one segment, 10.0.0.0/24, at 10.0.0.10, .11... in that order.
fn topology(hosts: &[&str]) -> anyhow::Result<Topology> {
    let mut builder = Topology::builder("bench").segment("lan", "10.0.0.0/24".parse()?);
    for (n, host) in (10..).zip(hosts) {
        builder = builder.host_at(host, Ipv4Addr::new(10, 0, 0, n));
    }
    builder.build().map_err(|e| anyhow!(e))
}

/// A fresh lab of the docker host [`HOST`] alone (at 10.0.0.10).
async fn lab() -> anyhow::Result<Lab> {
    Lab::build(topology(&[HOST])?)
        .await
        .context("building the lab")
}

/// The lab's docker host namespace.
fn host(lab: &Lab) -> anyhow::Result<&Netns> {
    lab.host(HOST).context("the lab has no host h1")
}

/// The network a reference run's containers join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A user-defined bridge network: embedded DNS.
    User,
    /// A user-defined network of drydock's bridge driver served as a network plugin in the
    /// lab's host ([`serve_bridge`]): embedded DNS, the driver's calls over its socket.
    Served,
    /// The default bridge (docker0): no embedded DNS.
    DefaultBridge,
    /// `--network none`: a namespace with `lo` only.
    None,
}

/// `docker run -d --name cI --network NETWORK [-p PORT:80] busybox sleep 3600`.
fn container_spec(i: usize, network: &str, publish: bool) -> ContainerSpec {
    ContainerSpec {
        name: format!("c{i}"),
        detach: true,
        image: "busybox".into(),
        command: vec!["sleep".into(), "3600".into()],
        network: Some(network.into()),
        publish: if publish {
            vec![format!("{}:80", FIRST_PORT + i)]
        } else {
            Vec::new()
        },
        ..ContainerSpec::default()
    }
}

/// The body the docker CLI would send for `spec`.
fn container_body(spec: &ContainerSpec) -> anyhow::Result<ContainerCreate> {
    request::container_create(spec).map_err(|e| anyhow!(e))
}

/// `docker run -d` on a docker host of `target`, as the docker CLI does it.
async fn docker_run(target: &DockerTarget, spec: &ContainerSpec) -> anyhow::Result<()> {
    let command = DockerCommand::Run(Box::new(spec.clone()));
    let reply = dispatch(target.api(HOST)?, &command).await;
    reply
        .result()
        .map(drop)
        .map_err(|e| anyhow!("docker run {}: {e}", spec.name))
}

/// The name of the served bridge plugin ([`Mode::Served`]).
const SERVED: &str = "drydock-bridge";

/// Where the reference engines of a benchmark find plugins (removed at its end; `drydock gc`
/// removes those of dead processes).
fn plugins_dir() -> PathBuf {
    std::env::temp_dir().join(format!("{PLUGINS_DIR_PREFIX}{}-bench", std::process::id()))
}

/// The reference engine on the lab's host, its upstreams the lab's (as the conformance
/// targets have them), with the network `mode` asks for; returns it, that network's name and
/// the plugin serving it, if any (kept as long as the engine).
async fn reference_engine(
    lab: &Lab,
    mode: Mode,
) -> anyhow::Result<(Engine, &'static str, Option<Running>)> {
    let plugin = match mode {
        Mode::Served => Some(serve_bridge(lab, &plugins_dir()).await?),
        _ => None,
    };
    let mut engine = engine_on(lab, HOST, Some(plugins_dir())).await?;
    let network = match mode {
        Mode::User | Mode::Served => {
            let spec = NetworkSpec {
                name: NETWORK.into(),
                driver: (mode == Mode::Served).then(|| SERVED.to_string()),
                ..NetworkSpec::default()
            };
            let body = request::network_create(&spec).map_err(|e| anyhow!(e))?;
            engine
                .create_network(&body)
                .await
                .context("docker network create")?;
            NETWORK
        }
        Mode::DefaultBridge => "bridge",
        Mode::None => "none",
    };
    Ok((engine, network, plugin))
}

/// drydock's bridge driver served as network plugin [`SERVED`] in the lab's host (`drydock
/// plugin serve`, this program), its socket in `dir`.
async fn serve_bridge(lab: &Lab, dir: &Path) -> anyhow::Result<Running> {
    let plugin = crate::cli::plugin::served("bridge", SERVED);
    plugin
        .start_in(host(lab)?, dir)
        .await
        .map_err(|e| anyhow!(e))
}

/// A reference engine on lab host `host`, its upstreams the lab's (as the conformance targets
/// have them), finding plugins in `plugins` if given.
async fn engine_on(lab: &Lab, host: &str, plugins: Option<PathBuf>) -> anyhow::Result<Engine> {
    let mut options = Options {
        dns: Vec::new(),
        host_resolvers: lab_resolvers(lab, host)?,
        state_dir: None,
        ..Options::default()
    };
    if let Some(sockets) = plugins {
        options.plugins = PluginDirs {
            sockets,
            specs: Vec::new(),
        };
    }
    let netns = lab
        .host(host)
        .with_context(|| format!("the lab has no host {host}"))?;
    Engine::start(netns, options)
        .await
        .context("starting the engine")
}

/// `docker run -d` on the reference engine: create, then start.
async fn reference_run(
    engine: &mut Engine,
    name: &str,
    body: &ContainerCreate,
) -> anyhow::Result<()> {
    engine
        .create_container(name, body)
        .with_context(|| format!("creating {name}"))?;
    engine
        .start_container(name)
        .await
        .with_context(|| format!("starting {name}"))?;
    Ok(())
}

/// A private dockerd in the lab's host (the conformance crate's docker target) with the
/// network [`NETWORK`] made, handed to `work`; the daemon is shut down afterwards, whatever
/// `work` returned. Returns what `work` did and the daemon's version.
async fn with_docker<T>(
    lab: &Lab,
    run_id: &str,
    mode: Mode,
    work: impl AsyncFnOnce(&DockerTarget) -> anyhow::Result<T>,
) -> anyhow::Result<(T, String)> {
    let target = DockerTarget::start(lab, &[HOST.to_string()], run_id)
        .await
        .context("starting dockerd")?;
    let result = async {
        let _plugin = match mode {
            Mode::Served => Some(serve_bridge(lab, &target.plugins_dir(HOST)?).await?),
            _ => None,
        };
        let spec = NetworkSpec {
            name: NETWORK.into(),
            driver: (mode == Mode::Served).then(|| SERVED.to_string()),
            ..NetworkSpec::default()
        };
        let command = DockerCommand::NetworkCreate(spec);
        let reply = dispatch(target.api(HOST)?, &command).await;
        reply
            .result()
            .map_err(|e| anyhow!("docker network create: {e}"))?;
        work(&target).await
    }
    .await;
    let version = target.describe();
    let stopped = target.shutdown().await;
    let value = result?;
    stopped.context("stopping dockerd")?;
    Ok((value, version))
}

/// Removes what crashed docker runs left (daemons die with their owner; their files may stay).
fn docker_gc() {
    if let Err(e) = drydock_conformance::targets::docker::gc_leftovers() {
        tracing::warn!("docker target leftovers: {e}");
    }
}

/// A program: Debian's at `debian`, else `name` on PATH; else "NAME not found: apt-get install
/// PACKAGE".
fn program(name: &str, debian: &str, package: &str) -> anyhow::Result<PathBuf> {
    if Path::new(debian).exists() {
        return Ok(PathBuf::from(debian));
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.exists())
        })
        .with_context(|| format!("{name} not found: apt-get install {package}"))
}

/// The first line `PROGRAM --version` prints (`netavark 1.4.0`).
fn program_version(program: &Path) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout);
            text.lines().next().unwrap_or_default().trim().to_string()
        })
        .unwrap_or_else(|e| format!("{} (version unknown: {e})", program.display()))
}

/// netavark's binary: Debian's, else the one on PATH.
fn netavark_program() -> anyhow::Result<PathBuf> {
    program("netavark", NETAVARK, "netavark")
}

/// The address netavark gives container `i` in [`NETAVARK_SUBNET`].
fn netavark_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(NETAVARK_GATEWAY) + 1 + i as u32)
}

/// The container id netavark is given for container `i`.
fn netavark_id(i: usize) -> String {
    format!("{:064x}", i + 1)
}

/// netavark 1.4's network options for container `i` on one bridge network
/// ([`NETAVARK_SUBNET`], addresses given by the caller as podman does, DNS off).
fn netavark_options(i: usize, publish: bool) -> Value {
    let ports = if publish {
        json!([{"host_ip": "", "container_port": 80, "host_port": FIRST_PORT + i, "range": 1, "protocol": "tcp"}])
    } else {
        json!([])
    };
    json!({
        "container_id": netavark_id(i),
        "container_name": format!("c{i}"),
        "port_mappings": ports,
        "networks": {
            NETWORK: {"static_ips": [netavark_ip(i).to_string()], "interface_name": "eth0", "aliases": [format!("c{i}")]}
        },
        "network_info": {
            NETWORK: {
                "name": NETWORK,
                "id": "b".repeat(64),
                "driver": "bridge",
                "network_interface": "nv0",
                "subnets": [{"subnet": NETAVARK_SUBNET, "gateway": NETAVARK_GATEWAY.to_string()}],
                "ipv6_enabled": false,
                "internal": false,
                "dns_enabled": false,
                "ipam_options": {"driver": "host-local"}
            }
        }
    })
}

/// A fresh namespace set up by one `netavark --config CONFIG setup` process run in the lab
/// host `host`, fed `options`; returns it and how long the process took.
fn netavark_setup(
    host: &Netns,
    program: &Path,
    config: &Path,
    options: &Value,
) -> anyhow::Result<(Netns, Duration)> {
    let netns = Netns::new()?;
    // A path to our descriptor: netavark opens it and enters the namespace.
    let path = format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        netns.as_fd().as_raw_fd()
    );
    let input = serde_json::to_vec(options)?;
    let started = Instant::now();
    let mut child = host
        .command(program, None)
        .arg("--config")
        .arg(config)
        .args(["setup", &path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", program.display()))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&input)?;
    let output = child.wait_with_output()?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        anyhow::bail!(
            "netavark setup of {}: {}: {}",
            options["container_name"].as_str().unwrap_or("?"),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok((netns, elapsed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_program_says_what_to_install() {
        let error = super::program("drydock-no-such-program", "/nonexistent/x", "some-package")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "drydock-no-such-program not found: apt-get install some-package"
        );
    }
}
