use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "", description = "Empty id")]
async fn empty_id(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
