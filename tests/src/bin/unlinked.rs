//! Depends on the `linked-migrations` crate (see Cargo.toml) but never refers to it: its
//! migrations are not linked, and start-up must say so instead of applying nothing.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    schema_tests::run_linked_group(std::env::args().nth(1)).await
}
