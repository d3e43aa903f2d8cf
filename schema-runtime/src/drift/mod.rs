//! Drift: the schema the applied migrations declared, against the live database.
//!
//! Every helper of [`MigrationContext`](crate::MigrationContext) (`ensure_indexes`,
//! `ensure_validator`, `ensure_collection`, `hide_index`, `drop_index`, `drop_collection`)
//! notes what it declared on the record of the migration that called it. Folded in id order
//! over the applied records, these declarations are the schema the migrations meant; the check
//! compares it with `listCollections` and `listIndexes` and lists every difference, including
//! what no migration declared (raw driver calls and hand-made changes declare nothing).

mod compare;
mod declared;
mod repair;

use std::fmt;

use mongodb::bson::{Bson, Document};

pub(crate) use compare::{LiveCollection, LiveSchema, compare, read_live};
pub(crate) use declared::{DeclaredCollection, DeclaredSchema, DeclaredValidator};
pub(crate) use repair::repair;

/// One difference between the declared schema and the database.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// A collection the migrations declared does not exist. Its declared indexes are listed as
    /// [`Drift::MissingIndex`] too.
    MissingCollection {
        /// The collection.
        collection: String,
        /// The migration (record `_id`) that declared it.
        declared_by: String,
    },
    /// A declared index does not exist.
    MissingIndex {
        /// The collection.
        collection: String,
        /// The index's name.
        name: String,
        /// Its declared definition (keys and options, as `listIndexes` would show them).
        declared: Document,
        /// The migration that declared it last.
        declared_by: String,
    },
    /// An index exists under a declared name with another definition.
    DifferentIndex {
        /// The collection.
        collection: String,
        /// The index's name.
        name: String,
        /// The declared definition.
        declared: Document,
        /// The definition in the database.
        live: Document,
        /// The migration that declared it last.
        declared_by: String,
    },
    /// An index (other than `_id_`) that no applied migration declared: made by hand, by a raw
    /// driver call, or by a migration applied without declarations.
    UndeclaredIndex {
        /// The collection.
        collection: String,
        /// The index's name.
        name: String,
        /// Its definition in the database.
        live: Document,
        /// The migration that dropped an index of this name, if one did.
        dropped_by: Option<String>,
    },
    /// The validator, `validationLevel` or `validationAction` differs from the declared ones.
    DifferentValidator {
        /// The collection.
        collection: String,
        /// `{ validator, validationLevel, validationAction }` as declared.
        declared: Document,
        /// The same three in the database (the level and action the server applies when unset).
        live: Document,
        /// The migration that declared it last.
        declared_by: String,
    },
    /// A collection has a validator that no applied migration declared.
    UndeclaredValidator {
        /// The collection.
        collection: String,
        /// `{ validator, validationLevel, validationAction }` in the database.
        live: Document,
    },
    /// An option `ensure_collection` declared (`capped`, `expireAfterSeconds`, ...) differs or
    /// is missing.
    DifferentOption {
        /// The collection.
        collection: String,
        /// The option.
        option: String,
        /// The declared value.
        declared: Bson,
        /// The value in the database, if any.
        live: Option<Bson>,
        /// The migration that declared it last.
        declared_by: String,
    },
}

