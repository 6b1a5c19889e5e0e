//! Captures while the expectations run: where they listen, and what must hold of the packets
//! they kept.

use drydock_netsim::capture::{Capture, Packet};

use super::execution::Execution;
use super::inspect::{lookup, text};
use super::{CaptureResult, Status};
use crate::normalize::Normalizer;
use crate::scenario::{self, CapturePoint, Quantifier};
use crate::targets::Target;

/// A capture that runs: what the scenario asked, the capture, its label in pcap files.
pub(super) struct Running<'a> {
    spec: &'a scenario::Capture,
    capture: Capture,
    label: String,
}

/// Whether `matching` of the `kept` packets satisfy `quantifier`.
fn holds(quantifier: Quantifier, matching: usize, kept: usize) -> bool {
    match quantifier {
        Quantifier::None => matching == 0,
        Quantifier::Only => matching == kept && matching > 0,
        Quantifier::Some => matching > 0,
    }
}

/// The failure of a capture that saw nothing although all its checks are `none:` (they would
/// hold on a dead interface too), unless the scenario says silence is the point.
fn empty_capture(capture: &scenario::Capture, seen: usize) -> Option<Status> {
    let only_none = capture.checks.iter().all(|(q, _)| *q == Quantifier::None);
    (seen == 0 && only_none && !capture.checks.is_empty() && !capture.allow_empty).then(|| {
        Status::Fail {
            expected: "at least one packet on the interface: `none:` checks prove nothing on an \
                       interface that saw no traffic (write `allow-empty: true` if silence is \
                       what is checked)"
                .into(),
            observed: "no packet at all".into(),
        }
    })
}

/// Every check of `capture` on the packets it kept (`seen` before its filter), with its line.
fn checks(capture: &scenario::Capture, seen: usize, kept: &[Packet]) -> Vec<(String, Status)> {
    let counted = match &capture.filter {
        Some(filter) => format!(
            "{} packet(s) kept by `{filter}` of {seen} seen on the interface",
            kept.len()
        ),
        None => format!("{seen} packet(s) seen on the interface"),
    };
    let mut results = Vec::new();
    if let Some(status) = empty_capture(capture, seen) {
        results.push((format!("capture on {}", capture.on), status));
    }
    for (quantifier, filter) in &capture.checks {
        let matching = kept.iter().filter(|p| filter.matches(&p.data)).count();
        let status = match holds(*quantifier, matching, kept.len()) {
            true => Status::Pass,
            false => Status::Fail {
                expected: format!("{quantifier} of the packets to match `{filter}`"),
                observed: format!("{matching} matched; {counted}"),
            },
        };
        results.push((capture.check_line(*quantifier, filter), status));
    }
    results
}

impl<'a, T: Target> Execution<'a, T> {
    /// Starts every capture of the scenario; one that cannot start fails as a check.
    pub(super) async fn start_captures(&mut self) -> Vec<Running<'a>> {
        let mut running = Vec::new();
        for spec in &self.scenario.captures {
            match self.start_capture(&spec.on).await {
                Ok((capture, label)) => running.push(Running {
                    spec,
                    capture,
                    label,
                }),
                Err(why) => {
                    let status = Status::Fail {
                        expected: "a capture".into(),
                        observed: why,
                    };
                    self.record(&spec.at, &format!("capture on {}", spec.on), status);
                }
            }
        }
        running
    }

    /// Stops the captures, judges their checks and keeps what they saw (normalized).
    pub(super) fn stop_captures(&mut self, running: Vec<Running<'a>>) {
        for Running {
            spec,
            capture,
            label,
        } in running
        {
            let packets = match capture.stop() {
                Ok(packets) => packets,
                Err(e) => {
                    let status = Status::Fail {
                        expected: "a capture".into(),
                        observed: e.to_string(),
                    };
                    self.record(&spec.at, &format!("capture on {}", spec.on), status);
                    continue;
                }
            };
            let seen = packets.len();
            let kept: Vec<Packet> = (packets.into_iter())
                .filter(|p| spec.filter.as_ref().is_none_or(|f| f.matches(&p.data)))
                .collect();
            for (line, status) in checks(spec, seen, &kept) {
                self.record(&spec.at, &line, status);
            }
            let mut normalizer = Normalizer::new();
            let lines = (kept.iter())
                .map(|p| {
                    let summary = drydock_netsim::capture::summarize(&p.data);
                    normalizer.line(&format!("{} {summary}", p.direction))
                })
                .collect();
            self.captures.push(CaptureResult {
                on: spec.on.to_string(),
                label,
                seen,
                lines,
                packets: kept,
            });
        }
    }

    /// Starts a capture; returns it with its label in pcap files.
    async fn start_capture(&self, point: &CapturePoint) -> Result<(Capture, String), String> {
        let (netns, iface, label) = match point {
            CapturePoint::Interface { owner, iface } => (
                self.netns(owner).await?,
                iface.clone(),
                format!("{owner}/{iface}"),
            ),
            CapturePoint::Network { host, network } => {
                let json = self
                    .target
                    .inspect_network(host, network)
                    .await
                    .map_err(|e| e.message)?;
                let bridge =
                    bridge_name(&json).ok_or_else(|| format!("network {network} has no bridge"))?;
                let netns =
                    (self.lab.host(host).cloned()).ok_or_else(|| format!("no lab host {host}"))?;
                (netns, bridge.clone(), format!("{host}/{bridge}"))
            }
        };
        let capture = Capture::start(&netns, &iface, label.clone()).map_err(|e| e.to_string())?;
        Ok((capture, label))
    }
}

