//! A library crate of migrations that the binary never refers to is not linked: start-up says so
//! instead of applying nothing; `schema_runtime::link!` links it. Checked in the test profile here
//! and, with `--ignored`, in a release build with fat LTO (which `.ci/run` runs).

use std::path::Path;
use std::process::{Command, Output};

use schema_tests::{TestDb, documents};

fn run(binary: &Path, database: &str) -> Output {
    Command::new(binary).arg(database).output().unwrap()
}

async fn check(linked: &Path, unlinked: &Path) {
    let t = TestDb::new("unlinked").await;
    let output = run(unlinked, t.name());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("registered=0"), "{stdout}");
    assert!(
        stderr.contains("no migrations are registered in group \"linked\"")
            && stderr.contains("schema_runtime::link!(your_migrations_crate);"),
        "{stderr}"
    );
    assert!(documents(&t.db, "schema_versions").await.is_empty());

    let t = TestDb::new("linked").await;
    let output = run(linked, t.name());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("registered=2") && stdout.contains("applied=2"),
        "{stdout}"
    );
    let names = t.db.list_collection_names().await.unwrap();
    assert!(
        names.contains(&"linked_users".to_owned()) && names.contains(&"linked_orders".to_owned()),
        "both modules' migrations ran: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreferenced_migrations_crate_is_refused_and_link_links_it() {
    check(
        Path::new(env!("CARGO_BIN_EXE_linked")),
        Path::new(env!("CARGO_BIN_EXE_unlinked")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "builds the two binaries in release with fat LTO (minutes); .ci/run runs it"]
async fn the_same_holds_in_a_release_build_with_lto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/lto-check");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "build",
            "--profile",
            "lto-check",
            "-p",
            "schema-tests",
            "--bin",
            "linked",
            "--bin",
            "unlinked",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success());
    let bin = target.join("lto-check");
    check(&bin.join("linked"), &bin.join("unlinked")).await;
}
