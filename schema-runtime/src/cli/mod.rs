//! The `migrate` commands, to embed in the application's own binary: migrations are compiled into
//! the application, so the CLI is a function it calls, for example from `main` when started as
//! `app migrate status`.
//!
//! Without clap in the application, [`run_from_args`] parses the words itself:
//!
//! ```no_run
//! # async fn main_() -> std::process::ExitCode {
//! # let migrator: schema_runtime::Migrator = todo!();
//! // `app migrate verify --json`
//! if std::env::args().nth(1).as_deref() == Some("migrate") {
//!     return schema_runtime::cli::run_from_args(&migrator, std::env::args().skip(1)).await;
//! }
//! # std::process::ExitCode::SUCCESS
//! # }
//! ```
//!
//! An application with its own clap command line nests [`Command`] as a subcommand (the
//! re-exported [`clap`] is the version it was built with):
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
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; for `status`, `plan` and `verify`: everything applied, nothing wrong |
//! | 1 | the command failed (the error is on stderr, and in the JSON with `--json`) |
//! | 2 | the arguments were wrong (clap's usage error) |
//! | 3 | `status`, `plan`, `verify`: nothing wrong, but migrations are pending (listed) |
//! | 4 | `status`, `plan`, `verify`: problems: a changed, collided, failed, unfinished, unknown or out-of-order migration (listed); `drift`: the database differs from the declared schema (after `--repair`: what is left) |
//!
//! `verify` is the gate for a pipeline: it prints each problem and each pending migration.
//! Every command takes `--json` and then prints one document on stdout, described in
//! [JSON](self#json) below; a closed pipe (`status --json | head`) ends the output quietly.
//!
//! # JSON
//!
//! With `--json`, every command prints one document. Fields a command has nothing to say about
//! are left out; the names and values below are the contract for pipelines:
//!
//! ```json
//! {
//!   "command": "plan",
//!   "result": "pending",
//!   "exit_code": 3,
//!   "migrations": [
//!     { "id": "0004", "description": "Drop legacy gadgets", "state": "pending", "known": true,
//!       "applied_at": null, "duration_ms": null, "attempts": 0, "last_error": null,
//!       "checksum": "9f2c…", "recorded_checksum": null, "checksum_status": null,
//!       "function": "app::migrations::drop_gadgets", "transaction": false, "destructive": true,
//!       "background": false,
//!       "refused": "refused unless --allow-destructive (or AUTO_SCHEMA_DESTRUCTIVE at start-up)" }
//!   ],
//!   "problems": []
//! }
//! ```
//!
//! - `result`: `up_to_date` (0), `pending` (3), `problems` (4) for `status`, `plan` and `verify`;
//!   `clean` (0) and `drift` (4) for `drift`;
//!   `done` (0) for the commands that act; `error` (1) when the command failed, with `error`.
//! - `migrations`: `status` lists every migration (and records this binary does not know, with
//!   `known: false`); `plan` and `verify` list the pending ones, in the order `up` runs them.
//!   `state` is `applied`, `pending`, `failed` or `running`; `checksum_status` is `ok`,
//!   `changed`, `not_recorded` or null (not applied); `refused` says why `up` would not run it.
//! - `problems`: `{ "kind", "id", "message" }` with kind `collided`, `changed`, `out_of_order`,
//!   `unknown`, `failed` or `running`.
//! - `applied` (`up`, `redo`): `{ "id", "description", "duration_ms", "attempt" }`; `pending`
//!   (`up --to`): ids left pending; `rolled_back` (`down`), `recorded` (`baseline`) and
//!   `forgotten` (`forget`): ids; `created` (`new`): `{ "id", "file", "mod_line", "mod_file" }`;
//!   `accepted` (`accept`): `{ "id", "previous_checksum",
//!   "checksum" }`;
//!   `drift` (`drift`): `{ "kind", "collection", "index", "declared_by", "declared", "live",
//!   "message" }` with kind `missing_collection`, `missing_index`, `different_index`,
//!   `undeclared_index`, `different_validator`, `undeclared_validator` or `different_option`,
//!   and `collections_checked`, `without_declarations` (records that carry none);
//!   `repairs` (`drift --repair`): `{ "kind", "collection", "index", "repaired", "note" }`;
//!   `declarations` (`drift --record-declarations`): `{ "key", "declarations", "recorded",
//!   "note" }`;
//!   `lock` (`unlock`): `{ "released_owner", "released_fence", "was_alive", "repaired",
//!   "fence" }`; `warnings`: texts.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use comfy_table::{Table, presets};
use schema_id::MigrationId;

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::lock::LockHolder;
use crate::migrator::Migrator;
use crate::plan::{Finding, Plan, PlanEntry};

