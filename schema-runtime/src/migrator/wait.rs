//! The one wait for the lock, used by `apply_all`/`up`, `down`, `baseline` and `redo`: take the
//! lease, or wait for the process that holds it (bounded by `max_wait`), re-reading the records
//! each time so that a waiter can stop as soon as the work it waits for is done, and so that the
//! fence floor stays current.
//!
//! Where the deployment has change streams (a replica set, a sharded cluster), a waiter watches
//! the lease document and wakes as soon as it changes, so it returns right after the holder
//! releases, with one waiting read a second on MongoDB (a server that answers such reads early
//! is paced: see `LockChanges`). Elsewhere (a standalone server) it sleeps a jittered back-off
//! of 50 ms doubling to 2 s.

use std::time::{Duration, Instant};

use super::Migrator;
use crate::error::{Error, Result};
use crate::lock::{Backoff, Lease};
use crate::store::{MigrationRecord, RecordState, highest_fence};

/// How long one read of the lock's change stream waits on the server for a change.
const CHANGE_WAIT: Duration = Duration::from_secs(1);

/// How a wait for the lock ended.
pub(crate) enum Acquired<T> {
    /// This process holds the lease; it waited this long for it.
    Lease(Lease, Duration),
    /// Another process did the work meanwhile: what `finished` made of the records.
    Finished(T, Duration),
}

impl Migrator {
    /// Takes the lock, waiting for another holder. `floor` is the highest fence in the records
    /// already read; after each pause the records are read again and given to `finished`, which
    /// ends the wait when it returns `Some`.
    pub(crate) async fn wait_for_lock<T>(
        &self,
        floor: i64,
        mut finished: impl FnMut(Vec<MigrationRecord>) -> Result<Option<T>>,
    ) -> Result<Acquired<T>> {
        // The feed of the lock's changes, closed (its cursor killed) before the wait returns.
        let mut changes = None;
        let waited = self.wait_with(&mut changes, floor, &mut finished).await;
        if let Some(feed) = changes {
            feed.close().await;
        }
        waited
    }

    async fn wait_with<T>(
        &self,
        changes: &mut Option<crate::lock::LockChanges>,
        mut floor: i64,
        finished: &mut impl FnMut(Vec<MigrationRecord>) -> Result<Option<T>>,
    ) -> Result<Acquired<T>> {
        let lock = self.lock();
        let store = self.store();
        let waiting = Instant::now();
        let mut backoff = Backoff::new();
        let mut first = true;
        loop {
            if let Some(lease) = lock.try_acquire(floor).await? {
                return Ok(Acquired::Lease(lease, waiting.elapsed()));
            }
            if waiting.elapsed() >= self.max_wait {
                return Err(self.lock_timeout(waiting.elapsed()).await);
            }
            let mut pause = true;
            if first {
                // Held: from now on, wake on the lock's changes where the deployment has them.
                first = false;
                // A standalone server has no change streams (they need a replica set or a
                // sharded cluster: https://www.mongodb.com/docs/manual/changeStreams/#availability;
                // it answers 40573): none is opened there.
                let deployment = self.deployment().await?;
                if deployment.supports_change_streams() {
                    *changes = lock.changes(deployment, CHANGE_WAIT).await;
                }
                // What happened between the try and the feed's opening is not on the feed: the
                // release (the next try sees it), or the work this wait is for, done while the
                // holder keeps the lock (its hand-off of background migrations): the records
                // read next see it. So no pause before them.
                pause = changes.is_none();
            }
            if pause {
                tracing::debug!("the migration lock is held by another process; waiting");
                match changes.as_mut() {
                    // With a feed, the pause only matters when the holder dies without releasing
                    // (its lease then expires without any change to see): look every 2 s.
                    Some(feed) => {
                        if let Err(e) = feed.changed_within(Duration::from_secs(2)).await {
                            tracing::debug!(error = %crate::error::Cause::of(&e).joined(), "the lock's change stream ended; waiting with back-off");
                            if let Some(feed) = changes.take() {
                                feed.close().await;
                            }
                        }
                    }
                    None => backoff.pause().await,
                }
            }
            let records = store.load().await?;
            floor = floor.max(highest_fence(&records));
            if let Some(done) = finished(records)? {
                return Ok(Acquired::Finished(done, waiting.elapsed()));
            }
        }
    }

    /// The error for a process that waited `waited` for the lock: it names the holder (host,
    /// pid, last renewal) and the migration it is running, with its start time.
    async fn lock_timeout(&self, waited: Duration) -> Error {
        let holder = match self.lock().state().await {
            Ok(state) if state.held => {
                let mut text = format!("it is held by {}", state.describe());
                if let Some(running) = self.running_under(state.fence()).await {
                    text.push_str(&format!(", which is running {running}"));
                }
                text
            }
            Ok(_) => "it was just released".to_owned(),
            Err(e) => format!("its holder could not be read: {e}"),
        };
        Error::LockTimeout { waited, holder }
    }

    /// The migration the holder of `fence` is running, with its start time: its `running`
    /// record, or the one the records' reading makes of its announcement (see `store`).
    async fn running_under(&self, fence: Option<i64>) -> Option<String> {
        let record = self
            .store()
            .load()
            .await
            .ok()?
            .into_iter()
            .filter(|r| r.state == RecordState::Running && (fence.is_none() || r.fence == fence))
            .max_by_key(|r| r.started_at)?;
        let mut text = format!("migration {}", record.key);
        if let Some(description) = &record.description {
            text.push_str(&format!(" ({description})"));
        }
        if let Some(started) = record.started_at {
            text.push_str(&format!(" since {}", crate::wire::show_date(started)));
        }
        Some(text)
    }

    /// Takes the lock for an operator command (`down`, `baseline`, `redo`), waiting as long as
    /// it takes (up to `max_wait`).
    pub(crate) async fn lock_for_command(&self) -> Result<Lease> {
        let floor = highest_fence(&self.store().load().await?);
        match self.wait_for_lock(floor, |_| Ok(None::<()>)).await? {
            Acquired::Lease(lease, _) => Ok(lease),
            Acquired::Finished((), _) => unreachable!("an operator command waits for the lease"),
        }
    }
}
