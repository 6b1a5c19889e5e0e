//! A network plugin a run starts on each docker host before a `driver: any` scenario's steps
//! (`drydock conform --plugin`, `drydock plugin check`): its command, in the host's network
//! namespace, listening on `NAME.sock` in the folder where that host's engine looks for
//! plugins ([`Target::plugins_dir`]); its output in `NAME.log` there. The scenario's networks
//! made without `-d` are then made with it. It is killed when the scenario ends, and dies with
//! drydock.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use drydock_netsim::{Lab, Netns};

use crate::targets::Target;
use crate::tied::Tied;

/// How long a plugin may take to listen on its socket.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The word of a plugin's command that stands for its socket's path.
pub const SOCKET_WORD: &str = "{socket}";

/// A network plugin to run scenarios with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRun {
    /// Its name: `docker network create -d NAME`.
    pub name: String,
    /// Its command; [`SOCKET_WORD`] in an argument stands for the socket it listens on.
    pub command: Vec<String>,
}

/// A plugin's processes; killed on drop.
pub struct Running {
    _processes: Vec<Tied>,
}

impl PluginRun {
    /// Starts the plugin on each of `hosts` and waits until each listens.
    pub(super) async fn start<T: Target>(
        &self,
        target: &T,
        lab: &Lab,
        hosts: &[String],
    ) -> Result<Running, String> {
        let mut running = Vec::new();
        for host in hosts {
            let dir = target.plugins_dir(host).map_err(|e| e.message)?;
            let netns = lab
                .host(host)
                .ok_or_else(|| format!("no lab host {host}"))?;
            let started = self.start_in(netns, &dir).await;
            running.push(started.map_err(|why| format!("{why} (on {host})"))?);
        }
        Ok(Running {
            _processes: running.into_iter().flat_map(|r| r._processes).collect(),
        })
    }

    /// Starts the plugin in `netns`, listening on `NAME.sock` in `dir` (its output in
    /// `NAME.log` there), and waits until it listens.
    pub async fn start_in(&self, netns: &Netns, dir: &Path) -> Result<Running, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let socket = self.socket(dir);
        let log = dir.join(format!("{}.log", self.name));
        let (program, args) = self
            .command
            .split_first()
            .ok_or("an empty plugin command")?;
        let args = args
            .iter()
            .map(|a| a.replace(SOCKET_WORD, &socket.to_string_lossy()));
        let output = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = netns.command(program, None);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(|e| e.to_string())?)
            .stderr(output);
        let mut process = Tied::spawn(command, "plugin-parent")
            .map_err(|e| format!("cannot start plugin {} ({program}): {e}", self.name))?;
        listening(&mut process, &socket, &log)
            .await
            .map_err(|why| format!("plugin {}: {why}", self.name))?;
        Ok(Running {
            _processes: vec![process],
        })
    }

    /// Its socket in plugin folder `dir`.
    pub fn socket(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.sock", self.name))
    }
}

/// Waits until something accepts connections on `socket`, or the process exits.
async fn listening(process: &mut Tied, socket: &Path, log: &Path) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        let exited = process.child().try_wait().map_err(|e| e.to_string())?;
        let why = match exited {
            Some(status) => format!("exited ({status}) before listening on {}", socket.display()),
            None if started.elapsed() > LISTEN_TIMEOUT => format!(
                "did not listen on {} within {} s",
                socket.display(),
                LISTEN_TIMEOUT.as_secs()
            ),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let output = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = output.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        return Err(format!("{why}; its output:\n{tail}"));
    }
}
