//! Long data migrations in batches with checkpoints: [`MigrationContext::batches`].

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

use schema_id::MigrationId;

use crate::context::MigrationContext;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::CheckpointTarget;
use crate::wire::start_majority_transaction;

/// How long a batch's transaction is retried while it conflicts with another transaction.
const TRANSIENT_RETRY_LIMIT: Duration = Duration::from_secs(120);

/// What a batch walk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Documents visited by this run (not counting those done before a resume).
    pub visited: u64,
    /// Documents updated by this run.
    pub updated: u64,
    /// Documents done before this run started (from the checkpoint).
    pub resumed_from: u64,
    /// Batches written by this run.
    pub batches: u64,
}

/// A walk over a collection in `_id` order; see [`MigrationContext::batches`].
pub struct Batches<'a> {
    ctx: &'a MigrationContext,
    collection: String,
    filter: Document,
    batch_size: u32,
}

impl MigrationContext {
    /// Long data migrations: walk a large collection in `_id` order, batch by batch, with a checkpoint
    /// in the migration's record after each batch, so that a run that was killed resumes where it
    /// stopped.
    ///
    /// ```no_run
    /// use schema_runtime::bson::doc;
    /// use schema_runtime::{MigrationContext, MigrationResult, migration};
    ///
    /// #[migration(id = "0010", description = "Split full names")]
    /// async fn split_names(ctx: &mut MigrationContext) -> MigrationResult {
    ///     ctx.batches("users")
    ///         .filter(doc! { "full_name": { "$exists": true } })
    ///         .batch_size(1_000)
    ///         .update_each(|user| {
    ///             let full = user.get_str("full_name").ok()?;
    ///             let (first, last) = full.split_once(' ')?;
    ///             Some(doc! { "$set": { "first": first, "last": last }, "$unset": { "full_name": "" } })
    ///         })
    ///         .await?;
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    ///
    /// Each batch's updates and its checkpoint are written in one transaction where the deployment
    /// has transactions (a replica set or a sharded cluster), so every document is transformed exactly
    /// once even when the process is killed. On a standalone server they are two writes: a kill
    /// between them repeats that one batch on the next run (at-least-once), so the transformation
    /// should then be idempotent.
    pub fn batches(&self, collection: &str) -> Batches<'_> {
        Batches {
            ctx: self,
            collection: collection.to_owned(),
            filter: Document::new(),
            batch_size: 1_000,
        }
    }
}

