//! The lock's own state never bricks start-up: a deleted, dropped, restored or corrupted lock
//! document; `unlock --force` over a live holder; renewals that hang; migrations that hang.

use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use schema_runtime::{Error, MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::{
    TestDb, bump, client_named, count, documents, fail_commands_off, flag, record, set_flag,
};

#[migration(id = "0001", description = "Count a start", group = "lockstate")]
async fn count_a_start(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "lockstate").await?;
    Ok(())
}

fn lock_collection(t: &TestDb) -> mongodb::Collection<Document> {
    t.db.collection("schema_versions_lock")
}

async fn lock_document(t: &TestDb) -> Document {
    lock_collection(t)
        .find_one(doc! { "_id": "migrations" })
        .await
        .unwrap()
        .expect("a lock document")
}

/// A record left by an earlier holder with fence 50: its migration failed and is pending again.
async fn failed_record_with_fence_50(t: &TestDb) {
    t.db.collection::<Document>("schema_versions")
        .insert_one(doc! {
            "_id": "0001", "description": "Count a start", "state": "failed",
            "fence": 50_i64, "attempts": 1_i64, "last_error": "boom",
        })
        .await
        .unwrap();
}

async fn assert_applied_with_fence_above_50(t: &TestDb) {
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied", "{r:?}");
    assert_eq!(r.get_i64("fence").unwrap(), 51, "{r:?}");
    assert_eq!(r.get_i64("attempts").unwrap(), 2, "{r:?}");
    assert_eq!(count(&t.db, "lockstate").await, 1);
    let lock = lock_document(t).await;
    assert_eq!(lock.get_i64("fence").unwrap(), 51, "{lock:?}");
}

#[tokio::test]
async fn a_deleted_lock_document_does_not_restart_the_fence() {
    let t = TestDb::new("lockdeleted").await;
    failed_record_with_fence_50(&t).await;
    // The lock document is gone (deleted, or never restored from a backup).
    assert!(documents(&t.db, "schema_versions_lock").await.is_empty());
    Migrator::new(t.db.clone())
        .group("lockstate")
        .apply_all()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_applied_with_fence_above_50(&t).await;
}

#[tokio::test]
async fn a_lock_restored_from_an_old_backup_does_not_send_the_fence_back() {
    let t = TestDb::new("lockrestored").await;
    failed_record_with_fence_50(&t).await;
    lock_collection(&t)
        .insert_one(doc! { "_id": "migrations", "owner": Bson::Null, "fence": 3_i64 })
        .await
        .unwrap();
    Migrator::new(t.db.clone())
        .group("lockstate")
        .apply_all()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_applied_with_fence_above_50(&t).await;
}

#[tokio::test]
async fn a_dropped_lock_collection_after_a_run_keeps_fences_growing() {
    let t = TestDb::new("lockdropped").await;
    let migrator = Migrator::new(t.db.clone()).group("lockstate");
    migrator.apply_all().await.unwrap();
    assert_eq!(lock_document(&t).await.get_i64("fence").unwrap(), 1);
    lock_collection(&t).drop().await.unwrap();
    // A redo takes the lock again: its fence must be above the record's.
    migrator
        .redo(&"0001".parse().unwrap())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_i64("fence").unwrap(), 2, "{r:?}");
    assert_eq!(count(&t.db, "lockstate").await, 2);
}

#[tokio::test]
async fn a_corrupted_lock_document_is_repaired_by_the_next_start() {
    for (label, corrupt) in [
        (
            "garbage",
            doc! { "_id": "migrations", "expires_at": "soon", "fence": "x", "owner": 7 },
        ),
        (
            "farfuture",
            doc! { "_id": "migrations", "owner": "ghost:1:dead", "fence": 4_i64,
            "expires_at": bson::DateTime::from_millis(32_503_680_000_000) },
        ),
    ] {
        let t = TestDb::new(&format!("lockcorrupt{label}")).await;
        lock_collection(&t).insert_one(corrupt).await.unwrap();
        let report = Migrator::new(t.db.clone())
            .group("lockstate")
            .max_wait(Duration::from_secs(5))
            .apply_all()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(report.applied.len(), 1, "{label}");
        let lock = lock_document(&t).await;
        let fence = lock.get_i64("fence").unwrap();
        assert!(fence >= 1, "{label}: {lock:?}");
        assert_eq!(lock.get("owner"), Some(&Bson::Null), "{label}: released");
        assert!(lock.get_datetime("expires_at").is_ok(), "{label}: {lock:?}");
        assert_eq!(
            record(&t.db, "0001")
                .await
                .unwrap()
                .get_i64("fence")
                .unwrap(),
            fence
        );
    }
}

