//! The reference system's migrations `0001` to `0009`.

use std::time::Duration;

use schema_runtime::bson::{Document, doc};
use schema_runtime::{
    Error, IndexSpec, MigrationContext, MigrationResult, ValidationAction, ValidationLevel,
    migration,
};

/// The `$jsonSchema` of `events` (required fields and their BSON types).
pub fn event_json_schema() -> Document {
    doc! {
        "bsonType": "object",
        "required": ["event_id", "event_type", "timestamp", "event_version"],
        "properties": {
            "event_id": { "bsonType": "string" },
            "event_type": { "bsonType": "string" },
            "timestamp": { "bsonType": "date" },
            "event_version": { "bsonType": "string", "pattern": "^\\d+\\.\\d+$" },
            "aggregate_id": { "bsonType": ["string", "null"] },
            "metadata": { "bsonType": "object" },
            "payload": { "bsonType": "object" },
            "stored_at": { "bsonType": ["date", "null"] },
            "ttl_expires_at": { "bsonType": ["date", "null"] },
            "status": { "bsonType": ["string", "null"] },
        },
    }
}

/// Whether `error` is a server saying it has no text indexes at all (and nothing else).
pub fn is_text_index_unsupported(error: &Error) -> bool {
    const CANNOT_CREATE_INDEX: i32 = 67;
    match error.driver_error().map(|e| e.kind.as_ref()) {
        Some(schema_runtime::mongodb::error::ErrorKind::Command(command)) => {
            command.code == CANNOT_CREATE_INDEX
                && command.message.contains("text indexes are not supported")
        }
        _ => false,
    }
}

#[migration(id = "0001", description = "Create events indexes and validator")]
pub async fn events_init(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "events",
        &[
            IndexSpec::new("idx_event_id_unique", doc! { "event_id": 1 }).unique(),
            IndexSpec::new(
                "idx_event_type_ts",
                doc! { "event_type": 1, "timestamp": -1 },
            ),
            IndexSpec::new(
                "idx_aggregate_ts",
                doc! { "aggregate_id": 1, "timestamp": -1 },
            ),
            IndexSpec::new(
                "idx_meta_correlation",
                doc! { "metadata.correlation_id": 1 },
            ),
            IndexSpec::new(
                "idx_meta_user_ts",
                doc! { "metadata.user_id": 1, "timestamp": -1 },
            ),
            IndexSpec::new(
                "idx_meta_service_ts",
                doc! { "metadata.service_name": 1, "timestamp": -1 },
            ),
            IndexSpec::new("idx_status_ts", doc! { "status": 1, "timestamp": -1 }),
            IndexSpec::new("idx_payload_execution", doc! { "payload.execution_id": 1 }).sparse(),
            IndexSpec::new("idx_payload_pod", doc! { "payload.pod_name": 1 }).sparse(),
            // TTL on ttl_expires_at: documents without it never expire.
            IndexSpec::new("idx_ttl", doc! { "ttl_expires_at": 1 }).ttl(Duration::ZERO),
        ],
    )
    .await?;

    // language_override "none": the events' own `language` field is not a text-search language.
    let text = IndexSpec::new(
        "idx_text_search",
        doc! {
            "event_type": "text",
            "metadata.service_name": "text",
            "metadata.user_id": "text",
            "payload": "text",
        },
    )
    .language_override("none")
    .default_language("english");
    match ctx.ensure_indexes("events", &[text]).await {
        Ok(_) => {}
        Err(error) if is_text_index_unsupported(&error) => tracing::warn!(
            "this server has no text indexes, so idx_text_search was not created; on a real mongod it is"
        ),
        Err(error) => return Err(error.into()),
    }

    ctx.ensure_validator(
        "events",
        doc! { "$jsonSchema": event_json_schema() },
        ValidationLevel::Moderate,
        ValidationAction::Warn,
    )
    .await?;
    Ok(())
}

#[migration(id = "0002", description = "Create user settings indexes")]
pub async fn user_settings(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "user_settings_snapshots",
        &[
            IndexSpec::new("idx_settings_user_unique", doc! { "user_id": 1 }).unique(),
            IndexSpec::new("idx_settings_updated_at_desc", doc! { "updated_at": -1 }),
        ],
    )
    .await?;
    ctx.ensure_indexes(
        "events",
        &[
            IndexSpec::new(
                "idx_events_type_agg",
                doc! { "event_type": 1, "aggregate_id": 1 },
            ),
            IndexSpec::new(
                "idx_events_agg_ts",
                doc! { "aggregate_id": 1, "timestamp": 1 },
            ),
        ],
    )
    .await?;
    Ok(())
}

