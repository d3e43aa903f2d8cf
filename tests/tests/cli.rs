//! The embeddable `migrate` CLI, against the real server: every command's output and the database
//! state afterwards.

use bson::{Bson, Document, doc};
use clap::Parser;
use schema_runtime::cli::{Command, Outcome};
use schema_runtime::{Error, MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::{TestDb, bump, count, counting_client, documents, record};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

async fn run(migrator: &Migrator, args: &[&str]) -> (schema_runtime::Result<Outcome>, String) {
    schema_tests::run_cli(migrator, args).await
}

async fn log_down(ctx: &MigrationContext, id: &str) -> MigrationResult {
    ctx.collection::<Document>("down_log")
        .update_one(doc! { "_id": "log" }, doc! { "$push": { "ids": id } })
        .upsert(true)
        .await?;
    Ok(())
}

#[migration(id = "0001", description = "Create the widgets collection", group = "cli", down = drop_widgets)]
async fn create_widgets(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "cli_0001").await?;
    ctx.database().create_collection("widgets").await?;
    Ok(())
}

async fn drop_widgets(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.collection::<Document>("widgets").drop().await?;
    log_down(ctx, "0001").await
}

#[migration(id = "0002", description = "Index widgets by name", group = "cli", down = drop_widget_index)]
async fn index_widgets(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "cli_0002").await?;
    ctx.ensure_indexes(
        "widgets",
        &[schema_runtime::IndexSpec::new(
            "idx_name",
            doc! { "name": 1 },
        )],
    )
    .await?;
    Ok(())
}

async fn drop_widget_index(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.collection::<Document>("widgets")
        .drop_index("idx_name")
        .await?;
    log_down(ctx, "0002").await
}

#[migration(id = "0003", description = "Seed widgets", group = "cli")]
async fn seed_widgets(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "cli_0003").await?;
    Ok(())
}

#[migration(id = "0004", description = "Drop legacy gadgets", group = "cli", destructive, down = restore_gadgets)]
async fn drop_gadgets(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "cli_0004").await?;
    Ok(())
}

async fn restore_gadgets(ctx: &mut MigrationContext) -> MigrationResult {
    log_down(ctx, "0004").await
}

async fn down_log(db: &mongodb::Database) -> Vec<String> {
    documents(db, "down_log")
        .await
        .first()
        .and_then(|d| d.get_array("ids").ok().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|b| b.as_str().map(str::to_owned))
        .collect()
}

fn migrator(t: &TestDb) -> Migrator {
    Migrator::new(t.db.clone()).group("cli")
}

#[tokio::test]
async fn status_and_plan_on_a_fresh_database_send_no_write() {
    let (client, log) = counting_client().await;
    let t = TestDb::with_client(&client, "cli_plan").await;
    let m = migrator(&t);

    log.reset();
    let (result, out) = run(&m, &["plan"]).await;
    assert_eq!(result.unwrap(), Outcome::Pending);
    assert_eq!(log.names(), ["find"], "plan sends no write");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "up would apply, in order:");
    assert_eq!(lines[1], "  0001 Create the widgets collection");
    assert_eq!(lines[4], "  0004 Drop legacy gadgets [destructive]");
    assert!(
        lines[5].contains("refused unless --allow-destructive"),
        "{out}"
    );

    log.reset();
    let (_, out) = run(&m, &["status"]).await;
    assert_eq!(log.names(), ["find"]);
    assert!(
        out.contains("| 0001 | Create the widgets collection | pending"),
        "{out}"
    );
    assert!(
        out.contains("0 applied, 4 pending, 0 unknown to this binary"),
        "{out}"
    );
    let (result, json) = run(&m, &["status", "--json"]).await;
    assert_eq!(result.unwrap(), Outcome::Pending);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (&doc["command"], &doc["result"], &doc["exit_code"]),
        (&"status".into(), &"pending".into(), &3.into())
    );
    let rows = doc["migrations"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["id"], "0004");
    assert_eq!(rows[3]["state"], "pending");
    assert_eq!(rows[3]["attempts"], 0);
    assert_eq!(rows[3]["destructive"], true);
    assert!(rows[3]["last_error"].is_null() && rows[3]["checksum_status"].is_null());
    assert_eq!(rows[3]["checksum"].as_str().unwrap().len(), 64);
    assert_eq!(doc["problems"], serde_json::json!([]));
    assert!(documents(&t.db, "schema_versions").await.is_empty());
}

