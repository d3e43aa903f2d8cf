//! Testing your own migrations against a real server (feature `testing`, for dev-dependencies):
//! a throwaway database per test, dropped afterwards, with the registry applied up to the id the
//! test needs. A data migration is then tested the way it runs in production: documents in the
//! old shape, apply it, assert the new shape.
//!
//! ```no_run
//! use schema_runtime::bson::{Document, doc};
//! use schema_runtime::testing::TestDatabase;
//! use schema_runtime::{MigrationContext, MigrationResult, migration};
//!
//! #[migration(id = "0011", description = "Create the users collection")]
//! async fn users(ctx: &mut MigrationContext) -> MigrationResult {
//!     ctx.database().create_collection("users").await?;
//!     Ok(())
//! }
//!
//! #[migration(id = "0012", description = "Split full names")]
//! async fn split_names(ctx: &mut MigrationContext) -> MigrationResult {
//!     ctx.batches("users")
//!         .filter(doc! { "full_name": { "$exists": true } })
//!         .update_each(|user| {
//!             let full = user.get_str("full_name").ok()?;
//!             let (first, last) = full.split_once(' ')?;
//!             Some(doc! { "$set": { "first": first, "last": last }, "$unset": { "full_name": "" } })
//!         })
//!         .await?;
//!     Ok(())
//! }
//!
//! #[tokio::test]
//! async fn split_names_moves_full_names_into_first_and_last() {
//!     // A fresh database on MONGODB_URI with every migration up to 0011 applied.
//!     let db = TestDatabase::up_to("0011").await;
//!     let users = db.database().collection::<Document>("users");
//!     users.insert_one(doc! { "_id": 1, "full_name": "Ada Lovelace" }).await.unwrap();
//!
//!     let report = db.apply_up_to("0012").await.unwrap();
//!     assert_eq!(report.applied.len(), 1);
//!
//!     let user = users.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
//!     assert_eq!(user, doc! { "_id": 1, "first": "Ada", "last": "Lovelace" });
//! } // the database is dropped here
//! ```
//!
//! The same test with the attribute, which makes the database (named after the test) and the
//! async runtime (no `#[tokio::test]` needed):
//!
//! ```no_run
//! use schema_runtime::bson::{Document, doc};
//! use schema_runtime::testing::TestDatabase;
//!
//! #[schema_runtime::test(up_to = "0011")]
//! async fn split_names_moves_full_names_into_first_and_last(db: TestDatabase) {
//!     let users = db.database().collection::<Document>("users");
//!     users.insert_one(doc! { "_id": 1, "full_name": "Ada Lovelace" }).await.unwrap();
//!     db.apply_up_to("0012").await.unwrap();
//!     // ...
//! }
//! ```
//!
//! Its keys: `up_to = "ID"` (apply the migrations up to this id first), `group = "name"` (the
//! migrations of another group), `crate = path` (when `schema_runtime` is re-exported). The test
//! may return a `Result`, and other attributes (`#[ignore]`) stay.
//!
//! The server comes from `MONGODB_URI` (a local `mongod`, or the test server this repository's
//! `scripts/with-local-server` starts); without it the test fails at once and says so.

use std::sync::atomic::{AtomicUsize, Ordering};

use mongodb::{Client, Database};

use crate::migrator::{Migrator, Report};
use crate::registry::Registry;
use crate::{Error, MigrationId, Result};

/// A fresh database for one test, dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    database: Database,
    group: Option<String>,
    /// The server to drop the database through, with a client of its own (the test's client
    /// may belong to a runtime that is shutting down).
    uri: Option<String>,
}

impl TestDatabase {
    /// A fresh, empty database on `MONGODB_URI`. Panics with what to do when the variable is
    /// unset or the server cannot be reached: a test without its server must not pass.
    pub async fn new() -> TestDatabase {
        Self::labelled("test").await
    }

