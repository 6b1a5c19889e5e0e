//! The expectation grammar: a line's words to an [`Expectation`] (see the parent module for
//! the forms), with the index of the word at fault when they are not one.

use std::net::IpAddr;
use std::time::Duration;

use super::{
    Asked, Endpoint, ExpectError, Expectation, Failure, Port, Question, Unresolved, Value,
    whole_match,
};
use crate::probe::{Proto, RecordKind};
use crate::scenario::words::Word;

fn error(word: usize, message: impl Into<String>) -> ExpectError {
    ExpectError {
        word,
        message: message.into(),
    }
}

const FORMS: &str = "expected `A reaches|cannot-reach B:PORT`, `A pings|cannot-ping B`, `A resolves|does-not-resolve NAME`, `A gets http://B:PORT/`, `network NET ...`, `networks ... are NAME,...` or `container C ...`";

/// The longest a `within` clause may wait.
pub const WITHIN_MAX: Duration = Duration::from_secs(300);

/// Splits the `within DURATION` clause off the end of an expectation line: how many words
/// come before it (the expectation itself, for [`parse`]), and the duration (`10s`, `500ms`,
/// `1.5s`; more than zero, at most [`WITHIN_MAX`]). Without the clause: all the words, `None`.
pub fn within(words: &[Word]) -> Result<(usize, Option<Duration>), ExpectError> {
    let n = words.len();
    let is_within = |i: usize| words.get(i).is_some_and(|w| w.text == "within");
    if n >= 1 && is_within(n - 1) {
        return Err(error(
            n,
            "expected how long after `within`, e.g. `within 10s`",
        ));
    }
    if n < 3 || !is_within(n - 2) {
        return Ok((n, None));
    }
    let text = &words[n - 1].text;
    let duration = parse_duration(text).ok_or_else(|| {
        error(
            n - 1,
            format!("{text:?}: expected a duration such as 10s, 500ms or 1.5s"),
        )
    })?;
    if duration.is_zero() || duration > WITHIN_MAX {
        return Err(error(
            n - 1,
            format!(
                "{text:?}: expected more than 0 and at most {} s",
                WITHIN_MAX.as_secs()
            ),
        ));
    }
    Ok((n - 2, Some(duration)))
}

/// `10s`, `1.5s`, `500ms`.
fn parse_duration(text: &str) -> Option<Duration> {
    let (number, scale) = match text.strip_suffix("ms") {
        Some(number) => (number, 1e-3),
        None => (text.strip_suffix('s')?, 1.0),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let seconds = number.parse::<f64>().ok()? * scale;
    Duration::try_from_secs_f64(seconds).ok()
}

/// Parses the words of an expectation line.
pub fn parse(words: &[Word]) -> Result<Expectation, ExpectError> {
    let w: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let at = |i: usize| -> Result<&str, ExpectError> {
        w.get(i)
            .copied()
            .ok_or_else(|| error(w.len(), "the line ends too early"))
    };
    let no_more = |n: usize| expect_end(&w, n);
    match (at(0)?, at(1)?) {
        ("network", network) => network_fact(&w, network),
        ("networks", _) => networks_listed(&w),
        ("container", container) => container_fact(&w, container),
        (from, verb @ ("reaches" | "cannot-reach")) => {
            let (to, port, proto) = target_port(at(2)?).map_err(|m| error(2, m))?;
            let fails = if verb == "reaches" {
                no_more(3)?;
                None
            } else {
                let how = match w.get(3) {
                    None => None,
                    Some(&"refused") => Some(Failure::Refused),
                    Some(&"timeout") => Some(Failure::Timeout),
                    Some(&"unreachable") => Some(Failure::Unreachable),
                    Some(other) => {
                        return Err(error(
                            3,
                            format!("{other:?}: expected refused, timeout or unreachable"),
                        ));
                    }
                };
                no_more(4)?;
                Some(how)
            };
            Ok(Expectation::Reach {
                from: from.into(),
                to,
                port,
                proto,
                fails,
            })
        }
        (from, verb @ ("pings" | "cannot-ping")) => {
            let to = Endpoint::parse(at(2)?);
            let (size, df) = ping_clauses(&w)?;
            Ok(Expectation::Ping {
                from: from.into(),
                to,
                succeeds: verb == "pings",
                size,
                df,
            })
        }
        (from, "resolves") => {
            let clauses = dns_clauses(&w, true)?;
            let ipv6_only = clauses.to.is_some_and(|(_, list)| {
                list.split(',')
                    .all(|a| a.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()))
            });
            let kind = clauses.kind.unwrap_or(if ipv6_only {
                RecordKind::Aaaa
            } else {
                RecordKind::A
            });
            let (answers, names) = match (clauses.to, kind) {
                (None, _) => (None, None),
                (Some((_, list)), RecordKind::A | RecordKind::Aaaa) => {
                    (Some(list.split(',').map(Endpoint::parse).collect()), None)
                }
                (Some((word, list)), _) => {
                    let names: Vec<String> = list.split(',').map(String::from).collect();
                    if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains('@')) {
                        return Err(error(
                            word,
                            format!("{bad:?}: {kind} answers are domain names, like web.app-net"),
                        ));
                    }
                    (None, Some(names))
                }
            };
            Ok(Expectation::Resolve {
                from: from.into(),
                question: question(at(2)?, kind, clauses.proto)?,
                answers,
                names,
                ttl: clauses.ttl,
            })
        }
        (from, "does-not-resolve") => {
            let clauses = dns_clauses(&w, false)?;
            let kind = clauses.kind.unwrap_or(RecordKind::A);
            Ok(Expectation::NoResolve {
                from: from.into(),
                question: question(at(2)?, kind, clauses.proto)?,
                how: clauses.how.unwrap_or(Unresolved::NoAddress),
            })
        }
        (from, "gets") => {
            let (to, port, path) = http_url(at(2)?).map_err(|m| error(2, m))?;
            let status = match w.get(3) {
                None => 200,
                Some(s) => s
                    .parse()
                    .map_err(|_| error(3, format!("{s:?} is not an HTTP status")))?,
            };
            no_more(4)?;
            Ok(Expectation::Http {
                from: from.into(),
                to,
                port,
                path,
                status,
            })
        }
        (_, other) => Err(error(1, format!("{other:?} is not a verb here: {FORMS}"))),
    }
}

