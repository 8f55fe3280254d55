//! Fields hopscope derives from OpenTelemetry semantic conventions at ingest: service name,
//! hop kind, peer instance and host.
//!
//! Both the current and the older (pre-1.26) attribute names are understood, because
//! services in the field run SDKs of every age.

use crate::span::{AttrValue, HopKind, KeyValue, SpanKind, find_str};

/// What an attribute lookup found: the two value types derivation reads, or something
/// else.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LookedUp<'a> {
    /// A string value.
    Str(&'a str),
    /// An integer value.
    Int(i64),
    /// Any other value type.
    Other,
}

/// Attributes that derivation can look keys up in: owned ([`KeyValue`]) or borrowed
/// ([`crate::view::AttrRef`]) ones. The first attribute with the key wins.
pub trait AttrLookup {
    /// The value of the first attribute named `key`.
    fn look_up(&self, key: &str) -> Option<LookedUp<'_>>;
}

impl AttrLookup for [KeyValue] {
    fn look_up(&self, key: &str) -> Option<LookedUp<'_>> {
        self.iter().find(|kv| kv.key == key).map(|kv| match &kv.value {
            AttrValue::String(s) => LookedUp::Str(s),
            AttrValue::Int(i) => LookedUp::Int(*i),
            _ => LookedUp::Other,
        })
    }
}

impl<T> AttrLookup for Vec<T>
where
    [T]: AttrLookup,
{
    fn look_up(&self, key: &str) -> Option<LookedUp<'_>> {
        self.as_slice().look_up(key)
    }
}

impl<T, const N: usize> AttrLookup for [T; N]
where
    [T]: AttrLookup,
{
    fn look_up(&self, key: &str) -> Option<LookedUp<'_>> {
        self.as_slice().look_up(key)
    }
}

fn look_up_str<'a, A: AttrLookup + ?Sized>(attrs: &'a A, key: &str) -> Option<&'a str> {
    match attrs.look_up(key)? {
        LookedUp::Str(s) => Some(s),
        _ => None,
    }
}

/// Service name used when the resource has no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// `db.system` values that are caches rather than databases.
const CACHE_SYSTEMS: &[&str] = &[
    "redis",
    "memcached",
    "valkey",
    "keydb",
    "dragonfly",
    "hazelcast",
    "coherence",
    "geode",
    "infinispan",
    "ignite",
    "ehcache",
    "caffeine",
];

/// The resource's `service.name`, or [`UNKNOWN_SERVICE`].
pub fn service_name(resource_attrs: &[KeyValue]) -> String {
    match find_str(resource_attrs, "service.name") {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => UNKNOWN_SERVICE.to_owned(),
    }
}

/// The host a span ran on: `host.name`, else `host.id`, else `k8s.node.name`.
pub fn host(resource_attrs: &[KeyValue]) -> Option<String> {
    ["host.name", "host.id", "k8s.node.name"]
        .iter()
        .find_map(|key| find_str(resource_attrs, key).filter(|v| !v.is_empty()))
        .map(str::to_owned)
}

/// Classifies a span's hop kind. Messaging wins over database (a Redis stream consumer is
/// a queue hop), a cache system is `cache` not `db`, RPC wins over HTTP (gRPC runs on HTTP).
pub fn hop_kind<A: AttrLookup + ?Sized>(attrs: &A) -> HopKind {
    if has(attrs, "messaging.system") {
        return HopKind::Mq;
    }
    if let Some(system) = first_str(attrs, &["db.system.name", "db.system"]) {
        // CACHE_SYSTEMS is lowercase: a case-insensitive match, without a lowercased copy.
        let cache = CACHE_SYSTEMS.iter().any(|c| c.eq_ignore_ascii_case(system));
        return if cache { HopKind::Cache } else { HopKind::Db };
    }
    if has(attrs, "rpc.system") {
        return HopKind::Rpc;
    }
    if has(attrs, "http.request.method") || has(attrs, "http.method") {
        return HopKind::Http;
    }
    HopKind::Internal
}

/// The system a span talks to or runs: `db.system.name`, `db.system`,
/// `messaging.system` or `rpc.system` (the first one set), else `http` for an HTTP hop,
/// else empty.
pub fn system<A: AttrLookup + ?Sized>(attrs: &A, hop: HopKind) -> &str {
    ["db.system.name", "db.system", "messaging.system", "rpc.system"]
        .iter()
        .find_map(|key| look_up_str(attrs, key).filter(|v| !v.is_empty()))
        .unwrap_or(match hop {
            HopKind::Http => "http",
            _ => "",
        })
}