    /// A fresh database on `MONGODB_URI` whose name starts with `label` (for finding it in the
    /// server's logs); panics as [`new`](Self::new) does.
    pub async fn labelled(label: &str) -> TestDatabase {
        let uri = match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.trim().is_empty() => uri,
            _ => panic!(
                "MONGODB_URI is not set: point it at a MongoDB server for tests, such as mongodb://127.0.0.1:27017"
            ),
        };
        let client = Client::with_uri_str(&uri).await.unwrap_or_else(|e| {
            panic!(
                "MONGODB_URI: {}",
                crate::redact::uri_problem(&uri, &e.to_string())
            )
        });
        Self::with_client(&client, label).await
    }

    /// A fresh database reached through `client`, named after `label`.
    pub async fn with_client(client: &Client, label: &str) -> TestDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect();
        let name = format!(
            "t_{label}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let database = client.database(&name);
        if let Err(e) = database.drop().await {
            panic!(
                "the test server cannot be reached ({}): is MONGODB_URI right?",
                crate::scrub(&e.to_string())
            );
        }
        TestDatabase {
            database,
            group: None,
            uri: std::env::var("MONGODB_URI").ok(),
        }
    }

    /// A fresh database on `MONGODB_URI` with every migration of the default group up to and
    /// including `id` applied; panics when they cannot be.
    pub async fn up_to(id: &str) -> TestDatabase {
        let db = Self::new().await;
        if let Err(e) = db.apply_up_to(id).await {
            panic!("applying the migrations up to {id} failed: {e}");
        }
        db
    }

    /// What `#[schema_runtime::test]` calls: a fresh database named after the test, for
    /// `group` (the default group when `None`), with its migrations up to `up_to` applied.
    #[doc(hidden)]
    pub async fn for_test(test: &str, group: Option<&str>, up_to: Option<&str>) -> TestDatabase {
        let db = Self::labelled(test).await;
        let db = match group {
            Some(group) => db.group(group),
            None => db,
        };
        if let Some(id) = up_to
            && let Err(e) = db.apply_up_to(id).await
        {
            panic!("applying the migrations up to {id} failed: {e}");
        }
        db
    }

    /// The same database for the migrations of `group` instead of the default group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.database.name()
    }

    /// A migrator for this database (and group), with default settings; configure it further as
    /// the application does.
    pub fn migrator(&self) -> Migrator {
        let migrator = Migrator::new(self.database.clone());
        match &self.group {
            Some(group) => migrator.group(group.clone()),
            None => migrator,
        }
    }

    /// Applies the registered migrations up to and including `id` (what `migrate up --to`
    /// does). `id` must be registered.
    pub async fn apply_up_to(&self, id: &str) -> Result<Report> {
        let id = MigrationId::parse(id).map_err(|e| Error::Config {
            setting: "apply_up_to".into(),
            problem: format!("{id:?} is not a migration id: {e}"),
        })?;
        let migrator = self.migrator();
        let registry: Registry = migrator.registry()?;
        if !registry.migrations().iter().any(|m| m.id() == id) {
            return Err(Error::NotApplicable {
                command: "apply_up_to".into(),
                id,
                problem: "no registered migration has this id".into(),
            });
        }
        migrator.up(Some(&id)).await
    }

    /// Applies every registered migration of the group.
    pub async fn apply_all(&self) -> Result<Report> {
        self.migrator().up(None).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name().to_owned();
        let Some(uri) = self.uri.take() else {
            // No address to reach the server with a client of our own: ask the test's runtime,
            // if there is one still, and do not wait.
            let database = self.database.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { database.drop().await });
            }
            return;
        };
        // The test's runtime may be shutting down, and blocking inside it is not allowed: drop
        // the database from a thread with a runtime and a client of its own, and wait for it.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime
                .block_on(async {
                    let client = Client::with_uri_str(&uri).await?;
                    client.database(&name).drop().await?;
                    client.shutdown().await;
                    Ok::<_, mongodb::error::Error>(())
                })
                .ok()
        })
        .join();
    }
}
