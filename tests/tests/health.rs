//! The example's `/health` route over real HTTP, backed by `Migrator::status` (one query).

use schema_runtime::{MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[migration(id = "0001", description = "Health check fixture", group = "health")]
async fn health_fixture(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

/// Serves the router on a free port and sends one `GET /health`; returns status code and JSON.
async fn get_health(migrator: Migrator) -> (u16, serde_json::Value) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, schema_example::health::router(migrator))
            .await
            .unwrap();
    });
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    server.abort();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let code: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (
        code,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

#[tokio::test]
async fn health_reports_pending_then_ok_with_the_schema_version() {
    let t = TestDb::new("health").await;
    let migrator = Migrator::new(t.db.clone()).group("health");

    let (code, body) = get_health(migrator.clone()).await;
    assert_eq!(code, 503);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["database"]["reachable"], true);
    assert_eq!(body["migrations"]["pending"], 1);
    assert_eq!(body["database"]["schema_version"], serde_json::Value::Null);

    migrator.apply_all().await.unwrap();
    let (code, body) = get_health(migrator).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["schema_version"], "0001");
    assert_eq!(body["database"]["name"], t.name());
    assert_eq!(body["migrations"]["pending"], 0);
    assert_eq!(body["migrations"]["database_ahead"], false);
}

#[tokio::test]
async fn health_of_an_unreachable_database_is_503_unavailable() {
    // A client whose server cannot be reached (nothing listens on port 1).
    let client = schema_runtime::mongodb::Client::with_uri_str(
        "mongodb://127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=300",
    )
    .await
    .unwrap();
    let migrator = Migrator::new(client.database("nowhere")).group("health");
    let (code, body) = get_health(migrator).await;
    assert_eq!(code, 503);
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"]["reachable"], false);
    assert!(
        body["migrations"]["error"]
            .as_str()
            .unwrap()
            .contains("reading the applied migrations"),
        "{body}"
    );
}

#[tokio::test]
async fn health_lists_drift_when_asked_and_stays_ready() {
    let t = TestDb::new("health_drift").await;
    let migrator = Migrator::new(t.db.clone()).group("health");
    migrator.apply_all().await.unwrap();
    t.db.run_command(mongodb::bson::doc! {
        "createIndexes": "orders",
        "indexes": [{ "key": { "customer": 1 }, "name": "idx_by_hand" }],
    })
    .await
    .unwrap();

    let (code, body) = get_health(migrator.clone()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["drift"],
        serde_json::Value::Null,
        "not checked unless asked"
    );

    let (code, body) = get_health(migrator.check_drift(true)).await;
    assert_eq!(code, 200, "drift does not fail readiness: {body}");
    assert_eq!(body["status"], "ok");
    let drift = body["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{body}");
    assert!(
        drift[0].as_str().unwrap().contains("\"idx_by_hand\""),
        "{body}"
    );
}

static GATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[migration(id = "0001", description = "Needed at start", group = "health_bg")]
async fn health_needed(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[migration(
    id = "0002",
    description = "A long backfill",
    group = "health_bg",
    background
)]
async fn health_background(_ctx: &mut MigrationContext) -> MigrationResult {
    while !GATE.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_ready_and_migrating_while_only_background_migrations_run() {
    let t = TestDb::new("health_bg").await;
    let migrator = Migrator::new(t.db.clone()).group("health_bg");
    let report = migrator.apply_all().await.unwrap();
    assert!(report.runs_background);

    let mut body = serde_json::Value::Null;
    for _ in 0..200 {
        let (code, got) = get_health(migrator.clone()).await;
        assert_eq!(code, 200, "{got}");
        assert_eq!(got["status"], "migrating");
        body = got;
        if body["migrations"]["running"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(body["migrations"]["pending_background"], 1, "{body}");
    assert_eq!(body["migrations"]["running"][0]["id"], "0002", "{body}");
    assert_eq!(body["migrations"]["running"][0]["background"], true);

    GATE.store(true, std::sync::atomic::Ordering::SeqCst);
    migrator
        .wait_for_background(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let (code, body) = get_health(migrator).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");
}

#[migration(id = "0001", description = "Needed at start", group = "health_bg_fail")]
async fn health_fail_needed(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[migration(
    id = "0002",
    description = "A build that fails",
    group = "health_bg_fail",
    background
)]
async fn health_fail_background(_ctx: &mut MigrationContext) -> MigrationResult {
    Err("duplicate keys in the way".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_background_migration_does_not_take_the_service_out() {
    let t = TestDb::new("health_bg_fail").await;
    let migrator = Migrator::new(t.db.clone()).group("health_bg_fail");
    migrator.apply_all().await.unwrap();
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        let (code, body) = get_health(migrator.clone()).await;
        assert_eq!(code, 200, "{body}");
        last = body;
        if last["status"] == "background_failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(last["status"], "background_failed", "{last}");
    assert_eq!(last["migrations"]["failed"][0], "0002");
    assert_eq!(last["migrations"]["background"][0], "0002");
    // It runs again (and fails again) when awaited, with its error.
    let error = migrator
        .wait_for_background(std::time::Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("duplicate keys in the way"),
        "{error}"
    );
}
