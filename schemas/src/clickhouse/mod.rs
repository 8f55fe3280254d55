//! The ClickHouse data contract (feature `clickhouse`): the DDL and the rows that must
//! agree with it, side by side.
//!
//! - [`migrations`]: the numbered DDL templates of `schemas/migrations/` and their
//!   rendering for a server generation ([`version`]) and an optional cluster.
//! - [`rows`]: the `spans_v2` and `resources` rows (the `clickhouse` crate's `Row`
//!   derive) and the mapping between them and [`SpanRecord`](crate::SpanRecord);
//!   [`attrs`]: attribute lists as parallel key/type/value arrays.
//!
//! RowBinary is positional and the store turns the `clickhouse` crate's schema
//! validation off (18.16 lacks `RowBinaryWithNamesAndTypes`), so nothing at run time
//! would notice a row type that drifted from its table. The `contract` tests render the
//! DDL for modern and legacy servers and check that every table's columns and its row
//! type's fields agree in name, order and encoding. The store (`hopscope-storage`) does
//! the I/O: applying migrations, inserting and reading rows.

pub mod attrs;
pub mod migrations;
pub mod rows;
pub mod version;

#[cfg(test)]
mod contract;
