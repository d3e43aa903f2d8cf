//! What a migration function receives.

use mongodb::{Collection, Database};

use crate::collection::{ValidationAction, ValidationLevel};
use schema_id::MigrationId;

use crate::error::Result;
use crate::indexes::{IndexReport, IndexSpec};
use crate::store::CheckpointTarget;
use crate::{collection, indexes};

/// The context a migration runs in: the database and, for a migration that runs in a
/// transaction, the session.
///
/// A migration is an ordinary function, so a test can call it with a context of its own:
///
/// ```no_run
/// # async fn demo(database: mongodb::Database) -> schema_runtime::MigrationResult {
/// use schema_runtime::{MigrationContext, MigrationResult};
///
/// async fn create_users(ctx: &mut MigrationContext) -> MigrationResult {
///     ctx.database().create_collection("users").await?;
///     Ok(())
/// }
///
/// let mut ctx = MigrationContext::new(database);
/// create_users(&mut ctx).await?;
/// # Ok(()) }
/// ```
pub struct MigrationContext {
    database: Database,
    migration: Option<MigrationId>,
    session: Option<mongodb::ClientSession>,
    progress_bars: bool,
    checkpoint: Option<CheckpointTarget>,
    /// Whether helpers that lose data (`drop_index`) may run: the migration is marked
    /// `destructive`, or this is a rollback or a context made by hand.
    destructive: bool,
    /// The estimated document count above which an index build warns.
    large_collection: u64,
    /// `commitQuorum` for index builds, when set.
    commit_quorum: Option<mongodb::bson::Bson>,
    /// What the helpers declared so far (indexes, validators, hidden and dropped indexes), for
    /// the record: the schema the migrations meant.
    declared: std::sync::Mutex<Vec<mongodb::bson::Document>>,
}

impl MigrationContext {
    /// A context on `database`, with no session.
    pub fn new(database: Database) -> Self {
        MigrationContext {
            database,
            migration: None,
            session: None,
            progress_bars: false,
            checkpoint: None,
            destructive: true,
            large_collection: crate::migrator::defaults::LARGE_COLLECTION,
            commit_quorum: None,
            declared: Default::default(),
        }
    }

    pub(crate) fn for_migration(
        database: Database,
        id: &MigrationId,
        progress_bars: bool,
        destructive: bool,
    ) -> Self {
        MigrationContext {
            database,
            migration: Some(id.clone()),
            session: None,
            progress_bars,
            checkpoint: None,
            destructive,
            large_collection: crate::migrator::defaults::LARGE_COLLECTION,
            commit_quorum: None,
            declared: Default::default(),
        }
    }

    /// Notes one declaration for the record.
    fn declare(&self, entry: mongodb::bson::Document) {
        if let Ok(mut declared) = self.declared.lock() {
            declared.push(entry);
        }
    }

    /// The declarations so far, in order, leaving none behind.
    pub(crate) fn take_declared(&mut self) -> Vec<mongodb::bson::Document> {
        self.declared
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub(crate) fn set_index_settings(
        &mut self,
        large_collection: u64,
        commit_quorum: Option<mongodb::bson::Bson>,
    ) {
        self.large_collection = large_collection;
        self.commit_quorum = commit_quorum;
    }

    pub(crate) fn set_checkpoint_target(&mut self, target: CheckpointTarget) {
        self.checkpoint = Some(target);
    }

    pub(crate) fn checkpoint_target(&self) -> Option<&CheckpointTarget> {
        self.checkpoint.as_ref()
    }

    /// Whether long helpers should draw progress bars (set by the CLI when run in a terminal).
    pub fn progress_bars(&self) -> bool {
        self.progress_bars
    }

    /// The database the migration applies to.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// A collection of the database.
    pub fn collection<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        self.database.collection(name)
    }

    /// The id of the migration being run (`None` for a context made with [`MigrationContext::new`]).
    pub fn migration_id(&self) -> Option<&MigrationId> {
        self.migration.as_ref()
    }

    /// The session of the transaction the migration runs in (`#[migration(transaction)]`), if it
    /// runs in one. Pass it to every write that belongs to the transaction:
    /// `collection.insert_one(doc).session(ctx.session().unwrap())`. It borrows the context, so
    /// fetch collections first, or use [`transaction`](Self::transaction), which gives the
    /// database and the session together.
    pub fn session(&mut self) -> Option<&mut mongodb::ClientSession> {
        self.session.as_mut()
    }

