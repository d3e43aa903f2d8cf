//! An application whose own code has no clap: `noclap DATABASE migrate <command>` hands the words
//! after the database to `schema_runtime::cli::run_from_args`. Group `noclap`: one migration.

use std::process::ExitCode;

use schema_runtime::{MigrationContext, MigrationResult, Migrator, migration};

#[migration(id = "0001", description = "Create sprockets", group = "noclap")]
async fn create_sprockets(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.database().create_collection("sprockets").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let database = args
        .next()
        .expect("usage: noclap DATABASE migrate <command>");
    let migrator = Migrator::new(schema_tests::client().await.database(&database)).group("noclap");
    schema_runtime::cli::run_from_args(&migrator, args).await
}
