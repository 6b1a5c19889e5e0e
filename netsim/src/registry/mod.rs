//! Finding labs from other processes, without leaving anything behind on a crash.
//!
//! A lab held by a process (`drydock lab up`) answers on an abstract unix socket ([`held`]); the
//! kernel removes it with its last holder, so a killed process leaves no entry to clean up. A
//! *persistent* lab (`lab up --persist`) outlives processes: its namespaces are bind mounts
//! under `/run/netns` and its description a JSON file ([`persistent`]). A holder process,
//! started in the background by `lab up --persist`, answers on the same socket as a held lab's
//! (with the lab's PID namespace and files); when it has died, the lab is reached through its
//! mounts alone.

pub mod held;
pub mod persistent;

use std::io;

use serde::{Deserialize, Serialize};

use crate::lab::Lab;
use crate::netns::Netns;
use crate::pidns::Pidns;
use crate::topology::Topology;
use crate::userns::{self, Userns};

pub use held::Registration;
pub use persistent::{GcReport, gc};

/// What a lab says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabInfo {
    /// The topology with every address and route resolved.
    pub topology: Topology,
    /// The holding process; `None` for a persistent lab without one (its holder died).
    pub pid: Option<u32>,
    /// Built inside a user namespace, by a user without privileges on the machine.
    pub rootless: bool,
    /// Persistent: its namespaces are mounted, and outlive its holder.
    #[serde(default)]
    pub persistent: bool,
}

impl LabInfo {
    /// A lab held by this process.
    pub fn held(lab: &Lab) -> Self {
        Self {
            topology: lab.topology().clone(),
            pid: Some(std::process::id()),
            rootless: !userns::in_initial().unwrap_or(true),
            persistent: false,
        }
    }

    /// A persistent lab as its description records it: no holder (the one that runs says so
    /// itself), and never rootless (it needs root).
    pub fn persistent(lab: &Lab) -> Self {
        Self {
            topology: lab.topology().clone(),
            pid: None,
            rootless: false,
            persistent: true,
        }
    }
}

/// Files a process started in a lab host sees over the machine's: path in the host (such as
/// `/etc/resolv.conf`) → file of the lab's holder, to bind-mount there.
pub type HostFiles = std::collections::BTreeMap<String, String>;

/// A host's namespace, ready to enter.
#[derive(Debug)]
pub struct HostNs {
    /// The host's network namespace.
    pub netns: Netns,
    /// The user namespace owning it, to join first, for rootless labs.
    pub userns: Option<Userns>,
    /// What its processes see over the machine's files (the lab's resolv.conf); none for a
    /// persistent lab whose holder died.
    pub files: HostFiles,
    /// The PID namespace its processes start in, so that they end with the lab's holder
    /// ([`Pidns::spawn`]); none for a persistent lab whose holder died.
    pub pidns: Option<Pidns>,
}

/// A lab as found by [`list`] or [`find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Held by a running process, reached through its socket; gone with it.
    Held(String),
    /// Persistent: namespaces mounted under [`persistent::NETNS_DIR`], and a holder process
    /// answering as a held lab's does unless it died (`held` false).
    Persistent {
        /// The lab's name.
        name: String,
        /// Whether its holder was answering when the lab was found.
        held: bool,
    },
}

impl Entry {
    /// The lab's name.
    pub fn name(&self) -> &str {
        match self {
            Entry::Held(name) | Entry::Persistent { name, .. } => name,
        }
    }

    /// Whether a process holds the lab: serves its engines, its DNS and its PID namespace.
    pub fn is_held(&self) -> bool {
        match self {
            Entry::Held(_) => true,
            Entry::Persistent { held, .. } => *held,
        }
    }

    /// The lab's description.
    pub fn describe(&self) -> io::Result<LabInfo> {
        match self {
            Entry::Held(name) => held::describe(name),
            Entry::Persistent { name, held } => {
                without_holder(*held, || held::describe(name), || persistent::read(name))
            }
        }
    }

    /// The namespace of `host`, with the user namespace to join for rootless labs.
    pub fn host(&self, host: &str) -> io::Result<HostNs> {
        match self {
            Entry::Held(name) => held::host(name, host),
            Entry::Persistent { name, held } => without_holder(
                *held,
                || held::host(name, host),
                || persistent::host(name, host),
            ),
        }
    }

    /// Removes the lab: asks its holder to stop and waits until it has; then unmounts a
    /// persistent lab's namespaces and removes its description.
    pub fn down(&self) -> io::Result<()> {
        match self {
            Entry::Held(name) => held::down(name),
            Entry::Persistent { name, held } => {
                without_holder(*held, || held::down(name), || Ok(()))?;
                persistent::remove(name)
            }
        }
    }
}

/// What `holder` answers when the lab has one, else (or when it has died since the lab was
/// found) what `mounts` gives.
fn without_holder<T>(
    held: bool,
    holder: impl FnOnce() -> io::Result<T>,
    mounts: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    if held {
        match holder() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            answered => return answered,
        }
    }
    mounts()
}

/// Every lab that is up, held or persistent, sorted by name.
pub fn list() -> io::Result<Vec<Entry>> {
    let held = held::names()?;
    let persistent = persistent::names()?;
    let mut entries: Vec<Entry> = (held.iter())
        .filter(|name| !persistent.contains(name))
        .cloned()
        .map(Entry::Held)
        .collect();
    entries.extend(persistent.into_iter().map(|name| Entry::Persistent {
        held: held.contains(&name),
        name,
    }));
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    entries.dedup();
    Ok(entries)
}

/// The lab named `name`.
pub fn find(name: &str) -> io::Result<Entry> {
    list()?
        .into_iter()
        .find(|e| e.name() == name)
        .ok_or_else(|| not_up(name))
}

fn not_up(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no lab named {name:?} is up (see `drydock lab ls`)"),
    )
}
