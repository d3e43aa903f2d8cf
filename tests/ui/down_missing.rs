use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Rollback that does not exist", down = drop_everything)]
async fn create(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
