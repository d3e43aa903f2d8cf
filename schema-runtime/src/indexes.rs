//! `ensure_indexes`: create named indexes that are missing, leave identical ones alone, and refuse
//! a same-name index with another definition.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use schema_id::MigrationId;

use crate::error::{Error, Result};

/// The server's error code for a collection that does not exist.
const NAMESPACE_NOT_FOUND: i32 = 26;

/// A named index: its keys and options.
///
/// ```
/// use std::time::Duration;
/// use schema_runtime::IndexSpec;
/// use schema_runtime::bson::doc;
///
/// let specs = [
///     IndexSpec::new("idx_event_id_unique", doc! { "event_id": 1 }).unique(),
///     IndexSpec::new("idx_type_ts", doc! { "event_type": 1, "timestamp": -1 }),
///     IndexSpec::new("idx_pod", doc! { "payload.pod_name": 1 }).sparse(),
///     IndexSpec::new("idx_ttl", doc! { "created_at": 1 }).ttl(Duration::from_secs(3600)),
///     IndexSpec::new("idx_open", doc! { "status": 1 }).partial(doc! { "status": "open" }),
///     IndexSpec::new("idx_text", doc! { "title": "text" })
///         .default_language("english")
///         .language_override("none"),
/// ];
/// assert_eq!(specs[0].name(), "idx_event_id_unique");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    name: String,
    keys: Document,
    options: Document,
    /// Whether a unique index is checked for duplicate keys before it is built.
    duplicate_check: bool,
}

impl IndexSpec {
    /// An index called `name` on `keys` (`1` ascending, `-1` descending, `"text"`, `"2dsphere"`, ...).
    pub fn new(name: impl Into<String>, keys: Document) -> Self {
        IndexSpec {
            name: name.into(),
            keys,
            options: Document::new(),
            duplicate_check: true,
        }
    }

    /// Builds a unique index without first looking for documents that share a key. By default
    /// `ensure_indexes` looks (one aggregation over the collection, grouping by the index's
    /// keys) and refuses with [`Error::DuplicateKeys`] before building, rather than letting a
    /// long build fail on them at the end.
    pub fn without_duplicate_check(mut self) -> Self {
        self.duplicate_check = false;
        self
    }

    /// Refuses two documents with the same key.
    pub fn unique(self) -> Self {
        self.option("unique", true)
    }

    /// Hidden from the query planner (still maintained); see [`hide_index`].
    pub fn hidden(self) -> Self {
        self.option("hidden", true)
    }

    /// Leaves documents without the field out of the index.
    pub fn sparse(self) -> Self {
        self.option("sparse", true)
    }

    /// Indexes only the documents that match `filter`.
    pub fn partial(self, filter: Document) -> Self {
        self.option("partialFilterExpression", filter)
    }

    /// Deletes documents `after` the time in the indexed date field (a TTL index).
    pub fn ttl(self, after: Duration) -> Self {
        self.option("expireAfterSeconds", after.as_secs() as i64)
    }

    /// The language of a text index.
    pub fn default_language(self, language: &str) -> Self {
        self.option("default_language", language)
    }

    /// The field that holds a document's language for a text index (`"none"` to ignore it).
    pub fn language_override(self, field: &str) -> Self {
        self.option("language_override", field)
    }

    /// The index's collation (`{ locale: "en", strength: 2 }` for case-insensitive English).
    /// Compared with what the server lists as MongoDB expands it: options at their default
    /// and the ICU version do not count, and on a collection with a default collation an index
    /// without one has the collection's.
    pub fn collation(self, collation: Document) -> Self {
        self.option("collation", collation)
    }

    /// Any other `createIndexes` option, as the server names it.
    pub fn option(mut self, key: &str, value: impl Into<Bson>) -> Self {
        self.options.insert(key, value.into());
        self
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The index's keys, in order.
    pub fn keys(&self) -> &Document {
        &self.keys
    }

    /// The document sent in `createIndexes`.
    pub fn to_document(&self) -> Document {
        let mut document = doc! { "key": self.keys.clone(), "name": &self.name };
        document.extend(self.options.clone());
        document
    }

    /// The spec a declaration on a record holds (`to_document` with `kind` and `collection`).
    pub(crate) fn from_declared(entry: &Document) -> Option<IndexSpec> {
        let mut spec = IndexSpec::new(
            entry.get_str("name").ok()?,
            entry.get_document("key").ok()?.clone(),
        );
        for (key, value) in entry {
            if !matches!(key.as_str(), "kind" | "collection" | "key" | "name") {
                spec.options.insert(key, value.clone());
            }
        }
        Some(spec)
    }

    /// Hidden or not, as `hide_index` / `unhide_index` left it.
    pub(crate) fn set_hidden(&mut self, hidden: bool) {
        if hidden {
            self.options.insert("hidden", true);
        } else {
            self.options.remove("hidden");
        }
    }

    /// The definition as `listIndexes` reports it, for comparison.
    pub(crate) fn canonical(&self) -> Document {
        let has_text = self.keys.values().any(|v| v.as_str() == Some("text"));
        let mut spec = Document::new();
        if has_text {
            // The server stores a text index as `_fts`/`_ftsx` with the text fields as weights.
            let mut key = Document::new();
            let mut weights = Document::new();
            for (field, kind) in &self.keys {
                if kind.as_str() == Some("text") {
                    if !key.contains_key("_fts") {
                        key.insert("_fts", "text");
                        key.insert("_ftsx", 1);
                    }
                    weights.insert(field, 1);
                } else {
                    key.insert(field, kind.clone());
                }
            }
            spec.insert("key", key);
            let weights = match self.options.get_document("weights") {
                Ok(given) => {
                    let mut all = weights;
                    all.extend(given.clone());
                    all
                }
                Err(_) => weights,
            };
            spec.insert("weights", weights);
            spec.insert(
                "default_language",
                self.options
                    .get_str("default_language")
                    .unwrap_or("english"),
            );
            spec.insert(
                "language_override",
                self.options
                    .get_str("language_override")
                    .unwrap_or("language"),
            );
        } else {
            spec.insert("key", self.keys.clone());
        }
        for (key, value) in &self.options {
            if !matches!(
                key.as_str(),
                "weights" | "default_language" | "language_override"
            ) {
                spec.insert(key, value.clone());
            }
        }
        canonicalize(spec)
    }
}

/// What `ensure_indexes` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Indexes that were created.
    pub created: Vec<String>,
    /// Indexes that already existed with the same definition.
    pub unchanged: Vec<String>,
    /// Indexes changed in place with `collMod` (a new TTL, hidden or not, made unique), without
    /// a rebuild.
    pub modified: Vec<String>,
    /// Things to know, such as a build on a large collection (also logged as tracing warnings).
    pub warnings: Vec<String>,
}

