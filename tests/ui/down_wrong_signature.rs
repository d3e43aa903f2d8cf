use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Rollback with the wrong signature", down = undo)]
async fn create(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

// A rollback takes the context, like the migration.
async fn undo() -> MigrationResult {
    Ok(())
}

fn main() {}
