//! The streams: `docker exec` (an exec instance, then its start on a hijacked connection:
//! `101 UPGRADED` and the process's stdout and stderr multiplexed in Docker's 8-byte frames,
//! its stdin read from the same connection), `docker logs [-f]`, and the attach of `docker
//! run` without `-d`.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use bollard_stubs::models::ExecInspectResponse;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::pty::{self, Pty};
use super::{Answer, Refusal, Served, body, flag};
use crate::api::EngineApi;

/// How often `logs -f` looks for more output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Exit code of an exec whose program cannot run (runc's).
const CANNOT_RUN: i64 = 126;

/// An exec instance: what to run where, and how it went.
#[derive(Debug, Clone)]
pub(super) struct Exec {
    container_id: String,
    command: Vec<String>,
    stdin: bool,
    tty: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: Option<u32>,
    /// Its terminal's master, with a TTY (`exec -t`), once started.
    terminal: Option<Arc<OwnedFd>>,
}

pub(super) fn routes() -> Router<Arc<Served>> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize_exec))
        .route("/containers/{id}/resize", post(resize_container))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
}

/// `POST /containers/{id}/exec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecCreate {
    attach_stdin: bool,
    tty: bool,
    cmd: Vec<String>,
}

/// `POST /exec/{id}/start`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStart {
    detach: bool,
}

/// `POST /containers/{id}/exec`: 201 and the instance's id; the container must run.
async fn create(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer<(StatusCode, Json<Value>)> {
    let spec: ExecCreate = body(&bytes)?;
    let inspect = served.engine.inspect_container(&id).await?;
    let full = inspect["Id"].as_str().unwrap_or(&id).to_string();
    if inspect["State"]["Running"] != true {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            format!("Container {full} is not running"),
        ));
    }
    if spec.cmd.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "No exec command specified",
        ));
    }
    let exec = Exec {
        container_id: full,
        command: spec.cmd,
        stdin: spec.attach_stdin,
        tty: spec.tty,
        running: false,
        exit_code: None,
        pid: None,
        terminal: None,
    };
    let exec_id = {
        let mut engine = served.engine.lock().await;
        let exec_id = engine.new_id();
        let action = exec_action("exec_create", &exec.command);
        let _ = engine.log_container_event(&exec.container_id, &action, &[("execID", &exec_id)]);
        exec_id
    };
    lock(&served).insert(exec_id.clone(), exec);
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))))
}

fn lock(served: &Served) -> std::sync::MutexGuard<'_, HashMap<String, Exec>> {
    served.execs.lock().unwrap_or_else(|e| e.into_inner())
}

fn exec_of(served: &Served, id: &str) -> Answer<Exec> {
    (lock(served).get(id).cloned()).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            format!("No such exec instance: {id}"),
        )
    })
}

/// Records how exec `id` went.
fn ended(served: &Served, id: &str, code: i64) {
    if let Some(exec) = lock(served).get_mut(id) {
        exec.running = false;
        exec.exit_code = Some(code);
    }
}

