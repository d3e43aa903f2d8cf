//! `Migrator`: applies the pending migrations of one group to one database at start-up, with the
//! lock, so that of many processes starting at once each migration runs exactly once.

mod background;
mod check;
mod drift;
mod exec;
mod operations;
mod report;
mod startup;
mod wait;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use mongodb::Database;
use schema_id::MigrationId;
use tracing::Instrument;

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::lock::{Lease, LeaseLock};
use crate::plan::Plan;
use crate::registry::Registry;
use crate::store::{AppliedWrite, DEFAULT_COLLECTION, VersionStore, highest_fence};

pub use check::ChecksumPolicy;
pub(crate) use exec::{Ended, Step, release_after, run_guarded};
pub use operations::{Health, Running};
pub(crate) use report::log_warning;
pub use report::{AppliedMigration, Report, Warning};
pub(crate) use wait::Acquired;

/// Applies the migrations of one group to one database.
///
/// ```no_run
/// # async fn start(database: mongodb::Database) -> schema_runtime::Result<()> {
/// use std::time::Duration;
///
/// let report = schema_runtime::Migrator::new(database)
///     .lease(Duration::from_secs(30))
///     .max_wait(Duration::from_secs(300))
///     .apply_all()
///     .await?;
/// for applied in &report.applied {
///     println!("applied {} in {:?}", applied.id, applied.duration);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Migrator {
    database: Database,
    group: String,
    collection: String,
    checksum_policy: ChecksumPolicy,
    allow_out_of_order: bool,
    lease: Duration,
    max_wait: Duration,
    startup_attempts: u32,
    retry_delay: Duration,
    auto_migrate: bool,
    allow_destructive: bool,
    progress_bars: bool,
    large_collection: u64,
    commit_quorum: Option<mongodb::bson::Bson>,
    allow_empty: bool,
    allow_reused_ids: bool,
    migration_timeout: Option<Duration>,
    transaction_retry_limit: Duration,
    startup_timeout: Duration,
    status_timeout: Duration,
    majority_timeout: Duration,
    check_drift: bool,
    /// What the server is, asked once (one `hello`) the first time a run needs to know, and
    /// shared by the migrator's clones.
    deployment: Arc<tokio::sync::OnceCell<Deployment>>,
    /// Whether the ignored `commitQuorum` of a standalone server was warned about.
    quorum_warned: Arc<AtomicBool>,
}

/// Defaults of the lock and start-up settings.
pub mod defaults {
    use std::time::Duration;

    /// How long a lease lasts without renewal.
    pub const LEASE: Duration = Duration::from_secs(30);
    /// How long a process waits for another one's lock before giving up.
    pub const MAX_WAIT: Duration = Duration::from_secs(300);
    /// How many times the first read is tried when the server cannot be reached.
    pub const STARTUP_ATTEMPTS: u32 = 3;
    /// The pause before the second try of the first read (doubled for each further one).
    pub const RETRY_DELAY: Duration = Duration::from_secs(1);
    /// The longest the first read of a start-up may take, all tries together, while the server
    /// cannot be reached.
    pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
    /// The longest [`Migrator::status`](super::Migrator::status) waits for the server.
    pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
    /// How long a majority write of the records or the lock waits for a majority of the replica
    /// set to confirm it (`wtimeout`), before start-up fails saying so
    /// ([`Migrator::majority_timeout`](super::Migrator::majority_timeout)).
    pub const MAJORITY_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a transactional migration is run again after transient transaction errors:
    /// past MongoDB's default `transactionLifetimeLimitSeconds` (60 s), after which a
    /// transaction left open by a killed process is aborted.
    pub const TRANSACTION_RETRY_LIMIT: Duration = Duration::from_secs(90);
    /// The estimated document count above which building an index warns
    /// ([`Migrator::large_collection_threshold`](crate::Migrator::large_collection_threshold)).
    pub const LARGE_COLLECTION: u64 = 1_000_000;
}

/// Whether this process is a test executable cargo built: `.../deps/NAME-HASH`, a hash of 16
/// hexadecimal digits (`cargo test` runs them from there; a service's binary is beside `deps`).
fn in_test_binary() -> bool {
    std::env::current_exe().is_ok_and(|exe| is_test_executable(&exe))
}

fn is_test_executable(exe: &std::path::Path) -> bool {
    let in_deps = exe
        .parent()
        .and_then(|dir| dir.file_name())
        .is_some_and(|dir| dir == "deps");
    let stem = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let hashed = stem
        .rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()));
    in_deps && hashed
}

