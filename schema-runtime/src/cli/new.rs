//! `migrate new "Add ticket tags"`: the file of the next migration, with a skeleton that compiles,
//! where the group's migrations already live.

use std::path::{Path, PathBuf};

use schema_id::MigrationId;

use crate::error::{Error, Result};
use crate::registry::Registry;

/// How the next id is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdStyle {
    /// The highest id plus one, as wide as the widest id (at least four digits).
    Next,
    /// The current UTC time as `YYYYMMDDHHMMSS`: two branches almost never pick the same one.
    Timestamp,
}

/// What `new` wrote.
#[derive(Debug)]
pub(crate) struct Created {
    pub id: String,
    pub file: PathBuf,
    /// The `mod` line, and the file it was added to (`None`: the user adds it).
    pub mod_line: String,
    pub mod_file: Option<PathBuf>,
}

/// The next id after `existing` in `style`; `now` is the current UTC time in RFC 3339.
pub(crate) fn next_id(existing: &[MigrationId], style: IdStyle, now: &str) -> String {
    match style {
        IdStyle::Timestamp => now.chars().filter(char::is_ascii_digit).take(14).collect(),
        IdStyle::Next => {
            let Some(highest) = existing.iter().max() else {
                return "0001".to_owned();
            };
            let width = existing
                .iter()
                .map(|id| id.as_str().len())
                .max()
                .unwrap_or(4);
            let next = increment(highest.number());
            format!("{next:0>width$}", width = width.max(4))
        }
    }
}

/// `digits` + 1, for numbers of any length.
fn increment(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for digit in out.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return String::from_utf8(out).expect("ASCII digits");
        }
    }
    format!("1{}", String::from_utf8(out).expect("ASCII digits"))
}

/// A Rust identifier from a description: lower case ASCII words joined by `_`.
pub(crate) fn slug(description: &str) -> String {
    let words: Vec<String> = description
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut slug = String::new();
    for word in words {
        if slug.len() + word.len() > 40 {
            break;
        }
        if !slug.is_empty() {
            slug.push('_');
        }
        slug.push_str(&word);
    }
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else",
        "enum", "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match",
        "mod", "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "try", "type", "unsafe", "use", "where", "while", "yield",
    ];
    if slug.is_empty() {
        "migration".into()
    } else if slug.starts_with(|c: char| c.is_ascii_digit()) {
        format!("migration_{slug}")
    } else if KEYWORDS.contains(&slug.as_str()) {
        format!("{slug}_migration")
    } else {
        slug
    }
}

/// The file's text: a migration that compiles (and does nothing yet).
pub(crate) fn skeleton(id: &str, description: &str, group: &str, function: &str) -> String {
    let group = if group == "default" {
        String::new()
    } else {
        format!(", group = {group:?}")
    };
    format!(
        r#"use schema_runtime::{{MigrationContext, MigrationResult, migration}};

#[migration(id = "{id}", description = {description:?}{group})]
pub async fn {function}(ctx: &mut MigrationContext) -> MigrationResult {{
    // For example: ctx.ensure_indexes(...), ctx.ensure_validator(...), ctx.batches(...),
    // or the driver through ctx.database().
    let _ = ctx;
    Ok(())
}}
"#
    )
}

/// The directory of the group's newest migration, as the compiler named its file: relative
/// paths are relative to the workspace root, where `cargo run` is usually started.
pub(crate) fn directory_of(registry: Option<&Registry>) -> Option<PathBuf> {
    let newest = registry?.migrations().last()?;
    let dir = Path::new(newest.file()).parent()?.to_path_buf();
    dir.is_dir().then_some(dir)
}

/// The file's text with a generated body (`migrate new --from-models`).
pub(crate) fn generated(
    id: &str,
    description: &str,
    group: &str,
    function: &str,
    body: &crate::model::GeneratedBody,
) -> String {
    let group = if group == "default" {
        String::new()
    } else {
        format!(", group = {group:?}")
    };
    let destructive = if body.destructive {
        ", destructive"
    } else {
        ""
    };
    let mut names = Vec::new();
    if body.uses_indexes {
        names.push("IndexSpec");
    }
    names.extend(["MigrationContext", "MigrationResult"]);
    if body.uses_validator {
        names.extend(["ValidationAction", "ValidationLevel"]);
    }
    names.push("migration");
    let bson = if body.uses_indexes || body.uses_validator {
        "use schema_runtime::bson::doc;\n"
    } else {
        ""
    };
    format!(
        "//! Generated by `migrate new --from-models`: makes the declared schema equal the models.\n//! Review it like any migration; it does not change when the models change later.\n\n{bson}use schema_runtime::{{{}}};\n\n#[migration(id = \"{id}\", description = {description:?}{group}{destructive})]\npub async fn {function}(ctx: &mut MigrationContext) -> MigrationResult {{\n{}    Ok(())\n}}\n",
        names.join(", "),
        body.statements
    )
}

