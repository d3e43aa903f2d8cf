//! Duplicate ids across crates: the compiler checks one crate at a time, so start-up must refuse
//! them before anything runs, naming both functions.

use schema_runtime::{Error, MigrationContext, MigrationResult, Migrator, Registry, migration};
use schema_tests::{TestDb, documents};

#[migration(id = "7", description = "Seven, from the test crate", group = "cross")]
async fn seven(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[tokio::test]
async fn the_same_id_in_two_crates_is_refused_naming_both_functions() {
    assert_eq!(other_crate::linked(), "other-crate");
    let err = Registry::group("cross").unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::DuplicateId { group, .. } if group == "cross"),
        "{message}"
    );
    assert!(message.contains("other_crate::seven"), "{message}");
    assert!(message.contains("cross_crate::seven"), "{message}");

    let t = TestDb::new("cross").await;
    let err = Migrator::new(t.db.clone())
        .group("cross")
        .apply_all()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateId { .. }));
    assert!(
        documents(&t.db, "schema_versions").await.is_empty(),
        "nothing ran or was recorded"
    );
}
