//! Models: the schema derived from the application's own types.
//!
//! `#[derive(Collection)]` on a serde struct gives its collection's name, the `$jsonSchema` of
//! its stored shape (as MongoDB's validator documents it: `bsonType`, never the keywords it
//! omits), its indexes and its validation level and action. A migration applies a model with
//! [`MigrationContext::ensure_model`](crate::MigrationContext::ensure_model), which is
//! `ensure_validator` and `ensure_indexes` with what the type says.
//!
//! ```
//! use schema_runtime::bson::{DateTime, oid::ObjectId};
//! use schema_runtime::{BsonSchema, Collection};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Collection)]
//! #[collection(name = "tickets")]
//! struct Ticket {
//!     #[serde(rename = "_id")]
//!     id: ObjectId,
//!     #[index(unique)]
//!     number: i64,
//!     subject: String,
//!     #[index]
//!     status: Status,
//!     tags: Vec<String>,
//!     assignee: Option<String>,
//!     #[index(ttl = "30d")]
//!     closed_at: Option<DateTime>,
//! }
//!
//! #[derive(serde::Serialize, serde::Deserialize, BsonSchema)]
//! #[serde(rename_all = "snake_case")]
//! enum Status { Open, Pending, Closed }
//!
//! let schema = Ticket::bson_schema();
//! assert_eq!(schema.get_array("required").unwrap().len(), 5);
//! assert_eq!(Ticket::NAME, "tickets");
//! assert_eq!(Ticket::indexes().len(), 3);
//! ```
//!
//! Each type's schema comes from its [`BsonSchema`] implementation, so nested structs, enums,
//! `Option`, `Vec` and maps compose: a field of type `T` has `T::bson_schema()`. This module has
//! the implementations for the standard and BSON types; the derives write them for yours.

mod diff;
#[cfg(feature = "cli")]
mod generate;
mod registry;

pub use diff::{ModelDiff, ModelFinding};
pub(crate) use diff::{as_live, diff};
#[cfg(feature = "cli")]
pub use generate::GeneratedBody;
#[cfg(feature = "cli")]
pub(crate) use generate::body as generated_body;
pub use registry::{ModelEntry, duplicates, models};

use std::collections::{BTreeMap, HashMap};

use mongodb::bson::{Bson, Document, doc};

use crate::collection::{ValidationAction, ValidationLevel};
use crate::indexes::IndexSpec;

/// A type whose stored BSON shape has a `$jsonSchema` (MongoDB's dialect: `bsonType`).
pub trait BsonSchema {
    /// The `$jsonSchema` of a value of this type.
    fn bson_schema() -> Document;

    /// Whether a field of this type may be absent from the stored document (`Option<T>`).
    const OPTIONAL: bool = false;
}

/// A model: a type stored as the documents of one collection. Derive it with
/// `#[derive(Collection)]`.
pub trait Collection: BsonSchema {
    /// The collection's name.
    const NAME: &'static str;

    /// The indexes the type declares (`#[index]` on fields, `#[collection(index(...))]`).
    fn indexes() -> Vec<IndexSpec>;

    /// Which writes the validator checks (default `strict`).
    fn validation_level() -> ValidationLevel {
        ValidationLevel::Strict
    }

    /// What a failing write gets (default `error`).
    fn validation_action() -> ValidationAction {
        ValidationAction::Error
    }

    /// The validator: `{ $jsonSchema: <the type's schema> }`.
    fn validator() -> Document {
        doc! { "$jsonSchema": Self::bson_schema() }
    }
}

fn of(bson_type: &str) -> Document {
    doc! { "bsonType": bson_type }
}

macro_rules! bson_type {
    ($name:literal: $($t:ty),+) => {
        $(impl BsonSchema for $t {
            fn bson_schema() -> Document {
                of($name)
            }
        })+
    };
}

bson_type!("string": String, str, char);
bson_type!("bool": bool);
// Serialized by bson as Int32 when they fit in it; `u32` can exceed it and is written as Int64.
bson_type!("int": i8, i16, i32, u8, u16);
bson_type!("long": i64, u32, u64, isize, usize);
bson_type!("double": f32, f64);
bson_type!("date": mongodb::bson::DateTime);
bson_type!("objectId": mongodb::bson::oid::ObjectId);
bson_type!("decimal": mongodb::bson::Decimal128);
bson_type!("timestamp": mongodb::bson::Timestamp);
bson_type!("binData": mongodb::bson::Binary);
bson_type!("object": Document);

/// Any BSON value: no constraint.
impl BsonSchema for Bson {
    fn bson_schema() -> Document {
        Document::new()
    }
}

impl<T: BsonSchema + ?Sized> BsonSchema for &T {
    fn bson_schema() -> Document {
        T::bson_schema()
    }
    const OPTIONAL: bool = T::OPTIONAL;
}

impl<T: BsonSchema + ?Sized> BsonSchema for Box<T> {
    fn bson_schema() -> Document {
        T::bson_schema()
    }
    const OPTIONAL: bool = T::OPTIONAL;
}

