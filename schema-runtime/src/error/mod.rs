//! The one error type of the runtime, and how driver errors and source chains are shown.
//!
//! Every message names the migration (when there is one), what was being done, and what to do
//! next. No password ever appears: text that can carry one (error messages, reasons, source
//! chains) is scrubbed by [`crate::redact`] when it is rendered, and source chains are kept as
//! scrubbed text ([`Cause`]).

mod cause;
pub(crate) mod driver;

use std::fmt;
use std::time::Duration;

use mongodb::bson::Document;

pub use cause::Cause;
pub use driver::ErrorClass;

use schema_id::MigrationId;

use crate::redact::scrub;

/// The error type of migrations: anything that converts into it can be returned with `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while planning or applying migrations. Every message names the
/// migration (when there is one), what was being done, and what to do next.
#[non_exhaustive]
pub enum Error {
    /// Two registered migrations of one group have the same id (possibly spelled differently,
    /// "3" and "0003"), typically from two crates linked into one binary.
    DuplicateId {
        /// The group both migrations are in.
        group: String,
        /// The id both use.
        id: MigrationId,
        /// The first function, as `module::function (file:line)`.
        first: String,
        /// The second function.
        second: String,
    },

    /// A pending migration has a lower id than one the database has already applied.
    OutOfOrder {
        /// The pending migration.
        id: MigrationId,
        /// Its description.
        description: String,
        /// The highest id the database has applied.
        highest_applied: MigrationId,
    },

    /// Applied migrations whose code changed, refused by [`ChecksumPolicy::Fail`](crate::ChecksumPolicy::Fail).
    ChecksumMismatch {
        /// The changed migration.
        id: MigrationId,
        /// Its description.
        description: String,
        /// The checksum stored when it was applied.
        recorded: String,
        /// The checksum of the code in this binary.
        current: String,
    },

    /// A migration's function returned an error or panicked. It is recorded as failed, nothing
    /// after it ran, and it is retried on the next start.
    MigrationFailed {
        /// The failed migration.
        id: MigrationId,
        /// Its description.
        description: String,
        /// Which attempt this was (1 for the first).
        attempt: i64,
        /// The error's whole source chain on one line (also stored as `last_error`).
        message: String,
        /// The error the migration returned (its whole chain, scrubbed), or the panic's message.
        source: Option<Box<Cause>>,
        /// What this run applied before it, in order.
        applied_before: Vec<MigrationId>,
    },

    /// A migration ran past its time limit (`#[migration(timeout = "...")]` or
    /// [`Migrator::migration_timeout`](crate::Migrator::migration_timeout)). It was stopped where
    /// it was (a transaction is aborted), recorded as failed, and is retried on the next start.
    MigrationTimedOut {
        /// The migration.
        id: MigrationId,
        /// Its description.
        description: String,
        /// Which attempt this was.
        attempt: i64,
        /// The limit it ran past.
        limit: Duration,
        /// What this run applied before it, in order.
        applied_before: Vec<MigrationId>,
    },

    /// A command to the server failed.
    Database {
        /// What was being done, such as "reading schema_versions".
        operation: String,
        /// The migration it was done for, if any.
        migration: Option<MigrationId>,
        /// The driver's error as text (code, code name and message), scrubbed.
        source: Cause,
        /// The driver's error, for code that inspects it ([`Error::driver_error`]).
        driver: Box<mongodb::error::Error>,
        /// What this run applied before the failure, in order.
        applied_before: Vec<MigrationId>,
    },

