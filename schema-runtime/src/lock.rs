//! The migration lock: a lease kept in MongoDB, so that of many processes starting at once only
//! one applies migrations.
//!
//! The lease is one document in `<versions collection>_lock`:
//!
//! ```text
//! { _id: "migrations", owner: "api-7f9c:4242:1c9e...", fence: 7, acquired_at: Date,
//!   renewed_at: Date, expires_at: Date, host: "api-7f9c", pid: 4242 }
//! ```
//!
//! - Taken atomically with one `findAndModify` on `_id` alone, with `upsert`, whose update
//!   pipeline replaces the document only when the lease is free, expired or unreadable and
//!   leaves a held one as it was (MongoDB refuses `$expr` in an upsert's filter, so the decision
//!   is the pipeline's). The document it returns says who holds the lease.
//! - Expiry is computed and compared with the server's clock (`$$NOW`), never the client's, so
//!   clock skew between hosts does not matter.
//! - Renewed in the background every third of the lease. The lease is counted from when a
//!   renewal was *sent*, and each renewal has its own deadline: a sixth of the lease before the
//!   lease would end. A renewal that hangs or answers late can never make this process believe
//!   in a lease the server has already let go.
//! - `fence` grows with every acquisition and never goes back, whatever happens to the lease
//!   document: an acquisition takes one more than the larger of the document's fence and the
//!   highest fence in the records (its *floor*), so deleting the document, dropping its
//!   collection or restoring an old copy cannot restart it. Records are written only with the
//!   holder's fence (see [`store`](crate::store)), so a holder that was paused past its lease and
//!   resumes cannot record anything.
//! - A document that cannot be read (an `expires_at` that is not a date, or more than a day
//!   ahead; an `owner` that is not a string; a `fence` that is not a number) counts as free: the
//!   next acquisition overwrites it whole. `unlock --force` rewrites it too.
//! - Released (`owner: null`) when the run ends, on success, error or panic. A holder that died
//!   leaves a lease that expires by itself; the next process takes it over.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{CollectionOptions, ReadConcern, ReturnDocument};
use mongodb::{Collection, Database};
use schema_id::MigrationId;
use tokio::sync::watch;

use crate::error::driver::{is_duplicate_key, is_write_concern_error};
use crate::error::{Error, Result};
use crate::wire::{read_i64, show_date};

/// The `_id` of the lease document.
pub(crate) const LOCK_ID: &str = "migrations";

/// An `expires_at` further ahead than this is taken as corrupt, so that a bad document cannot
/// hold the lock for ever.
/// How many times `unlock --force` tries when the document keeps changing under it.
const FORCE_ATTEMPTS: u32 = 5;

const SANE_LEASE_MS: i64 = 24 * 3600 * 1000;

/// The owner written by `unlock --force` over a live holder, until that holder's lease ends.
const FORCED_OWNER_PREFIX: &str = "unlock --force";

/// The name of the lock collection that goes with a versions collection.
pub(crate) fn lock_collection_name(versions: &str) -> String {
    format!("{versions}_lock")
}

/// `expires_at` as milliseconds, 0 when it is missing or not a date.
fn expires_ms() -> Document {
    doc! { "$convert": { "input": "$expires_at", "to": "long", "onError": 0_i64, "onNull": 0_i64 } }
}

/// `$expr` that is true while the lease is held: its expiry is after the server's now and not
/// absurdly far ahead.
fn unexpired() -> Document {
    let now = doc! { "$toLong": "$$NOW" };
    doc! { "$and": [
        { "$gt": [expires_ms(), now.clone()] },
        { "$lte": [expires_ms(), { "$add": [now, SANE_LEASE_MS] }] },
    ] }
}

/// A filter that matches `document` as it was read, field by field with `$eq`: a corrupted
/// document's values (a sub-document whose keys start with `$`) are compared, never taken as
/// query operators.
fn exactly(document: &Document) -> Document {
    document
        .iter()
        .map(|(field, value)| (field.clone(), Bson::Document(doc! { "$eq": value.clone() })))
        .collect()
}

/// Who holds (or last held) the lock, as the lease document says.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    /// `host:pid:random` of the holder.
    pub owner: String,
    /// The holder's fencing number.
    pub fence: i64,
    /// When the lease ends unless renewed (server clock).
    pub expires_at: Option<mongodb::bson::DateTime>,
    /// When the holder last renewed it (server clock).
    pub renewed_at: Option<mongodb::bson::DateTime>,
    /// The holder's host.
    pub host: Option<String>,
    /// The holder's process id.
    pub pid: Option<i64>,
}

