//! The benchmark: prints, against the server in `MONGODB_URI` (run it with `scripts/bench`):
//! - commands sent and wall time of a no-op start-up with 10, 100 and 1,000 registered migrations;
//! - commands per applied migration when applying 100 trivial ones;
//! - wall time of 1, 8 and 16 processes (the `worker` binary) starting together on a fresh
//!   database with 20 migrations, and its ratio to one process.

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
    }

    let t = TestDb::with_client(&client, "bench_apply_100").await;
    log.reset();
    let started = Instant::now();
    let report = Migrator::new(t.db.clone())
        .group("bulk100")
        .apply_all()
        .await
        .expect("apply");
    let elapsed = started.elapsed();
    let commands = log.count();
    assert_eq!(report.applied.len(), 100);
    println!(
        "\napplying 100 trivial migrations: {commands} commands ({:.2} per migration), {}",
        commands as f64 / 100.0,
        ms(elapsed)
    );
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for name in log.names() {
        match kinds.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => kinds.push((name, 1)),
        }
    }
    println!("  by command: {kinds:?}");

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

    let worker = std::env::current_exe().unwrap().with_file_name("worker");
    println!("\nprocesses starting together on a fresh database with 20 migrations (median of 3):");
    println!(
        "  {:>9}  {:>10}  {:>13}",
        "processes", "wall time", "ratio to one"
    );
    let mut one = None;
    for processes in [1usize, 8, 16] {
        let mut times = Vec::new();
        for round in 0..3 {
            let t = TestDb::with_client(&client, &format!("bench_p{processes}_{round}")).await;
            let started = Instant::now();
            let children: Vec<_> = (0..processes)
                .map(|_| {
                    Command::new(&worker)
                        .args(["--db", t.name(), "--lease-ms", "10000"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::inherit())
                        .spawn()
                        .expect("the worker binary next to this one (cargo build --bins)")
                })
                .collect();
            for mut child in children {
                assert!(child.wait().unwrap().success());
            }
            times.push(started.elapsed());
        }
        let wall = median(times);
        let base = *one.get_or_insert(wall);
        println!(
            "  {processes:>9}  {:>10}  {:>12.2}x",
            ms(wall),
            wall.as_secs_f64() / base.as_secs_f64()
        );
    }
}
