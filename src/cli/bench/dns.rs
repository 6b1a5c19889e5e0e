//! `drydock bench dns`: queries per second and latency of drydock's embedded DNS, beside
//! Docker Engine's and aardvark-dns, measured by dnsperf from inside a container.
//!
//! Per server, a fresh one-host lab with the lab's upstream DNS server on the host's
//! `127.0.0.1:53` (the conformance crate's `UpstreamDns`: NXDOMAIN for every name; on a thread
//! of its own), and two
//! containers on one bridge network: `c0`, where dnsperf runs, and `c1`, with the alias `web`.
//! dnsperf then runs in c0's network namespace once per kind of query, asking one name over and
//! over for a fixed time, with the same clients and outstanding queries for every server:
//! `c1` (a container name), `web` (a network alias), `nosuch.example` (unknown: forwarded to the
//! upstream, which answers NXDOMAIN).
//!
//! - `reference`: the in-process engine's resolver at 127.0.0.11 (NAT to its own ports), served
//!   from this process's runtime thread, as `drydock lab up` serves its engines.
//! - `docker`: a private dockerd 20.10 in the lab host (the conformance crate's docker target),
//!   its resolver at 127.0.0.11 (iptables DNAT to dockerd's socket in the container).
//! - `aardvark`: aardvark-dns 1.4 on the bridge's gateway, port 53. The bridge and both
//!   namespaces are made by `netavark setup` (DNS off); aardvark is configured as netavark would
//!   do it (a file per network: gateway and network-scoped upstreams, then a line per container)
//!   and runs in the lab host, in PID and mount namespaces of its own where the lab's
//!   resolv.conf is mounted over the machine's, so that no query leaves the lab.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use drydock_conformance::probe::UpstreamDns;
use drydock_conformance::targets::{Target, lab_resolvers};
use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::spec::ContainerSpec;
use drydock_runtime::dns::RESOLVER_IP;
use serde_json::{Value, json};

use super::{
    HOST, Mode, NETAVARK_GATEWAY, NETWORK, SETTLE, container_body, container_spec, docker_gc, host,
    lab, netavark_id, netavark_ip, netavark_options, netavark_program, netavark_setup, notes,
    print_notes, program, program_version, reference_engine, reference_run, with_docker,
};

/// `drydock bench dns`'s options.
#[derive(Args)]
pub(crate) struct DnsArgs {
    /// The servers to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "reference,docker,aardvark"
    )]
    against: Vec<Server>,
    /// The kinds of query, one dnsperf run each.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "name,alias,unknown"
    )]
    queries: Vec<Query>,
    /// How long each dnsperf run sends queries (dnsperf -l).
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// dnsperf clients: sockets of their own, each with its own source port (dnsperf -c).
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Most queries outstanding at once, over all clients (dnsperf -q).
    #[arg(long, default_value_t = 100)]
    outstanding: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A DNS server `bench dns` measures.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Server {
    /// drydock's reference engine, in this process: its resolver at 127.0.0.11.
    Reference,
    /// Docker Engine: a private dockerd inside the lab host; its resolver at 127.0.0.11.
    Docker,
    /// aardvark-dns (Debian's, /usr/lib/podman/aardvark-dns) on a netavark bridge's gateway.
    Aardvark,
}

impl Server {
    /// Its name in tables and JSON.
    fn name(self) -> &'static str {
        match self {
            Server::Reference => "reference",
            Server::Docker => "docker",
            Server::Aardvark => "aardvark",
        }
    }

    /// How dnsperf reaches it, for the table's footnotes.
    fn reached(self) -> &'static str {
        match self {
            Server::Reference => {
                "127.0.0.11:53 in c0, NAT to the in-process resolver's port (served on this process's runtime thread)"
            }
            Server::Docker => "127.0.0.11:53 in c0, DNAT to dockerd's resolver socket in c0",
            Server::Aardvark => {
                "10.89.0.1:53, the netavark bridge's gateway in the lab host (over the veth)"
            }
        }
    }
}

/// A kind of query: the name asked for, over and over.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Query {
    /// A container's name: `c1`.
    Name,
    /// A network alias: `web` (of `c1`).
    Alias,
    /// A name no container has, with a dot: forwarded upstream, NXDOMAIN.
    Unknown,
}