/// The lease document as read, with the server's clock.
#[derive(Debug, Clone)]
pub struct LockState {
    /// The raw document (`None` when there is none).
    pub document: Option<Document>,
    /// Whether a process holds an unexpired lease.
    pub held: bool,
    /// The server's clock when it was read.
    pub server_now: mongodb::bson::DateTime,
}

impl LockState {
    /// The holder, when the document names one (held or not).
    pub fn holder(&self) -> Option<LockHolder> {
        let d = self.document.as_ref()?;
        Some(LockHolder {
            owner: d.get_str("owner").ok()?.to_owned(),
            fence: read_i64(d.get("fence")).unwrap_or(0),
            expires_at: d.get_datetime("expires_at").ok().copied(),
            renewed_at: d
                .get_datetime("renewed_at")
                .or_else(|_| d.get_datetime("acquired_at"))
                .ok()
                .copied(),
            host: d.get_str("host").ok().map(str::to_owned),
            pid: read_i64(d.get("pid")),
        })
    }

    /// The fence the document holds, when it holds a readable one.
    pub fn fence(&self) -> Option<i64> {
        read_i64(self.document.as_ref()?.get("fence"))
    }

    /// What cannot be read in the document, field by field.
    pub fn problems(&self) -> Vec<String> {
        let Some(d) = &self.document else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        match d.get("owner") {
            None | Some(Bson::Null) | Some(Bson::String(_)) => {}
            Some(other) => problems.push(format!("owner is {other}, not a string")),
        }
        match d.get("fence") {
            None => {}
            Some(value) if read_i64(Some(value)).is_some() => {}
            Some(other) => problems.push(format!("fence is {other}, not a number")),
        }
        match d.get("expires_at") {
            None | Some(Bson::DateTime(_)) => {}
            Some(other) => problems.push(format!("expires_at is {other}, not a date")),
        }
        if let Ok(expires) = d.get_datetime("expires_at")
            && expires
                .timestamp_millis()
                .saturating_sub(self.server_now.timestamp_millis())
                > SANE_LEASE_MS
        {
            problems.push(format!(
                "expires_at is {}, more than a day ahead",
                show_date(*expires)
            ));
        }
        problems
    }

    /// One line for people: who holds it, since when, when it last renewed.
    pub fn describe(&self) -> String {
        let Some(holder) = self.holder() else {
            return match &self.document {
                None => "there is no lock document".to_owned(),
                Some(_) if !self.problems().is_empty() => format!(
                    "the lock document cannot be read ({})",
                    self.problems().join("; ")
                ),
                Some(_) => "nobody holds it".to_owned(),
            };
        };
        let ago = |at: Option<mongodb::bson::DateTime>| {
            at.map(|at| {
                let ms = self.server_now.timestamp_millis() - at.timestamp_millis();
                format!("{:.1} s ago", ms as f64 / 1000.0)
            })
        };
        let mut text = format!("{} (fence {}", holder.owner, holder.fence);
        if let (Some(host), Some(pid)) = (&holder.host, holder.pid) {
            text.push_str(&format!(", host {host}, pid {pid}"));
        }
        text.push(')');
        if let Some(renewed) = ago(holder.renewed_at) {
            text.push_str(&format!(", last renewed {renewed}"));
        }
        if !self.held {
            text.push_str(", lease expired");
        }
        let problems = self.problems();
        if !problems.is_empty() {
            text.push_str(&format!("; unreadable: {}", problems.join("; ")));
        }
        text
    }
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
        tokio::time::sleep(self.next_delay()).await;
    }

    /// The next pause, jittered, and the delay doubled for the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let pause = self.delay.mul_f64(0.5 + fastrand::f64());
        self.delay = (self.delay * 2).min(Duration::from_secs(2));
        pause
    }
}

/// Changes to the lease document, as a change stream delivers them.
///
/// On a replica set the stream is run with plain commands in a session of its own (`aggregate`
/// with `$changeStream`, then `getMore`, on the primary), so that [`LockChanges::close`] can
/// end its cursor with `killCursors` before the wait returns. The driver's own change stream
/// kills its cursor from a task it spawns when dropped; a process that exits right after
/// `apply_all` could end the runtime under that task, and the driver then panicked
/// (`connection_requester.rs`, `SendError`). Through `mongos`, where a cursor belongs to the
/// router that opened it and plain commands may reach another, the driver's stream is used.
pub(crate) struct LockChanges {
    feed: Feed,
    budget: ReadBudget,
}

