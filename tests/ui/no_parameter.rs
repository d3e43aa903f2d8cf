use schema_runtime::{MigrationResult, migration};

#[migration(id = "0001", description = "No context")]
async fn no_context() -> MigrationResult {
    Ok(())
}

fn main() {}
