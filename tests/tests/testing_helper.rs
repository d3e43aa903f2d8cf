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
