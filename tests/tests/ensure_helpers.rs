//! `ensure_indexes`, `ensure_validator` and `ensure_collection` against the real server; each
//! test reads the result back with `listIndexes` / `listCollections`.

use std::time::Duration;

use bson::{Bson, Document, doc};
use schema_runtime::collection_info;
use schema_runtime::list_indexes;
use schema_runtime::{
    CollectionChange, Error, IndexSpec, ValidationAction, ValidationLevel, ensure_collection,
    ensure_indexes, ensure_validator,
};
use schema_tests::{TestDb, counting_client};

fn index<'a>(listed: &'a [Document], name: &str) -> &'a Document {
    listed
        .iter()
        .find(|d| d.get_str("name").ok() == Some(name))
        .unwrap_or_else(|| panic!("index {name} in {listed:?}"))
}

fn number(value: Option<&Bson>) -> Option<f64> {
    match value? {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

#[tokio::test]
async fn ensure_indexes_creates_every_kind_and_is_idempotent() {
    let t = TestDb::new("indexes").await;
    let specs = [
        IndexSpec::new("idx_key_unique", doc! { "key": 1 }).unique(),
        IndexSpec::new("idx_user_created", doc! { "user_id": 1, "created_at": -1 }),
        IndexSpec::new("idx_pod_sparse", doc! { "payload.pod_name": 1 }).sparse(),
        IndexSpec::new("idx_open_partial", doc! { "status": 1 })
            .partial(doc! { "status": { "$eq": "open" } }),
        IndexSpec::new("idx_created_ttl", doc! { "created_at": 1 }).ttl(Duration::from_secs(3600)),
    ];
    let report = ensure_indexes(&t.db, "things", &specs).await.unwrap();
    assert_eq!(report.created.len(), 5);
    assert!(report.unchanged.is_empty());

    let listed = list_indexes(&t.db, "things", None).await.unwrap();
    assert_eq!(listed.len(), 6, "five and _id_: {listed:?}");
    let unique = index(&listed, "idx_key_unique");
    assert_eq!(unique.get_document("key").unwrap(), &doc! { "key": 1 });
    assert_eq!(unique.get_bool("unique").ok(), Some(true));
    let compound = index(&listed, "idx_user_created");
    let keys: Vec<(&String, Option<f64>)> = compound
        .get_document("key")
        .unwrap()
        .iter()
        .map(|(k, v)| (k, number(Some(v))))
        .collect();
    assert_eq!(
        keys,
        [
            (&"user_id".to_string(), Some(1.0)),
            (&"created_at".to_string(), Some(-1.0))
        ]
    );
    assert!(compound.get("unique").is_none() && compound.get("sparse").is_none());
    assert_eq!(
        index(&listed, "idx_pod_sparse").get_bool("sparse").ok(),
        Some(true)
    );
    assert_eq!(
        index(&listed, "idx_open_partial")
            .get_document("partialFilterExpression")
            .unwrap(),
        &doc! { "status": { "$eq": "open" } }
    );
    assert_eq!(
        number(index(&listed, "idx_created_ttl").get("expireAfterSeconds")),
        Some(3600.0)
    );

    // A second call sends only listIndexes and changes nothing.
    let (client, log) = counting_client().await;
    let db = client.database(t.name());
    let again = ensure_indexes(&db, "things", &specs).await.unwrap();
    assert!(again.created.is_empty());
    assert_eq!(again.unchanged.len(), 5);
    assert_eq!(log.names(), ["listIndexes"]);
    assert_eq!(list_indexes(&t.db, "things", None).await.unwrap(), listed);
}

#[tokio::test]
async fn a_same_name_index_with_another_definition_is_a_clear_error() {
    let t = TestDb::new("conflict").await;
    ensure_indexes(
        &t.db,
        "things",
        &[IndexSpec::new("idx_x", doc! { "x": 1 }).sparse()],
    )
    .await
    .unwrap();
    let err = ensure_indexes(
        &t.db,
        "things",
        &[IndexSpec::new("idx_x", doc! { "x": 1 }).unique()],
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, Error::IndexConflict { name, collection, .. } if name == "idx_x" && collection == "things"),
        "{message}"
    );
    assert!(
        message.contains("existing:") && message.contains("\"sparse\": true"),
        "{message}"
    );
    assert!(
        message.contains("requested:") && message.contains("\"unique\": true"),
        "{message}"
    );
    // Nothing changed on the server.
    let listed = list_indexes(&t.db, "things", None).await.unwrap();
    assert_eq!(index(&listed, "idx_x").get_bool("sparse").ok(), Some(true));
    assert!(index(&listed, "idx_x").get("unique").is_none());
}

/// `{a: 1, b: 1}` and `{b: 1, a: 1}` are different compound indexes, although a `Document`
/// compares equal with its fields in another order.
#[tokio::test]
async fn a_compound_key_in_another_field_order_is_another_index() {
    let t = TestDb::new("key_order").await;
    let ab = [IndexSpec::new("idx_ab", doc! { "a": 1, "b": 1 })];
    ensure_indexes(&t.db, "things", &ab).await.unwrap();
    let err = ensure_indexes(
        &t.db,
        "things",
        &[IndexSpec::new("idx_ab", doc! { "b": 1, "a": 1 })],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::IndexConflict { name, .. } if name == "idx_ab"),
        "{err}"
    );
    let listed = list_indexes(&t.db, "things", None).await.unwrap();
    let key: Vec<&String> = index(&listed, "idx_ab")
        .get_document("key")
        .unwrap()
        .keys()
        .collect();
    assert_eq!(key, ["a", "b"], "the index on the server is untouched");
    // The same order again is unchanged.
    let again = ensure_indexes(&t.db, "things", &ab).await.unwrap();
    assert_eq!(again.unchanged, ["idx_ab"]);
}

