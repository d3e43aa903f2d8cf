//! The wire conformance check: every command a test's client sends is held to the rules a real
//! `mongod` (6.0, 7.0, 8.0; standalone, replica set, `mongos`) enforces, whatever the local
//! server lets through. The local server is more permissive than MongoDB; this check is what
//! stops a command MongoDB refuses from passing the suite.
//!
//! Each rule cites the MongoDB page or server source that states it. A command that breaks one
//! is written to a file named after its database (in every process: the test binary and the
//! workers it starts); [`TestDb`](crate::TestDb) fails its test when it is dropped if any
//! command on its database broke a rule, naming the rule, the command and the citation.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bson::{Bson, Document};
use schema_runtime::Deployment;

/// One rule of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// A short name, as violations show it.
    pub name: &'static str,
    /// Where MongoDB says so.
    pub citation: &'static str,
}

/// `$expr` in the query of an upsert: refused with 224 QueryFeatureNotAllowed.
pub const UPSERT_EXPR: Rule = Rule {
    name: "no $expr in the predicate of an upsert",
    citation: "mongodb/mongo src/mongo/db/ops/parsed_update.cpp (ParsedUpdate::parseQueryToCQ: \
               \"$expr is not allowed in the query predicate for an upsert\", code 224); DOCS-14158; SERVER-59704 (open)",
};
/// Change streams need a replica set or a sharded cluster.
pub const STANDALONE_CHANGE_STREAM: Rule = Rule {
    name: "no change stream on a standalone",
    citation: "https://www.mongodb.com/docs/manual/changeStreams/#availability \
               (\"Change streams are available for replica sets and sharded clusters\"; a standalone answers 40573)",
};
/// Transactions need a replica set or a sharded cluster.
pub const STANDALONE_TRANSACTION: Rule = Rule {
    name: "no transaction on a standalone",
    citation: "https://www.mongodb.com/docs/manual/core/transactions-production-consideration/#feature-compatibility \
               (transactions need a replica set or a sharded cluster; a standalone answers 20 IllegalOperation, \
               \"Transaction numbers are only allowed on a replica set member or mongos\")",
};
/// `commitQuorum` is a replica-set option of `createIndexes`.
pub const STANDALONE_COMMIT_QUORUM: Rule = Rule {
    name: "no commitQuorum on a standalone",
    citation: "https://www.mongodb.com/docs/manual/reference/command/createIndexes/#std-label-createIndexes-cmd-commitQuorum \
               (\"Replica set only\"; a standalone answers BadValue)",
};
/// `$currentOp` runs on the `admin` database only.
pub const CURRENT_OP_ADMIN: Rule = Rule {
    name: "$currentOp only on the admin database",
    citation: "https://www.mongodb.com/docs/manual/reference/operator/aggregation/currentOp/#syntax \
               (\"$currentOp must be the first stage ... run against the admin database\")",
};
/// TTL indexes have one field, never `_id`.
pub const TTL_SINGLE_FIELD: Rule = Rule {
    name: "a TTL index has one field, not _id",
    citation: "https://www.mongodb.com/docs/manual/core/index-ttl/#restrictions \
               (\"TTL indexes are single-field indexes. Compound indexes do not support TTL\"; \
               \"The _id field does not support TTL indexes\")",
};
/// `$jsonSchema` keywords MongoDB omits, and unknown keywords.
pub const JSON_SCHEMA_KEYWORDS: Rule = Rule {
    name: "only the $jsonSchema keywords MongoDB supports",
    citation: "https://www.mongodb.com/docs/manual/reference/operator/query/jsonSchema/#omissions \
               (omitted: $ref, $schema, default, definitions, format, id, the integer type; unknown keywords are refused)",
};
/// `prepareUnique` goes alone in its `collMod`.
pub const PREPARE_UNIQUE_ALONE: Rule = Rule {
    name: "prepareUnique alone in its collMod",
    citation: "https://www.mongodb.com/docs/manual/core/index-unique/convert-to-unique/ \
               (\"Run the prepareUnique modification in a separate collMod command. You cannot combine \
               prepareUnique with other index modifications.\")",
};
/// Indexes inside a transaction only on a collection that transaction creates.
pub const TRANSACTION_CREATE_INDEXES: Rule = Rule {
    name: "createIndexes in a transaction only on a collection the transaction created",
    citation: "https://www.mongodb.com/docs/manual/core/transactions-operations/#create-collections-and-indexes-in-a-transaction \
               (\"The index to create must be on either a non-existing collection ... or a new empty collection \
               created earlier in the same transaction\"; on an existing collection it waits for the \
               transaction's own locks until the server aborts it)",
};
/// A transaction lives at most `transactionLifetimeLimitSeconds`.
pub const TRANSACTION_LIFETIME: Rule = Rule {
    name: "a transaction ends within transactionLifetimeLimitSeconds (60 s)",
    citation: "https://www.mongodb.com/docs/manual/reference/parameters/#mongodb-parameter-param.transactionLifetimeLimitSeconds \
               (default 60: \"Transactions that exceed this limit are considered expired and will be aborted\")",
};
/// Documents are at most 16 MiB.
pub const DOCUMENT_SIZE: Rule = Rule {
    name: "no document over 16 MiB",
    citation: "https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-BSON-Document-Size \
               (\"The maximum BSON document size is 16 mebibytes\")",
};
/// A replacement document has no top-level `$` field.
pub const REPLACEMENT_DOLLAR: Rule = Rule {
    name: "no top-level $ field in a replacement document",
    citation: "https://www.mongodb.com/docs/manual/core/dot-dollar-considerations/dollar-prefix/#document-replacing-updates \
               (a replacing update may not have dollar-prefixed top-level field names; inserts may)",
};

