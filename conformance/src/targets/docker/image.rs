//! The one image scenarios run: the machine's static busybox in a root filesystem built in
//! memory, imported into each private daemon and tagged `busybox:latest` there (no registry is
//! reachable, and none is needed).

use std::path::Path;

use serde_json::Value;

use super::http::{Api, CallError, encode};
use crate::targets::{TargetError, TargetResult};

/// Where the busybox binary comes from.
const BUSYBOX: &str = "/bin/busybox";

/// Repository the image is imported as (the tag is a hash of the root filesystem).
pub(super) const REPOSITORY: &str = "drydock/busybox";

/// Applets linked to busybox in `/bin`.
const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "sleep",
    "cat",
    "ls",
    "ip",
    "ping",
    "ping6",
    "nc",
    "wget",
    "nslookup",
    "hostname",
    "ifconfig",
    "route",
    "netstat",
    "arp",
    "traceroute",
    "httpd",
    "telnet",
    "udhcpc",
    "echo",
    "printf",
    "env",
    "ps",
    "kill",
    "top",
    "true",
    "false",
    "id",
    "grep",
    "sed",
    "awk",
    "head",
    "tail",
    "tee",
    "touch",
    "mkdir",
    "rm",
    "mv",
    "cp",
    "ln",
    "sort",
    "uniq",
    "wc",
    "seq",
    "date",
    "uname",
    "dd",
    "test",
    "which",
    "timeout",
    "watch",
    "vi",
];

/// Image settings applied at import (Dockerfile instructions; 20.10 accepts CMD, ENTRYPOINT,
/// ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, USER, VOLUME and WORKDIR here, not STOPSIGNAL).
const CHANGES: &[&str] = &[r#"CMD ["sleep","1000000000"]"#];

/// The names a scenario may give the image.
const NAMES: &[&str] = &[
    "busybox",
    "busybox:latest",
    "library/busybox",
    "library/busybox:latest",
    "docker.io/library/busybox",
    "docker.io/library/busybox:latest",
];

/// A root filesystem tar, ready to import.
#[derive(Debug)]
pub(super) struct Rootfs {
    /// The tar archive.
    pub(super) tar: Vec<u8>,
    /// Short hash of the archive: the image tag.
    pub(super) tag: String,
}

/// Checks that a scenario's image is one the target has.
pub(super) fn check_name(image: &str) -> TargetResult<()> {
    if NAMES.contains(&image) {
        Ok(())
    } else {
        Err(TargetError::new(format!(
            "image {image} is not available: scenarios run busybox (no registry is reachable)"
        )))
    }
}

/// Builds the root filesystem from the machine's `/bin/busybox`.
pub(super) fn rootfs() -> TargetResult<Rootfs> {
    let busybox = std::fs::read(BUSYBOX).map_err(|e| {
        TargetError::new(format!(
            "{BUSYBOX}: {e}: the docker target needs a static busybox (install busybox-static)"
        ))
    })?;
    if !is_static_elf(&busybox) {
        return Err(TargetError::new(format!(
            "{BUSYBOX} is not a statically linked executable: install busybox-static"
        )));
    }
    let tar = archive(&busybox)
        .map_err(|e| TargetError::new(format!("building the busybox image: {e}")))?;
    let tag = format!("{:016x}", fnv1a(&tar));
    Ok(Rootfs { tar, tag })
}

fn archive(busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    };
    for (dir, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
        ("var", 0o755),
    ] {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        builder.append_data(&mut h, dir, std::io::empty())?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
    builder.append_data(&mut h, "bin/busybox", busybox)?;
    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        builder.append_link(&mut h, Path::new("bin").join(applet), "busybox")?;
    }
    for (path, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o644, text.len() as u64);
        builder.append_data(&mut h, path, text.as_bytes())?;
    }
    builder.into_inner()
}

