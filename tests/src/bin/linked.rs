//! Refers to the `linked-migrations` crate only through `schema_runtime::link!`, then applies
//! group `linked` to the database it is given (or, with no database, prints what is registered).
//! Output: `registered=N` and, with a database, `applied=N`; on error the error and exit code 1.

schema_runtime::link!(linked_migrations);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    schema_tests::run_linked_group(std::env::args().nth(1)).await
}
