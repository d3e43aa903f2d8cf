//! The wire conformance check for tests whose commands come from other processes (the real
//! `service` binary): the server's profiler records every command sent to the test's database
//! (`profile: 2`, MongoDB's database profiler, `system.profile`), and each recorded command is
//! held to the rules of `tests/src/conformance.rs`, the same table the harness's clients use.
//! A profile entry carries no `lsid`, so the rules that follow one transaction (its age, the
//! collections it created) see every session as one; the rules on a single command hold as they
//! do for the harness's clients. A server without a profiler for the database (`mongos`)
//! answers the `profile` command with an error, and the check says it is skipped.

#![allow(dead_code)]

#[path = "../../../tests/src/conformance.rs"]
pub mod conformance;

use futures::TryStreamExt;
use schema_runtime::Deployment;
use schema_runtime::bson::{Document, doc};
use schema_runtime::mongodb::Database;

/// Turns the profiler on for `db` (every command). Returns whether the server has one for it.
pub async fn record_commands(db: &Database) -> bool {
    match db.run_command(doc! { "profile": 2 }).await {
        Ok(_) => true,
        Err(e) => {
            eprintln!(
                "the wire check of {} is skipped: this server has no profiler for it ({e})",
                db.name()
            );
            false
        }
    }
}

/// Fails the test when a command recorded on `db` breaks a rule a real MongoDB server enforces,
/// naming the rule, the command and the citation. Returns how many commands were checked.
pub async fn assert_conformant(db: &Database) -> usize {
    let deployment = Deployment::detect(db).await.expect("hello");
    let checker = conformance::Checker::new(deployment);
    let entries: Vec<Document> = db
        .collection::<Document>("system.profile")
        .find(doc! {})
        .await
        .expect("system.profile")
        .try_collect()
        .await
        .expect("system.profile");
    let mut violations = Vec::new();
    for entry in &entries {
        let Ok(command) = entry.get_document("command") else {
            continue;
        };
        let Some(name) = command.keys().next() else {
            continue;
        };
        let ns = entry.get_str("ns").unwrap_or(db.name());
        let on = ns.split('.').next().unwrap_or(ns);
        for violation in checker.check(on, name, command) {
            violations.push(violation.to_string());
        }
    }
    assert!(
        violations.is_empty(),
        "commands on database {} break rules a real MongoDB server enforces:\n\n{}",
        db.name(),
        violations.join("\n\n")
    );
    entries.len()
}
