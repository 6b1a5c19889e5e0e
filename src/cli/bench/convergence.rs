//! `drydock bench convergence`: how long node A of a swarm takes to see a container that joins
//! an overlay on node B, and to forget it when B dies.
//!
//! Each round is a fresh lab of three docker hosts in a swarm (h1 = A manages, h2 = B and h3
//! work), an attachable overlay with container `ca` on A. Then:
//! - join: `docker run -d --name cb --network ov` on B; from the moment the call is made, A is
//!   polled every [`POLL`] until its overlay sandbox has the FDB entry for cb's MAC towards B's
//!   address and its embedded DNS (asked from inside `ca`) answers cb's address for `cb`;
//! - death: B's engine is killed (`Target::kill`: SIGKILL of dockerd, or `Engine::kill`,
//!   which lets the node's lease lapse); from the moment the kill is issued, A is polled until
//!   the FDB entry is gone and the DNS answers `cb` without cb's address.
//!
//! Each time is taken when the poll that saw the change completed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::reference::{EtcdReferenceTarget, ReferenceTarget};
use serde_json::{Value, json};

use super::swarm::{MANAGER, OVERLAY, SwarmEngine, SwarmLab};
use super::witness::Witness;
use super::{SETTLE, docker_gc, ms, progress, show};

/// How often A is asked.
const POLL: Duration = Duration::from_millis(2);
/// The longest a join or a death may take to show on A.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Node B: its container joins, then it dies.
const NODE_B: &str = "h2";
/// The container on A.
const CONTAINER_A: &str = "ca";
/// The container on B.
const CONTAINER_B: &str = "cb";

/// `drydock bench convergence` options.
#[derive(Args)]
pub(crate) struct ConvergenceArgs {
    /// The engines to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "reference,reference-etcd,docker"
    )]
    against: Vec<Against>,
    /// Rounds per engine, each in a fresh lab and swarm.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// An engine and its swarm's control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Against {
    /// drydock's reference engines, in this process, the control plane in process.
    Reference,
    /// drydock's reference engines, the control plane in an etcd on h1, reached by each engine
    /// from its own host (a node's records live on a 1 s lease).
    ReferenceEtcd,
    /// A private dockerd 20.10 per host in a real swarm (raft on the manager, gossip).
    Docker,
}

impl Against {
    fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }

    fn what(self) -> &'static str {
        match self {
            Against::Reference => "reference engines, control plane in process",
            Against::ReferenceEtcd => "reference engines, control plane in etcd (1 s leases)",
            Against::Docker => "Docker Engine 20.10 (swarmkit, networkdb gossip)",
        }
    }
}

/// One round's times.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// From `docker run` on B: the call returned, A's FDB entry, A's DNS answer.
    join: Phase,
    /// From the kill of B: the kill returned, A's FDB entry gone, A's DNS answer gone.
    death: Phase,
}

/// When each thing happened, from the start of a phase.
#[derive(Debug, Clone, Copy)]
struct Phase {
    /// The call (run, kill) returned.
    call: Duration,
    /// A's forwarding entry changed.
    fdb: Duration,
    /// A's DNS answer changed.
    dns: Duration,
}

impl Phase {
    /// Both of A's views changed.
    fn both(self) -> Duration {
        self.fdb.max(self.dns)
    }
}

