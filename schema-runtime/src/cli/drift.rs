//! `migrate drift [--repair [--allow-destructive]]`: the database against the schema the
//! applied migrations declared.

use super::{Outcome, Printer, json};
use crate::drift::{Drift, DriftReport};
use crate::error::Result;
use crate::migrator::Migrator;

/// The flags of `drift`.
pub(super) struct Asked {
    pub repair: bool,
    pub allow_destructive: bool,
    pub record_declarations: bool,
}

pub(super) async fn run(
    migrator: &Migrator,
    asked: Asked,
    text: &mut Printer<'_>,
    doc: &mut json::Output,
) -> Result<Outcome> {
    let Asked {
        repair,
        allow_destructive,
        record_declarations,
    } = asked;
    if record_declarations {
        let recorded = migrator.record_declarations().await?;
        for entry in &recorded {
            match &entry.note {
                None => text.line(format!(
                    "recorded {} declaration(s) on {}",
                    entry.declarations, entry.key
                ))?,
                Some(note) => text.line(format!("not recorded on {}: {note}", entry.key))?,
            }
        }
        if recorded.is_empty() {
            text.line("every applied record already has its declarations")?;
        }
        doc.declarations = Some(recorded.iter().map(json::Declarations::of).collect());
    }
    let report = if repair {
        // `--allow-destructive`, or AUTO_SCHEMA_DESTRUCTIVE=true in the migrator's settings.
        let destructive = allow_destructive || migrator.allows_destructive();
        let repaired = migrator.repair_drift(destructive).await?;
        for action in &repaired.actions {
            let word = if action.repaired { "repaired" } else { "left" };
            text.line(format!("{word}: {}", action.note))?;
        }
        if repaired.actions.is_empty() {
            text.line("nothing to repair")?;
        }
        doc.repairs = Some(repaired.actions.iter().map(json::Repair::of).collect());
        text.line("after the repair:")?;
        repaired.after
    } else {
        migrator.drift().await?
    };
    findings(&report, text, doc)?;
    Ok(if report.is_clean() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

fn findings(report: &DriftReport, text: &mut Printer<'_>, doc: &mut json::Output) -> Result<()> {
    if !report.without_declarations.is_empty() {
        text.line(format!(
            "note: {} applied migration(s) carry no declarations ({}): recorded by baseline, by the reference system or by an older version, so what they made shows as undeclared; `drift --record-declarations` records theirs",
            report.without_declarations.len(),
            report.without_declarations.join(", ")
        ))?;
    }
    for finding in &report.findings {
        text.line(format!("{:<20} {finding}", label(finding)))?;
    }
    text.line(if report.is_clean() {
        format!(
            "no drift: {} collection(s) as the migrations declared them",
            report.collections_checked
        )
    } else {
        format!(
            "drift: {} difference(s) in {} collection(s) checked",
            report.findings.len(),
            report.collections_checked
        )
    })?;
    doc.drift = Some(report.findings.iter().map(json::DriftItem::of).collect());
    doc.without_declarations = Some(report.without_declarations.clone());
    doc.collections_checked = Some(report.collections_checked);
    Ok(())
}

fn label(finding: &Drift) -> String {
    finding.kind().replace('_', " ")
}
