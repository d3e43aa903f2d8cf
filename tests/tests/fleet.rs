//! A fleet: one schema across many tenant databases, against the real server. Each tenant's
//! records are asserted afterwards: what was applied, where, and how many times.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bson::{Document, doc};
use schema_runtime::cli::Outcome;
use schema_runtime::{Fleet, FleetAction, Migrator};
use schema_tests::{TestDb, count, counting_client, record, run_cli};

/// `n` tenant databases (each holding one document, so that the server lists it), named
/// `t_<label>_<pid>_<k>`, and the prefix that selects exactly them.
async fn tenants(client: &mongodb::Client, label: &str, n: usize) -> (Vec<TestDb>, String) {
    let mut dbs = Vec::new();
    for _ in 0..n {
        let t = TestDb::with_client(client, label).await;
        t.db.collection::<Document>("profile")
            .insert_one(doc! { "_id": "tenant" })
            .await
            .unwrap();
        dbs.push(t);
    }
    let prefix = format!("t_{label}_{}_", std::process::id());
    assert!(dbs.iter().all(|t| t.name().starts_with(&prefix)));
    (dbs, prefix)
}

fn fleet(client: &mongodb::Client, prefix: &str) -> Fleet {
    Fleet::new(
        Migrator::new(client.database("admin"))
            .group("fleet")
            .lease(Duration::from_secs(2)),
    )
    .prefix(prefix)
}

async fn state(t: &TestDb, id: &str) -> Option<String> {
    record(&t.db, id)
        .await
        .and_then(|r| r.get_str("state").ok().map(str::to_owned))
}

#[tokio::test]
async fn up_brings_every_tenant_up_in_a_stable_order_and_status_names_the_laggards() {
    let (client, log) = counting_client().await;
    let (dbs, prefix) = tenants(&client, "fleet_up", 6).await;
    let fleet = fleet(&client, &prefix).concurrency(3);

    let listed = fleet.list().await.unwrap();
    let names: Vec<&str> = dbs.iter().map(TestDb::name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        listed,
        vec![(
            "0".to_owned(),
            sorted.iter().map(|s| s.to_string()).collect()
        )]
    );
    // listDatabases as a user without the listDatabases action can run it.
    let list = log
        .commands()
        .into_iter()
        .find(|c| c.contains_key("listDatabases"))
        .unwrap();
    assert_eq!(list.get_bool("nameOnly"), Ok(true));
    assert_eq!(list.get_bool("authorizedDatabases"), Ok(true));

    let status = fleet.status().await.unwrap();
    assert_eq!((status.databases, status.laggards.len()), (6, 6));

    let report = fleet.up().await.unwrap();
    println!("{}", report.summary());
    assert_eq!(report.of("applied"), 6, "{}", report.summary());
    assert!(report.is_success());
    for t in &dbs {
        assert_eq!(state(t, "0001").await.as_deref(), Some("applied"));
        assert_eq!(state(t, "0002").await.as_deref(), Some("applied"));
        assert_eq!(count(&t.db, "fleet_0001").await, 1);
    }

    // A second rollout is a no-op: every tenant up to date, one read each.
    log.reset();
    let again = fleet.up().await.unwrap();
    assert_eq!(again.of("up_to_date"), 6);
    let names = log.names();
    assert_eq!(
        names.iter().filter(|n| *n == "find").count(),
        6,
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "findAndModify"),
        "no lock taken: {names:?}"
    );

    // A tenant created later lags until its service's start-up brings it up.
    let newcomer = TestDb::with_client(&client, "fleet_up").await;
    newcomer
        .db
        .collection::<Document>("profile")
        .insert_one(doc! { "_id": "tenant" })
        .await
        .unwrap();
    let status = fleet.status().await.unwrap();
    assert_eq!(status.laggards, [newcomer.name()]);
    assert_eq!(status.of("up_to_date"), 6);
    fleet.database(newcomer.name()).apply_all().await.unwrap();
    assert_eq!(state(&newcomer, "0002").await.as_deref(), Some("applied"));
    assert!(fleet.status().await.unwrap().is_success());
}

