//! Generates groups of many trivial migrations, for the command-count test and the benchmark.
use std::fmt::Write;

fn main() {
    let mut code = String::new();
    for count in [200usize] {
        for i in 1..=count {
            writeln!(
                code,
                "#[::schema_runtime::migration(id = \"{i:04}\", description = \"bulk migration {i} of {count}\", group = \"bulk{count}\")]\n\
                 async fn bulk{count}_{i:04}(_ctx: &mut ::schema_runtime::MigrationContext) -> ::schema_runtime::MigrationResult {{ Ok(()) }}"
            )
            .unwrap();
        }
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bulk.rs");
    std::fs::write(out, code).unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
