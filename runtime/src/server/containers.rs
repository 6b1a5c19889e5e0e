//! `/containers/...`: create, start, rename, remove, inspect, list (`docker ps`) and wait, on
//! the engine; what runs in a container follows through [`super::Processes`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use bollard_stubs::models::{
    ContainerCreateResponse, ContainerSummaryInner, ContainerSummaryInnerHostConfig,
    ContainerSummaryInnerNetworkSettings, Port, PortTypeEnum,
};
use serde_json::{Value, json};

use super::{Answer, Refusal, Served, body, filters, flag, known_filters};
use crate::api::EngineApi;
use crate::api::body::ContainerCreate;
use crate::api::filter::{Filters, label_matches};

pub(super) fn routes() -> Router<Arc<Served>> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}", delete(remove))
}

/// `POST /containers/create?name=NAME`: 201 and the id; a name is made up when none is given,
/// as dockerd does.
async fn create(
    State(served): State<Arc<Served>>,
    Query(query): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<ContainerCreateResponse>)> {
    let spec: ContainerCreate = body(&bytes)?;
    // Without a name, the engine makes one up.
    let name = query.get("name").map_or("", String::as_str);
    let id = served.engine.create_container(name, &spec).await?;
    let command = [spec.entrypoint.clone(), spec.cmd.clone()]
        .into_iter()
        .flatten()
        .flatten()
        .collect::<Vec<String>>();
    let argv = match command.is_empty() {
        true => vec!["sh".to_string()],
        false => command,
    };
    let workload = super::Workload {
        argv,
        open_stdin: spec.open_stdin,
        tty: spec.tty,
    };
    if let Err(message) = served.processes.created(&id, workload) {
        let _ = served.engine.remove_container(&id, true).await;
        return Err(Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, message));
    }
    let created = ContainerCreateResponse {
        id,
        warnings: Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// The container's full id (what its processes are known by) and whether it runs.
pub(super) async fn state(served: &Served, id: &str) -> Answer<(String, bool)> {
    let inspect = served.engine.inspect_container(id).await?;
    let full = inspect["Id"].as_str().unwrap_or(id);
    Ok((full.to_string(), inspect["State"]["Running"] == true))
}

/// `POST /containers/{id}/start`: 204, or 304 when it already runs.
pub(super) async fn start(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
) -> Answer<StatusCode> {
    let (name, running) = state(&served, &id).await?;
    if running {
        return Ok(StatusCode::NOT_MODIFIED);
    }
    served.engine.start_container(&id).await?;
    let mut engine = served.engine.lock().await;
    if let Err(message) = served.processes.started(&engine, &name) {
        // As with Docker, a container whose command cannot start stays, not running, with
        // the exit code and the error runc's failure gives it.
        let code = super::failed_start::exit_code(&message, 128);
        let _ = engine.fail_start(&id, code, &message).await;
        return Err(Refusal::new(StatusCode::BAD_REQUEST, message));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/rename?name=NEW`.
async fn rename(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<StatusCode> {
    let new_name = query.get("name").map_or("", String::as_str);
    served.engine.rename_container(&id, new_name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{id}?force=`.
async fn remove(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<StatusCode> {
    let (name, _) = state(&served, &id).await?;
    served
        .engine
        .remove_container(&id, flag(&query, "force"))
        .await?;
    served.processes.removed(&name);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /containers/{id}/json`.
async fn inspect(State(served): State<Arc<Served>>, Path(id): Path<String>) -> Answer<Json<Value>> {
    Ok(Json(served.engine.inspect_container(&id).await?))
}

/// `POST /containers/{id}/wait?condition=`: its exit code once it does not run
/// (`not-running`, the default), once it exits next (`next-exit`: `docker run` waits so
/// before it starts the container), or once it is gone (`removed`: `docker run --rm`), read
/// from the engine's events (`die`, `destroy`). The status goes out at once and the answer
/// when it comes, as dockerd does: the CLI waits for the headers before it starts the
/// container.
async fn wait(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<axum::response::Response> {
    let condition = query.get("condition").cloned().unwrap_or_default();
    // Subscribed under the engine's lock, with the state read: no event is missed between.
    let (first, mut events) = {
        let engine = served.engine.lock().await;
        let (_, events) = engine.events().subscribe(None, None);
        (engine.inspect_container(&id)?, events)
    };
    let full = first["Id"].as_str().unwrap_or(&id).to_string();
    let mut code = first["State"]["ExitCode"].as_i64().unwrap_or(0);
    let done_at_once = condition.as_str() != "next-exit"
        && condition.as_str() != "removed"
        && first["State"]["Running"] != true;
    let answer = async move {
        if !done_at_once {
            let removed = condition == "removed";
            code = (exit_code_when(&mut events, &full, removed, code).await).unwrap_or(code);
        }
        let body = json!({"StatusCode": code, "Error": null}).to_string();
        Ok::<_, std::io::Error>(axum::body::Bytes::from(body + "\n"))
    };
    let body = axum::body::Body::from_stream(futures::stream::once(answer));
    Ok(axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid response"))
}

/// The exit code of container `id` from the engine's `events`: at its next `die`, or with
/// `removed` at its `destroy` (that of the last `die` before it, `code` if none); none if the
/// events end first (they do not while the engine runs).
pub(super) async fn exit_code_when(
    events: &mut tokio::sync::broadcast::Receiver<crate::engine::Event>,
    id: &str,
    removed: bool,
    mut code: i64,
) -> Option<i64> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return None,
        };
        if event.kind != "container" || event.actor.id != id {
            continue;
        }
        match event.action.as_str() {
            "die" => {
                let exit = event.actor.attributes.get("exitCode");
                code = exit.and_then(|c| c.parse().ok()).unwrap_or(code);
                if !removed {
                    return Some(code);
                }
            }
            "destroy" => return Some(code),
            _ => {}
        }
    }
}

/// `GET /containers/json?all=&filters=`: `docker ps`, newest first.
async fn list(
    State(served): State<Arc<Served>>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<Json<Vec<ContainerSummaryInner>>> {
    let filters = filters(&query)?;
    known_filters(&filters, &["id", "name", "status", "label", "network"])?;
    let all = flag(&query, "all") || filters.contains_key("status");
    let engine = served.engine.lock().await;
    let mut summaries: Vec<ContainerSummaryInner> = (engine.container_names().iter().rev())
        .filter_map(|name| engine.inspect_container(name).ok())
        .filter(|c| all || c["State"]["Running"] == true)
        .filter(|c| matches_filters(c, &filters))
        .map(|c| summary(&c))
        .collect();
    if let Some(last) = query.get("limit").and_then(|l| l.parse::<usize>().ok())
        && last > 0
    {
        summaries.truncate(last);
    }
    Ok(Json(summaries))
}

/// Whether an inspected container passes every filter (each filter: any of its values).
fn matches_filters(container: &Value, filters: &Filters) -> bool {
    let text = |pointer: &str| container.pointer(pointer).and_then(Value::as_str);
    let name = text("/Name").unwrap_or_default().trim_start_matches('/');
    let id = text("/Id").unwrap_or_default();
    let status = text("/State/Status").unwrap_or_default();
    let labels = container["Config"]["Labels"].as_object();
    let networks = container["NetworkSettings"]["Networks"].as_object();
    filters.iter().all(|(key, values)| {
        values.iter().any(|wanted| match key.as_str() {
            "name" => name.contains(wanted.trim_start_matches('/')),
            "id" => id.starts_with(wanted.as_str()),
            "status" => status == wanted,
            "label" => label_matches(labels, wanted),
            "network" => networks.is_some_and(|n| {
                n.iter()
                    .any(|(net, ep)| net == wanted || ep["NetworkID"].as_str() == Some(wanted))
            }),
            _ => false,
        })
    })
}

/// A `docker ps` row from an inspected container.
fn summary(container: &Value) -> ContainerSummaryInner {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let config = &container["Config"];
    let command = [&config["Entrypoint"], &config["Cmd"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let networks = serde_json::from_value(container["NetworkSettings"]["Networks"].clone()).ok();
    ContainerSummaryInner {
        id: Some(text(&container["Id"])),
        names: Some(vec![text(&container["Name"])]),
        image: Some(text(&config["Image"])),
        image_id: Some(super::system::IMAGE_ID.into()),
        command: Some(command),
        created: Some(unix_time(&text(&container["Created"]))),
        ports: Some(ports(&container["NetworkSettings"]["Ports"])),
        size_rw: None,
        size_root_fs: None,
        labels: serde_json::from_value(config["Labels"].clone()).ok(),
        state: Some(text(&container["State"]["Status"])),
        status: Some(status(&container["State"])),
        host_config: Some(ContainerSummaryInnerHostConfig {
            network_mode: Some(text(&container["HostConfig"]["NetworkMode"])),
        }),
        network_settings: Some(ContainerSummaryInnerNetworkSettings { networks }),
        mounts: Some(Vec::new()),
    }
}

/// `NetworkSettings.Ports` (`{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`) as
/// `docker ps` reads them: one row per binding, exposed ports without one.
fn ports(ports: &Value) -> Vec<Port> {
    let mut rows = Vec::new();
    for (key, bindings) in ports.as_object().into_iter().flatten() {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(private_port) = port.parse::<i64>() else {
            continue;
        };
        let typ = Some(match proto {
            "udp" => PortTypeEnum::UDP,
            "sctp" => PortTypeEnum::SCTP,
            _ => PortTypeEnum::TCP,
        });
        let bound: Vec<&Value> = bindings.as_array().into_iter().flatten().collect();
        if bound.is_empty() {
            rows.push(Port {
                ip: None,
                private_port,
                public_port: None,
                typ,
            });
        }
        for binding in bound {
            rows.push(Port {
                ip: binding["HostIp"].as_str().map(String::from),
                private_port,
                public_port: binding["HostPort"].as_str().and_then(|p| p.parse().ok()),
                typ,
            });
        }
    }
    rows
}

/// `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`, as dockerd words a state.
fn status(state: &Value) -> String {
    let since = |field: &str| {
        let at = unix_time(state[field].as_str().unwrap_or_default());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        human_duration((now - at).max(0) as u64)
    };
    match state["Status"].as_str().unwrap_or_default() {
        "running" => format!("Up {}", since("StartedAt")),
        "exited" => format!(
            "Exited ({}) {} ago",
            state["ExitCode"].as_i64().unwrap_or(0),
            since("FinishedAt")
        ),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}

/// go-units' `HumanDuration`, which `docker ps` shows.
fn human_duration(seconds: u64) -> String {
    let (minutes, hours) = (seconds / 60, (seconds + 1800) / 3600);
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// Seconds since the epoch of an RFC 3339 time (`2026-12-06T05:28:16.123456789Z`); 0 when
/// it cannot be read (Docker's zero time).
fn unix_time(text: &str) -> i64 {
    let Some((date, time)) = text.split_once('T') else {
        return 0;
    };
    let numbers =
        |s: &str, sep: char| -> Vec<i64> { s.split(sep).filter_map(|n| n.parse().ok()).collect() };
    let (d, t) = (numbers(date, '-'), numbers(&time[..time.len().min(8)], ':'));
    let (&[y, m, day], &[hh, mm, ss]) = (d.as_slice(), t.as_slice()) else {
        return 0;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(0, "Less than a second")]
    #[case(1, "1 second")]
    #[case(59, "59 seconds")]
    #[case(60, "About a minute")]
    #[case(150, "2 minutes")]
    #[case(3600, "About an hour")]
    #[case(7200, "2 hours")]
    #[case(3 * 86_400, "3 days")]
    fn durations_read_as_docker_ps_shows_them(#[case] seconds: u64, #[case] text: &str) {
        assert_eq!(human_duration(seconds), text);
    }

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(unix_time("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix_time("2026-12-06T05:28:16.123456789Z"), 1_796_534_896);
        assert_eq!(unix_time("0001-01-01T00:00:00Z"), -62_135_596_800);
        assert_eq!(unix_time("garbage"), 0);
    }

    #[test]
    fn published_and_exposed_ports_become_ps_rows() {
        let ports = ports(&json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
            "53/udp": null,
        }));
        let rows: Vec<(i64, Option<i64>, Option<PortTypeEnum>)> = ports
            .iter()
            .map(|p| (p.private_port, p.public_port, p.typ))
            .collect();
        assert_eq!(
            rows,
            [
                (53, None, Some(PortTypeEnum::UDP)),
                (80, Some(8080), Some(PortTypeEnum::TCP))
            ]
        );
    }

    #[test]
    fn filters_match_name_status_label_and_network() {
        let container = json!({
            "Name": "/web", "Id": "abc123", "State": {"Status": "running"},
            "Config": {"Labels": {"tier": "front"}},
            "NetworkSettings": {"Networks": {"app": {"NetworkID": "n1"}}},
        });
        let f = |key: &str, value: &str| Filters::from([(key.to_string(), vec![value.into()])]);
        assert!(matches_filters(&container, &f("name", "we")));
        assert!(!matches_filters(&container, &f("name", "db")));
        assert!(matches_filters(&container, &f("id", "abc")));
        assert!(matches_filters(&container, &f("status", "running")));
        assert!(!matches_filters(&container, &f("status", "exited")));
        assert!(matches_filters(&container, &f("label", "tier=front")));
        assert!(matches_filters(&container, &f("label", "tier")));
        assert!(!matches_filters(&container, &f("label", "tier=back")));
        assert!(matches_filters(&container, &f("network", "app")));
        assert!(matches_filters(&container, &f("network", "n1")));
    }
}
