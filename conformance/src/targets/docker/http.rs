//! A small HTTP/1.1 client for the Docker Engine API on a unix socket, pinned to API 1.41.
//!
//! Requests carry JSON in Docker's own field names (the typed bodies of
//! `drydock_runtime::api::body`, as the docker CLI sends them to a 1.41 daemon) and answers come
//! back as the daemon wrote them. bollard's models follow API 1.53 and
//! cannot express some 1.41 fields (`CheckDuplicate` on network create, `Config.MacAddress` on
//! container create), and a round trip through them drops fields that 20.10 still reports
//! (`NetworkSettings.IPAddress`...): inspect output must be the daemon's, byte for byte.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

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

/// A daemon's answer: status code and body (chunked transfer already decoded).
#[derive(Debug)]
pub(super) struct Reply {
    /// HTTP status code.
    pub(super) status: u16,
    /// Body bytes.
    pub(super) body: Vec<u8>,
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

    /// Sends one request and returns the answer, whatever its status.
    pub(super) async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Reply, CallError> {
        let transport = |detail: String| CallError::Transport {
            what: format!("{method} {path}"),
            detail,
        };
        match tokio::time::timeout(TIMEOUT, self.exchange(method, path, body)).await {
            Err(_) => Err(transport(format!(
                "no answer within {} s",
                TIMEOUT.as_secs()
            ))),
            Ok(Err(e)) => Err(transport(e.to_string())),
            Ok(Ok(raw)) => parse_reply(&raw).map_err(transport),
        }
    }

    /// Sends a request under `/v1.41` and fails with the daemon's message unless the status is
    /// 2xx or 304 (which the docker CLI treats as success: "already started/stopped").
    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<Vec<u8>, CallError> {
        let path = format!("/v{API_VERSION}{path}");
        let body = json.map(|v| v.to_string().into_bytes());
        let reply = self
            .request(
                method,
                &path,
                body.as_deref().map(|b| ("application/json", b)),
            )
            .await?;
        check(reply)
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

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> io::Result<Vec<u8>> {
        let mut stream = UnixStream::connect(&self.socket).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: drydock\r\nConnection: close\r\n"
        );
        match body {
            Some((content_type, bytes)) => head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                bytes.len()
            )),
            None if method != "GET" && method != "HEAD" => {
                head.push_str("Content-Length: 0\r\n");
            }
            None => {}
        }
        head.push_str("\r\n");
        let sent = async {
            stream.write_all(head.as_bytes()).await?;
            if let Some((_, bytes)) = body {
                stream.write_all(bytes).await?;
            }
            stream.flush().await
        }
        .await;
        // A daemon that refuses early may close before reading everything: its answer is
        // still worth reading.
        if let Err(e) = sent
            && !matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            )
        {
            return Err(e);
        }
        let mut raw = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return Ok(raw),
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
                // Closing with part of our request unread resets the connection: the answer
                // that came before is complete all the same.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !raw.is_empty() => {
                    return Ok(raw);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Turns a non-success reply into the daemon's message.
fn check(reply: Reply) -> Result<Vec<u8>, CallError> {
    if (200..300).contains(&reply.status) || reply.status == 304 {
        return Ok(reply.body);
    }
    Err(CallError::Daemon {
        status: reply.status,
        message: daemon_message(reply.status, &reply.body),
    })
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

/// Parses a complete HTTP/1.1 response (the connection was closed after it).
fn parse_reply(raw: &[u8]) -> Result<Reply, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete answer ({} bytes)", raw.len()))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "answer head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        if rest.len() < length {
            return Err(format!(
                "answer cut short: {} of {length} bytes",
                rest.len()
            ));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply { status, body })
}

/// Decodes a chunked body.
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked answer cut short")?;
        let line = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size {
            return Err("chunked answer cut short".into());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size..];
        data = data.strip_prefix(b"\r\n").unwrap_or(data);
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
    use super::*;

    #[test]
    fn replies_with_length_or_chunks_are_decoded() {
        let raw = b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 51\r\n\r\n{\"message\":\"network with name dup already exists\"}\n";
        let reply = parse_reply(raw).unwrap();
        assert_eq!(reply.status, 409);
        assert_eq!(
            daemon_message(reply.status, &reply.body),
            "network with name dup already exists"
        );

        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        assert_eq!(parse_reply(raw).unwrap().body, b"hello world");

        let raw = b"HTTP/1.1 204 No Content\r\n\r\n";
        let reply = parse_reply(raw).unwrap();
        assert_eq!((reply.status, reply.body.len()), (204, 0));

        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").is_err());
        assert!(parse_reply(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn messages_fall_back_to_the_body_text() {
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