/// Not required, and `null` is accepted (what serde writes for `None` unless the field is
/// skipped).
impl<T: BsonSchema> BsonSchema for Option<T> {
    fn bson_schema() -> Document {
        nullable(T::bson_schema())
    }
    const OPTIONAL: bool = true;
}

/// `schema`, also accepting `null`.
pub fn nullable(mut schema: Document) -> Document {
    if schema.is_empty() {
        return schema;
    }
    match schema.get("bsonType").cloned() {
        Some(Bson::String(t)) => {
            schema.insert(
                "bsonType",
                vec![Bson::String(t), Bson::String("null".into())],
            );
            schema
        }
        Some(Bson::Array(mut types)) => {
            if !types.contains(&Bson::String("null".into())) {
                types.push(Bson::String("null".into()));
            }
            schema.insert("bsonType", types);
            schema
        }
        _ => match schema.get_array_mut("enum") {
            Ok(values) => {
                if !values.contains(&Bson::Null) {
                    values.push(Bson::Null);
                }
                schema
            }
            Err(_) => doc! { "anyOf": [schema, { "bsonType": "null" }] },
        },
    }
}

impl<T: BsonSchema> BsonSchema for Vec<T> {
    fn bson_schema() -> Document {
        doc! { "bsonType": "array", "items": T::bson_schema() }
    }
}

impl<T: BsonSchema> BsonSchema for [T] {
    fn bson_schema() -> Document {
        doc! { "bsonType": "array", "items": T::bson_schema() }
    }
}

impl<T: BsonSchema, const N: usize> BsonSchema for [T; N] {
    fn bson_schema() -> Document {
        let n = i64::try_from(N).unwrap_or(i64::MAX);
        doc! { "bsonType": "array", "items": T::bson_schema(), "minItems": n, "maxItems": n }
    }
}

impl<K, T: BsonSchema, S> BsonSchema for HashMap<K, T, S> {
    fn bson_schema() -> Document {
        doc! { "bsonType": "object", "additionalProperties": T::bson_schema() }
    }
}

impl<K, T: BsonSchema> BsonSchema for BTreeMap<K, T> {
    fn bson_schema() -> Document {
        doc! { "bsonType": "object", "additionalProperties": T::bson_schema() }
    }
}

/// For the derives: `properties` and `required` of a flattened field's schema merged into
/// `into`'s. A flattened map (`additionalProperties`) lets the parent hold any other field.
#[doc(hidden)]
pub fn __flatten(
    properties: &mut Document,
    required: &mut Vec<Bson>,
    open: &mut bool,
    nested: Document,
) {
    if let Ok(props) = nested.get_document("properties") {
        for (k, v) in props {
            properties.insert(k, v.clone());
        }
    }
    if let Ok(req) = nested.get_array("required") {
        required.extend(req.iter().cloned());
    }
    if nested.contains_key("additionalProperties") && !nested.contains_key("properties") {
        *open = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_types_have_the_bson_types_mongodb_names() {
        assert_eq!(String::bson_schema(), doc! { "bsonType": "string" });
        assert_eq!(i32::bson_schema(), doc! { "bsonType": "int" });
        assert_eq!(i64::bson_schema(), doc! { "bsonType": "long" });
        assert_eq!(f64::bson_schema(), doc! { "bsonType": "double" });
        assert_eq!(bool::bson_schema(), doc! { "bsonType": "bool" });
        assert_eq!(
            mongodb::bson::DateTime::bson_schema(),
            doc! { "bsonType": "date" }
        );
        assert_eq!(
            mongodb::bson::oid::ObjectId::bson_schema(),
            doc! { "bsonType": "objectId" }
        );
        assert_eq!(
            mongodb::bson::Decimal128::bson_schema(),
            doc! { "bsonType": "decimal" }
        );
        assert_eq!(
            Vec::<u8>::bson_schema(),
            doc! { "bsonType": "array", "items": { "bsonType": "int" } }
        );
        assert_eq!(
            HashMap::<String, f64>::bson_schema(),
            doc! { "bsonType": "object", "additionalProperties": { "bsonType": "double" } }
        );
        assert_eq!(Bson::bson_schema(), doc! {});
    }

    #[test]
    fn an_option_is_nullable_and_not_required() {
        const { assert!(Option::<String>::OPTIONAL) };
        const { assert!(!String::OPTIONAL) };
        assert_eq!(
            Option::<String>::bson_schema(),
            doc! { "bsonType": ["string", "null"] }
        );
        assert_eq!(
            nullable(doc! { "enum": ["open", "closed"] }),
            doc! { "enum": ["open", "closed", Bson::Null] }
        );
        assert_eq!(
            nullable(doc! { "anyOf": [{ "bsonType": "int" }] }),
            doc! { "anyOf": [{ "anyOf": [{ "bsonType": "int" }] }, { "bsonType": "null" }] }
        );
        assert_eq!(Option::<Bson>::bson_schema(), doc! {});
    }
}