/// `POST /exec/{id}/start`: detached, 200 at once; else the hijacked stream until the process
/// ends (or, without `Upgrade: tcp`, its whole output as the body).
async fn start(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    mut request: Request,
) -> Answer<Response> {
    let bytes = axum::body::to_bytes(std::mem::take(request.body_mut()), 1 << 20)
        .await
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let spec: ExecStart = body(&bytes)?;
    let exec = exec_of(&served, &id)?;
    let spawned = {
        let engine = served.engine.lock().await;
        let action = exec_action("exec_start", &exec.command);
        let _ = engine.log_container_event(&exec.container_id, &action, &[("execID", &id)]);
        served
            .processes
            .exec(&engine, &exec.container_id, &exec.command)
    };
    let mut command = spawned.map_err(|m| Refusal::new(StatusCode::CONFLICT, m))?;
    let internal =
        |e: std::io::Error| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let pty = exec.tty.then(Pty::open).transpose().map_err(internal)?;
    match &pty {
        Some(pty) => pty.give_to(&mut command, true).map_err(internal)?,
        None => {
            let stdin = match exec.stdin {
                true => Stdio::piped(),
                false => Stdio::null(),
            };
            command
                .stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
    let child = tokio::process::Command::from(command).spawn();
    // Only the process holds the terminal's side now: its master reads the end when it ends.
    let terminal = pty.map(|pty| Arc::new(pty.master));
    let mut exec = exec;
    exec.terminal = terminal;
    if let Some(known) = lock(&served).get_mut(&id) {
        known.running = child.is_ok();
        known.pid = child.as_ref().ok().and_then(|c| c.id());
        known.terminal = exec.terminal.clone();
    }
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let run = {
        let (served, id) = (served.clone(), id.clone());
        move |io: Box<dyn Io>| async move {
            let code = pump(io, child, &exec).await;
            ended(&served, &id, code);
            let attributes = [("execID", id.as_str()), ("exitCode", &code.to_string())];
            let engine = served.engine.lock().await;
            let _ = engine.log_container_event(&exec.container_id, "exec_die", &attributes);
        }
    };
    if spec.detach {
        tokio::spawn(run(Box::new(tokio::io::join(
            tokio::io::empty(),
            tokio::io::sink(),
        ))));
        return Ok(Response::new(Body::empty()));
    }
    let Some(on_upgrade) = on_upgrade else {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        tokio::spawn(run(Box::new(ours)));
        let mut output = Vec::new();
        let mut theirs = theirs;
        let _ = theirs.read_to_end(&mut output).await;
        return Ok(raw_stream(StatusCode::OK).body(Body::from(output)).unwrap());
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(Box::new(TokioIo::new(upgraded))).await,
            Err(e) => tracing::debug!("exec {id}: the client did not upgrade: {e}"),
        }
    });
    Ok(raw_stream(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .unwrap())
}

/// An exec event's action as dockerd words it: `exec_start: sh -c date` (the program, a space,
/// its arguments).
fn exec_action(what: &str, command: &[String]) -> String {
    let (program, args) = command.split_first().map_or(("", &[][..]), |(p, a)| (p, a));
    format!("{what}: {program} {}", args.join(" "))
}

/// A connection's two halves.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A response carrying Docker's raw stream.
fn raw_stream(status: StatusCode) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/vnd.docker.raw-stream")
}

/// Carries `child`'s output to `io` (multiplexed unless `exec.tty`) and `io`'s input to its
/// stdin; returns its exit code (126 when it could not start, as runc's).
async fn pump(io: Box<dyn Io>, child: std::io::Result<tokio::process::Child>, exec: &Exec) -> i64 {
    let (mut input, mut output) = tokio::io::split(io);
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            let text = format!(
                "OCI runtime exec failed: exec failed: container_linux.go:380: starting container process caused: exec: {:?}: {}: unknown\r\n",
                exec.command[0],
                match e.kind() {
                    std::io::ErrorKind::NotFound =>
                        "executable file not found in $PATH".to_string(),
                    _ => e.to_string(),
                }
            );
            let _ = output.write_all(&frame(1, text.as_bytes(), exec.tty)).await;
            let _ = output.shutdown().await;
            return CANNOT_RUN;
        }
    };
    if let Some(terminal) = &exec.terminal {
        return pump_terminal(input, output, child, terminal).await;
    }
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut input, &mut stdin).await;
        });
    }
    let (sender, mut frames) = mpsc::channel::<Vec<u8>>(16);
    let readers = [
        (
            1u8,
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        ),
        (
            2u8,
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        ),
    ];
    for (stream, reader) in readers {
        let (Some(mut reader), sender, tty) = (reader, sender.clone(), exec.tty) else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n @ 1..) = reader.read(&mut buf).await {
                if sender.send(frame(stream, &buf[..n], tty)).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(sender);
    while let Some(bytes) = frames.recv().await {
        if output.write_all(&bytes).await.is_err() {
            let _ = child.start_kill();
            break;
        }
    }
    let status = child.wait().await;
    let _ = output.shutdown().await;
    status.map_or(CANNOT_RUN, |s| super::exit_code(&s))
}

