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
