//! The test harness: a real MongoDB-speaking server from `MONGODB_URI`, one fresh database per
//! test (dropped afterwards), and a client that counts the commands it sends.
//!
//! Run the tests with `scripts/test`, which starts the local server when `MONGODB_URI` is unset.
//!
//! Every client made here holds each command it sends to the rules of a real `mongod`
//! ([`conformance`]); a test whose commands break one fails when its [`TestDb`] is dropped.

pub mod conformance;
pub mod fleet_group;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use schema_runtime::Deployment;

/// The server's address, or a panic that says how to get one.
pub fn uri() -> String {
    match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => panic!(
            "MONGODB_URI is not set, so there is no server to test against. Run the tests with \
             `scripts/test`, which starts the local SecantusDB server, or set MONGODB_URI to a \
             MongoDB server of your own (mongodb://127.0.0.1:27017)."
        ),
    }
}

async fn bare_options() -> ClientOptions {
    let mut options = ClientOptions::parse(uri())
        .await
        .unwrap_or_else(|e| panic!("MONGODB_URI is not a valid connection string: {e}"));
    options.server_selection_timeout = Some(Duration::from_secs(10));
    options.app_name = Some("schema-tests".into());
    options
}

/// What the test server is, asked once per process (one `hello` through a client of its own,
/// made with `options`). A server that cannot be reached is taken for a replica set, the
/// deployment with the fewer rules, and asked again next time: the test then fails on its own
/// terms, not the check's.
pub async fn deployment(options: &ClientOptions) -> Deployment {
    static KNOWN: OnceLock<Deployment> = OnceLock::new();
    if let Some(known) = KNOWN.get() {
        return *known;
    }
    let mut options = options.clone();
    options.command_event_handler = None;
    let bound = Duration::from_secs(5);
    options.server_selection_timeout = Some(
        options
            .server_selection_timeout
            .map_or(bound, |t| t.min(bound)),
    );
    let client = Client::with_options(options).expect("a client for MONGODB_URI");
    let found = deployment_of(&client).await;
    // Its pool and monitors would stay for the whole process otherwise (a benchmark counts
    // the process's memory).
    client.shutdown().await;
    match found {
        Some(found) => *KNOWN.get_or_init(|| found),
        None => Deployment::ReplicaSet,
    }
}

/// Whether the test server has transactions and change streams (a replica set or a sharded
/// cluster). A test of what only those have returns early on a standalone server, saying so:
///
/// ```ignore
/// if !schema_tests::needs_replica_set("a_transaction_commits").await { return; }
/// ```
pub async fn needs_replica_set(test: &str) -> bool {
    let deployment = deployment(&bare_options().await).await;
    if deployment == Deployment::Standalone {
        eprintln!(
            "skipped {test}: it needs a replica set or a sharded cluster, and the server is a standalone server"
        );
        return false;
    }
    true
}

/// Whether the test server is a standalone server (no replica set, not `mongos`).
pub async fn deployment_is_standalone() -> bool {
    deployment(&bare_options().await).await == Deployment::Standalone
}

/// Whether the test server is the local SecantusDB server (its `buildInfo` has
/// `secantusVersion`). A test that needs one of its own features (such as a `failCommand`
/// mode with both `skip` and `times`, which mongod does not have) returns early elsewhere,
/// saying so, and says so in its name.
pub async fn is_local_server(test: &str) -> bool {
    let client = Client::with_options(bare_options().await).expect("a client for MONGODB_URI");
    let info = client
        .database("admin")
        .run_command(bson::doc! { "buildInfo": 1 })
        .await
        .unwrap_or_default();
    let local = info.contains_key("secantusVersion");
    if !local {
        eprintln!("skipped {test}: it needs a feature of the local test server");
    }
    local
}

async fn deployment_of(client: &Client) -> Option<Deployment> {
    let hello = client
        .database("admin")
        .run_command(bson::doc! { "hello": 1 })
        .await
        .ok()?;
    Some(Deployment::from_hello(&hello))
}

/// Options for a client of the test server whose commands are held to the wire rules.
async fn options() -> ClientOptions {
    watched(bare_options().await).await
}

async fn watched(mut options: ClientOptions) -> ClientOptions {
    let deployment = deployment(&options).await;
    watch(&mut options, deployment, None);
    options
}

type Seen = Box<dyn Fn(&mongodb::event::command::CommandStartedEvent) + Send + Sync>;