    /// An index with the requested name exists with another definition.
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
        migration: Option<MigrationId>,
    },

    /// An index is asked for under one name while the collection already has one on the same
    /// keys and options under another (a hand-made `email_1`): MongoDB refuses a second such
    /// index (code 85 IndexOptionsConflict). Found before anything was built.
    IndexKeysTaken {
        /// The collection.
        collection: String,
        /// The name asked for.
        name: String,
        /// The name of the index that has those keys.
        existing_name: String,
        /// That index, as the server has it.
        existing: Box<Document>,
        /// What was asked for.
        requested: Box<Document>,
        /// The migration that asked, if known.
        migration: Option<MigrationId>,
    },

    /// A unique index was not built because documents already share keys (found before the
    /// build by `ensure_indexes`; nothing was built).
    DuplicateKeys {
        /// The collection.
        collection: String,
        /// The index name.
        index: String,
        /// How many keys are held by more than one document.
        keys: u64,
        /// Up to five of them: the key, how many documents hold it, and up to three `_id`s.
        examples: Vec<DuplicateKey>,
        /// The migration that asked, if known.
        migration: Option<MigrationId>,
    },

    /// A validator that rejects writes (strict, error) was not applied because existing
    /// documents do not match it: every later update of one would fail. Nothing was changed.
    ValidatorRejectsExisting {
        /// The collection.
        collection: String,
        /// How many documents do not match.
        documents: u64,
        /// Up to five of their `_id`s.
        ids: Vec<mongodb::bson::Bson>,
        /// The migration that asked, if known.
        migration: Option<MigrationId>,
    },

    /// A `schema_versions` document cannot be read.
    BadRecord {
        /// The document's `_id`.
        id: String,
        /// The collection.
        collection: String,
        /// What is wrong.
        problem: String,
    },

    /// This process lost the migration lock: its lease expired (the process was paused, or
    /// renewing kept failing) and another process took it over, an operator forced it open, or
    /// the lock document was deleted. The reason says which. It stopped and recorded nothing more.
    LockLost {
        /// The migration that was running, if any.
        migration: Option<MigrationId>,
        /// This process's fencing number.
        fence: i64,
        /// What happened.
        reason: String,
        /// What this run applied before it lost the lock, in order.
        applied_before: Vec<MigrationId>,
    },

    /// Another process held the lock for longer than this process would wait.
    LockTimeout {
        /// How long this process waited.
        waited: std::time::Duration,
        /// Who held it when this process gave up (owner, host, pid, last renewal), and which
        /// migration was running.
        holder: String,
    },

    /// A migration asks for a transaction and the deployment cannot run one.
    TransactionsUnsupported {
        /// The migration.
        id: MigrationId,
        /// Its description.
        description: String,
    },

    /// A pending migration is `destructive` and this run may not apply destructive migrations.
    DestructiveNotAllowed {
        /// The migration.
        id: MigrationId,
        /// Its description.
        description: String,
    },

    /// `down` reached an applied migration that has no rollback function.
    NoRollback {
        /// The migration.
        id: MigrationId,
        /// Its description.
        description: String,
        /// What was rolled back before it.
        rolled_back: Vec<MigrationId>,
    },

    /// An id given to a command is not registered, or not in the state the command needs.
    NotApplicable {
        /// The command.
        command: String,
        /// The id it was given.
        id: MigrationId,
        /// What is wrong and what to do.
        problem: String,
    },

    /// A group has no registered migrations: typically the crate that holds them is not linked
    /// into this binary (nothing in the binary refers to it).
    NoMigrations {
        /// The group.
        group: String,
        /// The groups this binary does register.
        registered_groups: Vec<String>,
        /// Whether this process is a test binary built by cargo (`target/.../deps/NAME-HASH`):
        /// an integration test of a binary crate, which cannot see the binary's migrations.
        in_test_binary: bool,
    },

    /// The database recorded a different migration under this id than the one registered now
    /// (its function and its description both differ): two branches used the same id.
    DifferentMigration {
        /// The id.
        id: MigrationId,
        /// The function that the database recorded.
        recorded_function: String,
        /// The description that the database recorded.
        recorded_description: String,
        /// The function registered under the id now.
        registered_function: String,
        /// Its description.
        registered_description: String,
    },

    /// `ctx.batches(...)` was called in a migration that runs in a transaction.
    BatchesInTransaction {
        /// The migration.
        migration: Option<MigrationId>,
    },

    /// [`MigrationContext::transaction`](crate::MigrationContext::transaction) was called in a
    /// migration that does not run in a transaction.
    NotInTransaction {
        /// The migration.
        migration: Option<MigrationId>,
    },

    /// `unlock --force` kept finding the lock document changed under it (another process took
    /// or renewed the lock at the same moment, every time).
    LockChanging {
        /// How many times it tried.
        attempts: u32,
    },

    /// `unlock --force` found a holder that renewed its lease recently, so is probably alive.
    LockHeldByLiveProcess {
        /// Who holds it and when it last renewed.
        holder: String,
    },

    /// The server did not answer within a time bound of this crate's settings.
    TimedOut {
        /// What was being done.
        operation: String,
        /// The bound (a `Migrator` setting, see its documentation).
        limit: Duration,
    },

    /// The server refused some updates of a batch (`ctx.batches(...)`); the batch and its
    /// checkpoint were not written.
    BatchWritesRefused {
        /// The migration, when the context belongs to one.
        migration: Option<MigrationId>,
        /// The collection walked.
        collection: String,
        /// How many updates of the batch were refused.
        refused: usize,
        /// The first refusal: code, code name and message.
        first: String,
    },

    /// A command's output could not be written (stdout closed, disk full).
    Output {
        /// What went wrong.
        problem: String,
    },

    /// A command of the CLI could not do what it was asked, and did nothing (such as
    /// `migrate new` with no directory to write into).
    CommandRefused {
        /// The command, such as `migrate new`.
        command: String,
        /// What is wrong and what to do.
        problem: String,
    },

    /// A setting is invalid.
    Config {
        /// The setting (an environment variable or builder method).
        setting: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

fn migration_suffix(migration: &Option<MigrationId>) -> String {
    match migration {
        Some(id) => format!(" (migration {id})"),
        None => String::new(),
    }
}

fn applied_suffix(applied: &[MigrationId]) -> String {
    if applied.is_empty() {
        String::new()
    } else {
        format!(" (this run applied {} before that)", join(applied))
    }
}

/// Ids separated by commas.
fn join(ids: &[MigrationId]) -> String {
    ids.iter()
        .map(MigrationId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub(crate) fn database(
        operation: impl Into<String>,
        migration: Option<&str>,
        source: mongodb::error::Error,
    ) -> Self {
        Error::Database {
            operation: operation.into(),
            migration: migration.and_then(MigrationId::parse_prefixed),
            source: Cause::of(&source),
            driver: Box::new(source),
            applied_before: Vec::new(),
        }
    }

    /// The driver's error, when the server or the connection failed.
    pub fn driver_error(&self) -> Option<&mongodb::error::Error> {
        match self {
            Error::Database { driver, .. } => Some(driver),
            _ => None,
        }
    }

    /// What kind of failure a [`Error::Database`] is.
    pub fn class(&self) -> Option<ErrorClass> {
        self.driver_error().map(ErrorClass::of)
    }

    /// Notes that the run applied `applied` before this error stopped it.
    pub(crate) fn after_applying(mut self, applied: &[MigrationId]) -> Self {
        match &mut self {
            Error::MigrationFailed { applied_before, .. }
            | Error::MigrationTimedOut { applied_before, .. }
            | Error::Database { applied_before, .. }
            | Error::LockLost { applied_before, .. }
                if applied_before.is_empty() =>
            {
                *applied_before = applied.to_vec();
            }
            _ => {}
        }
        self
    }

    /// The message, before scrubbing.
    fn render(&self) -> String {
        match self {
            Error::DuplicateId {
                group,
                id,
                first,
                second,
            } => format!(
                "migration id {id} is registered twice in group {group:?}: by {first} and by {second}; give one of them a new id"
            ),
            Error::OutOfOrder {
                id,
                description,
                highest_applied,
            } => format!(
                "migration {id} ({description}) is pending, but the database has already applied migration {highest_applied}, which comes after it; nothing was run. Give it an id above {highest_applied}, or opt in with `Migrator::allow_out_of_order(true)` if running it late is safe"
            ),
            Error::ChecksumMismatch {
                id,
                description,
                recorded,
                current,
            } => format!(
                "migration {id} ({description}) was changed after it was applied (recorded checksum {recorded}, now {current}); nothing was run. Restore its code and put the change in a new migration, or choose another `ChecksumPolicy`"
            ),
            Error::MigrationFailed {
                id,
                description,
                attempt,
                message,
                applied_before,
                ..
            } => format!(
                "migration {id} ({description}) failed on attempt {attempt}: {}; it is recorded as failed and the migrations after it did not run{}. Fix the cause and start again: it will be retried",
                scrub(message),
                applied_suffix(applied_before)
            ),
            Error::MigrationTimedOut {
                id,
                description,
                attempt,
                limit,
                applied_before,
            } => format!(
                "migration {id} ({description}) did not finish within its time limit of {limit:?} on attempt {attempt} and was stopped; it is recorded as failed and the migrations after it did not run{}. Find out why it is slow (it may wait on a lock or scan a large collection), raise the limit, or split it",
                applied_suffix(applied_before)
            ),
            Error::Database {
                operation,
                migration,
                driver,
                applied_before,
                ..
            } => format!(
                "{operation}{}: {}; {}{}",
                migration_suffix(migration),
                scrub(&driver::describe(driver)),
                ErrorClass::of(driver).advice(),
                applied_suffix(applied_before)
            ),
            Error::IndexConflict {
                collection,
                name,
                existing,
                requested,
                migration,
            } => format!(
                "index {name:?} on collection {collection:?} already exists with a different definition{}:\n  existing:  {existing}\n  requested: {requested}\nDrop the old index in a migration first, or give the new one another name",
                migration_suffix(migration)
            ),
            Error::IndexKeysTaken {
                collection,
                name,
                existing_name,
                existing,
                requested,
                migration,
            } => format!(
                "index {name:?} on collection {collection:?} cannot be created{}: index {existing_name:?} already has the same keys and options, and MongoDB refuses a second one under another name (code 85 IndexOptionsConflict):\n  existing ({existing_name}): {existing}\n  requested ({name}): {requested}\nName the spec {existing_name:?} to adopt the existing index, or drop {existing_name:?} in a destructive migration first",
                migration_suffix(migration)
            ),
            Error::DuplicateKeys {
                collection,
                index,
                keys,
                examples,
                migration,
            } => {
                let shown: Vec<String> = examples
                    .iter()
                    .map(|e| {
                        let ids: Vec<String> = e.ids.iter().map(|id| id.to_string()).collect();
                        format!(
                            "\n  {} held by {} documents (_id {}{})",
                            e.key,
                            e.documents,
                            ids.join(", "),
                            if e.documents > e.ids.len() as u64 {
                                ", ..."
                            } else {
                                ""
                            }
                        )
                    })
                    .collect();
                format!(
                    "unique index {index:?} on collection {collection:?} was not built{}: {keys} key(s) are held by more than one document, such as:{}\nNothing was built. Merge or remove the duplicates (in an earlier migration, or by hand), or make the index partial or sparse so they are left out, then start again; `IndexSpec::without_duplicate_check()` skips this check (the build then fails on the same duplicates)",
                    migration_suffix(migration),
                    shown.concat()
                )
            }
            Error::ValidatorRejectsExisting {
                collection,
                documents,
                ids,
                migration,
            } => {
                let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
                format!(
                    "the new validator of collection {collection:?} (validationLevel strict, validationAction error) was not applied{}: {documents} existing document(s) do not match it (such as _id {}), and every later update of one would fail. Nothing was changed. Fix those documents in an earlier migration, or choose validationLevel moderate (documents that are already invalid stay updatable) or validationAction warn, or apply it anyway with ensure_validator_with(..., ExistingDocuments::Accept)",
                    migration_suffix(migration),
                    ids.join(", ")
                )
            }
            Error::BadRecord {
                id,
                collection,
                problem,
            } => format!(
                "the document {id} in {collection} cannot be read: {}; fix or remove that document",
                scrub(problem)
            ),
            Error::LockLost {
                migration,
                fence,
                reason,
                applied_before,
            } => format!(
                "this process lost the migration lock (fence {fence}){}: {}; it stopped without recording anything more{}. Start it again: it reads what is applied and carries on from there",
                migration_suffix(migration),
                scrub(reason),
                applied_suffix(applied_before)
            ),
            Error::LockTimeout { waited, holder, .. } => format!(
                "gave up waiting for the migration lock after {waited:?}: {}. If that process is gone its lease expires by itself; if it is stuck, `migrate unlock --force` stops it; raise the wait with `Migrator::max_wait` (SCHEMA_LOCK_WAIT_SECS) if migrations take longer",
                scrub(holder)
            ),
            Error::TransactionsUnsupported { id, description } => format!(
                "migration {id} ({description}) asks for a transaction, but the server is a standalone server, which has no transactions; nothing was run. Run it against a replica set or a sharded cluster, or drop `transaction` from its attribute"
            ),
            Error::DestructiveNotAllowed { id, description } => format!(
                "migration {id} ({description}) is destructive and destructive migrations are not allowed in this run; nothing was run. Set AUTO_SCHEMA_DESTRUCTIVE=true (or `Migrator::allow_destructive(true)`) for start-up, or apply it on purpose with `migrate up --allow-destructive`"
            ),
            Error::NoRollback {
                id,
                description,
                rolled_back,
            } => format!(
                "migration {id} ({description}) has no rollback, so `down` stopped there{}; give it one with #[migration(..., down = its_rollback_fn)] or choose a later target",
                if rolled_back.is_empty() {
                    String::new()
                } else {
                    format!(" after rolling back {}", join(rolled_back))
                }
            ),
            Error::NotApplicable {
                command,
                id,
                problem,
            } => format!("{command} {id}: {}", scrub(problem)),
            Error::NoMigrations {
                group,
                registered_groups,
                in_test_binary,
            } => {
                let registered = if registered_groups.is_empty() {
                    " (none at all are registered in this binary)".to_owned()
                } else {
                    format!(" (this binary registers: {})", registered_groups.join(", "))
                };
                if *in_test_binary {
                    format!(
                        "no migrations are registered in group {group:?}{registered}, and this is a test binary. An integration test under `tests/` links the package's library, never its binary: migrations declared in `src/main.rs` (or modules of it) are invisible to it. Move them into the library (`src/lib.rs` with `pub mod migrations;`, and `main.rs` using it), or test them from `src/main.rs` with `#[cfg(test)]`. If they are in a library crate already, add `schema_runtime::link!(that_crate);` to the test"
                    )
                } else {
                    format!(
                        "no migrations are registered in group {group:?}{registered}. If they live in a library crate, the binary must refer to it or the linker leaves it out: add `schema_runtime::link!(your_migrations_crate);` to the binary. A tool that may run without migrations opts out with `Migrator::allow_empty(true)`"
                    )
                }
            }
            Error::DifferentMigration {
                id,
                recorded_function,
                recorded_description,
                registered_function,
                registered_description,
            } => format!(
                "migration {id} in the database is not the one this binary registers under that id: recorded {recorded_function} ({recorded_description:?}), registered {registered_function} ({registered_description:?}); nothing was run. Two branches used the same id: give the registered one a new id above the highest applied one, so that it runs. If the recorded migration is truly the same one, renamed, allow it with `Migrator::allow_reused_ids(true)`"
            ),
            Error::BatchesInTransaction { migration } => format!(
                "migration {} runs in a transaction, and batches commit each batch with its checkpoint in a transaction of their own, which cannot be nested in the migration's; nothing was written by the batches. Remove `transaction` from the migration (each batch is still atomic with its checkpoint), or write its updates through `ctx.transaction()?`",
                migration.as_ref().map_or("(unnamed)", MigrationId::as_str)
            ),
            Error::NotInTransaction { migration } => format!(
                "migration {} asked for its transaction's session, but it does not run in a transaction; nothing was written through it. Mark it `#[migration(..., transaction)]`, or write without a session",
                migration.as_ref().map_or("(unnamed)", MigrationId::as_str)
            ),
            Error::LockChanging { attempts } => format!(
                "the migration lock document changed under `unlock --force` {attempts} times in a row (another process is taking or renewing it right now); nothing was released. Look at `migrate status`, then try again"
            ),
            Error::LockHeldByLiveProcess { holder } => format!(
                "the migration lock is held by a process that looks alive: {}. Releasing it would let another process run the same migration at the same time. Wait for it, stop that process, or if it is stuck insist with `migrate unlock --force --even-if-alive`",
                scrub(holder)
            ),
            Error::TimedOut { operation, limit } => format!(
                "{operation}: no answer within {limit:?}; {}",
                ErrorClass::Unreachable.advice()
            ),
            Error::BatchWritesRefused {
                migration,
                collection,
                refused,
                first,
            } => format!(
                "{}the server refused {refused} update(s) of a batch over {collection:?}, the first: {first}; the batch and its checkpoint were not written. Make the transformation produce updates the collection accepts (its validator, unique indexes), then start again: it resumes at the last checkpoint",
                migration
                    .as_ref()
                    .map_or(String::new(), |id| format!("migration {id}: "))
            ),
            Error::Output { problem } => format!("cannot write the command's output: {problem}"),
            Error::CommandRefused { command, problem } => {
                format!("{command}: {}", scrub(problem))
            }
            Error::Config { setting, problem } => {
                format!("invalid setting {setting}: {}", scrub(problem))
            }
        }
    }

    /// How many variants [`Error::variant`] names (checked by the tests).
    #[cfg(test)]
    const VARIANT_COUNT: usize = 28;

    fn variant(&self) -> &'static str {
        match self {
            Error::DuplicateId { .. } => "DuplicateId",
            Error::OutOfOrder { .. } => "OutOfOrder",
            Error::ChecksumMismatch { .. } => "ChecksumMismatch",
            Error::MigrationFailed { .. } => "MigrationFailed",
            Error::MigrationTimedOut { .. } => "MigrationTimedOut",
            Error::Database { .. } => "Database",
            Error::IndexConflict { .. } => "IndexConflict",
            Error::IndexKeysTaken { .. } => "IndexKeysTaken",
            Error::DuplicateKeys { .. } => "DuplicateKeys",
            Error::ValidatorRejectsExisting { .. } => "ValidatorRejectsExisting",
            Error::BadRecord { .. } => "BadRecord",
            Error::LockLost { .. } => "LockLost",
            Error::LockTimeout { .. } => "LockTimeout",
            Error::TransactionsUnsupported { .. } => "TransactionsUnsupported",
            Error::DestructiveNotAllowed { .. } => "DestructiveNotAllowed",
            Error::NoRollback { .. } => "NoRollback",
            Error::NotApplicable { .. } => "NotApplicable",
            Error::NoMigrations { .. } => "NoMigrations",
            Error::DifferentMigration { .. } => "DifferentMigration",
            Error::BatchesInTransaction { .. } => "BatchesInTransaction",
            Error::NotInTransaction { .. } => "NotInTransaction",
            Error::LockChanging { .. } => "LockChanging",
            Error::LockHeldByLiveProcess { .. } => "LockHeldByLiveProcess",
            Error::TimedOut { .. } => "TimedOut",
            Error::BatchWritesRefused { .. } => "BatchWritesRefused",
            Error::Output { .. } => "Output",
            Error::CommandRefused { .. } => "CommandRefused",
            Error::Config { .. } => "Config",
        }
    }
}

/// The message, with every password removed (see [`scrub`](crate::scrub)).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&scrub(&self.render()))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::MigrationFailed { source, .. } => source.as_deref().map(|c| c as _),
            Error::Database { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The message and the whole (scrubbed) source chain, as `fn main() -> Result` prints it; never
/// the raw driver reply, never a password.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error::{}: {}", self.variant(), scrub(&self.to_string()))?;
        let mut next = std::error::Error::source(self);
        let mut first = true;
        while let Some(cause) = next {
            if first {
                f.write_str("\n\nCaused by:")?;
                first = false;
            }
            write!(f, "\n    {}", scrub(&cause.to_string()))?;
            next = cause.source();
        }
        Ok(())
    }
}

