//! The checksum of a migration's body: a hash of its tokens, so that formatting and comments do
//! not change it but any change to the code does.

use std::fmt::Write;

use proc_macro2::{Delimiter, Group, TokenTree};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the body's tokens (braces included) written out one by one, separated by single
/// spaces. Inner attributes (`#![...]`, `//!`) at the top of the body do not count: the checksum
/// has always been taken of the statements alone.
pub(crate) fn of_body(body: &Group) -> String {
    let mut statements: Vec<TokenTree> = body.stream().into_iter().collect();
    while let [
        TokenTree::Punct(pound),
        TokenTree::Punct(bang),
        TokenTree::Group(attr),
        ..,
    ] = statements.as_slice()
        && pound.as_char() == '#'
        && bang.as_char() == '!'
        && attr.delimiter() == Delimiter::Bracket
    {
        statements.drain(..3);
    }
    let mut canonical = String::from("{ ");
    write_tokens(statements, &mut canonical);
    canonical.push_str("} ");
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn write_tokens(tokens: impl IntoIterator<Item = TokenTree>, out: &mut String) {
    for token in tokens {
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                out.push(' ');
                write_tokens(group.stream(), out);
                out.push_str(close);
            }
            TokenTree::Ident(ident) => out.push_str(&ident.to_string()),
            TokenTree::Punct(punct) => out.push(punct.as_char()),
            TokenTree::Literal(literal) => out.push_str(&literal.to_string()),
        }
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::of_body;
    use sha2::Digest;

    fn block(src: &str) -> proc_macro2::Group {
        syn::parse_str(src).unwrap()
    }

    #[test]
    fn formatting_and_comments_do_not_count() {
        let a = block("{ let x = 1 ; /* note */ x + 2 }");
        let b = block("{\n    // a comment\n    let x=1;\n    x+2\n}");
        assert_eq!(of_body(&a), of_body(&b));
    }

    #[test]
    fn code_changes_count() {
        assert_ne!(of_body(&block("{ f(1) }")), of_body(&block("{ f(2) }")));
        assert_ne!(
            of_body(&block("{ f(\"a\") }")),
            of_body(&block("{ f(\"b\") }"))
        );
        assert_ne!(of_body(&block("{ (a)(b) }")), of_body(&block("{ (a(b)) }")));
    }

    /// Records written before the body was kept as tokens hashed the body after syn had parsed
    /// it into statements and printed it back; the checksum of every existing migration must not
    /// change with that.
    #[test]
    fn same_checksum_as_hashing_the_parsed_block() {
        use quote::ToTokens;
        for src in [
            "{ Ok(()) }",
            "{ ctx.database().create_collection(\"c1\").await?; Ok(()) }",
            "{ #![allow(unused)] /// doc\n let x: Vec<u8> = vec![1u8, 0x2, b'a']; let r = r#\"raw\"#; let _ = (x, r); Ok(()) }",
            "{ let f = |a: i32| -> i32 { a + 1 }; if f(1) > 1 { return Err(\"e\".into()); } match 3 { 1..=2 => {}, _ => {} } Ok(()) }",
            "{ let s = S { a: 1, ..Default::default() }; for i in 0..10 { async { i }.await; } loop { break; } Ok::<(), E>(()) }",
            "{ let r#type = 1; macro_rules! m { ($x:expr) => { $x } } m!(r#type); unsafe { f() }; 'a: { break 'a; } Ok(()) }",
        ] {
            let func: syn::ItemFn = syn::parse_str(&format!("async fn f() {src}")).unwrap();
            let mut canonical = String::new();
            super::write_tokens(func.block.to_token_stream(), &mut canonical);
            let parsed_then_printed: String = sha2::Sha256::digest(canonical.as_bytes())
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assert_eq!(
                of_body(&super::tests::block(src)),
                parsed_then_printed,
                "{src}"
            );
        }
    }
}
