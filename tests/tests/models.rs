//! Models: the `$jsonSchema` and indexes derived from the application's own serde types, the
//! shape for every kind of field, and the derived validator against the server: it accepts what
//! serde writes for the type and refuses a wrong type (121).

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Decimal128, Document, doc};
use schema_runtime::{
    BsonSchema, Collection, Error, MigrationContext, MigrationResult, Migrator, ValidationAction,
    ValidationLevel, migration,
};
use schema_tests::{TestDb, documents};
use serde::Serialize;

#[derive(Serialize, BsonSchema)]
#[serde(rename_all = "camelCase")]
struct Address {
    street_line: String,
    postal_code: Option<String>,
}

#[derive(Serialize, BsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Priority {
    Low,
    High,
    #[serde(rename = "urgent!")]
    Urgent,
}

#[derive(Serialize, BsonSchema)]
struct Audit {
    created_by: String,
    revision: i32,
}

#[derive(Serialize, Collection)]
#[collection(
    name = "model_tickets",
    index(name = "idx_status_created", keys(status = 1, created_at = -1))
)]
struct Ticket {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[index(unique)]
    number: i64,
    subject: String,
    #[index]
    status: String,
    priority: Priority,
    small: i16,
    ratio: f64,
    price: Decimal128,
    created_at: DateTime,
    #[index(ttl = "30d", sparse)]
    closed_at: Option<DateTime>,
    tags: Vec<String>,
    counters: HashMap<String, i64>,
    address: Address,
    #[serde(flatten)]
    audit: Audit,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(default)]
    watchers: Vec<String>,
    #[serde(skip)]
    #[allow(dead_code)]
    cached: Option<String>,
    payload: Document,
    anything: Bson,
    #[serde(rename = "ver")]
    version: u32,
}

#[derive(Serialize, Collection)]
#[collection(
    name = "model_strict",
    validation_level = "moderate",
    validation_action = "error"
)]
#[serde(deny_unknown_fields)]
struct Strict {
    name: String,
}

#[test]
fn the_schema_of_every_kind_of_field() {
    assert_eq!(Ticket::NAME, "model_tickets");
    let schema = Ticket::bson_schema();
    assert_eq!(
        schema,
        doc! {
            "bsonType": "object",
            "required": [
                "_id", "number", "subject", "status", "priority", "small", "ratio", "price",
                "created_at", "tags", "counters", "address", "created_by", "revision", "payload",
                "anything", "ver",
            ],
            "properties": {
                "_id": { "bsonType": "objectId" },
                "number": { "bsonType": "long" },
                "subject": { "bsonType": "string" },
                "status": { "bsonType": "string" },
                "priority": { "enum": ["LOW", "HIGH", "urgent!"] },
                "small": { "bsonType": "int" },
                "ratio": { "bsonType": "double" },
                "price": { "bsonType": "decimal" },
                "created_at": { "bsonType": "date" },
                "closed_at": { "bsonType": ["date", "null"] },
                "tags": { "bsonType": "array", "items": { "bsonType": "string" } },
                "counters": { "bsonType": "object", "additionalProperties": { "bsonType": "long" } },
                "address": {
                    "bsonType": "object",
                    "required": ["streetLine"],
                    "properties": {
                        "streetLine": { "bsonType": "string" },
                        "postalCode": { "bsonType": ["string", "null"] },
                    },
                },
                "created_by": { "bsonType": "string" },
                "revision": { "bsonType": "int" },
                "note": { "bsonType": ["string", "null"] },
                "watchers": { "bsonType": "array", "items": { "bsonType": "string" } },
                "payload": { "bsonType": "object" },
                "anything": {},
                "ver": { "bsonType": "long" },
            },
        }
    );
    assert_eq!(
        Strict::bson_schema(),
        doc! {
            "bsonType": "object",
            "required": ["name"],
            "properties": { "name": { "bsonType": "string" }, "_id": {} },
            "additionalProperties": false,
        }
    );
    assert_eq!(Strict::validation_level(), ValidationLevel::Moderate);
    assert_eq!(Ticket::validation_level(), ValidationLevel::Strict);
    assert_eq!(Ticket::validation_action(), ValidationAction::Error);
}

