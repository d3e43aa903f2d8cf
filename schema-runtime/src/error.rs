//! The one error type of the runtime.

use bson::Document;

use crate::redact::scrub;

/// The error type of migrations: anything that converts into it can be returned with `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while planning or applying migrations. Every message names the
/// migration (when there is one), what was being done, and what to do next.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two registered migrations of one group have the same id (possibly spelled differently,
    /// "3" and "0003"), typically from two crates linked into one binary.
    #[error(
        "migration id {id} is registered twice in group {group:?}: by {first} and by {second}; give one of them a new id"
    )]
    DuplicateId {
        /// The group both migrations are in.
        group: String,
        /// The id both use.
        id: String,
        /// The first function, as `module::function (file:line)`.
        first: String,
        /// The second function.
        second: String,
    },

    /// A pending migration has a lower id than one the database has already applied.
    #[error(
        "migration {id} ({description}) is pending, but the database has already applied migration {highest_applied}, which comes after it; nothing was run. Give it an id above {highest_applied}, or opt in with `Migrator::allow_out_of_order(true)` if running it late is safe"
    )]
    OutOfOrder {
        /// The pending migration.
        id: String,
        /// Its description.
        description: String,
        /// The highest id the database has applied.
        highest_applied: String,
    },

    /// Applied migrations whose code changed, refused by [`ChecksumPolicy::Fail`](crate::ChecksumPolicy::Fail).
    #[error(
        "migration {id} ({description}) was changed after it was applied (recorded checksum {recorded}, now {current}); nothing was run. Restore its code and put the change in a new migration, or choose another `ChecksumPolicy`"
    )]
    ChecksumMismatch {
        /// The changed migration.
        id: String,
        /// Its description.
        description: String,
        /// The checksum stored when it was applied.
        recorded: String,
        /// The checksum of the code in this binary.
        current: String,
    },

    /// A migration's function returned an error or panicked. It is recorded as failed, nothing
    /// after it ran, and it is retried on the next start.
    #[error(
        "migration {id} ({description}) failed on attempt {attempt}: {message}; it is recorded as failed and the migrations after it did not run. Fix the cause and start again: it will be retried"
    )]
    MigrationFailed {
        /// The failed migration.
        id: String,
        /// Its description.
        description: String,
        /// Which attempt this was (1 for the first).
        attempt: i64,
        /// The error's text (also stored as `last_error`).
        message: String,
        /// The error the migration returned, when it returned one rather than panicking.
        #[source]
        source: Option<BoxError>,
    },

    /// A command to the server failed.
    #[error("{operation}{}: {}; check that the server is reachable and the user may do this", migration_suffix(.migration), scrub(&.source.to_string()))]
    Database {
        /// What was being done, such as "reading schema_versions".
        operation: String,
        /// The migration it was done for, if any.
        migration: Option<String>,
        /// The driver's error.
        #[source]
        source: Box<mongodb::error::Error>,
    },

    /// An index with the requested name exists with another definition.
    #[error(
        "index {name:?} on collection {collection:?} already exists with a different definition{}:\n  existing:  {existing}\n  requested: {requested}\nDrop the old index in a migration first, or give the new one another name",
        migration_suffix(.migration)
    )]
    IndexConflict {
        /// The collection.
        collection: String,
        /// The index name.
        name: String,
        /// What the server has.
        existing: Box<Document>,
        /// What was asked for.
        requested: Box<Document>,
        /// The migration that asked, if known.
        migration: Option<String>,
    },

    /// A `schema_versions` document cannot be read.
    #[error(
        "the document {id} in {collection} cannot be read: {problem}; fix or remove that document"
    )]
    BadRecord {
        /// The document's `_id`.
        id: String,
        /// The collection.
        collection: String,
        /// What is wrong.
        problem: String,
    },

    /// This process lost the migration lock (its lease expired, for example because the process
    /// was paused, and another process took it over, or renewing it kept failing). It stopped
    /// and recorded nothing more.
    #[error(
        "this process lost the migration lock (fence {fence}){}: {reason}; it stopped without recording anything more. Another process holds the lock now; restart this one and it will find the schema up to date",
        migration_suffix(.migration)
    )]
    LockLost {
        /// The migration that was running, if any.
        migration: Option<String>,
        /// This process's fencing number.
        fence: i64,
        /// What happened.
        reason: String,
    },

    /// Another process held the lock for longer than this process would wait.
    #[error(
        "gave up waiting for the migration lock after {waited:?}: {holder}. If that process is gone its lease expires by itself; raise the wait with `Migrator::max_wait` if migrations take longer"
    )]
    LockTimeout {
        /// How long this process waited.
        waited: std::time::Duration,
        /// Who held it when this process gave up.
        holder: String,
    },

    /// A migration asks for a transaction and the deployment cannot run one.
    #[error(
        "migration {id} ({description}) asks for a transaction, but the server is a standalone server, which has no transactions; nothing was run. Run it against a replica set or a sharded cluster, or drop `transaction` from its attribute"
    )]
    TransactionsUnsupported {
        /// The migration.
        id: String,
        /// Its description.
        description: String,
    },

    /// A pending migration is `destructive` and this run may not apply destructive migrations.
    #[error(
        "migration {id} ({description}) is destructive and destructive migrations are not allowed in this run; nothing was run. Set AUTO_SCHEMA_DESTRUCTIVE=true (or `Migrator::allow_destructive(true)`) for start-up, or apply it on purpose with `migrate up --allow-destructive`"
    )]
    DestructiveNotAllowed {
        /// The migration.
        id: String,
        /// Its description.
        description: String,
    },

    /// `down` reached an applied migration that has no rollback function.
    #[error(
        "migration {id} ({description}) has no rollback, so `down` stopped there{}; give it one with #[migration(..., down = its_rollback_fn)] or choose a later target",
        if .rolled_back.is_empty() { String::new() } else { format!(" after rolling back {}", .rolled_back.join(", ")) }
    )]
    NoRollback {
        /// The migration.
        id: String,
        /// Its description.
        description: String,
        /// What was rolled back before it.
        rolled_back: Vec<String>,
    },

    /// An id given to a command is not registered, or not in the state the command needs.
    #[error("{command} {id}: {problem}")]
    NotApplicable {
        /// The command.
        command: String,
        /// The id it was given.
        id: String,
        /// What is wrong and what to do.
        problem: String,
    },

    /// A setting is invalid.
    #[error("invalid setting {setting}: {problem}")]
    Config {
        /// The setting (an environment variable or builder method).
        setting: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

fn migration_suffix(migration: &Option<String>) -> String {
    match migration {
        Some(id) => format!(" (migration {id})"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn database(
        operation: impl Into<String>,
        migration: Option<&str>,
        source: mongodb::error::Error,
    ) -> Self {
        Error::Database {
            operation: operation.into(),
            migration: migration.map(str::to_owned),
            source: Box::new(source),
        }
    }
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
