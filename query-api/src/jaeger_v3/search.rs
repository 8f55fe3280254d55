//! `GET /api/v3/traces` parameters → a storage query, as Jaeger's HTTP gateway reads them:
//! `query.startTimeMin`/`Max` (RFC 3339) are required, durations are Go durations,
//! `query.searchDepth` is the limit, `query.attributes` a JSON object of strings.

use hopscope_storage::{TagFilter, TraceQuery};

use crate::QueryApiConfig;
use crate::error::{ApiError, ApiResult};
use crate::params::duration::parse_go_duration;
use crate::params::{QueryParams, parse_rfc3339, parse_u64, tags};

const SERVICE: [&str; 2] = ["query.serviceName", "query.service_name"];
const OPERATION: [&str; 2] = ["query.operationName", "query.operation_name"];
const TIME_MIN: [&str; 2] = ["query.startTimeMin", "query.start_time_min"];
const TIME_MAX: [&str; 2] = ["query.startTimeMax", "query.start_time_max"];
const SEARCH_DEPTH: [&str; 3] = ["query.searchDepth", "query.search_depth", "query.num_traces"];
const DURATION_MIN: [&str; 2] = ["query.durationMin", "query.duration_min"];
const DURATION_MAX: [&str; 2] = ["query.durationMax", "query.duration_max"];
const RAW_TRACES: [&str; 2] = ["query.rawTraces", "query.raw_traces"];
const ATTRIBUTES: &str = "query.attributes";
/// grpc-gateway's form of one map entry: `query.attributes.<key>=<value>`.
const ATTRIBUTE_PREFIX: &str = "query.attributes.";

fn malformed(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("malformed parameter {name}: {why}"))
}

/// Parses the find-traces parameters.
pub fn parse(params: &QueryParams, config: &QueryApiConfig) -> ApiResult<TraceQuery> {
    if params.get("query.filter").is_some() {
        return Err(ApiError::bad_request("parameter query.filter is not supported"));
    }
    let (Some((min_name, min_text)), Some((max_name, max_text))) =
        (params.first_of(&TIME_MIN), params.first_of(&TIME_MAX))
    else {
        return Err(ApiError::bad_request(
            "query.start_time_min and query.start_time_max are required",
        ));
    };
    let start_ns = parse_rfc3339(min_name, min_text)
        .map_err(|_| malformed(min_name, format!("{min_text:?} is not an RFC 3339 time")))?;
    let end_ns = parse_rfc3339(max_name, max_text)
        .map_err(|_| malformed(max_name, format!("{max_text:?} is not an RFC 3339 time")))?;
    if start_ns >= end_ns {
        return Err(ApiError::bad_request(format!("{min_name} must be before {max_name}")));
    }

    let duration = |names: &[&'static str]| {
        params
            .first_of(names)
            .map(|(name, text)| parse_go_duration(text).map_err(|err| malformed(name, err)))
            .transpose()
    };
    let min_duration_ns = duration(&DURATION_MIN)?;
    let max_duration_ns = duration(&DURATION_MAX)?;

    let limit = params
        .first_of(&SEARCH_DEPTH)
        .map(|(name, text)| {
            parse_u64(name, text).map_err(|_| malformed(name, format!("{text:?} is not a non-negative integer")))
        })
        .transpose()?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));

    if let Some((name, text)) = params.first_of(&RAW_TRACES) {
        // Accepted for compatibility; hopscope always returns traces as stored.
        text.parse::<bool>()
            .map_err(|_| malformed(name, format!("{text:?} is not a boolean")))?;
    }

    let mut filters = Vec::new();
    for text in params.all(ATTRIBUTES) {
        if !text.trim_start().starts_with('{') {
            return Err(malformed(ATTRIBUTES, "expected a JSON object of strings"));
        }
        filters.extend(tags::parse_tags(text).map_err(|err| malformed(ATTRIBUTES, err))?);
    }
    for (name, value) in params.pairs() {
        if let Some(key) = name.strip_prefix(ATTRIBUTE_PREFIX).filter(|key| !key.is_empty()) {
            filters.push(TagFilter {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
    }

    Ok(TraceQuery {
        service: params.first_of(&SERVICE).map(|(_, v)| v.to_owned()),
        operation: params.first_of(&OPERATION).map(|(_, v)| v.to_owned()),
        span_kind: None,
        tags: tags::merge(filters),
        min_duration_ns,
        max_duration_ns,
        start_ns: Some(start_ns),
        end_ns: Some(end_ns),
        limit: config.effective_limit(limit),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)]) -> ApiResult<TraceQuery> {
        parse(
            &QueryParams::from_pairs(pairs.iter().copied()),
            &QueryApiConfig::default(),
        )
    }

    const MIN: (&str, &str) = ("query.start_time_min", "2024-01-01T00:00:00Z");
    const MAX: (&str, &str) = ("query.start_time_max", "2024-01-01T01:00:00.5Z");

    #[test]
    fn converts_both_spellings() {
        let q = parse_pairs(&[
            ("query.service_name", "web"),
            ("query.operation_name", "GET /"),
            MIN,
            MAX,
            ("query.duration_min", "10ms"),
            ("query.duration_max", "1m"),
            ("query.search_depth", "7"),
            ("query.attributes", r#"{"http.status_code":"500"}"#),
            ("query.attributes.error", "true"),
        ])
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("web"));
        assert_eq!(q.operation.as_deref(), Some("GET /"));
        assert_eq!(q.start_ns, Some(1_704_067_200_000_000_000));
        assert_eq!(q.end_ns, Some(1_704_070_800_500_000_000));
        assert_eq!(
            (q.min_duration_ns, q.max_duration_ns),
            (Some(10_000_000), Some(60_000_000_000))
        );
        assert_eq!(q.limit, 7);
        let tags: Vec<_> = q.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
        assert_eq!(tags, [("http.status_code", "500"), ("error", "true")]);

        let q = parse_pairs(&[
            ("query.serviceName", "api"),
            ("query.startTimeMin", "2024-01-01T00:00:00Z"),
            ("query.startTimeMax", "2024-01-02T00:00:00+02:00"),
            ("query.searchDepth", "100000"),
        ])
        .unwrap();
        assert_eq!((q.service.as_deref(), q.limit, q.operation), (Some("api"), 1500, None));
    }

    #[test]
    fn errors_name_the_parameter() {
        let msg = |pairs: &[(&str, &str)]| parse_pairs(pairs).unwrap_err().message;
        assert!(msg(&[MIN]).contains("are required"));
        assert!(msg(&[("query.start_time_min", "today"), MAX]).contains("query.start_time_min"));
        assert!(msg(&[("query.startTimeMin", "x"), MAX]).contains("query.startTimeMin"));
        assert!(msg(&[("query.start_time_min", MAX.1), MAX]).contains("must be before"));
        assert!(msg(&[MIN, MAX, ("query.duration_min", "5")]).contains("query.duration_min"));
        assert!(msg(&[MIN, MAX, ("query.search_depth", "-1")]).contains("query.search_depth"));
        assert!(msg(&[MIN, MAX, ("query.attributes", "a=b")]).contains("query.attributes"));
        assert!(msg(&[MIN, MAX, ("query.raw_traces", "maybe")]).contains("query.raw_traces"));
        assert!(msg(&[MIN, MAX, ("query.filter", "{}")]).contains("query.filter"));
    }
}
