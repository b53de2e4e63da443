//! Java `.properties` files: the format Kafka brokers, Kafka Connect and Kafka clients read.
//!
//! Owns escaping and parsing only; which keys go into which file is the harness's `profile.rs`'s
//! business. The pipeline reads the client files the harness rendered.

use std::collections::BTreeMap;

/// An ordered set of Java properties.
pub type Properties = BTreeMap<String, String>;

/// Renders properties as a `.properties` file, one `key=value` per line, keys sorted.
pub fn render(header: &str, props: &Properties) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for (k, v) in props {
        out.push_str(&escape(k, true));
        out.push('=');
        out.push_str(&escape(v, false));
        out.push('\n');
    }
    out
}

fn escape(s: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' if is_key => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", unit));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses a `.properties` file (the subset of the format `render` produces plus comments and
/// blank lines). Used by tests and by `audit` to read back what clients were given.
pub fn parse(text: &str) -> Properties {
    let mut props = Properties::new();
    for raw in text.lines() {
        let line = raw.trim_start_matches([' ', '\t', '\u{c}']);
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = split_key_value(line);
        props.insert(unescape(&key), unescape(value.trim_start_matches([' ', '\t', '\u{c}'])));
    }
    props
}

fn split_key_value(line: &str) -> (String, &str) {
    let mut key = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                key.push('\\');
                if let Some((_, n)) = chars.next() {
                    key.push(n);
                }
            }
            '=' | ':' => return (key, &line[i + 1..]),
            ' ' | '\t' => {
                let rest = line[i..].trim_start_matches([' ', '\t']);
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return (key, rest);
            }
            c => key.push(c),
        }
    }
    (key, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let mut chars = s.chars().peekable();
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        if !units.is_empty() {
            out.push_str(&String::from_utf16_lossy(units));
            units.clear();
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                match u16::from_str_radix(&hex, 16) {
                    Ok(unit) => units.push(unit),
                    Err(_) => {
                        flush(&mut units, &mut out);
                        out.push_str(&hex);
                    }
                }
            }
            Some(n) => {
                flush(&mut units, &mut out);
                out.push(match n {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'f' => '\u{c}',
                    other => other,
                });
            }
            None => flush(&mut units, &mut out),
        }
    }
    flush(&mut units, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn renders_sorted_key_value_lines() {
        let mut p = Properties::new();
        p.insert("b".into(), "2".into());
        p.insert("a.b".into(), "x=y".into());
        assert_eq!(render("hdr", &p), "# hdr\na.b=x=y\nb=2\n");
    }

    #[test]
    fn parses_java_forms() {
        let p = parse("# c\n! c\n  a = 1\nb:2\nc 3\nd\\=e=f\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "3");
        assert_eq!(p["d=e"], "f");
    }

    proptest! {
        /// Whatever keys and values a profile holds, the file Kafka reads gives them back unchanged.
        #[test]
        fn render_then_parse_round_trips(
            props in proptest::collection::btree_map("[a-z.#!: =\\\\é\t]{1,12}", "\\PC{0,16}", 0..8)
        ) {
            let back = parse(&render("header\nline two", &props));
            prop_assert_eq!(back, props);
        }
    }
}