/// Makes sure `collection` has every index of `indexes`, by name. Sends one `listIndexes` and, if
/// anything is missing, one `createIndexes` for all missing indexes. An index that exists under
/// the same name with another definition is an [`Error::IndexConflict`] showing both.
pub async fn ensure_indexes(
    database: &Database,
    collection: &str,
    indexes: &[IndexSpec],
) -> Result<IndexReport> {
    ensure_indexes_for(database, collection, indexes, &IndexRun::default()).await
}

/// How index helpers run inside a migration: what the migrator's settings say.
#[derive(Debug, Clone)]
pub(crate) struct IndexRun<'a> {
    /// The migration, for errors.
    pub migration: Option<&'a str>,
    /// The estimated document count above which a build warns.
    pub large_collection: u64,
    /// Whether a build's progress is drawn as a bar.
    pub progress_bars: bool,
    /// `commitQuorum` for `createIndexes` (replica sets), when set.
    pub commit_quorum: Option<Bson>,
    /// The running migration's record, where a long build's progress is kept (as a checkpoint
    /// `"<collection> (indexes)"`) for `Migrator::status()` and `/health`.
    pub record: Option<crate::store::CheckpointTarget>,
}

impl Default for IndexRun<'_> {
    fn default() -> Self {
        IndexRun {
            migration: None,
            large_collection: crate::migrator::defaults::LARGE_COLLECTION,
            progress_bars: false,
            commit_quorum: None,
            record: None,
        }
    }
}

pub(crate) async fn ensure_indexes_for(
    database: &Database,
    collection: &str,
    indexes: &[IndexSpec],
    run: &IndexRun<'_>,
) -> Result<IndexReport> {
    let migration = run.migration;
    let existing = list_indexes(database, collection, migration).await?;
    // The collection's default collation, which indexes without one inherit: asked (one
    // `listCollections`) only when a collation is in play.
    let collation_in_play = existing.iter().any(|i| i.contains_key("collation"))
        || indexes
            .iter()
            .any(|s| s.canonical().contains_key("collation"));
    let default_collation = if collation_in_play {
        crate::collection::collection_info(database, collection, migration)
            .await?
            .and_then(|info| info.get_document("options").ok().cloned())
            .and_then(|options| options.get_document("collation").ok().cloned())
    } else {
        None
    };
    let existing_form = |index: &Document| {
        without_inherited_collation(canonical_existing(index), default_collation.as_ref())
    };
    let requested_form = |spec: &IndexSpec| {
        without_inherited_collation(spec.canonical(), default_collation.as_ref())
    };
    let mut report = IndexReport::default();
    let mut to_create = Vec::new();
    let mut to_modify = Vec::new();
    for spec in indexes {
        match existing
            .iter()
            .find(|d| d.get_str("name").ok() == Some(spec.name()))
        {
            Some(found) => {
                let existing = existing_form(found);
                let requested = requested_form(spec);
                if same_definition(&existing, &requested) {
                    report.unchanged.push(spec.name().to_owned());
                    continue;
                }
                match in_place_changes(&existing, &requested) {
                    Some(changes) => to_modify.push((spec, changes)),
                    None => {
                        return Err(Error::IndexConflict {
                            collection: collection.to_owned(),
                            name: spec.name().to_owned(),
                            existing: Box::new(existing),
                            requested: Box::new(requested),
                            migration: migration.and_then(MigrationId::parse_prefixed),
                        });
                    }
                }
            }
            None => {
                let requested = requested_form(spec);
                if let Some(taken) = existing
                    .iter()
                    .find(|d| same_definition(&existing_form(d), &requested))
                {
                    return Err(Error::IndexKeysTaken {
                        collection: collection.to_owned(),
                        name: spec.name().to_owned(),
                        existing_name: taken.get_str("name").unwrap_or("?").to_owned(),
                        existing: Box::new(existing_form(taken)),
                        requested: Box::new(requested),
                        migration: migration.and_then(MigrationId::parse_prefixed),
                    });
                }
                to_create.push(Bson::Document(spec.to_document()));
                report.created.push(spec.name().to_owned());
            }
        }
    }
    // Every check before any change: a conflict (above) or duplicate keys leave the collection
    // as it was. A collection with no index does not exist yet, so it holds no duplicates.
    if !existing.is_empty() {
        let becoming_unique = to_modify
            .iter()
            .filter(|(_, changes)| changes.make_unique)
            .map(|(spec, _)| *spec);
        let created = indexes
            .iter()
            .filter(|s| report.created.iter().any(|name| name == s.name()));
        for spec in becoming_unique.chain(created) {
            duplicate_keys(database, collection, spec, migration).await?;
        }
    }
    for (spec, changes) in &to_modify {
        modify_in_place(database, collection, spec, changes, migration).await?;
        report.modified.push(spec.name().to_owned());
    }
    if !to_create.is_empty()
        && !existing.is_empty()
        && let Some(warning) =
            large_collection_warning(database, collection, &report.created, run.large_collection)
                .await
    {
        tracing::warn!(collection, "{warning}");
        report.warnings.push(warning);
    }
    if !to_create.is_empty() {
        let mut command = doc! {
            "createIndexes": collection,
            "indexes": to_create,
            "writeConcern": crate::wire::majority_document(),
        };
        if let Some(quorum) = &run.commit_quorum {
            command.insert("commitQuorum", quorum.clone());
        }
        create_with_progress(database, collection, command, &report.created, run)
            .await
            .map_err(|e| {
                Error::database(
                    format!(
                        "creating indexes {:?} on collection {collection:?}",
                        report.created
                    ),
                    migration,
                    e,
                )
            })?;
    }
    Ok(report)
}

/// How long a build runs before its progress is first read, and then how often.
const PROGRESS_FIRST: Duration = Duration::from_secs(2);
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often the progress goes to tracing.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(10);

