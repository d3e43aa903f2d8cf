//! A service process (the API or a worker) that, like the reference system's processes, brings the
//! schema up to date at start-up and prints what it did.
//!
//! ```text
//! MONGODB_URI=mongodb://127.0.0.1:27017 cargo run -p schema-example --bin service -- --role api
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use schema_runtime::mongodb::Client;
use schema_runtime::mongodb::options::ClientOptions;
use schema_runtime::redact::scrub;
use schema_runtime::{Migrator, Registry};

// The migrations live in this package's library; `extern crate` makes sure it is linked (and
// its registrations with it) although nothing else here names it.
extern crate schema_example;

/// Applies the schema migrations at start-up, then (in a real service) would serve.
#[derive(Debug, Parser)]
struct Args {
    /// Which process this is; only shown in the output.
    #[arg(long, default_value = "api")]
    role: String,
    /// The server; `DATABASE_URL` is read when `MONGODB_URI` is not set.
    #[arg(long, env = "MONGODB_URI")]
    uri: Option<String>,
    /// The database.
    #[arg(long, env = "MONGODB_DATABASE", default_value = "integr8scode")]
    database: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("service ({}): start-up failed: {message}", args.role);
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let uri = args
        .uri
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or(
            "set MONGODB_URI (or DATABASE_URL) to the server, such as mongodb://127.0.0.1:27017",
        )?;
    let mut options = ClientOptions::parse(&uri).await.map_err(|e| {
        format!(
            "MONGODB_URI {} is not usable: {}",
            scrub(&uri),
            scrub(&e.to_string())
        )
    })?;
    options.server_selection_timeout = Some(Duration::from_secs(10));
    options.app_name = Some(format!("schema-example-{}", args.role));
    let client = Client::with_options(options).map_err(|e| scrub(&e.to_string()))?;
    let database = client.database(&args.database);

    println!(
        "service ({}): {} migrations registered; database {:?} on {}",
        args.role,
        Registry::group("default")
            .map_err(|e| e.to_string())?
            .migrations()
            .len(),
        args.database,
        scrub(&uri)
    );
    let started = Instant::now();
    let report = Migrator::new(database)
        .apply_all()
        .await
        .map_err(|e| e.to_string())?;
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
    println!(
        "service ({}): schema ready in {} ms: {} applied now, {} already applied",
        args.role,
        started.elapsed().as_millis(),
        report.applied.len(),
        report.already_applied.len()
    );
    Ok(())
}
