//! The store of `schema_versions`: one document per migration.
//!
//! A document written by this library:
//!
//! ```text
//! { _id: "0003", description: "...", state: "applied" | "running" | "failed",
//!   checksum: "<hex sha-256 of the body's tokens>", function: "app::migrations::replay",
//!   started_at: Date, finished_at: Date, applied_at: Date, duration_ms: 12,
//!   host: "api-7f9c", pid: 4242, attempts: 1, fence: 7, last_error: "..." }
//! ```
//!
//! Documents written by the reference Python system hold only `_id` (such as
//! `"0001_events_init"`), `description` and `applied_at`; they read as applied migrations whose
//! id is the number before the first `_`. Times come from the server's clock (`$currentDate`).
//!
//! Every write is conditional on `fence`, the lock's fencing number (see [`lock`](crate::lock)):
//! a process whose lease was taken over cannot record anything.
//!
//! ## Announced migrations: one write per migration
//!
//! A run writes a migration's `running` record before its function runs, except for a migration
//! that follows another in the same run, has no record yet, and runs outside a transaction: that
//! one is *announced* on the record of the migration before it, in the same statement that
//! records that one applied (`next: "<its id>"`; its fence, host, process and start are those of
//! the record that names it, its attempt the first), and its own record is written once, whole, when it ends: inserted
//! `applied` (carrying the announcement of the one after it), so that a run of trivial
//! migrations costs one write each. An insert fails on the `_id` of a record that a newer lock
//! holder wrote meanwhile, so it is fenced like an update: a holder that takes over starts the
//! announced migration again by writing its `running` record under the higher fence first. An
//! announced migration gets its `running` record after all as soon as it has run for
//! [`LATE_START`], keeps a checkpoint, or fails, so that a long migration reads `running` in the
//! collection as any other. The times of a record inserted whole come from the clock of the
//! process that ran it (an insert cannot take the server's); every other time is the server's.
//!
//! [`VersionStore::load`] reads an announcement whose migration has no record, written by the
//! latest holder, as that migration's `running` record: status, health and a holder that takes
//! over see it as they would see the record.

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{CollectionOptions, ReadConcern};
use mongodb::{Collection, Database};
use schema_id::MigrationId;

use crate::error::driver::{codes::DUPLICATE_KEY, is_duplicate_key};
use crate::error::{Error, Result};
use crate::wire::{host, pid, read_i64};

/// The collection records are kept in unless configured otherwise.
pub(crate) const DEFAULT_COLLECTION: &str = "schema_versions";

/// The first batch of the applied-set query holds every record, so that reading it is a single
/// command; the server caps a batch at 16 MiB, about 40,000 records.
const LOAD_BATCH_SIZE: u32 = 100_000;

/// How long an announced migration runs before its `running` record is written (see the module
/// documentation): a migration that takes longer reads `running` in the collection.
pub(crate) const LATE_START: std::time::Duration = std::time::Duration::from_secs(1);

/// Where a migration is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Its function returned `Ok` and the record was written afterwards.
    Applied,
    /// It started and has not finished (or its process died).
    Running,
    /// Its function returned an error or panicked.
    Failed,
}

impl RecordState {
    /// The value stored in the `state` field.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Applied => "applied",
            RecordState::Running => "running",
            RecordState::Failed => "failed",
        }
    }
}

/// One document of `schema_versions`.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRecord {
    /// The `_id` as stored (for example `"0003"` or the reference system's `"0003_replay_indexes"`).
    pub key: String,
    /// The id it stands for, when the `_id` is one.
    pub id: Option<MigrationId>,
    /// The description.
    pub description: Option<String>,
    /// The state; documents without one (the reference system's) are applied.
    pub state: RecordState,
    /// Checksum of the body that ran; absent in documents of the reference system.
    pub checksum: Option<String>,
    /// When the last attempt started (server clock).
    pub started_at: Option<mongodb::bson::DateTime>,
    /// When the last attempt ended (`applied_at` for the reference system's documents).
    pub finished_at: Option<mongodb::bson::DateTime>,
    /// How long the last attempt took.
    pub duration_ms: Option<i64>,
    /// The host that ran the last attempt.
    pub host: Option<String>,
    /// The process id that ran the last attempt.
    pub pid: Option<i64>,
    /// How many times it was started.
    pub attempts: i64,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// The function that ran (`module::function`); absent in documents of the reference system.
    pub function: Option<String>,
    /// The lock fence under which it was last written.
    pub fence: Option<i64>,
    /// What the migration's helpers declared when it was applied (indexes, validators,
    /// collections, hidden and dropped indexes), in order: the schema it meant, for the drift
    /// check. `None` when the record has none: written by the reference system, by `baseline`,
    /// or by a version of this library before declarations were kept.
    pub declared: Option<Vec<Document>>,
    /// The checkpoints of a running migration's batch walks, by collection (`ctx.batches`):
    /// how far it got.
    pub progress: Vec<Progress>,
}

/// How far a running migration's walk over one collection got (its checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// The collection walked.
    pub collection: String,
    /// Documents done.
    pub done: i64,
    /// Documents to do, as counted when the walk started.
    pub total: Option<i64>,
}

