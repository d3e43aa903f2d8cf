//! The benchmark: prints, against the server in `MONGODB_URI` (run it with `scripts/bench`):
//! - commands sent and wall time of a no-op start-up with 10, 100 and 1,000 registered migrations;
//! - commands per applied migration when applying 100 trivial ones;
//! - wall time of 1, 8 and 16 processes (the `worker` binary) starting together on a fresh
//!   database with 20 migrations, its ratio to one process, and two floors: as many processes
//!   that only connect and ping, and one worker among processes that only connect and ping
//!   (the many-process time if waiting cost nothing);
//! - how soon after the lock holder the waiting processes return (p50, p95, max);
//! - commands per waiting process per second while a holder works for 10 s.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use schema_runtime::Migrator;
use schema_tests::{TestDb, counting_client};

include!(concat!(env!("OUT_DIR"), "/bulk.rs"));

/// The batch helper, measured against a hand-written loop over the same data.
#[schema_runtime::migration(
    id = "0001",
    description = "Batch helper benchmark",
    group = "bench_batch"
)]
async fn bench_batch(
    ctx: &mut schema_runtime::MigrationContext,
) -> schema_runtime::MigrationResult {
    ctx.batches("items")
        .batch_size(1_000)
        .update_each(|_| Some(bson::doc! { "$inc": { "n": 1 } }))
        .await?;
    Ok(())
}

const BATCH_DOCUMENTS: i64 = 50_000;

async fn fill(db: &mongodb::Database, name: &str) {
    let items = db.collection::<bson::Document>(name);
    for chunk in 0..(BATCH_DOCUMENTS / 10_000) {
        let docs: Vec<bson::Document> = (chunk * 10_000..(chunk + 1) * 10_000)
            .map(|i| bson::doc! { "_id": i, "n": 0 })
            .collect();
        items.insert_many(docs).await.expect("insert");
    }
}

/// What a user would write by hand: one cursor in `_id` order, one `update` command per 1,000
/// documents; no checkpoints, no transactions, no resume.
async fn hand_written_loop(db: &mongodb::Database, name: &str) {
    use futures::TryStreamExt;
    let mut cursor = db
        .collection::<bson::Document>(name)
        .find(bson::doc! {})
        .sort(bson::doc! { "_id": 1 })
        .batch_size(1_000)
        .await
        .expect("find");
    let mut updates = Vec::new();
    loop {
        let next = cursor.try_next().await.expect("next");
        if let Some(d) = &next {
            updates.push(bson::doc! { "q": { "_id": d.get("_id").cloned().unwrap() }, "u": { "$inc": { "n": 1 } } });
        }
        if updates.len() == 1_000 || (next.is_none() && !updates.is_empty()) {
            db.run_command(bson::doc! { "update": name, "updates": std::mem::take(&mut updates), "ordered": true })
                .await
                .expect("update");
        }
        if next.is_none() {
            break;
        }
    }
}

