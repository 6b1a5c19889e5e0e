//! The failure dump: the state of each docker host and container when a check failed (links and
//! routes over netlink, the engine's own view from the target), and the tail of each capture.

use std::fmt::Write as _;

use drydock_netsim::Netns;

use super::execution::Execution;
use crate::targets::Target;

/// A namespace's links and routes, as text.
async fn network_state(netns: &Netns) -> String {
    let mut out = String::new();
    match super::links::links(netns).await {
        Ok(links) => {
            for link in links {
                let _ = writeln!(out, "{} mtu {}", link.name, link.mtu);
            }
        }
        Err(e) => {
            let _ = writeln!(out, "(links: {e})");
        }
    }
    for ipv6 in [false, true] {
        match super::links::routes(netns, ipv6).await {
            Ok(routes) => routes.iter().for_each(|r| {
                let _ = writeln!(out, "{r}");
            }),
            Err(e) => {
                let _ = writeln!(out, "(routes: {e})");
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
}
