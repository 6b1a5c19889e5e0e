//! A one-member etcd (Debian's etcd-server) inside a lab host: the control plane's store when
//! the engines of a lab run as separate processes ([`drydock_runtime::cluster::EtcdStore`]).
//!
//! It runs in the host's network namespace ([`Netns::command`]) with timings short enough for
//! a 1 s lease: etcd raises every TTL to 1.5 election timeouts (rounded up to a second), so the
//! election timeout is 500 ms (heartbeat 50 ms, etcd wants at least five per timeout): 750 ms,
//! which rounds to 1 s. It dies with drydock, even on SIGKILL ([`Tied`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use drydock_netsim::Netns;

use crate::tied::Tied;

/// The program: Debian's etcd-server.
pub const ETCD: &str = "/usr/bin/etcd";
/// The port clients reach it on.
pub const CLIENT_PORT: u16 = 2379;
/// The port its peers would reach it on.
pub const PEER_PORT: u16 = 2380;
/// `--heartbeat-interval`, in milliseconds.
const HEARTBEAT_MS: u32 = 50;
/// `--election-timeout`, in milliseconds.
const ELECTION_MS: u32 = 500;
/// How long it may take to answer its health check after the start.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running etcd; killed, and its directory removed, on drop.
#[derive(Debug)]
pub struct EtcdServer {
    /// Where clients reach it.
    endpoint: SocketAddr,
    /// Its data and log.
    dir: PathBuf,
    process: Tied,
}

impl EtcdServer {
    /// Starts etcd in `netns`, listening on `address` ([`CLIENT_PORT`], [`PEER_PORT`]), with
    /// its data and log in `dir`, which must not exist yet; returns once it answers its health
    /// check (a leader elected), within [`START_TIMEOUT`].
    pub async fn start(netns: &Netns, address: IpAddr, dir: &Path) -> io::Result<EtcdServer> {
        let context = |what: String, e: io::Error| {
            io::Error::new(e.kind(), format!("etcd on {address}: {what}: {e}"))
        };
        std::fs::create_dir(dir).map_err(|e| context(dir.display().to_string(), e))?;
        let log_path = dir.join("etcd.log");
        let log =
            File::create(&log_path).map_err(|e| context(log_path.display().to_string(), e))?;
        let endpoint = SocketAddr::new(address, CLIENT_PORT);
        let peer = SocketAddr::new(address, PEER_PORT);
        let mut command = netns.command(ETCD, None);
        command
            .arg("--name=drydock")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls=http://{endpoint}"))
            .arg(format!("--advertise-client-urls=http://{endpoint}"))
            .arg(format!("--listen-peer-urls=http://{peer}"))
            .arg(format!("--initial-advertise-peer-urls=http://{peer}"))
            .arg(format!("--initial-cluster=drydock=http://{peer}"))
            .arg("--initial-cluster-state=new")
            .arg(format!("--heartbeat-interval={HEARTBEAT_MS}"))
            .arg(format!("--election-timeout={ELECTION_MS}"))
            .args(["--logger=zap", "--log-outputs=stderr", "--log-level=warn"])
            // A group of its own: a terminal's Ctrl-C goes to drydock, which stops it.
            .process_group(0)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| context("etcd.log".into(), e))?)
            .stderr(log);
        let process = Tied::spawn(command, "etcd-parent").map_err(|e| {
            let _ = std::fs::remove_dir_all(dir);
            context(format!("starting {ETCD} (Debian's etcd-server)"), e)
        })?;
        let mut server = EtcdServer {
            endpoint,
            dir: dir.to_path_buf(),
            process,
        };
        server.wait_healthy(netns).await?;
        Ok(server)
    }

    /// Where clients reach it.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Polls `/health` from inside the namespace until it says so.
    async fn wait_healthy(&mut self, netns: &Netns) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.child().try_wait()? {
                return Err(self.failure(format!("exited ({status}) before answering")));
            }
            let (netns, endpoint) = (netns.clone(), self.endpoint);
            let check = tokio::task::spawn_blocking(move || netns.run(|| healthy(endpoint)));
            if let Ok(Ok(true)) = check.await {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                let text = format!("not healthy within {} s", START_TIMEOUT.as_secs());
                return Err(self.failure(text));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn failure(&self, what: String) -> io::Error {
        let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        io::Error::other(format!(
            "etcd on {}: {what}; its log:\n{tail}",
            self.endpoint
        ))
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Kill etcd before its directory goes.
        let _ = self.process.child().kill();
        let _ = self.process.child().wait();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!("removing {}: {e}", self.dir.display());
        }
    }
}

/// Whether etcd at `endpoint` says it is healthy (`GET /health`); call inside its namespace.
fn healthy(endpoint: SocketAddr) -> bool {
    let answer = || -> io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&endpoint, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    };
    answer().is_ok_and(|text| text.contains(r#""health":"true""#))
}