/// Installs the conformance check (and `also`, when given) as the client's command monitor.
fn watch(options: &mut ClientOptions, deployment: Deployment, also: Option<Seen>) {
    let checker = conformance::Checker::new(deployment);
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(started) = event {
            for violation in checker.check(&started.db, &started.command_name, &started.command) {
                conformance::record(&started.db, &violation);
            }
            if let Some(also) = &also {
                also(&started);
            }
        }
    }));
}

/// A client of the test server.
pub async fn client() -> Client {
    Client::with_options(options().await).expect("a client for MONGODB_URI")
}

/// A client without the conformance check, for the benchmark's figure of the library's own
/// memory (the check's second client and its callbacks are the harness's, not the library's).
pub async fn bare_client_with_timeout(timeout: Duration) -> Client {
    let mut options = bare_options().await;
    options.server_selection_timeout = Some(timeout);
    Client::with_options(options).expect("a client for MONGODB_URI")
}

/// A client that gives up selecting a server after `timeout`.
pub async fn client_with_timeout(timeout: Duration) -> Client {
    let mut options = bare_options().await;
    options.server_selection_timeout = Some(timeout);
    Client::with_options(watched(options).await).expect("a client for MONGODB_URI")
}

/// A client whose commands carry `app_name`, so that a `failCommand` fail point can be aimed at
/// this client alone (`data.appName`) while other tests run.
pub async fn client_named(app_name: &str) -> Client {
    let mut options = options().await;
    options.app_name = Some(app_name.to_owned());
    Client::with_options(options).expect("a client for MONGODB_URI")
}

/// Arms the `failCommand` fail point for `commands` sent by clients named `app_name`, failing
/// with error code 2 (BadValue, which no driver retries). `mode` is `{ "times": n }` or
/// `"alwaysOn"`. The server must run with test commands enabled (the local server does).
pub async fn fail_commands(client: &Client, app_name: &str, commands: &[&str], mode: bson::Bson) {
    client
        .database("admin")
        .run_command(bson::doc! {
            "configureFailPoint": "failCommand",
            "mode": mode,
            "data": { "failCommands": commands, "errorCode": 2, "appName": app_name },
        })
        .await
        .expect(
            "configureFailPoint: start the server with test commands enabled (scripts/test does)",
        );
}

/// Turns the `failCommand` fail point off.
pub async fn fail_commands_off(client: &Client) {
    client
        .database("admin")
        .run_command(bson::doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .await
        .expect("configureFailPoint off");
}

/// The names of the commands a [`counting_client`] sent, in order.
#[derive(Clone, Default)]
pub struct CommandLog {
    names: Arc<Mutex<Vec<String>>>,
    commands: Arc<Mutex<Vec<bson::Document>>>,
    count: Arc<AtomicUsize>,
}

impl CommandLog {
    /// How many commands were sent.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Their names.
    pub fn names(&self) -> Vec<String> {
        self.names.lock().unwrap().clone()
    }

    /// The commands themselves, as sent.
    pub fn commands(&self) -> Vec<bson::Document> {
        self.commands.lock().unwrap().clone()
    }

    /// Forgets what was counted so far.
    pub fn reset(&self) {
        self.names.lock().unwrap().clear();
        self.commands.lock().unwrap().clear();
        self.count.store(0, Ordering::SeqCst);
    }
}

/// A client whose every command (as the driver's command monitoring reports it) is counted.
pub async fn counting_client() -> (Client, CommandLog) {
    counting_client_with(|_| {}).await
}

/// A [`counting_client`] whose options `adjust` changes first (a read preference, an app name).
pub async fn counting_client_with(adjust: impl FnOnce(&mut ClientOptions)) -> (Client, CommandLog) {
    let log = CommandLog::default();
    let mut options = bare_options().await;
    adjust(&mut options);
    let seen = log.clone();
    let count: Seen = Box::new(move |started| {
        seen.count.fetch_add(1, Ordering::SeqCst);
        seen.names
            .lock()
            .unwrap()
            .push(started.command_name.clone());
        seen.commands.lock().unwrap().push(started.command.clone());
    });
    let deployment = deployment(&options).await;
    watch(&mut options, deployment, Some(count));
    (
        Client::with_options(options).expect("a client for MONGODB_URI"),
        log,
    )
}

/// A database of its own for one test, dropped when the value is dropped.
pub struct TestDb {
    /// The database.
    pub db: Database,
    inner: schema_runtime::testing::TestDatabase,
}

impl TestDb {
    /// A fresh, empty database whose name starts with `label`.
    pub async fn new(label: &str) -> TestDb {
        Self::with_client(&client().await, label).await
    }

    /// A fresh database reached through `client`: the library's own
    /// [`TestDatabase`](schema_runtime::testing::TestDatabase), which drops it afterwards.
    pub async fn with_client(client: &Client, label: &str) -> TestDb {
        let inner = schema_runtime::testing::TestDatabase::with_client(client, label).await;
        // A stale note of an earlier run under the same name is not this test's.
        let _ = conformance::take_violations(inner.name());
        TestDb {
            db: inner.database().clone(),
            inner,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }
}

impl Drop for TestDb {
    /// Fails the test when a command on its database, from any process, broke a wire rule.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Some(violations) = conformance::take_violations(self.name()) {
            panic!(
                "commands on database {} break rules a real MongoDB server enforces (the local server let them through):\n\n{violations}",
                self.name()
            );
        }
    }
}

