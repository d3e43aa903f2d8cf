//! Driver-level helpers that the store, the lock, the batches and the migrator share: who this
//! process is (as written in records and in the lease), integers read from documents that
//! others may have written, and the majority transaction every transactional write uses.
//!
//! A leaf: it uses nothing else of this crate, so any module may use it without a cycle.
//! (Error inspection, `is_duplicate_key` and labels, lives in `error::driver`, also a leaf.)

use mongodb::ClientSession;
use mongodb::bson::{Bson, DateTime};
use mongodb::options::{ReadConcern, WriteConcern};

/// This machine's host name, as records and the lease name it.
pub(crate) fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// This process's id, as records and the lease store it.
pub(crate) fn pid() -> i64 {
    i64::from(std::process::id())
}

/// A date as messages show it: RFC 3339, or the driver's own form for a date outside its range.
pub(crate) fn show_date(at: DateTime) -> String {
    at.try_to_rfc3339_string()
        .unwrap_or_else(|_| at.to_string())
}

/// An integer from a BSON number; `None` for anything else (a string, a NaN, a fraction beyond
/// the range of `i64`).
pub(crate) fn read_i64(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(n) if n.is_finite() && n.abs() < 9.0e18 => Some(*n as i64),
        _ => None,
    }
}

/// Which step of [`start_majority_transaction`] failed.
pub(crate) enum TransactionStep {
    /// Starting the session.
    Session,
    /// Starting the transaction on it.
    Transaction,
}

impl TransactionStep {
    /// What the step was doing, for an error message.
    pub(crate) fn doing(&self) -> &'static str {
        match self {
            TransactionStep::Session => "starting a session",
            TransactionStep::Transaction => "starting a transaction",
        }
    }
}

/// Majority write concern bounded by `timeout` (`wtimeout`). Without a bound, a majority write
/// on a replica set that cannot reach majority (a primary-secondary-arbiter set with its
/// secondary down) waits for ever; with one, the server answers code 64 WriteConcernFailed
/// when the time is up (<https://www.mongodb.com/docs/manual/reference/write-concern/#wtimeout>).
/// A standalone server acknowledges at once.
pub(crate) fn majority(timeout: std::time::Duration) -> WriteConcern {
    WriteConcern::builder()
        .w(mongodb::options::Acknowledgment::Majority)
        .w_timeout(timeout)
        .build()
}

/// The library's own collections are read on the primary whatever read preference the
/// application's connection string sets (`readPreference=secondaryPreferred`): the records and
/// the lock must be read where they are written.
pub(crate) fn primary() -> mongodb::options::SelectionCriteria {
    mongodb::options::SelectionCriteria::ReadPreference(mongodb::options::ReadPreference::Primary)
}

/// The `wtimeout` of transactions' majority commits.
pub(crate) const TRANSACTION_MAJORITY_TIMEOUT: std::time::Duration =
    crate::migrator::defaults::MAJORITY_TIMEOUT;

/// A new session with a transaction started in it, with majority read and write concern (what
/// the records and checkpoints written inside it need to survive a failover), its commit bounded
/// by the default majority timeout, on the primary.
pub(crate) async fn start_majority_transaction(
    client: &mongodb::Client,
) -> Result<ClientSession, (TransactionStep, mongodb::error::Error)> {
    let mut session = client
        .start_session()
        .await
        .map_err(|e| (TransactionStep::Session, e))?;
    session
        .start_transaction()
        .read_concern(ReadConcern::majority())
        .write_concern(majority(TRANSACTION_MAJORITY_TIMEOUT))
        .selection_criteria(primary())
        .await
        .map_err(|e| (TransactionStep::Transaction, e))?;
    Ok(session)
}

/// The `_id`s of at most `limit` documents of `collection` matching `filter` (for examples in
/// error messages).
pub(crate) async fn first_ids(
    collection: &mongodb::Collection<mongodb::bson::Document>,
    filter: mongodb::bson::Document,
    limit: i64,
) -> mongodb::error::Result<Vec<Bson>> {
    use futures::TryStreamExt;
    let documents: Vec<mongodb::bson::Document> = collection
        .find(filter)
        .projection(mongodb::bson::doc! { "_id": 1 })
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    Ok(documents
        .into_iter()
        .filter_map(|d| d.get("_id").cloned())
        .collect())
}

/// `{ w: "majority", wtimeout }` for commands sent with `run_command` (index and validator
/// changes): bounded by the default majority timeout, so that a replica set that cannot reach
/// majority fails them instead of holding them for ever.
pub(crate) fn majority_document() -> mongodb::bson::Document {
    mongodb::bson::doc! { "w": "majority", "wtimeout": millis_i64(crate::migrator::defaults::MAJORITY_TIMEOUT) }
}

/// Error codes after which MongoDB's drivers retry a retryable write once, on a newly selected
/// server (an election, a primary stepping down, a network failure): the retryable writes
/// specification's list (`specifications/source/retryable-writes/retryable-writes.md`,
/// "Determining Retryable Errors").
const RETRYABLE_CODES: &[i32] = &[
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
];

/// Whether an error is one after which a command may be sent once more to the new primary.
pub(crate) fn is_retryable(error: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    if error.contains_label("RetryableWriteError") {
        return true;
    }
    match error.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => true,
        _ => crate::error::driver::code(error).is_some_and(|c| RETRYABLE_CODES.contains(&c)),
    }
}

/// Runs an idempotent command (`create`, `collMod`, `dropIndexes`, `createIndexes`) with
/// `run_command`, which the driver never retries, and sends it once more after an error that
/// an election or a network failure causes. A retry that finds its first try's work done is a
/// success: `already` lists the codes that mean so for this command (48 NamespaceExists for
/// `create`, 27 IndexNotFound for `dropIndexes`).
pub(crate) async fn run_idempotent(
    database: &mongodb::Database,
    command: mongodb::bson::Document,
    already: &[i32],
) -> mongodb::error::Result<mongodb::bson::Document> {
    match database.run_command(command.clone()).await {
        Err(e) if is_retryable(&e) => {
            tracing::debug!(error = %crate::error::Cause::of(&e).joined(), "sending the command once more after a retryable error");
            match database.run_command(command).await {
                Err(e) if crate::error::driver::code(&e).is_some_and(|c| already.contains(&c)) => {
                    Ok(mongodb::bson::Document::new())
                }
                other => other,
            }
        }
        other => other,
    }
}

/// A duration in whole milliseconds, as MongoDB's `*MS` fields take it.
pub(crate) fn millis_i64(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_messages_never_panic() {
        assert_eq!(
            show_date(DateTime::from_millis(1_764_806_400_000)),
            "2025-12-04T00:00:00Z"
        );
        // Out of RFC 3339's range (a record written by hand with an absurd date): still shown.
        assert!(!show_date(DateTime::MAX).is_empty());
    }

    #[test]
    fn numbers_from_outside_never_panic() {
        assert_eq!(read_i64(Some(&Bson::Double(f64::NAN))), None);
        assert_eq!(read_i64(Some(&Bson::Double(1e300))), None);
        assert_eq!(read_i64(Some(&Bson::Double(f64::INFINITY))), None);
        assert_eq!(read_i64(Some(&Bson::Double(42.9))), Some(42));
        assert_eq!(read_i64(Some(&Bson::Int32(-3))), Some(-3));
        assert_eq!(read_i64(Some(&Bson::Int64(i64::MAX))), Some(i64::MAX));
        assert_eq!(read_i64(Some(&Bson::String("1".into()))), None);
        assert_eq!(read_i64(Some(&Bson::Null)), None);
        assert_eq!(read_i64(None), None);
    }
}