#[tokio::test]
async fn a_missing_index_is_added_next_to_existing_ones() {
    let t = TestDb::new("addindex").await;
    let a = IndexSpec::new("idx_a", doc! { "a": 1 });
    let b = IndexSpec::new("idx_b", doc! { "b": -1 });
    ensure_indexes(&t.db, "things", std::slice::from_ref(&a))
        .await
        .unwrap();
    let report = ensure_indexes(&t.db, "things", &[a, b]).await.unwrap();
    assert_eq!(report.created, ["idx_b"]);
    assert_eq!(report.unchanged, ["idx_a"]);
    assert_eq!(list_indexes(&t.db, "things", None).await.unwrap().len(), 3);
}

#[tokio::test]
#[ignore = "needs text indexes, which SecantusDB lacks; run with MONGODB_URI pointing at a real mongod"]
async fn a_text_index_with_language_options() {
    let t = TestDb::new("text").await;
    let spec = IndexSpec::new("idx_text", doc! { "title": "text", "body": "text" })
        .default_language("english")
        .language_override("none");
    let report = ensure_indexes(&t.db, "articles", std::slice::from_ref(&spec))
        .await
        .unwrap();
    assert_eq!(report.created, ["idx_text"]);
    let listed = list_indexes(&t.db, "articles", None).await.unwrap();
    let text = index(&listed, "idx_text");
    assert_eq!(text.get_str("default_language").unwrap(), "english");
    assert_eq!(text.get_str("language_override").unwrap(), "none");
    assert!(text.get_document("weights").unwrap().contains_key("title"));
    let again = ensure_indexes(&t.db, "articles", &[spec]).await.unwrap();
    assert_eq!(
        again.unchanged,
        ["idx_text"],
        "the stored text index compares equal to the spec"
    );
}

fn schema(required: &[&str]) -> Document {
    doc! { "$jsonSchema": { "bsonType": "object", "required": required } }
}