#[tokio::test]
async fn up_to_then_destructive_only_when_allowed() {
    let t = TestDb::new("cli_up").await;
    let m = migrator(&t);
    let (result, out) = run(&m, &["up", "--to", "0002"]).await;
    result.unwrap();
    assert!(
        out.contains("applied 0001 Create the widgets collection"),
        "{out}"
    );
    assert!(out.contains("applied 0002 Index widgets by name"), "{out}");
    assert!(out.contains("left pending (after --to): 0003"), "{out}");
    assert!(record(&t.db, "0003").await.is_none());

    let (result, _) = run(&m, &["up"]).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::DestructiveNotAllowed { id, .. } if id == "0004"),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-destructive"), "{err}");
    assert!(
        record(&t.db, "0003").await.is_none(),
        "refused before anything ran"
    );

    let (result, out) = run(&m, &["up", "--allow-destructive"]).await;
    result.unwrap();
    assert!(
        out.contains("applied 0003") && out.contains("applied 0004"),
        "{out}"
    );
    let (_, out) = run(&m, &["status"]).await;
    assert!(out.contains("4 applied, 0 pending"), "{out}");
    assert_eq!(
        out.matches("| ok ").count(),
        4,
        "every checksum matches: {out}"
    );
    for id in ["0001", "0002", "0003", "0004"] {
        assert_eq!(
            record(&t.db, id).await.unwrap().get_str("state").unwrap(),
            "applied"
        );
    }
}

#[tokio::test]
async fn down_rolls_back_newest_first_and_stops_where_there_is_no_rollback() {
    let t = TestDb::new("cli_down").await;
    let m = migrator(&t).allow_destructive(true);
    m.apply_all().await.unwrap();

    let (result, out) = run(&m, &["down", "--to", "0001"]).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::NoRollback { id, .. } if id == "0003"),
        "{err}"
    );
    assert!(err.to_string().contains("after rolling back 0004"), "{err}");
    assert_eq!(out, "", "an error is returned, not printed");
    assert_eq!(down_log(&t.db).await, ["0004"]);
    assert!(
        record(&t.db, "0004").await.is_none(),
        "0004's record is removed"
    );
    assert!(
        record(&t.db, "0003").await.is_some(),
        "0003 stays: it has no rollback"
    );

    // From a state where every migration above the target has a rollback: 0002 then 0001.
    let t = TestDb::new("cli_down2").await;
    let m = migrator(&t);
    m.up(Some(&"0002".parse().unwrap())).await.unwrap();
    let (result, out) = run(&m, &["down", "--to", "0"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "rolled back 0002 Index widgets by name\nrolled back 0001 Create the widgets collection\n"
    );
    assert_eq!(down_log(&t.db).await, ["0002", "0001"]);
    assert!(documents(&t.db, "schema_versions").await.is_empty());
    let collections = t.db.list_collection_names().await.unwrap();
    assert!(
        !collections.contains(&"widgets".to_owned()),
        "{collections:?}"
    );
}

#[tokio::test]
async fn baseline_records_without_running_then_up_applies_the_rest() {
    let t = TestDb::new("cli_baseline").await;
    let m = migrator(&t);
    let (result, out) = run(&m, &["baseline", "--to", "0003"]).await;
    result.unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    for id in ["0001", "0002", "0003"] {
        let r = record(&t.db, id).await.unwrap();
        assert_eq!(r.get_str("state").unwrap(), "applied");
        assert_eq!(r.get_bool("baseline").ok(), Some(true));
        assert_eq!(
            count(&t.db, &format!("cli_{id}")).await,
            0,
            "{id} did not run"
        );
    }
    let (result, out) = run(&m, &["up", "--allow-destructive"]).await;
    result.unwrap();
    assert_eq!(out, format!("{}\n", out.lines().next().unwrap()));
    assert!(out.starts_with("applied 0004 Drop legacy gadgets"), "{out}");
    assert_eq!(count(&t.db, "cli_0001").await, 0);
}

