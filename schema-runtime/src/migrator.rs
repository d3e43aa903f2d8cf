//! `Migrator`: applies the pending migrations of one group to one database at start-up.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use mongodb::Database;
use schema_id::MigrationId;
use tracing::Instrument;

use crate::context::MigrationContext;
use crate::error::{Error, Result};
use crate::plan::{Plan, PlanEntry};
use crate::registry::Registry;
use crate::store::{DEFAULT_COLLECTION, VersionStore};

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
    /// Migrations that were already applied.
    pub already_applied: Vec<MigrationId>,
    /// Things to know that did not stop the run.
    pub warnings: Vec<Warning>,
}

/// Applies the migrations of one group to one database.
///
/// ```no_run
/// # async fn start(database: mongodb::Database) -> schema_runtime::Result<()> {
/// let report = schema_runtime::Migrator::new(database).apply_all().await?;
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
        }
    }

    /// Applies the migrations of `group` (as named by `#[migration(group = "...")]`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Records in collection `name` instead of `schema_versions`.
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

    /// The database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The store of records.
    pub fn store(&self) -> VersionStore {
        VersionStore::new(&self.database, &self.collection)
    }

    /// The group's registry.
    pub fn registry(&self) -> Result<Registry> {
        Registry::group(&self.group)
    }

    /// Reads the records (one command) and compares them with the registry. Writes nothing.
    pub async fn plan(&self) -> Result<Plan> {
        let registry = self.registry()?;
        let records = self.store().load().await?;
        Ok(Plan::new(&registry, records))
    }

    /// Applies every pending migration in id order and returns what it did.
    ///
    /// When nothing is pending this sends one command (the read of `schema_versions`). Otherwise
    /// each migration is recorded as running, run, and recorded as applied only after its
    /// function returned `Ok`; an error or panic is recorded as failed with its text, stops the
    /// run, and is returned naming the migration. Out-of-order migrations and (with
    /// [`ChecksumPolicy::Fail`]) changed ones are refused before anything runs.
    pub async fn apply_all(&self) -> Result<Report> {
        let span = tracing::info_span!(
            "apply_all",
            database = self.database.name(),
            group = %self.group,
        );
        self.apply_all_inner().instrument(span).await
    }

    async fn apply_all_inner(&self) -> Result<Report> {
        let plan = self.plan().await?;
        let mut report = Report::default();
        self.check(&plan, &mut report)?;
        report.already_applied = plan
            .entries
            .iter()
            .filter(|e| !e.is_pending())
            .map(|e| e.id.clone())
            .collect();
        if !plan.has_pending() {
            tracing::debug!(applied = report.already_applied.len(), "nothing pending");
            return Ok(report);
        }
        let store = self.store();
        for entry in plan.pending() {
            if let Some(highest) = &plan.highest_applied
                && &entry.id < highest
            {
                report.warnings.push(Warning::AppliedOutOfOrder {
                    id: entry.id.clone(),
                    highest_applied: highest.clone(),
                });
            }
            let applied = self.apply_one(&store, entry).await?;
            report.applied.push(applied);
        }
        Ok(report)
    }

    fn check(&self, plan: &Plan, report: &mut Report) -> Result<()> {
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
                    tracing::warn!(id = %entry.id, "{warning}");
                    report.warnings.push(warning);
                }
                ChecksumPolicy::Ignore => {}
            }
        }
        if !self.allow_out_of_order
            && let (Some(entry), Some(highest)) =
                (plan.out_of_order().next(), plan.highest_applied.as_ref())
        {
            return Err(Error::OutOfOrder {
                id: entry.id.to_string(),
                description: entry.migration.description().to_owned(),
                highest_applied: highest.to_string(),
            });
        }
        for record in &plan.unknown {
            let warning = Warning::UnknownRecord {
                key: record.key.clone(),
                description: record.description.clone(),
            };
            tracing::info!("{warning}");
            report.warnings.push(warning);
        }
        Ok(())
    }

    async fn apply_one(&self, store: &VersionStore, entry: &PlanEntry) -> Result<AppliedMigration> {
        let migration = entry.migration;
        let key = entry.record_key();
        let span = tracing::info_span!(
            "migration",
            id = %entry.id,
            description = migration.description(),
        );
        async {
            let attempt = store.start(&key, migration).await?;
            tracing::info!(attempt, "applying");
            let mut context =
                MigrationContext::for_migration(self.database.clone(), entry.id.as_str());
            let started = Instant::now();
            let outcome = AssertUnwindSafe(migration.run(&mut context))
                .catch_unwind()
                .await;
            let duration = started.elapsed();
            let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
            let (message, source) = match outcome {
                Ok(Ok(())) => {
                    store.finish_applied(&key, duration_ms).await?;
                    tracing::info!(duration_ms, "applied");
                    return Ok(AppliedMigration {
                        id: entry.id.clone(),
                        description: migration.description(),
                        duration,
                        attempt,
                    });
                }
                Ok(Err(error)) => (crate::redact::scrub(&error.to_string()), Some(error)),
                Err(panic) => (format!("panicked: {}", panic_message(&panic)), None),
            };
            tracing::error!(duration_ms, error = %message, "failed");
            store.finish_failed(&key, duration_ms, &message).await?;
            Err(Error::MigrationFailed {
                id: entry.id.to_string(),
                description: migration.description().to_owned(),
                attempt,
                message,
                source,
            })
        }
        .instrument(span)
        .await
    }
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
