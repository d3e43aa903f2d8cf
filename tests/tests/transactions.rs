//! Migrations that run in a transaction: their writes and their record land together or not at
//! all; the deployment is asked (`hello`) before anything runs.

use bson::{Document, doc};
use schema_runtime::{Deployment, Error, MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::{LocalServer, TestDb, documents, flag, record, set_flag};

#[migration(
    id = "0001",
    description = "Seed plans in a transaction",
    group = "txn",
    transaction
)]
async fn seed_plans(ctx: &mut MigrationContext) -> MigrationResult {
    let fail = flag(ctx.database(), "fail").await;
    let plans = ctx.collection::<Document>("plans");
    let session = ctx
        .session()
        .expect("a transactional migration has a session");
    plans
        .insert_many([doc! { "_id": "free" }, doc! { "_id": "pro" }])
        .session(&mut *session)
        .await?;
    if fail {
        return Err("the price list is incomplete".into());
    }
    Ok(())
}

#[tokio::test]
async fn a_failing_transactional_migration_leaves_no_documents_and_is_not_recorded_applied() {
    if !schema_tests::needs_replica_set(
        "a_failing_transactional_migration_leaves_no_documents_and_is_not_recorded_applied",
    )
    .await
    {
        return;
    }
    let t = TestDb::new("txn").await;
    assert!(
        Deployment::detect(&t.db)
            .await
            .unwrap()
            .supports_transactions(),
        "the test server runs as a replica set"
    );
    set_flag(&t.db, "fail", true).await;

    let err = Migrator::new(t.db.clone())
        .group("txn")
        .apply_all()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MigrationFailed { id, .. } if id == "0001"),
        "{err}"
    );
    assert!(
        documents(&t.db, "plans").await.is_empty(),
        "the transaction's writes were rolled back"
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(
        r.get_str("state").unwrap(),
        "failed",
        "recorded as failed, never applied"
    );
    assert_eq!(
        r.get_str("last_error").unwrap(),
        "the price list is incomplete"
    );

    set_flag(&t.db, "fail", false).await;
    let report = Migrator::new(t.db.clone())
        .group("txn")
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(
        documents(&t.db, "plans").await,
        vec![doc! { "_id": "free" }, doc! { "_id": "pro" }]
    );
    assert_eq!(
        record(&t.db, "0001")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "applied"
    );
}

#[test]
fn hello_tells_the_deployment() {
    assert_eq!(
        Deployment::from_hello(&doc! { "isWritablePrimary": true, "maxWireVersion": 21 }),
        Deployment::Standalone
    );
    assert_eq!(
        Deployment::from_hello(&doc! { "isWritablePrimary": true, "setName": "rs0" }),
        Deployment::ReplicaSet
    );
    assert_eq!(
        Deployment::from_hello(&doc! { "isWritablePrimary": true, "msg": "isdbgrid" }),
        Deployment::Sharded
    );
    assert!(!Deployment::Standalone.supports_transactions());
}

#[tokio::test]
async fn on_a_standalone_server_a_transactional_migration_is_refused_before_it_starts() {
    // A second local server started with --standalone: its `hello` has no setName. (It would
    // accept the transaction anyway, which is why the refusal must come from `hello`.)
    let server = LocalServer::start(&["--standalone"]);
    let client = server.client().await;
    let db = client.database("standalone_txn");
    assert_eq!(
        Deployment::detect(&db).await.unwrap(),
        Deployment::Standalone
    );

    let err = Migrator::new(db.clone())
        .group("txn")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::TransactionsUnsupported { id, .. } if id == "0001"),
        "{message}"
    );
    assert!(message.contains("standalone"), "{message}");
    assert!(documents(&db, "plans").await.is_empty());
    assert!(
        documents(&db, "schema_versions").await.is_empty(),
        "nothing started"
    );
    assert!(
        documents(&db, "schema_versions_lock").await.is_empty(),
        "refused before the lock was taken"
    );
    assert_eq!(
        schema_tests::conformance::take_violations("standalone_txn"),
        None,
        "no command a standalone refuses was sent"
    );
}

// Writes, works for longer than several lease renewals, writes again: the renewals must not
// conflict with the transaction.
#[migration(
    id = "0001",
    description = "A long transaction",
    group = "txn_long",
    transaction
)]
async fn long_transaction(ctx: &mut MigrationContext) -> MigrationResult {
    let items = ctx.collection::<Document>("items");
    let session = ctx.session().expect("a session");
    items
        .insert_one(doc! { "_id": 1 })
        .session(&mut *session)
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    items
        .insert_one(doc! { "_id": 2 })
        .session(&mut *session)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_transaction_spanning_several_lease_renewals_succeeds() {
    if !schema_tests::needs_replica_set("a_transaction_spanning_several_lease_renewals_succeeds")
        .await
    {
        return;
    }
    let t = TestDb::new("txnlong").await;
    // A 600 ms lease is renewed every 200 ms: about seven renewals land inside the transaction.
    let report = Migrator::new(t.db.clone())
        .group("txn_long")
        .lease(std::time::Duration::from_millis(600))
        .apply_all()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].attempt, 1);
    assert_eq!(
        documents(&t.db, "items").await,
        vec![doc! { "_id": 1 }, doc! { "_id": 2 }]
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied");
    assert_eq!(r.get_i64("attempts").unwrap(), 1);
}

