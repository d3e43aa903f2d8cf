use schema_runtime::Collection;

#[derive(serde::Serialize, Collection)]
struct Ticket {
    subject: String,
}

fn main() {}
