//! Scenario files: what to do (docker CLI lines), what must then hold, what to capture.
//!
//! ```yaml
//! name: user-defined bridge resolves names, default bridge does not
//! checks: containers on a user-defined network reach each other by name; on the default one not
//! source: https://docs.docker.com/engine/network/drivers/bridge/
//! hosts: [h1]                 # docker hosts (default [h1]); `external: [ext]` adds plain hosts
//! swarm: {managers: [h1]}     # optional: a swarm the docker hosts form before the steps
//! routed: [h3]                # optional: hosts on a second segment, behind router r1
//! steps:
//!   - docker network create my-net
//!   - docker run -d --name web --network my-net --listen tcp/80 busybox
//!   - run: docker network create my-net
//!     fails: network with name my-net already exists
//! expect:
//!   - web resolves web
//!   - expect: lonely cannot-reach web:80/tcp timeout
//!     docker: ">=20.10"       # holds for these Docker releases only
//! capture:
//!   - on: h1/eth0
//!     filter: udp port 53
//!     expect: [none: udp port 53]
//! ```
//! Every error names `file:line:column` and what was expected.

pub mod command;
pub mod expect;
mod file;
pub mod filter;
mod known;
mod parse;
pub mod words;

use std::fmt;
use std::path::Path;

use drydock_netsim::LocatedError;
use drydock_netsim::features::Feature;

pub use command::Command;
pub use expect::{Endpoint, Expectation};
pub use filter::Filter;

use crate::version::Range;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File it came from, as given.
    pub path: String,
    /// One-line title.
    pub name: String,
    /// What it checks, for reports.
    pub checks: String,
    /// Where the behavior is documented (docs URL, moby test, "observed on Docker Engine 20.10").
    pub source: String,
    /// Docker releases the whole scenario holds for.
    pub docker: Option<Range>,
    /// Kernel links Docker needs for it (`kernel: [ipvlan, 8021q]`): a target that makes its
    /// links with the kernel only (Docker Engine) skips it where the kernel lacks one.
    pub kernel: Vec<Feature>,
    /// `driver: any`: it holds whatever driver its networks have, so a run with a network
    /// plugin makes them with the plugin (`docker network create` steps without `-d`).
    pub any_driver: bool,
    /// Network plugins of its own (`plugins:`), started on each docker host.
    pub plugins: Vec<PluginRun>,
    /// Docker hosts (engines), in order; the first is the default for steps and facts.
    pub hosts: Vec<String>,
    /// Plain lab hosts without an engine, standing for external machines.
    pub external: Vec<String>,
    /// The swarm the docker hosts form before the steps (`swarm:`), if any.
    pub swarm: Option<Swarm>,
    /// Lab hosts on the second segment ([`ROUTED_SUBNET`]), behind router [`ROUTER`]
    /// (`routed:`); empty: every host on one segment, and no router.
    pub routed: Vec<String>,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Expectations, in order.
    pub expectations: Vec<Expect>,
    /// Captures taken while the expectations run.
    pub captures: Vec<Capture>,
}

/// The word of a plugin's command that stands for its socket's path.
pub const SOCKET_WORD: &str = "{socket}";

/// A plugin's program that stands for the drydock running the scenario (its drivers served as
/// plugins: `{drydock} plugin serve --driver ipvlan ...`): this process's own executable, so a
/// program that runs scenarios through the library must be drydock itself for it.
pub const DRYDOCK_WORD: &str = "{drydock}";

/// A network plugin to start on each docker host before the steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRun {
    /// Its name: `docker network create -d NAME`.
    pub name: String,
    /// Its command (paths relative to where drydock runs); [`SOCKET_WORD`] in an argument
    /// stands for the socket it listens on, [`DRYDOCK_WORD`] as the program for drydock
    /// itself.
    pub command: Vec<String>,
}

impl PluginRun {
    /// Plugin `name` run by the command `run`, whose words are split as a POSIX shell splits
    /// them (quotes and backslashes), nothing else of a shell's; one of them must say where
    /// to listen.
    pub fn parse(name: &str, run: &str) -> Result<PluginRun, String> {
        let command = shlex::split(run)
            .ok_or("the command has a quote it never closes, or ends in a backslash")?;
        if !command.iter().any(|word| word.contains(SOCKET_WORD)) {
            return Err(format!(
                "the command never says where to listen ({SOCKET_WORD})"
            ));
        }
        Ok(PluginRun {
            name: name.to_string(),
            command,
        })
    }
}

/// The lab host that routes between the two segments when a scenario has `routed:` hosts.
pub const ROUTER: &str = "r1";

/// The segment every host is on, unless `routed:`.
pub const SUBNET: &str = "10.10.0.0/24";