#[tokio::test]
async fn a_failing_tenant_stops_the_rollout_unless_told_to_go_on() {
    let client = schema_tests::client().await;
    let (dbs, prefix) = tenants(&client, "fleet_stop", 6).await;
    let mut names: Vec<&TestDb> = dbs.iter().collect();
    names.sort_by_key(|t| t.name().to_owned());
    schema_tests::set_flag(&names[2].db, "fail", true).await;

    // One at a time, stop at the first failure: the two before it applied, the rest untouched.
    let report = fleet(&client, &prefix).concurrency(1).up().await.unwrap();
    println!("{}", report.summary());
    assert_eq!(report.of("applied"), 2, "{}", report.summary());
    assert_eq!(report.of("failed"), 1);
    assert_eq!(report.of("skipped"), 3);
    assert!(report.stopped.is_some());
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].0, names[2].name());
    assert!(
        report.failures[0].1.contains("migration 0002") && report.failures[0].1.contains("invalid"),
        "{:?}",
        report.failures
    );
    assert_eq!(state(names[1], "0002").await.as_deref(), Some("applied"));
    assert_eq!(state(names[2], "0001").await.as_deref(), Some("applied"));
    assert_eq!(state(names[2], "0002").await.as_deref(), Some("failed"));
    for t in &names[3..] {
        assert_eq!(state(t, "0001").await, None, "{} was not started", t.name());
    }

    // Going on after a failure: every other tenant is brought up, the failure reported.
    let report = fleet(&client, &prefix)
        .concurrency(2)
        .continue_on_error(true)
        .up()
        .await
        .unwrap();
    assert_eq!(report.of("applied"), 3, "{}", report.summary());
    assert_eq!(report.of("up_to_date"), 2);
    assert_eq!(report.of("failed"), 1);
    assert!(report.stopped.is_none());
    for t in &names[3..] {
        assert_eq!(state(t, "0002").await.as_deref(), Some("applied"));
    }
    assert!(
        report
            .summary()
            .contains(&format!("failed in {}:", names[2].name()))
    );
}

#[tokio::test]
async fn a_canary_failure_stops_the_rollout_before_the_other_waves() {
    let client = schema_tests::client().await;
    let (dbs, prefix) = tenants(&client, "fleet_canary", 7).await;
    let mut names: Vec<&TestDb> = dbs.iter().collect();
    names.sort_by_key(|t| t.name().to_owned());
    schema_tests::set_flag(&names[1].db, "fail", true).await;

    let report = fleet(&client, &prefix)
        .canary(3)
        .continue_on_error(true) // a canary failure stops whatever the policy
        .up()
        .await
        .unwrap();
    println!("{}", report.summary());
    assert_eq!(report.of("failed"), 1);
    assert_eq!(report.of("applied"), 2, "the whole canary wave ran");
    assert_eq!(report.of("skipped"), 4);
    assert_eq!(
        report.stopped.as_deref(),
        Some("a database of the canary wave failed")
    );
    for t in &names[3..] {
        assert_eq!(state(t, "0001").await, None);
    }

    // Named canaries.
    schema_tests::set_flag(&names[1].db, "fail", false).await;
    let report = fleet(&client, &prefix)
        .canary_databases([names[6].name()])
        .up()
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!(report.of("applied"), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runners_at_once_apply_each_migration_once_in_each_tenant() {
    let client = schema_tests::client().await;
    let (dbs, prefix) = tenants(&client, "fleet_two", 10).await;
    let one = fleet(&client, &prefix).concurrency(4);
    let two = fleet(&client, &prefix).concurrency(3);
    let (a, b) = tokio::join!(one.up(), two.up());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.is_success() && b.is_success(),
        "{}\n{}",
        a.summary(),
        b.summary()
    );
    assert_eq!(
        a.of("applied") + b.of("applied") + a.of("up_to_date") + b.of("up_to_date"),
        20
    );
    for t in &dbs {
        assert_eq!(count(&t.db, "fleet_0001").await, 1, "{}", t.name());
        assert_eq!(count(&t.db, "fleet_0002").await, 1, "{}", t.name());
    }
}

#[tokio::test]
async fn a_tenant_dropped_during_the_run_is_skipped_and_not_created_again() {
    let client = schema_tests::client().await;
    let (dbs, prefix) = tenants(&client, "fleet_drop", 4).await;
    let fleet = fleet(&client, &prefix).concurrency(1);
    let listed = fleet.list().await.unwrap();
    let gone = &listed[0].1[3];
    client.database(gone).drop().await.unwrap();

    let report = fleet
        .run_listed(FleetAction::Up, listed.clone(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.of("applied"), 3, "{}", report.summary());
    assert_eq!(report.of("skipped"), 1);
    let names = client.list_database_names().await.unwrap();
    assert!(
        !names.contains(gone),
        "the dropped tenant was not created again"
    );
    drop(dbs);
}

#[tokio::test]
async fn names_are_checked_and_unusual_ones_work() {
    let client = schema_tests::client().await;
    let template = Migrator::new(client.database("admin")).group("fleet");
    let err = Fleet::new(template.clone())
        .databases(["good", "bad.name"])
        .up()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"bad.name\" holds '.'"), "{err}");

    let name = format!("t_fleet_ü-ñ_{}", std::process::id());
    let report = Fleet::new(template.clone())
        .databases([name.as_str()])
        .up()
        .await
        .unwrap();
    assert_eq!(report.of("applied"), 1, "{}", report.summary());
    let db = client.database(&name);
    assert_eq!(count(&db, "fleet_0002").await, 1);
    db.drop().await.unwrap();
    // Not a `TestDb`: its commands are checked against the wire rules here.
    assert_eq!(schema_tests::conformance::take_violations(&name), None);
}

