//! A fleet: one schema across many databases (a database per tenant), on one cluster or several.
//!
//! Each database keeps its own `schema_versions` and its own lock, exactly as with one
//! [`Migrator`]: nothing about a single database's guarantees changes. The fleet chooses the
//! databases (a list, a name prefix, a filter over `listDatabases`, or all), runs one operation
//! over them with bounded concurrency, a canary wave first and a failure policy, and reports a
//! result per database.
//!
//! ```no_run
//! # async fn roll_out(client: mongodb::Client) -> schema_runtime::Result<()> {
//! use schema_runtime::{Fleet, Migrator};
//!
//! let template = Migrator::new(client.database("admin")); // its settings, for every tenant
//! let report = Fleet::new(template)
//!     .prefix("tenant_")
//!     .concurrency(4)
//!     .canary(5) // the first five databases first; a failure there stops the rollout
//!     .up()
//!     .await?;
//! println!("{}", report.summary());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};
use schema_id::MigrationId;

use crate::error::{Error, Result};
use crate::migrator::Migrator;
use crate::plan::EntryState;

/// The databases a fleet is made of, on one cluster.
#[derive(Debug, Clone)]
enum Selection {
    /// These names, in this order.
    Names(Vec<String>),
    /// Every database whose name starts with this, in name order.
    Prefix(String),
    /// Every database `listDatabases` returns for this filter (over `name`, `sizeOnDisk`,
    /// `empty`), in name order.
    Filter(Document),
    /// Every database but `admin`, `local` and `config`, in name order.
    All,
}

/// One cluster of a fleet: a migrator whose settings every database of it gets.
#[derive(Debug, Clone)]
struct Cluster {
    template: Migrator,
    label: String,
}

/// What the fleet does in each database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetAction {
    /// Read the records: up to date, pending (a laggard), or problems.
    Status,
    /// What `up` would apply, per database; writes nothing.
    Plan,
    /// Apply what is pending, under each database's lock.
    Up,
    /// The gate: pending and problems per database.
    Verify,
    /// Each database against the schema its applied migrations declared.
    Drift,
}

impl FleetAction {
    /// The action's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            FleetAction::Status => "status",
            FleetAction::Plan => "plan",
            FleetAction::Up => "up",
            FleetAction::Verify => "verify",
            FleetAction::Drift => "drift",
        }
    }
}

/// What happened in one database.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantOutcome {
    /// Everything applied, nothing wrong (and for `drift`: as declared).
    UpToDate,
    /// `up` applied these now.
    Applied {
        /// The migrations applied, in order.
        ids: Vec<MigrationId>,
    },
    /// Migrations are pending (`status`, `plan`, `verify`; `up` with auto-migration off).
    Pending {
        /// The pending migrations, in the order `up` runs them.
        ids: Vec<MigrationId>,
    },
    /// Problems in the records (`status`, `verify`): changed, failed, unknown, out of order.
    Problems {
        /// Each problem, as `verify` prints it.
        findings: Vec<String>,
    },
    /// `drift`: the database differs from the declared schema.
    Drifted {
        /// Each difference.
        differences: Vec<String>,
    },
    /// The operation failed in this database; the error names the migration.
    Failed {
        /// The error, as it displays (no password).
        error: String,
    },
    /// Not run: the rollout stopped first, or the database no longer exists.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl TenantOutcome {
    /// The state's name in reports and JSON: `up_to_date`, `applied`, `pending`, `problems`,
    /// `drifted`, `failed` or `skipped`.
    pub fn kind(&self) -> &'static str {
        match self {
            TenantOutcome::UpToDate => "up_to_date",
            TenantOutcome::Applied { .. } => "applied",
            TenantOutcome::Pending { .. } => "pending",
            TenantOutcome::Problems { .. } => "problems",
            TenantOutcome::Drifted { .. } => "drifted",
            TenantOutcome::Failed { .. } => "failed",
            TenantOutcome::Skipped { .. } => "skipped",
        }
    }
}