impl Migrator {
    /// The migrator the environment describes: [`Settings::from_env`](crate::Settings::from_env)
    /// then [`Settings::migrator`](crate::Settings::migrator). It reads `MONGODB_URI` (else
    /// `DATABASE_URL`), `MONGODB_DATABASE` and every `ENABLE_AUTO_MIGRATION`,
    /// `AUTO_SCHEMA_DESTRUCTIVE` and `SCHEMA_*` variable [`Settings`](crate::Settings) lists.
    /// This is the start-up line of a service:
    ///
    /// ```no_run
    /// # async fn start() -> schema_runtime::Result<()> {
    /// let report = schema_runtime::Migrator::from_env().await?.apply_all().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// It sends nothing to the server yet; an unset `MONGODB_URI` or an invalid variable is an
    /// [`Error::Config`] naming it. Builder calls after it (`.group(..)`, `.lease(..)`) override
    /// what the environment said.
    pub async fn from_env() -> Result<Self> {
        crate::Settings::from_env()?.migrator().await
    }

    /// This migrator's settings (group, lease, policies) on another database, through that
    /// database's client (another cluster's, for instance).
    pub fn with_database(&self, database: Database) -> Self {
        let mut migrator = self.clone();
        migrator.database = database;
        migrator.deployment = Arc::default();
        migrator.quorum_warned = Arc::default();
        migrator
    }

    /// [`with_database`](Self::with_database) for a database of the same client: what the
    /// deployment is (one `hello`) is known already and shared.
    pub(crate) fn in_same_cluster(&self, database: Database) -> Self {
        let mut migrator = self.clone();
        migrator.database = database;
        migrator
    }

    /// A migrator for the `"default"` group on `database`, recording in `schema_versions`,
    /// with every setting at its default.
    ///
    /// It reads **no environment variable**: `ENABLE_AUTO_MIGRATION`, `SCHEMA_CHECK_DRIFT` and
    /// the rest are honoured by [`Migrator::from_env`] (or by
    /// [`Settings::apply`](crate::Settings::apply) on a migrator made here, for an application
    /// that builds its own client).
    pub fn new(database: Database) -> Self {
        crate::redact::install_panic_hook();
        Migrator {
            database,
            group: "default".to_owned(),
            collection: DEFAULT_COLLECTION.to_owned(),
            checksum_policy: ChecksumPolicy::default(),
            allow_out_of_order: false,
            lease: defaults::LEASE,
            max_wait: defaults::MAX_WAIT,
            startup_attempts: defaults::STARTUP_ATTEMPTS,
            retry_delay: defaults::RETRY_DELAY,
            auto_migrate: true,
            allow_destructive: false,
            progress_bars: false,
            large_collection: defaults::LARGE_COLLECTION,
            commit_quorum: None,
            allow_empty: false,
            allow_reused_ids: false,
            migration_timeout: None,
            transaction_retry_limit: defaults::TRANSACTION_RETRY_LIMIT,
            startup_timeout: defaults::STARTUP_TIMEOUT,
            status_timeout: defaults::STATUS_TIMEOUT,
            majority_timeout: defaults::MAJORITY_TIMEOUT,
            check_drift: false,
            deployment: Arc::default(),
            quorum_warned: Arc::default(),
        }
    }

    /// What kind of deployment the database is on: asked with one `hello` the first time, then
    /// known. A standalone server has no change streams, no transactions and no `commitQuorum`
    /// (see [`Deployment`]); the library sends none of them there.
    pub(crate) async fn deployment(&self) -> Result<Deployment> {
        self.deployment
            .get_or_try_init(|| Deployment::detect(&self.database))
            .await
            .copied()
    }

