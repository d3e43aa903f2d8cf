//! The declared schema: what the helpers of the applied migrations declared, folded in id order.

use std::collections::BTreeMap;

use mongodb::bson::{Bson, Document};

use crate::indexes::IndexSpec;
use crate::store::{MigrationRecord, RecordState};

/// A validator as `ensure_validator` declared it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeclaredValidator {
    pub validator: Document,
    pub level: String,
    pub action: String,
}

/// What the migrations declared about one collection, with the record key of the migration that
/// declared each part last.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeclaredCollection {
    /// The migration whose declaration made the collection part of the schema.
    pub by: String,
    /// `ensure_collection` options other than the validator's: option → (value, by).
    pub options: BTreeMap<String, (Bson, String)>,
    /// Index name → (spec, by).
    pub indexes: BTreeMap<String, (IndexSpec, String)>,
    pub validator: Option<(DeclaredValidator, String)>,
    /// Index name → the migration that dropped it (and no later one declared it again).
    pub dropped: BTreeMap<String, String>,
}

/// The schema the applied migrations declared.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeclaredSchema {
    pub collections: BTreeMap<String, DeclaredCollection>,
    /// Applied records that carry no declarations (the reference system's, `baseline`'s, or
    /// older ones): what those migrations made is not known.
    pub without_declarations: Vec<String>,
}

