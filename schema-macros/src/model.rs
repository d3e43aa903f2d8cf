//! `#[derive(Collection)]` and `#[derive(BsonSchema)]`: the stored shape of a serde type as a
//! `$jsonSchema`, and a collection's name, indexes and validation settings. The derive reads
//! serde's attributes that change the stored shape (`rename`, `rename_all`, `skip`,
//! `skip_serializing`, `skip_serializing_if`, `default`, `flatten`, `deny_unknown_fields`) and
//! refuses, with the span, what it cannot represent yet.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::ctxt::Ctxt;

/// What `#[derive(...)]` asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Derive {
    Collection,
    BsonSchema,
}

pub(crate) fn expand(input: TokenStream, derive: Derive) -> TokenStream {
    let mut cx = Ctxt::default();
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let container = Container::parse(&input, derive, &mut cx);
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "a model cannot be generic: its schema must be known when the migration is written",
        );
    }
    let body = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => struct_schema(&container, fields, &mut cx),
            _ => {
                cx.error_spanned_by(
                    &input.ident,
                    "a model is a struct with named fields (a document); tuple and unit structs are not stored as documents",
                );
                None
            }
        },
        Data::Enum(data) => {
            if derive == Derive::Collection {
                cx.error_spanned_by(
                    &input.ident,
                    "#[derive(Collection)] goes on a struct (a document); derive `BsonSchema` for an enum stored in a field",
                );
            }
            enum_schema(&container, data, &mut cx)
        }
        Data::Union(_) => {
            cx.error_spanned_by(&input.ident, "a union has no stored shape");
            None
        }
    };
    let indexes = if derive == Derive::Collection {
        collection_impl(&container, &input, &mut cx)
    } else {
        None
    };
    if let Some(errors) = cx.into_compile_errors() {
        return errors;
    }
    let krate = &container.krate;
    let ident = &input.ident;
    let body = body.unwrap_or_default();
    quote! {
        impl #krate::BsonSchema for #ident {
            fn bson_schema() -> #krate::bson::Document {
                #body
            }
        }
        #indexes
    }
}

/// The container's attributes: `#[collection(...)]` and serde's.
struct Container {
    krate: syn::Path,
    name: Option<LitStr>,
    group: Option<LitStr>,
    level: Option<LitStr>,
    action: Option<LitStr>,
    indexes: Vec<CompoundIndex>,
    rename_all: Option<(String, Span)>,
    deny_unknown_fields: bool,
}

impl Container {
    fn parse(input: &DeriveInput, derive: Derive, cx: &mut Ctxt) -> Container {
        let mut container = Container {
            krate: syn::parse_quote!(::schema_runtime),
            name: None,
            group: None,
            level: None,
            action: None,
            indexes: Vec::new(),
            rename_all: None,
            deny_unknown_fields: false,
        };
        for attr in &input.attrs {
            if attr.path().is_ident("serde") {
                let _ = attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("rename_all") {
                        if let Some(rule) = serialize_name(&meta)? {
                            container.rename_all = Some((rule.value(), rule.span()));
                        }
                    } else if meta.path.is_ident("deny_unknown_fields") {
                        container.deny_unknown_fields = true;
                    } else if ["tag", "content", "untagged", "transparent", "into", "remote"]
                        .iter()
                        .any(|k| meta.path.is_ident(k))
                    {
                        let key = meta
                            .path
                            .get_ident()
                            .map(ToString::to_string)
                            .unwrap_or_default();
                        cx.error_spanned_by(
                            &meta.path,
                            format!(
                                "#[serde({key})] changes the stored shape in a way the derived schema does not represent yet; write the schema by hand (impl BsonSchema)"
                            ),
                        );
                        skip_value(&meta)?;
                    } else {
                        skip_value(&meta)?;
                    }
                    Ok(())
                });
            } else if attr.path().is_ident("collection") {
                if derive != Derive::Collection {
                    cx.error_spanned_by(attr, "#[collection] belongs to #[derive(Collection)]");
                    continue;
                }
                let result = attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("name") {
                        let name: LitStr = meta.value()?.parse()?;
                        if name.value().is_empty() || name.value().contains('$') {
                            cx.error_spanned_by(
                                &name,
                                "a collection name is not empty and has no `$`",
                            );
                        }
                        container.name = Some(name);
                    } else if meta.path.is_ident("group") {
                        container.group = Some(meta.value()?.parse()?);
                    } else if meta.path.is_ident("validation_level") {
                        let level: LitStr = meta.value()?.parse()?;
                        if !["strict", "moderate", "off"].contains(&level.value().as_str()) {
                            cx.error_spanned_by(
                                &level,
                                "validation_level is \"strict\", \"moderate\" or \"off\"",
                            );
                        }
                        container.level = Some(level);
                    } else if meta.path.is_ident("validation_action") {
                        let action: LitStr = meta.value()?.parse()?;
                        if !["error", "warn"].contains(&action.value().as_str()) {
                            cx.error_spanned_by(
                                &action,
                                "validation_action is \"error\" or \"warn\"",
                            );
                        }
                        container.action = Some(action);
                    } else if meta.path.is_ident("crate") {
                        let path: LitStr = meta.value()?.parse()?;
                        container.krate = path.parse()?;
                    } else if meta.path.is_ident("index") {
                        if let Some(index) = compound_index(&meta, cx)? {
                            container.indexes.push(index);
                        }
                    } else {
                        return Err(meta.error(
                            "unknown key in #[collection]; expected name, group, validation_level, validation_action, index(...) or crate",
                        ));
                    }
                    Ok(())
                });
                if let Err(e) = result {
                    cx.push(e);
                }
            }
        }
        if derive == Derive::Collection && container.name.is_none() {
            cx.error_spanned_by(
                &input.ident,
                "#[derive(Collection)] needs the collection's name: #[collection(name = \"tickets\")]",
            );
        }
        if let Some((rule, span)) = &container.rename_all
            && rename(rule, "a_b").is_none()
        {
            cx.error_at(*span, format!("unknown rename_all rule {rule:?}"));
        }
        container
    }
}

