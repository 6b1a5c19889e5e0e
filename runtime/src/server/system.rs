//! `/_ping`, `/version`, `/info`, and the one image the reference engine has: the busybox
//! stand-in every target maps `busybox` to (`/images/json`, `/images/{name}/json`; a pull is
//! refused, as an offline dockerd refuses it).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bollard_stubs::models::ImageSummary;
use serde_json::{Value, json};

use super::{API_VERSION, Answer, MIN_API_VERSION, Refusal, Served};
use crate::api::EngineApi;

/// The Docker release whose behavior the engine has.
const DOCKER_VERSION: &str = "20.10.24";
/// The busybox stand-in's id (`sha256:` and 64 hex digits, stable).
pub(super) const IMAGE_ID: &str =
    "sha256:6e0b3a7f1d8c4e2b9a5f7c3d1e8b6a4f2c0d9e7b5a3f1c8e6d4b2a0f9e7c5d3b";
/// Its names.
const IMAGE_NAMES: [&str; 2] = ["busybox", "busybox:latest"];

pub(super) fn routes() -> Router<Arc<Served>> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/images/json", get(images))
        .route("/images/{name}/json", get(image))
        .route("/images/create", post(pull))
}

/// `GET|HEAD /_ping`: "OK" and the headers clients negotiate the API version from.
async fn ping() -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    let pairs = [
        ("API-Version", API_VERSION),
        ("Docker-Experimental", "false"),
        ("OSType", "linux"),
        ("Builder-Version", "1"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
    (headers, "OK")
}

/// `GET /version` (the swagger model of 1.41 has no room for the components' details, which
/// the CLI prints: JSON by hand).
async fn version() -> Json<Value> {
    let arch = std::env::consts::ARCH.replace("x86_64", "amd64");
    Json(json!({
        "Platform": {"Name": format!("drydock {}", env!("CARGO_PKG_VERSION"))},
        "Components": [{
            "Name": "Engine",
            "Version": format!("{DOCKER_VERSION} (drydock reference engine)"),
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "GitCommit": "drydock",
                "GoVersion": "none (Rust)",
                "Os": "linux",
                "Arch": arch,
                "KernelVersion": kernel_release(),
                "Experimental": "false",
                "BuildTime": "",
            },
        }],
        "Version": DOCKER_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "drydock",
        "GoVersion": "none (Rust)",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel_release(),
        "Experimental": false,
    }))
}

/// `uname -r`.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_default()
}

/// `GET /info`: the engine's swarm state with what `docker info` prints around it.
async fn info(State(served): State<Arc<Served>>) -> Answer<Json<Value>> {
    let mut info = served.engine.info().await?;
    let engine = served.engine.lock().await;
    let states: Vec<Value> = (engine.container_names().iter())
        .filter_map(|name| engine.inspect_container(name).ok())
        .map(|c| c["State"]["Status"].clone())
        .collect();
    let count = |status: &str| states.iter().filter(|s| *s == status).count();
    let more = json!({
        "Name": engine.hostname(),
        "Containers": states.len(),
        "ContainersRunning": count("running"),
        "ContainersPaused": 0,
        "ContainersStopped": states.len() - count("running"),
        "Images": 1,
        "Driver": "drydock",
        "ServerVersion": DOCKER_VERSION,
        "OperatingSystem": "drydock lab host",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "KernelVersion": kernel_release(),
        "NCPU": std::thread::available_parallelism().map_or(1, usize::from),
        "Plugins": {
            "Volume": [],
            "Network": ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"],
            "Log": [],
        },
        "Labels": [],
        "Warnings": null,
        // What a container's namespace has, so that the CLI warns of nothing missing.
        "MemoryLimit": true, "SwapLimit": true, "KernelMemory": true, "OomKillDisable": true,
        "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true,
        "PidsLimit": true, "IPv4Forwarding": true, "BridgeNfIptables": true,
        "BridgeNfIp6tables": true,
    });
    if let (Some(info), Some(more)) = (info.as_object_mut(), more.as_object()) {
        for (key, value) in more {
            info.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Ok(Json(info))
}

/// Whether `name` names the busybox stand-in (by name or by id).
pub(super) fn is_image(name: &str) -> bool {
    let hex = IMAGE_ID.trim_start_matches("sha256:");
    let name_hex = name.trim_start_matches("sha256:");
    IMAGE_NAMES.contains(&name) || (name_hex.len() >= 4 && hex.starts_with(name_hex))
}

/// `GET /images/json`.
async fn images() -> Json<Vec<ImageSummary>> {
    Json(vec![ImageSummary {
        id: IMAGE_ID.into(),
        parent_id: String::new(),
        repo_tags: vec!["busybox:latest".into()],
        repo_digests: Vec::new(),
        created: 0,
        size: 0,
        shared_size: -1,
        virtual_size: 0,
        labels: HashMap::new(),
        containers: -1,
    }])
}

/// `GET /images/{name}/json`.
async fn image(Path(name): Path<String>) -> Answer<Json<Value>> {
    if !is_image(&name) {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("No such image: {name}"),
        ));
    }
    Ok(Json(json!({
        "Id": IMAGE_ID,
        "RepoTags": ["busybox:latest"],
        "RepoDigests": [],
        "Parent": "",
        "Comment": "drydock's stand-in: the machine's busybox",
        "Created": "1970-01-01T00:00:00Z",
        "Os": "linux",
        "Architecture": std::env::consts::ARCH.replace("x86_64", "amd64"),
        "Size": 0,
        "VirtualSize": 0,
        "Config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "RootFS": {"Type": "layers", "Layers": []},
    })))
}

/// `POST /images/create`: no registry is reachable from a lab.
async fn pull(Query(query): Query<HashMap<String, String>>) -> Refusal {
    let image = query.get("fromImage").cloned().unwrap_or_default();
    let tag = query.get("tag").cloned().unwrap_or_default();
    Refusal::new(
        StatusCode::NOT_FOUND,
        format!(
            "pull access denied for {image}:{tag}: drydock's reference engine has only busybox (the machine's), and no registry is reachable from a lab"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_answers_to_its_names_and_id_prefixes() {
        assert!(is_image("busybox"));
        assert!(is_image("busybox:latest"));
        assert!(is_image("sha256:6e0b3a7f"));
        assert!(is_image("6e0b"));
        assert!(!is_image("6e"));
        assert!(!is_image("nginx"));
        assert_eq!(IMAGE_ID.len(), 7 + 64);
    }
}