/// Writes the next migration of `registry`'s group into `dir` (with `body`, a generated one).
pub(crate) fn create(
    registry: Option<&Registry>,
    group: &str,
    description: &str,
    dir: Option<&Path>,
    style: IdStyle,
    body: Option<&crate::model::GeneratedBody>,
) -> Result<Created> {
    let refuse = |problem: String| Error::CommandRefused {
        command: "migrate new".into(),
        problem,
    };
    if description.trim().is_empty() {
        return Err(refuse(
            "the description is empty; say what the migration does, such as \"Add ticket tags\""
                .into(),
        ));
    }
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => directory_of(registry).ok_or_else(|| {
            refuse(match registry.and_then(|r| r.migrations().last()) {
                Some(newest) => format!(
                    "nothing was written: the group's newest migration was compiled from {}, which is not found from the current directory {}; run this from the directory cargo built it in (the workspace root), or name the directory with --dir",
                    newest.file(),
                    std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
                ),
                None => format!(
                    "group {group:?} has no migrations yet, so there is no directory to follow; name it with --dir"
                ),
            })
        })?,
    };
    if !dir.is_dir() {
        return Err(refuse(format!("{} is not a directory", dir.display())));
    }
    let existing: Vec<MigrationId> = registry
        .map(|r| r.migrations().iter().map(|m| m.id()).collect())
        .unwrap_or_default();
    let now = mongodb::bson::DateTime::now()
        .try_to_rfc3339_string()
        .unwrap_or_default();
    let id = next_id(&existing, style, &now);
    let module = format!("m{id}_{}", slug(description));
    let file = dir.join(format!("{module}.rs"));
    if file.exists() {
        return Err(refuse(format!(
            "{} exists already; nothing was written",
            file.display()
        )));
    }
    let text = match body {
        Some(body) => generated(&id, description, group, &slug(description), body),
        None => skeleton(&id, description, group, &slug(description)),
    };
    std::fs::write(&file, text)
        .map_err(|e| refuse(format!("cannot write {}: {e}", file.display())))?;

    // The module that lists the migrations: `dir/mod.rs`, or `dir.rs` beside the directory; in
    // a crate's `src/`, the crate root (`lib.rs`, else `main.rs`; the one that holds the newest
    // migration first).
    let mod_line = format!("pub mod {module};");
    let parent_file = dir
        .file_name()
        .map(|name| dir.with_file_name(format!("{}.rs", name.to_string_lossy())));
    let newest_root = registry
        .and_then(|r| r.migrations().last())
        .map(|m| PathBuf::from(m.file()))
        .filter(|f| f.parent() == Some(dir.as_path()))
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n == "lib.rs" || n == "main.rs")
        });
    let in_src = dir.file_name().is_some_and(|n| n == "src");
    let crate_roots = [dir.join("lib.rs"), dir.join("main.rs")]
        .into_iter()
        .filter(|_| in_src);
    let mod_file = [Some(dir.join("mod.rs")), parent_file, newest_root]
        .into_iter()
        .flatten()
        .chain(crate_roots)
        .find(|f| f.is_file());
    if let Some(mod_file) = &mod_file {
        let mut text = std::fs::read_to_string(mod_file)
            .map_err(|e| refuse(format!("cannot read {}: {e}", mod_file.display())))?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&mod_line);
        text.push('\n');
        std::fs::write(mod_file, text)
            .map_err(|e| refuse(format!("cannot write {}: {e}", mod_file.display())))?;
    }
    Ok(Created {
        id,
        file,
        mod_line,
        mod_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<MigrationId> {
        ids.iter().map(|i| MigrationId::parse(i).unwrap()).collect()
    }

    #[test]
    fn the_next_id_follows_the_highest_and_its_width() {
        let now = "2026-12-04T07:14:09.123Z";
        assert_eq!(next_id(&[], IdStyle::Next, now), "0001");
        assert_eq!(next_id(&ids(&["0001", "0009"]), IdStyle::Next, now), "0010");
        assert_eq!(next_id(&ids(&["3", "12"]), IdStyle::Next, now), "0013");
        assert_eq!(next_id(&ids(&["000099"]), IdStyle::Next, now), "000100");
        assert_eq!(next_id(&ids(&["9999"]), IdStyle::Next, now), "10000");
        assert_eq!(
            next_id(
                &ids(&["99999999999999999999999999999999999999999"]),
                IdStyle::Next,
                now
            ),
            "100000000000000000000000000000000000000000"
        );
        assert_eq!(
            next_id(&ids(&["0001"]), IdStyle::Timestamp, now),
            "20261204071409"
        );
    }

    #[test]
    fn slugs_are_identifiers() {
        assert_eq!(slug("Add ticket tags"), "add_ticket_tags");
        assert_eq!(slug("  TTL on sessions (24h)! "), "ttl_on_sessions_24h");
        assert_eq!(slug("¿?"), "migration");
        assert_eq!(slug("24h tokens"), "migration_24h_tokens");
        assert_eq!(slug("Type"), "type_migration");
        assert!(slug(&"word ".repeat(30)).len() <= 40);
    }

    #[test]
    fn the_skeleton_names_its_group_unless_default() {
        let text = skeleton("0010", "Add \"tags\"", "default", "add_tags");
        assert!(text.contains(r#"#[migration(id = "0010", description = "Add \"tags\"")]"#));
        assert!(text.contains("pub async fn add_tags(ctx: &mut MigrationContext)"));
        let text = skeleton("0010", "x", "billing", "x");
        assert!(text.contains(r#"description = "x", group = "billing")]"#));
    }
}
