//! `Migrator`: applies the pending migrations of one group to one database at start-up, with the
//! lock, so that of many processes starting at once each migration runs exactly once.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use mongodb::Database;
use schema_id::MigrationId;
use tracing::Instrument;

use crate::context::MigrationContext;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::lock::{Backoff, Lease, LeaseLock};
use crate::plan::{Plan, PlanEntry};
use crate::registry::{MigrationFuture, Registry};
use crate::store::{DEFAULT_COLLECTION, MigrationRecord, VersionStore};

/// What to do when an applied migration's code changed since it ran (its checksum differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumPolicy {
    /// Report it in [`Report::warnings`] and in a `tracing` warning, and carry on. The default:
    /// a start-up is the wrong moment to take a service down for a change that already ran;
    /// check for it in the deploy pipeline instead.
    #[default]
    Warn,
    /// Refuse to start ([`Error::ChecksumMismatch`]) before anything runs.
    Fail,
    /// Say nothing.
    Ignore,
}

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
    /// The lock could not be released after the run; its lease expires by itself.
    LockNotReleased {
        /// Why.
        reason: String,
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
                "migration {id} changed after it was applied (recorded checksum {}, now {}); put changes in a new migration",
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

/// What [`Migrator::apply_all`] did.
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
}

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
}

