//! `GET /api/traces` parameters → a storage query, with Jaeger's rules
//! (`cmd/query/app/query_parser.go`): `service` is required unless `traceID`s are given;
//! `start`/`end` are unix microseconds; `minDuration`/`maxDuration` are Go durations;
//! tags come as `tags` (JSON or logfmt) and repeated `tag=key:value`.

use hopscope_schemas::{SpanKind, TraceId};
use hopscope_storage::TraceQuery;

use crate::QueryApiConfig;
use crate::error::{ApiError, ApiResult};
use crate::params::duration::{parse_go_duration, parse_lookback};
use crate::params::{QueryParams, parse_u64, parse_unix_time, tags};

/// What a `/api/traces` request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// Fetch these traces by id (`traceID=a&traceID=b`).
    ByIds(Vec<TraceId>),
    /// Search.
    Query(TraceQuery),
}

/// Parses the search parameters; `now_ns` anchors `lookback` when `start` is absent.
pub fn parse(params: &QueryParams, config: &QueryApiConfig, now_ns: u64) -> ApiResult<Search> {
    let ids = params
        .all("traceID")
        .map(|text| {
            text.parse::<TraceId>()
                .map_err(|err| ApiError::bad_param("traceID", err))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if !ids.is_empty() {
        return Ok(Search::ByIds(ids));
    }
    let service = params
        .get("service")
        .ok_or_else(|| ApiError::missing_param("service"))?;

    let mut filters = Vec::new();
    for text in params.all("tag") {
        filters.push(tags::parse_tag(text).map_err(|err| ApiError::bad_param("tag", err))?);
    }
    for text in params.all("tags") {
        filters.extend(tags::parse_tags(text).map_err(|err| ApiError::bad_param("tags", err))?);
    }

    let duration = |name: &str| {
        params
            .get(name)
            .map(|text| parse_go_duration(text).map_err(|err| ApiError::bad_param(name, err)))
            .transpose()
    };
    let min_duration_ns = duration("minDuration")?;
    let max_duration_ns = duration("maxDuration")?;
    if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns)
        && max < min
    {
        return Err(ApiError::bad_request(
            "'maxDuration' should be greater than 'minDuration'",
        ));
    }

    let time = |name: &str| {
        params
            .get(name)
            .map(|text| parse_unix_time(name, text, 1_000))
            .transpose()
    };
    let end_ns = time("end")?;
    let mut start_ns = time("start")?;
    if start_ns.is_none()
        && let Some(text) = params.get("lookback")
    {
        let lookback = parse_lookback(text).map_err(|err| ApiError::bad_param("lookback", err))?;
        start_ns = lookback.map(|ns| end_ns.unwrap_or(now_ns).saturating_sub(ns));
    }
    if let (Some(start), Some(end)) = (start_ns, end_ns)
        && start > end
    {
        return Err(ApiError::bad_request("'start' should not be after 'end'"));
    }

    let span_kind = params
        .get("spanKind")
        .map(|text| {
            SpanKind::parse(text).ok_or_else(|| ApiError::bad_param("spanKind", format!("unknown span kind {text:?}")))
        })
        .transpose()?;
    let limit = params
        .get("limit")
        .map(|text| parse_u64("limit", text).map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
        .transpose()?;

    Ok(Search::Query(TraceQuery {
        service: Some(service.to_owned()),
        operation: params.get("operation").map(str::to_owned),
        span_kind,
        tags: tags::merge(filters),
        min_duration_ns,
        max_duration_ns,
        start_ns,
        end_ns,
        limit: config.effective_limit(limit),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hopscope_storage::TagFilter;

    use super::*;

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn query(pairs: &[(&str, &str)]) -> ApiResult<TraceQuery> {
        match parse(
            &QueryParams::from_pairs(pairs.iter().copied()),
            &QueryApiConfig::default(),
            NOW,
        )? {
            Search::Query(q) => Ok(q),
            Search::ByIds(ids) => panic!("unexpected ids {ids:?}"),
        }
    }

    fn tag(key: &str, value: &str) -> TagFilter {
        TagFilter {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn converts_every_parameter() {
        let q = query(&[
            ("service", "web"),
            ("operation", "GET /"),
            ("tags", r#"{"http.status_code":"500"}"#),
            ("tag", "error:true"),
            ("minDuration", "1.5ms"),
            ("maxDuration", "2s"),
            ("start", "1000"),
            ("end", "2000"),
            ("limit", "5"),
            ("spanKind", "server"),
        ])
        .unwrap();
        assert_eq!(
            q,
            TraceQuery {
                service: Some("web".into()),
                operation: Some("GET /".into()),
                span_kind: Some(SpanKind::Server),
                tags: vec![tag("error", "true"), tag("http.status_code", "500")],
                min_duration_ns: Some(1_500_000),
                max_duration_ns: Some(2_000_000_000),
                start_ns: Some(1_000_000),
                end_ns: Some(2_000_000),
                limit: 5,
            }
        );
    }

    #[test]
    fn defaults_lookback_and_limits() {
        let q = query(&[("service", "web")]).unwrap();
        assert_eq!((q.start_ns, q.end_ns, q.limit, q.operation), (None, None, 20, None));
        let q = query(&[("service", "web"), ("lookback", "1h"), ("limit", "0")]).unwrap();
        assert_eq!(q.start_ns, Some(NOW - 3_600_000_000_000));
        assert_eq!(q.limit, 20);
        let q = query(&[("service", "web"), ("lookback", "2d"), ("end", "200000000000")]).unwrap();
        assert_eq!(q.start_ns, Some(200_000_000_000_000 - 2 * 86_400_000_000_000));
        let q = query(&[("service", "web"), ("lookback", "1h"), ("start", "7")]).unwrap();
        assert_eq!(q.start_ns, Some(7_000));
        let q = query(&[("service", "web"), ("lookback", "custom"), ("limit", "99999")]).unwrap();
        assert_eq!((q.start_ns, q.limit), (None, 1500));
    }

    #[test]
    fn trace_ids_need_no_service() {
        let params = QueryParams::from_pairs([("traceID", "abc"), ("traceID", "0af7651916cd43dd8448eb211c80319c")]);
        let Search::ByIds(ids) = parse(&params, &QueryApiConfig::default(), NOW).unwrap() else {
            panic!("expected ids")
        };
        assert_eq!(ids[0].to_hex(), "00000000000000000000000000000abc");
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn errors_name_the_parameter() {
        let msg = |pairs: &[(&str, &str)]| query(pairs).unwrap_err().message;
        assert_eq!(msg(&[]), "parameter 'service' is required");
        let with = |k: &'static str, v: &'static str| msg(&[("service", "web"), (k, v)]);
        for (name, value) in [
            ("minDuration", "fast"),
            ("maxDuration", "10"),
            ("start", "yesterday"),
            ("end", "-1"),
            ("limit", "ten"),
            ("tags", "{oops"),
            ("tag", "nocolon"),
            ("lookback", "soon"),
            ("spanKind", "sideways"),
        ] {
            let text = with(name, value);
            assert!(text.contains(&format!("'{name}'")), "{name}: {text}");
        }
        assert!(with("traceID", "xyz").contains("'traceID'"));
        assert!(msg(&[("service", "w"), ("minDuration", "2s"), ("maxDuration", "1s")]).contains("maxDuration"));
        assert!(msg(&[("service", "w"), ("start", "5"), ("end", "4")]).contains("'start'"));
    }
}
