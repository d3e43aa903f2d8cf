//! Running one migration under the lease: its `running` record, its function (in a transaction
//! when it asks for one, retried as MongoDB's drivers document), its time limit, and the record
//! of how it ended. Every failure is recorded, whatever step failed.
//!
//! A transactional migration is fenced through its own record, never through the lock document:
//! the `applied` update inside the transaction matches only the record this process started
//! (`fence` and `state: running`). A newer holder that starts the migration again rewrites that
//! record, so the transaction's update finds nothing (or conflicts) and aborts; the lock's
//! renewals touch only the lock document, so they can never conflict with the transaction, however
//! long it runs.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use mongodb::ClientSession;
use tracing::Instrument;

use super::{AppliedMigration, Migrator, Warning};
use crate::context::MigrationContext;
use crate::error::driver::{
    TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT, has_label,
};
use crate::error::{BoxError, Cause, Error, Result};
use crate::lock::Lease;
use crate::plan::PlanEntry;
use crate::registry::MigrationFuture;
use crate::store::{
    Announced, AppliedWrite, LATE_START, LateStart, StartError, Started, Unrecorded, VersionStore,
};
use crate::wire::start_majority_transaction;

/// How [`Migrator::apply_one`] ended.
pub(crate) enum Step {
    /// Applied. With `Some`, its `applied` record is not written yet: it was held back (`defer`)
    /// to go out with the next migration's `running` record, in one command.
    Applied(AppliedMigration, Option<Box<AppliedWrite>>),
    /// Another process applied it meanwhile; it did not run.
    AlreadyApplied,
}

/// What [`Migrator::apply_one`] did, including to the migration before it.
pub(crate) struct Stepped {
    /// Whether the `applied` record of the migration before (`previous`) is written.
    pub previous_recorded: bool,
    /// How this migration ended.
    pub step: Result<Step>,
}

impl Migrator {
    /// Applies one pending migration. `previous` is the held-back `applied` record of the
    /// migration before it, written in the same command as this one's `running` record. With
    /// `defer`, a migration without a transaction leaves its own `applied` record to the caller
    /// (in [`Step::Applied`]), to send with the next one or alone.
    pub(crate) async fn apply_one(
        &self,
        store: &VersionStore,
        lease: &Lease,
        entry: &PlanEntry,
        previous: Option<&AppliedWrite>,
        defer: bool,
    ) -> Stepped {
        let span = tracing::info_span!(
            "migration",
            id = %entry.id,
            description = entry.migration.description(),
        );
        self.apply_one_inner(store, lease, entry, previous, defer)
            .instrument(span)
            .await
    }

    async fn apply_one_inner(
        &self,
        store: &VersionStore,
        lease: &Lease,
        entry: &PlanEntry,
        previous: Option<&AppliedWrite>,
        defer: bool,
    ) -> Stepped {
        let migration = entry.migration;
        let key = entry.record_key();
        let fence = lease.fence();
        // Records come from outside: an absurd count must not overflow.
        let attempt = entry
            .record
            .as_ref()
            .map_or(0, |r| r.attempts)
            .saturating_add(1);
        // An applied entry is here only to run again (`redo`).
        let rerun = !entry.is_pending();
        let declared = migration.declared();
        // One write for this migration instead of two (see `store`): announced on the record
        // of the one before, which is written now, and recorded when it ends.
        if let Some(previous) = previous
            && defer
            && entry.record.is_none()
            && !rerun
            && !migration.transaction()
        {
            let announced = Announced {
                key: key.clone(),
                fence,
                attempt,
                description: declared.description.to_owned(),
                checksum: declared.checksum.to_owned(),
                function: declared.function.clone(),
            };
            let mut write = previous.clone();
            write.next = Some(announced.clone());
            if let Err(e) = store.finish_applied(&write).await {
                record_failure(store, previous.into(), &e).await;
                return Stepped {
                    previous_recorded: false,
                    step: Err(e),
                };
            }
            let late = Arc::new(LateStart::new(store.clone(), announced));
            return Stepped {
                previous_recorded: true,
                step: self
                    .run_and_record(store, lease, entry, &key, attempt, defer, Some(late))
                    .await,
            };
        }
        let started = match previous {
            None => store.start(&key, &declared, fence, attempt, rerun).await,
            Some(previous) => {
                match store
                    .start_after(previous, &key, &declared, fence, attempt, rerun)
                    .await
                {
                    Ok(started) => Ok(started),
                    Err(StartError::Previous(e)) => {
                        record_failure(store, previous.into(), &e).await;
                        return Stepped {
                            previous_recorded: false,
                            step: Err(e),
                        };
                    }
                    Err(StartError::This(e)) => Err(e),
                }
            }
        };
        let step = match started {
            Err(e) => Err(e),
            Ok(Started::AlreadyApplied) => {
                tracing::info!("another process applied it meanwhile");
                Ok(Step::AlreadyApplied)
            }
            Ok(Started::Running) => {
                self.run_and_record(store, lease, entry, &key, attempt, defer, None)
                    .await
            }
        };
        Stepped {
            previous_recorded: true,
            step,
        }
    }

