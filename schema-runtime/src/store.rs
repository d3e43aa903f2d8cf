//! The store of `schema_versions`: one document per migration.
//!
//! A document written by this library:
//!
//! ```text
//! { _id: "0003", description: "...", state: "applied" | "running" | "failed",
//!   checksum: "<hex sha-256 of the body's tokens>", function: "app::migrations::replay",
//!   started_at: Date, finished_at: Date, applied_at: Date, duration_ms: 12,
//!   host: "api-7f9c", pid: 4242, attempts: 1, last_error: "..." }
//! ```
//!
//! Documents written by the reference Python system hold only `_id` (such as
//! `"0001_events_init"`), `description` and `applied_at`; they read as applied migrations whose
//! id is the number before the first `_`. Times come from the server's clock (`$currentDate`).

use bson::{Bson, Document, doc};
use futures::TryStreamExt;
use mongodb::options::{CollectionOptions, ReadConcern, ReturnDocument, WriteConcern};
use mongodb::{Collection, Database};
use schema_id::MigrationId;

use crate::error::{Error, Result};
use crate::registry::Migration;

/// The collection records are kept in unless configured otherwise.
pub const DEFAULT_COLLECTION: &str = "schema_versions";

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
        let number = |field: &str| match document.get(field) {
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Double(n)) => Some(*n as i64),
            _ => None,
        };
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
            attempts: number("attempts").unwrap_or(1),
            last_error: text("last_error"),
            key,
        })
    }
}

/// Reads and writes `schema_versions` with majority read and write concern.
#[derive(Debug, Clone)]
pub struct VersionStore {
    collection: Collection<Document>,
}

impl VersionStore {
    /// The store in `database`'s collection `name`.
    pub fn new(database: &Database, name: &str) -> Self {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(WriteConcern::majority())
            .build();
        VersionStore {
            collection: database.collection_with_options(name, options),
        }
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        self.collection.name()
    }

    /// Every record, in one `find`.
    pub async fn load(&self) -> Result<Vec<MigrationRecord>> {
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

    /// Marks `migration` running under `key` before its function runs; returns the attempt number.
    pub async fn start(&self, key: &str, migration: &Migration) -> Result<i64> {
        let update = doc! {
            "$set": {
                "description": migration.description(),
                "state": RecordState::Running.as_str(),
                "checksum": migration.checksum(),
                "function": migration.function(),
                "host": host(),
                "pid": i64::from(std::process::id()),
            },
            "$unset": { "finished_at": "", "duration_ms": "" },
            "$currentDate": { "started_at": true },
            "$inc": { "attempts": 1 },
        };
        let after = self
            .collection
            .find_one_and_update(doc! { "_id": key }, update)
            .upsert(true)
            .return_document(ReturnDocument::After)
            .projection(doc! { "attempts": 1 })
            .await
            .map_err(|e| {
                Error::database(
                    format!("recording the start in {}", self.name()),
                    Some(key),
                    e,
                )
            })?;
        Ok(after
            .and_then(|d| match d.get("attempts") {
                Some(Bson::Int32(n)) => Some(i64::from(*n)),
                Some(Bson::Int64(n)) => Some(*n),
                _ => None,
            })
            .unwrap_or(1))
    }

    /// Marks `key` applied; called only after its function returned `Ok`.
    pub async fn finish_applied(&self, key: &str, duration_ms: i64) -> Result<()> {
        let update = doc! {
            "$set": { "state": RecordState::Applied.as_str(), "duration_ms": duration_ms },
            "$unset": { "last_error": "" },
            "$currentDate": { "finished_at": true, "applied_at": true },
        };
        self.update(key, update, "recording it as applied").await
    }

    /// Marks `key` failed with the error's text.
    pub async fn finish_failed(&self, key: &str, duration_ms: i64, message: &str) -> Result<()> {
        let update = doc! {
            "$set": {
                "state": RecordState::Failed.as_str(),
                "duration_ms": duration_ms,
                "last_error": message,
            },
            "$currentDate": { "finished_at": true },
        };
        self.update(key, update, "recording the failure").await
    }

    async fn update(&self, key: &str, update: Document, what: &str) -> Result<()> {
        let result = self
            .collection
            .update_one(doc! { "_id": key }, update)
            .await
            .map_err(|e| Error::database(format!("{what} in {}", self.name()), Some(key), e))?;
        if result.matched_count == 0 {
            return Err(Error::BadRecord {
                id: key.to_owned(),
                collection: self.name().to_owned(),
                problem: format!(
                    "it disappeared while the migration ran, so {what} found nothing to update"
                ),
            });
        }
        Ok(())
    }
}

fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
