//! The README and the guide cannot drift from the code: the README's Rust blocks are the files
//! of `examples/minimal` (a crate the workspace builds, lints and tests), every page of the guide
//! is compiled as doc tests (`schema_tests::guide`), and every link into the guide resolves.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fenced blocks of `text` whose info string starts with `lang`: (the text before the
/// block, the block's info string, its body). Fences may be indented (a block in a list item).
fn blocks(text: &str, lang: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut before = String::new();
    let mut open: Option<(String, String)> = None; // (info, body so far)
    for line in text.split_inclusive('\n') {
        let fence = line.trim_start().starts_with("```");
        match &mut open {
            None if fence => {
                let info = line.trim_start()[3..].trim().to_owned();
                open = Some((info, String::new()));
            }
            None => before.push_str(line),
            Some(_) if fence => {
                let (info, body) = open.take().unwrap();
                if info.split(',').next() == Some(lang) {
                    found.push((before.clone(), info, body));
                }
                before.push('\n');
            }
            Some((_, body)) => body.push_str(line),
        }
    }
    assert!(open.is_none(), "a fenced block is not closed");
    found
}

#[test]
fn the_readme_is_short() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; depth goes in docs/"
    );
}

#[test]
fn every_rust_block_of_the_readme_is_a_file_of_the_minimal_example() {
    let readme = read("README.md");
    let rust = blocks(&readme, "rust");
    assert!(rust.len() >= 3, "the README shows the whole service");
    for (before, _, body) in rust {
        let paragraph = before.trim_end().rsplit("\n\n").next().unwrap();
        let name = paragraph
            .rsplit("**`")
            .next()
            .and_then(|s| s.split("`**").next())
            .filter(|_| paragraph.contains("**`"))
            .unwrap_or_else(|| {
                panic!("a Rust block of the README must follow **`path`**: {paragraph}")
            });
        let file = read(&format!("examples/minimal/{name}"));
        assert_eq!(
            body, file,
            "the README's {name} is not examples/minimal/{name}"
        );
    }
}

#[test]
fn every_page_of_the_guide_is_compiled_and_every_link_resolves() {
    let harness = read("tests/src/lib.rs");
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 13, "{pages:?}");
    for page in &pages {
        assert!(
            harness.contains(&format!("include_str!(\"../../docs/{page}\")")),
            "docs/{page} is not compiled by schema_tests::guide"
        );
    }
    // Links between the README, the guide and the other top-level pages.
    let mut documents = vec![("README.md".to_owned(), read("README.md"))];
    for page in &pages {
        documents.push((format!("docs/{page}"), read(&format!("docs/{page}"))));
    }
    for (from, text) in &documents {
        let dir = Path::new(from).parent().unwrap();
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap().split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            assert!(
                root().join(dir).join(target).exists(),
                "{from} links to {target}, which does not exist"
            );
        }
    }
}

#[test]
fn every_rust_block_of_the_guide_is_a_doc_test() {
    // A block marked `ignore` is not compiled: the guide has none.
    let mut count = 0;
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (_, info, body) in blocks(&text, "rust") {
            assert!(
                !info.contains("ignore"),
                "{} has an ignored Rust block:\n{body}",
                path.display()
            );
            count += 1;
        }
    }
    assert!(
        count >= 10,
        "the guide shows its API in compiled snippets ({count})"
    );
}