/// The segment of the `routed:` hosts, behind [`ROUTER`].
pub const ROUTED_SUBNET: &str = "10.10.1.0/24";

/// The swarm of a scenario: docker hosts that form it before the steps run. The first manager
/// initializes it (advertising its lab address); the other managers, then the workers, join it
/// with the manager's or the worker's token, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swarm {
    /// Manager nodes; the first one inits the swarm.
    pub managers: Vec<String>,
    /// Worker nodes.
    pub workers: Vec<String>,
    /// `file:line` for reports.
    pub at: String,
}

impl Swarm {
    /// Every node: managers first, then workers.
    pub fn nodes(&self) -> impl Iterator<Item = &String> {
        self.managers.iter().chain(&self.workers)
    }

    /// How reports show it: `swarm: managers h1; workers h2, h3`.
    pub fn line(&self) -> String {
        let mut line = format!("swarm: managers {}", self.managers.join(", "));
        if !self.workers.is_empty() {
            line.push_str(&format!("; workers {}", self.workers.join(", ")));
        }
        line
    }
}

/// A step: a docker CLI line on a docker host, expected to succeed or to fail with a message.
#[derive(Debug, Clone)]
pub struct Step {
    /// The line as written.
    pub line: String,
    /// The line, understood.
    pub command: Command,
    /// Docker host it runs on.
    pub host: String,
    /// `Some(text)`: the step must fail, with an error containing `text`.
    pub fails: Option<String>,
    /// Docker releases the step runs on (others skip it).
    pub docker: Option<Range>,
    /// `file:line` for reports.
    pub at: String,
}

/// An expectation and the releases it holds for.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The line as written.
    pub line: String,
    /// The line, understood.
    pub expectation: Expectation,
    /// Docker releases it holds for (others skip it).
    pub docker: Option<Range>,
    /// `... within N`: observe again until it holds or this time has passed.
    pub within: Option<std::time::Duration>,
    /// `file:line` for reports.
    pub at: String,
}

/// Where a capture listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapturePoint {
    /// An interface of a lab host (`h1/eth0`) or of a container (`web/eth0`).
    Interface {
        /// Host or container name.
        owner: String,
        /// Interface name.
        iface: String,
    },
    /// The bridge of a docker network on a docker host (`h1/network:my-net`).
    Network {
        /// Docker host.
        host: String,
        /// Network name.
        network: String,
    },
}

impl fmt::Display for CapturePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapturePoint::Interface { owner, iface } => write!(f, "{owner}/{iface}"),
            CapturePoint::Network { host, network } => write!(f, "{host}/network:{network}"),
        }
    }
}

/// A capture: where, which packets to keep, and what must hold of them.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Where.
    pub on: CapturePoint,
    /// Packets kept (all when `None`).
    pub filter: Option<Filter>,
    /// Each check: `(quantifier, filter)`.
    pub checks: Vec<(Quantifier, Filter)>,
    /// `allow-empty: true`: a capture whose checks are all `none:` may see no packet at all
    /// (otherwise an empty capture fails: its checks would hold for a dead interface too).
    pub allow_empty: bool,
    /// `file:line` for reports.
    pub at: String,
}

impl Capture {
    /// How a check of this capture is reported: `capture on h1/eth0: none: udp port 53`.
    pub fn check_line(&self, quantifier: Quantifier, filter: &Filter) -> String {
        format!("capture on {}: {quantifier}: {filter}", self.on)
    }
}

/// How many captured packets must match a check's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// Not one.
    None,
    /// Every one (and at least one).
    Only,
    /// At least one.
    Some,
}

impl fmt::Display for Quantifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantifier::None => "none",
            Quantifier::Only => "only",
            Quantifier::Some => "some",
        })
    }
}

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {error}")]
    Unreadable {
        /// File path as given.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The file is malformed, or names something it does not make: `file:line:column`.
    #[error(transparent)]
    Invalid(#[from] LocatedError),
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| LoadError::Unreadable {
            path: shown.clone(),
            error,
        })?;
        Ok(Self::parse(&text, &shown)?)
    }

    /// Parses and validates a scenario's text; `path` is used in messages.
    pub fn parse(text: &str, path: &str) -> Result<Self, LocatedError> {
        let file: file::File =
            serde_saphyr::from_str(text).map_err(|e| LocatedError::from_yaml(&e, text, path))?;
        parse::Parser { text, path }.scenario(file)
    }
}

/// Every scenario file (`*.yaml`) under `dir`, recursively, sorted by path; `labs/` folders hold
/// lab topologies, not scenarios, and are skipped.
pub fn find(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "labs") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests;
