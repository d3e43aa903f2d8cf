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
}

impl IndexSpec {
    /// An index called `name` on `keys` (`1` ascending, `-1` descending, `"text"`, `"2dsphere"`, ...).
    pub fn new(name: impl Into<String>, keys: Document) -> Self {
        IndexSpec {
            name: name.into(),
            keys,
            options: Document::new(),
        }
    }

    /// Refuses two documents with the same key.
    pub fn unique(self) -> Self {
        self.option("unique", true)
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

    /// Any other `createIndexes` option, as the server names it.
    pub fn option(mut self, key: &str, value: impl Into<Bson>) -> Self {
        self.options.insert(key, value.into());
        self
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document sent in `createIndexes`.
    pub fn to_document(&self) -> Document {
        let mut document = doc! { "key": self.keys.clone(), "name": &self.name };
        document.extend(self.options.clone());
        document
    }

    /// The definition as `listIndexes` reports it, for comparison.
    fn canonical(&self) -> Document {
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
}

/// Makes sure `collection` has every index of `indexes`, by name. Sends one `listIndexes` and, if
/// anything is missing, one `createIndexes` for all missing indexes. An index that exists under
/// the same name with another definition is an [`Error::IndexConflict`] showing both.
pub async fn ensure_indexes(
    database: &Database,
    collection: &str,
    indexes: &[IndexSpec],
) -> Result<IndexReport> {
    ensure_indexes_for(database, collection, indexes, None).await
}

pub(crate) async fn ensure_indexes_for(
    database: &Database,
    collection: &str,
    indexes: &[IndexSpec],
    migration: Option<&str>,
) -> Result<IndexReport> {
    let existing = list_indexes(database, collection, migration).await?;
    let mut report = IndexReport::default();
    let mut to_create = Vec::new();
    for spec in indexes {
        match existing
            .iter()
            .find(|d| d.get_str("name").ok() == Some(spec.name()))
        {
            Some(found) => {
                let existing = canonical_existing(found);
                let requested = spec.canonical();
                if !same_definition(&existing, &requested) {
                    return Err(Error::IndexConflict {
                        collection: collection.to_owned(),
                        name: spec.name().to_owned(),
                        existing: Box::new(existing),
                        requested: Box::new(requested),
                        migration: migration.and_then(MigrationId::parse_prefixed),
                    });
                }
                report.unchanged.push(spec.name().to_owned());
            }
            None => {
                to_create.push(Bson::Document(spec.to_document()));
                report.created.push(spec.name().to_owned());
            }
        }
    }
    if !to_create.is_empty() {
        let command = doc! {
            "createIndexes": collection,
            "indexes": to_create,
            "writeConcern": { "w": "majority" },
        };
        database.run_command(command).await.map_err(|e| {
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

fn canonical_existing(index: &Document) -> Document {
    let mut spec = Document::new();
    for (key, value) in index {
        match key.as_str() {
            // Bookkeeping the server adds, not part of what the user asked for.
            "v" | "name" | "ns" | "textIndexVersion" | "2dsphereIndexVersion" | "background" => {}
            "unique" | "sparse" if value.as_bool() == Some(false) => {}
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
fn same_definition(a: &Document, b: &Document) -> bool {
    let key_fields = |d: &Document| -> Vec<String> {
        d.get_document("key")
            .map(|key| key.keys().cloned().collect())
            .unwrap_or_default()
    };
    a == b && key_fields(a) == key_fields(b)
}

/// Orders the top-level fields and turns every number into a double, so that `1`, `1i64` and
/// `1.0` compare equal and field order of the options does not matter (key order does).
fn canonicalize(spec: Document) -> Document {
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
    let mut entries: Vec<(String, Bson)> = spec.into_iter().map(|(k, v)| (k, numbers(v))).collect();
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
}
