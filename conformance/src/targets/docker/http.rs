//! The Engine API on a unix socket, pinned to API 1.41: hyper's HTTP/1.1 client over tokio's
//! `UnixStream`, one connection per request.
//!
//! Requests carry JSON in Docker's own field names (the typed bodies of
//! `drydock_runtime::api::body`, as the docker CLI sends them to a 1.41 daemon) and answers come
//! back as the daemon wrote them. bollard's models follow API 1.53 and
//! cannot express some 1.41 fields (`CheckDuplicate` on network create, `Config.MacAddress` on
//! container create), and a round trip through them drops fields that 20.10 still reports
//! (`NetworkSettings.IPAddress`...): inspect output must be the daemon's, byte for byte.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

use crate::targets::TargetError;

/// The API version every request names (Docker Engine 20.10).
pub(super) const API_VERSION: &str = "1.41";

/// How long one request may take (image import included).
const TIMEOUT: Duration = Duration::from_secs(120);

/// A daemon's API socket.
#[derive(Debug, Clone)]
pub(super) struct Api {
    socket: PathBuf,
}

/// A daemon's answer: status code and body.
#[derive(Debug)]
pub(super) struct Reply {
    /// HTTP status code.
    pub(super) status: u16,
    /// The body as the daemon wrote it (transfer encoding undone).
    pub(super) body: Bytes,
}

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// The daemon refused: its message, as the docker CLI prints it after
    /// "Error response from daemon: ".
    #[error("{message}")]
    Daemon {
        /// HTTP status code.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The daemon could not be reached or answered garbage.
    #[error("docker API {what}: {detail}")]
    Transport {
        /// The request, e.g. `POST /v1.41/networks/create`.
        what: String,
        /// What went wrong.
        detail: String,
    },
}

impl From<CallError> for TargetError {
    fn from(error: CallError) -> Self {
        Self::new(error.to_string())
    }
}

impl Api {
    /// A client for the daemon listening on `socket`.
    pub(super) fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
        }
    }

    /// Sends one request (with its body and the body's content type) and returns the answer,
    /// whatever its status.
    pub(super) async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Reply, CallError> {
        let detail = match tokio::time::timeout(TIMEOUT, self.exchange(method, path, body)).await {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(detail)) => detail,
            Err(_) => format!("no answer within {} s", TIMEOUT.as_secs()),
        };
        Err(CallError::Transport {
            what: format!("{method} {path}"),
            detail,
        })
    }

    /// Sends a request under `/v1.41` and fails with the daemon's message unless it succeeded.
    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<Bytes, CallError> {
        let path = format!("/v{API_VERSION}{path}");
        let body = json.map(|v| v.to_string().into_bytes());
        let reply = self
            .request(
                method,
                &path,
                body.as_deref().map(|b| ("application/json", b)),
            )
            .await?;
        reply.success()
    }

    /// `call` whose answer is JSON.
    pub(super) async fn call_json(
        &self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<Value, CallError> {
        let body = self.call(method, path, json).await?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| CallError::Transport {
            what: format!("{method} {path}"),
            detail: format!("the answer is not JSON: {e}"),
        })
    }

    /// One request on a connection of its own, closed once the answer is read.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Reply, String> {
        let request = build(method, path, body)?;
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.socket.display()))?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| causes(&e))?;
        // An error of the connection also fails the request, which says it.
        let _connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let response = sender.send_request(request).await.map_err(|e| causes(&e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {}", causes(&e)))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

/// The request as the docker CLI sends it: dockerd wants a `Host` (any name does on a unix
/// socket), and a request without a body other than a GET or HEAD says `Content-Length: 0`.
fn build(
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Result<Request<Full<Bytes>>, String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let builder = Request::builder()
        .uri(path)
        .header(HOST, "docker")
        .header(USER_AGENT, "drydock");
    let request = match body {
        Some((content_type, bytes)) => builder
            .method(method)
            .header(CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::copy_from_slice(bytes))),
        None if method == Method::GET || method == Method::HEAD => {
            builder.method(method).body(Full::default())
        }
        None => builder
            .method(method)
            .header(CONTENT_LENGTH, 0)
            .body(Full::default()),
    };
    request.map_err(|e| format!("bad request: {e}"))
}

/// A spawned task that ends with its handle: the connection of a request, closed once its
/// answer is read or the request given up.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An error and its causes, `error: cause: cause` (hyper's own texts are terse).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

impl Reply {
    /// The body of a success (2xx, or 304, which the docker CLI treats as success: "already
    /// started/stopped"); otherwise the daemon's message.
    pub(super) fn success(self) -> Result<Bytes, CallError> {
        if (200..300).contains(&self.status) || self.status == 304 {
            return Ok(self.body);
        }
        Err(CallError::Daemon {
            status: self.status,
            message: daemon_message(self.status, &self.body),
        })
    }
}

/// The `message` of Docker's error body `{"message": "..."}`, or the body's text.
pub(super) fn daemon_message(status: u16, body: &[u8]) -> String {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body)
        && let Some(Value::String(message)) = map.get("message")
    {
        return message.clone();
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        format!("HTTP status {status} without a message")
    } else {
        text
    }
}

