//! The failure dump: the state of each docker host and container when a check failed
//! (addresses and routes over netlink, the engine's own view from the target), the tail of each
//! plugin's output, and the tail of each capture.

use std::fmt::Write as _;

use drydock_netsim::{Netns, link};

use super::execution::Execution;
use crate::targets::Target;

/// A namespace's addresses and routes, as `ip -br addr` and `ip route` show them (over
/// netlink: a dump runs no process).
async fn network_state(netns: &Netns) -> String {
    let mut out = String::new();
    for shown in [
        link::show_addresses(netns).await,
        link::show_routes(netns).await,
    ] {
        match shown {
            Ok(text) => out.push_str(&text),
            Err(e) => {
                let _ = writeln!(out, "({e})");
            }
        }
    }
    out
}

impl<T: Target> Execution<'_, T> {
    /// Everything worth reading when a scenario failed.
    pub(super) async fn dump(&self) -> String {
        let mut dump = String::new();
        for host in &self.scenario.hosts {
            let _ = writeln!(dump, "==== docker host {host}");
            if let Some(netns) = self.lab.host(host) {
                dump.push_str(&network_state(netns).await);
            }
            let _ = writeln!(dump, "{}", self.target.dump(host).await);
            dump.push_str(&self.plugin_logs(host));
        }
        for (host, name) in self.scene.containers.keys() {
            let _ = match self.scenario.hosts.len() > 1 {
                true => writeln!(dump, "==== container {name} (on {host})"),
                false => writeln!(dump, "==== container {name}"),
            };
            match self.target.container_netns(host, name).await {
                Ok(netns) => dump.push_str(&network_state(&netns).await),
                Err(e) => {
                    let _ = writeln!(dump, "{name}: {e}");
                }
            }
        }
        for capture in &self.captures {
            let tail = capture.lines.len().saturating_sub(20);
            let _ = writeln!(
                dump,
                "==== capture on {} (last {} of {} packets kept; {} seen)",
                capture.on,
                capture.lines.len() - tail,
                capture.lines.len(),
                capture.seen
            );
            for line in &capture.lines[tail..] {
                let _ = writeln!(dump, "{line}");
            }
        }
        dump
    }

    /// The tail of the output of each plugin the run started on `host` (what a plugin says of
    /// the calls it got is often the first clue to its author).
    fn plugin_logs(&self, host: &str) -> String {
        let mut out = String::new();
        let plugins = self.options.plugin.iter().chain(&self.scenario.plugins);
        let Ok(dir) = self.target.plugins_dir(host) else {
            return out;
        };
        for plugin in plugins {
            let path = dir.join(format!("{}.log", plugin.name));
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            let _ = writeln!(
                out,
                "== {host}: plugin {} output (last 30 lines)",
                plugin.name
            );
            for line in tail {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}
