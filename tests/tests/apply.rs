//! `Migrator::apply_all` against the real server: records, failures and retries, panics,
//! out-of-order ids, unknown records, changed checksums, and the reference system's documents.

use bson::{Bson, doc};
use schema_runtime::{
    ChecksumPolicy, ChecksumStatus, EntryState, Error, IndexSpec, MigrationContext,
    MigrationResult, Migrator, RecordState, Registry, Warning, migration,
};
use schema_tests::{TestDb, bump, count, documents, flag, record, set_flag};

// --- group "basic": three migrations that succeed -------------------------------------------

#[migration(
    id = "0001",
    description = "Seed the settings document",
    group = "basic"
)]
async fn basic_seed(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.collection::<bson::Document>("settings")
        .insert_one(doc! { "_id": "global", "theme": "dark" })
        .await?;
    bump(ctx.database(), "basic_seed").await?;
    Ok(())
}

#[migration(id = "0002", description = "Index the settings", group = "basic")]
async fn basic_index(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "settings",
        &[IndexSpec::new("idx_theme", doc! { "theme": 1 })],
    )
    .await?;
    bump(ctx.database(), "basic_index").await?;
    Ok(())
}

#[migration(id = "10", description = "Third, numbered ten", group = "basic")]
async fn basic_ten(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "basic_ten").await?;
    Ok(())
}

#[tokio::test]
async fn applies_in_order_records_everything_and_then_does_nothing() {
    let t = TestDb::new("basic").await;
    let migrator = Migrator::new(t.db.clone()).group("basic");

    let report = migrator.apply_all().await.unwrap();
    let applied: Vec<&str> = report.applied.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(applied, ["0001", "0002", "10"]);
    assert!(report.already_applied.is_empty());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.applied.iter().all(|a| a.attempt == 1));

    // The database state: the migrations' effects and one record each.
    assert_eq!(
        documents(&t.db, "settings").await,
        vec![doc! { "_id": "global", "theme": "dark" }]
    );
    let registry = Registry::group("basic").unwrap();
    for (key, migration) in ["0001", "0002", "10"].iter().zip(registry.migrations()) {
        let r = record(&t.db, key)
            .await
            .unwrap_or_else(|| panic!("record {key}"));
        assert_eq!(r.get_str("state").unwrap(), "applied");
        assert_eq!(r.get_str("description").unwrap(), migration.description());
        assert_eq!(r.get_str("checksum").unwrap(), migration.checksum());
        assert_eq!(r.get_str("checksum").unwrap().len(), 64);
        assert!(r.get_str("function").unwrap().ends_with(&format!(
            "::{}",
            migration.function().rsplit("::").next().unwrap()
        )));
        assert!(r.get_datetime("started_at").is_ok());
        assert!(r.get_datetime("finished_at").unwrap() >= r.get_datetime("started_at").unwrap());
        assert!(r.get_datetime("applied_at").is_ok());
        assert!(matches!(r.get("duration_ms"), Some(Bson::Int64(_))));
        assert!(!r.get_str("host").unwrap().is_empty());
        assert_eq!(r.get_i64("pid").unwrap(), i64::from(std::process::id()));
        assert_eq!(r.get_i64("attempts").unwrap(), 1);
        assert!(r.get("last_error").is_none());
    }
    assert_eq!(documents(&t.db, "schema_versions").await.len(), 3);

    // A second start finds nothing to do and runs nothing.
    let again = migrator.apply_all().await.unwrap();
    assert!(again.applied.is_empty());
    let already: Vec<&str> = again.already_applied.iter().map(|i| i.as_str()).collect();
    assert_eq!(already, ["0001", "0002", "10"]);
    for name in ["basic_seed", "basic_index", "basic_ten"] {
        assert_eq!(count(&t.db, name).await, 1, "{name} ran once");
    }
}

#[tokio::test]
async fn a_migration_is_an_ordinary_function_a_test_can_call() {
    let t = TestDb::new("callable").await;
    let mut ctx = MigrationContext::new(t.db.clone());
    basic_seed(&mut ctx).await.unwrap();
    assert_eq!(count(&t.db, "basic_seed").await, 1);
    assert!(
        record(&t.db, "0001").await.is_none(),
        "calling it directly records nothing"
    );
}

