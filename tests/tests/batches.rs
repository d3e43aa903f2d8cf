//! Long data migrations: 200,000 documents, the process killed mid-way, the next run resumes from
//! the checkpoint, and every document is transformed exactly once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use schema_tests::{TestDb, record};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");
const DOCUMENTS: i64 = 200_000;

async fn fill(db: &mongodb::Database) {
    let items = db.collection::<Document>("items");
    for chunk in 0..(DOCUMENTS / 10_000) {
        let docs: Vec<Document> = (chunk * 10_000..(chunk + 1) * 10_000)
            .map(|i| doc! { "_id": i, "n": 0 })
            .collect();
        items.insert_many(docs).await.unwrap();
    }
}

fn done(record: &Document) -> i64 {
    record
        .get_document("checkpoints")
        .and_then(|c| c.get_document("items"))
        .and_then(|c| c.get_i64("done"))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_batch_migration_resumes_and_transforms_every_document_exactly_once() {
    // Exactly once needs each batch and its checkpoint in one transaction; a standalone has
    // none, and there the batch a kill interrupts runs again (at-least-once, as documented).
    if !schema_tests::needs_replica_set(
        "a_killed_batch_migration_resumes_and_transforms_every_document_exactly_once",
    )
    .await
    {
        return;
    }
    let t = TestDb::new("batches").await;
    let started = Instant::now();
    fill(&t.db).await;
    println!("inserted {DOCUMENTS} documents in {:?}", started.elapsed());

    // The local server answers nothing else while it sorts the 200,000 documents, for about a
    // second: the lease is sized for that (a renewal must answer within a sixth of the lease
    // before the lease ends, or the holder stops).
    let mut first = Command::new(WORKER)
        .args(["--db", t.name(), "--group", "batch", "--lease-ms", "10000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has checkpointed a good part of the collection.
    let deadline = Instant::now() + Duration::from_secs(300);
    let killed_at = loop {
        if let Some(r) = record(&t.db, "0001").await {
            let done = done(&r);
            if done >= DOCUMENTS / 4 {
                first.kill().unwrap();
                break done;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the first run never got a quarter through"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    first.wait().unwrap();
    let items = t.db.collection::<Document>("items");
    let transformed = items.count_documents(doc! { "n": 1 }).await.unwrap() as i64;
    println!("killed with {killed_at} checkpointed; {transformed} documents transformed");
    assert!(
        transformed >= killed_at && transformed < DOCUMENTS,
        "killed mid-way: {transformed}"
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "running");
    // Exactly once so far: the checkpoint and the transformed documents agree.
    assert_eq!(
        done(&r),
        transformed,
        "each batch and its checkpoint land together"
    );

    let resumed_at = Instant::now();
    let second = Command::new(WORKER)
        .args(["--db", t.name(), "--group", "batch", "--lease-ms", "10000"])
        .env("RUST_LOG", "schema_runtime=info")
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{:?}: {}{}",
        second.status,
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
    println!("resumed and finished in {:?}", resumed_at.elapsed());

    assert_eq!(
        items.count_documents(doc! {}).await.unwrap() as i64,
        DOCUMENTS
    );
    assert_eq!(
        items.count_documents(doc! { "n": 1 }).await.unwrap() as i64,
        DOCUMENTS,
        "every document exactly once"
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied");
    assert_eq!(r.get_i64("attempts").unwrap(), 2);
    assert!(
        r.get("checkpoints").is_none(),
        "checkpoints are cleared once applied"
    );
}

/// A walk resumed after a string `_id` must go on into the ObjectIds, booleans and dates that
/// sort after strings (`{ _id: { $gt: "..." } }` alone matches only strings).
#[tokio::test(flavor = "multi_thread")]
async fn a_walk_resumed_over_mixed_id_types_transforms_each_document_once() {
    let t = TestDb::new("batches_mixed").await;
    let items = t.db.collection::<Document>("items");
    let mut docs: Vec<Document> = Vec::new();
    docs.extend((0..20).map(|i| doc! { "_id": i, "n": 0 }));
    docs.extend((0..5).map(|i| doc! { "_id": f64::from(i) + 100.5, "n": 0 }));
    docs.extend((0..20).map(|i| doc! { "_id": format!("key-{i:02}"), "n": 0 }));
    docs.extend((0..20).map(|_| doc! { "_id": bson::oid::ObjectId::new(), "n": 0 }));
    docs.push(doc! { "_id": true, "n": 0 });
    docs.push(doc! { "_id": bson::DateTime::from_millis(1_700_000_000_000), "n": 0 });
    let total = docs.len() as u64;
    items.insert_many(docs).await.unwrap();

    // Batches of 10; the crash comes at document 36, among the strings, so the checkpoint's
    // last `_id` is the string of document 30.
    let first = Command::new(WORKER)
        .args(["--db", t.name(), "--group", "batch", "--lease-ms", "2000"])
        .env("BATCH_SIZE", "10")
        .env("CRASH_AFTER_DOCS", "35")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!first.success(), "the first run crashed");
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "running");
    let checkpoint = r
        .get_document("checkpoints")
        .and_then(|c| c.get_document("items"))
        .unwrap()
        .clone();
    assert_eq!(checkpoint.get_i64("done").unwrap(), 30, "{checkpoint}");
    assert_eq!(
        checkpoint.get_str("last_id").unwrap(),
        "key-04",
        "{checkpoint}"
    );
    assert_eq!(items.count_documents(doc! { "n": 1 }).await.unwrap(), 30);

    let second = Command::new(WORKER)
        .args(["--db", t.name(), "--group", "batch", "--lease-ms", "2000"])
        .env("BATCH_SIZE", "10")
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{:?}: {}",
        second.status,
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        items.count_documents(doc! { "n": 1 }).await.unwrap(),
        total,
        "every document, of every _id type, exactly once: {:?}",
        schema_tests::documents(&t.db, "items")
            .await
            .into_iter()
            .filter(|d| d.get_i32("n").ok() != Some(1))
            .collect::<Vec<_>>()
    );
    let r = record(&t.db, "0001").await.unwrap();
    assert_eq!(r.get_str("state").unwrap(), "applied");
}
