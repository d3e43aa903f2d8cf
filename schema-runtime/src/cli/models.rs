//! `migrate diff [--live]`: the models against the declared schema or the database.

use super::{Outcome, Printer, json};
use crate::error::Result;
use crate::migrator::Migrator;

pub(super) async fn diff(
    migrator: &Migrator,
    live: bool,
    text: &mut Printer<'_>,
    doc: &mut json::Output,
) -> Result<Outcome> {
    let diff = migrator.diff_models(live).await?;
    for (collection, types) in &diff.duplicates {
        text.line(format!(
            "note: {collection} is modelled by {} types ({}); {} is compared",
            types.len(),
            types.join(", "),
            types[0]
        ))?;
    }
    for finding in &diff.findings {
        text.line(format!("{:<20} {finding}", finding.kind.replace('_', " ")))?;
    }
    if !diff.unmodelled_collections.is_empty() {
        text.line(format!(
            "note: no model describes {} ({})",
            diff.unmodelled_collections.len(),
            diff.unmodelled_collections.join(", ")
        ))?;
    }
    let target = if live {
        "the database"
    } else {
        "the schema the applied migrations declared"
    };
    text.line(if diff.is_empty() {
        format!("no difference: {} model(s) as {target}", diff.models)
    } else {
        format!(
            "{} difference(s) between {} model(s) and {target}; `migrate new --from-models \"...\"` writes the migration that makes them equal",
            diff.findings.len(),
            diff.models
        )
    })?;
    doc.models = Some(json::ModelsView::of(&diff));
    Ok(if diff.is_empty() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

/// The body `migrate new --from-models` writes: refused when models and migrations agree.
pub(super) async fn generated(migrator: &Migrator) -> Result<crate::model::GeneratedBody> {
    let refuse = |problem: String| crate::Error::CommandRefused {
        command: "migrate new --from-models".to_owned(),
        problem,
    };
    let diff = migrator.diff_models(false).await?;
    if diff.models == 0 {
        return Err(refuse(format!(
            "group {:?} has no models (#[derive(Collection)]); nothing was written",
            migrator.group_name()
        )));
    }
    if diff.is_empty() {
        return Err(refuse(
            "the models and the schema the applied migrations declared agree; nothing was written"
                .to_owned(),
        ));
    }
    let models = crate::model::models(migrator.group_name());
    crate::model::generated_body(&diff, &models)
        .map_err(|problem| refuse(format!("{problem}; nothing was written")))
}
