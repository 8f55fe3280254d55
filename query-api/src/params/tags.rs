//! Tag filters for trace search, in the three forms Jaeger clients send:
//! - `tags={"http.status_code":"500","error":"true"}` — a JSON object (Jaeger UI, Grafana);
//!   number and boolean values are taken as their text;
//! - `tags=error=true http.method=GET note="a b"` — logfmt, as typed into the search box;
//!   a bare key means `key=true`, as the logfmt parser the UIs use reads it;
//! - `tag=key:value`, repeatable — Jaeger's simple form, split at the first `:`.

use hopscope_storage::TagFilter;

/// Parses one `tags` value (JSON object or logfmt).
pub fn parse_tags(text: &str) -> Result<Vec<TagFilter>, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        parse_json(trimmed)
    } else {
        parse_logfmt(trimmed)
    }
}

/// Parses one `tag=key:value` value.
pub fn parse_tag(text: &str) -> Result<TagFilter, String> {
    match text.split_once(':') {
        Some((key, value)) if !key.is_empty() => Ok(filter(key, value)),
        _ => Err(format!("expecting key:value, received {text:?}")),
    }
}

/// Merges filter lists; a key given twice keeps its last value (Jaeger keeps tags in a map).
pub fn merge(filters: impl IntoIterator<Item = TagFilter>) -> Vec<TagFilter> {
    let mut out: Vec<TagFilter> = Vec::new();
    for f in filters {
        match out.iter_mut().find(|existing| existing.key == f.key) {
            Some(existing) => existing.value = f.value,
            None => out.push(f),
        }
    }
    out
}

fn filter(key: &str, value: &str) -> TagFilter {
    TagFilter {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

fn parse_json(text: &str) -> Result<Vec<TagFilter>, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|err| format!("invalid JSON object: {err}"))?;
    map.into_iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                other => {
                    return Err(format!(
                        "value of tag {key:?} must be a string, number or boolean, got {other}"
                    ));
                }
            };
            if key.is_empty() {
                return Err("empty tag key".to_owned());
            }
            Ok(TagFilter { key, value })
        })
        .collect()
}

fn parse_logfmt(text: &str) -> Result<Vec<TagFilter>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if key.is_empty() {
            return Err(format!("missing key before '=' in {text:?}"));
        }
        if chars.next_if_eq(&'=').is_none() {
            out.push(TagFilter {
                key,
                value: "true".to_owned(),
            });
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in value of {key:?}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quote in value of {key:?}")),
                    },
                    Some(c) => value.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!("expected a space after the quoted value of {key:?}"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push(TagFilter { key, value });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(filters: &[TagFilter]) -> Vec<(&str, &str)> {
        filters.iter().map(|f| (f.key.as_str(), f.value.as_str())).collect()
    }

    #[test]
    fn parses_json_objects() {
        let tags = parse_tags(r#"{"http.status_code":"500","error":"true"}"#).unwrap();
        assert_eq!(pairs(&tags), [("error", "true"), ("http.status_code", "500")]);
        let tags = parse_tags(r#" {"code": 500, "error": true, "ratio": 0.5} "#).unwrap();
        assert_eq!(pairs(&tags), [("code", "500"), ("error", "true"), ("ratio", "0.5")]);
        assert!(parse_tags(r#"{"a": [1]}"#).unwrap_err().contains("\"a\""));
        assert!(parse_tags(r#"{"a": "#).unwrap_err().contains("invalid JSON"));
        assert!(parse_tags(r#"{"": "x"}"#).is_err());
    }

    #[test]
    fn parses_logfmt() {
        let tags = parse_tags(r#"error=true http.method=GET  note="a \"b\" c" empty= flag"#).unwrap();
        assert_eq!(
            pairs(&tags),
            [
                ("error", "true"),
                ("http.method", "GET"),
                ("note", "a \"b\" c"),
                ("empty", ""),
                ("flag", "true")
            ]
        );
        assert_eq!(
            pairs(&parse_tags("url=http://x/?a=b").unwrap()),
            [("url", "http://x/?a=b")]
        );
        assert!(parse_tags("").unwrap().is_empty());
        assert!(parse_tags("=x").unwrap_err().contains("missing key"));
        assert!(parse_tags(r#"a="open"#).unwrap_err().contains("unterminated"));
        assert!(parse_tags(r#"a="x"b"#).is_err());
    }

    #[test]
    fn parses_simple_tags_and_merges() {
        assert_eq!(
            parse_tag("http.url:http://x:80/").unwrap(),
            filter("http.url", "http://x:80/")
        );
        assert_eq!(parse_tag("k:").unwrap(), filter("k", ""));
        assert!(parse_tag("novalue").unwrap_err().contains("key:value"));
        assert!(parse_tag(":v").is_err());
        let merged = merge([filter("a", "1"), filter("b", "2"), filter("a", "3")]);
        assert_eq!(pairs(&merged), [("a", "3"), ("b", "2")]);
    }
}
