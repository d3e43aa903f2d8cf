//! The `migrate` commands, to embed in the application's own binary: migrations are compiled into
//! the application, so the CLI is a function it calls, for example from `main` when started as
//! `app migrate status`.
//!
//! ```no_run
//! use clap::Parser;
//! use schema_runtime::cli::Command;
//!
//! #[derive(Parser)]
//! enum Cli {
//!     /// Serve (the default work of the application).
//!     Serve,
//!     /// Schema migrations.
//!     #[command(subcommand)]
//!     Migrate(Command),
//! }
//!
//! # async fn run() -> std::process::ExitCode {
//! let settings = schema_runtime::Settings::from_env().unwrap();
//! let migrator = settings.migrator().await.unwrap();
//! match Cli::parse() {
//!     Cli::Serve => std::process::ExitCode::SUCCESS,
//!     Cli::Migrate(command) => command.run_to_exit_code(&migrator).await,
//! }
//! # }
//! ```

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use comfy_table::{Table, presets};
use schema_id::MigrationId;
use serde::Serialize;

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::lock::LockHolder;
use crate::migrator::Migrator;
use crate::plan::{ChecksumStatus, EntryState, Plan};
use crate::store::{MigrationRecord, RecordState, highest_fence};

/// One `migrate` command.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Every migration: id, description, state, applied at, duration, checksum; and applied ids
    /// this binary does not know.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What `up` would run, in order, and why anything is skipped or refused. Sends no write.
    Plan,
    /// Apply pending migrations (with the lock).
    Up {
        /// Stop after this id.
        #[arg(long)]
        to: Option<MigrationId>,
        /// Also apply migrations marked `destructive`.
        #[arg(long)]
        allow_destructive: bool,
    },
    /// Roll back, newest first, every applied migration above an id, with their rollback
    /// functions; stops at the first that has none.
    Down {
        /// The id to go back to (it stays applied).
        #[arg(long)]
        to: MigrationId,
    },
    /// Record every migration up to an id as applied without running it, to adopt a database
    /// built another way (such as by the reference Python system).
    Baseline {
        /// The last id to record.
        #[arg(long)]
        to: MigrationId,
    },
    /// Run one applied migration again (instead of deleting its record by hand).
    Redo {
        /// The migration.
        id: MigrationId,
    },
    /// Release the lock (and repair an unreadable lock document), raising its fence so that
    /// the former holder can record nothing more. Refuses a holder whose lease is still running
    /// unless `--even-if-alive`.
    Unlock {
        /// Required: say that you know what you are doing.
        #[arg(long, required = true)]
        force: bool,
        /// Also release a lock whose holder renewed it recently (a stuck migration): that
        /// holder stops at its next renewal, and the lock opens when its lease would have ended.
        #[arg(long)]
        even_if_alive: bool,
    },
    /// Check for changed, out-of-order, unknown, failed and unfinished migrations; exits
    /// non-zero when anything is wrong (for deploy pipelines).
    Verify,
}

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All is well.
    Success,
    /// The command ran and found problems (`verify`).
    Problems,
}

impl Command {
    /// Runs the command, printing to stdout (errors to stderr), and returns the exit code:
    /// 0 on success, 1 when the command failed or `verify` found problems.
    pub async fn run_to_exit_code(&self, migrator: &Migrator) -> ExitCode {
        let migrator = migrator
            .clone()
            .progress_bars(std::io::stderr().is_terminal());
        let mut stdout = std::io::stdout();
        let code = match self.run(&migrator, &mut stdout).await {
            Ok(Outcome::Success) => ExitCode::SUCCESS,
            Ok(Outcome::Problems) => ExitCode::FAILURE,
            Err(error) => {
                let _ = writeln!(std::io::stderr(), "error: {error}");
                ExitCode::FAILURE
            }
        };
        // Close the connections before the runtime goes away: a pool still working while the
        // process exits can panic in the driver's background tasks.
        migrator.database().client().clone().shutdown().await;
        code
    }

