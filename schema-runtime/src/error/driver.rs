//! What a driver error says, for people: the server's code, code name and message (never the raw
//! reply), and the class of the failure, which decides the advice.

use mongodb::error::{Error as DriverError, ErrorKind, WriteFailure};

/// MongoDB error codes this crate treats specially. Names and numbers as in MongoDB's
/// `error_codes.yml` (<https://www.mongodb.com/docs/manual/reference/error-codes/>).
pub(crate) mod codes {
    pub(crate) const BAD_VALUE: i32 = 2;
    pub(crate) const FAILED_TO_PARSE: i32 = 9;
    pub(crate) const UNAUTHORIZED: i32 = 13;
    pub(crate) const TYPE_MISMATCH: i32 = 14;
    pub(crate) const AUTHENTICATION_FAILED: i32 = 18;
    pub(crate) const INDEX_NOT_FOUND: i32 = 27;
    pub(crate) const NAMESPACE_EXISTS: i32 = 48;
    pub(crate) const INVALID_OPTIONS: i32 = 72;
    pub(crate) const INDEX_OPTIONS_CONFLICT: i32 = 85;
    pub(crate) const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
    pub(crate) const WRITE_CONCERN_FAILED: i32 = 64;
    pub(crate) const UNSATISFIABLE_WRITE_CONCERN: i32 = 100;
    pub(crate) const WRITE_CONFLICT: i32 = 112;
    pub(crate) const CONFLICTING_OPERATION_IN_PROGRESS: i32 = 117;
    pub(crate) const DOCUMENT_VALIDATION_FAILURE: i32 = 121;
    pub(crate) const NO_SUCH_TRANSACTION: i32 = 251;
    pub(crate) const DUPLICATE_KEY: i32 = 11000;
}

/// The label MongoDB puts on an error after which the whole transaction may be retried.
pub(crate) const TRANSIENT_TRANSACTION_ERROR: &str = "TransientTransactionError";
/// The label MongoDB puts on a commit whose outcome is unknown: the commit may be retried.
pub(crate) const UNKNOWN_TRANSACTION_COMMIT_RESULT: &str = "UnknownTransactionCommitResult";

/// What kind of failure a driver error is, for the advice that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// No server could be reached: network, DNS, server selection.
    Unreachable,
    /// The server refused the credentials.
    Authentication,
    /// The user may not run this command.
    Authorization,
    /// Another operation touched the same data at the same time; trying again can succeed.
    Conflict,
    /// The replica set did not confirm a majority write in time (`wtimeout`: code 64
    /// WriteConcernFailed), or cannot (code 100 UnsatisfiableWriteConcern): a member is down
    /// or lagging, as in a primary-secondary-arbiter set whose secondary is down.
    NoMajority,
    /// The server refused the request or the data as invalid.
    InvalidInput,
    /// Anything else.
    Other,
}

impl ErrorClass {
    /// Classifies a driver error.
    pub fn of(error: &DriverError) -> Self {
        if error.contains_label(TRANSIENT_TRANSACTION_ERROR) {
            return ErrorClass::Conflict;
        }
        match error.kind.as_ref() {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. } => ErrorClass::Unreachable,
            ErrorKind::Authentication { .. } => ErrorClass::Authentication,
            ErrorKind::InvalidArgument { .. } => ErrorClass::InvalidInput,
            _ => match code(error) {
                Some(code) => Self::of_code(code),
                None => ErrorClass::Other,
            },
        }
    }

    /// Classifies a server error code.
    pub fn of_code(code: i32) -> Self {
        use codes::*;
        match code {
            AUTHENTICATION_FAILED => ErrorClass::Authentication,
            UNAUTHORIZED => ErrorClass::Authorization,
            WRITE_CONFLICT | CONFLICTING_OPERATION_IN_PROGRESS | NO_SUCH_TRANSACTION => {
                ErrorClass::Conflict
            }
            WRITE_CONCERN_FAILED | UNSATISFIABLE_WRITE_CONCERN => ErrorClass::NoMajority,
            BAD_VALUE
            | FAILED_TO_PARSE
            | TYPE_MISMATCH
            | INVALID_OPTIONS
            | INDEX_OPTIONS_CONFLICT
            | INDEX_KEY_SPECS_CONFLICT
            | DOCUMENT_VALIDATION_FAILURE
            | DUPLICATE_KEY => ErrorClass::InvalidInput,
            _ => ErrorClass::Other,
        }
    }

    /// What the user should do about a failure of this class.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorClass::Unreachable => {
                "check that the server in MONGODB_URI is running and reachable from this host"
            }
            ErrorClass::Authentication => {
                "check the user name, password and authSource in the connection string"
            }
            ErrorClass::Authorization => {
                "grant the user the roles this needs (readWrite on the database; dbAdmin for indexes, validators and collMod)"
            }
            ErrorClass::Conflict => {
                "another operation changed the same data at the same time; start again, it is safe to retry"
            }
            ErrorClass::NoMajority => {
                "a majority of the replica set's data-bearing members did not confirm the write in time (SCHEMA_MAJORITY_TIMEOUT_SECS): bring the members that are down or lagging back (rs.status() shows them; a primary-secondary-arbiter set cannot reach majority with its secondary down), then start again"
            }
            ErrorClass::InvalidInput => {
                "the server refused the request or the data as invalid: correct the migration or the documents it works on"
            }
            ErrorClass::Other => "see the server's message above",
        }
    }
}

