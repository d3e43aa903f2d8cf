//! Migration ids and their order.
//!
//! This crate is the one code path for ids that both the `#[migration]` macro (at compile time)
//! and the runtime (at start-up) use, so the two can never disagree about what an id is or which
//! of two ids comes first.
//!
//! An id is a non-empty string of ASCII digits. Ids are ordered by their numeric value, of any
//! length, and two spellings of the same number (`"3"` and `"0003"`) are the same id.
//!
//! ```
//! use schema_id::MigrationId;
//!
//! let a = MigrationId::parse("0003").unwrap();
//! let b = MigrationId::parse("3").unwrap();
//! let c = MigrationId::parse("10").unwrap();
//! assert_eq!(a, b);
//! assert!(a < c);
//! assert_eq!(a.number(), "3");
//! assert_eq!(a.as_str(), "0003");
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Why a string is not a migration id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// The string is empty.
    Empty,
    /// The character at byte offset `at` is not an ASCII digit.
    NotDigit {
        /// Byte offset of the offending character.
        at: usize,
        /// The offending character.
        found: char,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => f.write_str("the id is empty; write ASCII digits such as \"0001\""),
            IdError::NotDigit { at, found } => write!(
                f,
                "the id may hold only ASCII digits (0-9), but has {found:?} at position {at}; write it as digits such as \"0001\""
            ),
        }
    }
}

impl std::error::Error for IdError {}

/// Checks that `text` is a migration id and returns its number without leading zeros.
///
/// ```
/// assert_eq!(schema_id::normalize("0042"), Ok("42"));
/// assert_eq!(schema_id::normalize("000"), Ok("0"));
/// assert!(schema_id::normalize("4a").is_err());
/// ```
pub fn normalize(text: &str) -> Result<&str, IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some((at, found)) = text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(IdError::NotDigit { at, found });
    }
    let trimmed = text.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0" } else { trimmed })
}

/// Compares two normalized numbers (as returned by [`normalize`]) by numeric value.
pub fn compare_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A migration id: the text as written and its numeric value.
///
/// Equality, hashing and ordering use the numeric value only.
#[derive(Clone)]
pub struct MigrationId {
    // Boxed: errors carry ids, and a small id keeps them small.
    text: Box<str>,
    number_start: usize,
}

impl MigrationId {
    /// Parses an id written as ASCII digits.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let number = normalize(text)?;
        // `number` is a suffix of `text`, except for "000" which normalizes to a static "0".
        let number_start = if text.ends_with(number) {
            text.len() - number.len()
        } else {
            text.len() - 1
        };
        Ok(MigrationId {
            text: text.into(),
            number_start,
        })
    }

    /// Reads the id of a record written by another tool whose `_id` starts with the number and
    /// continues with `_` and a name, as the reference Python system's `"0001_events_init"` does.
    ///
    /// ```
    /// let id = schema_id::MigrationId::parse_prefixed("0001_events_init").unwrap();
    /// assert_eq!(id.number(), "1");
    /// assert!(schema_id::MigrationId::parse_prefixed("events").is_none());
    /// ```
    pub fn parse_prefixed(text: &str) -> Option<Self> {
        if let Ok(id) = Self::parse(text) {
            return Some(id);
        }
        let (digits, rest) = text.split_once('_')?;
        if rest.is_empty() {
            return None;
        }
        Self::parse(digits).ok()
    }

    /// The id as it was written, for example `"0003"`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The numeric value without leading zeros, for example `"3"`.
    pub fn number(&self) -> &str {
        &self.text[self.number_start..]
    }
}

impl PartialEq for MigrationId {
    fn eq(&self, other: &Self) -> bool {
        self.number() == other.number()
    }
}

impl Eq for MigrationId {}

/// Compares with an id written as text, by numeric value: `id == "3"` holds for `"0003"`.
/// Text that is not an id is never equal.
///
/// ```
/// let id = schema_id::MigrationId::parse("0003").unwrap();
/// assert!(id == "3" && id == "0003" && id != "4" && id != "x");
/// ```
impl PartialEq<str> for MigrationId {
    fn eq(&self, other: &str) -> bool {
        normalize(other).is_ok_and(|number| number == self.number())
    }
}

impl PartialEq<&str> for MigrationId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Hash for MigrationId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.number().hash(state);
    }
}

impl PartialOrd for MigrationId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MigrationId {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_numbers(self.number(), other.number())
    }
}

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl std::str::FromStr for MigrationId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_order_ignores_leading_zeros_and_length() {
        let mut ids: Vec<MigrationId> = ["10", "0002", "9", "100", "0", "000011"]
            .iter()
            .map(|s| MigrationId::parse(s).unwrap())
            .collect();
        ids.sort();
        let got: Vec<&str> = ids.iter().map(MigrationId::as_str).collect();
        assert_eq!(got, ["0", "0002", "9", "10", "000011", "100"]);
    }

    #[test]
    fn same_number_is_same_id() {
        assert_eq!(
            MigrationId::parse("3").unwrap(),
            MigrationId::parse("0003").unwrap()
        );
        assert_eq!(MigrationId::parse("000").unwrap().number(), "0");
    }

    #[test]
    fn longer_than_u128_still_orders() {
        let big = "9".repeat(60);
        let bigger = format!("1{}", "0".repeat(60));
        assert!(MigrationId::parse(&big).unwrap() < MigrationId::parse(&bigger).unwrap());
    }

    #[test]
    fn rejects_non_digits() {
        assert_eq!(MigrationId::parse("").unwrap_err(), IdError::Empty);
        assert_eq!(
            MigrationId::parse("12a").unwrap_err(),
            IdError::NotDigit { at: 2, found: 'a' }
        );
        assert!(MigrationId::parse("-1").is_err());
        assert!(
            MigrationId::parse("١").is_err(),
            "non-ASCII digits are refused"
        );
    }

    #[test]
    fn prefixed_legacy_ids() {
        assert_eq!(
            MigrationId::parse_prefixed("0009_event_store_extra_indexes")
                .unwrap()
                .number(),
            "9"
        );
        assert!(MigrationId::parse_prefixed("_x").is_none());
        assert!(MigrationId::parse_prefixed("12_").is_none());
    }
}