impl Batches<'_> {
    /// Visits only documents that match `filter`.
    pub fn filter(mut self, filter: Document) -> Self {
        self.filter = filter;
        self
    }

    /// Documents per batch (default 1,000; at most 100,000).
    pub fn batch_size(mut self, size: u32) -> Self {
        self.batch_size = size.clamp(1, 100_000);
        self
    }

    /// Calls `transform` on every document; a returned update document (`{"$set": ...}`) is
    /// applied to that document. Updates are written one batch at a time, each batch with its
    /// checkpoint.
    pub async fn update_each<F>(self, mut transform: F) -> Result<BatchReport>
    where
        F: FnMut(&Document) -> Option<Document>,
    {
        let migration_id = self.ctx.migration_id().cloned();
        let migration = migration_id.as_ref().map(MigrationId::as_str);
        if self.ctx.in_transaction() {
            return Err(Error::BatchesInTransaction {
                migration: migration_id,
            });
        }
        let database = self.ctx.database();
        let collection = database.collection::<Document>(&self.collection);
        let target = self.ctx.checkpoint_target();
        let field = format!("checkpoints.{}", self.collection.replace('.', "_"));
        let failed = |what: &str, e| {
            Error::database(
                format!("{what} (batches over {:?})", self.collection),
                migration,
                e,
            )
        };

        let (last_id, resumed_from) = match target {
            Some(t) => {
                // The checkpoints are kept on the migration's record: it must exist first.
                t.recorded().await?;
                read_checkpoint(t, &field).await?
            }
            None => (None, 0),
        };
        let transactions =
            target.is_some() && Deployment::detect(database).await?.supports_transactions();
        let total = collection
            .count_documents(self.filter.clone())
            .await
            .map_err(|e| failed("counting the documents", e))?;

        let bar = Progress::new(
            self.ctx.progress_bars(),
            total,
            &self.collection,
            resumed_from,
        );

        let started = Instant::now();
        let mut last_report = Instant::now();
        let mut report = BatchReport {
            visited: 0,
            updated: 0,
            resumed_from,
            batches: 0,
        };
        // One cursor in `_id` order for the whole walk (resuming after the checkpoint): the
        // server sorts once, and each batch is the next `batch_size` documents of it.
        let mut filter = self.filter.clone();
        if let Some(last) = &last_id {
            filter = doc! { "$and": [filter, after_in_sort_order(last)] };
        }
        let mut cursor = collection
            .find(filter)
            .sort(doc! { "_id": 1 })
            .batch_size(self.batch_size)
            .await
            .map_err(|e| failed("reading the collection", e))?;
        loop {
            let mut batch: Vec<Document> = Vec::with_capacity(self.batch_size as usize);
            while batch.len() < self.batch_size as usize {
                match cursor
                    .try_next()
                    .await
                    .map_err(|e| failed("reading a batch", e))?
                {
                    Some(document) => batch.push(document),
                    None => break,
                }
            }
            let Some(last) = batch.last().and_then(|d| d.get("_id")).cloned() else {
                break;
            };
            let updates: Vec<Document> = batch
                .iter()
                .filter_map(|d| {
                    let update = transform(d)?;
                    Some(doc! { "q": { "_id": d.get("_id").cloned().unwrap_or(Bson::Null) }, "u": update })
                })
                .collect();
            let done = resumed_from + report.visited + batch.len() as u64;
            let checkpoint =
                doc! { "last_id": last.clone(), "done": done as i64, "total": total as i64 };
            let command =
                doc! { "update": &self.collection, "updates": updates.clone(), "ordered": true };
            match (target, transactions) {
                (Some(t), true) => {
                    write_in_transaction(
                        self.ctx,
                        t,
                        &field,
                        &checkpoint,
                        &command,
                        updates.is_empty(),
                    )
                    .await
                    .map_err(|e| match e {
                        Error::Database { driver, .. } => {
                            failed("writing a batch and its checkpoint", *driver)
                        }
                        other => other,
                    })?;
                }
                (target, _) => {
                    if !updates.is_empty() {
                        // Not sent again after an error: `run_command` is not a retryable
                        // write (no transaction number), and the batch's updates need not be
                        // idempotent. The walk stops; its next run resumes from the checkpoint
                        // (at-least-once for that one batch, as documented above).
                        let reply = database
                            .run_command(command)
                            .await
                            .map_err(|e| failed("writing a batch", e))?;
                        check_write_errors(&reply, &self.collection, migration)?;
                    }
                    if let Some(t) = target {
                        write_checkpoint(t, &field, &checkpoint, None).await?;
                    }
                }
            }
            report.visited += batch.len() as u64;
            report.updated += updates.len() as u64;
            report.batches += 1;
            bar.set_position(done);
            if last_report.elapsed() >= Duration::from_secs(2) {
                last_report = Instant::now();
                let rate = report.visited as f64 / started.elapsed().as_secs_f64().max(1e-9);
                let eta = total.saturating_sub(done) as f64 / rate.max(1e-9);
                tracing::info!(collection = %self.collection, done, total, rate = rate as u64, eta_secs = eta as u64, "batches");
            }
        }
        bar.finish();
        tracing::info!(
            collection = %self.collection,
            visited = report.visited,
            updated = report.updated,
            resumed_from,
            secs = started.elapsed().as_secs_f64(),
            "batches done"
        );
        Ok(report)
    }
}

/// The `$type` aliases of BSON types in MongoDB's sort order, one entry per comparison bracket
/// (<https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/>): numbers compare
/// with numbers, strings with symbols, and every value of a bracket sorts before every value of
/// the next.
const SORT_BRACKETS: &[&[&str]] = &[
    &["minKey"],
    &["null"],
    &["int", "long", "double", "decimal"],
    &["symbol", "string"],
    &["object"],
    &["array"],
    &["binData"],
    &["objectId"],
    &["bool"],
    &["date"],
    &["timestamp"],
    &["regex"],
    &["maxKey"],
];

fn sort_bracket(value: &Bson) -> Option<usize> {
    Some(match value {
        Bson::MinKey => 0,
        Bson::Null => 1,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 2,
        Bson::Symbol(_) | Bson::String(_) => 3,
        Bson::Document(_) => 4,
        Bson::Array(_) => 5,
        Bson::Binary(_) => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Timestamp(_) => 10,
        Bson::RegularExpression(_) => 11,
        Bson::MaxKey => 12,
        _ => return None,
    })
}

/// The documents whose `_id` sorts after `last`. `{ _id: { $gt: last } }` alone matches only
/// values of `last`'s own bracket (comparison operators match only the same type bracket), so a
/// walk resumed after a string `_id` would skip every ObjectId: the later brackets are added by
/// type. Both branches use the `_id` index, which MongoDB merges in sort order.
fn after_in_sort_order(last: &Bson) -> Document {
    let later: Vec<&str> = match sort_bracket(last) {
        Some(bracket) => SORT_BRACKETS[bracket + 1..]
            .iter()
            .flat_map(|types| types.iter().copied())
            .collect(),
        None => Vec::new(),
    };
    if later.is_empty() {
        return doc! { "_id": { "$gt": last.clone() } };
    }
    doc! { "$or": [ { "_id": { "$gt": last.clone() } }, { "_id": { "$type": later } } ] }
}

