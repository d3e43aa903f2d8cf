//! MongoDB schema migrations written as annotated async Rust functions and applied exactly once,
//! in id order, when the service starts.
//!
//! This is the one crate an application depends on: it re-exports the [`migration`] attribute,
//! the driver ([`mongodb`]) and [`bson`].
//!
//! ```no_run
//! use schema_runtime::bson::doc;
//! use schema_runtime::{IndexSpec, MigrationContext, MigrationResult, Migrator, migration};
//!
//! #[migration(id = "0001", description = "Create the users indexes")]
//! async fn users_indexes(ctx: &mut MigrationContext) -> MigrationResult {
//!     ctx.ensure_indexes("users", &[
//!         IndexSpec::new("idx_email_unique", doc! { "email": 1 }).unique(),
//!     ]).await?;
//!     Ok(())
//! }
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let client = mongodb::Client::with_uri_str("mongodb://127.0.0.1:27017").await?;
//! let report = Migrator::new(client.database("app")).apply_all().await?;
//! println!("applied {} migrations", report.applied.len());
//! # Ok(()) }
//! ```
//!
//! The modules, one concern each (private; everything a user needs is re-exported here):
//! `registry` (what this binary holds), `store` (the `schema_versions` records), `plan` (what
//! is applied, pending, changed or unknown), `lock` (the lease lock with fencing),
//! `migrator` (the builder; its `check`, `wait`, `exec`, `startup`, `operations` and `report`
//! files are the policy check, the wait for the lock, running one migration, the bounded first
//! read, the operator commands and the results), `context` and `batch` (what a migration
//! function gets), `indexes` and `collection` (idempotent helpers), `deployment` (what `hello`
//! says), `config` (settings from the environment), `fleet` (one operation over many databases), `error` and `redact` (errors that never show
//! a password), `wire` (driver-level helpers, a leaf), `progress` (progress bars). `cli` is
//! public: it is the embedded command line.
//!
//! # Features
//!
//! | feature | default | what it is |
//! |---|---|---|
//! | `bson-2` | on | the driver's bson 2 (the driver's default) |
//! | `bson-3` | | the driver's bson 3: enable it (with `default-features = false`) when your `mongodb` dependency enables `bson-3` |
//! | `rustls-tls`, `dns-resolver` | on | forwarded to the driver, as its defaults are |
//! | `rustls-tls-aws-lc`, `openssl-tls` | | forwarded to the driver |
//! | `cli` | on | the embeddable `migrate` command line (`cli`; brings clap, comfy-table, serde_json) |
//! | `progress` | on | progress bars for batch walks when the CLI runs in a terminal (indicatif) |
//! | `testing` | | `testing::TestDatabase`: a throwaway database per test with the migrations applied up to an id (for `[dev-dependencies]`) |
//!
//! A service that only calls [`Migrator::apply_all`] can turn off `cli` and `progress`:
//! `schema-runtime = { version = "0.1", default-features = false, features = ["bson-2"] }`
//! (TLS and DNS then come from the application's own `mongodb` dependency).

mod batch;
#[cfg(feature = "cli")]
pub mod cli;
mod collection;
mod config;
mod context;
mod deployment;
mod drift;
mod error;
#[cfg(test)]
mod fixtures;
mod fleet;
mod indexes;
mod lock;
mod migrator;
mod model;
mod plan;
mod progress;
mod redact;
mod registry;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod wire;

pub use mongodb::bson;

#[cfg(not(any(feature = "bson-2", feature = "bson-3")))]
compile_error!(
    "schema-runtime needs the bson version of your driver: enable its `bson-2` feature (the driver's default) or `bson-3` (when your `mongodb` dependency enables `bson-3`)"
);
pub use mongodb;
pub use schema_id::{IdError, MigrationId};

pub use batch::{BatchReport, Batches};
pub use collection::{
    CollectionChange, ExistingDocuments, ValidationAction, ValidationLevel, ValidatorReport,
    collection_info, ensure_collection, ensure_validator, ensure_validator_with,
};
pub use config::Settings;
pub use context::MigrationContext;
pub use deployment::Deployment;
pub use drift::{Drift, DriftReport, RecordedDeclarations, RepairAction, RepairReport};
pub use error::{BoxError, Cause, DuplicateKey, Error, ErrorClass, Result};
pub use fleet::{
    DEFAULT_CONCURRENCY, Fleet, FleetAction, FleetReport, TenantOutcome, TenantResult,
};
pub use indexes::{
    IndexReport, IndexSpec, drop_index, ensure_indexes, hide_index, list_indexes, unhide_index,
};
pub use lock::{LockHolder, LockState, Unlocked};
pub use migrator::{
    AppliedMigration, ChecksumPolicy, Health, Migrator, Report, Running, Warning, defaults,
};
pub use plan::{ChecksumStatus, EntryState, Finding, Plan, PlanEntry};
pub use redact::{remember_secret, scrub};
pub use registry::{Migration, Registry};
pub use store::{MigrationRecord, Progress, RecordState};

