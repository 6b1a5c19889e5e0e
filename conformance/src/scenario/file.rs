//! A scenario file as written (serde), before validation.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    // Required, but checked here rather than by serde: its "missing field" errors point at the
    // end of the file instead of its start.
    pub(super) name: Option<String>,
    pub(super) checks: Option<String>,
    pub(super) source: Option<String>,
    pub(super) docker: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) kernel: Vec<Spanned<String>>,
    pub(super) driver: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) plugins: Vec<Spanned<PluginFile>>,
    pub(super) hosts: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) external: Vec<Spanned<String>>,
    pub(super) swarm: Option<Spanned<SwarmFile>>,
    #[serde(default)]
    pub(super) routed: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) steps: Vec<Spanned<LineOr<StepFile>>>,
    #[serde(default)]
    pub(super) expect: Vec<Spanned<LineOr<ExpectFile>>>,
    #[serde(default)]
    pub(super) capture: Vec<Spanned<CaptureFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SwarmFile {
    #[serde(default)]
    pub(super) managers: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) workers: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginFile {
    pub(super) name: Spanned<String>,
    pub(super) run: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepFile {
    pub(super) run: Spanned<String>,
    pub(super) fails: Option<String>,
    pub(super) on: Option<Spanned<String>>,
    pub(super) docker: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectFile {
    pub(super) expect: Spanned<String>,
    pub(super) docker: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CaptureFile {
    pub(super) on: Spanned<String>,
    pub(super) filter: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) expect: Vec<Spanned<CheckFile>>,
    #[serde(default, rename = "allow-empty")]
    pub(super) allow_empty: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckFile {
    pub(super) none: Option<String>,
    pub(super) only: Option<String>,
    pub(super) some: Option<String>,
}

/// A list item written either as one line (a string) or as a mapping with more keys.
pub(super) enum LineOr<T> {
    Line(String),
    Map(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LineOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LineOrVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for LineOrVisitor<T> {
            type Value = LineOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a line, or a mapping")
            }
            fn visit_str<E: de::Error>(self, line: &str) -> Result<Self::Value, E> {
                Ok(LineOr::Line(line.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(LineOr::Map)
            }
        }
        deserializer.deserialize_any(LineOrVisitor(PhantomData))
    }
}
