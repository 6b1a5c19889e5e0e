//! `drydock bench attach`: how long attaching a container to a bridge network takes, on
//! drydock's reference engine and, beside it, on Docker Engine and on netavark.
//!
//! For each count N and each round: a fresh one-host lab, the engine under test on its host,
//! one user-defined bridge network, then N containers attached one after another, each attach
//! timed on its own. Samples of all rounds are pooled per engine and count.
//!
//! - `reference`: `create_container` + `start_container` of the in-process engine (namespace,
//!   veth, address, routes, embedded DNS resolver with its NAT rules, published ports).
//! - `docker`: `POST /containers/create` + `POST /containers/{id}/start` on a private dockerd
//!   in the lab host (the conformance crate's docker target), which also creates the container
//!   itself (containerd, runc). The daemon's events split each attach into its parts.
//! - `netavark`: one `netavark setup` process per container, in the lab host, with the
//!   network-options JSON on stdin and DNS off; the namespace is made beforehand, untimed.
//!
//! `--phases` also times, on the reference engine, the pieces an attach is made of.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use drydock_conformance::targets::docker::DockerTarget;
use drydock_netsim::{Lab, Netns};
use drydock_runtime::dns::Dns;
use drydock_runtime::engine::Engine;
use indicatif::ProgressBar;
use serde_json::{Value, json};

use super::{
    HOST, Mode, NETWORK, SETTLE, container_body, container_spec, docker_gc, host, lab, ms,
    netavark_options, netavark_program, netavark_setup, notes, print_notes, program_version,
    progress, reference_engine, reference_run, show, with_docker,
};

/// `drydock bench attach`'s options.
#[derive(Args)]
pub(crate) struct AttachArgs {
    /// Containers per run, all on one bridge network of a fresh lab.
    #[arg(long, value_delimiter = ',', default_value = "1,20,200")]
    counts: Vec<usize>,
    /// The engines to time.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "reference")]
    against: Vec<Against>,
    /// Runs per engine and count, each in a fresh lab; their samples are pooled.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Each container publishes one TCP port (`-p 10000+i:80`).
    #[arg(long)]
    publish: bool,
    /// The network is drydock's bridge driver served as a network plugin (`drydock plugin
    /// serve`) in the lab host, for both engines: an attach through the remote driver protocol.
    #[arg(long, conflicts_with = "publish")]
    served: bool,
    /// Also time the parts of a reference attach (namespace, netlink, resolver, network modes).
    #[arg(long)]
    phases: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// An engine `bench attach` times.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Against {
    /// drydock's reference engine, in this process.
    Reference,
    /// Docker Engine: a private dockerd inside the lab host.
    Docker,
    /// netavark (Debian's, /usr/lib/podman/netavark), one `setup` process per container.
    Netavark,
}

impl Against {
    fn name(self) -> &'static str {
        match self {
            Against::Reference => "reference",
            Against::Docker => "docker",
            Against::Netavark => "netavark",
        }
    }
}

/// Most containers per run (published ports must stay below 65536).
const MAX_COUNT: usize = 50000;

/// A statistic of a series of samples.
#[derive(Debug, Clone, Copy)]
struct Stats {
    samples: usize,
    median: Duration,
    p90: Duration,
    max: Duration,
    /// Median over rounds of the sum of a round's samples.
    total: Duration,
}

impl Stats {
    /// Pools the rounds' samples (nearest-rank percentiles).
    fn of(rounds: &[Vec<Duration>]) -> Stats {
        let mut all: Vec<Duration> = rounds.concat();
        all.sort();
        let mut totals: Vec<Duration> = rounds.iter().map(|r| r.iter().sum()).collect();
        totals.sort();
        Stats {
            samples: all.len(),
            median: rank(&all, 0.5),
            p90: rank(&all, 0.9),
            max: all.last().copied().unwrap_or_default(),
            total: rank(&totals, 0.5),
        }
    }