enum Feed {
    Commands {
        database: Database,
        collection: String,
        session: Box<mongodb::ClientSession>,
        cursor: i64,
        max_await: Duration,
    },
    Driver(
        mongodb::change_stream::ChangeStream<
            mongodb::change_stream::event::ChangeStreamEvent<Document>,
        >,
    ),
}

impl LockChanges {
    /// Waits until the lease document changes (true) or `pause` has passed (false). An error
    /// ends the feed (`Err`): the caller falls back to back-off.
    ///
    /// Every read waits on the server (`maxAwaitTimeMS`, a change stream `getMore`'s
    /// `maxTimeMS`). MongoDB answers a change stream's `getMore` when an event matches or when
    /// that time is up (the wait is meant to last "till maxTimeMS if the batch is not full",
    /// SERVER-113459), so a waiter sends about one read a second there. A server that answers
    /// at every write to the database, matching or not (SecantusDB does), would make waiters
    /// read as fast as the holder writes: such early empty answers are paced by [`ReadBudget`].
    pub(crate) async fn changed_within(&mut self, pause: Duration) -> mongodb::error::Result<bool> {
        let until = Instant::now() + pause;
        loop {
            self.budget.take().await;
            if self.next_if_any().await? {
                return Ok(true);
            }
            if Instant::now() >= until {
                return Ok(false);
            }
        }
    }

    /// One read of the feed: whether it brought a change.
    async fn next_if_any(&mut self) -> mongodb::error::Result<bool> {
        match &mut self.feed {
            Feed::Driver(stream) => Ok(stream.next_if_any().await?.is_some()),
            Feed::Commands {
                database,
                collection,
                session,
                cursor,
                max_await,
            } => {
                // https://www.mongodb.com/docs/manual/reference/command/getMore/: on a change
                // stream (a tailable, awaitData cursor) `maxTimeMS` is how long it waits.
                let reply = database
                    .run_command(doc! {
                        "getMore": *cursor,
                        "collection": collection.as_str(),
                        "maxTimeMS": crate::wire::millis_i64(*max_await),
                    })
                    .selection_criteria(crate::wire::primary())
                    .session(&mut **session)
                    .await?;
                let batch = reply.get_document("cursor").ok();
                if let Some(id) = batch.and_then(|c| c.get_i64("id").ok()) {
                    *cursor = id;
                }
                Ok(batch
                    .and_then(|c| c.get_array("nextBatch").ok())
                    .is_some_and(|events| !events.is_empty()))
            }
        }
    }

    /// Ends the feed: its cursor is killed on the server now (`killCursors`, awaited, at most
    /// a second), not by a task left behind.
    pub(crate) async fn close(self) {
        if let Feed::Commands {
            database,
            collection,
            mut session,
            cursor,
            ..
        } = self.feed
            && cursor != 0
        {
            let kill = database
                .run_command(doc! { "killCursors": collection, "cursors": [cursor] })
                .selection_criteria(crate::wire::primary())
                .session(&mut *session);
            let _ = tokio::time::timeout(Duration::from_secs(1), kill).await;
        }
    }
}

/// The pace of a waiter's reads of the lock's change stream: at most one every `MIN_GAP`, and
/// a budget of `BURST` reads refilled at `RATE` a second. A read that waited on the server for
/// its whole `maxAwaitTimeMS` (MongoDB) refills more than it spends, so only early answers are
/// ever held back. A short burst of the holder's writes (a start-up applying a few migrations)
/// is followed closely, so a waiter sees the release within `MIN_GAP`; a long write-heavy
/// migration costs each waiter at most `RATE` reads a second after the first `BURST`.
struct ReadBudget {
    tokens: f64,
    last: Instant,
}

impl ReadBudget {
    const MIN_GAP: Duration = Duration::from_millis(40);
    const BURST: f64 = 16.0;
    const RATE: f64 = 8.0;

    fn new() -> Self {
        ReadBudget {
            tokens: Self::BURST,
            last: Instant::now() - Self::MIN_GAP,
        }
    }

    /// Waits until the next read may be sent, and spends one read.
    async fn take(&mut self) {
        let delay = self.delay_at(Instant::now());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.spend(Instant::now());
    }

    /// How long a read at `now` has to wait.
    fn delay_at(&self, now: Instant) -> Duration {
        let since = now.saturating_duration_since(self.last);
        let tokens = self.refilled(since);
        let gap = Self::MIN_GAP.saturating_sub(since);
        let refill = if tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / Self::RATE)
        };
        gap.max(refill)
    }

    fn refilled(&self, since: Duration) -> f64 {
        (self.tokens + since.as_secs_f64() * Self::RATE).min(Self::BURST)
    }

    fn spend(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.last);
        self.tokens = (self.refilled(since) - 1.0).max(0.0);
        self.last = now;
    }
}

