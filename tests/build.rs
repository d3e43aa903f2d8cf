//! Generates migrations the tests and the benchmark need in numbers too large to write by hand:
//! groups `bulk10`, `bulk100`, `bulk200` and `bulk1000` of trivial migrations, and group `proc`,
//! 20 migrations for the multi-process tests, each of which calls `crate::step`.
use std::fmt::Write;

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());

    let mut bulk = String::new();
    for count in [10usize, 100, 200, 1000] {
        for i in 1..=count {
            writeln!(
                bulk,
                "#[::schema_runtime::migration(id = \"{i:04}\", description = \"bulk migration {i} of {count}\", group = \"bulk{count}\")]\n\
                 async fn bulk{count}_{i:04}(_ctx: &mut ::schema_runtime::MigrationContext) -> ::schema_runtime::MigrationResult {{ Ok(()) }}"
            )
            .unwrap();
        }
    }
    std::fs::write(out.join("bulk.rs"), bulk).unwrap();

    let mut process = String::new();
    for i in 1..=20 {
        writeln!(
            process,
            "#[::schema_runtime::migration(id = \"{i:04}\", description = \"process migration {i}\", group = \"proc\")]\n\
             async fn proc_{i:04}(ctx: &mut ::schema_runtime::MigrationContext) -> ::schema_runtime::MigrationResult {{ crate::step(ctx, \"{i:04}\").await }}"
        )
        .unwrap();
    }
    std::fs::write(out.join("proc.rs"), process).unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