/// What a migration function returns: `Ok(())`, or any error (`?` converts driver errors, this
/// crate's [`Error`], `anyhow::Error`, `String`, ...).
pub type MigrationResult<T = ()> = std::result::Result<T, BoxError>;

/// Registers an `async fn` as a migration.
///
/// ```
/// use schema_runtime::bson::doc;
/// use schema_runtime::{IndexSpec, MigrationContext, MigrationResult, migration};
///
/// #[migration(id = "0003", description = "Create replay indexes")]
/// async fn replay_indexes(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.ensure_indexes("replay_sessions", &[
///         IndexSpec::new("idx_replay_session_id", doc! { "session_id": 1 }).unique(),
///     ]).await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// # Keys
///
/// **`id`** (required): ASCII digits. Ids are ordered by number; `"3"` and `"0003"` are the same
/// id. Timestamp ids (`"20261204071409"`, from `migrate new --timestamp`) are numbers too.
///
/// **`description`** (required): what the migration does; not empty.
///
/// **`group`** (default `"default"`): ASCII letters, digits and `_`. Ids are unique and ordered
/// per group; a [`Migrator`] applies one group ([`Migrator::group`]) to one database.
///
/// ```
/// # use schema_runtime::{MigrationContext, MigrationResult, migration};
/// #[migration(id = "0001", description = "Create the ledger", group = "billing")]
/// async fn ledger(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.database().create_collection("ledger").await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// **`down`** (a path to an `async fn` with the same signature): the rollback that
/// `migrate down --to ID` runs, newest first. Without one, `down` stops at this migration.
///
/// ```
/// # use schema_runtime::bson::Document;
/// # use schema_runtime::{MigrationContext, MigrationResult, migration};
/// #[migration(id = "0002", description = "Create the audit log", down = drop_audit_log)]
/// async fn audit_log(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.database().create_collection("audit_log").await?;
///     Ok(())
/// }
///
/// async fn drop_audit_log(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.collection::<Document>("audit_log").drop().await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// **`transaction`** (or `transaction = true`): the function's writes through
/// [`MigrationContext::session`] and the `applied` record commit together in one transaction
/// (replica sets and sharded clusters; a standalone server refuses it before anything runs).
///
/// ```
/// # use schema_runtime::bson::{Document, doc};
/// # use schema_runtime::{MigrationContext, MigrationResult, migration};
/// #[migration(id = "0003", description = "Move the default plan", transaction)]
/// async fn move_plan(ctx: &mut MigrationContext) -> MigrationResult {
///     let plans = ctx.collection::<Document>("plans");
///     let session = ctx.session().expect("a transactional migration has a session");
///     plans.update_one(doc! { "_id": "free" }, doc! { "$set": { "default": false } })
///         .session(&mut *session)
///         .await?;
///     plans.update_one(doc! { "_id": "basic" }, doc! { "$set": { "default": true } })
///         .session(&mut *session)
///         .await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// **`destructive`**: it loses data (drops a collection, removes a field). Start-up refuses it
/// unless `AUTO_SCHEMA_DESTRUCTIVE=true` ([`Migrator::allow_destructive`]); `migrate up
/// --allow-destructive` applies it.
///
/// ```
/// # use schema_runtime::bson::Document;
/// # use schema_runtime::{MigrationContext, MigrationResult, migration};
/// #[migration(id = "0004", description = "Drop the legacy sessions", destructive)]
/// async fn drop_legacy_sessions(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.collection::<Document>("legacy_sessions").drop().await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// **`background`**: the application does not need it to start (an index build on a big
/// collection, a backfill). [`Migrator::apply_all`] applies what is pending before it and
/// returns; the process holding the lock applies it, and every migration after it, in a task
/// while the application serves, renewing its lease ([`Report::background`] lists them,
/// [`Migrator::wait_for_background`] awaits them, [`Health::pending_background`] and
/// [`Health::running`] show them). A later migration without `background` still waits for it:
/// processes that need that one wait at start-up as usual. It cannot be combined with
/// `transaction` (a compile error says why).
///
/// ```
/// # use schema_runtime::bson::doc;
/// # use schema_runtime::{IndexSpec, MigrationContext, MigrationResult, migration};
/// #[migration(id = "0006", description = "Index events by tenant", background)]
/// async fn index_events_by_tenant(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.ensure_indexes("events", &[IndexSpec::new("idx_tenant", doc! { "tenant": 1 })])
///         .await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// **`timeout`** (`"250ms"`, `"90s"`, `"10m"`, `"2h"`): the migration is stopped, its
/// transaction aborted and the failure recorded ([`Error::MigrationTimedOut`]) when it runs
/// longer. Without it, [`Migrator::migration_timeout`] applies (none by default).
///
/// ```
/// # use schema_runtime::bson::doc;
/// # use schema_runtime::{MigrationContext, MigrationResult, migration};
/// #[migration(id = "0005", description = "Backfill the plan field", timeout = "10m")]
/// async fn backfill_plan(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.batches("users")
///         .filter(doc! { "plan": { "$exists": false } })
///         .update_each(|_| Some(doc! { "$set": { "plan": "free" } }))
///         .await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// **`crate`**: the path of this crate when the application reaches it through a re-export of
/// its own, such as `crate = my_platform::schema`.
///
/// ```
/// # use schema_runtime::{MigrationContext, MigrationResult, migration};
/// mod platform {
///     pub mod schema {
///         pub use schema_runtime::*;
///     }
/// }
///
/// #[migration(id = "0006", description = "Create the outbox", crate = platform::schema)]
/// async fn outbox(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.database().create_collection("outbox").await?;
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// # The function
///
/// It takes one parameter, `&mut MigrationContext` (or `&MigrationContext`), and returns a
/// `Result<(), E>` where `E` converts into [`BoxError`] ([`MigrationResult`], `anyhow::Result<()>`,
/// your own error type). It stays an ordinary function that a test can call
/// ([`MigrationContext::new`], or [`testing`](crate#features) for a whole database).
///
/// Checked at compile time, with the span on the offending token: a malformed id, an empty or
/// missing description, unknown keys, a bad `group` or `timeout`, a function that is not `async`,
/// generic, a method, has another number of parameters or a parameter that is not the context,
/// or returns nothing; the same id twice in one crate and group (E0428 at both ids, naming the
/// `duplicate_migration_id_N` marker); an id declared below a higher id of the same group in the
/// same source file.
pub use schema_macros::migration;

