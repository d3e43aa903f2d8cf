use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Transaction as a string", transaction = "yes")]
async fn stringly(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