/// The largest echo data a ping may carry: an IPv4 datagram's 65535 bytes less the IP (20) and
/// ICMP (8) headers.
const PING_SIZE_MAX: u16 = 65507;

/// What follows the target of a ping (word 2), in any order, each at most once: `size N` (the
/// echo data, as ping's `-s`) and `df` (don't fragment, as ping's `-M do`).
fn ping_clauses(w: &[&str]) -> Result<(Option<u16>, bool), ExpectError> {
    let (mut size, mut df) = (None, false);
    let mut i = 3;
    while let Some(&word) = w.get(i) {
        match word {
            "size" if size.is_none() => {
                let value = *w
                    .get(i + 1)
                    .ok_or_else(|| error(i + 1, "expected the echo data's size in bytes"))?;
                let n = value
                    .parse::<u16>()
                    .ok()
                    .filter(|n| *n <= PING_SIZE_MAX)
                    .ok_or_else(|| {
                        error(
                            i + 1,
                            format!("{value:?}: expected a size in bytes, 0 to {PING_SIZE_MAX}"),
                        )
                    })?;
                size = Some(n);
                i += 2;
            }
            "df" if !df => {
                df = true;
                i += 1;
            }
            "size" | "df" => {
                return Err(error(
                    i,
                    format!("{word:?}: a second `{word}`, where one is allowed"),
                ));
            }
            _ => {
                return Err(error(
                    i,
                    format!("{word:?}: expected `size N`, `df` or nothing"),
                ));
            }
        }
    }
    Ok((size, df))
}

/// What follows the name of a DNS check, in any order, each at most once.
#[derive(Debug)]
struct DnsClauses<'a> {
    /// `to ANSWER[,ANSWER...]`: the index of the list's word, and the list.
    to: Option<(usize, &'a str)>,
    /// `ttl N`.
    ttl: Option<u32>,
    /// `as TYPE`.
    kind: Option<RecordKind>,
    /// `over udp|tcp` (UDP unless said).
    proto: Proto,
    /// `nxdomain|nodata|servfail|timeout|refused` (`does-not-resolve` only).
    how: Option<Unresolved>,
}