/// The server's error code, if the error carries one.
pub(crate) fn code(error: &DriverError) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .and_then(|errors| errors.first())
            .map(|w| w.code)
            .or_else(|| e.write_concern_error.as_ref().map(|w| w.code)),
        _ => None,
    }
}

/// One line for a driver error: `code 112 (WriteConflict): <message>` for server errors, the
/// driver's own text otherwise, with its labels.
pub(crate) fn describe(error: &DriverError) -> String {
    fn server(code: i32, name: &str, message: &str) -> String {
        if name.is_empty() {
            format!("code {code}: {message}")
        } else {
            format!("code {code} ({name}): {message}")
        }
    }
    let mut text = match error.kind.as_ref() {
        ErrorKind::Command(c) => server(c.code, &c.code_name, &c.message),
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            server(w.code, w.code_name.as_deref().unwrap_or(""), &w.message)
        }
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => format!(
            "write concern not satisfied: {}",
            server(w.code, &w.code_name, &w.message)
        ),
        ErrorKind::InsertMany(e) => match (&e.write_errors, &e.write_concern_error) {
            (Some(errors), _) if !errors.is_empty() => format!(
                "{} of the documents were refused, the first (index {}): {}",
                errors.len(),
                errors[0].index,
                server(
                    errors[0].code,
                    errors[0].code_name.as_deref().unwrap_or(""),
                    &errors[0].message
                )
            ),
            (_, Some(w)) => format!(
                "write concern not satisfied: {}",
                server(w.code, &w.code_name, &w.message)
            ),
            _ => "insert_many failed".to_owned(),
        },
        ErrorKind::Authentication { message, .. } => authentication(message),
        ErrorKind::ServerSelection { message, .. } => server_selection(message),
        _ => error.to_string(),
    };
    // The labels of a server's reply say something (TransientTransactionError,
    // UnknownTransactionCommitResult); on a connection error they are the driver's retry
    // bookkeeping (`SystemOverloadedError, RetryableError` on a refused connection) and would
    // only mislead.
    let from_server = matches!(
        error.kind.as_ref(),
        ErrorKind::Command(_) | ErrorKind::Write(_) | ErrorKind::InsertMany(_)
    );
    let labels: Vec<&String> = error.labels().iter().collect();
    if from_server && !labels.is_empty() {
        let labels: Vec<&str> = labels.iter().map(|l| l.as_str()).collect();
        text.push_str(&format!(" [{}]", labels.join(", ")));
    }
    text
}