#[tokio::test]
async fn unknown_records_are_reported_not_fatal() {
    let t = TestDb::new("unknown").await;
    let versions = t.db.collection::<bson::Document>("schema_versions");
    versions
        .insert_one(
            doc! { "_id": "0099", "description": "from a newer binary", "state": "applied" },
        )
        .await
        .unwrap();
    // 0099 is the highest applied id, so the pending 0001..10 would be out of order: allow it.
    let report = Migrator::new(t.db.clone())
        .group("basic")
        .allow_out_of_order(true)
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 3);
    assert!(report.warnings.contains(&Warning::UnknownRecord {
        key: "0099".into(),
        description: Some("from a newer binary".into()),
    }));
    assert_eq!(documents(&t.db, "schema_versions").await.len(), 4);
    // And the next start still only reports it.
    let again = Migrator::new(t.db.clone())
        .group("basic")
        .apply_all()
        .await
        .unwrap();
    assert!(again.applied.is_empty());
    assert!(
        again
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::UnknownRecord { key, .. } if key == "0099"))
    );
}

#[tokio::test]
async fn a_changed_body_is_detected_by_checksum_and_handled_by_policy() {
    let t = TestDb::new("checksum").await;
    Migrator::new(t.db.clone())
        .group("basic")
        .apply_all()
        .await
        .unwrap();
    // Simulate an edit of 0002 after it ran: the recorded checksum no longer matches the code.
    t.db.collection::<bson::Document>("schema_versions")
        .update_one(
            doc! { "_id": "0002" },
            doc! { "$set": { "checksum": "0ld" } },
        )
        .await
        .unwrap();

    let warned = Migrator::new(t.db.clone())
        .group("basic")
        .apply_all()
        .await
        .unwrap();
    assert!(warned.applied.is_empty());
    assert!(
        matches!(
            &warned.warnings[..],
            [Warning::ChecksumChanged { id, recorded, .. }] if id.as_str() == "0002" && recorded == "0ld"
        ),
        "{:?}",
        warned.warnings
    );

    let err = Migrator::new(t.db.clone())
        .group("basic")
        .checksum_policy(ChecksumPolicy::Fail)
        .apply_all()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ChecksumMismatch { id, .. } if id == "0002"),
        "{err}"
    );
    assert!(
        err.to_string().contains("0002") && err.to_string().contains("new migration"),
        "{err}"
    );

    let quiet = Migrator::new(t.db.clone())
        .group("basic")
        .checksum_policy(ChecksumPolicy::Ignore)
        .apply_all()
        .await
        .unwrap();
    assert!(quiet.warnings.is_empty());
    // Nothing was rewritten: the record still holds the old checksum.
    assert_eq!(
        record(&t.db, "0002")
            .await
            .unwrap()
            .get_str("checksum")
            .unwrap(),
        "0ld"
    );
}

// --- group "failing": the second migration fails while the control flag is set ----------------

#[migration(id = "0001", description = "First, always fine", group = "failing")]
async fn failing_first(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "failing_first").await?;
    Ok(())
}

#[migration(
    id = "0002",
    description = "Second, fails on request",
    group = "failing"
)]
async fn failing_second(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "failing_second").await?;
    if flag(ctx.database(), "fail").await {
        return Err("the payments collection is locked".into());
    }
    Ok(())
}

#[migration(
    id = "0003",
    description = "Third, after the failing one",
    group = "failing"
)]
async fn failing_third(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "failing_third").await?;
    Ok(())
}

