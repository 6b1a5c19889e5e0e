//! The engine's side of a v1 plugin's transport, as dockerd's `pkg/plugins` client does it:
//! `POST /METHOD` over HTTP/1.1 on a unix socket (or TCP, from a spec file), the body JSON,
//! the answer JSON read as Go reads it (field names matched without regard to case, unknown
//! ones ignored). A connection that cannot be made is tried again with dockerd's back-off (1,
//! 2, 4... seconds) until its 30 s are spent; an answer other than 200 becomes `METHOD: ERR`,
//! ERR being the answer's `Err` or else its body. Unlike dockerd, which waits for an answer
//! forever holding its locks, a call gives up after [`Patience::answer`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OnceCell;

use super::protocol::{self, MEDIA_TYPE};

/// Where a plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A unix socket (`NAME.sock`, or `unix://PATH` in a spec file).
    Unix(PathBuf),
    /// `tcp://HOST:PORT` in a spec file.
    Tcp(String),
}

impl Address {
    /// The URL dockerd's Go client names in its errors (`http://%2Frun%2F...sock/METHOD`).
    fn url(&self, method: &str) -> String {
        match self {
            Address::Unix(path) => {
                let host = path.display().to_string().replace('/', "%2F");
                format!("http://{host}/{method}")
            }
            Address::Tcp(host) => format!("http://{host}/{method}"),
        }
    }

    /// What Go's dialer names: `dial unix PATH` or `dial tcp HOST:PORT`.
    fn dial(&self) -> String {
        match self {
            Address::Unix(path) => format!("dial unix {}", path.display()),
            Address::Tcp(host) => format!("dial tcp {host}"),
        }
    }
}

/// How long a client waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// How long connections are tried again (dockerd: 30 s).
    pub connect: Duration,
    /// How long one answer may take (dockerd: forever).
    pub answer: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            connect: Duration::from_secs(30),
            answer: Duration::from_secs(30),
        }
    }
}

/// A client of one plugin. Its clones share its activation.
#[derive(Debug, Clone)]
pub struct Client {
    address: Address,
    patience: Patience,
    /// The manifest, once `Plugin.Activate` succeeded: dockerd's plugin registry activates a
    /// plugin once, whatever kinds it is then asked for (a driver that is its own IPAM).
    manifest: Arc<OnceCell<protocol::Manifest>>,
}

/// A call that failed, in dockerd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with another status than 200: `METHOD: ERR`.
    #[error("{method}: {message}")]
    Status {
        /// `NetworkDriver.Join`...
        method: String,
        /// The HTTP status.
        status: u16,
        /// The answer's `Err`, or its body.
        message: String,
    },
    /// The plugin could not be reached, or the exchange broke.
    #[error("Post \"{url}\": {detail}")]
    Transport {
        /// The call's URL as Go writes it.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// No answer within [`Patience::answer`] (Go's words for a client's timeout).
    #[error(
        "Post \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    )]
    Timeout {
        /// The call's URL as Go writes it.
        url: String,
        /// How long it was waited for.
        after: Duration,
    },
    /// A 200 answer whose error field is set: `remote: ERR`.
    #[error("remote: {0}")]
    Remote(String),
    /// The answer was not the JSON expected (Go's decoder's words where they are known).
    #[error("{0}")]
    Malformed(String),
}

impl CallError {
    /// 404: the plugin does not serve the method (optional ones are then skipped).
    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::Status { status: 404, .. })
    }
}

/// Why `Plugin.Activate` gave no plugin of the kind asked for, in the words of dockerd's plugin
/// store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    /// The call failed: why.
    #[error("legacy plugin: {0}")]
    Failed(String),
    /// The manifest lacks the kind (`NetworkDriver`, `IpamDriver`).
    #[error("legacy plugin: Plugin does not implement the requested driver")]
    NotImplemented {
        /// What the manifest lists (dockerd logs nothing; the engine does).
        implements: Vec<String>,
    },
}

impl ActivationError {
    /// What the engine logs about it.
    pub fn cause(&self) -> String {
        match self {
            ActivationError::Failed(cause) => cause.clone(),
            ActivationError::NotImplemented { implements } => format!("implements {implements:?}"),
        }
    }
}