/// The peer node a non-server span talks to, e.g. `redis-shard-2:6379`, `payments` (a
/// queue), `ledger` (a database namespace when no address is known). Server spans have
/// no peer: their node is their own service and host.
pub fn peer<A: AttrLookup + ?Sized>(kind: SpanKind, hop: HopKind, attrs: &A) -> Option<String> {
    if kind == SpanKind::Server {
        return None;
    }
    match hop {
        HopKind::Mq => first_str(attrs, &["messaging.destination.name", "messaging.destination"])
            .map(str::to_owned)
            .or_else(|| address(attrs)),
        HopKind::Db | HopKind::Cache => {
            address(attrs).or_else(|| first_str(attrs, &["db.namespace", "db.name"]).map(str::to_owned))
        }
        HopKind::Http | HopKind::Rpc | HopKind::Internal => address(attrs),
    }
}

/// `server.address[:server.port]`, falling back to the older `net.peer.*`,
/// `network.peer.*` attributes and the authority of `url.full` / `http.url`.
fn address<A: AttrLookup + ?Sized>(attrs: &A) -> Option<String> {
    let pairs: [(&str, &str); 3] = [
        ("server.address", "server.port"),
        ("net.peer.name", "net.peer.port"),
        ("network.peer.address", "network.peer.port"),
    ];
    for (host_key, port_key) in pairs {
        if let Some(host) = look_up_str(attrs, host_key).filter(|h| !h.is_empty()) {
            let mut peer = String::with_capacity(host.len() + 6);
            peer.push_str(host);
            if let Some(port) = port(attrs, port_key) {
                peer.push(':');
                peer.push_str(int_text(port, &mut [0; 20]));
            }
            return Some(peer);
        }
    }
    first_str(attrs, &["url.full", "http.url"]).and_then(url_authority)
}

/// `i.to_string()` written into `buf`, without allocating or the formatting machinery
/// (`format!` was three quarters of [`peer`]'s instructions).
pub fn int_text(i: i64, buf: &mut [u8; 20]) -> &str {
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    std::str::from_utf8(&buf[pos..]).unwrap_or("")
}

fn port<A: AttrLookup + ?Sized>(attrs: &A, key: &str) -> Option<i64> {
    match attrs.look_up(key)? {
        LookedUp::Int(p) => Some(p),
        LookedUp::Str(s) => s.parse().ok(),
        LookedUp::Other => None,
    }
}

/// The `host[:port]` of a URL, without user info.
fn url_authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    (!authority.is_empty()).then(|| authority.to_owned())
}

/// Resource attribute naming the cloud kind (`private`, `hosted` or `public`), set by
/// hopscope's SDK or by the collector's tagging rules.
pub const CLOUD_KIND_ATTR: &str = "hopscope.cloud.kind";

/// `cloud.provider` values that are public clouds (OpenTelemetry semantic conventions).
pub const PUBLIC_PROVIDERS: &[&str] = &[
    "alibaba_cloud",
    "aws",
    "azure",
    "gcp",
    "heroku",
    "ibm_cloud",
    "oracle_cloud",
    "tencent_cloud",
    "hetzner",
    "digitalocean",
    "linode",
    "ovh",
];

/// Where a span's host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudKind {
    /// The organisation's own data centre.
    Private,
    /// Rented racks or managed hosting.
    Hosted,
    /// A public cloud provider.
    Public,
    /// Not known: no `hopscope.cloud.kind`, no public `cloud.provider`, no tagging rule.
    #[default]
    Unknown,
}

impl CloudKind {
    /// The lowercase name used in APIs and attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudKind::Private => "private",
            CloudKind::Hosted => "hosted",
            CloudKind::Public => "public",
            CloudKind::Unknown => "unknown",
        }
    }

    /// Parses [`CloudKind::as_str`] names (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "private" => CloudKind::Private,
            "hosted" => CloudKind::Hosted,
            "public" => CloudKind::Public,
            "unknown" => CloudKind::Unknown,
            _ => return None,
        })
    }
}

/// The hybrid-cloud location of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct CloudTags {
    /// Private DC, hosted or public cloud.
    pub kind: CloudKind,
    /// `cloud.provider`.
    pub provider: Option<String>,
    /// `cloud.region`.
    pub region: Option<String>,
    /// `cloud.availability_zone`.
    pub zone: Option<String>,
}

/// The cloud tags of a resource: `hopscope.cloud.kind` when set, else `public` for a
/// known public `cloud.provider`, else unknown.
pub fn cloud(resource_attrs: &[KeyValue]) -> CloudTags {
    let provider = find_str(resource_attrs, "cloud.provider").filter(|p| !p.is_empty());
    let kind = find_str(resource_attrs, CLOUD_KIND_ATTR)
        .and_then(CloudKind::parse)
        .or_else(|| {
            provider
                .filter(|p| PUBLIC_PROVIDERS.contains(&p.to_ascii_lowercase().as_str()))
                .map(|_| CloudKind::Public)
        })
        .unwrap_or_default();
    CloudTags {
        kind,
        provider: provider.map(str::to_owned),
        region: first_str(resource_attrs, &["cloud.region"]).map(str::to_owned),
        zone: first_str(resource_attrs, &["cloud.availability_zone"]).map(str::to_owned),
    }
}