/// The documents of `collection`, sorted by `_id`.
pub async fn documents(db: &Database, collection: &str) -> Vec<bson::Document> {
    use futures::TryStreamExt;
    db.collection::<bson::Document>(collection)
        .find(bson::doc! {})
        .sort(bson::doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// The `schema_versions` document with `_id` `key`.
pub async fn record(db: &Database, key: &str) -> Option<bson::Document> {
    db.collection::<bson::Document>("schema_versions")
        .find_one(bson::doc! { "_id": key })
        .await
        .unwrap()
}

/// Adds one to the counter document `name` of collection `counters`: migrations in tests use it
/// to show how many times they ran.
pub async fn bump(db: &Database, name: &str) -> mongodb::error::Result<()> {
    db.collection::<bson::Document>("counters")
        .update_one(
            bson::doc! { "_id": name },
            bson::doc! { "$inc": { "n": 1 } },
        )
        .upsert(true)
        .await?;
    Ok(())
}

/// How many times [`bump`] was called for `name`.
pub async fn count(db: &Database, name: &str) -> i64 {
    let doc = db
        .collection::<bson::Document>("counters")
        .find_one(bson::doc! { "_id": name })
        .await
        .unwrap();
    match doc.as_ref().and_then(|d| d.get("n")) {
        Some(bson::Bson::Int32(n)) => i64::from(*n),
        Some(bson::Bson::Int64(n)) => *n,
        None => 0,
        other => panic!("unexpected counter {other:?}"),
    }
}

/// Whether the control document `flag` exists: tests set it to make a migration fail.
pub async fn flag(db: &Database, flag: &str) -> bool {
    db.collection::<bson::Document>("control")
        .find_one(bson::doc! { "_id": flag })
        .await
        .map(|d| d.is_some())
        .unwrap_or(false)
}

/// Sets or clears the control document `flag`.
pub async fn set_flag(db: &Database, flag: &str, on: bool) {
    let control = db.collection::<bson::Document>("control");
    if on {
        control
            .insert_one(bson::doc! { "_id": flag })
            .await
            .unwrap();
    } else {
        control
            .delete_one(bson::doc! { "_id": flag })
            .await
            .unwrap();
    }
}

/// A local SecantusDB server of a test's own, started from the project's `.venv` (which
/// `scripts/with-local-server` installs) with extra flags, stopped when dropped.
pub struct LocalServer {
    child: std::process::Child,
    port: u16,
}

impl LocalServer {
    /// Starts one with `args` (such as `--standalone`) on a free loopback port.
    pub fn start(args: &[&str]) -> LocalServer {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let server = root.join(".venv/bin/secantusd-py");
        assert!(
            server.exists(),
            "{} is missing: run the tests with scripts/test, which installs the local server",
            server.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(server)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--storage-path",
                ":memory:",
                "--log-level",
                "WARNING",
            ])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the local server");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the local server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        LocalServer { child, port }
    }

    /// A client of it, whose commands are held to the wire rules of the deployment it
    /// announces.
    pub async fn client(&self) -> Client {
        let uri = format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=10000",
            self.port
        );
        let mut options = ClientOptions::parse(uri)
            .await
            .expect("a client of the local server");
        let bare = Client::with_options(options.clone()).expect("a client of the local server");
        let deployment = deployment_of(&bare)
            .await
            .expect("the local server answers hello");
        watch(&mut options, deployment, None);
        Client::with_options(options).expect("a client of the local server")
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the `linked` and `unlinked` binaries do: print how many migrations group `linked` has,
/// then (given a database name) apply it and print how many were applied.
pub async fn run_linked_group(database: Option<String>) -> std::process::ExitCode {
    let registered = schema_runtime::Registry::group("linked")
        .map(|r| r.migrations().len())
        .unwrap_or(0);
    println!("registered={registered}");
    let Some(database) = database else {
        return std::process::ExitCode::SUCCESS;
    };
    let migrator =
        schema_runtime::Migrator::new(client().await.database(&database)).group("linked");
    match migrator.apply_all().await {
        Ok(report) => {
            println!("applied={}", report.applied.len());
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The server has one `failCommand` fail point: arming it replaces what another test armed. Tests
/// of one binary (which run in parallel) that arm it hold this turn while they do.
pub async fn fail_point_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// Runs a `migrate` command (its arguments after `migrate`) with `migrator`, returning what the
/// command returned and what it printed.
pub async fn run_cli(
    migrator: &schema_runtime::Migrator,
    args: &[&str],
) -> (schema_runtime::Result<schema_runtime::cli::Outcome>, String) {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: schema_runtime::cli::Command,
    }
    let command = Cli::try_parse_from(std::iter::once("migrate").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .command;
    let mut out = Vec::new();
    let result = command.run(migrator, &mut out).await;
    (result, String::from_utf8(out).unwrap())
}

/// A throwaway application crate under `target/scratch/NAME` (emptied first): a library that
/// depends on `schema-runtime` (default features) and the driver as applications do, with the
/// same dependency versions as `tests/fixtures/driver-bson2`, so that its build is reused.
/// The caller writes `src/`.
pub fn scratch_crate(name: &str) -> std::path::PathBuf {
    let root = workspace_root();
    let dir = root.join("target/scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch-{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nmongodb = \"3.9\"\nschema-runtime = {{ path = {:?} }}\n\n[workspace]\n",
            root.join("schema-runtime")
        ),
    )
    .unwrap();
    std::fs::copy(
        root.join("tests/fixtures/driver-bson2/Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    dir
}

/// Builds a crate made by [`scratch_crate`]; the compiler's messages when it fails.
pub fn build_scratch_crate(dir: &std::path::Path) -> Result<(), String> {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", workspace_root().join("target/fixtures"))
        .output()
        .unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The workspace's root directory.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Tracing output captured in memory: `tracing_subscriber::fmt().with_writer(move || c.clone())`.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends `signal` (`-9`, `-STOP`, `-CONT`) to process `pid` with `kill`.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// A number as the server stores it (int, long or double), as an `i64`.
pub fn number(value: Option<&bson::Bson>) -> Option<i64> {
    match value? {
        bson::Bson::Int32(n) => Some(i64::from(*n)),
        bson::Bson::Int64(n) => Some(*n),
        bson::Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}

/// This process's peak resident memory so far (`VmHWM` of `/proc/self/status`), where the
/// system has it: the benchmarks' memory figure, printed as `peak_rss_kib=N`.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The `peak_rss_kib=N` a benchmark's child process printed in `output`.
pub fn printed_peak_rss_kib(output: &str) -> Option<u64> {
    output
        .split_whitespace()
        .find_map(|w| w.strip_prefix("peak_rss_kib="))
        .and_then(|v| v.parse().ok())
}

/// The guide's pages (`docs/`) as doc tests: every Rust snippet in them is compiled (and run,
/// unless marked `no_run`) by `cargo test`, so the guide cannot drift from the API.
/// `tests/tests/readme.rs` checks that every page is listed here.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../docs/README.md")]
    pub struct Contents;
    #[doc = include_str!("../../docs/getting-started.md")]
    pub struct GettingStarted;
    #[doc = include_str!("../../docs/writing-migrations.md")]
    pub struct WritingMigrations;
    #[doc = include_str!("../../docs/startup.md")]
    pub struct Startup;
    #[doc = include_str!("../../docs/transactions.md")]
    pub struct Transactions;
    #[doc = include_str!("../../docs/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../../docs/cli.md")]
    pub struct Cli;
    #[doc = include_str!("../../docs/configuration.md")]
    pub struct Configuration;
    #[doc = include_str!("../../docs/deploying.md")]
    pub struct Deploying;
    #[doc = include_str!("../../docs/large-collections.md")]
    pub struct LargeCollections;
    #[doc = include_str!("../../docs/drift.md")]
    pub struct Drift;
    #[doc = include_str!("../../docs/fleet.md")]
    pub struct Fleet;
    #[doc = include_str!("../../docs/models.md")]
    pub struct Models;
    #[doc = include_str!("../../docs/errors-and-secrets.md")]
    pub struct ErrorsAndSecrets;
    #[doc = include_str!("../../docs/records-and-fencing.md")]
    pub struct RecordsAndFencing;
    #[doc = include_str!("../../docs/local-server.md")]
    pub struct LocalServer;
    #[doc = include_str!("../../docs/contributing.md")]
    pub struct Contributing;
}