    /// Runs the command, writing what it did to `out`.
    pub async fn run(&self, migrator: &Migrator, out: &mut dyn Write) -> Result<Outcome> {
        match self {
            Command::Status { json } => status(migrator, *json, out).await,
            Command::Plan => plan(migrator, out).await,
            Command::Up {
                to,
                allow_destructive,
            } => {
                let migrator = migrator.clone().allow_destructive(*allow_destructive);
                let report = migrator.up(to.as_ref()).await?;
                for applied in &report.applied {
                    say(
                        out,
                        format!(
                            "applied {} {} ({} ms, attempt {})",
                            applied.id,
                            applied.description,
                            applied.duration.as_millis(),
                            applied.attempt
                        ),
                    )?;
                }
                if report.applied.is_empty() {
                    say(out, "nothing to apply".to_owned())?;
                }
                for id in &report.pending {
                    say(out, format!("left pending (after --to): {id}"))?;
                }
                for warning in &report.warnings {
                    say(out, format!("warning: {warning}"))?;
                }
                Ok(Outcome::Success)
            }
            Command::Down { to } => {
                let rolled_back = migrator.down(to).await?;
                for id in &rolled_back {
                    say(out, format!("rolled back {id}"))?;
                }
                if rolled_back.is_empty() {
                    say(out, format!("nothing is applied above {to}"))?;
                }
                Ok(Outcome::Success)
            }
            Command::Baseline { to } => {
                let adopted = migrator.baseline(to).await?;
                for id in &adopted {
                    say(out, format!("recorded {id} as applied without running it"))?;
                }
                if adopted.is_empty() {
                    say(out, format!("everything up to {to} is already applied"))?;
                }
                Ok(Outcome::Success)
            }
            Command::Redo { id } => {
                let applied = migrator.redo(id).await?;
                say(
                    out,
                    format!(
                        "ran {} {} again ({} ms, attempt {})",
                        applied.id,
                        applied.description,
                        applied.duration.as_millis(),
                        applied.attempt
                    ),
                )?;
                Ok(Outcome::Success)
            }
            Command::Unlock {
                force: _,
                even_if_alive,
            } => {
                let floor = highest_fence(&migrator.store().load().await?);
                let unlocked = migrator.lock().force_release(floor, *even_if_alive).await?;
                if !unlocked.repaired.is_empty() {
                    say(
                        out,
                        format!(
                            "repaired the lock document ({})",
                            unlocked.repaired.join("; ")
                        ),
                    )?;
                }
                let line = match (&unlocked.previous, unlocked.was_alive) {
                    (Some(h), true) => format!(
                        "released the lock held by {} (fence {}{}, last renewed {}); the fence is now {}: that process can record nothing more and stops at its next renewal; the lock opens when its lease would have ended",
                        h.owner,
                        h.fence,
                        host_pid(h),
                        when(h.renewed_at),
                        unlocked.fence
                    ),
                    (Some(h), false) => format!(
                        "released the lock last held by {} (fence {}{}, lease expired); the fence is now {}",
                        h.owner,
                        h.fence,
                        host_pid(h),
                        unlocked.fence
                    ),
                    (None, _) => {
                        format!("the lock was not held; the fence is now {}", unlocked.fence)
                    }
                };
                say(out, line)?;
                Ok(Outcome::Success)
            }
            Command::Verify => {
                let findings = migrator.verify().await?;
                for finding in &findings {
                    say(out, format!("problem: {finding}"))?;
                }
                if findings.is_empty() {
                    say(out, "verify: no problems".to_owned())?;
                    Ok(Outcome::Success)
                } else {
                    say(out, format!("verify: {} problem(s)", findings.len()))?;
                    Ok(Outcome::Problems)
                }
            }
        }
    }
}

fn host_pid(holder: &LockHolder) -> String {
    match (&holder.host, holder.pid) {
        (Some(host), Some(pid)) => format!(", host {host}, pid {pid}"),
        _ => String::new(),
    }
}

fn when(at: Option<mongodb::bson::DateTime>) -> String {
    at.and_then(|at| at.try_to_rfc3339_string().ok())
        .unwrap_or_else(|| "at an unknown time".to_owned())
}

fn say(out: &mut dyn Write, line: String) -> Result<()> {
    writeln!(out, "{line}").map_err(|e| Error::Output {
        problem: e.to_string(),
    })
}

/// One row of `status`.
#[derive(Debug, Clone, Serialize)]
struct Row {
    id: String,
    description: String,
    state: String,
    applied_at: Option<String>,
    duration_ms: Option<i64>,
    checksum: String,
    known: bool,
}

fn date(record: Option<&MigrationRecord>) -> Option<String> {
    record
        .filter(|r| r.state == RecordState::Applied)
        .and_then(|r| r.finished_at)
        .and_then(|d| d.try_to_rfc3339_string().ok())
}

