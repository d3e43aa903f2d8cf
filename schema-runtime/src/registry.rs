//! The registry: every migration the `#[migration]` attribute registered in this binary.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use schema_id::MigrationId;

use crate::context::MigrationContext;
use crate::error::{BoxError, Error, Result};
use crate::store::Declared;

/// The future a registered migration returns.
pub type MigrationFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

/// The function the attribute generates to call a migration.
pub type RunFn = for<'a> fn(&'a mut MigrationContext) -> MigrationFuture<'a>;

/// What the attribute knows about a migration at compile time.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct MigrationMeta {
    pub id: &'static str,
    pub description: &'static str,
    pub group: &'static str,
    pub checksum: &'static str,
    pub module: &'static str,
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub transaction: bool,
    pub destructive: bool,
    pub background: bool,
    /// The time limit from `#[migration(timeout = "...")]`, in milliseconds; 0 for none.
    pub timeout_ms: u64,
}

/// One registered migration.
pub struct Migration {
    meta: MigrationMeta,
    run: RunFn,
    down: Option<RunFn>,
}

inventory::collect!(Migration);

impl Migration {
    #[doc(hidden)]
    pub const fn __new(meta: MigrationMeta, run: RunFn, down: Option<RunFn>) -> Self {
        Migration { meta, run, down }
    }

    /// The id as written in the attribute.
    pub fn id(&self) -> MigrationId {
        // The attribute only accepts valid ids.
        MigrationId::parse(self.meta.id).expect("the #[migration] attribute checked this id")
    }

    /// The description from the attribute.
    pub fn description(&self) -> &'static str {
        self.meta.description
    }

    /// The group (`"default"` unless the attribute names one).
    pub fn group(&self) -> &'static str {
        self.meta.group
    }

    /// Hex SHA-256 of the function body's tokens.
    pub fn checksum(&self) -> &'static str {
        self.meta.checksum
    }

    /// Whether it runs in a transaction (`#[migration(transaction)]`).
    pub fn transaction(&self) -> bool {
        self.meta.transaction
    }

    /// Whether it drops or rewrites data (`#[migration(destructive)]`): start-up applies it only
    /// when destructive migrations are allowed.
    pub fn destructive(&self) -> bool {
        self.meta.destructive
    }

    /// Whether the application does not need it to start (`#[migration(background)]`):
    /// [`Migrator::apply_all`](crate::Migrator::apply_all) returns while a lock holder applies
    /// it and what follows it.
    pub fn background(&self) -> bool {
        self.meta.background
    }

    /// Its time limit (`#[migration(timeout = "10m")]`), if it has one.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        (self.meta.timeout_ms > 0).then(|| std::time::Duration::from_millis(self.meta.timeout_ms))
    }

    /// Whether it has a rollback function (`#[migration(down = ...)]`).
    pub fn has_down(&self) -> bool {
        self.down.is_some()
    }

    /// Runs its rollback function, if it has one.
    pub fn run_down<'a>(&self, context: &'a mut MigrationContext) -> Option<MigrationFuture<'a>> {
        self.down.map(|down| down(context))
    }

    /// What its record says of it.
    pub(crate) fn declared(&self) -> Declared<'static> {
        Declared {
            description: self.description(),
            checksum: self.checksum(),
            function: self.function(),
        }
    }

    /// `module::function`, for messages.
    pub fn function(&self) -> String {
        format!("{}::{}", self.meta.module, self.meta.function)
    }

    /// The source file as the compiler was given it (relative to the workspace root in a
    /// cargo build), as `file!()` says.
    pub fn file(&self) -> &'static str {
        self.meta.file
    }

    /// `module::function (file:line)`, for messages that must tell two functions apart.
    pub fn location(&self) -> String {
        format!(
            "{} ({}:{})",
            self.function(),
            self.meta.file,
            self.meta.line
        )
    }

    /// Runs the migration's function.
    pub fn run<'a>(&self, context: &'a mut MigrationContext) -> MigrationFuture<'a> {
        (self.run)(context)
    }
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("id", &self.meta.id)
            .field("description", &self.meta.description)
            .field("group", &self.meta.group)
            .field("function", &self.function())
            .finish()
    }
}

/// The migrations of one group, in id order, without duplicates.
///
/// ```no_run
/// let registry = schema_runtime::Registry::group("default")?;
/// for migration in registry.migrations() {
///     println!("{} {}", migration.id(), migration.description());
/// }
/// # Ok::<(), schema_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    group: String,
    migrations: Vec<&'static Migration>,
}

impl Registry {
    /// The group's migrations sorted by id. Two migrations with the same id (which the compiler
    /// cannot see when they come from different crates) are an error naming both functions.
    pub fn group(group: &str) -> Result<Self> {
        Self::from_migrations(
            group,
            inventory::iter::<Migration>
                .into_iter()
                .filter(|m| m.group() == group),
        )
    }

    /// Builds a registry from the given migrations (all of one group).
    pub fn from_migrations(
        group: &str,
        migrations: impl IntoIterator<Item = &'static Migration>,
    ) -> Result<Self> {
        let mut keyed: Vec<(MigrationId, &'static Migration)> =
            migrations.into_iter().map(|m| (m.id(), m)).collect();
        // Ties are broken by location so that the duplicate error names the same pair every time.
        keyed.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.location().cmp(&b.1.location()))
        });
        if let Some(pair) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::DuplicateId {
                group: group.to_owned(),
                id: pair[0].0.clone(),
                first: pair[0].1.location(),
                second: pair[1].1.location(),
            });
        }
        Ok(Registry {
            group: group.to_owned(),
            migrations: keyed.into_iter().map(|(_, m)| m).collect(),
        })
    }

    /// The names of every group registered in this binary, sorted.
    pub fn groups() -> Vec<&'static str> {
        let mut groups: Vec<&'static str> = inventory::iter::<Migration>
            .into_iter()
            .map(Migration::group)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.group
    }

    /// The migrations in id order.
    pub fn migrations(&self) -> &[&'static Migration] {
        &self.migrations
    }
}
