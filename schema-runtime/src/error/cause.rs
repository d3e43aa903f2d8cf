//! An error's source chain as text with every password removed, so that the chain can be kept
//! (in returned errors, in `last_error`, in tracing) without carrying a secret along.

use std::fmt;

/// One link of a source chain, already rendered and scrubbed of passwords. Its
/// [`source`](std::error::Error::source) is the next link.
#[derive(Clone, PartialEq, Eq)]
pub struct Cause {
    text: String,
    next: Option<Box<Cause>>,
}

impl Cause {
    /// The chain of `error`, starting with `error` itself. Driver errors are rendered as code,
    /// code name and message; every link is scrubbed.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Cause {
        let mut links: Vec<String> = Vec::new();
        let mut next = Some(error);
        while let Some(e) = next {
            let text = match e.downcast_ref::<mongodb::error::Error>() {
                Some(driver) => super::driver::describe(driver),
                None => e.to_string(),
            };
            let text = crate::redact::scrub(&text);
            // anyhow and some other error types repeat their cause in their own text; keep
            // each piece of text once.
            if links.last() != Some(&text) {
                links.push(text);
            }
            next = e.source();
        }
        Self::from_links(links).unwrap_or_else(|| Cause {
            text: String::new(),
            next: None,
        })
    }

    /// A chain of one link.
    pub fn text(text: impl Into<String>) -> Cause {
        Cause {
            text: crate::redact::scrub(&text.into()),
            next: None,
        }
    }

    fn from_links(links: Vec<String>) -> Option<Cause> {
        links.into_iter().rev().fold(None, |next, text| {
            Some(Cause {
                text,
                next: next.map(Box::new),
            })
        })
    }

    /// Every link's text, outermost first.
    pub fn links(&self) -> impl Iterator<Item = &str> {
        std::iter::successors(Some(self), |c| c.next.as_deref()).map(|c| c.text.as_str())
    }

    /// The whole chain on one line: `outer: inner: root cause`.
    pub fn joined(&self) -> String {
        let mut out = String::new();
        for link in self.links() {
            if !out.is_empty() {
                // Skip a link whose text the line already ends with (a wrapper that printed it).
                if out.ends_with(link) {
                    continue;
                }
                out.push_str(": ");
            }
            out.push_str(link);
        }
        out
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.joined())
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next.as_deref().map(|c| c as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loading mongodb://app:hunter2@db/x")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn keeps_every_link_without_the_password() {
        let error = Outer(std::io::Error::other("E11000 duplicate key"));
        let cause = Cause::of(&error);
        assert_eq!(
            cause.joined(),
            "loading mongodb://app:***@db/x: E11000 duplicate key"
        );
        let root = std::error::Error::source(&cause).unwrap();
        assert_eq!(root.to_string(), "E11000 duplicate key");
        assert!(!format!("{cause:?}").contains("hunter2"));
    }
}
