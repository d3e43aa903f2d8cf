//! The drift check and its repair, on the migrator: what the applied migrations declared
//! against the live database.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use mongodb::bson::{Bson, doc};

use super::exec::{Ended, run_guarded};
use super::operations::{finish_locked, operator};
use super::{Migrator, Report, Warning, log_warning};
use crate::context::MigrationContext;
use crate::deployment::Deployment;
use crate::drift::{
    DeclaredSchema, DriftReport, RecordedDeclarations, RepairReport, compare, read_live, repair,
};
use crate::error::{Error, Result};
use crate::lock::Lease;
use crate::plan::Plan;
use crate::store::MigrationRecord;

impl Migrator {
    /// Whether [`Migrator::apply_all`] and [`Migrator::status`] also check for drift
    /// (`SCHEMA_CHECK_DRIFT`): start-up then adds a [`Warning::Drift`] per difference to its
    /// report (and tracing), and `status()` fills [`Health::drift`](crate::Health). The check
    /// costs one `find` of the records (`status()` reuses its own), one `listCollections` and
    /// one `listIndexes` per collection. Default false.
    pub fn check_drift(mut self, on: bool) -> Self {
        self.check_drift = on;
        self
    }

    pub(crate) fn check_drift_setting(&self) -> bool {
        self.check_drift
    }

    /// Compares the schema the applied migrations declared with the database: see
    /// [`Drift`](crate::Drift) for what it finds. Reads only: one `find` of the records, one
    /// `listCollections`, one `listIndexes` per collection.
    pub async fn drift(&self) -> Result<DriftReport> {
        let records = self.store().load().await?;
        self.drift_of(&records).await
    }

    pub(crate) async fn drift_of(&self, records: &[MigrationRecord]) -> Result<DriftReport> {
        let declared = DeclaredSchema::fold(records);
        let live = read_live(self.database(), &self.own_collections()).await?;
        Ok(DriftReport {
            findings: compare(&declared, &live),
            collections_checked: live.len(),
            without_declarations: declared.without_declarations,
        })
    }

    /// Compares the models of this migrator's group (`#[derive(Collection)]`) with the schema
    /// the applied migrations declared, or with `live`, with the database: indexes modelled
    /// but missing, different, or no longer modelled, and validators that differ. Reads only:
    /// one `find` of the records (or the drift check's `listCollections` and `listIndexes`).
    pub async fn diff_models(&self, live: bool) -> Result<crate::ModelDiff> {
        let models = crate::model::models(self.group_name());
        let (target, against) = if live {
            (
                read_live(self.database(), &self.own_collections()).await?,
                "database",
            )
        } else {
            let records = self.store().load().await?;
            (
                crate::model::as_live(&DeclaredSchema::fold(&records)),
                "migrations",
            )
        };
        let mut diff = crate::model::diff(&models, target, against);
        diff.duplicates = crate::model::duplicates(self.group_name())
            .into_iter()
            .map(|(c, types)| (c.to_owned(), types.into_iter().map(str::to_owned).collect()))
            .collect();
        Ok(diff)
    }

    /// The library's own collections, which the drift check leaves out.
    fn own_collections(&self) -> Vec<String> {
        let store = self.store();
        vec![
            store.name().to_owned(),
            crate::lock::lock_collection_name(store.name()),
            store.audit_collection(),
        ]
    }

    /// Makes the database what the applied migrations declared, under the lock: creates
    /// missing collections and indexes, restores validators, changes in place what can be
    /// (a TTL, `hidden`), and sets the collection options `collMod` can change. What loses
    /// something (dropping an index no migration declared, removing an undeclared validator,
    /// dropping an index to re-build it with its declared definition) is done only with
    /// `allow_destructive`; otherwise it is left, with the reason. The same checks as the
    /// helpers apply (duplicate keys before a unique index, documents a validator would
    /// reject). What was done is written to `<versions>_audit`. Returns each finding with what
    /// was done and the drift left afterwards.
    pub async fn repair_drift(&self, allow_destructive: bool) -> Result<RepairReport> {
        let lease = self.lock_for_command().await?;
        let outcome = AssertUnwindSafe(async {
            let store = self.store();
            let records = store.load().await?;
            let declared = DeclaredSchema::fold(&records);
            let live = read_live(self.database(), &self.own_collections()).await?;
            let findings = compare(&declared, &live);
            let actions = repair(
                self.database(),
                &declared,
                &findings,
                allow_destructive,
                &lease,
            )
            .await?;
            if !actions.is_empty() {
                let noted: Vec<Bson> = actions
                    .iter()
                    .map(|a| {
                        Bson::Document(doc! {
                            "kind": a.finding.kind(),
                            "collection": a.finding.collection(),
                            "index": a.finding.index(),
                            "repaired": a.repaired,
                            "note": &a.note,
                        })
                    })
                    .collect();
                store
                    .audit(
                        "drift",
                        doc! {
                            "action": "drift_repair",
                            "allow_destructive": allow_destructive,
                            "actions": noted,
                        },
                        &operator(),
                    )
                    .await?;
            }
            let after = self.drift_of(&records).await?;
            Ok(RepairReport { actions, after })
        })
        .catch_unwind()
        .await;
        finish_locked(lease, outcome).await
    }