/// `rename = "x"` or `rename(serialize = "x", ...)`: the serialized name.
fn serialize_name(meta: &syn::meta::ParseNestedMeta) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(syn::Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    let mut found = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("serialize") {
            found = Some(inner.value()?.parse()?);
        } else {
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    Ok(found)
}

/// Consumes the value of a key this derive does not read (`= expr` or `(...)`).
fn skip_value(meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// serde's `rename_all` rule applied to a snake_case field or PascalCase variant name.
fn rename(rule: &str, name: &str) -> Option<String> {
    let words: Vec<String> = if name.contains('_') || name.chars().all(|c| !c.is_uppercase()) {
        name.split('_')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    } else {
        let mut words = Vec::new();
        let mut word = String::new();
        for c in name.chars() {
            if c.is_uppercase() && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            word.extend(c.to_lowercase());
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    };
    let capital = |w: &String| {
        let mut chars = w.chars();
        chars
            .next()
            .map(|f| f.to_uppercase().chain(chars).collect::<String>())
            .unwrap_or_default()
    };
    Some(match rule {
        "lowercase" => words.concat(),
        "UPPERCASE" => words.concat().to_uppercase(),
        "PascalCase" => words.iter().map(capital).collect(),
        "camelCase" => {
            let mut out = words.first().cloned().unwrap_or_default();
            out.extend(words.iter().skip(1).map(capital));
            out
        }
        "snake_case" => words.join("_"),
        "SCREAMING_SNAKE_CASE" => words.join("_").to_uppercase(),
        "kebab-case" => words.join("-"),
        "SCREAMING-KEBAB-CASE" => words.join("-").to_uppercase(),
        _ => return None,
    })
}

/// The fields of a struct: its properties, which are required, and its field indexes.
fn struct_schema(
    container: &Container,
    fields: &syn::FieldsNamed,
    cx: &mut Ctxt,
) -> Option<TokenStream> {
    let krate = &container.krate;
    let mut steps = Vec::new();
    for field in &fields.named {
        let ident = field.ident.as_ref().expect("named");
        let name = stored_name(container, field);
        let mut skipped = false;
        let mut may_be_absent = false;
        let mut flatten = false;
        let mut custom = false;
        for attr in &field.attrs {
            if !attr.path().is_ident("serde") {
                continue;
            }
            // `rename` is read by `stored_name`; the keys that change what is stored here.
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                    skipped = true;
                } else if meta.path.is_ident("skip_serializing_if") || meta.path.is_ident("default")
                {
                    may_be_absent = true;
                    skip_value(&meta)?;
                } else if meta.path.is_ident("flatten") {
                    flatten = true;
                } else if meta.path.is_ident("with") || meta.path.is_ident("serialize_with") {
                    custom = true;
                    skip_value(&meta)?;
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.push(e);
            }
        }
        let overridden = schema_override(&field.attrs, cx);
        if custom && overridden.is_none() && !skipped {
            cx.error_spanned_by(
                ident,
                "this field is serialized by a function of its own (`with` / `serialize_with`), so its stored type is not known from its Rust type: say it with #[schema(bson_type = \"date\")] (or another BSON type)",
            );
        }
        if skipped {
            continue;
        }
        let ty = &field.ty;
        if flatten {
            steps.push(quote_spanned! {ty.span()=>
                #krate::__model_flatten(&mut properties, &mut required, &mut open, <#ty as #krate::BsonSchema>::bson_schema());
            });
            continue;
        }
        let schema = match &overridden {
            Some(bson_type) => quote! {
                if <#ty as #krate::BsonSchema>::OPTIONAL {
                    #krate::__model_nullable(#krate::bson::doc! { "bsonType": #bson_type })
                } else {
                    #krate::bson::doc! { "bsonType": #bson_type }
                }
            },
            None => quote_spanned! {ty.span()=> <#ty as #krate::BsonSchema>::bson_schema() },
        };
        let required = if may_be_absent {
            quote! {}
        } else {
            quote_spanned! {ty.span()=>
                if !<#ty as #krate::BsonSchema>::OPTIONAL {
                    required.push(#krate::bson::Bson::String(#name.to_owned()));
                }
            }
        };
        steps.push(quote! {
            properties.insert(#name, #schema);
            #required
        });
    }
    let deny = container.deny_unknown_fields;
    Some(quote! {
        let mut properties = #krate::bson::Document::new();
        let mut required: ::std::vec::Vec<#krate::bson::Bson> = ::std::vec::Vec::new();
        let mut open = false;
        #(#steps)*
        let mut schema = #krate::bson::doc! { "bsonType": "object" };
        if !required.is_empty() {
            schema.insert("required", required);
        }
        if #deny && !open {
            // The server adds `_id` to every document: allowed even when the type has none.
            if !properties.contains_key("_id") {
                properties.insert("_id", #krate::bson::Document::new());
            }
            schema.insert("properties", properties);
            schema.insert("additionalProperties", false);
        } else {
            schema.insert("properties", properties);
        }
        schema
    })
}

/// `#[schema(bson_type = "...")]` on a field.
fn schema_override(attrs: &[syn::Attribute], cx: &mut Ctxt) -> Option<LitStr> {
    const TYPES: &[&str] = &[
        "double",
        "string",
        "object",
        "array",
        "binData",
        "objectId",
        "bool",
        "date",
        "null",
        "regex",
        "int",
        "timestamp",
        "long",
        "decimal",
        "minKey",
        "maxKey",
        "number",
    ];
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("schema")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("bson_type") {
                let t: LitStr = meta.value()?.parse()?;
                if !TYPES.contains(&t.value().as_str()) {
                    cx.error_spanned_by(
                        &t,
                        format!(
                            "not a BSON type MongoDB's $jsonSchema knows; one of: {}",
                            TYPES.join(", ")
                        ),
                    );
                }
                found = Some(t);
                Ok(())
            } else {
                Err(meta.error("unknown key in #[schema]; expected bson_type = \"...\""))
            }
        });
        if let Err(e) = result {
            cx.push(e);
        }
    }
    found
}

