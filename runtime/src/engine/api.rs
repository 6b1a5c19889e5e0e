//! The Engine API served in-process: an engine behind a lock answers [`EngineApi`] calls, one
//! at a time, as a daemon answers requests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use super::{Engine, EngineError};
use crate::api::body::{
    ContainerCreate, NetworkConnect, NetworkCreate, NetworkDisconnect, SwarmInit, SwarmJoin,
};
use crate::api::filter::{self, Filters};
use crate::api::{ApiError, ApiResult, EngineApi};

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        ApiError::new(error.0)
    }
}

/// What a client of a daemon that is not there reads.
const NOT_RUNNING: &str = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";

/// A prune's `until` as the creation time a network must come before.
fn cutoff(text: &str) -> ApiResult<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = filter::until_seconds(text, now.as_secs_f64()).map_err(ApiError::new)?;
    let at = UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0));
    Ok(super::ids::timestamp(at))
}

/// The engine, unless it was killed.
async fn alive(engine: &Mutex<Engine>) -> ApiResult<MutexGuard<'_, Engine>> {
    let engine = engine.lock().await;
    match engine.is_dead() {
        true => Err(ApiError::new(NOT_RUNNING)),
        false => Ok(engine),
    }
}

impl EngineApi for Mutex<Engine> {
    async fn create_network(&self, body: &NetworkCreate) -> ApiResult<String> {
        Ok(alive(self).await?.create_network(body).await?)
    }

    async fn remove_network(&self, name: &str) -> ApiResult<()> {
        Ok(alive(self).await?.remove_network(name).await?)
    }

    async fn connect(&self, network: &str, body: &NetworkConnect) -> ApiResult<()> {
        Ok(alive(self).await?.connect(network, body).await?)
    }

    async fn disconnect(&self, network: &str, body: &NetworkDisconnect) -> ApiResult<()> {
        let mut engine = alive(self).await?;
        Ok(engine
            .disconnect(network, &body.container, body.force)
            .await?)
    }

    async fn list_networks(&self, filters: &Filters) -> ApiResult<Vec<Value>> {
        filter::known(filters, &filter::NETWORK_FILTERS).map_err(ApiError::new)?;
        let engine = alive(self).await?;
        let mut networks = Vec::new();
        for name in engine.network_names() {
            let network = engine.inspect_network(&name)?;
            if filter::network_matches(&network, filters) {
                networks.push(network);
            }
        }
        Ok(networks)
    }

    /// Removes the unused local networks (never the predefined ones, nor `docker_gwbridge`)
    /// that pass `filters`, as dockerd's `NetworksPrune`, and logs the prune.
    async fn prune_networks(&self, filters: &Filters) -> ApiResult<Vec<String>> {
        filter::known(filters, &filter::PRUNE_FILTERS).map_err(ApiError::new)?;
        let until = match filters.get("until").map(Vec::as_slice) {
            None | Some([]) => None,
            Some([text]) => Some(cutoff(text)?),
            Some(_) => return Err(ApiError::new("more than one until filter specified")),
        };
        let mut engine = alive(self).await?;
        let mut deleted = Vec::new();
        for name in engine.network_names() {
            let network = engine.inspect_network(&name)?;
            let unused = network["Containers"]
                .as_object()
                .is_none_or(|c| c.is_empty());
            let custom = !filter::PREDEFINED.contains(&name.as_str()) && name != "docker_gwbridge";
            if unused
                && custom
                && network["Scope"] == "local"
                && filter::prune_matches(&network, filters, until.as_deref())
                && engine.remove_network(&name).await.is_ok()
            {
                deleted.push(name);
            }
        }
        engine.network_pruned();
        Ok(deleted)
    }

    async fn inspect_network(&self, name: &str) -> ApiResult<Value> {
        Ok(alive(self).await?.inspect_network(name)?)
    }

    async fn create_container(&self, name: &str, body: &ContainerCreate) -> ApiResult<String> {
        Ok(alive(self).await?.create_container(name, body)?)
    }

    async fn start_container(&self, name: &str) -> ApiResult<()> {
        Ok(alive(self).await?.start_container(name).await?)
    }

    async fn rename_container(&self, name: &str, new_name: &str) -> ApiResult<()> {
        Ok(alive(self).await?.rename_container(name, new_name)?)
    }

    async fn stop_container(&self, name: &str) -> ApiResult<()> {
        Ok(alive(self).await?.stop_container(name).await?)
    }

    /// Stops and starts it under one lock, as one request does.
    async fn restart_container(&self, name: &str) -> ApiResult<()> {
        let mut engine = alive(self).await?;
        engine.stop_container(name).await?;
        engine.start_container(name).await?;
        Ok(engine.log_container_event(name, "restart", &[])?)
    }

    async fn remove_container(&self, name: &str, force: bool) -> ApiResult<()> {
        Ok(alive(self).await?.remove_container(name, force).await?)
    }

    async fn inspect_container(&self, name: &str) -> ApiResult<Value> {
        Ok(alive(self).await?.inspect_container(name)?)
    }

    async fn info(&self) -> ApiResult<Value> {
        Ok(alive(self).await?.info())
    }

    async fn swarm_init(&self, body: &SwarmInit) -> ApiResult<String> {
        Ok(alive(self).await?.swarm_init(body).await?)
    }

    async fn swarm_join(&self, body: &SwarmJoin) -> ApiResult<()> {
        Ok(alive(self).await?.swarm_join(body).await?)
    }

    async fn swarm_leave(&self, force: bool) -> ApiResult<()> {
        Ok(alive(self).await?.swarm_leave(force).await?)
    }

    async fn swarm_inspect(&self) -> ApiResult<Value> {
        Ok(alive(self).await?.swarm_inspect()?)
    }
}