#[test]
fn the_indexes_the_type_declares() {
    let names: Vec<String> = Ticket::indexes()
        .iter()
        .map(|i| i.name().to_owned())
        .collect();
    assert_eq!(
        names,
        ["idx_status_created", "number_1", "status_1", "closed_at_1"]
    );
    let ttl = &Ticket::indexes()[3];
    assert_eq!(ttl.keys(), &doc! { "closed_at": 1 });
    let text = Article::indexes();
    assert_eq!(text[0].name(), "idx_article_text");
    assert_eq!(text[0].keys(), &doc! { "title": "text", "body": "text" });
    assert_eq!(text[1].keys(), &doc! { "published": -1 });
    assert_eq!(text[1].name(), "published_-1");
}

/// A text index and a descending key (the local server has no text indexes: shape only).
#[derive(Serialize, Collection)]
#[collection(
    name = "model_articles",
    index(name = "idx_article_text", text(title, body))
)]
struct Article {
    title: String,
    body: String,
    #[index(descending)]
    published: DateTime,
}

fn ticket(n: i64, closed: bool) -> Ticket {
    Ticket {
        id: ObjectId::new(),
        number: n,
        subject: format!("Printer {n} is on fire"),
        status: "open".into(),
        priority: [Priority::Low, Priority::High, Priority::Urgent]
            .into_iter()
            .nth(n as usize % 3)
            .unwrap(),
        small: 3,
        ratio: 0.5,
        price: "12.50".parse().unwrap(),
        created_at: DateTime::now(),
        closed_at: closed.then(DateTime::now),
        tags: vec!["hardware".into()],
        counters: HashMap::from([("views".to_owned(), 3_i64)]),
        address: Address {
            street_line: "1 Main St".into(),
            postal_code: (n % 3 == 0).then(|| "12345".into()),
        },
        audit: Audit {
            created_by: "ada".into(),
            revision: 1,
        },
        note: (n % 2 == 1).then(|| "call back".into()),
        watchers: Vec::new(),
        cached: Some("not stored".into()),
        payload: doc! { "free": ["form", 1, true] },
        anything: Bson::Int32(n as i32),
        version: 7,
    }
}

#[migration(
    id = "0001",
    description = "Tickets as the model says",
    group = "models"
)]
async fn tickets_model(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_model::<Ticket>().await?;
    ctx.ensure_model::<Strict>().await?;
    Ok(())
}

fn code_of(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
            Some(w.code)
        }
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

#[tokio::test]
async fn the_derived_validator_accepts_what_serde_writes_and_refuses_a_wrong_type() {
    let t = TestDb::new("models").await;
    let migrator = Migrator::new(t.db.clone()).group("models");
    migrator.apply_all().await.unwrap();

    let tickets = t.db.collection::<Document>("model_tickets");
    for n in 0..12 {
        let document = bson::to_document(&ticket(n, n % 4 == 0)).unwrap();
        tickets
            .insert_one(document.clone())
            .await
            .unwrap_or_else(|e| panic!("the validator refused {document}: {e}"));
    }
    let stored = documents(&t.db, "model_tickets").await;
    assert_eq!(stored.len(), 12);
    assert!(
        stored.iter().all(|d| !d.contains_key("cached")),
        "skipped fields are not stored"
    );

    // A wrong type, a missing required field, a value outside the enum: refused (121).
    let mut wrong = bson::to_document(&ticket(100, false)).unwrap();
    wrong.insert("number", "one hundred");
    let mut missing = bson::to_document(&ticket(101, false)).unwrap();
    missing.remove("subject");
    let mut outside = bson::to_document(&ticket(102, false)).unwrap();
    outside.insert("priority", "MEDIUM");
    for bad in [wrong, missing, outside] {
        let err = tickets.insert_one(bad.clone()).await.unwrap_err();
        assert_eq!(code_of(&err), Some(121), "{bad}: {err}");
    }
    assert_eq!(documents(&t.db, "model_tickets").await.len(), 12);

    // The indexes are there, as declared.
    let indexes: Vec<Document> = schema_runtime::list_indexes(&t.db, "model_tickets", None)
        .await
        .unwrap();
    let ttl = indexes
        .iter()
        .find(|i| i.get_str("name") == Ok("closed_at_1"))
        .expect("the TTL index");
    assert_eq!(
        schema_tests::number(ttl.get("expireAfterSeconds")),
        Some(30 * 86_400)
    );
    assert_eq!(ttl.get_bool("sparse"), Ok(true));
    let unique = indexes
        .iter()
        .find(|i| i.get_str("name") == Ok("number_1"))
        .unwrap();
    assert_eq!(unique.get_bool("unique"), Ok(true));

    // Moderate, with unknown fields denied: an unknown field is refused, `_id` is not.
    let strict = t.db.collection::<Document>("model_strict");
    strict.insert_one(doc! { "name": "ok" }).await.unwrap();
    let err = strict
        .insert_one(doc! { "name": "x", "extra": 1 })
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(121), "{err}");

    // What the model declared is what the database has: no drift.
    let drift = migrator.drift().await.unwrap();
    assert!(drift.is_clean(), "{:?}", drift.findings);
}