#[tokio::test]
async fn unlock_force_repairs_a_corrupted_lock_document() {
    let t = TestDb::new("unlockcorrupt").await;
    t.db.collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "0001", "state": "applied", "fence": 9_i64 })
        .await
        .unwrap();
    lock_collection(&t)
        .insert_one(doc! { "_id": "migrations", "expires_at": "soon", "fence": "x", "owner": 7 })
        .await
        .unwrap();
    let migrator = Migrator::new(t.db.clone()).group("lockstate");
    let (result, out) = schema_tests::run_cli(&migrator, &["unlock", "--force"]).await;
    result.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("repaired the lock document (owner is 7, not a string; fence is \"x\", not a number; expires_at is \"soon\", not a date)"),
        "{out}"
    );
    assert!(out.contains("the fence is now 10"), "{out}");
    let lock = lock_document(&t).await;
    assert_eq!(lock.get_i64("fence").unwrap(), 10, "{lock:?}");
    assert_eq!(lock.get("owner"), Some(&Bson::Null));
    assert!(lock.get_datetime("expires_at").is_ok());
}

// Waits (in its function) until the control flag `go` is set, then counts.
#[migration(id = "0001", description = "Wait for go", group = "lockheld")]
async fn wait_for_go(ctx: &mut MigrationContext) -> MigrationResult {
    started_then_wait_for_go(ctx.database()).await?;
    bump(ctx.database(), "lockheld").await?;
    Ok(())
}

/// Sets the control flag `started`, then waits until `go` is set.
async fn started_then_wait_for_go(db: &mongodb::Database) -> mongodb::error::Result<()> {
    db.collection::<Document>("control")
        .update_one(doc! { "_id": "started" }, doc! { "$set": { "on": true } })
        .upsert(true)
        .await?;
    while !flag(db, "go").await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn wait_flag(db: &mongodb::Database, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !flag(db, name).await {
        assert!(Instant::now() < deadline, "{name} never set");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unlock_force_refuses_a_live_holder_and_with_even_if_alive_fences_it_out() {
    let t = TestDb::new("unlocklive").await;
    let lease = Duration::from_millis(1_500);
    let migrator = Migrator::new(t.db.clone()).group("lockheld").lease(lease);
    let holder = tokio::spawn({
        let migrator = migrator.clone();
        async move { migrator.apply_all().await }
    });
    wait_flag(&t.db, "started").await;

    // The holder renews its lease: unlock refuses, naming it and its last renewal.
    let (result, _) = schema_tests::run_cli(&migrator, &["unlock", "--force"]).await;
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::LockHeldByLiveProcess { .. }),
        "{message}"
    );
    assert!(
        message.contains("last renewed") && message.contains("--even-if-alive"),
        "{message}"
    );
    assert!(
        message.contains(&std::process::id().to_string()),
        "{message}"
    );

    // Insisting bumps the fence: the holder stops at its next renewal, before its work.
    let (result, out) =
        schema_tests::run_cli(&migrator, &["unlock", "--force", "--even-if-alive"]).await;
    result.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("the fence is now 2"), "{out}");
    let stopped = tokio::time::timeout(Duration::from_secs(10), holder)
        .await
        .expect("the old holder stops by itself")
        .unwrap();
    let err = stopped.unwrap_err();
    assert!(
        matches!(&err, Error::LockLost { migration: Some(id), .. } if id == "0001"),
        "{err}"
    );
    assert!(err.to_string().contains("unlock --force"), "{err}");

    // The next start runs it once, as attempt 2, under a fence above the forced one.
    set_flag(&t.db, "go", true).await;
    let report = migrator.apply_all().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.applied.len(), 1);
    assert_eq!(count(&t.db, "lockheld").await, 1, "it ran once, not twice");
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied");
    assert_eq!(r.get_i64("fence").unwrap(), 3, "{r:?}");
    assert_eq!(r.get_i64("attempts").unwrap(), 2, "{r:?}");
}

