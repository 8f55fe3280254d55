//! SQL building blocks of the aggregate queries (and of the reader's searches): a
//! builder of text and arguments that keeps every `?` next to its value, and the expressions that
//! mirror the embedded store's definitions (effective cloud kind, span system,
//! nearest-rank percentiles, exception events, timeout mentions) on both server
//! generations.
//!
//! Attributes are parallel key / type code / value arrays (see
//! [`crate::clickhouse::attrs`]); a string attribute is read with `indexOf` and
//! `arrayElement`, which exist on 18.16 and on modern servers alike, and which give the
//! first attribute of that key like [`hopscope_schemas::find_str`].

use hopscope_schemas::derive::PUBLIC_PROVIDERS;

use crate::aggregates::Window;
use crate::clickhouse::migrations::Target;
use crate::clickhouse::rows::ns_to_i64;
use crate::clickhouse::version::Generation;

/// A bound value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(i64),
    U64(u64),
    Str(String),
}

/// SQL text with its `?` arguments in order. Literal `?` in the text (regular
/// expressions) must be written `??` (the `clickhouse` crate's escape).
#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    pub text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// Appends text without arguments.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends text with exactly one `?` and its value.
    pub fn bind(&mut self, text: &str, arg: Arg) -> &mut Self {
        debug_assert_eq!(text.replace("??", "").matches('?').count(), 1, "{text}");
        self.text.push_str(text);
        self.args.push(arg);
        self
    }

    /// The query with every argument bound.
    pub fn query(&self, client: &clickhouse::Client) -> clickhouse::query::Query {
        let mut q = client.query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::I64(v) => q.bind(*v),
                Arg::U64(v) => q.bind(*v),
                Arg::Str(v) => q.bind(v.as_str()),
            };
        }
        q
    }
}

/// Generation-specific expressions over the `spans` table.
#[derive(Debug, Clone)]
pub(super) struct Exprs {
    pub target: Target,
}

impl Exprs {
    /// The spans table.
    pub fn spans(&self) -> String {
        self.target.table("spans_v2")
    }

    /// `start_time` as unix ns (`UInt64`).
    pub fn start_ns(&self) -> &'static str {
        match self.target.generation {
            Generation::Modern => "toUInt64(toUnixTimestamp64Nano(start_time))",
            Generation::Legacy => "toUInt64(start_time)",
        }
    }

    /// A bound unix-ns value typed like `start_time`.
    fn ts(&self) -> &'static str {
        match self.target.generation {
            Generation::Modern => "fromUnixTimestamp64Nano(toInt64(?))",
            Generation::Legacy => "toInt64(?)",
        }
    }

    /// ` start_time >= .. AND start_time <= ..` for the window's times (no cloud
    /// filter; see [`Exprs::cloud_filter`]).
    pub fn time_filter(&self, sql: &mut Sql, window: &Window) {
        let ts = self.ts();
        sql.bind(&format!(" start_time >= {ts}"), Arg::I64(ns_to_i64(window.start_ns)));
        sql.bind(&format!(" AND start_time <= {ts}"), Arg::I64(ns_to_i64(window.end_ns)));
    }

    /// ` AND <cloud kind> = ?` when the window filters by cloud kind.
    pub fn cloud_filter(&self, sql: &mut Sql, window: &Window) {
        if let Some(kind) = window.cloud_kind {
            sql.bind(
                &format!(" AND {} = ?", cloud_kind()),
                Arg::Str(kind.as_str().to_owned()),
            );
        }
    }
}

/// The effective cloud kind of a row, as [`hopscope_schemas::derive::cloud`] computes it:
/// the `hopscope.cloud.kind` column when it names a kind, else `public` for a public
/// `cloud.provider`, else `unknown`. The provider list is a constant of ours, not user
/// input.
pub(super) fn cloud_kind() -> String {
    let providers: Vec<String> = PUBLIC_PROVIDERS
        .iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(|p| format!("'{p}'"))
        .collect();
    format!(
        "multiIf(lower(cloud_kind) IN ('private', 'hosted', 'public', 'unknown'), lower(cloud_kind), \
         lower(cloud_provider) IN ({}), 'public', 'unknown')",
        providers.join(", ")
    )
}