#[tokio::test]
async fn ensure_validator_creates_then_leaves_then_updates() {
    let t = TestDb::new("validator").await;
    let outcome = ensure_validator(
        &t.db,
        "events",
        schema(&["event_id"]),
        ValidationLevel::Moderate,
        ValidationAction::Warn,
    )
    .await
    .unwrap();
    assert_eq!(outcome, CollectionChange::Created);
    let options = collection_info(&t.db, "events", None)
        .await
        .unwrap()
        .unwrap();
    let options = options.get_document("options").unwrap();
    assert_eq!(
        options.get_document("validator").unwrap(),
        &schema(&["event_id"])
    );
    assert_eq!(options.get_str("validationLevel").unwrap(), "moderate");
    assert_eq!(options.get_str("validationAction").unwrap(), "warn");

    let (client, log) = counting_client().await;
    let db = client.database(t.name());
    let outcome = ensure_validator(
        &db,
        "events",
        schema(&["event_id"]),
        ValidationLevel::Moderate,
        ValidationAction::Warn,
    )
    .await
    .unwrap();
    assert_eq!(outcome, CollectionChange::Unchanged);
    assert_eq!(
        log.names(),
        ["listCollections"],
        "no collMod when nothing changes"
    );

    let outcome = ensure_validator(
        &t.db,
        "events",
        schema(&["event_id", "timestamp"]),
        ValidationLevel::Strict,
        ValidationAction::Error,
    )
    .await
    .unwrap();
    assert_eq!(outcome, CollectionChange::Updated);
    let options = collection_info(&t.db, "events", None)
        .await
        .unwrap()
        .unwrap();
    let options = options.get_document("options").unwrap();
    assert_eq!(
        options.get_document("validator").unwrap(),
        &schema(&["event_id", "timestamp"])
    );
    assert_eq!(options.get_str("validationLevel").unwrap(), "strict");
    assert_eq!(options.get_str("validationAction").unwrap(), "error");
}