/// Every rule, for the summary of the table.
pub const RULES: &[Rule] = &[
    UPSERT_EXPR,
    STANDALONE_CHANGE_STREAM,
    STANDALONE_TRANSACTION,
    STANDALONE_COMMIT_QUORUM,
    CURRENT_OP_ADMIN,
    TTL_SINGLE_FIELD,
    JSON_SCHEMA_KEYWORDS,
    PREPARE_UNIQUE_ALONE,
    TRANSACTION_CREATE_INDEXES,
    TRANSACTION_LIFETIME,
    DOCUMENT_SIZE,
    REPLACEMENT_DOLLAR,
];

/// The keywords of MongoDB's `$jsonSchema` (its documented list).
const SCHEMA_KEYWORDS: &[&str] = &[
    "additionalItems",
    "additionalProperties",
    "allOf",
    "anyOf",
    "bsonType",
    "dependencies",
    "description",
    "enum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "items",
    "maximum",
    "maxItems",
    "maxLength",
    "maxProperties",
    "minimum",
    "minItems",
    "minLength",
    "minProperties",
    "multipleOf",
    "not",
    "oneOf",
    "pattern",
    "patternProperties",
    "properties",
    "required",
    "title",
    "type",
    "uniqueItems",
];

/// The BSON document size limit.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;

/// A command that broke a rule.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What in the command breaks it.
    pub detail: String,
    /// The command's name.
    pub command: String,
    /// The command as sent, shortened.
    pub shown: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule \"{}\" broken by `{}`: {}\n    command: {}\n    see: {}",
            self.rule.name, self.command, self.detail, self.shown, self.rule.citation
        )
    }
}

/// A transaction as the check follows it.
struct Transaction {
    started: Instant,
    created: Vec<String>,
}

/// The check of one client's commands, for the deployment it talks to.
pub struct Checker {
    deployment: Deployment,
    transactions: Mutex<HashMap<(Vec<u8>, i64), Transaction>>,
    lifetime: Duration,
}

impl Checker {
    /// A check for a client of `deployment`.
    pub fn new(deployment: Deployment) -> Checker {
        Checker {
            deployment,
            transactions: Mutex::new(HashMap::new()),
            lifetime: Duration::from_secs(60),
        }
    }

    /// The rules `command` (named `name`, sent to database `db`) breaks.
    pub fn check(&self, db: &str, name: &str, command: &Document) -> Vec<Violation> {
        self.check_at(db, name, command, Instant::now())
    }

