//! The resource: who emits the spans (service, version, host, process, cloud).
//!
//! Hybrid-cloud tags: besides OpenTelemetry's `cloud.provider`, `cloud.region` and
//! `cloud.availability_zone`, hopscope uses **`hopscope.cloud.kind`** ([`CLOUD_KIND`]) to
//! say what kind of infrastructure the host is: `private` (your own data centre),
//! `hosted` (rented racks or dedicated servers at a hosting provider) or `public` (a
//! public cloud such as AWS, GCP or Azure). Set it in code with
//! [`ResourceBuilder::with_cloud`] or in the environment with
//! `OTEL_RESOURCE_ATTRIBUTES=hopscope.cloud.kind=hosted` (or `HOPSCOPE_CLOUD_KIND`).

use std::borrow::Cow;

use crate::value::{Key, KeyValue, Value, upsert};

/// The resource attribute that holds the [`CloudKind`].
pub const CLOUD_KIND: &str = "hopscope.cloud.kind";

/// What kind of infrastructure a service runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloudKind {
    /// Your own data centre.
    Private,
    /// Rented racks or dedicated servers at a hosting provider.
    Hosted,
    /// A public cloud (AWS, GCP, Azure, ...).
    Public,
}

impl CloudKind {
    /// `private`, `hosted` or `public`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudKind::Private => "private",
            CloudKind::Hosted => "hosted",
            CloudKind::Public => "public",
        }
    }

    /// Parses `private`, `hosted` or `public` (case-insensitive).
    pub fn parse(s: &str) -> Option<CloudKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "private" => Some(CloudKind::Private),
            "hosted" => Some(CloudKind::Hosted),
            "public" => Some(CloudKind::Public),
            _ => None,
        }
    }
}

/// Where a host runs: kind, provider, region and zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    /// Private, hosted or public.
    pub kind: CloudKind,
    /// `cloud.provider`, e.g. `aws`, `hetzner`, `onprem`.
    pub provider: Cow<'static, str>,
    /// `cloud.region`, e.g. `eu-west-1`, `fra-dc1`.
    pub region: Cow<'static, str>,
    /// `cloud.availability_zone`, e.g. `eu-west-1a`, `rack-12`.
    pub zone: Cow<'static, str>,
}

/// Resource attributes, exported once per batch with every span.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Resource {
    attributes: Vec<KeyValue>,
}

impl Resource {
    /// No attributes.
    pub fn empty() -> Resource {
        Resource::default()
    }

    /// A builder starting empty.
    pub fn builder() -> ResourceBuilder {
        ResourceBuilder {
            resource: Resource::default(),
        }
    }

    /// Host, process and SDK attributes detected from the machine, then the `OTEL_*`
    /// environment (which wins). `service.name` is `unknown_service:<executable>` unless
    /// set by the environment.
    pub fn detect() -> Resource {
        Resource::builder()
            .with_detected_host()
            .with_process()
            .with_env()
            .build()
    }

    /// The attributes.
    pub fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }

    /// One attribute's value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }
}

/// Builds a [`Resource`]; later settings replace earlier ones with the same key.
#[derive(Debug)]
pub struct ResourceBuilder {
    resource: Resource,
}

impl ResourceBuilder {
    /// Any attribute.
    pub fn with_attribute(mut self, key: impl Into<Key>, value: impl Into<Value>) -> Self {
        upsert(&mut self.resource.attributes, KeyValue::new(key, value), usize::MAX);
        self
    }

    /// `service.name`.
    pub fn with_service_name(self, name: impl Into<Value>) -> Self {
        self.with_attribute("service.name", name)
    }

    /// `service.version`.
    pub fn with_service_version(self, version: impl Into<Value>) -> Self {
        self.with_attribute("service.version", version)
    }

    /// `service.namespace`.
    pub fn with_service_namespace(self, namespace: impl Into<Value>) -> Self {
        self.with_attribute("service.namespace", namespace)
    }

    /// `host.name`.
    pub fn with_host_name(self, name: impl Into<Value>) -> Self {
        self.with_attribute("host.name", name)
    }

    /// `host.id`.
    pub fn with_host_id(self, id: impl Into<Value>) -> Self {
        self.with_attribute("host.id", id)
    }

