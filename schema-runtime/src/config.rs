//! Settings from the environment, from code, or from an application's configuration file
//! (serde): every variable and key is documented on [`Settings`].

use std::fmt;
use std::time::Duration;

use mongodb::Client;
use mongodb::options::{ClientOptions, ConnectionString};

use serde::de::{Deserialize, Deserializer, Error as _};

use crate::error::{Error, Result};
use crate::migrator::{ChecksumPolicy, Migrator, defaults};
use crate::redact::scrub;

/// The settings of a process.
///
/// Settings from the environment (or from code): where the server is, which database, and how
/// start-up behaves.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `MONGODB_URI` (else `DATABASE_URL`) | the server | required |
/// | `MONGODB_DATABASE` | the database | the database in the URI's path |
/// | `ENABLE_AUTO_MIGRATION` | start-up applies pending migrations (`false`: it only reports them) | `true` |
/// | `AUTO_SCHEMA_DESTRUCTIVE` | start-up may apply `destructive` migrations | `false` |
/// | `SCHEMA_LOCK_LEASE_SECS` | the lock's lease | `30` |
/// | `SCHEMA_LOCK_WAIT_SECS` | how long to wait for another process's lock | `300` |
/// | `SCHEMA_STARTUP_TIMEOUT_SECS` | the longest start-up's first read may take while the server cannot be reached | `20` |
/// | `SCHEMA_STATUS_TIMEOUT_SECS` | the longest `status()` (and `/health`) waits for the server | `2` |
/// | `SCHEMA_MAJORITY_TIMEOUT_SECS` | how long a majority write of the records or the lock waits for the replica set to confirm it (`wtimeout`) | `10` |
/// | `SCHEMA_MIGRATION_TIMEOUT_SECS` | the time limit of migrations that set none | none |
/// | `SCHEMA_CHECKSUM_POLICY` | an applied migration whose code changed: `warn`, `fail` (refuse to start) or `ignore` | `warn` |
/// | `SCHEMA_ALLOW_OUT_OF_ORDER` | apply a pending migration whose id is below the highest applied one | `false` |
/// | `SCHEMA_TRANSACTION_RETRY_SECS` | how long a transactional migration is retried on transient errors | `90` |
/// | `SCHEMA_LARGE_COLLECTION_DOCS` | the estimated document count above which building an index warns | `1000000` |
/// | `SCHEMA_INDEX_COMMIT_QUORUM` | `commitQuorum` of index builds on a replica set: `majority`, `votingMembers`, a number or a tag set | not sent |
/// | `SCHEMA_CHECK_DRIFT` | start-up and `status()` compare the database with the declared schema (one `listCollections` and one `listIndexes` per collection more) | `false` |
///
/// Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`. An invalid value is an
/// [`Error::Config`] naming the variable; a connection string is never printed with its password.
///
/// [`Settings`] also implements serde's `Deserialize`, so it loads with the rest of an
/// application's configuration (figment, config, a TOML file): the keys are the fields of
/// [`Settings`] (`uri`, `database`, `auto_migrate`, `allow_destructive`, `lease`, `max_wait`,
/// `startup_timeout`, `status_timeout`, `migration_timeout`, `checksum_policy`,
/// `allow_out_of_order`, `transaction_retry_limit`, `large_collection_threshold`,
/// `index_commit_quorum`, `check_drift`), durations in seconds, every key but `uri`
/// optional, an unknown key refused; the values are checked as the variables' are.
///
/// ```
/// use schema_runtime::Settings;
///
/// let env = |name: &str| match name {
///     "MONGODB_URI" => Some("mongodb://app:pw@db.internal:27017/shop".to_owned()),
///     "ENABLE_AUTO_MIGRATION" => Some("off".to_owned()),
///     _ => None,
/// };
/// let settings = Settings::from_lookup(env).unwrap();
/// assert_eq!(settings.database, "shop");
/// assert!(!settings.auto_migrate);
/// assert!(!format!("{settings:?}").contains("pw"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// The connection string.
    pub uri: String,
    /// The database.
    pub database: String,
    /// Whether start-up applies pending migrations.
    pub auto_migrate: bool,
    /// Whether start-up may apply destructive migrations.
    pub allow_destructive: bool,
    /// The lock's lease.
    pub lease: Duration,
    /// How long to wait for another process's lock.
    pub max_wait: Duration,
    /// The longest start-up's first read may take while the server cannot be reached.
    pub startup_timeout: Duration,
    /// The longest `status()` waits for the server.
    pub status_timeout: Duration,
    /// How long a majority write of the records or the lock waits for the replica set.
    pub majority_timeout: Duration,
    /// The time limit of migrations that set none.
    pub migration_timeout: Option<Duration>,
    /// What to do when an applied migration's code changed.
    pub checksum_policy: ChecksumPolicy,
    /// Whether a pending migration below the highest applied id may run.
    pub allow_out_of_order: bool,
    /// How long a transactional migration is retried on transient errors.
    pub transaction_retry_limit: Duration,
    /// The estimated document count above which building an index warns.
    pub large_collection_threshold: u64,
    /// `commitQuorum` of index builds (`majority`, `votingMembers`, a number, a tag set name).
    pub index_commit_quorum: Option<String>,
    /// Whether start-up and `status()` check for drift.
    pub check_drift: bool,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("uri", &scrub(&self.uri))
            .field("database", &self.database)
            .field("auto_migrate", &self.auto_migrate)
            .field("allow_destructive", &self.allow_destructive)
            .field("lease", &self.lease)
            .field("max_wait", &self.max_wait)
            .field("startup_timeout", &self.startup_timeout)
            .field("status_timeout", &self.status_timeout)
            .field("majority_timeout", &self.majority_timeout)
            .field("migration_timeout", &self.migration_timeout)
            .field("checksum_policy", &self.checksum_policy)
            .field("allow_out_of_order", &self.allow_out_of_order)
            .field("transaction_retry_limit", &self.transaction_retry_limit)
            .field(
                "large_collection_threshold",
                &self.large_collection_threshold,
            )
            .field("index_commit_quorum", &self.index_commit_quorum)
            .field("check_drift", &self.check_drift)
            .finish()
    }
}

