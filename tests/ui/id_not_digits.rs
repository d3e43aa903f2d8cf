use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0003_events", description = "Id with a name in it")]
async fn named_id(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
