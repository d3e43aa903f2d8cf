use schema_runtime::{MigrationContext, MigrationResult, migration};

// Same id in different groups is fine...
#[migration(id = "0001", description = "Main database")]
async fn main_one(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[migration(id = "0001", description = "Analytics database", group = "analytics")]
async fn analytics_one(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

// ...but not twice in one group.
#[migration(id = "0001", description = "Analytics again", group = "analytics")]
async fn analytics_one_again(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

fn main() {}