#[tokio::test]
async fn redo_runs_an_applied_migration_again() {
    let t = TestDb::new("cli_redo").await;
    let m = migrator(&t);
    m.up(Some(&"0001".parse().unwrap())).await.unwrap();
    let (result, out) = run(&m, &["redo", "0001"]).await;
    result.unwrap();
    assert!(
        out.starts_with("ran 0001 Create the widgets collection again"),
        "{out}"
    );
    assert!(out.contains("attempt 2"), "{out}");
    assert_eq!(count(&t.db, "cli_0001").await, 2);
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(
        (r.get_str("state").unwrap(), r.get_i64("attempts").unwrap()),
        ("applied", 2)
    );

    let (result, _) = run(&m, &["redo", "0003"]).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("redo 0003") && err.contains("not applied"),
        "{err}"
    );
    let (result, _) = run(&m, &["redo", "42"]).await;
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("no registered migration")
    );
}

#[tokio::test]
async fn unlock_force_releases_a_lock_whose_holder_is_gone() {
    assert!(
        Cli::try_parse_from(["migrate", "unlock"]).is_err(),
        "--force is required"
    );
    let t = TestDb::new("cli_unlock").await;
    let m = migrator(&t);
    // A holder that renewed a moment ago looks alive: refused without --even-if-alive.
    let now = bson::DateTime::now().timestamp_millis();
    t.db.collection::<Document>("schema_versions_lock")
        .insert_one(
            doc! { "_id": "migrations", "owner": "ghost:1:dead", "fence": 5_i64,
            "expires_at": bson::DateTime::from_millis(now + 30_000),
            "renewed_at": bson::DateTime::from_millis(now), "host": "ghost", "pid": 1_i64 },
        )
        .await
        .unwrap();
    let (result, _) = run(&m, &["unlock", "--force"]).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("looks alive: ghost:1:dead (fence 5, host ghost, pid 1), last renewed"),
        "{err}"
    );
    // Its lease ran out (the process was killed): released at once, with a higher fence.
    t.db.collection::<Document>("schema_versions_lock")
        .update_one(
            doc! { "_id": "migrations" },
            doc! { "$set": { "expires_at": bson::DateTime::from_millis(now - 1_000) } },
        )
        .await
        .unwrap();
    let (result, out) = run(&m, &["unlock", "--force"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "released the lock last held by ghost:1:dead (fence 5, host ghost, pid 1, lease expired); the fence is now 6\n"
    );
    let lock = documents(&t.db, "schema_versions_lock").await;
    assert_eq!(lock[0].get("owner"), Some(&Bson::Null));
    assert_eq!(lock[0].get_i64("fence").unwrap(), 6);
    // The next acquisition gets a higher fence still.
    m.up(Some(&"0001".parse().unwrap())).await.unwrap();
    assert_eq!(
        record(&t.db, "0001")
            .await
            .unwrap()
            .get_i64("fence")
            .unwrap(),
        7
    );
    let (_, out) = run(&m, &["unlock", "--force"]).await;
    assert_eq!(out, "the lock was not held; the fence is now 8\n");
}

