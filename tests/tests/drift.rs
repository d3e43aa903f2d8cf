//! Drift: the schema the applied migrations declared, against the live database. The reference
//! system's nine migrations (the example's port) are applied, the database is changed by hand,
//! and `migrate drift` must list exactly those changes; `--repair` must restore what was
//! declared and leave, then (with `--allow-destructive`) drop, what was not.

use bson::{Bson, Document, doc};
use schema_runtime::cli::Outcome;
use schema_runtime::{
    Drift, IndexSpec, MigrationContext, MigrationResult, Migrator, Warning, list_indexes, migration,
};
use schema_tests::{TestDb, documents, record, run_cli};

// The reference migrations live in the example's library crate.
schema_runtime::link!(schema_example);

fn index<'a>(indexes: &'a [Document], name: &str) -> Option<&'a Document> {
    indexes.iter().find(|i| i.get_str("name") == Ok(name))
}

async fn options(db: &mongodb::Database, collection: &str) -> Document {
    schema_runtime::collection_info(db, collection, None)
        .await
        .unwrap()
        .unwrap()
        .get_document("options")
        .cloned()
        .unwrap()
}

/// `drift --json`'s findings as (kind, collection, index).
fn findings(output: &str) -> Vec<(String, String, Option<String>)> {
    let document: serde_json::Value = serde_json::from_str(output).unwrap();
    document["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["collection"].as_str().unwrap().to_owned(),
                f["index"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn finding(kind: &str, collection: &str, index: Option<&str>) -> (String, String, Option<String>) {
    (kind.into(), collection.into(), index.map(str::to_owned))
}

#[tokio::test]
async fn hand_made_changes_to_the_reference_schema_are_found_and_repaired() {
    let t = TestDb::new("drift_reference").await;
    let migrator = Migrator::new(t.db.clone());
    migrator.apply_all().await.unwrap();

    // A fresh apply: no drift. The text index is declared only when the server built it (the
    // helper declares after success): on a server without text indexes it is neither declared
    // nor present, on a real mongod both.
    let (outcome, out) = run_cli(&migrator, &["drift"]).await;
    println!("$ migrate drift\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");
    assert!(out.contains("no drift: 10 collection(s)"), "{out}");
    let declared = record(&t.db, "0001").await.unwrap();
    let declares_text = declared
        .get_array("declared")
        .unwrap()
        .iter()
        .any(|d| d.as_document().unwrap().get_str("name") == Ok("idx_text_search"));
    let events = list_indexes(&t.db, "events", None).await.unwrap();
    assert_eq!(declares_text, index(&events, "idx_text_search").is_some());

    // Three changes by hand.
    t.db.collection::<Document>("dlq_messages")
        .drop_index("idx_dlq_created_ttl")
        .await
        .unwrap();
    t.db.run_command(doc! { "collMod": "events", "validationAction": "error" })
        .await
        .unwrap();
    t.db.run_command(doc! {
        "createIndexes": "events",
        "indexes": [{ "key": { "status": 1, "event_type": 1 }, "name": "idx_by_hand" }],
    })
    .await
    .unwrap();

    let (outcome, out) = run_cli(&migrator, &["drift"]).await;
    println!("$ migrate drift\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Problems, "{out}");
    let (outcome, out) = run_cli(&migrator, &["drift", "--json"]).await;
    assert_eq!(outcome.unwrap(), Outcome::Problems);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (json["result"].as_str(), json["exit_code"].as_u64()),
        (Some("drift"), Some(4))
    );
    assert_eq!(
        findings(&out),
        [
            finding("missing_index", "dlq_messages", Some("idx_dlq_created_ttl")),
            finding("undeclared_index", "events", Some("idx_by_hand")),
            finding("different_validator", "events", None),
        ]
    );
    let validator = &json["drift"][2];
    assert_eq!(validator["declared_by"], "0001");
    assert_eq!(validator["declared"]["validationAction"], "warn");
    assert_eq!(validator["live"]["validationAction"], "error");
    // Numbers as the server holds them: an integer, never `604800.0`.
    let ttl = &json["drift"][0]["declared"];
    assert!(ttl["expireAfterSeconds"].is_i64(), "{ttl}");
    assert_eq!(ttl["expireAfterSeconds"], 604800);
    assert!(!out.contains(".0,") && !out.contains(".0\n"), "{out}");
    assert!(!out.contains("604800.0"), "{out}");

    // One gate for pipelines: `verify --drift` fails on drift (exit 4) and lists it; plain
    // `verify` looks at the records only.
    let (outcome, out) = run_cli(&migrator, &["verify"]).await;
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");
    let (outcome, out) = run_cli(&migrator, &["verify", "--drift"]).await;
    println!("$ migrate verify --drift\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Problems, "{out}");
    assert!(
        out.contains("drift: dlq_messages: index \"idx_dlq_created_ttl\" is missing"),
        "{out}"
    );
    assert!(out.contains("\"expireAfterSeconds\": 604800,"), "{out}");
    assert!(
        out.ends_with("verify: 3 difference(s) from the declared schema\n"),
        "{out}"
    );
    let (outcome, out) = run_cli(&migrator, &["verify", "--drift", "--json"]).await;
    assert_eq!(outcome.unwrap(), Outcome::Problems);
    let gate: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (gate["result"].as_str(), gate["exit_code"].as_u64()),
        (Some("problems"), Some(4))
    );
    assert_eq!(gate["drift"].as_array().map(Vec::len), Some(3));

    // The repair restores what was declared and leaves the hand-made index.
    let (outcome, out) = run_cli(&migrator, &["drift", "--repair"]).await;
    println!("$ migrate drift --repair\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Problems, "{out}");
    let dlq = list_indexes(&t.db, "dlq_messages", None).await.unwrap();
    let ttl = index(&dlq, "idx_dlq_created_ttl").expect("re-created");
    assert_eq!(
        ttl.get("expireAfterSeconds")
            .and_then(Bson::as_i64)
            .or_else(|| ttl.get_i32("expireAfterSeconds").ok().map(i64::from)),
        Some(604800)
    );
    assert_eq!(
        options(&t.db, "events").await.get_str("validationAction"),
        Ok("warn")
    );
    let events = list_indexes(&t.db, "events", None).await.unwrap();
    assert!(
        index(&events, "idx_by_hand").is_some(),
        "left without --allow-destructive"
    );

    let (outcome, out) = run_cli(&migrator, &["drift", "--json"]).await;
    assert_eq!(outcome.unwrap(), Outcome::Problems);
    assert_eq!(
        findings(&out),
        [finding("undeclared_index", "events", Some("idx_by_hand"))]
    );
    let (_, out) = run_cli(&migrator, &["drift"]).await;
    println!("$ migrate drift\n{out}");

    let (outcome, out) = run_cli(&migrator, &["drift", "--repair", "--allow-destructive"]).await;
    println!("$ migrate drift --repair --allow-destructive\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");
    let events = list_indexes(&t.db, "events", None).await.unwrap();
    assert!(index(&events, "idx_by_hand").is_none());
    let (outcome, out) = run_cli(&migrator, &["drift"]).await;
    println!("$ migrate drift\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");

    // Both repairs are on record, with what each did.
    let audit = documents(&t.db, "schema_versions_audit").await;
    let repairs: Vec<&Document> = audit
        .iter()
        .filter(|a| a.get_str("action") == Ok("drift_repair"))
        .collect();
    assert_eq!(repairs.len(), 2, "{audit:?}");
    assert_eq!(repairs[0].get_bool("allow_destructive"), Ok(false));
    assert_eq!(repairs[0].get_array("actions").unwrap().len(), 3);
    let last = repairs[1].get_array("actions").unwrap()[0]
        .as_document()
        .unwrap();
    assert_eq!(
        (last.get_str("index"), last.get_bool("repaired")),
        (Ok("idx_by_hand"), Ok(true))
    );
}

// A group of its own for the helpers that declare collections, options and drops.
#[migration(
    id = "0001",
    description = "Logs and a legacy collection",
    group = "drift"
)]
async fn logs(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_collection("logs", doc! { "capped": true, "size": 100_000_i64 })
        .await?;
    ctx.ensure_indexes(
        "logs",
        &[
            IndexSpec::new("idx_at", doc! { "at": 1 }),
            IndexSpec::new("idx_old", doc! { "old": 1 }),
        ],
    )
    .await?;
    ctx.ensure_indexes(
        "tickets",
        &[
            IndexSpec::new("idx_ticket_unique", doc! { "ticket": 1 }).unique(),
            IndexSpec::new("idx_opened", doc! { "opened_at": 1 })
                .ttl(std::time::Duration::from_secs(60)),
        ],
    )
    .await?;
    ctx.ensure_indexes("legacy", &[IndexSpec::new("idx_l", doc! { "l": 1 })])
        .await?;
    Ok(())
}

#[migration(
    id = "0002",
    description = "Drop what is no longer used",
    group = "drift",
    destructive
)]
async fn drop_unused(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.drop_index("logs", "idx_old").await?;
    ctx.drop_collection("legacy").await?;
    Ok(())
}

