//! Query-string parsing shared by the Jaeger v1 and api_v3 handlers: the raw parameter
//! list ([`QueryParams`]), numbers and times, Go durations ([`duration`]) and tag filters
//! ([`tags`]). Every failure names the parameter it came from.

pub mod duration;
pub mod tags;

use axum::extract::Query;
use axum::http::Uri;

use crate::error::{ApiError, ApiResult};

/// The decoded `name=value` pairs of a query string, in order, repeats kept.
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes the query string of `uri`.
    pub fn from_uri(uri: &Uri) -> ApiResult<Self> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|err| ApiError::bad_request(format!("malformed query string: {err}")))?;
        Ok(Self { pairs })
    }

    /// Builds from pairs (tests and callers that already decoded).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            pairs: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// The first non-empty value of `name` (an empty value counts as absent, as in Go's
    /// `FormValue` checks).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The first of `names` that has a value, with the name it was found under (for
    /// parameters with a canonical name and deprecated aliases).
    pub fn first_of<'a>(&'a self, names: &[&'a str]) -> Option<(&'a str, &'a str)> {
        names.iter().find_map(|name| self.get(name).map(|value| (*name, value)))
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Parses a non-negative integer parameter.
pub fn parse_u64(name: &str, value: &str) -> ApiResult<u64> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| ApiError::bad_param(name, format!("expected a non-negative integer, got {value:?}")))
}

/// Parses a unix time in `unit_ns` units (1 000 for microseconds, 1 000 000 for
/// milliseconds) into unix nanoseconds.
pub fn parse_unix_time(name: &str, value: &str, unit_ns: u64) -> ApiResult<u64> {
    parse_u64(name, value)?
        .checked_mul(unit_ns)
        .ok_or_else(|| ApiError::bad_param(name, format!("time {value} is out of range")))
}

/// The current time, unix nanoseconds.
pub fn now_ns() -> u64 {
    let now = chrono::Utc::now();
    // Dates after 2262 do not fit in i64 nanoseconds; saturate rather than fail.
    now.timestamp_nanos_opt()
        .and_then(|ns| u64::try_from(ns).ok())
        .unwrap_or(u64::MAX)
}

/// Parses an RFC 3339 timestamp into unix nanoseconds.
pub fn parse_rfc3339(name: &str, value: &str) -> ApiResult<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(value)
        .map_err(|err| ApiError::bad_param(name, format!("expected an RFC 3339 time, got {value:?}: {err}")))?;
    time.timestamp_nanos_opt()
        .and_then(|ns| u64::try_from(ns).ok())
        .ok_or_else(|| ApiError::bad_param(name, format!("time {value:?} is out of range")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_repeats_and_skips_empty_values() {
        let uri: Uri = "/x?traceID=a&traceID=b&service=&service=web&tags=%7B%22a%22%3A%221%22%7D"
            .parse()
            .unwrap();
        let params = QueryParams::from_uri(&uri).unwrap();
        assert_eq!(params.all("traceID").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(params.get("service"), Some("web"));
        assert_eq!(params.get("tags"), Some(r#"{"a":"1"}"#));
        assert_eq!(params.get("missing"), None);
        assert_eq!(params.first_of(&["x", "service"]), Some(("service", "web")));
    }

    #[test]
    fn parses_times() {
        assert_eq!(
            parse_unix_time("start", "1700000000000000", 1_000).unwrap(),
            1_700_000_000_000_000_000
        );
        let err = parse_unix_time("start", "-5", 1_000).unwrap_err();
        assert!(err.message.contains("'start'"), "{}", err.message);
        assert!(parse_unix_time("end", "99999999999999999999", 1_000).is_err());
        assert_eq!(parse_rfc3339("t", "1970-01-01T00:00:01.5Z").unwrap(), 1_500_000_000);
        assert_eq!(parse_rfc3339("t", "1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_rfc3339("t", "yesterday").unwrap_err().message.contains("'t'"));
        assert!(now_ns() > 1_600_000_000_000_000_000);
    }
}
