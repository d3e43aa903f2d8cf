//! Background migrations (`#[migration(background)]`): start-up applies what the application
//! needs and returns; the process that holds the lock applies the rest in a task while it
//! serves, renewing its lease. A holder that dies is taken over as usual: its lease expires and
//! the next process that starts (or waits in `wait_for_background`) takes the lock.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use schema_id::MigrationId;
use tracing::Instrument;

use super::exec::release_after;
use super::{Migrator, Report, log_warning};
use crate::error::Result;
use crate::lock::Lease;
use crate::registry::Registry;

impl Migrator {
    /// Leaves `background` to a task of this process when it holds (or can take) the lock, and
    /// otherwise to the process that holds it.
    pub(super) async fn hand_off(
        &self,
        registry: Registry,
        mut report: Report,
        background: Vec<MigrationId>,
        floor: i64,
        lease: Option<Lease>,
    ) -> Result<Report> {
        let behind: Vec<String> = registry
            .migrations()
            .iter()
            .filter(|m| !m.background() && background.contains(&m.id()))
            .map(|m| m.id().to_string())
            .collect();
        if !behind.is_empty() {
            tracing::warn!(
                migrations = ?behind,
                "these migrations are not marked background but come after one, so they are applied after it, in the background too: the application starts without them"
            );
        }
        let lease = match lease {
            Some(lease) => Some(lease),
            None => self.lock().try_acquire(floor).await?,
        };
        match lease {
            Some(lease) => {
                let ids: Vec<String> = background.iter().map(ToString::to_string).collect();
                lease.announce_background(&ids).await;
                report.took_lock = true;
                report.runs_background = true;
                tracing::info!(
                    migrations = ?background,
                    "start-up is done; this process applies the background migrations while it serves"
                );
                self.spawn_background(registry, lease);
            }
            None => tracing::info!(
                migrations = ?background,
                "start-up is done; the process that holds the lock applies the background migrations"
            ),
        }
        report.background = background;
        Ok(report)
    }

    fn spawn_background(&self, registry: Registry, lease: Lease) {
        let migrator = self.clone();
        let span = tracing::info_span!(
            "background",
            database = self.database.name(),
            group = %self.group,
        );
        tokio::spawn(
            async move {
                let store = migrator.store();
                let outcome =
                    AssertUnwindSafe(migrator.apply_locked(&registry, &store, &lease, None))
                        .catch_unwind()
                        .await;
                match release_after(lease, outcome).await {
                    Ok((report, not_released)) => {
                        tracing::info!(
                            applied = ?report.applied.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(),
                            "background migrations applied"
                        );
                        report.warnings.iter().for_each(log_warning);
                        not_released.iter().for_each(log_warning);
                    }
                    Err(error) => tracing::error!(
                        "background migrations stopped: {error}; the next start-up (or wait_for_background) runs them again"
                    ),
                }
            }
            .instrument(span),
        );
    }

    /// Waits up to `limit` until every registered migration is applied, background ones
    /// included, for tests, jobs and processes about to exit. While another process (or this
    /// one's background task) holds the lock it waits; when the holder died, it takes the lock
    /// and applies what is left itself, as `up` does; a background migration that failed is run
    /// again here and its error returned. Returns what this call applied.
    pub async fn wait_for_background(&self, limit: Duration) -> Result<Report> {
        self.clone().max_wait(limit).up(None).await
    }
}
