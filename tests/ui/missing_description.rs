use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001")]
async fn no_description(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
