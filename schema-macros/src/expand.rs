//! Stage 3: generate the registration of a validated migration.

use proc_macro2::{Ident, TokenStream};
use quote::{quote, quote_spanned};
use syn::Signature;
use syn::spanned::Spanned;

use crate::symbol;
use crate::valid::Model;

pub(crate) fn expand(model: &Model, sig: &Signature, func: TokenStream) -> TokenStream {
    let Model {
        id,
        number,
        description,
        group,
        group_span,
        krate,
        checksum,
        transaction,
        destructive,
        background,
        down,
        timeout_ms,
    } = model;
    let name = &sig.ident;
    let name_text = name.to_string();
    let param_span = sig.inputs.span();

    // Two migrations with the same id in one group define this macro twice at the crate root, and
    // the compiler reports E0428 pointing at both id literals. Nothing ever invokes it.
    let marker = if group == symbol::DEFAULT_GROUP {
        format!("duplicate_migration_id_{number}")
    } else {
        format!("duplicate_migration_id_{number}_in_group_{group}")
    };
    let marker = Ident::new(&marker, id.span());
    let group_lit = syn::LitStr::new(group, *group_span);

    // Every token of the marker carries the id literal's span, so that E0428 points at both ids.
    let marker_item = quote_spanned! {id.span()=>
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #marker { () => {}; }
    };

    // A parameter of another type makes the call below a bare E0308; this check adds an error
    // at the parameter's type that names the signature to write.
    let param_check = match sig.inputs.first() {
        Some(syn::FnArg::Typed(param)) => {
            let ty = &param.ty;
            quote_spanned! {ty.span()=> #krate::__private::context_param::<#ty>(); }
        }
        _ => quote!(),
    };
    let call = quote_spanned! {param_span=>
        #krate::__private::run(#name(context))
    };
    // The rollback is called from generated code whose tokens carry the span of the path in the
    // attribute, so a missing function or a wrong signature is reported there.
    let (down_fn, down_value) = match down {
        Some(path) => {
            let span = path.span();
            // A rollback is any path, which the macro cannot check is an `async fn`: the `.await`
            // here makes a plain fn fail with "is not a future", pointing at the path.
            let call = quote_spanned! {span=>
                #krate::__private::into_outcome(#path(context).await)
            };
            (
                quote! {
                    fn __schema_migration_down(
                        context: &mut #krate::MigrationContext,
                    ) -> #krate::__private::MigrationFuture<'_> {
                        ::std::boxed::Box::pin(async move { #call })
                    }
                },
                quote!(::core::option::Option::Some(__schema_migration_down as #krate::__private::RunFn)),
            )
        }
        None => (quote!(), quote!(::core::option::Option::None)),
    };

    let line = quote_spanned! {name.span()=> ::core::line!() };

    quote! {
        #func

        #marker_item

        const _: () = {
            #down_fn

            #krate::__private::inventory::submit! {
                #krate::__private::Migration::__new(
                    #krate::__private::MigrationMeta {
                        id: #id,
                        description: #description,
                        group: #group_lit,
                        checksum: #checksum,
                        module: ::core::module_path!(),
                        function: #name_text,
                        file: ::core::file!(),
                        line: #line,
                        transaction: #transaction,
                        destructive: #destructive,
                        background: #background,
                        timeout_ms: #timeout_ms,
                    },
                    |context| {
                        #param_check
                        #call
                    },
                    #down_value,
                )
            }
        };
    }
}
