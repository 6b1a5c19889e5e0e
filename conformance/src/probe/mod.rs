//! Probes run inside namespaces: reach, ping, resolve, HTTP; listeners; and the lab's upstream
//! DNS server.
//!
//! Every probe takes the [`Netns`](drydock_netsim::Netns) to probe *from* (a container's network
//! namespace) and returns an outcome enum whose `Display` reads well in an expected-vs-observed
//! message: `reached (banner: drydock web 80)`, `refused`, `timed out`, `unreachable: No route to
//! host`, `NXDOMAIN`, `answers 172.18.0.2, 172.18.0.3`, `HTTP 200 (body: ok)`.
//!
//! Sockets are created on a short-lived thread inside the namespace (`Netns::run`), then driven
//! from async code wherever the caller runs: no async task ever enters a namespace. Wire formats
//! (ICMP echo, DNS messages, HTTP responses) are pure functions in the submodules, unit-tested
//! without root; the I/O around them is thin.
//!
//! Outcomes are never `Result`s: a probe that cannot even open its socket answers `Error(..)`,
//! so that the runner reports it next to the expectation it was checking.

mod dns;
mod http;
mod icmp;
mod listener;
mod ping;
mod reach;
mod sock;
mod upstream;

use std::fmt;
use std::str::FromStr;

pub use dns::{Answered, RecordData, RecordKind, Resolution, resolve, reverse_name};
pub use http::{Http, http_get};
pub use listener::{ListenKind, Listener};
pub use ping::{Echo, Ping, ping, ping_with};
pub use reach::{Proto, Reach, reach};
pub use upstream::{UPSTREAM, UpstreamDns, Zone};

/// A protocol or listener kind that is not one of the known names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseKindError {
    given: String,
    expected: &'static str,
}

impl fmt::Display for ParseKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown kind {:?}: expected {}",
            self.given, self.expected
        )
    }
}

impl std::error::Error for ParseKindError {}

/// Parses `text` (ASCII case-insensitive) as one of `names`, returning its value.
fn parse_kind<T: Copy>(
    text: &str,
    names: &[(&str, T)],
    expected: &'static str,
) -> Result<T, ParseKindError> {
    names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, value)| value)
        .ok_or_else(|| ParseKindError {
            given: text.to_owned(),
            expected,
        })
}

impl FromStr for Proto {
    type Err = ParseKindError;
    fn from_str(s: &str) -> Result<Self, ParseKindError> {
        parse_kind(s, &[("tcp", Proto::Tcp), ("udp", Proto::Udp)], "tcp or udp")
    }
}

impl FromStr for ListenKind {
    type Err = ParseKindError;
    fn from_str(s: &str) -> Result<Self, ParseKindError> {
        parse_kind(
            s,
            &[
                ("tcp", ListenKind::Tcp),
                ("udp", ListenKind::Udp),
                ("http", ListenKind::Http),
            ],
            "tcp, udp or http",
        )
    }
}

impl FromStr for RecordKind {
    type Err = ParseKindError;
    fn from_str(s: &str) -> Result<Self, ParseKindError> {
        parse_kind(
            s,
            &[
                ("a", RecordKind::A),
                ("aaaa", RecordKind::Aaaa),
                ("ptr", RecordKind::Ptr),
                ("mx", RecordKind::Mx),
            ],
            "A, AAAA, PTR or MX",
        )
    }
}

/// Writes `text` for a one-line message: control characters escaped, at most `max` characters.
fn write_excerpt(f: &mut fmt::Formatter<'_>, text: &str, max: usize) -> fmt::Result {
    for (written, c) in text.chars().enumerate() {
        if written == max {
            return f.write_str("…");
        }
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_case_insensitively() {
        assert_eq!("tcp".parse::<Proto>(), Ok(Proto::Tcp));
        assert_eq!("UDP".parse::<Proto>(), Ok(Proto::Udp));
        assert_eq!("http".parse::<ListenKind>(), Ok(ListenKind::Http));
        assert_eq!("udp".parse::<ListenKind>(), Ok(ListenKind::Udp));
        assert_eq!("AAAA".parse::<RecordKind>(), Ok(RecordKind::Aaaa));
        let error = "sctp".parse::<Proto>().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"unknown kind "sctp": expected tcp or udp"#
        );
        assert!("http".parse::<Proto>().is_err());
    }

    #[test]
    fn kinds_display_as_they_parse() {
        for proto in [Proto::Tcp, Proto::Udp] {
            assert_eq!(proto.to_string().parse::<Proto>(), Ok(proto));
        }
        for kind in [ListenKind::Tcp, ListenKind::Udp, ListenKind::Http] {
            assert_eq!(kind.to_string().parse::<ListenKind>(), Ok(kind));
        }
        for kind in [
            RecordKind::A,
            RecordKind::Aaaa,
            RecordKind::Ptr,
            RecordKind::Mx,
        ] {
            assert_eq!(kind.to_string().parse::<RecordKind>(), Ok(kind));
        }
    }

    struct Excerpt<'a>(&'a str, usize);
    impl fmt::Display for Excerpt<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_excerpt(f, self.0, self.1)
        }
    }

    #[test]
    fn excerpts_escape_and_truncate() {
        assert_eq!(Excerpt("a\tb\nc", 10).to_string(), "a\\tb\\nc");
        assert_eq!(Excerpt("abcdef", 3).to_string(), "abc…");
        assert_eq!(Excerpt("abc", 3).to_string(), "abc");
    }
}