/// Reads the clauses after the name (word 2) of a `resolves` (`to`, `ttl`, `as`, `over`) or
/// `does-not-resolve` check (an outcome, `as`, `over`).
fn dns_clauses<'a>(w: &[&'a str], resolves: bool) -> Result<DnsClauses<'a>, ExpectError> {
    let expected = if resolves {
        "expected `to ANSWER[,ANSWER...]`, `ttl N`, `as A|AAAA|PTR|MX`, `over udp|tcp` or nothing"
    } else {
        "expected nxdomain, nodata, servfail, timeout, refused, `as A|AAAA|PTR|MX`, `over udp|tcp` or nothing"
    };
    let mut clauses = DnsClauses {
        to: None,
        ttl: None,
        kind: None,
        proto: Proto::Udp,
        how: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 3;
    while let Some(&word) = w.get(i) {
        let outcome = match word {
            "nxdomain" => Some(Unresolved::NxDomain),
            "nodata" => Some(Unresolved::NoData),
            "servfail" => Some(Unresolved::ServFail),
            "timeout" => Some(Unresolved::Timeout),
            "refused" => Some(Unresolved::Refused),
            _ => None,
        };
        let clause = match (word, outcome) {
            ("to" | "ttl", _) if resolves => word,
            ("as" | "over", _) => word,
            (_, Some(_)) if !resolves => "an outcome",
            _ => return Err(error(i, format!("{word:?}: {expected}"))),
        };
        if seen.contains(&clause) {
            let what = if clause == "an outcome" {
                "a second outcome".to_string()
            } else {
                format!("a second `{clause}`")
            };
            return Err(error(i, format!("{word:?}: {what}, where one is allowed")));
        }
        seen.push(clause);
        if let Some(how) = outcome
            && !resolves
        {
            clauses.how = Some(how);
            i += 1;
            continue;
        }
        let value = *w
            .get(i + 1)
            .ok_or_else(|| error(i + 1, "the line ends too early"))?;
        match word {
            "to" => clauses.to = Some((i + 1, value)),
            "ttl" => {
                let ttl = value
                    .parse()
                    .map_err(|_| error(i + 1, format!("{value:?} is not a TTL in seconds")))?;
                clauses.ttl = Some(ttl);
            }
            "as" => {
                let kind = value
                    .parse::<RecordKind>()
                    .map_err(|_| error(i + 1, format!("{value:?}: expected A, AAAA, PTR or MX")))?;
                clauses.kind = Some(kind);
            }
            _ => {
                clauses.proto = match value {
                    "udp" => Proto::Udp,
                    "tcp" => Proto::Tcp,
                    _ => return Err(error(i + 1, format!("{value:?}: expected udp or tcp"))),
                };
            }
        }
        i += 2;
    }
    Ok(clauses)
}

/// The question of a DNS check asking for the `kind` records of `name` (word 2).
fn question(name: &str, kind: RecordKind, proto: Proto) -> Result<Question, ExpectError> {
    let short_id = match name.strip_prefix("id(") {
        Some(rest) => match rest.strip_suffix(')') {
            Some(container) if !container.is_empty() && !container.contains(['(', ')']) => {
                Some(container.to_string())
            }
            _ => {
                return Err(error(
                    2,
                    format!("{name:?}: expected id(CONTAINER), a container's short ID"),
                ));
            }
        },
        None => None,
    };
    let name = match (short_id, kind) {
        (Some(_), RecordKind::Ptr) => {
            return Err(error(
                2,
                "a PTR check asks for an address or a container's, not id(CONTAINER)",
            ));
        }
        (Some(container), _) => Asked::ShortId(container),
        (None, RecordKind::Ptr) => Asked::Reverse(Endpoint::parse(name)),
        (None, _) => Asked::Name(name.to_string()),
    };
    Ok(Question { name, kind, proto })
}

/// `B:PORT[/tcp|/udp]`.
fn target_port(text: &str) -> Result<(Endpoint, Port, Proto), String> {
    let expected =
        || format!("{text:?}: expected TARGET:PORT[/tcp|/udp], e.g. web:80/tcp or h1:web->80/tcp");
    let (rest, proto) = match text.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Proto::Tcp),
        Some((rest, "udp")) => (rest, Proto::Udp),
        Some(_) => return Err(expected()),
        None => (text, Proto::Tcp),
    };
    let (host, port) = split_port(rest).ok_or_else(expected)?;
    Ok((Endpoint::parse(host), port, proto))
}

/// `HOST:PORT`, where HOST may be a bracketed IPv6 address and PORT `CONTAINER->PORT`.
fn split_port(text: &str) -> Option<(&str, Port)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = match port.split_once("->") {
        Some((container, port)) if !container.is_empty() => Port::Published {
            container: container.to_string(),
            port: port.parse().ok()?,
        },
        Some(_) => return None,
        None => Port::Number(port.parse().ok()?),
    };
    Some((host, port))
}

