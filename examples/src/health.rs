//! A `/health` route for the service: database reachability and schema version, from one query.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use schema_runtime::Migrator;
use serde_json::{Value, json};

/// The router with `GET /health`: 200 when the database answers and nothing is pending or failed
/// (`"status": "ok"`; a database ahead of this binary, as during a rolling deploy, is still ok),
/// 503 otherwise (`"degraded"` or `"unavailable"`). The body carries the migrations' status.
/// With the drift check on (`SCHEMA_CHECK_DRIFT=true`, [`Migrator::check_drift`]) it also lists,
/// under `"drift"`, each difference between the database and the schema the migrations declared;
/// drift does not make the route fail (the service still works with a hand-made index), so a
/// readiness probe does not take every replica out over it: alert on the list instead.
pub fn router(migrator: Migrator) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(Arc::new(migrator))
}

async fn health(State(migrator): State<Arc<Migrator>>) -> (StatusCode, Json<Value>) {
    let status = migrator.status().await;
    let (code, word) = if !status.reachable {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else if status.pending > status.pending_background
        || status
            .failed
            .iter()
            .any(|id| !status.background.contains(id))
    {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    } else if !status.failed.is_empty() {
        // Only a background migration failed: the service works; it runs again at the next
        // start-up. Alert on it rather than take every replica out.
        (StatusCode::OK, "background_failed")
    } else if status.pending_background > 0 {
        // Only background migrations are left: the service works while they run.
        (StatusCode::OK, "migrating")
    } else {
        (StatusCode::OK, "ok")
    };
    (
        code,
        Json(json!({
            "status": word,
            "database": {
                "reachable": status.reachable,
                "name": status.database,
                "schema_version": status.highest_applied,
            },
            "drift": status.drift,
            "migrations": status,
        })),
    )
}
