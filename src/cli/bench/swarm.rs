//! A swarm in a fresh lab, for the benchmarks that cross hosts over an overlay (`throughput`'s
//! overlay paths, `convergence`): an engine on every docker host of a lab laid out as the
//! overlay scenarios' labs are (one segment, 10.10.0.0/24), the lab's upstream DNS on each
//! host, the swarm formed as a scenario's swarm is (`drydock_conformance::run::form_swarm`:
//! h1 manages, the others are workers), and one attachable overlay made on the manager.
//!
//! The engine is any conformance target that forms swarms ([`SwarmEngine`]): the reference
//! engine with its control plane in this process or in an etcd, or private dockerds.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::{Context, anyhow};
use drydock_conformance::probe::UpstreamDns;
use drydock_conformance::run::form_swarm;
use drydock_conformance::scenario::Swarm;
use drydock_conformance::targets::Target;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::reference::ReferenceTarget;
use drydock_netsim::{Lab, Netns, Topology};
use drydock_runtime::api::EngineApi;
use drydock_runtime::api::cli::DockerCommand;
use drydock_runtime::api::dispatch::dispatch;
use drydock_runtime::api::spec::{ContainerSpec, NetworkSpec};

/// The attachable overlay every container joins.
pub(super) const OVERLAY: &str = "ov";

/// The manager: it inits the swarm and makes the overlay.
pub(super) const MANAGER: &str = "h1";

/// An engine under test that forms swarms, and shows where an overlay's forwarding entries
/// live on a node.
pub(super) trait SwarmEngine: Target {
    /// The namespace holding `network`'s bridge and VXLAN device on docker host `host` (its
    /// FDB and neighbour entries for the endpoints of other nodes).
    async fn overlay_sandbox(&self, host: &str, network: &str) -> anyhow::Result<Netns>;
}

impl<const ETCD: bool> SwarmEngine for ReferenceTarget<ETCD> {
    async fn overlay_sandbox(&self, host: &str, network: &str) -> anyhow::Result<Netns> {
        let engine = self.api(host).map_err(|e| anyhow!("{e}"))?.lock().await;
        engine
            .overlay_sandbox(network)
            .with_context(|| format!("{host} has no overlay sandbox for {network}"))
    }
}

impl SwarmEngine for DockerTarget {
    /// `1-` and the first 10 characters of the network's id, under the daemon's exec root's
    /// `netns/`, bind-mounted in dockerd's own mount namespace (FACTS.md of the overlay
    /// scenarios): opened through `/proc/PID/root` of that daemon.
    async fn overlay_sandbox(&self, host: &str, network: &str) -> anyhow::Result<Netns> {
        let inspect = (self.inspect_network(host, network).await)
            .map_err(|e| anyhow!("{host}: docker network inspect {network}: {e}"))?;
        let id = inspect["Id"]
            .as_str()
            .with_context(|| format!("{host}: {network} has no Id"))?;
        let exec_root = self.run_dir().join(host).join("exec");
        let pid = dockerd_pid(&exec_root)?;
        let path = format!(
            "/proc/{pid}/root{}/netns/1-{}",
            exec_root.display(),
            &id[..id.len().min(10)]
        );
        Netns::open(&path).with_context(|| format!("{host}: the overlay sandbox of {network}"))
    }
}

/// The pid of the dockerd whose `--exec-root` is `exec_root` (from `/proc/*/cmdline`).
fn dockerd_pid(exec_root: &Path) -> anyhow::Result<u32> {
    let wanted = exec_root.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_dockerd = args.first().is_some_and(|a| a.ends_with(b"dockerd"));
        let has_root = args
            .windows(2)
            .any(|w| w[0] == b"--exec-root" && w[1] == wanted);
        if is_dockerd && has_root {
            return Ok(pid);
        }
    }
    anyhow::bail!("no dockerd runs with --exec-root {}", exec_root.display())
}

/// Docker hosts `h1`..`hN` on one segment, 10.10.0.0/24, at .1, .2, ... (as the overlay
/// scenarios' labs have them).
fn topology(hosts: &[String]) -> anyhow::Result<Topology> {
    let mut builder = Topology::builder(&format!("bench-swarm-{}", std::process::id()))
        .segment("lan", "10.10.0.0/24".parse()?);
    for (n, host) in (1..).zip(hosts) {
        builder = builder.host_at(host, Ipv4Addr::new(10, 10, 0, n));
    }
    builder.build().map_err(|e| anyhow!(e))
}

