use schema_runtime::bson::{Document, doc};
use schema_runtime::testing::TestDatabase;

schema_runtime::link!(help_desk);

#[schema_runtime::test(up_to = "0001")]
async fn ticket_numbers_are_unique(db: TestDatabase) {
    let tickets = db.database().collection::<Document>("tickets");
    tickets.insert_one(doc! { "number": 1 }).await.unwrap();
    let second = tickets.insert_one(doc! { "number": 1 }).await;
    assert!(
        second.is_err(),
        "the unique index refuses a second ticket 1"
    );
}