#[migration(id = "0003", description = "Create replay indexes")]
pub async fn replay(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "replay_sessions",
        &[
            IndexSpec::new("idx_replay_session_id", doc! { "session_id": 1 }).unique(),
            IndexSpec::new("idx_replay_status", doc! { "status": 1 }),
            IndexSpec::new("idx_replay_created_at_desc", doc! { "created_at": -1 }),
            IndexSpec::new("idx_replay_user", doc! { "user_id": 1 }),
        ],
    )
    .await?;
    ctx.ensure_indexes(
        "events",
        &[
            IndexSpec::new(
                "idx_events_exec_ts",
                doc! { "execution_id": 1, "timestamp": 1 },
            ),
            IndexSpec::new(
                "idx_events_type_ts",
                doc! { "event_type": 1, "timestamp": 1 },
            ),
            IndexSpec::new(
                "idx_events_user_ts",
                doc! { "metadata.user_id": 1, "timestamp": 1 },
            ),
        ],
    )
    .await?;
    Ok(())
}

#[migration(id = "0004", description = "Create notification indexes")]
pub async fn notifications(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "notifications",
        &[
            IndexSpec::new(
                "idx_notif_user_created_desc",
                doc! { "user_id": 1, "created_at": -1 },
            ),
            IndexSpec::new(
                "idx_notif_status_sched",
                doc! { "status": 1, "scheduled_for": 1 },
            ),
            IndexSpec::new("idx_notif_created_at", doc! { "created_at": 1 }),
            IndexSpec::new("idx_notif_id_unique", doc! { "notification_id": 1 }).unique(),
        ],
    )
    .await?;
    ctx.ensure_indexes(
        "notification_rules",
        &[
            IndexSpec::new("idx_rules_event_types", doc! { "event_types": 1 }),
            IndexSpec::new("idx_rules_enabled", doc! { "enabled": 1 }),
        ],
    )
    .await?;
    ctx.ensure_indexes(
        "notification_subscriptions",
        &[
            IndexSpec::new(
                "idx_sub_user_channel_unique",
                doc! { "user_id": 1, "channel": 1 },
            )
            .unique(),
            IndexSpec::new("idx_sub_enabled", doc! { "enabled": 1 }),
        ],
    )
    .await?;
    Ok(())
}

#[migration(id = "0005", description = "Create idempotency indexes")]
pub async fn idempotency(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "idempotency_keys",
        &[
            IndexSpec::new("idx_idem_key_unique", doc! { "key": 1 }).unique(),
            IndexSpec::new("idx_idem_created_ttl", doc! { "created_at": 1 })
                .ttl(Duration::from_secs(3600)),
            IndexSpec::new("idx_idem_status", doc! { "status": 1 }),
            IndexSpec::new("idx_idem_event_type", doc! { "event_type": 1 }),
        ],
    )
    .await?;
    Ok(())
}

#[migration(id = "0006", description = "Create saga indexes")]
pub async fn sagas(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "sagas",
        &[
            IndexSpec::new("idx_saga_id_unique", doc! { "saga_id": 1 }).unique(),
            IndexSpec::new("idx_saga_execution", doc! { "execution_id": 1 }),
            IndexSpec::new("idx_saga_state", doc! { "state": 1 }),
            IndexSpec::new("idx_saga_created_at", doc! { "created_at": 1 }),
            IndexSpec::new(
                "idx_saga_state_created",
                doc! { "state": 1, "created_at": 1 },
            ),
        ],
    )
    .await?;
    Ok(())
}

#[migration(id = "0007", description = "Create execution results indexes")]
pub async fn execution_results(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "execution_results",
        &[
            IndexSpec::new("idx_results_execution_unique", doc! { "execution_id": 1 }).unique(),
            IndexSpec::new("idx_results_created_at", doc! { "created_at": 1 }),
            IndexSpec::new(
                "idx_results_user_created_desc",
                doc! { "user_id": 1, "created_at": -1 },
            ),
        ],
    )
    .await?;
    Ok(())
}

#[migration(id = "0008", description = "Create DLQ indexes")]
pub async fn dlq(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "dlq_messages",
        &[
            IndexSpec::new("idx_dlq_event_id_unique", doc! { "event_id": 1 }).unique(),
            IndexSpec::new("idx_dlq_topic", doc! { "original_topic": 1 }),
            IndexSpec::new("idx_dlq_event_type", doc! { "event_type": 1 }),
            IndexSpec::new("idx_dlq_failed_desc", doc! { "failed_at": -1 }),
            IndexSpec::new("idx_dlq_retry_count", doc! { "retry_count": 1 }),
            IndexSpec::new("idx_dlq_status", doc! { "status": 1 }),
            IndexSpec::new("idx_dlq_next_retry", doc! { "next_retry_at": 1 }),
            IndexSpec::new("idx_dlq_created_ttl", doc! { "created_at": 1 })
                .ttl(Duration::from_secs(7 * 24 * 3600)),
        ],
    )
    .await?;
    Ok(())
}

#[migration(id = "0009", description = "Additional events indexes for event_store")]
pub async fn event_store_extra(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "events",
        &[
            IndexSpec::new(
                "idx_events_user_type",
                doc! { "metadata.user_id": 1, "event_type": 1 },
            ),
            IndexSpec::new(
                "idx_events_type_user_ts",
                doc! { "event_type": 1, "metadata.user_id": 1, "timestamp": -1 },
            ),
        ],
    )
    .await?;
    Ok(())
}
