//! The files a container sees: `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, written as
//! Docker Engine 20.10 writes them.

use std::fmt::Write as _;
use std::net::IpAddr;

/// The files an engine writes for each container, as the container sees them.
pub(crate) const PATHS: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

/// The name of a container's file in its state directory (`hosts`, `resolv.conf`...).
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The lines every `/etc/hosts` starts with.
const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// A legacy link as `/etc/hosts` records it: the linked container's address and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkEntry {
    /// The linked container's address on the default bridge.
    pub(crate) ip: IpAddr,
    /// The alias given with `--link name:alias` (or the name).
    pub(crate) alias: String,
    /// The linked container's short id.
    pub(crate) short_id: String,
    /// The linked container's name.
    pub(crate) name: String,
}

/// `/etc/hosts`: the header, `--add-host` entries, links, then the container's own addresses
/// with its hostname.
pub(crate) fn hosts(
    own: &[IpAddr],
    hostname: &str,
    extra: &[(String, IpAddr)],
    links: &[LinkEntry],
) -> String {
    let mut out = String::from(HOSTS_HEADER);
    for (name, ip) in extra {
        let _ = writeln!(out, "{ip}\t{name}");
    }
    for link in links {
        // Docker writes the alias, then the short id, then the name (once if they coincide).
        let mut names = vec![link.alias.as_str(), link.short_id.as_str()];
        if link.name != link.alias {
            names.push(&link.name);
        }
        let _ = writeln!(out, "{}\t{}", link.ip, names.join(" "));
    }
    // A fully qualified hostname is written with its first label too (libnetwork's
    // updateHostsFile).
    let names = match hostname.split_once('.') {
        Some((short, _)) => format!("{hostname} {short}"),
        None => hostname.to_string(),
    };
    for ip in own {
        let _ = writeln!(out, "{ip}\t{names}");
    }
    out
}

/// `/etc/resolv.conf` as libnetwork builds it (`resolvconf.Build`): `search` (`--dns-search`,
/// none when it is only "."), the nameservers, `options` (`--dns-option`). On user networks
/// the nameserver is the embedded DNS server, with `ndots:0` unless an option sets ndots
/// (`rebuildDNS`); on the default bridge (and for `--network host|none`) the daemon's or
/// container's `--dns` servers as given.
pub(crate) fn resolv_conf(
    embedded: bool,
    servers: &[IpAddr],
    search: &[String],
    options: &[String],
) -> String {
    let mut out = String::new();
    let search = search.join(" ");
    if !search.trim().is_empty() && search.trim() != "." {
        let _ = writeln!(out, "search {search}");
    }
    let mut options = options.to_vec();
    if embedded {
        out.push_str("nameserver 127.0.0.11\n");
        if !options.iter().any(|o| o.contains("ndots")) {
            options.push("ndots:0".into());
        }
    } else {
        for server in servers {
            let _ = writeln!(out, "nameserver {server}");
        }
    }
    let options = options.join(" ");
    if !options.trim().is_empty() {
        let _ = writeln!(out, "options {options}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_links_then_own_addresses() {
        let link = LinkEntry {
            ip: "172.17.0.2".parse().unwrap(),
            alias: "db".into(),
            short_id: "1e77bf3d0fde".into(),
            name: "web".into(),
        };
        let text = hosts(
            &["172.17.0.3".parse().unwrap()],
            "7963465422c2",
            &[],
            &[link],
        );
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            text.ends_with("172.17.0.2\tdb 1e77bf3d0fde web\n172.17.0.3\t7963465422c2\n"),
            "{text}"
        );
    }

    #[test]
    fn a_qualified_hostname_is_written_with_its_short_name() {
        let text = hosts(
            &["172.17.0.2".parse().unwrap()],
            "foobar.example.com",
            &[],
            &[],
        );
        assert!(
            text.ends_with("172.17.0.2\tfoobar.example.com foobar\n"),
            "{text}"
        );
    }

    #[test]
    fn resolv_conf_is_embedded_or_the_given_servers() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            resolv_conf(true, &[], &[], &[]),
            "nameserver 127.0.0.11\noptions ndots:0\n"
        );
        let local = ["127.0.0.1".parse().unwrap()];
        assert_eq!(
            resolv_conf(false, &local, &[], &[]),
            "nameserver 127.0.0.1\n"
        );
        assert_eq!(
            resolv_conf(false, &local, &words(&["mydomain"]), &words(&["ndots:9"])),
            "search mydomain\nnameserver 127.0.0.1\noptions ndots:9\n"
        );
        assert_eq!(
            resolv_conf(true, &[], &words(&["."]), &words(&["ndots:3", "rotate"])),
            "nameserver 127.0.0.11\noptions ndots:3 rotate\n"
        );
    }
}
