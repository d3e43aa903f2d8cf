use schema_runtime::{MigrationResult, migration};

struct Migrations;

impl Migrations {
    #[migration(id = "0001", description = "A method")]
    async fn method(&self) -> MigrationResult {
        Ok(())
    }
}

fn main() {}
