//! `#[schema_runtime::test]`: an ordinary `#[test]` whose async body receives a throwaway
//! database of its own (`schema_runtime::testing::TestDatabase`, feature `testing`), with the
//! migrations applied up to an id when asked.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemFn, LitStr};

use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let mut up_to: Option<LitStr> = None;
    let mut group: Option<LitStr> = None;
    let mut krate: Option<syn::Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("up_to") {
            up_to = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("group") {
            group = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("crate") {
            krate = Some(meta.value()?.parse()?);
        } else {
            return Err(meta.error(
                "unknown key; #[schema_runtime::test] takes `up_to = \"0011\"`, `group = \"name\"` and `crate = path`",
            ));
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
    }
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            cx.push(e);
            let errors = cx.into_compile_errors();
            return quote!(#errors #item);
        }
    };
    if func.sig.asyncness.is_none() {
        cx.error_spanned_by(
            func.sig.fn_token,
            "#[schema_runtime::test] goes on an `async fn` that takes the test database: `async fn name(db: TestDatabase)`",
        );
    }
    if func.sig.inputs.len() > 1 {
        cx.error_spanned_by(
            &func.sig.inputs,
            "the test takes one parameter, its database (`db: TestDatabase`), or none",
        );
    }
    if let Some(errors) = cx.into_compile_errors() {
        return quote!(#errors #item);
    }

    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::schema_runtime));
    let name = &func.sig.ident;
    let label = name.to_string();
    let body_name = format_ident!("__schema_test_{}", name);
    let mut body = func.clone();
    body.sig.ident = body_name.clone();
    body.attrs.clear();
    body.vis = syn::Visibility::Inherited;
    let attrs = &func.attrs;
    let vis = &func.vis;
    let output = &func.sig.output;
    let group = match &group {
        Some(g) => quote!(::core::option::Option::Some(#g)),
        None => quote!(::core::option::Option::None),
    };
    let up_to = match &up_to {
        Some(id) => quote!(::core::option::Option::Some(#id)),
        None => quote!(::core::option::Option::None),
    };
    let call = if func.sig.inputs.is_empty() {
        quote!(#body_name().await)
    } else {
        quote!(#body_name(db).await)
    };
    quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() #output {
            #body
            #krate::__private::run_test(async {
                let db = #krate::testing::TestDatabase::for_test(#label, #group, #up_to).await;
                #call
            })
        }
    }
}