#[tokio::test]
async fn an_error_is_recorded_stops_the_run_and_is_retried_next_start() {
    let t = TestDb::new("failing").await;
    set_flag(&t.db, "fail", true).await;
    let migrator = Migrator::new(t.db.clone()).group("failing");

    let err = migrator.apply_all().await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::MigrationFailed { id, attempt: 1, .. } if id == "0002"),
        "{message}"
    );
    assert!(
        message.contains("0002") && message.contains("Second, fails on request"),
        "{message}"
    );
    assert!(
        message.contains("the payments collection is locked"),
        "{message}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the migration's error is the source"
    );
    // The error tells what this run applied before it stopped.
    assert!(
        matches!(&err, Error::MigrationFailed { applied_before, .. } if applied_before == &["0001"]),
        "{message}"
    );
    assert!(
        message.contains("this run applied 0001 before that"),
        "{message}"
    );

    let first = record(&t.db, "0001").await.unwrap();
    assert_eq!(first.get_str("state").unwrap(), "applied");
    let second = record(&t.db, "0002").await.unwrap();
    assert_eq!(second.get_str("state").unwrap(), "failed");
    assert_eq!(
        second.get_str("last_error").unwrap(),
        "the payments collection is locked"
    );
    assert_eq!(second.get_i64("attempts").unwrap(), 1);
    assert!(
        record(&t.db, "0003").await.is_none(),
        "nothing after the failure ran"
    );
    assert_eq!(count(&t.db, "failing_third").await, 0);

    // Still broken: the second start retries and fails again, counting the attempt.
    let err = migrator.apply_all().await.unwrap_err();
    assert!(
        matches!(&err, Error::MigrationFailed { attempt: 2, .. }),
        "{err}"
    );

    // Fixed: the third start applies 0002 (third attempt) and 0003.
    set_flag(&t.db, "fail", false).await;
    let report = migrator.apply_all().await.unwrap();
    let applied: Vec<(&str, i64)> = report
        .applied
        .iter()
        .map(|a| (a.id.as_str(), a.attempt))
        .collect();
    assert_eq!(applied, [("0002", 3), ("0003", 1)]);
    let second = record(&t.db, "0002").await.unwrap();
    assert_eq!(second.get_str("state").unwrap(), "applied");
    assert_eq!(second.get_i64("attempts").unwrap(), 3);
    assert!(second.get("last_error").is_none());
    assert_eq!(count(&t.db, "failing_first").await, 1);
    assert_eq!(count(&t.db, "failing_second").await, 3);
    assert_eq!(count(&t.db, "failing_third").await, 1);
}

// --- group "panicking" -------------------------------------------------------------------------

#[migration(id = "0001", description = "Panics on request", group = "panicking")]
async fn panicking(ctx: &mut MigrationContext) -> MigrationResult {
    if flag(ctx.database(), "panic").await {
        panic!("index builder exploded");
    }
    Ok(())
}

#[tokio::test]
async fn a_panic_is_recorded_as_a_failure_not_as_applied() {
    let t = TestDb::new("panicking").await;
    set_flag(&t.db, "panic", true).await;
    let err = Migrator::new(t.db.clone())
        .group("panicking")
        .apply_all()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("panicked: index builder exploded"),
        "{err}"
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "failed");
    assert_eq!(
        r.get_str("last_error").unwrap(),
        "panicked: index builder exploded"
    );
    set_flag(&t.db, "panic", false).await;
    let report = Migrator::new(t.db.clone())
        .group("panicking")
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
}

// --- group "ooo": out of order against the database -------------------------------------------

#[migration(id = "0001", description = "One", group = "ooo")]
async fn ooo_one(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "ooo_one").await?;
    Ok(())
}

#[migration(id = "0002", description = "Two, merged late", group = "ooo")]
async fn ooo_two(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "ooo_two").await?;
    Ok(())
}

#[migration(id = "0003", description = "Three", group = "ooo")]
async fn ooo_three(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "ooo_three").await?;
    Ok(())
}

#[tokio::test]
async fn a_pending_id_below_the_highest_applied_is_refused_unless_allowed() {
    let t = TestDb::new("ooo").await;
    let versions = t.db.collection::<bson::Document>("schema_versions");
    for id in ["0001", "0003"] {
        versions
            .insert_one(doc! { "_id": id, "state": "applied", "description": id })
            .await
            .unwrap();
    }

    let err = Migrator::new(t.db.clone())
        .group("ooo")
        .apply_all()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::OutOfOrder { id, highest_applied, .. } if id == "0002" && highest_applied == "0003"),
        "{err}"
    );
    assert!(err.to_string().contains("allow_out_of_order"), "{err}");
    assert!(
        record(&t.db, "0002").await.is_none(),
        "refused before anything ran"
    );
    assert_eq!(count(&t.db, "ooo_two").await, 0);

    let report = Migrator::new(t.db.clone())
        .group("ooo")
        .allow_out_of_order(true)
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].id.as_str(), "0002");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::AppliedOutOfOrder { id, .. } if id.as_str() == "0002"))
    );
    assert_eq!(
        record(&t.db, "0002")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "applied"
    );
    assert_eq!(count(&t.db, "ooo_one").await, 0, "0001 was already applied");
    assert_eq!(
        count(&t.db, "ooo_three").await,
        0,
        "0003 was already applied"
    );
}

// --- the reference Python system's documents ---------------------------------------------------

#[migration(
    id = "0001",
    description = "Create events indexes and validator",
    group = "legacy"
)]
async fn legacy_one(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "legacy_one").await?;
    Ok(())
}

