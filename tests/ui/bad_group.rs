use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Group with a dash", group = "main-db")]
async fn dashed(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
