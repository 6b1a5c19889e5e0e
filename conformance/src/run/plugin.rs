//! Network plugins a run starts on each docker host before a scenario's steps: the run's own
//! (`drydock plugin check --run`), with which a `driver: any` scenario's networks made without
//! `-d` are made, and the scenario's (`plugins:`). Each is its command, in the host's network
//! namespace, listening on `NAME.sock` in the folder where that host's engine looks for
//! plugins ([`Target::plugins_dir`]), its output in `NAME.log` there. They are killed when the
//! scenario ends (after its target stopped), and die with drydock.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use drydock_netsim::{Lab, Netns};

use crate::scenario::{DRYDOCK_WORD, PluginRun, SOCKET_WORD};
use crate::targets::Target;
use crate::tied::Tied;

/// How long a plugin may take to listen on its socket.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Plugins' processes; killed on drop.
pub struct Running {
    _processes: Vec<Tied>,
}

impl Running {
    /// Starts `plugins` on each of `hosts` and waits until each listens.
    pub(super) async fn start_all<T: Target>(
        plugins: &[&PluginRun],
        target: &T,
        lab: &Lab,
        hosts: &[String],
    ) -> Result<Running, String> {
        let mut processes = Vec::new();
        for host in hosts {
            let dir = target.plugins_dir(host).map_err(|e| e.message)?;
            let netns = lab
                .host(host)
                .ok_or_else(|| format!("no lab host {host}"))?;
            for plugin in plugins {
                let started = plugin.start_in(netns, &dir).await;
                let started = started.map_err(|why| format!("{why} (on {host})"))?;
                processes.extend(started._processes);
            }
        }
        Ok(Running {
            _processes: processes,
        })
    }
}

impl PluginRun {
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
        let program = match program.as_str() {
            DRYDOCK_WORD => std::env::current_exe().map_err(|e| format!("drydock's path: {e}"))?,
            other => other.into(),
        };
        let mut command = netns.command(&program, None);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(|e| e.to_string())?)
            .stderr(output);
        let mut process = Tied::spawn(command, "plugin-parent").map_err(|e| {
            format!(
                "cannot start plugin {} ({}): {e}",
                self.name,
                program.display()
            )
        })?;
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
