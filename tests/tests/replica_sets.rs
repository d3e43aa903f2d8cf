//! What a real replica set does that the local server cannot show on its own: majority writes
//! that cannot reach majority (made to fail as MongoDB fails them, with `failCommand`'s
//! `writeConcernError`), and a read preference in the application's URI that must not move the
//! library's own reads off the primary.

use std::time::{Duration, Instant};

use bson::{Document, doc};
use mongodb::options::{ReadPreference, ReadPreferenceOptions, SelectionCriteria};
use schema_runtime::{ErrorClass, MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::{
    TestDb, bump, client_named, count, counting_client_with, documents, fail_commands_off,
    fail_point_turn,
};

#[migration(id = "0001", description = "Count a run", group = "rs_majority")]
async fn count_a_run(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "rs_majority").await?;
    Ok(())
}

/// A primary-secondary-arbiter set with its secondary down answers every majority write with a
/// write concern error once `wtimeout` is up (code 64 WriteConcernFailed). Start-up must fail
/// within its bound, saying what happened and what to do, and record nothing as applied.
#[tokio::test]
async fn a_replica_set_that_cannot_reach_majority_fails_start_up_within_its_bound() {
    let _turn = fail_point_turn().await;
    let app = "rs-no-majority";
    let client = client_named(app).await;
    let t = TestDb::with_client(&client, "rs_majority").await;
    let admin = schema_tests::client().await;
    admin
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": {
                "failCommands": ["findAndModify", "update", "insert"],
                "appName": app,
                "writeConcernError": {
                    "code": 64,
                    "codeName": "WriteConcernFailed",
                    "errmsg": "waiting for replication timed out",
                    "errInfo": { "wtimeout": true },
                },
            },
        })
        .await
        .unwrap();
    let started = Instant::now();
    let result = Migrator::new(t.db.clone())
        .group("rs_majority")
        .majority_timeout(Duration::from_millis(500))
        .apply_all()
        .await;
    fail_commands_off(&admin).await;
    let elapsed = started.elapsed();
    let err = result.unwrap_err();
    let message = err.to_string();
    assert_eq!(err.class(), Some(ErrorClass::NoMajority), "{message}");
    assert!(message.contains("WriteConcernFailed"), "{message}");
    assert!(
        message.contains("did not confirm the write in time"),
        "{message}"
    );
    assert!(
        message.contains("SCHEMA_MAJORITY_TIMEOUT_SECS"),
        "{message}"
    );
    println!("failed in {elapsed:?}: {message}");
    assert!(elapsed < Duration::from_secs(10), "bounded: {elapsed:?}");
    // Nothing is recorded as applied (the migration may or may not have run before its record
    // was refused: then it runs again at the next start-up, as after any failure).
    let applied: Vec<Document> = documents(&t.db, "schema_versions")
        .await
        .into_iter()
        .filter(|r| r.get_str("state") == Ok("applied"))
        .collect();
    assert!(applied.is_empty(), "{applied:?}");

    // Once the set has its majority back, the next start-up applies it at once: the lease the
    // refused acquisition may have taken on the primary was let go.
    let again = Instant::now();
    let report = Migrator::new(t.db.clone())
        .group("rs_majority")
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
    assert!(
        again.elapsed() < Duration::from_secs(5),
        "{:?}",
        again.elapsed()
    );
    assert!(count(&t.db, "rs_majority").await >= 1);
}

