//! The checksum of a migration's body: a hash of its tokens, so that formatting and comments do
//! not change it but any change to the code does.

use std::fmt::Write;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the block's tokens written out one by one, separated by single spaces.
pub(crate) fn of_block(block: &syn::Block) -> String {
    let mut canonical = String::new();
    write_tokens(block.to_token_stream(), &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn write_tokens(tokens: TokenStream, out: &mut String) {
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
    use super::of_block;

    fn block(src: &str) -> syn::Block {
        syn::parse_str(src).unwrap()
    }

    #[test]
    fn formatting_and_comments_do_not_count() {
        let a = block("{ let x = 1 ; /* note */ x + 2 }");
        let b = block("{\n    // a comment\n    let x=1;\n    x+2\n}");
        assert_eq!(of_block(&a), of_block(&b));
    }

    #[test]
    fn code_changes_count() {
        assert_ne!(of_block(&block("{ f(1) }")), of_block(&block("{ f(2) }")));
        assert_ne!(
            of_block(&block("{ f(\"a\") }")),
            of_block(&block("{ f(\"b\") }"))
        );
        assert_ne!(
            of_block(&block("{ (a)(b) }")),
            of_block(&block("{ (a(b)) }"))
        );
    }
}
