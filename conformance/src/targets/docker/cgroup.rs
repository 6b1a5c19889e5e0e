//! The cgroups of a run: where the machine mounts its cgroup hierarchies, and removing the
//! containers' cgroups (`drydock/RUN/HOST`) that the kernel keeps after their processes died.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Mount points of the cgroup file systems (v1 hierarchies and v2) in our mount namespace.
pub(super) fn cgroup_mounts() -> Vec<PathBuf> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let mount_point = left.split_whitespace().nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
        })
        .collect()
}

/// Mount points as /proc/self/mountinfo writes them (`\040` for a space...).
pub(super) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes the cgroup `relative` (and everything below it) from every cgroup hierarchy; never
/// its parents: another run's runc may be making its own cgroups under them at this moment.
pub(super) fn remove_cgroups(relative: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    for mount in cgroup_mounts() {
        let path = mount.join(relative);
        if path.is_dir()
            && let Err(e) = remove_cgroup(&path)
        {
            problems.push(format!("removing cgroup {}: {e}", path.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// rmdir, depth first (a cgroup holds only control files besides its children). A cgroup whose
/// last task is still exiting is busy for a moment: retried for up to a second.
fn remove_cgroup(path: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup(&entry.path())?;
        }
    }
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape("/x\\"), "/x\\");
    }
}