/// Runs `createIndexes` and, while it runs past [`PROGRESS_FIRST`], reads the build's progress
/// from `$currentOp` every [`PROGRESS_EVERY`]: to tracing every [`PROGRESS_LOG_EVERY`] (done,
/// total, rate) and to a progress bar when asked. A server that reports none (no `$currentOp`,
/// no privilege for it, or no `progress` field) is said once.
async fn create_with_progress(
    database: &Database,
    collection: &str,
    command: Document,
    names: &[String],
    run: &IndexRun<'_>,
) -> mongodb::error::Result<Document> {
    let progress_bars = run.progress_bars;
    // Sent once more after an election or a network error: a build of the same specs is a
    // no-op once the first one is done, and joins it while it runs.
    let build = crate::wire::run_idempotent(database, command, &[]);
    tokio::pin!(build);
    let started = std::time::Instant::now();
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_FIRST, PROGRESS_EVERY);
    let mut bar: Option<crate::progress::Progress> = None;
    // The phase being shown: its name, when it was first seen, and its count then.
    let mut phase: Option<(String, std::time::Instant, u64)> = None;
    let mut last_log: Option<std::time::Instant> = None;
    let mut said_none = false;
    loop {
        tokio::select! {
            result = &mut build => {
                if let Some(bar) = &bar {
                    bar.finish();
                }
                return result;
            }
            _ = ticks.tick() => {
                match build_progress(database, collection).await {
                    Ok(Some(progress)) => {
                        // A new phase counts other things: a bar and a rate of its own.
                        if phase.as_ref().is_none_or(|(name, _, _)| *name != progress.phase) {
                            if let Some(bar) = bar.take() {
                                bar.finish();
                            }
                            phase = Some((progress.phase.clone(), std::time::Instant::now(), progress.done));
                            last_log = None;
                        }
                        let (name, since, from) = phase.as_ref().expect("set above");
                        let BuildProgress { done, total, .. } = progress;
                        let bar = bar.get_or_insert_with(|| {
                            crate::progress::Progress::new(progress_bars, total, &format!("{collection} indexes: {name}"), done)
                        });
                        bar.set_position(done);
                        if last_log.is_none_or(|at| at.elapsed() >= PROGRESS_LOG_EVERY) {
                            last_log = Some(std::time::Instant::now());
                            let rate = done.saturating_sub(*from) as f64 / since.elapsed().as_secs_f64().max(0.001);
                            tracing::info!(collection, indexes = ?names, phase = %name, done, total, rate = rate.round() as u64, "building indexes");
                            if let Some(record) = &run.record {
                                keep_progress(record, collection, names, name, done, total).await;
                            }
                        }
                    }
                    outcome if !said_none => {
                        said_none = true;
                        let why = match outcome {
                            Err(e) => format!("$currentOp cannot be read: {}", crate::scrub(&e.to_string())),
                            _ => "the server reports no progress for it".to_owned(),
                        };
                        tracing::info!(collection, indexes = ?names, elapsed_s = started.elapsed().as_secs(), "the index build is still running; {why}, so none is shown");
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Keeps a build's progress on the running migration's record, beside the batch checkpoints
/// (`checkpoints.<collection> (indexes)`: `done`, `total`, `indexes`), so that the status of
/// another process shows it. Best effort: a failed write only loses the display.
async fn keep_progress(
    record: &crate::store::CheckpointTarget,
    collection: &str,
    names: &[String],
    phase: &str,
    done: u64,
    total: u64,
) {
    let field = format!("checkpoints.{} (indexes)", collection.replace('.', "_"));
    let progress =
        doc! { "done": done as i64, "total": total as i64, "indexes": names, "phase": phase };
    let kept = match record.recorded().await {
        Ok(()) => {
            record
                .store
                .checkpoint(&record.key, record.fence, &field, progress, None)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = kept {
        tracing::debug!(error = %e, "the index build's progress was not kept on the record");
    }
}

/// The progress of the index build on `collection`, as `$currentOp` reports it.
async fn build_progress(
    database: &Database,
    collection: &str,
) -> mongodb::error::Result<Option<BuildProgress>> {
    let namespace = format!("{}.{collection}", database.name());
    let commands = format!("{}.$cmd", database.name());
    // `$currentOp` runs on `admin` only (https://www.mongodb.com/docs/manual/reference/operator/aggregation/currentOp/).
    let pipeline = [
        doc! { "$currentOp": { "allUsers": true, "idleConnections": false } },
        doc! { "$match": { "progress": { "$exists": true }, "ns": { "$in": [&namespace, &commands] } } },
    ];
    let ops: Vec<Document> = database
        .client()
        .database("admin")
        .aggregate(pipeline)
        .await?
        .try_collect()
        .await?;
    Ok(ops
        .iter()
        .filter(|op| is_build_of(op, database.name(), collection))
        .find_map(progress_of))
}

/// Whether a `$currentOp` entry is a build of indexes on `database.collection`. MongoDB shows a
/// build under the collection's own namespace; its `command` may be cut to
/// `{ $truncated: "...", comment }` when large
/// (<https://www.mongodb.com/docs/manual/reference/command/currentOp/#mongodb-data-currentOp.command>),
/// so a truncated command or an `Index Build` message on that namespace counts too. Under the
/// database's `$cmd` namespace only a command naming the collection counts.
fn is_build_of(op: &Document, database: &str, collection: &str) -> bool {
    let ns = op.get_str("ns").unwrap_or_default();
    let command = op.get_document("command").ok();
    let names_it = command.is_some_and(|c| c.get_str("createIndexes").ok() == Some(collection));
    if ns == format!("{database}.{collection}") {
        names_it
            || command.is_some_and(|c| c.contains_key("$truncated"))
            || op
                .get_str("msg")
                .is_ok_and(|m| m.starts_with("Index Build"))
    } else {
        ns == format!("{database}.$cmd") && names_it
    }
}

/// One phase of an index build as `$currentOp` reports it: MongoDB counts the documents it
/// scans, then the keys it inserts from its sorter, each phase with its own `done` and
/// `total`, so a rate is only meaningful within one phase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BuildProgress {
    phase: String,
    done: u64,
    total: u64,
}

/// The progress of one `$currentOp` entry of an index build, whose documented shape is
/// `{ ..., "msg": "Index Build: scanning collection ...", "progress": { "done": 16448, "total":
/// 100000 } }` (<https://www.mongodb.com/docs/manual/reference/command/currentOp/#currentop-index-creation>).
/// The phase is the message's last `Index Build: ...` part up to its counts.
fn progress_of(op: &Document) -> Option<BuildProgress> {
    let progress = op.get_document("progress").ok()?;
    let done = crate::wire::read_i64(progress.get("done"))?;
    let total = crate::wire::read_i64(progress.get("total"))?;
    if done < 0 || total <= 0 {
        return None;
    }
    let phase = op
        .get_str("msg")
        .ok()
        .and_then(|m| m.rsplit("Index Build: ").next())
        .map(|m| m.split(':').next().unwrap_or(m).trim().to_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "building".to_owned());
    Some(BuildProgress {
        phase,
        done: done as u64,
        total: total as u64,
    })
}

/// The options MongoDB changes on an existing index with `collMod`, without rebuilding it
/// (<https://www.mongodb.com/docs/manual/reference/command/collMod/#change-index-properties>):
/// `expireAfterSeconds` (a TTL index's, not added or removed), `hidden` (4.4+), and `unique`
/// (6.0+, through `prepareUnique` first).
#[derive(Debug, Clone, PartialEq)]
struct InPlace {
    expire_after_seconds: Option<Bson>,
    hidden: Option<bool>,
    make_unique: bool,
}

/// What `collMod` must change to turn `existing` into `requested` (both canonical), when that
/// is all that differs; `None` when the index must be rebuilt.
fn in_place_changes(existing: &Document, requested: &Document) -> Option<InPlace> {
    let mut existing = existing.clone();
    let mut requested = requested.clone();
    let mut changes = InPlace {
        expire_after_seconds: None,
        hidden: None,
        make_unique: false,
    };
    const TTL: &str = "expireAfterSeconds";
    match (existing.remove(TTL), requested.remove(TTL)) {
        (Some(old), Some(new)) if old != new => changes.expire_after_seconds = Some(new),
        (Some(_), Some(_)) | (None, None) => {}
        // Adding or removing a TTL is a rebuild.
        _ => return None,
    }
    let hidden = |d: &mut Document| {
        d.remove("hidden")
            .and_then(|h| h.as_bool())
            .unwrap_or(false)
    };
    let (was_hidden, hide) = (hidden(&mut existing), hidden(&mut requested));
    if was_hidden != hide {
        changes.hidden = Some(hide);
    }
    let unique = |d: &mut Document| {
        d.remove("unique")
            .and_then(|u| u.as_bool())
            .unwrap_or(false)
    };
    match (unique(&mut existing), unique(&mut requested)) {
        (false, true) => changes.make_unique = true,
        // Dropping uniqueness is a rebuild.
        (true, false) => return None,
        _ => {}
    }
    existing.remove("prepareUnique");
    requested.remove("prepareUnique");
    let nothing =
        changes.expire_after_seconds.is_none() && changes.hidden.is_none() && !changes.make_unique;
    (same_definition(&existing, &requested) && !nothing).then_some(changes)
}

async fn modify_in_place(
    database: &Database,
    collection: &str,
    spec: &IndexSpec,
    changes: &InPlace,
    migration: Option<&str>,
) -> Result<()> {
    let mut steps = Vec::new();
    if let Some(seconds) = &changes.expire_after_seconds {
        steps.push(doc! { "name": spec.name(), "expireAfterSeconds": seconds.clone() });
    }
    if let Some(hidden) = changes.hidden {
        steps.push(doc! { "name": spec.name(), "hidden": hidden });
    }
    if changes.make_unique {
        // After the same preflight as for a new unique index, MongoDB's two steps: from
        // `prepareUnique` on, new duplicates are refused; `unique` then checks the rest.
        steps.push(doc! { "name": spec.name(), "prepareUnique": true });
        steps.push(doc! { "name": spec.name(), "unique": true });
    }
    // Whether `prepareUnique: true` is on: from then on the application's inserts of duplicate
    // keys fail, so a conversion that stops there must be undone.
    let mut prepared = false;
    for index in steps {
        let command = doc! {
            "collMod": collection,
            "index": index.clone(),
            "writeConcern": crate::wire::majority_document(),
        };
        if let Err(e) = crate::wire::run_idempotent(database, command, &[]).await {
            let undone = if prepared {
                undo_prepare_unique(database, collection, spec.name()).await
            } else {
                String::new()
            };
            return Err(Error::database(
                format!(
                    "changing index {:?} of collection {collection:?} in place (collMod {index}){undone}",
                    spec.name()
                ),
                migration,
                e,
            ));
        }
        prepared |= index.get_bool("prepareUnique").ok() == Some(true);
    }
    tracing::info!(
        collection,
        index = spec.name(),
        ?changes,
        "changed an index in place"
    );
    Ok(())
}

/// Sets `prepareUnique` of index `name` back to false after a unique conversion that failed
/// half-way (MongoDB's documented way to abandon it:
/// <https://www.mongodb.com/docs/manual/core/index-unique/convert-to-unique/>); what happened,
/// for the error.
async fn undo_prepare_unique(database: &Database, collection: &str, name: &str) -> String {
    let command = doc! {
        "collMod": collection,
        "index": { "name": name, "prepareUnique": false },
        "writeConcern": crate::wire::majority_document(),
    };
    match crate::wire::run_idempotent(database, command, &[]).await {
        Ok(_) => {
            tracing::warn!(
                collection,
                index = name,
                "the unique conversion failed; prepareUnique was set back to false"
            );
            "; prepareUnique was set back to false, so inserts of duplicate keys work again as before".to_owned()
        }
        Err(e) => format!(
            "; setting prepareUnique back to false failed too ({}): inserts of duplicate keys into {collection:?} fail until you run collMod {{ index: {{ name: {name:?}, prepareUnique: false }} }}",
            crate::error::Cause::of(&e).joined()
        ),
    }
}

/// The warning for building `names` on `collection` when its estimated document count (one
/// `count` from the collection's metadata, cheap at any size) is at least `threshold`.
async fn large_collection_warning(
    database: &Database,
    collection: &str,
    names: &[String],
    threshold: u64,
) -> Option<String> {
    let documents = database
        .collection::<Document>(collection)
        .estimated_document_count()
        .await
        .ok()?;
    (documents >= threshold).then(|| large_collection_message(collection, names, documents))
}

fn large_collection_message(collection: &str, names: &[String], documents: u64) -> String {
    format!(
        "building {} on collection {collection:?} (about {documents} documents) reads every document while start-up waits; on a large collection that can take minutes to hours and every other process waits for the lock meanwhile. Consider building it outside the start-up of every process (`migrate up` in a job before the deploy: the guide's docs/deploying.md); the threshold is Migrator::large_collection_threshold / SCHEMA_LARGE_COLLECTION_DOCS",
        names.join(", ")
    )
}

/// Hides (`hidden: true`) or unhides index `name` of `collection` with `collMod`; `false` when
/// it already was so (one `listIndexes` first). The index is still maintained while hidden;
/// the query planner does not use it (MongoDB 4.4+).
pub async fn hide_index(database: &Database, collection: &str, name: &str) -> Result<bool> {
    set_hidden(database, collection, name, true, None).await
}

/// Makes a hidden index visible to the query planner again; `false` when it was not hidden.
pub async fn unhide_index(database: &Database, collection: &str, name: &str) -> Result<bool> {
    set_hidden(database, collection, name, false, None).await
}

pub(crate) async fn set_hidden(
    database: &Database,
    collection: &str,
    name: &str,
    hidden: bool,
    migration: Option<&str>,
) -> Result<bool> {
    let listed = list_indexes(database, collection, migration).await?;
    let Some(index) = listed.iter().find(|i| i.get_str("name").ok() == Some(name)) else {
        return Err(missing_index(collection, name, migration));
    };
    if index.get_bool("hidden").unwrap_or(false) == hidden {
        return Ok(false);
    }
    let command = doc! {
        "collMod": collection,
        "index": { "name": name, "hidden": hidden },
        "writeConcern": crate::wire::majority_document(),
    };
    crate::wire::run_idempotent(database, command, &[])
        .await
        .map_err(|e| {
            Error::database(
                format!(
                    "{} index {name:?} of collection {collection:?}",
                    if hidden { "hiding" } else { "unhiding" }
                ),
                migration,
                e,
            )
        })?;
    Ok(true)
}

/// Drops index `name` of `collection`; `false` when there is no such index (already dropped).
/// Through [`MigrationContext::drop_index`](crate::MigrationContext::drop_index) the migration
/// must be marked `destructive`.
pub async fn drop_index(database: &Database, collection: &str, name: &str) -> Result<bool> {
    drop_index_for(database, collection, name, None).await
}

pub(crate) async fn drop_index_for(
    database: &Database,
    collection: &str,
    name: &str,
    migration: Option<&str>,
) -> Result<bool> {
    let listed = list_indexes(database, collection, migration).await?;
    if !listed.iter().any(|i| i.get_str("name").ok() == Some(name)) {
        return Ok(false);
    }
    let command = doc! { "dropIndexes": collection, "index": name, "writeConcern": crate::wire::majority_document() };
    crate::wire::run_idempotent(
        database,
        command,
        &[crate::error::driver::codes::INDEX_NOT_FOUND],
    )
    .await
    .map_err(|e| {
        Error::database(
            format!("dropping index {name:?} of collection {collection:?}"),
            migration,
            e,
        )
    })?;
    Ok(true)
}

fn missing_index(collection: &str, name: &str, migration: Option<&str>) -> Error {
    Error::Config {
        setting: format!("index {name:?}"),
        problem: format!(
            "collection {collection:?} has no index named {name:?}{}; `listIndexes` shows its indexes",
            migration
                .map(|m| format!(" (migration {m})"))
                .unwrap_or_default()
        ),
    }
}

/// Before a unique index is built: the keys more than one document holds, as the index would
/// see them (a missing field is `null`; `sparse` leaves out documents without any key field,
/// `partialFilterExpression` those it does not match). One aggregation that groups by the keys
/// and returns only the keys held more than once (`allowDiskUse`, so a big collection does not
/// hit the memory limit of `$group`), then one `find` of at most three `_id`s for each of the
/// first five. Elements of arrays (multikey indexes) and collations are not considered: for
/// those the server's own build still refuses duplicates.
async fn duplicate_keys(
    database: &Database,
    collection: &str,
    spec: &IndexSpec,
    migration: Option<&str>,
) -> Result<()> {
    let Some(check) = DuplicateCheck::of(spec) else {
        return Ok(());
    };
    let failed = |e| {
        Error::database(
            format!(
                "looking for duplicate keys before building unique index {:?} on collection {collection:?}",
                spec.name()
            ),
            migration,
            e,
        )
    };
    let started = std::time::Instant::now();
    let target = database.collection::<Document>(collection);
    let mut groups = target
        .aggregate(check.pipeline())
        .allow_disk_use(true)
        .await
        .map_err(failed)?;
    let mut keys = 0_u64;
    let mut examples = Vec::new();
    while let Some(group) = groups.try_next().await.map_err(failed)? {
        keys += 1;
        if examples.len() < 5 {
            examples.push(group);
        }
    }
    tracing::debug!(
        collection,
        index = spec.name(),
        keys,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "looked for duplicate keys before building a unique index"
    );
    if keys == 0 {
        return Ok(());
    }
    let mut shown = Vec::new();
    for group in examples {
        let key = group.get_document("_id").cloned().unwrap_or_default();
        let documents = crate::wire::read_i64(group.get("n")).map_or(0, |n| n.max(0) as u64);
        let ids = crate::wire::first_ids(&target, check.holding(&key), 3)
            .await
            .map_err(failed)?;
        shown.push(crate::error::DuplicateKey {
            key: check.named(&key),
            documents,
            ids,
        });
    }
    Err(Error::DuplicateKeys {
        collection: collection.to_owned(),
        index: spec.name().to_owned(),
        keys,
        examples: shown,
        migration: migration.and_then(MigrationId::parse_prefixed),
    })
}

/// The duplicate-key check of one unique index: which documents it indexes and its key fields.
#[derive(Debug, Clone, PartialEq)]
struct DuplicateCheck {
    /// The key fields, in order (`payload.pod_name`).
    fields: Vec<String>,
    /// The documents the index holds.
    filter: Document,
}

impl DuplicateCheck {
    /// The check for `spec`, when it is a unique index of ascending/descending keys that was
    /// not opted out.
    fn of(spec: &IndexSpec) -> Option<Self> {
        let unique = spec.options.get_bool("unique").unwrap_or(false);
        let plain_keys = spec
            .keys
            .values()
            .all(|v| crate::wire::read_i64(Some(v)).is_some_and(|n| n == 1 || n == -1));
        if !unique || !spec.duplicate_check || !plain_keys || spec.keys.is_empty() {
            return None;
        }
        let fields: Vec<String> = spec.keys.keys().cloned().collect();
        let mut filters = Vec::new();
        if let Ok(partial) = spec.options.get_document("partialFilterExpression") {
            filters.push(Bson::Document(partial.clone()));
        }
        if spec.options.get_bool("sparse").unwrap_or(false) {
            let any: Vec<Bson> = fields
                .iter()
                .map(|f| Bson::Document(doc! { f.as_str(): { "$exists": true } }))
                .collect();
            filters.push(Bson::Document(doc! { "$or": any }));
        }
        let filter = match filters.len() {
            0 => Document::new(),
            1 => match filters.pop() {
                Some(Bson::Document(only)) => only,
                _ => Document::new(),
            },
            _ => doc! { "$and": filters },
        };
        Some(DuplicateCheck { fields, filter })
    }

    /// Groups the indexed documents by key (`k0`, `k1`, ...: field paths cannot be names in a
    /// group key), keeps keys held more than once, most held first.
    fn pipeline(&self) -> Vec<Document> {
        let mut key = Document::new();
        for (i, field) in self.fields.iter().enumerate() {
            key.insert(
                format!("k{i}"),
                doc! { "$ifNull": [format!("${field}"), Bson::Null] },
            );
        }
        vec![
            doc! { "$match": self.filter.clone() },
            doc! { "$group": { "_id": key, "n": { "$sum": 1 } } },
            doc! { "$match": { "n": { "$gt": 1 } } },
            doc! { "$sort": { "n": -1 } },
        ]
    }

    /// The documents holding `key` (a group's `_id`): equality on each field (`null` also
    /// matches a missing field, as the index treats it), within the indexed documents.
    fn holding(&self, key: &Document) -> Document {
        let mut filter = self.filter.clone();
        let mut equal = Document::new();
        for (i, field) in self.fields.iter().enumerate() {
            equal.insert(
                field,
                key.get(format!("k{i}")).cloned().unwrap_or(Bson::Null),
            );
        }
        if filter.is_empty() {
            equal
        } else {
            filter = doc! { "$and": [filter, equal] };
            filter
        }
    }

    /// `key` with the field names instead of `k0`, `k1`, ...
    fn named(&self, key: &Document) -> Document {
        let mut named = Document::new();
        for (i, field) in self.fields.iter().enumerate() {
            named.insert(
                field,
                key.get(format!("k{i}")).cloned().unwrap_or(Bson::Null),
            );
        }
        named
    }
}

/// Every index of `collection` as `listIndexes` reports it (none when it does not exist).
pub async fn list_indexes(
    database: &Database,
    collection: &str,
    migration: Option<&str>,
) -> Result<Vec<Document>> {
    let listed = database
        .run_cursor_command(doc! { "listIndexes": collection })
        .await;
    let cursor = match listed {
        Ok(cursor) => cursor,
        Err(e) if is_namespace_not_found(&e) => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::database(
                format!("listing the indexes of collection {collection:?}"),
                migration,
                e,
            ));
        }
    };
    cursor.try_collect().await.map_err(|e| {
        Error::database(
            format!("listing the indexes of collection {collection:?}"),
            migration,
            e,
        )
    })
}

pub(crate) fn is_namespace_not_found(error: &mongodb::error::Error) -> bool {
    matches!(
        error.kind.as_ref(),
        mongodb::error::ErrorKind::Command(c) if c.code == NAMESPACE_NOT_FOUND
    )
}

pub(crate) fn canonical_existing(index: &Document) -> Document {
    let mut spec = Document::new();
    for (key, value) in index {
        match key.as_str() {
            // Bookkeeping the server adds, not part of what the user asked for.
            "v" | "name" | "ns" | "textIndexVersion" | "2dsphereIndexVersion" | "background" => {}
            "unique" | "sparse" | "hidden" | "prepareUnique" if value.as_bool() == Some(false) => {}
            _ => {
                spec.insert(key, value.clone());
            }
        }
    }
    canonicalize(spec)
}

/// Whether two canonical definitions are the same index. `Document`'s own equality ignores the
/// order of fields, which is right for options but not for the key: `{a: 1, b: 1}` and
/// `{b: 1, a: 1}` are different compound indexes.
pub(crate) fn same_definition(a: &Document, b: &Document) -> bool {
    let key_fields = |d: &Document| -> Vec<String> {
        d.get_document("key")
            .map(|key| key.keys().cloned().collect())
            .unwrap_or_default()
    };
    a == b && key_fields(a) == key_fields(b)
}

/// Orders the top-level fields and turns every number into a double, so that `1`, `1i64` and
/// `1.0` compare equal and field order of the options does not matter (key order does).
/// A collation as MongoDB compares it: `listIndexes` (and `listCollections`) return the whole
/// collation with every option filled in and the ICU `version`
/// (`{ locale: "en", caseLevel: false, caseFirst: "off", strength: 2, numericOrdering: false,
/// alternate: "non-ignorable", maxVariable: "punct", normalization: false, backwards: false,
/// version: "57.1" }`), while a spec names only what it sets. Options at their default
/// (<https://www.mongodb.com/docs/manual/reference/collation/#collation-document>; `backwards`
/// is on by default for `fr_CA`) and the version are left out, so both read the same. The
/// `simple` locale is no collation at all (`None`).
pub(crate) fn canonical_collation(collation: &Document) -> Option<Document> {
    let locale = collation.get_str("locale").unwrap_or_default();
    if locale == "simple" {
        return None;
    }
    let defaults: [(&str, Bson); 8] = [
        ("caseLevel", Bson::Boolean(false)),
        ("caseFirst", Bson::String("off".into())),
        ("strength", Bson::Double(3.0)),
        ("numericOrdering", Bson::Boolean(false)),
        ("alternate", Bson::String("non-ignorable".into())),
        ("maxVariable", Bson::String("punct".into())),
        ("normalization", Bson::Boolean(false)),
        ("backwards", Bson::Boolean(locale == "fr_CA")),
    ];
    let number = |v: &Bson| match v {
        Bson::Int32(n) => Bson::Double(f64::from(*n)),
        Bson::Int64(n) => Bson::Double(*n as f64),
        other => other.clone(),
    };
    let mut out = Document::new();
    for (option, value) in collation {
        if option == "version" {
            continue;
        }
        let value = number(value);
        if defaults
            .iter()
            .any(|(d, default)| d == option && *default == value)
        {
            continue;
        }
        out.insert(option, value);
    }
    let mut entries: Vec<(String, Bson)> = out.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Some(entries.into_iter().collect())
}

/// `spec` (canonical) without its collation when that is the collection's default collation:
/// an index created without one inherits the collection's, and `listIndexes` then shows it.
pub(crate) fn without_inherited_collation(
    mut spec: Document,
    collection_default: Option<&Document>,
) -> Document {
    let default = collection_default.and_then(canonical_collation);
    if default.is_some() && spec.get_document("collation").ok() == default.as_ref() {
        spec.remove("collation");
    }
    spec
}

pub(crate) fn canonicalize(spec: Document) -> Document {
    fn numbers(value: Bson) -> Bson {
        match value {
            Bson::Int32(n) => Bson::Double(n.into()),
            Bson::Int64(n) => Bson::Double(n as f64),
            Bson::Document(d) => {
                Bson::Document(d.into_iter().map(|(k, v)| (k, numbers(v))).collect())
            }
            Bson::Array(a) => Bson::Array(a.into_iter().map(numbers).collect()),
            other => other,
        }
    }
    let mut entries: Vec<(String, Bson)> = spec
        .into_iter()
        .filter_map(|(k, v)| match (k.as_str(), v) {
            ("collation", Bson::Document(c)) => {
                canonical_collation(&c).map(|c| (k, Bson::Document(c)))
            }
            (_, v) => Some((k, numbers(v))),
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

#[cfg(test)]
mod tests {
    //! What `listIndexes` returns, in the shapes MongoDB documents
    //! (<https://www.mongodb.com/docs/manual/reference/command/listIndexes/>): a `v`, the `key`,
    //! the `name`, the options as given, and for text indexes the `_fts`/`_ftsx` key with
    //! `weights`, `default_language`, `language_override` and `textIndexVersion`.
    use super::*;

    fn same(spec: &IndexSpec, listed: Document) -> bool {
        same_definition(&spec.canonical(), &canonical_existing(&listed))
    }

    #[test]
    fn a_collation_compares_as_mongodb_expands_it() {
        // What listIndexes returns for { locale: "en", strength: 2 } (MongoDB's documented
        // collation document with every default filled in, and the ICU version).
        let listed = doc! { "v": 2, "key": { "email": 1 }, "name": "idx_email",
        "collation": { "locale": "en", "caseLevel": false, "caseFirst": "off", "strength": 2,
        "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct",
        "normalization": false, "backwards": false, "version": "57.1" } };
        let spec = IndexSpec::new("idx_email", doc! { "email": 1 })
            .collation(doc! { "locale": "en", "strength": 2 });
        assert!(same(&spec, listed.clone()));
        // Another strength is another index.
        let other =
            IndexSpec::new("idx_email", doc! { "email": 1 }).collation(doc! { "locale": "en" });
        assert!(!same(&other, listed));
        // fr_CA sorts accents backwards by default.
        let fr = doc! { "v": 2, "key": { "a": 1 }, "name": "a", "collation": { "locale": "fr_CA",
        "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false,
        "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false,
        "backwards": true, "version": "57.1" } };
        assert!(same(
            &IndexSpec::new("a", doc! { "a": 1 }).collation(doc! { "locale": "fr_CA" }),
            fr
        ));
        // The simple locale is no collation.
        assert!(same(
            &IndexSpec::new("a", doc! { "a": 1 }).collation(doc! { "locale": "simple" }),
            doc! { "v": 2, "key": { "a": 1 }, "name": "a" }
        ));
    }

    #[test]
    fn an_index_inherits_the_collections_default_collation() {
        let default = doc! { "locale": "de", "caseLevel": false, "caseFirst": "off", "strength": 1,
        "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct",
        "normalization": false, "backwards": false, "version": "57.1" };
        let listed =
            doc! { "v": 2, "key": { "name": 1 }, "name": "idx_name", "collation": default.clone() };
        let spec = IndexSpec::new("idx_name", doc! { "name": 1 });
        let existing = without_inherited_collation(canonical_existing(&listed), Some(&default));
        let requested = without_inherited_collation(spec.canonical(), Some(&default));
        assert!(same_definition(&existing, &requested));
        // Asking for the collection's collation by name reads the same.
        let explicit = IndexSpec::new("idx_name", doc! { "name": 1 })
            .collation(doc! { "locale": "de", "strength": 1 });
        assert!(same_definition(
            &existing,
            &without_inherited_collation(explicit.canonical(), Some(&default))
        ));
        // Without the collection's default, the listed collation is a difference.
        assert!(!same_definition(
            &canonical_existing(&listed),
            &spec.canonical()
        ));
    }

    #[test]
    fn numbers_of_any_bson_type_and_option_order_do_not_matter() {
        let spec = IndexSpec::new("idx_a", doc! { "a": 1, "b": -1 })
            .unique()
            .ttl(Duration::from_secs(3600));
        assert!(same(
            &spec,
            doc! { "v": 2, "expireAfterSeconds": 3600_i64, "key": { "a": 1.0, "b": -1_i64 },
            "name": "idx_a", "unique": true },
        ));
    }

    #[test]
    fn key_order_matters() {
        let spec = IndexSpec::new("idx_ab", doc! { "a": 1, "b": 1 });
        assert!(!same(
            &spec,
            doc! { "v": 2, "key": { "b": 1, "a": 1 }, "name": "idx_ab" }
        ));
    }

    #[test]
    fn bookkeeping_and_false_flags_are_not_part_of_the_definition() {
        let spec = IndexSpec::new("idx_a", doc! { "a": 1 });
        assert!(same(
            &spec,
            doc! { "v": 2, "key": { "a": 1 }, "name": "idx_a", "ns": "db.c",
            "background": true, "unique": false, "sparse": false },
        ));
        // A real difference still counts.
        assert!(!same(
            &spec,
            doc! { "v": 2, "key": { "a": 1 }, "name": "idx_a", "unique": true }
        ));
        assert!(!same(
            &spec,
            doc! { "v": 2, "key": { "a": 1 }, "name": "idx_a", "sparse": true }
        ));
    }

    #[test]
    fn a_partial_filter_compares_by_value() {
        let spec = IndexSpec::new("idx_p", doc! { "a": 1 })
            .unique()
            .partial(doc! { "a": { "$gt": 5 } });
        assert!(same(
            &spec,
            doc! { "v": 2, "key": { "a": 1 }, "name": "idx_p", "unique": true,
            "partialFilterExpression": { "a": { "$gt": 5.0 } } },
        ));
        assert!(!same(
            &spec,
            doc! { "v": 2, "key": { "a": 1 }, "name": "idx_p", "unique": true,
            "partialFilterExpression": { "a": { "$gt": 6 } } },
        ));
    }

    #[test]
    fn a_text_index_matches_its_stored_form() {
        let spec = IndexSpec::new(
            "idx_text",
            doc! { "title": "text", "body": "text", "tenant": 1 },
        );
        let listed = doc! {
            "v": 2,
            "key": { "_fts": "text", "_ftsx": 1, "tenant": 1 },
            "name": "idx_text",
            "weights": { "title": 1, "body": 1 },
            "default_language": "english",
            "language_override": "language",
            "textIndexVersion": 3,
        };
        assert!(same(&spec, listed.clone()));
        let mut weighted = listed.clone();
        weighted.insert("weights", doc! { "title": 10, "body": 1 });
        assert!(!same(&spec, weighted.clone()));
        let spec_weighted = spec
            .clone()
            .option("weights", doc! { "title": 10 })
            .default_language("english");
        assert!(same(&spec_weighted, weighted));
        let mut french = listed;
        french.insert("default_language", "french");
        assert!(!same(&spec, french.clone()));
        assert!(same(&spec.default_language("french"), french));
    }

    #[test]
    fn the_duplicate_check_groups_what_the_index_would_hold() {
        let plain = IndexSpec::new("u", doc! { "email": 1, "org.id": -1 }).unique();
        let check = DuplicateCheck::of(&plain).unwrap();
        assert_eq!(
            check.pipeline(),
            vec![
                doc! { "$match": {} },
                doc! { "$group": {
                    "_id": { "k0": { "$ifNull": ["$email", null] }, "k1": { "$ifNull": ["$org.id", null] } },
                    "n": { "$sum": 1 },
                } },
                doc! { "$match": { "n": { "$gt": 1 } } },
                doc! { "$sort": { "n": -1 } },
            ]
        );
        let key = doc! { "k0": "a@example.com", "k1": null };
        assert_eq!(
            check.holding(&key),
            doc! { "email": "a@example.com", "org.id": null }
        );
        assert_eq!(
            check.named(&key),
            doc! { "email": "a@example.com", "org.id": null }
        );

        let sparse_partial = IndexSpec::new("u", doc! { "a": 1, "b": 1 })
            .unique()
            .sparse()
            .partial(doc! { "active": true });
        let check = DuplicateCheck::of(&sparse_partial).unwrap();
        let indexed = doc! { "$and": [
            { "active": true },
            { "$or": [{ "a": { "$exists": true } }, { "b": { "$exists": true } }] },
        ] };
        assert_eq!(check.filter, indexed);
        assert_eq!(
            check.holding(&doc! { "k0": 1, "k1": 2 }),
            doc! { "$and": [indexed, { "a": 1, "b": 2 }] }
        );
    }

    #[test]
    fn only_plain_unique_indexes_are_checked() {
        for spec in [
            IndexSpec::new("i", doc! { "a": 1 }),
            IndexSpec::new("u", doc! { "a": 1 })
                .unique()
                .without_duplicate_check(),
            IndexSpec::new("t", doc! { "a": "text" }).unique(),
            IndexSpec::new("h", doc! { "a": "hashed" }).unique(),
        ] {
            assert!(DuplicateCheck::of(&spec).is_none(), "{spec:?}");
        }
        assert!(DuplicateCheck::of(&IndexSpec::new("d", doc! { "a": 1.0 }).unique()).is_some());
    }

    #[test]
    fn what_changes_in_place_and_what_is_a_rebuild() {
        let index = |spec: IndexSpec| spec.canonical();
        let ttl = |secs| IndexSpec::new("t", doc! { "at": 1 }).ttl(Duration::from_secs(secs));
        let changes = in_place_changes(&index(ttl(60)), &index(ttl(120))).unwrap();
        assert_eq!(changes.expire_after_seconds, Some(Bson::Double(120.0)));
        assert!(changes.hidden.is_none() && !changes.make_unique);

        let plain = || IndexSpec::new("i", doc! { "a": 1 });
        let hide = in_place_changes(&index(plain()), &index(plain().hidden())).unwrap();
        assert_eq!(hide.hidden, Some(true));
        let show = in_place_changes(&index(plain().hidden()), &index(plain())).unwrap();
        assert_eq!(show.hidden, Some(false));
        let unique = in_place_changes(&index(plain()), &index(plain().unique())).unwrap();
        assert!(unique.make_unique);

        for (from, to) in [
            (index(IndexSpec::new("t", doc! { "at": 1 })), index(ttl(60))),
            (index(ttl(60)), index(IndexSpec::new("t", doc! { "at": 1 }))),
            (index(plain().unique()), index(plain())),
            (index(plain()), index(IndexSpec::new("i", doc! { "b": 1 }))),
            (index(plain()), index(plain().sparse())),
            (index(plain()), index(plain())),
        ] {
            assert!(in_place_changes(&from, &to).is_none(), "{from} -> {to}");
        }
    }

    #[test]
    fn index_build_progress_in_the_documented_shape() {
        let op = doc! {
            "desc": "IndexBuildsCoordinatorMongod-3",
            "ns": "app.events",
            "command": { "createIndexes": "events", "indexes": [{ "key": { "a": 1 }, "name": "a_1" }] },
            "msg": "Index Build: scanning collection Index Build: scanning collection: 16448/100000 16%",
            "progress": { "done": 16448, "total": 100000 },
        };
        let counts = |op: &Document| progress_of(op).map(|p| (p.done, p.total));
        assert_eq!(counts(&op), Some((16448, 100000)));
        assert_eq!(progress_of(&op).unwrap().phase, "scanning collection");
        assert!(is_build_of(&op, "app", "events"));
        let inserting = doc! {
            "ns": "app.events",
            "msg": "Index Build: inserting keys from external sorter into index Index Build: inserting keys from external sorter into index: 5000/100000 5%",
            "progress": { "done": 5000, "total": 100000 },
        };
        assert_eq!(
            progress_of(&inserting).unwrap().phase,
            "inserting keys from external sorter into index"
        );
        assert_eq!(
            counts(&doc! { "progress": { "done": 5_i64, "total": 10.0 } }),
            Some((5, 10))
        );
        assert_eq!(
            progress_of(&doc! { "progress": { "done": 5, "total": 10 } })
                .unwrap()
                .phase,
            "building"
        );
        for op in [
            doc! {},
            doc! { "progress": { "done": 1 } },
            doc! { "progress": { "done": 1, "total": 0 } },
            doc! { "progress": { "done": -1, "total": 5 } },
            doc! { "progress": "16%" },
        ] {
            assert_eq!(progress_of(&op), None, "{op}");
        }
    }

    #[test]
    fn index_builds_are_matched_by_their_exact_namespace() {
        // A command $currentOp cut short is still this build.
        let truncated = doc! { "ns": "app.events", "command": { "$truncated": "{ createIndexes: \"events\", ...", "comment": "x" } };
        assert!(is_build_of(&truncated, "app", "events"));
        // Another database's collection of the same name, or a collection whose name starts
        // the same, is not.
        let other_db = doc! { "ns": "other.events", "command": { "createIndexes": "events" } };
        assert!(!is_build_of(&other_db, "app", "events"));
        let longer =
            doc! { "ns": "app.events_archive", "command": { "createIndexes": "events_archive" } };
        assert!(!is_build_of(&longer, "app", "events"));
        // Under the database's $cmd namespace only when the command names the collection.
        let cmd = doc! { "ns": "app.$cmd", "command": { "createIndexes": "events" } };
        assert!(is_build_of(&cmd, "app", "events"));
        let cmd_other = doc! { "ns": "app.$cmd", "command": { "createIndexes": "users" } };
        assert!(!is_build_of(&cmd_other, "app", "events"));
        let other_cmd = doc! { "ns": "other.$cmd", "command": { "createIndexes": "events" } };
        assert!(!is_build_of(&other_cmd, "app", "events"));
    }
}