#[derive(Serialize, Collection)]
#[collection(name = "model_people")]
struct Person {
    name: String,
    age: i32,
}

#[migration(
    id = "0001",
    description = "People as the model says",
    group = "models_preflight"
)]
async fn people_model(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_model::<Person>().await?;
    Ok(())
}

#[tokio::test]
async fn documents_the_derived_validator_would_refuse_are_counted_before_anything_changes() {
    let t = TestDb::new("models_preflight").await;
    let people = t.db.collection::<Document>("model_people");
    people
        .insert_many([
            doc! { "name": "Ada", "age": 36 },
            doc! { "name": "Grace", "age": "eighty" },
            doc! { "name": "Linus" },
        ])
        .await
        .unwrap();
    let err = Migrator::new(t.db.clone())
        .group("models_preflight")
        .apply_all()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::MigrationFailed { .. }), "{message}");
    assert!(
        message.contains("2 "),
        "the two violating documents are counted: {message}"
    );
    // Nothing changed: no validator on the collection, the documents as they were.
    let info =
        t.db.run_command(doc! { "listCollections": 1, "filter": { "name": "model_people" } })
            .await
            .unwrap();
    let options = info
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .ok()
        .and_then(|b| b.first())
        .and_then(Bson::as_document)
        .and_then(|c| c.get_document("options").ok())
        .cloned()
        .unwrap_or_default();
    assert!(!options.contains_key("validator"), "{options}");
    assert_eq!(documents(&t.db, "model_people").await.len(), 3);
}

/// The application's model now: the collection had a hand-made `legacy_1` index and a looser
/// validator (migration 0001 below), and the model says otherwise.
#[derive(Serialize, Collection)]
#[collection(name = "model_gadgets", group = "models_gen")]
struct Gadget {
    #[index(unique)]
    sku: String,
    #[index(ttl = "1d")]
    seen_at: DateTime,
    weight: f64,
}