    /// Refuses, before anything runs, a pending migration that asks for a transaction when the
    /// server has none (a standalone server): [`Error::TransactionsUnsupported`] names it.
    pub(crate) async fn refuse_transactions_without_support<'a>(
        &self,
        mut pending: impl Iterator<Item = &'a crate::plan::PlanEntry>,
    ) -> Result<()> {
        let Some(entry) = pending.find(|e| e.migration.transaction()) else {
            return Ok(());
        };
        if self.deployment().await?.supports_transactions() {
            return Ok(());
        }
        Err(Error::TransactionsUnsupported {
            id: entry.id.clone(),
            description: entry.migration.description().to_owned(),
        })
    }

    /// The `commitQuorum` index builds send: none on a standalone server, which refuses it
    /// (<https://www.mongodb.com/docs/manual/reference/command/createIndexes/#std-label-createIndexes-cmd-commitQuorum>,
    /// "replica sets only"); the setting is then ignored, with one warning.
    pub(crate) async fn effective_commit_quorum(&self) -> Result<Option<mongodb::bson::Bson>> {
        let Some(quorum) = &self.commit_quorum else {
            return Ok(None);
        };
        if self.deployment().await?.supports_transactions() {
            return Ok(Some(quorum.clone()));
        }
        if !self.quorum_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                commit_quorum = %quorum,
                "the index commit quorum is ignored: the server is a standalone server, which has no replica set members to wait for"
            );
        }
        Ok(None)
    }

    /// Whether a group with no registered migrations is accepted. Default false: it is
    /// [`Error::NoMigrations`], because a migrations library that nothing in the binary refers to
    /// is not linked, and that must not pass silently. Tools that may run without migrations
    /// turn this on.
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// Whether an applied record whose function and description both differ from the migration
    /// registered under its id is accepted as that migration (a warning) instead of
    /// [`Error::DifferentMigration`]. Default false: two branches used the same id.
    pub fn allow_reused_ids(mut self, allow: bool) -> Self {
        self.allow_reused_ids = allow;
        self
    }

    /// The time limit of every migration that does not set its own (`#[migration(timeout =
    /// "10m")]`). A migration past its limit is stopped where it is (a transaction is aborted),
    /// recorded as failed and returned as [`Error::MigrationTimedOut`]. Default: none.
    pub fn migration_timeout(mut self, limit: Option<Duration>) -> Self {
        self.migration_timeout = limit;
        self
    }

    /// How long a transactional migration is run again after transient transaction errors
    /// (MongoDB's `TransientTransactionError` label), and its commit retried after an unknown
    /// commit result. Default 90 s, past MongoDB's default transaction lifetime of 60 s.
    pub fn transaction_retry_limit(mut self, limit: Duration) -> Self {
        self.transaction_retry_limit = limit;
        self
    }

    /// The longest the first read of a start-up may take, all tries together, while the server
    /// cannot be reached; then start-up fails with an error. Default 20 s
    /// (`SCHEMA_STARTUP_TIMEOUT_SECS`).
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// How long a majority write of the records or the lock waits for a majority of the replica
    /// set to confirm it (`wtimeout`), and how long a read of them may run on the server
    /// (`maxTimeMS`). Default 10 s (`SCHEMA_MAJORITY_TIMEOUT_SECS`). Past it,
    /// on a replica set that cannot reach majority (a primary-secondary-arbiter set with its
    /// secondary down), start-up fails with an error of class
    /// [`ErrorClass::NoMajority`](crate::ErrorClass::NoMajority) instead of waiting for ever.
    /// Keep it below the lease: a renewal that waits longer gives the lease up.
    pub fn majority_timeout(mut self, limit: Duration) -> Self {
        self.majority_timeout = limit;
        self
    }

    /// The longest [`Migrator::status`] waits for the server before it answers
    /// `reachable: false`. Default 2 s (`SCHEMA_STATUS_TIMEOUT_SECS`).
    pub fn status_timeout(mut self, limit: Duration) -> Self {
        self.status_timeout = limit;
        self
    }

    pub(crate) fn status_timeout_setting(&self) -> Duration {
        self.status_timeout
    }

    /// Building an index on a collection whose estimated document count is at least
    /// `documents` is reported as a warning (in [`IndexReport::warnings`](crate::IndexReport) and
    /// tracing): the build reads every document while start-up waits. Default 1,000,000.
    pub fn large_collection_threshold(mut self, documents: u64) -> Self {
        self.large_collection = documents;
        self
    }

    /// The `commitQuorum` of the index builds of `ctx.ensure_indexes` on a replica set: how
    /// many data-bearing voting members must be ready before a build commits (`"majority"`,
    /// `"votingMembers"`, a number, or a tag set name), as MongoDB's `createIndexes` takes it
    /// (<https://www.mongodb.com/docs/manual/reference/command/createIndexes/#std-label-createIndexes-cmd-commitQuorum>).
    /// Not sent unless set: the server's default is `"votingMembers"`. A standalone server
    /// refuses it, so there it is not sent (one warning says it was ignored).
    pub fn index_commit_quorum(mut self, quorum: impl Into<mongodb::bson::Bson>) -> Self {
        self.commit_quorum = Some(quorum.into());
        self
    }

    /// The threshold of [`large_collection_threshold`](Self::large_collection_threshold).
    pub(crate) fn large_collection(&self) -> u64 {
        self.large_collection
    }

    /// Whether long helpers (such as [`batches`](crate::MigrationContext::batches)) draw progress bars on stderr.
    /// The CLI turns this on when stderr is a terminal. Default false.
    pub fn progress_bars(mut self, on: bool) -> Self {
        self.progress_bars = on;
        self
    }

    /// Whether [`Migrator::apply_all`] applies anything (`ENABLE_AUTO_MIGRATION`). When false it
    /// only reads the records and lists what is pending in [`Report::pending`]. Default true.
    pub fn auto_migrate(mut self, auto_migrate: bool) -> Self {
        self.auto_migrate = auto_migrate;
        self
    }

    /// Whether `destructive` migrations may be applied (`AUTO_SCHEMA_DESTRUCTIVE`). When false a
    /// pending destructive migration is [`Error::DestructiveNotAllowed`] before anything runs.
    /// Default false.
    pub fn allow_destructive(mut self, allow: bool) -> Self {
        self.allow_destructive = allow;
        self
    }

    #[cfg(feature = "cli")]
    pub(crate) fn allows_destructive(&self) -> bool {
        self.allow_destructive
    }

    /// Applies the migrations of `group` (as named by `#[migration(group = "...")]`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Records in collection `name` instead of `schema_versions` (the lock lives in `name_lock`).
    pub fn versions_collection(mut self, name: impl Into<String>) -> Self {
        self.collection = name.into();
        self
    }

    /// What to do with applied migrations whose code changed.
    pub fn checksum_policy(mut self, policy: ChecksumPolicy) -> Self {
        self.checksum_policy = policy;
        self
    }

    /// Runs pending migrations below the highest applied id instead of refusing to start.
    pub fn allow_out_of_order(mut self, allow: bool) -> Self {
        self.allow_out_of_order = allow;
        self
    }

    /// How long the lock's lease lasts without renewal (renewed every third of it). A process
    /// that dies holding the lock delays the others by at most this much. Default 30 s.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(300));
        self
    }

    /// How long a process waits for another process's lock before [`Error::LockTimeout`].
    /// Default 5 minutes.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How many times the first read is tried while the server cannot be reached (each try
    /// waits up to the client's server selection timeout), with a pause of `delay`, doubled
    /// each time, in between. Default 3 tries, 1 s.
    pub fn startup_retries(mut self, attempts: u32, delay: Duration) -> Self {
        self.startup_attempts = attempts.max(1);
        self.retry_delay = delay;
        self
    }

    /// Closes the migrator's client before the process exits: ends its server sessions and
    /// closes its connections (the driver's `Client::shutdown`), for every clone of the client.
    /// Call it last in `main`: a client that is only dropped while the async runtime stops can
    /// panic in the driver's cleanup task (mongodb 3.9: `connection_requester.rs:42`,
    /// `SendError`, printed after the service has done its work).
    pub async fn shutdown(self) {
        self.database.client().clone().shutdown().await;
    }

    /// Whether long steps draw progress bars ([`progress_bars`](Self::progress_bars)).
    pub fn shows_progress(&self) -> bool {
        self.progress_bars
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The group whose migrations it applies.
    pub fn group_name(&self) -> &str {
        &self.group
    }

    /// The store of records.
    pub(crate) fn store(&self) -> VersionStore {
        VersionStore::new(&self.database, &self.collection, self.majority_timeout)
    }

    /// The lock.
    pub(crate) fn lock(&self) -> LeaseLock {
        LeaseLock::new(
            &self.database,
            &self.collection,
            self.lease,
            self.majority_timeout,
        )
    }

    /// The group's registry: an error when it is empty, unless [`Migrator::allow_empty`].
    pub fn registry(&self) -> Result<Registry> {
        let registry = Registry::group(&self.group)?;
        if registry.migrations().is_empty() && !self.allow_empty {
            return Err(Error::NoMigrations {
                group: self.group.clone(),
                registered_groups: Registry::groups().iter().map(|g| (*g).to_owned()).collect(),
                in_test_binary: in_test_binary(),
            });
        }
        Ok(registry)
    }

    /// Reads the records (one command) and compares them with the registry. Writes nothing.
    pub async fn plan(&self) -> Result<Plan> {
        let registry = self.registry()?;
        let records = self.load_with_retries(&self.store()).await?;
        Ok(Plan::new(&registry, records))
    }

    /// Applies every pending migration in id order and returns what it did.
    ///
    /// - Nothing pending (the common case): one command, the read of `schema_versions`, and no
    ///   lock.
    /// - Otherwise: takes the lock, or waits (bounded, with jittered back-off) for the process
    ///   that holds it, re-reading the records, until nothing is pending or the lock is free.
    ///   Under the lock it reads the records again and applies what is still pending. Each
    ///   migration is recorded as running, run, and recorded as applied only after its
    ///   function returned `Ok`; an error or panic is recorded as failed with its text, stops
    ///   the run, and is returned naming the migration.
    /// - Out-of-order migrations, changed ones (with [`ChecksumPolicy::Fail`]) and transactional
    ///   ones on a standalone server are refused before anything runs.
    ///
    /// No process returns `Ok` from here before every migration of its registry is applied,
    /// except `#[migration(background)]` ones and those after them: it returns once the
    /// migrations before the first of them are applied, and the lock holder applies the rest in
    /// a task while it serves ([`Report::background`], [`Migrator::wait_for_background`]).
    pub async fn apply_all(&self) -> Result<Report> {
        let mut report = self.apply_all_inner().await?;
        if self.check_drift {
            self.drift_warnings(&mut report).await;
        }
        Ok(report)
    }

    async fn apply_all_inner(&self) -> Result<Report> {
        if !self.auto_migrate {
            let plan = self.plan().await?;
            let mut report = self.check(&plan, None)?;
            report.pending = plan.pending().map(|e| e.id.clone()).collect();
            report.warnings.iter().for_each(log_warning);
            tracing::info!(
                pending = report.pending.len(),
                "auto-migration is off: nothing applied"
            );
            return Ok(report);
        }
        self.run(None, true).await
    }

    /// Like [`Migrator::apply_all`], but applies only the pending migrations up to and including
    /// `to` (all of them with `None`), whatever [`Migrator::auto_migrate`] says, background ones
    /// included: it returns when they are applied.
    pub async fn up(&self, to: Option<&MigrationId>) -> Result<Report> {
        self.run(to, false).await
    }

    async fn run(&self, to: Option<&MigrationId>, leave_background: bool) -> Result<Report> {
        let span = tracing::info_span!(
            "apply_all",
            database = self.database.name(),
            group = %self.group,
        );
        let report = self.up_inner(to, leave_background).instrument(span).await?;
        report.warnings.iter().for_each(log_warning);
        Ok(report)
    }

    /// The one run of `apply_all` and `up`: applies what this run needs (see `needed`) under
    /// the lock, or waits until another process did; with `leave_background`, what comes from
    /// the first pending background migration on is then left to the lock holder's task
    /// (`Migrator::hand_off`).
    async fn up_inner(&self, to: Option<&MigrationId>, leave_background: bool) -> Result<Report> {
        let registry = self.registry()?;
        let store = self.store();
        let records = self.load_with_retries(&store).await?;
        let mut floor = highest_fence(&records);
        let plan = Plan::new(&registry, records);
        // Every pending migration is checked now, background ones included: a refused one
        // (destructive, out of order) stops start-up rather than a task later.
        let report = self.check(&plan, to)?;
        let background = |plan: &Plan| -> Vec<MigrationId> {
            if leave_background {
                plan.background().map(|e| e.id.clone()).collect()
            } else {
                Vec::new()
            }
        };
        let needed_now = needed(&plan, to, leave_background);
        if needed_now.is_empty() {
            let background = background(&plan);
            if background.is_empty() {
                tracing::debug!(applied = report.already_applied.len(), "nothing pending");
                return Ok(report);
            }
            return self
                .hand_off(registry, report, background, floor, None)
                .await;
        }
        // Refused before the lock is taken, so that no other process waits for it.
        self.refuse_transactions_without_support(plan.pending_up_to(to))
            .await?;
        let until = match needed_now.last() {
            Some(last) if leave_background => Some(last.id.clone()),
            _ => to.cloned(),
        };

        let (lease, waited) = match self
            .wait_for_lock(floor, |records| {
                floor = floor.max(highest_fence(&records));
                let plan = Plan::new(&registry, records);
                if !needed(&plan, to, leave_background).is_empty() {
                    return Ok(None);
                }
                let report = self.check(&plan, to)?;
                Ok(Some((report, background(&plan))))
            })
            .await?
        {
            Acquired::Lease(lease, waited) => (lease, waited),
            Acquired::Finished((mut report, background), waited) => {
                report.waited = waited;
                tracing::info!(waited = ?report.waited, "another process applied the pending migrations this run needs");
                if background.is_empty() {
                    return Ok(report);
                }
                return self
                    .hand_off(registry, report, background, floor, None)
                    .await;
            }
        };

        let outcome =
            AssertUnwindSafe(self.apply_locked(&registry, &store, &lease, until.as_ref()))
                .catch_unwind()
                .await;
        let mut report = match outcome {
            Ok(Ok(report)) => report,
            // Released with the error (or the panic) as after any locked run.
            failed => return release_after(lease, failed).await.map(|(report, _)| report),
        };
        report.took_lock = true;
        report.waited = waited;
        // What `apply_locked` left after the target: with `leave_background`, the background
        // ones (and any after them), which this process goes on with while it serves.
        if leave_background && !report.pending.is_empty() {
            let background = std::mem::take(&mut report.pending);
            return self
                .hand_off(registry, report, background, floor, Some(lease))
                .await;
        }
        let (mut report, not_released) = release_after(lease, Ok(Ok(report))).await?;
        report.warnings.extend(not_released);
        Ok(report)
    }

    async fn apply_locked(
        &self,
        registry: &Registry,
        store: &VersionStore,
        lease: &Lease,
        to: Option<&MigrationId>,
    ) -> Result<Report> {
        // Another process may have applied some while this one waited: read again under the lock.
        let plan = Plan::new(registry, store.load().await?);
        let mut report = self.check(&plan, to)?;
        self.refuse_transactions_without_support(plan.pending_up_to(to))
            .await?;
        let applied_ids = |report: &Report| {
            report
                .applied
                .iter()
                .map(|a| a.id.clone())
                .collect::<Vec<_>>()
        };
        // The `applied` record of the migration that ran last, held back to go out with the
        // next one's start: its announcement (see `store`) or its `running` record. One
        // command per applied migration, and for a run of plain migrations one write.
        let mut held_back: Option<(AppliedWrite, AppliedMigration)> = None;
        for entry in plan.pending_up_to(to) {
            if let Some(highest) = &plan.highest_applied
                && &entry.id < highest
            {
                report.warnings.push(Warning::AppliedOutOfOrder {
                    id: entry.id.clone(),
                    highest_applied: highest.clone(),
                });
            }
            let previous = held_back.take();
            let stepped = self
                .apply_one(store, lease, entry, previous.as_ref().map(|(w, _)| w), true)
                .await;
            if let Some((_, applied)) = previous
                && stepped.previous_recorded
            {
                report.applied.push(applied);
            }
            match stepped.step {
                Ok(Step::Applied(applied, None)) => report.applied.push(applied),
                Ok(Step::Applied(applied, Some(write))) => held_back = Some((*write, applied)),
                Ok(Step::AlreadyApplied) => report.already_applied.push(entry.id.clone()),
                Err(e) => return Err(e.after_applying(&applied_ids(&report))),
            }
        }
        if let Some((write, applied)) = held_back {
            if let Err(e) = store.finish_applied(&write).await {
                exec::record_failure(store, (&write).into(), &e).await;
                return Err(e.after_applying(&applied_ids(&report)));
            }
            report.applied.push(applied);
        }
        Ok(report)
    }
}

