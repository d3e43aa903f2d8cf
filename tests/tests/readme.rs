//! The README's first snippet is a whole migration file: copied into a crate as it stands, it
//! compiles with warnings denied (no unused import, nothing missing).

#[test]
fn the_first_readme_snippet_compiles_as_a_migration_file() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let snippet = &readme[start..start + readme[start..].find("```").unwrap()];
    assert!(snippet.contains("#[migration("), "{snippet}");
    let dir = schema_tests::scratch_crate(&format!("readme-{}", std::process::id()));
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("#![deny(warnings)]\n{snippet}"),
    )
    .unwrap();
    if let Err(errors) = schema_tests::build_scratch_crate(&dir) {
        panic!("the README's first snippet does not compile as a file:\n{snippet}\n{errors}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
