//! Configured rules of the analysis API: SLA levels and the interfaces they apply to
//! ([`SlaConfig`]), service layers ([`LayersConfig`]), and the glob matching both use.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hopscope_storage::aggregates::{DependencyEdge, EdgeTarget, InterfaceStats};
use serde::{Deserialize, Serialize};

pub use hopscope_schemas::glob::glob_match;

/// Thresholds of one SLA level. Unset thresholds are not checked.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaLevel {
    /// Highest allowed 95th percentile latency, milliseconds.
    pub p95_ms: Option<f64>,
    /// Highest allowed 99th percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
    /// Highest allowed 99.9th percentile latency, milliseconds.
    pub p999_ms: Option<f64>,
    /// Highest allowed single latency, milliseconds.
    pub max_ms: Option<f64>,
    /// Highest allowed share of failed calls, 0..1.
    pub max_error_rate: Option<f64>,
}

/// Assigns the interfaces whose service and operation match the globs to a level.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlaRule {
    /// Service name glob (`*` and `?`). Default `*`.
    #[serde(default = "any")]
    pub service: String,
    /// Operation (span name) glob. Default `*`.
    #[serde(default = "any")]
    pub operation: String,
    /// Level name, one of the keys of `[sla.levels]`.
    pub level: String,
}

fn any() -> String {
    "*".to_owned()
}

/// SLA levels and the rules assigning interfaces (server, consumer and root spans of one
/// service and name) to them. The first matching rule wins; interfaces no rule matches
/// get `default_level`, or none when it is unset.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// Levels by name. Default: A (p99 ≤ 200 ms, errors ≤ 0.1 %), B (500 ms, 0.5 %),
    /// C (1 s, 1 %), D (3 s, 5 %).
    pub levels: BTreeMap<String, SlaLevel>,
    /// Rules, first match wins. Default none.
    pub rules: Vec<SlaRule>,
    /// Level of interfaces no rule matches. Default `D`.
    pub default_level: Option<String>,
}

impl Default for SlaConfig {
    fn default() -> Self {
        let level = |p99_ms: f64, max_error_rate: f64| SlaLevel {
            p99_ms: Some(p99_ms),
            max_error_rate: Some(max_error_rate),
            ..Default::default()
        };
        Self {
            levels: BTreeMap::from([
                ("A".to_owned(), level(200.0, 0.001)),
                ("B".to_owned(), level(500.0, 0.005)),
                ("C".to_owned(), level(1_000.0, 0.01)),
                ("D".to_owned(), level(3_000.0, 0.05)),
            ]),
            rules: Vec::new(),
            default_level: Some("D".to_owned()),
        }
    }
}

impl SlaConfig {
    /// Checks that every rule and the default name a configured level.
    pub fn validate(&self) -> Result<(), String> {
        let known = |name: &str| self.levels.contains_key(name);
        for rule in &self.rules {
            if !known(&rule.level) {
                return Err(format!(
                    "sla rule for service {:?} names unknown level {:?}",
                    rule.service, rule.level
                ));
            }
        }
        match &self.default_level {
            Some(level) if !known(level) => Err(format!("sla default_level {level:?} is not a configured level")),
            _ => Ok(()),
        }
    }

    /// The level of an interface.
    pub fn level_of(&self, service: &str, operation: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| glob_match(&r.service, service) && glob_match(&r.operation, operation))
            .map(|r| r.level.as_str())
            .or(self.default_level.as_deref())
    }

    /// Evaluates one interface: its level and the reasons it misses it (empty = met).
    pub fn evaluate(&self, interface: &InterfaceStats) -> (Option<String>, Vec<String>) {
        let Some(name) = self.level_of(&interface.service, &interface.operation) else {
            return (None, Vec::new());
        };
        let Some(level) = self.levels.get(name) else {
            return (Some(name.to_owned()), vec![format!("level {name} is not configured")]);
        };
        let s = &interface.stats;
        let mut reasons = Vec::new();
        let mut check = |label: &str, value_ns: u64, limit_ms: Option<f64>| {
            if let Some(limit) = limit_ms {
                let value_ms = value_ns as f64 / 1e6;
                if value_ms > limit {
                    reasons.push(format!("{label} {value_ms:.3} ms > {limit} ms"));
                }
            }
        };
        check("p95", s.p95_ns, level.p95_ms);
        check("p99", s.p99_ns, level.p99_ms);
        check("p99.9", s.p999_ns, level.p999_ms);
        check("max", s.max_ns, level.max_ms);
        if let Some(limit) = level.max_error_rate
            && s.count > 0
        {
            let rate = s.errors as f64 / s.count as f64;
            if rate > limit {
                reasons.push(format!("error rate {rate:.4} > {limit}"));
            }
        }
        (Some(name.to_owned()), reasons)
    }
}

/// Puts a service in a layer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRule {
    /// Service name glob (`*` and `?`).
    pub service: String,
    /// Layer name, one of `order`.
    pub layer: String,
}

/// Service layers: a call from a lower layer to an upper one is a violation, and so is
/// any cycle of service calls (whatever the layers).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayersConfig {
    /// Layer names, upper first (e.g. `["edge", "business", "data"]`). Default none.
    pub order: Vec<String>,
    /// Rules, first match wins; services no rule matches have no layer. Default none.
    pub rules: Vec<LayerRule>,
}

