//! `schema_runtime::testing`, as an application tests its own data migration: documents in the
//! old shape, apply the migration, assert the new shape; the database is gone afterwards.

use bson::{Document, doc};
use schema_runtime::testing::TestDatabase;
use schema_runtime::{MigrationContext, MigrationResult, migration};
use schema_tests::client;

#[migration(
    id = "0001",
    description = "Create the users collection",
    group = "testing_helper"
)]
async fn create_users(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.database().create_collection("users").await?;
    Ok(())
}

#[migration(
    id = "0002",
    description = "Split full names",
    group = "testing_helper"
)]
async fn split_names(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.batches("users")
        .filter(doc! { "full_name": { "$exists": true } })
        .update_each(|user| {
            let (first, last) = user.get_str("full_name").ok()?.split_once(' ')?;
            Some(doc! { "$set": { "first": first, "last": last }, "$unset": { "full_name": "" } })
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_data_migration_tested_from_the_old_shape_to_the_new() {
    let db = TestDatabase::labelled("helper")
        .await
        .group("testing_helper");
    let name = db.name().to_owned();
    let first = db.apply_up_to("0001").await.unwrap();
    assert_eq!(first.applied.len(), 1);
    let users = db.database().collection::<Document>("users");
    users
        .insert_many([
            doc! { "_id": 1, "full_name": "Ada Lovelace" },
            doc! { "_id": 2, "first": "Alan", "last": "Turing" },
        ])
        .await
        .unwrap();

    let report = db.apply_up_to("2").await.unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].id, *"0002");
    let ada = users.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(ada, doc! { "_id": 1, "first": "Ada", "last": "Lovelace" });
    assert_eq!(
        users.find_one(doc! { "_id": 2 }).await.unwrap().unwrap(),
        doc! { "_id": 2, "first": "Alan", "last": "Turing" }
    );

    let err = db.apply_up_to("0003").await.unwrap_err().to_string();
    assert!(err.contains("no registered migration has this id"), "{err}");
    let err = db.apply_up_to("three").await.unwrap_err().to_string();
    assert!(err.contains("is not a migration id"), "{err}");

    let client = client().await;
    assert!(client.list_database_names().await.unwrap().contains(&name));
    drop(db);
    assert!(
        !client.list_database_names().await.unwrap().contains(&name),
        "the database is dropped with the value"
    );
}

#[schema_runtime::test(up_to = "0001", group = "testing_helper")]
async fn the_attribute_gives_the_test_a_database_with_migrations_up_to_an_id(db: TestDatabase) {
    assert!(
        db.name().starts_with("t_the_attribute_gives_the_test"),
        "{}",
        db.name()
    );
    let records = schema_tests::documents(db.database(), "schema_versions").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].get_str("_id"), Ok("0001"));
    db.database()
        .collection::<Document>("users")
        .insert_one(doc! { "_id": 7, "full_name": "Grace Hopper" })
        .await
        .unwrap();
    db.apply_up_to("0002").await.unwrap();
    let grace = db
        .database()
        .collection::<Document>("users")
        .find_one(doc! { "_id": 7 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grace, doc! { "_id": 7, "first": "Grace", "last": "Hopper" });
}

#[schema_runtime::test(group = "testing_helper")]
async fn the_attribute_with_no_migrations_applied_and_a_result(
    db: TestDatabase,
) -> Result<(), Box<dyn std::error::Error>> {
    assert!(db.database().list_collection_names().await?.is_empty());
    Ok(())
}
