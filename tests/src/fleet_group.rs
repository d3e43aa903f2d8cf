//! The migrations of group `fleet`, in the harness's library so that the test processes (the
//! `migrate` binary) and the test binaries register the same ones: a fleet runner killed in one
//! is resumed by the other.

use bson::doc;
use schema_runtime::{MigrationContext, MigrationResult, migration};

use crate::{bump, flag};

/// The group's name.
pub const GROUP: &str = "fleet";

#[migration(id = "0001", description = "Create tenant indexes", group = "fleet")]
async fn tenant_indexes(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "fleet_0001").await?;
    ctx.ensure_indexes(
        "tickets",
        &[schema_runtime::IndexSpec::new(
            "idx_status",
            doc! { "status": 1 },
        )],
    )
    .await?;
    Ok(())
}

#[migration(id = "0002", description = "Seed tenant settings", group = "fleet")]
async fn tenant_settings(ctx: &mut MigrationContext) -> MigrationResult {
    if flag(ctx.database(), "fail").await {
        return Err("this tenant's settings are invalid".into());
    }
    bump(ctx.database(), "fleet_0002").await?;
    if flag(ctx.database(), "slow").await {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    Ok(())
}