impl Settings {
    /// Settings for `uri` and `database`, with every other setting at its default.
    pub fn new(uri: impl Into<String>, database: impl Into<String>) -> Self {
        Settings {
            uri: uri.into(),
            database: database.into(),
            auto_migrate: true,
            allow_destructive: false,
            lease: defaults::LEASE,
            max_wait: defaults::MAX_WAIT,
            startup_timeout: defaults::STARTUP_TIMEOUT,
            status_timeout: defaults::STATUS_TIMEOUT,
            majority_timeout: defaults::MAJORITY_TIMEOUT,
            migration_timeout: None,
            checksum_policy: ChecksumPolicy::default(),
            allow_out_of_order: false,
            transaction_retry_limit: defaults::TRANSACTION_RETRY_LIMIT,
            large_collection_threshold: defaults::LARGE_COLLECTION,
            index_commit_quorum: None,
            check_drift: false,
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (a variable's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let (uri, uri_name) = match (get("MONGODB_URI"), get("DATABASE_URL")) {
            (Some(uri), _) => (uri, "MONGODB_URI"),
            (None, Some(uri)) => (uri, "DATABASE_URL"),
            (None, None) => {
                return Err(config(
                    "MONGODB_URI",
                    "it is not set (nor DATABASE_URL); set it to the server, such as mongodb://127.0.0.1:27017/app",
                ));
            }
        };
        let parsed = ConnectionString::parse(&uri).map_err(|e| {
            config(
                uri_name,
                format!(
                    "{} is not a MongoDB connection string: {}",
                    scrub(&uri),
                    scrub(&e.to_string())
                ),
            )
        })?;
        if let Some(password) = parsed
            .credential
            .as_ref()
            .and_then(|c| c.password.as_deref())
        {
            crate::redact::remember_secret(password);
        }
        let database = match get("MONGODB_DATABASE").or(parsed.default_database) {
            Some(database) => database,
            None => {
                return Err(config(
                    "MONGODB_DATABASE",
                    format!(
                        "no database is named: set MONGODB_DATABASE, or put it in the path of {uri_name} ({})",
                        with_database(&scrub(&uri), "app")
                    ),
                ));
            }
        };
        Ok(Settings {
            database,
            auto_migrate: flag(&get, "ENABLE_AUTO_MIGRATION", true)?,
            allow_destructive: flag(&get, "AUTO_SCHEMA_DESTRUCTIVE", false)?,
            lease: seconds(&get, "SCHEMA_LOCK_LEASE_SECS", defaults::LEASE)?,
            max_wait: seconds(&get, "SCHEMA_LOCK_WAIT_SECS", defaults::MAX_WAIT)?,
            startup_timeout: seconds(
                &get,
                "SCHEMA_STARTUP_TIMEOUT_SECS",
                defaults::STARTUP_TIMEOUT,
            )?,
            status_timeout: seconds(&get, "SCHEMA_STATUS_TIMEOUT_SECS", defaults::STATUS_TIMEOUT)?,
            majority_timeout: seconds(
                &get,
                "SCHEMA_MAJORITY_TIMEOUT_SECS",
                defaults::MAJORITY_TIMEOUT,
            )?,
            migration_timeout: match get("SCHEMA_MIGRATION_TIMEOUT_SECS") {
                None => None,
                Some(_) => Some(seconds(
                    &get,
                    "SCHEMA_MIGRATION_TIMEOUT_SECS",
                    Duration::ZERO,
                )?),
            },
            checksum_policy: match get("SCHEMA_CHECKSUM_POLICY") {
                None => ChecksumPolicy::default(),
                Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                    "warn" => ChecksumPolicy::Warn,
                    "fail" => ChecksumPolicy::Fail,
                    "ignore" => ChecksumPolicy::Ignore,
                    _ => {
                        return Err(config(
                            "SCHEMA_CHECKSUM_POLICY",
                            format!("it is {value:?}; write warn, fail or ignore"),
                        ));
                    }
                },
            },
            allow_out_of_order: flag(&get, "SCHEMA_ALLOW_OUT_OF_ORDER", false)?,
            transaction_retry_limit: seconds(
                &get,
                "SCHEMA_TRANSACTION_RETRY_SECS",
                defaults::TRANSACTION_RETRY_LIMIT,
            )?,
            large_collection_threshold: match get("SCHEMA_LARGE_COLLECTION_DOCS") {
                None => defaults::LARGE_COLLECTION,
                Some(value) => value.trim().parse::<u64>().map_err(|_| {
                    config(
                        "SCHEMA_LARGE_COLLECTION_DOCS",
                        format!(
                            "it is {value:?}; write a whole number of documents, such as 1000000"
                        ),
                    )
                })?,
            },
            index_commit_quorum: get("SCHEMA_INDEX_COMMIT_QUORUM").map(|q| q.trim().to_owned()),
            check_drift: flag(&get, "SCHEMA_CHECK_DRIFT", false)?,
            uri,
        })
    }