/// The result of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantResult {
    /// The cluster's label (its position, `0`, unless named with [`Fleet::cluster`]).
    pub cluster: String,
    /// The database.
    pub database: String,
    /// What happened.
    pub outcome: TenantOutcome,
    /// How long its operation took.
    pub duration: Duration,
}

/// The whole fleet's result: counts per state, and by name only the databases that need a look
/// (laggards, problems, failures), so that it stays small whatever the number of databases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetReport {
    /// How many databases the fleet chose.
    pub databases: usize,
    /// How many ended in each state ([`TenantOutcome::kind`]).
    pub counts: BTreeMap<&'static str, usize>,
    /// Databases with pending migrations (after `up`: those it did not bring up), by name.
    pub laggards: Vec<String>,
    /// Databases with problems or drift, with the first of them.
    pub problems: Vec<(String, String)>,
    /// Databases where the operation failed, with the error.
    pub failures: Vec<(String, String)>,
    /// Why the rollout stopped before the end, if it did.
    pub stopped: Option<String>,
    /// The wall time of the whole run.
    pub elapsed: Duration,
}

impl FleetReport {
    fn count(&mut self, result: &TenantResult) {
        *self.counts.entry(result.outcome.kind()).or_default() += 1;
        let name = || format!("{}{}", cluster_prefix(&result.cluster), result.database);
        match &result.outcome {
            TenantOutcome::Pending { .. } => self.laggards.push(name()),
            TenantOutcome::Problems { findings: first }
            | TenantOutcome::Drifted { differences: first } => self
                .problems
                .push((name(), first.first().cloned().unwrap_or_default())),
            TenantOutcome::Failed { error } => self.failures.push((name(), error.clone())),
            _ => {}
        }
    }

    /// How many databases ended in `kind` ([`TenantOutcome::kind`]).
    pub fn of(&self, kind: &str) -> usize {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// Whether every database is up to date (or was brought up) and nothing failed or stopped.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
            && self.problems.is_empty()
            && self.laggards.is_empty()
            && self.stopped.is_none()
            && self.of("skipped") == 0
    }

    /// A few lines for people: the counts, the laggards by name, the failures with their error.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(kind, n)| format!("{n} {}", kind.replace('_', " ")))
            .collect();
        let mut text = format!(
            "{} database(s) in {} ms: {}",
            self.databases,
            self.elapsed.as_millis(),
            if counts.is_empty() {
                "none".to_owned()
            } else {
                counts.join(", ")
            }
        );
        if let Some(why) = &self.stopped {
            text.push_str(&format!("\nstopped: {why}"));
        }
        if !self.laggards.is_empty() {
            text.push_str(&format!("\nlagging: {}", shortened(&self.laggards)));
        }
        for (database, problem) in &self.problems {
            text.push_str(&format!("\nproblem in {database}: {problem}"));
        }
        for (database, error) in &self.failures {
            text.push_str(&format!("\nfailed in {database}: {error}"));
        }
        text
    }
}

fn cluster_prefix(label: &str) -> String {
    if label == "0" {
        String::new()
    } else {
        format!("{label}/")
    }
}

/// The first twenty names, and how many more.
fn shortened(names: &[String]) -> String {
    if names.len() <= 20 {
        names.join(", ")
    } else {
        format!("{} and {} more", names[..20].join(", "), names.len() - 20)
    }
}

/// The default number of databases worked on at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// One schema across many databases. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Fleet {
    clusters: Vec<Cluster>,
    selection: Selection,
    concurrency: usize,
    canary: usize,
    canary_names: Vec<String>,
    continue_on_error: bool,
}

impl Fleet {
    /// A fleet on `template`'s client (its database is not used): every database gets the
    /// template's settings (group, lease, policies). Choose the databases with
    /// [`databases`](Self::databases), [`prefix`](Self::prefix), [`filter`](Self::filter) or
    /// [`all`](Self::all).
    pub fn new(template: Migrator) -> Self {
        Fleet {
            clusters: vec![Cluster {
                template,
                label: "0".to_owned(),
            }],
            selection: Selection::All,
            concurrency: DEFAULT_CONCURRENCY,
            canary: 0,
            canary_names: Vec::new(),
            continue_on_error: false,
        }
    }

