use schema_runtime::migration;

#[migration(id = "0001", description = "On a struct")]
struct NotAFunction;

fn main() {}
