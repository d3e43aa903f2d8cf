//! The nine migrations of the reference system (a Python `SchemaManager`), ported one to one:
//! same collections, index names, keys and options, and the `events` validator in moderate/warn
//! mode. Unlike the reference, no error is swallowed: a migration that fails is recorded as
//! failed and stops the start-up.
//!
//! One deliberate, narrow exception, in 0001: a server that has no text indexes at all (the local
//! SecantusDB server) refuses `idx_text_search` with `CannotCreateIndex` and the message "text
//! indexes are not supported". Only that refusal is tolerated, with a warning; every other error
//! fails the migration. On a real `mongod` the index is created.

pub mod health;
pub mod migrations;
