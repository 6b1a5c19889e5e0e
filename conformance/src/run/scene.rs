//! What a scenario's steps made that its checks need: the containers it runs, with the
//! listeners drydock keeps open in them, and the listeners on lab hosts.

use std::collections::BTreeMap;

use crate::probe::{ListenKind, Listener};

/// A container the scenario runs.
pub(super) struct Container {
    /// `--listen`: what drydock opens in it whenever it starts.
    pub(super) listen: Vec<(ListenKind, u16)>,
    /// The listeners open now (while it runs).
    pub(super) listeners: Vec<Listener>,
}

/// The scene: containers by (docker host, name), since two hosts may each run one of a name,
/// and `drydock listen` listeners with their lab host.
#[derive(Default)]
pub(super) struct Scene {
    pub(super) containers: BTreeMap<(String, String), Container>,
    pub(super) host_listeners: Vec<(String, Listener)>,
}

impl Scene {
    /// The container this scenario runs under `name`: its docker host and its record. An
    /// error when none runs, or when several docker hosts run one of that name.
    pub(super) fn container(&self, name: &str) -> Result<(&str, &Container), String> {
        let mut found = (self.containers.iter())
            .filter(|((_, n), _)| n == name)
            .map(|((host, _), c)| (host.as_str(), c));
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(one),
            (Some((a, _)), Some((b, _))) => Err(format!(
                "{name:?} runs on {a} and {b}: the check cannot tell which one it means"
            )),
            (None, _) => Err(format!("{name:?} was not run by this scenario")),
        }
    }

    /// The docker host of container `name` (see [`Scene::container`]).
    pub(super) fn host_of(&self, name: &str) -> Result<&str, String> {
        self.container(name).map(|(host, _)| host)
    }

    /// True when some docker host runs a container named `name`.
    pub(super) fn runs(&self, name: &str) -> bool {
        self.containers.keys().any(|(_, n)| n == name)
    }

    /// Closes the listeners of container `name` on `host` (it stopped).
    pub(super) async fn close(&mut self, host: &str, name: &str) {
        let key = (host.to_string(), name.to_string());
        if let Some(container) = self.containers.get_mut(&key) {
            for listener in std::mem::take(&mut container.listeners) {
                listener.close().await;
            }
        }
    }

    /// Forgets container `name` on `host` and closes its listeners (it was removed).
    pub(super) async fn forget(&mut self, host: &str, name: &str) {
        let key = (host.to_string(), name.to_string());
        if let Some(container) = self.containers.remove(&key) {
            for listener in container.listeners {
                listener.close().await;
            }
        }
    }

    /// Container `name` on `host` is now `new_name` (`docker rename`): its listeners, which
    /// answer with its old name, are closed; whether it had any open (to open again).
    pub(super) async fn rename(&mut self, host: &str, name: &str, new_name: &str) -> bool {
        let Some(mut container) = self
            .containers
            .remove(&(host.to_string(), name.to_string()))
        else {
            return false;
        };
        let listening = !container.listeners.is_empty();
        for listener in std::mem::take(&mut container.listeners) {
            listener.close().await;
        }
        self.containers
            .insert((host.to_string(), new_name.to_string()), container);
        listening
    }

    /// Closes every listener: their sockets would keep namespaces alive past teardown.
    pub(super) async fn close_all(&mut self) {
        for container in std::mem::take(&mut self.containers).into_values() {
            for listener in container.listeners {
                listener.close().await;
            }
        }
        for (_, listener) in std::mem::take(&mut self.host_listeners) {
            listener.close().await;
        }
    }
}