    /// Connects (without sending anything yet) and returns the migrator these settings describe.
    pub async fn migrator(&self) -> Result<Migrator> {
        self.migrator_with(self.client_options().await?)
    }

    /// The driver's options for [`uri`](Self::uri), as [`migrator`](Self::migrator) uses them:
    /// parsed (an SRV URI is resolved), the password remembered so that no message shows it,
    /// and a server-selection bound within [`startup_timeout`](Self::startup_timeout) when
    /// the URI sets none. Change what the application needs (an app name, a command monitor,
    /// TLS from a file) and pass them to [`migrator_with`](Self::migrator_with):
    ///
    /// ```no_run
    /// # async fn start() -> schema_runtime::Result<()> {
    /// let settings = schema_runtime::Settings::from_env()?;
    /// let mut options = settings.client_options().await?;
    /// options.app_name = Some("billing-api".to_owned());
    /// let migrator = settings.migrator_with(options)?;
    /// # Ok(()) }
    /// ```
    pub async fn client_options(&self) -> Result<ClientOptions> {
        let mut options = ClientOptions::parse(&self.uri).await.map_err(|e| {
            config(
                "MONGODB_URI",
                crate::redact::uri_problem(&self.uri, &e.to_string()),
            )
        })?;
        if let Some(password) = options
            .credential
            .as_ref()
            .and_then(|c| c.password.as_deref())
        {
            crate::redact::remember_secret(password);
        }
        // The driver waits 30 s by default to find a server; a start-up that cannot reach one
        // should say so sooner, within its own bound, unless the URI chose.
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout =
                Some(self.startup_timeout.min(Duration::from_secs(10)));
        }
        Ok(options)
    }

    /// The migrator these settings describe, on a client made from `options` (see
    /// [`client_options`](Self::client_options)).
    pub fn migrator_with(&self, options: ClientOptions) -> Result<Migrator> {
        let client = Client::with_options(options)
            .map_err(|e| config("MONGODB_URI", scrub(&e.to_string())))?;
        Ok(self.apply(Migrator::new(client.database(&self.database))))
    }

    /// Applies these settings (all but the URI and database) to `migrator`.
    pub fn apply(&self, migrator: Migrator) -> Migrator {
        let migrator = migrator
            .auto_migrate(self.auto_migrate)
            .allow_destructive(self.allow_destructive)
            .lease(self.lease)
            .max_wait(self.max_wait)
            .startup_timeout(self.startup_timeout)
            .status_timeout(self.status_timeout)
            .majority_timeout(self.majority_timeout)
            .migration_timeout(self.migration_timeout)
            .checksum_policy(self.checksum_policy)
            .allow_out_of_order(self.allow_out_of_order)
            .transaction_retry_limit(self.transaction_retry_limit)
            .large_collection_threshold(self.large_collection_threshold)
            .check_drift(self.check_drift);
        match &self.index_commit_quorum {
            // A number of members, or a name (`majority`, `votingMembers`, a tag set).
            Some(quorum) => match quorum.parse::<i32>() {
                Ok(members) => migrator.index_commit_quorum(members),
                Err(_) => migrator.index_commit_quorum(quorum.as_str()),
            },
            None => migrator,
        }
    }
}

