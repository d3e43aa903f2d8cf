//! Background migrations (`#[migration(background)]`): start-up returns once the migrations the
//! application needs are applied, while the lock holder applies the rest in a task; each is
//! applied exactly once, also when that holder is killed. Real `worker` processes against the
//! real server, and one process with the status it reports.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bson::Document;
use schema_runtime::{MigrationContext, MigrationResult, Migrator, migration};
use schema_tests::{
    TestDb, bump, client_named, count, fail_commands_off, flag, record, set_flag, signal,
};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// One test at a time: their processes share two cores, and a lease must not expire only
/// because the machine is busy.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn worker(db: &str, lease_ms: u64, pause_dir: Option<&Path>) -> Command {
    let mut command = Command::new(WORKER);
    command
        .args([
            "--db",
            db,
            "--group",
            "bg",
            "--lease-ms",
            &lease_ms.to_string(),
        ])
        .args(["--finish-background-ms", "60000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = pause_dir {
        command.env("PAUSE_AT", "0002").env("PAUSE_DIR", dir);
    }
    // How a waiter waited (change stream or back-off), printed for a late one.
    command.env("RUST_LOG", "schema_runtime=debug");
    command
}

fn pause_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("schema-bg-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits until all but `left` of `children` have exited; returns the outputs of those that did
/// and the ones still running.
fn wait_until_running(children: Vec<Child>, left: usize) -> (Vec<Output>, Vec<Child>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut running = children;
    let mut done = Vec::new();
    while running.len() > left {
        assert!(
            Instant::now() < deadline,
            "{} processes still running",
            running.len()
        );
        let mut still = Vec::new();
        for mut child in running {
            match child.try_wait().unwrap() {
                Some(_) => done.push(child.wait_with_output().unwrap()),
                None => still.push(child),
            }
        }
        running = still;
        std::thread::sleep(Duration::from_millis(20));
    }
    (done, running)
}

/// Waits until a worker's background migration reached its pause.
fn wait_for_pause(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reached(dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the background migration never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reached(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("reached-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_processes_return_while_one_applies_the_background_migration_exactly_once() {
    let _turn = TURN.lock().await;
    let t = TestDb::new("bg_eight").await;
    let dir = pause_dir("eight");
    let started = Instant::now();
    let children: Vec<Child> = (0..8)
        .map(|_| worker(t.name(), 5_000, Some(&dir)).spawn().unwrap())
        .collect();
    // Seven return and exit while the background migration is still paused in the eighth.
    let (returned, mut holder) = wait_until_running(children, 1);
    println!("7 of 8 processes returned in {:?}", started.elapsed());
    for output in &returned {
        let out = text(&output.stdout);
        assert!(output.status.success(), "{out} {}", text(&output.stderr));
        assert!(
            out.contains("recorded=1 "),
            "0001 applied before returning: {out}"
        );
        assert!(out.contains("background=1 runs_background=false"), "{out}");
    }
    assert!(!dir.join("go").exists());
    let holder = holder.pop().unwrap();
    wait_for_pause(&dir);
    assert_eq!(reached(&dir), [format!("reached-{}", holder.id())]);
    assert_eq!(
        record(&t.db, "0002").await.unwrap().get_str("state"),
        Ok("running")
    );

    std::fs::write(dir.join("go"), "").unwrap();
    let output = holder.wait_with_output().unwrap();
    let out = text(&output.stdout);
    assert!(output.status.success(), "{out} {}", text(&output.stderr));
    assert!(out.contains("runs_background=true"), "{out}");
    assert!(out.contains("background-done"), "{out}");
    // The holder notes the hand-off on the lock document, so waiters watching it return at
    // once rather than at their next look (2 s later).
    // Only processes that were waiting when the holder handed off count: one that started
    // later (a busy machine starts eight processes slowly) returns at its first read.
    let field = |out: &str, name: &str| -> u128 {
        out.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let handed_off = field(&out, "done_at_ms=");
    let behind: Vec<u128> = returned
        .iter()
        .map(|o| text(&o.stdout))
        .filter(|o| {
            let done = field(o, "done_at_ms=");
            done.saturating_sub(field(o, "waited_ms=")) < handed_off
        })
        .map(|o| field(&o, "done_at_ms=").saturating_sub(handed_off))
        .collect();
    println!("waiters returned {behind:?} ms after the holder handed off");
    // Waiters on the lock's change stream wake at the hand-off (one whose stream opened after
    // it reads the records at the opening: `a_hand_off_between_a_waiters_try_and_its_feed_is_seen_at_once`);
    // one that could not open it (or lost it) waits out its back-off (50 ms doubling, at most
    // 2 s) and may be that late. Most must be prompt (without the note on the lock, every one of
    // them waits its 2 s look).
    for output in &returned {
        let out = text(&output.stdout);
        let late = field(&out, "done_at_ms=").saturating_sub(handed_off);
        if late >= 500
            && field(&out, "done_at_ms=").saturating_sub(field(&out, "waited_ms=")) < handed_off
        {
            println!("a late waiter ({late} ms): {out}\n{}", text(&output.stderr));
        }
    }
    let mut sorted = behind.clone();
    sorted.sort_unstable();
    assert!(
        sorted.is_empty() || sorted[sorted.len() / 2] < 500,
        "the median waiter was late: {behind:?}"
    );
    assert!(behind.iter().all(|b| *b < 2_500), "{behind:?}");
    for id in ["0001", "0002"] {
        assert_eq!(count(&t.db, &format!("m{id}")).await, 1, "{id} ran once");
        let record = record(&t.db, id).await.unwrap();
        assert_eq!(record.get_str("state"), Ok("applied"));
        assert_eq!(record.get_i64("attempts"), Ok(1));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_background_holder_is_taken_over_and_the_migration_applied_once() {
    let _turn = TURN.lock().await;
    let t = TestDb::new("bg_kill").await;
    let dir = pause_dir("kill");
    let children: Vec<Child> = (0..3)
        .map(|_| worker(t.name(), 2_000, Some(&dir)).spawn().unwrap())
        .collect();
    let (_, mut holder) = wait_until_running(children, 1);
    let holder = holder.pop().unwrap();
    wait_for_pause(&dir);
    signal(holder.id(), "-9");
    let killed = holder.wait_with_output().unwrap();
    assert!(!killed.status.success());

    // The next process starts while the dead holder's lease still runs: it returns (the
    // application needs nothing more), then waits for the background work and takes it over.
    let next = worker(t.name(), 2_000, None)
        .arg("--await-background")
        .output()
        .unwrap();
    let out = text(&next.stdout);
    assert!(next.status.success(), "{out} {}", text(&next.stderr));
    assert!(out.contains("background-done applied=1"), "{out}");
    assert_eq!(count(&t.db, "m0001").await, 1);
    assert_eq!(
        count(&t.db, "m0002").await,
        1,
        "the killed attempt never got to its write"
    );
    let record = record(&t.db, "0002").await.unwrap();
    assert_eq!(record.get_str("state"), Ok("applied"));
    assert_eq!(record.get_i64("attempts"), Ok(2), "{record:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_background_holder_stopped_past_its_lease_records_nothing_when_it_resumes() {
    let _turn = TURN.lock().await;
    let t = TestDb::new("bg_stop").await;
    let dir = pause_dir("stop");
    let holder = worker(t.name(), 2_000, Some(&dir)).spawn().unwrap();
    wait_for_pause(&dir);
    signal(holder.id(), "-STOP");

    // Past its lease another process takes the background migration over and applies it.
    let next = worker(t.name(), 2_000, None)
        .arg("--await-background")
        .output()
        .unwrap();
    let out = text(&next.stdout);
    assert!(next.status.success(), "{out} {}", text(&next.stderr));
    assert!(out.contains("background-done applied=1"), "{out}");
    let before = schema_tests::documents(&t.db, "schema_versions").await;

    // The stopped holder resumes: its task finds its lease gone and records nothing; the
    // process itself goes on (its start-up had succeeded) and ends normally.
    std::fs::write(dir.join("go"), "").unwrap();
    signal(holder.id(), "-CONT");
    let resumed = holder.wait_with_output().unwrap();
    let (out, err) = (text(&resumed.stdout), text(&resumed.stderr));
    assert!(resumed.status.success(), "{out} {err}");
    assert!(err.contains("background migrations stopped"), "{err}");
    assert!(err.contains("lost the migration lock (fence 1)"), "{err}");
    let after = schema_tests::documents(&t.db, "schema_versions").await;
    assert_eq!(before, after, "the resumed holder wrote no record");
    let record = record(&t.db, "0002").await.unwrap();
    assert_eq!(record.get_i64("attempts"), Ok(2));
    assert_eq!(record.get_i64("fence"), Ok(2), "{record:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lets migration 0002 of group `bg_order` finish.
static GATE: AtomicBool = AtomicBool::new(false);

#[migration(id = "0001", description = "Needed at start", group = "bg_order")]
async fn order_needed(ctx: &mut MigrationContext) -> MigrationResult {
    bump(ctx.database(), "o0001").await?;
    Ok(())
}

#[migration(
    id = "0002",
    description = "Slow background build",
    group = "bg_order",
    background
)]
async fn order_background(ctx: &mut MigrationContext) -> MigrationResult {
    while !GATE.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bump(ctx.database(), "o0002").await?;
    Ok(())
}

#[migration(
    id = "0003",
    description = "After the background one",
    group = "bg_order"
)]
async fn order_after(ctx: &mut MigrationContext) -> MigrationResult {
    assert_eq!(
        count(ctx.database(), "o0002").await,
        1,
        "0002 ran before 0003"
    );
    bump(ctx.database(), "o0003").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn start_up_returns_and_later_migrations_keep_their_order() {
    let _turn = TURN.lock().await;
    let t = TestDb::new("bg_order").await;
    let migrator = Migrator::new(t.db.clone()).group("bg_order");
    let (_, plan) = schema_tests::run_cli(&migrator, &["plan"]).await;
    assert!(
        plan.contains("0002 Slow background build [background: start-up does not wait for it]"),
        "{plan}"
    );
    let (_, plan) = schema_tests::run_cli(&migrator, &["plan", "--json"]).await;
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let flags: Vec<bool> = plan["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["background"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [false, true, false]);
    let started = Instant::now();
    let report = migrator.apply_all().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let ids = |ids: &[schema_runtime::MigrationId]| {
        ids.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    assert_eq!(report.applied.len(), 1);
    assert_eq!(ids(&report.background), ["0002", "0003"]);
    assert!(report.runs_background && report.took_lock);

    // Another process starting now needs nothing more either, and leaves the work to the holder.
    let other = Migrator::new(t.db.clone())
        .group("bg_order")
        .apply_all()
        .await
        .unwrap();
    assert!(other.applied.is_empty());
    assert_eq!(ids(&other.background), ["0002", "0003"]);
    assert!(!other.runs_background && !other.took_lock);
    // While it runs: the status says what the application may start without, and what runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = migrator.status().await;
        if !status.running.is_empty() || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (status.pending, status.pending_background),
        (2, 2),
        "{status:?}"
    );
    assert_eq!(status.running.len(), 1, "{status:?}");
    assert_eq!(status.running[0].id, "0002");
    assert!(status.running[0].background);
    assert_eq!(status.running[0].attempt, 1);
    assert_eq!(count(&t.db, "o0003").await, 0, "0003 waits for 0002");

    GATE.store(true, Ordering::SeqCst);
    let done = migrator
        .wait_for_background(Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        done.applied.is_empty(),
        "the holder's task applied them: {done:?}"
    );
    for id in ["0001", "0002", "0003"] {
        assert_eq!(count(&t.db, &format!("o{id}")).await, 1);
    }
    let status = migrator.status().await;
    assert_eq!((status.pending, status.pending_background), (0, 0));
    assert!(status.running.is_empty());
    let lock: Vec<Document> = schema_tests::documents(&t.db, "schema_versions_lock").await;
    assert!(
        lock.iter()
            .all(|l| l.get("owner").is_none_or(|o| o == &bson::Bson::Null)),
        "the task released the lock: {lock:?}"
    );
}

// --- group "bg_race": the hand-off lands between a waiter's refused try and its feed's opening ---

#[migration(id = "0001", description = "Needed, waits for go1", group = "bg_race")]
async fn race_needed(ctx: &mut MigrationContext) -> MigrationResult {
    let db = ctx.database();
    db.collection::<Document>("control")
        .insert_one(bson::doc! { "_id": "started" })
        .await?;
    while !flag(db, "go1").await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bump(db, "r0001").await?;
    Ok(())
}

#[migration(
    id = "0002",
    description = "Background, waits for go",
    group = "bg_race",
    background
)]
async fn race_background(ctx: &mut MigrationContext) -> MigrationResult {
    while !flag(ctx.database(), "go").await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bump(ctx.database(), "r0002").await?;
    Ok(())
}

/// A waiter opens its feed of the lock's changes after its refused try, so a hand-off that lands
/// in between is not on the feed; the waiter must still return at once (the records it reads
/// right after the opening show the work done), not at its next look 2 s later. The feed's
/// opening is held on the server (`failCommand` on the waiter's `aggregate`) while the holder
/// applies what start-up needs and hands the rest off, which makes the race certain.
#[tokio::test(flavor = "multi_thread")]
async fn a_hand_off_between_a_waiters_try_and_its_feed_is_seen_at_once() {
    if !schema_tests::needs_replica_set(
        "a_hand_off_between_a_waiters_try_and_its_feed_is_seen_at_once",
    )
    .await
    {
        return;
    }
    let _turn = TURN.lock().await;
    let t = TestDb::new("bg_race").await;
    let lease = Duration::from_secs(30);
    let migrator = Migrator::new(t.db.clone()).group("bg_race").lease(lease);
    let holder = tokio::spawn({
        let migrator = migrator.clone();
        async move { migrator.apply_all().await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !flag(&t.db, "started").await {
        assert!(Instant::now() < deadline, "0001 never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let app = "bg-race-waiter";
    let client = client_named(app).await;
    client
        .database("admin")
        .run_command(bson::doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["aggregate"], "blockConnection": true,
                      "blockTimeMS": 3_000, "appName": app },
        })
        .await
        .unwrap();
    let waiter = tokio::spawn({
        let waiter = Migrator::new(client.database(t.name()))
            .group("bg_race")
            .lease(lease);
        async move { waiter.apply_all().await }
    });
    // By now the waiter has read 0001 as running, been refused the lock, and is opening its
    // feed, held on the server: the holder applies 0001 and hands 0002 off meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_flag(&t.db, "go1", true).await;
    let held = holder.await.unwrap().unwrap();
    assert!(held.runs_background && held.took_lock, "{held:?}");

    let report = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the waiter returns")
        .unwrap();
    fail_commands_off(&client).await;
    let report = report.unwrap_or_else(|e| panic!("{e}"));
    // It waited through the held opening (3 s) and returned at the read right after it.
    assert!(
        report.waited >= Duration::from_millis(2_500),
        "the waiter did not wait on the held feed: {report:?}"
    );
    assert!(
        report.waited < Duration::from_millis(4_500),
        "the waiter slept past the hand-off: {report:?}"
    );
    assert!(report.applied.is_empty() && !report.took_lock, "{report:?}");
    assert_eq!(report.already_applied.len(), 1, "{report:?}");
    assert_eq!(report.background.len(), 1, "{report:?}");
    assert!(!report.runs_background);

    set_flag(&t.db, "go", true).await;
    migrator
        .wait_for_background(Duration::from_secs(30))
        .await
        .unwrap();
    for id in ["0001", "0002"] {
        assert_eq!(count(&t.db, &format!("r{id}")).await, 1, "{id} ran once");
        let record = record(&t.db, id).await.unwrap();
        assert_eq!(record.get_str("state"), Ok("applied"));
        assert_eq!(record.get_i64("attempts"), Ok(1));
    }
}
