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

/// Something `verify` found wrong.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The database recorded a different migration under this id (its function and its
    /// description both differ): two branches used the same id.
    DifferentMigration {
        /// The id.
        id: MigrationId,
        /// The function the database recorded.
        recorded_function: String,
        /// The function registered now.
        registered_function: String,
    },
    /// An applied migration's code changed.
    ChecksumChanged {
        /// The migration.
        id: MigrationId,
    },
    /// A pending migration is below the highest applied id.
    OutOfOrder {
        /// The migration.
        id: MigrationId,
        /// The highest applied id.
        highest_applied: MigrationId,
    },
    /// A record no registered migration has.
    Unknown {
        /// The record's `_id`.
        key: String,
    },
    /// A migration whose last attempt failed.
    Failed {
        /// The migration.
        key: String,
        /// Its error.
        error: String,
    },
    /// A migration that started and never finished (its process died, or it is running now).
    Running {
        /// The migration.
        key: String,
    },
}

impl Finding {
    /// Its kind, as `--json` names it: `collided`, `changed`, `out_of_order`, `unknown`,
    /// `failed` or `running`.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::DifferentMigration { .. } => "collided",
            Finding::ChecksumChanged { .. } => "changed",
            Finding::OutOfOrder { .. } => "out_of_order",
            Finding::Unknown { .. } => "unknown",
            Finding::Failed { .. } => "failed",
            Finding::Running { .. } => "running",
        }
    }

    /// The id (or the record's `_id`) it is about.
    pub fn key(&self) -> String {
        match self {
            Finding::DifferentMigration { id, .. }
            | Finding::ChecksumChanged { id }
            | Finding::OutOfOrder { id, .. } => id.to_string(),
            Finding::Unknown { key } | Finding::Failed { key, .. } | Finding::Running { key } => {
                key.clone()
            }
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::DifferentMigration {
                id,
                recorded_function,
                registered_function,
            } => write!(
                f,
                "{id}: the database applied {recorded_function} under this id, this binary registers {registered_function} (two branches used the same id; give the registered one a new id)"
            ),
            Finding::ChecksumChanged { id } => {
                write!(
                    f,
                    "{id}: changed after it was applied (checksum differs); put schema changes in a new migration, or accept a harmless edit with `migrate accept {id}` (`--all` for every one)"
                )
            }
            Finding::OutOfOrder {
                id,
                highest_applied,
            } => {
                write!(
                    f,
                    "{id}: pending, but {highest_applied} is already applied (out of order)"
                )
            }
            Finding::Unknown { key } => {
                write!(f, "{key}: applied, but this binary does not know it")
            }
            Finding::Failed { key, error } => write!(f, "{key}: failed: {error}"),
            Finding::Running { key } => write!(f, "{key}: started and never finished"),
        }
    }
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
        // Records stay in one vector; the map holds only their positions (a map of whole records
        // was most of the heap of a no-op start-up with 1,000 migrations).
        let mut records: Vec<Option<MigrationRecord>> = records.into_iter().map(Some).collect();
        let mut by_id: HashMap<MigrationId, usize> = HashMap::with_capacity(records.len());
        let mut unknown = Vec::new();
        for at in 0..records.len() {
            let Some(id) = records[at].as_ref().and_then(|r| r.id.clone()) else {
                unknown.extend(records[at].take());
                continue;
            };
            // Two records for one id ("0001" and "0001_events_init"): the applied one wins.
            match by_id.get(&id) {
                Some(&kept)
                    if records[kept].as_ref().map(|r| r.state) == Some(RecordState::Applied) => {}
                _ => {
                    by_id.insert(id, at);
                }
            }
        }
        let entries: Vec<PlanEntry> = registry
            .migrations()
            .iter()
            .map(|&migration| {
                let id = migration.id();
                let record = by_id.remove(&id).and_then(|at| records[at].take());
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
        let mut rest: Vec<MigrationRecord> = by_id
            .into_values()
            .filter_map(|at| records[at].take())
            .collect();
        rest.sort_by(|a, b| a.id.cmp(&b.id));
        unknown.extend(rest);
        // Messages show an id as the code writes it ("0008"), not as a record may hold it ("8").
        let highest_applied = highest_applied.map(|highest| {
            entries
                .iter()
                .find(|e| e.id == highest)
                .map_or(highest, |e| e.id.clone())
        });
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

    /// The pending migrations an application needs before it starts: those before the first
    /// pending `#[migration(background)]` one (all of them when there is none), in order.
    pub fn needed_at_start(&self) -> impl Iterator<Item = &PlanEntry> {
        let first = self.background().next().map(|e| &e.id);
        self.pending()
            .filter(move |e| first.is_none_or(|first| &e.id < first))
    }

    /// The pending migrations from the first pending `#[migration(background)]` one on, in
    /// order: what may be applied while the application serves.
    pub fn background(&self) -> impl Iterator<Item = &PlanEntry> {
        self.pending().skip_while(|e| !e.migration.background())
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

    /// Everything wrong with the database compared with this binary, in the order `verify` lists
    /// it: the same id used by another migration, changed checksums, failed and unfinished
    /// migrations, out-of-order pending ids, unknown records.
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings: Vec<Finding> = self
            .diverged()
            .map(|(entry, record)| Finding::DifferentMigration {
                id: entry.id.clone(),
                recorded_function: record.function.clone().unwrap_or_default(),
                registered_function: entry.migration.function(),
            })
            .collect();
        for entry in &self.entries {
            if let EntryState::Applied(ChecksumStatus::Differs { .. }) = entry.state {
                findings.push(Finding::ChecksumChanged {
                    id: entry.id.clone(),
                });
            }
            if let Some(record) = &entry.record {
                match record.state {
                    RecordState::Failed => findings.push(Finding::Failed {
                        key: record.key.clone(),
                        error: record.last_error.clone().unwrap_or_default(),
                    }),
                    RecordState::Running => findings.push(Finding::Running {
                        key: record.key.clone(),
                    }),
                    RecordState::Applied => {}
                }
            }
        }
        for entry in self.out_of_order() {
            if let Some(highest) = &self.highest_applied {
                findings.push(Finding::OutOfOrder {
                    id: entry.id.clone(),
                    highest_applied: highest.clone(),
                });
            }
        }
        for record in &self.unknown {
            findings.push(Finding::Unknown {
                key: record.key.clone(),
            });
        }
        findings
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{meta, record, run};

    static ONE: Migration = Migration::__new(meta("0001", "one", false), run, None);
    static TWO: Migration = Migration::__new(meta("0002", "two", false), run, None);
    static THREE: Migration = Migration::__new(meta("0003", "three", false), run, None);

    fn plan_of(records: Vec<MigrationRecord>) -> Plan {
        let registry = Registry::from_migrations("fixtures", [&THREE, &ONE, &TWO]).unwrap();
        Plan::new(&registry, records)
    }

    fn id(text: &str) -> MigrationId {
        MigrationId::parse(text).unwrap()
    }

    fn ids<'a>(entries: impl Iterator<Item = &'a PlanEntry>) -> Vec<String> {
        entries.map(|e| e.id.to_string()).collect()
    }

    fn with_state(mut r: MigrationRecord, state: RecordState) -> MigrationRecord {
        r.state = state;
        r
    }

    #[test]
    fn the_highest_applied_id_is_named_as_the_code_writes_it() {
        // A record written as "2" (by hand, or by another tool) for the migration "0002".
        let plan = plan_of(vec![record("2", "two", "current")]);
        assert_eq!(
            plan.highest_applied.as_ref().map(|h| h.as_str()),
            Some("0002")
        );
        let findings: Vec<String> = plan.findings().iter().map(|f| f.to_string()).collect();
        assert!(
            findings
                .iter()
                .any(|f| f == "0001: pending, but 0002 is already applied (out of order)"),
            "{findings:?}"
        );
    }

    #[test]
    fn an_empty_database_has_everything_pending_in_id_order() {
        let plan = plan_of(Vec::new());
        assert_eq!(ids(plan.pending()), ["0001", "0002", "0003"]);
        assert!(plan.has_pending());
        assert_eq!(plan.highest_applied, None);
        assert!(plan.unknown.is_empty());
        assert_eq!(plan.entries[0].record_key(), "0001");
    }

    #[test]
    fn applied_records_compare_checksums_and_running_or_failed_ones_stay_pending() {
        let mut no_checksum = record("0003", "three", "x");
        no_checksum.checksum = None;
        let plan = plan_of(vec![
            record("0001", "one", "current"),
            with_state(record("0002", "two", "current"), RecordState::Failed),
            no_checksum,
        ]);
        let states: Vec<&EntryState> = plan.entries.iter().map(|e| &e.state).collect();
        assert_eq!(
            states,
            [
                &EntryState::Applied(ChecksumStatus::Matches),
                &EntryState::Pending,
                &EntryState::Applied(ChecksumStatus::NotRecorded),
            ]
        );
        assert_eq!(ids(plan.pending()), ["0002"]);
        assert_eq!(plan.highest_applied, Some(id("3")));
        // 0002 is pending below the highest applied id.
        assert_eq!(ids(plan.out_of_order()), ["0002"]);
        let running = plan_of(vec![with_state(
            record("0001", "one", "current"),
            RecordState::Running,
        )]);
        assert_eq!(ids(running.pending()), ["0001", "0002", "0003"]);
        assert_eq!(running.highest_applied, None);
    }

    #[test]
    fn a_changed_body_is_listed_with_the_recorded_checksum() {
        let plan = plan_of(vec![record("0001", "one", "old")]);
        let changed: Vec<(String, &str)> =
            plan.changed().map(|(e, c)| (e.id.to_string(), c)).collect();
        assert_eq!(changed, [("0001".to_owned(), "old")]);
        assert_eq!(
            plan.diverged().count(),
            0,
            "same function: an edit, not a reuse"
        );
    }

    #[test]
    fn unknown_records_are_kept_sorted_and_count_towards_the_highest_applied() {
        let plan = plan_of(vec![
            record("0009", "nine", "c"),
            record("0001", "one", "current"),
            record("0004", "four", "c"),
            record("not-an-id", "odd", "c"),
        ]);
        let unknown: Vec<&str> = plan.unknown.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(unknown, ["not-an-id", "0004", "0009"]);
        assert_eq!(plan.highest_applied, Some(id("9")));
        assert_eq!(ids(plan.out_of_order()), ["0002", "0003"]);
    }

    #[test]
    fn a_reference_record_and_a_library_record_of_one_id_prefer_the_applied_one() {
        // The reference system's `_id` is "0001_events_init"; a failed retry wrote "0001".
        let mut reference = record("0001_events_init", "one", "c");
        reference.checksum = None;
        reference.function = None;
        let failed = with_state(record("0001", "one", "current"), RecordState::Failed);
        for records in [
            vec![reference.clone(), failed.clone()],
            vec![failed, reference],
        ] {
            let plan = plan_of(records);
            assert_eq!(
                plan.entries[0].state,
                EntryState::Applied(ChecksumStatus::NotRecorded)
            );
            assert_eq!(plan.entries[0].record_key(), "0001_events_init");
            assert!(plan.unknown.is_empty());
        }
    }

    #[test]
    fn pending_up_to_stops_at_the_target() {
        let plan = plan_of(vec![record("0001", "one", "current")]);
        assert_eq!(ids(plan.pending_up_to(Some(&id("2")))), ["0002"]);
        assert_eq!(
            ids(plan.pending_up_to(Some(&id("0001")))),
            Vec::<String>::new()
        );
        assert_eq!(ids(plan.pending_up_to(None)), ["0002", "0003"]);
    }

    #[test]
    fn a_different_migration_under_the_same_id_needs_both_function_and_description_to_differ() {
        let mut other = record("0002", "someone_else", "c");
        other.description = Some("Someone else's change".into());
        let plan_other = plan_of(vec![other]);
        let diverged: Vec<String> = plan_other
            .diverged()
            .map(|(e, r)| format!("{} {}", e.id, r.function.as_deref().unwrap()))
            .collect();
        assert_eq!(diverged, ["0002 app::someone_else"]);

        // Renamed function, same description: a refactor, not a reuse.
        let mut renamed = record("0002", "renamed", "c");
        renamed.description = Some("two".into());
        assert_eq!(plan_of(vec![renamed]).diverged().count(), 0);

        // A record without a function (another tool wrote it) is never compared.
        let mut foreign = record("0002", "x", "c");
        foreign.function = None;
        foreign.description = Some("whatever".into());
        assert_eq!(plan_of(vec![foreign]).diverged().count(), 0);

        // A failed attempt of another migration is not an applied one.
        let mut failed = record("0002", "someone_else", "c");
        failed.description = Some("other".into());
        assert_eq!(
            plan_of(vec![with_state(failed, RecordState::Failed)])
                .diverged()
                .count(),
            0
        );
    }
}