#[tokio::test]
async fn verify_passes_a_clean_database_and_lists_every_problem_otherwise() {
    let t = TestDb::new("cli_verify").await;
    let m = migrator(&t).allow_destructive(true);
    m.apply_all().await.unwrap();
    let (result, out) = run(&m, &["verify"]).await;
    assert_eq!(result.unwrap(), Outcome::Success);
    assert_eq!(out, "verify: no problems\n");
    let (_, json) = run(&m, &["verify", "--json"]).await;
    let clean: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (&clean["result"], &clean["exit_code"]),
        (&"up_to_date".into(), &0.into())
    );

    let versions = t.db.collection::<Document>("schema_versions");
    versions
        .update_one(
            doc! { "_id": "0001" },
            doc! { "$set": { "checksum": "edited" } },
        )
        .await
        .unwrap();
    versions
        .update_one(
            doc! { "_id": "0003" },
            doc! { "$set": { "state": "failed", "last_error": "boom" } },
        )
        .await
        .unwrap();
    versions
        .insert_one(doc! { "_id": "0099", "state": "applied" })
        .await
        .unwrap();
    let (result, out) = run(&m, &["verify"]).await;
    assert_eq!(result.unwrap(), Outcome::Problems);
    assert!(
        out.contains("problem: 0001: changed after it was applied"),
        "{out}"
    );
    assert!(out.contains("problem: 0003: failed: boom"), "{out}");
    assert!(
        out.contains("problem: 0003: pending, but 0099 is already applied (out of order)"),
        "{out}"
    );
    assert!(
        out.contains("problem: 0099: applied, but this binary does not know it"),
        "{out}"
    );
    assert!(out.contains("pending: 0003 Seed widgets\n"), "{out}");
    assert!(out.ends_with("verify: 4 problem(s)\n"), "{out}");

    let (_, json) = run(&m, &["verify", "--json"]).await;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (&doc["result"], &doc["exit_code"]),
        (&"problems".into(), &4.into())
    );
    let kinds: Vec<(&str, &str)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("changed", "0001"),
            ("failed", "0003"),
            ("out_of_order", "0003"),
            ("unknown", "0099")
        ]
    );
    let pending = doc["migrations"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            &pending[0]["id"],
            &pending[0]["state"],
            &pending[0]["last_error"]
        ),
        (&"0003".into(), &"failed".into(), &"boom".into())
    );
}

#[tokio::test]
async fn verify_lists_what_is_pending_and_says_so_in_its_outcome() {
    let t = TestDb::new("cli_verify_pending").await;
    let m = migrator(&t);
    let (result, out) = run(&m, &["up", "--to", "0002"]).await;
    assert_eq!(result.unwrap(), Outcome::Success);
    assert!(out.contains("left pending (after --to): 0003"), "{out}");
    let (result, out) = run(&m, &["verify"]).await;
    assert_eq!(result.unwrap(), Outcome::Pending);
    assert_eq!(
        out,
        "pending: 0003 Seed widgets\npending: 0004 Drop legacy gadgets\nverify: no problems, 2 pending\n"
    );
    let (result, json) = run(&m, &["up", "--allow-destructive", "--json"]).await;
    assert_eq!(result.unwrap(), Outcome::Success);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (&doc["command"], &doc["result"]),
        (&"up".into(), &"done".into())
    );
    let applied: Vec<&str> = doc["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(applied, ["0003", "0004"]);
    assert_eq!(doc["applied"][0]["attempt"], 1);
    let (result, out) = run(&m, &["status"]).await;
    assert_eq!(result.unwrap(), Outcome::Success);
    assert!(out.contains("4 applied, 0 pending"), "{out}");
    assert_eq!(
        record(&t.db, "0004")
            .await
            .unwrap()
            .get_str("state")
            .unwrap(),
        "applied"
    );
}

