use schema_runtime::{BsonSchema, Collection};

#[derive(serde::Serialize, BsonSchema)]
#[serde(tag = "kind")]
enum Event {
    Opened { by: String },
    Closed,
}

#[derive(serde::Serialize, Collection)]
#[collection(name = "tickets")]
struct Ticket {
    #[serde(serialize_with = "as_text")]
    opened: u64,
    state: Event,
}

fn as_text<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn main() {}