/// The string value of attribute `key` (a constant of ours, never user input) in the
/// attribute arrays `keys`, `types`, `values`; `''` when absent or not a string.
pub(super) fn string_attr(keys: &str, types: &str, values: &str, key: &str) -> String {
    debug_assert!(!key.contains(['\'', '\\', '?']), "{key}");
    format!(
        "if(arrayElement({types}, indexOf({keys}, '{key}')) = {string}, arrayElement({values}, indexOf({keys}, '{key}')), '')",
        string = crate::clickhouse::attrs::STRING
    )
}

/// A span attribute's string value (see [`string_attr`]).
pub(super) fn span_attr(key: &str) -> String {
    string_attr("attributes.key", "attributes.type", "attributes.value", key)
}

/// The span "system" ([`crate::aggregates::span_system`]).
pub(super) fn system() -> String {
    let keys = ["db.system.name", "db.system", "messaging.system", "rpc.system"];
    let mut parts: Vec<String> = Vec::new();
    for key in keys {
        let value = span_attr(key);
        parts.push(format!("{value} != ''"));
        parts.push(value);
    }
    format!("multiIf({}, hop_kind = 'http', 'http', '')", parts.join(", "))
}

/// The columns of one event after `ARRAY JOIN` [`EVENT_ARRAY_JOIN`].
pub(super) const EVENT_COLUMNS: [&str; 3] = ["ev_keys", "ev_types", "ev_values"];

/// ` ARRAY JOIN` of the event arrays: one row per event, `ev_offset` (ns after the span
/// start), `ev_name` and the [`EVENT_COLUMNS`].
pub(super) const EVENT_ARRAY_JOIN: &str = " ARRAY JOIN events.offset_ns AS ev_offset, events.name AS ev_name, \
    events.attr_keys AS ev_keys, events.attr_types AS ev_types, events.attr_values AS ev_values";

/// True when the text `expr` mentions a timeout ([`crate::aggregates::mentions_timeout`]).
pub(super) fn mentions_timeout(expr: &str) -> String {
    format!(
        "(position(lower({expr}), 'timeout') > 0 OR position(lower({expr}), 'timed out') > 0 \
         OR position(lower({expr}), 'deadline') > 0)"
    )
}

/// True when the span mentions a timeout in its status message, its `error.type` or
/// an exception event's type or message.
pub(super) fn span_mentions_timeout() -> String {
    let status = mentions_timeout("status_message");
    let error_type = mentions_timeout(&span_attr("error.type"));
    let event = |key: &str| mentions_timeout(&string_attr("e_k", "e_t", "e_v", key));
    format!(
        "({status} OR {error_type} OR arrayExists((e_n, e_k, e_t, e_v) -> e_n = 'exception' AND ({} OR {}), \
         events.name, events.attr_keys, events.attr_types, events.attr_values))",
        event("exception.type"),
        event("exception.message")
    )
}

/// Nearest-rank percentile `p` of the ascending array `sorted` of `n` values.
pub(super) fn percentile(sorted: &str, p: f64) -> String {
    format!("toUInt64(arrayElement({sorted}, toUInt64(greatest(1, ceil({p:?} * length({sorted}))))))")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_have_no_placeholders() {
        assert_eq!(
            span_attr("db.system"),
            "if(arrayElement(attributes.type, indexOf(attributes.key, 'db.system')) = 1, \
             arrayElement(attributes.value, indexOf(attributes.key, 'db.system')), '')"
        );
        assert!(!system().contains('?'));
        assert!(!span_mentions_timeout().contains('?'));
        assert!(cloud_kind().contains("'aws'"));
        assert_eq!(
            percentile("s", 0.5),
            "toUInt64(arrayElement(s, toUInt64(greatest(1, ceil(0.5 * length(s))))))"
        );
    }
}