mod drift;
mod fleet;
mod json;
mod models;
mod new;

pub use fleet::{FleetArgs, FleetVerb};

pub use clap;

/// `migrate <command>` on its own, for [`run_from_args`].
#[derive(Debug, clap::Parser)]
#[command(
    name = "migrate",
    about = "Schema migrations: status, plan, up, down, baseline, redo, forget, accept, new, unlock, verify, drift, fleet"
)]
pub struct Migrate {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Parses `args` (the program's name first, as in `std::env::args()`, then the command, such as
/// `["migrate", "verify", "--json"]`) and runs the command: the exit code is that of
/// [`Command::run_to_exit_code`], or 2 with clap's message for wrong arguments (0 for `--help`).
pub async fn run_from_args<I, T>(migrator: &Migrator, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match <Migrate as clap::Parser>::try_parse_from(args) {
        Ok(parsed) => parsed.command.run_to_exit_code(migrator).await,
        Err(error) => {
            let _ = error.print();
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
        }
    }
}

/// One `migrate` command.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Every migration: id, description, state, applied at, duration, checksum; and applied ids
    /// this binary does not know. Exits 3 when migrations are pending, 4 on problems.
    Status {
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What `up` would run, in order, and why anything is skipped or refused. Sends no write.
    /// Exits 3 when migrations are pending, 4 on problems.
    Plan {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Apply pending migrations (with the lock).
    Up {
        /// Stop after this id.
        #[arg(long)]
        to: Option<MigrationId>,
        /// Also apply migrations marked `destructive`.
        #[arg(long)]
        allow_destructive: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Roll back, newest first, every applied migration above an id, with their rollback
    /// functions; stops at the first that has none.
    Down {
        /// The id to go back to (it stays applied).
        #[arg(long)]
        to: MigrationId,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Record every migration up to an id as applied without running it, to adopt a database
    /// built another way (such as by the reference Python system).
    Baseline {
        /// The last id to record.
        #[arg(long)]
        to: MigrationId,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Run one applied migration again (instead of deleting its record by hand).
    Redo {
        /// The migration.
        id: MigrationId,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Remove the record of a migration this binary no longer has (its file was deleted), so
    /// that `verify` stops reporting it; the record is kept in `<versions>_audit`.
    Forget {
        /// The record's id.
        id: MigrationId,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Record this binary's checksum for an applied migration whose body changed harmlessly,
    /// noting who and when; it does not run again.
    Accept {
        /// The migration.
        #[arg(required_unless_present = "all")]
        id: Option<MigrationId>,
        /// Every applied migration whose checksum changed (after reformatting the migrations).
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Start a new migration: writes its file with the next id and a skeleton that compiles,
    /// in the directory of the group's newest migration (or `--dir`), and adds its `mod` line
    /// to that directory's `mod.rs` (or `<dir>.rs`), or prints the line to add. Sends nothing
    /// to the server.
    New {
        /// What the migration does, such as "Add ticket tags".
        description: String,
        /// The directory for the file (default: where the newest migration of the group is,
        /// relative to the current directory, as the compiler named it).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Use the current UTC time as the id (`YYYYMMDDHHMMSS`) instead of the next number:
        /// branches that add migrations at the same time then do not pick the same id.
        #[arg(long)]
        timestamp: bool,
        /// Write the migration that makes the declared schema equal the models
        /// (`#[derive(Collection)]`): `ensure_validator`, `ensure_indexes` and, for indexes no
        /// longer modelled or modelled differently, `drop_index` in a `destructive` migration.
        /// Reads the records, so it needs the server.
        #[arg(long)]
        from_models: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
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
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// The gate for deploy pipelines: lists changed, collided, out-of-order, unknown, failed and
    /// unfinished migrations (exit 4) and pending ones (exit 3); exits 0 when up to date.
    Verify {
        /// Also compare the database with the declared schema (as `drift` does): drift is a
        /// problem (exit 4), so one gate covers pending, edited and drifted.
        #[arg(long)]
        drift: bool,
        /// Also compare the models with the declared schema (as `diff` does): a difference is
        /// a problem (exit 4), so CI fails when models and migrations disagree.
        #[arg(long)]
        models: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Compare the models (`#[derive(Collection)]`) with the schema the applied migrations
    /// declared (or, with `--live`, the database): indexes and validators. Exits 0 when they
    /// agree, 4 on differences.
    Diff {
        /// Compare with the database instead of the declared schema.
        #[arg(long)]
        live: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// One operation over many databases (a database per tenant): `status`, `plan`, `up`,
    /// `verify` or `drift`, with bounded concurrency, a canary wave and a failure policy.
    Fleet(FleetArgs),
    /// Compare the database with the schema the applied migrations declared: missing,
    /// different and undeclared indexes, validators, collections and options. Exits 0 when it
    /// matches, 4 on drift.
    Drift {
        /// Make the database what the migrations declared: create what is missing, restore
        /// validators and options (under the lock; noted in `<versions>_audit`); then check
        /// again and exit by what is left.
        #[arg(long)]
        repair: bool,
        /// With `--repair`, also drop undeclared indexes and validators and re-build indexes
        /// whose definition cannot change in place (also `AUTO_SCHEMA_DESTRUCTIVE=true`).
        #[arg(long, requires = "repair")]
        allow_destructive: bool,
        /// First give the applied records that have no declarations (a database adopted with
        /// `baseline` or from the reference system) those of their migrations, found by
        /// running the applied migrations on an empty scratch database (dropped afterwards);
        /// the migrations' effects are not run again on this database.
        #[arg(long, conflicts_with = "repair")]
        record_declarations: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// How a command ended when it did not fail. Its [`exit_code`](Outcome::exit_code) is what
/// [`Command::run_to_exit_code`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for `status`, `plan` and `verify`: everything applied and nothing wrong. Exit 0.
    Success,
    /// `status`, `plan`, `verify`: nothing wrong, but migrations are pending. Exit 3.
    Pending,
    /// `status`, `plan`, `verify`: problems found. Exit 4.
    Problems,
}

/// The exit code of a command that failed.
pub const EXIT_FAILED: u8 = 1;

impl Outcome {
    /// The process exit code: 0, 3 or 4 (1 is a failed command, 2 a usage error).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Pending => 3,
            Outcome::Problems => 4,
        }
    }

    fn of(plan: &Plan, findings: &[Finding]) -> Self {
        if !findings.is_empty() {
            Outcome::Problems
        } else if plan.has_pending() {
            Outcome::Pending
        } else {
            Outcome::Success
        }
    }
}

impl Command {
    /// Runs the command, printing to stdout (errors to stderr), and returns the exit code (see
    /// the [module documentation](self)). A closed stdout ends the output quietly.
    pub async fn run_to_exit_code(&self, migrator: &Migrator) -> ExitCode {
        let migrator = migrator
            .clone()
            .progress_bars(std::io::stderr().is_terminal());
        let mut stdout = EndsQuietly {
            inner: std::io::stdout(),
            closed: false,
        };
        let code = match self.run(&migrator, &mut stdout).await {
            Ok(outcome) => outcome.exit_code(),
            Err(error) => {
                let _ = writeln!(std::io::stderr(), "error: {error}");
                EXIT_FAILED
            }
        };
        // Close the connections before the runtime goes away: a pool still working while the
        // process exits can panic in the driver's background tasks.
        migrator.database().client().clone().shutdown().await;
        ExitCode::from(code)
    }

    /// Whether the command talks to the server: every one but `new` (which writes a file),
    /// unless `new --from-models` (which reads the records).
    pub fn needs_server(&self) -> bool {
        !matches!(
            self,
            Command::New {
                from_models: false,
                ..
            }
        )
    }

    /// Runs the command with the migrator [`Migrator::from_env`] makes; `new`, which sends
    /// nothing to the server, runs without `MONGODB_URI` (on the `default` group). The line
    /// for an application whose start-up also uses `from_env`:
    ///
    /// ```no_run
    /// # async fn run(command: schema_runtime::cli::Command) -> std::process::ExitCode {
    /// command.run_from_env().await
    /// # }
    /// ```
    pub async fn run_from_env(&self) -> ExitCode {
        self.run_to_exit_code_with(Migrator::from_env).await
    }

    /// Runs the command with the migrator `connect` makes, as
    /// [`run_to_exit_code`](Self::run_to_exit_code) does. A command that does not need the
    /// server (`new`) still asks `connect` (for the group), and runs without it when it fails
    /// (no `MONGODB_URI` on a developer's machine), on the `default` group.
    pub async fn run_to_exit_code_with<F, Fut>(&self, connect: F) -> ExitCode
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Migrator>>,
    {
        match connect().await {
            Ok(migrator) => self.run_to_exit_code(&migrator).await,
            Err(error) if self.needs_server() => {
                let _ = writeln!(std::io::stderr(), "error: {error}");
                ExitCode::from(EXIT_FAILED)
            }
            Err(_) => self.run_offline(),
        }
    }

    /// `new` without a migrator: the `default` group of this binary's registry.
    fn run_offline(&self) -> ExitCode {
        let mut doc = json::Output {
            command: self.name(),
            ..Default::default()
        };
        let mut stdout = EndsQuietly {
            inner: std::io::stdout(),
            closed: false,
        };
        let result = match self {
            Command::New {
                description,
                dir,
                timestamp,
                ..
            } => {
                let registry = crate::Registry::group("default").ok();
                let mut text = Printer {
                    out: &mut stdout,
                    quiet: self.json(),
                };
                create(
                    registry.as_ref(),
                    "default",
                    description,
                    dir.as_deref(),
                    *timestamp,
                    None,
                    &mut text,
                    &mut doc,
                )
            }
            _ => unreachable!("only `new` runs without the server"),
        };
        let code = match &result {
            Ok(outcome) => outcome.exit_code(),
            Err(_) => EXIT_FAILED,
        };
        if self.json() {
            doc.exit_code = code;
            match &result {
                Ok(_) => doc.result = "done",
                Err(error) => {
                    doc.result = "error";
                    doc.error = Some(error.to_string());
                }
            }
            let document = serde_json::to_string_pretty(&doc).expect("the output serializes");
            let _ = say(&mut stdout, document);
        }
        if let Err(error) = &result {
            let _ = writeln!(std::io::stderr(), "error: {error}");
        }
        ExitCode::from(code)
    }

    /// Runs the command, writing what it did to `out` (one JSON document with `--json`, also
    /// when the command fails).
    pub async fn run(&self, migrator: &Migrator, out: &mut dyn Write) -> Result<Outcome> {
        let mut doc = json::Output {
            command: self.name(),
            ..Default::default()
        };
        let mut text = Printer {
            out: &mut *out,
            quiet: self.json(),
        };
        let result = self.execute(migrator, &mut text, &mut doc).await;
        if self.json() {
            match &result {
                Ok(outcome) => {
                    doc.exit_code = outcome.exit_code();
                    doc.result = match (outcome, self.reports_state()) {
                        (Outcome::Success, true) if self.name() == "drift" => "clean",
                        (Outcome::Problems, true) if self.name() == "drift" => "drift",
                        (Outcome::Success, true) if self.name() == "diff" => "clean",
                        (Outcome::Problems, true) if self.name() == "diff" => "differences",
                        (Outcome::Success, true) => "up_to_date",
                        (Outcome::Success, false) => "done",
                        (Outcome::Pending, _) => "pending",
                        (Outcome::Problems, _) => "problems",
                    };
                }
                Err(error) => {
                    doc = json::Output {
                        command: self.name(),
                        result: "error",
                        exit_code: EXIT_FAILED,
                        error: Some(error.to_string()),
                        ..Default::default()
                    };
                }
            }
            let document = serde_json::to_string_pretty(&doc).expect("the output serializes");
            say(out, document)?;
        }
        result
    }

    fn name(&self) -> &'static str {
        match self {
            Command::Status { .. } => "status",
            Command::Plan { .. } => "plan",
            Command::Up { .. } => "up",
            Command::Down { .. } => "down",
            Command::Baseline { .. } => "baseline",
            Command::Redo { .. } => "redo",
            Command::Forget { .. } => "forget",
            Command::New { .. } => "new",
            Command::Accept { .. } => "accept",
            Command::Unlock { .. } => "unlock",
            Command::Verify { .. } => "verify",
            Command::Drift { .. } => "drift",
            Command::Fleet(_) => "fleet",
            Command::Diff { .. } => "diff",
        }
    }

    fn json(&self) -> bool {
        match self {
            Command::Status { json }
            | Command::Plan { json }
            | Command::Up { json, .. }
            | Command::Down { json, .. }
            | Command::Baseline { json, .. }
            | Command::Redo { json, .. }
            | Command::Forget { json, .. }
            | Command::New { json, .. }
            | Command::Accept { json, .. }
            | Command::Unlock { json, .. }
            | Command::Verify { json, .. }
            | Command::Drift { json, .. } => *json,
            Command::Fleet(args) => args.json,
            Command::Diff { json, .. } => *json,
        }
    }

    /// Whether the command reports the database's state (and exits by it).
    fn reports_state(&self) -> bool {
        matches!(
            self,
            Command::Status { .. }
                | Command::Plan { .. }
                | Command::Verify { .. }
                | Command::Drift { .. }
                | Command::Fleet(_)
                | Command::Diff { .. }
        )
    }

    async fn execute(
        &self,
        migrator: &Migrator,
        text: &mut Printer<'_>,
        doc: &mut json::Output,
    ) -> Result<Outcome> {
        match self {
            Command::Status { .. } => status(migrator, text, doc).await,
            Command::Fleet(args) => fleet::run(migrator, args, text, doc).await,
            Command::Plan { .. } => plan(migrator, text, doc).await,
            Command::Verify { drift, models, .. } => {
                verify(migrator, *drift, *models, text, doc).await
            }
            Command::Diff { live, .. } => models::diff(migrator, *live, text, doc).await,
            Command::Drift {
                repair,
                allow_destructive,
                record_declarations,
                ..
            } => {
                let asked = drift::Asked {
                    repair: *repair,
                    allow_destructive: *allow_destructive,
                    record_declarations: *record_declarations,
                };
                drift::run(migrator, asked, text, doc).await
            }
            Command::Up {
                to,
                allow_destructive,
                ..
            } => {
                let migrator = migrator.clone().allow_destructive(*allow_destructive);
                let report = migrator.up(to.as_ref()).await?;
                for applied in &report.applied {
                    text.line(format!(
                        "applied {} {} ({} ms, attempt {})",
                        applied.id,
                        applied.description,
                        applied.duration.as_millis(),
                        applied.attempt
                    ))?;
                }
                if report.applied.is_empty() {
                    text.line("nothing to apply")?;
                }
                for id in &report.pending {
                    text.line(format!("left pending (after --to): {id}"))?;
                }
                for warning in &report.warnings {
                    text.line(format!("warning: {warning}"))?;
                }
                doc.applied = Some(report.applied.iter().map(json::Applied::of).collect());
                doc.pending = Some(report.pending.iter().map(|id| id.to_string()).collect());
                doc.warnings = Some(report.warnings.iter().map(|w| w.to_string()).collect());
                Ok(Outcome::Success)
            }
            Command::Down { to, .. } => {
                let rolled_back = migrator.down(to).await?;
                let registry = migrator.registry().ok();
                for id in &rolled_back {
                    let description = registry
                        .iter()
                        .flat_map(|r| r.migrations())
                        .find(|m| &m.id() == id)
                        .map(|m| m.description().to_owned())
                        .unwrap_or_default();
                    text.line(format!("rolled back {id} {description}"))?;
                }
                if rolled_back.is_empty() {
                    text.line(format!("nothing is applied above {to}"))?;
                }
                doc.rolled_back = Some(rolled_back.iter().map(|id| id.to_string()).collect());
                Ok(Outcome::Success)
            }
            Command::Baseline { to, .. } => {
                let adopted = migrator.baseline(to).await?;
                for id in &adopted {
                    text.line(format!("recorded {id} as applied without running it"))?;
                }
                if adopted.is_empty() {
                    text.line(format!("everything up to {to} is already applied"))?;
                }
                doc.recorded = Some(adopted.iter().map(|id| id.to_string()).collect());
                Ok(Outcome::Success)
            }
            Command::Redo { id, .. } => {
                let applied = migrator.redo(id).await?;
                text.line(format!(
                    "ran {} {} again ({} ms, attempt {})",
                    applied.id,
                    applied.description,
                    applied.duration.as_millis(),
                    applied.attempt
                ))?;
                doc.applied = Some(vec![json::Applied::of(&applied)]);
                Ok(Outcome::Success)
            }
            Command::New {
                description,
                dir,
                timestamp,
                from_models,
                ..
            } => {
                let registry = migrator.registry().ok();
                let body = if *from_models {
                    Some(models::generated(migrator).await?)
                } else {
                    None
                };
                create(
                    registry.as_ref(),
                    migrator.group_name(),
                    description,
                    dir.as_deref(),
                    *timestamp,
                    body.as_ref(),
                    text,
                    doc,
                )
            }
            Command::Forget { id, .. } => {
                let key = migrator.forget(id).await?;
                text.line(format!(
                    "forgot the record {key} (a copy is in {}_audit)",
                    migrator.store().name()
                ))?;
                doc.forgotten = Some(vec![key]);
                Ok(Outcome::Success)
            }
            Command::Accept { id, all, .. } => {
                let ids: Vec<MigrationId> = match id {
                    Some(id) => vec![id.clone()],
                    None if *all => {
                        let plan = migrator.plan().await?;
                        let diverged: Vec<&MigrationId> =
                            plan.diverged().map(|(e, _)| &e.id).collect();
                        plan.changed()
                            .map(|(e, _)| e.id.clone())
                            .filter(|id| !diverged.contains(&id))
                            .collect()
                    }
                    None => Vec::new(),
                };
                if ids.is_empty() {
                    text.line("no applied migration has a changed checksum; nothing to accept")?;
                }
                let registry = migrator.registry()?;
                let mut accepted = Vec::new();
                for id in &ids {
                    let previous = migrator.accept(id).await?;
                    let checksum = registry
                        .migrations()
                        .iter()
                        .find(|m| &m.id() == id)
                        .map(|m| m.checksum().to_owned())
                        .unwrap_or_default();
                    text.line(format!(
                        "accepted {id}: its record now holds checksum {checksum} (was {}); it does not run again",
                        previous.as_deref().unwrap_or("not recorded")
                    ))?;
                    accepted.push(json::Accepted {
                        id: id.to_string(),
                        previous_checksum: previous,
                        checksum,
                    });
                }
                doc.accepted = Some(accepted);
                Ok(Outcome::Success)
            }
            Command::Unlock { even_if_alive, .. } => {
                let unlocked = migrator.force_unlock(*even_if_alive).await?;
                if !unlocked.repaired.is_empty() {
                    text.line(format!(
                        "repaired the lock document ({})",
                        unlocked.repaired.join("; ")
                    ))?;
                }
                text.line(match (&unlocked.previous, unlocked.was_alive) {
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
                })?;
                doc.lock = Some(json::Lock::of(&unlocked));
                Ok(Outcome::Success)
            }
        }
    }
}

/// `new`: writes the file and says what it did.
#[allow(clippy::too_many_arguments)]
fn create(
    registry: Option<&crate::Registry>,
    group: &str,
    description: &str,
    dir: Option<&std::path::Path>,
    timestamp: bool,
    body: Option<&crate::model::GeneratedBody>,
    text: &mut Printer<'_>,
    doc: &mut json::Output,
) -> Result<Outcome> {
    let created = new::create(
        registry,
        group,
        description,
        dir,
        if timestamp {
            new::IdStyle::Timestamp
        } else {
            new::IdStyle::Next
        },
        body,
    )?;
    text.line(format!(
        "created {} (id {})",
        created.file.display(),
        created.id
    ))?;
    match &created.mod_file {
        Some(file) => text.line(format!(
            "added `{}` to {}",
            created.mod_line,
            file.display()
        ))?,
        None => text.line(format!(
            "add this line to the module that declares the migrations: {}",
            created.mod_line
        ))?,
    }
    doc.created = Some(json::Created {
        id: created.id,
        file: created.file.display().to_string(),
        mod_line: created.mod_line,
        mod_file: created.mod_file.map(|f| f.display().to_string()),
    });
    Ok(Outcome::Success)
}

/// Text output, silent when the command prints JSON instead.
struct Printer<'a> {
    out: &'a mut dyn Write,
    quiet: bool,
}

impl Printer<'_> {
    fn line(&mut self, line: impl Into<String>) -> Result<()> {
        if self.quiet {
            return Ok(());
        }
        say(self.out, line.into())
    }
}

/// Stdout that stops writing, without an error, once the reader has gone
/// (`status --json | head`): what the command did stays done and its exit code stands.
struct EndsQuietly<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> Write for EndsQuietly<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
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

async fn status(
    migrator: &Migrator,
    text: &mut Printer<'_>,
    doc: &mut json::Output,
) -> Result<Outcome> {
    let plan = migrator.plan().await?;
    let findings = plan.findings();
    let mut rows: Vec<json::MigrationView> = plan
        .entries
        .iter()
        .map(|e| json::MigrationView::of_entry(e, None))
        .collect();
    rows.extend(plan.unknown.iter().map(json::MigrationView::of_unknown));
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
            if row.known {
                row.state.to_owned()
            } else {
                format!("{} (unknown to this binary)", row.state)
            },
            row.applied_at.clone().unwrap_or_else(|| "-".into()),
            row.duration_ms
                .map(|d| format!("{d} ms"))
                .unwrap_or_else(|| "-".into()),
            match row.checksum_status {
                Some("ok") => "ok".into(),
                Some("changed") => "CHANGED".into(),
                Some("not_recorded") => "not recorded".into(),
                _ => "-".into(),
            },
        ]);
    }
    text.line(table.to_string())?;
    let pending = plan.pending().count();
    text.line(format!(
        "{} applied, {pending} pending, {} unknown to this binary",
        plan.entries.len() - pending,
        plan.unknown.len()
    ))?;
    problems(&findings, text, doc)?;
    doc.migrations = Some(rows);
    Ok(Outcome::of(&plan, &findings))
}

/// Why `up` would not run a pending migration, if it would not.
fn refusal(plan: &Plan, entry: &PlanEntry, transactions: Option<bool>) -> Option<String> {
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
    }
}

async fn plan(
    migrator: &Migrator,
    text: &mut Printer<'_>,
    doc: &mut json::Output,
) -> Result<Outcome> {
    let plan: Plan = migrator.plan().await?;
    let findings = plan.findings();
    let transactions = if plan.pending().any(|e| e.migration.transaction()) {
        Some(
            Deployment::detect(migrator.database())
                .await?
                .supports_transactions(),
        )
    } else {
        None
    };
    if plan.has_pending() {
        text.line("up would apply, in order:")?;
    } else {
        text.line("nothing to apply")?;
    }
    let mut rows = Vec::new();
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
        if entry.migration.background() {
            notes.push("background: start-up does not wait for it".into());
        }
        let refusal = refusal(&plan, entry, transactions);
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        text.line(format!(
            "  {} {}{notes}",
            entry.id,
            entry.migration.description()
        ))?;
        if let Some(refusal) = &refusal {
            text.line(format!("      {refusal}"))?;
        }
        rows.push(json::MigrationView::of_entry(entry, refusal));
    }
    for record in &plan.unknown {
        text.line(format!(
            "skipped: {} is applied but unknown to this binary",
            record.key
        ))?;
    }
    problems(&findings, text, doc)?;
    doc.migrations = Some(rows);
    Ok(Outcome::of(&plan, &findings))
}

async fn verify(
    migrator: &Migrator,
    with_drift: bool,
    with_models: bool,
    text: &mut Printer<'_>,
    doc: &mut json::Output,
) -> Result<Outcome> {
    let plan = migrator.plan().await?;
    let findings = plan.findings();
    problems(&findings, text, doc)?;
    let drifted = if with_drift {
        let report = migrator.drift().await?;
        for finding in &report.findings {
            text.line(format!("drift: {finding}"))?;
        }
        doc.drift = Some(report.findings.iter().map(json::DriftItem::of).collect());
        doc.collections_checked = Some(report.collections_checked);
        report.findings.len()
    } else {
        0
    };
    let unmodelled = if with_models {
        let diff = migrator.diff_models(false).await?;
        for finding in &diff.findings {
            text.line(format!("models: {finding}"))?;
        }
        doc.models = Some(json::ModelsView::of(&diff));
        diff.findings.len()
    } else {
        0
    };
    // What differs, in words: "3 difference(s) from the declared schema", "... from the
    // models", or both.
    let differences = [
        (drifted, "from the declared schema"),
        (unmodelled, "between the models and the migrations"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} difference(s) {what}"))
    .collect::<Vec<_>>()
    .join(", ");
    let drifted = drifted + unmodelled;
    let pending: Vec<&PlanEntry> = plan.pending().collect();
    for entry in &pending {
        text.line(format!(
            "pending: {} {}",
            entry.id,
            entry.migration.description()
        ))?;
    }
    doc.migrations = Some(
        pending
            .iter()
            .map(|e| json::MigrationView::of_entry(e, None))
            .collect(),
    );
    let outcome = match Outcome::of(&plan, &findings) {
        _ if drifted > 0 => Outcome::Problems,
        outcome => outcome,
    };
    text.line(match outcome {
        Outcome::Success => "verify: no problems".to_owned(),
        Outcome::Pending => format!("verify: no problems, {} pending", pending.len()),
        Outcome::Problems if drifted > 0 && findings.is_empty() => {
            format!("verify: {differences}")
        }
        Outcome::Problems if drifted > 0 => {
            format!("verify: {} problem(s), {differences}", findings.len())
        }
        Outcome::Problems => format!("verify: {} problem(s)", findings.len()),
    })?;
    Ok(outcome)
}

/// Prints each finding (`problem: ...`) and puts them in the document.
fn problems(findings: &[Finding], text: &mut Printer<'_>, doc: &mut json::Output) -> Result<()> {
    for finding in findings {
        text.line(format!("problem: {finding}"))?;
    }
    doc.problems = Some(findings.iter().map(json::Problem::of).collect());
    Ok(())
}
