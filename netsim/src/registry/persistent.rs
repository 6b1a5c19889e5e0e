//! Persistent labs: namespaces bind-mounted as `/run/netns/drydock-LAB.HOST` (so `ip netns exec`
//! enters them) and a JSON description in `/run/drydock/labs/LAB.json`; their holder (a process
//! that serves them as a held lab's, started by `drydock lab up --persist`) opens them from
//! there ([`open`]) and logs to `/run/drydock/labs/LAB.log`. `gc` removes them, and any mount a
//! crashed run left without its description.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{Entry, HostNs, LabInfo, not_up};
use crate::lab::{FABRIC, Lab, persisted_name};
use crate::netns::Netns;

/// Where persistent labs keep their descriptions.
pub const STATE_DIR: &str = "/run/drydock/labs";
/// Where persistent labs' namespaces are mounted (as `ip netns` expects).
pub const NETNS_DIR: &str = "/run/netns";

fn state_file(name: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{name}.json"))
}

/// Where the holder of persistent lab `name` writes what it has to say (its errors).
pub fn log_file(name: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{name}.log"))
}

/// True when a persistent lab of that name exists.
pub(super) fn exists(name: &str) -> bool {
    state_file(name).exists()
}

/// Names of the persistent labs.
pub(super) fn names() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    match std::fs::read_dir(STATE_DIR) {
        Ok(dir) => {
            for file in dir {
                let path = file?.path();
                if path.extension().is_some_and(|e| e == "json")
                    && let Some(stem) = path.file_stem()
                {
                    names.push(stem.to_string_lossy().into_owned());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(names)
}

/// Makes `lab` persistent: mounts its namespaces, then records its description. On error nothing
/// is left. The lab stays up after this process exits, until `lab down` or `gc`.
pub fn persist(lab: &Lab) -> io::Result<()> {
    std::fs::create_dir_all(STATE_DIR)?;
    let mounts = lab.persist(Path::new(NETNS_DIR))?;
    let written = serde_json::to_vec_pretty(&LabInfo::persistent(lab))
        .map_err(io::Error::other)
        .and_then(|json| write_atomically(&state_file(lab.name()), &json));
    if let Err(e) = written {
        for mount in &mounts {
            let _ = Netns::unpersist(mount);
        }
        return Err(e);
    }
    Ok(())
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("json.tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

pub(super) fn read(name: &str) -> io::Result<LabInfo> {
    let path = state_file(name);
    let text = std::fs::read(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => not_up(name),
        _ => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
    })?;
    serde_json::from_slice(&text).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// Opens persistent lab `name` from its mounts, for its holder.
pub fn open(name: &str) -> io::Result<Lab> {
    Lab::open_persisted(read(name)?.topology, Path::new(NETNS_DIR))
}

pub(super) fn host(name: &str, host: &str) -> io::Result<HostNs> {
    let info = read(name)?;
    if info.topology.host(host).is_none() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            info.topology.unknown_host(host),
        ));
    }
    let path = Path::new(NETNS_DIR).join(persisted_name(name, host));
    Ok(HostNs {
        netns: Netns::open(&path)?,
        userns: None,
        files: Default::default(),
        pidns: None,
    })
}

/// Removes a persistent lab: exactly the mounts its description lists, then the description
/// and its holder's log. Its holder, if any, has gone down first ([`Entry::down`]).
pub(super) fn remove(name: &str) -> io::Result<()> {
    let info = read(name)?;
    let namespaces = info
        .topology
        .hosts
        .iter()
        .map(|h| h.name.as_str())
        .chain([FABRIC]);
    let mut errors = Vec::new();
    for namespace in namespaces {
        let path = Path::new(NETNS_DIR).join(persisted_name(name, namespace));
        if let Err(e) = Netns::unpersist(&path) {
            errors.push(format!("{}: {e}", path.display()));
        }
    }
    if let Err(e) = std::fs::remove_file(state_file(name)) {
        errors.push(format!("{}: {e}", state_file(name).display()));
    }
    match std::fs::remove_file(log_file(name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            errors.push(format!("{}: {e}", log_file(name).display()));
        }
        _ => {}
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(errors.join("; ")))
    }
}

/// What `gc` removed, and what it could not.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Each thing removed, described for a person.
    pub removed: Vec<String>,
    /// Each failure; gc carries on past them.
    pub errors: Vec<String>,
}

/// Removes every persistent lab as `lab down` does (its holder first, if it has not died),
/// then any drydock namespace mount or state file left without its lab (by a run that crashed
/// while persisting). Labs held by a process alone are left alone: they go when their process
/// does. Carries on past errors and reports them all.
pub fn gc() -> io::Result<GcReport> {
    let mut report = GcReport::default();
    // Labs that could not go down keep what is theirs.
    let mut kept = Vec::new();
    for entry in super::list()? {
        let Entry::Persistent { name, held } = &entry else {
            continue;
        };
        let holder = if *held { " and its holder" } else { "" };
        match entry.down() {
            Ok(()) => report
                .removed
                .push(format!("persistent lab {name}{holder}")),
            Err(e) => {
                report.errors.push(format!("persistent lab {name}: {e}"));
                kept.extend([persisted_name(name, ""), format!("{name}.")]);
            }
        }
    }
    let theirs = |path: &Path| {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        kept.iter().any(|prefix| file.starts_with(prefix.as_str()))
    };
    for path in leftovers(NETNS_DIR, "drydock-")?
        .into_iter()
        .chain(leftovers(STATE_DIR, "")?)
        .filter(|path| !theirs(path))
    {
        let removed = if path.starts_with(NETNS_DIR) {
            Netns::unpersist(&path).map(|()| format!("namespace mount {}", path.display()))
        } else {
            std::fs::remove_file(&path).map(|()| format!("state file {}", path.display()))
        };
        match removed {
            Ok(what) => report.removed.push(what),
            Err(e) => report.errors.push(format!("{}: {e}", path.display())),
        }
    }
    Ok(report)
}

/// Files in `dir` whose names start with `prefix`, sorted.
fn leftovers(dir: &str, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(prefix) {
                    found.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    found.sort();
    Ok(found)
}