#[tokio::test]
async fn ensure_validator_on_an_existing_collection_uses_collmod_and_keeps_its_documents() {
    let t = TestDb::new("collmod").await;
    t.db.collection::<Document>("events")
        .insert_one(doc! { "_id": 1 })
        .await
        .unwrap();
    let outcome = ensure_validator(
        &t.db,
        "events",
        schema(&["a"]),
        ValidationLevel::Moderate,
        ValidationAction::Warn,
    )
    .await
    .unwrap();
    assert_eq!(outcome, CollectionChange::Updated);
    assert_eq!(
        t.db.collection::<Document>("events")
            .count_documents(doc! {})
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn ensure_collection_creates_with_options_once() {
    let t = TestDb::new("create").await;
    let options = doc! { "capped": true, "size": 1_048_576 };
    assert_eq!(
        ensure_collection(&t.db, "audit", options.clone())
            .await
            .unwrap(),
        CollectionChange::Created
    );
    assert_eq!(
        ensure_collection(&t.db, "audit", options).await.unwrap(),
        CollectionChange::Unchanged
    );
    let info = collection_info(&t.db, "audit", None)
        .await
        .unwrap()
        .unwrap();
    let stored = info.get_document("options").unwrap();
    assert_eq!(stored.get_bool("capped").ok(), Some(true));
    assert_eq!(number(stored.get("size")), Some(1_048_576.0));
}

#[tokio::test]
async fn a_unique_index_over_duplicate_keys_is_refused_before_it_is_built() {
    let t = TestDb::new("dupkeys").await;
    let users = t.db.collection::<Document>("users");
    users
        .insert_many([
            doc! { "_id": 1, "email": "a@example.com", "active": true },
            doc! { "_id": 2, "email": "a@example.com", "active": false },
            doc! { "_id": 3, "email": "a@example.com", "active": true },
            doc! { "_id": 4, "email": "b@example.com", "active": true },
            doc! { "_id": 5, "active": true },
            doc! { "_id": 6, "email": null, "active": false },
            doc! { "_id": 7, "email": "c@example.com", "active": true },
        ])
        .await
        .unwrap();

    let err = ensure_indexes(
        &t.db,
        "users",
        &[
            IndexSpec::new("idx_active", doc! { "active": 1 }),
            IndexSpec::new("idx_email_unique", doc! { "email": 1 }).unique(),
        ],
    )
    .await
    .unwrap_err();
    let Error::DuplicateKeys {
        collection,
        index,
        keys,
        examples,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (collection.as_str(), index.as_str(), *keys),
        ("users", "idx_email_unique", 2)
    );
    assert_eq!(examples[0].key, doc! { "email": "a@example.com" });
    assert_eq!(examples[0].documents, 3);
    assert_eq!(
        examples[0].ids,
        [Bson::Int32(1), Bson::Int32(2), Bson::Int32(3)]
    );
    // A missing field and an explicit null are the same key to a unique index.
    assert_eq!(examples[1].key, doc! { "email": null });
    assert_eq!(examples[1].ids, [Bson::Int32(5), Bson::Int32(6)]);
    let message = err.to_string();
    assert!(
        message.contains("2 key(s) are held by more than one document")
            && message
                .contains("{ \"email\": \"a@example.com\" } held by 3 documents (_id 1, 2, 3)")
            && message.contains("Nothing was built"),
        "{message}"
    );
    let names: Vec<String> = list_indexes(&t.db, "users", None)
        .await
        .unwrap()
        .iter()
        .map(|i| i.get_str("name").unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["_id_"],
        "nothing was built, not even the other index"
    );

    // A partial filter leaves the inactive documents out: among the active ones only
    // a@example.com is held twice (one document without an email is one null, no duplicate).
    let err = ensure_indexes(
        &t.db,
        "users",
        &[IndexSpec::new("idx_email_active", doc! { "email": 1 })
            .unique()
            .partial(doc! { "active": true })],
    )
    .await
    .unwrap_err();
    let Error::DuplicateKeys { keys, examples, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*keys, 1, "{err}");
    assert_eq!(examples[0].ids, [Bson::Int32(1), Bson::Int32(3)]);
    users.delete_one(doc! { "_id": 3 }).await.unwrap();
    let report = ensure_indexes(
        &t.db,
        "users",
        &[IndexSpec::new("idx_email_active", doc! { "email": 1 })
            .unique()
            .partial(doc! { "active": true })],
    )
    .await
    .unwrap();
    assert_eq!(report.created, ["idx_email_active"]);

    // Opting out leaves it to the server, which refuses the build itself.
    let err = ensure_indexes(
        &t.db,
        "users",
        &[IndexSpec::new("idx_email_unique", doc! { "email": 1 })
            .unique()
            .without_duplicate_check()],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("11000"), "{err}");
}

#[tokio::test]
async fn a_validator_that_would_reject_existing_documents_is_refused_unless_accepted() {
    let t = TestDb::new("valrej").await;
    let orders = t.db.collection::<Document>("orders");
    orders
        .insert_many([
            doc! { "_id": 1, "total": 5 },
            doc! { "_id": 2, "total": "five" },
            doc! { "_id": 3 },
        ])
        .await
        .unwrap();
    let schema = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["total"],
        "properties": { "total": { "bsonType": "int" } },
    } };

    let err = ensure_validator(
        &t.db,
        "orders",
        schema.clone(),
        ValidationLevel::Strict,
        ValidationAction::Error,
    )
    .await
    .unwrap_err();
    let Error::ValidatorRejectsExisting {
        collection,
        documents,
        ids,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (collection.as_str(), *documents, ids.as_slice()),
        ("orders", 2, &[Bson::Int32(2), Bson::Int32(3)][..])
    );
    assert!(
        err.to_string()
            .contains("2 existing document(s) do not match it (such as _id 2, 3)"),
        "{err}"
    );
    let info = collection_info(&t.db, "orders", None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        info.get_document("options")
            .unwrap()
            .get("validator")
            .is_none(),
        "nothing was changed: {info}"
    );

    // Levels and actions that never reject writes to existing documents are not checked.
    let change = ensure_validator(
        &t.db,
        "orders",
        schema.clone(),
        ValidationLevel::Moderate,
        ValidationAction::Error,
    )
    .await
    .unwrap();
    assert_eq!(change, CollectionChange::Updated);

    // Accepted explicitly: applied, and the count reported.
    let report = schema_runtime::ensure_validator_with(
        &t.db,
        "orders",
        schema.clone(),
        ValidationLevel::Strict,
        ValidationAction::Error,
        schema_runtime::ExistingDocuments::Accept,
    )
    .await
    .unwrap();
    assert_eq!(
        (report.change, report.violating),
        (CollectionChange::Updated, 2)
    );
    let options = collection_info(&t.db, "orders", None)
        .await
        .unwrap()
        .unwrap()
        .get_document("options")
        .unwrap()
        .clone();
    assert_eq!(options.get_str("validationLevel").unwrap(), "strict");
    assert_eq!(options.get_document("validator").unwrap(), &schema);
}

