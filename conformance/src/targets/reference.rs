//! drydock's own engine as a target: one [`Engine`] per docker host of the lab, in-process,
//! answering the same Engine API calls the docker target sends to dockerd.

use std::collections::BTreeMap;
use std::sync::Arc;

use drydock_netsim::{Lab, Netns};
use drydock_runtime::cluster::MemoryHub;
use drydock_runtime::engine::{ControlPlane, Engine, Options};
use tokio::sync::Mutex;

use super::{Target, TargetError, TargetResult};
use crate::version::Version;

/// The Docker release whose behavior the reference engine has (the one it is checked against).
pub const EMULATED: Version = Version(20, 10, 24);

/// The reference engine on the docker hosts of a lab.
#[derive(Debug)]
pub struct ReferenceTarget {
    engines: BTreeMap<String, Mutex<Engine>>,
}

impl ReferenceTarget {
    async fn engine(&self, host: &str) -> TargetResult<tokio::sync::MutexGuard<'_, Engine>> {
        Ok(self.api(host)?.lock().await)
    }
}

impl Target for ReferenceTarget {
    type Api = Mutex<Engine>;

    /// The engines share an in-process control plane, for the swarms they make.
    async fn start(lab: &Lab, docker_hosts: &[String], _run_id: &str) -> TargetResult<Self> {
        let hub = Arc::new(MemoryHub::new());
        let mut engines = BTreeMap::new();
        for host in docker_hosts {
            let netns = lab
                .host(host)
                .ok_or_else(|| TargetError::new(format!("no lab host {host}")))?;
            let options = Options {
                dns: Vec::new(),
                host_resolvers: super::lab_resolvers(lab, host)?,
                state_dir: None,
                hostname: host.clone(),
                control_plane: ControlPlane::Hub(hub.clone()),
            };
            let engine = Engine::start(netns, options)
                .await
                .map_err(TargetError::from)?;
            engines.insert(host.clone(), Mutex::new(engine));
        }
        Ok(Self { engines })
    }

    /// Stops every container and removes every network.
    async fn stop(self) {
        for (_, engine) in self.engines {
            engine.into_inner().shutdown().await;
        }
    }

    fn describe(&self) -> String {
        format!("reference (Docker {EMULATED} semantics)")
    }

    fn version(&self) -> Version {
        EMULATED
    }

    fn api(&self, host: &str) -> TargetResult<&Mutex<Engine>> {
        self.engines.get(host).ok_or_else(|| {
            TargetError::new(format!("{host} is not a docker host of this scenario"))
        })
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
