//! What an operator does besides applying: read the status, verify, roll back, adopt an existing
//! database (baseline), run one migration again (redo). The commands that write take the lock.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use schema_id::MigrationId;
use serde::Serialize;

use super::{AppliedMigration, Ended, Migrator, Step, log_warning, release_after, run_guarded};
use crate::context::MigrationContext;
use crate::error::{Error, Result};
use crate::lock::Lease;
use crate::plan::{ChecksumStatus, EntryState, Finding, Plan};
use crate::store::RecordState;

/// A migration in progress, as its record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Running {
    /// Its id (the record's `_id`).
    pub id: String,
    /// Its description.
    pub description: Option<String>,
    /// Whether it is a `#[migration(background)]` one (or after one), which the application
    /// does not wait for.
    pub background: bool,
    /// When its attempt started (RFC 3339, server clock).
    pub started_at: Option<String>,
    /// The host and process running it.
    pub host: Option<String>,
    /// The process id.
    pub pid: Option<i64>,
    /// Which attempt this is.
    pub attempt: i64,
    /// How far its batch walks got (`ctx.batches` checkpoints), by collection.
    pub progress: Vec<crate::store::Progress>,
}

/// A cheap summary for readiness and health checks: one query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Whether the server answered.
    pub reachable: bool,
    /// The database.
    pub database: String,
    /// The highest applied id, if any.
    pub highest_applied: Option<String>,
    /// How many registered migrations are not applied.
    pub pending: usize,
    /// How many of the pending ones the application does not need to start: from the first
    /// pending `#[migration(background)]` one on. `pending - pending_background` is what
    /// start-up still has to apply.
    pub pending_background: usize,
    /// Those migrations' ids, in order. A failed one among them (in [`failed`](Self::failed)
    /// too) does not stop the application: it runs again at the next start-up.
    pub background: Vec<String>,
    /// Migrations whose record says they are running now (a background migration, or a
    /// start-up in progress), with how far their batch walks got; a process that died while
    /// running one also leaves it here until the next holder takes over.
    pub running: Vec<Running>,
    /// Whether the database has applied ids above every id this binary knows.
    pub database_ahead: bool,
    /// Applied ids this binary does not know.
    pub unknown: Vec<String>,
    /// Ids whose last attempt failed.
    pub failed: Vec<String>,
    /// Why the server could not be read, when it could not.
    pub error: Option<String>,
    /// With [`Migrator::check_drift`]: each difference between the database and the schema the
    /// migrations declared (empty when there is none); `None` when not asked.
    pub drift: Option<Vec<String>>,
}

