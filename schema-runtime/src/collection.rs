//! Collections: create them with options, and keep their `$jsonSchema` validator up to date.

use futures::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Document, doc};

use crate::error::{Error, Result};

/// `validationLevel`: which writes the validator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationLevel {
    /// No validation.
    Off,
    /// Every insert and update.
    Strict,
    /// Inserts, and updates of documents that are already valid.
    Moderate,
}

impl ValidationLevel {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        [Self::Off, Self::Strict, Self::Moderate]
            .into_iter()
            .find(|l| l.as_str() == text)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ValidationLevel::Off => "off",
            ValidationLevel::Strict => "strict",
            ValidationLevel::Moderate => "moderate",
        }
    }
}

/// `validationAction`: what happens to an invalid write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationAction {
    /// The write is refused.
    Error,
    /// The write goes through and the server logs a warning.
    Warn,
}

impl ValidationAction {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        [Self::Error, Self::Warn]
            .into_iter()
            .find(|a| a.as_str() == text)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ValidationAction::Error => "error",
            ValidationAction::Warn => "warn",
        }
    }
}

/// What an `ensure_*` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionChange {
    /// The collection was created.
    Created,
    /// The collection existed and was changed.
    Updated,
    /// The collection already was as asked.
    Unchanged,
}

/// What to do with existing documents that a new validator would reject, when the validator
/// rejects writes to them (`validationLevel: strict` with `validationAction: error`): every later
/// update of such a document would fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingDocuments {
    /// Count them first and refuse with [`Error::ValidatorRejectsExisting`], changing nothing.
    #[default]
    Refuse,
    /// Apply the validator anyway; their count is in [`ValidatorReport::violating`] and in a
    /// tracing warning.
    Accept,
}

/// What [`ensure_validator_with`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorReport {
    /// Created, updated or unchanged.
    pub change: CollectionChange,
    /// Existing documents the validator rejects, counted when it rejects writes to them
    /// (strict and error) and the validator changed; 0 otherwise.
    pub violating: u64,
}

/// The `listCollections` entry of `name`, if the collection exists.
pub async fn collection_info(
    database: &Database,
    name: &str,
    migration: Option<&str>,
) -> Result<Option<Document>> {
    let failed = |e| {
        Error::database(
            format!("looking up collection {name:?} (listCollections)"),
            migration,
            e,
        )
    };
    let cursor = database
        .run_cursor_command(doc! { "listCollections": 1, "filter": { "name": name } })
        .await
        .map_err(failed)?;
    let found: Vec<Document> = cursor.try_collect().await.map_err(failed)?;
    Ok(found.into_iter().next())
}

/// Creates `name` with `options` (any `create` command options: `capped`, `size`, `validator`,
/// `timeseries`, ...) unless it exists. An existing collection is left as it is.
pub async fn ensure_collection(
    database: &Database,
    name: &str,
    options: Document,
) -> Result<CollectionChange> {
    ensure_collection_for(database, name, options, None).await
}

pub(crate) async fn ensure_collection_for(
    database: &Database,
    name: &str,
    options: Document,
    migration: Option<&str>,
) -> Result<CollectionChange> {
    if collection_info(database, name, migration).await?.is_some() {
        return Ok(CollectionChange::Unchanged);
    }
    create(database, name, options, migration).await?;
    Ok(CollectionChange::Created)
}

pub(crate) async fn create(
    database: &Database,
    name: &str,
    options: Document,
    migration: Option<&str>,
) -> Result<()> {
    let mut command = doc! { "create": name };
    command.extend(options);
    command.insert("writeConcern", crate::wire::majority_document());
    crate::wire::run_idempotent(
        database,
        command,
        &[crate::error::driver::codes::NAMESPACE_EXISTS],
    )
    .await
    .map_err(|e| Error::database(format!("creating collection {name:?}"), migration, e))?;
    Ok(())
}

