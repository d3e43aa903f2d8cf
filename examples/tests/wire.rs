//! The check of other processes' commands (tests/support) can fail: a command a real `mongod`
//! refuses, recorded by the profiler, fails it naming the rule.

use futures::FutureExt;
use schema_runtime::bson::doc;
use schema_runtime::testing::TestDatabase;

mod support;

#[tokio::test]
async fn a_recorded_command_that_mongodb_refuses_fails_the_check() {
    let db = TestDatabase::labelled("wire_profile").await;
    if !support::record_commands(db.database()).await {
        return;
    }
    // A TTL index on two fields: the local server builds it, a real mongod refuses it (67).
    db.database()
        .run_command(doc! {
            "createIndexes": "sessions",
            "indexes": [{ "key": { "a": 1, "b": 1 }, "name": "ttl_ab", "expireAfterSeconds": 60 }],
        })
        .await
        .unwrap();
    let failed = std::panic::AssertUnwindSafe(support::assert_conformant(db.database()))
        .catch_unwind()
        .await
        .expect_err("the check fails");
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("a TTL index") || message.contains("TTL"),
        "{message}"
    );
    assert!(message.contains("ttl_ab"), "{message}");
}