// Inserts two plans in its transaction. The test arms fail points on this client beforehand.
#[migration(
    id = "0001",
    description = "Seed plans, retried",
    group = "txn_retry",
    transaction
)]
async fn seed_plans_retried(ctx: &mut MigrationContext) -> MigrationResult {
    schema_tests::bump(ctx.database(), "txn_retry_runs").await?;
    let plans = ctx.collection::<Document>("plans");
    let session = ctx.session().expect("a session");
    plans
        .insert_many([doc! { "_id": "free" }, doc! { "_id": "pro" }])
        .session(&mut *session)
        .await?;
    Ok(())
}

async fn arm(client: &mongodb::Client, data: Document, times: i32) {
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": times },
            "data": data,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_transient_transaction_error_runs_the_transaction_again_within_one_attempt() {
    if !schema_tests::needs_replica_set(
        "a_transient_transaction_error_runs_the_transaction_again_within_one_attempt",
    )
    .await
    {
        return;
    }
    let _turn = schema_tests::fail_point_turn().await;
    let app = "txn-transient";
    let client = schema_tests::client_named(app).await;
    let t = TestDb::with_client(&client, "txntransient").await;
    // The first insert in the transaction meets a write conflict, as with a concurrent writer.
    arm(
        &client,
        doc! { "failCommands": ["insert"], "errorCode": 112,
        "errorLabels": ["TransientTransactionError"], "appName": app },
        1,
    )
    .await;
    let report = Migrator::new(t.db.clone())
        .group("txn_retry")
        .apply_all()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    schema_tests::fail_commands_off(&client).await;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].attempt, 1, "one start, one attempt");
    assert_eq!(
        schema_tests::count(&t.db, "txn_retry_runs").await,
        2,
        "the function ran twice"
    );
    assert_eq!(
        documents(&t.db, "plans").await,
        vec![doc! { "_id": "free" }, doc! { "_id": "pro" }],
        "its writes landed once"
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied");
    assert_eq!(r.get_i64("attempts").unwrap(), 1);
}

#[tokio::test]
async fn an_unknown_commit_result_is_committed_again() {
    if !schema_tests::needs_replica_set("an_unknown_commit_result_is_committed_again").await {
        return;
    }
    let _turn = schema_tests::fail_point_turn().await;
    let app = "txn-unknown-commit";
    let client = schema_tests::client_named(app).await;
    let t = TestDb::with_client(&client, "txnunknown").await;
    // ShutdownInProgress on commit, twice: the driver retries once, then reports the commit's
    // outcome as unknown (UnknownTransactionCommitResult); the migrator commits again.
    arm(
        &client,
        doc! { "failCommands": ["commitTransaction"], "errorCode": 91, "appName": app },
        2,
    )
    .await;
    let report = Migrator::new(t.db.clone())
        .group("txn_retry")
        .apply_all()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    schema_tests::fail_commands_off(&client).await;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(schema_tests::count(&t.db, "txn_retry_runs").await, 1);
    assert_eq!(
        documents(&t.db, "plans").await,
        vec![doc! { "_id": "free" }, doc! { "_id": "pro" }]
    );
    assert_eq!(
        record(&t.db, "0001")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "applied"
    );
}

// Calls batches inside its transaction.
#[migration(
    id = "0001",
    description = "Batches in a transaction",
    group = "txn_batches",
    transaction
)]
async fn batches_in_a_transaction(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.batches("items")
        .update_each(|_| Some(doc! { "$set": { "n": 1 } }))
        .await?;
    Ok(())
}

#[tokio::test]
async fn batches_inside_a_transactional_migration_are_refused_clearly() {
    if !schema_tests::needs_replica_set(
        "batches_inside_a_transactional_migration_are_refused_clearly",
    )
    .await
    {
        return;
    }
    let t = TestDb::new("txnbatches").await;
    t.db.collection::<Document>("items")
        .insert_one(doc! { "_id": 1, "n": 0 })
        .await
        .unwrap();
    let err = Migrator::new(t.db.clone())
        .group("txn_batches")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("runs in a transaction, and batches commit each batch"),
        "{message}"
    );
    assert_eq!(
        documents(&t.db, "items").await,
        vec![doc! { "_id": 1, "n": 0 }],
        "nothing written"
    );
    assert_eq!(
        record(&t.db, "0001")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "failed"
    );
}