#[tokio::test]
async fn many_tenants_stay_within_the_connection_pool() {
    let created = Arc::new(AtomicUsize::new(0));
    let seen = created.clone();
    let (client, _) = schema_tests::counting_client_with(move |options| {
        options.max_pool_size = Some(3);
        options.cmap_event_handler = Some(mongodb::event::EventHandler::callback(
            move |event: mongodb::event::cmap::CmapEvent| {
                if matches!(event, mongodb::event::cmap::CmapEvent::ConnectionCreated(_)) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
    })
    .await;
    let (dbs, prefix) = tenants(&client, "fleet_pool", 16).await;
    let report = fleet(&client, &prefix).concurrency(8).up().await.unwrap();
    assert_eq!(report.of("applied"), 16, "{}", report.summary());
    assert!(
        created.load(Ordering::SeqCst) <= 3,
        "{} connections for a pool of 3",
        created.load(Ordering::SeqCst)
    );
    drop(dbs);
}

#[tokio::test]
async fn a_user_who_may_not_list_databases_is_told_what_to_do() {
    let _turn = schema_tests::fail_point_turn().await;
    let app = "fleet-unauthorized";
    let client = schema_tests::client_named(app).await;
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["listDatabases"], "errorCode": 13, "appName": app },
        })
        .await
        .unwrap();
    let err = Fleet::new(Migrator::new(client.database("admin")).group("fleet"))
        .prefix("t_nobody_")
        .status()
        .await
        .unwrap_err()
        .to_string();
    schema_tests::fail_commands_off(&client).await;
    assert!(
        err.contains("may not list the databases")
            && err.contains("`listDatabases` action")
            && err.contains("--databases"),
        "{err}"
    );
}

