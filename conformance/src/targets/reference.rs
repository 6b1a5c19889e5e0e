//! drydock's own engine as a target: one [`Engine`] per docker host of the lab, in-process,
//! answering the same Engine API calls the docker target sends to dockerd.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use drydock_netsim::{Lab, Netns};
use drydock_runtime::cluster::{EtcdStore, MemoryHub};
use drydock_runtime::engine::{ControlPlane, Engine, Options};
use drydock_runtime::plugin::client::Patience;
use drydock_runtime::plugin::discovery::PluginDirs;
use tokio::sync::Mutex;

use super::etcd::EtcdServer;
use super::{Target, TargetError, TargetResult};
use crate::version::Version;

/// The Docker release whose behavior the reference engine has (the one it is checked against).
pub const EMULATED: Version = Version(20, 10, 24);

/// The reference engine on the docker hosts of a lab, its swarms' control plane in this
/// process, or (`ETCD`) in an etcd the target runs on the first docker host, which every engine
/// reaches from its own host's namespace, as engines in separate processes would.
#[derive(Debug)]
pub struct ReferenceTarget<const ETCD: bool = false> {
    engines: BTreeMap<String, Arc<Mutex<Engine>>>,
    /// The engines' plugin folders, one per docker host under it.
    plugins: PathBuf,
    /// The etcd of the `ETCD` kind.
    etcd: Option<EtcdServer>,
}

/// The reference engine with an etcd control plane.
pub type EtcdReferenceTarget = ReferenceTarget<true>;

/// Where the etcd of a run keeps its data: `/tmp/drydock-etcd-PID-RUN` (`drydock gc` removes
/// those of dead processes).
pub const ETCD_DIR_PREFIX: &str = "drydock-etcd-";

/// Where the engines of a run find plugin sockets: `/tmp/drydock-plugins-PID-RUN/HOST`
/// (`drydock gc` removes those of dead processes).
pub const PLUGINS_DIR_PREFIX: &str = "drydock-plugins-";

/// The control planes of a lab's engines: one hub in process, or each engine's connection to
/// an etcd started on the first docker host.
async fn control_planes(
    lab: &Lab,
    hosts: &[String],
    run_id: &str,
    etcd: bool,
) -> TargetResult<(Vec<ControlPlane>, Option<EtcdServer>)> {
    if !etcd {
        let hub = Arc::new(MemoryHub::new());
        return Ok((
            hosts
                .iter()
                .map(|_| ControlPlane::Hub(hub.clone()))
                .collect(),
            None,
        ));
    }
    let first = hosts
        .first()
        .ok_or_else(|| TargetError::new("no docker host"))?;
    let netns = lab
        .host(first)
        .ok_or_else(|| TargetError::new(format!("no lab host {first}")))?;
    let address = (lab.topology().host(first))
        .and_then(|h| h.interfaces.first())
        .map(|i| std::net::IpAddr::V4(i.address.ip()))
        .ok_or_else(|| TargetError::new(format!("lab host {first} has no address")))?;
    let dir =
        std::env::temp_dir().join(format!("{ETCD_DIR_PREFIX}{}-{run_id}", std::process::id()));
    let server = (EtcdServer::start(netns, address, &dir).await)
        .map_err(|e| TargetError::new(format!("etcd: {e}")))?;
    let mut planes = Vec::new();
    for host in hosts {
        let netns = lab
            .host(host)
            .ok_or_else(|| TargetError::new(format!("no lab host {host}")))?;
        let store = (EtcdStore::connect(netns, &[server.endpoint()], "/drydock/").await)
            .map_err(|e| TargetError::new(format!("etcd from {host}: {e}")))?;
        planes.push(ControlPlane::Store(Arc::new(store)));
    }
    Ok((planes, Some(server)))
}

