//! `drydock bench throughput`: single-stream TCP throughput (iperf3) between containers on two
//! docker hosts of a lab, one run per datapath: the lab's raw veth path host to host, kernel
//! macvlan, drydock's userspace ipvlan, and kernel macvlan on drydock's userspace 802.1Q
//! sub-interface. Each run is a fresh lab with a reference engine per docker host.

use std::net::IpAddr;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::request;
use drydock_runtime::api::spec::NetworkSpec;
use serde_json::{Value, json};

use super::{SETTLE, container_body, container_spec, program, program_version, reference_run};

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
}

impl Datapath {
    /// `docker network create -d DRIVER -o parent=PARENT` for this path, if it has one.
    fn network(self) -> Option<(&'static str, &'static str)> {
        match self {
            Datapath::Veth => None,
            Datapath::Macvlan => Some(("macvlan", "eth0")),
            Datapath::Ipvlan => Some(("ipvlan", "eth0")),
            Datapath::Vlan => Some(("macvlan", "eth0.10")),
        }
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
        format!("1 TCP stream, {} s, h1 -> h2", args.seconds),
    );
    let mut results = Vec::new();
    for &path in &args.paths {
        let figures = runtime
            .block_on(measure(path, &iperf3, args.seconds))
            .with_context(|| format!("{path:?}"))?;
        results.push((path, figures));
        std::thread::sleep(SETTLE);
    }
    if args.json {
        let rows: Vec<Value> = results
            .iter()
            .map(|(path, f)| {
                json!({
                    "path": format!("{path:?}").to_lowercase(),
                    "datapath": f.datapath,
                    "gbit_per_second": (f.bits_per_second / 1e7).round() / 100.0,
                    "retransmits": f.retransmits,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"notes": notes, "runs": rows}))?
        );
    } else {
        super::print_notes(&notes);
        let mut cells = vec![vec![
            "PATH".to_string(),
            "GBIT/S".to_string(),
            "RETRANSMITS".to_string(),
            "DATAPATH".to_string(),
        ]];
        for (path, f) in &results {
            cells.push(vec![
                format!("{path:?}").to_lowercase(),
                format!("{:.2}", f.bits_per_second / 1e9),
                f.retransmits.to_string(),
                f.datapath.clone(),
            ]);
        }
        print!("{}", crate::cli::table::render(&cells));
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh lab, the path's network on both hosts, iperf3 from h1's side to h2's.
async fn measure(
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
        let mut engine = super::engine_on(&lab, host).await?;
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
