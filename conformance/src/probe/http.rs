//! `http_get`: a minimal HTTP/1.0 client, and the wire helpers the HTTP listener shares.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use drydock_netsim::Netns;
use tokio::time::Instant;

use super::sock::{self, Failure};

/// The largest response `http_get` reads (head and body).
const MAX_RESPONSE: usize = 1 << 20;

/// The outcome of [`http_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http {
    /// A whole response.
    Response {
        /// Its status code.
        status: u16,
        /// Its body, decoded as UTF-8 (lossily).
        body: String,
    },
    /// The connection was refused.
    Refused,
    /// No connection, or no whole response, before the timeout.
    Timeout,
    /// No route, an ICMP unreachable or a local firewall verdict.
    Unreachable {
        /// The operating system's message.
        reason: String,
    },
    /// The probe failed, or the peer did not answer HTTP.
    Error(String),
}

impl fmt::Display for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response { status, body } => {
                write!(f, "HTTP {status} (body: ")?;
                super::write_excerpt(f, body.trim_end(), 80)?;
                f.write_str(")")
            }
            Self::Refused => f.write_str("refused"),
            Self::Timeout => f.write_str("timed out"),
            Self::Unreachable { reason } => write!(f, "unreachable: {reason}"),
            Self::Error(e) => write!(f, "error: {e}"),
        }
    }
}

impl From<Failure> for Http {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused => Self::Refused,
            Failure::Timeout => Self::Timeout,
            Failure::Unreachable(reason) => Self::Unreachable { reason },
            Failure::Other(e) => Self::Error(e),
        }
    }
}

