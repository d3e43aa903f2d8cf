use schema_runtime::{MigrationResult, migration};

#[migration(id = "0001", description = "Takes the database instead of its context")]
async fn wrong(db: &mongodb::Database) -> MigrationResult {
    db.create_collection("x").await?;
    Ok(())
}

fn main() {}