    fn check_at(&self, db: &str, name: &str, command: &Document, at: Instant) -> Vec<Violation> {
        let mut found: Vec<(Rule, String)> = Vec::new();
        let standalone = self.deployment == Deployment::Standalone;
        let collection = command.get_str(name).unwrap_or_default();
        match name {
            "findAndModify" | "findandmodify" => {
                if command.get_bool("upsert").unwrap_or(false)
                    && let Ok(query) = command.get_document("query")
                    && has_key(query, "$expr")
                {
                    found.push((UPSERT_EXPR, "findAndModify with upsert: true".into()));
                }
                if let Ok(update) = command.get_document("update") {
                    replacement_rules(update, &mut found);
                }
            }
            "update" => {
                for (i, statement) in documents_of(command, "updates").enumerate() {
                    if statement.get_bool("upsert").unwrap_or(false)
                        && let Ok(q) = statement.get_document("q")
                        && has_key(q, "$expr")
                    {
                        found.push((
                            UPSERT_EXPR,
                            format!("update statement {i} with upsert: true"),
                        ));
                    }
                    if let Ok(u) = statement.get_document("u") {
                        replacement_rules(u, &mut found);
                    }
                }
            }
            "bulkWrite" => {
                for (i, op) in documents_of(command, "ops").enumerate() {
                    if op.get_bool("upsert").unwrap_or(false)
                        && let Ok(filter) = op.get_document("filter")
                        && has_key(filter, "$expr")
                    {
                        found.push((UPSERT_EXPR, format!("bulkWrite op {i} with upsert: true")));
                    }
                }
            }
            "insert" => {
                for (i, document) in documents_of(command, "documents").enumerate() {
                    size_rule(document, &format!("document {i}"), &mut found);
                }
            }
            "aggregate" => {
                let first = command
                    .get_array("pipeline")
                    .ok()
                    .and_then(|p| p.first())
                    .and_then(Bson::as_document);
                if let Some(first) = first {
                    if standalone && first.contains_key("$changeStream") {
                        found.push((STANDALONE_CHANGE_STREAM, "a $changeStream stage".into()));
                    }
                    if first.contains_key("$currentOp") && db != "admin" {
                        found.push((CURRENT_OP_ADMIN, format!("sent to database {db:?}")));
                    }
                }
            }
            "createIndexes" => {
                if standalone && command.contains_key("commitQuorum") {
                    found.push((STANDALONE_COMMIT_QUORUM, "commitQuorum is set".into()));
                }
                for index in documents_of(command, "indexes") {
                    if !index.contains_key("expireAfterSeconds") {
                        continue;
                    }
                    let key = index.get_document("key").cloned().unwrap_or_default();
                    let name = index.get_str("name").unwrap_or("?");
                    if key.len() != 1 {
                        found.push((
                            TTL_SINGLE_FIELD,
                            format!("index {name:?} has {} key fields", key.len()),
                        ));
                    } else if key.contains_key("_id") {
                        found.push((TTL_SINGLE_FIELD, format!("index {name:?} is on _id")));
                    }
                }
            }
            "collMod" => {
                if let Ok(index) = command.get_document("index")
                    && index.contains_key("prepareUnique")
                {
                    let others: Vec<&str> = index
                        .keys()
                        .map(String::as_str)
                        .filter(|k| !matches!(*k, "prepareUnique" | "keyPattern" | "name"))
                        .collect();
                    if !others.is_empty() {
                        found.push((
                            PREPARE_UNIQUE_ALONE,
                            format!("prepareUnique with {}", others.join(", ")),
                        ));
                    }
                }
            }
            _ => {}
        }
        schema_rules(&Bson::Document(command.clone()), &mut found);
        self.transaction_rules(name, collection, command, at, &mut found);
        found
            .into_iter()
            .map(|(rule, detail)| Violation {
                rule,
                detail,
                command: name.to_owned(),
                shown: shown(command),
            })
            .collect()
    }

    fn transaction_rules(
        &self,
        name: &str,
        collection: &str,
        command: &Document,
        at: Instant,
        found: &mut Vec<(Rule, String)>,
    ) {
        let in_transaction = command.get_bool("autocommit") == Ok(false);
        if !in_transaction {
            return;
        }
        if self.deployment == Deployment::Standalone {
            found.push((
                STANDALONE_TRANSACTION,
                "a command with autocommit: false".into(),
            ));
            return;
        }
        let lsid = match command.get_document("lsid").ok().and_then(|l| l.get("id")) {
            Some(Bson::Binary(binary)) => binary.bytes.clone(),
            _ => return,
        };
        let number = match command.get("txnNumber") {
            Some(Bson::Int64(n)) => *n,
            Some(Bson::Int32(n)) => i64::from(*n),
            _ => return,
        };
        let mut transactions = self.transactions.lock().unwrap();
        let key = (lsid, number);
        if command.get_bool("startTransaction") == Ok(true) {
            transactions.insert(
                key.clone(),
                Transaction {
                    started: at,
                    created: Vec::new(),
                },
            );
        }
        let Some(transaction) = transactions.get_mut(&key) else {
            return;
        };
        let open = at.saturating_duration_since(transaction.started);
        if open > self.lifetime {
            found.push((
                TRANSACTION_LIFETIME,
                format!(
                    "`{name}` sent {:.1} s after the transaction started",
                    open.as_secs_f64()
                ),
            ));
        }
        match name {
            "create" => transaction.created.push(collection.to_owned()),
            "createIndexes" if !transaction.created.iter().any(|c| c == collection) => {
                found.push((
                    TRANSACTION_CREATE_INDEXES,
                    format!("collection {collection:?} was not created by this transaction"),
                ));
            }
            "commitTransaction" | "abortTransaction" => {
                transactions.remove(&key);
            }
            _ => {}
        }
    }
}