    /// Gives the applied records that have no declarations (a database adopted with
    /// `baseline`, or from the reference system) the declarations of their migrations, so that
    /// the drift check knows what they made. The migrations' own effects are not run again on
    /// the database: every applied migration this binary registers is run, in id order, on an
    /// empty scratch database on the same server (`schema_declare_<pid>_<n>`, dropped
    /// afterwards), and what its helpers declared there is written to its record (with
    /// `declared_from: "scratch run"`; noted in `<versions>_audit`). Under the lock.
    ///
    /// What it cannot do, by design: a migration that writes outside its context's database
    /// (another database through the client, an external service) does that again, so review
    /// such migrations first; a migration that fails on an empty database gets no declarations
    /// (its entry says why); the declarations are those of this binary's code, which may have
    /// changed since the migration ran (the checksum says so). The database user needs the
    /// right to create and drop the scratch database.
    pub async fn record_declarations(&self) -> Result<Vec<RecordedDeclarations>> {
        let lease = self.lock_for_command().await?;
        let outcome = AssertUnwindSafe(async {
            let plan = Plan::new(&self.registry()?, self.store().load().await?);
            let wanted = plan.entries.iter().any(|e| {
                !e.is_pending() && e.record.as_ref().is_some_and(|r| r.declared.is_none())
            }) || plan
                .unknown
                .iter()
                .any(|r| r.declared.is_none() && r.state == crate::RecordState::Applied);
            if !wanted {
                return Ok(Vec::new());
            }
            let scratch = self.database().client().database(&format!(
                "schema_declare_{}_{}",
                crate::wire::pid(),
                fastrand::u32(..)
            ));
            let recorded = self.declare_on(&scratch, &plan, &lease).await;
            if let Err(e) = scratch.drop().await {
                tracing::warn!(database = scratch.name(), error = %e, "the scratch database was not dropped; drop it by hand");
            }
            recorded
        })
        .catch_unwind()
        .await;
        finish_locked(lease, outcome).await
    }

    async fn declare_on(
        &self,
        scratch: &mongodb::Database,
        plan: &Plan,
        lease: &Lease,
    ) -> Result<Vec<RecordedDeclarations>> {
        let store = self.store();
        let transactions = Deployment::detect(scratch).await?.supports_transactions();
        let mut done = Vec::new();
        for entry in plan.entries.iter().filter(|e| !e.is_pending()) {
            lease.verify(Some(entry.id.as_str())).await?;
            let migration = entry.migration;
            let needed = entry.record.as_ref().is_some_and(|r| r.declared.is_none());
            let mut context =
                MigrationContext::for_migration(scratch.clone(), &entry.id, false, true);
            if migration.transaction() && transactions {
                let session = crate::wire::start_majority_transaction(scratch.client())
                    .await
                    .map_err(|(step, e)| {
                        Error::database(step.doing(), Some(entry.id.as_str()), e)
                    })?;
                context.set_session(session);
            }
            let ended = run_guarded(lease, None, migration.run(&mut context)).await;
            let mut session = context.take_session();
            let failure = match ended {
                Ended::LeaseLost(reason) => {
                    return Err(lease.lost_error(Some(entry.id.as_str()), reason));
                }
                Ended::Returned => match session.as_mut() {
                    Some(session) => session.commit_transaction().await.err().map(|e| {
                        format!("its transaction on the scratch database did not commit: {e}")
                    }),
                    None => None,
                },
                Ended::TimedOut => Some("it ran past its time limit".to_owned()),
                Ended::Failed { message, .. } => {
                    if let Some(session) = session.as_mut() {
                        let _ = session.abort_transaction().await;
                    }
                    Some(message)
                }
            };
            if !needed {
                continue;
            }
            let key = entry.record_key();
            match failure {
                None => {
                    let declared = context.take_declared();
                    let count = declared.len();
                    store.record_declared(&key, declared, lease.fence()).await?;
                    done.push(RecordedDeclarations {
                        key,
                        declarations: count,
                        recorded: true,
                        note: None,
                    });
                }
                Some(message) => done.push(RecordedDeclarations {
                    key,
                    declarations: 0,
                    recorded: false,
                    note: Some(format!(
                        "it failed on the empty scratch database: {message}"
                    )),
                }),
            }
        }
        for record in plan
            .unknown
            .iter()
            .filter(|r| r.declared.is_none() && r.state == crate::RecordState::Applied)
        {
            done.push(RecordedDeclarations {
                key: record.key.clone(),
                declarations: 0,
                recorded: false,
                note: Some("this binary does not register it, so it cannot be run".into()),
            });
        }
        let keys: Vec<&str> = done
            .iter()
            .filter(|d| d.recorded)
            .map(|d| d.key.as_str())
            .collect();
        if !keys.is_empty() {
            store
                .audit(
                    "declarations",
                    doc! {
                        "action": "record_declarations",
                        "records": keys,
                        "scratch_database": scratch.name(),
                    },
                    &operator(),
                )
                .await?;
        }
        Ok(done)
    }

    /// Adds the drift found after start-up to `report` as warnings; a failed check is one
    /// warning, not a failed start-up.
    pub(super) async fn drift_warnings(&self, report: &mut Report) {
        let warnings: Vec<Warning> = match self.drift().await {
            Ok(drift) => {
                if !drift.without_declarations.is_empty() {
                    tracing::info!(
                        records = ?drift.without_declarations,
                        "these applied migrations carry no declarations; what they made shows as undeclared"
                    );
                }
                drift
                    .findings
                    .iter()
                    .map(|f| Warning::Drift {
                        finding: f.to_string(),
                    })
                    .collect()
            }
            Err(e) => vec![Warning::Drift {
                finding: format!("the drift check failed: {e}"),
            }],
        };
        warnings.iter().for_each(log_warning);
        report.warnings.extend(warnings);
    }
}
