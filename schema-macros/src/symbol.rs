//! The keys the `#[migration(...)]` attribute accepts, in one place.

/// `#[migration(id = "0003")]`
pub(crate) const ID: &str = "id";
/// `#[migration(description = "Create the events indexes")]`
pub(crate) const DESCRIPTION: &str = "description";
/// `#[migration(group = "analytics")]`
pub(crate) const GROUP: &str = "group";
/// `#[migration(crate = my_facade::schema_runtime)]`
pub(crate) const CRATE: &str = "crate";

/// `#[migration(transaction)]` or `#[migration(transaction = true)]`
pub(crate) const TRANSACTION: &str = "transaction";

/// `#[migration(down = drop_replay_indexes)]`: the rollback function.
pub(crate) const DOWN: &str = "down";
/// `#[migration(destructive)]`: drops or rewrites data; not applied at start-up unless allowed.
pub(crate) const DESTRUCTIVE: &str = "destructive";

/// `#[migration(background)]`: the application does not need it to start; `apply_all` returns
/// while a lock holder applies it.
pub(crate) const BACKGROUND: &str = "background";

/// `#[migration(timeout = "10m")]`: the migration's time limit (`ms`, `s`, `m` or `h`).
pub(crate) const TIMEOUT: &str = "timeout";

/// Every accepted key, for the "unknown key" message.
pub(crate) const ALL: &[&str] = &[
    ID,
    DESCRIPTION,
    GROUP,
    TRANSACTION,
    DESTRUCTIVE,
    BACKGROUND,
    DOWN,
    TIMEOUT,
    CRATE,
];

/// The group a migration belongs to when the attribute names none.
pub(crate) const DEFAULT_GROUP: &str = "default";
