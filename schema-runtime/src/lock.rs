//! The migration lock: a lease kept in MongoDB, so that of many processes starting at once only
//! one applies migrations.
//!
//! The lease is one document in `<versions collection>_lock`:
//!
//! ```text
//! { _id: "migrations", owner: "api-7f9c:4242:1c9e...", fence: 7,
//!   acquired_at: Date, expires_at: Date, host: "api-7f9c", pid: 4242 }
//! ```
//!
//! - Taken atomically with one `findAndModify` that matches only a free or expired lease, with
//!   `upsert`: a held lease makes the upsert collide on `_id`, which is how "held" is told.
//! - Expiry is computed and compared with the server's clock (`$$NOW`), never the client's, so
//!   clock skew between hosts does not matter. Comparisons go through `$toLong`.
//! - Renewed in the background every third of the lease while migrations run.
//! - `fence` grows by one with every acquisition. Records are written only with the holder's
//!   fence (see [`store`](crate::store)), so a holder that was paused past its lease and resumes
//!   cannot record anything.
//! - Released (`owner: null`) when the run ends, on success, error or panic. A holder that died
//!   leaves a lease that expires by itself; the next process takes it over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use mongodb::options::{CollectionOptions, ReadConcern, ReturnDocument, WriteConcern};
use mongodb::{Collection, Database};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// The `_id` of the lease document.
pub const LOCK_ID: &str = "migrations";

const DUPLICATE_KEY: i32 = 11000;

/// The name of the lock collection that goes with a versions collection.
pub fn lock_collection_name(versions: &str) -> String {
    format!("{versions}_lock")
}

/// `$expr` that is true while the lease document's `expires_at` is after the server's now.
fn unexpired() -> Document {
    doc! { "$gt": [ { "$toLong": "$expires_at" }, { "$toLong": "$$NOW" } ] }
}

/// Who holds the lock, as the lease document says.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    /// `host:pid:random` of the holder.
    pub owner: String,
    /// The holder's fencing number.
    pub fence: i64,
    /// When the lease ends unless renewed (server clock).
    pub expires_at: Option<bson::DateTime>,
}

/// Jittered exponential back-off between tries of the lock: pauses of 50 ms doubling up to 2 s,
/// each scaled by a random factor in 0.5–1.5 so that processes started together spread out.
pub(crate) struct Backoff {
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff {
            delay: Duration::from_millis(50),
        }
    }

    pub(crate) async fn pause(&mut self) {
        tokio::time::sleep(self.delay.mul_f64(0.5 + fastrand::f64())).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(2));
    }
}

/// The lease lock of one versions collection.
#[derive(Debug, Clone)]
pub struct LeaseLock {
    collection: Collection<Document>,
    lease: Duration,
    owner: String,
}

impl LeaseLock {
    /// The lock that goes with versions collection `versions` in `database`.
    pub fn new(database: &Database, versions: &str, lease: Duration) -> Self {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(WriteConcern::majority())
            .build();
        LeaseLock {
            collection: database.collection_with_options(&lock_collection_name(versions), options),
            lease,
            owner: format!(
                "{}:{}:{:016x}",
                crate::store::host(),
                std::process::id(),
                fastrand::u64(..)
            ),
        }
    }

    /// This process's owner string.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Takes the lease if it is free or expired; `None` when another process holds it.
    pub async fn try_acquire(&self) -> Result<Option<Lease>> {
        let filter = doc! {
            "_id": LOCK_ID,
            "$or": [
                { "owner": Bson::Null },
                { "$expr": { "$not": [unexpired()] } },
            ],
        };
        let update = vec![doc! {
            "$set": {
                "owner": &self.owner,
                "fence": { "$add": [ { "$ifNull": ["$fence", 0] }, 1 ] },
                "acquired_at": "$$NOW",
                "expires_at": { "$add": ["$$NOW", self.lease_ms()] },
                "host": crate::store::host(),
                "pid": i64::from(std::process::id()),
            }
        }];
        let taken = self
            .collection
            .find_one_and_update(filter, update)
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        tracing::debug!(owner = %self.owner, outcome = ?taken, "tried to take the migration lock");
        let document = match taken {
            Ok(Some(document)) => document,
            // "Held", or no document returned — possibly while this very process holds it: a
            // retried write finds the lease already taken by its first try, and some servers
            // answer a matched-and-updated upsert without the document. Ask who holds it.
            Ok(None) => match self.mine().await? {
                Some(mine) => mine,
                None => return Ok(None),
            },
            Err(e) if is_duplicate_key(&e) => match self.mine().await? {
                Some(mine) => mine,
                None => return Ok(None),
            },
            Err(e) => {
                return Err(Error::database(
                    format!("taking the migration lock in {}", self.collection.name()),
                    None,
                    e,
                ));
            }
        };
        let fence = number(document.get("fence")).unwrap_or(0);
        tracing::info!(fence, owner = %self.owner, "took the migration lock");
        let (lost_tx, lost_rx) = watch::channel(None);
        let renewer = tokio::spawn(renew_until_lost(self.clone(), fence, Arc::new(lost_tx)));
        Ok(Some(Lease {
            lock: self.clone(),
            fence,
            lost: lost_rx,
            renewer,
        }))
    }

    async fn mine(&self) -> Result<Option<Document>> {
        self.collection
            .find_one(doc! { "_id": LOCK_ID, "owner": &self.owner })
            .await
            .map_err(|e| {
                Error::database(
                    format!("reading the migration lock in {}", self.collection.name()),
                    None,
                    e,
                )
            })
    }