/// [`pump`] for a process on a terminal: the connection's input to the terminal, what the
/// terminal shows (raw) to the connection, until the process and its children have let go.
async fn pump_terminal(
    mut input: impl AsyncRead + Unpin + Send + 'static,
    mut output: impl AsyncWrite + Unpin,
    mut child: tokio::process::Child,
    terminal: &OwnedFd,
) -> i64 {
    let open = || {
        terminal
            .try_clone()
            .map(|fd| tokio::fs::File::from_std(fd.into()))
    };
    let (Ok(mut screen), Ok(mut keyboard)) = (open(), open()) else {
        let _ = child.start_kill();
        return child
            .wait()
            .await
            .map_or(CANNOT_RUN, |s| super::exit_code(&s));
    };
    let typing = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut input, &mut keyboard).await;
    });
    // Reading the master fails (EIO) once no process holds the terminal.
    let _ = tokio::io::copy(&mut screen, &mut output).await;
    typing.abort();
    let status = child.wait().await;
    let _ = output.shutdown().await;
    status.map_or(CANNOT_RUN, |s| super::exit_code(&s))
}

/// `POST /exec/{id}/resize?h=&w=`: the size of its terminal (nothing without one).
async fn resize_exec(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<StatusCode> {
    let exec = exec_of(&served, &id)?;
    let (height, width) = size(&query)?;
    if let Some(terminal) = &exec.terminal {
        pty::resize(terminal.as_ref(), height, width)
            .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    Ok(StatusCode::OK)
}

/// `POST /containers/{id}/resize?h=&w=`: the size of its command's terminal.
async fn resize_container(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<StatusCode> {
    let (full, running) = super::containers::state(&served, &id).await?;
    if !running {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            format!("Container {full} is not running"),
        ));
    }
    let (height, width) = size(&query)?;
    (served.processes.resize(&full, height, width))
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(StatusCode::OK)
}

/// A resize's height and width, refused as dockerd refuses them (`strconv.Atoi`).
fn size(query: &HashMap<String, String>) -> Answer<(u16, u16)> {
    let number = |key: &str| {
        let text = query.get(key).map_or("", String::as_str);
        text.parse::<u16>().map_err(|_| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("strconv.Atoi: parsing {text:?}: invalid syntax"),
            )
        })
    };
    Ok((number("h")?, number("w")?))
}