/// `http://B:PORT[/PATH]`.
fn http_url(text: &str) -> Result<(Endpoint, Port, String), String> {
    let expected = || format!("{text:?}: expected http://TARGET:PORT/PATH");
    let rest = text.strip_prefix("http://").ok_or_else(expected)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = split_port(authority).ok_or_else(expected)?;
    Ok((Endpoint::parse(host), port, path))
}

fn network_fact(w: &[&str], network: &str) -> Result<Expectation, ExpectError> {
    let (host, rest) = match w.get(2) {
        Some(&"on") => (
            Some(
                w.get(3)
                    .ok_or_else(|| error(3, "expected a host name after `on`"))?
                    .to_string(),
            ),
            4,
        ),
        _ => (None, 2),
    };
    let (path, value) = fact(w, rest, |name| match name {
        "subnet" => Some("IPAM.Config.0.Subnet".into()),
        "gateway" => Some("IPAM.Config.0.Gateway".into()),
        "driver" => Some("Driver".into()),
        "scope" => Some("Scope".into()),
        "internal" => Some("Internal".into()),
        "ipv6" => Some("EnableIPv6".into()),
        _ => None,
    })?;
    Ok(Expectation::Network {
        network: network.into(),
        host,
        path,
        value,
    })
}

/// `networks [on HOST] [filtered KEY=VALUE,...] are NAME,...|nothing`.
fn networks_listed(w: &[&str]) -> Result<Expectation, ExpectError> {
    let mut i = 1;
    let mut host = None;
    if w.get(i) == Some(&"on") {
        let name = w
            .get(i + 1)
            .ok_or_else(|| error(i + 1, "expected a host name after `on`"))?;
        host = Some(name.to_string());
        i += 2;
    }
    let mut filters = Vec::new();
    if w.get(i) == Some(&"filtered") {
        let list = w
            .get(i + 1)
            .ok_or_else(|| error(i + 1, "expected KEY=VALUE[,KEY=VALUE...]"))?;
        filters = list.split(',').map(String::from).collect();
        if let Some(bad) = filters.iter().find(|f| !f.contains('=')) {
            return Err(error(i + 1, format!("{bad:?}: a filter is KEY=VALUE")));
        }
        i += 2;
    }
    if w.get(i) != Some(&"are") {
        return Err(error(
            i,
            "expected `networks [on HOST] [filtered KEY=VALUE,...] are NAME,...|nothing`",
        ));
    }
    let list = w
        .get(i + 1)
        .ok_or_else(|| error(i + 1, "expected the networks listed, or nothing"))?;
    let names = match *list {
        "nothing" => Vec::new(),
        list => list.split(',').map(String::from).collect(),
    };
    expect_end(w, i + 2)?;
    Ok(Expectation::Networks {
        host,
        filters,
        names,
    })
}

fn container_fact(w: &[&str], container: &str) -> Result<Expectation, ExpectError> {
    let c = container.to_string();
    match w.get(2).copied() {
        Some("file") => file_check(w, c),
        Some("interfaces") => interfaces_check(w, c),
        Some("mtu") => mtu_check(w, c),
        Some(table @ ("routes" | "routes6")) => route_check(w, c, table),
        Some(field @ ("ip" | "ip6" | "mac" | "gateway")) => {
            if w.get(3) != Some(&"on") || w.get(5) != Some(&"is") {
                return Err(error(3, format!("expected `{field} on NETWORK is VALUE`")));
            }
            let network = w
                .get(4)
                .ok_or_else(|| error(4, "expected a network name"))?;
            let value = w
                .get(6)
                .ok_or_else(|| error(6, "expected the value"))?
                .to_string();
            expect_end(w, 7)?;
            let key = match field {
                "ip" => "IPAddress",
                "ip6" => "GlobalIPv6Address",
                "mac" => "MacAddress",
                _ => "Gateway",
            };
            Ok(Expectation::Container {
                container: c,
                path: format!("NetworkSettings.Networks.{network}.{key}"),
                value: Value::Equals(value),
            })
        }
        _ => {
            let (path, value) = fact(w, 2, |_| None)?;
            Ok(Expectation::Container {
                container: c,
                path,
                value,
            })
        }
    }
}

