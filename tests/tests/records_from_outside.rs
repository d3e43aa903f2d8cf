//! Records are input: a record of a different migration under a registered id is refused, a
//! baseline to an id nobody registered is refused, and absurd values never panic.

use bson::{Bson, Document, doc};
use schema_runtime::{Error, MigrationContext, MigrationResult, Migrator, Warning, migration};
use schema_tests::{TestDb, bump, count, documents, record};

#[migration(id = "0007", description = "Index ticket tags", group = "branches")]
async fn index_ticket_tags(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "tags").await?;
    Ok(())
}

#[migration(id = "0008", description = "Seed ticket states", group = "branches")]
async fn seed_ticket_states(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "states").await?;
    Ok(())
}

/// The other branch's 0007, applied before this branch's 0007 was merged.
async fn other_branchs_0007(t: &TestDb) {
    t.db.collection::<Document>("schema_versions")
        .insert_one(doc! {
            "_id": "0007", "description": "Add priority field", "state": "applied",
            "checksum": "abc", "function": "tickets::migrations::add_priority",
            "fence": 1_i64, "attempts": 1_i64,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_record_of_a_different_migration_under_the_same_id_is_refused_before_anything_runs() {
    let t = TestDb::new("reusedid").await;
    other_branchs_0007(&t).await;
    let err = Migrator::new(t.db.clone())
        .group("branches")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::DifferentMigration { id, .. } if id == "0007"),
        "{message}"
    );
    assert!(
        message.contains("recorded tickets::migrations::add_priority (\"Add priority field\")"),
        "{message}"
    );
    assert!(
        message.contains("records_from_outside::index_ticket_tags (\"Index ticket tags\")"),
        "{message}"
    );
    assert!(
        message.contains("give the registered one a new id"),
        "{message}"
    );
    assert_eq!(count(&t.db, "states").await, 0, "nothing ran");
    assert!(record(&t.db, "0008").await.is_none());
    // `verify` (the deploy pipeline's check) lists it too.
    let findings = Migrator::new(t.db.clone())
        .group("branches")
        .verify()
        .await
        .unwrap();
    assert!(
        findings.iter().any(|f| f.to_string().starts_with(
            "0007: the database applied tickets::migrations::add_priority under this id"
        )),
        "{findings:?}"
    );

    // Opting in takes it as the same migration, with a warning.
    let report = Migrator::new(t.db.clone())
        .group("branches")
        .allow_reused_ids(true)
        .apply_all()
        .await
        .unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::ReusedId { id, .. } if id.as_str() == "0007")),
        "{:?}",
        report.warnings
    );
    assert_eq!(count(&t.db, "tags").await, 0);
}

#[tokio::test]
async fn an_edited_body_of_the_same_migration_stays_the_milder_checksum_case() {
    let t = TestDb::new("samefn").await;
    let migrator = Migrator::new(t.db.clone()).group("branches");
    migrator.apply_all().await.unwrap();
    // Same function, new description and body: an edit, not another migration.
    t.db.collection::<Document>("schema_versions")
        .update_one(
            doc! { "_id": "0007" },
            doc! { "$set": { "checksum": "0ld", "description": "Index tags" } },
        )
        .await
        .unwrap();
    let report = migrator.apply_all().await.unwrap();
    assert!(
        matches!(&report.warnings[..], [Warning::ChecksumChanged { id, .. }] if id.as_str() == "0007"),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn baseline_to_an_id_nobody_registered_is_refused() {
    let t = TestDb::new("baseline99").await;
    let err = Migrator::new(t.db.clone())
        .group("branches")
        .baseline(&"0099".parse().unwrap())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::NotApplicable { id, .. } if id == "0099"),
        "{message}"
    );
    assert!(
        message.contains("no registered migration has this id"),
        "{message}"
    );
    assert!(
        documents(&t.db, "schema_versions").await.is_empty(),
        "nothing recorded"
    );
}

#[tokio::test]
async fn absurd_values_in_records_never_panic() {
    let t = TestDb::new("absurd").await;
    t.db.collection::<Document>("schema_versions")
        .insert_many([
            // Failed with an attempt count at the end of the range: retried, saturating.
            doc! { "_id": "0007", "description": "Index ticket tags", "state": "failed",
            "attempts": i64::MAX, "fence": Bson::Double(f64::NAN),
            "duration_ms": Bson::Double(f64::INFINITY), "pid": "x", "host": 7,
            "started_at": "yesterday", "last_error": 5 },
            // Records this binary does not know, with every field odd.
            doc! { "_id": "0099_weird", "attempts": -5_i64, "fence": i64::MIN, "applied_at": "x" },
            doc! { "_id": { "nested": 1 }, "state": "applied" },
        ])
        .await
        .unwrap();
    let migrator = Migrator::new(t.db.clone())
        .group("branches")
        .allow_out_of_order(true);
    let status = migrator.status().await;
    assert!(status.reachable, "{status:?}");
    migrator.plan().await.unwrap();
    migrator.verify().await.unwrap();
    let report = migrator.apply_all().await.unwrap_or_else(|e| panic!("{e}"));
    let applied: Vec<(&str, i64)> = report
        .applied
        .iter()
        .map(|a| (a.id.as_str(), a.attempt))
        .collect();
    assert_eq!(applied, [("0007", i64::MAX), ("0008", 1)]);
    let r = record(&t.db, "0007").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied");
    assert_eq!(r.get_i64("attempts").unwrap(), i64::MAX);
}