#[migration(
    id = "0002",
    description = "Create user settings indexes",
    group = "legacy"
)]
async fn legacy_two(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "legacy_two").await?;
    Ok(())
}

#[migration(id = "0003", description = "Create replay indexes", group = "legacy")]
async fn legacy_three(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "legacy_three").await?;
    Ok(())
}

#[tokio::test]
async fn documents_of_the_reference_system_read_as_applied() {
    let t = TestDb::new("legacy").await;
    let versions = t.db.collection::<bson::Document>("schema_versions");
    let applied_at = bson::DateTime::from_millis(1_700_000_000_000);
    versions
        .insert_many([
            doc! { "_id": "0001_events_init", "description": "Create events indexes and validator", "applied_at": applied_at },
            doc! { "_id": "0002_user_settings_indexes", "description": "Create user settings indexes", "applied_at": applied_at },
        ])
        .await
        .unwrap();

    let migrator = Migrator::new(t.db.clone()).group("legacy");
    let plan = migrator.plan().await.unwrap();
    let states: Vec<(&str, &EntryState)> = plan
        .entries
        .iter()
        .map(|e| (e.id.as_str(), &e.state))
        .collect();
    assert_eq!(
        states,
        [
            ("0001", &EntryState::Applied(ChecksumStatus::NotRecorded)),
            ("0002", &EntryState::Applied(ChecksumStatus::NotRecorded)),
            ("0003", &EntryState::Pending),
        ]
    );
    let first = plan.entries[0].record.as_ref().unwrap();
    assert_eq!(first.key, "0001_events_init");
    assert_eq!(first.state, RecordState::Applied);
    assert_eq!(first.finished_at, Some(applied_at));
    assert!(plan.unknown.is_empty());

    let report = migrator.apply_all().await.unwrap();
    let applied: Vec<&str> = report.applied.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(applied, ["0003"]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(count(&t.db, "legacy_one").await, 0);
    assert_eq!(count(&t.db, "legacy_two").await, 0);
    // The reference documents are left as they were.
    let old = record(&t.db, "0001_events_init").await.unwrap();
    assert_eq!(
        old,
        doc! { "_id": "0001_events_init", "description": "Create events indexes and validator", "applied_at": applied_at }
    );
}

#[tokio::test]
async fn an_unreadable_record_is_a_clear_error() {
    let t = TestDb::new("badrecord").await;
    t.db.collection::<bson::Document>("schema_versions")
        .insert_one(doc! { "_id": "0001", "state": "half-done" })
        .await
        .unwrap();
    let err = Migrator::new(t.db.clone())
        .group("legacy")
        .apply_all()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRecord { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("0001")
            && message.contains("half-done")
            && message.contains("schema_versions"),
        "{message}"
    );
    assert_eq!(count(&t.db, "legacy_one").await, 0);
}

#[schema_runtime::migration(
    id = "0001",
    description = "Drops an index without saying so",
    group = "drop_undeclared"
)]
async fn drops_quietly(
    ctx: &mut schema_runtime::MigrationContext,
) -> schema_runtime::MigrationResult {
    ctx.drop_index("things", "idx_thing").await?;
    Ok(())
}

#[schema_runtime::migration(
    id = "0001",
    description = "Drops an index, marked destructive",
    group = "drop_declared",
    destructive
)]
async fn drops_openly(
    ctx: &mut schema_runtime::MigrationContext,
) -> schema_runtime::MigrationResult {
    ctx.drop_index("things", "idx_thing").await?;
    Ok(())
}

#[tokio::test]
async fn drop_index_needs_a_destructive_migration() {
    let t = TestDb::new("dropdecl").await;
    schema_runtime::ensure_indexes(
        &t.db,
        "things",
        &[schema_runtime::IndexSpec::new(
            "idx_thing",
            doc! { "thing": 1 },
        )],
    )
    .await
    .unwrap();
    let err = Migrator::new(t.db.clone())
        .group("drop_undeclared")
        .apply_all()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("mark the migration #[migration(..., destructive)]"),
        "{err}"
    );
    assert_eq!(
        schema_runtime::list_indexes(&t.db, "things", None)
            .await
            .unwrap()
            .len(),
        2
    );
    Migrator::new(t.db.clone())
        .group("drop_declared")
        .allow_destructive(true)
        .apply_all()
        .await
        .unwrap();
    assert_eq!(
        schema_runtime::list_indexes(&t.db, "things", None)
            .await
            .unwrap()
            .len(),
        1
    );
}
