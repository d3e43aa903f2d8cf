//! Stage 1: parse the arguments of `#[migration(...)]` into raw, unchecked values.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

use crate::ctxt::Ctxt;
use crate::symbol;

/// The attribute's arguments as written; each is `None` when absent or unusable.
pub(crate) struct Attr {
    /// Span of the whole attribute, for "missing key" errors.
    pub span: Span,
    pub id: Option<LitStr>,
    pub description: Option<LitStr>,
    pub group: Option<LitStr>,
    pub krate: Option<syn::Path>,
    pub transaction: bool,
    pub destructive: bool,
    /// Span of `background`, when given and true (for the error with `transaction`).
    pub background: Option<Span>,
    pub down: Option<syn::Path>,
    pub timeout: Option<LitStr>,
    /// Keys that were written, usable or not: a key given with a bad value is not "missing".
    pub written: Vec<String>,
}

pub(crate) fn parse(args: TokenStream, cx: &mut Ctxt) -> Attr {
    let span = if args.is_empty() {
        Span::call_site()
    } else {
        args.clone()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span())
    };
    let mut attr = Attr {
        span,
        id: None,
        description: None,
        group: None,
        krate: None,
        transaction: false,
        destructive: false,
        background: None,
        down: None,
        timeout: None,
        written: Vec::new(),
    };
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(err) => {
            cx.push(err);
            return attr;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let key = meta
            .path()
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_else(|| {
                // `crate` is a keyword, so it is not an `Ident` for `get_ident`.
                quote::ToTokens::to_token_stream(meta.path()).to_string()
            });
        if !symbol::ALL.contains(&key.as_str()) {
            cx.error_spanned_by(
                meta.path(),
                format!(
                    "unknown key `{key}` in #[migration]; expected one of: {}",
                    symbol::ALL.join(", ")
                ),
            );
            continue;
        }
        if seen.contains(&key) {
            cx.error_spanned_by(meta.path(), format!("`{key}` is given more than once"));
            continue;
        }
        seen.push(key.clone());
        attr.written.push(key.clone());
        // #[migration(transaction)]
        if key == symbol::TRANSACTION && matches!(meta, Meta::Path(_)) {
            attr.transaction = true;
            continue;
        }
        // #[migration(destructive)]
        if key == symbol::DESTRUCTIVE && matches!(meta, Meta::Path(_)) {
            attr.destructive = true;
            continue;
        }
        // #[migration(background)]
        if key == symbol::BACKGROUND && matches!(meta, Meta::Path(_)) {
            attr.background = Some(syn::spanned::Spanned::span(meta.path()));
            continue;
        }
        let value = match &meta {
            Meta::NameValue(nv) => &nv.value,
            _ => {
                cx.error_spanned_by(&meta, format!("expected `{key} = ...`"));
                continue;
            }
        };
        match key.as_str() {
            // #[migration(id = "0003")]
            symbol::ID => attr.id = string_value(cx, &key, value, "\"0001\""),
            // #[migration(description = "Create the events indexes")]
            symbol::DESCRIPTION => {
                attr.description = string_value(cx, &key, value, "\"what this migration does\"")
            }
            // #[migration(group = "analytics")]
            symbol::GROUP => attr.group = string_value(cx, &key, value, "\"analytics\""),
            // #[migration(transaction = true)]
            symbol::TRANSACTION => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => attr.transaction = b.value,
                other => cx.error_spanned_by(
                    other,
                    "`transaction` is `true` or `false`, or write just `transaction`",
                ),
            },
            // #[migration(destructive = true)]
            symbol::DESTRUCTIVE => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => attr.destructive = b.value,
                other => cx.error_spanned_by(
                    other,
                    "`destructive` is `true` or `false`, or write just `destructive`",
                ),
            },
            // #[migration(background = true)]
            symbol::BACKGROUND => match value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => attr.background = b.value.then(|| b.span()),
                other => cx.error_spanned_by(
                    other,
                    "`background` is `true` or `false`, or write just `background`",
                ),
            },
            // #[migration(timeout = "10m")]
            symbol::TIMEOUT => attr.timeout = string_value(cx, &key, value, "\"10m\""),
            // #[migration(down = drop_replay_indexes)]
            symbol::DOWN => match value {
                Expr::Path(p) if p.qself.is_none() => attr.down = Some(p.path.clone()),
                other => cx.error_spanned_by(
                    other,
                    "`down` names the rollback function, such as `down = drop_replay_indexes`",
                ),
            },
            // #[migration(crate = my_facade::schema_runtime)]
            symbol::CRATE => match value {
                Expr::Path(p) if p.qself.is_none() => attr.krate = Some(p.path.clone()),
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => match s.parse::<syn::Path>() {
                    Ok(path) => attr.krate = Some(path),
                    Err(_) => cx.error_spanned_by(
                        s,
                        "`crate` must be a path, such as `crate = my_facade::schema_runtime`",
                    ),
                },
                other => cx.error_spanned_by(
                    other,
                    "`crate` must be a path, such as `crate = my_facade::schema_runtime`",
                ),
            },
            _ => unreachable!("every key of symbol::ALL is handled"),
        }
    }
    attr
}

fn string_value(cx: &mut Ctxt, key: &str, value: &Expr, example: &str) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => {
            cx.error_spanned_by(
                i,
                format!(
                    "`{key}` must be a string literal: write `{key} = \"{}\"`",
                    i.base10_digits()
                ),
            );
            None
        }
        other => {
            cx.error_spanned_by(
                other,
                format!("`{key}` must be a string literal, such as `{key} = {example}`"),
            );
            None
        }
    }
}