/// Every majority write of the library carries a `wtimeout`, and every read of its records a
/// `maxTimeMS`.
#[tokio::test]
async fn every_majority_write_of_the_library_is_bounded() {
    let (client, log) = counting_client_with(|_| {}).await;
    let t = TestDb::with_client(&client, "rs_wtimeout").await;
    log.reset();
    Migrator::new(t.db.clone())
        .group("rs_majority")
        .majority_timeout(Duration::from_secs(7))
        .apply_all()
        .await
        .unwrap();
    let writes: Vec<Document> = log
        .commands()
        .into_iter()
        .filter(|c| c.get_document("writeConcern").is_ok())
        .collect();
    assert!(!writes.is_empty());
    for command in &writes {
        let concern = command.get_document("writeConcern").unwrap();
        if concern.get_str("w") == Ok("majority") {
            assert_eq!(
                schema_tests::number(concern.get("wtimeout")),
                Some(7000),
                "{command}"
            );
        }
    }
    let majority = writes
        .iter()
        .filter(|c| c.get_document("writeConcern").unwrap().get_str("w") == Ok("majority"))
        .count();
    assert!(majority >= 2, "the lock and the records: {writes:?}");
    // And every read of them carries a time limit on the server.
    let reads: Vec<Document> = log
        .commands()
        .into_iter()
        .filter(|c| {
            c.iter().next().is_some_and(|(name, target)| {
                matches!(name.as_str(), "find" | "aggregate")
                    && target
                        .as_str()
                        .is_some_and(|t| t.starts_with("schema_versions"))
            })
        })
        .collect();
    assert!(!reads.is_empty());
    for read in &reads {
        assert_eq!(
            schema_tests::number(read.get("maxTimeMS")),
            Some(7000),
            "{read}"
        );
    }
}

/// An application whose URI reads from secondaries (`readPreference=secondaryPreferred`): the
/// library's reads of its records and lock still go to the primary.
#[tokio::test]
async fn the_librarys_own_reads_go_to_the_primary_whatever_the_uri_says() {
    let (client, log) = counting_client_with(|options| {
        options.selection_criteria = Some(SelectionCriteria::ReadPreference(
            ReadPreference::SecondaryPreferred {
                options: Some(ReadPreferenceOptions::default()),
            },
        ));
    })
    .await;
    let t = TestDb::with_client(&client, "rs_readpref").await;
    log.reset();
    let migrator = Migrator::new(t.db.clone()).group("rs_majority");
    migrator.apply_all().await.unwrap();
    migrator.apply_all().await.unwrap();
    assert!(migrator.status().await.error.is_none());
    let ours: Vec<Document> = log
        .commands()
        .into_iter()
        .filter(|c| {
            c.iter().next().is_some_and(|(_, target)| {
                target
                    .as_str()
                    .is_some_and(|name| name.starts_with("schema_versions"))
            })
        })
        .collect();
    assert!(ours.len() >= 3, "{ours:?}");
    for command in &ours {
        // A direct connection to one server sends primaryPreferred for primary (the server
        // selection spec): what matters is that the application's mode is not what is sent.
        let mode = command
            .get_document("$readPreference")
            .ok()
            .and_then(|p| p.get_str("mode").ok());
        assert_ne!(mode, Some("secondaryPreferred"), "{command}");
    }
    // The application's own reads keep its preference (a standalone gets none on the wire:
    // read preferences mean nothing there, and drivers send none).
    if schema_tests::deployment_is_standalone().await {
        return;
    }
    log.reset();
    t.db.collection::<Document>("counters")
        .find_one(doc! {})
        .await
        .unwrap();
    let mode = log.commands()[0]
        .get_document("$readPreference")
        .ok()
        .and_then(|p| p.get_str("mode").ok().map(str::to_owned));
    assert_eq!(mode.as_deref(), Some("secondaryPreferred"));
}

/// An election in the middle of an index build: the primary steps down and answers 189
/// PrimarySteppedDown (`failCommand`, once). The driver does not retry `run_command`; the
/// helper sends the build once more to the new primary, and the index is there.
#[tokio::test]
async fn an_index_build_interrupted_by_an_election_is_sent_once_more() {
    let _turn = fail_point_turn().await;
    let app = "rs-stepdown";
    let client = client_named(app).await;
    let t = TestDb::with_client(&client, "rs_stepdown").await;
    let admin = schema_tests::client().await;
    admin
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["createIndexes"], "errorCode": 189, "appName": app },
        })
        .await
        .unwrap();
    let result = schema_runtime::ensure_indexes(
        &t.db,
        "things",
        &[schema_runtime::IndexSpec::new("idx_a", doc! { "a": 1 })],
    )
    .await;
    fail_commands_off(&admin).await;
    let report = result.unwrap();
    assert_eq!(report.created, ["idx_a"]);
    let listed = schema_runtime::list_indexes(&t.db, "things", None)
        .await
        .unwrap();
    assert!(
        listed.iter().any(|i| i.get_str("name") == Ok("idx_a")),
        "{listed:?}"
    );
}
