//! The judges: whether an expectation holds, given what was observed. Pure: the awaiting (probes,
//! inspects, files, links) is done before ([`super::observe`]), so that every verdict and its
//! text can be tested without a lab.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value as Json;

use super::inspect::{lookup, missing_under, text};
use crate::probe::{self, Reach, RecordData, Resolution};
use crate::scenario::expect::{Expectation, Failure, Unresolved, Value, whole_match};

/// What the target showed for one expectation, everything awaited already.
#[derive(Debug, Clone)]
pub(crate) enum Observation {
    /// A connection attempt, and the banner the scene says must answer when it is knowable.
    Reach {
        /// Where it went.
        at: SocketAddr,
        /// What happened.
        outcome: Reach,
        /// The banner of the listener that must answer ([`super::oracle`]).
        answerer: Option<String>,
    },
    /// An echo request.
    Ping {
        /// The address pinged.
        ip: IpAddr,
        /// What came back.
        outcome: probe::Ping,
    },
    /// A DNS question.
    Dns {
        /// The question as reported, with the server asked: `A web via 127.0.0.11:53`.
        asked: String,
        /// What came back.
        outcome: Resolution,
        /// The records expected (from the scenario's `to`, addresses looked up after the
        /// question was asked), if any; why they could not be known.
        want: Option<Result<Vec<RecordData>, String>>,
    },
    /// An HTTP GET.
    Http {
        /// Where it went.
        at: SocketAddr,
        /// What came back.
        outcome: probe::Http,
        /// The banner of the listener that must answer, when knowable.
        answerer: Option<String>,
    },
    /// A network's or container's inspect JSON.
    Inspect(Json),
    /// A file as the container sees it.
    File(String),
    /// The names of the networks an engine listed.
    Names(Vec<String>),
    /// A namespace's links: name and MTU.
    Links(Vec<(String, u32)>),
    /// A namespace's routes, as `ip route` starts its lines.
    Routes(Vec<String>),
}

/// Why an expectation did not hold: what it expected, what was observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    /// What the expectation wanted.
    pub(crate) expected: String,
    /// What the target showed.
    pub(crate) observed: String,
}

fn failed(expected: impl Into<String>, observed: impl Into<String>) -> Result<(), Failed> {
    Err(Failed {
        expected: expected.into(),
        observed: observed.into(),
    })
}

/// A probe that failed to run (its socket cannot be opened, bound or sent from): never an
/// observation, whatever the expectation.
pub(crate) fn setup(observed: impl Into<String>) -> Failed {
    Failed {
        expected: "the probe to run".into(),
        observed: observed.into(),
    }
}