    /// The database and the session of the transaction the migration runs in
    /// (`#[migration(transaction)]`), usable together: fetch collections from the database
    /// while the session is borrowed, and pass the session to every write of the transaction.
    ///
    /// ```no_run
    /// use schema_runtime::bson::{Document, doc};
    /// use schema_runtime::{MigrationContext, MigrationResult, migration};
    ///
    /// #[migration(id = "0007", description = "Seed the default plans", transaction)]
    /// async fn seed_plans(ctx: &mut MigrationContext) -> MigrationResult {
    ///     let (db, session) = ctx.transaction()?;
    ///     let plans = db.collection::<Document>("plans");
    ///     let features = db.collection::<Document>("features");
    ///     plans.insert_one(doc! { "_id": "free", "seats": 3 }).session(&mut *session).await?;
    ///     features.insert_one(doc! { "_id": "sso", "plans": ["team"] }).session(&mut *session).await?;
    ///     Ok(()) // committed by the runner together with the migration's record
    /// }
    /// ```
    ///
    /// A migration that does not run in a transaction gets
    /// [`Error::NotInTransaction`](crate::Error::NotInTransaction) naming it.
    pub fn transaction(&mut self) -> Result<(&Database, &mut mongodb::ClientSession)> {
        match self.session.as_mut() {
            Some(session) => Ok((&self.database, session)),
            None => Err(crate::Error::NotInTransaction {
                migration: self.migration.clone(),
            }),
        }
    }

    /// Whether the migration runs in a transaction.
    pub fn in_transaction(&self) -> bool {
        self.session.is_some()
    }

    pub(crate) fn set_session(&mut self, session: mongodb::ClientSession) {
        self.session = Some(session);
    }

    pub(crate) fn take_session(&mut self) -> Option<mongodb::ClientSession> {
        self.session.take()
    }

    /// [`ensure_indexes`](crate::ensure_indexes) on this database; errors name this migration.
    pub async fn ensure_indexes(
        &self,
        collection: &str,
        indexes: &[IndexSpec],
    ) -> Result<IndexReport> {
        self.outside_transaction("ensure_indexes")?;
        let run = indexes::IndexRun {
            migration: self.migration_key(),
            large_collection: self.large_collection,
            progress_bars: self.progress_bars,
            commit_quorum: self.commit_quorum.clone(),
            record: self.checkpoint.clone(),
        };
        let report = indexes::ensure_indexes_for(&self.database, collection, indexes, &run).await?;
        for spec in indexes {
            let mut entry = mongodb::bson::doc! { "kind": "index", "collection": collection };
            entry.extend(spec.to_document());
            self.declare(entry);
        }
        Ok(report)
    }

    /// [`hide_index`](crate::hide_index) on this database: the query planner stops using the
    /// index while it is still maintained, so that dropping it later (in the next release) can
    /// be undone at once with [`unhide_index`](Self::unhide_index) if queries slow down.
    pub async fn hide_index(&self, collection: &str, name: &str) -> Result<bool> {
        self.outside_transaction("hide_index")?;
        let changed =
            indexes::set_hidden(&self.database, collection, name, true, self.migration_key())
                .await?;
        self.declare(mongodb::bson::doc! {
            "kind": "hidden", "collection": collection, "name": name, "hidden": true,
        });
        Ok(changed)
    }

    /// [`unhide_index`](crate::unhide_index) on this database.
    pub async fn unhide_index(&self, collection: &str, name: &str) -> Result<bool> {
        self.outside_transaction("unhide_index")?;
        let changed = indexes::set_hidden(
            &self.database,
            collection,
            name,
            false,
            self.migration_key(),
        )
        .await?;
        self.declare(mongodb::bson::doc! {
            "kind": "hidden", "collection": collection, "name": name, "hidden": false,
        });
        Ok(changed)
    }

    /// [`drop_index`](crate::drop_index) on this database. It loses the index (rebuilding it on
    /// a big collection takes long), so the migration must be marked `destructive`; otherwise
    /// this is [`Error::NotApplicable`](crate::Error::NotApplicable) and nothing is dropped.
    pub async fn drop_index(&self, collection: &str, name: &str) -> Result<bool> {
        self.outside_transaction("drop_index")?;
        self.only_if_destructive("drop_index", || {
            format!(
                "dropping index {name:?} of collection {collection:?} loses it; mark the migration #[migration(..., destructive)] (and hide the index a release before: ctx.hide_index)"
            )
        })?;
        let dropped =
            indexes::drop_index_for(&self.database, collection, name, self.migration_key()).await?;
        self.declare(mongodb::bson::doc! {
            "kind": "dropped_index", "collection": collection, "name": name,
        });
        Ok(dropped)
    }

    /// [`Error::NotApplicable`](crate::Error::NotApplicable) for `helper` in a migration not
    /// marked `destructive` (a context made by hand or a rollback may).
    fn only_if_destructive(&self, helper: &str, problem: impl FnOnce() -> String) -> Result<()> {
        match &self.migration {
            Some(id) if !self.destructive => Err(crate::Error::NotApplicable {
                command: helper.into(),
                id: id.clone(),
                problem: problem(),
            }),
            _ => Ok(()),
        }
    }

    /// [`Error::NotApplicable`](crate::Error::NotApplicable) for index, collection and
    /// validator changes in a migration that runs in a transaction. On a real MongoDB they
    /// cannot share it: inside a transaction `createIndexes` works only on a collection that
    /// transaction creates
    /// (<https://www.mongodb.com/docs/manual/core/transactions-operations/#create-collections-and-indexes-in-a-transaction>),
    /// and outside it, on a collection the transaction has written, the command waits for the
    /// transaction's locks until the server aborts the transaction
    /// (`transactionLifetimeLimitSeconds`, 60 s). Refused before anything is sent.
    fn outside_transaction(&self, helper: &str) -> Result<()> {
        match &self.migration {
            Some(id) if self.in_transaction() => Err(crate::Error::NotApplicable {
                command: helper.into(),
                id: id.clone(),
                problem: "the migration runs in a transaction, and MongoDB cannot change indexes, collections or validators in one on collections the transaction did not create (outside it they would wait on the transaction's own locks until the server aborts it after 60 s). Move the change into a migration of its own, without `transaction`, before this one".into(),
            }),
            _ => Ok(()),
        }
    }

