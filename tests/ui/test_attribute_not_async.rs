use schema_runtime::testing::TestDatabase;

#[schema_runtime::test(up_to = "0001", colour = "blue")]
fn not_async(db: TestDatabase) {
    let _ = db;
}

fn main() {}