/// Starts `migrator` in a task, waits until its migration sets `started`, and starts a second
/// run that gives up waiting for the lock after 300 ms: the holder's task and the second run's
/// error message (asserted a `LockTimeout`).
async fn give_up_waiting(
    t: &TestDb,
    migrator: &Migrator,
) -> (
    tokio::task::JoinHandle<schema_runtime::Result<schema_runtime::Report>>,
    String,
) {
    let holder = tokio::spawn({
        let migrator = migrator.clone();
        async move { migrator.apply_all().await }
    });
    wait_flag(&t.db, "started").await;
    let err = migrator
        .clone()
        .max_wait(Duration::from_millis(300))
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::LockTimeout { .. }), "{message}");
    (holder, message)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiter_that_gives_up_names_the_holder_and_its_running_migration() {
    let t = TestDb::new("locktimeout").await;
    let migrator = Migrator::new(t.db.clone()).group("lockheld");
    let (holder, message) = give_up_waiting(&t, &migrator).await;
    assert!(
        message.contains("running migration 0001 (Wait for go) since"),
        "{message}"
    );
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(message.contains("last renewed"), "{message}");
    set_flag(&t.db, "go", true).await;
    holder.await.unwrap().unwrap();
}

// A quick first migration, then one that waits until `go` is set: the second follows the
// first in the same run, so it is announced on the first's record.
#[migration(id = "0001", description = "Count first", group = "lockheld_next")]
async fn count_first(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "lockheld_next").await?;
    Ok(())
}

#[migration(
    id = "0002",
    description = "Wait for go, second",
    group = "lockheld_next"
)]
async fn wait_for_go_second(ctx: &mut MigrationContext) -> MigrationResult {
    started_then_wait_for_go(ctx.database()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiter_that_gives_up_names_an_announced_migration_the_holder_runs() {
    let t = TestDb::new("locktimeoutnext").await;
    // A short lease: the holder's renewals (every 200 ms) change the lock document, which wakes
    // the waiter, so it gives up within the second before 0002's own `running` record is written.
    let migrator = Migrator::new(t.db.clone())
        .group("lockheld_next")
        .lease(Duration::from_millis(600));
    let (holder, message) = give_up_waiting(&t, &migrator).await;
    // Read right after: while only the announcement on 0001 says that 0002 runs.
    let recorded = record(&t.db, "0002").await;
    let first = record(&t.db, "0001").await.expect("0001 recorded");
    assert_eq!(first.get_str("state").unwrap(), "applied", "{first:?}");
    if recorded.is_none() {
        // Named from the announcement, which has no description.
        assert_eq!(first.get_str("next").unwrap(), "0002", "{first:?}");
        assert!(
            message.contains("running migration 0002 since "),
            "{message}"
        );
    } else {
        // A slow machine: the late start came first.
        assert!(
            message.contains("running migration 0002 (Wait for go, second) since "),
            "{message}"
        );
    }
    set_flag(&t.db, "go", true).await;
    let report = holder.await.unwrap().unwrap();
    assert_eq!(report.applied.len(), 2);
    assert_eq!(count(&t.db, "lockheld_next").await, 1);
    let second = record(&t.db, "0002").await.expect("0002 recorded");
    assert_eq!(second.get_str("state").unwrap(), "applied", "{second:?}");
}

// Works for 5 s after arming a fail point that makes its client's lock renewals hang for 10 s.
#[migration(id = "0001", description = "Renewals hang", group = "renew_hang")]
async fn renewals_hang(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.database()
        .client()
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": { "failCommands": ["findAndModify"], "blockConnection": true,
                      "blockTimeMS": 10_000, "appName": "renew-hang" },
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    bump(ctx.database(), "renew_hang").await?;
    Ok(())
}

#[tokio::test]
async fn a_renewal_that_hangs_is_bounded_and_the_migration_stops_within_the_lease() {
    let client = client_named("renew-hang").await;
    let t = TestDb::with_client(&client, "renewhang").await;
    let started = Instant::now();
    let err = Migrator::new(t.db.clone())
        .group("renew_hang")
        .lease(Duration::from_millis(900))
        .apply_all()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    fail_commands_off(&schema_tests::client().await).await;
    let message = err.to_string();
    assert!(
        matches!(&err, Error::LockLost { migration: Some(id), .. } if id == "0001"),
        "{message}"
    );
    assert!(message.contains("no answer within"), "{message}");
    assert!(
        elapsed < Duration::from_secs(3),
        "stopped within about a lease, not after the 10 s hang: {elapsed:?}"
    );
    assert_eq!(
        count(&t.db, "renew_hang").await,
        0,
        "stopped before its work"
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "failed", "{r:?}");
}

#[migration(
    id = "0001",
    description = "Sleeps past its limit",
    group = "timeout",
    timeout = "300ms"
)]
async fn sleeps_past_its_limit(ctx: &mut MigrationContext) -> MigrationResult {
    tokio::time::sleep(Duration::from_secs(3)).await;
    bump(ctx.database(), "timeout").await?;
    Ok(())
}

