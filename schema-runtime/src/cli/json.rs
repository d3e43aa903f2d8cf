//! The `--json` document (its contract is in the documentation of [`crate::cli`]).

use mongodb::bson::Bson;
use serde::Serialize;

use crate::drift::{Drift, RecordedDeclarations, RepairAction};

use crate::lock::Unlocked;
use crate::migrator::AppliedMigration;
use crate::plan::{ChecksumStatus, EntryState, Finding, PlanEntry};
use crate::store::{MigrationRecord, RecordState};

/// The document.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Output {
    pub command: &'static str,
    pub result: &'static str,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<Vec<MigrationView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<Problem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<Applied>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forgotten: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Vec<Accepted>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Created>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<Lock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Vec<DriftItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repairs: Option<Vec<Repair>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declarations: Option<Vec<Declarations>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_declarations: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collections_checked: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<ModelsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One migration, registered or only recorded.
#[derive(Debug, Serialize)]
pub(crate) struct MigrationView {
    pub id: String,
    pub description: String,
    pub state: &'static str,
    pub known: bool,
    pub applied_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub checksum: Option<&'static str>,
    pub recorded_checksum: Option<String>,
    pub checksum_status: Option<&'static str>,
    pub function: Option<String>,
    pub transaction: bool,
    pub destructive: bool,
    pub background: bool,
    pub refused: Option<String>,
}

/// Something wrong.
#[derive(Debug, Serialize)]
pub(crate) struct Problem {
    pub kind: &'static str,
    pub id: String,
    pub message: String,
}

/// A migration a command ran.
#[derive(Debug, Serialize)]
pub(crate) struct Applied {
    pub id: String,
    pub description: &'static str,
    pub duration_ms: u128,
    pub attempt: i64,
}

/// The file `new` wrote.
#[derive(Debug, Serialize)]
pub(crate) struct Created {
    pub id: String,
    pub file: String,
    pub mod_line: String,
    pub mod_file: Option<String>,
}

/// A checksum `accept` recorded.
#[derive(Debug, Serialize)]
pub(crate) struct Accepted {
    pub id: String,
    pub previous_checksum: Option<String>,
    pub checksum: String,
}

/// What `unlock` did.
#[derive(Debug, Serialize)]
pub(crate) struct Lock {
    pub released_owner: Option<String>,
    pub released_fence: Option<i64>,
    pub was_alive: bool,
    pub repaired: Vec<String>,
    pub fence: i64,
}

/// One difference `drift` found.
#[derive(Debug, Serialize)]
pub(crate) struct DriftItem {
    pub kind: &'static str,
    pub collection: String,
    pub index: Option<String>,
    pub declared_by: Option<String>,
    pub declared: Option<serde_json::Value>,
    pub live: Option<serde_json::Value>,
    pub message: String,
}

impl DriftItem {
    pub(crate) fn of(finding: &Drift) -> Self {
        DriftItem {
            kind: finding.kind(),
            collection: finding.collection().to_owned(),
            index: finding.index().map(str::to_owned),
            declared_by: finding.declared_by().map(str::to_owned),
            declared: finding.declared().map(|b| json_of(&b)),
            live: finding.live().map(|b| json_of(&b)),
            message: finding.to_string(),
        }
    }
}

/// A BSON value as JSON through serde (the same on bson 2 and 3: numbers as numbers, special
/// types in their extended JSON form).
fn json_of(value: &Bson) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// What `drift --repair` did with one difference.
#[derive(Debug, Serialize)]
pub(crate) struct Repair {
    pub kind: &'static str,
    pub collection: String,
    pub index: Option<String>,
    pub repaired: bool,
    pub note: String,
}

impl Repair {
    pub(crate) fn of(action: &RepairAction) -> Self {
        Repair {
            kind: action.finding.kind(),
            collection: action.finding.collection().to_owned(),
            index: action.finding.index().map(str::to_owned),
            repaired: action.repaired,
            note: action.note.clone(),
        }
    }
}