/// What `unlock --force` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Unlocked {
    /// The holder it released, if a live or expired one was named.
    pub previous: Option<LockHolder>,
    /// Whether that holder's lease was still running (`--even-if-alive`): the lock then stays
    /// closed until that lease would have ended, so the old holder notices and stops first.
    pub was_alive: bool,
    /// What could not be read in the document it replaced.
    pub repaired: Vec<String>,
    /// The fence the document holds now (higher than any before).
    pub fence: i64,
}

/// The lease lock of one versions collection.
#[derive(Debug, Clone)]
pub(crate) struct LeaseLock {
    database: Database,
    collection: Collection<Document>,
    /// The bound of its majority writes (`wtimeout`) and of its reads (`maxTimeMS`).
    majority_timeout: Duration,
    lease: Duration,
    owner: String,
}

impl LeaseLock {
    /// The lock that goes with versions collection `versions` in `database`.
    /// Its majority writes are bounded by `majority_timeout`; it is read on the primary.
    pub(crate) fn new(
        database: &Database,
        versions: &str,
        lease: Duration,
        majority_timeout: Duration,
    ) -> Self {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(crate::wire::majority(majority_timeout))
            .selection_criteria(crate::wire::primary())
            .build();
        LeaseLock {
            majority_timeout,
            database: database.clone(),
            collection: database.collection_with_options(&lock_collection_name(versions), options),
            lease,
            owner: format!(
                "{}:{}:{:016x}",
                crate::wire::host(),
                std::process::id(),
                fastrand::u64(..)
            ),
        }
    }

    fn lease_ms(&self) -> i64 {
        crate::wire::millis_i64(self.lease)
    }

    /// The update pipeline of an acquisition. The filter of the upsert is `_id` alone: MongoDB
    /// refuses `$expr` in the query of an upsert (code 224 QueryFeatureNotAllowed, "$expr is
    /// not allowed in the query predicate for an upsert": mongodb/mongo
    /// `src/mongo/db/ops/parsed_update.cpp`, DOCS-14158; lifting it is the open SERVER-59704).
    /// So whether the lease may be taken is decided inside the pipeline, with the server's
    /// clock (`$$NOW`, available in update pipelines since 4.2): free (no string `owner`),
    /// unreadable, expired (or absurdly far ahead), or already this instance's (a write
    /// retried after its reply was lost finds the lease taken by its own first try and takes
    /// it again). Then the document is replaced whole by this holder's; otherwise it is kept
    /// as it was, which MongoDB treats as a no-op (no write, no oplog entry, so no change event
    /// wakes the waiters: `PipelineExecutor::applyUpdate` hands the result to
    /// `ObjectReplaceExecutor`, which reports a binary-equal document as a no-op). On a missing
    /// document the pipeline runs on `{ _id }` (the upsert's equality fields) and takes it.
    ///
    /// The new fence is one above both the document's (read leniently) and `floor`.
    fn acquisition(&self, floor: i64) -> Vec<Document> {
        let takeable = doc! { "$or": [
            { "$ne": [ { "$type": "$owner" }, "string" ] },
            { "$not": [unexpired()] },
            { "$eq": [ "$owner", &self.owner ] },
        ] };
        let readable_fence = doc! {
            "$convert": { "input": "$fence", "to": "long", "onError": 0_i64, "onNull": 0_i64 }
        };
        let taken = doc! {
            "_id": LOCK_ID,
            "owner": &self.owner,
            "fence": { "$add": [ { "$max": [readable_fence, floor.clamp(0, i64::MAX - 1)] }, 1_i64 ] },
            "acquired_at": "$$NOW",
            "renewed_at": "$$NOW",
            "expires_at": { "$add": ["$$NOW", self.lease_ms()] },
            "host": crate::wire::host(),
            "pid": crate::wire::pid(),
        };
        vec![doc! { "$replaceWith": { "$cond": [takeable, taken, "$$ROOT"] } }]
    }