#[tokio::test]
async fn ttl_hidden_and_unique_change_in_place_instead_of_conflicting() {
    let t = TestDb::new("inplace").await;
    let sessions = t.db.collection::<Document>("sessions");
    sessions
        .insert_many([
            doc! { "_id": 1, "at": 1, "token": "a" },
            doc! { "_id": 2, "at": 2, "token": "a" },
        ])
        .await
        .unwrap();
    let ttl = |secs| IndexSpec::new("idx_at_ttl", doc! { "at": 1 }).ttl(Duration::from_secs(secs));
    let token = || IndexSpec::new("idx_token", doc! { "token": 1 });
    ensure_indexes(&t.db, "sessions", &[ttl(60), token()])
        .await
        .unwrap();

    let report = ensure_indexes(&t.db, "sessions", &[ttl(120), token()])
        .await
        .unwrap();
    assert_eq!(report.modified, ["idx_at_ttl"]);
    assert_eq!(report.unchanged, ["idx_token"]);
    assert!(report.created.is_empty());
    let listed = list_indexes(&t.db, "sessions", None).await.unwrap();
    assert_eq!(
        number(index(&listed, "idx_at_ttl").get("expireAfterSeconds")),
        Some(120.0)
    );

    // Made unique in place, after the duplicate check: refused while "a" is held twice.
    let err = ensure_indexes(&t.db, "sessions", &[token().unique()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateKeys { keys: 1, .. }), "{err}");
    let listed = list_indexes(&t.db, "sessions", None).await.unwrap();
    assert!(
        index(&listed, "idx_token").get("unique").is_none(),
        "{listed:?}"
    );
    sessions
        .update_one(doc! { "_id": 2 }, doc! { "$set": { "token": "b" } })
        .await
        .unwrap();
    let report = ensure_indexes(&t.db, "sessions", &[token().unique()])
        .await
        .unwrap();
    assert_eq!(report.modified, ["idx_token"]);
    let listed = list_indexes(&t.db, "sessions", None).await.unwrap();
    assert_eq!(index(&listed, "idx_token").get_bool("unique"), Ok(true));
    let again = ensure_indexes(&t.db, "sessions", &[ttl(120), token().unique()])
        .await
        .unwrap();
    assert_eq!(again.unchanged, ["idx_at_ttl", "idx_token"]);

    // Adding a TTL to an index that has none is a rebuild: still a conflict.
    let err = ensure_indexes(
        &t.db,
        "sessions",
        &[token().unique().ttl(Duration::from_secs(5))],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::IndexConflict { .. }), "{err}");
}

#[tokio::test]
#[ignore = "the local server accepts collMod hidden but listIndexes never reports `hidden`; run with a real mongod (4.4+); the logic is unit-tested in indexes::tests"]
async fn hide_and_unhide_an_index_in_place() {
    let t = TestDb::new("hide").await;
    let old = || IndexSpec::new("idx_old", doc! { "old": 1 });
    ensure_indexes(&t.db, "legacy", &[old()]).await.unwrap();
    assert!(
        schema_runtime::hide_index(&t.db, "legacy", "idx_old")
            .await
            .unwrap()
    );
    assert!(
        !schema_runtime::hide_index(&t.db, "legacy", "idx_old")
            .await
            .unwrap()
    );
    let listed = list_indexes(&t.db, "legacy", None).await.unwrap();
    assert_eq!(index(&listed, "idx_old").get_bool("hidden"), Ok(true));
    assert!(
        schema_runtime::unhide_index(&t.db, "legacy", "idx_old")
            .await
            .unwrap()
    );
    let report = ensure_indexes(&t.db, "legacy", &[old().hidden()])
        .await
        .unwrap();
    assert_eq!(report.modified, ["idx_old"]);
    let again = ensure_indexes(&t.db, "legacy", &[old().hidden()])
        .await
        .unwrap();
    assert_eq!(again.unchanged, ["idx_old"]);
}

#[tokio::test]
async fn drop_an_index_and_name_a_missing_one() {
    let t = TestDb::new("dropidx").await;
    ensure_indexes(
        &t.db,
        "legacy",
        &[IndexSpec::new("idx_old", doc! { "old": 1 })],
    )
    .await
    .unwrap();
    let err = schema_runtime::hide_index(&t.db, "legacy", "idx_none")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("has no index named \"idx_none\""),
        "{err}"
    );

    assert!(
        schema_runtime::drop_index(&t.db, "legacy", "idx_old")
            .await
            .unwrap()
    );
    assert!(
        !schema_runtime::drop_index(&t.db, "legacy", "idx_old")
            .await
            .unwrap()
    );
    let names: Vec<String> = list_indexes(&t.db, "legacy", None)
        .await
        .unwrap()
        .iter()
        .map(|i| i.get_str("name").unwrap().to_owned())
        .collect();
    assert_eq!(names, ["_id_"]);
}

