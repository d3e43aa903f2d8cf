use schema_runtime::Collection;

#[derive(serde::Serialize, Collection)]
#[collection(name = "sessions", validation_level = "strictest")]
struct Session {
    #[serde(rename = "_id")]
    #[index(unique)]
    id: String,
    #[index(ttl = "7 days")]
    last_seen: schema_runtime::bson::DateTime,
    #[index(uniq)]
    token: String,
}

fn main() {}
