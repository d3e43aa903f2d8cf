//! The embedded CLI as an application runs it (`app migrate ...`), for the tests that need a
//! real process: `migrate --db NAME [--group G] <command>`. Group `cli_proc` has two migrations
//! with rollbacks; group `cli_panic` one that panics with a password in its message.

use std::process::ExitCode;

use clap::Parser;
use schema_runtime::{MigrationContext, MigrationResult, Migrator, migration};

#[migration(id = "0001", description = "Create gizmos", group = "cli_proc", down = drop_gizmos)]
async fn create_gizmos(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.database().create_collection("gizmos").await?;
    Ok(())
}

async fn drop_gizmos(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.database()
        .collection::<bson::Document>("gizmos")
        .drop()
        .await?;
    Ok(())
}

#[migration(id = "0002", description = "Seed gizmos", group = "cli_proc", down = unseed_gizmos)]
async fn seed_gizmos(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.collection::<bson::Document>("gizmos")
        .insert_one(bson::doc! { "_id": 1 })
        .await?;
    Ok(())
}

async fn unseed_gizmos(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.collection::<bson::Document>("gizmos")
        .delete_one(bson::doc! { "_id": 1 })
        .await?;
    Ok(())
}

#[migration(
    id = "0001",
    description = "Panics with a password",
    group = "cli_panic"
)]
async fn panics_with_a_password(_ctx: &mut MigrationContext) -> MigrationResult {
    panic!("cannot copy from mongodb://app:s3cr/et?pa#ss@legacy.internal/prod");
}

#[derive(Parser)]
struct Args {
    /// The database.
    #[arg(long)]
    db: String,
    /// The group.
    #[arg(long, default_value = "cli_proc")]
    group: String,
    #[command(subcommand)]
    command: schema_runtime::cli::Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let client = schema_tests::client().await;
    let mut migrator = Migrator::new(client.database(&args.db)).group(args.group);
    // LEASE_MS: a short lease, so that a test that kills this process resumes soon.
    if let Some(ms) = std::env::var("LEASE_MS").ok().and_then(|v| v.parse().ok()) {
        migrator = migrator.lease(std::time::Duration::from_millis(ms));
    }
    // The group `fleet` lives in the harness's library; naming it keeps it linked.
    let _ = schema_tests::fleet_group::GROUP;
    args.command.run_to_exit_code(&migrator).await
}