#[schema_runtime::migration(
    id = "0001",
    description = "Index a large collection",
    group = "large_warn"
)]
async fn index_large(
    ctx: &mut schema_runtime::MigrationContext,
) -> schema_runtime::MigrationResult {
    let report = ctx
        .ensure_indexes("big", &[IndexSpec::new("idx_n", doc! { "n": 1 })])
        .await?;
    ctx.collection::<Document>("index_warnings")
        .insert_one(doc! { "warnings": report.warnings })
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_index_build_on_a_large_collection_warns_in_the_report() {
    for (threshold, warned) in [(10, true), (1_000, false)] {
        let t = TestDb::new("largewarn").await;
        let docs: Vec<Document> = (0..30).map(|n| doc! { "n": n }).collect();
        t.db.collection::<Document>("big")
            .insert_many(docs)
            .await
            .unwrap();
        schema_runtime::Migrator::new(t.db.clone())
            .group("large_warn")
            .large_collection_threshold(threshold)
            .apply_all()
            .await
            .unwrap();
        let stored = schema_tests::documents(&t.db, "index_warnings").await;
        let warnings = stored[0].get_array("warnings").unwrap();
        assert_eq!(!warnings.is_empty(), warned, "{warnings:?}");
        if warned {
            let text = warnings[0].as_str().unwrap();
            assert!(
                text.starts_with("building idx_n on collection \"big\" (about 30 documents) reads every document while start-up waits"),
                "{text}"
            );
        }
        let listed = list_indexes(&t.db, "big", None).await.unwrap();
        assert_eq!(listed.len(), 2, "built either way");
    }
}

#[schema_runtime::migration(id = "0001", description = "Build a slow index", group = "slow_build")]
async fn slow_build(ctx: &mut schema_runtime::MigrationContext) -> schema_runtime::MigrationResult {
    ctx.ensure_indexes("slow", &[IndexSpec::new("idx_slow", doc! { "s": 1 })])
        .await?;
    Ok(())
}

/// The local server keeps no index-build progress in `$currentOp` (a real mongod reports
/// `progress: { done, total }`, which `indexes::tests` parses), so a build held back for 5 s by a
/// fail point shows the fallback: said once, not silently, and the build still completes.
#[tokio::test]
async fn a_long_index_build_reports_its_progress_or_says_once_that_there_is_none() {
    // The server has one failCommand fail point: other tests of this file arm it too.
    let _turn = schema_tests::fail_point_turn().await;
    let client = schema_tests::client_named("slow-build").await;
    let t = TestDb::with_client(&client, "slowbuild").await;
    t.db.collection::<Document>("slow")
        .insert_one(doc! { "s": 1 })
        .await
        .unwrap();
    let captured = schema_tests::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["createIndexes"], "blockConnection": true,
                      "blockTimeMS": 5_000, "appName": "slow-build" },
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let result = schema_runtime::Migrator::new(t.db.clone())
        .group("slow_build")
        .apply_all()
        .await;
    schema_tests::fail_commands_off(&client).await;
    result.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "the fail point held the build"
    );
    let logged = captured.text();
    let progress = logged.matches("building indexes").count();
    let fallback = logged
        .matches("the index build is still running; the server reports no progress for it, so none is shown")
        .count();
    assert!(
        (progress > 0 && fallback == 0) || (progress == 0 && fallback == 1),
        "progress lines {progress}, fallback lines {fallback}: {logged}"
    );
    let listed = list_indexes(&t.db, "slow", None).await.unwrap();
    index(&listed, "idx_slow");
}

