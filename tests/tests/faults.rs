//! Faults injected with the server's `failCommand` fail point, aimed at one client by its
//! `appName`: a failed applied-set read, a failed record write, failing lock renewals. Nothing is
//! wrongly marked applied, the error names what failed, and the next start recovers.

use std::time::Duration;

use bson::{Bson, doc};
use schema_runtime::{Error, MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::{
    TestDb, bump, client_named, count, documents, fail_commands, fail_commands_off, flag, record,
    set_flag,
};

#[tokio::test]
async fn a_failed_read_of_the_applied_set_runs_nothing_and_the_next_start_recovers() {
    let _turn = schema_tests::fail_point_turn().await;
    let app = "fault-read";
    let client = client_named(app).await;
    let t = TestDb::with_client(&client, "faultread").await;
    fail_commands(&client, app, &["find"], doc! { "times": 1 }.into()).await;

    let err = Migrator::new(t.db.clone())
        .group("fault_read")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Database { .. }), "{message}");
    assert!(
        message.contains("reading the applied migrations from schema_versions"),
        "{message}"
    );
    assert!(documents(&t.db, "schema_versions").await.is_empty());
    assert_eq!(count(&t.db, "fault_read").await, 0);

    let report = Migrator::new(t.db.clone())
        .group("fault_read")
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(count(&t.db, "fault_read").await, 1);
}

#[migration(id = "0001", description = "Read fault", group = "fault_read")]
async fn fault_read(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "fault_read").await?;
    Ok(())
}

// Arms a fault on the next `update` of this client (the write of its own "applied" record) when
// the control flag is set, then succeeds.
#[migration(id = "0001", description = "Record fault", group = "fault_record")]
async fn fault_record(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "fault_record").await?;
    if flag(ctx.database(), "arm").await {
        fail_commands(
            ctx.database().client(),
            "fault-record",
            &["update"],
            doc! { "times": 1 }.into(),
        )
        .await;
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_record_write_is_not_marked_applied_and_the_next_start_recovers() {
    let _turn = schema_tests::fail_point_turn().await;
    let client = client_named("fault-record").await;
    let t = TestDb::with_client(&client, "faultrecord").await;
    set_flag(&t.db, "arm", true).await;

    let err = Migrator::new(t.db.clone())
        .group("fault_record")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::Database { migration: Some(id), .. } if id == "0001"),
        "{message}"
    );
    assert!(
        message.contains("recording it as applied") && message.contains("(migration 0001)"),
        "{message}"
    );
    // Not applied, and the failure of the record write is itself recorded.
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "failed", "not applied: {r:?}");
    assert!(
        r.get_str("last_error")
            .unwrap()
            .contains("recording it as applied"),
        "{r:?}"
    );

    set_flag(&t.db, "arm", false).await;
    let report = Migrator::new(t.db.clone())
        .group("fault_record")
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].attempt, 2);
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied");
    assert_eq!(r.get_i64("attempts").unwrap(), 2);
    // The function ran twice: a record write that fails after the function succeeded means
    // at-least-once for that function, which is why the helpers are idempotent.
    assert_eq!(count(&t.db, "fault_record").await, 2);
}

// Arms a fault on every `findAndModify` of this client (the lock renewals) when the control flag
// is set, then works for longer than the lease.
#[migration(id = "0001", description = "Renewal fault", group = "fault_renew")]
async fn fault_renew(ctx: &mut MigrationContext) -> MigrationResult {
    if flag(ctx.database(), "arm").await {
        fail_commands(
            ctx.database().client(),
            "fault-renew",
            &["findAndModify"],
            Bson::from("alwaysOn"),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    bump(ctx.database(), "fault_renew").await?;
    Ok(())
}

#[tokio::test]
async fn failing_lock_renewals_stop_the_migration_before_the_lease_can_expire() {
    let _turn = schema_tests::fail_point_turn().await;
    let client = client_named("fault-renew").await;
    let t = TestDb::with_client(&client, "faultrenew").await;
    set_flag(&t.db, "arm", true).await;
    let migrator = Migrator::new(t.db.clone())
        .group("fault_renew")
        .lease(Duration::from_millis(900));

    let started = std::time::Instant::now();
    let err = migrator.apply_all().await.unwrap_err();
    fail_commands_off(&client).await;
    let message = err.to_string();
    assert!(
        matches!(&err, Error::LockLost { migration: Some(id), .. } if id == "0001"),
        "{message}"
    );
    assert!(message.contains("renewing the lock failed"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped before the migration's 5 s: {:?}",
        started.elapsed()
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "failed");
    assert!(
        r.get_str("last_error")
            .unwrap()
            .starts_with("interrupted: renewing the lock failed"),
        "{r:?}"
    );
    assert_eq!(
        count(&t.db, "fault_renew").await,
        0,
        "stopped before its work"
    );

    set_flag(&t.db, "arm", false).await;
    let report = migrator.apply_all().await.unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(
        record(&t.db, "0001")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "applied"
    );
    assert_eq!(count(&t.db, "fault_renew").await, 1);
}