pub(crate) fn convergence(args: ConvergenceArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::cli::runtime()?;
    let mut notes = super::notes();
    notes.insert("load before", super::load_average());
    notes.insert(
        "swarm",
        "h1 (A, manager), h2 (B), h3: one segment; an attachable overlay, container ca on A".into(),
    );
    notes.insert("polled", format!("every {} ms", POLL.as_millis()));
    if args.against.contains(&Against::Docker) {
        docker_gc();
    }
    let mut results: Vec<(Against, Vec<Round>)> = Vec::new();
    for &against in &args.against {
        let bar = progress(against.name(), args.rounds);
        let mut rounds = Vec::new();
        for n in 0..args.rounds {
            let run_id = format!("bench{:x}-cv{n}", std::process::id());
            let round = runtime
                .block_on(measure(against, &run_id))
                .with_context(|| format!("{} round {}", against.name(), n + 1))?;
            rounds.push(round);
            bar.inc(1);
            std::thread::sleep(SETTLE);
        }
        bar.finish_and_clear();
        results.push((against, rounds));
    }
    if args.json {
        let report = json!({
            "notes": notes,
            "engines": results.iter().map(|(a, r)| engine_json(*a, r)).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        super::print_notes(&notes);
        print_table(&results);
    }
    Ok(ExitCode::SUCCESS)
}

/// One round against `against`.
async fn measure(against: Against, run_id: &str) -> anyhow::Result<Round> {
    match against {
        Against::Reference => round::<ReferenceTarget>(run_id).await,
        Against::ReferenceEtcd => round::<EtcdReferenceTarget>(run_id).await,
        Against::Docker => round::<DockerTarget>(run_id).await,
    }
}

/// A fresh swarm of three; `ca` on A; the join of `cb` on B, then B's death, watched from A.
async fn round<T: SwarmEngine>(run_id: &str) -> anyhow::Result<Round> {
    let swarm = SwarmLab::<T>::start(3, run_id).await?;
    let measured = async {
        swarm.run(MANAGER, CONTAINER_A).await?;
        let target = &swarm.target;
        let container =
            (target.container_netns(MANAGER, CONTAINER_A).await).map_err(|e| anyhow!("{e}"))?;
        let sandbox = target.overlay_sandbox(MANAGER, OVERLAY).await?;
        let mut witness = Witness::open(&container, &sandbox)?;
        let vtep = swarm.address(NODE_B)?;
        let watched = async {
            let (join, endpoint) = join(&swarm, &mut witness, vtep).await?;
            let death = death(&swarm, &mut witness, vtep, endpoint).await?;
            anyhow::Ok(Round { join, death })
        }
        .await;
        witness.close().await;
        watched
    }
    .await;
    swarm.stop().await;
    measured
}

/// Starts `cb` on B while A is watched; returns the times and cb's address and MAC.
async fn join<T: SwarmEngine>(
    swarm: &SwarmLab<T>,
    witness: &mut Witness,
    vtep: IpAddr,
) -> anyhow::Result<(Phase, (IpAddr, String))> {
    // cb's address and MAC, once the run has returned and inspect told them.
    let wanted: RefCell<Option<(IpAddr, String)>> = RefCell::new(None);
    let started = Instant::now();
    let run = async {
        swarm.run(NODE_B, CONTAINER_B).await?;
        let call = started.elapsed();
        *wanted.borrow_mut() = Some(swarm.endpoint(NODE_B, CONTAINER_B).await?);
        anyhow::Ok(call)
    };
    let watch = async {
        // When each MAC (towards B) and each address (for `cb`) was first seen.
        let mut macs: HashMap<String, Duration> = HashMap::new();
        let mut addresses: HashMap<IpAddr, Duration> = HashMap::new();
        let mut tick = ticker();
        loop {
            tick.tick().await;
            for mac in witness.fdb(vtep).await? {
                macs.entry(mac).or_insert_with(|| started.elapsed());
            }
            if let Some(answer) = witness.resolve(CONTAINER_B).await? {
                for ip in answer.addresses {
                    addresses
                        .entry(IpAddr::V4(ip))
                        .or_insert_with(|| started.elapsed());
                }
            }
            if let Some((ip, mac)) = wanted.borrow().as_ref()
                && let (Some(&fdb), Some(&dns)) = (macs.get(mac), addresses.get(ip))
            {
                return anyhow::Ok((fdb, dns));
            }
            if started.elapsed() > TIMEOUT {
                bail!(
                    "join: A has not seen cb {} s after docker run on B (FDB towards {vtep}: {:?}; DNS: {:?})",
                    TIMEOUT.as_secs(),
                    macs.keys().collect::<Vec<_>>(),
                    addresses.keys().collect::<Vec<_>>()
                );
            }
        }
    };
    let (call, (fdb, dns)) = tokio::try_join!(run, watch)?;
    let endpoint = wanted.take().context("cb's address")?;
    Ok((Phase { call, fdb, dns }, endpoint))
}

/// Kills B while A is watched; returns the times.
async fn death<T: SwarmEngine>(
    swarm: &SwarmLab<T>,
    witness: &mut Witness,
    vtep: IpAddr,
    (ip, mac): (IpAddr, String),
) -> anyhow::Result<Phase> {
    let started = Instant::now();
    let kill = async {
        (swarm.target.kill(NODE_B).await).map_err(|e| anyhow!("killing {NODE_B}: {e}"))?;
        anyhow::Ok(started.elapsed())
    };
    let watch = async {
        let (mut fdb, mut dns) = (None, None);
        let mut tick = ticker();
        loop {
            tick.tick().await;
            if fdb.is_none() && !witness.fdb(vtep).await?.contains(&mac) {
                fdb = Some(started.elapsed());
            }
            if dns.is_none()
                && let Some(answer) = witness.resolve(CONTAINER_B).await?
                && !answer.addresses.iter().any(|a| IpAddr::V4(*a) == ip)
            {
                dns = Some(started.elapsed());
            }
            if let (Some(fdb), Some(dns)) = (fdb, dns) {
                return anyhow::Ok((fdb, dns));
            }
            if started.elapsed() > TIMEOUT {
                bail!(
                    "death: A still knows cb {} s after B was killed (FDB entry gone: {}, DNS answer gone: {})",
                    TIMEOUT.as_secs(),
                    fdb.is_some(),
                    dns.is_some()
                );
            }
        }
    };
    let (call, (fdb, dns)) = tokio::try_join!(kill, watch)?;
    Ok(Phase { call, fdb, dns })
}

/// A poll every [`POLL`]; a late poll does not bring the next ones forward.
fn ticker() -> tokio::time::Interval {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// A time of a phase, by name.
type PhaseField = (&'static str, fn(Phase) -> Duration);

/// Median and max of `values`.
fn median_max(mut values: Vec<Duration>) -> (Duration, Duration) {
    values.sort();
    let median = match values.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    };
    (median, values.last().copied().unwrap_or_default())
}

/// "1.23 ms (4.56 ms)": median (max).
fn cell(values: Vec<Duration>) -> String {
    let (median, max) = median_max(values);
    format!("{} ({})", show(median), show(max))
}

/// One row per engine and event: the call, A's FDB, A's DNS, both; then the join's both
/// counted from the moment the call returned.
fn print_table(results: &[(Against, Vec<Round>)]) {
    let mut cells = vec![vec![
        "ENGINE".to_string(),
        "EVENT".to_string(),
        "CALL RETURNED".to_string(),
        "A: FDB".to_string(),
        "A: DNS".to_string(),
        "A: BOTH".to_string(),
        "BOTH, AFTER THE CALL".to_string(),
    ]];
    for (against, rounds) in results {
        let phases: [(&str, Vec<Phase>); 2] = [
            ("join", rounds.iter().map(|r| r.join).collect()),
            ("death", rounds.iter().map(|r| r.death).collect()),
        ];
        for (event, phases) in phases {
            let of = |f: fn(Phase) -> Duration| phases.iter().map(|p| f(*p)).collect::<Vec<_>>();
            cells.push(vec![
                against.name(),
                event.to_string(),
                cell(of(|p| p.call)),
                cell(of(|p| p.fdb)),
                cell(of(|p| p.dns)),
                cell(of(Phase::both)),
                cell(of(|p| p.both().saturating_sub(p.call))),
            ]);
        }
    }
    println!("times from the call (docker run on B; the kill of B): median (max) of the rounds");
    print!("{}", crate::cli::table::render(&cells));
    for (against, rounds) in results {
        println!(
            "{}: {} ({} rounds)",
            against.name(),
            against.what(),
            rounds.len()
        );
    }
}

/// An engine's rounds as JSON (milliseconds).
fn engine_json(against: Against, rounds: &[Round]) -> Value {
    let phase = |p: Phase| json!({"call_ms": ms(p.call), "fdb_ms": ms(p.fdb), "dns_ms": ms(p.dns)});
    let summary = |phases: Vec<Phase>| -> Value {
        let mut out = BTreeMap::new();
        let fields: [PhaseField; 4] = [
            ("call", |p| p.call),
            ("fdb", |p| p.fdb),
            ("dns", |p| p.dns),
            ("both", Phase::both),
        ];
        for (name, field) in fields {
            let (median, max) = median_max(phases.iter().map(|p| field(*p)).collect());
            out.insert(name, json!({"median_ms": ms(median), "max_ms": ms(max)}));
        }
        json!(out)
    };
    json!({
        "engine": against.name(),
        "what": against.what(),
        "join": summary(rounds.iter().map(|r| r.join).collect()),
        "death": summary(rounds.iter().map(|r| r.death).collect()),
        "rounds": rounds.iter().map(|r| json!({"join": phase(r.join), "death": phase(r.death)})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_max_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median_max(vec![ms(3), ms(1), ms(2)]), (ms(2), ms(3)));
        assert_eq!(
            median_max(vec![ms(4), ms(1), ms(2), ms(3)]),
            (ms(2) + ms(1) / 2, ms(4))
        );
        assert_eq!(median_max(Vec::new()), (Duration::ZERO, Duration::ZERO));
    }
}
