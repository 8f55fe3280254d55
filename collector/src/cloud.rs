//! Hybrid-cloud tagging: rules from the `[[cloud.rules]]` configuration that complete a
//! resource's location — `hopscope.cloud.kind`, `cloud.provider`, `cloud.region`,
//! `cloud.availability_zone` — when the SDK did not set it.
//!
//! Rules are applied by [`crate::Ingest::ingest`] to the decoded OTLP request before it is
//! logged, so the tags become ordinary resource attributes: the write-ahead log (which
//! stores the enriched request, encoded) keeps them, and a replay derives the same
//! [`hopscope_schemas::SpanRecord::cloud`] without the rules.
//!
//! A rule matches a resource when every condition it sets holds (a rule with no condition
//! matches everything); the first matching rule wins. Each of the four attributes is
//! added only when the resource lacks it, so what an SDK sets always stands.

use std::net::IpAddr;

use hopscope_schemas::CloudKind;
use hopscope_schemas::derive::CLOUD_KIND_ATTR;
use hopscope_schemas::glob::glob_match;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use serde::{Deserialize, Serialize};

/// The `[cloud]` configuration section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// Tagging rules, first match wins. Default none.
    pub rules: Vec<CloudRule>,
}

/// One tagging rule: conditions (`match_*`, all that are set must hold) and the tags it
/// sets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudRule {
    /// Glob (`*`, `?`) on `host.name` (else `host.id`, `k8s.node.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_host: Option<String>,
    /// CIDR (`10.0.0.0/8`, `fd00::/8`) containing one of the `host.ip` addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_cidr: Option<String>,
    /// Glob on `k8s.cluster.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_cluster: Option<String>,
    /// `cloud.provider` value (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_provider: Option<String>,
    /// Cloud kind set: `private`, `hosted` or `public`.
    pub kind: String,
    /// `cloud.provider` set, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `cloud.region` set, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `cloud.availability_zone` set, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// A CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    bits: u32,
}

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let (addr, bits) = text.split_once('/').unwrap_or((text, ""));
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("invalid CIDR {text:?}: bad address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = if bits.is_empty() {
            max
        } else {
            bits.parse::<u32>()
                .map_err(|_| format!("invalid CIDR {text:?}: bad prefix length"))?
        };
        if bits > max {
            return Err(format!("invalid CIDR {text:?}: prefix longer than {max}"));
        }
        Ok(Self { net, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let mask = |bits: u32, width: u32| -> u128 { if bits == 0 { 0 } else { (!0u128) << (width - bits) } };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask(self.bits, 32);
                (u128::from(u32::from(net)) & m) == (u128::from(u32::from(ip)) & m)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask(self.bits, 128);
                (u128::from(net) & m) == (u128::from(ip) & m)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    rule: CloudRule,
    cidr: Option<Cidr>,
}

/// Compiled tagging rules, applied by the ingest path.
#[derive(Debug, Clone, Default)]
pub struct CloudRules {
    rules: Vec<Compiled>,
}

impl CloudRules {
    /// Checks and compiles the configured rules; the error names the bad rule.
    pub fn new(config: &CloudConfig) -> Result<Self, String> {
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                match CloudKind::parse(&rule.kind) {
                    Some(CloudKind::Private | CloudKind::Hosted | CloudKind::Public) => {}
                    _ => {
                        return Err(format!(
                            "cloud rule {}: kind {:?} is not private, hosted or public",
                            i + 1,
                            rule.kind
                        ));
                    }
                }
                let cidr = rule
                    .match_cidr
                    .as_deref()
                    .map(Cidr::parse)
                    .transpose()
                    .map_err(|e| format!("cloud rule {}: {e}", i + 1))?;
                Ok(Compiled {
                    rule: rule.clone(),
                    cidr,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { rules })
    }

    /// True when there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Tags every resource of the request (see the module doc).
    pub fn apply(&self, request: &mut ExportTraceServiceRequest) {
        if self.rules.is_empty() {
            return;
        }
        for resource_spans in &mut request.resource_spans {
            let resource = resource_spans.resource.get_or_insert_with(Default::default);
            let attrs = &mut resource.attributes;
            let Some(rule) = self.rules.iter().find(|r| r.matches(attrs)) else {
                continue;
            };
            let r = &rule.rule;
            let sets = [
                (CLOUD_KIND_ATTR, Some(r.kind.to_ascii_lowercase())),
                ("cloud.provider", r.provider.clone()),
                ("cloud.region", r.region.clone()),
                ("cloud.availability_zone", r.zone.clone()),
            ];
            for (key, value) in sets {
                if let Some(value) = value
                    && str_attr(attrs, key).is_none_or(str::is_empty)
                {
                    attrs.retain(|kv| kv.key != key);
                    attrs.push(KeyValue {
                        key: key.to_owned(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue(value)),
                        }),
                        ..Default::default()
                    });
                }
            }
        }
    }
}

