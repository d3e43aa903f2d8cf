//! The fleet benchmark (`scripts/bench-fleet`): against the server in `MONGODB_URI`, N tenant
//! databases (1,000 by default) that hold the example's nine migrations, then:
//! 1. a no-op fleet `status`, against the floor of N single `find`s at the same concurrency;
//! 2. the time a canary failure takes to stop a rollout;
//! 3. one new migration (`0010`) rolled out to every tenant;
//! 4. the peak memory of a runner process (`status`) over 100 and over N databases.
//!
//! `bench_fleet [--tenants N] [--concurrency C]`; `bench_fleet --child PREFIX LIMIT` is the
//! runner whose memory is measured.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use schema_runtime::bson::{Document, doc};
use schema_runtime::{
    Fleet, IndexSpec, MigrationContext, MigrationId, MigrationResult, Migrator, migration,
};

// The example's nine migrations (group `default`), and one more below.
schema_runtime::link!(schema_example);

/// The migration the benchmark rolls out; it fails in a tenant with the control flag `fail`.
#[migration(id = "0010", description = "Index events by tag")]
async fn index_events_by_tag(ctx: &mut MigrationContext) -> MigrationResult {
    if schema_tests::flag(ctx.database(), "fail").await {
        return Err("this tenant refuses the new index".into());
    }
    ctx.ensure_indexes(
        "events",
        &[IndexSpec::new("idx_events_tag", doc! { "tag": 1 })],
    )
    .await?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2], args[3].parse().unwrap()).await;
    }
    let tenants = arg(&args, "--tenants", 1000);
    let concurrency = arg(&args, "--concurrency", 4);
    let client = schema_tests::bare_client_with_timeout(Duration::from_secs(10)).await;
    let prefix = format!("bench_fleet_{}_", std::process::id());
    let names: Vec<String> = (0..tenants).map(|i| format!("{prefix}{i:05}")).collect();

    // The tenants, each with the example's nine migrations applied.
    let started = Instant::now();
    let nine = MigrationId::parse("0009").unwrap();
    futures::stream::iter(names.iter())
        .map(|name| {
            let db = client.database(name);
            let nine = nine.clone();
            async move {
                Migrator::new(db).up(Some(&nine)).await.expect("set-up");
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    println!(
        "{tenants} tenant databases, the example's nine migrations applied in each (set-up, concurrency {concurrency}): {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (counting, log) = schema_tests::counting_client().await;
    let fleet = |client: &mongodb::Client| {
        Fleet::new(Migrator::new(client.database("admin")))
            .prefix(prefix.clone())
            .concurrency(concurrency)
    };

    // 1. No-op status against the floor.
    let mut floor = Vec::new();
    let mut status = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        futures::stream::iter(names.iter())
            .map(|name| {
                let versions = client
                    .database(name)
                    .collection::<Document>("schema_versions");
                async move {
                    versions.find_one(doc! {}).await.expect("find");
                }
            })
            .buffer_unordered(concurrency)
            .collect::<Vec<()>>()
            .await;
        floor.push(started.elapsed());
        log.reset();
        let started = Instant::now();
        let report = fleet(&counting).status().await.unwrap();
        status.push(started.elapsed());
        assert_eq!(report.laggards.len(), tenants, "0010 is pending everywhere");
    }
    floor.sort();
    status.sort();
    let names_sent = log.names();
    println!(
        "\nno-op fleet status over {tenants} databases (median of 3, concurrency {concurrency}):"
    );
    println!(
        "  fleet status                       {:>12}   {} commands ({:.2} per database: {})",
        ms(status[1]),
        names_sent.len(),
        names_sent.len() as f64 / tenants as f64,
        by_name(&names_sent)
    );
    println!(
        "  floor: {tenants} single finds             {:>12}",
        ms(floor[1])
    );
    println!(
        "  ratio                              {:>11.2}x",
        status[1].as_secs_f64() / floor[1].as_secs_f64()
    );

    // 2. A canary failure stops the rollout.
    let first = client.database(&names[0]);
    schema_tests::set_flag(&first, "fail", true).await;
    let started = Instant::now();
    let report = fleet(&client).canary(10).up().await.unwrap();
    let stop = started.elapsed();
    assert_eq!(report.of("failed"), 1, "{}", report.summary());
    assert_eq!(report.of("skipped"), tenants - 10);
    println!(
        "\na canary failure (wave of 10, the first tenant fails) stops the rollout in {} ({} applied, {} failed, {} skipped)",
        ms(stop),
        report.of("applied"),
        report.of("failed"),
        report.of("skipped")
    );
    schema_tests::set_flag(&first, "fail", false).await;

    // 3. The new migration to every tenant, with the server's time per command (from the
    // driver's command monitoring: from sending a command to its reply).
    let timings = Timings::default();
    let timed = timings.client().await;
    let started = Instant::now();
    let report = fleet(&timed).up().await.unwrap();
    let rollout = started.elapsed();
    assert!(report.is_success(), "{}", report.summary());
    let names_sent = timings.names();
    println!(
        "\none new migration (0010) rolled out to {tenants} databases (9 of them had it from the canary): {} ({:.2} ms per database at concurrency {concurrency}), {} commands ({:.2} per database: {})",
        ms(rollout),
        rollout.as_secs_f64() * 1000.0 / tenants as f64,
        names_sent.len(),
        names_sent.len() as f64 / tenants as f64,
        by_name(&names_sent)
    );

    println!("  where the time goes (sum of each command's round trip, all tasks together):");
    for (name, (n, total)) in timings.by_command() {
        println!(
            "    {name:<14} {n:>6} x {:>9.2} ms = {:>10.1} ms",
            total.as_secs_f64() * 1000.0 / n as f64,
            total.as_secs_f64() * 1000.0
        );
    }
    // The same migration in one database alone, on the same server now: the server's cost of
    // one tenant's rollout without the fleet around it.
    let alone = client.database(&format!("{prefix}alone"));
    Migrator::new(alone.clone()).up(Some(&nine)).await.unwrap();
    let started = Instant::now();
    Migrator::new(alone.clone()).apply_all().await.unwrap();
    println!(
        "  the same migration in one more database alone, afterwards: {}",
        ms(started.elapsed())
    );
    alone.drop().await.unwrap();

    // 4. The runner's memory, over 100 and over every database.
    println!("\npeak RSS of a runner process (`status` over the fleet, median of 3):");
    for limit in [100.min(tenants), tenants] {
        let mut peaks = Vec::new();
        for _ in 0..3 {
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["--child", &prefix, &limit.to_string()])
                .stderr(Stdio::inherit())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(kib) = schema_tests::printed_peak_rss_kib(&text) {
                peaks.push(kib);
            }
        }
        peaks.sort_unstable();
        if let Some(kib) = peaks.get(peaks.len() / 2) {
            println!("  {limit:>6} databases   {:.1} MiB", *kib as f64 / 1024.0);
        }
    }

    for name in &names {
        client.database(name).drop().await.unwrap();
    }
    client.shutdown().await;
}

/// The runner whose memory is measured: `status` over the first `limit` databases of `prefix`.
async fn child(prefix: &str, limit: usize) {
    let client = schema_tests::bare_client_with_timeout(Duration::from_secs(10)).await;
    let all = Fleet::new(Migrator::new(client.database("admin"))).prefix(prefix);
    let listed = all.list().await.unwrap();
    let names: Vec<String> = listed[0].1.iter().take(limit).cloned().collect();
    let fleet = Fleet::new(Migrator::new(client.database("admin"))).databases(names);
    let mut seen = 0;
    let report = fleet
        .run(schema_runtime::FleetAction::Status, |_| seen += 1)
        .await
        .unwrap();
    assert_eq!(seen, limit);
    assert_eq!(report.databases, limit);
    let kib = schema_tests::peak_rss_kib().unwrap_or_default();
    println!("peak_rss_kib={kib}");
    client.shutdown().await;
}

fn by_name(names: &[String]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for name in names {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The round trip of every command a client sends, by command name.
#[derive(Clone, Default)]
struct Timings {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, Duration)>>>,
}

impl Timings {
    async fn client(&self) -> mongodb::Client {
        let mut options = mongodb::options::ClientOptions::parse(schema_tests::uri())
            .await
            .unwrap();
        let seen = self.seen.clone();
        options.command_event_handler = Some(mongodb::event::EventHandler::callback(
            move |event: mongodb::event::command::CommandEvent| match event {
                mongodb::event::command::CommandEvent::Succeeded(e) => {
                    seen.lock().unwrap().push((e.command_name, e.duration))
                }
                mongodb::event::command::CommandEvent::Failed(e) => {
                    seen.lock().unwrap().push((e.command_name, e.duration))
                }
                _ => {}
            },
        ));
        mongodb::Client::with_options(options).unwrap()
    }

    fn names(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn by_command(&self) -> std::collections::BTreeMap<String, (usize, Duration)> {
        let mut by: std::collections::BTreeMap<String, (usize, Duration)> = Default::default();
        for (name, d) in self.seen.lock().unwrap().iter() {
            let entry = by.entry(name.clone()).or_default();
            entry.0 += 1;
            entry.1 += *d;
        }
        by
    }
}
