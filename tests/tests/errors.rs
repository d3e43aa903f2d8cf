//! Errors a person can act on: the server's code, code name and message (never raw bytes), advice
//! that fits the class of the failure, the whole source chain, what was applied before a failure,
//! bounded waits for a server that is down, and a CLI that exits cleanly.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use bson::{Document, doc};
use mongodb::Client;
use schema_runtime::{Error, ErrorClass, MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::{TestDb, client_named, fail_commands_off, record};

#[migration(id = "0001", description = "Seed plans twice", group = "errors_dup")]
async fn seed_plans_twice(ctx: &mut MigrationContext) -> MigrationResult {
    let plans = ctx.collection::<Document>("plans");
    plans.insert_one(doc! { "_id": "free" }).await?;
    plans
        .insert_one(doc! { "_id": "free" })
        .await
        .context("seeding the plans")?;
    Ok(())
}

#[tokio::test]
async fn a_server_error_shows_code_name_and_message_and_keeps_the_whole_chain() {
    let t = TestDb::new("errdup").await;
    let err = Migrator::new(t.db.clone())
        .group("errors_dup")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    let debug = format!("{err:?}");
    for text in [&message, &debug] {
        assert!(text.contains("seeding the plans: code 11000"), "{text}");
        assert!(text.contains("E11000"), "{text}");
        assert!(!text.contains("RawDocumentBuf"), "{text}");
        assert!(!text.contains("WriteError {"), "{text}");
    }
    let last_error = record(&t.db, "0001")
        .await
        .unwrap()
        .get_str("last_error")
        .unwrap()
        .to_owned();
    assert!(
        last_error.starts_with("seeding the plans: code 11000") && last_error.contains("E11000"),
        "{last_error}"
    );
}

// Arms a fault on the next `update` of its own client (the write of its `applied` record), with
// the error code and client name that the control document `fault` gives.
#[migration(id = "0001", description = "Arms a fault", group = "errors_class")]
async fn arms_a_fault(ctx: &mut MigrationContext) -> MigrationResult {
    if let Some(fault) = ctx
        .collection::<Document>("control")
        .find_one(doc! { "_id": "fault" })
        .await?
    {
        ctx.database()
            .client()
            .database("admin")
            .run_command(doc! {
                "configureFailPoint": "failCommand",
                "mode": { "times": 1 },
                "data": { "failCommands": ["update"], "errorCode": fault.get_i32("code")?,
                          "appName": fault.get_str("app")? },
            })
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn advice_fits_the_class_of_the_failure() {
    for (code, class, advice) in [
        (112, ErrorClass::Conflict, "it is safe to retry"),
        (13, ErrorClass::Authorization, "grant the user the roles"),
        (
            2,
            ErrorClass::InvalidInput,
            "refused the request or the data",
        ),
    ] {
        let app = format!("errors-class-{code}");
        let client = client_named(&app).await;
        let t = TestDb::with_client(&client, &format!("errclass{code}")).await;
        t.db.collection::<Document>("control")
            .insert_one(doc! { "_id": "fault", "code": code, "app": &app })
            .await
            .unwrap();
        let err = Migrator::new(t.db.clone())
            .group("errors_class")
            .apply_all()
            .await
            .unwrap_err();
        fail_commands_off(&client).await;
        let message = err.to_string();
        assert_eq!(err.class(), Some(class), "{message}");
        assert!(message.contains(&format!("code {code}")), "{message}");
        assert!(message.contains(advice), "{message}");
        assert!(!message.contains("reachable"), "{message}");
        // Recorded, whatever step failed: the record write failed after the function ran.
        let r = record(&t.db, "0001").await.unwrap();
        assert_eq!(r.get_str("state").unwrap(), "failed", "{r:?}");
        assert!(
            r.get_str("last_error")
                .unwrap()
                .contains(&format!("code {code}")),
            "{r:?}"
        );
    }
}

async fn unreachable_database() -> mongodb::Database {
    // Port 1 refuses connections; the driver's default server selection waits 30 s.
    Client::with_uri_str("mongodb://127.0.0.1:1/?directConnection=true")
        .await
        .unwrap()
        .database("nowhere")
}

/// A start-up cut short by its bound keeps what the try before ran into: the refused
/// connection, not a bare "no answer".
#[tokio::test]
async fn a_start_up_cut_short_by_its_bound_keeps_the_cause() {
    let database = Client::with_uri_str(
        "mongodb://127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=300",
    )
    .await
    .unwrap()
    .database("nowhere");
    let err = Migrator::new(database)
        .group("errors_class")
        .startup_timeout(Duration::from_millis(1_500))
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::TimedOut { .. }), "{message}");
    assert!(message.contains("the try before failed"), "{message}");
    assert!(message.contains("Connection refused"), "{message}");
    // The driver's rendering of its topology is not shown, nor its retry labels (a refused
    // connection is not an overloaded server).
    assert!(!message.contains("Topology:"), "{message}");
    assert!(!message.contains("SystemOverloaded"), "{message}");
    assert!(!message.contains("RetryableError"), "{message}");
}

#[tokio::test]
async fn an_unreachable_server_fails_start_up_within_its_bound_and_status_answers_quickly() {
    assert!(schema_runtime::defaults::STARTUP_TIMEOUT <= Duration::from_secs(30));
    assert!(schema_runtime::defaults::STATUS_TIMEOUT <= Duration::from_secs(2));
    let migrator = Migrator::new(unreachable_database().await)
        .group("errors_class")
        .startup_timeout(Duration::from_millis(1_500));
    let started = Instant::now();
    let err = migrator.apply_all().await.unwrap_err();
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert!(matches!(err, Error::TimedOut { .. }), "{message}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        message.contains("no answer within 1.5s") && message.contains("reachable"),
        "{message}"
    );

    // The default status bound (2 s), not the driver's 30 s.
    let started = Instant::now();
    let status = Migrator::new(unreachable_database().await)
        .group("errors_class")
        .status()
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!status.reachable);
    assert!(
        status
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("no answer within 2s"),
        "{status:?}"
    );
}