    fn json(&self) -> Value {
        json!({
            "samples": self.samples,
            "median_ms": ms(self.median),
            "p90_ms": ms(self.p90),
            "max_ms": ms(self.max),
            "total_ms": ms(self.total),
        })
    }
}

/// The nearest-rank `q` quantile of sorted samples.
fn rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// One line of a result table: what was timed, for how many containers, and the figures.
#[derive(Debug)]
struct Row {
    what: String,
    count: usize,
    stats: Stats,
    /// Every sample, by round, in the order they were taken.
    rounds: Vec<Vec<Duration>>,
    /// The share of the machine's CPU time that other processes used meanwhile.
    other_cpu: Option<f64>,
}

impl Row {
    fn new(what: impl Into<String>, count: usize, rounds: &[Vec<Duration>]) -> Row {
        Row {
            what: what.into(),
            count,
            stats: Stats::of(rounds),
            rounds: rounds.to_vec(),
            other_cpu: None,
        }
    }

    fn json(&self, key: &str) -> Value {
        let mut value = self.stats.json();
        value[key] = json!(self.what);
        value["count"] = json!(self.count);
        if let Some(share) = self.other_cpu {
            value["other_cpu_percent"] = json!((share * 1000.0).round() / 10.0);
        }
        value["samples_ms"] = self
            .rounds
            .iter()
            .map(|r| r.iter().map(|d| ms(*d)).collect::<Vec<_>>())
            .collect();
        value
    }
}