impl Compiled {
    fn matches(&self, attrs: &[KeyValue]) -> bool {
        let r = &self.rule;
        if let Some(glob) = &r.match_host {
            let host = ["host.name", "host.id", "k8s.node.name"]
                .iter()
                .find_map(|k| str_attr(attrs, k).filter(|v| !v.is_empty()));
            if !host.is_some_and(|h| glob_match(glob, h)) {
                return false;
            }
        }
        if let Some(glob) = &r.match_cluster
            && !str_attr(attrs, "k8s.cluster.name").is_some_and(|c| glob_match(glob, c))
        {
            return false;
        }
        if let Some(provider) = &r.match_provider
            && !str_attr(attrs, "cloud.provider").is_some_and(|p| p.eq_ignore_ascii_case(provider))
        {
            return false;
        }
        if let Some(cidr) = &self.cidr
            && !host_ips(attrs).any(|ip| cidr.contains(ip))
        {
            return false;
        }
        true
    }
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

/// The addresses of `host.ip` (a string array per the conventions, or one string).
fn host_ips(attrs: &[KeyValue]) -> impl Iterator<Item = IpAddr> + '_ {
    let value = attrs
        .iter()
        .find(|kv| kv.key == "host.ip")
        .and_then(|kv| kv.value.as_ref()?.value.as_ref());
    let texts: Vec<&str> = match value {
        Some(Value::StringValue(s)) => vec![s.as_str()],
        Some(Value::ArrayValue(array)) => array
            .values
            .iter()
            .filter_map(|v| match v.value.as_ref()? {
                Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    texts.into_iter().filter_map(|t| t.trim().parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hopscope_schemas::otlp::spans_from_request;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(text: &str) -> Value {
        Value::StringValue(text.into())
    }

    fn request(attrs: Vec<KeyValue>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "x".into(),
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn rules(toml_rules: &str) -> CloudRules {
        let config: CloudConfig = serde_json::from_str(toml_rules).unwrap();
        CloudRules::new(&config).unwrap()
    }

    fn cloud_of(rules: &CloudRules, attrs: Vec<KeyValue>) -> hopscope_schemas::CloudTags {
        let mut req = request(attrs);
        rules.apply(&mut req);
        spans_from_request(req).spans[0].cloud()
    }

    #[test]
    fn host_glob_cidr_cluster_and_provider() {
        let r = rules(
            r#"{"rules": [
            {"match_host": "dc1-*", "kind": "private", "region": "fra-dc1"},
            {"match_cidr": "10.20.0.0/16", "kind": "hosted", "provider": "equinix", "zone": "fr2"},
            {"match_cluster": "gke-*", "kind": "public", "provider": "gcp"},
            {"match_provider": "AWS", "kind": "public", "region": "eu-west-1"}]}"#,
        );
        let dc = cloud_of(&r, vec![kv("host.name", s("dc1-vm-7"))]);
        assert_eq!((dc.kind, dc.region.as_deref()), (CloudKind::Private, Some("fra-dc1")));
        let ips = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(s("192.168.1.1")),
                },
                AnyValue {
                    value: Some(s("10.20.3.4")),
                },
            ],
        });
        let hosted = cloud_of(&r, vec![kv("host.name", s("rack-1")), kv("host.ip", ips)]);
        assert_eq!(
            (hosted.kind, hosted.provider.as_deref(), hosted.zone.as_deref()),
            (CloudKind::Hosted, Some("equinix"), Some("fr2"))
        );
        let gke = cloud_of(&r, vec![kv("k8s.cluster.name", s("gke-prod"))]);
        assert_eq!((gke.kind, gke.provider.as_deref()), (CloudKind::Public, Some("gcp")));
        // The SDK's own region stands; only the missing ones are added.
        let aws = cloud_of(
            &r,
            vec![kv("cloud.provider", s("aws")), kv("cloud.region", s("us-east-1"))],
        );
        assert_eq!(
            (aws.kind, aws.region.as_deref()),
            (CloudKind::Public, Some("us-east-1"))
        );
        // An SDK-set kind is never overridden.
        let own = cloud_of(&r, vec![kv("host.name", s("dc1-x")), kv(CLOUD_KIND_ATTR, s("hosted"))]);
        assert_eq!(own.kind, CloudKind::Hosted);
        assert_eq!(cloud_of(&r, vec![kv("host.name", s("other"))]).kind, CloudKind::Unknown);
    }

    #[test]
    fn bad_rules_are_named() {
        let bad = |json: &str| CloudRules::new(&serde_json::from_str(json).unwrap()).unwrap_err();
        assert!(bad(r#"{"rules": [{"kind": "moon"}]}"#).contains("rule 1"));
        assert!(bad(r#"{"rules": [{"kind": "private", "match_cidr": "10.0.0.0/40"}]}"#).contains("prefix"));
        assert!(bad(r#"{"rules": [{"kind": "private", "match_cidr": "ten/8"}]}"#).contains("address"));
        assert!(serde_json::from_str::<CloudConfig>(r#"{"rules": [{"kind": "private", "host": "x"}]}"#).is_err());
    }

    #[test]
    fn cidr_edges() {
        let c = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(c.contains("1.2.3.4".parse().unwrap()));
        let c = Cidr::parse("fd00::/8").unwrap();
        assert!(c.contains("fd12::1".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1").unwrap().contains("10.0.0.1".parse().unwrap()));
    }
}