/// Docker's multiplexed frame: stream (1 stdout, 2 stderr), three zeros, the length (big
/// endian), the bytes; a TTY's stream is raw.
fn frame(stream: u8, bytes: &[u8], tty: bool) -> Vec<u8> {
    if tty {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(8 + bytes.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// `GET /exec/{id}/json`.
async fn inspect(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
) -> Answer<Json<ExecInspectResponse>> {
    let exec = exec_of(&served, &id)?;
    Ok(Json(ExecInspectResponse {
        can_remove: Some(false),
        detach_keys: Some(String::new()),
        id: Some(id),
        running: Some(exec.running),
        exit_code: exec.exit_code,
        process_config: None,
        open_stdin: Some(exec.stdin),
        open_stderr: Some(true),
        open_stdout: Some(true),
        container_id: Some(exec.container_id),
        pid: exec.pid.map(i64::from),
    }))
}

/// `GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=`: what its command wrote (as
/// stdout), then, with `follow`, what it writes until it stops.
async fn logs(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<Response> {
    let inspect = served.engine.inspect_container(&id).await?;
    let name = inspect["Id"].as_str().unwrap_or(&id).to_string();
    let tty = inspect["Config"]["Tty"] == true;
    let wanted = flag(&query, "stdout") || flag(&query, "stderr");
    let text = served.processes.logs(&name);
    let first = tail(&text, query.get("tail").map(String::as_str));
    let first = match wanted && !first.is_empty() {
        true => frame(1, first.as_bytes(), tty),
        false => Vec::new(),
    };
    if !flag(&query, "follow") || !wanted {
        return Ok(raw_stream(StatusCode::OK).body(Body::from(first)).unwrap());
    }
    // The state: what to send next, and how much of the output was sent.
    let stream = futures::stream::unfold(Some((first, text.len())), move |state| {
        let (served, id, name) = (served.clone(), id.clone(), name.clone());
        async move {
            let (pending, mut sent) = state?;
            if !pending.is_empty() {
                return Some((
                    Ok::<_, std::io::Error>(Bytes::from(pending)),
                    Some((Vec::new(), sent)),
                ));
            }
            loop {
                tokio::time::sleep(FOLLOW_POLL).await;
                let text = served.processes.logs(&name);
                let running = (served.engine.inspect_container(&id).await)
                    .is_ok_and(|c| c["State"]["Running"] == true);
                if text.len() > sent {
                    let more = frame(1, &text.as_bytes()[sent..], tty);
                    sent = text.len();
                    return Some((Ok(Bytes::from(more)), Some((Vec::new(), sent))));
                }
                if !running {
                    return None;
                }
            }
        }
    });
    Ok(raw_stream(StatusCode::OK)
        .body(Body::from_stream(stream))
        .unwrap())
}

/// `POST /containers/{id}/attach?stream=1&stdout=1`: on a hijacked connection, what the
/// container's command writes from now until the container exits or goes, or its command
/// cannot start (`docker run` without `-d` attaches before it starts the container). Its stdin
/// is not attached.
async fn attach(
    State(served): State<Arc<Served>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    mut request: Request,
) -> Answer<Response> {
    let inspect = served.engine.inspect_container(&id).await?;
    if !served.processes.run_commands() {
        return Err(Refusal::new(
            StatusCode::NOT_IMPLEMENTED,
            "this engine runs no processes in its containers (a conformance target): nothing to attach to; `drydock lab up` serves run without -d",
        ));
    }
    let name = inspect["Id"].as_str().unwrap_or(&id).to_string();
    let tty = inspect["Config"]["Tty"] == true;
    let Some(on_upgrade) =
        (request.headers().contains_key(header::UPGRADE)).then(|| hyper::upgrade::on(&mut request))
    else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "attach needs a hijacked connection (Upgrade: tcp)",
        ));
    };
    let mut sent = served.processes.logs(&name).len();
    let _ = served
        .engine
        .lock()
        .await
        .log_container_event(&name, "attach", &[]);
    let keyboard = match flag(&query, "stdin") {
        true => served.processes.input(&name),
        false => None,
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut typed, mut io) = tokio::io::split(TokioIo::new(upgraded));
        // What the client types goes on while the output is polled; its end closes the
        // container's stdin (a terminal stays).
        let _typing = keyboard.map(|keyboard| {
            let mut keyboard = tokio::fs::File::from_std(keyboard);
            AbortOnDrop(tokio::spawn(async move {
                let _ = tokio::io::copy(&mut typed, &mut keyboard).await;
                let _ = keyboard.flush().await;
            }))
        });
        loop {
            tokio::time::sleep(FOLLOW_POLL / 2).await;
            // Until it exits, goes, or its start fails (created again, with an error).
            let attached = (served.engine.inspect_container(&id).await).is_ok_and(|c| {
                let state = &c["State"];
                let failed = state["Error"].as_str().is_some_and(|e| !e.is_empty());
                match state["Status"].as_str() {
                    Some("running") => true,
                    Some("created") => !failed,
                    _ => false,
                }
            });
            let text = served.processes.logs(&name);
            if text.len() > sent {
                let more = frame(1, &text.as_bytes()[sent..], tty);
                sent = text.len();
                if io.write_all(&more).await.is_err() {
                    return;
                }
            }
            if !attached {
                let _ = io.shutdown().await;
                return;
            }
        }
    });
    Ok(raw_stream(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .unwrap())
}

/// A task that ends when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The last `n` lines of `text` (`--tail N`; `all` or nothing: all of it).
fn tail<'a>(text: &'a str, n: Option<&str>) -> &'a str {
    let Some(n) = n.and_then(|n| n.parse::<usize>().ok()) else {
        return text;
    };
    let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    let complete = ends.len() + usize::from(!text.ends_with('\n') && !text.is_empty());
    if n >= complete {
        return text;
    }
    let skip = complete - n;
    &text[ends[skip - 1]..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_stream_and_a_big_endian_length() {
        assert_eq!(
            frame(1, b"hi\n", false),
            [1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
        assert_eq!(frame(2, b"", false), [2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(frame(1, b"hi", true), b"hi");
    }

    #[test]
    fn exec_actions_name_the_program_then_its_arguments() {
        let command = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            exec_action("exec_start", &command(&["sh", "-c", "date"])),
            "exec_start: sh -c date"
        );
        assert_eq!(
            exec_action("exec_create", &command(&["ls"])),
            "exec_create: ls "
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", Some("2")), "b\nc\n");
        assert_eq!(tail("a\nb\nc", Some("1")), "c");
        assert_eq!(tail("a\nb\n", Some("5")), "a\nb\n");
        assert_eq!(tail("a\nb\n", Some("all")), "a\nb\n");
        assert_eq!(tail("a\nb\n", None), "a\nb\n");
        assert_eq!(tail("a\nb\n", Some("0")), "");
    }
}