    /// Takes the lease if it is free, expired or unreadable; `None` when another process holds
    /// it. The new fence is above both the document's and `floor` (the highest fence in the
    /// records).
    pub(crate) async fn try_acquire(&self, floor: i64) -> Result<Option<Lease>> {
        let sent = Instant::now();
        let taken = self
            .collection
            .find_one_and_update(doc! { "_id": LOCK_ID }, self.acquisition(floor))
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        let document = match taken {
            Ok(Some(document)) if document.get_str("owner").ok() == Some(self.owner.as_str()) => {
                document
            }
            // Held by another process: the update left its document as it was.
            Ok(Some(_)) => return Ok(None),
            // No document returned: some servers answer a matched-and-updated upsert without
            // it. Ask whether this process holds it now.
            Ok(None) => match self.mine().await? {
                Some(mine) => mine,
                None => return Ok(None),
            },
            // Two processes upserted the missing document at once and the other one's insert
            // won (MongoDB retries such an upsert itself since 4.2; a server that does not
            // reports the collision): the other process holds it.
            Err(e) if is_duplicate_key(&e) => return Ok(None),
            Err(e) => {
                if is_write_concern_error(&e) {
                    // The primary applied the acquisition but a majority did not confirm it:
                    // let go of it, so that the next start-up does not wait out the lease.
                    self.let_go().await;
                }
                return Err(Error::database(
                    format!("taking the migration lock in {}", self.collection.name()),
                    None,
                    e,
                ));
            }
        };

        let fence = read_i64(document.get("fence")).unwrap_or(0);
        tracing::info!(fence, owner = %self.owner, "took the migration lock");
        let (lost_tx, lost_rx) = watch::channel(None);
        let valid_from = Arc::new(Mutex::new(sent));
        let renewer = tokio::spawn(renew_until_lost(
            self.clone(),
            fence,
            valid_from.clone(),
            Arc::new(lost_tx),
        ));
        Ok(Some(Lease {
            lock: self.clone(),
            fence,
            lost: lost_rx,
            valid_from,
            renewer,
        }))
    }

    /// A feed of the changes to the lease document, where the deployment has change streams (a
    /// replica set or a sharded cluster: `deployment`); `None` where the user may not open one.
    /// A waiter wakes on it as soon as the lock is released, instead of sleeping out its
    /// back-off; each idle read waits on the server for up to `max_await`.
    pub(crate) async fn changes(
        &self,
        deployment: crate::deployment::Deployment,
        max_await: Duration,
    ) -> Option<LockChanges> {
        let opened = match deployment {
            crate::deployment::Deployment::Sharded => self
                .collection
                .watch()
                .pipeline([doc! { "$match": { "documentKey._id": LOCK_ID } }])
                .max_await_time(max_await)
                .await
                .map(Feed::Driver),
            _ => self.open_with_commands(max_await).await,
        };
        match opened {
            Ok(feed) => Some(LockChanges {
                feed,
                budget: ReadBudget::new(),
            }),
            Err(e) => {
                tracing::debug!(error = %crate::error::Cause::of(&e).joined(), "no change stream on the lock; waiting with back-off");
                None
            }
        }
    }

    /// Opens the change stream with an `aggregate` in a session of the feed's own
    /// (<https://www.mongodb.com/docs/manual/reference/operator/aggregation/changeStream/>): its
    /// `getMore`s must come from the same session.
    async fn open_with_commands(&self, max_await: Duration) -> mongodb::error::Result<Feed> {
        let database = self.database.clone();
        let collection = self.collection.name().to_owned();
        let mut session = database.client().start_session().await?;
        let reply = database
            .run_command(doc! {
                "aggregate": &collection,
                "pipeline": [
                    { "$changeStream": {} },
                    { "$match": { "documentKey._id": LOCK_ID } },
                ],
                "cursor": {},
            })
            .selection_criteria(crate::wire::primary())
            .session(&mut session)
            .await?;
        let cursor = reply
            .get_document("cursor")
            .ok()
            .and_then(|c| c.get_i64("id").ok())
            .unwrap_or(0);
        Ok(Feed::Commands {
            database,
            collection,
            session: Box::new(session),
            cursor,
            max_await,
        })
    }

    /// Frees the lease if this instance holds it, best effort (after an acquisition whose
    /// outcome is unknown).
    async fn let_go(&self) {
        let freed = self
            .collection
            .update_one(
                doc! { "_id": LOCK_ID, "owner": &self.owner },
                vec![doc! { "$set": { "owner": Bson::Null, "expires_at": "$$NOW", "released_at": "$$NOW" } }],
            )
            .await;
        if let Err(e) = freed {
            tracing::debug!(error = %crate::error::Cause::of(&e).joined(), "could not free the lock after a failed acquisition");
        }
    }

    async fn mine(&self) -> Result<Option<Document>> {
        self.collection
            .find_one(doc! { "_id": LOCK_ID, "owner": &self.owner })
            .max_time(self.majority_timeout)
            .await
            .map_err(|e| {
                Error::database(
                    format!("reading the migration lock in {}", self.collection.name()),
                    None,
                    e,
                )
            })
    }