const ROUNDS: usize = 15;
/// Rounds of applying 100 migrations (each on a fresh database).
const APPLY_ROUNDS: usize = 9;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let (client, log) = counting_client().await;

    println!("no-op start-up (everything applied), median of {ROUNDS}:");
    println!(
        "  {:>10}  {:>8}  {:>10}",
        "migrations", "commands", "wall time"
    );
    let mut noop_1000_db = None;
    for count in [10, 100, 1000] {
        let t = TestDb::with_client(&client, &format!("bench_noop_{count}")).await;
        let migrator = Migrator::new(t.db.clone()).group(format!("bulk{count}"));
        migrator.apply_all().await.expect("apply");
        let mut times = Vec::new();
        let mut commands = 0;
        for _ in 0..ROUNDS {
            log.reset();
            let started = Instant::now();
            let report = migrator.apply_all().await.expect("no-op");
            times.push(started.elapsed());
            commands = log.count();
            assert!(report.applied.is_empty());
        }
        println!("  {count:>10}  {commands:>8}  {:>10}", ms(median(times)));
        if count == 1000 {
            noop_1000_db = Some(t);
        }
    }
    let noop_1000_db = noop_1000_db.expect("measured above");
    let noop_1000 = noop_1000_db.name().to_owned();
    // Peak memory of a whole process whose start-up is a no-op with 1,000 migrations.
    let worker = std::env::current_exe().unwrap().with_file_name("worker");
    let mut peaks = Vec::new();
    for _ in 0..3 {
        let output = Command::new(&worker)
            .args(["--db", &noop_1000, "--group", "bulk1000"])
            .env("BARE_CLIENT", "1")
            .stderr(Stdio::inherit())
            .output()
            .expect("the worker binary next to this one (cargo build --bins)");
        assert!(output.status.success());
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(out.contains("applied=0 already=1000"), "{out}");
        if let Some(kib) = schema_tests::printed_peak_rss_kib(&out) {
            peaks.push(kib);
        }
    }
    peaks.sort_unstable();
    if let Some(kib) = peaks.get(peaks.len() / 2) {
        println!(
            "peak RSS of a whole process, no-op start-up with 1000 migrations: {:.1} MiB (median of 3)",
            *kib as f64 / 1024.0
        );
    }

    drop(noop_1000_db);

    // Median of APPLY_ROUNDS, each on a fresh database, as the peer script measures it.
    let mut times = Vec::new();
    let mut commands = 0;
    let mut names = Vec::new();
    for round in 0..APPLY_ROUNDS {
        let t = TestDb::with_client(&client, &format!("bench_apply_100_{round}")).await;
        log.reset();
        let started = Instant::now();
        let report = Migrator::new(t.db.clone())
            .group("bulk100")
            .apply_all()
            .await
            .expect("apply");
        times.push(started.elapsed());
        commands = log.count();
        names = log.names();
        assert_eq!(report.applied.len(), 100);
    }
    times.sort_unstable();
    println!(
        "\napplying 100 trivial migrations, median of {APPLY_ROUNDS} (each on a fresh database): {commands} commands ({:.2} per migration), {} (range {} to {})",
        commands as f64 / 100.0,
        ms(median(times.clone())),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for name in names {
        match kinds.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => kinds.push((name, 1)),
        }
    }
    println!("  by command: {kinds:?}");

    let worker = std::env::current_exe().unwrap().with_file_name("worker");
    let spawn = |args: &[&str], envs: &[(&str, &str)]| {
        Command::new(&worker)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the worker binary next to this one (cargo build --bins)")
    };
    let field = |line: &str, name: &str| -> Option<u128> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
    };
    println!("\nprocesses starting together on a fresh database with 20 migrations (median of 3):");
    println!(
        "  {:>9}  {:>10}  {:>13}  {:>26}  {:>24}",
        "processes",
        "wall time",
        "ratio to one",
        "bare processes (ping only)",
        "one worker + the rest bare"
    );
    let mut one = None;
    let mut after_release: Vec<u128> = Vec::new();
    for processes in [1usize, 8, 16] {
        let mut times = Vec::new();
        let mut bare = Vec::new();
        let mut one_among_bare = Vec::new();
        for round in 0..3 {
            let t = TestDb::with_client(&client, &format!("bench_p{processes}_{round}")).await;
            let started = Instant::now();
            let children: Vec<_> = (0..processes)
                .map(|_| {
                    spawn(
                        &["--db", t.name(), "--lease-ms", "10000", "--no-count"],
                        &[],
                    )
                })
                .collect();
            let outputs: Vec<String> = children
                .into_iter()
                .map(|child| {
                    let output = child.wait_with_output().unwrap();
                    assert!(output.status.success());
                    String::from_utf8_lossy(&output.stdout).into_owned()
                })
                .collect();
            times.push(started.elapsed());
            // How long after the holder returned (it releases just before) each waiter returned.
            let holder_done = outputs
                .iter()
                .filter(|o| o.contains("took_lock=true"))
                .filter_map(|o| field(o, "done_at_ms"))
                .max();
            if let Some(holder_done) = holder_done {
                after_release.extend(
                    outputs
                        .iter()
                        .filter(|o| o.contains("took_lock=false") && o.contains("applied=0"))
                        .filter_map(|o| field(o, "done_at_ms"))
                        .map(|done| done.saturating_sub(holder_done)),
                );
            }
            let started = Instant::now();
            let pings: Vec<_> = (0..processes)
                .map(|_| spawn(&["--db", t.name(), "--ping-only"], &[]))
                .collect();
            for child in pings {
                assert!(child.wait_with_output().unwrap().status.success());
            }
            bare.push(started.elapsed());
            // The floor of waiting: one process applies the migrations while the others only
            // connect and ping (what the many-process time would be if waiting cost nothing).
            let t =
                TestDb::with_client(&client, &format!("bench_p{processes}_{round}_floor")).await;
            let started = Instant::now();
            let mut children = vec![spawn(
                &["--db", t.name(), "--lease-ms", "10000", "--no-count"],
                &[],
            )];
            children.extend((1..processes).map(|_| spawn(&["--db", t.name(), "--ping-only"], &[])));
            for child in children {
                assert!(child.wait_with_output().unwrap().status.success());
            }
            one_among_bare.push(started.elapsed());
        }
        let wall = median(times);
        let base = *one.get_or_insert(wall);
        let bare = median(bare);
        println!(
            "  {processes:>9}  {:>10}  {:>12.2}x  {:>26}  {:>24}",
            ms(wall),
            wall.as_secs_f64() / base.as_secs_f64(),
            ms(bare),
            ms(median(one_among_bare))
        );
        if processes == 16 {
            let target = base * 2 + bare;
            println!(
                "  target for 16 (issue 8): at most twice one process plus the bare floor, {}",
                ms(target)
            );
        }
    }
    after_release.sort_unstable();
    if !after_release.is_empty() {
        let p95 = after_release[(after_release.len() * 95).div_ceil(100).saturating_sub(1)];
        println!(
            "waiters returned after the holder: p50 {} ms, p95 {} ms, max {} ms ({} waiters)",
            after_release[after_release.len() / 2],
            p95,
            after_release[after_release.len() - 1],
            after_release.len()
        );
    }

    // The server load of waiters: a holder works for 10 s; four processes wait for it.
    let t = TestDb::with_client(&client, "bench_waiters").await;
    let dir = std::env::temp_dir().join(format!("schema-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir_text = dir.to_string_lossy().into_owned();
    let holder = spawn(
        &["--db", t.name(), "--lease-ms", "10000"],
        &[("PAUSE_AT", "0001"), ("PAUSE_DIR", &dir_text)],
    );
    while std::fs::read_dir(&dir).map_or(0, |d| d.count()) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            spawn(
                &["--db", t.name(), "--lease-ms", "10000"],
                &[("COUNT_COMMANDS", "1")],
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    std::fs::write(dir.join("go"), "").unwrap();
    assert!(holder.wait_with_output().unwrap().status.success());
    let mut rates = Vec::new();
    for waiter in waiters {
        let output = waiter.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        if let (Some(commands), Some(waited)) = (field(&out, "commands"), field(&out, "waited_ms"))
        {
            rates.push(commands as f64 / (waited as f64 / 1000.0).max(0.001));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "waiting processes during a 10 s migration: {} commands per waiter per second (each of {})",
        rates
            .iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        rates.len()
    );

    // Last: the hand-written loop's 50,000 single updates are retryable writes, and the local
    // server keeps and scans a list of those (README, "Benchmarks"), so everything timed after
    // it on the same server would be slower for it.
    let t = TestDb::with_client(&client, "bench_batches").await;
    fill(&t.db, "items").await;
    fill(&t.db, "items_by_hand").await;
    let started = Instant::now();
    Migrator::new(t.db.clone())
        .group("bench_batch")
        .apply_all()
        .await
        .expect("batches");
    let helper = started.elapsed();
    let started = Instant::now();
    hand_written_loop(&t.db, "items_by_hand").await;
    let by_hand = started.elapsed();
    let rate = |d: Duration| BATCH_DOCUMENTS as f64 / d.as_secs_f64();
    println!(
        "\nbatch helper over {BATCH_DOCUMENTS} documents (1,000 a batch, checkpoint + transaction per batch): {} ({:.0} docs/s)",
        ms(helper),
        rate(helper)
    );
    println!(
        "hand-written cursor + update loop over the same data: {} ({:.0} docs/s); helper / hand = {:.2}x the time",
        ms(by_hand),
        rate(by_hand),
        helper.as_secs_f64() / by_hand.as_secs_f64()
    );
}