impl Client {
    /// `Plugin.Activate`, the first time it succeeds: the plugin's manifest, which must list
    /// `kind`.
    pub async fn activate(&self, kind: &str) -> Result<protocol::Manifest, ActivationError> {
        let activate = || async {
            (self.call("Plugin.Activate", None::<&()>).await)
                .map_err(|e| ActivationError::Failed(e.to_string()))
        };
        let manifest = self.manifest.get_or_try_init(activate).await?;
        if !manifest.implements.iter().any(|i| i == kind) {
            return Err(ActivationError::NotImplemented {
                implements: manifest.implements.clone(),
            });
        }
        Ok(manifest.clone())
    }

    /// Whether `Plugin.Activate` succeeded.
    pub fn activated(&self) -> bool {
        self.manifest.initialized()
    }

    /// A client of the plugin at `address`, not yet activated.
    pub fn new(address: Address, patience: Patience) -> Self {
        Client {
            address,
            patience,
            manifest: Arc::default(),
        }
    }

    /// Calls `method` (`Plugin.Activate`, `NetworkDriver.Join`...) with `body` (none: an empty
    /// body) and reads the answer as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, CallError> {
        let mut text = body
            .map(|b| serde_json::to_string(b).expect("protocol types serialize"))
            .unwrap_or_default();
        // Go's json.Encoder ends what it writes with a newline.
        if body.is_some() {
            text.push('\n');
        }
        let (status, answer) = self.post(method, text).await?;
        if status != 200 {
            let failure = serde_json::from_slice::<Value>(&answer)
                .ok()
                .map(protocol::go_keys)
                .and_then(|v| v.get("Err").and_then(Value::as_str).map(str::to_string))
                .filter(|e| !e.is_empty());
            let message = failure.unwrap_or_else(|| String::from_utf8_lossy(&answer).into_owned());
            return Err(CallError::Status {
                method: method.to_string(),
                status,
                message,
            });
        }
        protocol::decode_as_go(&answer).map_err(CallError::Malformed)
    }

    /// `POST /METHOD` with `body` as sent (the media type dockerd sends): the answer's status
    /// and body, whatever they are. A connection that cannot be made is tried again with
    /// dockerd's back-off until [`Patience::connect`] is spent.
    pub async fn post(
        &self,
        method: &str,
        body: impl Into<Bytes>,
    ) -> Result<(u16, Bytes), CallError> {
        let body = body.into();
        let start = Instant::now();
        let mut retries = 0u32;
        loop {
            match self.connect().await {
                Ok(stream) => return self.exchange(stream, method, body).await,
                Err(error) => {
                    let pause = Duration::from_secs(1 << retries.min(4));
                    if start.elapsed() + pause >= self.patience.connect {
                        return Err(CallError::Transport {
                            url: self.address.url(method),
                            detail: format!("{}: {}", self.address.dial(), go_errno(&error)),
                        });
                    }
                    tracing::warn!(
                        "Unable to connect to plugin: {}: {error}, retrying in {pause:?}",
                        self.address.url(method)
                    );
                    retries += 1;
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn connect(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(match &self.address {
            Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            Address::Tcp(host) => Box::new(tokio::net::TcpStream::connect(host).await?),
        })
    }

    async fn exchange(
        &self,
        stream: Box<dyn Stream>,
        method: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), CallError> {
        let transport = |detail: String| CallError::Transport {
            url: self.address.url(method),
            detail,
        };
        let exchange = async {
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            let driver = tokio::spawn(connection);
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("/{method}"))
                .header(HOST, "plugin")
                .header(ACCEPT, MEDIA_TYPE)
                .header(CONTENT_TYPE, MEDIA_TYPE)
                .header(CONTENT_LENGTH, body.len())
                .body(Full::new(body))
                .expect("a well-formed request");
            let answer = sender.send_request(request).await;
            let answer = answer.map_err(|e| e.to_string())?;
            let status = answer.status().as_u16();
            let collected = answer.into_body().collect().await;
            driver.abort();
            Ok((status, collected.map_err(|e| e.to_string())?.to_bytes()))
        };
        match tokio::time::timeout(self.patience.answer, exchange).await {
            Ok(answer) => answer.map_err(transport),
            Err(_) => Err(CallError::Timeout {
                url: self.address.url(method),
                after: self.patience.answer,
            }),
        }
    }
}

/// A connection to a plugin, on a unix socket or TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An I/O error as Go's `net` package words a failed connect.
fn go_errno(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "connect: no such file or directory".into(),
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::PermissionDenied => "connect: permission denied".into(),
        _ => format!("connect: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn urls_and_dials_are_written_as_go_writes_them() {
        let unix = Address::Unix("/run/docker/plugins/p.sock".into());
        assert_eq!(
            unix.url("Plugin.Activate"),
            "http://%2Frun%2Fdocker%2Fplugins%2Fp.sock/Plugin.Activate"
        );
        assert_eq!(unix.dial(), "dial unix /run/docker/plugins/p.sock");
        let tcp = Address::Tcp("127.0.0.1:9000".into());
        assert_eq!(tcp.url("X.Y"), "http://127.0.0.1:9000/X.Y");
    }

    #[tokio::test]
    async fn a_socket_nobody_serves_fails_with_dockerds_words_once_patience_is_spent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock");
        let patience = Patience {
            connect: Duration::from_millis(1),
            answer: Duration::from_secs(1),
        };
        let client = Client::new(Address::Unix(path.clone()), patience);
        let error = (client.call::<Value>("Plugin.Activate", None::<&()>).await).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "Post \"{}\": dial unix {}: connect: no such file or directory",
                Address::Unix(path.clone()).url("Plugin.Activate"),
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn a_plugin_that_never_answers_is_given_up_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mute.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        // Accepts, reads, never answers.
        let mute = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(stream);
        });
        let patience = Patience {
            connect: Duration::from_secs(1),
            answer: Duration::from_millis(200),
        };
        let client = Client::new(Address::Unix(path), patience);
        let error = (client
            .call::<Value>("NetworkDriver.Join", Some(&json!({})))
            .await)
            .unwrap_err()
            .to_string();
        assert!(error.ends_with("/NetworkDriver.Join\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"), "{error}");
        mute.abort();
    }

    #[tokio::test]
    async fn a_plugin_is_activated_once_for_every_kind_it_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("both.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = accepted.clone();
        let server = tokio::spawn(async move {
            let manifest = r#"{"Implements":["NetworkDriver","IpamDriver"]}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{manifest}",
                manifest.len()
            );
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buffer = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
                let reply = tokio::io::AsyncWriteExt::write_all(&mut stream, answer.as_bytes());
                reply.await.unwrap();
            }
        });
        let client = Client::new(Address::Unix(path), Patience::default());
        assert!(!client.activated());
        client.activate("NetworkDriver").await.unwrap();
        client.clone().activate("IpamDriver").await.unwrap();
        let volume = client.activate("VolumeDriver").await.unwrap_err();
        assert!(matches!(volume, ActivationError::NotImplemented { .. }));
        assert!(client.activated());
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        server.abort();
    }

    #[tokio::test]
    async fn refusals_read_as_dockerd_words_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\n\r\n{\"Err\":\"full\"}",
                "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n",
            ] {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buffer = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
                tokio::io::AsyncWriteExt::write_all(&mut stream, answer.as_bytes())
                    .await
                    .unwrap();
            }
        });
        let client = Client::new(Address::Unix(path), Patience::default());
        let full = client
            .call::<Value>("NetworkDriver.CreateNetwork", None::<&()>)
            .await;
        assert_eq!(
            full.unwrap_err().to_string(),
            "NetworkDriver.CreateNetwork: full"
        );
        let missing = client
            .call::<Value>("NetworkDriver.Leave", None::<&()>)
            .await;
        let missing = missing.unwrap_err();
        assert!(missing.is_not_found());
        assert_eq!(missing.to_string(), "NetworkDriver.Leave: not here\n");
        server.await.unwrap();
    }
}