/// What `drift --record-declarations` did with one record.
#[derive(Debug, Serialize)]
pub(crate) struct Declarations {
    pub key: String,
    pub declarations: usize,
    pub recorded: bool,
    pub note: Option<String>,
}

impl Declarations {
    pub(crate) fn of(entry: &RecordedDeclarations) -> Self {
        Declarations {
            key: entry.key.clone(),
            declarations: entry.declarations,
            recorded: entry.recorded,
            note: entry.note.clone(),
        }
    }
}

/// The state word of a record (or of no record).
pub(crate) fn state(entry: &PlanEntry) -> &'static str {
    match (&entry.state, entry.record.as_ref().map(|r| r.state)) {
        (EntryState::Applied(_), _) => "applied",
        (EntryState::Pending, Some(RecordState::Failed)) => "failed",
        (EntryState::Pending, Some(RecordState::Running)) => "running",
        (EntryState::Pending, _) => "pending",
    }
}

/// When an applied record finished, as RFC 3339.
pub(crate) fn applied_at(record: Option<&MigrationRecord>) -> Option<String> {
    record
        .filter(|r| r.state == RecordState::Applied)
        .and_then(|r| r.finished_at)
        .and_then(|d| d.try_to_rfc3339_string().ok())
}

impl MigrationView {
    pub(crate) fn of_entry(entry: &PlanEntry, refused: Option<String>) -> Self {
        let record = entry.record.as_ref();
        MigrationView {
            id: entry.id.to_string(),
            description: entry.migration.description().to_owned(),
            state: state(entry),
            known: true,
            applied_at: applied_at(record),
            duration_ms: record
                .filter(|r| r.state == RecordState::Applied)
                .and_then(|r| r.duration_ms),
            attempts: record.map_or(0, |r| r.attempts),
            last_error: record.and_then(|r| r.last_error.clone()),
            checksum: Some(entry.migration.checksum()),
            recorded_checksum: record.and_then(|r| r.checksum.clone()),
            checksum_status: match &entry.state {
                EntryState::Applied(ChecksumStatus::Matches) => Some("ok"),
                EntryState::Applied(ChecksumStatus::Differs { .. }) => Some("changed"),
                EntryState::Applied(ChecksumStatus::NotRecorded) => Some("not_recorded"),
                EntryState::Pending => None,
            },
            function: Some(entry.migration.function()),
            transaction: entry.migration.transaction(),
            destructive: entry.migration.destructive(),
            background: entry.migration.background(),
            refused,
        }
    }

    pub(crate) fn of_unknown(record: &MigrationRecord) -> Self {
        MigrationView {
            id: record.key.clone(),
            description: record.description.clone().unwrap_or_default(),
            state: record.state.as_str(),
            known: false,
            applied_at: applied_at(Some(record)),
            duration_ms: record.duration_ms,
            attempts: record.attempts,
            last_error: record.last_error.clone(),
            checksum: None,
            recorded_checksum: record.checksum.clone(),
            checksum_status: None,
            function: record.function.clone(),
            transaction: false,
            destructive: false,
            background: false,
            refused: None,
        }
    }
}

impl Problem {
    pub(crate) fn of(finding: &Finding) -> Self {
        Problem {
            kind: finding.kind(),
            id: finding.key(),
            message: finding.to_string(),
        }
    }
}

impl Applied {
    pub(crate) fn of(applied: &AppliedMigration) -> Self {
        Applied {
            id: applied.id.to_string(),
            description: applied.description,
            duration_ms: applied.duration.as_millis(),
            attempt: applied.attempt,
        }
    }
}

