//! The engine's event log (`docker events`): what it did to containers and networks, as
//! dockerd 20.10 logs it (`daemon/events.go`): the last 256 events, kept for `--since`, and a
//! broadcast to the streams that follow.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

use super::Engine;
use super::model::Network;
use crate::api::body::ContainerCreate;

/// How many events dockerd keeps for `--since`.
const KEPT: usize = 256;

/// One event, serialized as dockerd's `events.Message` (the deprecated `status`, `id` and
/// `from` of container events included, as 20.10 still sends them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The action, for container events (deprecated field).
    #[serde(rename = "status", skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The container's id, for container events (deprecated field).
    #[serde(rename = "id", skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The container's image, for container events (deprecated field).
    #[serde(rename = "from", skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `container` or `network`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// What happened: `create`, `start`, `die`, `connect`, `exec_start: sh -c ...`...
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local` (swarm events are not logged).
    pub scope: String,
    /// When, in seconds since the epoch.
    pub time: i64,
    /// When, in nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

/// The object of an event: its id and attributes (`name`, `image`, labels, `exitCode`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The container's or network's id (empty for a prune).
    #[serde(rename = "ID")]
    pub id: String,
    /// Its attributes, in the order Go prints a map's keys.
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// An engine's event log.
#[derive(Debug)]
pub struct Events {
    kept: Mutex<VecDeque<Event>>,
    sender: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            kept: Mutex::new(VecDeque::with_capacity(KEPT)),
            sender: broadcast::channel(1024).0,
        }
    }
}

impl Events {
    /// Logs an event of type `kind` now.
    pub fn log(&self, kind: &str, action: &str, actor: Actor) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let container = kind == "container";
        let deprecated = |text: &str| match container {
            true => text.to_string(),
            false => String::new(),
        };
        let event = Event {
            status: deprecated(action),
            id: deprecated(&actor.id),
            from: deprecated(actor.attributes.get("image").map_or("", String::as_str)),
            kind: kind.to_string(),
            action: action.to_string(),
            actor,
            scope: "local".into(),
            time: now.as_secs() as i64,
            time_nano: now.as_nanos() as i64,
        };
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(event.clone());
        // Sent under the lock, so that a subscriber sees each event once: kept or sent.
        let _ = self.sender.send(event);
    }

    /// The kept events from `since` (nanoseconds) to `until` (when given), oldest first, and
    /// a receiver of the events logged after them.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = self.sender.subscribe();
        // As dockerd: nothing from the past unless asked for.
        let past = match (since, until) {
            (None, None) => Vec::new(),
            _ => kept
                .iter()
                .filter(|e| since.is_none_or(|s| e.time_nano >= s))
                .filter(|e| until.is_none_or(|u| e.time_nano <= u))
                .cloned()
                .collect(),
        };
        (past, receiver)
    }
}

impl Engine {
    /// The engine's event log.
    pub fn events(&self) -> std::sync::Arc<Events> {
        std::sync::Arc::clone(&self.events)
    }

    /// Logs a `network prune` (dockerd reports nothing reclaimed).
    pub fn network_pruned(&self) {
        let reclaimed = std::collections::BTreeMap::from([("reclaimed".into(), "0".into())]);
        let actor = Actor {
            id: String::new(),
            attributes: reclaimed,
        };
        self.events.log("network", "prune", actor);
    }

    /// Logs `action` on container `index`, with `attributes` besides its labels, image and
    /// name (dockerd's `LogContainerEventWithAttributes`).
    pub(super) fn container_event(&self, index: usize, action: &str, attributes: &[(&str, &str)]) {
        let container = &self.containers[index];
        let actor = container_actor(
            &container.id,
            &container.name,
            &container.config,
            attributes,
        );
        self.events.log("container", action, actor);
    }

    /// Logs the `destroy` of a container dockerd made and dropped within its create (a
    /// refused legacy link): no `create` before it.
    pub(super) fn destroyed_in_create(&mut self, name: &str, config: &ContainerCreate) {
        let id = self.ids.id();
        let actor = container_actor(&id, name, config, &[]);
        self.events.log("container", "destroy", actor);
    }

    /// Logs `action` on network `index`, with `attributes` besides its name and driver.
    pub(super) fn network_event(&self, index: usize, action: &str, attributes: &[(&str, &str)]) {
        self.events.log(
            "network",
            action,
            network_actor(&self.networks[index], attributes),
        );
    }
}

fn container_actor(
    id: &str,
    name: &str,
    config: &ContainerCreate,
    attributes: &[(&str, &str)],
) -> Actor {
    let mut all: BTreeMap<String, String> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.extend(config.labels.clone());
    if !config.image.is_empty() {
        all.insert("image".into(), config.image.clone());
    }
    all.insert("name".into(), name.to_string());
    Actor {
        id: id.to_string(),
        attributes: all,
    }
}

fn network_actor(network: &Network, attributes: &[(&str, &str)]) -> Actor {
    let mut all: BTreeMap<String, String> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.insert("name".into(), network.name.clone());
    all.insert("type".into(), network.driver.name().to_string());
    Actor {
        id: network.id.clone(),
        attributes: all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(name: &str) -> Actor {
        Actor {
            id: "c1".into(),
            attributes: BTreeMap::from([
                ("name".into(), name.into()),
                ("image".into(), "busybox".into()),
            ]),
        }
    }

    #[test]
    fn container_events_carry_the_deprecated_fields_and_network_events_do_not() {
        let events = Events::default();
        events.log("container", "start", actor("web"));
        events.log("network", "create", actor("app"));
        let (past, _) = events.subscribe(Some(0), None);
        let json: Vec<serde_json::Value> = past
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        assert_eq!(json[0]["status"], "start");
        assert_eq!(json[0]["id"], "c1");
        assert_eq!(json[0]["from"], "busybox");
        assert_eq!(json[0]["scope"], "local");
        assert!(json[1].get("status").is_none() && json[1].get("from").is_none());
        assert_eq!(json[1]["Actor"]["Attributes"]["name"], "app");
    }

    #[test]
    fn the_past_is_sent_only_when_asked_for_and_at_most_256_are_kept() {
        let events = Events::default();
        for i in 0..300 {
            events.log("container", &format!("a{i}"), actor("web"));
        }
        assert!(events.subscribe(None, None).0.is_empty());
        let (past, _) = events.subscribe(Some(0), None);
        assert_eq!(past.len(), 256);
        assert_eq!(past[0].action, "a44");
        let until = past[9].time_nano;
        let (early, _) = events.subscribe(None, Some(until));
        assert!(early.iter().all(|e| e.time_nano <= until));
        assert!(early.len() >= 10);
    }

    #[tokio::test]
    async fn a_subscriber_receives_what_is_logged_after_it_subscribed() {
        let events = Events::default();
        events.log("container", "create", actor("web"));
        let (_, mut receiver) = events.subscribe(None, None);
        events.log("container", "start", actor("web"));
        assert_eq!(receiver.recv().await.unwrap().action, "start");
    }
}
