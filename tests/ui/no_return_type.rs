use schema_runtime::{MigrationContext, migration};

#[migration(id = "0001", description = "Returns nothing")]
async fn returns_nothing(_ctx: &mut MigrationContext) {}

fn main() {}