impl Query {
    /// Its name in tables and JSON.
    fn name(self) -> &'static str {
        match self {
            Query::Name => "name",
            Query::Alias => "alias",
            Query::Unknown => "unknown",
        }
    }

    /// The name asked for (an A query). The unknown one has a dot: aardvark answers names
    /// of one label itself, without forwarding.
    fn qname(self) -> &'static str {
        match self {
            Query::Name => "c1",
            Query::Alias => ALIAS,
            Query::Unknown => "nosuch.example",
        }
    }

    /// The response code every answer should have.
    fn expected(self) -> &'static str {
        match self {
            Query::Name | Query::Alias => "NOERROR",
            Query::Unknown => "NXDOMAIN",
        }
    }
}

/// The container dnsperf runs in.
const CLIENT: &str = "c0";
/// The network alias of `c1`.
const ALIAS: &str = "web";
/// How long aardvark-dns may take to say it serves.
const AARDVARK_READY: Duration = Duration::from_secs(10);
/// Where Debian installs aardvark-dns.
const AARDVARK: &str = "/usr/lib/podman/aardvark-dns";
/// Where Debian installs dnsperf.
const DNSPERF: &str = "/usr/bin/dnsperf";

/// Runs `bench dns`.
pub(super) fn dns(args: DnsArgs) -> anyhow::Result<ExitCode> {
    if args.seconds == 0 || args.clients == 0 || args.outstanding == 0 {
        bail!("--seconds, --clients and --outstanding: expected at least 1");
    }
    let mut against = args.against.clone();
    against.dedup();
    let mut queries = args.queries.clone();
    queries.dedup();
    if !drydock_netsim::userns::is_privileged() {
        if against.iter().any(|s| *s != Server::Reference) {
            bail!("docker and aardvark need root: they run daemons and iptables in the lab host");
        }
        crate::cli::enter_rootless_if_needed()?;
    }
    let dnsperf = Dnsperf::new(&args)?;
    let podman = against
        .contains(&Server::Aardvark)
        .then(|| {
            anyhow::Ok((
                program("aardvark-dns", AARDVARK, "aardvark-dns")?,
                netavark_program()?,
            ))
        })
        .transpose()?;
    let runtime = crate::cli::runtime()?;
    let mut notes = notes();
    let load_before = super::load_average();
    let mut results = Vec::new();
    for (n, &server) in against.iter().enumerate() {
        if n > 0 {
            std::thread::sleep(SETTLE);
        }
        let measured = match server {
            Server::Reference => runtime.block_on(reference(&dnsperf, &queries))?,
            Server::Docker => {
                docker_gc();
                let run_id = format!("bench{:x}-dns", std::process::id());
                let (measured, version) = runtime.block_on(docker(&dnsperf, &queries, &run_id))?;
                notes.insert("docker", version);
                measured
            }
            Server::Aardvark => {
                let (aardvark, netavark) = podman.as_ref().expect("found above");
                notes.insert("aardvark-dns", program_version(aardvark));
                notes.insert("netavark", program_version(netavark));
                runtime.block_on(aardvark_dns(&dnsperf, aardvark, netavark, &queries))?
            }
        };
        for (query, perf) in queries.iter().zip(measured) {
            results.push((server, *query, perf));
        }
    }
    if let Some(version) = results.iter().find_map(|(_, _, p)| p.version.clone()) {
        notes.insert("dnsperf", version);
    }
    notes.insert(
        "load",
        format!(
            "{load_before} before, {} after (1, 5, 15 min averages)",
            super::load_average()
        ),
    );
    if args.json {
        let out = json!({
            "notes": notes,
            "dnsperf": {
                "seconds": args.seconds,
                "clients": args.clients,
                "outstanding": args.outstanding,
            },
            "results": results.iter().map(|(s, q, p)| {
                let mut value = p.json();
                value["server"] = json!(s.name());
                value["query"] = json!(q.name());
                value["qname"] = json!(q.qname());
                value
            }).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&notes, &args, &results);
    }
    Ok(ExitCode::SUCCESS)
}

/// The table: a line per server and kind of query, then how each server is reached and any
/// answer that was not the expected one.
fn print_table(notes: &BTreeMap<&str, String>, args: &DnsArgs, results: &[(Server, Query, Perf)]) {
    print_notes(notes);
    println!(
        "\ndnsperf in container {CLIENT}, one name per run (A queries), {} s per run, {} clients, \
         {} queries outstanding (AVG, MIN, MAX, STDDEV: latency)",
        args.seconds, args.clients, args.outstanding
    );
    let mut rows = vec![
        [
            "SERVER", "QUERY", "QPS", "AVG", "MIN", "MAX", "STDDEV", "SENT", "LOST", "RCODES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let latency = |s: f64| format!("{:.3} ms", s * 1e3);
    for (server, query, perf) in results {
        rows.push(vec![
            server.name().to_string(),
            format!("{} ({})", query.name(), query.qname()),
            format!("{:.0}", perf.qps),
            latency(perf.average),
            latency(perf.min),
            latency(perf.max),
            perf.stddev.map_or("-".into(), latency),
            perf.sent.to_string(),
            perf.lost.to_string(),
            perf.codes_text(),
        ]);
    }
    print!("{}", crate::cli::table::render(&rows));
    let mut servers: Vec<Server> = results.iter().map(|(s, _, _)| *s).collect();
    servers.dedup();
    for server in servers {
        println!("  {}: {}", server.name(), server.reached());
    }
    for (server, query, perf) in results {
        if perf.codes.iter().any(|(code, _)| code != query.expected()) || perf.codes.is_empty() {
            println!(
                "  warning: {} {}: expected {} answers, got {}",
                server.name(),
                query.name(),
                query.expected(),
                perf.codes_text()
            );
        }
    }
}

/// The containers: `c0`, where dnsperf runs, and `c1` with the alias `web`.
fn containers(network: &str) -> [ContainerSpec; 2] {
    let mut server = container_spec(1, network, false);
    server.aliases = vec![ALIAS.into()];
    [container_spec(0, network, false), server]
}

/// The reference engine: its figures per query.
async fn reference(dnsperf: &Dnsperf, queries: &[Query]) -> anyhow::Result<Vec<Perf>> {
    let lab = lab().await?;
    let _upstream = Upstream::start(&lab)?;
    let (mut engine, network, _) = reference_engine(&lab, Mode::User).await?;
    for spec in containers(network) {
        reference_run(&mut engine, &spec.name, &container_body(&spec)?).await?;
    }
    let client = engine.container_netns(CLIENT)?;
    dnsperf
        .measure(Server::Reference, &client, RESOLVER_IP.into(), queries)
        .await
}

/// Docker Engine: its figures per query, and the daemon's version.
async fn docker(
    dnsperf: &Dnsperf,
    queries: &[Query],
    run_id: &str,
) -> anyhow::Result<(Vec<Perf>, String)> {
    let lab = lab().await?;
    let _upstream = Upstream::start(&lab)?;
    with_docker(&lab, run_id, Mode::User, async |target| {
        for spec in containers(NETWORK) {
            super::docker_run(target, &spec).await?;
        }
        let client = target.container_netns(HOST, CLIENT).await?;
        dnsperf
            .measure(Server::Docker, &client, RESOLVER_IP.into(), queries)
            .await
    })
    .await
}

/// aardvark-dns: its figures per query. netavark makes the bridge and the two namespaces.
async fn aardvark_dns(
    dnsperf: &Dnsperf,
    aardvark: &Path,
    netavark: &Path,
    queries: &[Query],
) -> anyhow::Result<Vec<Perf>> {
    let lab = lab().await?;
    let host = host(&lab)?;
    let _upstream = Upstream::start(&lab)?;
    let config = tempfile::tempdir()?;
    let mut namespaces = Vec::new();
    for i in 0..2 {
        let options = netavark_options(i, false);
        namespaces.push(netavark_setup(host, netavark, config.path(), &options)?.0);
    }
    let resolvers = lab_resolvers(&lab, HOST)?;
    let _server = Aardvark::start(aardvark, host, config.path(), &resolvers).await?;
    dnsperf
        .measure(
            Server::Aardvark,
            &namespaces[0],
            NETAVARK_GATEWAY.into(),
            queries,
        )
        .await
}

/// The lab's upstream DNS server on the host's `127.0.0.1:53`, served from a thread of its
/// own until dropped: apart from the in-process engine's thread, like a resolver on a real
/// docker host, and the same for every server measured.
struct Upstream {
    /// Dropping it tells the thread to close the server.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Starts the server in `lab`'s host; returns once it listens.
    fn start(lab: &Lab) -> anyhow::Result<Upstream> {
        let netns = host(lab)?.clone();
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("upstream-dns".into())
            .spawn(move || {
                let served = crate::cli::runtime().map(|runtime| {
                    runtime.block_on(async {
                        match UpstreamDns::start(&netns) {
                            Ok(server) => {
                                let _ = ready.send(Ok(()));
                                let _ = stopped.await;
                                server.close().await;
                            }
                            Err(e) => {
                                let _ = ready.send(Err(anyhow::Error::from(e)));
                            }
                        }
                    })
                });
                if let Err(e) = served {
                    let _ = ready.send(Err(e));
                }
            })?;
        let upstream = Upstream {
            stop: Some(stop),
            thread: Some(thread),
        };
        started
            .recv()
            .context("the upstream DNS server's thread died")?
            .context("starting the lab's upstream DNS server")?;
        Ok(upstream)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// aardvark-dns serving the bridge network, in the lab host, until dropped.
///
/// `unshare --pid --fork --kill-child --mount` runs a shell that mounts the lab's resolv.conf
/// over `/etc/resolv.conf`, starts aardvark-dns (which forks, serves in the child and lets the
/// parent return once it does) and then becomes `sleep`, the PID namespace's init. Killing
/// unshare kills that init (`--kill-child`), and with it aardvark; unshare itself dies with the
/// thread that spawned it (`PR_SET_PDEATHSIG`), so SIGKILL of drydock leaves nothing either.
struct Aardvark {
    unshare: Child,
}

impl Aardvark {
    /// Writes aardvark's configuration under netavark's `config` directory (as netavark does:
    /// `aardvark-dns/NETWORK`) and starts it in `host`; returns once it serves.
    async fn start(
        program: &Path,
        host: &Netns,
        config: &Path,
        resolvers: &[IpAddr],
    ) -> anyhow::Result<Aardvark> {
        let dir = config.join("aardvark-dns");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(NETWORK), aardvark_config(resolvers))?;
        let resolv_conf = config.join("resolv.conf");
        let mut text = String::from("# drydock bench dns: the lab's resolvers\n");
        for resolver in resolvers {
            writeln!(text, "nameserver {resolver}")?;
        }
        std::fs::write(&resolv_conf, text)?;
        let log_path = config.join("aardvark.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = host.command("unshare", None);
        command
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--propagation",
            ])
            .args(["private", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /etc/resolv.conf && \"$2\" --config \"$3\" -p 53 run >&2 \
                 && echo ready && exec sleep infinity",
            )
            .arg("sh")
            .arg(&resolv_conf)
            .arg(program)
            .arg(&dir)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        drydock_conformance::tied::killed_with_its_thread(&mut command);
        let mut server = Aardvark {
            unshare: command
                .spawn()
                .context("running unshare for aardvark-dns")?,
        };
        let stdout = server.unshare.stdout.take().expect("stdout is piped");
        let ready = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = match tokio::time::timeout(AARDVARK_READY, ready).await {
            Ok(line) => line??,
            Err(_) => String::new(),
        };
        if line.trim() != "ready" {
            drop(server);
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "aardvark-dns did not start within {} s: {}",
                AARDVARK_READY.as_secs(),
                log.trim()
            );
        }
        Ok(server)
    }
}

impl Drop for Aardvark {
    fn drop(&mut self) {
        // Reaped right away: the child is already gone or dies of SIGKILL.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

/// aardvark-dns 1.4's file for the network: the gateway it listens on and the network's
/// upstreams, then `ID IPV4 IPV6 NAMES` per container (no IPv6: an empty field).
fn aardvark_config(resolvers: &[IpAddr]) -> String {
    let upstreams: Vec<String> = resolvers.iter().map(IpAddr::to_string).collect();
    let mut text = format!("{NETAVARK_GATEWAY} {}\n", upstreams.join(","));
    for (i, names) in [CLIENT.to_string(), format!("c1,{ALIAS}")]
        .iter()
        .enumerate()
    {
        text.push_str(&format!("{} {}  {names}\n", netavark_id(i), netavark_ip(i)));
    }
    text
}

/// dnsperf and what every run of it is given.
struct Dnsperf {
    program: PathBuf,
    seconds: u32,
    clients: u32,
    outstanding: u32,
    /// A data file per kind of query: `NAME A`.
    data: tempfile::TempDir,
}

impl Dnsperf {
    /// Finds dnsperf and writes the data files.
    fn new(args: &DnsArgs) -> anyhow::Result<Dnsperf> {
        let program = program("dnsperf", DNSPERF, "dnsperf")?;
        let data = tempfile::tempdir()?;
        for query in [Query::Name, Query::Alias, Query::Unknown] {
            std::fs::write(
                data.path().join(query.name()),
                format!("{} A\n", query.qname()),
            )?;
        }
        Ok(Dnsperf {
            program,
            seconds: args.seconds,
            clients: args.clients,
            outstanding: args.outstanding,
            data,
        })
    }

    /// One run per query, from `client` (a container's namespace) to `server` port 53.
    async fn measure(
        &self,
        label: Server,
        client: &Netns,
        server: IpAddr,
        queries: &[Query],
    ) -> anyhow::Result<Vec<Perf>> {
        let mut measured = Vec::new();
        for &query in queries {
            let perf = self
                .run(client, server, query)
                .await
                .with_context(|| format!("dnsperf, {} {}", label.name(), query.name()))?;
            eprintln!(
                "{} {}: {:.0} queries/s, average {:.3} ms",
                label.name(),
                query.name(),
                perf.qps,
                perf.average * 1e3
            );
            measured.push(perf);
        }
        Ok(measured)
    }

    /// One dnsperf run in `client`'s namespace.
    async fn run(&self, client: &Netns, server: IpAddr, query: Query) -> anyhow::Result<Perf> {
        let mut command = client.command(&self.program, None);
        command
            .arg("-s")
            .arg(server.to_string())
            .args(["-p", "53", "-d"])
            .arg(self.data.path().join(query.name()))
            .args(["-l", &self.seconds.to_string()])
            .args(["-c", &self.clients.to_string()])
            .args(["-q", &self.outstanding.to_string()])
            // Lost queries are counted; one line each would only swell the output.
            .args(["-O", "suppress=timeouts"])
            .stdin(Stdio::null());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await?
            .context("running dnsperf")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "{}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                stdout.trim()
            );
        }
        Perf::parse(&stdout)
    }
}

/// What dnsperf reports of one run.
#[derive(Debug, Clone, PartialEq)]
struct Perf {
    /// dnsperf's version line (`2.10.0`).
    version: Option<String>,
    sent: u64,
    completed: u64,
    lost: u64,
    /// Response codes and how many answers had each, as dnsperf lists them.
    codes: Vec<(String, u64)>,
    /// Seconds.
    run_time: f64,
    qps: f64,
    /// Latencies, in seconds.
    average: f64,
    min: f64,
    max: f64,
    /// Absent when fewer than two queries completed.
    stddev: Option<f64>,
}

impl Perf {
    /// Parses dnsperf's output (its "Statistics:" part and the version line).
    fn parse(text: &str) -> anyhow::Result<Perf> {
        let mut fields = BTreeMap::new();
        let mut version = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("Version ") {
                version = Some(v.trim().to_string());
            }
            if let Some((key, value)) = line.trim().split_once(':') {
                fields.insert(key.trim(), value.trim());
            }
        }
        let field = |key: &str| {
            fields
                .get(key)
                .copied()
                .with_context(|| format!("no \"{key}\" in dnsperf's output:\n{text}"))
        };
        // The first word of a field, as a number.
        fn number<T: std::str::FromStr>(key: &str, value: &str) -> anyhow::Result<T> {
            value
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("dnsperf's \"{key}\": not a number: {value:?}"))
        }
        let get = |key: &str| -> anyhow::Result<f64> { number(key, field(key)?) };
        let count = |key: &str| -> anyhow::Result<u64> { number(key, field(key)?) };
        // "0.000123 (min 0.000050, max 0.001234)"
        let latency = field("Average Latency (s)")?;
        let bound = |name: &str| -> anyhow::Result<f64> {
            latency
                .split([',', '(', ')'])
                .find_map(|part| part.trim().strip_prefix(name))
                .and_then(|n| n.trim().parse().ok())
                .with_context(|| format!("dnsperf's latency: no {name}: {latency:?}"))
        };
        // "NOERROR 12345 (100.00%), NXDOMAIN 2 (0.01%)"
        let codes = fields
            .get("Response codes")
            .map(|codes| {
                codes
                    .split(',')
                    .filter_map(|part| {
                        let mut words = part.split_whitespace();
                        let code = words.next()?.to_string();
                        Some((code, words.next()?.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Perf {
            version,
            sent: count("Queries sent")?,
            completed: count("Queries completed")?,
            lost: count("Queries lost")?,
            codes,
            run_time: get("Run time (s)")?,
            qps: get("Queries per second")?,
            average: number("Average Latency (s)", latency)?,
            min: bound("min")?,
            max: bound("max")?,
            stddev: fields
                .get("Latency StdDev (s)")
                .map(|v| number("Latency StdDev (s)", v))
                .transpose()?,
        })
    }

    /// `NOERROR 100%`, or each code with its share, or `-` when nothing came back.
    fn codes_text(&self) -> String {
        if self.codes.is_empty() {
            return "-".into();
        }
        let total: u64 = self.codes.iter().map(|(_, n)| n).sum();
        self.codes
            .iter()
            .map(|(code, n)| {
                let share = *n as f64 * 100.0 / total.max(1) as f64;
                if share >= 99.995 {
                    format!("{code} 100%")
                } else {
                    format!("{code} {share:.2}%")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The figures as JSON (latencies in milliseconds).
    fn json(&self) -> Value {
        let ms = |s: f64| (s * 1e6).round() / 1e3;
        json!({
            "queries_sent": self.sent,
            "queries_completed": self.completed,
            "queries_lost": self.lost,
            "run_time_s": self.run_time,
            "qps": self.qps,
            "latency_avg_ms": ms(self.average),
            "latency_min_ms": ms(self.min),
            "latency_max_ms": ms(self.max),
            "latency_stddev_ms": self.stddev.map(ms),
            "response_codes": self.codes.iter().cloned().collect::<BTreeMap<_, _>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.11 -d /tmp/x/name -l 5 -c 4 -q 100
[Status] Sending queries (to 127.0.0.11:53)
[Status] Started at: Mon Nov 30 02:01:44 2026
[Status] Stopping after 5.000000 seconds
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         123456
  Queries completed:    123400 (99.95%)
  Queries lost:         56 (0.05%)

  Response codes:       NOERROR 123000 (99.68%), SERVFAIL 400 (0.32%)
  Average packet size:  request 20, response 36
  Run time (s):         5.000123
  Queries per second:   24679.393

  Average Latency (s):  0.003976 (min 0.000050, max 0.041234)
  Latency StdDev (s):   0.001020

";

    #[test]
    fn dnsperf_statistics_are_read() {
        let perf = Perf::parse(OUTPUT).unwrap();
        assert_eq!(perf.version.as_deref(), Some("2.10.0"));
        assert_eq!((perf.sent, perf.completed, perf.lost), (123456, 123400, 56));
        assert_eq!(
            perf.codes,
            vec![("NOERROR".into(), 123000), ("SERVFAIL".into(), 400)]
        );
        assert_eq!(perf.qps, 24679.393);
        assert_eq!(perf.run_time, 5.000123);
        assert_eq!(
            (perf.average, perf.min, perf.max, perf.stddev),
            (0.003976, 0.00005, 0.041234, Some(0.00102))
        );
        assert_eq!(perf.codes_text(), "NOERROR 99.68%, SERVFAIL 0.32%");
    }

    #[test]
    fn a_run_without_answers_has_no_codes_nor_deviation() {
        let output = OUTPUT
            .replace("NOERROR 123000 (99.68%), SERVFAIL 400 (0.32%)", "")
            .replace("  Latency StdDev (s):   0.001020\n", "");
        let perf = Perf::parse(&output).unwrap();
        assert!(perf.codes.is_empty());
        assert_eq!(perf.stddev, None);
        assert_eq!(perf.codes_text(), "-");
        assert!(Perf::parse("dnsperf: command not found").is_err());
    }

    #[test]
    fn aardvark_gets_the_gateway_upstreams_and_a_line_per_container() {
        let config = aardvark_config(&["127.0.0.1".parse().unwrap(), "10.0.0.10".parse().unwrap()]);
        let lines: Vec<&str> = config.lines().collect();
        assert_eq!(lines[0], "10.89.0.1 127.0.0.1,10.0.0.10");
        assert_eq!(lines[1], format!("{:064x} 10.89.0.2  c0", 1));
        assert_eq!(lines[2], format!("{:064x} 10.89.0.3  c1,web", 2));
    }
}
