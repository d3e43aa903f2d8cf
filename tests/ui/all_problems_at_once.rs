use schema_runtime::{MigrationContext, MigrationResult, migration};

// Every problem of one attribute is reported in one compilation.
#[migration(id = "x1", description = "", colour = "blue")]
fn everything_wrong<T>(_ctx: &mut MigrationContext, _extra: T) -> MigrationResult {
    Ok(())
}

fn main() {}
