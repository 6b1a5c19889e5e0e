//! `drydock bench throughput`: single-stream TCP throughput (iperf3) between containers on two
//! docker hosts of a lab, per datapath: the lab's raw veth path host to host (the underlay),
//! kernel macvlan, drydock's userspace ipvlan, kernel macvlan on drydock's userspace 802.1Q
//! sub-interface, and the swarm overlay across the two hosts, drydock's (reference engines,
//! control plane in process) and Docker's (private dockerds in a real swarm). Each run is a
//! fresh lab; with several runs, the paths take turns (run 1 of every path, then run 2...), so
//! that a slow moment of the machine does not fall on one path only.

use std::net::IpAddr;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::reference::ReferenceTarget;
use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::request;
use drydock_runtime::api::spec::NetworkSpec;
use serde_json::{Value, json};

use super::swarm::{OVERLAY, SwarmEngine, SwarmLab};
use super::{
    SETTLE, container_body, container_spec, docker_gc, program, program_version, reference_run,
};

/// `drydock bench throughput` options.
#[derive(Args)]
pub(crate) struct ThroughputArgs {
    /// The datapaths to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "veth,macvlan,ipvlan,vlan"
    )]
    paths: Vec<Datapath>,
    /// How long each iperf3 run sends (iperf3 -t).
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Runs per path (each in a fresh lab): the table gives the median and the range.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A datapath between the two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Datapath {
    /// The lab hosts' own eth0, host to host: veth, bridge, veth.
    Veth,
    /// Containers on a macvlan network on eth0 (kernel macvlan).
    Macvlan,
    /// Containers on an ipvlan l2 network on eth0 (drydock's userspace ipvlan here).
    Ipvlan,
    /// Containers on a macvlan network on eth0.10 (kernel macvlan on drydock's userspace
    /// 802.1Q sub-interface here).
    Vlan,
    /// Containers on an attachable swarm overlay across the two hosts: drydock's reference
    /// engines in a swarm, control plane in process.
    Overlay,
    /// The same on Docker Engine: a private dockerd per host, in a real swarm.
    DockerOverlay,
}

impl Datapath {
    /// `docker network create -d DRIVER -o parent=PARENT` for this path, if it has one.
    fn network(self) -> Option<(&'static str, &'static str)> {
        match self {
            Datapath::Veth | Datapath::Overlay | Datapath::DockerOverlay => None,
            Datapath::Macvlan => Some(("macvlan", "eth0")),
            Datapath::Ipvlan => Some(("ipvlan", "eth0")),
            Datapath::Vlan => Some(("macvlan", "eth0.10")),
        }
    }

    /// Its name on the command line: `veth`, `docker-overlay`...
    fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }
}

/// One run's figures.
struct Figures {
    /// What carried the traffic (the network's `drydock.datapath`, or the kernel's).
    datapath: String,
    /// Received, in bits per second.
    bits_per_second: f64,
    /// TCP retransmissions the sender counted.
    retransmits: u64,
}

pub(crate) fn throughput(args: ThroughputArgs) -> anyhow::Result<ExitCode> {
    let iperf3 = program("iperf3", "/usr/bin/iperf3", "iperf3")?;
    let runtime = crate::cli::runtime()?;
    let mut notes = super::notes();
    notes.insert("iperf3", program_version(&iperf3));
    notes.insert(
        "stream",
        format!(
            "1 TCP stream, {} s, h1 -> h2; {} run(s) per path, the paths taking turns",
            args.seconds, args.runs
        ),
    );
    if args.paths.contains(&Datapath::DockerOverlay) {
        docker_gc();
    }
    let mut runs: Vec<(Datapath, Figures)> = Vec::new();
    for run in 0..args.runs.max(1) {
        for &path in &args.paths {
            let run_id = format!("bench{:x}-ov{run}", std::process::id());
            let figures = runtime
                .block_on(measure(path, &iperf3, args.seconds, &run_id))
                .with_context(|| format!("{} (run {})", path.name(), run + 1))?;
            runs.push((path, figures));
            std::thread::sleep(SETTLE);
        }
    }
    let summaries: Vec<Summary> = (args.paths.iter())
        .map(|&path| Summary::of(path, &runs))
        .collect();
    if args.json {
        let rows: Vec<Value> = (runs.iter())
            .map(|(path, f)| {
                json!({
                    "path": path.name(),
                    "datapath": f.datapath,
                    "gbit_per_second": gbit(f.bits_per_second),
                    "retransmits": f.retransmits,
                })
            })
            .collect();
        let paths: Vec<Value> = summaries.iter().map(Summary::json).collect();
        let report = json!({"notes": notes, "runs": rows, "paths": paths});
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        super::print_notes(&notes);
        print_table(&summaries);
    }
    Ok(ExitCode::SUCCESS)
}