/// The configuration keys of [`Settings`] and the environment variables they stand for.
const KEYS: &[(&str, &str)] = &[
    ("uri", "MONGODB_URI"),
    ("database", "MONGODB_DATABASE"),
    ("auto_migrate", "ENABLE_AUTO_MIGRATION"),
    ("allow_destructive", "AUTO_SCHEMA_DESTRUCTIVE"),
    ("lease", "SCHEMA_LOCK_LEASE_SECS"),
    ("max_wait", "SCHEMA_LOCK_WAIT_SECS"),
    ("startup_timeout", "SCHEMA_STARTUP_TIMEOUT_SECS"),
    ("status_timeout", "SCHEMA_STATUS_TIMEOUT_SECS"),
    ("majority_timeout", "SCHEMA_MAJORITY_TIMEOUT_SECS"),
    ("migration_timeout", "SCHEMA_MIGRATION_TIMEOUT_SECS"),
    ("checksum_policy", "SCHEMA_CHECKSUM_POLICY"),
    ("allow_out_of_order", "SCHEMA_ALLOW_OUT_OF_ORDER"),
    ("transaction_retry_limit", "SCHEMA_TRANSACTION_RETRY_SECS"),
    ("large_collection_threshold", "SCHEMA_LARGE_COLLECTION_DOCS"),
    ("index_commit_quorum", "SCHEMA_INDEX_COMMIT_QUORUM"),
    ("check_drift", "SCHEMA_CHECK_DRIFT"),
];

/// One value of a configuration file, whatever its type; checked as the variable's text is.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Value {
    Bool(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Settings {
    /// Reads the keys listed in the documentation of [`Settings`]: each value is checked as
    /// the environment variable it stands for would be, and errors name the key.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let values = std::collections::HashMap::<String, Value>::deserialize(deserializer)?;
        if let Some(unknown) = values
            .keys()
            .find(|k| !KEYS.iter().any(|(key, _)| key == k))
        {
            let known: Vec<&str> = KEYS.iter().map(|(key, _)| *key).collect();
            return Err(D::Error::custom(format!(
                "unknown setting `{unknown}`; the settings are {}",
                known.join(", ")
            )));
        }
        let lookup = |variable: &str| {
            let (key, _) = KEYS.iter().find(|(_, v)| *v == variable)?;
            Some(match values.get(*key)? {
                Value::Bool(b) => b.to_string(),
                Value::Integer(n) => n.to_string(),
                Value::Float(x) => x.to_string(),
                Value::Text(text) => text.clone(),
            })
        };
        Settings::from_lookup(lookup).map_err(|error| {
            let mut message = error.to_string();
            for (key, variable) in KEYS {
                message = message.replace(variable, &format!("`{key}`"));
            }
            D::Error::custom(message.replace(" (nor DATABASE_URL)", ""))
        })
    }
}