// Writes in its transaction, then asks for an index on the collection it wrote.
#[migration(
    id = "0001",
    description = "Seed and index in a transaction",
    group = "txn_ddl",
    transaction
)]
async fn index_in_a_transaction(ctx: &mut MigrationContext) -> MigrationResult {
    let plans = ctx.collection::<Document>("plans");
    let session = ctx.session().expect("a session");
    plans
        .insert_one(doc! { "_id": "free" })
        .session(&mut *session)
        .await?;
    ctx.ensure_indexes(
        "plans",
        &[schema_runtime::IndexSpec::new(
            "idx_name",
            doc! { "name": 1 },
        )],
    )
    .await?;
    Ok(())
}

/// On a real mongod an index build on a collection the transaction wrote waits for the
/// transaction's locks until the server aborts it (60 s): the helper is refused at once instead,
/// naming the migration and what to do, and nothing lands.
#[tokio::test]
async fn an_index_change_inside_a_transactional_migration_is_refused_at_once() {
    if !schema_tests::needs_replica_set(
        "an_index_change_inside_a_transactional_migration_is_refused_at_once",
    )
    .await
    {
        return;
    }
    let t = TestDb::new("txnddl").await;
    let started = std::time::Instant::now();
    let err = Migrator::new(t.db.clone())
        .group("txn_ddl")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{message}"
    );
    assert!(message.contains("0001"), "{message}");
    assert!(message.contains("ensure_indexes"), "{message}");
    assert!(message.contains("migration of its own"), "{message}");
    assert!(
        documents(&t.db, "plans").await.is_empty(),
        "the seed was rolled back"
    );
    let indexes = schema_runtime::list_indexes(&t.db, "plans", None)
        .await
        .unwrap_or_default();
    assert!(
        !indexes.iter().any(|i| i.get_str("name") == Ok("idx_name")),
        "{indexes:?}"
    );
    assert_eq!(
        record(&t.db, "0001")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "failed"
    );
}

#[migration(
    id = "0001",
    description = "Seed plans and features together",
    group = "txn_parts",
    transaction
)]
async fn seed_plans_and_features(ctx: &mut MigrationContext) -> MigrationResult {
    let fail = flag(ctx.database(), "fail").await;
    // The database and the session together: collections are fetched while the session is
    // borrowed (with `ctx.session()` this is E0502).
    let (db, session) = ctx.transaction()?;
    db.collection::<Document>("plans")
        .insert_one(doc! { "_id": "free" })
        .session(&mut *session)
        .await?;
    db.collection::<Document>("features")
        .insert_one(doc! { "_id": "sso", "plans": ["team"] })
        .session(&mut *session)
        .await?;
    if fail {
        return Err("the feature list is incomplete".into());
    }
    Ok(())
}

#[migration(
    id = "0001",
    description = "Asks for a session it has not got",
    group = "txn_parts_none"
)]
async fn asks_for_a_session(ctx: &mut MigrationContext) -> MigrationResult {
    let (db, session) = ctx.transaction()?;
    db.collection::<Document>("plans")
        .insert_one(doc! { "_id": "never" })
        .session(&mut *session)
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_database_and_the_session_are_used_together_and_commit_together() {
    if !schema_tests::needs_replica_set(
        "the_database_and_the_session_are_used_together_and_commit_together",
    )
    .await
    {
        return;
    }
    let t = TestDb::new("txn_parts").await;
    set_flag(&t.db, "fail", true).await;
    let migrator = Migrator::new(t.db.clone()).group("txn_parts");
    migrator.apply_all().await.unwrap_err();
    assert!(documents(&t.db, "plans").await.is_empty());
    assert!(documents(&t.db, "features").await.is_empty());

    set_flag(&t.db, "fail", false).await;
    migrator.apply_all().await.unwrap();
    assert_eq!(
        documents(&t.db, "plans").await,
        vec![doc! { "_id": "free" }]
    );
    assert_eq!(
        documents(&t.db, "features").await,
        vec![doc! { "_id": "sso", "plans": ["team"] }]
    );
}

#[tokio::test]
async fn asking_for_the_transaction_outside_one_names_the_migration_and_writes_nothing() {
    let t = TestDb::new("txn_parts_none").await;
    let err = Migrator::new(t.db.clone())
        .group("txn_parts_none")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::MigrationFailed { id, .. } if id == "0001"),
        "{message}"
    );
    assert!(
        message.contains("migration 0001 asked for its transaction's session")
            && message.contains("`#[migration(..., transaction)]`"),
        "{message}"
    );
    assert!(documents(&t.db, "plans").await.is_empty());
    assert_eq!(
        record(&t.db, "0001")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "failed"
    );
}