impl Drift {
    /// A short name of the category, as the CLI's JSON gives it: `missing_collection`,
    /// `missing_index`, `different_index`, `undeclared_index`, `different_validator`,
    /// `undeclared_validator` or `different_option`.
    pub fn kind(&self) -> &'static str {
        match self {
            Drift::MissingCollection { .. } => "missing_collection",
            Drift::MissingIndex { .. } => "missing_index",
            Drift::DifferentIndex { .. } => "different_index",
            Drift::UndeclaredIndex { .. } => "undeclared_index",
            Drift::DifferentValidator { .. } => "different_validator",
            Drift::UndeclaredValidator { .. } => "undeclared_validator",
            Drift::DifferentOption { .. } => "different_option",
        }
    }

    /// The collection it concerns.
    pub fn collection(&self) -> &str {
        match self {
            Drift::MissingCollection { collection, .. }
            | Drift::MissingIndex { collection, .. }
            | Drift::DifferentIndex { collection, .. }
            | Drift::UndeclaredIndex { collection, .. }
            | Drift::DifferentValidator { collection, .. }
            | Drift::UndeclaredValidator { collection, .. }
            | Drift::DifferentOption { collection, .. } => collection,
        }
    }

    /// The index it concerns, if it concerns one.
    pub fn index(&self) -> Option<&str> {
        match self {
            Drift::MissingIndex { name, .. }
            | Drift::DifferentIndex { name, .. }
            | Drift::UndeclaredIndex { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The migration whose declaration it departs from (none for what no migration declared).
    pub fn declared_by(&self) -> Option<&str> {
        match self {
            Drift::MissingCollection { declared_by, .. }
            | Drift::MissingIndex { declared_by, .. }
            | Drift::DifferentIndex { declared_by, .. }
            | Drift::DifferentValidator { declared_by, .. }
            | Drift::DifferentOption { declared_by, .. } => Some(declared_by),
            Drift::UndeclaredIndex { .. } | Drift::UndeclaredValidator { .. } => None,
        }
    }

    /// The declared side, if there is one.
    pub fn declared(&self) -> Option<Bson> {
        match self {
            Drift::MissingIndex { declared, .. }
            | Drift::DifferentIndex { declared, .. }
            | Drift::DifferentValidator { declared, .. } => Some(held(declared)),
            Drift::DifferentOption { declared, .. } => Some(held_value(declared.clone())),
            _ => None,
        }
    }

    /// The database's side, if there is one.
    pub fn live(&self) -> Option<Bson> {
        match self {
            Drift::DifferentIndex { live, .. }
            | Drift::UndeclaredIndex { live, .. }
            | Drift::DifferentValidator { live, .. }
            | Drift::UndeclaredValidator { live, .. } => Some(held(live)),
            Drift::DifferentOption { live, .. } => live.clone().map(held_value),
            _ => None,
        }
    }
}

/// A definition as the server holds it: the comparison reads every number as a double (an
/// index key `1` and `1.0` are one index), but a user reads `expireAfterSeconds: 43200`, so a
/// whole double is shown as the integer it stands for.
fn held(definition: &Document) -> Bson {
    held_value(Bson::Document(definition.clone()))
}

pub(crate) fn held_value(value: Bson) -> Bson {
    match value {
        Bson::Double(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            let whole = n as i64;
            i32::try_from(whole).map_or(Bson::Int64(whole), Bson::Int32)
        }
        Bson::Document(d) => {
            Bson::Document(d.into_iter().map(|(k, v)| (k, held_value(v))).collect())
        }
        Bson::Array(a) => Bson::Array(a.into_iter().map(held_value).collect()),
        other => other,
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::MissingCollection {
                collection,
                declared_by,
            } => write!(
                f,
                "collection {collection:?} is missing (declared by {declared_by})"
            ),
            Drift::MissingIndex {
                collection,
                name,
                declared,
                declared_by,
            } => write!(
                f,
                "{collection}: index {name:?} is missing (declared by {declared_by}: {})",
                held(declared)
            ),
            Drift::DifferentIndex {
                collection,
                name,
                declared,
                live,
                declared_by,
            } => write!(
                f,
                "{collection}: index {name:?} differs: declared by {declared_by} {}, in the database {}",
                held(declared),
                held(live)
            ),
            Drift::UndeclaredIndex {
                collection,
                name,
                live,
                dropped_by,
            } => {
                write!(
                    f,
                    "{collection}: index {name:?} {} was not declared by any applied migration",
                    held(live)
                )?;
                match dropped_by {
                    Some(id) => write!(f, " ({id} dropped it)"),
                    None => Ok(()),
                }
            }
            Drift::DifferentValidator {
                collection,
                declared,
                live,
                declared_by,
            } => {
                let differs: Vec<&str> = ["validator", "validationLevel", "validationAction"]
                    .into_iter()
                    .filter(|k| declared.get(k) != live.get(k))
                    .collect();
                let shown = |d: &Document, k: &str| {
                    d.get(k).map_or("(none)".to_owned(), |v| match v {
                        Bson::String(s) => s.clone(),
                        other => held_value(other.clone()).to_string(),
                    })
                };
                write!(
                    f,
                    "{collection}: the validator differs from {declared_by}'s:"
                )?;
                for (i, key) in differs.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ";" };
                    write!(
                        f,
                        "{sep} {key} declared {}, in the database {}",
                        shown(declared, key),
                        shown(live, key)
                    )?;
                }
                Ok(())
            }
            Drift::UndeclaredValidator { collection, live } => write!(
                f,
                "{collection}: has a validator no applied migration declared ({})",
                held(live)
            ),
            Drift::DifferentOption {
                collection,
                option,
                declared,
                live,
                declared_by,
            } => write!(
                f,
                "{collection}: option {option:?} differs: declared by {declared_by} {declared}, in the database {}",
                live.as_ref()
                    .map_or_else(|| "(not set)".to_owned(), ToString::to_string)
            ),
        }
    }
}

/// What [`Migrator::drift`](crate::Migrator::drift) found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftReport {
    /// Every difference, by collection.
    pub findings: Vec<Drift>,
    /// Applied records that carry no declarations: applied by the reference system, recorded
    /// by `baseline`, or by a version of this library that kept none. What those migrations
    /// made is not known, so their indexes and validators show as undeclared.
    pub without_declarations: Vec<String>,
    /// How many collections were compared (one `listIndexes` each, after one `find` of the
    /// records and one `listCollections`).
    pub collections_checked: usize,
}

impl DriftReport {
    /// Whether the database is as the migrations declared it.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// What [`Migrator::repair_drift`](crate::Migrator::repair_drift) did with one finding.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairAction {
    /// The finding.
    pub finding: Drift,
    /// Whether it was repaired.
    pub repaired: bool,
    /// What was done, or why not.
    pub note: String,
}

/// What [`Migrator::repair_drift`](crate::Migrator::repair_drift) did, and the drift left.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairReport {
    /// One entry per finding of the check before the repair.
    pub actions: Vec<RepairAction>,
    /// The check again, after the repair.
    pub after: DriftReport,
}

/// What [`Migrator::record_declarations`](crate::Migrator::record_declarations) did with one
/// applied migration whose record had no declarations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDeclarations {
    /// The record's `_id`.
    pub key: String,
    /// How many declarations were recorded (0 when it declares nothing, or was not recorded).
    pub declarations: usize,
    /// Whether they were recorded.
    pub recorded: bool,
    /// Why not, when they were not.
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{Bson, doc};

    #[test]
    fn whole_numbers_show_as_the_integers_the_server_holds() {
        let compared = doc! {
            "key": { "expires_at": 1.0, "score": -1.0 },
            "expireAfterSeconds": 43200.0,
            "weights": { "title": 2.5 },
            "big": 5_000_000_000.0,
        };
        let shown = super::held(&compared);
        assert_eq!(
            shown,
            Bson::Document(doc! {
                "key": { "expires_at": 1, "score": -1 },
                "expireAfterSeconds": 43200,
                "weights": { "title": 2.5 },
                "big": 5_000_000_000_i64,
            })
        );
        let json = serde_json::to_string(&shown).unwrap();
        assert!(json.contains("\"expireAfterSeconds\":43200,"), "{json}");
        assert!(!json.contains("1.0"), "{json}");
    }
}