#[tokio::test]
async fn the_cli_runs_the_fleet_with_exit_codes_a_pipeline_can_use() {
    let client = schema_tests::client().await;
    let (dbs, prefix) = tenants(&client, "fleet_cli", 3).await;
    let migrator = Migrator::new(client.database("admin"))
        .group("fleet")
        .lease(Duration::from_secs(2));
    let (outcome, out) = run_cli(&migrator, &["fleet", "status", "--prefix", &prefix]).await;
    println!("$ migrate fleet status --prefix {prefix}\n{out}");
    assert_eq!(outcome.unwrap(), Outcome::Pending, "{out}");
    assert!(out.contains("3 pending"), "{out}");
    assert!(out.contains("lagging: "), "{out}");

    let (outcome, out) = run_cli(
        &migrator,
        &[
            "fleet",
            "up",
            "--prefix",
            &prefix,
            "--concurrency",
            "2",
            "--json",
        ],
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["command"], "fleet");
    assert_eq!(json["fleet"]["databases"], 3);
    assert_eq!(json["fleet"]["counts"]["applied"], 3);
    assert_eq!(
        json["fleet"]["results"][0]["ids"],
        serde_json::json!(["0001", "0002"])
    );

    let (outcome, out) = run_cli(&migrator, &["fleet", "verify", "--prefix", &prefix]).await;
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");
    let (outcome, out) = run_cli(&migrator, &["fleet", "drift", "--prefix", &prefix]).await;
    assert_eq!(outcome.unwrap(), Outcome::Success, "{out}");

    // A selection is required.
    use clap::Parser;
    let usage = schema_runtime::cli::Migrate::try_parse_from(["migrate", "fleet", "status"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        usage.contains("--databases") && usage.contains("--prefix"),
        "{usage}"
    );
    drop(dbs);
}

#[tokio::test]
async fn a_killed_runner_is_resumed_by_the_next() {
    let client = schema_tests::client().await;
    let (dbs, prefix) = tenants(&client, "fleet_kill", 6).await;
    for t in &dbs {
        schema_tests::set_flag(&t.db, "slow", true).await;
    }
    let mut runner = std::process::Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args([
            "--db",
            "admin",
            "--group",
            "fleet",
            "fleet",
            "up",
            "--prefix",
            &prefix,
            "--concurrency",
            "2",
        ])
        .env("LEASE_MS", "1500")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill -9 once two tenants are done, mid-wave.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = 0;
        for t in &dbs {
            if state(t, "0002").await.as_deref() == Some("applied") {
                done += 1;
            }
        }
        if done >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the runner made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    let before: Vec<bool> = futures::future::join_all(
        dbs.iter()
            .map(|t| async { state(t, "0002").await.as_deref() == Some("applied") }),
    )
    .await;
    assert!(before.iter().any(|done| !done), "killed before the end");

    let report = fleet(&client, &prefix).concurrency(3).up().await.unwrap();
    println!("{}", report.summary());
    assert!(report.is_success(), "{}", report.summary());
    for (t, was_done) in dbs.iter().zip(before) {
        assert_eq!(state(t, "0002").await.as_deref(), Some("applied"));
        if was_done {
            // Done before the kill: nothing ran again.
            assert_eq!(count(&t.db, "fleet_0001").await, 1, "{}", t.name());
            assert_eq!(count(&t.db, "fleet_0002").await, 1, "{}", t.name());
            let r = record(&t.db, "0002").await.unwrap();
            assert_eq!(schema_tests::number(r.get("attempts")), Some(1));
        } else {
            // Interrupted or not started: a body the kill cut short runs again (at least
            // once), never more than twice.
            assert!(count(&t.db, "fleet_0001").await <= 2, "{}", t.name());
            assert!(count(&t.db, "fleet_0002").await <= 2, "{}", t.name());
        }
    }
}

#[tokio::test]
async fn a_fleet_spans_two_clusters_each_with_its_own_client() {
    let client = schema_tests::client().await;
    let (here, prefix) = tenants(&client, "fleet_regions", 2).await;
    // A second cluster: a server of this test's own (a region), with tenants of the same prefix.
    let server = schema_tests::LocalServer::start(&[]);
    let other = server.client().await;
    for k in 0..3 {
        other
            .database(&format!("{prefix}eu_{k}"))
            .collection::<Document>("profile")
            .insert_one(doc! { "_id": "tenant" })
            .await
            .unwrap();
    }
    let fleet = fleet(&client, &prefix).cluster(other.clone(), "eu");
    let listed = fleet.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0].0.as_str(), listed[0].1.len()), ("0", 2));
    assert_eq!((listed[1].0.as_str(), listed[1].1.len()), ("eu", 3));

    let mut seen = Vec::new();
    let report = fleet
        .run(FleetAction::Up, |r| {
            seen.push(format!("{}/{}", r.cluster, r.database))
        })
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!((report.databases, report.of("applied")), (5, 5));
    assert!(
        seen.iter().filter(|s| s.starts_with("eu/")).count() == 3,
        "{seen:?}"
    );
    for t in &here {
        assert_eq!(state(t, "0002").await.as_deref(), Some("applied"));
    }
    for k in 0..3 {
        let db = other.database(&format!("{prefix}eu_{k}"));
        assert_eq!(count(&db, "fleet_0002").await, 1);
    }
    // A laggard on the second cluster is named with its cluster.
    other
        .database(&format!("{prefix}eu_new"))
        .collection::<Document>("profile")
        .insert_one(doc! { "_id": "tenant" })
        .await
        .unwrap();
    let status = fleet.status().await.unwrap();
    assert_eq!(status.laggards, [format!("eu/{prefix}eu_new")]);
    // The second cluster's tenants are not `TestDb`s: their commands are checked here.
    for k in ["0", "1", "2", "new"] {
        let name = format!("{prefix}eu_{k}");
        assert_eq!(
            schema_tests::conformance::take_violations(&name),
            None,
            "{name}"
        );
    }
}
