mod first {
    use schema_runtime::{MigrationContext, MigrationResult, migration};

    #[migration(id = "0002", description = "From the first module")]
    pub async fn from_first(_ctx: &mut MigrationContext) -> MigrationResult {
        Ok(())
    }
}

mod second {
    use schema_runtime::{MigrationContext, MigrationResult, migration};

    #[migration(id = "0002", description = "From the second module")]
    pub async fn from_second(_ctx: &mut MigrationContext) -> MigrationResult {
        Ok(())
    }
}

fn main() {}
