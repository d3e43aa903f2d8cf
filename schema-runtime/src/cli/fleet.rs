//! `migrate fleet (status|plan|up|verify|drift) (--databases a,b | --prefix P | --all)`: one
//! operation over many databases, with the fleet's concurrency, canary and failure policy.

use std::time::Duration;

use comfy_table::{Table, presets};

use super::{Outcome, Printer, json};
use crate::error::{Error, Result};
use crate::fleet::{Fleet, FleetAction, FleetReport, TenantOutcome, TenantResult};
use crate::migrator::Migrator;

/// The arguments of `migrate fleet`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["databases", "prefix", "all"])))]
pub struct FleetArgs {
    /// What to do in each database.
    #[arg(value_enum)]
    pub action: FleetVerb,
    /// These databases, comma-separated, in this order.
    #[arg(long, value_delimiter = ',')]
    pub databases: Vec<String>,
    /// Every database whose name starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Every database but admin, local and config.
    #[arg(long)]
    pub all: bool,
    /// How many databases at once.
    #[arg(long, default_value_t = crate::fleet::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// The first K databases are a canary wave, run first; a failure there stops the rollout.
    #[arg(long, default_value_t = 0)]
    pub canary: usize,
    /// Go on after a failed database (default: stop starting new ones).
    #[arg(long)]
    pub continue_on_error: bool,
    /// Another cluster (a region), by connection string; the same selection applies there.
    #[arg(long = "uri", value_name = "URI")]
    pub uris: Vec<String>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `status`, `plan`, `up`, `verify` or `drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetVerb {
    /// Each database's state; exits 3 when one lags, 4 on problems.
    Status,
    /// What `up` would apply in each database.
    Plan,
    /// Apply what is pending in each database.
    Up,
    /// The gate over the fleet.
    Verify,
    /// Each database against its declared schema.
    Drift,
}

impl FleetVerb {
    fn action(self) -> FleetAction {
        match self {
            FleetVerb::Status => FleetAction::Status,
            FleetVerb::Plan => FleetAction::Plan,
            FleetVerb::Up => FleetAction::Up,
            FleetVerb::Verify => FleetAction::Verify,
            FleetVerb::Drift => FleetAction::Drift,
        }
    }
}

pub(super) async fn run(
    migrator: &Migrator,
    args: &FleetArgs,
    text: &mut Printer<'_>,
    doc: &mut json::Output,
) -> Result<Outcome> {
    let mut fleet = Fleet::new(migrator.clone())
        .concurrency(args.concurrency)
        .canary(args.canary)
        .continue_on_error(args.continue_on_error);
    fleet = match (&args.databases[..], &args.prefix) {
        ([], Some(prefix)) => fleet.prefix(prefix.clone()),
        ([], None) => fleet.all(),
        (names, _) => fleet.databases(names.to_vec()),
    };
    for (i, uri) in args.uris.iter().enumerate() {
        let client = mongodb::Client::with_uri_str(uri)
            .await
            .map_err(|e| Error::Config {
                setting: "--uri".to_owned(),
                problem: crate::redact::uri_problem(uri, &e.to_string()),
            })?;
        fleet = fleet.cluster(client, format!("{}", i + 1));
    }
    let action = args.verb_action();
    let listed = fleet.list().await?;
    let total = listed.iter().map(|(_, names)| names.len() as u64).sum();
    let bar = crate::progress::Progress::new(
        migrator.shows_progress(),
        total,
        &format!("fleet {}", action.name()),
        0,
    );
    let mut results = Vec::new();
    let report = fleet
        .run_listed(action, listed, |result| {
            bar.inc();
            results.push(result.clone());
        })
        .await?;
    bar.finish();
    results.sort_by(|a, b| (&a.cluster, &a.database).cmp(&(&b.cluster, &b.database)));
    print(&report, &results, text)?;
    doc.fleet = Some(json::FleetView::of(&report, &results));
    Ok(outcome(action, &report))
}

impl FleetArgs {
    fn verb_action(&self) -> FleetAction {
        self.action.action()
    }
}

/// The exit code's meaning for a fleet: a failure or a stopped rollout is a failed command
/// for `up` (1) and a problem for the others (4); lagging databases are "pending" (3).
fn outcome(action: FleetAction, report: &FleetReport) -> Outcome {
    if !report.failures.is_empty() || report.stopped.is_some() || !report.problems.is_empty() {
        Outcome::Problems
    } else if !report.laggards.is_empty() && action != FleetAction::Up {
        Outcome::Pending
    } else if !report.laggards.is_empty() {
        Outcome::Problems
    } else {
        Outcome::Success
    }
}

fn print(report: &FleetReport, results: &[TenantResult], text: &mut Printer<'_>) -> Result<()> {
    for result in results {
        let label = if result.cluster == "0" {
            result.database.clone()
        } else {
            format!("{}/{}", result.cluster, result.database)
        };
        let detail = match &result.outcome {
            TenantOutcome::UpToDate => String::new(),
            TenantOutcome::Applied { ids } | TenantOutcome::Pending { ids } => ids
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            TenantOutcome::Problems { findings: items }
            | TenantOutcome::Drifted { differences: items } => items.join("; "),
            TenantOutcome::Failed { error } => error.clone(),
            TenantOutcome::Skipped { reason } => reason.clone(),
        };
        text.line(format!(
            "{label}: {}{}{}",
            result.outcome.kind().replace('_', " "),
            if detail.is_empty() { "" } else { " " },
            detail
        ))?;
    }
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN);
    table.set_header(["state", "databases"]);
    for (kind, n) in &report.counts {
        table.add_row([kind.replace('_', " "), n.to_string()]);
    }
    text.line(table.to_string())?;
    text.line(report.summary())?;
    Ok(())
}

/// How long a database took, for the JSON.
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