    /// The lease document and whether it is held, with the server's clock (one `aggregate`).
    pub(crate) async fn state(&self) -> Result<LockState> {
        let failed = |e| {
            Error::database(
                format!("reading the migration lock in {}", self.collection.name()),
                None,
                e,
            )
        };
        // `$documents` would answer without a document too, but needs MongoDB 5.1; reading
        // the server's clock needs no document, so it comes from a second stage.
        let pipeline = vec![
            doc! { "$match": { "_id": LOCK_ID } },
            doc! { "$replaceWith": { "document": "$$ROOT", "now": "$$NOW",
            "held": { "$and": [ { "$eq": [ { "$type": "$owner" }, "string" ] }, unexpired() ] } } },
        ];
        let found: Vec<Document> = self
            .collection
            .aggregate(pipeline)
            .max_time(self.majority_timeout)
            .await
            .map_err(failed)?
            .try_collect()
            .await
            .map_err(failed)?;
        Ok(match found.first() {
            Some(d) => LockState {
                document: d.get_document("document").ok().cloned(),
                held: d.get_bool("held").unwrap_or(false),
                server_now: d
                    .get_datetime("now")
                    .ok()
                    .copied()
                    .unwrap_or_else(mongodb::bson::DateTime::now),
            },
            None => LockState {
                document: None,
                held: false,
                server_now: mongodb::bson::DateTime::now(),
            },
        })
    }

    /// `unlock --force`: rewrites the lease document whole, with a fence above every fence
    /// before it (the document's and `floor`), so that the former holder can record nothing.
    ///
    /// A holder whose lease is still running is refused ([`Error::LockHeldByLiveProcess`])
    /// unless `even_if_alive`; then the lock stays closed until that lease would have ended, so
    /// the old holder, at its next renewal, finds the lock gone and stops its migration before
    /// any other process can start one.
    pub(crate) async fn force_release(&self, floor: i64, even_if_alive: bool) -> Result<Unlocked> {
        for _ in 0..FORCE_ATTEMPTS {
            let state = self.state().await?;
            if state.held && !even_if_alive {
                return Err(Error::LockHeldByLiveProcess {
                    holder: state.describe(),
                });
            }
            let fence = state
                .fence()
                .unwrap_or(0)
                .max(floor)
                .saturating_add(1)
                .max(1);
            let by = format!(
                "{FORCED_OWNER_PREFIX} by {}:{}",
                crate::wire::host(),
                std::process::id()
            );
            let previous = state.holder();
            let mut replacement = doc! {
                "_id": LOCK_ID,
                "fence": fence,
                "released_at": mongodb::bson::DateTime::now(),
                "released_by": &by,
            };
            if state.held {
                let expires = state
                    .document
                    .as_ref()
                    .and_then(|d| d.get_datetime("expires_at").ok().copied())
                    .unwrap_or(state.server_now);
                let was = previous.as_ref().map_or("?", |h| h.owner.as_str());
                replacement.insert("owner", format!("{by} (was {was})"));
                replacement.insert("expires_at", expires);
            } else {
                replacement.insert("owner", Bson::Null);
                replacement.insert("expires_at", mongodb::bson::DateTime::from_millis(0));
            }
            let written = match &state.document {
                // Only over the document that was read: a holder that took it meanwhile wins.
                Some(read) => self
                    .collection
                    .replace_one(exactly(read), replacement)
                    .await
                    .map(|r| r.matched_count == 1),
                None => match self.collection.insert_one(replacement).await {
                    Ok(_) => Ok(true),
                    Err(e) if is_duplicate_key(&e) => Ok(false),
                    Err(e) => Err(e),
                },
            }
            .map_err(|e| Error::database("releasing the migration lock by force", None, e))?;
            if written {
                tracing::warn!(fence, previous = ?previous, "the migration lock was released by force");
                return Ok(Unlocked {
                    previous,
                    was_alive: state.held,
                    repaired: state.problems(),
                    fence,
                });
            }
        }
        Err(Error::LockChanging {
            attempts: FORCE_ATTEMPTS,
        })
    }

    async fn renew(&self, fence: i64) -> mongodb::error::Result<bool> {
        let renewed = self
            .collection
            .find_one_and_update(
                doc! { "_id": LOCK_ID, "owner": &self.owner, "fence": fence },
                vec![doc! { "$set": {
                    "expires_at": { "$add": ["$$NOW", self.lease_ms()] },
                    "renewed_at": "$$NOW",
                } }],
            )
            .projection(doc! { "fence": 1 })
            .await?;
        Ok(renewed.is_some())
    }

