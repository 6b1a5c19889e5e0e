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
use crate::api::filter::{NETWORK_FILTERS, PRUNE_FILTERS};

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

/// `POST /networks/prune?filters=`: removes the local networks no container uses that pass
/// the filters (never the predefined ones, nor swarm's), and names them.
async fn prune(
    State(served): State<Arc<Served>>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<Json<NetworkPruneResponse>> {
    let filters = filters(&query)?;
    known_filters(&filters, &PRUNE_FILTERS)?;
    let deleted = served.engine.prune_networks(&filters).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: Some(deleted),
    }))
}