impl DeclaredSchema {
    /// Folds the declarations of the applied records in id order (records whose `_id` is not an
    /// id last, by `_id`): a later declaration of the same index, validator or option replaces
    /// an earlier one; a dropped index or collection removes what was declared of it.
    pub(crate) fn fold(records: &[MigrationRecord]) -> Self {
        let mut applied: Vec<&MigrationRecord> = records
            .iter()
            .filter(|r| r.state == RecordState::Applied)
            .collect();
        applied.sort_by(|a, b| match (&a.id, &b.id) {
            (Some(x), Some(y)) => x.cmp(y).then_with(|| a.key.cmp(&b.key)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.key.cmp(&b.key),
        });
        let mut schema = DeclaredSchema::default();
        for record in applied {
            match &record.declared {
                None => schema.without_declarations.push(record.key.clone()),
                Some(entries) => {
                    for entry in entries {
                        schema.apply(entry, &record.key);
                    }
                }
            }
        }
        schema
    }

    fn collection(&mut self, name: &str, by: &str) -> &mut DeclaredCollection {
        self.collections
            .entry(name.to_owned())
            .or_insert_with(|| DeclaredCollection {
                by: by.to_owned(),
                ..Default::default()
            })
    }

    /// One declaration; an entry of a kind this version does not know is left out.
    fn apply(&mut self, entry: &Document, by: &str) {
        let Ok(name) = entry.get_str("collection") else {
            return;
        };
        match entry.get_str("kind").unwrap_or_default() {
            "index" => {
                if let Some(spec) = IndexSpec::from_declared(entry) {
                    let collection = self.collection(name, by);
                    collection.dropped.remove(spec.name());
                    collection
                        .indexes
                        .insert(spec.name().to_owned(), (spec, by.to_owned()));
                }
            }
            "hidden" => {
                let (Ok(index), Ok(hidden)) = (entry.get_str("name"), entry.get_bool("hidden"))
                else {
                    return;
                };
                if let Some(collection) = self.collections.get_mut(name)
                    && let Some((spec, declared_by)) = collection.indexes.get_mut(index)
                {
                    spec.set_hidden(hidden);
                    *declared_by = by.to_owned();
                }
            }
            "dropped_index" => {
                let Ok(index) = entry.get_str("name") else {
                    return;
                };
                if let Some(collection) = self.collections.get_mut(name) {
                    collection.indexes.remove(index);
                    collection.dropped.insert(index.to_owned(), by.to_owned());
                }
            }
            "validator" => {
                let (Ok(validator), Ok(level), Ok(action)) = (
                    entry.get_document("validator"),
                    entry.get_str("validationLevel"),
                    entry.get_str("validationAction"),
                ) else {
                    return;
                };
                self.collection(name, by).validator = Some((
                    DeclaredValidator {
                        validator: validator.clone(),
                        level: level.to_owned(),
                        action: action.to_owned(),
                    },
                    by.to_owned(),
                ));
            }
            "collection" => {
                let options = entry.get_document("options").cloned().unwrap_or_default();
                let collection = self.collection(name, by);
                if let Ok(validator) = options.get_document("validator") {
                    collection.validator = Some((
                        DeclaredValidator {
                            validator: validator.clone(),
                            level: options
                                .get_str("validationLevel")
                                .unwrap_or("strict")
                                .to_owned(),
                            action: options
                                .get_str("validationAction")
                                .unwrap_or("error")
                                .to_owned(),
                        },
                        by.to_owned(),
                    ));
                }
                for (option, value) in options {
                    if !matches!(
                        option.as_str(),
                        "validator" | "validationLevel" | "validationAction"
                    ) {
                        collection.options.insert(option, (value, by.to_owned()));
                    }
                }
            }
            "dropped_collection" => {
                self.collections.remove(name);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;
    use crate::fixtures::record;

    fn applied(key: &str, declared: Vec<Document>) -> MigrationRecord {
        MigrationRecord {
            declared: Some(declared),
            ..record(key, key, "c")
        }
    }

    fn index(collection: &str, name: &str, field: &str) -> Document {
        doc! { "kind": "index", "collection": collection, "key": { field: 1 }, "name": name }
    }

    #[test]
    fn later_migrations_replace_and_drop_what_earlier_ones_declared() {
        let mut ttl = index("events", "idx_ttl", "at");
        ttl.insert("expireAfterSeconds", 60_i64);
        let mut longer_ttl = ttl.clone();
        longer_ttl.insert("expireAfterSeconds", 3600_i64);
        let records = vec![
            // Out of order on purpose: the fold sorts by id.
            applied(
                "0003",
                vec![
                    longer_ttl,
                    doc! { "kind": "dropped_index", "collection": "events", "name": "idx_old" },
                    doc! { "kind": "hidden", "collection": "events", "name": "idx_type", "hidden": true },
                ],
            ),
            applied(
                "0001",
                vec![
                    ttl,
                    index("events", "idx_old", "old"),
                    index("events", "idx_type", "type"),
                    doc! { "kind": "validator", "collection": "events", "validator": { "a": { "$exists": true } }, "validationLevel": "moderate", "validationAction": "warn" },
                ],
            ),
            MigrationRecord {
                declared: None,
                ..record("0002", "baselined", "c")
            },
        ];
        let schema = DeclaredSchema::fold(&records);
        assert_eq!(schema.without_declarations, ["0002"]);
        let events = &schema.collections["events"];
        assert_eq!(events.by, "0001");
        let (ttl, by) = &events.indexes["idx_ttl"];
        assert_eq!(by, "0003");
        assert_eq!(
            ttl.canonical().get_f64("expireAfterSeconds").unwrap(),
            3600.0
        );
        assert!(!events.indexes.contains_key("idx_old"));
        assert_eq!(events.dropped["idx_old"], "0003");
        let (hidden, by) = &events.indexes["idx_type"];
        assert_eq!(by, "0003");
        assert_eq!(hidden.canonical().get_bool("hidden"), Ok(true));
        let (validator, by) = events.validator.as_ref().unwrap();
        assert_eq!(by, "0001");
        assert_eq!(validator.action, "warn");
    }

    #[test]
    fn absurd_declarations_are_left_out_without_a_panic() {
        let document = doc! {
            "_id": "0001", "state": "applied",
            "declared": [
                "not a document", 42, Bson::Null,
                { "kind": "index" },
                { "kind": "index", "collection": 7, "key": { "a": 1 }, "name": "x" },
                { "kind": "index", "collection": "c", "key": "a", "name": "x" },
                { "kind": "index", "collection": "c", "key": { "a": 1 }, "name": ["x"] },
                { "kind": "hidden", "collection": "c", "name": "nope", "hidden": "yes" },
                { "kind": "validator", "collection": "c", "validator": 1 },
                { "kind": "collection", "collection": "c", "options": "capped" },
                { "kind": "dropped_index", "collection": "unknown", "name": 3 },
                { "kind": "something newer", "collection": "c" },
                { "kind": "index", "collection": "c", "key": { "a": 1 }, "name": "idx_a" },
            ],
        };
        let record = MigrationRecord::from_document(&document, "schema_versions").unwrap();
        let schema = DeclaredSchema::fold(&[record]);
        let c = &schema.collections["c"];
        assert_eq!(c.indexes.keys().collect::<Vec<_>>(), ["idx_a"]);
        assert!(c.validator.is_none() && c.options.is_empty());
        // A `declared` that is not an array reads as no declarations at all.
        let garbage = doc! { "_id": "0002", "state": "applied", "declared": "lots" };
        let record = MigrationRecord::from_document(&garbage, "schema_versions").unwrap();
        assert_eq!(
            DeclaredSchema::fold(&[record]).without_declarations,
            ["0002"]
        );
    }

    #[test]
    fn a_dropped_collection_takes_its_declarations_with_it_and_options_keep_the_validator() {
        let records = vec![
            applied(
                "0001",
                vec![
                    index("legacy", "idx_a", "a"),
                    doc! { "kind": "collection", "collection": "logs", "options": { "capped": true, "size": 4096_i64, "validator": { "a": 1 } } },
                ],
            ),
            applied(
                "0002",
                vec![doc! { "kind": "dropped_collection", "collection": "legacy" }],
            ),
            MigrationRecord {
                state: RecordState::Failed,
                ..applied("0003", vec![index("failed", "idx_b", "b")])
            },
        ];
        let schema = DeclaredSchema::fold(&records);
        assert_eq!(
            schema.collections.keys().collect::<Vec<_>>(),
            ["logs"],
            "a failed migration declares nothing"
        );
        let logs = &schema.collections["logs"];
        assert_eq!(logs.options.keys().collect::<Vec<_>>(), ["capped", "size"]);
        let (validator, _) = logs.validator.as_ref().unwrap();
        assert_eq!(
            (validator.level.as_str(), validator.action.as_str()),
            ("strict", "error")
        );
    }
}
