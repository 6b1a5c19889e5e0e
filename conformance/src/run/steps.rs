//! Steps: a scenario's line becomes engine calls (docker lines, through the runtime's
//! dispatcher onto the target's Engine API) or lab actions (`drydock listen`, `drydock route`,
//! `drydock kill`),
//! and drydock's listeners open and close with the containers they live in.

use std::borrow::Cow;

use drydock_runtime::api::cli::DockerCommand;
use drydock_runtime::api::dispatch::{Change, dispatch};

use super::Status;
use super::execution::Execution;
use super::oracle::banner;
use super::scene::Container;
use crate::probe::{ListenKind, Listener};
use crate::scenario::{Command, Step, command, words};
use crate::targets::Target;

impl<T: Target> Execution<'_, T> {
    /// Runs a step and says whether it behaved as written (succeeded, or failed with the
    /// expected text).
    pub(super) async fn step(&mut self, step: &Step) -> Status {
        if let Some(range) = &step.docker
            && !range.contains(self.target.version())
        {
            return Status::Skip {
                reason: format!(
                    "runs on Docker {range}; the target is {}",
                    self.target.describe()
                ),
            };
        }
        let result = match self.with_ids(step).await {
            Ok(command) => self.perform(&step.host, &command).await,
            Err(e) => Err(e),
        };
        match (&step.fails, result) {
            (None, Ok(())) => Status::Pass,
            (None, Err(observed)) => Status::Fail {
                expected: "success".into(),
                observed: format!("error: {observed}"),
            },
            (Some(expected), Ok(())) => Status::Fail {
                expected: format!("an error containing {expected:?}"),
                observed: "success".into(),
            },
            (Some(expected), Err(observed)) if observed.contains(expected.as_str()) => Status::Pass,
            (Some(expected), Err(observed)) => Status::Fail {
                expected: format!("an error containing {expected:?}"),
                observed: format!("error: {observed}"),
            },
        }
    }

    /// The step's command, with each `id(NAME)` replaced by the Id of network NAME (or else
    /// container NAME) on the step's host, as the engine shows it now.
    async fn with_ids<'s>(&self, step: &'s Step) -> Result<Cow<'s, Command>, String> {
        if !step.line.contains("id(") {
            return Ok(Cow::Borrowed(&step.command));
        }
        let mut words = words::split(&step.line).map_err(|(_, e)| e)?;
        let mut replaced = false;
        for word in &mut words {
            if let Some((before, name, after)) = words::id_reference(&word.text) {
                let id = self.id_of(&step.host, name, true).await?;
                word.text = format!("{before}{id}{after}");
                replaced = true;
            }
        }
        match replaced {
            false => Ok(Cow::Borrowed(&step.command)),
            true => (command::parse(&words).map(Cow::Owned)).map_err(|e| e.message),
        }
    }

    /// The full Id of container `name` on `host`, or with `networks`, of network `name` there
    /// if there is one.
    pub(super) async fn id_of(
        &self,
        host: &str,
        name: &str,
        networks: bool,
    ) -> Result<String, String> {
        let network = match networks {
            true => self.target.inspect_network(host, name).await.ok(),
            false => None,
        };
        let json = match network {
            Some(json) => json,
            None => (self.target.inspect_container(host, name).await)
                .map_err(|e| format!("id({name}): {}", e.message))?,
        };
        (json["Id"].as_str().map(String::from)).ok_or_else(|| format!("id({name}): no Id"))
    }

    /// Does what a command asks; the error is the engine's message (one line per failed name).
    async fn perform(&mut self, host: &str, command: &Command) -> Result<(), String> {
        match command {
            Command::Docker { command, listen } => self.docker(host, command, listen).await,
            Command::Listen { host, kind, port } => {
                let netns = (self.lab.host(host)).ok_or_else(|| format!("no lab host {host}"))?;
                let listener = Listener::open(netns, *kind, *port, banner(host, *port))
                    .map_err(|e| format!("listen {kind}/{port} on {host}: {e}"))?;
                self.scene.host_listeners.push((host.clone(), listener));
                Ok(())
            }
            Command::Route {
                host,
                destination,
                via,
            } => {
                let netns = (self.lab.host(host)).ok_or_else(|| format!("no lab host {host}"))?;
                drydock_netsim::link::add_route(netns, *destination, *via)
                    .await
                    .map_err(|e| format!("route {destination} via {via} on {host}: {e}"))
            }
            Command::Kill { host } => {
                self.target.kill(host).await.map_err(|e| e.message)?;
                // Its containers died with it: their listeners go too (their sockets would
                // keep the dead namespaces alive).
                let names: Vec<String> = (self.scene.containers.keys())
                    .filter(|(h, _)| h == host)
                    .map(|(_, name)| name.clone())
                    .collect();
                for name in names {
                    self.scene.close(host, &name).await;
                }
                Ok(())
            }
        }
    }

    /// A docker line on `host`: the dispatcher's calls, then the listeners of the containers it
    /// started, stopped or removed.
    async fn docker(
        &mut self,
        host: &str,
        command: &DockerCommand,
        listen: &[(ListenKind, u16)],
    ) -> Result<(), String> {
        if let DockerCommand::Run(spec) | DockerCommand::Create(spec) = command {
            // Like Docker, a container that failed to start still exists (created); a name
            // already taken on this host keeps its container. A created one opens its
            // listeners when it starts.
            (self.scene.containers)
                .entry((host.to_string(), spec.name.clone()))
                .or_insert_with(|| Container {
                    listen: listen.to_vec(),
                    listeners: Vec::new(),
                });
        }
        let api = self.target.api(host).map_err(|e| e.message)?;
        let reply = match (&self.options.plugin, command) {
            (Some(plugin), DockerCommand::NetworkCreate(spec)) if spec.driver.is_none() => {
                // A `driver: any` scenario (the only kind a run with a plugin runs).
                let mut spec = spec.clone();
                spec.driver = Some(plugin.name.clone());
                dispatch(api, &DockerCommand::NetworkCreate(spec)).await
            }
            _ => dispatch(api, command).await,
        };
        let mut errors = reply.errors;
        for change in reply.changes {
            match change {
                Change::Started(name) => {
                    if let Err(e) = self.open_listeners(host, &name).await {
                        errors.push(e);
                    }
                }
                Change::Stopped(name) => self.scene.close(host, &name).await,
                Change::Removed(name) => self.scene.forget(host, &name).await,
                Change::Created(_) => {}
            }
        }
        if let DockerCommand::Rename {
            container,
            new_name,
        } = command
            && errors.is_empty()
            && self.scene.rename(host, container, new_name).await
            && let Err(e) = self.open_listeners(host, new_name).await
        {
            // Its listeners answer with its name: they open again under the new one.
            errors.push(e);
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors.join("\n")),
        }
    }

    /// Opens the `--listen` listeners of container `name`, which just started.
    async fn open_listeners(&mut self, host: &str, name: &str) -> Result<(), String> {
        let key = (host.to_string(), name.to_string());
        let listen = match self.scene.containers.get(&key) {
            Some(container) if !container.listen.is_empty() => container.listen.clone(),
            _ => return Ok(()),
        };
        let netns = (self.target.container_netns(host, name).await)
            .map_err(|e| format!("{name}'s namespace: {e}"))?;
        let mut listeners = Vec::new();
        for (kind, port) in listen {
            let listener = Listener::open(&netns, kind, port, banner(name, port))
                .map_err(|e| format!("--listen {kind}/{port} in {name}: {e}"))?;
            listeners.push(listener);
        }
        if let Some(container) = self.scene.containers.get_mut(&key) {
            container.listeners = listeners;
        }
        Ok(())
    }
}
