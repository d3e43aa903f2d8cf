//! No password appears anywhere: not in an error's Display or Debug, not in `last_error`, not in
//! tracing at any level; also when it holds reserved characters left unencoded, and also when it
//! appears bare (the exact credential the library was configured with).

use schema_runtime::{MigrationContext, MigrationResult, Migrator, Settings, migration};
use schema_tests::Captured;
use schema_tests::{TestDb, record};

/// Reserved characters, unencoded, as a careless log line would print them.
const RAW_PASSWORD: &str = "s3cr/et?pa#ss";
/// The configured credential, which appears bare in the migration's error below.
const CONFIGURED_PASSWORD: &str = "hunter2/xyz";

#[derive(Debug)]
struct ConnectError {
    root: std::io::Error,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "copying from mongodb://app:{RAW_PASSWORD}@legacy.internal:27017/prod"
        )
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.root)
    }
}

#[migration(
    id = "0001",
    description = "Copy from the legacy cluster",
    group = "secrets"
)]
async fn copy_from_legacy(_ctx: &mut MigrationContext) -> MigrationResult {
    Err(ConnectError {
        root: std::io::Error::other(format!(
            "authentication failed for password {CONFIGURED_PASSWORD}"
        )),
    }
    .into())
}

#[migration(id = "0001", description = "Panic with a URI", group = "secrets_panic")]
async fn panic_with_a_uri(_ctx: &mut MigrationContext) -> MigrationResult {
    panic!("cannot use mongodb://app:{RAW_PASSWORD}@legacy.internal/prod ({CONFIGURED_PASSWORD})");
}

fn assert_clean(what: &str, text: &str) {
    for secret in [
        RAW_PASSWORD,
        CONFIGURED_PASSWORD,
        "s3cr",
        "hunter2",
        "hunter2%2Fxyz",
    ] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

/// Settings configured with a URI whose password is `CONFIGURED_PASSWORD` (percent-encoded, as
/// a connection string must have it): the library then knows the exact credential.
fn configure() {
    let uri = "mongodb://app:hunter2%2Fxyz@127.0.0.1:1/app".to_owned();
    let settings = Settings::from_lookup(|name| (name == "MONGODB_URI").then(|| uri.clone()))
        .expect("valid settings");
    assert_clean("Settings Debug", &format!("{settings:?}"));
}

#[tokio::test]
async fn a_failing_migration_shows_no_password_in_its_error_its_record_or_tracing() {
    configure();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = TestDb::new("secrets").await;
    let err = Migrator::new(t.db.clone())
        .group("secrets")
        .apply_all()
        .await
        .unwrap_err();
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert_clean("Display", &display);
    assert_clean("Debug", &debug);
    // The whole chain is kept, scrubbed: the context and the root cause.
    assert!(
        display.contains("copying from mongodb://app:***@legacy.internal:27017/prod: authentication failed for password ***"),
        "{display}"
    );
    assert!(debug.contains("Caused by:"), "{debug}");
    let mut chain = Vec::new();
    let mut next = std::error::Error::source(&err);
    while let Some(cause) = next {
        chain.push(cause.to_string());
        next = cause.source();
    }
    assert_eq!(chain.len(), 2, "{chain:?}");
    chain.iter().for_each(|c| assert_clean("source chain", c));

    let r = record(&t.db, "0001").await.unwrap();
    let last_error = r.get_str("last_error").unwrap();
    assert_clean("last_error", last_error);
    assert!(
        last_error.ends_with("authentication failed for password ***"),
        "{last_error}"
    );

    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("failed"),
        "tracing captured the failure: {logged}"
    );
    assert_clean("tracing", &logged);
}

#[tokio::test]
async fn a_panicking_migration_shows_no_password_in_its_error_or_its_record() {
    configure();
    let t = TestDb::new("secretspanic").await;
    let err = Migrator::new(t.db.clone())
        .group("secrets_panic")
        .apply_all()
        .await
        .unwrap_err();
    assert_clean("Display", &err.to_string());
    assert_clean("Debug", &format!("{err:?}"));
    assert!(
        err.to_string()
            .contains("panicked: cannot use mongodb://app:***@legacy.internal/prod (***)"),
        "{err}"
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_clean("last_error", r.get_str("last_error").unwrap());
}

#[tokio::test]
async fn an_unreachable_server_configured_with_a_password_shows_none_of_it() {
    let uri = "mongodb://app:p%2Fw%3Fx%23y@127.0.0.1:1/app?serverSelectionTimeoutMS=300";
    let settings =
        Settings::from_lookup(|name| (name == "MONGODB_URI").then(|| uri.to_owned())).unwrap();
    let migrator = settings
        .migrator()
        .await
        .unwrap()
        .group("secrets")
        .startup_retries(1, std::time::Duration::from_millis(10));
    let err = migrator.apply_all().await.unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        for secret in ["p/w?x#y", "p%2Fw%3Fx%23y"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    let status = migrator.status().await;
    assert!(!status.reachable);
    assert!(!format!("{status:?}").contains("p/w?x#y"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_printed_on_stderr_shows_no_password() {
    let t = TestDb::new("secretsstderr").await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(["--db", t.name(), "--group", "cli_panic", "up"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("panicked at") && stderr.contains("mongodb://app:***@legacy.internal/prod"),
        "{stderr}"
    );
    assert_clean("stderr", &stderr);
}

/// A connection string whose password holds an unencoded `?` or `#` cannot be parsed, and the
/// driver's message then quotes pieces of the password as a host (`invalid server address
/// deskadmin:Hunter2`): the error shows no piece of it, in Display or Debug (which every other
/// rendering, the CLI's JSON included, is made from), and says to percent-encode it.
#[tokio::test]
async fn a_connection_string_with_unencoded_reserved_characters_shows_no_part_of_its_password() {
    for (uri, pieces) in [
        (
            "mongodb://deskadmin:Hunter2?TopSecretTail99@db.example:27017/app",
            &["Hunter2", "TopSecretTail99"][..],
        ),
        (
            "mongodb://deskadmin:p@ss/w?rd#1@db.example:27017/app",
            &["rd#1", "w?rd", "ss/w"][..],
        ),
    ] {
        let settings = Settings::new(uri, "app");
        let err = settings.migrator().await.unwrap_err();
        let shown = format!("{err}\n{err:?}");
        for piece in pieces {
            assert!(!shown.contains(piece), "{piece} in {shown}");
        }
        assert!(shown.contains("percent-encoded"), "{shown}");
        assert!(shown.contains("MONGODB_URI"), "{shown}");
    }
}
