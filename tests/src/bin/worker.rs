//! A service process for the multi-process tests and the benchmark: it applies group `proc`
//! (20 migrations, each adding one to its own counter document) or a `bulk*` group to the
//! database it is given, like an API or worker process at start-up.
//!
//! Output, on success: `ok applied=N already=M [recorded=R] took_lock=B waited_ms=W
//! done_at_ms=T [commands=C]` where `recorded` is the number of applied records read right after
//! `apply_all` returned (left out with `--no-count`), `T` the Unix time in ms when it returned, and `C` (with
//! `COUNT_COMMANDS=1`) the number of commands the process sent in `apply_all`.
//! On failure: the error on stderr, exit code 2 when the process lost its lock, 1 otherwise.
//!
//! `PAUSE_AT=0005 PAUSE_DIR=/tmp/x`: migration 0005 writes `PAUSE_DIR/reached-<pid>` and waits
//! until `PAUSE_DIR/go` exists before doing its work.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bson::doc;
use clap::Parser;
use schema_runtime::{Error, MigrationContext, MigrationResult, Migrator};

include!(concat!(env!("OUT_DIR"), "/proc.rs"));
include!(concat!(env!("OUT_DIR"), "/bulk.rs"));

/// A long data migration over `items` (the batch tests fill it): adds one to every `n`.
#[schema_runtime::migration(id = "0001", description = "Add one to every item", group = "batch")]
async fn add_one_to_every_item(ctx: &mut MigrationContext) -> MigrationResult {
    let size = std::env::var("BATCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    // A crash part-way (no unwinding, no release), after this many documents.
    let crash_after: Option<u64> = std::env::var("CRASH_AFTER_DOCS")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut seen = 0_u64;
    ctx.batches("items")
        .batch_size(size)
        .update_each(|_| {
            seen += 1;
            if crash_after.is_some_and(|after| seen > after) {
                std::process::abort();
            }
            Some(doc! { "$inc": { "n": 1 } })
        })
        .await?;
    Ok(())
}

/// A transactional migration for the kill tests: inserts items 1–3 in its transaction, pauses
/// (`PAUSE_AT=txn`), inserts items 4–6. All six land, or none.
#[schema_runtime::migration(
    id = "0001",
    description = "Six items in one transaction",
    group = "txn_kill",
    transaction
)]
async fn six_items_in_one_transaction(ctx: &mut MigrationContext) -> MigrationResult {
    let items = ctx.collection::<bson::Document>("items");
    let session = ctx
        .session()
        .expect("a transactional migration has a session");
    items
        .insert_many((1..=3).map(|i| doc! { "_id": i }))
        .session(&mut *session)
        .await?;
    pause_at("txn").await?;
    let session = ctx
        .session()
        .expect("a transactional migration has a session");
    items
        .insert_many((4..=6).map(|i| doc! { "_id": i }))
        .session(&mut *session)
        .await?;
    Ok(())
}

/// Group `bg`: one migration the application needs, then one it does not (`background`); with
/// `PAUSE_AT=0002` the background one pauses until `PAUSE_DIR/go`.
#[schema_runtime::migration(id = "0001", description = "Needed at start", group = "bg")]
async fn bg_needed(ctx: &mut MigrationContext) -> MigrationResult {
    step(ctx, "0001").await
}

#[schema_runtime::migration(id = "0002", description = "A long build", group = "bg", background)]
async fn bg_long(ctx: &mut MigrationContext) -> MigrationResult {
    step(ctx, "0002").await
}

