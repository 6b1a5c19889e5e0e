//! Errors in YAML files located at `path:line:column`, with the offending line shown; and a
//! YAML mapping that keeps its keys' order and locations. Shared by every file format drydock
//! reads (lab topologies, conformance scenarios).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// An error in a file, located at `path:line:column`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}{snippet}")]
pub struct LocatedError {
    /// File path as given.
    pub path: String,
    /// 1-based line (0 when the file could not be read).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending line with a caret under the column (empty when unknown).
    pub snippet: String,
}

impl LocatedError {
    /// An error at a YAML node's location.
    pub fn at(at: &Location, message: String, text: &str, path: &str) -> Self {
        Self::new(at.line(), at.column(), message, text, path)
    }

    /// An error at `line:column` of `text` (the file's contents, for the snippet).
    pub fn new(line: u64, column: u64, message: String, text: &str, path: &str) -> Self {
        let snippet = match text.lines().nth(line.saturating_sub(1) as usize) {
            Some(source) if line > 0 => {
                let gutter = line.to_string().len();
                let pad = " ".repeat(column.saturating_sub(1) as usize);
                format!(
                    "\n {line} | {source}\n {blank} | {pad}^",
                    blank = " ".repeat(gutter)
                )
            }
            _ => String::new(),
        };
        Self {
            path: path.to_string(),
            line,
            column,
            message,
            snippet,
        }
    }

    /// The file could not be read at all.
    pub fn unreadable(path: &str, error: &std::io::Error) -> Self {
        Self {
            path: path.to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read the file: {error}"),
            snippet: String::new(),
        }
    }

    /// A YAML syntax or shape error from serde-saphyr.
    pub fn from_yaml(error: &serde_saphyr::Error, text: &str, path: &str) -> Self {
        use serde_saphyr::MessageFormatter;
        let message = serde_saphyr::DefaultMessageFormatter
            .format_message(error.without_snippet())
            .escape_debug()
            .to_string();
        // The parser's advice is for programmers using it, not for people writing files.
        let message = message
            .trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable")
            .to_string();
        let (line, column) = error
            .location()
            .map_or((1, 1), |at| (at.line().max(1), at.column().max(1)));
        Self::new(line, column, message, text, path)
    }
}

/// A YAML mapping kept in file order, with the location of every key.
pub struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to definitions")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}