/// The Linux bridge of a bridge network, from its inspect JSON.
fn bridge_name(json: &serde_json::Value) -> Option<String> {
    if let Some(name) = lookup(json, "Options.com.docker.network.bridge.name") {
        return Some(text(name));
    }
    let id = lookup(json, "Id")?.as_str()?;
    Some(format!("br-{}", id.get(..12)?))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;
    use crate::scenario::Filter;

    #[rstest]
    #[case::none_holds(Quantifier::None, 0, 5, true)]
    #[case::none_fails(Quantifier::None, 1, 5, false)]
    #[case::only_holds(Quantifier::Only, 5, 5, true)]
    #[case::only_fails(Quantifier::Only, 4, 5, false)]
    #[case::only_needs_one(Quantifier::Only, 0, 0, false)]
    #[case::some_holds(Quantifier::Some, 1, 5, true)]
    #[case::some_fails(Quantifier::Some, 0, 5, false)]
    fn quantifiers(
        #[case] quantifier: Quantifier,
        #[case] matching: usize,
        #[case] kept: usize,
        #[case] expected: bool,
    ) {
        assert_eq!(holds(quantifier, matching, kept), expected);
    }

    fn capture(checks: &[(Quantifier, &str)], allow_empty: bool) -> scenario::Capture {
        scenario::Capture {
            on: CapturePoint::Interface {
                owner: "h1".into(),
                iface: "eth0".into(),
            },
            filter: None,
            checks: (checks.iter())
                .map(|(q, f)| (*q, Filter::parse(f).unwrap()))
                .collect(),
            allow_empty,
            at: "s.yaml:9".into(),
        }
    }

    #[test]
    fn a_silent_interface_proves_no_none_check() {
        let silent = capture(&[(Quantifier::None, "udp port 53")], false);
        let results = checks(&silent, 0, &[]);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].0, "capture on h1/eth0");
        assert!(
            matches!(&results[0].1, Status::Fail { observed, .. } if observed == "no packet at all")
        );
        assert_eq!(
            results[1],
            ("capture on h1/eth0: none: udp port 53".into(), Status::Pass)
        );
        let allowed = capture(&[(Quantifier::None, "udp port 53")], true);
        assert_eq!(checks(&allowed, 0, &[]).len(), 1);
    }

    #[test]
    fn a_failed_check_counts_what_it_saw() {
        let some = capture(&[(Quantifier::Some, "icmp")], false);
        let results = checks(&some, 3, &[]);
        assert_eq!(
            results,
            [(
                "capture on h1/eth0: some: icmp".to_string(),
                Status::Fail {
                    expected: "some of the packets to match `icmp`".into(),
                    observed: "0 matched; 3 packet(s) seen on the interface".into(),
                }
            )]
        );
    }

    #[test]
    fn bridges_are_named_by_option_or_id() {
        let named = json!({"Options": {"com.docker.network.bridge.name": "docker0"}, "Id": "x"});
        assert_eq!(bridge_name(&named).as_deref(), Some("docker0"));
        let by_id = json!({"Options": {}, "Id": "0123456789abcdef"});
        assert_eq!(bridge_name(&by_id).as_deref(), Some("br-0123456789ab"));
    }
}
