//! Scenario files: what to do (docker CLI lines), what must then hold, what to capture.
//!
//! ```yaml
//! name: user-defined bridge resolves names, default bridge does not
//! checks: containers on a user-defined network reach each other by name; on the default one not
//! source: https://docs.docker.com/engine/network/drivers/bridge/
//! hosts: [h1]                 # docker hosts (default [h1]); `external: [ext]` adds plain hosts
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
pub mod filter;
pub mod words;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use drydock_netsim::LocatedError;
use drydock_netsim::features::Feature;
use drydock_runtime::api::cli::DockerCommand;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

pub use command::Command;
pub use expect::{Endpoint, Expectation};
pub use filter::Filter;

use self::expect::{Asked, Port};

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
    /// Docker hosts (engines), in order; the first is the default for steps and facts.
    pub hosts: Vec<String>,
    /// Plain lab hosts without an engine, standing for external machines.
    pub external: Vec<String>,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Expectations, in order.
    pub expectations: Vec<Expect>,
    /// Captures taken while the expectations run.
    pub captures: Vec<Capture>,
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

// ---- The file as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    // Required, but checked here rather than by serde: its "missing field" errors point at the
    // end of the file instead of its start.
    name: Option<String>,
    checks: Option<String>,
    source: Option<String>,
    docker: Option<Spanned<String>>,
    #[serde(default)]
    kernel: Vec<Spanned<String>>,
    hosts: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    external: Vec<Spanned<String>>,
    #[serde(default)]
    steps: Vec<Spanned<LineOr<StepFile>>>,
    #[serde(default)]
    expect: Vec<Spanned<LineOr<ExpectFile>>>,
    #[serde(default)]
    capture: Vec<Spanned<CaptureFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    run: Spanned<String>,
    fails: Option<String>,
    on: Option<Spanned<String>>,
    docker: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    expect: Spanned<String>,
    docker: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureFile {
    on: Spanned<String>,
    filter: Option<Spanned<String>>,
    #[serde(default)]
    expect: Vec<Spanned<CheckFile>>,
    #[serde(default, rename = "allow-empty")]
    allow_empty: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    none: Option<String>,
    only: Option<String>,
    some: Option<String>,
}

/// A list item written either as one line (a string) or as a mapping with more keys.
enum LineOr<T> {
    Line(String),
    Map(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LineOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LineOrVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for LineOrVisitor<T> {
            type Value = LineOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a line, or a mapping")
            }
            fn visit_str<E: de::Error>(self, line: &str) -> Result<Self::Value, E> {
                Ok(LineOr::Line(line.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(LineOr::Map)
            }
        }
        deserializer.deserialize_any(LineOrVisitor(PhantomData))
    }
}

// ---- Parsing and validation ----

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
        let file: File =
            serde_saphyr::from_str(text).map_err(|e| LocatedError::from_yaml(&e, text, path))?;
        Parser { text, path }.scenario(file)
    }
}

struct Parser<'a> {
    text: &'a str,
    path: &'a str,
}