/// With `PAUSE_AT=<point>`, writes `PAUSE_DIR/reached-<pid>` and waits for `PAUSE_DIR/go`.
async fn pause_at(point: &str) -> MigrationResult {
    if std::env::var("PAUSE_AT").ok().as_deref() == Some(point) {
        let dir = PathBuf::from(std::env::var("PAUSE_DIR").expect("PAUSE_DIR with PAUSE_AT"));
        std::fs::write(dir.join(format!("reached-{}", std::process::id())), point)?;
        while !dir.join("go").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

async fn step(ctx: &mut MigrationContext, id: &str) -> MigrationResult {
    if std::env::var("PAUSE_AT").ok().as_deref() == Some(id) {
        let dir = PathBuf::from(std::env::var("PAUSE_DIR").expect("PAUSE_DIR with PAUSE_AT"));
        std::fs::write(dir.join(format!("reached-{}", std::process::id())), id)?;
        while !dir.join("go").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    schema_tests::bump(ctx.database(), &format!("m{id}")).await?;
    Ok(())
}

#[derive(Parser)]
struct Args {
    /// The database.
    #[arg(long)]
    db: String,
    /// The group to apply.
    #[arg(long, default_value = "proc")]
    group: String,
    /// The lock's lease, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// How long to wait for another process's lock, in milliseconds.
    #[arg(long, default_value_t = 120_000)]
    max_wait_ms: u64,
    /// Tries of the first read while the server cannot be reached.
    #[arg(long, default_value_t = 3)]
    startup_attempts: u32,
    /// Only connect and ping, then exit: the floor of a process's start-up cost.
    #[arg(long)]
    ping_only: bool,
    /// Do not count the applied records after `apply_all` (`recorded=` is then absent): the
    /// benchmark times start-ups alone, without the tests' check.
    #[arg(long)]
    no_count: bool,
    /// After the `ok` line, wait up to this long for the background migrations
    /// (`Migrator::wait_for_background`) and print `background-done applied=N`.
    #[arg(long)]
    finish_background_ms: Option<u64>,
    /// With `--finish-background-ms`, wait also when another process applies them (and take
    /// over if it died); otherwise only the process that runs them waits.
    #[arg(long)]
    await_background: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    // COUNT_COMMANDS=1: count this process's commands and print them (the benchmark's waiter load).
    let (client, log) = if std::env::var("COUNT_COMMANDS").is_ok() {
        let (client, log) = schema_tests::counting_client().await;
        (client, Some(log))
    } else {
        let timeout = Duration::from_millis(
            std::env::var("SERVER_SELECTION_TIMEOUT_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000),
        );
        // BARE_CLIENT=1: the benchmark's memory figure, of the library without the harness.
        let client = if std::env::var("BARE_CLIENT").is_ok() {
            schema_tests::bare_client_with_timeout(timeout).await
        } else {
            schema_tests::client_with_timeout(timeout).await
        };
        (client, None)
    };
    let code = run(&client, &args, log).await;
    // Ends the driver's background work before the runtime stops (dropping a connected client
    // as the runtime shuts down makes the driver panic in a background task).
    // EXIT_AT_ONCE=1: return right after start-up without shutting the client down, as many
    // services do; the runtime then ends under whatever the driver still has running.
    if std::env::var("EXIT_AT_ONCE").is_err() {
        client.clone().shutdown().await;
    }
    code
}

async fn run(
    client: &mongodb::Client,
    args: &Args,
    log: Option<schema_tests::CommandLog>,
) -> ExitCode {
    let db = client.database(&args.db);
    if args.ping_only {
        return match db.run_command(doc! { "ping": 1 }).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let migrator = Migrator::new(db.clone())
        .group(args.group.clone())
        .lease(Duration::from_millis(args.lease_ms))
        .max_wait(Duration::from_millis(args.max_wait_ms))
        .startup_retries(args.startup_attempts, Duration::from_millis(200));
    let outcome = migrator.apply_all().await;
    let done_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let commands = log.as_ref().map(|l| l.count());
    let names = log.map(|l| l.names().join(","));
    match outcome {
        Ok(report) => {
            let recorded = if args.no_count {
                String::new()
            } else {
                let count = db
                    .collection::<bson::Document>("schema_versions")
                    .count_documents(doc! { "state": "applied" })
                    .await
                    .unwrap_or(u64::MAX);
                format!(" recorded={count}")
            };
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "ok applied={} already={}{recorded} took_lock={} waited_ms={} done_at_ms={done_at_ms} background={} runs_background={}{}{}{}",
                report.applied.len(),
                report.already_applied.len(),
                report.took_lock,
                report.waited.as_millis(),
                report.background.len(),
                report.runs_background,
                commands
                    .map(|c| format!(" commands={c}"))
                    .unwrap_or_default(),
                names
                    .map(|n| format!(" command_names={n}"))
                    .unwrap_or_default(),
                schema_tests::peak_rss_kib()
                    .map(|kib| format!(" peak_rss_kib={kib}"))
                    .unwrap_or_default()
            );
            if let Some(ms) = args.finish_background_ms
                && !report.background.is_empty()
                && (report.runs_background || args.await_background)
            {
                use std::io::Write;
                let _ = std::io::stdout().flush();
                match migrator
                    .wait_for_background(Duration::from_millis(ms))
                    .await
                {
                    Ok(done) => println!("background-done applied={}", done.applied.len()),
                    Err(error) => {
                        eprintln!("error: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            if matches!(error, Error::LockLost { .. }) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
