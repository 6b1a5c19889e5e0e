//! The reference engine driven over its own Engine API socket: each docker host's engine is
//! served as Docker Engine API 1.41 (`drydock_runtime::api::server`) on a socket of the run,
//! and every call goes through the same client that drives dockerd ([`Client`]), so the whole
//! suite proves the API. Namespaces, files and kills, which the API does not give, go to the
//! engines directly, as on the in-process target.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_netsim::{Lab, Netns};
use drydock_runtime::server::{NoProcesses, Served, serve};
use tokio::task::JoinHandle;

use super::docker::Client;
use super::reference::ReferenceTarget;
use super::{Target, TargetError, TargetResult};
use crate::version::Version;

/// Where a run's sockets live: `/tmp/drydock-api-PID-RUN/HOST.sock` (`drydock gc` removes
/// those of dead processes).
pub const DIR_PREFIX: &str = "drydock-api-";
/// How long stopping waits for the servers' connections to let go of the engines.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The reference engine, one per docker host, each behind its Engine API socket.
#[derive(Debug)]
pub struct ApiReferenceTarget {
    inner: ReferenceTarget,
    clients: BTreeMap<String, Client>,
    servers: Vec<JoinHandle<()>>,
    dir: PathBuf,
}

impl Target for ApiReferenceTarget {
    type Api = Client;

    async fn start(lab: &Lab, docker_hosts: &[String], run_id: &str) -> TargetResult<Self> {
        let inner = ReferenceTarget::start(lab, docker_hosts, run_id).await?;
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{run_id}", std::process::id()));
        let mut target = Self {
            inner,
            clients: BTreeMap::new(),
            servers: Vec::new(),
            dir,
        };
        if let Err(e) = target.serve() {
            target.stop().await;
            return Err(e);
        }
        Ok(target)
    }

    async fn stop(self) {
        for server in &self.servers {
            server.abort();
        }
        // Connections still open hold the engines a little longer.
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        for host in self.inner.hosts() {
            while (self.inner.shared(host)).is_ok_and(|e| Arc::strong_count(&e) > 2)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        self.inner.stop().await;
    }

    fn describe(&self) -> String {
        format!("{} over its Engine API socket", self.inner.describe())
    }

    fn version(&self) -> Version {
        self.inner.version()
    }

    fn api(&self, host: &str) -> TargetResult<&Client> {
        self.clients.get(host).ok_or_else(|| {
            TargetError::new(format!("{host} is not a docker host of this scenario"))
        })
    }

    async fn container_netns(&self, host: &str, name: &str) -> TargetResult<Netns> {
        self.inner.container_netns(host, name).await
    }

    async fn container_file(&self, host: &str, name: &str, path: &str) -> TargetResult<String> {
        self.inner.container_file(host, name, path).await
    }

    async fn kill(&self, host: &str) -> TargetResult<()> {
        self.inner.kill(host).await
    }

    fn plugins_dir(&self, host: &str) -> TargetResult<std::path::PathBuf> {
        self.inner.plugins_dir(host)
    }

    async fn dump(&self, host: &str) -> String {
        self.inner.dump(host).await
    }
}

impl ApiReferenceTarget {
    /// The Engine API socket of docker host `host` (for `DOCKER_HOST=unix://...`).
    pub fn socket(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.sock"))
    }

    /// Binds a socket per docker host and serves its engine there.
    fn serve(&mut self) -> TargetResult<()> {
        let failed = |what: String, e: std::io::Error| TargetError::new(format!("{what}: {e}"));
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| failed(self.dir.display().to_string(), e))?;
        let hosts: Vec<String> = self.inner.hosts().cloned().collect();
        for host in hosts {
            let socket = self.socket(&host);
            let listener = tokio::net::UnixListener::bind(&socket)
                .map_err(|e| failed(socket.display().to_string(), e))?;
            let served = Served::new(self.inner.shared(&host)?, Arc::new(NoProcesses));
            let name = host.clone();
            self.servers.push(tokio::spawn(async move {
                if let Err(e) = serve(listener, served).await {
                    tracing::error!("{name}'s Engine API: {e}");
                }
            }));
            self.clients.insert(host, Client::over_socket(&socket));
        }
        Ok(())
    }
}
