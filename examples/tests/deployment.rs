//! The deployment the README's guide describes, with the real `service` binary: replicas run with
//! `ENABLE_AUTO_MIGRATION=false` and a readiness probe on `/health`, which fails while migrations
//! are pending; a job runs `service migrate up`; the probe then passes and `migrate verify` is
//! the pipeline's gate.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use schema_runtime::testing::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

const SERVICE: &str = env!("CARGO_BIN_EXE_service");

fn service(db: &TestDatabase) -> Command {
    let mut command = Command::new(SERVICE);
    command
        .env("MONGODB_DATABASE", db.name())
        .env_remove("ENABLE_AUTO_MIGRATION");
    command
}

/// A replica with auto-migration off, serving `/health` on a free port; returns it and the port.
fn replica(db: &TestDatabase) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = service(db)
        .env("ENABLE_AUTO_MIGRATION", "false")
        .args(["--role", "api", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the replica exited: {seen:?}"))
            .unwrap();
        let serving = line.contains("serving /health");
        seen.push(line);
        if serving {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("ENABLE_AUTO_MIGRATION is off: 9 pending, not applied")),
        "{seen:?}"
    );
    (child, port)
}

async fn probe(port: u16) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (code, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_wait_on_readiness_while_a_job_runs_migrate_up() {
    let db = TestDatabase::labelled("deploy").await;
    // Every command the service processes send, held to MongoDB's rules afterwards.
    let profiled = support::record_commands(db.database()).await;
    let (mut api, port) = replica(&db);

    let (code, body) = probe(port).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains(r#""status":"degraded""#), "{body}");
    let verify = service(&db).args(["migrate", "verify"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(3), "the gate says: pending");

    let job = service(&db).args(["migrate", "up"]).output().unwrap();
    let out = String::from_utf8_lossy(&job.stdout);
    assert!(
        job.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&job.stderr)
    );
    assert_eq!(out.matches("applied 000").count(), 9, "{out}");

    let (code, body) = probe(port).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""schema_version":"0009""#), "{body}");
    let verify = service(&db).args(["migrate", "verify"]).output().unwrap();
    assert_eq!(
        (
            verify.status.code(),
            String::from_utf8_lossy(&verify.stdout).into_owned()
        ),
        (Some(0), "verify: no problems\n".to_owned())
    );

    api.kill().unwrap();
    api.wait().unwrap();
    let records = db
        .database()
        .collection::<schema_runtime::bson::Document>("schema_versions")
        .count_documents(schema_runtime::bson::doc! { "state": "applied" })
        .await
        .unwrap();
    assert_eq!(records, 9);
    if profiled {
        let checked = support::assert_conformant(db.database()).await;
        assert!(checked > 30, "the profiler saw {checked} commands");
    }
}
