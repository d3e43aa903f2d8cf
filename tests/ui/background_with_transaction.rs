use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Backfill in one transaction", background, transaction)]
async fn backfill(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
