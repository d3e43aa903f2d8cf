use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Forgot async")]
fn not_async(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
