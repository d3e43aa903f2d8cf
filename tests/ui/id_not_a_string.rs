use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = 3, description = "Integer id")]
async fn integer_id(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
