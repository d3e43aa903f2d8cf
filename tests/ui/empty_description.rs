use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "   ")]
async fn blank_description(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
