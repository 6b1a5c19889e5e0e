//! The reference engine as a [`Backend`]: fresh engines per scenario, in this process.

use drydock_netsim::Lab;

use super::Backend;
use crate::target::TargetResult;
use crate::target::reference::ReferenceTarget;

/// Starts [`ReferenceTarget`]s, one per scenario.
#[derive(Debug, Default)]
pub struct ReferenceBackend;

impl Backend for ReferenceBackend {
    type Target = ReferenceTarget;

    async fn start(
        &self,
        lab: &Lab,
        hosts: &[String],
        _run_id: &str,
    ) -> TargetResult<ReferenceTarget> {
        ReferenceTarget::start(lab, hosts).await
    }

    async fn stop(&self, target: ReferenceTarget) {
        target.shutdown().await;
    }
}
