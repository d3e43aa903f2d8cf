use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Rollback that is not async", down = undo)]
async fn create(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn undo(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