#[tokio::test]
async fn every_command_prints_json_and_a_failure_is_a_json_error() {
    let t = TestDb::new("cli_json").await;
    let m = migrator(&t).allow_destructive(true);
    m.apply_all().await.unwrap();
    for (args, command, key) in [
        (&["plan", "--json"][..], "plan", "migrations"),
        (&["redo", "0003", "--json"][..], "redo", "applied"),
        (
            &["down", "--to", "0003", "--json"][..],
            "down",
            "rolled_back",
        ),
        (
            &["baseline", "--to", "0004", "--json"][..],
            "baseline",
            "recorded",
        ),
        (&["unlock", "--force", "--json"][..], "unlock", "lock"),
        (&["status", "--json"][..], "status", "migrations"),
    ] {
        let (result, json) = run(&m, args).await;
        result.unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{args:?}: {e}: {json}"));
        assert_eq!(doc["command"], command, "{json}");
        assert!(!doc[key].is_null(), "{args:?}: {json}");
        assert_eq!(doc["exit_code"], 0, "{json}");
    }
    let (_, json) = run(&m, &["down", "--to", "0003", "--json"]).await;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["rolled_back"], serde_json::json!(["0004"]));
    assert!(record(&t.db, "0004").await.is_none());

    let (result, json) = run(&m, &["redo", "0099", "--json"]).await;
    let error = result.unwrap_err().to_string();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (&doc["result"], &doc["exit_code"], &doc["error"]),
        (&"error".into(), &1.into(), &error.into())
    );
}

