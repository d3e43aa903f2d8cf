use std::process::ExitCode;

use clap::Parser;
use schema_runtime::Migrator;

schema_runtime::link!(help_desk); // the library holds the migrations

#[derive(Parser)]
enum Cli {
    /// Bring the schema up to date, then serve.
    Serve,
    /// Schema migrations: status, plan, up, down, verify, new, ...
    #[command(subcommand)]
    Migrate(schema_runtime::cli::Command),
}

#[tokio::main]
async fn main() -> Result<ExitCode, schema_runtime::Error> {
    match Cli::parse() {
        Cli::Migrate(command) => Ok(command.run_from_env().await),
        Cli::Serve => {
            // Every process runs these lines; the lock makes each migration run once.
            let migrator = Migrator::from_env().await?;
            let report = migrator.apply_all().await?;
            println!(
                "schema ready: {} applied now, {} already applied",
                report.applied.len(),
                report.already_applied.len()
            );
            // ... serve requests here (migrator.database() is the database) ...
            migrator.shutdown().await; // close the connections before exiting
            Ok(ExitCode::SUCCESS)
        }
    }
}
