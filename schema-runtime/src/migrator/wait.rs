//! The one wait for the lock, used by `apply_all`/`up`, `down`, `baseline` and `redo`: take the
//! lease, or wait for the process that holds it (bounded by `max_wait`, jittered back-off),
//! re-reading the records each time so that a waiter can stop as soon as the work it waits for
//! is done, and so that the fence floor stays current.

use std::time::{Duration, Instant};

use super::Migrator;
use crate::error::Result;
use crate::lock::{Backoff, Lease};
use crate::store::{MigrationRecord, highest_fence};

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
        mut floor: i64,
        mut finished: impl FnMut(Vec<MigrationRecord>) -> Result<Option<T>>,
    ) -> Result<Acquired<T>> {
        let lock = self.lock();
        let store = self.store();
        let waiting = Instant::now();
        let mut backoff = Backoff::new();
        loop {
            if let Some(lease) = lock.try_acquire(floor).await? {
                return Ok(Acquired::Lease(lease, waiting.elapsed()));
            }
            if waiting.elapsed() >= self.max_wait {
                return Err(lock.timeout_error(waiting.elapsed()).await);
            }
            tracing::debug!("the migration lock is held by another process; waiting");
            backoff.pause().await;
            let records = store.load().await?;
            floor = floor.max(highest_fence(&records));
            if let Some(done) = finished(records)? {
                return Ok(Acquired::Finished(done, waiting.elapsed()));
            }
        }
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