fn drift_migrator(db: &mongodb::Database) -> Migrator {
    Migrator::new(db.clone())
        .group("drift")
        .allow_destructive(true)
}

#[tokio::test]
async fn drops_count_and_what_cannot_be_repaired_safely_is_left_with_its_reason() {
    let t = TestDb::new("drift_edges").await;
    let migrator = drift_migrator(&t.db);
    migrator.apply_all().await.unwrap();
    let report = migrator.drift().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.without_declarations.is_empty());
    assert_eq!(report.collections_checked, 2, "logs and tickets");

    // An index a migration dropped, made again by hand, says who dropped it.
    t.db.run_command(
        doc! { "createIndexes": "logs", "indexes": [{ "key": { "old": 1 }, "name": "idx_old" }] },
    )
    .await
    .unwrap();
    // A TTL changed by hand (changed back in place), a unique index lost while duplicates came
    // in (not re-built: it would fail), and an index re-made with other keys (re-built only
    // with destructive changes allowed).
    t.db.run_command(doc! { "collMod": "tickets", "index": { "name": "idx_opened", "expireAfterSeconds": 3600 } })
        .await
        .unwrap();
    t.db.collection::<Document>("tickets")
        .drop_index("idx_ticket_unique")
        .await
        .unwrap();
    t.db.collection::<Document>("tickets")
        .insert_many([
            doc! { "_id": 1, "ticket": "T-1" },
            doc! { "_id": 2, "ticket": "T-1" },
        ])
        .await
        .unwrap();
    t.db.collection::<Document>("logs")
        .drop_index("idx_at")
        .await
        .unwrap();
    t.db.run_command(
        doc! { "createIndexes": "logs", "indexes": [{ "key": { "at": -1 }, "name": "idx_at" }] },
    )
    .await
    .unwrap();

    let report = migrator.drift().await.unwrap();
    let kinds: Vec<(&str, &str, Option<&str>)> = report
        .findings
        .iter()
        .map(|f| (f.kind(), f.collection(), f.index()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("different_index", "logs", Some("idx_at")),
            ("undeclared_index", "logs", Some("idx_old")),
            ("different_index", "tickets", Some("idx_opened")),
            ("missing_index", "tickets", Some("idx_ticket_unique")),
        ]
    );
    assert!(
        matches!(&report.findings[1], Drift::UndeclaredIndex { dropped_by: Some(by), .. } if by == "0002"),
        "{}",
        report.findings[1]
    );
    assert!(report.findings[1].to_string().contains("(0002 dropped it)"));

    let repaired = migrator.repair_drift(false).await.unwrap();
    let notes: Vec<(bool, &str)> = repaired
        .actions
        .iter()
        .map(|a| (a.repaired, a.note.as_str()))
        .collect();
    println!("{notes:#?}");
    let note_of = |index: &str| {
        repaired
            .actions
            .iter()
            .find(|a| a.finding.index() == Some(index))
            .unwrap()
    };
    assert!(note_of("idx_opened").repaired, "{notes:?}");
    assert!(note_of("idx_opened").note.contains("in place"), "{notes:?}");
    assert!(!note_of("idx_ticket_unique").repaired);
    assert!(
        note_of("idx_ticket_unique").note.contains("duplicate"),
        "{notes:?}"
    );
    assert!(!note_of("idx_at").repaired);
    assert!(
        note_of("idx_at").note.contains("--allow-destructive"),
        "{notes:?}"
    );
    assert!(!note_of("idx_old").repaired);
    let tickets = list_indexes(&t.db, "tickets", None).await.unwrap();
    assert!(
        index(&tickets, "idx_ticket_unique").is_none(),
        "nothing built"
    );
    assert_eq!(
        index(&tickets, "idx_opened")
            .unwrap()
            .get("expireAfterSeconds")
            .map(|v| v.to_string()),
        Some("60".into())
    );
    assert_eq!(
        repaired.after.findings.len(),
        3,
        "{:?}",
        repaired.after.findings
    );

    // With destructive changes allowed: idx_at re-built as declared, idx_old dropped; the
    // unique index still waits for the duplicates to go.
    let repaired = migrator.repair_drift(true).await.unwrap();
    let left: Vec<Option<&str>> = repaired.after.findings.iter().map(Drift::index).collect();
    assert_eq!(left, [Some("idx_ticket_unique")]);
    let logs = list_indexes(&t.db, "logs", None).await.unwrap();
    assert_eq!(
        index(&logs, "idx_at").unwrap().get_document("key").unwrap(),
        &doc! { "at": 1 }
    );
    assert!(index(&logs, "idx_old").is_none());
    t.db.collection::<Document>("tickets")
        .delete_one(doc! { "_id": 2 })
        .await
        .unwrap();
    let repaired = migrator.repair_drift(false).await.unwrap();
    assert!(repaired.after.is_clean(), "{:?}", repaired.after.findings);
    let tickets = list_indexes(&t.db, "tickets", None).await.unwrap();
    assert_eq!(
        index(&tickets, "idx_ticket_unique")
            .unwrap()
            .get_bool("unique"),
        Ok(true)
    );

    // A collection dropped by hand: missing with its indexes; the repair makes it again with
    // its declared options.
    t.db.collection::<Document>("logs").drop().await.unwrap();
    let report = migrator.drift().await.unwrap();
    let kinds: Vec<&str> = report.findings.iter().map(Drift::kind).collect();
    assert_eq!(kinds, ["missing_collection", "missing_index"]);
    let repaired = migrator.repair_drift(false).await.unwrap();
    assert!(repaired.after.is_clean(), "{:?}", repaired.after.findings);
    let logs = options(&t.db, "logs").await;
    assert_eq!(logs.get_bool("capped"), Ok(true));
}