/// Gbit/s, rounded to 10 Mbit/s (for JSON).
fn gbit(bits_per_second: f64) -> f64 {
    (bits_per_second / 1e7).round() / 100.0
}

/// A path's runs: the median and range of the rate, retransmissions summed.
struct Summary {
    path: Datapath,
    datapath: String,
    /// Gbit/s: median, min, max.
    median: f64,
    min: f64,
    max: f64,
    retransmits: u64,
}

impl Summary {
    fn of(path: Datapath, runs: &[(Datapath, Figures)]) -> Summary {
        let mine: Vec<&Figures> = runs
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, f)| f)
            .collect();
        let mut rates: Vec<f64> = mine.iter().map(|f| f.bits_per_second / 1e9).collect();
        rates.sort_by(f64::total_cmp);
        Summary {
            path,
            datapath: mine.first().map(|f| f.datapath.clone()).unwrap_or_default(),
            median: median(&rates),
            min: rates.first().copied().unwrap_or(0.0),
            max: rates.last().copied().unwrap_or(0.0),
            retransmits: mine.iter().map(|f| f.retransmits).sum(),
        }
    }

    fn json(&self) -> Value {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "path": self.path.name(),
            "datapath": self.datapath,
            "gbit_per_second": {"median": round(self.median), "min": round(self.min), "max": round(self.max)},
            "retransmits": self.retransmits,
        })
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The table, and drydock's overlay against Docker's when both ran.
fn print_table(summaries: &[Summary]) {
    let mut cells = vec![vec![
        "PATH".to_string(),
        "GBIT/S MEDIAN (MIN-MAX)".to_string(),
        "RETRANSMITS".to_string(),
        "DATAPATH".to_string(),
    ]];
    for s in summaries {
        cells.push(vec![
            s.path.name(),
            format!("{:.2} ({:.2}-{:.2})", s.median, s.min, s.max),
            s.retransmits.to_string(),
            s.datapath.clone(),
        ]);
    }
    print!("{}", crate::cli::table::render(&cells));
    let find = |path| summaries.iter().find(|s| s.path == path);
    if let (Some(ours), Some(docker)) = (find(Datapath::Overlay), find(Datapath::DockerOverlay))
        && docker.median > 0.0
    {
        println!(
            "overlay / docker-overlay (medians): {:.0}%",
            100.0 * ours.median / docker.median
        );
    }
}

/// One run of `path`: a fresh lab and what the path needs in it, then iperf3.
async fn measure(
    path: Datapath,
    iperf3: &std::path::Path,
    seconds: u32,
    run_id: &str,
) -> anyhow::Result<Figures> {
    match path {
        Datapath::Overlay => {
            measure_overlay::<ReferenceTarget>(iperf3, seconds, run_id, "drydock's overlay driver")
                .await
        }
        Datapath::DockerOverlay => {
            measure_overlay::<DockerTarget>(iperf3, seconds, run_id, "Docker's overlay driver")
                .await
        }
        _ => measure_local(path, iperf3, seconds).await,
    }
}

/// Two docker hosts in a swarm (h1 manages), an attachable overlay, c0 on h1 and c1 on h2;
/// iperf3 from c0 to c1's overlay address.
async fn measure_overlay<T: SwarmEngine>(
    iperf3: &std::path::Path,
    seconds: u32,
    run_id: &str,
    driver: &str,
) -> anyhow::Result<Figures> {
    let swarm = SwarmLab::<T>::start(2, run_id).await?;
    let measured = async {
        swarm.run("h1", "c0").await?;
        swarm.run("h2", "c1").await?;
        let target = &swarm.target;
        let client = (target.container_netns("h1", "c0").await).map_err(|e| anyhow!("{e}"))?;
        let server = (target.container_netns("h2", "c1").await).map_err(|e| anyhow!("{e}"))?;
        let (address, _) = swarm.endpoint("h2", "c1").await?;
        let network = (target.inspect_network("h1", OVERLAY).await).map_err(|e| anyhow!("{e}"))?;
        let datapath = match network["Options"]["drydock.datapath"].as_str() {
            Some(userspace) => format!("{userspace}: {driver}"),
            None => format!("kernel vxlan, veth, bridge: {driver}"),
        };
        let (bits_per_second, retransmits) = iperf(iperf3, &client, &server, address, seconds)?;
        Ok(Figures {
            datapath,
            bits_per_second,
            retransmits,
        })
    }
    .await;
    swarm.stop().await;
    measured
}