/// The value after `field: ` in the driver's debug rendering of a server error, quoted or not.
fn debug_field<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    let start = text.find(&format!("{field}: "))? + field.len() + 2;
    let rest = &text[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.find('"').map(|end| &quoted[..end]);
    }
    let end = rest.find([',', ' ', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The driver's authentication failure (`SCRAM failure: ... CommandError { code: 18, ... }`)
/// as the server's code, code name and message.
fn authentication(message: &str) -> String {
    let mechanism = message.split(" failure").next().unwrap_or("authentication");
    match (
        debug_field(message, "code").and_then(|c| c.parse::<i32>().ok()),
        debug_field(message, "code_name"),
        debug_field(message, "message"),
    ) {
        (Some(code), name, Some(text)) => format!(
            "authentication failed ({mechanism}): code {code}{}: {text}",
            name.map(|n| format!(" ({n})")).unwrap_or_default()
        ),
        _ => format!("authentication failed: {message}"),
    }
}

/// The driver's server selection failure (`Server selection timeout: No available servers.
/// Topology: { ..., Servers: [ { Address: a, Type: t, Error: Kind: ..., labels: {} } ] }`) as
/// what each server ran into.
fn server_selection(message: &str) -> String {
    let headline = message.split(". Topology:").next().unwrap_or(message);
    let mut servers = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find("Address: ") {
        rest = &rest[at + "Address: ".len()..];
        let address = rest.split([',', ' ']).next().unwrap_or("?").to_owned();
        let server = &rest[..rest.find("Address: ").unwrap_or(rest.len())];
        let error = server.find("Error: ").and_then(|e| {
            let after = &server[e + "Error: ".len()..];
            let end = after.find(", labels:").unwrap_or(after.len());
            let text = after[..end].trim_start_matches("Kind: ").trim();
            (!text.is_empty()).then(|| text.to_owned())
        });
        servers.push(match error {
            Some(error) => format!("{address}: {error}"),
            None => format!("{address}: no answer"),
        });
    }
    if servers.is_empty() {
        headline.to_owned()
    } else {
        format!("{headline} ({})", servers.join("; "))
    }
}

/// Whether the error means the server could not be reached.
pub(crate) fn is_unreachable(error: &DriverError) -> bool {
    ErrorClass::of(error) == ErrorClass::Unreachable
}

/// Whether the error is a duplicate key (E11000).
/// Whether the server applied the write but could not confirm it with the write concern asked
/// for (a `writeConcernError`).
pub(crate) fn is_write_concern_error(error: &DriverError) -> bool {
    matches!(
        error.kind.as_ref(),
        ErrorKind::Write(WriteFailure::WriteConcernError(_))
    )
}

pub(crate) fn is_duplicate_key(error: &DriverError) -> bool {
    code(error) == Some(codes::DUPLICATE_KEY) || error.to_string().contains("E11000")
}

/// Whether `error`, or any link of its source chain, is a driver error (bare, or inside this
/// crate's own error) that carries `label`.
pub(crate) fn has_label(error: &(dyn std::error::Error + 'static), label: &str) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        e.downcast_ref::<DriverError>()
            .or_else(|| {
                e.downcast_ref::<crate::Error>()
                    .and_then(crate::Error::driver_error)
            })
            .is_some_and(|driver| driver.contains_label(label))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_and_server_selection_failures_read_like_server_errors() {
        let auth = "SCRAM failure: Command failed: CommandError { code: 18, code_name: \"AuthenticationFailed\", message: \"Authentication failed.\", topology_version: None }";
        assert_eq!(
            authentication(auth),
            "authentication failed (SCRAM): code 18 (AuthenticationFailed): Authentication failed."
        );
        assert_eq!(
            authentication("SCRAM failure: no password supplied"),
            "authentication failed: SCRAM failure: no password supplied"
        );
        let selection = "Server selection timeout: No available servers. Topology: { Type: Unknown, Servers: [ { Address: 127.0.0.1:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), labels: {} } ] }";
        assert_eq!(
            server_selection(selection),
            "Server selection timeout: No available servers (127.0.0.1:1: I/O error: Connection refused (os error 111))"
        );
        let two = "Server selection timeout: No available servers. Topology: { Type: ReplicaSetNoPrimary, Servers: [ { Address: a:1, Type: Unknown }, { Address: b:2, Type: Unknown, Error: Kind: I/O error: timed out, labels: {} } ] }";
        assert_eq!(
            server_selection(two),
            "Server selection timeout: No available servers (a:1: no answer; b:2: I/O error: timed out)"
        );
    }

    #[test]
    fn codes_are_classified_as_mongodb_documents_them() {
        assert_eq!(ErrorClass::of_code(112), ErrorClass::Conflict);
        assert_eq!(ErrorClass::of_code(13), ErrorClass::Authorization);
        assert_eq!(ErrorClass::of_code(18), ErrorClass::Authentication);
        assert_eq!(ErrorClass::of_code(11000), ErrorClass::InvalidInput);
        assert_eq!(ErrorClass::of_code(121), ErrorClass::InvalidInput);
        assert_eq!(ErrorClass::of_code(2), ErrorClass::InvalidInput);
        assert_eq!(ErrorClass::of_code(99999), ErrorClass::Other);
        for class in [
            ErrorClass::Unreachable,
            ErrorClass::Authentication,
            ErrorClass::Authorization,
            ErrorClass::Conflict,
            ErrorClass::InvalidInput,
        ] {
            assert!(!class.advice().contains("reachable") || class == ErrorClass::Unreachable);
        }
    }
}
