//! The macro and the runtime share one code path for ids (the `schema-id` crate): ids the macro
//! accepted in this order are the order the runtime sorts them into.

use schema_runtime::{MigrationContext, MigrationId, MigrationResult, Registry, migration};

// Written in increasing numeric order, with different widths: the macro's same-file order check
// accepts this file, so the runtime must sort them the same way.
#[migration(id = "9", description = "nine", group = "ids")]
async fn nine(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[migration(id = "0010", description = "ten", group = "ids")]
async fn ten(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[migration(id = "011", description = "eleven", group = "ids")]
async fn eleven(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[migration(
    id = "100000000000000000000000000000000000000001",
    description = "huge",
    group = "ids"
)]
async fn huge(_ctx: &mut MigrationContext) -> MigrationResult {
    Ok(())
}

#[test]
fn runtime_order_is_the_order_the_macro_accepted() {
    let registry = Registry::group("ids").unwrap();
    let ids: Vec<String> = registry
        .migrations()
        .iter()
        .map(|m| m.id().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "9",
            "0010",
            "011",
            "100000000000000000000000000000000000000001"
        ]
    );
    let numbers: Vec<String> = registry
        .migrations()
        .iter()
        .map(|m| m.id().number().to_owned())
        .collect();
    assert_eq!(
        numbers,
        [
            "9",
            "10",
            "11",
            "100000000000000000000000000000000000000001"
        ]
    );
    assert_eq!(
        MigrationId::parse("0010").unwrap(),
        registry.migrations()[1].id()
    );
}

#[test]
fn checksums_are_of_the_body_tokens() {
    let registry = Registry::group("ids").unwrap();
    let sums: Vec<&str> = registry.migrations().iter().map(|m| m.checksum()).collect();
    // The four bodies are the same tokens, so the same checksum.
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "{sums:?}");
    assert!(sums[0].len() == 64 && sums[0].bytes().all(|b| b.is_ascii_hexdigit()));
}
