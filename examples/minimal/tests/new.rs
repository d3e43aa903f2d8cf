//! `migrate new` in a crate whose migrations are in `src/lib.rs`: the file goes beside it and
//! its `mod` line into `lib.rs`, with no server configured.

use std::process::Command;

#[test]
fn migrate_new_declares_the_module_in_the_crate_root() {
    let dir = std::env::temp_dir().join(format!("help-desk-new-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs");
    std::fs::copy(lib, src.join("lib.rs")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_help-desk"))
        .args(["migrate", "new", "Add ticket tags", "--dir"])
        .arg(&src)
        .env_remove("MONGODB_URI")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(src.join("m0002_add_ticket_tags.rs").is_file(), "{stdout}");
    let root = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(
        root.ends_with("\npub mod m0002_add_ticket_tags;\n"),
        "{root}"
    );
    assert!(
        stdout.contains("added `pub mod m0002_add_ticket_tags;` to"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
