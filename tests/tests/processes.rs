//! Many processes, one database: real OS processes (the `worker` binary) against the real server.
//! Storm, crash (kill -9 of the lock holder), pause (SIGSTOP past the lease), unreachable server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use schema_tests::{TestDb, count, documents, signal};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// The lease of the crash and pause tests: how long a dead or paused holder blocks the others.
const SHORT_LEASE_MS: u64 = 2_000;

/// These tests start many processes on two cores; running them one at a time keeps a lease from
/// expiring only because the machine is busy with another test's processes.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn worker(db: &str, lease_ms: u64) -> Command {
    let mut command = Command::new(WORKER);
    command
        .args(["--db", db, "--lease-ms", &lease_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("the worker runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn pause_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("schema-pause-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until the paused worker `pid` wrote its `reached` file.
fn wait_reached(dir: &Path, pid: u32) {
    let file = dir.join(format!("reached-{pid}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "worker {pid} never reached its pause"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn records(db: &mongodb::Database) -> Vec<Document> {
    documents(db, "schema_versions").await
}

/// Every one of the 20 migrations recorded applied once, and each counter exactly `1`.
async fn assert_all_applied_once(db: &mongodb::Database) {
    let records = records(db).await;
    assert_eq!(records.len(), 20, "{records:?}");
    for (i, record) in records.iter().enumerate() {
        let id = format!("{:04}", i + 1);
        assert_eq!(record.get_str("_id").unwrap(), id);
        assert_eq!(record.get_str("state").unwrap(), "applied", "{record:?}");
        assert_eq!(
            count(db, &format!("m{id}")).await,
            1,
            "migration {id} ran once"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn storm_16_processes_apply_each_migration_exactly_once() {
    let _turn = TURN.lock().await;
    let t = TestDb::new("storm").await;
    let children: Vec<Child> = (0..16)
        .map(|_| worker(t.name(), 5_000).spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(finish).collect();
    let mut holders = 0;
    for output in &outputs {
        let out = stdout(output);
        assert!(
            output.status.success(),
            "a worker failed: {out} {}",
            stderr(output)
        );
        // No process returned from start-up before all 20 were recorded.
        assert!(out.contains("recorded=20"), "{out}");
        if out.contains("took_lock=true") {
            holders += 1;
        }
    }
    println!("{holders} of 16 processes took the lock");
    assert!(holders >= 1);
    assert_all_applied_once(&t.db).await;
    for record in records(&t.db).await {
        assert_eq!(record.get_i64("attempts").unwrap(), 1, "{record:?}");
    }
    let lock = documents(&t.db, "schema_versions_lock").await;
    assert_eq!(lock.len(), 1);
    let said: Vec<String> = outputs
        .iter()
        .map(|o| format!("{}{}", stdout(o), stderr(o)))
        .collect();
    assert_eq!(
        lock[0].get("owner"),
        Some(&bson::Bson::Null),
        "released: {lock:?} {said:#?}"
    );
}

/// What the collection says of the migration a killed holder was running.
enum Died {
    /// Its `running` record (the first migration of a run, or one that ran past a second).
    WithRecord,
    /// Either its `running` record or, when the kill came within its first second, no record
    /// of its own but its announcement on the record of the migration before it.
    Either,
}

async fn crash_at(pause_at: &str, after: Duration, expect: Died) {
    let _turn = TURN.lock().await;
    let t = TestDb::new(&format!("crash{pause_at}_{}", after.as_millis())).await;
    let dir = pause_dir(&format!("crash{pause_at}_{}", after.as_millis()));
    let holder = worker(t.name(), SHORT_LEASE_MS)
        .env("PAUSE_AT", pause_at)
        .env("PAUSE_DIR", &dir)
        .spawn()
        .unwrap();
    wait_reached(&dir, holder.id());
    tokio::time::sleep(after).await;
    signal(holder.id(), "-KILL");
    let killed = finish(holder);
    assert!(!killed.status.success());

    let versions = t.db.collection::<Document>("schema_versions");
    let interrupted = versions.find_one(doc! { "_id": pause_at }).await.unwrap();
    match (&interrupted, expect) {
        (Some(record), Died::WithRecord | Died::Either) => {
            assert_eq!(
                record.get_str("state").unwrap(),
                "running",
                "it died mid-way"
            );
            assert_eq!(record.get_i64("attempts").unwrap(), 1, "{record:?}");
        }
        (None, Died::Either) => {
            let before = versions
                .find_one(doc! { "next": pause_at })
                .await
                .unwrap()
                .expect("the migration before it announces it");
            assert_eq!(before.get_str("state").unwrap(), "applied", "{before:?}");
            assert_eq!(before.get_i64("fence").unwrap(), 1, "{before:?}");
        }
        (found, _) => panic!("the record of {pause_at} after the kill: {found:?}"),
    }

    // Another process takes over once the dead holder's lease expires.
    let started = Instant::now();
    let next = finish(worker(t.name(), SHORT_LEASE_MS).spawn().unwrap());
    assert!(next.status.success(), "{}", stderr(&next));
    assert!(stdout(&next).contains("recorded=20"), "{}", stdout(&next));
    println!("took over after {:?}", started.elapsed());

    assert_all_applied_once(&t.db).await;
    for record in records(&t.db).await {
        let expected = if record.get_str("_id").unwrap() == pause_at {
            2
        } else {
            1
        };
        assert_eq!(record.get_i64("attempts").unwrap(), expected, "{record:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_of_the_holder_at_the_first_migration() {
    crash_at("0001", Duration::ZERO, Died::WithRecord).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_of_the_holder_in_the_middle() {
    crash_at("0010", Duration::ZERO, Died::Either).await;
}

/// Past a second, an announced migration has its own `running` record.
#[tokio::test(flavor = "multi_thread")]
async fn crash_of_the_holder_in_the_middle_of_a_long_migration() {
    crash_at("0010", Duration::from_millis(2500), Died::WithRecord).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_of_the_holder_at_the_last_migration() {
    crash_at("0020", Duration::ZERO, Died::Either).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_holder_that_resumes_records_nothing_and_stops_with_the_fencing_error() {
    let _turn = TURN.lock().await;
    let t = TestDb::new("pause").await;
    let dir = pause_dir("pause");
    let paused = worker(t.name(), SHORT_LEASE_MS)
        .env("PAUSE_AT", "0005")
        .env("PAUSE_DIR", &dir)
        .spawn()
        .unwrap();
    let paused_pid = paused.id();
    wait_reached(&dir, paused_pid);
    signal(paused_pid, "-STOP");

    // Past its lease, another process takes over and finishes everything.
    let other = finish(worker(t.name(), SHORT_LEASE_MS).spawn().unwrap());
    assert!(other.status.success(), "{}", stderr(&other));
    assert!(stdout(&other).contains("recorded=20"));
    let before: Vec<Document> = records(&t.db).await;

    // The paused one resumes: its migration goes on, but it can record nothing.
    std::fs::write(dir.join("go"), "").unwrap();
    signal(paused_pid, "-CONT");
    let resumed = finish(paused);
    assert_eq!(
        resumed.status.code(),
        Some(2),
        "{} {}",
        stdout(&resumed),
        stderr(&resumed)
    );
    let message = stderr(&resumed);
    assert!(
        message.contains("lost the migration lock (fence 1)"),
        "{message}"
    );
    assert!(message.contains("0005"), "{message}");

    let after = records(&t.db).await;
    assert_eq!(before, after, "the resumed process wrote no record");
    for record in &after {
        assert_eq!(record.get_str("state").unwrap(), "applied");
        // 0001-0004 were applied by the first process before its pause, under fence 1; from
        // 0005 on everything is the second process's, under fence 2.
        let (fence, by_paused) = if record.get_str("_id").unwrap() < "0005" {
            (1, true)
        } else {
            (2, false)
        };
        assert_eq!(record.get_i64("fence").unwrap(), fence, "{record:?}");
        assert_eq!(
            record.get_i64("pid").unwrap() == i64::from(paused_pid),
            by_paused,
            "{record:?}"
        );
    }
    assert_eq!(
        record_attempts(&after, "0005"),
        2,
        "interrupted once, applied by the second process"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn record_attempts(records: &[Document], id: &str) -> i64 {
    records
        .iter()
        .find(|r| r.get_str("_id").ok() == Some(id))
        .unwrap()
        .get_i64("attempts")
        .unwrap()
}

#[test]
fn an_unreachable_server_gives_bounded_retries_then_a_clear_error_and_a_non_zero_exit() {
    let _turn = TURN.blocking_lock();
    let started = Instant::now();
    let output = Command::new(WORKER)
        .args(["--db", "unreachable", "--startup-attempts", "3"])
        // Nothing listens on port 1; the password must never be printed.
        .env(
            "MONGODB_URI",
            "mongodb://app:s3cret-pw@127.0.0.1:1/?directConnection=true",
        )
        .env("SERVER_SELECTION_TIMEOUT_MS", "300")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("reading the applied migrations"),
        "{message}"
    );
    assert!(
        message.contains("could not be reached in 3 attempts"),
        "{message}"
    );
    assert!(!message.contains("s3cret-pw"), "{message}");
    assert!(elapsed < Duration::from_secs(20), "bounded: {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_inside_a_transactional_migration_then_restart_applies_it_once_and_whole() {
    if !schema_tests::needs_replica_set(
        "kill_inside_a_transactional_migration_then_restart_applies_it_once_and_whole",
    )
    .await
    {
        return;
    }
    let _turn = TURN.lock().await;
    let t = TestDb::new("txnkill").await;
    let dir = pause_dir("txnkill");
    // Killed in the middle of its transaction: items 1-3 are written in the transaction, which
    // the dead process leaves open; the server aborts it after its transaction lifetime (60 s).
    let holder = worker(t.name(), SHORT_LEASE_MS)
        .args(["--group", "txn_kill"])
        .env("PAUSE_AT", "txn")
        .env("PAUSE_DIR", &dir)
        .spawn()
        .unwrap();
    wait_reached(&dir, holder.id());
    signal(holder.id(), "-KILL");
    assert!(!finish(holder).status.success());
    assert!(
        documents(&t.db, "items").await.is_empty(),
        "nothing of the open transaction is visible"
    );

    // One restart: it takes the lock over, meets the open transaction's writes (WriteConflict,
    // a transient transaction error), runs the transaction again until the server has aborted
    // the orphan, and applies it, in this one start and as its second attempt.
    let started = Instant::now();
    let next = finish(
        worker(t.name(), SHORT_LEASE_MS)
            .args(["--group", "txn_kill"])
            .spawn()
            .unwrap(),
    );
    assert!(next.status.success(), "{} {}", stdout(&next), stderr(&next));
    assert!(stdout(&next).contains("applied=1"), "{}", stdout(&next));
    println!("applied after {:?}", started.elapsed());

    let items: Vec<i32> = documents(&t.db, "items")
        .await
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect();
    assert_eq!(items, vec![1, 2, 3, 4, 5, 6], "all six, each once");
    let records = records(&t.db).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].get_str("state").unwrap(), "applied");
    assert_eq!(
        records[0].get_i64("attempts").unwrap(),
        2,
        "killed once, applied once: the retries of one start count as one attempt"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waiters that return from start-up and exit at once, without shutting their client down: the
/// lock's change stream is closed (its cursor killed) before `apply_all` returns, so no driver
/// task is left to run into the runtime's end (the driver panicked there: `SendError` in
/// `connection_requester.rs`, from killing the stream's cursor).
#[tokio::test(flavor = "multi_thread")]
async fn waiters_that_exit_at_once_leave_nothing_running_behind() {
    let _turn = TURN.lock().await;
    let t = TestDb::new("exitatonce").await;
    let dir = pause_dir("exitatonce");
    let holder = worker(t.name(), 5_000)
        .env("PAUSE_AT", "0005")
        .env("PAUSE_DIR", &dir)
        .spawn()
        .unwrap();
    wait_reached(&dir, holder.id());
    let waiters: Vec<Child> = (0..12)
        .map(|_| {
            worker(t.name(), 5_000)
                .env("EXIT_AT_ONCE", "1")
                .spawn()
                .unwrap()
        })
        .collect();
    // Let them try, be refused and open their feeds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::write(dir.join("go"), b"").unwrap();
    let held = finish(holder);
    assert!(held.status.success(), "{}", stderr(&held));
    for output in waiters.into_iter().map(finish) {
        let err = stderr(&output);
        assert!(output.status.success(), "{}{err}", stdout(&output));
        assert!(
            stdout(&output).contains("recorded=20"),
            "{}",
            stdout(&output)
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_all_applied_once(&t.db).await;
    let _ = std::fs::remove_dir_all(&dir);
}