/// A unit-only enum: `{ enum: [names] }`.
fn enum_schema(container: &Container, data: &syn::DataEnum, cx: &mut Ctxt) -> Option<TokenStream> {
    let krate = &container.krate;
    let mut names = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            cx.error_spanned_by(
                &variant.ident,
                "a variant with data is stored as a document whose shape the derived schema does not represent yet; derive `BsonSchema` on enums of unit variants, or write the schema by hand (impl BsonSchema)",
            );
            continue;
        }
        let mut name = variant.ident.to_string();
        if let Some((rule, _)) = &container.rename_all
            && let Some(renamed) = rename(rule, &name)
        {
            name = renamed;
        }
        let mut skipped = false;
        for attr in variant.attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    if let Some(renamed) = serialize_name(&meta)? {
                        name = renamed.value();
                    }
                } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                    skipped = true;
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        if !skipped {
            names.push(name);
        }
    }
    Some(quote! {
        #krate::bson::doc! { "enum": [#(#names),*] }
    })
}

/// `impl Collection`: the name, the indexes (from `#[index]` fields and `#[collection(index)]`),
/// the validation settings.
fn collection_impl(
    container: &Container,
    input: &DeriveInput,
    cx: &mut Ctxt,
) -> Option<TokenStream> {
    let krate = &container.krate;
    let ident = &input.ident;
    let name = container.name.as_ref()?;
    let mut indexes: Vec<TokenStream> = container.indexes.iter().map(|i| i.render(krate)).collect();
    if let Data::Struct(data) = &input.data {
        for field in &data.fields {
            for attr in field.attrs.iter().filter(|a| a.path().is_ident("index")) {
                let Some(field_ident) = &field.ident else {
                    continue;
                };
                let stored = stored_name(container, field);
                if let Some(index) = field_index(attr, &stored, field_ident, krate, cx) {
                    indexes.push(index);
                }
            }
        }
    }
    let level = container.level.as_ref().map(|l| {
        let variant = syn::Ident::new(&capitalize(&l.value()), l.span());
        quote! {
            fn validation_level() -> #krate::ValidationLevel {
                #krate::ValidationLevel::#variant
            }
        }
    });
    let action = container.action.as_ref().map(|a| {
        let variant = syn::Ident::new(&capitalize(&a.value()), a.span());
        quote! {
            fn validation_action() -> #krate::ValidationAction {
                #krate::ValidationAction::#variant
            }
        }
    });
    let group = container
        .group
        .as_ref()
        .map_or_else(|| "default".to_owned(), LitStr::value);
    Some(quote! {
        impl #krate::Collection for #ident {
            const NAME: &'static str = #name;
            fn indexes() -> ::std::vec::Vec<#krate::IndexSpec> {
                ::std::vec![#(#indexes),*]
            }
            #level
            #action
        }
        #krate::__private::inventory::submit! {
            #krate::__private::ModelEntry {
                collection: #name,
                type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                group: #group,
                validator: <#ident as #krate::Collection>::validator,
                indexes: <#ident as #krate::Collection>::indexes,
                level: <#ident as #krate::Collection>::validation_level,
                action: <#ident as #krate::Collection>::validation_action,
            }
        }
    })
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The name a field is stored under (serde's `rename` and `rename_all`).
fn stored_name(container: &Container, field: &syn::Field) -> String {
    let mut name = field
        .ident
        .as_ref()
        .map(|i| i.to_string().trim_start_matches("r#").to_owned())
        .unwrap_or_default();
    if let Some((rule, _)) = &container.rename_all
        && let Some(renamed) = rename(rule, &name)
    {
        name = renamed;
    }
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if let Some(renamed) = serialize_name(&meta)? {
                    name = renamed.value();
                }
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
    }
    name
}