#[migration(
    id = "0001",
    description = "Gadgets before the model",
    group = "models_gen"
)]
async fn gadgets_before(ctx: &mut MigrationContext) -> MigrationResult {
    ctx.ensure_validator(
        "model_gadgets",
        doc! { "$jsonSchema": { "bsonType": "object", "required": ["sku"] } },
        ValidationLevel::Moderate,
        ValidationAction::Warn,
    )
    .await?;
    ctx.ensure_indexes(
        "model_gadgets",
        &[schema_runtime::IndexSpec::new(
            "legacy_1",
            doc! { "legacy": 1 },
        )],
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_generated_from_the_models_compiles_and_makes_the_diff_empty() {
    let t = TestDb::new("models_gen").await;
    let migrator = Migrator::new(t.db.clone()).group("models_gen");
    migrator.apply_all().await.unwrap();

    // The diff names every difference; verify --models fails the gate.
    let (outcome, out) = schema_tests::run_cli(&migrator, &["diff"]).await;
    println!("$ migrate diff\n{out}");
    assert_eq!(
        outcome.unwrap(),
        schema_runtime::cli::Outcome::Problems,
        "{out}"
    );
    let diff = migrator.diff_models(false).await.unwrap();
    let kinds: Vec<(&str, Option<&str>)> = diff
        .findings
        .iter()
        .map(|f| (f.kind, f.index.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("missing_index", Some("seen_at_1")),
            ("missing_index", Some("sku_1")),
            ("unmodelled_index", Some("legacy_1")),
            ("different_validator", None),
        ]
    );
    let (outcome, _) = schema_tests::run_cli(&migrator, &["verify", "--models"]).await;
    assert_eq!(outcome.unwrap(), schema_runtime::cli::Outcome::Problems);

    // Generate the migration into an application crate and look at it.
    let scratch = schema_tests::scratch_crate(&format!("models-{}", std::process::id()));
    std::fs::write(
        scratch.join("src/main.rs"),
        format!(
            "#![deny(warnings)]\n\n#[tokio::main]\nasync fn main() {{\n    let client = mongodb::Client::with_uri_str(std::env::var(\"MONGODB_URI\").unwrap()).await.unwrap();\n    let migrator = schema_runtime::Migrator::new(client.database({:?})).group(\"models_gen\").allow_destructive(true);\n    migrator.apply_all().await.unwrap();\n    migrator.shutdown().await;\n}}\n",
            t.name()
        ),
    )
    .unwrap();
    let cargo = std::fs::read_to_string(scratch.join("Cargo.toml")).unwrap();
    std::fs::write(
        scratch.join("Cargo.toml"),
        cargo.replace(
            "[dependencies]\n",
            "[dependencies]\ntokio = { version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }\n",
        ),
    )
    .unwrap();
    let dir = scratch.join("src");
    let (outcome, out) = schema_tests::run_cli(
        &migrator,
        &[
            "new",
            "Gadgets as modelled",
            "--from-models",
            "--dir",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    outcome.unwrap();
    // The id follows this binary's highest (0001); the module is declared in main.rs.
    let file = dir.join("m0002_gadgets_as_modelled.rs");
    assert!(
        std::fs::read_to_string(dir.join("main.rs"))
            .unwrap()
            .ends_with("\npub mod m0002_gadgets_as_modelled;\n"),
        "{out}"
    );
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{out}: {e}"));
    println!("{text}");
    assert!(
        text.contains(
            r#"description = "Gadgets as modelled", group = "models_gen", destructive)]"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"ctx.drop_index("model_gadgets", "legacy_1").await?;"#),
        "{text}"
    );
    assert!(text.contains("ValidationLevel::Strict,"), "{text}");
    assert!(
        text.contains(r#"IndexSpec::new("sku_1", doc! { "sku": 1 })"#),
        "{text}"
    );
    assert!(text.contains(r#".option("unique", true)"#), "{text}");
    assert!(
        text.contains(r#".option("expireAfterSeconds", 86400_i64)"#),
        "{text}"
    );

    // It compiles as written (warnings denied), and applying it makes the diff empty.
    if let Err(errors) = schema_tests::build_scratch_crate(&scratch) {
        panic!("the generated migration does not compile:\n{text}\n{errors}");
    }
    let binary = schema_tests::workspace_root().join(format!(
        "target/fixtures/debug/scratch-models-{}",
        std::process::id()
    ));
    let run = std::process::Command::new(&binary)
        .env("MONGODB_URI", schema_tests::uri())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let diff = migrator.diff_models(false).await.unwrap();
    assert!(diff.is_empty(), "{:?}", diff.findings);
    let live = migrator.diff_models(true).await.unwrap();
    assert!(live.is_empty(), "{:?}", live.findings);
    let (outcome, out) = schema_tests::run_cli(&migrator, &["diff"]).await;
    assert_eq!(
        outcome.unwrap(),
        schema_runtime::cli::Outcome::Success,
        "{out}"
    );
    assert!(
        out.ends_with("no difference: 1 model(s) as the schema the applied migrations declared\n"),
        "{out}"
    );
    // `verify --models` finds no model difference (this test binary has no 0002, which the
    // application's binary would: that alone is listed).
    let (_, out) = schema_tests::run_cli(&migrator, &["verify", "--models"]).await;
    assert!(!out.contains("models: "), "{out}");
    // Again: nothing to generate.
    let (outcome, _) = schema_tests::run_cli(
        &migrator,
        &[
            "new",
            "Nothing",
            "--from-models",
            "--dir",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        outcome
            .unwrap_err()
            .to_string()
            .contains("agree; nothing was written")
    );
    std::fs::remove_dir_all(&scratch).unwrap();
}