/// Percent-encodes a path segment or query value (everything but RFC 3986 unreserved bytes).
pub(super) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use hyper::body::Incoming;
    use hyper::http::request::Parts;
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use tokio::net::UnixListener;

    use super::*;

    /// What `/verbatim` answers: spacing and key order a JSON round trip would change.
    const VERBATIM: &str = "{\"b\": 1,  \"a\":2}\n";

    /// A daemon on `socket`: `/echo` answers what it was sent, `/verbatim` [`VERBATIM`],
    /// `/started` 304, anything else 409 with Docker's error body.
    fn serve(socket: &Path) {
        let listener = UnixListener::bind(socket).unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = service_fn(|request: Request<Incoming>| async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(answer(&parts, &body))
                });
                let connection =
                    server::Builder::new().serve_connection(TokioIo::new(stream), service);
                tokio::spawn(connection);
            }
        });
    }

    fn answer(request: &Parts, body: &[u8]) -> Response<Full<Bytes>> {
        let header = |name| request.headers.get(name).map(|v| v.to_str().unwrap());
        let (status, text) = match request.uri.path() {
            "/v1.41/echo" => {
                let echo = serde_json::json!({
                    "method": request.method.as_str(),
                    "query": request.uri.query(),
                    "host": header(HOST),
                    "type": header(CONTENT_TYPE),
                    "length": header(CONTENT_LENGTH),
                    "body": String::from_utf8_lossy(body),
                });
                (StatusCode::OK, echo.to_string())
            }
            "/v1.41/verbatim" => (StatusCode::OK, VERBATIM.to_string()),
            "/v1.41/started" => (StatusCode::NOT_MODIFIED, String::new()),
            _ => (
                StatusCode::CONFLICT,
                "{\"message\":\"network with name dup already exists\"}\n".to_string(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    }

    #[tokio::test]
    async fn requests_carry_what_dockerd_needs_and_answers_come_back_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        serve(&socket);
        let api = Api::new(&socket);

        let json = serde_json::json!({"Name": "n"});
        let echo = api
            .call_json("POST", "/echo?x=%20", Some(&json))
            .await
            .unwrap();
        assert_eq!(
            echo,
            serde_json::json!({"method": "POST", "query": "x=%20", "host": "docker",
                "type": "application/json", "length": "12", "body": "{\"Name\":\"n\"}"})
        );
        let echo = api.call_json("POST", "/echo", None).await.unwrap();
        assert_eq!(
            (echo["length"].as_str(), echo["body"].as_str()),
            (Some("0"), Some(""))
        );
        let echo = api.call_json("GET", "/echo", None).await.unwrap();
        assert_eq!(
            (echo["length"].as_str(), echo["type"].as_str()),
            (None, None)
        );
        let reply = api
            .request("POST", "/v1.41/echo", Some(("application/x-tar", b"tar")))
            .await
            .unwrap();
        let echo: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            (echo["type"].as_str(), echo["body"].as_str()),
            (Some("application/x-tar"), Some("tar"))
        );

        assert_eq!(
            api.call("GET", "/verbatim", None).await.unwrap(),
            VERBATIM.as_bytes()
        );
        assert_eq!(api.call("POST", "/started", None).await.unwrap(), "");
    }

    #[tokio::test]
    async fn refusals_give_the_daemons_message_and_failures_name_the_request() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let api = Api::new(&socket);
        let error = api.call("GET", "/networks", None).await.unwrap_err();
        assert!(
            matches!(&error, CallError::Transport { what, .. } if what == "GET /v1.41/networks"),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("docker API GET /v1.41/networks: connecting to ")
        );

        serve(&socket);
        match api.call("POST", "/networks/create", None).await {
            Err(CallError::Daemon { status, message }) => assert_eq!(
                (status, message.as_str()),
                (409, "network with name dup already exists")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_fall_back_to_the_body_text() {
        assert_eq!(
            daemon_message(
                409,
                b"{\"message\":\"network with name dup already exists\"}\n"
            ),
            "network with name dup already exists"
        );
        assert_eq!(daemon_message(404, b"page not found\n"), "page not found");
        assert_eq!(
            daemon_message(500, b""),
            "HTTP status 500 without a message"
        );
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode("my-net_1.x"), "my-net_1.x");
        assert_eq!(encode("test@#$ /"), "test%40%23%24%20%2F");
        assert_eq!(encode("CMD [\"sleep\"]"), "CMD%20%5B%22sleep%22%5D");
    }
}
