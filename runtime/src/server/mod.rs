//! Docker Engine API 1.41 (Docker 20.10's), served by a reference engine on a unix socket, so
//! that the real docker CLI, docker-py, Compose... talk to it: version negotiation (`/_ping`,
//! `/version`, `/vX.Y/` prefixes), containers (`containers.rs`, `signals.rs`), networks (`networks.rs`), the
//! event log (`events.rs`), the system and the busybox stand-in image (`system.rs`), exec and logs streams (`streams.rs`),
//! swarm mode as far as networking needs it (`swarm.rs`).
//! Refusals carry dockerd's status and `{"message": ...}` (`status.rs`); an endpoint outside
//! this subset answers 501 naming itself, never hangs.
//!
//! The engine knows containers as namespaces; what runs in them (their commands, `exec`,
//! `logs`) belongs to whoever holds the engine, through [`Processes`].

mod containers;
mod events;
pub mod failed_start;
mod networks;
pub mod pty;
mod signals;
pub mod status;
mod streams;
mod swarm;
mod system;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::Mutex;
use tower::ServiceExt;

use crate::api::filter::Filters;

use crate::api::ApiError;
use crate::engine::{Engine, EngineError};

pub use axum::serve::Listener;

/// The API version served (Docker 20.10's).
pub const API_VERSION: &str = "1.41";
/// The oldest API version dockerd 20.10 accepts.
pub const MIN_API_VERSION: &str = "1.12";

/// What runs in an engine's containers, kept by whoever holds the engine (the lab's holder
/// process runs containers' commands; a conformance target runs none).
pub trait Processes: Send + Sync + 'static {
    /// Whether containers' commands run at all (attaching to one needs them). Containers are
    /// known by their full id, which a rename does not change.
    fn run_commands(&self) -> bool {
        true
    }
    /// Container `id` was created to run `workload` (an error undoes the creation).
    fn created(&self, id: &str, workload: Workload) -> Result<(), String>;
    /// Container `id` was started: its command starts.
    fn started(&self, engine: &Engine, id: &str) -> Result<(), String>;
    /// Sends `signal` to the init of container `id`'s command; false when none runs.
    fn signal(&self, id: &str, signal: i32) -> bool;
    /// Container `id` was stopped: everything in it ends.
    fn stopped(&self, id: &str);
    /// Container `id` was removed.
    fn removed(&self, id: &str);
    /// What its command wrote so far (`docker logs`).
    fn logs(&self, id: &str) -> String;
    /// Where what a client attached with `stdin` types goes: the container's terminal, or
    /// its stdin (handed over once: the command reads the end when the client's input ends,
    /// as with the CLI's `StdinOnce`); none without `-i` or `-t`.
    fn input(&self, id: &str) -> Option<std::fs::File>;
    /// Resizes container `id`'s terminal; nothing without one.
    fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), String>;
    /// A process running `command` in container `id` (its namespace, its files), not
    /// started yet.
    fn exec(
        &self,
        engine: &Engine,
        id: &str,
        command: &[String],
    ) -> Result<std::process::Command, String>;
}

/// What a container runs, as created: its command and how it talks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// The command (the image's default, `sh`, when none was given).
    pub argv: Vec<String>,
    /// `-i`: its stdin stays open for clients that attach.
    pub open_stdin: bool,
    /// `-t`: it runs on a terminal.
    pub tty: bool,
}

/// An engine whose containers run nothing (the conformance targets': probes and listeners
/// enter the namespaces themselves).
#[derive(Debug, Default)]
pub struct NoProcesses;

impl Processes for NoProcesses {
    fn run_commands(&self) -> bool {
        false
    }
    fn created(&self, _: &str, _: Workload) -> Result<(), String> {
        Ok(())
    }
    fn started(&self, _: &Engine, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn signal(&self, _: &str, _: i32) -> bool {
        false
    }
    fn stopped(&self, _: &str) {}
    fn removed(&self, _: &str) {}
    fn logs(&self, _: &str) -> String {
        String::new()
    }
    fn input(&self, _: &str) -> Option<std::fs::File> {
        None
    }
    fn resize(&self, _: &str, _: u16, _: u16) -> Result<(), String> {
        Ok(())
    }
    fn exec(&self, _: &Engine, name: &str, _: &[String]) -> Result<std::process::Command, String> {
        Err(format!(
            "{name}: this engine runs no processes in its containers (a conformance target); `drydock lab up` serves exec"
        ))
    }
}

/// An engine and what runs in it, as the server sees them.
pub struct Served {
    /// The engine, one request at a time.
    pub engine: Arc<Mutex<Engine>>,
    /// What runs in its containers.
    pub processes: Arc<dyn Processes>,
    /// Exec instances, by id.
    execs: std::sync::Mutex<HashMap<String, streams::Exec>>,
}

impl Served {
    /// `engine` served with `processes`.
    pub fn new(engine: Arc<Mutex<Engine>>, processes: Arc<dyn Processes>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            processes,
            execs: std::sync::Mutex::new(HashMap::new()),
        })
    }
}

/// Serves `served` on `listener` (a [`tokio::net::UnixListener`], or any axum listener)
/// until the task is dropped or aborted.
pub async fn serve<L>(listener: L, served: Arc<Served>) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let router = Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(signals::routes())
        .merge(events::routes())
        .merge(networks::routes())
        .merge(streams::routes())
        .merge(swarm::routes())
        .fallback(not_served)
        .with_state(served);
    let app = router.map_request(strip_version);
    axum::serve(listener, tower::make::Shared::new(app)).await
}

