use schema_runtime::Collection;

#[derive(serde::Serialize, Collection)]
#[collection(name = "pairs")]
struct Pair(String, i32);

fn main() {}