#[schema_runtime::migration(
    id = "0001",
    description = "Index with a commit quorum",
    group = "commit_quorum"
)]
async fn with_quorum(
    ctx: &mut schema_runtime::MigrationContext,
) -> schema_runtime::MigrationResult {
    ctx.ensure_indexes("quorum", &[IndexSpec::new("idx_q", doc! { "q": 1 })])
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_commit_quorum_goes_with_the_index_build() {
    let (client, log) = counting_client().await;
    let t = TestDb::with_client(&client, "quorum").await;
    let settings = schema_runtime::Settings::from_lookup(|name| match name {
        "MONGODB_URI" => Some(schema_tests::uri()),
        "MONGODB_DATABASE" => Some(t.name().to_owned()),
        "SCHEMA_INDEX_COMMIT_QUORUM" => Some("majority".to_owned()),
        _ => None,
    })
    .unwrap();
    settings
        .apply(schema_runtime::Migrator::new(t.db.clone()).group("commit_quorum"))
        .apply_all()
        .await
        .unwrap();
    let builds: Vec<Document> = log
        .commands()
        .into_iter()
        .filter(|c| c.contains_key("createIndexes"))
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    if schema_tests::deployment_is_standalone().await {
        // A standalone refuses commitQuorum (BadValue): it is not sent there.
        assert!(!builds[0].contains_key("commitQuorum"), "{}", builds[0]);
    } else {
        assert_eq!(builds[0].get_str("commitQuorum"), Ok("majority"));
    }
    index(&list_indexes(&t.db, "quorum", None).await.unwrap(), "idx_q");
}

#[schema_runtime::migration(
    id = "0001",
    description = "Declare an index and a validator",
    group = "declared"
)]
async fn declares_two(
    ctx: &mut schema_runtime::MigrationContext,
) -> schema_runtime::MigrationResult {
    ctx.ensure_indexes(
        "tickets",
        &[IndexSpec::new("idx_status", doc! { "status": 1 }).unique()],
    )
    .await?;
    ctx.ensure_validator(
        "tickets",
        doc! { "status": { "$type": "string" } },
        ValidationLevel::Moderate,
        ValidationAction::Warn,
    )
    .await?;
    Ok(())
}

#[schema_runtime::migration(id = "0002", description = "Declare nothing", group = "declared")]
async fn declares_nothing(
    ctx: &mut schema_runtime::MigrationContext,
) -> schema_runtime::MigrationResult {
    ctx.collection::<Document>("tickets")
        .insert_one(doc! { "status": "open" })
        .await?;
    Ok(())
}

#[tokio::test]
async fn what_the_helpers_declared_is_kept_on_the_record() {
    let t = TestDb::new("declared").await;
    schema_runtime::Migrator::new(t.db.clone())
        .group("declared")
        .apply_all()
        .await
        .unwrap();
    // 0001's applied record went out with 0002's running record, 0002's alone.
    let first = schema_tests::record(&t.db, "0001").await.unwrap();
    assert_eq!(
        first.get_array("declared").unwrap(),
        &vec![
            Bson::Document(doc! {
                "kind": "index", "collection": "tickets",
                "key": { "status": 1 }, "name": "idx_status", "unique": true,
            }),
            Bson::Document(doc! {
                "kind": "validator", "collection": "tickets",
                "validator": { "status": { "$type": "string" } },
                "validationLevel": "moderate", "validationAction": "warn",
            }),
        ]
    );
    let second = schema_tests::record(&t.db, "0002").await.unwrap();
    assert_eq!(second.get_array("declared").unwrap(), &Vec::<Bson>::new());
}

/// A hand-made `email_1` already indexes the keys a migration asks to index as `idx_email`:
/// MongoDB would refuse the build (code 85 IndexOptionsConflict). It is a conflict error before
/// anything is sent, showing both definitions and what to do; the indexes are left as they were.
#[tokio::test]
async fn the_same_keys_under_another_name_are_a_clear_conflict() {
    let t = TestDb::new("indexkeystaken").await;
    let users = t.db.collection::<Document>("users");
    users
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "email": 1 })
                .build(),
        )
        .await
        .unwrap();
    let before = list_indexes(&t.db, "users", None).await.unwrap();
    assert!(before.iter().any(|i| i.get_str("name") == Ok("email_1")));
    let err = ensure_indexes(
        &t.db,
        "users",
        &[IndexSpec::new("idx_email", doc! { "email": 1 })],
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::IndexKeysTaken { .. }), "{message}");
    assert!(message.contains("\"email_1\""), "{message}");
    assert!(message.contains("\"idx_email\""), "{message}");
    assert!(message.contains("IndexOptionsConflict"), "{message}");
    assert!(message.contains("existing (email_1)"), "{message}");
    assert!(message.contains("requested (idx_email)"), "{message}");
    let after = list_indexes(&t.db, "users", None).await.unwrap();
    assert_eq!(before, after, "nothing built");
    // Named as the existing index, the spec adopts it.
    let adopted = ensure_indexes(
        &t.db,
        "users",
        &[IndexSpec::new("email_1", doc! { "email": 1 })],
    )
    .await
    .unwrap();
    assert_eq!(adopted.unchanged, ["email_1"]);
}

