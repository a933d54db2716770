//! A reader for the Java `.properties` format users' settings already live
//! in: `#`/`!` comments, `=`, `:` or whitespace separators, `\` line
//! continuations and escapes (`\t`, `\n`, `\uXXXX`, `\=`...).

use super::ConfigError;

/// One `key=value` of a properties text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: String,
    /// 1-based line where the entry starts.
    pub(crate) line: usize,
}

/// Every entry of `text`, in order (a later duplicate overrides an earlier
/// one when applied, as in Java).
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, ConfigError> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, first)) = lines.next() {
        let start = first.trim_start();
        if start.is_empty() || start.starts_with('#') || start.starts_with('!') {
            continue;
        }
        let mut logical = String::from(start);
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let line = index + 1;
        let (key, value) = split_key_value(&logical);
        entries.push(Entry {
            key: unescape(key, line)?,
            value: unescape(value, line)?,
            line,
        });
    }
    Ok(entries)
}

fn ends_with_continuation(line: &str) -> bool {
    let backslashes = line.bytes().rev().take_while(|b| *b == b'\\').count();
    backslashes % 2 == 1
}

/// The raw (still escaped) key and value of a logical line.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => i += 1,
        }
    }
    let key_end = i.min(bytes.len());
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(raw: &str, line: usize) -> Result<String, ConfigError> {
    if !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let decoded = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32);
                match decoded {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(ConfigError::Syntax {
                            line,
                            problem: format!(
                                "\\u{hex} is not a valid escape: write \\u followed by \
                                 four hexadecimal digits of a Unicode character"
                            ),
                        });
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# comment\n! also a comment\n\n  a=1\nb : 2\nc 3\nd=\ne\n";
        assert_eq!(
            pairs(text),
            [
                p("a", "1"),
                p("b", "2"),
                p("c", "3"),
                p("d", ""),
                p("e", "")
            ]
        );
    }

    #[test]
    fn continuations_and_escapes() {
        let text = "list=alice,\\\n     bob,\\\n  carol\nsp=\\ \nk\\=x=v\\tw\nu=\\u00e9t\\u00E9\n";
        assert_eq!(
            pairs(text),
            [
                p("list", "alice,bob,carol"),
                p("sp", " "),
                p("k=x", "v\tw"),
                p("u", "été"),
            ]
        );
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        assert_eq!(pairs("a=x\\\\\nb=y"), [p("a", "x\\"), p("b", "y")]);
    }

    #[test]
    fn line_numbers_and_bad_unicode_escape() {
        let entries = parse("\n\na=1\n").unwrap();
        assert_eq!(entries[0].line, 3);
        let err = parse("ok=1\nbad=\\u12G4\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: \\u12G4"), "{err}");
        let err = parse("bad=\\u12").unwrap_err();
        assert!(err.to_string().contains("four hexadecimal digits"), "{err}");
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(pairs("a=1\r\nb=2\r\n"), [p("a", "1"), p("b", "2")]);
    }
}
