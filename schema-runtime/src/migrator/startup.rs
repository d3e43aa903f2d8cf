//! The first read of a start-up, retried while the server cannot be reached and bounded in time.

use std::time::Instant;

use super::Migrator;
use crate::error::driver::is_unreachable;
use crate::error::{Error, Result};
use crate::store::{MigrationRecord, VersionStore};

impl Migrator {
    /// The first read of a start-up: retried while the server cannot be reached, all tries
    /// together bounded by [`Migrator::startup_timeout`].
    pub(crate) async fn load_with_retries(
        &self,
        store: &VersionStore,
    ) -> Result<Vec<MigrationRecord>> {
        let deadline = Instant::now() + self.startup_timeout;
        let mut delay = self.retry_delay;
        let mut attempt = 1;
        let operation = format!("reading the applied migrations from {}", store.name());
        // What the try before the one cut short by the deadline ran into: the cause, which a
        // bare "no answer" would hide (a refused connection, a failed authentication).
        let mut previous: Option<String> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let loaded = match tokio::time::timeout(remaining, store.load()).await {
                Ok(loaded) => loaded,
                Err(_) => {
                    let cause = previous
                        .as_deref()
                        .map(|cause| format!("; the try before failed: {cause}"))
                        .unwrap_or_default();
                    return Err(Error::TimedOut {
                        operation: format!(
                            "{operation} (tried {attempt} time(s); Migrator::startup_timeout, SCHEMA_STARTUP_TIMEOUT_SECS{cause})"
                        ),
                        limit: self.startup_timeout,
                    });
                }
            };
            match loaded {
                Err(Error::Database {
                    operation,
                    migration,
                    source,
                    driver,
                    applied_before,
                }) if is_unreachable(&driver) => {
                    if attempt >= self.startup_attempts || Instant::now() + delay >= deadline {
                        return Err(Error::Database {
                            operation: format!(
                                "{operation} (the server could not be reached in {attempt} attempts)"
                            ),
                            migration,
                            source,
                            driver,
                            applied_before,
                        });
                    }
                    tracing::warn!(
                        attempt,
                        error = %source.joined(),
                        "the server cannot be reached; retrying"
                    );
                    previous = Some(source.joined());
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}
