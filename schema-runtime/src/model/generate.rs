//! `migrate new --from-models`: the body of a migration that makes the declared schema equal
//! the models, written out as literal calls (`ensure_validator`, `ensure_indexes`,
//! `drop_index`), never as a reference to the model type: an applied migration must not change
//! when the type changes later.

use std::collections::BTreeMap;

use mongodb::bson::{Bson, Document};

use super::diff::ModelDiff;
use super::registry::ModelEntry;

/// A generated body: the `use` lines, the statements, and whether it drops something (the
/// migration is then `destructive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedBody {
    /// The statements, indented for the function's body.
    pub statements: String,
    /// Whether an index is dropped.
    pub destructive: bool,
    /// Whether an index is created (the file imports `IndexSpec`).
    pub uses_indexes: bool,
    /// Whether a validator is set (the file imports the validation types).
    pub uses_validator: bool,
}

/// The statements that make `diff`'s target equal the models, or `Err` naming a value that has
/// no literal form here.
pub(crate) fn body(
    diff: &ModelDiff,
    models: &[&'static ModelEntry],
) -> Result<GeneratedBody, String> {
    let mut by_collection: BTreeMap<&str, Vec<&super::ModelFinding>> = BTreeMap::new();
    for finding in &diff.findings {
        by_collection
            .entry(&finding.collection)
            .or_default()
            .push(finding);
    }
    let mut out = String::new();
    let mut generated = GeneratedBody {
        statements: String::new(),
        destructive: false,
        uses_indexes: false,
        uses_validator: false,
    };
    for (collection, findings) in by_collection {
        let Some(model) = models.iter().find(|m| m.collection == collection) else {
            continue;
        };
        out.push_str(&format!(
            "    // {collection}, as {} models it.\n",
            model.type_name
        ));
        let validator = findings.iter().any(|f| {
            matches!(
                f.kind,
                "missing_collection" | "missing_validator" | "different_validator"
            )
        });
        if validator {
            generated.uses_validator = true;
            out.push_str(&format!(
                "    ctx.ensure_validator(\n        {collection:?},\n        {},\n        ValidationLevel::{},\n        ValidationAction::{},\n    )\n    .await?;\n",
                rust_doc(&(model.validator)(), 2)?,
                capitalized((model.level)().as_str()),
                capitalized((model.action)().as_str()),
            ));
        }
        for finding in &findings {
            if matches!(finding.kind, "different_index" | "unmodelled_index")
                && let Some(index) = &finding.index
            {
                generated.destructive = true;
                out.push_str(&format!(
                    "    ctx.drop_index({collection:?}, {index:?}).await?;\n"
                ));
            }
        }
        let wanted: Vec<String> = findings
            .iter()
            .filter(|f| matches!(f.kind, "missing_index" | "different_index"))
            .filter_map(|f| f.index.clone())
            .collect();
        let specs: Vec<_> = (model.indexes)()
            .into_iter()
            .filter(|s| wanted.iter().any(|w| w == s.name()))
            .collect();
        if !specs.is_empty() {
            generated.uses_indexes = true;
            out.push_str(&format!(
                "    ctx.ensure_indexes(\n        {collection:?},\n        &[\n"
            ));
            for spec in specs {
                let document = spec.to_document();
                let keys = document.get_document("key").cloned().unwrap_or_default();
                out.push_str(&format!(
                    "            IndexSpec::new({:?}, {})",
                    spec.name(),
                    rust_doc(&keys, 3)?
                ));
                for (option, value) in document.iter().filter(|(k, _)| *k != "key" && *k != "name")
                {
                    out.push_str(&format!(".option({option:?}, {})", rust_value(value, 3)?));
                }
                out.push_str(",\n");
            }
            out.push_str("        ],\n    )\n    .await?;\n");
        }
    }
    generated.statements = out;
    Ok(generated)
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A `doc! { ... }` that builds `document`.
pub(crate) fn rust_doc(document: &Document, depth: usize) -> Result<String, String> {
    Ok(format!("doc! {}", braces(document, depth)?))
}

fn braces(document: &Document, depth: usize) -> Result<String, String> {
    if document.is_empty() {
        return Ok("{}".to_owned());
    }
    // Short documents on one line, as a person writes them.
    let parts: Result<Vec<String>, String> = document
        .iter()
        .map(|(key, value)| Ok(format!("{key:?}: {}", inner(value, depth + 1)?)))
        .collect();
    let one_line = format!("{{ {} }}", parts?.join(", "));
    if one_line.len() <= 60 && !one_line.contains('\n') {
        return Ok(one_line);
    }
    let pad = "    ".repeat(depth + 1);
    let close = "    ".repeat(depth);
    let mut out = String::from("{\n");
    for (key, value) in document {
        out.push_str(&format!("{pad}{key:?}: {},\n", inner(value, depth + 1)?));
    }
    out.push_str(&format!("{close}}}"));
    Ok(out)
}

/// A value inside `doc!` (nested documents and arrays in the macro's own syntax).
fn inner(value: &Bson, depth: usize) -> Result<String, String> {
    Ok(match value {
        Bson::Document(d) => braces(d, depth)?,
        Bson::Array(items) => {
            let items: Result<Vec<String>, String> =
                items.iter().map(|v| inner(v, depth)).collect();
            format!("[{}]", items?.join(", "))
        }
        Bson::Null => "null".to_owned(),
        other => scalar(other)?,
    })
}

/// A value as a Rust expression (for `.option(key, value)`).
fn rust_value(value: &Bson, depth: usize) -> Result<String, String> {
    Ok(match value {
        Bson::Document(d) => rust_doc(d, depth)?,
        Bson::Array(_) | Bson::Null => {
            format!("schema_runtime::bson::bson!({})", inner(value, depth)?)
        }
        other => scalar(other)?,
    })
}

fn scalar(value: &Bson) -> Result<String, String> {
    Ok(match value {
        Bson::String(s) => format!("{s:?}"),
        Bson::Boolean(b) => b.to_string(),
        Bson::Int32(n) => n.to_string(),
        Bson::Int64(n) => format!("{n}_i64"),
        Bson::Double(n) if n.is_finite() => format!("{n:?}_f64"),
        other => {
            return Err(format!(
                "{other} has no literal form in a generated migration; write this part by hand"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn documents_are_written_as_the_doc_macro() {
        let d = doc! {
            "bsonType": "object",
            "required": ["a"],
            "properties": { "a": { "bsonType": ["string", "null"] }, "n": { "minimum": 1_i64 } },
            "additionalProperties": false,
            "ratio": 0.5,
            "empty": {},
        };
        let text = rust_doc(&d, 0).unwrap();
        assert_eq!(
            text,
            "doc! {\n    \"bsonType\": \"object\",\n    \"required\": [\"a\"],\n    \"properties\": {\n        \"a\": { \"bsonType\": [\"string\", \"null\"] },\n        \"n\": { \"minimum\": 1_i64 },\n    },\n    \"additionalProperties\": false,\n    \"ratio\": 0.5_f64,\n    \"empty\": {},\n}"
        );
        assert_eq!(
            rust_doc(&doc! { "sku": 1 }, 3).unwrap(),
            "doc! { \"sku\": 1 }"
        );
        assert!(scalar(&Bson::DateTime(mongodb::bson::DateTime::now())).is_err());
    }
}