#[migration(id = "0001", description = "Sleeps", group = "timeout_default")]
async fn sleeps(ctx: &mut MigrationContext) -> MigrationResult {
    tokio::time::sleep(Duration::from_secs(3)).await;
    bump(ctx.database(), "timeout_default").await?;
    Ok(())
}

#[tokio::test]
async fn a_migration_past_its_time_limit_is_stopped_and_recorded() {
    let t = TestDb::new("timeout").await;
    let started = Instant::now();
    let err = Migrator::new(t.db.clone())
        .group("timeout")
        .apply_all()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let message = err.to_string();
    assert!(
        matches!(&err, Error::MigrationTimedOut { id, limit, .. } if id == "0001" && *limit == Duration::from_millis(300)),
        "{message}"
    );
    assert!(message.contains("time limit of 300ms"), "{message}");
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "failed");
    assert!(
        r.get_str("last_error").unwrap().contains("time limit"),
        "{r:?}"
    );
    assert_eq!(count(&t.db, "timeout").await, 0);

    // The Migrator's default limit applies to migrations that set none.
    let err = Migrator::new(t.db.clone())
        .group("timeout_default")
        .migration_timeout(Some(Duration::from_millis(200)))
        .apply_all()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MigrationTimedOut { .. }), "{err}");
}

/// A try of a held lock leaves its document exactly as it was: the acquisition's pipeline keeps
/// a held document whole (a no-op for MongoDB, so no change event wakes the other waiters), and
/// the holder's fence, expiry and owner are untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_try_leaves_the_held_lock_document_unchanged() {
    let t = TestDb::new("lockheldnoop").await;
    let migrator = Migrator::new(t.db.clone()).group("lockheld");
    let holder = tokio::spawn({
        let migrator = migrator.clone();
        async move { migrator.apply_all().await }
    });
    wait_flag(&t.db, "started").await;
    let before = lock_document(&t).await;
    let other = Migrator::new(client_named("lock-noop").await.database(t.name()))
        .group("lockheld")
        .max_wait(Duration::from_millis(200));
    let err = other.apply_all().await.unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    let after = lock_document(&t).await;
    // Renewals come every third of the 30 s lease: none falls in this short wait.
    assert_eq!(before, after, "the held document is kept whole");
    assert!(
        after
            .get_str("owner")
            .unwrap()
            .contains(&std::process::id().to_string())
    );
    set_flag(&t.db, "go", true).await;
    holder.await.unwrap().unwrap();
    let released = lock_document(&t).await;
    assert_eq!(released.get("owner"), Some(&Bson::Null));
    assert_eq!(
        released.get_i64("fence").unwrap(),
        before.get_i64("fence").unwrap()
    );
}
