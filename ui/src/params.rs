//! Page parameters: every page state is in the query string. Empty form fields count as
//! absent; bad values become a message shown on the page, never a crash.

use std::collections::BTreeMap;

use hopscope_query_api::params::duration::parse_lookback;
use hopscope_query_api::params::now_ns;
use hopscope_schemas::CloudKind;
use hopscope_storage::aggregates::Window;

use crate::format;

/// Query parameters of a page.
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, String>);

impl Params {
    /// A non-empty, trimmed parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A parameter or `""`, for form values.
    pub fn value(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    /// True for a ticked checkbox.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "on" | "true" | "yes"))
    }

    /// `cloud_kind=`, or an error message.
    pub fn cloud_kind(&self) -> Result<Option<CloudKind>, String> {
        match self.get("cloud_kind") {
            None | Some("any") => Ok(None),
            Some(text) => CloudKind::parse(text)
                .map(Some)
                .ok_or_else(|| format!("Unknown cloud kind \"{text}\": choose private, hosted, public or unknown.")),
        }
    }

    /// The time window: `start`/`end` (a date-time in UTC or unix µs) when `start` is
    /// set, else the `lookback` (`15m`, `1h`, `24h`, ...; `default_lookback` when absent)
    /// up to now; with the cloud filter.
    pub fn window(&self, default_lookback: &str) -> Result<Window, String> {
        self.window_named("start", "end", default_lookback)
    }

    /// Like [`Params::window`] with other parameter names; no `lookback` for them.
    pub fn window_named(&self, start: &str, end: &str, default_lookback: &str) -> Result<Window, String> {
        let cloud_kind = self.cloud_kind()?;
        let now = now_ns();
        let end_ns = match self.get(end) {
            Some(text) => format::parse_time(text).ok_or_else(|| {
                format!("The end time \"{text}\" is not a date-time (YYYY-MM-DDTHH:MM, UTC) or unix µs.")
            })?,
            None => now,
        };
        let start_ns = match self.get(start) {
            Some(text) => format::parse_time(text).ok_or_else(|| {
                format!("The start time \"{text}\" is not a date-time (YYYY-MM-DDTHH:MM, UTC) or unix µs.")
            })?,
            None if start == "start" => {
                let text = self.get("lookback").unwrap_or(default_lookback);
                let lookback = parse_lookback(text)
                    .map_err(|err| format!("The lookback \"{text}\" is not a duration like 15m, 1h or 2d ({err})."))?
                    .unwrap_or(3_600_000_000_000);
                end_ns.saturating_sub(lookback)
            }
            None => return Err(format!("Set both {start} and {end}.")),
        };
        if end_ns < start_ns {
            return Err("The end of the time range is before its start.".to_owned());
        }
        Ok(Window {
            start_ns,
            end_ns,
            cloud_kind,
        })
    }
}

/// Lookback choices offered in the forms.
pub const LOOKBACKS: &[(&str, &str)] = &[
    ("5m", "last 5 minutes"),
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("6h", "last 6 hours"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
];

/// Cloud kind choices offered in the forms.
pub const CLOUD_KINDS: &[(&str, &str)] = &[
    ("", "any"),
    ("private", "private DC"),
    ("hosted", "hosted"),
    ("public", "public cloud"),
    ("unknown", "unknown"),
];

/// A URL query string from pairs, percent-encoded; empty values are left out.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if value.is_empty() {
            continue;
        }
        out.push(if out.is_empty() { '?' } else { '&' });
        encode(&mut out, key);
        out.push('=');
        encode(&mut out, value);
    }
    out
}

fn encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_encoded() {
        assert_eq!(
            query_string([("service", "a b&c"), ("x", ""), ("k", "<s>")]),
            "?service=a+b%26c&k=%3Cs%3E"
        );
    }

    #[test]
    fn windows_from_lookback_or_times() {
        let mut p = Params::default();
        p.0.insert("lookback".into(), "15m".into());
        let w = p.window("1h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.end_ns - w.start_ns, 900_000_000_000);
        p.0.insert("start".into(), "2026-01-01T00:00".into());
        p.0.insert("end".into(), "2025-01-01T00:00".into());
        assert!(p.window("1h").is_err());
        p.0.insert("cloud_kind".into(), "moon".into());
        assert!(p.window("1h").unwrap_err().contains("moon"));
    }
}