/// The documents of array `field` of `command`.
fn documents_of<'a>(command: &'a Document, field: &str) -> impl Iterator<Item = &'a Document> {
    command
        .get_array(field)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(Bson::as_document)
}

/// Whether `key` appears as a field name anywhere in `document`.
fn has_key(document: &Document, key: &str) -> bool {
    document
        .iter()
        .any(|(k, v)| k == key || bson_has_key(v, key))
}

fn bson_has_key(value: &Bson, key: &str) -> bool {
    match value {
        Bson::Document(d) => has_key(d, key),
        Bson::Array(a) => a.iter().any(|v| bson_has_key(v, key)),
        _ => false,
    }
}

/// The rules on an update document: a replacement (no operator as its first field) may not
/// have a top-level `$` field, and no document may be over 16 MiB.
fn replacement_rules(update: &Document, found: &mut Vec<(Rule, String)>) {
    size_rule(update, "the update", found);
    let replacement = update.keys().next().is_some_and(|k| !k.starts_with('$'));
    if replacement && let Some(dollar) = update.keys().find(|k| k.starts_with('$')) {
        found.push((REPLACEMENT_DOLLAR, format!("field {dollar:?}")));
    }
}

fn size_rule(document: &Document, what: &str, found: &mut Vec<(Rule, String)>) {
    let mut bytes = Vec::new();
    if document.to_writer(&mut bytes).is_ok() && bytes.len() > MAX_DOCUMENT {
        found.push((DOCUMENT_SIZE, format!("{what} is {} bytes", bytes.len())));
    }
}

/// Every `$jsonSchema` anywhere in a command (a validator, a query) is checked.
fn schema_rules(value: &Bson, found: &mut Vec<(Rule, String)>) {
    match value {
        Bson::Document(d) => {
            for (k, v) in d {
                if k == "$jsonSchema" {
                    if let Bson::Document(schema) = v {
                        check_schema(schema, "$jsonSchema", found);
                    }
                } else {
                    schema_rules(v, found);
                }
            }
        }
        Bson::Array(a) => a.iter().for_each(|v| schema_rules(v, found)),
        _ => {}
    }
}

/// One schema object: its keywords, then the schemas it holds.
fn check_schema(schema: &Document, at: &str, found: &mut Vec<(Rule, String)>) {
    for (keyword, value) in schema {
        if !SCHEMA_KEYWORDS.contains(&keyword.as_str()) {
            let why = if ["$ref", "$schema", "default", "definitions", "format", "id"]
                .contains(&keyword.as_str())
            {
                "a keyword MongoDB omits"
            } else {
                "not a keyword MongoDB knows"
            };
            found.push((JSON_SCHEMA_KEYWORDS, format!("{at}.{keyword}: {why}")));
            continue;
        }
        let here = format!("{at}.{keyword}");
        match (keyword.as_str(), value) {
            ("type", t) if bson_has_string(t, "integer") => found.push((
                JSON_SCHEMA_KEYWORDS,
                format!("{here}: the integer type (use bsonType int or long)"),
            )),
            ("properties" | "patternProperties", Bson::Document(fields)) => {
                for (field, sub) in fields {
                    if let Bson::Document(sub) = sub {
                        check_schema(sub, &format!("{here}.{field}"), found);
                    }
                }
            }
            ("dependencies", Bson::Document(fields)) => {
                for (field, sub) in fields {
                    if let Bson::Document(sub) = sub {
                        check_schema(sub, &format!("{here}.{field}"), found);
                    }
                }
            }
            ("items" | "additionalItems" | "additionalProperties" | "not", Bson::Document(sub)) => {
                check_schema(sub, &here, found);
            }
            ("items" | "allOf" | "anyOf" | "oneOf", Bson::Array(subs)) => {
                for (i, sub) in subs.iter().enumerate() {
                    if let Bson::Document(sub) = sub {
                        check_schema(sub, &format!("{here}[{i}]"), found);
                    }
                }
            }
            _ => {}
        }
    }
}

