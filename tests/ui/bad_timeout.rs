use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Slow", timeout = "ten minutes")]
async fn slow(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
