//! `/networks/...`: create, list (`docker network ls [--filter]`), inspect, connect,
//! disconnect, remove and prune.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use bollard_stubs::models::NetworkPruneResponse;
use serde_json::{Value, json};

use super::{Answer, Served, body, filters, known_filters};
use crate::api::EngineApi;
use crate::api::body::{NetworkConnect, NetworkCreate, NetworkDisconnect};
use crate::api::filter::{Filters, NETWORK_FILTERS};

/// The networks every engine has, which `prune` and `rm` leave alone.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

pub(super) fn routes() -> Router<Arc<Served>> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// `POST /networks/create`: 201, the id and no warning.
async fn create(
    State(served): State<Arc<Served>>,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<Value>)> {
    let spec: NetworkCreate = body(&bytes)?;
    let id = served.engine.create_network(&spec).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warning": ""}))))
}

/// `GET /networks?filters=`.
async fn list(
    State(served): State<Arc<Served>>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<Json<Vec<Value>>> {
    let filters = filters(&query)?;
    known_filters(&filters, &NETWORK_FILTERS)?;
    Ok(Json(served.engine.list_networks(&filters).await?))
}

/// `GET /networks/{id}`.
async fn inspect(State(served): State<Arc<Served>>, Path(id): Path<String>) -> Answer<Json<Value>> {
    Ok(Json(served.engine.inspect_network(&id).await?))
}

/// `DELETE /networks/{id}`: 204.
async fn remove(State(served): State<Arc<Served>>, Path(id): Path<String>) -> Answer<StatusCode> {
    served.engine.remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /networks/{id}/connect`.
async fn connect(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer<StatusCode> {
    let spec: NetworkConnect = body(&bytes)?;
    served.engine.connect(&id, &spec).await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/{id}/disconnect`.
async fn disconnect(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer<StatusCode> {
    let spec: NetworkDisconnect = body(&bytes)?;
    served.engine.disconnect(&id, &spec).await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/prune`: removes the local networks no container uses (never the
/// predefined ones, nor swarm's), and names them.
async fn prune(State(served): State<Arc<Served>>) -> Answer<Json<NetworkPruneResponse>> {
    let networks = served.engine.list_networks(&Filters::new()).await?;
    let mut deleted = Vec::new();
    for network in networks {
        let name = network["Name"].as_str().unwrap_or_default().to_string();
        let unused = network["Containers"]
            .as_object()
            .is_none_or(|c| c.is_empty());
        let local = network["Scope"] == "local";
        let kept = PREDEFINED.contains(&name.as_str()) || name == "docker_gwbridge";
        if unused && local && !kept && served.engine.remove_network(&name).await.is_ok() {
            deleted.push(name);
        }
    }
    let events = served.engine.lock().await.events();
    let reclaimed = std::collections::BTreeMap::from([("reclaimed".into(), "0".into())]);
    let actor = crate::engine::Actor {
        id: String::new(),
        attributes: reclaimed,
    };
    events.log("network", "prune", actor);
    Ok(Json(NetworkPruneResponse {
        networks_deleted: Some(deleted),
    }))
}
