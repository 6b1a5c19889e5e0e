//! `/swarm...` and `/nodes...`: init, join, leave, inspect and the nodes, as far as networking
//! needs swarm mode.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::Value;

use super::{Answer, Refusal, Served, body, flag};
use crate::api::EngineApi;
use crate::api::body::{SwarmInit, SwarmJoin};

pub(super) fn routes() -> Router<Arc<Served>> {
    Router::new()
        .route("/swarm", get(inspect))
        .route("/swarm/init", post(init))
        .route("/swarm/join", post(join))
        .route("/swarm/leave", post(leave))
        .route("/nodes", get(nodes))
        .route("/nodes/{id}", get(node))
}

/// `POST /swarm/init`: the new node's id, as a JSON string.
async fn init(State(served): State<Arc<Served>>, bytes: Bytes) -> Answer<Json<String>> {
    let spec: SwarmInit = body(&bytes)?;
    Ok(Json(served.engine.swarm_init(&spec).await?))
}

/// `POST /swarm/join`.
async fn join(State(served): State<Arc<Served>>, bytes: Bytes) -> Answer<()> {
    let spec: SwarmJoin = body(&bytes)?;
    Ok(served.engine.swarm_join(&spec).await?)
}

/// `POST /swarm/leave?force=`.
async fn leave(
    State(served): State<Arc<Served>>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<()> {
    Ok(served.engine.swarm_leave(flag(&query, "force")).await?)
}

/// `GET /swarm` (managers only).
async fn inspect(State(served): State<Arc<Served>>) -> Answer<Json<Value>> {
    Ok(Json(served.engine.swarm_inspect().await?))
}

/// `GET /nodes` (managers only): `docker node ls`.
async fn nodes(State(served): State<Arc<Served>>) -> Answer<Json<Vec<Value>>> {
    let engine = served.engine.lock().await;
    Ok(Json(engine.swarm_nodes().await?))
}

/// `GET /nodes/{id}`: a node by id, id prefix or hostname.
async fn node(State(served): State<Arc<Served>>, Path(id): Path<String>) -> Answer<Json<Value>> {
    let engine = served.engine.lock().await;
    let nodes = engine.swarm_nodes().await?;
    let matches = |n: &&Value| {
        n["ID"].as_str().is_some_and(|i| i.starts_with(id.as_str()))
            || n["Description"]["Hostname"] == id.as_str()
    };
    (nodes.iter().find(matches).cloned().map(Json))
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("node {id} not found")))
}