async fn status(migrator: &Migrator, json: bool, out: &mut dyn Write) -> Result<Outcome> {
    let plan = migrator.plan().await?;
    let mut rows: Vec<Row> = plan
        .entries
        .iter()
        .map(|e| Row {
            id: e.id.to_string(),
            description: e.migration.description().to_owned(),
            state: match (&e.state, e.record.as_ref().map(|r| r.state)) {
                (EntryState::Applied(_), _) => "applied".into(),
                (EntryState::Pending, Some(RecordState::Failed)) => "failed".into(),
                (EntryState::Pending, Some(RecordState::Running)) => "running".into(),
                (EntryState::Pending, _) => "pending".into(),
            },
            applied_at: date(e.record.as_ref()),
            duration_ms: e
                .record
                .as_ref()
                .filter(|r| r.state == RecordState::Applied)
                .and_then(|r| r.duration_ms),
            checksum: match &e.state {
                EntryState::Applied(ChecksumStatus::Matches) => "ok".into(),
                EntryState::Applied(ChecksumStatus::Differs { .. }) => "CHANGED".into(),
                EntryState::Applied(ChecksumStatus::NotRecorded) => "not recorded".into(),
                EntryState::Pending => "-".into(),
            },
            known: true,
        })
        .collect();
    rows.extend(plan.unknown.iter().map(|r| Row {
        id: r.key.clone(),
        description: r.description.clone().unwrap_or_default(),
        state: format!("{} (unknown to this binary)", r.state.as_str()),
        applied_at: date(Some(r)),
        duration_ms: r.duration_ms,
        checksum: "-".into(),
        known: false,
    }));
    if json {
        let text = serde_json::to_string_pretty(&rows).expect("rows serialize");
        say(out, text)?;
        return Ok(Outcome::Success);
    }
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN);
    table.set_header([
        "id",
        "description",
        "state",
        "applied at",
        "duration",
        "checksum",
    ]);
    for row in &rows {
        table.add_row([
            row.id.clone(),
            row.description.clone(),
            row.state.clone(),
            row.applied_at.clone().unwrap_or_else(|| "-".into()),
            row.duration_ms
                .map(|d| format!("{d} ms"))
                .unwrap_or_else(|| "-".into()),
            row.checksum.clone(),
        ]);
    }
    say(out, table.to_string())?;
    let pending = plan.pending().count();
    say(
        out,
        format!(
            "{} applied, {pending} pending, {} unknown to this binary",
            plan.entries.len() - pending,
            plan.unknown.len()
        ),
    )?;
    Ok(Outcome::Success)
}

async fn plan(migrator: &Migrator, out: &mut dyn Write) -> Result<Outcome> {
    let plan: Plan = migrator.plan().await?;
    if !plan.has_pending() {
        say(out, "nothing to apply".to_owned())?;
        return Ok(Outcome::Success);
    }
    let transactions = if plan.pending().any(|e| e.migration.transaction()) {
        Some(
            Deployment::detect(migrator.database())
                .await?
                .supports_transactions(),
        )
    } else {
        None
    };
    say(out, "up would apply, in order:".to_owned())?;
    for entry in plan.pending() {
        let mut notes = Vec::new();
        if let Some(record) = &entry.record {
            notes.push(format!("retry, attempt {}", record.attempts + 1));
        }
        if entry.migration.transaction() {
            notes.push("in a transaction".into());
        }
        if entry.migration.destructive() {
            notes.push("destructive".into());
        }
        let refusal =
            if let Some(highest) = plan.highest_applied.as_ref().filter(|h| &entry.id < *h) {
                Some(format!(
                    "refused: out of order, {highest} is already applied (allow_out_of_order)"
                ))
            } else if entry.migration.transaction() && transactions == Some(false) {
                Some("refused: needs a transaction and the server is standalone".to_owned())
            } else if entry.migration.destructive() {
                Some(
                    "refused unless --allow-destructive (or AUTO_SCHEMA_DESTRUCTIVE at start-up)"
                        .to_owned(),
                )
            } else {
                None
            };
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        say(
            out,
            format!("  {} {}{notes}", entry.id, entry.migration.description()),
        )?;
        if let Some(refusal) = refusal {
            say(out, format!("      {refusal}"))?;
        }
    }
    for record in &plan.unknown {
        say(
            out,
            format!(
                "skipped: {} is applied but unknown to this binary",
                record.key
            ),
        )?;
    }
    Ok(Outcome::Success)
}