/// True for an ELF executable without a program interpreter (`PT_INTERP`).
fn is_static_elf(data: &[u8]) -> bool {
    if data.len() < 52 || &data[..4] != b"\x7fELF" {
        return false;
    }
    let wide = data[4] == 2;
    let little = data[5] == 1;
    let read = |offset: usize, size: usize| -> Option<u64> {
        let bytes = data.get(offset..offset + size)?;
        let mut value = 0u64;
        for (i, byte) in bytes.iter().enumerate() {
            let shift = if little { i } else { size - 1 - i };
            value |= u64::from(*byte) << (8 * shift);
        }
        Some(value)
    };
    let (phoff, phentsize, phnum) = if wide {
        (read(0x20, 8), read(0x36, 2), read(0x38, 2))
    } else {
        (read(0x1c, 4), read(0x2a, 2), read(0x2c, 2))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return false;
    };
    const PT_INTERP: u64 = 3;
    (0..phnum).all(|i| {
        let entry = (phoff + i * phentsize) as usize;
        read(entry, 4).is_some_and(|kind| kind != PT_INTERP)
    })
}

/// 64-bit FNV-1a (a short, stable content hash for the tag).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `docker import` of the root filesystem, then `docker tag ... busybox:latest`.
pub(super) async fn import(api: &Api, rootfs: &Rootfs) -> Result<(), CallError> {
    let mut path = format!(
        "/v{}/images/create?fromSrc=-&repo={}&tag={}",
        super::http::API_VERSION,
        encode(REPOSITORY),
        encode(&rootfs.tag)
    );
    for change in CHANGES {
        path.push_str(&format!("&changes={}", encode(change)));
    }
    let reply = api
        .request("POST", &path, Some(("application/x-tar", &rootfs.tar)))
        .await?;
    let status = reply.status;
    let progress = reply.success()?;
    // The answer is a stream of JSON progress messages; an error arrives as one of them.
    let mut id = None;
    for message in serde_json::Deserializer::from_slice(&progress).into_iter::<Value>() {
        let message = message.map_err(|e| CallError::Transport {
            what: "image import".into(),
            detail: format!("unreadable progress message: {e}"),
        })?;
        if let Some(error) = message.get("error").and_then(Value::as_str) {
            return Err(CallError::Daemon {
                status,
                message: error.to_string(),
            });
        }
        if let Some(status) = message.get("status").and_then(Value::as_str)
            && status.starts_with("sha256:")
        {
            id = Some(status.to_string());
        }
    }
    let source = id.unwrap_or_else(|| format!("{REPOSITORY}:{}", rootfs.tag));
    api.call(
        "POST",
        &format!("/images/{source}/tag?repo=busybox&tag=latest"),
        None,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_busybox_is_available() {
        assert!(check_name("busybox").is_ok());
        assert!(check_name("docker.io/library/busybox:latest").is_ok());
        assert_eq!(
            check_name("nginx").unwrap_err().message,
            "image nginx is not available: scenarios run busybox (no registry is reachable)"
        );
    }

    #[test]
    fn static_executables_are_told_from_dynamic_ones() {
        if let Ok(busybox) = std::fs::read(BUSYBOX) {
            assert!(is_static_elf(&busybox), "busybox-static is static");
        }
        let dynamic = std::fs::read("/bin/ls").unwrap();
        assert!(!is_static_elf(&dynamic), "/bin/ls has an interpreter");
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }

    #[test]
    fn the_rootfs_holds_busybox_and_its_applets() {
        let busybox = b"\x7fELF fake".to_vec();
        let tar = archive(&busybox).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            if path == "bin/sh" {
                assert_eq!(
                    entry.link_name().unwrap().unwrap().to_str(),
                    Some("busybox")
                );
            }
            names.push(path);
        }
        for name in [
            "bin/busybox",
            "bin/sh",
            "bin/ip",
            "bin/nc",
            "etc/passwd",
            "tmp",
        ] {
            assert!(
                names.iter().any(|n| n.trim_end_matches('/') == name),
                "{name} in {names:?}"
            );
        }
        assert_eq!(
            archive_hash(&busybox),
            archive_hash(&busybox),
            "deterministic"
        );
    }

    fn archive_hash(busybox: &[u8]) -> u64 {
        fnv1a(&archive(busybox).unwrap())
    }
}
