//! The `#[migration]` attribute. Use it through `schema_runtime::migration`; this crate only parses,
//! checks and generates, and never talks to a database.
//!
//! The stages are one file each: [`attr`] parses the arguments, [`item`] the function's signature, [`valid`] checks them and the
//! function and builds the model (with [`order`] and [`checksum`]), [`expand`] generates the code.

mod attr;
mod checksum;
mod ctxt;
mod expand;
mod item;
mod model;
mod order;
mod symbol;
mod test_attr;
mod valid;

use proc_macro::TokenStream;
use quote::quote;

/// Registers an `async fn` as a schema migration. See `schema_runtime::migration` for the full
/// documentation.
#[proc_macro_attribute]
pub fn migration(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let mut cx = ctxt::Ctxt::default();
    let func: item::MigrationFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            cx.error_at(
                proc_macro2::Span::call_site(),
                "#[migration] goes on an `async fn` that takes `&mut MigrationContext` and returns a `Result`",
            );
            let errors = cx.into_compile_errors();
            return quote!(#errors #item).into();
        }
    };
    let attr = attr::parse(args.into(), &mut cx);
    let model = valid::check(attr, &func, &mut cx);
    match (model, cx.into_compile_errors()) {
        (Some(model), None) => expand::expand(&model, &func.sig, item).into(),
        // Still emit the function so that the IDE keeps working and no secondary errors appear.
        (_, errors) => quote!(#errors #item).into(),
    }
}

/// A test with a throwaway database of its own. See `schema_runtime::test` for the full
/// documentation.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::expand(args.into(), item.into()).into()
}

/// Derives `schema_runtime::Collection` (and `BsonSchema`) for a serde struct stored as the
/// documents of one collection. See `schema_runtime::Collection` for the full documentation.
#[proc_macro_derive(Collection, attributes(collection, index, schema))]
pub fn derive_collection(input: TokenStream) -> TokenStream {
    model::expand(input.into(), model::Derive::Collection).into()
}

/// Derives `schema_runtime::BsonSchema` for a serde type stored in a field (a nested struct, an
/// enum of unit variants). See `schema_runtime::BsonSchema`.
#[proc_macro_derive(BsonSchema, attributes(schema))]
pub fn derive_bson_schema(input: TokenStream) -> TokenStream {
    model::expand(input.into(), model::Derive::BsonSchema).into()
}