impl Migrator {
    /// The status in one query; never fails (an unreachable server is `reachable: false`).
    pub async fn status(&self) -> Health {
        let mut status = Health {
            reachable: false,
            database: self.database().name().to_owned(),
            highest_applied: None,
            pending: 0,
            pending_background: 0,
            background: Vec::new(),
            running: Vec::new(),
            database_ahead: false,
            unknown: Vec::new(),
            failed: Vec::new(),
            error: None,
            drift: None,
        };
        let registry = match self.registry() {
            Ok(registry) => registry,
            Err(e) => {
                status.error = Some(e.to_string());
                return status;
            }
        };
        let limit = self.status_timeout_setting();
        let records = match tokio::time::timeout(limit, self.store().load()).await {
            Ok(Ok(records)) => records,
            Ok(Err(e)) => {
                status.error = Some(e.to_string());
                return status;
            }
            Err(_) => {
                status.error = Some(
                    Error::TimedOut {
                        operation: format!(
                            "reading the applied migrations from {} (Migrator::status_timeout, SCHEMA_STATUS_TIMEOUT_SECS)",
                            self.store().name()
                        ),
                        limit,
                    }
                    .to_string(),
                );
                return status;
            }
        };
        status.reachable = true;
        let drift_records = self.check_drift_setting().then(|| records.clone());
        let plan = Plan::new(&registry, records);
        status.highest_applied = plan.highest_applied.as_ref().map(ToString::to_string);
        status.pending = plan.pending().count();
        status.background = plan.background().map(|e| e.record_key()).collect();
        status.pending_background = status.background.len();
        let background: Vec<&MigrationId> = plan.background().map(|e| &e.id).collect();
        status.running = plan
            .entries
            .iter()
            .filter_map(|e| e.record.as_ref().map(|r| (e, r)))
            .filter(|(_, r)| r.state == RecordState::Running)
            .map(|(e, r)| Running {
                id: r.key.clone(),
                description: r.description.clone(),
                background: background.contains(&&e.id),
                started_at: r.started_at.and_then(|d| d.try_to_rfc3339_string().ok()),
                host: r.host.clone(),
                pid: r.pid,
                attempt: r.attempts,
                progress: r.progress.clone(),
            })
            .collect();
        let highest_known = registry.migrations().iter().map(|m| m.id()).max();
        status.database_ahead = match (&plan.highest_applied, highest_known) {
            (Some(applied), Some(known)) => applied > &known,
            (Some(_), None) => true,
            _ => false,
        };
        status.unknown = plan.unknown.iter().map(|r| r.key.clone()).collect();
        if let Some(records) = drift_records {
            match tokio::time::timeout(limit, self.drift_of(&records)).await {
                Ok(Ok(report)) => {
                    status.drift = Some(report.findings.iter().map(ToString::to_string).collect());
                }
                Ok(Err(e)) => status.error = Some(format!("the drift check failed: {e}")),
                Err(_) => {
                    status.error = Some(format!(
                        "the drift check took longer than {limit:?} (Migrator::status_timeout)"
                    ));
                }
            }
        }
        status.failed = plan
            .entries
            .iter()
            .filter_map(|e| e.record.as_ref())
            .filter(|r| r.state == RecordState::Failed)
            .map(|r| r.key.clone())
            .collect();
        status
    }

    /// Releases the lock (`migrate unlock --force`): repairs an unreadable lock document and
    /// raises the fence above every fence recorded, so the former holder can record nothing
    /// more. A holder whose lease is still running is refused with
    /// [`Error::LockHeldByLiveProcess`] unless `even_if_alive`; then the lock stays closed until
    /// that lease would have ended, so the old holder stops at its next renewal first.
    pub async fn force_unlock(&self, even_if_alive: bool) -> Result<crate::lock::Unlocked> {
        let floor = crate::store::highest_fence(&self.store().load().await?);
        self.lock().force_release(floor, even_if_alive).await
    }

    /// Everything wrong with the database compared with this binary: see [`Plan::findings`].
    /// One query.
    pub async fn verify(&self) -> Result<Vec<Finding>> {
        Ok(self.plan().await?.findings())
    }

    /// Rolls back, newest first, every applied migration above `to` by running its rollback
    /// function and removing its record; stops with [`Error::NoRollback`] at the first that has
    /// none. Returns the ids rolled back.
    pub async fn down(&self, to: &MigrationId) -> Result<Vec<MigrationId>> {
        let lease = self.lock_for_command().await?;
        let outcome = AssertUnwindSafe(self.down_locked(&lease, to))
            .catch_unwind()
            .await;
        finish_locked(lease, outcome).await
    }

