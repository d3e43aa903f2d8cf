//! `migrate diff`: the models against the schema the applied migrations declared (or, with
//! `--live`, against the database), collection by collection: indexes modelled but not
//! declared, declared differently, or declared and no longer modelled; validators that differ.
//! It reuses the drift check's comparison, with the models as the wanted side.

use std::collections::BTreeMap;
use std::fmt;

use mongodb::bson::{Bson, Document, doc};

use super::registry::ModelEntry;
use crate::drift::{
    DeclaredCollection, DeclaredSchema, DeclaredValidator, Drift, LiveCollection, LiveSchema,
    compare,
};

/// One difference between a model and its target (the declared schema, or the database).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFinding {
    /// `missing_collection`, `missing_index`, `different_index`, `unmodelled_index`,
    /// `missing_validator` or `different_validator`.
    pub kind: &'static str,
    /// The collection.
    pub collection: String,
    /// The index, for index findings.
    pub index: Option<String>,
    /// The model's type (`module::Type`).
    pub model: String,
    /// What the model says, if it says something.
    pub modelled: Option<Bson>,
    /// What the target has, if it has something.
    pub target: Option<Bson>,
}

/// What `diff` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelDiff {
    /// Every difference, by collection.
    pub findings: Vec<ModelFinding>,
    /// How many models were compared.
    pub models: usize,
    /// Collections the migrations declared (or the database has) that no model describes.
    pub unmodelled_collections: Vec<String>,
    /// Collections that more than one type models (the first by name is compared).
    pub duplicates: Vec<(String, Vec<String>)>,
    /// `migrations` or `database`.
    pub against: &'static str,
}

impl ModelDiff {
    /// Whether models and target agree.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for ModelFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, m) = (&self.collection, &self.model);
        let index = self.index.as_deref().unwrap_or("?");
        let shown = |v: &Option<Bson>| v.as_ref().map_or("(none)".to_owned(), |v| v.to_string());
        match self.kind {
            "missing_collection" => write!(f, "{c}: modelled by {m}, but not there"),
            "missing_index" => write!(
                f,
                "{c}: index {index:?} is modelled by {m} {}, but not there",
                shown(&self.modelled)
            ),
            "different_index" => write!(
                f,
                "{c}: index {index:?} differs: modelled by {m} {}, there {}",
                shown(&self.modelled),
                shown(&self.target)
            ),
            "unmodelled_index" => write!(
                f,
                "{c}: index {index:?} {} is no longer modelled by {m}",
                shown(&self.target)
            ),
            "missing_validator" => write!(f, "{c}: {m} models a validator; there is none"),
            _ => write!(
                f,
                "{c}: the validator differs from {m}'s: modelled {}, there {}",
                shown(&self.modelled),
                shown(&self.target)
            ),
        }
    }
}

/// The models as the wanted side of the comparison.
pub(crate) fn modelled(models: &[&'static ModelEntry]) -> DeclaredSchema {
    let mut schema = DeclaredSchema::default();
    for model in models {
        let by = model.type_name.to_owned();
        let indexes = (model.indexes)()
            .into_iter()
            .map(|spec| (spec.name().to_owned(), (spec, by.clone())))
            .collect();
        schema.collections.insert(
            model.collection.to_owned(),
            DeclaredCollection {
                by: by.clone(),
                options: BTreeMap::new(),
                indexes,
                validator: Some((
                    DeclaredValidator {
                        validator: (model.validator)(),
                        level: (model.level)().as_str().to_owned(),
                        action: (model.action)().as_str().to_owned(),
                    },
                    by,
                )),
                dropped: BTreeMap::new(),
            },
        );
    }
    schema
}

/// The declared schema in the shape the database would have it (`listCollections` options and
/// `listIndexes` entries).
pub(crate) fn as_live(declared: &DeclaredSchema) -> LiveSchema {
    declared
        .collections
        .iter()
        .map(|(name, collection)| {
            let mut options = Document::new();
            if let Some((v, _)) = &collection.validator {
                options.insert("validator", v.validator.clone());
                options.insert("validationLevel", v.level.clone());
                options.insert("validationAction", v.action.clone());
            }
            for (option, (value, _)) in &collection.options {
                options.insert(option, value.clone());
            }
            let mut indexes = vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }];
            indexes.extend(
                collection
                    .indexes
                    .values()
                    .map(|(spec, _)| spec.to_document()),
            );
            (name.clone(), LiveCollection { options, indexes })
        })
        .collect()
}

/// The differences between the models and `target`, only in the collections the models name.
pub(crate) fn diff(
    models: &[&'static ModelEntry],
    mut target: LiveSchema,
    against: &'static str,
) -> ModelDiff {
    let wanted = modelled(models);
    let unmodelled_collections = target
        .keys()
        .filter(|name| !wanted.collections.contains_key(*name))
        .cloned()
        .collect();
    target.retain(|name, _| wanted.collections.contains_key(name));
    let type_of = |collection: &str| {
        wanted
            .collections
            .get(collection)
            .map(|c| c.by.clone())
            .unwrap_or_default()
    };
    let findings = compare(&wanted, &target)
        .into_iter()
        .filter_map(|drift| {
            let collection = drift.collection().to_owned();
            let model = type_of(&collection);
            let (kind, index, modelled, target) = match drift {
                Drift::MissingCollection { .. } => ("missing_collection", None, None, None),
                Drift::MissingIndex { name, declared, .. } => {
                    ("missing_index", Some(name), Some(declared.into()), None)
                }
                Drift::DifferentIndex {
                    name,
                    declared,
                    live,
                    ..
                } => (
                    "different_index",
                    Some(name),
                    Some(declared.into()),
                    Some(live.into()),
                ),
                Drift::UndeclaredIndex { name, live, .. } => {
                    ("unmodelled_index", Some(name), None, Some(live.into()))
                }
                Drift::DifferentValidator { declared, live, .. } => {
                    let none = live.get("validator") == Some(&Bson::Null);
                    (
                        if none {
                            "missing_validator"
                        } else {
                            "different_validator"
                        },
                        None,
                        Some(declared.into()),
                        (!none).then_some(live.into()),
                    )
                }
                Drift::UndeclaredValidator { .. } | Drift::DifferentOption { .. } => return None,
            };
            Some(ModelFinding {
                kind,
                collection,
                index,
                model,
                modelled: modelled.map(super::super::drift::held_value),
                target: target.map(super::super::drift::held_value),
            })
        })
        .collect();
    ModelDiff {
        findings,
        models: models.len(),
        unmodelled_collections,
        duplicates: Vec::new(),
        against,
    }
}