/// Whether `expectation` holds given `observation`.
pub(crate) fn judge(expectation: &Expectation, observation: &Observation) -> Result<(), Failed> {
    use Expectation as E;
    use Observation as O;
    match (expectation, observation) {
        (
            E::Reach { proto, fails, .. },
            O::Reach {
                at,
                outcome,
                answerer,
            },
        ) => reach(
            &format!("{at}/{proto}: {outcome}"),
            fails,
            outcome,
            answerer,
        ),
        (E::Ping { succeeds, .. }, O::Ping { ip, outcome }) => {
            ping(&format!("ping {ip}: {outcome}"), *succeeds, outcome)
        }
        (
            E::Resolve { question, ttl, .. },
            O::Dns {
                asked,
                outcome,
                want,
            },
        ) => {
            let expected = || format!("{question} to resolve");
            resolve(
                &format!("{asked}: {outcome}"),
                expected,
                *ttl,
                outcome,
                want,
            )
        }
        (E::NoResolve { how, .. }, O::Dns { asked, outcome, .. }) => {
            no_resolve(&format!("{asked}: {outcome}"), *how, outcome)
        }
        (
            E::Http { status, path, .. },
            O::Http {
                at,
                outcome,
                answerer,
            },
        ) => http(
            &format!("GET http://{at}{path}: {outcome}"),
            *status,
            outcome,
            answerer,
        ),
        (E::Network { path, value, .. } | E::Container { path, value, .. }, O::Inspect(json)) => {
            fact(json, path, value)
        }
        (
            E::File {
                path,
                text,
                contains,
                ..
            },
            O::File(file),
        ) => {
            if file.contains(text.as_str()) == *contains {
                return Ok(());
            }
            let how = if *contains {
                "to contain"
            } else {
                "not to contain"
            };
            failed(format!("{path} {how} {text:?}"), file.clone())
        }
        (E::Interfaces { names, exact, .. }, O::Links(links)) => interfaces(names, *exact, links),
        (E::Networks { names, .. }, O::Names(listed)) => {
            let want: std::collections::BTreeSet<&String> = names.iter().collect();
            let got: std::collections::BTreeSet<&String> = listed.iter().collect();
            let show = |set: &std::collections::BTreeSet<&String>| match set.is_empty() {
                true => "nothing".to_string(),
                false => set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
            };
            match want == got {
                true => Ok(()),
                false => failed(
                    format!("networks {}", show(&want)),
                    format!("networks {}", show(&got)),
                ),
            }
        }
        (E::Mtu { iface, mtu, .. }, O::Links(links)) => {
            match links.iter().find(|(name, _)| name == iface) {
                Some((_, found)) if found == mtu => Ok(()),
                Some((_, found)) => failed(format!("MTU {mtu}"), format!("MTU {found}")),
                None => failed(format!("an interface {iface}"), "none"),
            }
        }
        (E::Route { route, present, .. }, O::Routes(routes)) => {
            let matching =
                (routes.iter()).any(|r| r == route || r.starts_with(&format!("{route} ")));
            if matching == *present {
                return Ok(());
            }
            let wanted = match present {
                true => format!("a route `{route}`"),
                false => format!("no route `{route}`"),
            };
            failed(wanted, format!("routes: {}", routes.join("; ")))
        }
        (expectation, observation) => failed(
            format!("an observation for {expectation:?}"),
            format!("drydock observed {observation:?} instead (a bug in drydock)"),
        ),
    }
}

fn ping(observed: &str, succeeds: bool, outcome: &probe::Ping) -> Result<(), Failed> {
    let replied = matches!(outcome, probe::Ping::Reply);
    match (outcome, replied == succeeds, succeeds) {
        (probe::Ping::Error(_), _, _) => Err(setup(observed)),
        (_, true, _) => Ok(()),
        (_, false, true) => failed("an echo reply", observed),
        (_, false, false) => failed("no echo reply", observed),
    }
}

fn resolve(
    observed: &str,
    expected: impl Fn() -> String,
    ttl: Option<u32>,
    outcome: &Resolution,
    want: &Option<Result<Vec<RecordData>, String>>,
) -> Result<(), Failed> {
    let got = match outcome {
        Resolution::Answers(got) => got,
        Resolution::Error(_) => return Err(setup(observed)),
        _ => return failed(expected(), observed),
    };
    if let Some(ttl) = ttl
        && got.iter().any(|record| record.ttl != ttl)
    {
        return failed(format!("answers with TTL {ttl}"), observed);
    }
    let Some(want) = want else {
        return Ok(());
    };
    let want = want.as_ref().map_err(setup)?;
    let mut got: Vec<&RecordData> = got.iter().map(|r| &r.data).collect();
    let mut want: Vec<&RecordData> = want.iter().collect();
    got.sort();
    want.sort();
    match got == want {
        true => Ok(()),
        false => failed(format!("answers {}", list(&want)), observed),
    }
}

