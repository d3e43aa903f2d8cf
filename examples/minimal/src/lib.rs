//! The help desk's schema: its migrations live in the library, which the service and the tests
//! both link.

use schema_runtime::bson::doc;
use schema_runtime::{IndexSpec, MigrationContext, MigrationResult, migration};

#[migration(id = "0001", description = "Index tickets and expire sessions")]
pub async fn tickets_and_sessions(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_indexes(
        "tickets",
        &[
            IndexSpec::new("idx_tickets_status", doc! { "status": 1, "created_at": -1 }),
            IndexSpec::new("idx_tickets_number", doc! { "number": 1 }).unique(),
        ],
    )
    .await?;
    ctx.ensure_indexes(
        "sessions",
        &[IndexSpec::new("idx_sessions_ttl", doc! { "last_seen": 1 })
            .ttl(std::time::Duration::from_secs(7 * 24 * 3600))],
    )
    .await?;
    Ok(())
}
