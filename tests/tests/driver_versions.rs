//! An application keeps the driver and the bson version it already uses: one fixture application
//! on the driver's defaults (bson 2) and one on `bson-3`, each with its own `bson` dependency for
//! its documents, built on its own (outside the workspace, so that no feature of another member is
//! unified into its driver) and run against the test server; the database is checked afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use bson::doc;
use schema_tests::{TestDb, documents, uri};

/// Builds the fixture application `name` (tests/fixtures/NAME) and returns its binary.
fn build(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // One target directory for both fixtures: their dependencies differ only in the driver's
    // features, so everything else is built once.
    let target = root.join("target/fixtures");
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(root.join("tests/fixtures").join(name).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    target.join("debug").join(name)
}

async fn applies_with_its_own_bson(name: &str) {
    let binary = build(name);
    let t = TestDb::new(name).await;
    let output = Command::new(&binary)
        .arg(t.name())
        .env("MONGODB_URI", uri())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "applied=2 ticket=first");

    let records = documents(&t.db, "schema_versions").await;
    let applied: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.get_str("_id").unwrap(), r.get_str("state").unwrap()))
        .collect();
    assert_eq!(applied, [("0001", "applied"), ("0002", "applied")]);
    let tickets = documents(&t.db, "tickets").await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].get_str("title").unwrap(), "first");
    let index = schema_runtime::list_indexes(&t.db, "tickets", None)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.get_str("name") == Ok("idx_tickets_status"))
        .expect("the index was built");
    assert_eq!(
        index.get_document("key").unwrap(),
        &doc! { "status": 1, "opened_at": -1 }
    );

    // Run again: everything is applied, nothing runs twice.
    let again = Command::new(&binary)
        .arg(t.name())
        .env("MONGODB_URI", uri())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "applied=0 ticket=first"
    );
    assert_eq!(documents(&t.db, "tickets").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_application_on_the_drivers_default_bson_2() {
    applies_with_its_own_bson("driver-bson2").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_application_on_bson_3() {
    applies_with_its_own_bson("driver-bson3").await;
}
