//! Reading the live schema (one `listCollections`, one `listIndexes` per collection) and
//! comparing it with the declared one. The comparison is pure, so it is unit-tested on the
//! shapes MongoDB documents.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

use super::Drift;
use super::declared::{DeclaredSchema, DeclaredValidator};
use crate::error::{Error, Result};
use crate::indexes::{
    canonical_existing, canonicalize, list_indexes, same_definition, without_inherited_collation,
};

/// One collection as the server lists it.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveCollection {
    /// `listCollections`' `options`.
    pub options: Document,
    /// `listIndexes`.
    pub indexes: Vec<Document>,
}

/// Every collection of the database but the library's own and the server's (`system.*`), and
/// views (which have no indexes).
pub(crate) type LiveSchema = BTreeMap<String, LiveCollection>;

/// Reads the live schema: one `listCollections`, then one `listIndexes` per collection. `own`
/// are the library's collections (records, lock, audit), left out.
pub(crate) async fn read_live(database: &Database, own: &[String]) -> Result<LiveSchema> {
    let failed = |e| Error::database("listing the collections (listCollections)", None, e);
    let listed: Vec<Document> = database
        .run_cursor_command(doc! { "listCollections": 1 })
        .await
        .map_err(failed)?
        .try_collect()
        .await
        .map_err(failed)?;
    let mut live = LiveSchema::new();
    for entry in listed {
        let Ok(name) = entry.get_str("name") else {
            continue;
        };
        // `listCollections` documents `type` as "collection", "view" or "timeseries"
        // (<https://www.mongodb.com/docs/manual/reference/command/listCollections/#output>).
        if name.starts_with("system.")
            || own.iter().any(|o| o == name)
            || entry.get_str("type").ok() == Some("view")
        {
            continue;
        }
        let indexes = list_indexes(database, name, None).await?;
        live.insert(
            name.to_owned(),
            LiveCollection {
                options: entry.get_document("options").cloned().unwrap_or_default(),
                indexes,
            },
        );
    }
    Ok(live)
}

/// Every difference between `declared` and `live`, by collection name.
pub(crate) fn compare(declared: &DeclaredSchema, live: &LiveSchema) -> Vec<Drift> {
    let mut findings = Vec::new();
    let mut names: Vec<&String> = declared.collections.keys().chain(live.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let wanted = declared.collections.get(name);
        let found = live.get(name);
        match (wanted, found) {
            (Some(wanted), None) => {
                findings.push(Drift::MissingCollection {
                    collection: name.clone(),
                    declared_by: wanted.by.clone(),
                });
                for (index, (spec, by)) in &wanted.indexes {
                    findings.push(Drift::MissingIndex {
                        collection: name.clone(),
                        name: index.clone(),
                        declared: spec.canonical(),
                        declared_by: by.clone(),
                    });
                }
            }
            (wanted, Some(found)) => {
                compare_indexes(name, wanted, found, &mut findings);
                compare_validator(name, wanted, found, &mut findings);
                if let Some(wanted) = wanted {
                    for (option, (value, by)) in &wanted.options {
                        let live = found.options.get(option);
                        if !option_matches(option, value, live) {
                            findings.push(Drift::DifferentOption {
                                collection: name.clone(),
                                option: option.clone(),
                                declared: value.clone(),
                                live: live.cloned(),
                                declared_by: by.clone(),
                            });
                        }
                    }
                }
            }
            (None, None) => {}
        }
    }
    findings
}

fn compare_indexes(
    collection: &str,
    wanted: Option<&super::declared::DeclaredCollection>,
    found: &LiveCollection,
    findings: &mut Vec<Drift>,
) {
    let live_named = |name: &str| {
        found
            .indexes
            .iter()
            .find(|i| i.get_str("name").ok() == Some(name))
    };
    let default_collation = found.options.get_document("collation").ok();
    if let Some(wanted) = wanted {
        for (name, (spec, by)) in &wanted.indexes {
            let declared = spec.canonical();
            match live_named(name) {
                None => findings.push(Drift::MissingIndex {
                    collection: collection.to_owned(),
                    name: name.clone(),
                    declared,
                    declared_by: by.clone(),
                }),
                Some(index) => {
                    let live = canonical_existing(index);
                    if !same_definition(
                        &without_inherited_collation(live.clone(), default_collation),
                        &without_inherited_collation(declared.clone(), default_collation),
                    ) {
                        findings.push(Drift::DifferentIndex {
                            collection: collection.to_owned(),
                            name: name.clone(),
                            declared,
                            live,
                            declared_by: by.clone(),
                        });
                    }
                }
            }
        }
    }
    for index in &found.indexes {
        let Ok(name) = index.get_str("name") else {
            continue;
        };
        if name == "_id_" || wanted.is_some_and(|w| w.indexes.contains_key(name)) {
            continue;
        }
        findings.push(Drift::UndeclaredIndex {
            collection: collection.to_owned(),
            name: name.to_owned(),
            live: canonical_existing(index),
            dropped_by: wanted.and_then(|w| w.dropped.get(name).cloned()),
        });
    }
}