/// A lab of docker hosts in a swarm with the overlay [`OVERLAY`], until [`SwarmLab::stop`].
pub(super) struct SwarmLab<T> {
    pub(super) target: T,
    upstreams: Vec<UpstreamDns>,
    /// Dropped last: the engines' namespaces live in it.
    lab: Lab,
}

impl<T: SwarmEngine> SwarmLab<T> {
    /// A fresh lab of `hosts` docker hosts, the engine `T` started on them (`run_id` names
    /// what it makes), the swarm formed and the overlay made.
    pub(super) async fn start(hosts: usize, run_id: &str) -> anyhow::Result<SwarmLab<T>> {
        let names: Vec<String> = (1..=hosts).map(|n| format!("h{n}")).collect();
        let lab = Lab::build(topology(&names)?)
            .await
            .context("building the lab")?;
        let mut upstreams = Vec::new();
        for host in &names {
            let netns = lab.host(host).context("a host of the lab")?;
            upstreams.push(UpstreamDns::start(netns).context("the lab's upstream DNS")?);
        }
        let target = (T::start(&lab, &names, run_id).await)
            .map_err(|e| anyhow!("starting the engines: {e}"))?;
        let swarm = SwarmLab {
            target,
            upstreams,
            lab,
        };
        match swarm.form(&names).await {
            Ok(()) => Ok(swarm),
            Err(e) => {
                swarm.stop().await;
                Err(e)
            }
        }
    }

    /// The swarm (h1 manages, the others work) and the attachable overlay.
    async fn form(&self, hosts: &[String]) -> anyhow::Result<()> {
        let swarm = Swarm {
            managers: vec![MANAGER.into()],
            workers: hosts[1..].to_vec(),
            at: "bench".into(),
        };
        (form_swarm(&self.target, &self.lab, &swarm).await).map_err(|e| anyhow!(e))?;
        let spec = NetworkSpec {
            name: OVERLAY.into(),
            driver: Some("overlay".into()),
            attachable: true,
            ..NetworkSpec::default()
        };
        self.docker(MANAGER, DockerCommand::NetworkCreate(spec))
            .await
            .context("docker network create -d overlay --attachable")
    }

    /// `docker run -d --name NAME --network OVERLAY busybox sleep 3600` on `host`.
    pub(super) async fn run(&self, host: &str, name: &str) -> anyhow::Result<()> {
        let spec = ContainerSpec {
            name: name.into(),
            detach: true,
            image: "busybox".into(),
            command: vec!["sleep".into(), "3600".into()],
            network: Some(OVERLAY.into()),
            ..ContainerSpec::default()
        };
        let command = DockerCommand::Run(Box::new(spec));
        self.docker(host, command)
            .await
            .with_context(|| format!("{host}: docker run --name {name}"))
    }

    /// A docker command on `host`, as the docker CLI sends it.
    async fn docker(&self, host: &str, command: DockerCommand) -> anyhow::Result<()> {
        let api = self.target.api(host).map_err(|e| anyhow!("{e}"))?;
        let reply = dispatch(api, &command).await;
        reply.result().map(drop).map_err(|e| anyhow!(e))
    }

    /// Container `name`'s address and MAC on the overlay, as `docker inspect` on `host` shows.
    pub(super) async fn endpoint(
        &self,
        host: &str,
        name: &str,
    ) -> anyhow::Result<(IpAddr, String)> {
        let api = self.target.api(host).map_err(|e| anyhow!("{e}"))?;
        let inspect = (api.inspect_container(name).await).map_err(|e| anyhow!("{e}"))?;
        let network = &inspect["NetworkSettings"]["Networks"][OVERLAY];
        let ip = network["IPAddress"]
            .as_str()
            .with_context(|| format!("{name} has no address on {OVERLAY}"))?
            .parse()?;
        let mac = network["MacAddress"]
            .as_str()
            .with_context(|| format!("{name} has no MAC on {OVERLAY}"))?;
        Ok((ip, mac.to_string()))
    }

    /// The underlay address of lab host `host`.
    pub(super) fn address(&self, host: &str) -> anyhow::Result<IpAddr> {
        (self.lab.topology().host(host))
            .and_then(|h| h.interfaces.first())
            .map(|i| IpAddr::V4(i.address.ip()))
            .with_context(|| format!("lab host {host} has no address"))
    }

    /// Stops the engines, then the upstreams; the lab goes last.
    pub(super) async fn stop(self) {
        self.target.stop().await;
        for upstream in self.upstreams {
            upstream.close().await;
        }
        drop(self.lab);
    }
}
