//! The models a binary holds: every `#[derive(Collection)]` registers one (through `inventory`,
//! as migrations do), for `migrate diff`, `verify --models` and `migrate new --from-models`.

use mongodb::bson::Document;

use crate::collection::{ValidationAction, ValidationLevel};
use crate::indexes::IndexSpec;

/// One registered model.
#[derive(Debug)]
pub struct ModelEntry {
    /// The collection.
    pub collection: &'static str,
    /// The type, as `module::path::Type`.
    pub type_name: &'static str,
    /// The group of migrations whose declared schema it is compared with.
    pub group: &'static str,
    /// The validator.
    pub validator: fn() -> Document,
    /// The indexes.
    pub indexes: fn() -> Vec<IndexSpec>,
    /// The validation level.
    pub level: fn() -> ValidationLevel,
    /// The validation action.
    pub action: fn() -> ValidationAction,
}

inventory::collect!(ModelEntry);

/// The models of `group` registered in this binary, by collection name (a collection modelled
/// twice keeps the first type by name, and [`duplicates`] names the others).
pub fn models(group: &str) -> Vec<&'static ModelEntry> {
    let mut all: Vec<&'static ModelEntry> = inventory::iter::<ModelEntry>
        .into_iter()
        .filter(|m| m.group == group)
        .collect();
    all.sort_by(|a, b| (a.collection, a.type_name).cmp(&(b.collection, b.type_name)));
    all.dedup_by(|b, a| a.collection == b.collection);
    all
}

/// Collections of `group` that more than one type models: (collection, the types).
pub fn duplicates(group: &str) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut by: std::collections::BTreeMap<&'static str, Vec<&'static str>> = Default::default();
    for m in inventory::iter::<ModelEntry>
        .into_iter()
        .filter(|m| m.group == group)
    {
        by.entry(m.collection).or_default().push(m.type_name);
    }
    by.into_iter()
        .filter(|(_, types)| types.len() > 1)
        .map(|(c, mut types)| {
            types.sort();
            (c, types)
        })
        .collect()
}
