//! What a run tells its caller: the report, the applied migrations, the warnings.

use std::fmt;
use std::time::Duration;

use schema_id::MigrationId;

/// Something the caller should know that did not stop the run.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// An applied migration's body changed since it ran.
    ChecksumChanged {
        /// The migration.
        id: MigrationId,
        /// What was recorded.
        recorded: String,
        /// The checksum of this binary's code.
        current: String,
    },
    /// The database has a record no registered migration has: the database is ahead of this
    /// binary (normal during a rolling deploy) or the record is not one of ours.
    UnknownRecord {
        /// The record's `_id`.
        key: String,
        /// Its description, if it has one.
        description: Option<String>,
    },
    /// A migration below the highest applied id was run late because the caller allowed it.
    AppliedOutOfOrder {
        /// The migration.
        id: MigrationId,
        /// The highest id applied before it.
        highest_applied: MigrationId,
    },
    /// An applied record's function and description both differ from the migration registered
    /// under its id, accepted because [`Migrator::allow_reused_ids`](crate::Migrator::allow_reused_ids) is on.
    ReusedId {
        /// The id.
        id: MigrationId,
        /// The function the database recorded.
        recorded_function: String,
        /// The function registered now.
        registered_function: String,
    },
    /// The lock could not be released after the run; its lease expires by itself.
    LockNotReleased {
        /// Why.
        reason: String,
    },
    /// With [`Migrator::check_drift`](crate::Migrator::check_drift): the database differs from
    /// the schema the migrations declared (one warning per difference), or the check failed.
    Drift {
        /// The difference, as [`Drift`](crate::Drift) displays it, or why the check failed.
        finding: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ChecksumChanged {
                id,
                recorded,
                current,
            } => write!(
                f,
                "migration {id} changed after it was applied (recorded checksum {}, now {}); it does not run again. Put changes to the schema in a new migration; if the edit is harmless (formatting, comments, a renamed variable), record it with `migrate accept {id}` (or `migrate accept --all`)",
                short(recorded),
                short(current)
            ),
            Warning::UnknownRecord { key, description } => write!(
                f,
                "the database has applied {key}{} which this binary does not know (the database is ahead of this binary)",
                description
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Warning::AppliedOutOfOrder {
                id,
                highest_applied,
            } => write!(
                f,
                "migration {id} was applied after {highest_applied}, out of order, as allowed"
            ),
            Warning::ReusedId {
                id,
                recorded_function,
                registered_function,
            } => write!(
                f,
                "migration {id} was applied as {recorded_function} and is registered as {registered_function}: taken as the same migration, as allowed"
            ),
            Warning::Drift { finding } => write!(f, "drift: {finding}"),
            Warning::LockNotReleased { reason } => write!(
                f,
                "the migration lock was not released ({reason}); its lease expires by itself"
            ),
        }
    }
}

fn short(checksum: &str) -> &str {
    &checksum[..checksum.len().min(12)]
}

/// A migration this run applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Its id.
    pub id: MigrationId,
    /// Its description.
    pub description: &'static str,
    /// How long its function took.
    pub duration: Duration,
    /// Which attempt succeeded (1 unless earlier attempts failed or were interrupted).
    pub attempt: i64,
}

/// What [`Migrator::apply_all`](crate::Migrator::apply_all) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Migrations applied by this call, in order.
    pub applied: Vec<AppliedMigration>,
    /// Migrations that were already applied (by an earlier start or by another process).
    pub already_applied: Vec<MigrationId>,
    /// Things to know that did not stop the run.
    pub warnings: Vec<Warning>,
    /// Whether this call took the lock (false when nothing was pending, or when another process
    /// applied everything while this one waited).
    pub took_lock: bool,
    /// How long this call waited for another process's lock.
    pub waited: Duration,
    /// Migrations left pending: with auto-migration off, everything pending; after `up --to`,
    /// what comes after the target.
    pub pending: Vec<MigrationId>,
    /// Migrations [`Migrator::apply_all`](crate::Migrator::apply_all) left to a background task
    /// (from the first pending `#[migration(background)]` one on), in order: applied by this
    /// process when [`runs_background`](Self::runs_background), otherwise by the process that
    /// holds the lock. [`Migrator::wait_for_background`](crate::Migrator::wait_for_background)
    /// awaits them.
    pub background: Vec<MigrationId>,
    /// Whether this process applies [`background`](Self::background) in a task of its own
    /// (it holds the lock, renewing it, while it serves). Keep the process running until they
    /// are applied, or call `wait_for_background` before it exits; a process that stops first
    /// leaves them to the next one that starts.
    pub runs_background: bool,
}

/// Logs `warning` through `tracing` (at `warn`; an unknown record, normal during a rolling
/// deploy, at `info`). A process that installed no subscriber would see nothing, so then a
/// warning is written to stderr instead: an edited migration or drift is never silent.
pub(crate) fn log_warning(warning: &Warning) {
    let quiet = matches!(warning, Warning::UnknownRecord { .. });
    let no_subscriber =
        tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>());
    if no_subscriber {
        if !quiet {
            eprintln!("schema-runtime: warning: {warning}");
        }
    } else if quiet {
        tracing::info!("{warning}");
    } else {
        tracing::warn!("{warning}");
    }
}