/// The `migrate` binary as an application embeds the CLI (tests/src/bin/migrate.rs, group
/// `cli_proc`: two migrations).
fn migrate(database: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(["--db", database])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_a_pipeline_can_use_and_a_closed_pipe_ends_quietly() {
    let t = TestDb::new("cli_exit").await;
    let code = |args: &[&str]| {
        let output = migrate(t.name(), args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };

    let (status, out) = code(&["verify"]);
    assert_eq!(status, Some(3), "{out}");
    assert!(
        out.contains("pending: 0001 Create gizmos\npending: 0002 Seed gizmos\n"),
        "{out}"
    );
    assert_eq!(code(&["status"]).0, Some(3));
    let (status, out) = code(&["plan", "--json"]);
    assert_eq!(status, Some(3));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["result"], "pending");

    assert_eq!(code(&["up"]).0, Some(0));
    assert_eq!(
        code(&["verify"]),
        (Some(0), "verify: no problems\n".to_owned())
    );
    assert_eq!(code(&["status"]).0, Some(0));

    t.db.collection::<Document>("schema_versions")
        .update_one(
            doc! { "_id": "0002" },
            doc! { "$set": { "checksum": "edited" } },
        )
        .await
        .unwrap();
    let (status, out) = code(&["verify"]);
    assert_eq!(status, Some(4), "{out}");
    assert!(
        out.contains("problem: 0002: changed after it was applied"),
        "{out}"
    );
    assert_eq!(code(&["status"]).0, Some(4));

    let (status, out) = code(&["redo", "0099"]);
    assert_eq!(status, Some(1), "{out}");
    assert!(out.starts_with("error: "), "{out}");
    assert_eq!(code(&["no-such-command"]).0, Some(2));

    // The reader is gone before the command prints: the output ends quietly, the exit code is
    // the command's own.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(["--db", t.name(), "status", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert_eq!(stderr, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_application_without_clap_runs_the_cli_from_its_arguments() {
    let t = TestDb::new("cli_noclap").await;
    let noclap = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_noclap"))
            .arg(t.name())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, _) = noclap(&["migrate", "verify"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("pending: 0001 Create sprockets"), "{out}");
    let (code, out, _) = noclap(&["migrate", "up", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["applied"][0]["id"], "0001");
    assert!(
        t.db.list_collection_names()
            .await
            .unwrap()
            .contains(&"sprockets".to_owned())
    );
    let (code, _, err) = noclap(&["migrate", "sideways"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unrecognized subcommand 'sideways'"), "{err}");
    let (code, out, _) = noclap(&["migrate", "--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("verify"), "{out}");
}

#[tokio::test]
async fn forget_and_accept_are_explicit_recorded_ways_out_of_stale_records() {
    let t = TestDb::new("cli_forget").await;
    let m = migrator(&t).allow_destructive(true);
    m.apply_all().await.unwrap();
    let versions = t.db.collection::<Document>("schema_versions");
    let audit = || documents(&t.db, "schema_versions_audit");

    // A migration whose file was deleted, and one the reference system recorded.
    versions
        .insert_many([
            doc! { "_id": "0099", "description": "Deleted since", "state": "applied", "fence": 1_i64 },
            doc! { "_id": "0098_legacy_step", "description": "Legacy", "applied_at": bson::DateTime::now() },
        ])
        .await
        .unwrap();
    let (result, _) = run(&m, &["verify"]).await;
    assert_eq!(result.unwrap(), Outcome::Problems);

    let (result, out) = run(&m, &["forget", "0099"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "forgot the record 0099 (a copy is in schema_versions_audit)\n"
    );
    let (result, json) = run(&m, &["forget", "98", "--json"]).await;
    result.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["forgotten"], serde_json::json!(["0098_legacy_step"]));
    assert!(record(&t.db, "0099").await.is_none());
    assert!(record(&t.db, "0098_legacy_step").await.is_none());
    let entries = audit().await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].get_str("action").unwrap(), "forget");
    assert_eq!(entries[0].get_str("key").unwrap(), "0099");
    assert_eq!(
        entries[0]
            .get_document("record")
            .unwrap()
            .get_str("description")
            .unwrap(),
        "Deleted since"
    );
    assert!(entries[0].get_str("by").unwrap().contains("(pid "));
    assert!(entries[0].get_datetime("at").is_ok());
    let (result, out) = run(&m, &["verify"]).await;
    assert_eq!(
        (result.unwrap(), out.as_str()),
        (Outcome::Success, "verify: no problems\n")
    );

    // Refused: a migration this binary has, and a record that does not exist.
    let (result, _) = run(&m, &["forget", "0002"]).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("this binary registers it") && err.contains("`down`"),
        "{err}"
    );
    assert!(record(&t.db, "0002").await.is_some());
    let (result, _) = run(&m, &["forget", "0077"]).await;
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("the database has no record with this id")
    );

    // A harmless change to an applied migration's body.
    versions
        .update_one(
            doc! { "_id": "0001" },
            doc! { "$set": { "checksum": "edited" } },
        )
        .await
        .unwrap();
    let (result, json) = run(&m, &["accept", "0001", "--json"]).await;
    result.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let current = doc["accepted"][0]["checksum"].as_str().unwrap().to_owned();
    assert_eq!(doc["accepted"][0]["previous_checksum"], "edited");
    assert_eq!(current.len(), 64);
    let accepted = record(&t.db, "0001").await.unwrap();
    assert_eq!(accepted.get_str("checksum").unwrap(), current);
    let note = accepted.get_document("accepted").unwrap();
    assert_eq!(note.get_str("previous_checksum").unwrap(), "edited");
    assert!(note.get_str("by").unwrap().contains('@') && note.get_datetime("at").is_ok());
    assert_eq!(
        accepted.get_i64("attempts").unwrap(),
        1,
        "it did not run again"
    );
    assert_eq!(count(&t.db, "cli_0001").await, 1);
    let entries = audit().await;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2].get_str("action").unwrap(), "accept");
    let (result, _) = run(&m, &["verify"]).await;
    assert_eq!(result.unwrap(), Outcome::Success);

    // Refused: nothing to accept; another migration under the same id; not applied.
    let (result, _) = run(&m, &["accept", "0001"]).await;
    assert!(result.unwrap_err().to_string().contains("already matches"));
    versions
        .update_one(
            doc! { "_id": "0002" },
            doc! { "$set": { "checksum": "x", "function": "other::branch", "description": "Something else" } },
        )
        .await
        .unwrap();
    let (result, _) = run(&m, &["accept", "0002"]).await;
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("give the registered one a new id")
    );
    assert_eq!(
        record(&t.db, "0002")
            .await
            .unwrap()
            .get_str("checksum")
            .unwrap(),
        "x"
    );
}

