//! Finding a v1 plugin by name, as dockerd's `pkg/plugins` does: a socket `NAME.sock` (or
//! `NAME/NAME.sock`) in the sockets folder, else a spec file `NAME.spec` (its one line an
//! address: `unix:///PATH` or `tcp://HOST:PORT`) or `NAME.json` (`{"Addr": ...}`), directly or
//! in `NAME/`, in each spec folder in turn.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::client::Address;

/// Where an engine looks for plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDirs {
    /// Sockets (dockerd: `/run/docker/plugins`).
    pub sockets: PathBuf,
    /// Spec files (dockerd: `/etc/docker/plugins`, `/usr/lib/docker/plugins`).
    pub specs: Vec<PathBuf>,
}

impl Default for PluginDirs {
    /// dockerd's folders.
    fn default() -> Self {
        PluginDirs {
            sockets: "/run/docker/plugins".into(),
            specs: vec![
                "/etc/docker/plugins".into(),
                "/usr/lib/docker/plugins".into(),
            ],
        }
    }
}

/// Why a plugin was not found, or its spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Nothing by that name.
    #[error("plugin \"{0}\" not found")]
    NotFound(String),
    /// A spec file that says no usable address.
    #[error("{path}: {problem}")]
    BadSpec {
        /// The spec file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

impl PluginDirs {
    /// The address of plugin `name`.
    pub fn find(&self, name: &str) -> Result<Address, LookupError> {
        if name.is_empty() || name.contains('/') {
            return Err(LookupError::NotFound(name.to_string()));
        }
        for path in paths(&self.sockets, name, "sock") {
            let socket = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_socket());
            if socket {
                return Ok(Address::Unix(path));
            }
        }
        for dir in &self.specs {
            for ext in ["spec", "json"] {
                for path in paths(dir, name, ext) {
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        return spec_address(&path, &text, ext == "json");
                    }
                }
            }
        }
        Err(LookupError::NotFound(name.to_string()))
    }
}

/// `DIR/NAME.EXT`, then `DIR/NAME/NAME.EXT`.
fn paths(dir: &Path, name: &str, ext: &str) -> [PathBuf; 2] {
    let file = format!("{name}.{ext}");
    [dir.join(&file), dir.join(name).join(file)]
}

/// The address a spec file gives.
fn spec_address(path: &Path, text: &str, json: bool) -> Result<Address, LookupError> {
    let bad = |problem: String| LookupError::BadSpec {
        path: path.to_path_buf(),
        problem,
    };
    let address = if json {
        let spec: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not a plugin spec: {e}")))?;
        if spec.get("TLSConfig").is_some_and(|t| !t.is_null()) {
            return Err(bad("TLS plugin addresses are not supported".into()));
        }
        let addr = spec.get("Addr").and_then(serde_json::Value::as_str);
        addr.ok_or_else(|| bad("no \"Addr\"".into()))?.to_string()
    } else {
        text.trim().to_string()
    };
    match address.split_once("://") {
        Some(("unix", socket)) => Ok(Address::Unix(socket.into())),
        Some(("tcp", host)) => Ok(Address::Tcp(host.trim_end_matches('/').to_string())),
        Some((scheme, _)) => Err(bad(format!("unsupported scheme {scheme:?}"))),
        None => Err(bad("Unknown protocol".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_come_first_then_spec_files_in_order() {
        let root = tempfile::tempdir().unwrap();
        let dirs = PluginDirs {
            sockets: root.path().join("run"),
            specs: vec![root.path().join("etc"), root.path().join("lib")],
        };
        for dir in ["run/nested", "etc", "lib/t"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let _listener =
            std::os::unix::net::UnixListener::bind(root.path().join("run/nested/nested.sock"))
                .unwrap();
        std::fs::write(root.path().join("etc/s.spec"), "unix:///tmp/s.sock\n").unwrap();
        std::fs::write(
            root.path().join("lib/t/t.json"),
            r#"{"Addr":"tcp://127.0.0.1:7"}"#,
        )
        .unwrap();
        std::fs::write(root.path().join("etc/bad.spec"), "just-a-path").unwrap();
        // A plain file named like a socket is no socket.
        std::fs::write(root.path().join("run/plain.sock"), "").unwrap();

        let nested = root.path().join("run/nested/nested.sock");
        assert_eq!(dirs.find("nested"), Ok(Address::Unix(nested)));
        assert_eq!(dirs.find("s"), Ok(Address::Unix("/tmp/s.sock".into())));
        assert_eq!(dirs.find("t"), Ok(Address::Tcp("127.0.0.1:7".into())));
        let bad = dirs.find("bad").unwrap_err().to_string();
        assert!(bad.ends_with("bad.spec: Unknown protocol"), "{bad}");
        for missing in ["plain", "nothing", "../etc/s"] {
            let error = dirs.find(missing).unwrap_err();
            assert_eq!(error.to_string(), format!("plugin \"{missing}\" not found"));
        }
    }
}
