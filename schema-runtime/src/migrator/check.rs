//! The policy check: a plan's report, or the error that refuses it before anything runs. Pure:
//! no I/O, so it is computed again under the lock and unit-tested without a server.

use schema_id::MigrationId;

use super::{Migrator, Report, Warning};
use crate::error::{Error, Result};
use crate::plan::Plan;

/// What to do when an applied migration's code changed since it ran (its checksum differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumPolicy {
    /// Report it in [`Report::warnings`] and in a `tracing` warning, and carry on. The default:
    /// a start-up is the wrong moment to take a service down for a change that already ran;
    /// check for it in the deploy pipeline instead.
    #[default]
    Warn,
    /// Refuse to start ([`Error::ChecksumMismatch`]) before anything runs.
    Fail,
    /// Say nothing.
    Ignore,
}

impl Migrator {
    /// The report of a plan's state, or the error that refuses it. Pure: it is computed again
    /// under the lock, and its warnings are logged once, by the caller that returns them.
    pub(crate) fn check(&self, plan: &Plan, to: Option<&MigrationId>) -> Result<Report> {
        let mut report = Report {
            already_applied: plan
                .entries
                .iter()
                .filter(|e| !e.is_pending())
                .map(|e| e.id.clone())
                .collect(),
            pending: plan
                .pending()
                .filter(|e| to.is_some_and(|to| &e.id > to))
                .map(|e| e.id.clone())
                .collect(),
            ..Report::default()
        };
        for (entry, record) in plan.diverged() {
            if !self.allow_reused_ids {
                return Err(Error::DifferentMigration {
                    id: entry.id.clone(),
                    recorded_function: record.function.clone().unwrap_or_default(),
                    recorded_description: record.description.clone().unwrap_or_default(),
                    registered_function: entry.migration.function(),
                    registered_description: entry.migration.description().to_owned(),
                });
            }
            report.warnings.push(Warning::ReusedId {
                id: entry.id.clone(),
                recorded_function: record.function.clone().unwrap_or_default(),
                registered_function: entry.migration.function(),
            });
        }
        if !self.allow_destructive
            && let Some(entry) = plan.pending_up_to(to).find(|e| e.migration.destructive())
        {
            return Err(Error::DestructiveNotAllowed {
                id: entry.id.clone(),
                description: entry.migration.description().to_owned(),
            });
        }
        for (entry, recorded) in plan.changed() {
            match self.checksum_policy {
                ChecksumPolicy::Fail => {
                    return Err(Error::ChecksumMismatch {
                        id: entry.id.clone(),
                        description: entry.migration.description().to_owned(),
                        recorded: recorded.to_owned(),
                        current: entry.migration.checksum().to_owned(),
                    });
                }
                ChecksumPolicy::Warn => {
                    let warning = Warning::ChecksumChanged {
                        id: entry.id.clone(),
                        recorded: recorded.to_owned(),
                        current: entry.migration.checksum().to_owned(),
                    };
                    report.warnings.push(warning);
                }
                ChecksumPolicy::Ignore => {}
            }
        }
        if !self.allow_out_of_order
            && let (Some(entry), Some(highest)) = (
                plan.out_of_order()
                    .find(|e| to.is_none_or(|to| &e.id <= to)),
                plan.highest_applied.as_ref(),
            )
        {
            return Err(Error::OutOfOrder {
                id: entry.id.clone(),
                description: entry.migration.description().to_owned(),
                highest_applied: highest.clone(),
            });
        }
        for record in &plan.unknown {
            report.warnings.push(Warning::UnknownRecord {
                key: record.key.clone(),
                description: record.description.clone(),
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use mongodb::Client;
    use mongodb::options::{ClientOptions, ServerAddress};

    use super::*;
    use crate::fixtures::{meta, record, run};
    use crate::registry::{Migration, Registry};
    use crate::store::MigrationRecord;

    static ONE: Migration = Migration::__new(meta("0001", "one", false), run, None);
    static TWO: Migration = Migration::__new(meta("0002", "two", false), run, None);
    static DROP: Migration = Migration::__new(meta("0003", "drop", true), run, None);

    fn plan(migrations: &[&'static Migration], records: Vec<MigrationRecord>) -> Plan {
        let registry = Registry::from_migrations("check", migrations.iter().copied()).unwrap();
        Plan::new(&registry, records)
    }

    /// A migrator whose client never connects: `check` sends nothing.
    fn migrator() -> Migrator {
        let options = ClientOptions::builder()
            .hosts(vec![ServerAddress::Tcp {
                host: "127.0.0.1".into(),
                port: Some(1),
            }])
            .build();
        Migrator::new(Client::with_options(options).unwrap().database("check"))
    }

    #[tokio::test]
    async fn checksum_policies() {
        let changed = plan(&[&ONE], vec![record("0001", "one", "old")]);
        let report = migrator().check(&changed, None).unwrap();
        assert!(matches!(
            &report.warnings[..],
            [Warning::ChecksumChanged { .. }]
        ));
        let err = migrator()
            .checksum_policy(ChecksumPolicy::Fail)
            .check(&changed, None)
            .unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        let quiet = migrator()
            .checksum_policy(ChecksumPolicy::Ignore)
            .check(&changed, None)
            .unwrap();
        assert!(quiet.warnings.is_empty());
    }

    #[tokio::test]
    async fn out_of_order_destructive_and_reused_ids_are_refused_unless_allowed() {
        let late = plan(&[&ONE, &TWO], vec![record("0002", "two", "current")]);
        assert!(matches!(
            migrator().check(&late, None),
            Err(Error::OutOfOrder { .. })
        ));
        migrator()
            .allow_out_of_order(true)
            .check(&late, None)
            .unwrap();

        let destructive = plan(&[&ONE, &DROP], vec![record("0001", "one", "current")]);
        assert!(matches!(
            migrator().check(&destructive, None),
            Err(Error::DestructiveNotAllowed { .. })
        ));
        // Not when `up --to` stops before it.
        let to = MigrationId::parse("0002").unwrap();
        migrator().check(&destructive, Some(&to)).unwrap();
        migrator()
            .allow_destructive(true)
            .check(&destructive, None)
            .unwrap();

        let reused = plan(&[&ONE], vec![record("0001", "other", "x")]);
        assert!(matches!(
            migrator().check(&reused, None),
            Err(Error::DifferentMigration { .. })
        ));
        let allowed = migrator()
            .allow_reused_ids(true)
            .check(&reused, None)
            .unwrap();
        assert!(
            allowed
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::ReusedId { .. }))
        );
    }

    #[tokio::test]
    async fn unknown_records_are_warnings() {
        let ahead = plan(
            &[&ONE],
            vec![
                record("0001", "one", "current"),
                record("0099", "later", "x"),
            ],
        );
        let report = migrator().check(&ahead, None).unwrap();
        assert!(
            matches!(&report.warnings[..], [Warning::UnknownRecord { key, .. }] if key == "0099")
        );
        assert_eq!(report.already_applied.len(), 1);
    }
}