#[tokio::test]
async fn start_up_and_status_report_drift_when_asked_and_adopted_databases_say_why() {
    let t = TestDb::new("drift_startup").await;
    drift_migrator(&t.db).apply_all().await.unwrap();
    t.db.run_command(
        doc! { "createIndexes": "tickets", "indexes": [{ "key": { "x": 1 }, "name": "idx_x" }] },
    )
    .await
    .unwrap();

    // Off by default: no warning, no drift in the status, no extra command.
    let report = drift_migrator(&t.db).apply_all().await.unwrap();
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::Drift { .. }))
    );
    assert_eq!(drift_migrator(&t.db).status().await.drift, None);

    let checking = drift_migrator(&t.db).check_drift(true);
    let report = checking.apply_all().await.unwrap();
    let drift: Vec<String> = report
        .warnings
        .iter()
        .filter(|w| matches!(w, Warning::Drift { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert!(drift[0].contains("\"idx_x\""), "{drift:?}");
    let status = checking.status().await;
    assert_eq!(status.drift.as_ref().map(Vec::len), Some(1), "{status:?}");
    assert_eq!(status.error, None);

    // A database whose records were written by `baseline` has no declarations: the report says
    // which records, and everything they made shows as undeclared rather than as "all good".
    let adopted = TestDb::new("drift_adopted").await;
    drift_migrator(&adopted.db).apply_all().await.unwrap();
    adopted
        .db
        .collection::<Document>("schema_versions")
        .delete_many(doc! {})
        .await
        .unwrap();
    drift_migrator(&adopted.db)
        .baseline(&"0002".parse().unwrap())
        .await
        .unwrap();
    let report = drift_migrator(&adopted.db).drift().await.unwrap();
    assert_eq!(report.without_declarations, ["0001", "0002"]);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.kind() == "undeclared_index"),
        "{:?}",
        report.findings
    );
    assert_eq!(
        report.findings.len(),
        3,
        "idx_at, idx_ticket_unique, idx_opened"
    );
    let (_, out) = run_cli(&drift_migrator(&adopted.db), &["drift"]).await;
    println!("{out}");
    assert!(
        out.contains("2 applied migration(s) carry no declarations (0001, 0002)"),
        "{out}"
    );

    // Their declarations recorded from a scratch run: the database is as declared.
    let (outcome, out) = run_cli(
        &drift_migrator(&adopted.db),
        &["drift", "--record-declarations"],
    )
    .await;
    println!("$ migrate drift --record-declarations\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");
    assert!(out.contains("recorded 6 declaration(s) on 0001"), "{out}");
    assert!(out.contains("recorded 2 declaration(s) on 0002"), "{out}");
}