/// A dependency rule broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    /// A service of a lower layer calls one of an upper layer.
    UpwardCall {
        /// Caller.
        from: String,
        /// Callee.
        to: String,
        /// Caller's layer.
        from_layer: String,
        /// Callee's layer.
        to_layer: String,
        /// Calls in the window.
        call_count: u64,
    },
    /// Services that call each other in a cycle (a strongly connected set), sorted.
    Cycle {
        /// The services.
        services: Vec<String>,
    },
}

impl LayersConfig {
    /// Checks that every rule names a layer of `order`.
    pub fn validate(&self) -> Result<(), String> {
        match self.rules.iter().find(|r| !self.order.contains(&r.layer)) {
            Some(rule) => Err(format!(
                "layer rule for {:?} names unknown layer {:?}",
                rule.service, rule.layer
            )),
            None => Ok(()),
        }
    }

    /// The layer index (0 = top) of a service.
    pub fn layer_of(&self, service: &str) -> Option<usize> {
        let rule = self.rules.iter().find(|r| glob_match(&r.service, service))?;
        self.order.iter().position(|l| *l == rule.layer)
    }

    /// Upward calls (in edge order), then cycles (sorted).
    pub fn violations(&self, edges: &[DependencyEdge]) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for edge in edges {
            let EdgeTarget::Service { name } = &edge.to else {
                continue;
            };
            graph.entry(edge.from.as_str()).or_default().insert(name.as_str());
            graph.entry(name.as_str()).or_default();
            if let (Some(from), Some(to)) = (self.layer_of(&edge.from), self.layer_of(name))
                && from > to
            {
                out.push(Violation::UpwardCall {
                    from: edge.from.clone(),
                    to: name.clone(),
                    from_layer: self.order[from].clone(),
                    to_layer: self.order[to].clone(),
                    call_count: edge.call_count,
                });
            }
        }
        out.extend(cycles(&graph).into_iter().map(|services| Violation::Cycle { services }));
        out
    }
}

/// Strongly connected sets of more than one service, by mutual reachability (service
/// graphs are small).
fn cycles(graph: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<Vec<String>> {
    let reach: HashMap<&str, BTreeSet<&str>> = graph
        .keys()
        .map(|&start| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![start];
            while let Some(node) = todo.pop() {
                for &next in graph.get(node).into_iter().flatten() {
                    if seen.insert(next) {
                        todo.push(next);
                    }
                }
            }
            (start, seen)
        })
        .collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for &a in graph.keys() {
        if done.contains(a) {
            continue;
        }
        let set: Vec<String> = graph
            .keys()
            .filter(|&&b| b != a && reach[a].contains(b) && reach[b].contains(a))
            .map(|b| (*b).to_owned())
            .collect();
        if !set.is_empty() {
            let mut all = set;
            all.push(a.to_owned());
            all.sort();
            for s in &all {
                done.insert(s.clone());
            }
            out.push(all);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hopscope_storage::aggregates::LatencyStats;

    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("pay*", "payments"));
        assert!(glob_match("*-db-?", "ledger-db-2"));
        assert!(!glob_match("pay*", "repay"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a?", "a"));
    }

    #[test]
    fn sla_levels_and_reasons() {
        let config: SlaConfig = toml_like(
            r#"{"levels": {"A": {"p99_ms": 100, "max_error_rate": 0.01}},
                "rules": [{"service": "pay*", "level": "A"}], "default_level": null}"#,
        );
        config.validate().unwrap();
        let stats = LatencyStats {
            count: 10,
            errors: 1,
            p99_ns: 150_000_000,
            ..Default::default()
        };
        let interface = |service: &str| InterfaceStats {
            service: service.into(),
            operation: "POST /pay".into(),
            stats,
        };
        let (level, reasons) = config.evaluate(&interface("payments"));
        assert_eq!(level.as_deref(), Some("A"));
        assert_eq!(reasons, ["p99 150.000 ms > 100 ms", "error rate 0.1000 > 0.01"]);
        assert_eq!(config.evaluate(&interface("web")), (None, vec![]));
        let bad: SlaConfig = toml_like(r#"{"rules": [{"level": "Z"}]}"#);
        assert!(bad.validate().unwrap_err().contains("\"Z\""));
    }

    #[test]
    fn upward_calls_and_cycles() {
        let layers: LayersConfig = toml_like(
            r#"{"order": ["edge", "business", "data"], "rules": [
                {"service": "web", "layer": "edge"}, {"service": "orders", "layer": "business"},
                {"service": "inv*", "layer": "data"}]}"#,
        );
        layers.validate().unwrap();
        let edge = |from: &str, to: &str| DependencyEdge {
            from: from.into(),
            to: EdgeTarget::Service { name: to.into() },
            hop_kind: hopscope_schemas::HopKind::Http,
            call_count: 1,
            error_count: 0,
            p95_ns: 0,
            p99_ns: 0,
        };
        let v = layers.violations(&[
            edge("web", "orders"),
            edge("orders", "inventory"),
            edge("inventory", "orders"),
        ]);
        assert_eq!(
            v,
            [
                Violation::UpwardCall {
                    from: "inventory".into(),
                    to: "orders".into(),
                    from_layer: "data".into(),
                    to_layer: "business".into(),
                    call_count: 1
                },
                Violation::Cycle {
                    services: vec!["inventory".into(), "orders".into()]
                }
            ]
        );
    }

    fn toml_like<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }
}