    /// Adds another cluster (a region), with the same settings as the first, through `client`,
    /// labelled `label` in reports (`label/database`). The same selection applies to it.
    pub fn cluster(mut self, client: Client, label: impl Into<String>) -> Self {
        let template = self.clusters[0]
            .template
            .with_database(client.database("admin"));
        self.clusters.push(Cluster {
            template,
            label: label.into(),
        });
        self
    }

    /// These databases, in this order (on every cluster).
    pub fn databases<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.selection = Selection::Names(names.into_iter().map(Into::into).collect());
        self
    }

    /// Every database whose name starts with `prefix`, in name order.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.selection = Selection::Prefix(prefix.into());
        self
    }

    /// Every database `listDatabases` returns for `filter` (on `name`, `sizeOnDisk`, `empty`),
    /// in name order; `admin`, `local` and `config` never.
    pub fn filter(mut self, filter: Document) -> Self {
        self.selection = Selection::Filter(filter);
        self
    }

    /// Every database but `admin`, `local` and `config`, in name order (the default).
    pub fn all(mut self) -> Self {
        self.selection = Selection::All;
        self
    }

    /// How many databases are worked on at once (default [`DEFAULT_CONCURRENCY`]); at most the
    /// client's connection pool (`maxPoolSize`, 10 by default), never one task per database.
    pub fn concurrency(mut self, databases: usize) -> Self {
        self.concurrency = databases.max(1);
        self
    }

    /// The first `databases` of the fleet are a canary wave, run to the end first: a failure
    /// there stops the rollout whatever the failure policy.
    pub fn canary(mut self, databases: usize) -> Self {
        self.canary = databases;
        self
    }

    /// These databases are the canary wave (instead of the first ones).
    pub fn canary_databases<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.canary_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// After a failed database, go on with the others and report it (default: stop starting
    /// new databases at the first failure; those already running finish).
    pub fn continue_on_error(mut self, on: bool) -> Self {
        self.continue_on_error = on;
        self
    }

    /// The migrator of one database of the first cluster, with the fleet's settings: the
    /// start-up of a tenant created later (`Fleet::database(name).apply_all()`).
    pub fn database(&self, name: &str) -> Migrator {
        let template = &self.clusters[0].template;
        template.in_same_cluster(template.database().client().database(name))
    }

    /// The databases of the fleet, per cluster, in the fleet's order: one `listDatabases` per
    /// cluster for a prefix, a filter or all.
    pub async fn list(&self) -> Result<Vec<(String, Vec<String>)>> {
        let mut all = Vec::with_capacity(self.clusters.len());
        for cluster in &self.clusters {
            let names = match &self.selection {
                Selection::Names(names) => {
                    for name in names {
                        valid_name(name)?;
                    }
                    names.clone()
                }
                Selection::Prefix(prefix) => {
                    let pattern = format!("^{}", regex_escape(prefix));
                    list_databases(&cluster.template, doc! { "name": { "$regex": pattern } })
                        .await?
                }
                Selection::Filter(filter) => {
                    list_databases(&cluster.template, filter.clone()).await?
                }
                Selection::All => list_databases(&cluster.template, Document::new()).await?,
            };
            all.push((cluster.label.clone(), names));
        }
        Ok(all)
    }

    /// `status` over the fleet: reads each database's records.
    pub async fn status(&self) -> Result<FleetReport> {
        self.run(FleetAction::Status, |_| {}).await
    }

    /// `plan` over the fleet: what `up` would apply in each database; writes nothing.
    pub async fn plan(&self) -> Result<FleetReport> {
        self.run(FleetAction::Plan, |_| {}).await
    }

    /// `up` over the fleet: applies what is pending in each database, under its lock.
    pub async fn up(&self) -> Result<FleetReport> {
        self.run(FleetAction::Up, |_| {}).await
    }

    /// `verify` over the fleet.
    pub async fn verify(&self) -> Result<FleetReport> {
        self.run(FleetAction::Verify, |_| {}).await
    }

    /// `drift` over the fleet.
    pub async fn drift(&self) -> Result<FleetReport> {
        self.run(FleetAction::Drift, |_| {}).await
    }

    /// Runs `action` over the fleet, handing each database's result to `each` as it ends (in
    /// the order they end), and returns the whole report. The list of databases is the only
    /// thing held per database; results are not kept beyond the report's names of laggards,
    /// problems and failures.
    pub async fn run(
        &self,
        action: FleetAction,
        each: impl FnMut(&TenantResult),
    ) -> Result<FleetReport> {
        let listed = self.list().await?;
        self.run_listed(action, listed, each).await
    }

    /// [`run`](Self::run) over databases already [`list`](Self::list)ed (to size a progress
    /// bar, or to run the same list twice).
    pub async fn run_listed(
        &self,
        action: FleetAction,
        listed: Vec<(String, Vec<String>)>,
        mut each: impl FnMut(&TenantResult),
    ) -> Result<FleetReport> {
        let started = Instant::now();
        let mut report = FleetReport::default();
        let discovered = !matches!(self.selection, Selection::Names(_));
        let mut canary = Vec::new();
        let mut rest = Vec::new();
        for (index, (label, names)) in listed.into_iter().enumerate() {
            report.databases += names.len();
            for name in names {
                let target = Target {
                    cluster: index,
                    label: label.clone(),
                    name,
                };
                let in_canary = if self.canary_names.is_empty() {
                    canary.len() < self.canary
                } else {
                    self.canary_names.contains(&target.name)
                };
                if in_canary {
                    canary.push(target);
                } else {
                    rest.push(target);
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut handle = |result: TenantResult, report: &mut FleetReport| {
            report.count(&result);
            each(&result);
        };
        if !canary.is_empty() {
            let canary_failed = self
                .wave(
                    action,
                    canary,
                    discovered,
                    &stop,
                    true,
                    &mut report,
                    &mut handle,
                )
                .await;
            if canary_failed {
                report.stopped = Some("a database of the canary wave failed".to_owned());
                for target in rest {
                    handle(skipped(&target, "the canary wave failed"), &mut report);
                }
                report.laggards.sort();
                report.problems.sort();
                report.failures.sort();
                report.elapsed = started.elapsed();
                return Ok(report);
            }
        }
        let failed = self
            .wave(
                action,
                rest,
                discovered,
                &stop,
                false,
                &mut report,
                &mut handle,
            )
            .await;
        report.laggards.sort();
        report.problems.sort();
        report.failures.sort();
        if failed && !self.continue_on_error {
            report.stopped = Some(
                "a database failed (stop at the first failure; `continue_on_error` goes on)"
                    .to_owned(),
            );
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Runs `action` over `targets`, `concurrency` at a time; returns whether one failed. A
    /// failure stops new databases from starting unless the policy goes on (never in the
    /// canary wave, which always runs to its end).
    #[allow(clippy::too_many_arguments)]
    async fn wave(
        &self,
        action: FleetAction,
        targets: Vec<Target>,
        discovered: bool,
        stop: &Arc<AtomicBool>,
        canary: bool,
        report: &mut FleetReport,
        handle: &mut impl FnMut(TenantResult, &mut FleetReport),
    ) -> bool {
        let mut failed = false;
        let limit = self.effective_concurrency();
        let stop_on_failure = !self.continue_on_error && !canary;
        let mut results = futures::stream::iter(targets)
            .map(|target| {
                let stop = stop.clone();
                async move {
                    if stop.load(Ordering::SeqCst) {
                        return skipped(&target, "the rollout stopped at a failure");
                    }
                    let result = self.one(action, &target, discovered).await;
                    if stop_on_failure && matches!(result.outcome, TenantOutcome::Failed { .. }) {
                        stop.store(true, Ordering::SeqCst);
                    }
                    result
                }
            })
            .buffer_unordered(limit);
        while let Some(result) = results.next().await {
            failed |= matches!(result.outcome, TenantOutcome::Failed { .. });
            handle(result, report);
        }
        failed
    }

    /// The concurrency within the client's pool: more tasks than connections would only queue
    /// on the pool (each task also renews its lock on a connection of its own).
    fn effective_concurrency(&self) -> usize {
        self.concurrency.clamp(1, 64)
    }

    async fn one(&self, action: FleetAction, target: &Target, discovered: bool) -> TenantResult {
        let started = Instant::now();
        let cluster = &self.clusters[target.cluster];
        let migrator = cluster
            .template
            .in_same_cluster(cluster.template.database().client().database(&target.name));
        let span = tracing::info_span!("tenant", database = %target.name, cluster = %target.label);
        let outcome =
            tracing::Instrument::instrument(outcome(&migrator, action, discovered), span).await;
        match &outcome {
            TenantOutcome::Failed { error } => {
                tracing::warn!(database = %target.name, %error, "{} failed", action.name())
            }
            other => {
                tracing::info!(database = %target.name, state = other.kind(), "{}", action.name())
            }
        }
        TenantResult {
            cluster: target.label.clone(),
            database: target.name.clone(),
            outcome,
            duration: started.elapsed(),
        }
    }
}

struct Target {
    cluster: usize,
    label: String,
    name: String,
}

fn skipped(target: &Target, reason: &str) -> TenantResult {
    TenantResult {
        cluster: target.label.clone(),
        database: target.name.clone(),
        outcome: TenantOutcome::Skipped {
            reason: reason.to_owned(),
        },
        duration: Duration::ZERO,
    }
}

async fn outcome(migrator: &Migrator, action: FleetAction, discovered: bool) -> TenantOutcome {
    let failed = |e: Error| TenantOutcome::Failed {
        error: e.to_string(),
    };
    let plan = match migrator.plan().await {
        Ok(plan) => plan,
        Err(e) => return failed(e),
    };
    // A database listed by the server that has no records at all may have been dropped since
    // it was listed: applying would create it again. Ask (one `listDatabases` for its name).
    let nothing_recorded = plan
        .entries
        .iter()
        .all(|e| e.record.is_none() && matches!(e.state, EntryState::Pending))
        && plan.unknown.is_empty();
    if discovered && nothing_recorded {
        match exists(migrator).await {
            Ok(false) => {
                return TenantOutcome::Skipped {
                    reason: "the database no longer exists".to_owned(),
                };
            }
            Ok(true) => {}
            Err(e) => return failed(e),
        }
    }
    let pending: Vec<MigrationId> = plan.pending().map(|e| e.id.clone()).collect();
    let findings: Vec<String> = plan.findings().iter().map(|f| f.to_string()).collect();
    match action {
        FleetAction::Status | FleetAction::Verify | FleetAction::Plan => {
            if !findings.is_empty() && action != FleetAction::Plan {
                TenantOutcome::Problems { findings }
            } else if !pending.is_empty() {
                TenantOutcome::Pending { ids: pending }
            } else if !findings.is_empty() {
                TenantOutcome::Problems { findings }
            } else {
                TenantOutcome::UpToDate
            }
        }
        FleetAction::Up => {
            if pending.is_empty() {
                return TenantOutcome::UpToDate;
            }
            match migrator.up(None).await {
                Ok(report) if !report.pending.is_empty() => TenantOutcome::Pending {
                    ids: report.pending,
                },
                Ok(report) if report.applied.is_empty() => TenantOutcome::UpToDate,
                Ok(report) => TenantOutcome::Applied {
                    ids: report.applied.into_iter().map(|a| a.id).collect(),
                },
                Err(e) => failed(e),
            }
        }
        FleetAction::Drift => match migrator.drift().await {
            Ok(report) if report.is_clean() => TenantOutcome::UpToDate,
            Ok(report) => TenantOutcome::Drifted {
                differences: report.findings.iter().map(|f| f.to_string()).collect(),
            },
            Err(e) => failed(e),
        },
    }
}

/// `listDatabases` on `admin` with `nameOnly` and `authorizedDatabases`: a user without the
/// `listDatabases` action gets the databases it has privileges on instead of an error (MongoDB's
/// listDatabases reference: "authorizedDatabases", since 4.0.5; `nameOnly` takes no lock; the
/// `filter` may match `name`, `sizeOnDisk`, `empty` and `shards`). Accepted by a standalone, a
/// replica set and `mongos`.
async fn list_databases(template: &Migrator, filter: Document) -> Result<Vec<String>> {
    let admin = template.database().client().database("admin");
    let mut command = doc! {
        "listDatabases": 1,
        "nameOnly": true,
        "authorizedDatabases": true,
    };
    if !filter.is_empty() {
        command.insert("filter", filter);
    }
    let reply = admin.run_command(command).await.map_err(|e| {
        let unauthorized = matches!(
            e.kind.as_ref(),
            mongodb::error::ErrorKind::Command(c) if c.code == 13
        );
        if unauthorized {
            Error::CommandRefused {
                command: "fleet".to_owned(),
                problem: format!(
                    "this user may not list the databases ({}); grant it the `listDatabases` action, or name the databases (`--databases a,b,c`, `Fleet::databases`)",
                    crate::error::driver::describe(&e)
                ),
            }
        } else {
            Error::database("listing the fleet's databases", None, e)
        }
    })?;
    let mut names: Vec<String> = reply
        .get_array("databases")
        .map(|dbs| {
            dbs.iter()
                .filter_map(Bson::as_document)
                .filter_map(|d| d.get_str("name").ok())
                .filter(|n| !matches!(*n, "admin" | "local" | "config"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    Ok(names)
}

/// Whether the migrator's database still exists (one `listDatabases` for its name).
async fn exists(migrator: &Migrator) -> Result<bool> {
    let name = migrator.database().name().to_owned();
    let names = list_databases(migrator, doc! { "name": &name }).await?;
    Ok(names.contains(&name))
}

/// MongoDB's rules for a database name (its "Naming Restrictions": no `/\. "$` and no NUL, fewer
/// than 64 bytes), checked before anything is sent, so a typo in `--databases` is named.
fn valid_name(name: &str) -> Result<()> {
    let bad = name
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'));
    let problem = if name.is_empty() {
        Some("a database name is empty".to_owned())
    } else if let Some(c) = bad {
        Some(format!(
            "{name:?} holds {c:?}, which MongoDB does not allow in a database name"
        ))
    } else if name.len() >= 64 {
        Some(format!(
            "{name:?} is {} bytes; MongoDB's limit is 63",
            name.len()
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::CommandRefused {
            command: "fleet".to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// `text` as a regular expression that matches it literally.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_matches_itself_only() {
        assert_eq!(regex_escape("tenant_"), "tenant_");
        assert_eq!(regex_escape("a.b+c"), "a\\.b\\+c");
        assert_eq!(regex_escape("x(1)$"), "x\\(1\\)\\$");
    }

    #[test]
    fn database_names_are_checked_as_mongodb_does() {
        assert!(valid_name("tenant_0001").is_ok());
        assert!(valid_name("tenant-ü-ñ").is_ok(), "non-ASCII is allowed");
        for bad in ["", "a.b", "a/b", "a b", "a$b", "a\"b", "a\\b"] {
            let err = valid_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("fleet: "), "{err}");
        }
        assert!(valid_name(&"x".repeat(64)).is_err());
        assert!(valid_name(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn the_report_names_only_what_needs_a_look() {
        let mut report = FleetReport {
            databases: 3,
            ..Default::default()
        };
        let result = |database: &str, outcome| TenantResult {
            cluster: "0".into(),
            database: database.into(),
            outcome,
            duration: Duration::ZERO,
        };
        report.count(&result("a", TenantOutcome::UpToDate));
        report.count(&result(
            "b",
            TenantOutcome::Pending {
                ids: vec![MigrationId::parse("0002").unwrap()],
            },
        ));
        report.count(&result(
            "c",
            TenantOutcome::Failed {
                error: "migration 0002 failed".into(),
            },
        ));
        assert_eq!(report.of("up_to_date"), 1);
        assert_eq!(report.laggards, ["b"]);
        assert_eq!(
            report.failures,
            [("c".to_owned(), "migration 0002 failed".to_owned())]
        );
        assert!(!report.is_success());
        let summary = report.summary();
        assert!(summary.contains("lagging: b"), "{summary}");
        assert!(
            summary.contains("failed in c: migration 0002 failed"),
            "{summary}"
        );
    }
}
