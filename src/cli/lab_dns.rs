//! DNS inside a held lab: on each host's `127.0.0.1:53`, the lab's upstream DNS server
//! (`drydock_conformance::probe::UpstreamDns`) answering the lab's host names with their
//! addresses and NXDOMAIN at once for every other name; and the resolv.conf naming it, which
//! processes started in the hosts (`lab exec`) see over the machine's. The machine's own
//! resolvers are out of the lab's reach: a lookup sent there would only time out.
//!
//! The engines of the lab's hosts forward to the same server (`targets::lab_resolvers`), so
//! their containers resolve the lab's host names too.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use drydock_conformance::probe::{UPSTREAM, UpstreamDns, Zone};
use drydock_netsim::Lab;
use drydock_netsim::registry::HostFiles;

/// The lab's files are in `/tmp/drydock-lab-PID`, PID the holding process.
pub(crate) const FILES_PREFIX: &str = "drydock-lab-";

/// The servers of a held lab's hosts and the resolv.conf naming them; the servers stop and
/// the file goes when dropped.
pub(crate) struct LabDns {
    _servers: Vec<UpstreamDns>,
    dir: PathBuf,
}

impl LabDns {
    /// Starts a server on every host of `lab`, knowing the lab's host names, and writes the
    /// hosts' resolv.conf. Must be called inside a tokio runtime, whose tasks serve.
    pub(crate) fn start(lab: &Lab) -> anyhow::Result<Self> {
        let zone = Arc::new(Zone::of_lab(lab.topology()));
        let servers = (lab.topology().hosts.iter())
            .map(|host| {
                let netns = lab.host(&host.name).expect("a host of the lab");
                UpstreamDns::serve(netns, zone.clone())
                    .with_context(|| format!("lab host {}: DNS server", host.name))
            })
            .collect::<anyhow::Result<_>>()?;
        let dir = std::env::temp_dir().join(format!("{FILES_PREFIX}{}", std::process::id()));
        // One left by a dead process of the same pid is replaced.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let resolv_conf = dir.join("resolv.conf");
        std::fs::write(&resolv_conf, resolv_conf_text(lab.name()))
            .with_context(|| format!("cannot write {}", resolv_conf.display()))?;
        Ok(Self {
            _servers: servers,
            dir,
        })
    }

    /// What processes started in the lab's hosts see over the machine's files.
    pub(crate) fn files(&self) -> HostFiles {
        let resolv_conf = self.dir.join("resolv.conf").display().to_string();
        HostFiles::from([("/etc/resolv.conf".to_string(), resolv_conf)])
    }
}

impl Drop for LabDns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The resolv.conf of lab `lab`'s hosts: the server on their own loopback.
fn resolv_conf_text(lab: &str) -> String {
    format!(
        "# drydock lab {lab}: the lab's host names, and NXDOMAIN for every other name\nnameserver {}\n",
        UPSTREAM.ip()
    )
}
