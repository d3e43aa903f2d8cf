use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Typo in a key", tansaction = true)]
async fn typo(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
