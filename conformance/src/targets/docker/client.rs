//! The Engine API of one private dockerd, as [`EngineApi`] calls: the typed request bodies go
//! out as the docker CLI sends them, with the run's label added to what they create.

use std::collections::BTreeMap;

use drydock_runtime::api::body::{
    ContainerCreate, NetworkConnect, NetworkCreate, NetworkDisconnect, SwarmInit, SwarmJoin,
};
use drydock_runtime::api::filter::{self, Filters};
use drydock_runtime::api::{ApiResult, EngineApi};
use serde_json::Value;

use super::http::{Api, encode};
use super::image;

/// Grace period of `docker stop` between SIGTERM and SIGKILL (Docker's default is 10 s).
const STOP_GRACE_SECONDS: u32 = 1;

/// A dockerd's API, marking what it creates with a run's labels.
#[derive(Debug, Clone)]
pub struct Client {
    api: Api,
    labels: BTreeMap<String, String>,
}

impl Client {
    /// A client of `api` that adds `labels` to every network and container it creates.
    pub(super) fn new(api: Api, labels: BTreeMap<String, String>) -> Self {
        Self { api, labels }
    }

    /// A client of the Engine API served on `socket` (any engine's), labelling nothing.
    pub fn over_socket(socket: &std::path::Path) -> Self {
        Self::new(Api::new(socket), BTreeMap::new())
    }

    fn labelled(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        labels
            .clone()
            .into_iter()
            .chain(self.labels.clone())
            .collect()
    }
}

fn json(body: &impl serde::Serialize) -> Value {
    serde_json::to_value(body).expect("request bodies serialize")
}

impl EngineApi for Client {
    async fn create_network(&self, body: &NetworkCreate) -> ApiResult<String> {
        let body = NetworkCreate {
            labels: self.labelled(&body.labels),
            ..body.clone()
        };
        let created = self
            .api
            .call_json("POST", "/networks/create", Some(&json(&body)))
            .await?;
        Ok(created["Id"].as_str().unwrap_or_default().to_string())
    }

    async fn remove_network(&self, name: &str) -> ApiResult<()> {
        let path = format!("/networks/{}", encode(name));
        self.api.call("DELETE", &path, None).await?;
        Ok(())
    }

    async fn connect(&self, network: &str, body: &NetworkConnect) -> ApiResult<()> {
        let path = format!("/networks/{}/connect", encode(network));
        self.api.call("POST", &path, Some(&json(body))).await?;
        Ok(())
    }

    async fn disconnect(&self, network: &str, body: &NetworkDisconnect) -> ApiResult<()> {
        let path = format!("/networks/{}/disconnect", encode(network));
        self.api.call("POST", &path, Some(&json(body))).await?;
        Ok(())
    }

    async fn list_networks(&self, filters: &Filters) -> ApiResult<Vec<Value>> {
        let path = match filters.is_empty() {
            true => "/networks".to_string(),
            false => format!("/networks?filters={}", encode(&filter::to_query(filters))),
        };
        let list = self.api.call_json("GET", &path, None).await?;
        Ok(list.as_array().cloned().unwrap_or_default())
    }

    async fn prune_networks(&self, filters: &Filters) -> ApiResult<Vec<String>> {
        let path = format!(
            "/networks/prune?filters={}",
            encode(&filter::to_query(filters))
        );
        let pruned = self.api.call_json("POST", &path, None).await?;
        let names = pruned["NetworksDeleted"].as_array().into_iter().flatten();
        Ok(names.filter_map(|n| n.as_str().map(String::from)).collect())
    }

    async fn inspect_network(&self, name: &str) -> ApiResult<Value> {
        let path = format!("/networks/{}", encode(name));
        Ok(self.api.call_json("GET", &path, None).await?)
    }

    /// The image must be the run's busybox (checked after the CLI's own checks, as the CLI
    /// looks for the image last).
    async fn create_container(&self, name: &str, body: &ContainerCreate) -> ApiResult<String> {
        image::check_name(&body.image)
            .map_err(|e| drydock_runtime::api::ApiError::new(e.message))?;
        let body = ContainerCreate {
            labels: self.labelled(&body.labels),
            ..body.clone()
        };
        let path = match name {
            "" => "/containers/create".to_string(),
            name => format!("/containers/create?name={}", encode(name)),
        };
        let created = self
            .api
            .call_json("POST", &path, Some(&json(&body)))
            .await?;
        Ok(created["Id"].as_str().unwrap_or(name).to_string())
    }

    async fn start_container(&self, name: &str) -> ApiResult<()> {
        let path = format!("/containers/{}/start", encode(name));
        self.api.call("POST", &path, None).await?;
        Ok(())
    }

    async fn rename_container(&self, name: &str, new_name: &str) -> ApiResult<()> {
        let path = format!(
            "/containers/{}/rename?name={}",
            encode(name),
            encode(new_name)
        );
        self.api.call("POST", &path, None).await?;
        Ok(())
    }

    /// busybox's `sleep` as PID 1 ignores SIGTERM, so Docker's 10 s grace always ends in
    /// SIGKILL (exit 137): one second of grace reaches the same state without the wait.
    async fn stop_container(&self, name: &str) -> ApiResult<()> {
        let path = format!("/containers/{}/stop?t={STOP_GRACE_SECONDS}", encode(name));
        self.api.call("POST", &path, None).await?;
        Ok(())
    }

    /// With the same one-second grace as [`stop_container`](Self::stop_container).
    async fn restart_container(&self, name: &str) -> ApiResult<()> {
        let path = format!(
            "/containers/{}/restart?t={STOP_GRACE_SECONDS}",
            encode(name)
        );
        self.api.call("POST", &path, None).await?;
        Ok(())
    }

    async fn remove_container(&self, name: &str, force: bool) -> ApiResult<()> {
        let path = format!("/containers/{}?force={}", encode(name), u8::from(force));
        self.api.call("DELETE", &path, None).await?;
        Ok(())
    }

    async fn inspect_container(&self, name: &str) -> ApiResult<Value> {
        let path = format!("/containers/{}/json", encode(name));
        Ok(self.api.call_json("GET", &path, None).await?)
    }

    async fn info(&self) -> ApiResult<Value> {
        Ok(self.api.call_json("GET", "/info", None).await?)
    }

    async fn swarm_init(&self, body: &SwarmInit) -> ApiResult<String> {
        let id = (self.api)
            .call_json("POST", "/swarm/init", Some(&json(body)))
            .await?;
        Ok(id.as_str().unwrap_or_default().to_string())
    }

    async fn swarm_join(&self, body: &SwarmJoin) -> ApiResult<()> {
        self.api
            .call("POST", "/swarm/join", Some(&json(body)))
            .await?;
        Ok(())
    }

    async fn swarm_leave(&self, force: bool) -> ApiResult<()> {
        let path = format!("/swarm/leave?force={}", u8::from(force));
        self.api.call("POST", &path, None).await?;
        Ok(())
    }

    async fn swarm_inspect(&self) -> ApiResult<Value> {
        Ok(self.api.call_json("GET", "/swarm", None).await?)
    }
}
