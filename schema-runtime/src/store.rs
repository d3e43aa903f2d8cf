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

use bson::{Bson, Document, doc};
use futures::TryStreamExt;
use mongodb::options::{CollectionOptions, ReadConcern, WriteConcern};
use mongodb::{Collection, Database};
use schema_id::MigrationId;

use crate::error::driver::is_duplicate_key;
use crate::error::{Error, Result};
use crate::wire::{host, pid, read_i64};

/// The collection records are kept in unless configured otherwise.
pub(crate) const DEFAULT_COLLECTION: &str = "schema_versions";

/// The first batch of the applied-set query holds every record, so that reading it is a single
/// command; the server caps a batch at 16 MiB, about 40,000 records.
const LOAD_BATCH_SIZE: u32 = 100_000;

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
    pub started_at: Option<bson::DateTime>,
    /// When the last attempt ended (`applied_at` for the reference system's documents).
    pub finished_at: Option<bson::DateTime>,
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
    collection: Collection<Document>,
}

impl VersionStore {
    /// The store in `database`'s collection `name`.
    pub(crate) fn new(database: &Database, name: &str) -> Self {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(WriteConcern::majority())
            .build();
        VersionStore {
            collection: database.collection_with_options(name, options),
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
        let cursor = self
            .collection
            .find(doc! {})
            .batch_size(LOAD_BATCH_SIZE)
            .await
            .map_err(failed)?;
        let documents: Vec<Document> = cursor.try_collect().await.map_err(failed)?;
        documents
            .iter()
            .map(|d| MigrationRecord::from_document(d, self.name()))
            .collect()
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
            "$unset": { "finished_at": "", "duration_ms": "" },
            "$currentDate": { "started_at": true },
        };
        let mut filter = written_by_fence_or_older(key, fence);
        if !rerun {
            filter.insert("state", doc! { "$ne": RecordState::Applied.as_str() });
        }
        match self
            .collection
            .update_one(filter, update)
            .upsert(true)
            .await
        {
            Ok(_) => Ok(Started::Running),
            Err(e) if is_duplicate_key(&e) => {
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
            Err(e) => Err(Error::database(
                format!("recording the start in {}", self.name()),
                Some(key),
                e,
            )),
        }
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
    pub(crate) async fn finish_applied(
        &self,
        key: &str,
        fence: i64,
        duration_ms: i64,
    ) -> Result<()> {
        self.update_fenced(
            key,
            fence,
            running_under(key, fence),
            applied_update(duration_ms),
            None,
            "recording it as applied",
        )
        .await
    }

    /// Like [`VersionStore::finish_applied`], inside `session`'s transaction.
    pub(crate) async fn finish_applied_in(
        &self,
        session: &mut mongodb::ClientSession,
        key: &str,
        fence: i64,
        duration_ms: i64,
    ) -> Result<()> {
        self.update_fenced(
            key,
            fence,
            running_under(key, fence),
            applied_update(duration_ms),
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

    /// Removes `key`'s record after its rollback ran, by the holder of `fence`.
    pub(crate) async fn remove(&self, key: &str, fence: i64) -> Result<()> {
        let result = self
            .collection
            .delete_one(written_by_fence_or_older(key, fence))
            .await
            .map_err(|e| {
                Error::database(
                    format!("removing the record from {}", self.name()),
                    Some(key),
                    e,
                )
            })?;
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
            "$unset": { "last_error": "", "duration_ms": "" },
            "$currentDate": { "finished_at": true, "applied_at": true },
            "$setOnInsert": { "attempts": 0_i64 },
        };
        self.upsert_fenced(key, fence, update, "recording a baseline")
            .await
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
/// protect the record.
fn written_by_fence_or_older(key: &str, fence: i64) -> Document {
    doc! {
        "_id": key,
        "$or": [
            { "fence": { "$exists": false } },
            { "fence": { "$not": { "$type": "number" } } },
            { "fence": f64::NAN },
            { "fence": { "$lte": fence } },
        ],
    }
}

/// `key`'s record while it is running under `fence`.
fn running_under(key: &str, fence: i64) -> Document {
    doc! { "_id": key, "fence": fence, "state": RecordState::Running.as_str() }
}

fn applied_update(duration_ms: i64) -> Document {
    doc! {
        "$set": { "state": RecordState::Applied.as_str(), "duration_ms": duration_ms },
        "$unset": { "last_error": "", "checkpoints": "" },
        "$currentDate": { "finished_at": true, "applied_at": true },
    }
}

fn fenced(matched: u64, key: &str, fence: i64) -> Result<()> {
    if matched == 1 {
        Ok(())
    } else {
        Err(Error::LockLost {
            migration: MigrationId::parse_prefixed(key),
            fence,
            reason: format!(
                "its record is no longer the one this process started under fence {fence}: a newer lock holder started it again"
            ),
            applied_before: Vec::new(),
        })
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
        let at = bson::DateTime::from_millis(1_700_000_000_000);
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
        let at = bson::DateTime::from_millis(1_600_000_000_000);
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
}
