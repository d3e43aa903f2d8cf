//! Several valid migrations in two modules and two groups, a `crate = ...` override, a
//! `&MigrationContext` parameter, and a custom error type.

mod facade {
    pub use schema_runtime as runtime;
}

mod events {
    use schema_runtime::bson::doc;
    use schema_runtime::{IndexSpec, MigrationContext, MigrationResult, migration};

    /// Doc comments and other attributes stay on the function.
    #[migration(id = "0001", description = "Events indexes")]
    #[allow(clippy::needless_return)]
    pub async fn events_indexes(ctx: &mut MigrationContext) -> MigrationResult {
        ctx.ensure_indexes("events", &[IndexSpec::new("idx_event_id", doc! { "event_id": 1 })])
            .await?;
        return Ok(());
    }

    #[migration(id = "2", description = "Seed", group = "analytics")]
    pub async fn analytics_seed(_ctx: &MigrationContext) -> Result<(), std::io::Error> {
        Ok(())
    }
}

mod users {
    use crate::facade::runtime::{MigrationContext, MigrationResult};

    #[crate::facade::runtime::migration(id = "0002", description = "Users", crate = crate::facade::runtime)]
    pub(crate) async fn users(_ctx: &mut MigrationContext) -> MigrationResult {
        Ok(())
    }

    #[schema_runtime::migration(id = "10", description = "Ten", down = undo_ten, destructive, transaction)]
    async fn ten(_ctx: &mut MigrationContext) -> MigrationResult {
        Ok(())
    }

    async fn undo_ten(_ctx: &mut MigrationContext) -> MigrationResult {
        Ok(())
    }
}

fn main() {
    // The functions stay callable by name.
    let _ = events::events_indexes;
    let _ = events::analytics_seed;
    let _ = users::users;
    let registry = schema_runtime::Registry::group("default").unwrap();
    let ids: Vec<String> = registry.migrations().iter().map(|m| m.id().to_string()).collect();
    assert_eq!(ids, ["0001", "0002", "10"]);
    let ten = registry.migrations()[2];
    assert!(ten.has_down() && ten.destructive() && ten.transaction());
    assert!(!registry.migrations()[0].has_down());
    assert_eq!(schema_runtime::Registry::groups(), ["analytics", "default"]);
}