async fn read_checkpoint(target: &CheckpointTarget, field: &str) -> Result<(Option<Bson>, u64)> {
    let record = target.store.read(&target.key).await?;
    let checkpoint = record.as_ref().and_then(|r| {
        let mut value = Bson::Document(r.clone());
        for part in field.split('.') {
            value = value.as_document()?.get(part)?.clone();
        }
        value.as_document().cloned()
    });
    Ok(match checkpoint {
        Some(c) => (
            c.get("last_id").cloned(),
            crate::wire::read_i64(c.get("done")).map_or(0, |n| n.max(0) as u64),
        ),
        None => (None, 0),
    })
}

async fn write_checkpoint(
    target: &CheckpointTarget,
    field: &str,
    checkpoint: &Document,
    session: Option<&mut mongodb::ClientSession>,
) -> Result<()> {
    target
        .store
        .checkpoint(
            &target.key,
            target.fence,
            field,
            checkpoint.clone(),
            session,
        )
        .await
}

async fn write_in_transaction(
    ctx: &MigrationContext,
    target: &CheckpointTarget,
    field: &str,
    checkpoint: &Document,
    command: &Document,
    no_updates: bool,
) -> Result<()> {
    let database = ctx.database();
    let migration = ctx.migration_id().map(MigrationId::as_str);
    // A transaction left open by a killed process holds its writes until the server aborts it
    // (after `transactionLifetimeLimitSeconds`, 60 s by default): keep retrying past that.
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let mut session = start_majority_transaction(database.client())
            .await
            .map_err(|(step, e)| Error::database(step.doing(), migration, e))?;
        let result: Result<()> = async {
            if !no_updates {
                let reply = database
                    .run_command(command.clone())
                    .session(&mut session)
                    .await
                    .map_err(|e| Error::database("writing a batch", migration, e))?;
                check_write_errors(
                    &reply,
                    command.get_str("update").unwrap_or_default(),
                    migration,
                )?;
            }
            write_checkpoint(target, field, checkpoint, Some(&mut session)).await?;
            session
                .commit_transaction()
                .await
                .map_err(|e| Error::database("committing a batch", migration, e))
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            Err(Error::Database { driver, .. })
                if started.elapsed() < TRANSIENT_RETRY_LIMIT
                    && driver.contains_label(crate::error::driver::TRANSIENT_TRANSACTION_ERROR) =>
            {
                let _ = session.abort_transaction().await;
                tracing::warn!(
                    waited_secs = started.elapsed().as_secs(),
                    "a batch's transaction conflicted with another (perhaps one left open by a killed process); retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                return Err(e);
            }
        }
    }
}

fn check_write_errors(reply: &Document, collection: &str, migration: Option<&str>) -> Result<()> {
    match reply.get_array("writeErrors") {
        Ok(errors) if !errors.is_empty() => Err(Error::BatchWritesRefused {
            migration: migration.and_then(MigrationId::parse_prefixed),
            collection: collection.to_owned(),
            refused: errors.len(),
            first: match &errors[0] {
                mongodb::bson::Bson::Document(e) => format!(
                    "code {}{}: {}",
                    e.get_i32("code").unwrap_or_default(),
                    e.get_str("codeName")
                        .map(|name| format!(" ({name})"))
                        .unwrap_or_default(),
                    e.get_str("errmsg").unwrap_or_default()
                ),
                other => other.to_string(),
            },
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_walk_takes_every_later_type() {
        assert_eq!(
            after_in_sort_order(&Bson::String("m".into())),
            doc! { "$or": [ { "_id": { "$gt": "m" } }, { "_id": { "$type": [
                "object", "array", "binData", "objectId", "bool", "date", "timestamp", "regex", "maxKey"
            ] } } ] }
        );
        // Numbers come before strings: the walk goes on into strings after the last number.
        let after_number = after_in_sort_order(&Bson::Int32(7));
        let types = after_number.get_array("$or").unwrap()[1]
            .as_document()
            .unwrap()
            .get_document("_id")
            .unwrap()
            .get_array("$type")
            .unwrap()
            .clone();
        assert_eq!(types.first(), Some(&Bson::String("symbol".into())));
        assert!(!types.contains(&Bson::String("long".into())));
        // The last bracket has nothing after it.
        assert_eq!(
            after_in_sort_order(&Bson::MaxKey),
            doc! { "_id": { "$gt": Bson::MaxKey } }
        );
    }
}