/// `{ validator, validationLevel, validationAction }` of a validator.
pub(crate) fn validator_document(validator: &DeclaredValidator) -> Document {
    doc! {
        "validator": validator.validator.clone(),
        "validationLevel": &validator.level,
        "validationAction": &validator.action,
    }
}

/// The same three from `listCollections`' options, with the server's defaults (`strict`,
/// `error`) for what is unset; `None` without a validator (or with an empty one).
fn live_validator(options: &Document) -> Option<Document> {
    let validator = options.get_document("validator").ok()?;
    if validator.is_empty() {
        return None;
    }
    Some(doc! {
        "validator": validator.clone(),
        "validationLevel": options.get_str("validationLevel").unwrap_or("strict"),
        "validationAction": options.get_str("validationAction").unwrap_or("error"),
    })
}

fn compare_validator(
    collection: &str,
    wanted: Option<&super::declared::DeclaredCollection>,
    found: &LiveCollection,
    findings: &mut Vec<Drift>,
) {
    let live = live_validator(&found.options);
    match (wanted.and_then(|w| w.validator.as_ref()), live) {
        (Some((validator, by)), live) => {
            let declared = validator_document(validator);
            let live = live.unwrap_or_else(|| {
                doc! { "validator": Bson::Null, "validationLevel": "strict", "validationAction": "error" }
            });
            if declared != live {
                findings.push(Drift::DifferentValidator {
                    collection: collection.to_owned(),
                    declared,
                    live,
                    declared_by: by.clone(),
                });
            }
        }
        (None, Some(live)) => findings.push(Drift::UndeclaredValidator {
            collection: collection.to_owned(),
            live,
        }),
        (None, None) => {}
    }
}

/// Whether a declared `create` option holds in the database. The server fills in defaults the
/// user did not give (a collation's `strength`, a time series' `granularity`, a clustered
/// index's `v`), so a declared document matches a live one holding at least its fields; `true`
/// matches any document (`clusteredIndex: true` is listed as the index's definition); numbers
/// compare by value; a capped collection's `size` is rounded up by the server to a multiple of
/// 256 bytes (<https://www.mongodb.com/docs/manual/reference/method/db.createCollection/>).
fn option_matches(option: &str, declared: &Bson, live: Option<&Bson>) -> bool {
    let Some(live) = live else {
        return false;
    };
    if option == "size"
        && let (Some(declared), Some(live)) = (number(declared), number(live))
    {
        return live >= declared && live < declared + 256.0;
    }
    contains(declared, live)
}

fn number(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

fn contains(declared: &Bson, live: &Bson) -> bool {
    match (declared, live) {
        (Bson::Boolean(true), Bson::Document(_)) => true,
        (Bson::Document(d), Bson::Document(l)) => d
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| contains(v, lv))),
        (d, l) => match (number(d), number(l)) {
            (Some(a), Some(b)) => a == b,
            _ => canonicalize(doc! { "v": d.clone() }) == canonicalize(doc! { "v": l.clone() }),
        },
    }
}

#[cfg(test)]
mod tests {
    //! The live shapes are those MongoDB documents for `listCollections`
    //! (<https://www.mongodb.com/docs/manual/reference/command/listCollections/#output>: `name`,
    //! `type`, `options` with `validator`, `validationLevel`, `validationAction`, `capped`,
    //! `size`, ...) and `listIndexes` (`v`, `key`, `name`, options).

    use super::*;
    use crate::fixtures::record;
    use crate::store::MigrationRecord;

    fn declared(entries: Vec<Document>) -> DeclaredSchema {
        DeclaredSchema::fold(&[MigrationRecord {
            declared: Some(entries),
            ..record("0001", "init", "c")
        }])
    }