/// A unique conversion whose second `collMod` (`unique: true`) fails would leave the index
/// `prepareUnique: true`, and the application's inserts of duplicate keys would start failing:
/// it is undone (`prepareUnique: false`) and the error says so. The failure comes from a
/// `failCommand` that lets the first `collMod` through and fails the second (`skip` with
/// `times`, a mode of the local server's fail point that mongod does not have).
#[tokio::test]
async fn a_failed_unique_conversion_undoes_prepare_unique_on_the_local_server() {
    if !schema_tests::is_local_server(
        "a_failed_unique_conversion_undoes_prepare_unique_on_the_local_server",
    )
    .await
    {
        return;
    }
    let _turn = schema_tests::fail_point_turn().await;
    let app = "unique-undo";
    let client = schema_tests::client_named(app).await;
    let t = TestDb::with_client(&client, "uniqueundo").await;
    let admin = schema_tests::client().await;
    let sessions = t.db.collection::<Document>("sessions");
    sessions
        .insert_many([
            doc! { "_id": 1, "token": "a" },
            doc! { "_id": 2, "token": "b" },
        ])
        .await
        .unwrap();
    let token = || IndexSpec::new("idx_token", doc! { "token": 1 });
    ensure_indexes(&t.db, "sessions", &[token()]).await.unwrap();
    admin
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "skip": 1, "times": 1 },
            "data": { "failCommands": ["collMod"], "errorCode": 2, "appName": app },
        })
        .await
        .unwrap();
    let result = ensure_indexes(&t.db, "sessions", &[token().unique()]).await;
    schema_tests::fail_commands_off(&admin).await;
    let message = result.unwrap_err().to_string();
    assert!(message.contains("unique"), "{message}");
    assert!(
        message.contains("prepareUnique was set back to false"),
        "{message}"
    );
    let listed = list_indexes(&t.db, "sessions", None).await.unwrap();
    let idx = index(&listed, "idx_token");
    assert_ne!(idx.get_bool("prepareUnique"), Ok(true), "{idx}");
    assert_ne!(idx.get_bool("unique"), Ok(true), "{idx}");
    // The application can insert a duplicate key again.
    sessions
        .insert_one(doc! { "_id": 3, "token": "a" })
        .await
        .unwrap();
}

/// An index with a collation, and an index on a collection with a default collation, are
/// unchanged the second time: `listIndexes` shows the collation with every default filled in
/// (on a real mongod) and an index inherits the collection's, which the comparison expects
/// (unit-tested on MongoDB's expanded shape in `indexes::tests`).
#[tokio::test]
async fn indexes_with_collations_are_unchanged_the_second_time() {
    let t = TestDb::new("collations").await;
    let by_email = [IndexSpec::new("idx_email_ci", doc! { "email": 1 })
        .collation(doc! { "locale": "en", "strength": 2 })];
    let first = ensure_indexes(&t.db, "users", &by_email).await.unwrap();
    assert_eq!(first.created, ["idx_email_ci"]);
    let listed = list_indexes(&t.db, "users", None).await.unwrap();
    let collation = index(&listed, "idx_email_ci")
        .get_document("collation")
        .unwrap()
        .clone();
    assert_eq!(collation.get_str("locale").unwrap(), "en", "{collation}");
    let again = ensure_indexes(&t.db, "users", &by_email).await.unwrap();
    assert_eq!(again.unchanged, ["idx_email_ci"], "{again:?}");

    ensure_collection(
        &t.db,
        "names",
        doc! { "collation": { "locale": "de", "strength": 1 } },
    )
    .await
    .unwrap();
    let by_name = [IndexSpec::new("idx_name", doc! { "name": 1 })];
    let first = ensure_indexes(&t.db, "names", &by_name).await.unwrap();
    assert_eq!(first.created, ["idx_name"]);
    let again = ensure_indexes(&t.db, "names", &by_name).await.unwrap();
    assert_eq!(again.unchanged, ["idx_name"], "{again:?}");
}