/// `container C file PATH contains|lacks TEXT`.
fn file_check(w: &[&str], container: String) -> Result<Expectation, ExpectError> {
    let path = w
        .get(3)
        .ok_or_else(|| error(3, "expected a file path"))?
        .to_string();
    let contains = match w.get(4) {
        Some(&"contains") => true,
        Some(&"lacks") => false,
        _ => return Err(error(4, "expected `contains TEXT` or `lacks TEXT`")),
    };
    let text = w
        .get(5)
        .ok_or_else(|| error(5, "expected the text (quote it if it has spaces)"))?
        .to_string();
    expect_end(w, 6)?;
    Ok(Expectation::File {
        container,
        path,
        text,
        contains,
    })
}

/// `container C interfaces are|include NAME[,NAME...]`.
fn interfaces_check(w: &[&str], container: String) -> Result<Expectation, ExpectError> {
    let exact = match w.get(3) {
        Some(&"are") => true,
        Some(&"include") => false,
        _ => {
            return Err(error(
                3,
                "expected `are NAME[,NAME...]` or `include NAME[,NAME...]`",
            ));
        }
    };
    let names = w
        .get(4)
        .ok_or_else(|| error(4, "expected interface names"))?;
    expect_end(w, 5)?;
    Ok(Expectation::Interfaces {
        container,
        names: names.split(',').map(String::from).collect(),
        exact,
    })
}

/// `container C mtu of IFACE is N`.
fn mtu_check(w: &[&str], container: String) -> Result<Expectation, ExpectError> {
    if w.get(3) != Some(&"of") || w.get(5) != Some(&"is") {
        return Err(error(3, "expected `mtu of IFACE is N`"));
    }
    let iface = w
        .get(4)
        .ok_or_else(|| error(4, "expected an interface name"))?
        .to_string();
    let mtu = w
        .get(6)
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| error(6, "expected an MTU number"))?;
    expect_end(w, 7)?;
    Ok(Expectation::Mtu {
        container,
        iface,
        mtu,
    })
}

/// `container C routes|routes6 include|lack ROUTE`.
fn route_check(w: &[&str], container: String, table: &str) -> Result<Expectation, ExpectError> {
    let present = match w.get(3).copied() {
        Some("include") => true,
        Some("lack") => false,
        _ => {
            let message = format!("expected `{table} include ROUTE` or `{table} lack ROUTE`");
            return Err(error(3, message));
        }
    };
    let route = w
        .get(4)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| error(4, "expected a route, quoted: 'default dev eth0'"))?
        .to_string();
    expect_end(w, 5)?;
    Ok(Expectation::Route {
        container,
        route,
        present,
        ipv6: table == "routes6",
    })
}

/// `has PATH = VALUE`, `has PATH ~ REGEX`, or `NAME is VALUE` for the names `alias` knows;
/// from word `i` on.
fn fact(
    w: &[&str],
    i: usize,
    alias: impl Fn(&str) -> Option<String>,
) -> Result<(String, Value), ExpectError> {
    if w.get(i) == Some(&"lacks") {
        let path = w
            .get(i + 1)
            .ok_or_else(|| error(i + 1, "expected a JSON path"))?
            .to_string();
        expect_end(w, i + 2)?;
        return Ok((path, Value::Absent));
    }
    match (w.get(i).copied(), w.get(i + 2).copied()) {
        (Some("has"), Some(op @ ("=" | "~"))) => {
            let path = w
                .get(i + 1)
                .ok_or_else(|| error(i + 1, "expected a JSON path"))?
                .to_string();
            let value = w
                .get(i + 3)
                .ok_or_else(|| error(i + 3, "expected the value"))?
                .to_string();
            expect_end(w, i + 4)?;
            if op == "~" {
                whole_match(&value)
                    .map_err(|e| error(i + 3, format!("not a regular expression: {e}")))?;
                return Ok((path, Value::Matches(value)));
            }
            Ok((path, Value::Equals(value)))
        }
        (Some(name), Some(value)) if w.get(i + 1) == Some(&"is") => match alias(name) {
            Some(path) => {
                expect_end(w, i + 3)?;
                Ok((path, Value::Equals(value.to_string())))
            }
            None => Err(error(
                i,
                format!("{name:?} is not a known field: use `has JSON.PATH = VALUE`"),
            )),
        },
        _ => Err(error(
            i,
            "expected `has JSON.PATH = VALUE`, `has JSON.PATH ~ REGEX`, `lacks JSON.PATH` or `FIELD is VALUE`",
        )),
    }
}

fn expect_end(w: &[&str], n: usize) -> Result<(), ExpectError> {
    match w.get(n) {
        Some(extra) => Err(error(n, format!("unexpected {extra:?} at the end"))),
        None => Ok(()),
    }
}
