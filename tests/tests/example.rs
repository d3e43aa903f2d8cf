//! The example's port of the reference system's nine migrations, applied to the real server:
//! every index by name, keys and options, the `events` validator, and adoption of a database the
//! reference system built.

use bson::{Bson, Document, doc};
use schema_example::migrations::event_json_schema;
use schema_runtime::Migrator;
use schema_runtime::collection_info;
use schema_runtime::list_indexes;
use schema_tests::{TestDb, documents};

/// (collection, index name, keys, unique, sparse, ttl seconds), as the reference creates them.
type ExpectedIndex = (
    &'static str,
    &'static str,
    Document,
    bool,
    bool,
    Option<i64>,
);

fn reference_indexes() -> Vec<ExpectedIndex> {
    let ix = |c, n, k, u, s, t| (c, n, k, u, s, t);
    vec![
        ix(
            "events",
            "idx_event_id_unique",
            doc! { "event_id": 1 },
            true,
            false,
            None,
        ),
        ix(
            "events",
            "idx_event_type_ts",
            doc! { "event_type": 1, "timestamp": -1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_aggregate_ts",
            doc! { "aggregate_id": 1, "timestamp": -1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_meta_correlation",
            doc! { "metadata.correlation_id": 1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_meta_user_ts",
            doc! { "metadata.user_id": 1, "timestamp": -1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_meta_service_ts",
            doc! { "metadata.service_name": 1, "timestamp": -1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_status_ts",
            doc! { "status": 1, "timestamp": -1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_payload_execution",
            doc! { "payload.execution_id": 1 },
            false,
            true,
            None,
        ),
        ix(
            "events",
            "idx_payload_pod",
            doc! { "payload.pod_name": 1 },
            false,
            true,
            None,
        ),
        ix(
            "events",
            "idx_ttl",
            doc! { "ttl_expires_at": 1 },
            false,
            false,
            Some(0),
        ),
        ix(
            "user_settings_snapshots",
            "idx_settings_user_unique",
            doc! { "user_id": 1 },
            true,
            false,
            None,
        ),
        ix(
            "user_settings_snapshots",
            "idx_settings_updated_at_desc",
            doc! { "updated_at": -1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_events_type_agg",
            doc! { "event_type": 1, "aggregate_id": 1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_events_agg_ts",
            doc! { "aggregate_id": 1, "timestamp": 1 },
            false,
            false,
            None,
        ),
        ix(
            "replay_sessions",
            "idx_replay_session_id",
            doc! { "session_id": 1 },
            true,
            false,
            None,
        ),
        ix(
            "replay_sessions",
            "idx_replay_status",
            doc! { "status": 1 },
            false,
            false,
            None,
        ),
        ix(
            "replay_sessions",
            "idx_replay_created_at_desc",
            doc! { "created_at": -1 },
            false,
            false,
            None,
        ),
        ix(
            "replay_sessions",
            "idx_replay_user",
            doc! { "user_id": 1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_events_exec_ts",
            doc! { "execution_id": 1, "timestamp": 1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_events_type_ts",
            doc! { "event_type": 1, "timestamp": 1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_events_user_ts",
            doc! { "metadata.user_id": 1, "timestamp": 1 },
            false,
            false,
            None,
        ),
        ix(
            "notifications",
            "idx_notif_user_created_desc",
            doc! { "user_id": 1, "created_at": -1 },
            false,
            false,
            None,
        ),
        ix(
            "notifications",
            "idx_notif_status_sched",
            doc! { "status": 1, "scheduled_for": 1 },
            false,
            false,
            None,
        ),
        ix(
            "notifications",
            "idx_notif_created_at",
            doc! { "created_at": 1 },
            false,
            false,
            None,
        ),
        ix(
            "notifications",
            "idx_notif_id_unique",
            doc! { "notification_id": 1 },
            true,
            false,
            None,
        ),
        ix(
            "notification_rules",
            "idx_rules_event_types",
            doc! { "event_types": 1 },
            false,
            false,
            None,
        ),
        ix(
            "notification_rules",
            "idx_rules_enabled",
            doc! { "enabled": 1 },
            false,
            false,
            None,
        ),
        ix(
            "notification_subscriptions",
            "idx_sub_user_channel_unique",
            doc! { "user_id": 1, "channel": 1 },
            true,
            false,
            None,
        ),
        ix(
            "notification_subscriptions",
            "idx_sub_enabled",
            doc! { "enabled": 1 },
            false,
            false,
            None,
        ),
        ix(
            "idempotency_keys",
            "idx_idem_key_unique",
            doc! { "key": 1 },
            true,
            false,
            None,
        ),
        ix(
            "idempotency_keys",
            "idx_idem_created_ttl",
            doc! { "created_at": 1 },
            false,
            false,
            Some(3600),
        ),
        ix(
            "idempotency_keys",
            "idx_idem_status",
            doc! { "status": 1 },
            false,
            false,
            None,
        ),
        ix(
            "idempotency_keys",
            "idx_idem_event_type",
            doc! { "event_type": 1 },
            false,
            false,
            None,
        ),
        ix(
            "sagas",
            "idx_saga_id_unique",
            doc! { "saga_id": 1 },
            true,
            false,
            None,
        ),
        ix(
            "sagas",
            "idx_saga_execution",
            doc! { "execution_id": 1 },
            false,
            false,
            None,
        ),
        ix(
            "sagas",
            "idx_saga_state",
            doc! { "state": 1 },
            false,
            false,
            None,
        ),
        ix(
            "sagas",
            "idx_saga_created_at",
            doc! { "created_at": 1 },
            false,
            false,
            None,
        ),
        ix(
            "sagas",
            "idx_saga_state_created",
            doc! { "state": 1, "created_at": 1 },
            false,
            false,
            None,
        ),
        ix(
            "execution_results",
            "idx_results_execution_unique",
            doc! { "execution_id": 1 },
            true,
            false,
            None,
        ),
        ix(
            "execution_results",
            "idx_results_created_at",
            doc! { "created_at": 1 },
            false,
            false,
            None,
        ),
        ix(
            "execution_results",
            "idx_results_user_created_desc",
            doc! { "user_id": 1, "created_at": -1 },
            false,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_event_id_unique",
            doc! { "event_id": 1 },
            true,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_topic",
            doc! { "original_topic": 1 },
            false,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_event_type",
            doc! { "event_type": 1 },
            false,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_failed_desc",
            doc! { "failed_at": -1 },
            false,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_retry_count",
            doc! { "retry_count": 1 },
            false,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_status",
            doc! { "status": 1 },
            false,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_next_retry",
            doc! { "next_retry_at": 1 },
            false,
            false,
            None,
        ),
        ix(
            "dlq_messages",
            "idx_dlq_created_ttl",
            doc! { "created_at": 1 },
            false,
            false,
            Some(7 * 24 * 3600),
        ),
        ix(
            "events",
            "idx_events_user_type",
            doc! { "metadata.user_id": 1, "event_type": 1 },
            false,
            false,
            None,
        ),
        ix(
            "events",
            "idx_events_type_user_ts",
            doc! { "event_type": 1, "metadata.user_id": 1, "timestamp": -1 },
            false,
            false,
            None,
        ),
    ]
}

fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}

fn keys_as_i64(keys: &Document) -> Vec<(String, Option<i64>)> {
    keys.iter().map(|(k, v)| (k.clone(), as_i64(v))).collect()
}

async fn has_text_indexes(db: &schema_runtime::mongodb::Database) -> bool {
    let probe = db.collection::<Document>("text_probe");
    let supported = db
        .run_command(doc! { "createIndexes": "text_probe", "indexes": [{ "key": { "t": "text" }, "name": "t" }] })
        .await
        .is_ok();
    probe.drop().await.unwrap();
    supported
}

#[tokio::test]
async fn the_nine_reference_migrations_build_the_reference_schema() {
    let t = TestDb::new("example").await;
    let report = Migrator::new(t.db.clone()).apply_all().await.unwrap();
    let applied: Vec<&str> = report.applied.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        applied,
        [
            "0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009"
        ]
    );

    let expected = reference_indexes();
    for collection in [
        "events",
        "user_settings_snapshots",
        "replay_sessions",
        "notifications",
        "notification_rules",
        "notification_subscriptions",
        "idempotency_keys",
        "sagas",
        "execution_results",
        "dlq_messages",
    ] {
        let listed = list_indexes(&t.db, collection, None).await.unwrap();
        let mut names: Vec<&str> = listed
            .iter()
            .map(|d| d.get_str("name").unwrap())
            .filter(|n| *n != "_id_" && *n != "idx_text_search")
            .collect();
        let mut wanted: Vec<&str> = expected
            .iter()
            .filter(|e| e.0 == collection)
            .map(|e| e.1)
            .collect();
        names.sort_unstable();
        wanted.sort_unstable();
        assert_eq!(names, wanted, "indexes of {collection}");
        for (_, name, keys, unique, sparse, ttl) in expected.iter().filter(|e| e.0 == collection) {
            let found = listed
                .iter()
                .find(|d| d.get_str("name").ok() == Some(*name))
                .unwrap();
            assert_eq!(
                keys_as_i64(found.get_document("key").unwrap()),
                keys_as_i64(keys),
                "{name} keys"
            );
            assert_eq!(
                found.get_bool("unique").unwrap_or(false),
                *unique,
                "{name} unique"
            );
            assert_eq!(
                found.get_bool("sparse").unwrap_or(false),
                *sparse,
                "{name} sparse"
            );
            assert_eq!(
                found.get("expireAfterSeconds").and_then(as_i64),
                *ttl,
                "{name} ttl"
            );
        }
    }

    // The text index exists exactly when the server supports text indexes.
    let events = list_indexes(&t.db, "events", None).await.unwrap();
    let text = events
        .iter()
        .find(|d| d.get_str("name").ok() == Some("idx_text_search"));
    if has_text_indexes(&t.db).await {
        let text = text.expect("idx_text_search on a server with text indexes");
        assert_eq!(text.get_str("language_override").unwrap(), "none");
        assert_eq!(text.get_str("default_language").unwrap(), "english");
    } else {
        assert!(text.is_none());
    }

    let info = collection_info(&t.db, "events", None)
        .await
        .unwrap()
        .unwrap();
    let options = info.get_document("options").unwrap();
    assert_eq!(
        options.get_document("validator").unwrap(),
        &doc! { "$jsonSchema": event_json_schema() }
    );
    assert_eq!(options.get_str("validationLevel").unwrap(), "moderate");
    assert_eq!(options.get_str("validationAction").unwrap(), "warn");

    let again = Migrator::new(t.db.clone()).apply_all().await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.already_applied.len(), 9);
}

#[tokio::test]
async fn a_database_the_reference_system_built_is_adopted_without_rerunning() {
    let t = TestDb::new("adopt").await;
    let ids = [
        ("0001_events_init", "Create events indexes and validator"),
        ("0002_user_settings_indexes", "Create user settings indexes"),
        ("0003_replay_indexes", "Create replay indexes"),
        ("0004_notification_indexes", "Create notification indexes"),
        ("0005_idempotency_indexes", "Create idempotency indexes"),
        ("0006_saga_indexes", "Create saga indexes"),
        (
            "0007_execution_results_indexes",
            "Create execution results indexes",
        ),
        ("0008_dlq_indexes", "Create DLQ indexes"),
        (
            "0009_event_store_extra_indexes",
            "Additional events indexes for event_store",
        ),
    ];
    let now = bson::DateTime::now();
    let versions = t.db.collection::<Document>("schema_versions");
    for (id, description) in ids {
        versions
            .insert_one(doc! { "_id": id, "description": description, "applied_at": now })
            .await
            .unwrap();
    }
    let report = Migrator::new(t.db.clone()).apply_all().await.unwrap();
    assert!(report.applied.is_empty(), "{:?}", report.applied);
    assert_eq!(report.already_applied.len(), 9);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        documents(&t.db, "schema_versions").await.len(),
        9,
        "no record added"
    );
    assert!(
        list_indexes(&t.db, "events", None)
            .await
            .unwrap()
            .is_empty(),
        "nothing ran"
    );
}