fn has<A: AttrLookup + ?Sized>(attrs: &A, key: &str) -> bool {
    attrs.look_up(key).is_some()
}

fn first_str<'a, A: AttrLookup + ?Sized>(attrs: &'a A, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|key| look_up_str(attrs, key).filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(key: &str, value: &str) -> KeyValue {
        KeyValue::new(key, AttrValue::String(value.into()))
    }

    fn i(key: &str, value: i64) -> KeyValue {
        KeyValue::new(key, AttrValue::Int(value))
    }

    #[test]
    fn int_text_matches_to_string() {
        for i in [0, 7, -7, 10, 500, -123_456, i64::MAX, i64::MIN] {
            assert_eq!(int_text(i, &mut [0; 20]), i.to_string());
        }
    }

    #[test]
    fn redis_is_a_cache_with_shard_peer() {
        let attrs = [
            s("db.system.name", "redis"),
            s("server.address", "redis-shard-2"),
            i("server.port", 6379),
        ];
        assert_eq!(hop_kind(&attrs), HopKind::Cache);
        assert_eq!(
            peer(SpanKind::Client, HopKind::Cache, &attrs).as_deref(),
            Some("redis-shard-2:6379")
        );
    }

    #[test]
    fn cache_systems_match_in_any_case() {
        assert_eq!(hop_kind(&[s("db.system", "Redis")]), HopKind::Cache);
        assert_eq!(hop_kind(&[s("db.system.name", "MEMCACHED")]), HopKind::Cache);
        assert_eq!(hop_kind(&[s("db.system", "redis2")]), HopKind::Db);
    }

    #[test]
    fn old_db_system_and_namespace_fallback() {
        let attrs = [s("db.system", "postgresql"), s("db.name", "ledger")];
        assert_eq!(hop_kind(&attrs), HopKind::Db);
        assert_eq!(peer(SpanKind::Client, HopKind::Db, &attrs).as_deref(), Some("ledger"));
    }

    #[test]
    fn messaging_peer_is_the_destination() {
        let attrs = [
            s("messaging.system", "rabbitmq"),
            s("messaging.destination.name", "payments"),
            s("server.address", "mq1"),
        ];
        assert_eq!(hop_kind(&attrs), HopKind::Mq);
        assert_eq!(
            peer(SpanKind::Producer, HopKind::Mq, &attrs).as_deref(),
            Some("payments")
        );
        assert_eq!(
            peer(SpanKind::Consumer, HopKind::Mq, &attrs).as_deref(),
            Some("payments")
        );
    }

    #[test]
    fn rpc_beats_http_and_server_spans_have_no_peer() {
        let attrs = [
            s("rpc.system", "grpc"),
            s("http.request.method", "POST"),
            s("server.address", "acct"),
            i("server.port", 50051),
        ];
        assert_eq!(hop_kind(&attrs), HopKind::Rpc);
        assert_eq!(peer(SpanKind::Server, HopKind::Rpc, &attrs), None);
        assert_eq!(
            peer(SpanKind::Client, HopKind::Rpc, &attrs).as_deref(),
            Some("acct:50051")
        );
    }

    #[test]
    fn http_client_peer_from_url() {
        let attrs = [
            s("http.method", "GET"),
            s("http.url", "https://user:pw@api.example:8443/v1/x?q=1"),
        ];
        assert_eq!(hop_kind(&attrs), HopKind::Http);
        assert_eq!(
            peer(SpanKind::Client, HopKind::Http, &attrs).as_deref(),
            Some("api.example:8443")
        );
    }

    #[test]
    fn cloud_kind_from_attribute_or_public_provider() {
        let explicit = cloud(&[
            s(CLOUD_KIND_ATTR, "hosted"),
            s("cloud.provider", "equinix"),
            s("cloud.region", "fra"),
        ]);
        assert_eq!(explicit.kind, CloudKind::Hosted);
        assert_eq!(explicit.provider.as_deref(), Some("equinix"));
        assert_eq!(explicit.region.as_deref(), Some("fra"));
        assert_eq!(
            cloud(&[s("cloud.provider", "aws"), s("cloud.availability_zone", "eu-west-1a")]).kind,
            CloudKind::Public
        );
        assert_eq!(cloud(&[s("cloud.provider", "equinix")]).kind, CloudKind::Unknown);
        assert_eq!(cloud(&[]), CloudTags::default());
    }

    #[test]
    fn service_and_host_defaults() {
        assert_eq!(service_name(&[]), UNKNOWN_SERVICE);
        assert_eq!(service_name(&[s("service.name", "payment")]), "payment");
        assert_eq!(host(&[s("host.id", "i-123")]).as_deref(), Some("i-123"));
        assert_eq!(
            host(&[s("host.name", "vm-pay-2"), s("host.id", "i-1")]).as_deref(),
            Some("vm-pay-2")
        );
        assert_eq!(host(&[]), None);
    }
}