impl Migrator {
    /// A migrator for the `"default"` group on `database`, recording in `schema_versions`.
    pub fn new(database: Database) -> Self {
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
        }
    }

    /// Whether long helpers (such as [`batches`](crate::batch)) draw progress bars on stderr.
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

    pub(crate) fn max_wait_setting(&self) -> Duration {
        self.max_wait
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The store of records.
    pub fn store(&self) -> VersionStore {
        VersionStore::new(&self.database, &self.collection)
    }

    /// The lock.
    pub fn lock(&self) -> LeaseLock {
        LeaseLock::new(&self.database, &self.collection, self.lease)
    }

    /// The group's registry.
    pub fn registry(&self) -> Result<Registry> {
        Registry::group(&self.group)
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
    /// No process returns `Ok` from here before every migration of its registry is applied.
    pub async fn apply_all(&self) -> Result<Report> {
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
        self.up(None).await
    }

    /// Like [`Migrator::apply_all`], but applies only the pending migrations up to and including
    /// `to` (all of them with `None`), whatever [`Migrator::auto_migrate`] says.
    pub async fn up(&self, to: Option<&MigrationId>) -> Result<Report> {
        let span = tracing::info_span!(
            "apply_all",
            database = self.database.name(),
            group = %self.group,
        );
        let report = self.up_inner(to).instrument(span).await?;
        report.warnings.iter().for_each(log_warning);
        Ok(report)
    }

    async fn up_inner(&self, to: Option<&MigrationId>) -> Result<Report> {
        let registry = self.registry()?;
        let store = self.store();
        let plan = Plan::new(&registry, self.load_with_retries(&store).await?);
        let report = self.check(&plan, to)?;
        if plan.pending_up_to(to).next().is_none() {
            tracing::debug!(applied = report.already_applied.len(), "nothing pending");
            return Ok(report);
        }

        let lock = self.lock();
        let waiting = Instant::now();
        let mut backoff = Backoff::new();
        let lease = loop {
            if let Some(lease) = lock.try_acquire().await? {
                break lease;
            }
            if waiting.elapsed() >= self.max_wait {
                return Err(lock.timeout_error(waiting.elapsed()).await);
            }
            tracing::debug!("the migration lock is held by another process; waiting");
            backoff.pause().await;
            let plan = Plan::new(&registry, store.load().await?);
            if plan.pending_up_to(to).next().is_none() {
                let mut report = self.check(&plan, to)?;
                report.waited = waiting.elapsed();
                tracing::info!(waited = ?report.waited, "another process applied the pending migrations");
                return Ok(report);
            }
        };
        let waited = waiting.elapsed();

        let outcome = AssertUnwindSafe(self.apply_locked(&registry, &store, &lease, to))
            .catch_unwind()
            .await;
        let (mut report, not_released) = release_after(lease, outcome).await?;
        report.took_lock = true;
        report.waited = waited;
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
        if let Some(entry) = plan.pending_up_to(to).find(|e| e.migration.transaction())
            && !Deployment::detect(&self.database)
                .await?
                .supports_transactions()
        {
            return Err(Error::TransactionsUnsupported {
                id: entry.id.to_string(),
                description: entry.migration.description().to_owned(),
            });
        }
        for entry in plan.pending_up_to(to) {
            if let Some(highest) = &plan.highest_applied
                && &entry.id < highest
            {
                report.warnings.push(Warning::AppliedOutOfOrder {
                    id: entry.id.clone(),
                    highest_applied: highest.clone(),
                });
            }
            let applied = self.apply_one(store, lease, entry).await?;
            report.applied.push(applied);
        }
        Ok(report)
    }

    /// The report of a plan's state, or the error that refuses it. Pure: it is computed again
    /// under the lock, and its warnings are logged once, by the caller that returns them.
    pub(crate) fn check(&self, plan: &Plan, to: Option<&MigrationId>) -> Result<Report> {
        let mut report = Report {
            already_applied: plan
                .entries
                .iter()
                .filter(|e| !e.is_pending())
                .map(|e| e.id.clone())
                .collect(),
            pending: plan
                .pending()
                .filter(|e| to.is_some_and(|to| &e.id > to))
                .map(|e| e.id.clone())
                .collect(),
            ..Report::default()
        };
        if !self.allow_destructive
            && let Some(entry) = plan.pending_up_to(to).find(|e| e.migration.destructive())
        {
            return Err(Error::DestructiveNotAllowed {
                id: entry.id.to_string(),
                description: entry.migration.description().to_owned(),
            });
        }
        for (entry, recorded) in plan.changed() {
            match self.checksum_policy {
                ChecksumPolicy::Fail => {
                    return Err(Error::ChecksumMismatch {
                        id: entry.id.to_string(),
                        description: entry.migration.description().to_owned(),
                        recorded: recorded.to_owned(),
                        current: entry.migration.checksum().to_owned(),
                    });
                }
                ChecksumPolicy::Warn => {
                    let warning = Warning::ChecksumChanged {
                        id: entry.id.clone(),
                        recorded: recorded.to_owned(),
                        current: entry.migration.checksum().to_owned(),
                    };
                    report.warnings.push(warning);
                }
                ChecksumPolicy::Ignore => {}
            }
        }
        if !self.allow_out_of_order
            && let (Some(entry), Some(highest)) = (
                plan.out_of_order()
                    .find(|e| to.is_none_or(|to| &e.id <= to)),
                plan.highest_applied.as_ref(),
            )
        {
            return Err(Error::OutOfOrder {
                id: entry.id.to_string(),
                description: entry.migration.description().to_owned(),
                highest_applied: highest.to_string(),
            });
        }
        for record in &plan.unknown {
            report.warnings.push(Warning::UnknownRecord {
                key: record.key.clone(),
                description: record.description.clone(),
            });
        }
        Ok(report)
    }

    pub(crate) async fn load_with_retries(
        &self,
        store: &VersionStore,
    ) -> Result<Vec<MigrationRecord>> {
        let mut delay = self.retry_delay;
        let mut attempt = 1;
        loop {
            match store.load().await {
                Err(Error::Database {
                    operation,
                    migration,
                    source,
                }) if is_unreachable(&source) => {
                    if attempt >= self.startup_attempts {
                        return Err(Error::Database {
                            operation: format!(
                                "{operation} (the server could not be reached in {attempt} attempts)"
                            ),
                            migration,
                            source,
                        });
                    }
                    tracing::warn!(
                        attempt,
                        error = %crate::redact::scrub(&source.to_string()),
                        "the server cannot be reached; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    pub(crate) async fn apply_one(
        &self,
        store: &VersionStore,
        lease: &Lease,
        entry: &PlanEntry,
    ) -> Result<AppliedMigration> {
        let span = tracing::info_span!(
            "migration",
            id = %entry.id,
            description = entry.migration.description(),
        );
        self.apply_one_inner(store, lease, entry)
            .instrument(span)
            .await
    }

    async fn apply_one_inner(
        &self,
        store: &VersionStore,
        lease: &Lease,
        entry: &PlanEntry,
    ) -> Result<AppliedMigration> {
        let migration = entry.migration;
        let id = entry.id.as_str();
        let key = entry.record_key();
        let fence = lease.fence();
        let attempt = entry.record.as_ref().map_or(0, |r| r.attempts) + 1;
        store.start(&key, migration, fence, attempt).await?;
        // Between the check that found it pending and the start record, this process may have
        // been paused past its lease: make sure it still holds the lock before running anything.
        lease.verify(Some(id)).await?;
        tracing::info!(attempt, transaction = migration.transaction(), "applying");

        let mut context =
            MigrationContext::for_migration(self.database.clone(), id, self.progress_bars);
        context.set_checkpoint_target(crate::batch::CheckpointTarget {
            store: store.clone(),
            key: key.clone(),
            fence,
        });
        if migration.transaction() {
            let mut session = self
                .database
                .client()
                .start_session()
                .await
                .map_err(|e| Error::database("starting a session", Some(id), e))?;
            session
                .start_transaction()
                .read_concern(mongodb::options::ReadConcern::majority())
                .write_concern(mongodb::options::WriteConcern::majority())
                .await
                .map_err(|e| Error::database("starting a transaction", Some(id), e))?;
            context.set_session(session);
        }

        let started = Instant::now();
        let ended = run_under_lease(lease, migration.run(&mut context)).await;
        let duration = started.elapsed();
        let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let mut session = context.take_session();

        let (message, source) = match ended {
            Ended::LeaseLost(reason) => {
                // The migration was stopped where it was; its transaction (if any) is dropped
                // and so aborted. Record the interruption if the record is still ours.
                tracing::error!(%reason, "lost the migration lock; stopping");
                let _ = store
                    .finish_failed(&key, fence, duration_ms, &format!("interrupted: {reason}"))
                    .await;
                return Err(lease.lost_error(Some(id), reason));
            }
            Ended::Returned => {
                match session.as_mut() {
                    Some(session) => {
                        self.commit(store, lease, session, &key, id, duration_ms)
                            .await?
                    }
                    None => store.finish_applied(&key, fence, duration_ms).await?,
                }
                tracing::info!(duration_ms, "applied");
                return Ok(AppliedMigration {
                    id: entry.id.clone(),
                    description: migration.description(),
                    duration,
                    attempt,
                });
            }
            Ended::Failed { message, source } => (message, source),
        };
        if let Some(session) = session.as_mut() {
            // Fails harmlessly when the migration already ended the transaction itself.
            let _ = session.abort_transaction().await;
        }
        tracing::error!(duration_ms, error = %message, "failed");
        store
            .finish_failed(&key, fence, duration_ms, &message)
            .await?;
        Err(Error::MigrationFailed {
            id: entry.id.to_string(),
            description: migration.description().to_owned(),
            attempt,
            message,
            source,
        })
    }

    /// Records the migration as applied inside its own transaction, checks in the same
    /// transaction that the lock is still ours, and commits: its writes and its record land
    /// together or not at all.
    async fn commit(
        &self,
        store: &VersionStore,
        lease: &Lease,
        session: &mut mongodb::ClientSession,
        key: &str,
        id: &str,
        duration_ms: i64,
    ) -> Result<()> {
        let recorded = store
            .finish_applied_in(session, key, lease.fence(), duration_ms)
            .await;
        let still_ours = match recorded {
            Ok(()) => lease
                .touch_in(session)
                .await
                .map_err(|e| Error::database("checking the lock in the transaction", Some(id), e)),
            Err(e) => Err(e),
        };
        match still_ours {
            Ok(true) => session
                .commit_transaction()
                .await
                .map_err(|e| Error::database("committing the transaction", Some(id), e)),
            Ok(false) => {
                let _ = session.abort_transaction().await;
                Err(lease.lost_error(Some(id), "the lease expired before the commit".into()))
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                Err(e)
            }
        }
    }
}

/// How a migration's function (or its rollback) ended when run under the lease.
pub(crate) enum Ended {
    /// It returned `Ok`.
    Returned,
    /// It returned an error or panicked.
    Failed {
        message: String,
        source: Option<crate::error::BoxError>,
    },
    /// The lease was lost first; the function was dropped where it stood.
    LeaseLost(String),
}

/// Runs a migration's (or rollback's) future to its end, catching a panic, unless the lease is
/// lost first.
pub(crate) async fn run_under_lease(lease: &Lease, run: MigrationFuture<'_>) -> Ended {
    tokio::select! {
        outcome = AssertUnwindSafe(run).catch_unwind() => match outcome {
            Ok(Ok(())) => Ended::Returned,
            Ok(Err(error)) => Ended::Failed {
                message: crate::redact::scrub(&error.to_string()),
                source: Some(error),
            },
            Err(panic) => Ended::Failed {
                message: format!("panicked: {}", panic_message(&panic)),
                source: None,
            },
        },
        reason = lease.lost() => Ended::LeaseLost(reason),
    }
}

/// Releases the lease after a locked operation and returns the operation's result (or resumes
/// its panic), with a warning when the release failed (the lease then expires by itself).
pub(crate) async fn release_after<T>(
    lease: Lease,
    outcome: std::thread::Result<Result<T>>,
) -> Result<(T, Option<Warning>)> {
    let released = lease.release().await;
    match outcome {
        Ok(Ok(value)) => Ok((
            value,
            released.err().map(|e| Warning::LockNotReleased {
                reason: e.to_string(),
            }),
        )),
        Ok(Err(e)) => Err(e),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

pub(crate) fn log_warning(warning: &Warning) {
    match warning {
        Warning::UnknownRecord { .. } => tracing::info!("{warning}"),
        _ => tracing::warn!("{warning}"),
    }
}

fn is_unreachable(error: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        error.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