fn config(setting: &str, problem: impl Into<String>) -> Error {
    Error::Config {
        setting: setting.to_owned(),
        problem: problem.into(),
    }
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &str, default: bool) -> Result<bool> {
    match get(name) {
        None => Ok(default),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(config(
                name,
                format!("it is {value:?}; write true or false (or 1/0, yes/no, on/off)"),
            )),
        },
    }
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
) -> Result<Duration> {
    match get(name) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<f64>() {
            Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(Duration::from_secs_f64(secs)),
            _ => Err(config(
                name,
                format!("it is {value:?}; write a positive number of seconds, such as 30"),
            )),
        },
    }
}

/// `uri` with `database` as its path, where MongoDB's connection string format puts it: after
/// the hosts and before the options (`mongodb://host:27017/app?directConnection=true`).
fn with_database(uri: &str, database: &str) -> String {
    let hosts_at = uri.find("://").map_or(0, |i| i + 3);
    let rest = &uri[hosts_at..];
    let (hosts, options) = match rest.find(['/', '?']) {
        Some(i) => {
            let after = rest[i..].trim_start_matches('/');
            let options = after.find('?').map_or("", |q| &after[q..]);
            (&rest[..i], options)
        }
        None => (rest, ""),
    };
    format!("{}{hosts}/{database}{options}", &uri[..hosts_at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_and_fallbacks() {
        let s = Settings::from_lookup(env(&[("DATABASE_URL", "mongodb://h/app")])).unwrap();
        assert_eq!(s.uri, "mongodb://h/app");
        assert_eq!(s.database, "app");
        assert!(s.auto_migrate && !s.allow_destructive);
        assert_eq!(s.lease, defaults::LEASE);
        let s = Settings::from_lookup(env(&[
            ("MONGODB_URI", "mongodb://h/"),
            ("DATABASE_URL", "mongodb://other/x"),
            ("MONGODB_DATABASE", "main"),
            ("AUTO_SCHEMA_DESTRUCTIVE", "YES"),
            ("SCHEMA_LOCK_LEASE_SECS", "2.5"),
            ("SCHEMA_LOCK_WAIT_SECS", "60"),
        ]))
        .unwrap();
        assert_eq!(
            (s.uri.as_str(), s.database.as_str()),
            ("mongodb://h/", "main")
        );
        assert!(s.allow_destructive);
        assert_eq!(s.lease, Duration::from_millis(2500));
        assert_eq!(s.max_wait, Duration::from_secs(60));
    }

    #[test]
    fn invalid_values_name_the_variable_and_hide_the_password() {
        let err = Settings::from_lookup(env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("MONGODB_URI") && err.contains("not set"),
            "{err}"
        );
        let err = Settings::from_lookup(env(&[("MONGODB_URI", "postgres://u:hunter2@h/db")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MONGODB_URI") && !err.contains("hunter2"),
            "{err}"
        );
        let err = Settings::from_lookup(env(&[("MONGODB_URI", "mongodb://u:hunter2@h")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MONGODB_DATABASE") && !err.contains("hunter2"),
            "{err}"
        );
        for (uri, suggested) in [
            (
                "mongodb://127.0.0.1:47311/?directConnection=true",
                "mongodb://127.0.0.1:47311/app?directConnection=true",
            ),
            (
                "mongodb://h:1?directConnection=true",
                "mongodb://h:1/app?directConnection=true",
            ),
            ("mongodb://h", "mongodb://h/app"),
            ("mongodb://a,b/", "mongodb://a,b/app"),
            (
                "mongodb+srv://c.example.net/?w=1",
                "mongodb+srv://c.example.net/app?w=1",
            ),
        ] {
            let err = Settings::from_lookup(env(&[("MONGODB_URI", uri)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("({suggested})")), "{err}");
        }
        let err = Settings::from_lookup(env(&[
            ("MONGODB_URI", "mongodb://h/a"),
            ("ENABLE_AUTO_MIGRATION", "maybe"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ENABLE_AUTO_MIGRATION") && err.contains("\"maybe\""),
            "{err}"
        );
        let err = Settings::from_lookup(env(&[
            ("MONGODB_URI", "mongodb://h/a"),
            ("SCHEMA_LOCK_LEASE_SECS", "-1"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("SCHEMA_LOCK_LEASE_SECS"), "{err}");
    }

    #[test]
    fn the_policies_from_the_environment() {
        let s = Settings::from_lookup(env(&[
            ("MONGODB_URI", "mongodb://h/a"),
            ("SCHEMA_CHECKSUM_POLICY", "Fail"),
            ("SCHEMA_ALLOW_OUT_OF_ORDER", "yes"),
            ("SCHEMA_TRANSACTION_RETRY_SECS", "5"),
            ("SCHEMA_LARGE_COLLECTION_DOCS", "5000"),
        ]))
        .unwrap();
        assert_eq!(s.large_collection_threshold, 5000);
        assert_eq!(s.index_commit_quorum, None);
        assert_eq!(s.checksum_policy, ChecksumPolicy::Fail);
        assert!(s.allow_out_of_order);
        assert_eq!(s.transaction_retry_limit, Duration::from_secs(5));
        let defaults = Settings::from_lookup(env(&[("MONGODB_URI", "mongodb://h/a")])).unwrap();
        assert_eq!(defaults, Settings::new("mongodb://h/a", "a"));
        let err = Settings::from_lookup(env(&[
            ("MONGODB_URI", "mongodb://h/a"),
            ("SCHEMA_CHECKSUM_POLICY", "strict"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SCHEMA_CHECKSUM_POLICY") && err.contains("warn, fail or ignore"),
            "{err}"
        );
    }

    #[test]
    fn settings_load_with_the_applications_configuration() {
        let s: Settings = serde_json::from_value(serde_json::json!({
            "uri": "mongodb://app:hunter2@db:27017/?directConnection=true",
            "database": "shop",
            "auto_migrate": false,
            "lease": 12,
            "max_wait": 2.5,
            "migration_timeout": 600,
            "checksum_policy": "ignore",
            "allow_out_of_order": true,
        }))
        .unwrap();
        assert_eq!(s.database, "shop");
        assert!(!s.auto_migrate && s.allow_out_of_order);
        assert_eq!(s.lease, Duration::from_secs(12));
        assert_eq!(s.max_wait, Duration::from_millis(2500));
        assert_eq!(s.migration_timeout, Some(Duration::from_secs(600)));
        assert_eq!(s.checksum_policy, ChecksumPolicy::Ignore);
        assert_eq!(s.status_timeout, defaults::STATUS_TIMEOUT);

        let from_path: Settings =
            serde_json::from_value(serde_json::json!({ "uri": "mongodb://h/app" })).unwrap();
        assert_eq!(from_path, Settings::new("mongodb://h/app", "app"));

        for (bad, expected) in [
            (
                serde_json::json!({ "uri": "mongodb://h/a", "leese": 3 }),
                "unknown setting `leese`",
            ),
            (
                serde_json::json!({ "uri": "mongodb://h/a", "lease": -1 }),
                "`lease`: it is \"-1\"",
            ),
            (
                serde_json::json!({ "uri": "mongodb://h/a", "auto_migrate": "maybe" }),
                "`auto_migrate`",
            ),
            (
                serde_json::json!({ "uri": "mongodb://app:hunter2@h/" }),
                "set `database`, or put it in the path of `uri`",
            ),
            (
                serde_json::json!({ "database": "a" }),
                "`uri`: it is not set;",
            ),
        ] {
            let err = serde_json::from_value::<Settings>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected) && !err.contains("hunter2"), "{err}");
        }
    }
}
