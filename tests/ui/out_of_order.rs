use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "One")]
async fn one(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[migration(id = "0005", description = "Five")]
async fn five(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

// Declared below 0005 in the same file.
#[migration(id = "0004", description = "Four")]
async fn four(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