const MIGRATE: &str = env!("CARGO_BIN_EXE_migrate");

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_shuts_its_client_down_and_exits_without_a_driver_panic() {
    let t = TestDb::new("cliexit").await;
    let run = |args: &[&str]| {
        Command::new(MIGRATE)
            .args(["--db", t.name()])
            .args(args)
            .output()
            .unwrap()
    };
    for round in 0..15 {
        for args in [&["up"][..], &["down", "--to", "0"][..]] {
            let output = run(args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "round {round} {args:?}: {stderr}");
            assert!(
                !stderr.contains("panicked"),
                "round {round} {args:?}: {stderr}"
            );
        }
    }
    assert!(
        schema_tests::documents(&t.db, "schema_versions")
            .await
            .is_empty()
    );
}

// Sets `n` to a string, which the collection's validator refuses.
#[migration(id = "0001", description = "Break the numbers", group = "errors_batch")]
async fn break_the_numbers(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.batches("strict")
        .update_each(|_| Some(doc! { "$set": { "n": "not a number" } }))
        .await?;
    Ok(())
}

#[tokio::test]
async fn refused_batch_writes_name_the_migration_the_collection_and_the_first_refusal() {
    let t = TestDb::new("errbatch").await;
    t.db.create_collection("strict")
        .validator(doc! { "n": { "$type": "int" } })
        .await
        .unwrap();
    t.db.collection::<Document>("strict")
        .insert_many([doc! { "_id": 1, "n": 1 }, doc! { "_id": 2, "n": 2 }])
        .await
        .unwrap();
    let err = Migrator::new(t.db.clone())
        .group("errors_batch")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("migration 0001 (Break the numbers) failed on attempt 1: migration 0001: the server refused 1 update(s) of a batch over \"strict\", the first: code 121"),
        "{message}"
    );
    assert_eq!(
        schema_tests::documents(&t.db, "strict").await,
        vec![doc! { "_id": 1, "n": 1 }, doc! { "_id": 2, "n": 2 }],
        "nothing written"
    );
}