/// Derives [`Collection`](trait@Collection) (and [`BsonSchema`](trait@BsonSchema)) for a serde
/// struct: see [`Collection`](trait@Collection).
pub use schema_macros::Collection;

/// Derives [`BsonSchema`](trait@BsonSchema) for a serde type stored in a field (a nested
/// struct, an enum of unit variants).
pub use schema_macros::BsonSchema;

#[doc(hidden)]
pub use model::{__flatten as __model_flatten, nullable as __model_nullable};
pub use model::{BsonSchema, Collection, ModelDiff, ModelEntry, ModelFinding, nullable};

/// A test with a throwaway database of its own (feature `testing`): an `async fn` that takes a
/// [`testing::TestDatabase`] (or nothing) becomes a `#[test]` that
/// makes a fresh database on `MONGODB_URI`, applies the migrations `up_to = "ID"` (of `group =
/// "name"`), runs the body on a runtime of its own and drops the database afterwards. See
/// [`testing`] for an example.
pub use schema_macros::test;

/// Links a crate of migrations into this binary.
///
/// The compiler leaves out a library that nothing in the binary refers to, and with it every
/// migration it registers: start-up would then find nothing to apply (and refuse with
/// [`Error::NoMigrations`]). One line in the binary, at item level (in `main.rs`), refers to it:
///
/// ```ignore
/// schema_runtime::link!(ticket_migrations);
/// ```
///
/// It is the same as `use ticket_migrations as _;`, which links the crate in debug and release
/// builds, with LTO too (`tests/tests/linking.rs` checks both).
#[macro_export]
macro_rules! link {
    ($($krate:ident),+ $(,)?) => {
        $(
            #[allow(unused_imports)]
            use $krate as _;
        )+
    };
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;

    use crate::error::BoxError;
    pub use crate::model::ModelEntry;
    pub use crate::registry::{Migration, MigrationFuture, MigrationMeta, RunFn};

    /// What a migration's parameter may be. A function written with another parameter type
    /// gets this error next to the compiler's type mismatch, naming the signature to write.
    #[diagnostic::on_unimplemented(
        message = "a migration's parameter is its context, not `{Self}`",
        label = "expected `&mut MigrationContext` (or `&MigrationContext`)",
        note = "write the migration as `async fn name(ctx: &mut MigrationContext) -> MigrationResult`"
    )]
    pub trait ContextParam {}
    impl ContextParam for &mut crate::MigrationContext {}
    impl ContextParam for &crate::MigrationContext {}

    /// Checks the parameter type `T` of a migration (see [`ContextParam`]).
    pub fn context_param<T: ContextParam>() {}

    /// Runs the body of a `#[schema_runtime::test]` on a runtime of its own.
    pub fn run_test<F: std::future::Future>(test: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test")
            .block_on(test)
    }

    /// Turns the user's `Result<(), E>` into the registry's error type (for rollbacks).
    pub fn into_outcome<E: Into<BoxError>>(result: Result<(), E>) -> Result<(), BoxError> {
        result.map_err(Into::into)
    }

    /// Boxes the future of the user's function, turning its `Result<(), E>` into the
    /// registry's error type. One generic function instead of an `async` block per migration:
    /// much less for the compiler to check when a crate has hundreds of migrations.
    pub fn run<'a, F, E>(future: F) -> MigrationFuture<'a>
    where
        F: std::future::Future<Output = Result<(), E>> + Send + 'a,
        E: Into<BoxError> + 'a,
    {
        Box::pin(futures::TryFutureExt::map_err(future, Into::into))
    }
}
