//! Parsing and validating a scenario file: every error names `file:line:column`.

use std::collections::{BTreeMap, BTreeSet};

use drydock_netsim::LocatedError;
use drydock_netsim::features::Feature;
use drydock_runtime::api::cli::DockerCommand;
use serde_saphyr::{Location, Spanned};

use super::file::{CaptureFile, ExpectFile, File, LineOr, PluginFile, StepFile, SwarmFile};
use super::known::{Known, PREDEFINED};
use super::{
    Capture, CapturePoint, Command, Expect, Filter, PluginRun, Quantifier, ROUTER, Scenario, Step,
    Swarm, command, expect, words,
};
use crate::version::Range;

pub(super) struct Parser<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a str,
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

    pub(super) fn scenario(&self, file: File) -> Result<Scenario, LocatedError> {
        let required = |value: Option<String>, field: &str, why: &str| {
            value.ok_or_else(|| self.whole(format!("missing field `{field}`: {why}")))
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
        let kernel = (file.kernel.iter())
            .map(|name| self.feature(name))
            .collect::<Result<Vec<_>, _>>()?;
        let any_driver = match &file.driver {
            None => false,
            Some(driver) if driver.value == "any" => true,
            Some(driver) => {
                let message = format!(
                    "{:?}: expected `any` (the scenario holds whatever driver its networks are made with)",
                    driver.value
                );
                return Err(self.error(&driver.referenced, message));
            }
        };
        let plugins = (file.plugins.iter())
            .map(|plugin| self.plugin(&plugin.value))
            .collect::<Result<Vec<_>, _>>()?;
        let named: Vec<Spanned<String>> = (file.hosts.iter().flatten())
            .chain(&file.external)
            .cloned()
            .collect();
        let (hosts, mut lab_hosts) = self.hosts(file.hosts, &file.external)?;
        let routed = self.routed(&file.routed, &lab_hosts, &named)?;
        if !routed.is_empty() {
            lab_hosts.insert(ROUTER.to_string());
        }
        let swarm = (file.swarm.as_ref())
            .map(|swarm| self.swarm(swarm, &hosts))
            .transpose()?;
        let external: Vec<String> = file.external.into_iter().map(|h| h.value).collect();
        let mut known = Known {
            docker_hosts: hosts.clone(),
            swarm: swarm.iter().flat_map(|s| s.nodes().cloned()).collect(),
            lab_hosts,
            containers: BTreeMap::new(),
            networks: (hosts.iter())
                .map(|h| {
                    (
                        h.clone(),
                        PREDEFINED.iter().map(|n| n.to_string()).collect(),
                    )
                })
                .collect(),
        };
        for node in swarm.iter().flat_map(Swarm::nodes) {
            known.join_swarm(node);
        }
        let steps = self.steps(&file.steps, &hosts, &mut known)?;
        let expectations = self.expectations(&file.expect, &known)?;
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
            any_driver,
            plugins,
            hosts,
            external,
            swarm,
            routed,
            steps,
            expectations,
            captures,
        })
    }

    /// `routed: [HOST...]`: lab hosts behind the router, each once; no host may then be named
    /// like the router.
    fn routed(
        &self,
        routed: &[Spanned<String>],
        lab_hosts: &BTreeSet<String>,
        named: &[Spanned<String>],
    ) -> Result<Vec<String>, LocatedError> {
        let mut names: Vec<String> = Vec::new();
        for host in routed {
            if !lab_hosts.contains(&host.value) {
                let message = format!(
                    "{:?} is not a host of this scenario: expected one of {lab_hosts:?} (from `hosts` or `external`)",
                    host.value
                );
                return Err(self.error(&host.referenced, message));
            }
            if names.contains(&host.value) {
                let message = format!("host {:?} is listed twice", host.value);
                return Err(self.error(&host.referenced, message));
            }
            names.push(host.value.clone());
        }
        if !names.is_empty()
            && let Some(clash) = named.iter().find(|h| h.value == ROUTER)
        {
            let message = format!(
                "{ROUTER:?} is the router a scenario with `routed` hosts gets: name this host otherwise"
            );
            return Err(self.error(&clash.referenced, message));
        }
        Ok(names)
    }

    /// `swarm: {managers: [...], workers: [...]}`: docker hosts, each once, one manager at least.
    fn swarm(&self, swarm: &Spanned<SwarmFile>, hosts: &[String]) -> Result<Swarm, LocatedError> {
        let file = &swarm.value;
        if file.managers.is_empty() {
            return Err(self.error(
                &swarm.referenced,
                "a swarm needs a manager: `swarm: {managers: [h1], workers: [h2]}`".into(),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for host in file.managers.iter().chain(&file.workers) {
            if !hosts.contains(&host.value) {
                let message = format!(
                    "{:?} is not a docker host of this scenario: expected one of {hosts:?}",
                    host.value
                );
                return Err(self.error(&host.referenced, message));
            }
            if seen.contains(&host.value.as_str()) {
                let message = format!("{:?} is listed twice in the swarm", host.value);
                return Err(self.error(&host.referenced, message));
            }
            seen.push(&host.value);
        }
        let names = |list: &[Spanned<String>]| list.iter().map(|h| h.value.clone()).collect();
        Ok(Swarm {
            managers: names(&file.managers),
            workers: names(&file.workers),
            at: self.at(&swarm.referenced),
        })
    }

    /// An error about the whole file (pointing at its start).
    fn whole(&self, message: String) -> LocatedError {
        LocatedError::new(1, 1, message, self.text, self.path)
    }

    /// A `plugins:` entry: a name dockerd would ask a plugin for, a command saying where to
    /// listen.
    fn plugin(&self, plugin: &PluginFile) -> Result<PluginRun, LocatedError> {
        let name = &plugin.name.value;
        if let Err(message) = drydock_runtime::plugin::check_name(name) {
            return Err(self.error(&plugin.name.referenced, message));
        }
        PluginRun::parse(name, &plugin.run.value)
            .map_err(|message| self.error(&plugin.run.referenced, message))
    }

    /// A `kernel:` entry.
    fn feature(&self, name: &Spanned<String>) -> Result<Feature, LocatedError> {
        Feature::from_name(&name.value).ok_or_else(|| {
            let known: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
            let known = known.join(", ");
            let message = format!("{:?}: expected a kernel feature ({known})", name.value);
            self.error(&name.referenced, message)
        })
    }

    /// The docker hosts (`[h1]` unless given), and every lab host's name, each checked once.
    fn hosts(
        &self,
        hosts: Option<Vec<Spanned<String>>>,
        external: &[Spanned<String>],
    ) -> Result<(Vec<String>, BTreeSet<String>), LocatedError> {
        let hosts = match hosts {
            Some(hosts) if hosts.is_empty() => {
                return Err(self
                    .whole("`hosts` is empty: a scenario needs at least one docker host".into()));
            }
            Some(hosts) => hosts,
            None => vec![Spanned::new(
                "h1".to_string(),
                Location::UNKNOWN,
                Location::UNKNOWN,
            )],
        };
        let mut names = BTreeSet::new();
        for host in hosts.iter().chain(external) {
            drydock_netsim::topology::check_lab_name(&host.value)
                .map_err(|m| self.error(&host.referenced, m.replace("lab name", "host name")))?;
            if !names.insert(host.value.clone()) {
                return Err(self.error(
                    &host.referenced,
                    format!("host {:?} is listed twice", host.value),
                ));
            }
        }
        Ok((hosts.into_iter().map(|h| h.value).collect(), names))
    }

    /// The steps, noting in `known` the containers and networks they make.
    fn steps(
        &self,
        items: &[Spanned<LineOr<StepFile>>],
        hosts: &[String],
        known: &mut Known,
    ) -> Result<Vec<Step>, LocatedError> {
        let mut steps = Vec::new();
        for item in items {
            let step = self.step(item, hosts)?;
            let at = match &item.value {
                LineOr::Map(s) => s.run.referenced,
                LineOr::Line(_) => item.referenced,
            };
            if let Command::Kill { host } = &step.command
                && !hosts.contains(host)
            {
                return Err(self.error(
                    &at,
                    format!(
                        "{host:?} is not a docker host of this scenario: expected one of {hosts:?}"
                    ),
                ));
            }
            if let Command::Listen { host, .. } | Command::Route { host, .. } = &step.command
                && !known.lab_hosts.contains(host)
            {
                return Err(self.error(
                    &at,
                    format!(
                        "{host:?} is not a host of this scenario: expected one of {:?}",
                        known.lab_hosts
                    ),
                ));
            }
            self.id_references(&step, &at, known)?;
            match &step.command {
                // A run expected to fail may still leave its container (created), as Docker does.
                Command::Docker {
                    command: DockerCommand::Run(spec) | DockerCommand::Create(spec),
                    ..
                } => {
                    (known.containers.entry(spec.name.clone()))
                        .or_default()
                        .insert(step.host.clone());
                }
                Command::Docker {
                    command: DockerCommand::NetworkCreate(spec),
                    ..
                } => {
                    // A swarm-scoped network made on a node is the swarm's: checks may name
                    // it on any node.
                    let overlay = spec.driver.as_deref() == Some("overlay");
                    let on: Vec<String> = match overlay && known.swarm.contains(&step.host) {
                        true => known.swarm.iter().cloned().collect(),
                        false => vec![step.host.clone()],
                    };
                    for host in on {
                        (known.networks.entry(host))
                            .or_default()
                            .insert(spec.name.clone());
                    }
                }
                Command::Docker {
                    command: DockerCommand::SwarmInit(_),
                    ..
                } => known.join_swarm(&step.host),
                // Checks may name the container by its new name.
                Command::Docker {
                    command: DockerCommand::Rename { new_name, .. },
                    ..
                } => {
                    (known.containers.entry(new_name.clone()))
                        .or_default()
                        .insert(step.host.clone());
                }
                _ => {}
            }
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(self.whole("no `steps`: a scenario does something first".into()));
        }
        Ok(steps)
    }

    /// Each `id(NAME)` of a step names one network or one container made on its host so far.
    fn id_references(&self, step: &Step, at: &Location, known: &Known) -> Result<(), LocatedError> {
        let words = self.words(&step.line, at)?;
        for (index, word) in words.iter().enumerate() {
            let Some((_, name, _)) = words::id_reference(&word.text) else {
                continue;
            };
            let network = known.network(Some(&step.host), name).is_ok();
            let container = known.container(name) == Ok(step.host.as_str());
            let message = match (network, container) {
                (true, false) | (false, true) => continue,
                (true, true) => format!(
                    "id({name}): {name:?} names both a network and a container on {}: rename one",
                    step.host
                ),
                (false, false) => format!(
                    "id({name}): no network or container {name:?} on {} before this step",
                    step.host
                ),
            };
            return Err(self.word_error(at, &words, index, message));
        }
        Ok(())
    }

    /// The expectations, their names checked against what the steps make.
    fn expectations(
        &self,
        items: &[Spanned<LineOr<ExpectFile>>],
        known: &Known,
    ) -> Result<Vec<Expect>, LocatedError> {
        let mut expectations = Vec::new();
        for item in items {
            let (line, at, range) = match &item.value {
                LineOr::Line(line) => (line.clone(), item.referenced, None),
                LineOr::Map(e) => (
                    e.expect.value.clone(),
                    e.expect.referenced,
                    e.docker.as_ref().map(|d| self.range(d)).transpose()?,
                ),
            };
            let words = self.words(&line, &at)?;
            let (words_of_check, within) = expect::within(&words)
                .map_err(|e| self.word_error(&at, &words, e.word, e.message))?;
            let expectation = expect::parse(&words[..words_of_check])
                .map_err(|e| self.word_error(&at, &words, e.word, e.message))?;
            known
                .check(&expectation)
                .map_err(|(word, message)| self.word_error(&at, &words, word, message))?;
            expectations.push(Expect {
                line,
                expectation,
                docker: range,
                within,
                at: self.at(&at),
            });
        }
        Ok(expectations)
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