impl<const ETCD: bool> ReferenceTarget<ETCD> {
    async fn engine(&self, host: &str) -> TargetResult<tokio::sync::MutexGuard<'_, Engine>> {
        Ok(self.api(host)?.lock().await)
    }

    /// The engine of docker host `host`, shared (to serve it on a socket).
    pub fn shared(&self, host: &str) -> TargetResult<Arc<Mutex<Engine>>> {
        self.api(host)?;
        Ok(self.engines[host].clone())
    }

    /// The docker hosts, in order.
    pub fn hosts(&self) -> impl Iterator<Item = &String> {
        self.engines.keys()
    }
}

impl<const ETCD: bool> Target for ReferenceTarget<ETCD> {
    type Api = Mutex<Engine>;

    async fn start(lab: &Lab, docker_hosts: &[String], run_id: &str) -> TargetResult<Self> {
        let (planes, etcd) = control_planes(lab, docker_hosts, run_id, ETCD).await?;
        let mut engines = BTreeMap::new();
        let plugins = std::env::temp_dir().join(format!(
            "{PLUGINS_DIR_PREFIX}{}-{run_id}",
            std::process::id()
        ));
        for (host, control_plane) in docker_hosts.iter().zip(planes) {
            let netns = lab
                .host(host)
                .ok_or_else(|| TargetError::new(format!("no lab host {host}")))?;
            let options = Options {
                dns: Vec::new(),
                host_resolvers: super::lab_resolvers(lab, host)?,
                state_dir: None,
                hostname: host.clone(),
                control_plane,
                plugins: PluginDirs {
                    sockets: plugins.join(host),
                    specs: Vec::new(),
                },
                plugin_patience: Patience::default(),
            };
            let engine = Engine::start(netns, options)
                .await
                .map_err(TargetError::from)?;
            engines.insert(host.clone(), Arc::new(Mutex::new(engine)));
        }
        Ok(Self {
            engines,
            plugins,
            etcd,
        })
    }

    /// Stops every container and removes every network; then the etcd. An engine still
    /// shared (a server's) is left to the lab's teardown.
    async fn stop(self) {
        for (host, engine) in self.engines {
            match Arc::try_unwrap(engine) {
                Ok(engine) => engine.into_inner().shutdown().await,
                Err(_) => tracing::warn!("{host}'s engine is still shared: not shut down"),
            }
        }
        drop(self.etcd);
        let _ = std::fs::remove_dir_all(&self.plugins);
    }

    fn describe(&self) -> String {
        match ETCD {
            false => format!("reference (Docker {EMULATED} semantics)"),
            true => format!("reference (Docker {EMULATED} semantics, etcd control plane)"),
        }
    }

    fn version(&self) -> Version {
        EMULATED
    }

    fn api(&self, host: &str) -> TargetResult<&Mutex<Engine>> {
        self.engines.get(host).map(|e| &**e).ok_or_else(|| {
            TargetError::new(format!("{host} is not a docker host of this scenario"))
        })
    }

    fn plugins_dir(&self, host: &str) -> TargetResult<PathBuf> {
        self.api(host)?;
        Ok(self.plugins.join(host))
    }

    async fn container_netns(&self, host: &str, name: &str) -> TargetResult<Netns> {
        self.engine(host)
            .await?
            .container_netns(name)
            .map_err(TargetError::from)
    }

    async fn container_file(&self, host: &str, name: &str, path: &str) -> TargetResult<String> {
        self.engine(host)
            .await?
            .container_file(name, path)
            .map_err(TargetError::from)
    }

    async fn kill(&self, host: &str) -> TargetResult<()> {
        self.engine(host).await?.kill().await;
        Ok(())
    }

    async fn dump(&self, host: &str) -> String {
        let netns = match self.engine(host).await {
            Ok(engine) => engine.host().clone(),
            Err(e) => return e.message,
        };
        // nft is a process: wait for it on a blocking thread, without the engine's lock.
        let table = tokio::task::spawn_blocking(move || drydock_runtime::firewall::dump(&netns))
            .await
            .unwrap_or_else(|e| format!("(nft panicked: {e})"));
        format!("== {host}: nft list table inet drydock\n{table}")
    }
}