impl Lock {
    pub(crate) fn of(unlocked: &Unlocked) -> Self {
        Lock {
            released_owner: unlocked.previous.as_ref().map(|h| h.owner.clone()),
            released_fence: unlocked.previous.as_ref().map(|h| h.fence),
            was_alive: unlocked.was_alive,
            repaired: unlocked.repaired.clone(),
            fence: unlocked.fence,
        }
    }
}

/// `fleet`: the counts, the names that need a look, and one entry per database.
#[derive(Debug, Serialize)]
pub(crate) struct FleetView {
    pub databases: usize,
    pub counts: std::collections::BTreeMap<&'static str, usize>,
    pub laggards: Vec<String>,
    pub failures: Vec<FleetFailure>,
    pub stopped: Option<String>,
    pub elapsed_ms: u64,
    pub results: Vec<TenantView>,
}

/// A failed database and its error.
#[derive(Debug, Serialize)]
pub(crate) struct FleetFailure {
    pub database: String,
    pub error: String,
}

/// One database of a fleet.
#[derive(Debug, Serialize)]
pub(crate) struct TenantView {
    pub cluster: String,
    pub database: String,
    pub state: &'static str,
    pub ids: Vec<String>,
    pub details: Vec<String>,
    pub duration_ms: u64,
}

impl FleetView {
    pub(crate) fn of(
        report: &crate::fleet::FleetReport,
        results: &[crate::fleet::TenantResult],
    ) -> Self {
        use crate::fleet::TenantOutcome;
        FleetView {
            databases: report.databases,
            counts: report.counts.clone(),
            laggards: report.laggards.clone(),
            failures: report
                .failures
                .iter()
                .map(|(database, error)| FleetFailure {
                    database: database.clone(),
                    error: error.clone(),
                })
                .collect(),
            stopped: report.stopped.clone(),
            elapsed_ms: super::fleet::millis(report.elapsed),
            results: results
                .iter()
                .map(|r| {
                    let (ids, details) = match &r.outcome {
                        TenantOutcome::Applied { ids } | TenantOutcome::Pending { ids } => {
                            (ids.iter().map(|i| i.to_string()).collect(), Vec::new())
                        }
                        TenantOutcome::Problems { findings: d }
                        | TenantOutcome::Drifted { differences: d } => (Vec::new(), d.clone()),
                        TenantOutcome::Failed { error: d }
                        | TenantOutcome::Skipped { reason: d } => (Vec::new(), vec![d.clone()]),
                        _ => (Vec::new(), Vec::new()),
                    };
                    TenantView {
                        cluster: r.cluster.clone(),
                        database: r.database.clone(),
                        state: r.outcome.kind(),
                        ids,
                        details,
                        duration_ms: super::fleet::millis(r.duration),
                    }
                })
                .collect(),
        }
    }
}

/// `diff` (and `verify --models`): what was compared and each difference.
#[derive(Debug, Serialize)]
pub(crate) struct ModelsView {
    pub against: &'static str,
    pub models: usize,
    pub differences: Vec<ModelDifference>,
    pub unmodelled_collections: Vec<String>,
}

/// One difference between a model and its target.
#[derive(Debug, Serialize)]
pub(crate) struct ModelDifference {
    pub kind: &'static str,
    pub collection: String,
    pub index: Option<String>,
    pub model: String,
    pub modelled: Option<serde_json::Value>,
    pub target: Option<serde_json::Value>,
    pub message: String,
}

impl ModelsView {
    pub(crate) fn of(diff: &crate::ModelDiff) -> Self {
        ModelsView {
            against: diff.against,
            models: diff.models,
            differences: diff
                .findings
                .iter()
                .map(|f| ModelDifference {
                    kind: f.kind,
                    collection: f.collection.clone(),
                    index: f.index.clone(),
                    model: f.model.clone(),
                    modelled: f.modelled.as_ref().map(json_of),
                    target: f.target.as_ref().map(json_of),
                    message: f.to_string(),
                })
                .collect(),
            unmodelled_collections: diff.unmodelled_collections.clone(),
        }
    }
}
