use schema_runtime::{MigrationContext, MigrationResult, migration};

#[migration(id = "3", description = "Three")]
async fn three(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

mod later {
    use schema_runtime::{MigrationContext, MigrationResult, migration};

    // The same number as "3": the same id.
    #[migration(id = "0003", description = "Three again")]
    pub async fn three_again(_ctx: &mut MigrationContext) -> MigrationResult {
        Ok(())
    }
}

fn main() {}
