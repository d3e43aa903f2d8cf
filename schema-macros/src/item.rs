//! Stage 1b: the function the attribute is on. Its signature is parsed; its body is kept as the
//! tokens the compiler gave, never parsed into statements: the checks need only the signature, the
//! checksum hashes the body's tokens, and the function is emitted exactly as written. A crate with
//! hundreds of migrations compiles measurably faster for it (`scripts/bench-compile`).

use proc_macro2::{Delimiter, Group, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Visibility};

/// An `fn` item with its body left as tokens.
pub(crate) struct MigrationFn {
    pub sig: Signature,
    /// The body's braces and everything inside them.
    pub body: Group,
}

impl Parse for MigrationFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        let sig: Signature = input.parse()?;
        let body = match input.parse::<TokenTree>()? {
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => group,
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "expected the function's body",
                ));
            }
        };
        Ok(MigrationFn { sig, body })
    }
}

#[cfg(test)]
mod tests {
    use super::MigrationFn;

    #[test]
    fn parses_the_signature_and_keeps_the_body() {
        let item: MigrationFn = syn::parse_str(
            "#[doc = \"x\"] pub(crate) async fn m(ctx: &mut Ctx) -> R { let a = 1; f(a).await?; Ok(()) }",
        )
        .unwrap();
        assert_eq!(item.sig.ident, "m");
        assert!(item.sig.asyncness.is_some());
        assert_eq!(item.sig.inputs.len(), 1);
        assert!(item.body.stream().to_string().starts_with("let a = 1"));
    }

    #[test]
    fn refuses_what_is_not_a_function() {
        for src in [
            "struct S;",
            "fn f();",
            "async fn m(ctx: &mut Ctx) -> R { } extra",
        ] {
            assert!(syn::parse_str::<MigrationFn>(src).is_err(), "{src}");
        }
    }
}