    async fn down_locked(&self, lease: &Lease, to: &MigrationId) -> Result<Vec<MigrationId>> {
        let plan = Plan::new(&self.registry()?, self.store().load().await?);
        if let Some(unknown) = plan
            .unknown
            .iter()
            .find(|r| r.id.as_ref().is_some_and(|id| id > to))
        {
            return Err(Error::NotApplicable {
                command: "down --to".into(),
                id: to.clone(),
                problem: format!(
                    "the database has applied {}, which this binary does not know, so it cannot roll it back; use the binary that has it",
                    unknown.key
                ),
            });
        }
        let store = self.store();
        let mut rolled_back: Vec<MigrationId> = Vec::new();
        for entry in plan
            .entries
            .iter()
            .rev()
            .filter(|e| !e.is_pending() && &e.id > to)
        {
            let migration = entry.migration;
            if !migration.has_down() {
                return Err(Error::NoRollback {
                    id: entry.id.clone(),
                    description: migration.description().to_owned(),
                    rolled_back: rolled_back.clone(),
                });
            }
            lease.verify(Some(entry.id.as_str())).await?;
            let key = entry.record_key();
            let mut context =
                MigrationContext::for_migration(self.database().clone(), &entry.id, false, true);
            let rollback = migration.run_down(&mut context).expect("checked has_down");
            let message = match run_guarded(lease, None, rollback).await {
                Ended::LeaseLost(reason) => {
                    return Err(lease.lost_error(Some(entry.id.as_str()), reason));
                }
                Ended::TimedOut => "it ran past its time limit".to_owned(),
                Ended::Returned => {
                    store.remove(&key, lease.fence()).await?;
                    tracing::info!(id = %entry.id, "rolled back");
                    rolled_back.push(entry.id.clone());
                    continue;
                }
                Ended::Failed { message, .. } => message,
            };
            store
                .note_rollback_failure(&key, lease.fence(), &message)
                .await?;
            return Err(Error::MigrationFailed {
                id: entry.id.clone(),
                description: migration.description().to_owned(),
                attempt: 1,
                message: format!("rollback failed: {message}"),
                source: None,
                applied_before: Vec::new(),
            });
        }
        Ok(rolled_back)
    }

    /// Records every registered migration up to `to` that is not applied as applied, without
    /// running it: for adopting a database whose schema was built another way. Returns their ids.
    pub async fn baseline(&self, to: &MigrationId) -> Result<Vec<MigrationId>> {
        // An id that is not registered would record every migration below it, and nothing says
        // that the database holds their schema up to there.
        if !self.registry()?.migrations().iter().any(|m| &m.id() == to) {
            return Err(Error::NotApplicable {
                command: "baseline --to".into(),
                id: to.clone(),
                problem: "no registered migration has this id, so nothing says what the database holds up to it; name the last migration whose schema the database already has (`status` lists them)".into(),
            });
        }
        let lease = self.lock_for_command().await?;
        let outcome = AssertUnwindSafe(async {
            let plan = Plan::new(&self.registry()?, self.store().load().await?);
            let store = self.store();
            let mut adopted = Vec::new();
            for entry in plan.pending_up_to(Some(to)) {
                store
                    .baseline(
                        &entry.record_key(),
                        &entry.migration.declared(),
                        lease.fence(),
                    )
                    .await?;
                adopted.push(entry.id.clone());
            }
            Ok(adopted)
        })
        .catch_unwind()
        .await;
        finish_locked(lease, outcome).await
    }

    /// Removes the record of a migration this binary no longer has (its file was deleted, or it
    /// came from another branch), so that `verify` stops reporting it: the way out instead of
    /// deleting the record by hand. The record is copied whole into `<versions>_audit` with who
    /// removed it and when. `id` matches the record's `_id` or its id prefix (the reference
    /// system's `0003_replay_indexes` is `0003`). A migration this binary registers is refused:
    /// `down` undoes it, `redo` runs it again. Returns the `_id` removed.
    pub async fn forget(&self, id: &MigrationId) -> Result<String> {
        let not_applicable = |problem: &str| Error::NotApplicable {
            command: "forget".into(),
            id: id.clone(),
            problem: problem.into(),
        };
        if self.registry()?.migrations().iter().any(|m| &m.id() == id) {
            return Err(not_applicable(
                "this binary registers it, so its record is not stale; `down` rolls it back and `redo` runs it again",
            ));
        }
        let lease = self.lock_for_command().await?;
        let outcome = AssertUnwindSafe(async {
            let records = self.store().load().await?;
            let record = records
                .iter()
                .find(|r| r.key == id.as_str() || r.id.as_ref() == Some(id))
                .ok_or_else(|| not_applicable("the database has no record with this id; `status` lists the records this binary does not know"))?;
            self.store()
                .forget(&record.key, lease.fence(), &operator())
                .await?;
            Ok(record.key.clone())
        })
        .catch_unwind()
        .await;
        finish_locked(lease, outcome).await
    }