    fn migration_key(&self) -> Option<&str> {
        self.migration.as_ref().map(MigrationId::as_str)
    }

    /// [`ensure_collection`](crate::ensure_collection) on this database: creates `name` with
    /// `options` unless it exists. The options are declared for the drift check, which reports
    /// the collection when it goes missing and an option when it differs.
    pub async fn ensure_collection(
        &self,
        name: &str,
        options: mongodb::bson::Document,
    ) -> Result<collection::CollectionChange> {
        self.outside_transaction("ensure_collection")?;
        let change = collection::ensure_collection_for(
            &self.database,
            name,
            options.clone(),
            self.migration_key(),
        )
        .await?;
        self.declare(mongodb::bson::doc! {
            "kind": "collection", "collection": name, "options": options,
        });
        Ok(change)
    }

    /// Drops collection `name` and every document in it; `false` when it did not exist. It
    /// loses data, so the migration must be marked `destructive`; otherwise this is
    /// [`Error::NotApplicable`](crate::Error::NotApplicable) and nothing is dropped. What earlier
    /// migrations declared about the collection (indexes, validator) no longer counts for the
    /// drift check.
    pub async fn drop_collection(&self, name: &str) -> Result<bool> {
        self.outside_transaction("drop_collection")?;
        self.only_if_destructive("drop_collection", || {
            format!(
                "dropping collection {name:?} loses its documents; mark the migration #[migration(..., destructive)]"
            )
        })?;
        let existed = collection::collection_info(&self.database, name, self.migration_key())
            .await?
            .is_some();
        if existed {
            self.database
                .collection::<mongodb::bson::Document>(name)
                .drop()
                .await
                .map_err(|e| {
                    crate::Error::database(
                        format!("dropping collection {name:?}"),
                        self.migration_key(),
                        e,
                    )
                })?;
        }
        self.declare(mongodb::bson::doc! { "kind": "dropped_collection", "collection": name });
        Ok(existed)
    }

    /// Applies a model ([`Collection`](trait@crate::Collection), usually derived): its
    /// validator with its validation level and action (as
    /// [`ensure_validator`](Self::ensure_validator): documents already in the collection that
    /// the validator would refuse stop the migration, changing nothing), then its indexes (as
    /// [`ensure_indexes`](Self::ensure_indexes)). Both are declared for the drift check.
    ///
    /// ```no_run
    /// use schema_runtime::{Collection, MigrationContext, MigrationResult, migration};
    ///
    /// #[derive(serde::Serialize, Collection)]
    /// #[collection(name = "companies")]
    /// struct Company {
    ///     #[index(unique)]
    ///     domain: String,
    ///     name: String,
    /// }
    ///
    /// #[migration(id = "0012", description = "Companies as the model says")]
    /// async fn companies(ctx: &mut MigrationContext) -> MigrationResult {
    ///     ctx.ensure_model::<Company>().await?;
    ///     Ok(())
    /// }
    /// ```
    pub async fn ensure_model<T: crate::Collection>(&self) -> Result<()> {
        self.ensure_validator(
            T::NAME,
            T::validator(),
            T::validation_level(),
            T::validation_action(),
        )
        .await?;
        let indexes = T::indexes();
        if !indexes.is_empty() {
            self.ensure_indexes(T::NAME, &indexes).await?;
        }
        Ok(())
    }

    /// [`ensure_validator`](crate::ensure_validator) on this database.
    pub async fn ensure_validator(
        &self,
        collection: &str,
        validator: mongodb::bson::Document,
        level: ValidationLevel,
        action: ValidationAction,
    ) -> Result<collection::CollectionChange> {
        self.ensure_validator_with(
            collection,
            validator,
            level,
            action,
            collection::ExistingDocuments::Refuse,
        )
        .await
        .map(|report| report.change)
    }

    /// [`ensure_validator_with`](crate::ensure_validator_with) on this database.
    pub async fn ensure_validator_with(
        &self,
        collection: &str,
        validator: mongodb::bson::Document,
        level: ValidationLevel,
        action: ValidationAction,
        existing: collection::ExistingDocuments,
    ) -> Result<collection::ValidatorReport> {
        self.outside_transaction("ensure_validator")?;
        let report = collection::ensure_validator_for(
            &self.database,
            collection,
            validator.clone(),
            level,
            action,
            existing,
            self.migration.as_ref().map(MigrationId::as_str),
        )
        .await?;
        self.declare(mongodb::bson::doc! {
            "kind": "validator",
            "collection": collection,
            "validator": validator,
            "validationLevel": level.as_str(),
            "validationAction": action.as_str(),
        });
        Ok(report)
    }
}