/// A fresh lab, the path's network on both hosts, iperf3 from h1's side to h2's.
async fn measure_local(
    path: Datapath,
    iperf3: &std::path::Path,
    seconds: u32,
) -> anyhow::Result<Figures> {
    // Two docker hosts on one segment: h1 at 10.0.0.10, h2 at 10.0.0.11.
    let lab = Lab::build(super::topology(&["h1", "h2"])?)
        .await
        .context("building the lab")?;
    let Some((driver, parent)) = path.network() else {
        let (h1, h2) = (lab.host("h1").unwrap(), lab.host("h2").unwrap());
        let bits = iperf(iperf3, h1, h2, "10.0.0.11".parse()?, seconds)?;
        return Ok(Figures {
            datapath: "veth pair, bridge, veth pair (the lab's segment)".into(),
            bits_per_second: bits.0,
            retransmits: bits.1,
        });
    };
    let mut engines = Vec::new();
    for (index, host) in ["h1", "h2"].into_iter().enumerate() {
        let mut engine = super::engine_on(&lab, host, None).await?;
        let spec = NetworkSpec {
            name: "net".into(),
            driver: Some(driver.into()),
            options: vec![("parent".into(), parent.into())],
            subnets: vec!["192.168.10.0/24".parse()?],
            ip_ranges: vec![format!("192.168.10.{}/26", 64 * (index + 1)).parse()?],
            ..NetworkSpec::default()
        };
        let body = request::network_create(&spec).map_err(|e| anyhow!(e))?;
        engine
            .create_network(&body)
            .await
            .context("docker network create")?;
        let spec = container_spec(index, "net", false);
        reference_run(&mut engine, &spec.name, &container_body(&spec)?).await?;
        engines.push(engine);
    }
    let network = engines[0]
        .inspect_network("net")
        .map_err(|e| anyhow!("{e}"))?;
    let datapath = network["Options"]["drydock.datapath"]
        .as_str()
        .map_or_else(|| format!("kernel {driver}"), str::to_string);
    let client = engines[0]
        .container_netns("c0")
        .map_err(|e| anyhow!("{e}"))?;
    let server = engines[1]
        .container_netns("c1")
        .map_err(|e| anyhow!("{e}"))?;
    let inspect = engines[1]
        .inspect_container("c1")
        .map_err(|e| anyhow!("{e}"))?;
    let address: IpAddr = inspect["NetworkSettings"]["Networks"]["net"]["IPAddress"]
        .as_str()
        .context("c1 has no address")?
        .parse()?;
    let measured = iperf(iperf3, &client, &server, address, seconds);
    for engine in engines {
        engine.shutdown().await;
    }
    let (bits_per_second, retransmits) = measured?;
    Ok(Figures {
        datapath,
        bits_per_second,
        retransmits,
    })
}

/// `iperf3 -s -1` in `server`, `iperf3 -c ADDRESS -t SECONDS -J` in `client`: received bits per
/// second and the sender's retransmissions.
fn iperf(
    iperf3: &std::path::Path,
    client: &Netns,
    server: &Netns,
    address: IpAddr,
    seconds: u32,
) -> anyhow::Result<(f64, u64)> {
    let mut daemon = server
        .command(iperf3, None)
        .args(["-s", "-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting iperf3 -s")?;
    // The server listens within moments: a refused connection is tried again. (iperf3 3.12
    // exits 0 with -J even then, so its report says.)
    let mut report = Value::Null;
    for _ in 0..50 {
        let run = client
            .command(iperf3, None)
            .args(["-c", &address.to_string(), "-t", &seconds.to_string(), "-J"])
            .output()
            .context("running iperf3 -c")?;
        report = serde_json::from_slice(&run.stdout).unwrap_or(Value::Null);
        let refused = report["error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused"));
        if !refused && (run.status.success() || report["error"].is_string()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    if let Some(error) = report["error"].as_str() {
        bail!("iperf3 -c {address}: {error}");
    }
    let end = &report["end"];
    let bits = end["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 reported no received rate")?;
    let retransmits = end["sum_sent"]["retransmits"].as_u64().unwrap_or(0);
    Ok((bits, retransmits))
}
