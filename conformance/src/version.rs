//! Docker release numbers (`20.10.24`, `28.0`) and the ranges scenarios tag behavior with.

use std::fmt;

/// A release number: major, minor, patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `20.10.24`, `28.0` or `29`; trailing text after the numbers (`+dfsg1`,
    /// `-ce`) is ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let numeric: String = text
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = numeric
            .split('.')
            .filter(|p| !p.is_empty())
            .map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next().transpose().ok()?.unwrap_or(0);
        let patch = parts.next().transpose().ok()?.unwrap_or(0);
        Some(Version(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A set of releases: comparisons joined by spaces, all of which must hold
/// (`>=20.10 <28`, `<29`, `=20.10.24`).
///
/// A bound compares only as many parts as it writes: `=20.10` is every 20.10.x, `<=20.10`
/// includes 20.10.24, `>20.10` starts at 20.11, `<28` ends before 28.0.0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Each comparison, with the number of parts its version was written with (1 to 3).
    bounds: Vec<(Op, Version, usize)>,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Range {
    /// Parses a range; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut bounds = Vec::new();
        for part in text.split_whitespace() {
            let (op, rest) = [
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
                ("=", Op::Eq),
            ]
            .into_iter()
            .find_map(|(prefix, op)| part.strip_prefix(prefix).map(|rest| (op, rest)))
            .ok_or_else(|| {
                format!("{part:?} is not a version bound: expected one like >=20.10 or <28")
            })?;
            let parts = rest.split('.').count();
            let version = Version::parse(rest)
                .filter(|_| {
                    parts <= 3
                        && rest
                            .split('.')
                            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                })
                .ok_or_else(|| {
                    format!("{rest:?} is not a version: expected one like 20.10 or 28.0.1")
                })?;
            bounds.push((op, version, parts));
        }
        if bounds.is_empty() {
            return Err("an empty version range: expected bounds like >=20.10 <28".into());
        }
        Ok(Self {
            bounds,
            text: text.to_string(),
        })
    }

    /// True when `version` is in the range.
    pub fn contains(&self, version: Version) -> bool {
        self.bounds.iter().all(|&(op, bound, parts)| {
            // Only the parts the bound wrote count.
            let version = match parts {
                1 => Version(version.0, 0, 0),
                2 => Version(version.0, version.1, 0),
                _ => version,
            };
            match op {
                Op::Lt => version < bound,
                Op::Le => version <= bound,
                Op::Gt => version > bound,
                Op::Ge => version >= bound,
                Op::Eq => version == bound,
            }
        })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_for_the_versions_they_name() {
        let range = Range::parse(">=20.10 <28").unwrap();
        assert!(range.contains(Version::parse("20.10.24+dfsg1").unwrap()));
        assert!(!range.contains(Version::parse("28.0.0").unwrap()));
        assert!(!range.contains(Version::parse("19.03").unwrap()));
        assert!(Range::parse("<=29").unwrap().contains(Version(29, 0, 0)));
        let v = |text| Version::parse(text).unwrap();
        assert!(Range::parse("=20.10").unwrap().contains(v("20.10.24")));
        assert!(!Range::parse("=20.10").unwrap().contains(v("20.11.0")));
        assert!(Range::parse("=20").unwrap().contains(v("20.10.24")));
        assert!(Range::parse("=20.10.24").unwrap().contains(v("20.10.24")));
        assert!(!Range::parse("=20.10.23").unwrap().contains(v("20.10.24")));
        assert!(Range::parse("<=20.10").unwrap().contains(v("20.10.24")));
        assert!(!Range::parse(">20.10").unwrap().contains(v("20.10.24")));
        assert!(Range::parse(">20.10").unwrap().contains(v("20.11.1")));
        assert!(!Range::parse("<20.10").unwrap().contains(v("20.10.24")));
        assert!(Range::parse(">=27").unwrap().contains(v("27.0.1")));
        assert!(Range::parse("=1.2.3.4").is_err());
        assert!(Range::parse(">=20..10").is_err());
        assert!(
            Range::parse("about 20")
                .unwrap_err()
                .contains("not a version bound")
        );
        assert!(
            Range::parse(">=20.x")
                .unwrap_err()
                .contains("not a version")
        );
    }
}