fn bson_has_string(value: &Bson, wanted: &str) -> bool {
    match value {
        Bson::String(s) => s == wanted,
        Bson::Array(a) => a.iter().any(|v| bson_has_string(v, wanted)),
        _ => false,
    }
}

/// The command for a message: without the driver's session and cluster-time fields, and cut.
fn shown(command: &Document) -> String {
    let mut command = command.clone();
    for field in ["lsid", "$clusterTime", "$db"] {
        command.remove(field);
    }
    for field in ["documents", "updates", "ops"] {
        if let Ok(items) = command.get_array_mut(field)
            && items.len() > 3
        {
            items.truncate(3);
        }
    }
    let text = command.to_string();
    match text.char_indices().nth(1200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Where violations are written: one file per database, shared by every process of the run.
fn violations_dir() -> PathBuf {
    std::env::temp_dir().join("schema-tests-wire")
}

fn violations_file(db: &str) -> PathBuf {
    let safe: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    violations_dir().join(safe)
}

/// Notes `violation` of a command on database `db`, for that database's test to report.
pub(crate) fn record(db: &str, violation: &Violation) {
    eprintln!("wire conformance: database {db}: {violation}");
    let _ = std::fs::create_dir_all(violations_dir());
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(violations_file(db))
    {
        let _ = writeln!(file, "{violation}\n");
    }
}

/// What commands on database `db` broke, as recorded by every process; cleared by reading.
pub fn take_violations(db: &str) -> Option<String> {
    let path = violations_file(db);
    let text = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use bson::{Binary, doc, spec::BinarySubtype};

    use super::*;

    fn rules(deployment: Deployment, db: &str, command: Document) -> Vec<&'static str> {
        let name = command.keys().next().unwrap().clone();
        Checker::new(deployment)
            .check(db, &name, &command)
            .into_iter()
            .map(|v| v.rule.name)
            .collect()
    }

    fn rs(command: Document) -> Vec<&'static str> {
        rules(Deployment::ReplicaSet, "app", command)
    }

    fn standalone(command: Document) -> Vec<&'static str> {
        rules(Deployment::Standalone, "app", command)
    }

    #[test]
    fn expr_in_an_upsert_predicate() {
        // The lock's acquisition before the fix: $expr inside $or.
        let bad = doc! { "findAndModify": "schema_versions_lock",
        "query": { "_id": "migrations", "$or": [ { "owner": null }, { "$expr": { "$lt": ["$expires_at", "$$NOW"] } } ] },
        "update": [ { "$set": { "owner": "me" } } ], "upsert": true };
        assert_eq!(rs(bad.clone()), [UPSERT_EXPR.name]);
        let mut no_upsert = bad;
        no_upsert.insert("upsert", false);
        assert!(rs(no_upsert).is_empty());
        let fixed = doc! { "findAndModify": "schema_versions_lock", "query": { "_id": "migrations" },
        "update": [ { "$replaceWith": { "$cond": [ true, { "_id": "migrations" }, "$$ROOT" ] } } ], "upsert": true };
        assert!(rs(fixed).is_empty());
        let update = doc! { "update": "c", "updates": [
            { "q": { "_id": 1 }, "u": { "$set": { "a": 1 } }, "upsert": true },
            { "q": { "$expr": { "$eq": ["$a", 1] } }, "u": { "$set": { "a": 2 } }, "upsert": true },
        ] };
        assert_eq!(rs(update), [UPSERT_EXPR.name]);
        let expr_no_upsert = doc! { "update": "c", "updates": [
        { "q": { "$expr": { "$eq": ["$a", 1] } }, "u": { "$set": { "a": 2 } } } ] };
        assert!(rs(expr_no_upsert).is_empty());
    }

    #[test]
    fn change_streams_transactions_and_commit_quorum_on_a_standalone() {
        let watch = doc! { "aggregate": "lock", "pipeline": [ { "$changeStream": {} }, { "$match": {} } ], "cursor": {} };
        assert_eq!(standalone(watch.clone()), [STANDALONE_CHANGE_STREAM.name]);
        assert!(rs(watch).is_empty());
        let insert = doc! { "insert": "c", "documents": [ { "_id": 1 } ],
        "lsid": { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![1; 16] } },
        "txnNumber": 1_i64, "startTransaction": true, "autocommit": false };
        assert_eq!(standalone(insert.clone()), [STANDALONE_TRANSACTION.name]);
        assert!(rs(insert).is_empty());
        let build = doc! { "createIndexes": "c", "indexes": [ { "key": { "a": 1 }, "name": "a_1" } ], "commitQuorum": "majority" };
        assert_eq!(standalone(build.clone()), [STANDALONE_COMMIT_QUORUM.name]);
        assert!(rs(build).is_empty());
    }

    #[test]
    fn current_op_outside_admin() {
        let ops = doc! { "aggregate": 1, "pipeline": [ { "$currentOp": { "allUsers": true } } ], "cursor": {} };
        assert_eq!(
            rules(Deployment::ReplicaSet, "app", ops.clone()),
            [CURRENT_OP_ADMIN.name]
        );
        assert!(rules(Deployment::ReplicaSet, "admin", ops).is_empty());
    }

    #[test]
    fn ttl_on_a_compound_key_or_id() {
        let index = |key: Document| {
            doc! { "createIndexes": "c", "indexes": [ { "key": key, "name": "i", "expireAfterSeconds": 60 } ] }
        };
        assert_eq!(rs(index(doc! { "a": 1, "b": 1 })), [TTL_SINGLE_FIELD.name]);
        assert_eq!(rs(index(doc! { "_id": 1 })), [TTL_SINGLE_FIELD.name]);
        assert!(rs(index(doc! { "created_at": 1 })).is_empty());
        assert!(rs(doc! { "createIndexes": "c", "indexes": [ { "key": { "a": 1, "b": 1 }, "name": "ab" } ] }).is_empty());
    }

    #[test]
    fn json_schema_keywords() {
        for keyword in [
            "$ref",
            "$schema",
            "default",
            "definitions",
            "format",
            "id",
            "examples",
        ] {
            let mut schema = doc! { "bsonType": "object" };
            schema.insert(keyword, "x");
            let create = doc! { "create": "c", "validator": { "$jsonSchema": schema } };
            assert_eq!(rs(create), [JSON_SCHEMA_KEYWORDS.name], "{keyword}");
        }
        // Nested, in collMod, and the integer type.
        let nested = doc! { "collMod": "c", "validator": { "$jsonSchema": {
        "bsonType": "object",
        "properties": { "age": { "type": "integer" }, "tags": { "bsonType": "array", "items": { "bsonType": "string", "format": "email" } } } } } };
        assert_eq!(rs(nested).len(), 2);
        // Field names that happen to be keywords are fine, and so is every supported keyword.
        let valid = doc! { "create": "c", "validator": { "$jsonSchema": {
        "bsonType": "object", "required": ["id", "format"], "additionalProperties": false,
        "properties": {
            "id": { "bsonType": ["int", "long"], "minimum": 0 },
            "format": { "enum": ["a", "b"], "description": "the format" },
            "default": { "bsonType": "object", "properties": { "x": { "type": "number" } } },
            "list": { "bsonType": "array", "items": [ { "bsonType": "string" } ], "uniqueItems": true },
        },
        "anyOf": [ { "required": ["id"] }, { "not": { "required": ["x"] } } ] } } };
        assert!(rs(valid).is_empty(), "{:?}", rs(doc! {}));
    }

    #[test]
    fn prepare_unique_alone() {
        let both = doc! { "collMod": "c", "index": { "keyPattern": { "a": 1 }, "prepareUnique": true, "unique": true } };
        assert_eq!(rs(both), [PREPARE_UNIQUE_ALONE.name]);
        let alone = doc! { "collMod": "c", "index": { "name": "a_1", "prepareUnique": true } };
        assert!(rs(alone).is_empty());
        let unique = doc! { "collMod": "c", "index": { "name": "a_1", "unique": true } };
        assert!(rs(unique).is_empty());
    }

    fn in_transaction(mut command: Document, start: bool) -> Document {
        command.insert(
            "lsid",
            doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] } },
        );
        command.insert("txnNumber", 3_i64);
        if start {
            command.insert("startTransaction", true);
        }
        command.insert("autocommit", false);
        command
    }

    #[test]
    fn create_indexes_in_a_transaction() {
        let checker = Checker::new(Deployment::ReplicaSet);
        let now = Instant::now();
        let names = |c: &Checker, command: Document| -> Vec<&'static str> {
            let name = command.keys().next().unwrap().clone();
            c.check_at("app", &name, &command, now)
                .into_iter()
                .map(|v| v.rule.name)
                .collect()
        };
        let write = in_transaction(
            doc! { "insert": "old", "documents": [ { "_id": 1 } ] },
            true,
        );
        assert!(names(&checker, write).is_empty());
        let on_old = in_transaction(doc! { "createIndexes": "old", "indexes": [] }, false);
        assert_eq!(names(&checker, on_old), [TRANSACTION_CREATE_INDEXES.name]);
        let create = in_transaction(doc! { "create": "new" }, false);
        assert!(names(&checker, create).is_empty());
        let on_new = in_transaction(doc! { "createIndexes": "new", "indexes": [] }, false);
        assert!(names(&checker, on_new).is_empty());
        // Outside a transaction, anywhere.
        assert!(names(&checker, doc! { "createIndexes": "old", "indexes": [] }).is_empty());
    }

    #[test]
    fn a_transaction_past_its_lifetime() {
        let checker = Checker::new(Deployment::ReplicaSet);
        let start = Instant::now();
        let first = in_transaction(doc! { "insert": "c", "documents": [] }, true);
        assert!(checker.check_at("app", "insert", &first, start).is_empty());
        let commit = in_transaction(doc! { "commitTransaction": 1 }, false);
        let late = checker.check_at(
            "admin",
            "commitTransaction",
            &commit,
            start + Duration::from_secs(61),
        );
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].rule, TRANSACTION_LIFETIME);
        // A transaction committed in time.
        let checker = Checker::new(Deployment::ReplicaSet);
        assert!(checker.check_at("app", "insert", &first, start).is_empty());
        assert!(
            checker
                .check_at(
                    "admin",
                    "commitTransaction",
                    &commit,
                    start + Duration::from_secs(59)
                )
                .is_empty()
        );
    }

    #[test]
    fn documents_over_16_mib() {
        let big = doc! { "_id": 1, "blob": Binary { subtype: BinarySubtype::Generic, bytes: vec![0; MAX_DOCUMENT] } };
        assert_eq!(
            rs(doc! { "insert": "c", "documents": [ big.clone() ] }),
            [DOCUMENT_SIZE.name]
        );
        let small = doc! { "_id": 1, "blob": Binary { subtype: BinarySubtype::Generic, bytes: vec![0; 1024] } };
        assert!(rs(doc! { "insert": "c", "documents": [ small ] }).is_empty());
        assert_eq!(
            rs(doc! { "update": "c", "updates": [ { "q": { "_id": 1 }, "u": big } ] }),
            [DOCUMENT_SIZE.name]
        );
    }

    #[test]
    fn top_level_dollar_fields_in_a_replacement() {
        let replace =
            doc! { "update": "c", "updates": [ { "q": { "_id": 1 }, "u": { "a": 1, "$b": 2 } } ] };
        assert_eq!(rs(replace), [REPLACEMENT_DOLLAR.name]);
        let modify =
            doc! { "findAndModify": "c", "query": { "_id": 1 }, "update": { "$set": { "a": 1 } } };
        assert!(rs(modify).is_empty());
        // Inserts may have them (MongoDB 5.0 and later).
        assert!(rs(doc! { "insert": "c", "documents": [ { "_id": 1, "$price": 2 } ] }).is_empty());
    }

    #[test]
    fn a_violation_names_the_rule_the_command_and_the_citation() {
        let command = doc! { "aggregate": "lock", "pipeline": [ { "$changeStream": {} } ], "cursor": {},
        "lsid": { "id": 1 }, "$db": "app" };
        let found = Checker::new(Deployment::Standalone).check("app", "aggregate", &command);
        let text = found[0].to_string();
        assert!(text.contains(STANDALONE_CHANGE_STREAM.name), "{text}");
        assert!(text.contains("$changeStream"), "{text}");
        assert!(text.contains("changeStreams/#availability"), "{text}");
        assert!(!text.contains("lsid"), "{text}");
    }
}