    fn live(name: &str, options: Document, indexes: Vec<Document>) -> LiveSchema {
        let mut all = vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }];
        all.extend(indexes);
        LiveSchema::from([(
            name.to_owned(),
            LiveCollection {
                options,
                indexes: all,
            },
        )])
    }

    fn schema() -> DeclaredSchema {
        declared(vec![
            doc! { "kind": "index", "collection": "events", "key": { "a": 1 }, "name": "idx_a", "unique": true },
            doc! { "kind": "index", "collection": "events", "key": { "t": 1 }, "name": "idx_ttl", "expireAfterSeconds": 60_i64 },
            doc! { "kind": "validator", "collection": "events", "validator": { "$jsonSchema": { "required": ["a"] } }, "validationLevel": "moderate", "validationAction": "warn" },
        ])
    }

    fn kinds(findings: &[Drift]) -> Vec<(&'static str, Option<&str>)> {
        findings.iter().map(|f| (f.kind(), f.index())).collect()
    }

    #[test]
    fn the_database_as_declared_has_no_drift() {
        let found = live(
            "events",
            doc! { "validator": { "$jsonSchema": { "required": ["a"] } }, "validationLevel": "moderate", "validationAction": "warn" },
            vec![
                doc! { "v": 2, "key": { "a": 1 }, "name": "idx_a", "unique": true },
                doc! { "v": 2, "key": { "t": 1 }, "name": "idx_ttl", "expireAfterSeconds": 60 },
            ],
        );
        assert_eq!(compare(&schema(), &found), []);
    }

    #[test]
    fn each_category_is_found() {
        let found = live(
            "events",
            doc! { "validator": { "$jsonSchema": { "required": ["a"] } }, "validationLevel": "moderate", "validationAction": "error" },
            vec![
                doc! { "v": 2, "key": { "t": 1 }, "name": "idx_ttl", "expireAfterSeconds": 120 },
                doc! { "v": 2, "key": { "b": 1 }, "name": "idx_by_hand" },
            ],
        );
        let findings = compare(&schema(), &found);
        assert_eq!(
            kinds(&findings),
            [
                ("missing_index", Some("idx_a")),
                ("different_index", Some("idx_ttl")),
                ("undeclared_index", Some("idx_by_hand")),
                ("different_validator", None),
            ]
        );
        assert_eq!(
            findings[3].to_string(),
            "events: the validator differs from 0001's: validationAction declared warn, in the database error"
        );
        assert!(
            findings[1].to_string().contains("expireAfterSeconds"),
            "{}",
            findings[1]
        );
    }

    #[test]
    fn a_missing_collection_lists_its_indexes_and_an_undeclared_one_its_validator() {
        let found = live(
            "by_hand",
            doc! { "validator": { "x": { "$exists": true } } },
            vec![doc! { "v": 2, "key": { "x": 1 }, "name": "idx_x" }],
        );
        let findings = compare(&schema(), &found);
        assert_eq!(
            kinds(&findings),
            [
                ("undeclared_index", Some("idx_x")),
                ("undeclared_validator", None),
                ("missing_collection", None),
                ("missing_index", Some("idx_a")),
                ("missing_index", Some("idx_ttl")),
            ]
        );
        assert_eq!(
            findings[1]
                .live()
                .unwrap()
                .as_document()
                .unwrap()
                .get_str("validationLevel"),
            Ok("strict"),
            "the server's default level is shown"
        );
    }

    #[test]
    fn collection_options_compare_by_what_was_declared() {
        let schema = declared(vec![doc! {
            "kind": "collection", "collection": "logs",
            "options": { "capped": true, "size": 1000_i64, "collation": { "locale": "fr" }, "clusteredIndex": true },
        }]);
        let server_filled = doc! {
            "capped": true, "size": 1024,
            "collation": { "locale": "fr", "strength": 3, "caseLevel": false },
            "clusteredIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_", "unique": true },
        };
        assert_eq!(compare(&schema, &live("logs", server_filled, vec![])), []);
        let findings = compare(
            &schema,
            &live(
                "logs",
                doc! { "capped": false, "size": 4096, "collation": { "locale": "en" } },
                vec![],
            ),
        );
        assert_eq!(
            findings
                .iter()
                .map(|f| match f {
                    Drift::DifferentOption { option, .. } => option.as_str(),
                    _ => "?",
                })
                .collect::<Vec<_>>(),
            ["capped", "clusteredIndex", "collation", "size"]
        );
    }
}
