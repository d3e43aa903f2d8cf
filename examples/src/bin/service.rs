//! A service process (the API or a worker) that, like the reference system's processes, brings the
//! schema up to date at start-up, prints what it did, and (with `--listen`) serves `/health`.
//! `service migrate ...` is the operator's CLI, compiled into the same binary.
//!
//! ```text
//! MONGODB_URI=mongodb://127.0.0.1:27017 service --role api
//! MONGODB_URI=mongodb://127.0.0.1:27017 service --role api --listen 127.0.0.1:8080
//! MONGODB_URI=mongodb://127.0.0.1:27017 service migrate status
//! ```
//!
//! Settings come from the environment (see `schema_runtime::config`); the database defaults to
//! `integr8scode` when `MONGODB_DATABASE` is unset.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use schema_runtime::scrub;
use schema_runtime::{Migrator, Registry, Settings};

// The migrations live in this package's library; `link!` makes sure it is linked (and
// its registrations with it) although nothing else here names it.
schema_runtime::link!(schema_example);

#[derive(Debug, Parser)]
struct Args {
    /// Which process this is; only shown in the output.
    #[arg(long, default_value = "api")]
    role: String,
    /// After start-up, serve `GET /health` on this address until stopped.
    #[arg(long)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Schema migrations: status, plan, up, down, baseline, redo, unlock, verify.
    #[command(subcommand)]
    Migrate(schema_runtime::cli::Command),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into a pipe or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    if let Some(Sub::Migrate(command)) = &args.command {
        // `migrate new` writes a file and needs no server: it runs without MONGODB_URI.
        return command
            .run_to_exit_code_with(|| async { settings()?.migrator().await })
            .await;
    }
    let settings = match settings() {
        Ok(settings) => settings,
        Err(e) => return fail(&args.role, e.to_string()),
    };
    let migrator = match settings.migrator().await {
        Ok(migrator) => migrator,
        Err(e) => return fail(&args.role, e.to_string()),
    };
    let result = start(&args, &settings, migrator.clone()).await;
    // The driver's cleanup before the runtime stops (a client only dropped can panic there).
    migrator.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&args.role, message),
    }
}

fn fail(role: &str, message: String) -> ExitCode {
    eprintln!("service ({role}): start-up failed: {message}");
    ExitCode::FAILURE
}

fn settings() -> schema_runtime::Result<Settings> {
    Settings::from_lookup(|name| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "MONGODB_DATABASE").then(|| "integr8scode".to_owned()))
    })
}

async fn start(args: &Args, settings: &Settings, migrator: Migrator) -> Result<(), String> {
    println!(
        "service ({}): {} migrations registered; database {:?} on {}",
        args.role,
        Registry::group("default")
            .map_err(|e| e.to_string())?
            .migrations()
            .len(),
        settings.database,
        scrub(&settings.uri)
    );
    let started = Instant::now();
    let report = migrator.apply_all().await.map_err(|e| e.to_string())?;
    for applied in &report.applied {
        println!(
            "  applied {} {} ({} ms)",
            applied.id,
            applied.description,
            applied.duration.as_millis()
        );
    }
    for warning in &report.warnings {
        println!("  warning: {warning}");
    }
    if !settings.auto_migrate {
        println!(
            "  ENABLE_AUTO_MIGRATION is off: {} pending, not applied",
            report.pending.len()
        );
    }
    let state = if report.pending.is_empty() {
        "schema ready"
    } else {
        "start-up done, schema NOT up to date"
    };
    println!(
        "service ({}): {state} in {} ms: {} applied now, {} already applied",
        args.role,
        started.elapsed().as_millis(),
        report.applied.len(),
        report.already_applied.len()
    );
    if let Some(address) = &args.listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        println!(
            "service ({}): serving /health on http://{address}",
            args.role
        );
        axum::serve(listener, schema_example::health::router(migrator))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
