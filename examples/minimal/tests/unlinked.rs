//! A test that does not link the package's library (no `schema_runtime::link!(help_desk)`, no
//! use of it) sees no migrations, as a test of a binary crate never sees the binary's: the
//! error says that this is a test binary and what layout works.

use schema_runtime::testing::TestDatabase;
use schema_runtime::{Error, Migrator};

#[tokio::test]
async fn a_test_binary_without_the_migrations_is_told_what_to_do() {
    let db = TestDatabase::labelled("minimal_unlinked").await;
    let err = Migrator::new(db.database().clone())
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            Error::NoMigrations {
                in_test_binary: true,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("this is a test binary")
            && message.contains("never its binary")
            && message.contains("src/lib.rs"),
        "{message}"
    );
    let records = db.database().list_collection_names().await.unwrap();
    assert!(records.is_empty(), "nothing was written: {records:?}");
}
