//! Normalizing capture summaries so that snapshots are stable across runs: values that change
//! from run to run (MACs, ephemeral ports, ICMP and DNS ids, TCP sequence numbers, windows, SPIs)
//! become tokens numbered by first appearance, which keeps the relations between packets (a
//! reply's destination is the request's source) while dropping the values.

use std::collections::HashMap;

use regex::{Captures, Regex};

/// Rewrites summary lines; one `Normalizer` per capture so tokens are numbered per capture.
#[derive(Debug, Default)]
pub struct Normalizer {
    seen: HashMap<(&'static str, String), usize>,
    counts: HashMap<&'static str, usize>,
}

/// First port number treated as ephemeral (Linux's default `ip_local_port_range` starts at 32768).
const EPHEMERAL: u32 = 32768;

impl Normalizer {
    /// A normalizer with no tokens handed out yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn token(&mut self, kind: &'static str, value: &str) -> String {
        let next = self.counts.entry(kind).or_default();
        let number = *self
            .seen
            .entry((kind, value.to_string()))
            .or_insert_with(|| {
                *next += 1;
                *next
            });
        format!("{kind}#{number}")
    }

    /// One summary line, normalized.
    pub fn line(&mut self, line: &str) -> String {
        static PATTERNS: std::sync::OnceLock<[(Regex, &'static str); 6]> =
            std::sync::OnceLock::new();
        let patterns = PATTERNS.get_or_init(|| {
            [
                (
                    Regex::new(r"\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b").unwrap(),
                    "mac",
                ),
                (Regex::new(r"\b(id)=(\d+)").unwrap(), "id"),
                (Regex::new(r"\b(seq|ack)=(\d{5,})").unwrap(), "seq"),
                (Regex::new(r"\b(win)=(\d+)").unwrap(), "win"),
                (Regex::new(r"\b(spi)=(0x[0-9a-f]+)").unwrap(), "spi"),
                // An address's port: `10.0.0.2.41234` or `fd00::2.41234`.
                (
                    Regex::new(r"([0-9a-f:.]*[0-9a-f])\.(\d{5})\b").unwrap(),
                    "port",
                ),
            ]
        });
        let mut line = line.to_string();
        for (pattern, kind) in patterns {
            line = pattern
                .replace_all(&line, |c: &Captures<'_>| match *kind {
                    "mac" => self.token("mac", &c[0]),
                    "port" if c[2].parse::<u32>().is_ok_and(|p| p >= EPHEMERAL) => {
                        format!("{}.{}", &c[1], self.token("port", &c[2]))
                    }
                    "port" => c[0].to_string(),
                    "win" => "win=*".to_string(),
                    kind => format!("{}={}", &c[1], self.token(kind, &c[2])),
                })
                .into_owned();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_values_become_tokens_and_relations_stay() {
        let mut n = Normalizer::new();
        let lines = [
            "02:42:ac:12:00:02 > ff:ff:ff:ff:ff:ff ARP who-has 172.18.0.3 tell 172.18.0.2",
            "172.18.0.2.41234 > 172.18.0.3.80 TCP [S] seq=3735928559 win=64240 len=0",
            "172.18.0.3.80 > 172.18.0.2.41234 TCP [S.] seq=123456789 ack=3735928560 win=65160 len=0",
            "172.18.0.2 > 172.18.0.3 ICMP echo request id=4321 seq=1",
            "172.18.0.3 > 172.18.0.2 ICMP echo reply id=4321 seq=1",
        ];
        let out: Vec<String> = lines.iter().map(|l| n.line(l)).collect();
        assert_eq!(
            out,
            [
                "mac#1 > mac#2 ARP who-has 172.18.0.3 tell 172.18.0.2",
                "172.18.0.2.port#1 > 172.18.0.3.80 TCP [S] seq=seq#1 win=* len=0",
                "172.18.0.3.80 > 172.18.0.2.port#1 TCP [S.] seq=seq#2 ack=seq#3 win=* len=0",
                "172.18.0.2 > 172.18.0.3 ICMP echo request id=id#1 seq=1",
                "172.18.0.3 > 172.18.0.2 ICMP echo reply id=id#1 seq=1",
            ]
        );
    }
}
