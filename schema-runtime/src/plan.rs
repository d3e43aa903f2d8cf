//! The plan: which registered migrations are applied, pending, changed since they ran or out of
//! order, and which applied ids this binary does not know.

use std::collections::HashMap;

use schema_id::MigrationId;

use crate::registry::{Migration, Registry};
use crate::store::{MigrationRecord, RecordState};

/// How an applied migration's recorded checksum compares with this binary's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// The body is the one that ran.
    Matches,
    /// The body changed after it ran.
    Differs {
        /// What was recorded when it ran.
        recorded: String,
    },
    /// The record has no checksum (written by another tool, such as the reference system).
    NotRecorded,
}

/// Where one registered migration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    /// Applied, with its checksum status.
    Applied(ChecksumStatus),
    /// Not applied yet: never started, failed, or interrupted (its record says which).
    Pending,
}

/// One registered migration and its record.
#[derive(Debug, Clone)]
pub struct PlanEntry {
    /// The migration.
    pub migration: &'static Migration,
    /// Its id.
    pub id: MigrationId,
    /// Applied or pending.
    pub state: EntryState,
    /// Its record, if the database has one.
    pub record: Option<MigrationRecord>,
}

impl PlanEntry {
    /// Whether it still has to run.
    pub fn is_pending(&self) -> bool {
        self.state == EntryState::Pending
    }

    /// The `_id` its record has or will have.
    pub fn record_key(&self) -> String {
        match &self.record {
            Some(record) => record.key.clone(),
            None => self.id.as_str().to_owned(),
        }
    }
}

/// The registry compared with the records of `schema_versions`.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every registered migration, in id order.
    pub entries: Vec<PlanEntry>,
    /// Records no registered migration has (the database is ahead of this binary, or the record
    /// is not a migration id at all).
    pub unknown: Vec<MigrationRecord>,
    /// The highest applied id, counting unknown ones.
    pub highest_applied: Option<MigrationId>,
}

impl Plan {
    /// Compares `registry` with `records`.
    pub fn new(registry: &Registry, records: Vec<MigrationRecord>) -> Self {
        let highest_applied = records
            .iter()
            .filter(|r| r.state == RecordState::Applied)
            .filter_map(|r| r.id.clone())
            .max();
        let mut by_id: HashMap<MigrationId, MigrationRecord> = HashMap::new();
        let mut unknown = Vec::new();
        for record in records {
            let Some(id) = record.id.clone() else {
                unknown.push(record);
                continue;
            };
            // Two records for one id ("0001" and "0001_events_init"): the applied one wins.
            match by_id.get(&id) {
                Some(kept) if kept.state == RecordState::Applied => {}
                _ => {
                    by_id.insert(id, record);
                }
            }
        }
        let entries = registry
            .migrations()
            .iter()
            .map(|&migration| {
                let id = migration.id();
                let record = by_id.remove(&id);
                let state = match &record {
                    Some(r) if r.state == RecordState::Applied => {
                        EntryState::Applied(match &r.checksum {
                            None => ChecksumStatus::NotRecorded,
                            Some(c) if c == migration.checksum() => ChecksumStatus::Matches,
                            Some(c) => ChecksumStatus::Differs {
                                recorded: c.clone(),
                            },
                        })
                    }
                    _ => EntryState::Pending,
                };
                PlanEntry {
                    migration,
                    id,
                    state,
                    record,
                }
            })
            .collect();
        let mut rest: Vec<MigrationRecord> = by_id.into_values().collect();
        rest.sort_by(|a, b| a.id.cmp(&b.id));
        unknown.extend(rest);
        Plan {
            entries,
            unknown,
            highest_applied,
        }
    }

    /// The migrations still to run, in order.
    pub fn pending(&self) -> impl Iterator<Item = &PlanEntry> {
        self.entries.iter().filter(|e| e.is_pending())
    }

    /// The migrations still to run up to and including `to` (all with `None`), in order.
    pub fn pending_up_to<'a>(
        &'a self,
        to: Option<&'a MigrationId>,
    ) -> impl Iterator<Item = &'a PlanEntry> + 'a {
        self.pending()
            .filter(move |e| to.is_none_or(|to| &e.id <= to))
    }

    /// Whether anything is pending.
    pub fn has_pending(&self) -> bool {
        self.pending().next().is_some()
    }

    /// Pending migrations whose id is below the highest applied id.
    pub fn out_of_order(&self) -> impl Iterator<Item = &PlanEntry> {
        self.pending()
            .filter(|e| self.highest_applied.as_ref().is_some_and(|h| &e.id < h))
    }

    /// Applied migrations whose record names another function *and* another description than
    /// the migration registered under the id: a different migration that used the same id (two
    /// branches). Records without a function (written by the reference system) are not compared.
    pub fn diverged(&self) -> impl Iterator<Item = (&PlanEntry, &MigrationRecord)> {
        self.entries.iter().filter_map(|e| {
            let record = e.record.as_ref()?;
            let function = record.function.as_deref()?;
            let description = record.description.as_deref().unwrap_or_default();
            (record.state == RecordState::Applied
                && function != e.migration.function()
                && description != e.migration.description())
            .then_some((e, record))
        })
    }

    /// Applied migrations whose body changed since they ran.
    pub fn changed(&self) -> impl Iterator<Item = (&PlanEntry, &str)> {
        self.entries.iter().filter_map(|e| match &e.state {
            EntryState::Applied(ChecksumStatus::Differs { recorded }) => {
                Some((e, recorded.as_str()))
            }
            _ => None,
        })
    }
}