impl MigrationRecord {
    /// Reads a `schema_versions` document.
    pub fn from_document(document: &Document, collection: &str) -> Result<Self> {
        let bad = |key: &str, problem: String| Error::BadRecord {
            id: key.to_owned(),
            collection: collection.to_owned(),
            problem,
        };
        let key = match document.get("_id") {
            Some(Bson::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return Err(bad("(no _id)", "it has no _id".into())),
        };
        let text = |field: &str| document.get_str(field).ok().map(str::to_owned);
        let date = |field: &str| document.get_datetime(field).ok().copied();
        let number = |field: &str| read_i64(document.get(field));
        let state = match document.get("state") {
            None | Some(Bson::Null) => RecordState::Applied,
            Some(Bson::String(s)) => match s.as_str() {
                "applied" => RecordState::Applied,
                "running" => RecordState::Running,
                "failed" => RecordState::Failed,
                other => {
                    return Err(bad(
                        &key,
                        format!(
                            "its state is {other:?}; expected \"applied\", \"running\" or \"failed\""
                        ),
                    ));
                }
            },
            Some(other) => return Err(bad(&key, format!("its state is {other}, not a string"))),
        };
        Ok(MigrationRecord {
            id: match document.get("_id") {
                Some(Bson::String(s)) => MigrationId::parse_prefixed(s),
                _ => None,
            },
            description: text("description"),
            state,
            checksum: text("checksum"),
            started_at: date("started_at"),
            finished_at: date("finished_at").or_else(|| date("applied_at")),
            duration_ms: number("duration_ms"),
            host: text("host"),
            pid: number("pid"),
            attempts: number("attempts").unwrap_or(1).max(0),
            last_error: text("last_error"),
            function: text("function"),
            fence: number("fence"),
            progress: document
                .get_document("checkpoints")
                .map(|checkpoints| {
                    checkpoints
                        .iter()
                        .filter_map(|(collection, c)| {
                            let c = c.as_document()?;
                            Some(Progress {
                                collection: collection.clone(),
                                done: read_i64(c.get("done"))?,
                                total: read_i64(c.get("total")),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            declared: match document.get_array("declared") {
                Ok(entries) => Some(
                    entries
                        .iter()
                        .filter_map(|e| e.as_document().cloned())
                        .collect(),
                ),
                Err(_) => None,
            },
            key,
        })
    }
}

/// Where a running migration keeps its checkpoints: its record, written under the lock's fence.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointTarget {
    pub store: VersionStore,
    pub key: String,
    pub fence: i64,
    /// For an announced migration, the `running` record to write before the first checkpoint.
    pub late: Option<std::sync::Arc<LateStart>>,
}

impl CheckpointTarget {
    /// Makes sure the record exists (an announced migration's is written now), so that a
    /// checkpoint can be kept on it.
    pub(crate) async fn recorded(&self) -> Result<()> {
        match &self.late {
            Some(late) => late.ensure().await,
            None => Ok(()),
        }
    }
}

/// A migration started without a record of its own: announced on the record before it.
#[derive(Debug, Clone)]
pub(crate) struct Announced {
    pub key: String,
    pub fence: i64,
    pub attempt: i64,
    pub description: String,
    pub checksum: String,
    pub function: String,
}

impl Announced {
    fn declared(&self) -> Declared<'_> {
        Declared {
            description: &self.description,
            checksum: &self.checksum,
            function: self.function.clone(),
        }
    }
}

/// The `running` record of an announced migration, written at most once, by whichever comes
/// first: [`LATE_START`], its first checkpoint, or its failure.
#[derive(Debug)]
pub(crate) struct LateStart {
    store: VersionStore,
    announced: Announced,
    written: tokio::sync::OnceCell<()>,
    tried: std::sync::atomic::AtomicBool,
}

impl LateStart {
    pub(crate) fn new(store: VersionStore, announced: Announced) -> Self {
        LateStart {
            store,
            announced,
            written: tokio::sync::OnceCell::new(),
            tried: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Writes the `running` record unless it is written. Writing it again is harmless (the
    /// same fenced upsert), which is how a write that was sent and not awaited is settled.
    pub(crate) async fn ensure(&self) -> Result<()> {
        let a = &self.announced;
        self.written
            .get_or_try_init(|| async {
                self.tried.store(true, std::sync::atomic::Ordering::SeqCst);
                match self
                    .store
                    .start(&a.key, &a.declared(), a.fence, a.attempt, false)
                    .await?
                {
                    Started::Running => Ok(()),
                    Started::AlreadyApplied => Err(Error::LockLost {
                        migration: MigrationId::parse_prefixed(&a.key),
                        fence: a.fence,
                        reason: "a newer lock holder applied it meanwhile".into(),
                        applied_before: Vec::new(),
                    }),
                }
            })
            .await?;
        Ok(())
    }

    /// Whether the `running` record was (or may have been) sent: the migration's end must then
    /// update it rather than insert its record.
    pub(crate) fn tried(&self) -> bool {
        self.tried.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn announced(&self) -> &Announced {
        &self.announced
    }
}

/// What a record says of the migration it stands for: written at each start and baseline, so
/// that a later run can tell an edited body (the checksum) from another migration under the same
/// id (the function and description). The store knows nothing else of migrations.
#[derive(Debug, Clone)]
pub(crate) struct Declared<'a> {
    pub description: &'a str,
    pub checksum: &'a str,
    pub function: String,
}

/// Reads and writes `schema_versions` with majority read and write concern.
#[derive(Debug, Clone)]
pub(crate) struct VersionStore {
    database: Database,
    collection: Collection<Document>,
    majority_timeout: std::time::Duration,
}

impl VersionStore {
    /// The store in `database`'s collection `name`, read and written on the primary, its majority
    /// writes bounded by `majority_timeout` (`wtimeout`) and its reads too (`maxTimeMS`: a read
    /// queued behind a lock, such as an index build's, fails instead of waiting for ever).
    pub(crate) fn new(
        database: &Database,
        name: &str,
        majority_timeout: std::time::Duration,
    ) -> Self {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(crate::wire::majority(majority_timeout))
            .selection_criteria(crate::wire::primary())
            .build();
        VersionStore {
            database: database.clone(),
            collection: database.collection_with_options(name, options),
            majority_timeout,
        }
    }

    /// The collection's name.
    pub(crate) fn name(&self) -> &str {
        self.collection.name()
    }

    /// Every record, in one `find`.
    pub(crate) async fn load(&self) -> Result<Vec<MigrationRecord>> {
        let failed = |e| {
            Error::database(
                format!("reading the applied migrations from {}", self.name()),
                None,
                e,
            )
        };
        let mut cursor = self
            .collection
            .find(doc! {})
            .batch_size(LOAD_BATCH_SIZE)
            .max_time(self.majority_timeout)
            .await
            .map_err(failed)?;
        // Each document is read into its record and dropped before the next one is decoded:
        // the peak memory of a start-up holds the records, not the records and their documents.
        let mut records = Vec::new();
        let mut latest = LatestAnnouncements::default();
        while let Some(document) = cursor.try_next().await.map_err(failed)? {
            latest.offer(&document);
            records.push(MigrationRecord::from_document(&document, self.name())?);
        }
        latest.add_running(&mut records);
        Ok(records)
    }

    /// Marks `migration` running under `key` as attempt `attempt`, before its function runs.
    /// Only the holder of lock fence `fence` may: a record last written under a higher fence
    /// makes this a [`Error::LockLost`]. An `applied` record is overwritten only to run it
    /// again on purpose (`rerun`, for `redo`): otherwise, when another holder applied the
    /// migration meanwhile, this returns [`Started::AlreadyApplied`].
    pub(crate) async fn start(
        &self,
        key: &str,
        migration: &Declared<'_>,
        fence: i64,
        attempt: i64,
        rerun: bool,
    ) -> Result<Started> {
        let (filter, update) = start_update(key, migration, fence, attempt, rerun);
        match self
            .collection
            .update_one(filter, update)
            .upsert(true)
            .await
        {
            Ok(_) => Ok(Started::Running),
            Err(e) if is_duplicate_key(&e) => self.start_refused(key, fence).await,
            Err(e) => Err(Error::database(
                format!("recording the start in {}", self.name()),
                Some(key),
                e,
            )),
        }
    }

    /// Like [`VersionStore::start`], and in the same command (one `update` with two
    /// statements, in order) records `previous` applied: the migration before this one, whose
    /// function returned `Ok` just now. One command per applied migration instead of two, with
    /// the same fencing: `previous` is recorded only while its record is the one this process
    /// started under its fence. If it is not (a newer holder took over), this returns
    /// [`StartError::Previous`]; the `running` record this command may have written for `key`
    /// under the old fence is marked failed again, and a newer holder overwrites it anyway.
    pub(crate) async fn start_after(
        &self,
        previous: &AppliedWrite,
        key: &str,
        migration: &Declared<'_>,
        fence: i64,
        attempt: i64,
        rerun: bool,
    ) -> std::result::Result<Started, StartError> {
        if previous.unrecorded.is_some() {
            // Its record is an insert, another command than this update.
            self.finish_applied(previous)
                .await
                .map_err(StartError::Previous)?;
            return self
                .start(key, migration, fence, attempt, rerun)
                .await
                .map_err(StartError::This);
        }
        let (filter, update) = start_update(key, migration, fence, attempt, rerun);
        let command = doc! {
            "update": self.name(),
            "updates": [
                {
                    "q": running_under(&previous.key, previous.fence),
                    "u": applied_update(previous),
                },
                { "q": filter, "u": update, "upsert": true },
            ],
            "ordered": true,
            "writeConcern": { "w": "majority", "wtimeout": crate::wire::millis_i64(self.majority_timeout) },
        };
        // Not sent again after an error: its first statement matches only the previous
        // migration's running record, so a retry after an unseen success would read as a lost
        // lock. The run stops with the error; the next start-up reads the records again.
        let reply = self.database.run_command(command).await.map_err(|e| {
            StartError::Previous(Error::database(
                format!("recording it as applied in {}", self.name()),
                Some(&previous.key),
                e,
            ))
        })?;
        let outcome = UpdateOutcome::of(&reply);
        if let Some(refused) = outcome.refused(0) {
            return Err(StartError::Previous(self.refused(
                "recording it as applied",
                &previous.key,
                refused,
            )));
        }
        let this = outcome.refused(1);
        // `n` counts matched and upserted documents; the second statement counts one unless
        // it was refused.
        let previous_matched = outcome.n - i64::from(this.is_none());
        if previous_matched != 1 {
            if this.is_none() {
                // This process wrote a `running` record under a fence it no longer holds.
                let _ = self
                    .finish_failed(
                        key,
                        fence,
                        0,
                        "not started: this process lost the migration lock just before",
                    )
                    .await;
            }
            return Err(StartError::Previous(lock_lost_on(
                &previous.key,
                previous.fence,
            )));
        }
        match this {
            None => Ok(Started::Running),
            Some(refused) if refused.code == DUPLICATE_KEY => self
                .start_refused(key, fence)
                .await
                .map_err(StartError::This),
            Some(refused) => Err(StartError::This(self.refused(
                "recording the start",
                key,
                refused,
            ))),
        }
    }

    /// `start` found `key`'s record written under a higher fence, or applied meanwhile.
    async fn start_refused(&self, key: &str, fence: i64) -> Result<Started> {
        let record = self.read(key).await?;
        let state = record.as_ref().and_then(|r| r.get_str("state").ok());
        let their_fence = record.as_ref().and_then(|r| read_i64(r.get("fence")));
        if state == Some(RecordState::Applied.as_str()) {
            return Ok(Started::AlreadyApplied);
        }
        Err(Error::LockLost {
            migration: MigrationId::parse_prefixed(key),
            fence,
            reason: format!(
                "its record was last written under fence {}, above this process's: a newer lock holder runs it (if no process does, the record's fence field is corrupt: fix or remove the record)",
                their_fence.map_or("(unreadable)".to_owned(), |f| f.to_string())
            ),
            applied_before: Vec::new(),
        })
    }

    /// A write the server refused inside an `update` command (`writeErrors`), as an error.
    fn refused(&self, what: &str, key: &str, refused: Refused) -> Error {
        Error::database(
            format!("{what} in {}", self.name()),
            Some(key),
            mongodb::error::Error::custom(format!(
                "code {} ({}): {}",
                refused.code, refused.name, refused.message
            )),
        )
    }

    /// Upserts `key`'s record unless a newer lock holder (a higher fence) wrote it last.
    async fn upsert_fenced(
        &self,
        key: &str,
        fence: i64,
        update: Document,
        what: &str,
    ) -> Result<()> {
        match self
            .collection
            .update_one(written_by_fence_or_older(key, fence), update)
            .upsert(true)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(Error::LockLost {
                migration: MigrationId::parse_prefixed(key),
                fence,
                reason: "its record was written under a newer lock by another process".into(),
                applied_before: Vec::new(),
            }),
            Err(e) => Err(Error::database(
                format!("{what} in {}", self.name()),
                Some(key),
                e,
            )),
        }
    }

    /// Marks `key` applied; called only after its function returned `Ok`, by the holder of `fence`.
    /// An announced migration without a record yet has its record inserted whole.
    pub(crate) async fn finish_applied(&self, write: &AppliedWrite) -> Result<()> {
        let (key, fence) = (write.key.as_str(), write.fence);
        if let Some(unrecorded) = &write.unrecorded {
            return self.insert_applied(write, unrecorded).await;
        }
        self.update_fenced(
            key,
            fence,
            running_under(key, fence),
            applied_update(write),
            None,
            "recording it as applied",
        )
        .await
    }

    /// The whole `applied` record of an announced migration that has none. The insert fails on
    /// a record a newer holder wrote meanwhile (it starts the migration again under its fence
    /// first): the fence of a record that does not exist yet.
    async fn insert_applied(&self, write: &AppliedWrite, unrecorded: &Unrecorded) -> Result<()> {
        let a = unrecorded.late.announced();
        let now = mongodb::bson::DateTime::now();
        let mut record = doc! {
            "_id": &write.key,
            "description": &a.description,
            "state": RecordState::Applied.as_str(),
            "checksum": &a.checksum,
            "function": &a.function,
            "host": host(),
            "pid": pid(),
            "fence": write.fence,
            "attempts": a.attempt,
            "started_at": unrecorded.started_at,
            "finished_at": now,
            "applied_at": now,
            "duration_ms": write.duration_ms,
            "declared": write.declared.clone(),
        };
        if let Some(next) = &write.next {
            record.insert("next", &next.key);
        }
        match self.collection.insert_one(record).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(Error::LockLost {
                migration: MigrationId::parse_prefixed(&write.key),
                fence: write.fence,
                reason: "its record was written meanwhile by a newer lock holder, which started it again".into(),
                applied_before: Vec::new(),
            }),
            Err(e) => Err(Error::database(
                format!("recording it as applied in {}", self.name()),
                Some(&write.key),
                e,
            )),
        }
    }

    /// Like [`VersionStore::finish_applied`], inside `session`'s transaction.
    pub(crate) async fn finish_applied_in(
        &self,
        session: &mut mongodb::ClientSession,
        write: &AppliedWrite,
    ) -> Result<()> {
        let (key, fence) = (write.key.as_str(), write.fence);
        self.update_fenced(
            key,
            fence,
            running_under(key, fence),
            applied_update(write),
            Some(session),
            "recording it as applied (in its transaction)",
        )
        .await
    }

    /// Marks `key` failed with the error's text, by the holder of `fence`; never an applied record.
    pub(crate) async fn finish_failed(
        &self,
        key: &str,
        fence: i64,
        duration_ms: i64,
        message: &str,
    ) -> Result<()> {
        let update = doc! {
            "$set": {
                "state": RecordState::Failed.as_str(),
                "duration_ms": duration_ms,
                "last_error": message,
            },
            "$currentDate": { "finished_at": true },
        };
        let filter =
            doc! { "_id": key, "fence": fence, "state": { "$ne": RecordState::Applied.as_str() } };
        self.update_fenced(key, fence, filter, update, None, "recording the failure")
            .await
    }

    /// The one fenced update of a record: `filter` names the record as written by the holder of
    /// `fence`; no match means a newer holder owns it now ([`Error::LockLost`]).
    async fn update_fenced(
        &self,
        key: &str,
        fence: i64,
        filter: Document,
        update: Document,
        session: Option<&mut mongodb::ClientSession>,
        what: &str,
    ) -> Result<()> {
        let update = self.collection.update_one(filter, update);
        let result = match session {
            Some(session) => update.session(session).await,
            None => update.await,
        }
        .map_err(|e| Error::database(format!("{what} in {}", self.name()), Some(key), e))?;
        fenced(result.matched_count, key, fence)
    }
}

impl VersionStore {
    /// The raw record `key`, if there is one.
    pub(crate) async fn read(&self, key: &str) -> Result<Option<Document>> {
        self.collection
            .find_one(doc! { "_id": key })
            .max_time(self.majority_timeout)
            .await
            .map_err(|e| {
                Error::database(
                    format!("reading the record from {}", self.name()),
                    Some(key),
                    e,
                )
            })
    }

    /// Stores a batch checkpoint at `field` of `key`'s record, by the holder of `fence`, in
    /// `session`'s transaction when given.
    pub(crate) async fn checkpoint(
        &self,
        key: &str,
        fence: i64,
        field: &str,
        checkpoint: Document,
        session: Option<&mut mongodb::ClientSession>,
    ) -> Result<()> {
        self.update_fenced(
            key,
            fence,
            doc! { "_id": key, "fence": fence },
            doc! { "$set": { field: checkpoint } },
            session,
            "storing a checkpoint",
        )
        .await
    }

    /// Removes `key`'s record after its rollback ran, by the holder of `fence`. Announcements
    /// of it on other records go first: without its record, one would read as its `running`
    /// record.
    pub(crate) async fn remove(&self, key: &str, fence: i64) -> Result<()> {
        let failed = |what: &'static str| {
            move |e| Error::database(format!("{what} {}", self.name()), Some(key), e)
        };
        self.collection
            .update_many(doc! { "next": key }, doc! { "$unset": { "next": "" } })
            .await
            .map_err(failed("removing its announcement from"))?;
        let result = self
            .collection
            .delete_one(written_by_fence_or_older(key, fence))
            .await
            .map_err(failed("removing the record from"))?;
        fenced(result.deleted_count, key, fence)
    }

    /// Records `migration` as applied without running it (`baseline`), by the holder of `fence`.
    pub(crate) async fn baseline(
        &self,
        key: &str,
        migration: &Declared<'_>,
        fence: i64,
    ) -> Result<()> {
        let update = doc! {
            "$set": {
                "description": migration.description,
                "state": RecordState::Applied.as_str(),
                "checksum": migration.checksum,
                "function": &migration.function,
                "host": host(),
                "pid": pid(),
                "fence": fence,
                "baseline": true,
            },
            "$unset": { "last_error": "", "duration_ms": "", "next": "" },
            "$currentDate": { "finished_at": true, "applied_at": true },
            "$setOnInsert": { "attempts": 0_i64 },
        };
        self.upsert_fenced(key, fence, update, "recording a baseline")
            .await
    }

    /// Removes the record `key` of a migration this binary no longer has (`forget`), by the
    /// holder of `fence`, after copying it whole into the audit collection with `by`.
    pub(crate) async fn forget(&self, key: &str, fence: i64, by: &str) -> Result<()> {
        let record = self.read(key).await?.unwrap_or_default();
        self.audit(key, doc! { "action": "forget", "record": record }, by)
            .await?;
        self.remove(key, fence).await
    }

    /// Records `checksum` (and this binary's function and description) on `key`'s applied
    /// record (`accept`): its body changed harmlessly. Who and when go on the record under
    /// `accepted` and into the audit collection.
    pub(crate) async fn accept(
        &self,
        key: &str,
        migration: &Declared<'_>,
        previous_checksum: Option<&str>,
        fence: i64,
        by: &str,
    ) -> Result<()> {
        let previous = previous_checksum.map_or(Bson::Null, |c| Bson::String(c.to_owned()));
        self.audit(
            key,
            doc! {
                "action": "accept",
                "previous_checksum": previous.clone(),
                "checksum": migration.checksum,
            },
            by,
        )
        .await?;
        let mut filter = written_by_fence_or_older(key, fence);
        filter.insert("state", RecordState::Applied.as_str());
        self.update_fenced(
            key,
            fence,
            filter,
            doc! {
                "$set": {
                    "checksum": migration.checksum,
                    "function": &migration.function,
                    "description": migration.description,
                    "fence": fence,
                    "accepted.previous_checksum": previous,
                    "accepted.by": by,
                },
                "$currentDate": { "accepted.at": true },
                "$unset": { "next": "" },
            },
            None,
            "recording the accepted checksum",
        )
        .await
    }

    /// Records `declared` on `key`'s applied record that has none (a database adopted with
    /// `baseline` or from the reference system), by the holder of `fence`.
    pub(crate) async fn record_declared(
        &self,
        key: &str,
        declared: Vec<Document>,
        fence: i64,
    ) -> Result<()> {
        let mut filter = written_by_fence_or_older(key, fence);
        // The reference system's records have no state: applied (`$in` with null matches a
        // missing field, as MongoDB documents for equality with null).
        filter.insert(
            "state",
            doc! { "$in": [RecordState::Applied.as_str(), mongodb::bson::Bson::Null] },
        );
        filter.insert("declared", doc! { "$exists": false });
        self.update_fenced(
            key,
            fence,
            filter,
            doc! {
                "$set": { "declared": declared, "declared_from": "scratch run", "fence": fence },
                "$currentDate": { "declared_at": true },
                "$unset": { "next": "" },
            },
            None,
            "recording the declarations",
        )
        .await
    }

    /// The collection where `forget` and `accept` note what they did: `<versions>_audit`.
    pub(crate) fn audit_collection(&self) -> String {
        format!("{}_audit", self.name())
    }

    pub(crate) async fn audit(&self, key: &str, mut entry: Document, by: &str) -> Result<()> {
        entry.insert("key", key);
        entry.insert("by", by);
        self.database
            .collection::<Document>(&self.audit_collection())
            .update_one(
                doc! { "_id": mongodb::bson::oid::ObjectId::new() },
                doc! { "$setOnInsert": entry, "$currentDate": { "at": true } },
            )
            .upsert(true)
            .write_concern(crate::wire::majority(self.majority_timeout))
            .await
            .map_err(|e| {
                Error::database(
                    format!("noting the change in {}", self.audit_collection()),
                    Some(key),
                    e,
                )
            })?;
        Ok(())
    }

    /// Notes on `key`'s (still applied) record that its rollback failed.
    pub(crate) async fn note_rollback_failure(
        &self,
        key: &str,
        fence: i64,
        message: &str,
    ) -> Result<()> {
        self.update_fenced(
            key,
            fence,
            written_by_fence_or_older(key, fence),
            doc! { "$set": { "last_error": format!("rollback failed: {message}") } },
            None,
            "recording the rollback failure",
        )
        .await
    }
}

/// `key`'s record, unless a newer lock holder (a higher fence) wrote it last. A fence that is
/// not a comparable number (missing, a string, NaN: not written by this library) does not
/// protect the record: `$not` matches documents whose field does not satisfy the expression,
/// including documents without the field, and `$gt` compares numbers with numbers only (type
/// bracketing; NaN is below every number), as MongoDB documents for `$not` and comparison
/// (<https://www.mongodb.com/docs/manual/reference/operator/query/not/>,
/// <https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/>). One condition
/// instead of four alternatives: cheaper for the server on every record write.
fn written_by_fence_or_older(key: &str, fence: i64) -> Document {
    doc! { "_id": key, "fence": { "$not": { "$gt": fence } } }
}

/// `key`'s record while it is running under `fence`.
fn running_under(key: &str, fence: i64) -> Document {
    doc! { "_id": key, "fence": fence, "state": RecordState::Running.as_str() }
}

fn applied_update(write: &AppliedWrite) -> Document {
    let mut set = doc! {
        "state": RecordState::Applied.as_str(),
        "duration_ms": write.duration_ms,
        "declared": write.declared.clone(),
    };
    let mut unset = doc! { "last_error": "", "checkpoints": "" };
    match &write.next {
        Some(next) => {
            set.insert("next", &next.key);
        }
        None => {
            unset.insert("next", "");
        }
    }
    doc! {
        "$set": set,
        "$unset": unset,
        "$currentDate": { "finished_at": true, "applied_at": true },
    }
}

fn fenced(matched: u64, key: &str, fence: i64) -> Result<()> {
    if matched == 1 {
        Ok(())
    } else {
        Err(lock_lost_on(key, fence))
    }
}

/// `key`'s record is no longer the one this process wrote under `fence`.
fn lock_lost_on(key: &str, fence: i64) -> Error {
    Error::LockLost {
        migration: MigrationId::parse_prefixed(key),
        fence,
        reason: format!(
            "its record is no longer the one this process started under fence {fence}: a newer lock holder started it again"
        ),
        applied_before: Vec::new(),
    }
}

/// The filter and update of a `running` record (see [`VersionStore::start`]).
fn start_update(
    key: &str,
    migration: &Declared<'_>,
    fence: i64,
    attempt: i64,
    rerun: bool,
) -> (Document, Document) {
    let update = doc! {
        "$set": {
            "description": migration.description,
            "state": RecordState::Running.as_str(),
            "checksum": migration.checksum,
            "function": &migration.function,
            "host": host(),
            "pid": pid(),
            "fence": fence,
            "attempts": attempt,
        },
        "$unset": { "finished_at": "", "duration_ms": "", "next": "" },
        "$currentDate": { "started_at": true },
    };
    let mut filter = written_by_fence_or_older(key, fence);
    if !rerun {
        filter.insert("state", doc! { "$ne": RecordState::Applied.as_str() });
    }
    (filter, update)
}

/// The `applied` record of a migration whose function returned `Ok` under `fence`, not written
/// yet: it goes out with the next migration's `running` record ([`VersionStore::start_after`]),
/// or alone ([`VersionStore::finish_applied`]) after the last one.
#[derive(Debug, Clone)]
pub(crate) struct AppliedWrite {
    pub key: String,
    pub fence: i64,
    pub duration_ms: i64,
    /// What the migration's helpers declared (indexes, validators, ...), stored on the record
    /// as `declared`: the schema the migrations meant, for the drift check.
    pub declared: Vec<Document>,
    /// Set when the migration was announced and has no record yet: the record is inserted.
    pub unrecorded: Option<Unrecorded>,
    /// The migration that starts right after this one without a record, announced on this one.
    pub next: Option<Announced>,
}

/// An announced migration that ended without a record: what its inserted record says.
#[derive(Debug, Clone)]
pub(crate) struct Unrecorded {
    pub late: std::sync::Arc<LateStart>,
    /// When its function started, by this process's clock.
    pub started_at: mongodb::bson::DateTime,
}

/// While the records are read: the announcement written last, the only one that can name a
/// migration without a record. A run applies in id order and announces each migration on the
/// record of the one before, so the latest announcement is on the record with the highest
/// fence and, among those, the highest id (every other write that sets a record's fence removes
/// its `next`).
#[derive(Default)]
struct LatestAnnouncements {
    latest: Option<Announcement>,
}

/// A `next` field and what the record that holds it says of the announced migration's run.
struct Announcement {
    on: (i64, Option<MigrationId>, String),
    key: String,
    at: Option<mongodb::bson::DateTime>,
    host: Option<String>,
    pid: Option<i64>,
}

impl LatestAnnouncements {
    fn offer(&mut self, document: &Document) {
        let (Ok(key), Some(fence), Ok(on)) = (
            document.get_str("next"),
            read_i64(document.get("fence")),
            document.get_str("_id"),
        ) else {
            return;
        };
        let on = (fence, MigrationId::parse_prefixed(on), on.to_owned());
        if self.latest.as_ref().is_some_and(|l| l.on >= on) {
            return;
        }
        self.latest = Some(Announcement {
            on,
            key: key.to_owned(),
            at: document.get_datetime("finished_at").ok().copied(),
            host: document.get_str("host").ok().map(str::to_owned),
            pid: read_i64(document.get("pid")),
        });
    }

    /// Adds the `running` record of an announced migration that has none, when the
    /// announcement is the latest holder's (no record has a higher fence): a record removed
    /// by hand under an older announcement does not come back as running.
    fn add_running(self, records: &mut Vec<MigrationRecord>) {
        let highest = highest_fence(records);
        if let Some(a) = self.latest {
            let fence = a.on.0;
            if fence < highest || records.iter().any(|r| r.key == a.key) {
                return;
            }
            records.push(MigrationRecord {
                id: MigrationId::parse_prefixed(&a.key),
                description: None,
                state: RecordState::Running,
                checksum: None,
                started_at: a.at,
                finished_at: None,
                duration_ms: None,
                host: a.host,
                pid: a.pid,
                // Only a migration without a record is announced: its first attempt.
                attempts: 1,
                last_error: None,
                function: None,
                fence: Some(fence),
                declared: None,
                progress: Vec::new(),
                key: a.key,
            });
        }
    }
}

/// Why [`VersionStore::start_after`] failed: the previous migration could not be recorded
/// (it is not applied), or it was and this one could not be started.
#[derive(Debug)]
pub(crate) enum StartError {
    Previous(Error),
    This(Error),
}

/// One write the server refused in an `update` command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refused {
    pub code: i32,
    pub name: String,
    pub message: String,
}

/// The reply of an `update` command: `n` (documents matched or upserted) and the refused
/// statements by index, as MongoDB documents it
/// (<https://www.mongodb.com/docs/manual/reference/command/update/#output>).
#[derive(Debug, Default)]
struct UpdateOutcome {
    n: i64,
    refused: Vec<(i64, Refused)>,
}

impl UpdateOutcome {
    fn of(reply: &Document) -> Self {
        let refused = reply
            .get_array("writeErrors")
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(Bson::as_document)
                    .map(|e| {
                        (
                            read_i64(e.get("index")).unwrap_or(-1),
                            Refused {
                                code: read_i64(e.get("code")).unwrap_or(0) as i32,
                                name: e.get_str("codeName").unwrap_or("").to_owned(),
                                message: e.get_str("errmsg").unwrap_or("").to_owned(),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        UpdateOutcome {
            n: read_i64(reply.get("n")).unwrap_or(0),
            refused,
        }
    }

    /// The refusal of statement `index`, if it was refused.
    fn refused(&self, index: i64) -> Option<Refused> {
        self.refused
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, r)| r.clone())
    }
}

/// What [`VersionStore::start`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Started {
    /// The record says running, under this fence: run the function.
    Running,
    /// Another process applied the migration meanwhile; do not run it.
    AlreadyApplied,
}

/// The highest fence among `records`: the floor of the next acquisition of the lock, so that
/// fences never go back even when the lock document was lost. Absurd values (beyond 2^53) are
/// ignored here; such a record makes its own start fail with a clear error.
pub(crate) fn highest_fence(records: &[MigrationRecord]) -> i64 {
    records
        .iter()
        .filter_map(|r| r.fence)
        .filter(|f| (0..(1_i64 << 53)).contains(f))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(document: Document) -> Result<MigrationRecord> {
        MigrationRecord::from_document(&document, "schema_versions")
    }

    #[test]
    fn a_record_written_by_this_library_reads_back_whole() {
        let at = mongodb::bson::DateTime::from_millis(1_700_000_000_000);
        let r = parse(doc! {
            "_id": "0003", "description": "Replay indexes", "state": "failed",
            "checksum": "abc", "function": "app::replay", "started_at": at, "finished_at": at,
            "duration_ms": 12_i32, "host": "api-1", "pid": 4242_i64, "attempts": 2.0,
            "fence": 7_i64, "last_error": "boom",
        })
        .unwrap();
        assert_eq!(r.key, "0003");
        assert_eq!(r.id, MigrationId::parse("3").ok());
        assert_eq!(r.state, RecordState::Failed);
        assert_eq!(r.checksum.as_deref(), Some("abc"));
        assert_eq!(r.function.as_deref(), Some("app::replay"));
        assert_eq!((r.started_at, r.finished_at), (Some(at), Some(at)));
        assert_eq!(
            (r.duration_ms, r.pid, r.attempts, r.fence),
            (Some(12), Some(4242), 2, Some(7))
        );
        assert_eq!(r.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn a_reference_record_is_an_applied_migration_with_the_number_before_the_underscore() {
        let at = mongodb::bson::DateTime::from_millis(1_600_000_000_000);
        let r =
            parse(doc! { "_id": "0001_events_init", "description": "Events", "applied_at": at })
                .unwrap();
        assert_eq!(r.id, MigrationId::parse("1").ok());
        assert_eq!(r.key, "0001_events_init");
        assert_eq!(r.state, RecordState::Applied);
        assert_eq!(r.finished_at, Some(at), "applied_at stands for finished_at");
        assert_eq!((r.checksum, r.function, r.fence), (None, None, None));
        assert_eq!(r.attempts, 1);
    }

    #[test]
    fn keys_that_are_not_ids_are_kept_as_text() {
        let nested = parse(doc! { "_id": { "a": 1 }, "state": "applied" }).unwrap();
        assert_eq!(nested.id, None);
        assert!(nested.key.contains('a'), "{}", nested.key);
        let word = parse(doc! { "_id": "events" }).unwrap();
        assert_eq!((word.id, word.key.as_str()), (None, "events"));
        let number = parse(doc! { "_id": 5_i32 }).unwrap();
        assert_eq!(
            number.id, None,
            "an id is text; a number _id is not one of ours"
        );
    }

    #[test]
    fn absurd_numbers_never_panic_and_never_go_negative() {
        let r = parse(doc! {
            "_id": "0002", "attempts": i64::MIN, "duration_ms": f64::NAN,
            "pid": "4242", "fence": f64::INFINITY,
        })
        .unwrap();
        assert_eq!(r.attempts, 0);
        assert_eq!((r.duration_ms, r.pid, r.fence), (None, None, None));
        assert_eq!(
            parse(doc! { "_id": "0002", "attempts": "x" })
                .unwrap()
                .attempts,
            1
        );
    }

    #[test]
    fn an_unreadable_state_or_a_missing_id_is_an_error_that_names_the_document() {
        for (document, expected) in [
            (
                doc! { "_id": "0004", "state": "done" },
                "its state is \"done\"",
            ),
            (doc! { "_id": "0004", "state": 3_i32 }, "not a string"),
            (doc! { "state": "applied" }, "it has no _id"),
        ] {
            let err = parse(document).unwrap_err();
            let Error::BadRecord {
                problem,
                collection,
                ..
            } = &err
            else {
                panic!("{err:?}");
            };
            assert!(problem.contains(expected), "{problem}");
            assert_eq!(collection, "schema_versions");
            assert!(
                err.to_string().contains("fix or remove that document"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_running_record_shows_how_far_its_walks_and_index_builds_got() {
        let record = parse(doc! {
            "_id": "0007", "state": "running",
            "checkpoints": {
                "items": { "last_id": 41, "done": 41_i64, "total": 100_i64 },
                "events (indexes)": { "done": 16448, "total": 100000, "indexes": ["idx_tenant"] },
                "odd": "not a checkpoint",
            },
        })
        .unwrap();
        assert_eq!(
            record.progress,
            [
                Progress {
                    collection: "items".into(),
                    done: 41,
                    total: Some(100)
                },
                Progress {
                    collection: "events (indexes)".into(),
                    done: 16448,
                    total: Some(100000)
                },
            ]
        );
    }

    #[test]
    fn the_fence_floor_ignores_values_outside_the_safe_range() {
        let with_fence = |fence: Option<i64>| MigrationRecord {
            fence,
            ..parse(doc! { "_id": "0001" }).unwrap()
        };
        let records = [
            with_fence(Some(5)),
            with_fence(Some(i64::MAX)),
            with_fence(Some(-3)),
            with_fence(None),
            with_fence(Some(9)),
        ];
        assert_eq!(highest_fence(&records), 9);
        assert_eq!(highest_fence(&[]), 0);
    }

    /// The `update` reply as MongoDB documents it: `n` counts matched and upserted documents,
    /// `writeErrors` names each refused statement by its index.
    #[test]
    fn update_replies_say_which_statement_was_refused() {
        let both = UpdateOutcome::of(&doc! { "n": 2, "nModified": 1,
        "upserted": [{ "index": 1, "_id": "0002" }], "ok": 1.0 });
        assert_eq!((both.n, both.refused(0), both.refused(1)), (2, None, None));

        let refused = UpdateOutcome::of(&doc! { "n": 1_i64, "nModified": 1, "ok": 1.0,
        "writeErrors": [{ "index": 1, "code": 11000,
            "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key" }] });
        assert_eq!(refused.n, 1);
        assert_eq!(refused.refused(0), None);
        assert_eq!(
            refused.refused(1),
            Some(Refused {
                code: 11000,
                name: "DuplicateKey".into(),
                message: "E11000 duplicate key".into(),
            })
        );
        // Nothing readable: nothing matched, nothing refused.
        let odd = UpdateOutcome::of(&doc! { "ok": 1.0, "writeErrors": "x" });
        assert_eq!((odd.n, odd.refused(0)), (0, None));
    }

    /// The one-command start against the server (`MONGODB_URI`, which `scripts/test` sets):
    /// a process that lost the lock after its migration ran records nothing applied, and the
    /// `running` record it wrote for the next one is marked failed and taken over by the
    /// newer holder.
    #[tokio::test]
    async fn a_held_back_applied_record_is_fenced_like_any_other() {
        let uri = std::env::var("MONGODB_URI")
            .expect("MONGODB_URI: run the tests with scripts/test, which starts a server");
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let database = client.database(&format!("rt_store_{}", std::process::id()));
        database.drop().await.unwrap();
        let store = VersionStore::new(
            &database,
            DEFAULT_COLLECTION,
            crate::migrator::defaults::MAJORITY_TIMEOUT,
        );
        let declared = |function: &str| Declared {
            description: "d",
            checksum: "c",
            function: function.to_owned(),
        };
        let state = |document: Option<Document>| {
            let d = document.expect("a record");
            (
                d.get_str("state").unwrap().to_owned(),
                read_i64(d.get("fence")).unwrap(),
            )
        };
        let write = |key: &str, fence| AppliedWrite {
            key: key.to_owned(),
            fence,
            duration_ms: 1,
            declared: Vec::new(),
            unrecorded: None,
            next: None,
        };

        // Process A (fence 1) started 0005; it was paused and B (fence 2) started it again.
        assert_eq!(
            store
                .start("0005", &declared("a"), 1, 1, false)
                .await
                .unwrap(),
            Started::Running
        );
        assert_eq!(
            store
                .start("0005", &declared("a"), 2, 2, false)
                .await
                .unwrap(),
            Started::Running
        );
        // A resumes: 0005 returned Ok; its applied record goes with the start of 0006.
        let refused = store
            .start_after(&write("0005", 1), "0006", &declared("b"), 1, 1, false)
            .await;
        let Err(StartError::Previous(Error::LockLost { fence: 1, .. })) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(
            state(store.read("0005").await.unwrap()),
            ("running".into(), 2)
        );
        let stale = store.read("0006").await.unwrap().unwrap();
        assert_eq!(state(Some(stale.clone())), ("failed".into(), 1));
        assert!(
            stale
                .get_str("last_error")
                .unwrap()
                .contains("lost the migration lock"),
            "{stale:?}"
        );

        // B goes on: 0005 applied with the start of 0006, whose stale record it takes over.
        assert_eq!(
            store
                .start_after(&write("0005", 2), "0006", &declared("b"), 2, 1, false)
                .await
                .unwrap(),
            Started::Running
        );
        assert_eq!(
            state(store.read("0005").await.unwrap()),
            ("applied".into(), 2)
        );
        assert_eq!(
            state(store.read("0006").await.unwrap()),
            ("running".into(), 2)
        );

        // 0007 was applied meanwhile by a newer holder (fence 3): B's 0006 is recorded, and
        // 0007 is reported applied, not started again.
        store
            .start("0007", &declared("c"), 3, 1, false)
            .await
            .unwrap();
        store.finish_applied(&write("0007", 3)).await.unwrap();
        assert_eq!(
            store
                .start_after(&write("0006", 2), "0007", &declared("c"), 2, 1, false)
                .await
                .unwrap(),
            Started::AlreadyApplied
        );
        assert_eq!(
            state(store.read("0006").await.unwrap()),
            ("applied".into(), 2)
        );
        assert_eq!(
            state(store.read("0007").await.unwrap()),
            ("applied".into(), 3)
        );
        database.drop().await.unwrap();
    }

    /// The announced protocol against the server: a migration announced on the record before
    /// it reads as running, is recorded by one insert, and that insert (and its late `running`
    /// record) is refused once a newer holder started it again; removing a record removes its
    /// announcement, and an announcement older than the latest holder's records is not read.
    #[tokio::test]
    async fn an_announced_migration_is_recorded_by_one_insert_fenced_like_any_write() {
        let uri = std::env::var("MONGODB_URI")
            .expect("MONGODB_URI: run the tests with scripts/test, which starts a server");
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let database = client.database(&format!("rt_announce_{}", std::process::id()));
        database.drop().await.unwrap();
        let store = VersionStore::new(
            &database,
            DEFAULT_COLLECTION,
            crate::migrator::defaults::MAJORITY_TIMEOUT,
        );
        let announced = |key: &str, fence| Announced {
            key: key.to_owned(),
            fence,
            attempt: 1,
            description: format!("migration {key}"),
            checksum: "c".into(),
            function: format!("app::m{key}"),
        };
        let write = |key: &str, fence, next: Option<Announced>| AppliedWrite {
            key: key.to_owned(),
            fence,
            duration_ms: 1,
            declared: Vec::new(),
            unrecorded: None,
            next,
        };
        let inserted = |key: &str, fence, next: Option<Announced>| AppliedWrite {
            unrecorded: Some(Unrecorded {
                late: std::sync::Arc::new(LateStart::new(store.clone(), announced(key, fence))),
                started_at: mongodb::bson::DateTime::now(),
            }),
            ..write(key, fence, next)
        };
        let loaded = |records: &[MigrationRecord], key: &str| {
            records
                .iter()
                .filter(|r| r.key == key)
                .map(|r| (r.state, r.fence, r.attempts))
                .collect::<Vec<_>>()
        };
        let raw = |document: Option<Document>| {
            let d = document.expect("a record");
            (
                d.get_str("state").unwrap().to_owned(),
                read_i64(d.get("fence")).unwrap(),
                read_i64(d.get("attempts")).unwrap(),
            )
        };

        // Holder A (fence 1) ran 0001; 0002 starts announced on its applied record.
        let first = announced("0001", 1);
        store
            .start("0001", &first.declared(), 1, 1, false)
            .await
            .unwrap();
        store
            .finish_applied(&write("0001", 1, Some(announced("0002", 1))))
            .await
            .unwrap();
        assert_eq!(store.read("0002").await.unwrap(), None);
        let records = store.load().await.unwrap();
        assert_eq!(
            loaded(&records, "0002"),
            [(RecordState::Running, Some(1), 1)]
        );
        let running = records.iter().find(|r| r.key == "0002").unwrap();
        assert_eq!(running.pid, Some(i64::from(std::process::id())));
        assert!(running.started_at.is_some(), "{running:?}");

        // 0002 ends: one insert, which announces 0003.
        store
            .finish_applied(&inserted("0002", 1, Some(announced("0003", 1))))
            .await
            .unwrap();
        assert_eq!(
            raw(store.read("0002").await.unwrap()),
            ("applied".into(), 1, 1)
        );
        let records = store.load().await.unwrap();
        assert_eq!(
            loaded(&records, "0002"),
            [(RecordState::Applied, Some(1), 1)]
        );
        assert_eq!(
            loaded(&records, "0003"),
            [(RecordState::Running, Some(1), 1)]
        );

        // A is paused in 0003; B (fence 2) takes over and starts it again.
        store
            .start("0003", &announced("0003", 2).declared(), 2, 2, false)
            .await
            .unwrap();
        // A resumes: neither its late `running` record nor its insert is written.
        let late = LateStart::new(store.clone(), announced("0003", 1));
        let refused = late.ensure().await;
        assert!(
            matches!(refused, Err(Error::LockLost { fence: 1, .. })),
            "{refused:?}"
        );
        let refused = store.finish_applied(&inserted("0003", 1, None)).await;
        assert!(
            matches!(refused, Err(Error::LockLost { fence: 1, .. })),
            "{refused:?}"
        );
        assert_eq!(
            raw(store.read("0003").await.unwrap()),
            ("running".into(), 2, 2)
        );

        // B rolls 0003 back: its announcement goes with its record.
        store.remove("0003", 2).await.unwrap();
        let records = store.load().await.unwrap();
        assert_eq!(loaded(&records, "0003"), []);
        assert!(
            store
                .read("0002")
                .await
                .unwrap()
                .unwrap()
                .get("next")
                .is_none()
        );

        // A record removed by hand under an announcement older than the latest holder's
        // records does not come back as running.
        store
            .baseline("0009", &announced("0009", 3).declared(), 3)
            .await
            .unwrap();
        store
            .collection
            .delete_one(doc! { "_id": "0002" })
            .await
            .unwrap();
        let records = store.load().await.unwrap();
        assert_eq!(loaded(&records, "0002"), []);
        database.drop().await.unwrap();
    }
}