/// `#[index]`, `#[index(unique)]`, `#[index(ttl = "7d")]`, `#[index(sparse, descending,
/// name = "...")]` on a field.
fn field_index(
    attr: &syn::Attribute,
    stored: &str,
    field: &syn::Ident,
    krate: &syn::Path,
    cx: &mut Ctxt,
) -> Option<TokenStream> {
    let mut unique = false;
    let mut sparse = false;
    let mut descending = false;
    let mut ttl: Option<(u64, Span)> = None;
    let mut name: Option<String> = None;
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("unique") {
                unique = true;
            } else if meta.path.is_ident("sparse") {
                sparse = true;
            } else if meta.path.is_ident("descending") {
                descending = true;
            } else if meta.path.is_ident("name") {
                name = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("ttl") {
                let text: LitStr = meta.value()?.parse()?;
                match duration_secs(&text.value()) {
                    Some(secs) => ttl = Some((secs, text.span())),
                    None => cx.error_spanned_by(
                        &text,
                        "a TTL is a whole number with s, m, h or d, such as \"7d\" or \"3600s\"",
                    ),
                }
            } else {
                return Err(meta.error(
                    "unknown key in #[index]; expected unique, sparse, descending, ttl = \"7d\" or name = \"...\"",
                ));
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.push(e);
            return None;
        }
    }
    if stored == "_id" {
        cx.error_spanned_by(
            field,
            "`_id` is indexed by MongoDB already (a TTL on it is refused, and its index cannot be changed)",
        );
        return None;
    }
    let direction: i32 = if descending { -1 } else { 1 };
    let name = name.unwrap_or_else(|| format!("{stored}_{direction}"));
    let unique = unique.then(|| quote!(.unique()));
    let sparse = sparse.then(|| quote!(.sparse()));
    let ttl = ttl.map(|(secs, _)| quote!(.ttl(::std::time::Duration::from_secs(#secs))));
    Some(quote! {
        #krate::IndexSpec::new(#name, #krate::bson::doc! { #stored: #direction })
            #unique #sparse #ttl
    })
}

/// `#[collection(index(name = "...", keys(a = 1, b = -1), unique, sparse))]`.
fn compound_index(
    meta: &syn::meta::ParseNestedMeta,
    cx: &mut Ctxt,
) -> syn::Result<Option<CompoundIndex>> {
    let mut name: Option<LitStr> = None;
    let mut keys: Vec<(String, i32)> = Vec::new();
    let mut text: Vec<String> = Vec::new();
    let mut unique = false;
    let mut sparse = false;
    let span = meta.path.span();
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("name") {
            name = Some(inner.value()?.parse()?);
        } else if inner.path.is_ident("keys") {
            inner.parse_nested_meta(|key| {
                let field = key
                    .path
                    .get_ident()
                    .map(ToString::to_string)
                    .ok_or_else(|| key.error("a key is a field name"))?;
                let direction: syn::LitInt = match key.value()?.parse::<syn::Expr>()? {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i,
                    syn::Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => match *expr {
                        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => {
                            syn::LitInt::new(&format!("-{}", i.base10_digits()), i.span())
                        }
                        other => return Err(syn::Error::new_spanned(other, "a direction is 1 or -1")),
                    },
                    other => return Err(syn::Error::new_spanned(other, "a direction is 1 or -1")),
                };
                let d: i32 = direction.base10_parse()?;
                if d != 1 && d != -1 {
                    return Err(syn::Error::new_spanned(direction, "a direction is 1 or -1"));
                }
                keys.push((field, d));
                Ok(())
            })?;
        } else if inner.path.is_ident("text") {
            inner.parse_nested_meta(|field| {
                let f = field
                    .path
                    .get_ident()
                    .map(ToString::to_string)
                    .ok_or_else(|| field.error("a text field is a field name"))?;
                text.push(f);
                Ok(())
            })?;
        } else if inner.path.is_ident("unique") {
            unique = true;
        } else if inner.path.is_ident("sparse") {
            sparse = true;
        } else {
            return Err(inner.error(
                "unknown key in index(...); expected name = \"...\", keys(a = 1, b = -1), text(a, b), unique or sparse",
            ));
        }
        Ok(())
    })?;
    let Some(name) = name else {
        cx.error_at(
            span,
            "an index of #[collection] needs its name: index(name = \"idx_...\", ...)",
        );
        return Ok(None);
    };
    if keys.is_empty() && text.is_empty() {
        cx.error_spanned_by(&name, "an index needs keys(a = 1, ...) or text(a, ...)");
    }
    Ok(Some(CompoundIndex {
        name,
        keys,
        text,
        unique,
        sparse,
    }))
}

/// An index declared on the struct: several keys, or text.
struct CompoundIndex {
    name: LitStr,
    keys: Vec<(String, i32)>,
    text: Vec<String>,
    unique: bool,
    sparse: bool,
}

impl CompoundIndex {
    fn render(&self, krate: &syn::Path) -> TokenStream {
        let name = &self.name;
        let entries = self
            .keys
            .iter()
            .map(|(k, d)| quote!(#k: #d))
            .chain(self.text.iter().map(|k| quote!(#k: "text")));
        let unique = self.unique.then(|| quote!(.unique()));
        let sparse = self.sparse.then(|| quote!(.sparse()));
        quote! {
            #krate::IndexSpec::new(#name, #krate::bson::doc! { #(#entries),* }) #unique #sparse
        }
    }
}

/// "7d", "12h", "30m", "3600s" in seconds.
fn duration_secs(text: &str) -> Option<u64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_rename_rules() {
        assert_eq!(
            rename("camelCase", "created_at").as_deref(),
            Some("createdAt")
        );
        assert_eq!(
            rename("PascalCase", "created_at").as_deref(),
            Some("CreatedAt")
        );
        assert_eq!(
            rename("kebab-case", "created_at").as_deref(),
            Some("created-at")
        );
        assert_eq!(
            rename("SCREAMING_SNAKE_CASE", "created_at").as_deref(),
            Some("CREATED_AT")
        );
        assert_eq!(
            rename("snake_case", "InProgress").as_deref(),
            Some("in_progress")
        );
        assert_eq!(
            rename("lowercase", "InProgress").as_deref(),
            Some("inprogress")
        );
        assert_eq!(
            rename("camelCase", "InProgress").as_deref(),
            Some("inProgress")
        );
        assert_eq!(rename("nope", "x"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(duration_secs("7d"), Some(604_800));
        assert_eq!(duration_secs("3600s"), Some(3600));
        assert_eq!(duration_secs("12h"), Some(43_200));
        assert_eq!(duration_secs("7"), None);
        assert_eq!(duration_secs("d"), None);
        assert_eq!(duration_secs("7w"), None);
    }
}
