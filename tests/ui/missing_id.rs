use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(description = "No id")]
async fn no_id(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
