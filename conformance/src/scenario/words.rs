//! Splitting a line into shell-like words, remembering where each word starts.

/// A word of a line and its byte offset in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word, with quotes removed.
    pub text: String,
    /// Byte offset of the word's first character (its opening quote, if quoted) in the line.
    pub offset: usize,
}

/// Splits `line` on whitespace; `'...'` and `"..."` group words (no escapes, no variables).
/// Fails with the offset of an unclosed quote.
pub fn split(line: &str) -> Result<Vec<Word>, (usize, String)> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        while let Some(&(offset, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '\'' || c == '"' {
                let closed = chars.by_ref().find(|&(_, d)| d == c).is_some();
                if !closed {
                    return Err((offset, format!("unclosed quote {c}")));
                }
                let end = chars.peek().map_or(line.len(), |&(i, _)| i);
                text.push_str(&line[offset + 1..end - 1]);
            } else {
                text.push(c);
            }
        }
        words.push(Word {
            text,
            offset: start,
        });
    }
    Ok(words)
}

/// `id(NAME)` in a word: the word itself, or after a flag's `=` or a `:` (`--network=id(n1)`,
/// `container:id(web)`), maybe followed by more (`id(web):alias`). Gives what comes before it,
/// NAME, and what follows. Steps and inspect paths write it for the Id of network or container
/// NAME, known only once the engine made it.
pub fn id_reference(word: &str) -> Option<(&str, &str, &str)> {
    let start = match word.starts_with("id(") {
        true => 0,
        false => {
            word.find(['=', ':'])
                .filter(|&i| word[i + 1..].starts_with("id("))?
                + 1
        }
    };
    let inside = &word[start + 3..];
    let end = inside.find(')')?;
    let name = &inside[..end];
    let plain = !name.is_empty() && !name.contains(['(', '=', ':']);
    plain.then_some((&word[..start], name, &inside[end + 1..]))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("id(n1)", Some(("", "n1", "")))]
    #[case("--network=id(my-net)", Some(("--network=", "my-net", "")))]
    #[case("container:id(web)", Some(("container:", "web", "")))]
    #[case("id(web):alias", Some(("", "web", ":alias")))]
    #[case("id()", None)]
    #[case("n1", None)]
    #[case("id(n1", None)]
    #[case("xid(n1)", None)]
    #[case("id(a(b))", None)]
    fn id_references_stand_alone_or_after_equals_or_colon(
        #[case] word: &str,
        #[case] expected: Option<(&str, &str, &str)>,
    ) {
        assert_eq!(id_reference(word), expected);
    }

    #[test]
    fn words_keep_their_offsets_and_quotes_group() {
        let words = split("docker run  --name 'a b' x\"y z\"").unwrap();
        let texts: Vec<(&str, usize)> = words.iter().map(|w| (w.text.as_str(), w.offset)).collect();
        assert_eq!(
            texts,
            [
                ("docker", 0),
                ("run", 7),
                ("--name", 12),
                ("a b", 19),
                ("xy z", 25)
            ]
        );
        assert_eq!(
            split("echo 'oops").unwrap_err(),
            (5, "unclosed quote '".into())
        );
    }
}