/// The pending migrations a run applies before it returns: those up to `to`, or, when it
/// leaves background migrations to the lock holder, those before the first pending one.
fn needed<'a>(
    plan: &'a Plan,
    to: Option<&'a MigrationId>,
    leave_background: bool,
) -> Vec<&'a crate::plan::PlanEntry> {
    if leave_background {
        plan.needed_at_start().collect()
    } else {
        plan.pending_up_to(to).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn a_cargo_test_executable_is_told_from_a_service() {
        assert!(super::is_test_executable(Path::new(
            "/w/target/debug/deps/startup-0f3a9c1b2d4e5f67"
        )));
        assert!(
            super::is_test_executable(Path::new(
                r"C:\w\target\debug\deps\startup-0f3a9c1b2d4e5f67.exe"
            )) || cfg!(not(windows))
        );
        // The service cargo builds, and one installed by hand.
        assert!(!super::is_test_executable(Path::new(
            "/w/target/debug/service"
        )));
        assert!(!super::is_test_executable(Path::new(
            "/usr/local/bin/help-desk-0f3a9c1b2d4e5f67"
        )));
        assert!(!super::is_test_executable(Path::new(
            "/w/target/debug/deps/not-a-hash"
        )));
    }

    #[test]
    fn this_unit_test_runs_in_a_test_executable() {
        assert!(super::in_test_binary());
    }
}
