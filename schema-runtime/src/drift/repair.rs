//! Repairing drift: making the database what the migrations declared. Adding and restoring
//! what was declared is always done; removing what no migration declared (an index, a
//! validator) or re-building an index whose definition cannot change in place only when
//! destructive changes are allowed.

use mongodb::Database;
use mongodb::bson::{Document, doc};

use super::declared::DeclaredSchema;
use super::{Drift, RepairAction};
use crate::collection::{self, ExistingDocuments, ValidationAction, ValidationLevel};
use crate::error::{Error, Result};
use crate::indexes::{self, IndexRun};
use crate::lock::Lease;

/// Options `collMod` can change on an existing collection
/// (<https://www.mongodb.com/docs/manual/reference/command/collMod/>); the others (`capped`,
/// `size`, `collation`, `timeseries`, `clusteredIndex`, ...) are fixed when it is created.
const CHANGEABLE_OPTIONS: &[&str] = &["expireAfterSeconds", "changeStreamPreAndPostImages"];

const ONLY_DESTRUCTIVE: &str = "only with --allow-destructive (AUTO_SCHEMA_DESTRUCTIVE=true)";

/// Repairs `findings` in a safe order (collections, options, validators, indexes, then what no
/// migration declared), checking the lease before each change. A change the server refuses
/// (duplicate keys for a unique index, documents a validator rejects) is left with its reason
/// and the others go on.
pub(crate) async fn repair(
    database: &Database,
    declared: &DeclaredSchema,
    findings: &[Drift],
    allow_destructive: bool,
    lease: &Lease,
) -> Result<Vec<RepairAction>> {
    let mut ordered: Vec<&Drift> = findings.iter().collect();
    ordered.sort_by_key(|f| match f {
        Drift::MissingCollection { .. } => 0,
        Drift::DifferentOption { .. } => 1,
        Drift::DifferentValidator { .. } => 2,
        Drift::MissingIndex { .. } | Drift::DifferentIndex { .. } => 3,
        Drift::UndeclaredValidator { .. } | Drift::UndeclaredIndex { .. } => 4,
    });
    let mut actions = Vec::new();
    for finding in ordered {
        lease.verify(None).await?;
        let (repaired, note) = match one(database, declared, finding, allow_destructive).await {
            Ok(done) => done,
            Err(error) => (false, format!("not repaired: {error}")),
        };
        if repaired {
            tracing::info!(collection = finding.collection(), "drift repaired: {note}");
        } else {
            tracing::warn!(collection = finding.collection(), "drift left: {note}");
        }
        actions.push(RepairAction {
            finding: finding.clone(),
            repaired,
            note,
        });
    }
    Ok(actions)
}

async fn one(
    database: &Database,
    declared: &DeclaredSchema,
    finding: &Drift,
    allow_destructive: bool,
) -> Result<(bool, String)> {
    let name = finding.collection();
    let wanted = declared.collections.get(name);
    match finding {
        Drift::MissingCollection { .. } => {
            let mut options = Document::new();
            if let Some(wanted) = wanted {
                for (option, (value, _)) in &wanted.options {
                    options.insert(option, value.clone());
                }
                if let Some((validator, _)) = &wanted.validator {
                    options.extend(super::compare::validator_document(validator));
                }
            }
            collection::create(database, name, options, None).await?;
            Ok((true, format!("created collection {name:?}")))
        }
        Drift::DifferentOption {
            option, declared, ..
        } => {
            if !CHANGEABLE_OPTIONS.contains(&option.as_str()) {
                return Ok((
                    false,
                    format!(
                        "option {option:?} of collection {name:?} is fixed when the collection is created; collMod cannot change it (re-create the collection in a migration)"
                    ),
                ));
            }
            let command = doc! {
                "collMod": name, option.as_str(): declared.clone(),
                "writeConcern": crate::wire::majority_document(),
            };
            run(
                database,
                command,
                &format!("setting option {option:?} of {name:?}"),
            )
            .await?;
            Ok((
                true,
                format!("set option {option:?} of {name:?} to {declared} (collMod)"),
            ))
        }
        Drift::DifferentValidator { .. } => {
            let Some((validator, _)) = wanted.and_then(|w| w.validator.as_ref()) else {
                return Ok((false, "nothing declared to restore".into()));
            };
            let (Some(level), Some(action)) = (
                ValidationLevel::parse(&validator.level),
                ValidationAction::parse(&validator.action),
            ) else {
                return Ok((
                    false,
                    format!(
                        "the declared level {:?} or action {:?} is not one this version knows",
                        validator.level, validator.action
                    ),
                ));
            };
            collection::ensure_validator_for(
                database,
                name,
                validator.validator.clone(),
                level,
                action,
                ExistingDocuments::Refuse,
                None,
            )
            .await?;
            Ok((
                true,
                format!(
                    "restored the validator of {name:?} (level {}, action {})",
                    validator.level, validator.action
                ),
            ))
        }
        Drift::MissingIndex { name: index, .. } | Drift::DifferentIndex { name: index, .. } => {
            let Some((spec, _)) = wanted.and_then(|w| w.indexes.get(index)) else {
                return Ok((false, "nothing declared to restore".into()));
            };
            let specs = [spec.clone()];
            match indexes::ensure_indexes_for(database, name, &specs, &IndexRun::default()).await {
                Ok(report) if !report.modified.is_empty() => Ok((
                    true,
                    format!("changed index {index:?} of {name:?} in place (collMod)"),
                )),
                Ok(_) => Ok((true, format!("created index {index:?} on {name:?}"))),
                Err(Error::IndexConflict { .. }) if allow_destructive => {
                    indexes::drop_index_for(database, name, index, None).await?;
                    indexes::ensure_indexes_for(database, name, &specs, &IndexRun::default())
                        .await?;
                    Ok((
                        true,
                        format!("dropped index {index:?} of {name:?} and built it as declared"),
                    ))
                }
                Err(Error::IndexConflict { .. }) => Ok((
                    false,
                    format!(
                        "index {index:?} of {name:?} cannot change in place; re-building it drops it first: {ONLY_DESTRUCTIVE}"
                    ),
                )),
                Err(other) => Err(other),
            }
        }
        Drift::UndeclaredIndex { name: index, .. } => {
            if !allow_destructive {
                return Ok((
                    false,
                    format!(
                        "no migration declared index {index:?} of {name:?}; it is dropped {ONLY_DESTRUCTIVE}"
                    ),
                ));
            }
            indexes::drop_index_for(database, name, index, None).await?;
            Ok((true, format!("dropped index {index:?} of {name:?}")))
        }
        Drift::UndeclaredValidator { .. } => {
            if !allow_destructive {
                return Ok((
                    false,
                    format!(
                        "no migration declared the validator of {name:?}; it is removed {ONLY_DESTRUCTIVE}"
                    ),
                ));
            }
            // An empty validator removes it (MongoDB's collMod documentation).
            let command = doc! {
                "collMod": name, "validator": {}, "validationLevel": "strict",
                "validationAction": "error", "writeConcern": crate::wire::majority_document(),
            };
            run(
                database,
                command,
                &format!("removing the validator of {name:?}"),
            )
            .await?;
            Ok((true, format!("removed the validator of {name:?}")))
        }
    }
}

async fn run(database: &Database, command: Document, what: &str) -> Result<()> {
    crate::wire::run_idempotent(database, command, &[])
        .await
        .map_err(|e| Error::database(what.to_owned(), None, e))?;
    Ok(())
}