    /// Why this process's lease (fence `fence`) is no longer its own, from the document.
    async fn explain_loss(&self, fence: i64) -> String {
        let state = match self.state().await {
            Ok(state) => state,
            Err(e) => return format!("its lease is gone and the lock cannot be read: {e}"),
        };
        let Some(document) = &state.document else {
            return format!(
                "the lock document was deleted (or its collection dropped) while this process held it with fence {fence}"
            );
        };
        let now_fence = state.fence();
        match document.get("owner") {
            Some(Bson::String(owner)) if owner.starts_with(FORCED_OWNER_PREFIX) => format!(
                "an operator released the lock with `{owner}`; the fence is now {}",
                now_fence.unwrap_or(0)
            ),
            Some(Bson::String(owner)) if owner != &self.owner => format!(
                "its lease (fence {fence}) expired and {} took the lock over",
                state.describe()
            ),
            Some(Bson::String(_)) => format!(
                "the lock document was changed under it (its fence is now {})",
                now_fence.map_or("unreadable".to_owned(), |f| f.to_string())
            ),
            _ => format!(
                "the lock was released or overwritten by someone else while this process held it ({})",
                state.describe()
            ),
        }
    }
}

/// A held lease. Dropping it without [`Lease::release`] stops the renewals and lets it expire.
#[derive(Debug)]
pub(crate) struct Lease {
    lock: LeaseLock,
    fence: i64,
    lost: watch::Receiver<Option<String>>,
    /// When the last successful acquisition or renewal was sent: the lease runs from then.
    valid_from: Arc<Mutex<Instant>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Notes on the lock document that its holder now applies `ids` in the background, as
    /// `background`: processes that wait on the document's changes wake at once and return
    /// (start-up needs nothing more), and `unlock` and the lock's state show what it does.
    /// Best effort: a waiter that misses it finds out at its next look (within 2 s).
    pub(crate) async fn announce_background(&self, ids: &[String]) {
        let written = self
            .lock
            .collection
            .update_one(
                doc! { "_id": LOCK_ID, "owner": &self.lock.owner, "fence": self.fence },
                doc! { "$set": { "background": ids } },
            )
            .await;
        if let Err(e) = written {
            tracing::debug!(error = %crate::error::Cause::of(&e).joined(), "could not note the background migrations on the lock");
        }
    }

    /// The fencing number of this acquisition.
    pub(crate) fn fence(&self) -> i64 {
        self.fence
    }