impl Parser<'_> {
    fn error(&self, at: &Location, message: String) -> LocatedError {
        LocatedError::at(at, message, self.text, self.path)
    }

    fn at(&self, location: &Location) -> String {
        format!("{}:{}", self.path, location.line())
    }

    /// An error at `word` of a line whose scalar starts at `at`.
    fn word_error(
        &self,
        at: &Location,
        words: &[words::Word],
        word: usize,
        message: String,
    ) -> LocatedError {
        // A quoted scalar's text starts one column after its location.
        let quoted = at
            .span()
            .byte_offset()
            .and_then(|o| usize::try_from(o).ok())
            .and_then(|o| self.text.get(o..o + 1))
            .is_some_and(|c| c == "\"" || c == "'");
        let offset = match words.get(word) {
            Some(w) => w.offset,
            None => words.last().map_or(0, |w| w.offset + w.text.len() + 1),
        };
        let column = at.column() + u64::from(quoted) + offset as u64;
        LocatedError::new(at.line(), column, message, self.text, self.path)
    }

    fn words(&self, line: &str, at: &Location) -> Result<Vec<words::Word>, LocatedError> {
        words::split(line).map_err(|(offset, message)| {
            let word = [words::Word {
                text: String::new(),
                offset,
            }];
            self.word_error(at, &word, 0, message)
        })
    }

    fn range(&self, text: &Spanned<String>) -> Result<Range, LocatedError> {
        Range::parse(&text.value).map_err(|m| self.error(&text.referenced, m))
    }

    fn scenario(&self, file: File) -> Result<Scenario, LocatedError> {
        let required = |value: Option<String>, field: &str, why: &str| {
            value.ok_or_else(|| {
                LocatedError::new(
                    1,
                    1,
                    format!("missing field `{field}`: {why}"),
                    self.text,
                    self.path,
                )
            })
        };
        let name = required(file.name, "name", "a one-line title")?;
        let checks = required(
            file.checks,
            "checks",
            "what the scenario checks, for reports",
        )?;
        let source = required(
            file.source,
            "source",
            "where Docker documents the behavior (a docs URL, a moby test, or \"observed on Docker Engine 20.10\")",
        )?;
        let docker = file.docker.as_ref().map(|d| self.range(d)).transpose()?;
        let kernel = file
            .kernel
            .iter()
            .map(|name| {
                Feature::from_name(&name.value).ok_or_else(|| {
                    let known: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
                    let known = known.join(", ");
                    let message = format!("{:?}: expected a kernel feature ({known})", name.value);
                    self.error(&name.referenced, message)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let hosts = match &file.hosts {
            Some(hosts) if hosts.is_empty() => {
                return Err(LocatedError::new(
                    1,
                    1,
                    "`hosts` is empty: a scenario needs at least one docker host".into(),
                    self.text,
                    self.path,
                ));
            }
            Some(hosts) => hosts.clone(),
            None => vec![Spanned::new(
                "h1".to_string(),
                Location::UNKNOWN,
                Location::UNKNOWN,
            )],
        };
        let mut names = BTreeSet::new();
        for host in hosts.iter().chain(&file.external) {
            drydock_netsim::topology::check_lab_name(&host.value)
                .map_err(|m| self.error(&host.referenced, m.replace("lab name", "host name")))?;
            if !names.insert(host.value.clone()) {
                return Err(self.error(
                    &host.referenced,
                    format!("host {:?} is listed twice", host.value),
                ));
            }
        }
        let hosts: Vec<String> = hosts.into_iter().map(|h| h.value).collect();
        let external: Vec<String> = file.external.into_iter().map(|h| h.value).collect();

        let mut known = Known {
            docker_hosts: hosts.clone(),
            lab_hosts: names,
            containers: BTreeMap::new(),
            networks: hosts
                .iter()
                .map(|h| {
                    (
                        h.clone(),
                        PREDEFINED.iter().map(|n| n.to_string()).collect(),
                    )
                })
                .collect(),
        };
        let mut steps = Vec::new();
        for item in &file.steps {
            let step = self.step(item, &hosts)?;
            if let Command::Listen { host, .. } | Command::Route { host, .. } = &step.command
                && !known.lab_hosts.contains(host)
            {
                let at = match &item.value {
                    LineOr::Map(s) => s.run.referenced,
                    LineOr::Line(_) => item.referenced,
                };
                return Err(self.error(
                    &at,
                    format!(
                        "{host:?} is not a host of this scenario: expected one of {:?}",
                        known.lab_hosts
                    ),
                ));
            }
            match &step.command {
                // A run expected to fail may still leave its container (created), as Docker does.
                Command::Docker {
                    command: DockerCommand::Run(spec),
                    ..
                } => {
                    known
                        .containers
                        .entry(spec.name.clone())
                        .or_default()
                        .insert(step.host.clone());
                }
                Command::Docker {
                    command: DockerCommand::NetworkCreate(spec),
                    ..
                } => {
                    known
                        .networks
                        .entry(step.host.clone())
                        .or_default()
                        .insert(spec.name.clone());
                }
                _ => {}
            }
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(LocatedError::new(
                1,
                1,
                "no `steps`: a scenario does something first".into(),
                self.text,
                self.path,
            ));
        }

        let mut expectations = Vec::new();
        for item in &file.expect {
            let (line, at, range) = match &item.value {
                LineOr::Line(line) => (line.clone(), item.referenced, None),
                LineOr::Map(e) => (
                    e.expect.value.clone(),
                    e.expect.referenced,
                    e.docker.as_ref().map(|d| self.range(d)).transpose()?,
                ),
            };
            let words = self.words(&line, &at)?;
            let expectation = expect::parse(&words)
                .map_err(|e| self.word_error(&at, &words, e.word, e.message))?;
            known
                .check(&expectation)
                .map_err(|(word, message)| self.word_error(&at, &words, word, message))?;
            expectations.push(Expect {
                line,
                expectation,
                docker: range,
                at: self.at(&at),
            });
        }

        let mut captures = Vec::new();
        for capture in &file.capture {
            captures.push(self.capture(&capture.value, &capture.referenced, &known)?);
        }
        Ok(Scenario {
            path: self.path.to_string(),
            name,
            checks,
            source,
            docker,
            kernel,
            hosts,
            external,
            steps,
            expectations,
            captures,
        })
    }

    fn step(
        &self,
        item: &Spanned<LineOr<StepFile>>,
        hosts: &[String],
    ) -> Result<Step, LocatedError> {
        let (line, at, fails, host, docker) = match &item.value {
            LineOr::Line(line) => (line.clone(), item.referenced, None, None, None),
            LineOr::Map(s) => {
                let docker = s.docker.as_ref().map(|d| self.range(d)).transpose()?;
                (
                    s.run.value.clone(),
                    s.run.referenced,
                    s.fails.clone(),
                    s.on.as_ref(),
                    docker,
                )
            }
        };
        let host = match host {
            Some(on) if hosts.contains(&on.value) => on.value.clone(),
            Some(on) => {
                return Err(self.error(
                    &on.referenced,
                    format!(
                        "{:?} is not a docker host of this scenario: expected one of {hosts:?}",
                        on.value
                    ),
                ));
            }
            None => hosts[0].clone(),
        };
        let words = self.words(&line, &at)?;
        let command =
            command::parse(&words).map_err(|e| self.word_error(&at, &words, e.word, e.message))?;
        Ok(Step {
            line,
            command,
            host,
            fails,
            docker,
            at: self.at(&at),
        })
    }

    fn capture(
        &self,
        file: &CaptureFile,
        at: &Location,
        known: &Known,
    ) -> Result<Capture, LocatedError> {
        let on = &file.on;
        let expected = || {
            format!(
                "{:?}: expected HOST/IFACE, CONTAINER/IFACE or HOST/network:NAME",
                on.value
            )
        };
        let (owner, iface) = on
            .value
            .split_once('/')
            .ok_or_else(|| self.error(&on.referenced, expected()))?;
        let point = match iface.strip_prefix("network:") {
            Some(network) => {
                known
                    .network(Some(owner), network)
                    .map_err(|m| self.error(&on.referenced, m))?;
                CapturePoint::Network {
                    host: owner.into(),
                    network: network.into(),
                }
            }
            None if iface.is_empty() => return Err(self.error(&on.referenced, expected())),
            None => {
                known
                    .subject(owner)
                    .map_err(|m| self.error(&on.referenced, format!("{}: {m}", on.value)))?;
                CapturePoint::Interface {
                    owner: owner.into(),
                    iface: iface.into(),
                }
            }
        };
        let filter = file
            .filter
            .as_ref()
            .map(|f| Filter::parse(&f.value).map_err(|m| self.error(&f.referenced, m)))
            .transpose()?;
        let mut checks = Vec::new();
        for check in &file.expect {
            let c = &check.value;
            let (quantifier, text) =
                match (&c.none, &c.only, &c.some) {
                    (Some(t), None, None) => (Quantifier::None, t),
                    (None, Some(t), None) => (Quantifier::Only, t),
                    (None, None, Some(t)) => (Quantifier::Some, t),
                    _ => return Err(self.error(
                        &check.referenced,
                        "expected exactly one of `none: FILTER`, `only: FILTER`, `some: FILTER`"
                            .into(),
                    )),
                };
            let filter = Filter::parse(text).map_err(|m| self.error(&check.referenced, m))?;
            checks.push((quantifier, filter));
        }
        if file.allow_empty && checks.iter().any(|(q, _)| *q != Quantifier::None) {
            return Err(self.error(
                at,
                "`allow-empty` is only for captures whose checks are all `none:`".into(),
            ));
        }
        Ok(Capture {
            on: point,
            filter,
            checks,
            allow_empty: file.allow_empty,
            at: self.at(at),
        })
    }
}

/// The networks every docker host has from the start.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// What a scenario's hosts and steps make, as far as the file tells: the names expectations and
/// captures may use.
struct Known {
    /// Docker hosts, in order (the first is the default for `network N`).
    docker_hosts: Vec<String>,
    /// Docker and external hosts.
    lab_hosts: BTreeSet<String>,
    /// Containers made by `docker run --name` steps, and the docker hosts they run on.
    containers: BTreeMap<String, BTreeSet<String>>,
    /// Networks per docker host: predefined, or made by `docker network create` steps.
    networks: BTreeMap<String, BTreeSet<String>>,
}

impl Known {
    /// The docker host of container `name`; an error when no step runs it or when steps run it
    /// on several hosts (then nothing tells which one a check means).
    fn container(&self, name: &str) -> Result<&str, String> {
        match self
            .containers
            .get(name)
            .map(|hosts| hosts.iter().collect::<Vec<_>>())
        {
            Some(hosts) if hosts.len() == 1 => Ok(hosts[0]),
            Some(hosts) => Err(format!(
                "{name:?} runs on {} docker hosts ({}): a check cannot tell which one it means",
                hosts.len(),
                hosts
                    .iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Err(format!(
                "{name:?} is not a container this scenario runs (`docker run --name {name}`)"
            )),
        }
    }

    /// `name` is a container (on one host) or a lab host.
    fn subject(&self, name: &str) -> Result<(), String> {
        if self.lab_hosts.contains(name) {
            return Ok(());
        }
        self.container(name).map(drop).map_err(|e| {
            if self.containers.contains_key(name) {
                e
            } else {
                format!("{name:?} is neither a container this scenario runs nor one of its hosts")
            }
        })
    }

    /// Network `name` exists on `host` (the first docker host when `None`).
    fn network(&self, host: Option<&str>, name: &str) -> Result<(), String> {
        let host = host.unwrap_or(&self.docker_hosts[0]);
        let Some(networks) = self.networks.get(host) else {
            return Err(format!(
                "{host:?} is not a docker host of this scenario: expected one of {:?}",
                self.docker_hosts
            ));
        };
        if networks.contains(name) {
            Ok(())
        } else {
            Err(format!(
                "no network {name:?} on {host}: expected a predefined one (bridge, host, none) or one a `docker network create` step makes there"
            ))
        }
    }

    /// What an endpoint names: an address, a lab host, or a container (and the network picked
    /// with `@NET`, on the container's host).
    fn endpoint(&self, endpoint: &Endpoint) -> Result<(), String> {
        if endpoint.ip().is_some() {
            return Ok(());
        }
        if self.lab_hosts.contains(&endpoint.name) {
            return match &endpoint.network {
                Some(network) => Err(format!(
                    "{}@{network}: `@NETWORK` picks a container's address; {} is a host",
                    endpoint.name, endpoint.name
                )),
                None => Ok(()),
            };
        }
        if !self.containers.contains_key(&endpoint.name) {
            return Err(format!(
                "{:?} is neither a container this scenario runs, one of its hosts, nor an IP address",
                endpoint.name
            ));
        }
        let host = self.container(&endpoint.name)?;
        match &endpoint.network {
            Some(network) => self.network(Some(host), network),
            None => Ok(()),
        }
    }

    /// The containers a DNS question names: `id(C)`, or the address of `as PTR`.
    fn asked(&self, asked: &Asked) -> Result<(), String> {
        match asked {
            Asked::Name(_) => Ok(()),
            Asked::ShortId(container) => self.container(container).map(drop),
            Asked::Reverse(endpoint) => self.endpoint(endpoint),
        }
    }

    /// A published port's container.
    fn port(&self, port: &Port) -> Result<(), String> {
        match port {
            Port::Published { container, .. } => self.container(container).map(drop),
            Port::Number(_) => Ok(()),
        }
    }

    /// Checks the names an expectation uses; the error carries the index of the word at fault.
    fn check(&self, expectation: &Expectation) -> Result<(), (usize, String)> {
        let at = |word: usize| move |message: String| (word, message);
        match expectation {
            Expectation::Reach { from, to, port, .. }
            | Expectation::Http { from, to, port, .. } => {
                self.subject(from).map_err(at(0))?;
                self.endpoint(to).map_err(at(2))?;
                self.port(port).map_err(at(2))
            }
            Expectation::Ping { from, to, .. } => {
                self.subject(from).map_err(at(0))?;
                self.endpoint(to).map_err(at(2))
            }
            Expectation::Resolve {
                from,
                question,
                answers,
                ..
            } => {
                self.subject(from).map_err(at(0))?;
                self.asked(&question.name).map_err(at(2))?;
                for answer in answers.iter().flatten() {
                    self.endpoint(answer).map_err(at(4))?;
                }
                Ok(())
            }
            Expectation::NoResolve { from, question, .. } => {
                self.subject(from).map_err(at(0))?;
                self.asked(&question.name).map_err(at(2))
            }
            Expectation::Network { network, host, .. } => {
                if let Some(host) = host
                    && !self.docker_hosts.contains(host)
                {
                    return Err((
                        3,
                        format!(
                            "{host:?} is not a docker host of this scenario: expected one of {:?}",
                            self.docker_hosts
                        ),
                    ));
                }
                self.network(host.as_deref(), network).map_err(at(1))
            }
            Expectation::Container { container, .. }
            | Expectation::File { container, .. }
            | Expectation::Interfaces { container, .. }
            | Expectation::Mtu { container, .. }
            | Expectation::Route { container, .. } => {
                self.container(container).map(drop).map_err(at(1))
            }
        }
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