/// One key that more than one document holds ([`Error::DuplicateKeys`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateKey {
    /// The key, by field (`{ "email": "a@example.com" }`; a missing field is `null`, as the index
    /// would store it).
    pub key: Document,
    /// How many documents hold it.
    pub documents: u64,
    /// Up to three of their `_id`s.
    pub ids: Vec<mongodb::bson::Bson>,
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Pr0p/erty?#pw";

    #[derive(Debug)]
    struct Leaky;
    impl fmt::Display for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "root cause at mongodb://u:{SECRET}@h/db, password {SECRET}"
            )
        }
    }
    impl std::error::Error for Leaky {}

    /// Every variant, with the secret in every text field and in its source chain: neither
    /// Display nor Debug nor any link of the chain shows it.
    #[test]
    fn no_variant_shows_a_password() {
        crate::redact::remember_secret(SECRET);
        let s = || format!("mongodb://u:{SECRET}@h/db and {SECRET}");
        let id = || MigrationId::parse("0007").unwrap();
        let cause = || Some(Box::new(Cause::of(&Leaky)));
        let driver = mongodb::error::Error::custom(s());
        let every = vec![
            Error::DuplicateId {
                group: s(),
                id: id(),
                first: s(),
                second: s(),
            },
            Error::OutOfOrder {
                id: id(),
                description: s(),
                highest_applied: id(),
            },
            Error::ChecksumMismatch {
                id: id(),
                description: s(),
                recorded: s(),
                current: s(),
            },
            Error::MigrationFailed {
                id: id(),
                description: s(),
                attempt: 1,
                message: s(),
                source: cause(),
                applied_before: vec![id()],
            },
            Error::MigrationTimedOut {
                id: id(),
                description: s(),
                attempt: 1,
                limit: Duration::from_secs(1),
                applied_before: vec![id()],
            },
            Error::database(s(), Some(&s()), driver).after_applying(&[id()]),
            Error::IndexConflict {
                collection: s(),
                name: s(),
                existing: Box::new(mongodb::bson::doc! { "k": s() }),
                requested: Box::new(mongodb::bson::doc! { "k": s() }),
                migration: Some(id()),
            },
            Error::IndexKeysTaken {
                collection: s(),
                name: s(),
                existing_name: s(),
                existing: Box::new(mongodb::bson::doc! { "k": s() }),
                requested: Box::new(mongodb::bson::doc! { "k": s() }),
                migration: Some(id()),
            },
            Error::DuplicateKeys {
                collection: s(),
                index: s(),
                keys: 2,
                examples: vec![DuplicateKey {
                    key: mongodb::bson::doc! { "email": s() },
                    documents: 4,
                    ids: vec![mongodb::bson::Bson::String(s())],
                }],
                migration: Some(id()),
            },
            Error::ValidatorRejectsExisting {
                collection: s(),
                documents: 3,
                ids: vec![mongodb::bson::Bson::String(s())],
                migration: Some(id()),
            },
            Error::BadRecord {
                id: s(),
                collection: s(),
                problem: s(),
            },
            Error::LockLost {
                migration: Some(id()),
                fence: 1,
                reason: s(),
                applied_before: vec![id()],
            },
            Error::LockTimeout {
                waited: Duration::from_secs(1),
                holder: s(),
            },
            Error::TransactionsUnsupported {
                id: id(),
                description: s(),
            },
            Error::DestructiveNotAllowed {
                id: id(),
                description: s(),
            },
            Error::NoRollback {
                id: id(),
                description: s(),
                rolled_back: vec![id()],
            },
            Error::NotApplicable {
                command: s(),
                id: id(),
                problem: s(),
            },
            Error::NoMigrations {
                group: s(),
                registered_groups: vec![s()],
                in_test_binary: false,
            },
            Error::DifferentMigration {
                id: id(),
                recorded_function: s(),
                recorded_description: s(),
                registered_function: s(),
                registered_description: s(),
            },
            Error::BatchesInTransaction {
                migration: Some(id()),
            },
            Error::NotInTransaction {
                migration: Some(id()),
            },
            Error::LockChanging { attempts: 3 },
            Error::LockHeldByLiveProcess { holder: s() },
            Error::TimedOut {
                operation: s(),
                limit: Duration::from_secs(1),
            },
            Error::BatchWritesRefused {
                migration: Some(id()),
                collection: s(),
                refused: 1,
                first: s(),
            },
            Error::Output { problem: s() },
            Error::CommandRefused {
                command: s(),
                problem: s(),
            },
            Error::Config {
                setting: s(),
                problem: s(),
            },
        ];
        // `variant()` matches every variant without a wildcard, so a new variant cannot be added
        // without naming it there; here each name must appear once.
        let names: std::collections::BTreeSet<&str> = every.iter().map(Error::variant).collect();
        assert_eq!(names.len(), every.len(), "each variant once");
        assert_eq!(names.len(), Error::VARIANT_COUNT, "every variant is here");
        for error in &every {
            let mut texts = vec![
                error.to_string(),
                format!("{error:?}"),
                format!("{error:#?}"),
            ];
            let mut next = std::error::Error::source(error);
            while let Some(cause) = next {
                texts.push(cause.to_string());
                texts.push(format!("{cause:?}"));
                next = cause.source();
            }
            for text in texts {
                assert!(!text.contains(SECRET), "{}: {text}", error.variant());
                assert!(
                    !text.contains("RawDocumentBuf"),
                    "{}: {text}",
                    error.variant()
                );
            }
        }
    }
}
