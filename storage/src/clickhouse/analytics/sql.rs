//! SQL building blocks of the analytics queries: a text + arguments builder that keeps
//! every `?` next to its value, and the expressions that mirror the embedded store's
//! definitions (effective cloud kind, span system, nearest-rank percentiles, exception
//! events, timeout mentions) on both server generations.
//!
//! Events and attributes live only in the `record` JSON column (a compact `serde_json`
//! rendering of [`hopscope_schemas::SpanRecord`]). They are read with functions that
//! exist on 18.16 and on modern servers alike: `visitParamExtractRaw` for the top-level
//! `attributes`/`events` arrays (the first top-level key of that name: span attributes
//! and events precede the resource and scope in the record), `extractAll`/`extract`
//! (RE2) for the items, and `visitParamExtractString` to unescape a JSON string. In
//! compact JSON an unescaped `"` cannot occur inside a string, so the patterns below
//! cannot match inside attribute values.

use hopscope_schemas::derive::PUBLIC_PROVIDERS;

use crate::analytics::Window;
use crate::clickhouse::migrations::Target;
use crate::clickhouse::rows::ns_to_i64;
use crate::clickhouse::version::Generation;

/// A bound value.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    I64(i64),
    U64(u64),
    Str(String),
}

/// SQL text with its `?` arguments in order. Literal `?` in the text (regular
/// expressions) must be written `??` (the `clickhouse` crate's escape).
#[derive(Debug, Default)]
pub(super) struct Sql {
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
        self.target.table("spans")
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
            sql.bind(&format!(" AND {} = ?", cloud_kind()), Arg::Str(kind.as_str().to_owned()));
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

/// The string value of span attribute `key` (dots are escaped here; keys are constants),
/// `''` when absent or not a string. `attrs` is the raw attributes array.
pub(super) fn string_attr(attrs: &str, key: &str) -> String {
    let key = key.replace('.', r"\\.");
    format!(
        r#"visitParamExtractString(extract({attrs}, '"key":"{key}","value":(\\{{"type":"string","value":"(??:[^"\\\\]|\\\\.)*"\\}})'), 'value')"#
    )
}

/// The raw top-level span attributes of `record`.
pub(super) const ATTRS: &str = "visitParamExtractRaw(record, 'attributes')";

/// The span "system" ([`crate::analytics::span_system`]).
pub(super) fn system() -> String {
    let keys = ["db.system.name", "db.system", "messaging.system", "rpc.system"];
    let mut parts: Vec<String> = Vec::new();
    for key in keys {
        let value = string_attr(ATTRS, key);
        parts.push(format!("{value} != ''"));
        parts.push(value);
    }
    format!("multiIf({}, hop_kind = 'http', 'http', '')", parts.join(", "))
}

/// The `exception` events of `record`, each as its raw JSON text up to its attributes.
pub(super) const EXCEPTION_EVENTS: &str = r#"extractAll(visitParamExtractRaw(record, 'events'), '(\\{"time_unix_nano":\\d+,"name":"exception","attributes":\\[.*??\\],"dropped_attributes_count")')"#;

/// The time of a raw event (see [`EXCEPTION_EVENTS`]), unix ns.
pub(super) fn event_time(event: &str) -> String {
    format!(r#"toUInt64(extract({event}, '^\\{{"time_unix_nano":(\\d+)'))"#)
}

/// True when the text `expr` mentions a timeout ([`crate::analytics::mentions_timeout`]).
pub(super) fn mentions_timeout(expr: &str) -> String {
    format!(
        "(position(lower({expr}), 'timeout') > 0 OR position(lower({expr}), 'timed out') > 0 \
         OR position(lower({expr}), 'deadline') > 0)"
    )
}

/// True when the span of `record` mentions a timeout in its status message, its
/// `error.type` or an exception event's type or message.
pub(super) fn span_mentions_timeout() -> String {
    let status = mentions_timeout("visitParamExtractString(record, 'status_message')");
    let error_type = mentions_timeout(&string_attr(ATTRS, "error.type"));
    let ty = mentions_timeout(&string_attr("e", "exception.type"));
    let message = mentions_timeout(&string_attr("e", "exception.message"));
    format!("({status} OR {error_type} OR arrayExists(e -> ({ty} OR {message}), {EXCEPTION_EVENTS}))")
}

/// Nearest-rank percentile `p` of the ascending array `sorted` of `n` values.
pub(super) fn percentile(sorted: &str, p: f64) -> String {
    format!("toUInt64(arrayElement({sorted}, toUInt64(greatest(1, ceil({p:?} * length({sorted}))))))")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_escape_question_marks_and_keys() {
        assert!(string_attr("a", "db.system").contains(r#""key":"db\\.system","value""#));
        assert!(!string_attr("a", "x").replace("??", "").contains('?'));
        assert!(!EXCEPTION_EVENTS.replace("??", "").contains('?'));
        assert!(cloud_kind().contains("'aws'"));
        assert_eq!(
            percentile("s", 0.5),
            "toUInt64(arrayElement(s, toUInt64(greatest(1, ceil(0.5 * length(s))))))"
        );
    }
}