    /// Runs the started (or announced: `late`) migration and records how it ended.
    #[allow(clippy::too_many_arguments)]
    async fn run_and_record(
        &self,
        store: &VersionStore,
        lease: &Lease,
        entry: &PlanEntry,
        key: &str,
        attempt: i64,
        defer: bool,
        late: Option<Arc<LateStart>>,
    ) -> Result<Step> {
        let migration = entry.migration;
        let fence = lease.fence();
        let started = Instant::now();
        match self
            .run_attempt(store, lease, entry, key, attempt, defer, late.clone())
            .await
        {
            Ok(held_back) => {
                let duration = started.elapsed();
                tracing::info!(duration_ms = duration.as_millis() as u64, "applied");
                Ok(Step::Applied(
                    AppliedMigration {
                        id: entry.id.clone(),
                        description: migration.description(),
                        duration,
                        attempt,
                    },
                    held_back.map(Box::new),
                ))
            }
            Err(error) => {
                let failed = Failure {
                    key,
                    fence,
                    duration_ms: crate::wire::millis_i64(started.elapsed()),
                    late: late.as_deref(),
                };
                record_failure(store, failed, &error).await;
                Err(error)
            }
        }
    }

    /// Runs the function (again, after a transient transaction error) and records it applied,
    /// or with `defer` (and no transaction) returns the `applied` record to write.
    #[allow(clippy::too_many_arguments)]
    async fn run_attempt(
        &self,
        store: &VersionStore,
        lease: &Lease,
        entry: &PlanEntry,
        key: &str,
        attempt: i64,
        defer: bool,
        late: Option<Arc<LateStart>>,
    ) -> Result<Option<AppliedWrite>> {
        let migration = entry.migration;
        let id = entry.id.as_str();
        let fence = lease.fence();
        // Between the check that found it pending and the start record, this process may have
        // been paused past its lease: make sure it still holds the lock before running anything.
        // Checked locally, from when the last renewal was sent: no command.
        lease.ensure_held(Some(id))?;
        let limit = migration.timeout().or(self.migration_timeout);
        let deadline = limit.map(|limit| Instant::now() + limit);
        let mut retry = TransactionRetry::new(self.transaction_retry_limit);
        tracing::info!(attempt, transaction = migration.transaction(), "applying");
        loop {
            let started = Instant::now();
            let started_at = mongodb::bson::DateTime::now();
            let mut context = MigrationContext::for_migration(
                self.database().clone(),
                &entry.id,
                self.progress_bars,
                migration.destructive(),
            );
            context.set_index_settings(
                self.large_collection(),
                self.effective_commit_quorum().await?,
            );
            context.set_checkpoint_target(crate::store::CheckpointTarget {
                store: store.clone(),
                key: key.to_owned(),
                fence,
                late: late.clone(),
            });
            if migration.transaction() {
                context.set_session(self.start_transaction(id).await?);
            }
            let run = migration.run(&mut context);
            let ended = match &late {
                None => run_guarded(lease, deadline, run).await,
                Some(late) => {
                    run_guarded(lease, deadline, Box::pin(starting_late(late, run))).await
                }
            };
            let mut session = context.take_session();
            let declared = context.take_declared();
            let duration_ms = crate::wire::millis_i64(started.elapsed());
            let error = match ended {
                Ended::Returned => {
                    // An announced migration whose `running` record was sent updates it; one
                    // that ended before is inserted whole.
                    let unrecorded = match &late {
                        Some(late) if late.tried() => {
                            late.ensure().await?;
                            None
                        }
                        Some(late) => Some(Unrecorded {
                            late: late.clone(),
                            started_at,
                        }),
                        None => None,
                    };
                    let write = AppliedWrite {
                        key: key.to_owned(),
                        fence,
                        duration_ms,
                        declared,
                        unrecorded,
                        next: None,
                    };
                    let Some(session) = session.as_mut() else {
                        if defer {
                            return Ok(Some(write));
                        }
                        return store.finish_applied(&write).await.map(|()| None);
                    };
                    match commit(store, session, &write, id, &retry).await {
                        Ok(()) => return Ok(None),
                        Err(e) => e,
                    }
                }
                Ended::LeaseLost(reason) => {
                    // The function was stopped where it was; its transaction (if any) is aborted.
                    abort(session.as_mut()).await;
                    tracing::error!(%reason, "lost the migration lock; stopping");
                    return Err(lease.lost_error(Some(id), reason));
                }
                Ended::TimedOut => {
                    abort(session.as_mut()).await;
                    return Err(Error::MigrationTimedOut {
                        id: entry.id.clone(),
                        description: migration.description().to_owned(),
                        attempt,
                        limit: limit.unwrap_or_default(),
                        applied_before: Vec::new(),
                    });
                }
                Ended::Failed {
                    message,
                    cause,
                    transient,
                } => {
                    abort(session.as_mut()).await;
                    let past = session
                        .is_some()
                        .then(|| past_transaction_lifetime(started.elapsed(), &message))
                        .flatten();
                    if past.is_none()
                        && transient
                        && session.is_some()
                        && retry.again(&message).await
                    {
                        continue;
                    }
                    return Err(Error::MigrationFailed {
                        id: entry.id.clone(),
                        description: migration.description().to_owned(),
                        attempt,
                        message: past.unwrap_or(message),
                        source: cause.map(Box::new),
                        applied_before: Vec::new(),
                    });
                }
            };
            // The commit step failed: a transient error runs the whole transaction again,
            // unless the transaction outlived the server's limit (a second run would too).
            if session.is_some()
                && let Some(message) =
                    past_transaction_lifetime(started.elapsed(), &error.to_string())
            {
                return Err(Error::MigrationFailed {
                    id: entry.id.clone(),
                    description: migration.description().to_owned(),
                    attempt,
                    message,
                    source: Some(Box::new(Cause::of(&error))),
                    applied_before: Vec::new(),
                });
            }
            if session.is_some()
                && has_label(&error, TRANSIENT_TRANSACTION_ERROR)
                && retry.again(&error.to_string()).await
            {
                continue;
            }
            return Err(error);
        }
    }