    /// Records this binary's checksum (and function and description) for an applied migration
    /// whose body changed harmlessly (a refactor, a renamed module), so that `verify` and the
    /// checksum policy stop reporting it without running it again. Who and when go on the
    /// record (`accepted`) and into `<versions>_audit`. Refused for a migration that is not
    /// applied, whose checksum matches, or whose record is another migration under the same id
    /// (give one of them a new id). Returns the checksum it replaced (none for records of the
    /// reference system).
    pub async fn accept(&self, id: &MigrationId) -> Result<Option<String>> {
        let not_applicable = |problem: &str| Error::NotApplicable {
            command: "accept".into(),
            id: id.clone(),
            problem: problem.into(),
        };
        let lease = self.lock_for_command().await?;
        let outcome = AssertUnwindSafe(async {
            let plan = Plan::new(&self.registry()?, self.store().load().await?);
            let entry = plan
                .entries
                .iter()
                .find(|e| &e.id == id)
                .ok_or_else(|| not_applicable("no registered migration has this id; `status` lists them"))?;
            if plan.diverged().any(|(e, _)| &e.id == id) {
                return Err(not_applicable(
                    "the database applied a different migration under this id (its function and description both differ); give the registered one a new id instead",
                ));
            }
            let previous = match &entry.state {
                EntryState::Pending => {
                    return Err(not_applicable("it is not applied; apply it with `up`"));
                }
                EntryState::Applied(ChecksumStatus::Matches) => {
                    return Err(not_applicable(
                        "its recorded checksum already matches this binary; there is nothing to accept",
                    ));
                }
                EntryState::Applied(ChecksumStatus::Differs { recorded }) => Some(recorded.clone()),
                EntryState::Applied(ChecksumStatus::NotRecorded) => None,
            };
            self.store()
                .accept(
                    &entry.record_key(),
                    &entry.migration.declared(),
                    previous.as_deref(),
                    lease.fence(),
                    &operator(),
                )
                .await?;
            Ok(previous)
        })
        .catch_unwind()
        .await;
        finish_locked(lease, outcome).await
    }

    /// Runs one applied migration again and records it again: the documented replacement for
    /// deleting its record by hand.
    pub async fn redo(&self, id: &MigrationId) -> Result<AppliedMigration> {
        let lease = self.lock_for_command().await?;
        let outcome =
            AssertUnwindSafe(async {
                let plan = Plan::new(&self.registry()?, self.store().load().await?);
                let entry = plan.entries.iter().find(|e| &e.id == id).ok_or_else(|| {
                    Error::NotApplicable {
                        command: "redo".into(),
                        id: id.clone(),
                        problem: "no registered migration has this id; `status` lists them".into(),
                    }
                })?;
                if entry.is_pending() {
                    return Err(Error::NotApplicable {
                        command: "redo".into(),
                        id: id.clone(),
                        problem: "it is not applied; apply it with `up`".into(),
                    });
                }
                self.refuse_transactions_without_support(std::iter::once(entry))
                    .await?;
                match self
                    .apply_one(&self.store(), &lease, entry, None, false)
                    .await
                    .step?
                {
                    Step::Applied(applied, _) => Ok(applied),
                    Step::AlreadyApplied => Err(Error::NotApplicable {
                        command: "redo".into(),
                        id: id.clone(),
                        problem: "another process applied it again meanwhile".into(),
                    }),
                }
            })
            .catch_unwind()
            .await;
        finish_locked(lease, outcome).await
    }
}

/// Releases the lease after a locked operation and returns its result, logging a failed release.
/// Who runs an operator command, for the audit: `user@host (pid N)`.
pub(super) fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown user".into());
    format!(
        "{user}@{} (pid {})",
        crate::wire::host(),
        crate::wire::pid()
    )
}

pub(super) async fn finish_locked<T>(
    lease: Lease,
    outcome: std::thread::Result<Result<T>>,
) -> Result<T> {
    let (value, not_released) = release_after(lease, outcome).await?;
    not_released.iter().for_each(log_warning);
    Ok(value)
}