fn http(
    observed: &str,
    status: u16,
    outcome: &probe::Http,
    answerer: &Option<String>,
) -> Result<(), Failed> {
    match (outcome, answerer) {
        (probe::Http::Response { status: got, body }, Some(want)) if *got == status => {
            match body.trim_end() == want {
                true => Ok(()),
                false => failed(
                    format!("HTTP {status} from the listener answering {want:?}"),
                    observed,
                ),
            }
        }
        (probe::Http::Response { status: got, .. }, None) if *got == status => Ok(()),
        _ => failed(format!("HTTP {status}"), observed),
    }
}

fn interfaces(names: &[String], exact: bool, links: &[(String, u32)]) -> Result<(), Failed> {
    let mut got: Vec<&str> = links.iter().map(|(name, _)| name.as_str()).collect();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    got.sort();
    want.sort();
    let holds = match exact {
        true => got == want,
        false => want.iter().all(|w| got.contains(w)),
    };
    match (holds, exact) {
        (true, _) => Ok(()),
        (false, true) => failed(want.join(","), got.join(",")),
        (false, false) => failed(format!("at least {}", want.join(",")), got.join(",")),
    }
}

fn reach(
    observed: &str,
    fails: &Option<Option<Failure>>,
    outcome: &Reach,
    answerer: &Option<String>,
) -> Result<(), Failed> {
    match (fails, outcome) {
        (_, Reach::Error(_)) => Err(setup(observed)),
        (None, Reach::Reached { banner }) => match answerer {
            Some(want) if banner.as_deref() != Some(want.as_str()) => failed(
                format!("to reach the listener answering {want:?}"),
                observed,
            ),
            _ => Ok(()),
        },
        (None, _) => failed("reached", observed),
        (Some(_), Reach::Reached { .. }) => failed("no connection", observed),
        (Some(None), _) => Ok(()),
        (Some(Some(how)), outcome) => {
            let matched = matches!(
                (how, outcome),
                (Failure::Refused, Reach::Refused)
                    | (Failure::Timeout, Reach::Timeout)
                    | (Failure::Unreachable, Reach::Unreachable { .. })
            );
            match matched {
                true => Ok(()),
                false => failed(format!("{how:?}").to_lowercase(), observed),
            }
        }
    }
}

fn no_resolve(observed: &str, how: Unresolved, outcome: &Resolution) -> Result<(), Failed> {
    let holds = match (how, outcome) {
        (_, Resolution::Error(_)) => return Err(setup(observed)),
        (Unresolved::NoAddress, Resolution::NxDomain | Resolution::NoRecords)
        | (Unresolved::NxDomain, Resolution::NxDomain)
        | (Unresolved::NoData, Resolution::NoRecords)
        | (Unresolved::Timeout, Resolution::Timeout)
        | (Unresolved::Refused, Resolution::Refused) => true,
        (Unresolved::ServFail, Resolution::Failure { rcode }) => rcode == "SERVFAIL",
        _ => false,
    };
    match holds {
        true => Ok(()),
        false => failed(how.to_string(), observed),
    }
}

/// `has PATH = VALUE`, `has PATH ~ REGEX`, `lacks PATH` over inspect JSON.
fn fact(json: &Json, path: &str, value: &Value) -> Result<(), Failed> {
    let expected = format!("{path} {value}");
    let found = lookup(json, path).map(text);
    if *value == Value::Absent {
        return match (found, missing_under(json, path)) {
            (Some(found), _) => failed(expected, format!("{path} = {found}")),
            (None, Ok(())) => Ok(()),
            (None, Err(why)) => failed(format!("{path} absent, under a parent that exists"), why),
        };
    }
    let holds = match (value, &found) {
        (_, None) => false,
        (Value::Equals(v), Some(found)) => found == v,
        (Value::Matches(r), Some(found)) => whole_match(r).is_ok_and(|r| r.is_match(found)),
        (Value::Absent, Some(_)) => false,
    };
    match (holds, found) {
        (true, _) => Ok(()),
        (false, Some(found)) => failed(expected, format!("{path} = {found}")),
        (false, None) => failed(expected, format!("no {path} in the inspect JSON")),
    }
}

fn list(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
