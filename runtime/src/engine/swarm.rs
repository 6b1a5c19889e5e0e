//! Swarm mode: the node this engine is in a swarm, and what only a swarm has (global networks).

use serde_json::{Value, json};

use super::{Engine, EngineError, EngineResult};
use crate::api::body::{SwarmInit, SwarmJoin};

impl Engine {
    /// `docker info`, as far as it concerns networking and swarm mode.
    pub fn info(&self) -> Value {
        json!({
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": false,
                "Error": "",
                "RemoteManagers": null,
            },
        })
    }

    /// `docker swarm init`.
    pub async fn swarm_init(&mut self, _body: &SwarmInit) -> EngineResult<String> {
        Err(EngineError::new(
            "swarm mode is not built into the reference engine yet",
        ))
    }

    /// `docker swarm join`.
    pub async fn swarm_join(&mut self, _body: &SwarmJoin) -> EngineResult<()> {
        Err(EngineError::new(
            "swarm mode is not built into the reference engine yet",
        ))
    }

    /// `docker swarm leave`.
    pub async fn swarm_leave(&mut self, _force: bool) -> EngineResult<()> {
        Err(EngineError::new("This node is not part of a swarm"))
    }

    /// Dies at once, as a node's daemon killed: every container goes (its namespace with it), no
    /// swarm is left on the way out, and every call after fails as a daemon that is not there.
    pub async fn kill(&mut self) {
        let names: Vec<String> = self.containers.iter().map(|c| c.name.clone()).collect();
        for name in names {
            let _ = self.remove_container(&name, true).await;
        }
    }

    /// `GET /swarm`.
    pub fn swarm_inspect(&self) -> EngineResult<Value> {
        Err(EngineError::new(
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        ))
    }
}
