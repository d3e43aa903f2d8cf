//! The out-of-order check: within one source file, ids must increase from top to bottom.
//!
//! An attribute macro sees only its own item, so the check reads the invoking file and lists the
//! `#[migration]` attributes in it (a `.rs` file only). The scan is a pure function of the file's contents; its result
//! is cached per file (keyed by modification time and length) only so that a file with many
//! migrations is read and tokenized once per compilation, not once per migration. When the file
//! cannot be located, read or tokenized, the check is skipped: it never reports a false error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

use crate::symbol;

/// One `#[migration]` found in a file, in file order.
#[derive(Debug, Clone)]
struct Declaration {
    group: String,
    id: String,
    number: String,
    function: String,
}

type FileKey = (PathBuf, Option<SystemTime>, u64);

fn cache() -> &'static Mutex<HashMap<FileKey, Arc<Vec<Declaration>>>> {
    static CACHE: OnceLock<Mutex<HashMap<FileKey, Arc<Vec<Declaration>>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Returns the error message when a migration in the same file and group, above this one, has a
/// higher id.
pub(crate) fn check_same_file(group: &str, number: &str, function: &str) -> Option<String> {
    let declarations = declarations_in_invoking_file()?;
    let position = declarations
        .iter()
        .position(|d| d.group == group && d.number == number && d.function == function)?;
    let higher = declarations[..position].iter().find(|d| {
        d.group == group
            && schema_id::compare_numbers(&d.number, number) == std::cmp::Ordering::Greater
    })?;
    Some(format!(
        "migration id is out of order: it is declared below id {:?} (fn `{}`) in the same file; ids must increase down the file, so move this migration above it or give it an id above {}",
        higher.id, higher.function, higher.number
    ))
}

fn declarations_in_invoking_file() -> Option<Arc<Vec<Declaration>>> {
    let path = proc_macro::Span::call_site().local_file()?;
    // Only Rust sources: a doc test of a Markdown page (`#[doc = include_str!("guide.md")]`)
    // has its spans in the `.md` file, and the compiler's lexer reports the prose of a page as
    // errors of the build instead of failing quietly.
    if path.extension().is_none_or(|e| e != "rs") {
        return None;
    }
    let meta = std::fs::metadata(&path).ok()?;
    let key = (path, meta.modified().ok(), meta.len());
    if let Some(found) = cache().lock().ok()?.get(&key) {
        return Some(found.clone());
    }
    let source = std::fs::read_to_string(&key.0).ok()?;
    // The compiler's own lexer: `proc_macro2`'s `from_str` would first check the whole file
    // with its own (unoptimized, in a debug build) lexer as well.
    let tokens = TokenStream::from(proc_macro::TokenStream::from_str(&source).ok()?);
    let mut found = Vec::new();
    scan(tokens, &mut found);
    let found = Arc::new(found);
    cache().lock().ok()?.insert(key, found.clone());
    Some(found)
}

fn scan(tokens: TokenStream, out: &mut Vec<Declaration>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        let TokenTree::Group(group) = token else {
            continue;
        };
        let is_attribute = group.delimiter() == Delimiter::Bracket
            && matches!(i.checked_sub(1).map(|p| &tokens[p]), Some(TokenTree::Punct(p)) if p.as_char() == '#');
        if is_attribute {
            if let Some((group_name, id)) = migration_attribute(group.stream())
                && let (Ok(number), Some(function)) =
                    (schema_id::normalize(&id), next_fn_name(&tokens[i + 1..]))
            {
                out.push(Declaration {
                    group: group_name,
                    number: number.to_owned(),
                    id,
                    function,
                });
            }
        } else {
            scan(group.stream(), out);
        }
    }
}

/// For `migration(id = "3", group = "g", ...)` (with any path before `migration`), the group and id.
fn migration_attribute(tokens: TokenStream) -> Option<(String, String)> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let args_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Group(_)))?;
    match tokens.get(args_at.checked_sub(1)?)? {
        TokenTree::Ident(ident) if ident == "migration" => {}
        _ => return None,
    }
    let TokenTree::Group(args) = &tokens[args_at] else {
        return None;
    };
    let args: Vec<TokenTree> = args.stream().into_iter().collect();
    let mut id = None;
    let mut group = symbol::DEFAULT_GROUP.to_owned();
    for window in args.windows(3) {
        if let [
            TokenTree::Ident(key),
            TokenTree::Punct(eq),
            TokenTree::Literal(value),
        ] = window
        {
            if eq.as_char() != '=' {
                continue;
            }
            // Read from the token itself, not by lexing its text again.
            let syn::Lit::Str(value) = syn::Lit::new(value.clone()) else {
                continue;
            };
            if key == symbol::ID {
                id = Some(value.value());
            } else if key == symbol::GROUP {
                group = value.value();
            }
        }
    }
    Some((group, id?))
}

fn next_fn_name(tokens: &[TokenTree]) -> Option<String> {
    let at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i == "fn"))?;
    match tokens.get(at + 1)? {
        TokenTree::Ident(name) => Some(name.to_string()),
        _ => None,
    }
}
