//! The service's start-up line, `Migrator::from_env()`, as an operator drives it: the
//! environment is honoured, and a warning reaches stderr although the service installs no
//! `tracing` subscriber.

use std::process::Command;

use schema_runtime::bson::{Document, doc};
use schema_runtime::testing::TestDatabase;

#[path = "../../tests/support/mod.rs"]
mod support;

fn serve(db: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_help-desk"));
    command
        .arg("serve")
        .env("MONGODB_DATABASE", db.name())
        .env_remove("ENABLE_AUTO_MIGRATION")
        .env_remove("SCHEMA_CHECKSUM_POLICY");
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_start_up_line_honours_the_environment_and_never_hides_a_warning() {
    let db = TestDatabase::labelled("minimal_env").await;
    let profiled = support::record_commands(db.database()).await;
    let versions = db.database().collection::<Document>("schema_versions");

    // ENABLE_AUTO_MIGRATION=false: nothing is applied, nothing recorded.
    let (ok, out, err) = run(serve(&db).env("ENABLE_AUTO_MIGRATION", "false"));
    assert!(ok, "{out}{err}");
    assert_eq!(out, "schema ready: 0 applied now, 0 already applied\n");
    assert_eq!(versions.count_documents(doc! {}).await.unwrap(), 0);

    let (ok, out, err) = run(&mut serve(&db));
    assert!(ok, "{out}{err}");
    assert_eq!(out, "schema ready: 1 applied now, 0 already applied\n");
    assert_eq!(versions.count_documents(doc! {}).await.unwrap(), 1);

    // An edited applied migration: a warning on stderr, saying how to accept it.
    versions
        .update_one(
            doc! { "_id": "0001" },
            doc! { "$set": { "checksum": "before-rustfmt" } },
        )
        .await
        .unwrap();
    let (ok, out, err) = run(&mut serve(&db));
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("schema-runtime: warning: migration 0001 changed after it was applied")
            && err.contains("`migrate accept 0001`"),
        "{err}"
    );

    // SCHEMA_CHECKSUM_POLICY=fail refuses the same start-up, naming the migration.
    let (ok, out, err) = run(serve(&db).env("SCHEMA_CHECKSUM_POLICY", "fail"));
    assert!(!ok, "{out}{err}");
    assert!(err.contains("0001"), "{err}");
    assert_eq!(
        versions
            .find_one(doc! { "_id": "0001" })
            .await
            .unwrap()
            .unwrap()
            .get_str("checksum")
            .unwrap(),
        "before-rustfmt",
        "a refused start-up changes no record"
    );
    if profiled {
        assert!(support::assert_conformant(db.database()).await > 10);
    }
}

/// A guard: a process that exits right after start-up printed a driver panic about once in 30
/// runs when its client was only dropped (`connection_requester.rs:42`, `SendError`, from the
/// driver's cleanup task as the runtime stopped); `Migrator::shutdown` closes it first.
#[tokio::test]
async fn a_process_that_exits_after_start_up_prints_no_driver_panic() {
    let db = TestDatabase::labelled("minimal_exit").await;
    for _ in 0..15 {
        let (ok, out, err) = run(&mut serve(&db));
        assert!(ok, "{out}{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
