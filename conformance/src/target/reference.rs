//! drydock's own engine as a target: one [`Engine`] per docker host of the lab, in-process,
//! fed the same API request bodies the docker target sends to dockerd.

use std::collections::BTreeMap;

use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::body::{ContainerCreate, NetworkConnect, NetworkCreate};
use drydock_runtime::api::request;
use drydock_runtime::engine::{Engine, EngineError, Options};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::{ConnectSpec, ContainerSpec, NetworkSpec, Target, TargetError, TargetResult};
use crate::version::Version;

/// The Docker release whose behavior the reference engine has (the one it is checked against).
pub const EMULATED: Version = Version(20, 10, 24);

/// The reference engine on the docker hosts of a lab.
#[derive(Debug)]
pub struct ReferenceTarget {
    engines: BTreeMap<String, Mutex<Engine>>,
}

fn error(e: EngineError) -> TargetError {
    TargetError::new(e.0)
}

fn body<T: DeserializeOwned>(value: serde_json::Value) -> TargetResult<T> {
    serde_json::from_value(value).map_err(|e| TargetError::new(format!("request body: {e}")))
}

impl ReferenceTarget {
    /// Starts an engine on each docker host, with the resolv.conf the docker target gives its
    /// daemons ([`super::lab_resolvers`]).
    pub async fn start(lab: &Lab, docker_hosts: &[String]) -> TargetResult<Self> {
        let mut engines = BTreeMap::new();
        for host in docker_hosts {
            let netns = lab
                .host(host)
                .ok_or_else(|| TargetError::new(format!("no lab host {host}")))?;
            let options = Options {
                dns: Vec::new(),
                host_resolvers: super::lab_resolvers(lab, host)?,
                state_dir: None,
            };
            let engine = Engine::start(netns, options).await.map_err(error)?;
            engines.insert(host.clone(), Mutex::new(engine));
        }
        Ok(Self { engines })
    }

    fn engine(&self, host: &str) -> TargetResult<&Mutex<Engine>> {
        self.engines.get(host).ok_or_else(|| {
            TargetError::new(format!("{host} is not a docker host of this scenario"))
        })
    }

    /// Stops every container and removes every network.
    pub async fn shutdown(self) {
        for (_, engine) in self.engines {
            engine.into_inner().shutdown().await;
        }
    }
}

impl Target for ReferenceTarget {
    fn describe(&self) -> String {
        format!("reference (Docker {EMULATED} semantics)")
    }

    fn version(&self) -> Version {
        EMULATED
    }

    async fn create_network(&self, host: &str, spec: &NetworkSpec) -> TargetResult<()> {
        let request: NetworkCreate =
            body(request::network_create(spec, &BTreeMap::new()).map_err(TargetError::new)?)?;
        self.engine(host)?
            .lock()
            .await
            .create_network(&request)
            .await
            .map(drop)
            .map_err(error)
    }

    async fn remove_network(&self, host: &str, name: &str) -> TargetResult<()> {
        self.engine(host)?
            .lock()
            .await
            .remove_network(name)
            .await
            .map_err(error)
    }

    async fn connect(&self, host: &str, spec: &ConnectSpec) -> TargetResult<()> {
        let request: NetworkConnect = body(request::connect(spec).map_err(TargetError::new)?)?;
        self.engine(host)?
            .lock()
            .await
            .connect(&spec.network, &request)
            .await
            .map_err(error)
    }

    async fn disconnect(
        &self,
        host: &str,
        network: &str,
        container: &str,
        force: bool,
    ) -> TargetResult<()> {
        self.engine(host)?
            .lock()
            .await
            .disconnect(network, container, force)
            .await
            .map_err(error)
    }

    async fn run_container(&self, host: &str, spec: &ContainerSpec) -> TargetResult<()> {
        let request: ContainerCreate =
            body(request::container_create(spec, &BTreeMap::new()).map_err(TargetError::new)?)?;
        let mut engine = self.engine(host)?.lock().await;
        engine
            .create_container(&spec.name, &request)
            .map_err(error)?;
        // Like `docker run`, a container that fails to start stays created.
        engine.start_container(&spec.name).await.map_err(error)
    }

    async fn stop_container(&self, host: &str, name: &str) -> TargetResult<()> {
        self.engine(host)?
            .lock()
            .await
            .stop_container(name)
            .await
            .map_err(error)
    }

    async fn start_container(&self, host: &str, name: &str) -> TargetResult<()> {
        self.engine(host)?
            .lock()
            .await
            .start_container(name)
            .await
            .map_err(error)
    }

    async fn remove_container(&self, host: &str, name: &str, force: bool) -> TargetResult<()> {
        self.engine(host)?
            .lock()
            .await
            .remove_container(name, force)
            .await
            .map_err(error)
    }

    async fn inspect_network(&self, host: &str, name: &str) -> TargetResult<serde_json::Value> {
        self.engine(host)?
            .lock()
            .await
            .inspect_network(name)
            .map_err(error)
    }

    async fn inspect_container(&self, host: &str, name: &str) -> TargetResult<serde_json::Value> {
        self.engine(host)?
            .lock()
            .await
            .inspect_container(name)
            .map_err(error)
    }

    async fn container_netns(&self, host: &str, name: &str) -> TargetResult<Netns> {
        self.engine(host)?
            .lock()
            .await
            .container_netns(name)
            .map_err(error)
    }

    async fn container_file(&self, host: &str, name: &str, path: &str) -> TargetResult<String> {
        self.engine(host)?
            .lock()
            .await
            .container_file(name, path)
            .map_err(error)
    }

    async fn dump(&self, host: &str) -> String {
        let Ok(engine) = self.engine(host) else {
            return format!("no engine on {host}");
        };
        let engine = engine.lock().await;
        let mut out = String::new();
        for args in [&["addr"][..], &["route"][..]] {
            let output = engine.host().command("ip", None).args(args).output();
            out.push_str(&format!("== {host}: ip {}\n", args.join(" ")));
            match output {
                Ok(o) => out.push_str(&String::from_utf8_lossy(&o.stdout)),
                Err(e) => out.push_str(&format!("{e}\n")),
            }
        }
        out.push_str(&format!(
            "== {host}: nft list table inet drydock\n{}",
            engine.firewall_dump()
        ));
        out
    }
}