    /// Why the lease was lost, if it was.
    pub(crate) fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Resolves when the lease is lost (never, while renewals succeed).
    pub(crate) async fn lost(&self) -> String {
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

    /// Checks, without a command, that the lease is still this process's: no loss was signalled,
    /// and the last successful renewal (counted from when it was sent) leaves at least a sixth of
    /// the lease. A process that was paused past its lease finds it run out here, before it runs
    /// anything; the server agrees, since it computed the expiry from a later moment.
    pub(crate) fn ensure_held(&self, migration: Option<&str>) -> Result<()> {
        if let Some(reason) = self.lost_reason() {
            return Err(self.lost_error(migration, reason));
        }
        let valid_from = *self.valid_from.lock().unwrap_or_else(|e| e.into_inner());
        let margin = self.lock.lease / 6;
        match (valid_from + self.lock.lease).checked_duration_since(Instant::now()) {
            Some(left) if left >= margin => Ok(()),
            _ => Err(self.lost_error(
                migration,
                format!(
                    "its lease was last renewed {:?} ago, so it may have run out (the process was paused, or renewals did not get through)",
                    valid_from.elapsed()
                ),
            )),
        }
    }

    /// Checks with the server that this process still holds an unexpired lease (one `find`).
    pub(crate) async fn verify(&self, migration: Option<&str>) -> Result<()> {
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
            .max_time(self.lock.majority_timeout)
            .await
            .map_err(|e| Error::database("checking the migration lock", migration, e))?;
        match found {
            Some(_) => Ok(()),
            None => {
                let reason = self.lock.explain_loss(self.fence).await;
                Err(self.lost_error(migration, reason))
            }
        }
    }

    pub(crate) fn lost_error(&self, migration: Option<&str>, reason: String) -> Error {
        Error::LockLost {
            migration: migration.and_then(MigrationId::parse_prefixed),
            fence: self.fence,
            reason,
            applied_before: Vec::new(),
        }
    }

    /// Stops renewing and frees the lease (only if it is still ours).
    pub(crate) async fn release(self) -> Result<()> {
        self.renewer.abort();
        self.lock
            .collection
            .update_one(
                doc! { "_id": LOCK_ID, "owner": &self.lock.owner, "fence": self.fence },
                vec![
                    doc! { "$set": { "owner": Bson::Null, "expires_at": "$$NOW", "released_at": "$$NOW" } },
                    doc! { "$unset": "background" },
                ],
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

/// Renews every third of the lease until the lease is lost. `shared_valid_from` starts at when
/// the acquisition was sent: the lease runs from then, and from each renewal's sending after
/// that (which this updates for [`Lease::ensure_held`]). A renewal
/// gets until a sixth of the lease before its end to answer; past that, or when failing
/// renewals leave no time for another try, the lease is given up before it can expire unseen.
async fn renew_until_lost(
    lock: LeaseLock,
    fence: i64,
    shared_valid_from: Arc<Mutex<Instant>>,
    lost: Arc<watch::Sender<Option<String>>>,
) {
    let every = lock.lease / 3;
    let margin = lock.lease / 6;
    let mut valid_from = *shared_valid_from.lock().unwrap_or_else(|e| e.into_inner());
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        let sent = Instant::now();
        let give_up_at = valid_from + lock.lease - margin;
        let Some(deadline) = give_up_at.checked_duration_since(sent) else {
            let _ = lost.send(Some(format!(
                "no renewal of its lease succeeded in {:?}, so it gave the lease up before it could expire",
                valid_from.elapsed()
            )));
            return;
        };
        match tokio::time::timeout(deadline, lock.renew(fence)).await {
            Ok(Ok(true)) => {
                valid_from = sent;
                *shared_valid_from.lock().unwrap_or_else(|e| e.into_inner()) = sent;
                wait = every;
            }
            Ok(Ok(false)) => {
                let _ = lost.send(Some(lock.explain_loss(fence).await));
                return;
            }
            Ok(Err(e)) => {
                // A passing fault is retried while the lease leaves time for it.
                let reason = format!(
                    "renewing the lock failed: {}",
                    crate::error::Cause::of(&e).joined()
                );
                tracing::warn!(fence, "{reason}");
                wait = every / 3;
                if Instant::now() + wait >= give_up_at {
                    let _ = lost.send(Some(format!(
                        "{reason}; its lease would run out before another try"
                    )));
                    return;
                }
            }
            Err(_) => {
                let _ = lost.send(Some(format!(
                    "renewing the lock got no answer within {deadline:?}, and its lease would run out before another try"
                )));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(document: Document) -> LockState {
        LockState {
            document: Some(document),
            held: false,
            server_now: mongodb::bson::DateTime::from_millis(1_000_000),
        }
    }

    #[test]
    fn a_corrupted_document_names_each_bad_field() {
        let s = state(doc! { "_id": LOCK_ID, "owner": 7, "fence": "x", "expires_at": "soon" });
        assert_eq!(
            s.problems(),
            vec![
                "owner is 7, not a string".to_owned(),
                "fence is \"x\", not a number".to_owned(),
                "expires_at is \"soon\", not a date".to_owned(),
            ]
        );
        assert!(s.describe().contains("cannot be read"), "{}", s.describe());
        let far = state(doc! { "owner": "a", "fence": 1,
        "expires_at": mongodb::bson::DateTime::from_millis(1_000_000 + 2 * SANE_LEASE_MS) });
        assert_eq!(
            far.problems(),
            vec!["expires_at is 1970-01-03T00:16:40Z, more than a day ahead".to_owned()]
        );
    }

    #[test]
    fn waiter_reads_are_paced_by_a_gap_and_a_budget() {
        let mut budget = ReadBudget::new();
        let start = Instant::now();
        // Reads answered at once: one every MIN_GAP while the burst lasts.
        let mut now = start;
        let mut reads = 0;
        while now < start + Duration::from_secs(10) {
            now += budget.delay_at(now);
            budget.spend(now);
            reads += 1;
            if reads <= 15 {
                assert!(
                    now - start <= ReadBudget::MIN_GAP * reads,
                    "read {reads} at {:?}",
                    now - start
                );
            }
        }
        // Over ten seconds of early answers: the burst plus RATE a second, at most ten a second.
        let per_second = f64::from(reads) / 10.0;
        assert!(per_second <= 10.0, "{per_second} reads a second");
        assert!(
            per_second >= ReadBudget::RATE,
            "{per_second} reads a second"
        );
        // Reads that waited a second each on the server are never held back.
        let mut budget = ReadBudget::new();
        let mut now = Instant::now();
        for _ in 0..30 {
            assert_eq!(budget.delay_at(now), Duration::ZERO);
            budget.spend(now);
            now += Duration::from_secs(1);
        }
    }
}