/// The path without its `/vX.Y` prefix; a version this server cannot speak is refused as
/// dockerd refuses it (the request goes to a path that answers so).
fn strip_version(mut request: Request) -> Request {
    let path = request.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        return request;
    };
    let (version, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !version.chars().all(|c| c.is_ascii_digit() || c == '.') || version.is_empty() {
        return request;
    }
    let refusal = version_refusal(version);
    let tail = match refusal {
        Some(_) => format!("/_refused/{version}"),
        None => tail.to_string(),
    };
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if let Ok(uri) = format!("{tail}{query}").parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request
}

/// dockerd's refusal of API version `version`, if it refuses it.
fn version_refusal(version: &str) -> Option<String> {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    };
    let asked = parse(version)?;
    if asked > parse(API_VERSION)? {
        return Some(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        ));
    }
    if asked < parse(MIN_API_VERSION)? {
        return Some(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        ));
    }
    None
}

/// A request outside the subset served: 501, naming it.
async fn not_served(request: Request) -> Response {
    let path = request.uri().path();
    if let Some(version) = path.strip_prefix("/_refused/") {
        let message = version_refusal(version).unwrap_or_default();
        return Refusal::new(StatusCode::BAD_REQUEST, message).into_response();
    }
    Refusal::new(
        StatusCode::NOT_IMPLEMENTED,
        format!(
            "{} {path} is not served by drydock's reference engine (it serves Docker Engine API {API_VERSION} for networking: containers, networks, exec, logs, images of the busybox stand-in)",
            request.method()
        ),
    )
    .into_response()
}

/// An answer other than success: dockerd's status and `{"message": ...}`.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A refusal whose status dockerd would give its message.
    fn of(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(status::status_of(&message), message)
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self::of(error.message)
    }
}

impl From<EngineError> for Refusal {
    fn from(error: EngineError) -> Self {
        Self::of(error.0)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"message": self.message}))).into_response()
    }
}

/// Result of a handler.
type Answer<T> = Result<T, Refusal>;

/// A JSON request body, refused as dockerd refuses one it cannot read.
fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Answer<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid JSON in the request body at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// A query flag as Docker reads them: `1`, `true`, `True`...
fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// The `filters` query parameter (`{"name":{"app":true}}`, or the older `{"name":["app"]}`):
/// each filter's values.
fn filters(query: &HashMap<String, String>) -> Answer<Filters> {
    let Some(text) = query.get("filters").filter(|t| !t.is_empty()) else {
        return Ok(Filters::new());
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("invalid filter '{text}': {e}"),
        )
    })?;
    let mut out = Filters::new();
    for (key, values) in value.as_object().into_iter().flatten() {
        let values: Vec<String> = match values {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        out.insert(key.clone(), values);
    }
    Ok(out)
}

/// A process's exit code as Docker (and a shell) reports it: 128 + the signal that killed it.
pub fn exit_code(status: &std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    (status.code().map(i64::from))
        .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
        .unwrap_or(1)
}

/// Refuses filters outside `known`, with dockerd's text.
fn known_filters(filters: &Filters, known: &[&str]) -> Answer<()> {
    crate::api::filter::known(filters, known).map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_past_the_served_one_are_refused_as_dockerd_does() {
        assert_eq!(version_refusal("1.41"), None);
        assert_eq!(version_refusal("1.24"), None);
        assert_eq!(
            version_refusal("1.51").as_deref(),
            Some("client version 1.51 is too new. Maximum supported API version is 1.41")
        );
        assert!(version_refusal("1.11").unwrap().contains("too old"));
    }

    #[test]
    fn version_prefixes_are_stripped_and_queries_kept() {
        let request = |path: &str| Request::builder().uri(path).body(axum::body::Body::empty());
        let stripped = strip_version(request("/v1.41/containers/json?all=1").unwrap());
        assert_eq!(stripped.uri(), "/containers/json?all=1");
        let stripped = strip_version(request("/_ping").unwrap());
        assert_eq!(stripped.uri(), "/_ping");
        let stripped = strip_version(request("/v1.99/info").unwrap());
        assert_eq!(stripped.uri(), "/_refused/1.99");
    }

    #[test]
    fn filters_come_in_both_of_dockers_shapes() {
        let query = |text: &str| HashMap::from([("filters".to_string(), text.to_string())]);
        let new = filters(&query(r#"{"name":{"app":true}}"#)).unwrap();
        assert_eq!(new["name"], ["app"]);
        let old = filters(&query(r#"{"name":["app","db"]}"#)).unwrap();
        assert_eq!(old["name"], ["app", "db"]);
        let refused = filters(&query("{nope")).unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let unknown = known_filters(&new, &["id"]).unwrap_err();
        assert_eq!(unknown.message, "Invalid filter 'name'");
    }

    #[test]
    fn garbage_bodies_are_refused_naming_where() {
        let refused = body::<crate::api::body::NetworkCreate>(b"{\"Name\": }").unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(
            refused.message.contains("line 1 column 10"),
            "{}",
            refused.message
        );
        let empty: crate::api::body::NetworkCreate = body(b"").unwrap();
        assert_eq!(empty.name, "");
    }
}