#[tokio::test]
async fn a_database_adopted_from_the_reference_system_gets_its_declarations_without_rerunning() {
    let t = TestDb::new("drift_reference_adopted").await;
    let migrator = Migrator::new(t.db.clone());
    migrator.apply_all().await.unwrap();
    // The same schema with the reference system's records: `_id`s with names, no state, no
    // declarations.
    let versions = t.db.collection::<Document>("schema_versions");
    let ours = documents(&t.db, "schema_versions").await;
    versions.delete_many(doc! {}).await.unwrap();
    let names = [
        "events_init",
        "user_settings_indexes",
        "replay_indexes",
        "notification_indexes",
        "idempotency_indexes",
        "saga_indexes",
        "execution_results_indexes",
        "dlq_indexes",
        "event_store_extra_indexes",
    ];
    for (record, name) in ours.iter().zip(names) {
        let id = record.get_str("_id").unwrap();
        versions
            .insert_one(doc! {
                "_id": format!("{id}_{name}"),
                "description": record.get_str("description").unwrap(),
                "applied_at": bson::DateTime::now(),
            })
            .await
            .unwrap();
    }
    // A change by hand before adoption: recording the declarations must not undo it (the
    // migrations do not run again here).
    t.db.collection::<Document>("dlq_messages")
        .drop_index("idx_dlq_created_ttl")
        .await
        .unwrap();

    let report = migrator.drift().await.unwrap();
    assert_eq!(report.without_declarations.len(), 9);
    let undeclared_validators: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.kind() != "undeclared_index")
        .map(|f| f.kind())
        .collect();
    assert_eq!(
        undeclared_validators,
        ["undeclared_validator"],
        "the events validator"
    );

    let recorded = migrator.record_declarations().await.unwrap();
    assert_eq!(recorded.len(), 9, "{recorded:?}");
    assert!(recorded.iter().all(|r| r.recorded), "{recorded:?}");
    assert_eq!(recorded[7].key, "0008_dlq_indexes");
    assert_eq!(recorded[7].declarations, 8);
    let dlq = list_indexes(&t.db, "dlq_messages", None).await.unwrap();
    assert!(
        index(&dlq, "idx_dlq_created_ttl").is_none(),
        "nothing ran on the database"
    );
    let names: Vec<String> = t.db.client().list_database_names().await.unwrap();
    assert!(
        !names.iter().any(|n| n.starts_with("schema_declare_")),
        "the scratch database is dropped: {names:?}"
    );
    let record = record(&t.db, "0008_dlq_indexes").await.unwrap();
    assert_eq!(record.get_str("declared_from"), Ok("scratch run"));
    assert!(
        record.get("state").is_none(),
        "the rest of the record is the reference system's"
    );

    let report = migrator.drift().await.unwrap();
    assert!(report.without_declarations.is_empty());
    let kinds: Vec<(&str, Option<&str>)> = report
        .findings
        .iter()
        .map(|f| (f.kind(), f.index()))
        .collect();
    assert_eq!(kinds, [("missing_index", Some("idx_dlq_created_ttl"))]);
    // Nothing left to record: a second run does nothing.
    assert!(migrator.record_declarations().await.unwrap().is_empty());
    let audit = documents(&t.db, "schema_versions_audit").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].get_array("records").unwrap().len(), 9);
}