#[tokio::test]
async fn accept_all_records_every_changed_checksum_at_once() {
    let t = TestDb::new("cli_accept_all").await;
    let m = migrator(&t).allow_destructive(true);
    m.apply_all().await.unwrap();
    let versions = t.db.collection::<Document>("schema_versions");
    // Two applied migrations reformatted.
    versions
        .update_many(
            doc! { "_id": { "$in": ["0001", "0003"] } },
            doc! { "$set": { "checksum": "before-rustfmt" } },
        )
        .await
        .unwrap();
    let (result, out) = run(&m, &["verify"]).await;
    assert_eq!(result.unwrap(), Outcome::Problems, "{out}");
    assert!(
        out.contains("migrate accept 0001"),
        "the warning says how: {out}"
    );

    let (result, json) = run(&m, &["accept", "--all", "--json"]).await;
    result.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = doc["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0001", "0003"]);
    for key in ["0001", "0003"] {
        let accepted = record(&t.db, key).await.unwrap();
        assert_eq!(
            accepted.get_str("checksum").unwrap().len(),
            64,
            "{accepted}"
        );
        assert_eq!(
            accepted
                .get_document("accepted")
                .unwrap()
                .get_str("previous_checksum")
                .unwrap(),
            "before-rustfmt"
        );
    }
    let (result, out) = run(&m, &["verify"]).await;
    assert_eq!(result.unwrap(), Outcome::Success, "{out}");
    // Nothing left: says so and changes nothing.
    let (result, out) = run(&m, &["accept", "--all"]).await;
    result.unwrap();
    assert_eq!(
        out,
        "no applied migration has a changed checksum; nothing to accept\n"
    );
    // An id or --all, not both, not neither.
    assert!(Cli::try_parse_from(["migrate", "accept"]).is_err());
    assert!(Cli::try_parse_from(["migrate", "accept", "0001", "--all"]).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn new_writes_the_next_migration_and_it_compiles() {
    let t = TestDb::new("cli_new").await;
    let m = migrator(&t);
    // A crate of the application's kind whose migrations module is empty so far.
    let scratch = schema_tests::scratch_crate(&format!("new-{}", std::process::id()));
    let migrations = scratch.join("src/migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        scratch.join("src/lib.rs"),
        "#![deny(warnings)]\npub mod migrations;\n",
    )
    .unwrap();
    std::fs::write(migrations.join("mod.rs"), "").unwrap();
    let dir = migrations.to_str().unwrap();

    let (result, out) = run(&m, &["new", "Add ticket tags", "--dir", dir]).await;
    result.unwrap();
    let file = migrations.join("m0005_add_ticket_tags.rs");
    assert_eq!(
        out,
        format!(
            "created {} (id 0005)\nadded `pub mod m0005_add_ticket_tags;` to {}\n",
            file.display(),
            migrations.join("mod.rs").display()
        )
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(
            r#"#[migration(id = "0005", description = "Add ticket tags", group = "cli")]"#
        ),
        "{text}"
    );

    let (result, json) = run(
        &m,
        &[
            "new",
            "Index tickets by tag",
            "--dir",
            dir,
            "--timestamp",
            "--json",
        ],
    )
    .await;
    result.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id = doc["created"]["id"].as_str().unwrap();
    assert!(id.len() == 14 && id.starts_with("20"), "{json}");
    assert_eq!(
        std::fs::read_to_string(migrations.join("mod.rs")).unwrap(),
        format!("pub mod m0005_add_ticket_tags;\npub mod m{id}_index_tickets_by_tag;\n")
    );

    // The same id again: refused, nothing overwritten.
    std::fs::write(&file, "// edited\n").unwrap();
    let (result, _) = run(&m, &["new", "Add ticket tags", "--dir", dir]).await;
    assert!(result.unwrap_err().to_string().contains("exists already"));
    std::fs::write(&file, text).unwrap();
    // Without --dir, from a directory where the group's files are not found.
    let (result, _) = run(&m, &["new", "Something"]).await;
    assert!(result.unwrap_err().to_string().contains("--dir"));

    if let Err(errors) = schema_tests::build_scratch_crate(&scratch) {
        panic!("the new migrations compile without warnings: {errors}");
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}
