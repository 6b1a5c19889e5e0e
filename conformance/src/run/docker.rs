//! The docker target as a [`Backend`]: a private Docker Engine per scenario.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use drydock_netsim::Lab;

use super::Backend;
use crate::target::docker::DockerTarget;
use crate::target::{Target, TargetResult};

/// Starts [`DockerTarget`]s, one per scenario, and remembers which Docker they were.
#[derive(Debug, Default)]
pub struct DockerBackend {
    started: AtomicUsize,
    seen: Mutex<Option<String>>,
}

impl DockerBackend {
    /// A backend that has started nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// "docker VERSION" of the targets started so far (or just "docker" before any).
    pub fn describe(&self) -> String {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.clone().unwrap_or_else(|| "docker".into())
    }
}

impl Backend for DockerBackend {
    type Target = DockerTarget;

    async fn start(&self, lab: &Lab, hosts: &[String], run_id: &str) -> TargetResult<DockerTarget> {
        // Every scenario's target needs a run id of its own: it names its files and labels.
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let target = DockerTarget::start(lab, hosts, &format!("{run_id}-{n}")).await?;
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| target.describe());
        Ok(target)
    }

    async fn stop(&self, target: DockerTarget) {
        if let Err(e) = target.shutdown().await {
            tracing::warn!("docker target teardown: {e}");
        }
    }
}