    /// `cloud.provider`, `cloud.region`, `cloud.availability_zone` and
    /// `hopscope.cloud.kind`.
    pub fn with_cloud(self, cloud: Cloud) -> Self {
        self.with_attribute(CLOUD_KIND, cloud.kind.as_str())
            .with_attribute("cloud.provider", cloud.provider)
            .with_attribute("cloud.region", cloud.region)
            .with_attribute("cloud.availability_zone", cloud.zone)
    }

    /// `host.name` from the kernel (`/proc/sys/kernel/hostname`, else `$HOSTNAME`) and
    /// `host.id` from `/etc/machine-id`, when available.
    pub fn with_detected_host(mut self) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        if let Some(host) = host {
            self = self.with_host_name(host);
        }
        if let Some(id) = std::fs::read_to_string("/etc/machine-id")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
        {
            self = self.with_host_id(id);
        }
        self
    }

    /// `process.pid`, `process.executable.name`, `process.runtime.name` and the
    /// `telemetry.sdk.*` attributes.
    pub fn with_process(mut self) -> Self {
        self = self.with_attribute("process.pid", i64::from(std::process::id()));
        if let Some(exe) = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        {
            if self.resource.get("service.name").is_none() {
                self = self.with_service_name(format!("unknown_service:{exe}"));
            }
            self = self.with_attribute("process.executable.name", exe);
        }
        self.with_attribute("process.runtime.name", "rust")
            .with_attribute("telemetry.sdk.name", "hopscope-sdk")
            .with_attribute("telemetry.sdk.language", "rust")
            .with_attribute("telemetry.sdk.version", env!("CARGO_PKG_VERSION"))
    }

    /// Applies `OTEL_RESOURCE_ATTRIBUTES`, then `HOPSCOPE_CLOUD_KIND`, then
    /// `OTEL_SERVICE_NAME` from the process environment.
    pub fn with_env(self) -> Self {
        let get = |k: &str| std::env::var(k).ok();
        self.with_env_vars(get)
    }

    /// [`ResourceBuilder::with_env`] over any variable source (for tests and config
    /// layers).
    pub fn with_env_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(list) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for (k, v) in parse_resource_attributes(&list) {
                self = self.with_attribute(k, v);
            }
        }
        if let Some(kind) = get("HOPSCOPE_CLOUD_KIND").as_deref().and_then(CloudKind::parse) {
            self = self.with_attribute(CLOUD_KIND, kind.as_str());
        }
        if let Some(name) = get("OTEL_SERVICE_NAME").filter(|n| !n.trim().is_empty()) {
            self = self.with_service_name(name.trim().to_owned());
        }
        self
    }

    /// The resource.
    pub fn build(self) -> Resource {
        self.resource
    }
}

/// Parses `k1=v1,k2=v2` with percent-encoded values; malformed entries are skipped.
fn parse_resource_attributes(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_code() {
        let env = |k: &str| match k {
            "OTEL_RESOURCE_ATTRIBUTES" => {
                Some("service.name=a,cloud.region=eu%2Dwest,hopscope.cloud.kind=private,bad".to_owned())
            }
            "OTEL_SERVICE_NAME" => Some("payments".to_owned()),
            "HOPSCOPE_CLOUD_KIND" => Some("Public".to_owned()),
            _ => None,
        };
        let r = Resource::builder().with_service_name("code").with_env_vars(env).build();
        assert_eq!(r.get("service.name").and_then(Value::as_str), Some("payments"));
        assert_eq!(r.get("cloud.region").and_then(Value::as_str), Some("eu-west"));
        assert_eq!(r.get(CLOUD_KIND).and_then(Value::as_str), Some("public"));
    }

    #[test]
    fn cloud_and_detection() {
        let r = Resource::builder()
            .with_detected_host()
            .with_process()
            .with_cloud(Cloud {
                kind: CloudKind::Hosted,
                provider: "hetzner".into(),
                region: "fsn1".into(),
                zone: "fsn1-dc14".into(),
            })
            .build();
        assert_eq!(r.get(CLOUD_KIND).and_then(Value::as_str), Some("hosted"));
        assert!(r.get("process.pid").is_some());
        assert!(percent_decode("a%20b%").ends_with('%'));
    }
}
