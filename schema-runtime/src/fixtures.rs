//! Registered migrations and records for the unit tests of the pure logic (the policy check,
//! the plan): built by hand, as the `#[migration]` attribute would build them.

use schema_id::MigrationId;

use crate::context::MigrationContext;
use crate::registry::{MigrationFuture, MigrationMeta};
use crate::store::{MigrationRecord, RecordState};

/// A migration function that does nothing.
pub(crate) fn run(_: &mut MigrationContext) -> MigrationFuture<'_> {
    Box::pin(async { Ok(()) })
}

/// What the attribute records of a migration `id` whose function (and description) is
/// `function`, in module `app`, with checksum `"current"`.
pub(crate) const fn meta(
    id: &'static str,
    function: &'static str,
    destructive: bool,
) -> MigrationMeta {
    MigrationMeta {
        id,
        description: function,
        group: "fixtures",
        checksum: "current",
        module: "app",
        function,
        file: "fixtures.rs",
        line: 1,
        transaction: false,
        destructive,
        background: false,
        timeout_ms: 0,
    }
}

/// An applied record under `key`, written by this library for `app::function` with `checksum`.
pub(crate) fn record(key: &str, function: &str, checksum: &str) -> MigrationRecord {
    MigrationRecord {
        key: key.to_owned(),
        id: MigrationId::parse_prefixed(key),
        description: Some(function.to_owned()),
        state: RecordState::Applied,
        checksum: Some(checksum.to_owned()),
        started_at: None,
        finished_at: None,
        duration_ms: None,
        host: None,
        pid: None,
        attempts: 1,
        last_error: None,
        function: Some(format!("app::{function}")),
        fence: Some(1),
        declared: Some(Vec::new()),
        progress: Vec::new(),
    }
}
