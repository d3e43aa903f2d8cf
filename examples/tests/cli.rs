//! The CLI inside the example's own binary, as a developer runs it: `migrate new` needs no
//! server, and log lines written into a pipe carry no colour codes.

use std::process::Command;

mod support;

const SERVICE: &str = env!("CARGO_BIN_EXE_service");

#[test]
fn migrate_new_runs_without_a_server_configured() {
    let dir = std::env::temp_dir().join(format!("example-new-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(SERVICE)
        .args(["migrate", "new", "Add ticket tags", "--dir"])
        .arg(&dir)
        .env_remove("MONGODB_URI")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The example registers 0001..0009: the next id, as the others are written.
    let file = dir.join("m0010_add_ticket_tags.rs");
    assert!(file.is_file(), "{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(r#"#[migration(id = "0010", description = "Add ticket tags")]"#),
        "{text}"
    );
    assert!(stdout.contains("(id 0010)"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Every other command needs the server and says which variable is missing.
    let output = Command::new(SERVICE)
        .args(["migrate", "status"])
        .env_remove("MONGODB_URI")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MONGODB_URI"), "{stderr}");
}

#[tokio::test]
async fn log_lines_into_a_pipe_carry_no_colour_codes() {
    let db = schema_runtime::testing::TestDatabase::labelled("example_ansi").await;
    let profiled = support::record_commands(db.database()).await;
    let output = Command::new(SERVICE)
        .env("MONGODB_DATABASE", db.name())
        .env("RUST_LOG", "info")
        .env_remove("ENABLE_AUTO_MIGRATION")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("INFO"), "info lines were logged: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escape codes: {stderr:?}"
    );
    if profiled {
        assert!(support::assert_conformant(db.database()).await > 10);
    }
}
