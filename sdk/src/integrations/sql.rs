//! SQL client spans. [`DbPeer`] describes one database instance; [`DbPeer::instrument`]
//! wraps any query future (sqlx or otherwise) in a client span named
//! `{operation} {table}` with `db.system.name`, `db.namespace`, `db.operation.name`,
//! `db.collection.name`, `server.address` and `server.port`. With the `sqlx` feature,
//! peers come straight from sqlx connect options.

use std::borrow::Cow;
use std::future::Future;

use super::semconv::*;
use crate::context::FutureExt;
use crate::span::{Span, SpanKind};
use crate::tracer::Tracer;

/// One database instance, as spans name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbPeer {
    /// `db.system.name`: `postgresql`, `mariadb`, `mysql`, ...
    pub system: Cow<'static, str>,
    /// `db.namespace`: the database name.
    pub namespace: String,
    /// `server.address`.
    pub address: String,
    /// `server.port`.
    pub port: u16,
}

impl DbPeer {
    /// A peer.
    pub fn new(
        system: impl Into<Cow<'static, str>>,
        namespace: impl Into<String>,
        address: impl Into<String>,
        port: u16,
    ) -> DbPeer {
        DbPeer {
            system: system.into(),
            namespace: namespace.into(),
            address: address.into(),
            port,
        }
    }

    /// Starts a client span for one statement (current context as parent). `query` is
    /// recorded as `db.query.text`; pass parameterised SQL, never SQL with literal user
    /// data.
    pub fn span(
        &self,
        tracer: &Tracer,
        operation: &'static str,
        table: Option<&'static str>,
        query: Option<&str>,
    ) -> Span {
        let name: Cow<'static, str> = match table {
            Some(t) => format!("{operation} {t}").into(),
            None => operation.into(),
        };
        let mut b = tracer
            .span(name)
            .kind(SpanKind::Client)
            .attribute(DB_SYSTEM_NAME, self.system.clone())
            .attribute(DB_NAMESPACE, self.namespace.clone())
            .attribute(DB_OPERATION_NAME, operation)
            .attribute(SERVER_ADDRESS, self.address.clone())
            .attribute(SERVER_PORT, self.port);
        if let Some(t) = table {
            b = b.attribute(DB_COLLECTION_NAME, t);
        }
        if let Some(q) = query {
            b = b.attribute(DB_QUERY_TEXT, q.to_owned());
        }
        b.start()
    }

    /// Runs `query` inside a client span; an `Err` is recorded as an exception and sets
    /// the span's status to error.
    pub async fn instrument<T, E, F>(
        &self,
        tracer: &Tracer,
        operation: &'static str,
        table: Option<&'static str>,
        query_text: Option<&str>,
        query: F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: std::error::Error,
    {
        let mut span = self.span(tracer, operation, table, query_text);
        let result = query.with_context(span.context().clone()).await;
        if let Err(e) = &result {
            span.record_error(e);
        }
        span.end();
        result
    }
}

#[cfg(feature = "sqlx")]
mod sqlx_peers {
    use super::DbPeer;

    impl DbPeer {
        /// A PostgreSQL peer from sqlx connect options.
        pub fn postgres(options: &sqlx::postgres::PgConnectOptions) -> DbPeer {
            DbPeer::new(
                "postgresql",
                options.get_database().unwrap_or("postgres"),
                options.get_host(),
                options.get_port(),
            )
        }

        /// A MariaDB peer from sqlx MySQL connect options (use [`DbPeer::new`] with
        /// `mysql` for MySQL servers).
        pub fn mariadb(options: &sqlx::mysql::MySqlConnectOptions) -> DbPeer {
            DbPeer::new(
                "mariadb",
                options.get_database().unwrap_or(""),
                options.get_host(),
                options.get_port(),
            )
        }
    }
}