/// Gives `collection` the validator `validator` (such as `{ "$jsonSchema": {...} }`) with the
/// level and action: creates the collection with it if missing, runs `collMod` if it differs,
/// and sends nothing more when it is already so.
///
/// ```no_run
/// # async fn demo(db: mongodb::Database) -> schema_runtime::Result<()> {
/// use schema_runtime::{ValidationAction, ValidationLevel, ensure_validator};
/// use schema_runtime::bson::doc;
///
/// let schema = doc! { "$jsonSchema": { "bsonType": "object", "required": ["event_id"] } };
/// ensure_validator(&db, "events", schema, ValidationLevel::Moderate, ValidationAction::Warn).await?;
/// # Ok(()) }
/// ```
///
/// A validator that rejects writes to documents it does not match (`Strict` with `Error`) is a
/// trap for existing documents that do not match: every later update of one fails. Before
/// changing such a validator, this counts them (`{ $nor: [validator] }`) and refuses with
/// [`Error::ValidatorRejectsExisting`] when there are any; [`ensure_validator_with`] and
/// [`ExistingDocuments::Accept`] apply it anyway and report the count.
pub async fn ensure_validator(
    database: &Database,
    collection: &str,
    validator: Document,
    level: ValidationLevel,
    action: ValidationAction,
) -> Result<CollectionChange> {
    ensure_validator_for(
        database,
        collection,
        validator,
        level,
        action,
        ExistingDocuments::Refuse,
        None,
    )
    .await
    .map(|report| report.change)
}

/// [`ensure_validator`], saying what to do with existing documents the validator rejects.
pub async fn ensure_validator_with(
    database: &Database,
    collection: &str,
    validator: Document,
    level: ValidationLevel,
    action: ValidationAction,
    existing: ExistingDocuments,
) -> Result<ValidatorReport> {
    ensure_validator_for(
        database, collection, validator, level, action, existing, None,
    )
    .await
}

pub(crate) async fn ensure_validator_for(
    database: &Database,
    collection: &str,
    validator: Document,
    level: ValidationLevel,
    action: ValidationAction,
    existing: ExistingDocuments,
    migration: Option<&str>,
) -> Result<ValidatorReport> {
    let wanted = doc! {
        "validator": validator.clone(),
        "validationLevel": level.as_str(),
        "validationAction": action.as_str(),
    };
    match collection_info(database, collection, migration).await? {
        None => {
            create(database, collection, wanted, migration).await?;
            Ok(ValidatorReport {
                change: CollectionChange::Created,
                violating: 0,
            })
        }
        Some(info) => {
            let options = info.get_document("options").cloned().unwrap_or_default();
            let same = options.get_document("validator").ok() == Some(&validator)
                && options.get_str("validationLevel").unwrap_or("strict") == level.as_str()
                && options.get_str("validationAction").unwrap_or("error") == action.as_str();
            if same {
                return Ok(ValidatorReport {
                    change: CollectionChange::Unchanged,
                    violating: 0,
                });
            }
            let violating = if level == ValidationLevel::Strict && action == ValidationAction::Error
            {
                violations(database, collection, &validator, existing, migration).await?
            } else {
                0
            };
            let mut command = doc! { "collMod": collection };
            command.extend(wanted);
            command.insert("writeConcern", crate::wire::majority_document());
            crate::wire::run_idempotent(database, command, &[])
                .await
                .map_err(|e| {
                    Error::database(
                        format!("setting the validator of collection {collection:?} (collMod)"),
                        migration,
                        e,
                    )
                })?;
            Ok(ValidatorReport {
                change: CollectionChange::Updated,
                violating,
            })
        }
    }
}

/// Counts the documents of `collection` that `validator` rejects; with
/// [`ExistingDocuments::Refuse`], any is an [`Error::ValidatorRejectsExisting`] with up to five
/// of their `_id`s. `{ $nor: [validator] }` is how MongoDB's documentation finds the documents
/// that do not match a validator, `$jsonSchema` included
/// (<https://www.mongodb.com/docs/manual/core/schema-validation/use-json-schema-query-conditions/>).
async fn violations(
    database: &Database,
    collection: &str,
    validator: &Document,
    existing: ExistingDocuments,
    migration: Option<&str>,
) -> Result<u64> {
    let failed = |e| {
        Error::database(
            format!(
                "counting the documents of collection {collection:?} that the new validator rejects"
            ),
            migration,
            e,
        )
    };
    let target = database.collection::<Document>(collection);
    let rejected = doc! { "$nor": [validator.clone()] };
    let count = target
        .count_documents(rejected.clone())
        .await
        .map_err(failed)?;
    if count == 0 {
        return Ok(0);
    }
    if existing == ExistingDocuments::Accept {
        tracing::warn!(
            collection,
            documents = count,
            "the new validator rejects writes to {count} existing documents of {collection:?}; applied anyway (ExistingDocuments::Accept)"
        );
        return Ok(count);
    }
    let ids = crate::wire::first_ids(&target, rejected, 5)
        .await
        .map_err(failed)?;
    Err(Error::ValidatorRejectsExisting {
        collection: collection.to_owned(),
        documents: count,
        ids,
        migration: migration.and_then(schema_id::MigrationId::parse_prefixed),
    })
}
