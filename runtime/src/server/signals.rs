//! `/containers/{id}/stop`, `/restart` and `/kill`: signals to what runs in a container, as
//! dockerd sends them. `stop` sends SIGTERM, waits the grace period (`t`, 10 s by default) for
//! the command to end, then SIGKILLs it; `kill` sends its signal (SIGKILL by default) and the
//! container ends when its command does. An engine whose containers run nothing ends them at
//! once, with the events dockerd logs for busybox's PID 1 (which ignores SIGTERM).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::broadcast::Receiver;

use super::containers::{exit_code_when, start, state};
use super::{Answer, Refusal, Served};
use crate::api::EngineApi;
use crate::engine::Event;

/// How long `stop` waits for a command to end after SIGTERM, unless told (Docker's default).
const GRACE: Duration = Duration::from_secs(10);
/// How long `kill` waits for the container to stop after SIGKILL (dockerd waits so).
const KILLED: Duration = Duration::from_secs(2);
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

pub(super) fn routes() -> Router<Arc<Served>> {
    Router::new()
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
}

/// `POST /containers/{id}/stop?t=`: 204, or 304 when it was not running.
async fn stop(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<StatusCode> {
    let (full, running) = state(&served, &id).await?;
    if !running {
        return Ok(StatusCode::NOT_MODIFIED);
    }
    if !served.processes.run_commands() {
        served.engine.stop_container(&full).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    // A negative grace waits for as long as it takes, as dockerd's.
    let grace = match query.get("t").and_then(|t| t.parse::<i64>().ok()) {
        None => Some(GRACE),
        Some(seconds) => u64::try_from(seconds).ok().map(Duration::from_secs),
    };
    let mut events = signal(&served, &full, SIGTERM).await?;
    let ended = died(&mut events, &full);
    let ended = match grace {
        Some(grace) => tokio::time::timeout(grace, ended).await.is_ok(),
        None => ended.await,
    };
    let mut engine = served.engine.lock().await;
    if !ended {
        engine.log_container_event(&full, "kill", &[("signal", "9")])?;
        served.processes.stopped(&full);
        engine
            .container_exited(&full, 128 + i64::from(SIGKILL))
            .await?;
    }
    // Gone already when it was made with --rm.
    let _ = engine.log_container_event(&full, "stop", &[]);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/restart?t=`.
async fn restart(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    query: Query<HashMap<String, String>>,
) -> Answer<StatusCode> {
    stop(State(served.clone()), Path(id.clone()), query).await?;
    start(State(served.clone()), Path(id.clone())).await?;
    (served.engine.lock().await).log_container_event(&id, "restart", &[])?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/kill?signal=`: the signal goes to the container's command; with
/// SIGKILL, the answer waits (2 s at most) for the container to stop. A stopped container is
/// refused as dockerd refuses it.
async fn kill(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<StatusCode> {
    let number = match query.get("signal").map(String::as_str) {
        None | Some("") => SIGKILL,
        Some(text) => signal_number(text).ok_or_else(|| {
            Refusal::new(StatusCode::BAD_REQUEST, format!("Invalid signal: {text}"))
        })?,
    };
    let (full, running) = state(&served, &id).await?;
    if !running || !served.processes.run_commands() {
        let mut engine = served.engine.lock().await;
        engine.kill_container(&id, number).await?;
        served.processes.stopped(&full);
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut events = signal(&served, &full, number).await?;
    if number == SIGKILL {
        let _ = tokio::time::timeout(KILLED, died(&mut events, &full)).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Logs a `kill` of container `id` with `number` and sends it to its command: a receiver of
/// the events from then on. A command that is gone already (or never started) is ended as
/// the signal would have.
async fn signal(served: &Served, id: &str, number: i32) -> Answer<Receiver<Event>> {
    let mut engine = served.engine.lock().await;
    let (_, events) = engine.events().subscribe(None, None);
    engine.log_container_event(id, "kill", &[("signal", &number.to_string())])?;
    if !served.processes.signal(id, number) {
        served.processes.stopped(id);
        engine.container_exited(id, 128 + i64::from(number)).await?;
    }
    Ok(events)
}

/// Whether container `id` dies (its next `die` event) before the events end.
async fn died(events: &mut Receiver<Event>, id: &str) -> bool {
    exit_code_when(events, id, false, 0).await.is_some()
}

/// A signal's number from its name (`KILL`, `SIGKILL`) or number, as moby's `ParseSignal`.
fn signal_number(text: &str) -> Option<i32> {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    if let Ok(number) = text.parse::<i32>() {
        return (1..=64).contains(&number).then_some(number);
    }
    let name = text.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let position = NAMES.iter().position(|n| *n == name)?;
    Some(position as i32 + 1)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("KILL", Some(9))]
    #[case("SIGTERM", Some(15))]
    #[case("hup", Some(1))]
    #[case("10", Some(10))]
    #[case("0", None)]
    #[case("NOPE", None)]
    fn signals_are_read_by_name_or_number(#[case] text: &str, #[case] number: Option<i32>) {
        assert_eq!(signal_number(text), number);
    }
}
