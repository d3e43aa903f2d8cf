use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Generic")]
async fn generic<T: Default>(_ctx: &mut MigrationContext) -> MigrationResult {
    let _ = T::default();
    Ok(())
}

fn main() {}
