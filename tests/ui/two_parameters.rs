use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Two parameters")]
async fn two(_ctx: &mut MigrationContext, _extra: u32) -> MigrationResult {
    Ok(())
}

fn main() {}
