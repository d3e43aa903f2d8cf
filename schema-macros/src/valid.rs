//! Stage 2: check the attribute and the function, and build the validated model.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, LitStr, ReturnType, Signature};

use crate::attr::Attr;
use crate::ctxt::Ctxt;
use crate::item::MigrationFn;
use crate::{checksum, order, symbol};

/// Everything the expansion needs, all of it checked.
pub(crate) struct Model {
    pub id: LitStr,
    /// The id's number without leading zeros: the key for duplicates and order.
    pub number: String,
    pub description: LitStr,
    pub group: String,
    pub group_span: Span,
    pub krate: syn::Path,
    pub checksum: String,
    pub transaction: bool,
    pub destructive: bool,
    pub background: bool,
    pub down: Option<syn::Path>,
    /// The time limit in milliseconds; 0 for none.
    pub timeout_ms: u64,
}

pub(crate) fn check(attr: Attr, func: &MigrationFn, cx: &mut Ctxt) -> Option<Model> {
    check_signature(&func.sig, cx);

    let id = match attr.id {
        Some(lit) => {
            let text = lit.value();
            match schema_id::normalize(&text) {
                Ok(number) => Some((number.to_owned(), lit)),
                Err(err) => {
                    cx.error_spanned_by(&lit, format!("invalid migration id {text:?}: {err}"));
                    None
                }
            }
        }
        None if attr.written.iter().any(|k| k == symbol::ID) => None,
        None => {
            cx.error_at(
                attr.span,
                "missing `id`: write #[migration(id = \"0001\", description = \"...\")]",
            );
            None
        }
    };

    let description = match attr.description {
        Some(lit) if lit.value().trim().is_empty() => {
            cx.error_spanned_by(
                &lit,
                "the description is empty; say what this migration does, such as \"Create the events indexes\"",
            );
            None
        }
        Some(lit) => Some(lit),
        None if attr.written.iter().any(|k| k == symbol::DESCRIPTION) => None,
        None => {
            cx.error_at(
                attr.span,
                "missing `description`: write #[migration(id = \"...\", description = \"what this migration does\")]",
            );
            None
        }
    };

    let (group, group_span) = match attr.group {
        Some(lit) => {
            let value = lit.value();
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                cx.error_spanned_by(
                    &lit,
                    format!("invalid group {value:?}: a group name is ASCII letters, digits and `_`, such as \"analytics\""),
                );
            }
            (value, lit.span())
        }
        None => (symbol::DEFAULT_GROUP.to_owned(), Span::call_site()),
    };

    let timeout_ms = match &attr.timeout {
        Some(lit) => match parse_duration_ms(&lit.value()) {
            Some(ms) => ms,
            None => {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "invalid timeout {:?}: write a whole number followed by ms, s, m or h, such as \"90s\" or \"10m\"",
                        lit.value()
                    ),
                );
                0
            }
        },
        None => 0,
    };
    let transaction = attr.transaction;
    let destructive = attr.destructive;
    if let (Some(span), true) = (attr.background, transaction) {
        cx.push(syn::Error::new(
            span,
            "a `background` migration cannot run in a `transaction`: it runs while the application serves, and a transaction holds the write locks of every document it touches until it commits (the application's writes to them wait) and is aborted after 60 s by default; write the long work with `ctx.batches` (resumable, one batch per transaction) instead",
        ));
    }
    let background = attr.background.is_some();
    let down = attr.down;
    let krate = attr
        .krate
        .unwrap_or_else(|| syn::parse_quote!(::schema_runtime));

    let (number, id) = id?;
    let description = description?;
    if cx.has_errors() {
        return None;
    }

    if let Some(problem) = order::check_same_file(&group, &number, &func.sig.ident.to_string()) {
        cx.error_spanned_by(&id, problem);
        return None;
    }

    Some(Model {
        checksum: checksum::of_body(&func.body),
        id,
        number,
        description,
        group,
        group_span,
        krate,
        transaction,
        destructive,
        background,
        down,
        timeout_ms,
    })
}

/// `"250ms"`, `"90s"`, `"10m"`, `"2h"` in milliseconds; `None` for anything else or zero.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(factor).filter(|ms| *ms > 0)
}

fn check_signature(sig: &Signature, cx: &mut Ctxt) {
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "a migration must be an `async fn`: write `async fn` here",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_at(
            sig.generics.span(),
            "a migration cannot be generic: remove the generic parameters",
        );
    }
    let mut params = sig.inputs.iter();
    match params.next() {
        None => cx.error_at(
            sig.paren_token.span.join(),
            "a migration takes one parameter, its context: `ctx: &mut MigrationContext`",
        ),
        Some(FnArg::Receiver(receiver)) => cx.error_spanned_by(
            receiver,
            "a migration is a free function, not a method: replace `self` with `ctx: &mut MigrationContext`",
        ),
        Some(FnArg::Typed(_)) => {}
    }
    for extra in params {
        cx.error_spanned_by(
            extra,
            "a migration takes exactly one parameter, its context; remove this one",
        );
    }
    if let ReturnType::Default = sig.output {
        cx.error_at(
            sig.paren_token.span.close(),
            "a migration must return a `Result`, such as `-> MigrationResult`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("90s"), Some(90_000));
        assert_eq!(parse_duration_ms("10m"), Some(600_000));
        assert_eq!(parse_duration_ms("2h"), Some(7_200_000));
        for bad in [
            "",
            "10",
            "m",
            "0s",
            "1.5s",
            "10 d",
            "-1s",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }
}