    /// Who holds the lock now, if anyone does and the lease has not expired.
    pub async fn holder(&self) -> Result<Option<LockHolder>> {
        let found = self
            .collection
            .find_one(doc! { "_id": LOCK_ID, "owner": { "$ne": Bson::Null }, "$expr": unexpired() })
            .await
            .map_err(|e| Error::database("reading the migration lock", None, e))?;
        Ok(found.map(|d| LockHolder {
            owner: d.get_str("owner").unwrap_or_default().to_owned(),
            fence: number(d.get("fence")).unwrap_or(0),
            expires_at: d.get_datetime("expires_at").ok().copied(),
        }))
    }

    /// The error for a process that waited `waited` for the lock, naming the holder.
    pub(crate) async fn timeout_error(&self, waited: Duration) -> Error {
        let holder = match self.holder().await {
            Ok(Some(h)) => format!("it is held by {} (fence {})", h.owner, h.fence),
            Ok(None) => "it was just released".to_owned(),
            Err(e) => format!("its holder could not be read: {e}"),
        };
        Error::LockTimeout { waited, holder }
    }

    /// Releases the lock whoever holds it: for an operator who knows the holder is gone.
    pub async fn force_release(&self) -> Result<bool> {
        let result = self
            .collection
            .update_one(
                doc! { "_id": LOCK_ID, "owner": { "$ne": Bson::Null } },
                vec![doc! { "$set": { "owner": Bson::Null, "expires_at": "$$NOW", "released_at": "$$NOW" } }],
            )
            .await
            .map_err(|e| Error::database("releasing the migration lock by force", None, e))?;
        Ok(result.modified_count > 0)
    }

    async fn renew(&self, fence: i64) -> mongodb::error::Result<bool> {
        let renewed = self
            .collection
            .find_one_and_update(
                doc! { "_id": LOCK_ID, "owner": &self.owner, "fence": fence },
                vec![doc! { "$set": { "expires_at": { "$add": ["$$NOW", self.lease_ms()] } } }],
            )
            .projection(doc! { "fence": 1 })
            .await?;
        Ok(renewed.is_some())
    }
}

/// A held lease. Dropping it without [`Lease::release`] stops the renewals and lets it expire.
#[derive(Debug)]
pub struct Lease {
    lock: LeaseLock,
    fence: i64,
    lost: watch::Receiver<Option<String>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// The fencing number of this acquisition.
    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// Why the lease was lost, if it was.
    pub fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Resolves when the lease is lost (never, while renewals succeed).
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        loop {
            if let Some(reason) = lost.borrow_and_update().clone() {
                return reason;
            }
            if lost.changed().await.is_err() {
                // The renewer ended without a reason: only after release.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Checks with the server that this process still holds an unexpired lease.
    pub async fn verify(&self, migration: Option<&str>) -> Result<()> {
        if let Some(reason) = self.lost_reason() {
            return Err(self.lost_error(migration, reason));
        }
        let found = self
            .lock
            .collection
            .find_one(doc! {
                "_id": LOCK_ID,
                "owner": &self.lock.owner,
                "fence": self.fence,
                "$expr": unexpired(),
            })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(|e| Error::database("checking the migration lock", migration, e))?;
        match found {
            Some(_) => Ok(()),
            None => Err(self.lost_error(
                migration,
                "the lease expired or another process took it over".to_owned(),
            )),
        }
    }

    pub(crate) fn lost_error(&self, migration: Option<&str>, reason: String) -> Error {
        Error::LockLost {
            migration: migration.map(str::to_owned),
            fence: self.fence,
            reason,
        }
    }

    /// Writes to the lease document inside `session`'s transaction, so that the transaction
    /// conflicts with (and loses to) any process taking the lock over; false when it is not ours.
    pub(crate) async fn touch_in(
        &self,
        session: &mut mongodb::ClientSession,
    ) -> mongodb::error::Result<bool> {
        let mut filter = doc! { "_id": LOCK_ID, "owner": &self.lock.owner, "fence": self.fence };
        filter.insert("$expr", unexpired());
        let result = self
            .lock
            .collection
            .update_one(filter, vec![doc! { "$set": { "touched_at": "$$NOW" } }])
            .session(session)
            .await?;
        Ok(result.matched_count == 1)
    }

    /// Stops renewing and frees the lease (only if it is still ours).
    pub async fn release(self) -> Result<()> {
        self.renewer.abort();
        self.lock
            .collection
            .update_one(
                doc! { "_id": LOCK_ID, "owner": &self.lock.owner, "fence": self.fence },
                vec![doc! { "$set": { "owner": Bson::Null, "expires_at": "$$NOW", "released_at": "$$NOW" } }],
            )
            .await
            .map_err(|e| Error::database("releasing the migration lock", None, e))?;
        tracing::info!(fence = self.fence, "released the migration lock");
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew_until_lost(lock: LeaseLock, fence: i64, lost: Arc<watch::Sender<Option<String>>>) {
    let every = lock.lease / 3;
    let mut last_renewed = Instant::now();
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        match lock.renew(fence).await {
            Ok(true) => {
                last_renewed = Instant::now();
                wait = every;
            }
            Ok(false) => {
                let _ = lost.send(Some(format!(
                    "another process took the lock over after this one's lease (fence {fence}) expired"
                )));
                return;
            }
            Err(e) => {
                // A passing fault is retried; the lease is given up before it can expire unseen.
                let reason = format!(
                    "renewing the lock failed: {}",
                    crate::redact::scrub(&e.to_string())
                );
                tracing::warn!(fence, "{reason}");
                if last_renewed.elapsed() + every / 2 >= lock.lease {
                    let _ = lost.send(Some(reason));
                    return;
                }
                wait = every / 3;
            }
        }
    }
}

fn number(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}

pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        _ => error.to_string().contains("E11000"),
    }
}