/// Runs `bench attach`.
pub(super) fn attach(args: AttachArgs) -> anyhow::Result<ExitCode> {
    if args.counts.is_empty() || args.counts.iter().any(|&n| n == 0 || n > MAX_COUNT) {
        bail!("--counts: expected numbers of containers from 1 to {MAX_COUNT}");
    }
    if args.rounds == 0 {
        bail!("--rounds: expected at least 1");
    }
    let mut against = args.against.clone();
    against.dedup();
    if !drydock_netsim::userns::is_privileged() {
        if against.iter().any(|a| *a != Against::Reference) {
            bail!("docker and netavark need root: they run daemons and iptables in the lab host");
        }
        crate::cli::enter_rootless_if_needed()?;
    }
    let netavark = against
        .contains(&Against::Netavark)
        .then(netavark_program)
        .transpose()?;
    let runtime = crate::cli::runtime()?;
    let mut notes = notes();
    let mode = match args.served {
        true => Mode::Served,
        false => Mode::User,
    };
    if args.served && against.contains(&Against::Netavark) {
        bail!("--served: netavark runs no Docker network plugin");
    }
    if args.served {
        let what = "drydock's bridge driver served as a plugin (drydock plugin serve)";
        notes.insert("network", what.to_string());
    }
    let mut results = Vec::new();
    let mut docker_parts = Vec::new();
    for &engine in &against {
        if engine == Against::Docker {
            docker_gc();
        }
        for &count in &args.counts {
            let mut rounds = Vec::new();
            let mut parts: Vec<Vec<Vec<Duration>>> = vec![Vec::new(); DockerParts::NAMES.len()];
            let mut other_cpu = Vec::new();
            for round in 0..args.rounds {
                let bar = progress(
                    format!("{} N={count} {}/{}", engine.name(), round + 1, args.rounds),
                    count,
                );
                let mark = CpuMark::now();
                let samples = match engine {
                    Against::Reference => {
                        runtime.block_on(reference_attaches(count, mode, args.publish, &bar))?
                    }
                    Against::Docker => {
                        let run_id = format!("bench{:x}-{count}-{round}", std::process::id());
                        let round = docker_round(count, mode, args.publish, &run_id, &bar);
                        let (samples, split, version) = runtime.block_on(round)?;
                        notes.insert("docker", version);
                        for (i, part) in split.parts().into_iter().enumerate() {
                            parts[i].push(part);
                        }
                        samples
                    }
                    Against::Netavark => {
                        let program = netavark.as_ref().expect("found above");
                        notes.insert("netavark", program_version(program));
                        runtime.block_on(netavark_round(program, count, args.publish, &bar))?
                    }
                };
                other_cpu.push(mark.others_since());
                finish(&bar, &samples);
                rounds.push(samples);
                std::thread::sleep(SETTLE);
            }
            let mut row = Row::new(engine.name(), count, &rounds);
            row.other_cpu = Some(other_cpu.iter().sum::<f64>() / other_cpu.len() as f64);
            results.push(row);
            if engine == Against::Docker {
                for (name, rounds) in DockerParts::NAMES.iter().zip(&parts) {
                    docker_parts.push(Row::new(*name, count, rounds));
                }
            }
        }
    }
    let mut phases = Vec::new();
    if args.phases {
        for &count in &args.counts {
            phases.extend(phase_rows(&runtime, count, args.rounds)?);
        }
    }
    let _ = std::fs::remove_dir_all(super::plugins_dir());
    if args.json {
        let rows = |rows: &[Row], key: &str| rows.iter().map(|r| r.json(key)).collect::<Vec<_>>();
        let out = json!({
            "notes": notes,
            "publish": args.publish,
            "rounds": args.rounds,
            "attach": rows(&results, "engine"),
            "docker_parts": rows(&docker_parts, "part"),
            "phases": rows(&phases, "phase"),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_tables(&notes, &results, &docker_parts, &phases, args.publish);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tables(
    notes: &BTreeMap<&str, String>,
    results: &[Row],
    docker: &[Row],
    phases: &[Row],
    publish: bool,
) {
    print_notes(notes);
    let header = |first: &str| {
        ["N", "SAMPLES", "MEDIAN", "P90", "MAX", "TOTAL"]
            .iter()
            .fold(vec![first.to_string()], |mut row, h| {
                row.push(h.to_string());
                row
            })
    };
    let line = |row: &Row| {
        let s = &row.stats;
        let mut cells = vec![
            row.what.clone(),
            row.count.to_string(),
            s.samples.to_string(),
            show(s.median),
            show(s.p90),
            show(s.max),
            show(s.total),
        ];
        cells.extend(row.other_cpu.map(|share| format!("{:.0}%", share * 100.0)));
        cells
    };
    println!(
        "\nper-container attach{} (TOTAL: the N attaches of one run, median over rounds; \
         OTHER CPU: the machine's CPU time used by other processes meanwhile)",
        if publish {
            ", one published port each"
        } else {
            ""
        }
    );
    let mut head = header("ENGINE");
    head.push("OTHER CPU".into());
    let mut rows = vec![head];
    rows.extend(results.iter().map(line));
    print!("{}", crate::cli::table::render(&rows));
    let mut engines: Vec<&str> = results.iter().map(|r| r.what.as_str()).collect();
    engines.dedup();
    for engine in engines {
        let what = match engine {
            "reference" => {
                "create+start in-process: namespace, veth, address, routes, DNS resolver and its NAT rules"
            }
            "docker" => {
                "API create+start: includes creating the container (containerd, runc), not networking only"
            }
            _ => "one netavark process per setup (namespace made beforehand, untimed), DNS off",
        };
        println!("  {engine}: {what}");
    }
    if !docker.is_empty() {
        println!(
            "\ndocker, one attach split by the daemon's events (create, network connect, start)"
        );
        let mut rows = vec![header("PART")];
        rows.extend(docker.iter().map(line));
        print!("{}", crate::cli::table::render(&rows));
    }
    if !phases.is_empty() {
        println!("\nreference engine, the parts of an attach");
        let mut rows = vec![header("PHASE")];
        rows.extend(phases.iter().map(line));
        print!("{}", crate::cli::table::render(&rows));
    }
}

/// CPU time so far, in clock ticks: the machine's (all CPUs) and this process's with its
/// reaped children.
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    busy: u64,
    total: u64,
    ours: u64,
}

impl CpuMark {
    fn now() -> CpuMark {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("cpu "))
            .map(|l| {
                l.split_whitespace()
                    .take(8)
                    .filter_map(|t| t.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let total: u64 = ticks.iter().sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // utime, stime, cutime, cstime: fields 14 to 17, after the command's closing parenthesis.
        let ours = own
            .rfind(')')
            .map(|end| {
                own[end + 1..]
                    .split_whitespace()
                    .skip(11)
                    .take(4)
                    .filter_map(|t| t.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        CpuMark {
            busy: total - idle,
            total,
            ours,
        }
    }

    /// The share of the machine's CPU time since this mark that other processes used (for
    /// docker, that includes the daemons, which are not our children).
    fn others_since(self) -> f64 {
        let now = CpuMark::now();
        let total = now.total.saturating_sub(self.total).max(1);
        let others =
            (now.busy.saturating_sub(self.busy)).saturating_sub(now.ours.saturating_sub(self.ours));
        others as f64 / total as f64
    }
}

/// Ends a run's bar; without a terminal, a line per run instead.
fn finish(bar: &ProgressBar, samples: &[Duration]) {
    let stats = Stats::of(&[samples.to_vec()]);
    let line = format!(
        "{}: median {}, max {}",
        bar.prefix(),
        show(stats.median),
        show(stats.max)
    );
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.finish_and_clear();
    }
}

/// What a reference run leaves for the phases: the timings, and the lab and engine (alive).
struct ReferenceRun {
    attaches: Vec<Duration>,
    lab: Lab,
    engine: Engine,
    /// The plugin serving the network ([`Mode::Served`]), alive as long as the engine.
    _plugin: Option<drydock_conformance::run::Running>,
}

/// One reference run: a lab, an engine, the network, `count` timed attaches.
async fn reference_round(
    count: usize,
    mode: Mode,
    publish: bool,
    bar: &ProgressBar,
) -> anyhow::Result<ReferenceRun> {
    let lab = lab().await?;
    let (mut engine, network, plugin) = reference_engine(&lab, mode).await?;
    let mut attaches = Vec::with_capacity(count);
    for i in 0..count {
        let spec = container_spec(i, network, publish);
        let body = container_body(&spec)?;
        let started = Instant::now();
        reference_run(&mut engine, &spec.name, &body).await?;
        attaches.push(started.elapsed());
        bar.inc(1);
    }
    Ok(ReferenceRun {
        attaches,
        lab,
        engine,
        _plugin: plugin,
    })
}

/// The timings of one reference run; the run is torn down (dropped) inside the runtime.
async fn reference_attaches(
    count: usize,
    mode: Mode,
    publish: bool,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Duration>> {
    let run = reference_round(count, mode, publish, bar).await?;
    Ok(run.attaches)
}

/// The parts of Docker's attaches, from the daemon's events.
#[derive(Debug, Default)]
struct DockerParts {
    create: Vec<Duration>,
    to_network: Vec<Duration>,
    to_running: Vec<Duration>,
    reply: Vec<Duration>,
}

impl DockerParts {
    const NAMES: [&str; 4] = [
        "docker: request -> create event",
        "docker: create event -> network connect event",
        "docker: network connect -> start event",
        "docker: start event -> reply",
    ];

    fn parts(self) -> [Vec<Duration>; 4] {
        [self.create, self.to_network, self.to_running, self.reply]
    }
}

/// One docker run: a lab, a private dockerd in it, the network, `count` timed `docker run -d`.
/// Returns the timings, their parts, and the daemon's version.
async fn docker_round(
    count: usize,
    mode: Mode,
    publish: bool,
    run_id: &str,
    bar: &ProgressBar,
) -> anyhow::Result<(Vec<Duration>, DockerParts, String)> {
    let lab = lab().await?;
    let ((samples, parts), version) = with_docker(&lab, run_id, mode, async |target| {
        docker_attaches(target, count, publish, bar).await
    })
    .await?;
    Ok((samples, parts, version))
}

/// `count` timed `docker run -d` on `target`, and their parts from the daemon's events.
async fn docker_attaches(
    target: &DockerTarget,
    count: usize,
    publish: bool,
    bar: &ProgressBar,
) -> anyhow::Result<(Vec<Duration>, DockerParts)> {
    let since = SystemTime::now();
    let mut samples = Vec::with_capacity(count);
    let mut sent = Vec::with_capacity(count);
    for i in 0..count {
        let spec = container_spec(i, NETWORK, publish);
        let at = SystemTime::now();
        let started = Instant::now();
        super::docker_run(target, &spec).await?;
        let elapsed = started.elapsed();
        samples.push(elapsed);
        sent.push((spec.name, at, at + elapsed));
        bar.inc(1);
    }
    let socket = target.socket(HOST)?;
    let until = SystemTime::now();
    let events =
        tokio::task::spawn_blocking(move || docker_events(&socket, since, until)).await??;
    Ok((samples, split(&sent, &events)))
}

/// The daemon's events between two instants (`GET /events` with `since` and `until`).
fn docker_events(
    socket: &Path,
    since: SystemTime,
    until: SystemTime,
) -> anyhow::Result<Vec<Value>> {
    let stamp = |t: SystemTime| {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    };
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    // HTTP/1.0: the daemon closes the connection after the last event, without chunking.
    write!(
        stream,
        "GET /v1.41/events?since={}&until={} HTTP/1.0\r\nHost: docker\r\n\r\n",
        stamp(since),
        stamp(until)
    )?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .context("reading the daemon's events")?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP header in the events' answer")?;
    let head = String::from_utf8_lossy(&response[..split]);
    if !head
        .lines()
        .next()
        .is_some_and(|status| status.contains(" 200 "))
    {
        bail!("GET /events: {}", head.lines().next().unwrap_or_default());
    }
    serde_json::Deserializer::from_slice(&response[split + 4..])
        .into_iter::<Value>()
        .map(|event| event.context("an event that is not JSON"))
        .collect()
}

/// Splits each container's attach at its create, network connect and start events.
fn split(sent: &[(String, SystemTime, SystemTime)], events: &[Value]) -> DockerParts {
    let at =
        |event: &Value| UNIX_EPOCH + Duration::from_nanos(event["timeNano"].as_u64().unwrap_or(0));
    let find = |kind: &str, action: &str, key: &str, value: &str| {
        events.iter().find(|e| {
            e["Type"] == kind
                && e["Action"] == action
                && e["Actor"]["Attributes"][key].as_str() == Some(value)
        })
    };
    let between = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default();
    let mut parts = DockerParts::default();
    let mut missing = 0;
    for (name, request, reply) in sent {
        let Some(created) = find("container", "create", "name", name) else {
            missing += 1;
            continue;
        };
        let id = created["Actor"]["ID"].as_str().unwrap_or_default();
        let connected = find("network", "connect", "container", id);
        let started = events
            .iter()
            .find(|e| e["Type"] == "container" && e["Action"] == "start" && e["Actor"]["ID"] == id);
        let (Some(connected), Some(started)) = (connected, started) else {
            missing += 1;
            continue;
        };
        let (created, connected, started) = (at(created), at(connected), at(started));
        parts.create.push(between(*request, created));
        parts.to_network.push(between(created, connected));
        parts.to_running.push(between(connected, started));
        parts.reply.push(between(started, *reply));
    }
    if missing > 0 {
        tracing::warn!("docker: {missing} container(s) without create, connect and start events");
    }
    parts
}

/// One netavark run: a lab, then `count` namespaces each set up by one `netavark setup`
/// process run in the lab host.
async fn netavark_round(
    program: &Path,
    count: usize,
    publish: bool,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Duration>> {
    let lab = lab().await?;
    let host = host(&lab)?;
    let config = tempfile::tempdir()?;
    let mut namespaces = Vec::with_capacity(count);
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let options = netavark_options(i, publish);
        let (netns, elapsed) = netavark_setup(host, program, config.path(), &options)?;
        samples.push(elapsed);
        namespaces.push(netns);
        bar.inc(1);
    }
    Ok(samples)
}

/// The parts of a reference attach, `count` of each, pooled over `rounds`:
/// - primitives: a namespace (`Netns::new`), entering one (`Netns::run`), a netlink socket
///   opened and closed in one, and a DNS resolver started in a running container's namespace
///   (its two sockets and the NAT rules' nfnetlink batch);
/// - whole attaches on `--network none` (namespace and `lo`), on the default bridge (plus
///   veth, address, routes), on a user-defined network (plus the resolver), and the latter with
///   one published port (plus the firewall's map elements and the userland proxy).
fn phase_rows(
    runtime: &tokio::runtime::Runtime,
    count: usize,
    rounds: usize,
) -> anyhow::Result<Vec<Row>> {
    const NAMES: [&str; 8] = [
        "namespace: Netns::new (thread + unshare)",
        "enter it: Netns::run (thread + setns)",
        "netlink socket in it: open + close",
        "DNS resolver: sockets + NAT batch",
        "attach --network none",
        "attach --network bridge (default, no DNS)",
        "attach --network net (user-defined)",
        "attach --network net -p (1 port)",
    ];
    let mut samples: Vec<Vec<Vec<Duration>>> = vec![Vec::new(); NAMES.len()];
    for round in 0..rounds {
        let bar = progress(
            format!("phases N={count} {}/{rounds}", round + 1),
            count * 8,
        );
        let primitives = runtime.block_on(async {
            let mut namespaces = Vec::with_capacity(count);
            let (mut new, mut enter, mut netlink) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..count {
                let started = Instant::now();
                namespaces.push(Netns::new()?);
                new.push(started.elapsed());
                bar.inc(1);
            }
            for netns in &namespaces {
                let started = Instant::now();
                netns.run(|| ())?;
                enter.push(started.elapsed());
                bar.inc(1);
            }
            for netns in &namespaces {
                let started = Instant::now();
                netns.netlink()?.close().await;
                netlink.push(started.elapsed());
                bar.inc(1);
            }
            anyhow::Ok([new, enter, netlink])
        })?;
        for (i, part) in primitives.into_iter().enumerate() {
            samples[i].push(part);
        }
        std::thread::sleep(SETTLE);
        let (none, resolver) = runtime.block_on(async {
            let run = reference_round(count, Mode::None, false, &bar).await?;
            let dns = Dns::new(host(&run.lab)?.clone());
            let mut resolvers = Vec::with_capacity(count);
            let mut times = Vec::with_capacity(count);
            for i in 0..count {
                let name = format!("c{i}");
                let sandbox = run.engine.container_netns(&name)?;
                let started = Instant::now();
                resolvers.push(dns.start_resolver(&name, &sandbox).await?);
                times.push(started.elapsed());
                bar.inc(1);
            }
            drop(resolvers);
            anyhow::Ok((run.attaches, times))
        })?;
        samples[3].push(resolver);
        samples[4].push(none);
        std::thread::sleep(SETTLE);
        for (i, (mode, publish)) in [
            (Mode::DefaultBridge, false),
            (Mode::User, false),
            (Mode::User, true),
        ]
        .into_iter()
        .enumerate()
        {
            samples[5 + i].push(runtime.block_on(reference_attaches(count, mode, publish, &bar))?);
            std::thread::sleep(SETTLE);
        }
        bar.finish_and_clear();
    }
    Ok(NAMES
        .iter()
        .zip(&samples)
        .map(|(name, rounds)| Row::new(*name, count, rounds))
        .collect())
}