    async fn start_transaction(&self, id: &str) -> Result<ClientSession> {
        start_majority_transaction(self.database().client())
            .await
            .map_err(|(step, e)| Error::database(step.doing(), Some(id), e))
    }
}

/// Records that the migration of `write` failed with `error` (its whole text, scrubbed), by
/// the holder of its fence: a record that a newer holder owns is left alone. An announced
/// migration gets its `running` record first. A failure to record it is logged; the caller
/// returns the original error.
/// What recording a failed migration needs: its record's key and fence, how long it ran, and,
/// for an announced migration, its late start (its `running` record is written first).
pub(crate) struct Failure<'a> {
    pub key: &'a str,
    pub fence: i64,
    pub duration_ms: i64,
    pub late: Option<&'a LateStart>,
}

impl<'a> From<&'a AppliedWrite> for Failure<'a> {
    /// A migration whose `applied` record could not be written.
    fn from(write: &'a AppliedWrite) -> Self {
        Failure {
            key: &write.key,
            fence: write.fence,
            duration_ms: write.duration_ms,
            late: write.unrecorded.as_ref().map(|u| &*u.late),
        }
    }
}

pub(crate) async fn record_failure(store: &VersionStore, failed: Failure<'_>, error: &Error) {
    let Failure {
        key,
        fence,
        duration_ms,
        late,
    } = failed;
    let text = match error {
        Error::LockLost { reason, .. } => format!("interrupted: {reason}"),
        Error::MigrationFailed { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let text = crate::redact::scrub(&text);
    tracing::error!(duration_ms, error = %text, "failed");
    if let Some(late) = late
        && let Err(e) = late.ensure().await
    {
        tracing::warn!(error = %e, "the failure could not be recorded");
        return;
    }
    if let Err(e) = store.finish_failed(key, fence, duration_ms, &text).await {
        tracing::warn!(error = %e, "the failure could not be recorded");
    }
}

/// Records the migration applied inside its own transaction (fenced by its record) and commits:
/// its writes and its record land together or not at all. A commit whose outcome is unknown is
/// committed again, as MongoDB's drivers document (committing is idempotent).
async fn commit(
    store: &VersionStore,
    session: &mut ClientSession,
    write: &AppliedWrite,
    id: &str,
    retry: &TransactionRetry,
) -> Result<()> {
    if let Err(e) = store.finish_applied_in(session, write).await {
        abort(Some(session)).await;
        return Err(e);
    }
    let mut pause = Duration::from_millis(50);
    loop {
        match session.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && retry.has_time() => {
                tracing::warn!(error = %Cause::of(&e).joined(), "the commit's outcome is unknown; committing again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                abort(Some(session)).await;
                return Err(Error::database("committing the transaction", Some(id), e));
            }
        }
    }
}

/// Aborts the transaction, if any; fails harmlessly when the server already ended it.
async fn abort(session: Option<&mut ClientSession>) {
    if let Some(session) = session {
        let _ = session.abort_transaction().await;
    }
}

/// MongoDB's default `transactionLifetimeLimitSeconds`: the server aborts a transaction open
/// longer (<https://www.mongodb.com/docs/manual/reference/parameters/#mongodb-parameter-param.transactionLifetimeLimitSeconds>).
pub(crate) const TRANSACTION_LIFETIME: Duration = Duration::from_secs(60);

/// When a transaction that ran `ran` failed with `error`: if it outlived MongoDB's default
/// transaction lifetime, the server aborted it for that (it then answers NoSuchTransaction or
/// TransactionExceededLifetimeLimitSeconds), and running it again would meet the same limit:
/// the message that says so and what to do. `None` for a shorter transaction.
pub(crate) fn past_transaction_lifetime(ran: Duration, error: &str) -> Option<String> {
    (ran >= TRANSACTION_LIFETIME).then(|| {
        format!(
            "its transaction ran {:.0} s, past MongoDB's transactionLifetimeLimitSeconds (60 s by default), after which the server aborts a transaction; running it again would meet the same limit, so it was not. Split the work: walk the documents with ctx.batches in a migration without `transaction` (each batch commits with its checkpoint), or into several migrations. The server said: {error}",
            ran.as_secs_f64()
        )
    })
}

/// How long a transaction is tried again after transient errors, with back-off.
///
/// MongoDB aborts a transaction that stays open longer than `transactionLifetimeLimitSeconds`
/// (60 s by default): one left open by a killed process blocks the same documents until then
/// (<https://www.mongodb.com/docs/manual/reference/parameters/#mongodb-parameter-param.transactionLifetimeLimitSeconds>).
/// Retrying for a little longer than that gets past it; the driver documentation's
/// `with_transaction` retries for 120 s.
pub(crate) struct TransactionRetry {
    started: Instant,
    limit: Duration,
    pause: Duration,
    retries: u32,
}

impl TransactionRetry {
    pub(crate) fn new(limit: Duration) -> Self {
        TransactionRetry {
            started: Instant::now(),
            limit,
            pause: Duration::from_millis(20),
            retries: 0,
        }
    }

    fn has_time(&self) -> bool {
        self.started.elapsed() < self.limit
    }

    /// Pauses and returns true when there is time for another try.
    async fn again(&mut self, why: &str) -> bool {
        if !self.has_time() {
            return false;
        }
        self.retries += 1;
        tracing::warn!(
            retry = self.retries,
            waited_secs = self.started.elapsed().as_secs(),
            error = %crate::redact::scrub(why),
            "the transaction hit a transient error (a conflict, perhaps with a transaction left open by a killed process); running it again"
        );
        tokio::time::sleep(self.pause.mul_f64(0.5 + fastrand::f64())).await;
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        true
    }
}

/// How a migration's function (or its rollback) ended when run under the lease.
pub(crate) enum Ended {
    /// It returned `Ok`.
    Returned,
    /// It returned an error or panicked.
    Failed {
        /// The whole chain, scrubbed, on one line.
        message: String,
        /// The chain, scrubbed.
        cause: Option<Cause>,
        /// Whether the error carries MongoDB's `TransientTransactionError` label.
        transient: bool,
    },
    /// It ran past its time limit and was stopped where it stood.
    TimedOut,
    /// The lease was lost first; the function was dropped where it stood.
    LeaseLost(String),
}

/// Runs a migration's (or rollback's) future to its end, catching a panic, unless the lease is
/// lost or the deadline passes first.
pub(crate) async fn run_guarded(
    lease: &Lease,
    deadline: Option<Instant>,
    run: MigrationFuture<'_>,
) -> Ended {
    let timeout = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        outcome = AssertUnwindSafe(run).catch_unwind() => match outcome {
            Ok(Ok(())) => Ended::Returned,
            Ok(Err(error)) => failed(error),
            Err(panic) => {
                let message = format!(
                    "panicked: {}",
                    crate::redact::panic_text(&*panic)
                        .unwrap_or_else(|| "a panic without a message".to_owned())
                );
                let cause = Cause::text(&message);
                Ended::Failed { message: cause.joined(), cause: Some(cause), transient: false }
            }
        },
        reason = lease.lost() => Ended::LeaseLost(reason),
        () = timeout => Ended::TimedOut,
    }
}

/// An announced migration's future, which writes its `running` record once it has run for
/// [`LATE_START`]. A write cut off when the migration ends is settled by the caller
/// ([`LateStart::tried`]).
async fn starting_late(
    late: &LateStart,
    run: MigrationFuture<'_>,
) -> std::result::Result<(), BoxError> {
    let start = async {
        tokio::time::sleep(LATE_START).await;
        if let Err(e) = late.ensure().await {
            // The end of the migration writes it again and fails the same way, or its record.
            tracing::warn!(error = %e, "the running record could not be written");
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        outcome = run => outcome,
        () = start => unreachable!("the late start never ends"),
    }
}

fn failed(error: BoxError) -> Ended {
    let transient = has_label(&*error, TRANSIENT_TRANSACTION_ERROR);
    let cause = Cause::of(&*error);
    Ended::Failed {
        message: cause.joined(),
        cause: Some(cause),
        transient,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_past_the_servers_lifetime_is_not_run_again() {
        assert_eq!(
            past_transaction_lifetime(Duration::from_secs(59), "code 251 (NoSuchTransaction)"),
            None
        );
        let message =
            past_transaction_lifetime(Duration::from_secs(61), "code 251 (NoSuchTransaction)")
                .unwrap();
        assert!(message.contains("ran 61 s"), "{message}");
        assert!(
            message.contains("transactionLifetimeLimitSeconds"),
            "{message}"
        );
        assert!(message.contains("ctx.batches"), "{message}");
        assert!(message.contains("NoSuchTransaction"), "{message}");
    }
}