/// GETs `path` from `to`, from inside `from`, for at most `timeout` in all.
///
/// Sends an HTTP/1.0 request (`Host: host`, with `:port` added when `host` has none and the
/// port is not 80; `Connection: close`) and reads the response: its length is `Content-Length`,
/// chunked encoding, or up to the close. Connection failures read like [`reach`](super::reach).
pub async fn http_get(
    from: &Netns,
    to: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Http {
    let deadline = Instant::now() + timeout;
    let stream = match sock::connect_tcp(from, to, deadline).await {
        Ok(stream) => stream,
        Err(failure) => return failure.into(),
    };
    let exchange = async {
        sock::write_all(&stream, &request(host, to.port(), path)).await?;
        let mut buf = Vec::new();
        loop {
            let eof = match sock::read_some(&stream, &mut buf, MAX_RESPONSE).await {
                Ok(n) => n == 0,
                // A reset after a whole response (servers closing with unread data) is an end.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
                Err(e) => return Err(e),
            };
            match parse_response(&buf, eof) {
                Parsed::Incomplete if !eof => {}
                Parsed::Incomplete => return Ok(Http::Error("connection closed early".into())),
                Parsed::Complete { status, body } => return Ok(Http::Response { status, body }),
                Parsed::Invalid(e) => return Ok(Http::Error(e)),
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => Http::Timeout,
        Ok(Ok(http)) => http,
        Ok(Err(e)) => Http::Error(sock::os_message(&e)),
    }
}

/// The `Host` header's value for `host` on `port`: IPv6 literals bracketed, `:port` added
/// unless `host` has one or the port is 80.
fn host_header(host: &str, port: u16) -> String {
    let literal6 = host.parse::<Ipv6Addr>().is_ok();
    let has_port = match host.strip_prefix('[') {
        Some(rest) => rest.contains("]:"),
        None => !literal6 && host.contains(':'),
    };
    let host = if literal6 {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == 80 || has_port {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// An HTTP/1.0 GET request for `path` (made absolute) on `host`.
pub(crate) fn request(host: &str, port: u16, path: &str) -> Vec<u8> {
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!(
        "GET {slash}{path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: drydock-probe\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        host_header(host, port)
    )
    .into_bytes()
}

/// Where the head of an HTTP message ends (the index just past its blank line), if it has.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The response the HTTP listener gives to any request: 200, text/plain, `body`, which ends
/// where the connection does (HTTP/1.0 without `Content-Length`). So a `gets` through a proxy
/// (docker-proxy, or drydock's) sees its body end only if the proxy passes the server's close on.
pub(crate) fn ok_response(body: &str) -> Vec<u8> {
    format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}")
        .into_bytes()
}

/// A response read so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed (never returned once `eof`).
    Incomplete,
    /// The whole response.
    Complete { status: u16, body: String },
    /// Not HTTP, or cut short.
    Invalid(String),
}

/// Reads an HTTP/1.x response from `buf`; `eof` says the peer has closed.
pub(crate) fn parse_response(buf: &[u8], eof: bool) -> Parsed {
    let Some(end) = head_end(buf) else {
        return match (eof, buf.is_empty()) {
            (false, _) => Parsed::Incomplete,
            (true, true) => Parsed::Invalid("empty reply".into()),
            (true, false) => Parsed::Invalid(format!(
                "no HTTP response head: {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(40)])
            )),
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/1.") => status,
        _ => return Parsed::Invalid(format!("not an HTTP status line: {status_line:?}")),
    };
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) => length = Some(n),
                Err(_) => return Parsed::Invalid(format!("bad Content-Length: {value:?}")),
            }
        } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let rest = &buf[end..];
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        Some(Vec::new())
    } else if chunked {
        match dechunk(rest) {
            Err(e) => return Parsed::Invalid(e),
            Ok(body) => body,
        }
    } else if let Some(length) = length {
        rest.get(..length).map(<[u8]>::to_vec)
    } else if eof {
        Some(rest.to_vec())
    } else {
        None
    };
    match body {
        Some(body) => Parsed::Complete {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        None if eof => Parsed::Invalid(format!(
            "connection closed in the body of an HTTP {status} response"
        )),
        None => Parsed::Incomplete,
    }
}

/// Decodes a chunked body: `Ok(None)` while incomplete.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_line = String::from_utf8_lossy(&rest[..eol]);
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size: {size_text:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            // Trailers, if any, are not needed: the body is whole.
            return Ok(Some(body));
        }
        let Some(chunk) = rest.get(..size) else {
            return Ok(None);
        };
        body.extend_from_slice(chunk);
        match rest.get(size..size + 2) {
            None => return Ok(None),
            Some(b"\r\n") => rest = &rest[size + 2..],
            Some(_) => return Err("chunk not followed by CRLF".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(status: u16, body: &str) -> Parsed {
        Parsed::Complete {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn requests_name_the_host_and_port() {
        let text = String::from_utf8(request("web", 8080, "status")).unwrap();
        assert!(text.starts_with("GET /status HTTP/1.0\r\nHost: web:8080\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
        assert_eq!(host_header("web", 80), "web");
        assert_eq!(host_header("web:81", 8080), "web:81");
        assert_eq!(host_header("fd00::2", 8080), "[fd00::2]:8080");
        assert_eq!(host_header("[fd00::2]:81", 8080), "[fd00::2]:81");
        assert_eq!(host_header("[fd00::2]", 8080), "[fd00::2]:8080");
    }

    #[test]
    fn our_listener_response_parses() {
        let response = ok_response("drydock web 80\n");
        let text = String::from_utf8(response.clone()).unwrap();
        assert!(text.starts_with("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"));
        assert!(!text.contains("Content-Length"), "{text}");
        // Its body ends where the connection does: complete only at EOF.
        assert_eq!(
            parse_response(&response, true),
            complete(200, "drydock web 80\n")
        );
        for cut in 0..=response.len() {
            assert_eq!(parse_response(&response[..cut], false), Parsed::Incomplete);
        }
    }

    #[test]
    fn bodies_end_at_content_length_chunks_or_close() {
        let unsized_body = b"HTTP/1.1 404 Not Found\r\nServer: x\r\n\r\nnot here";
        assert_eq!(parse_response(unsized_body, false), Parsed::Incomplete);
        assert_eq!(
            parse_response(unsized_body, true),
            complete(404, "not here")
        );

        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2;x=y\r\nef\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked, false), complete(200, "abcdef"));
        assert_eq!(
            parse_response(&chunked[..chunked.len() - 8], false),
            Parsed::Incomplete
        );

        let bare_lf = b"HTTP/1.0 204 No Content\n\n";
        assert_eq!(parse_response(bare_lf, false), complete(204, ""));
    }

    #[test]
    fn what_is_not_http() {
        assert_eq!(
            parse_response(b"", true),
            Parsed::Invalid("empty reply".into())
        );
        assert!(matches!(
            parse_response(b"drydock web 80\n", true),
            Parsed::Invalid(e) if e.starts_with("no HTTP response head")
        ));
        assert!(matches!(
            parse_response(b"SSH-2.0-x\r\n\r\n", false),
            Parsed::Invalid(e) if e.starts_with("not an HTTP status line")
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort", true),
            Parsed::Invalid(e) if e.contains("closed in the body")
        ));
    }

    #[test]
    fn heads_end_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\nHost: x\r\n"), None);
    }

    #[test]
    fn outcomes_read_well() {
        let ok = Http::Response {
            status: 200,
            body: "drydock web 8080\n".into(),
        };
        assert_eq!(ok.to_string(), "HTTP 200 (body: drydock web 8080)");
        assert_eq!(Http::Refused.to_string(), "refused");
    }
}
