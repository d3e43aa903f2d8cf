//! Keeps passwords out of messages: any `scheme://user:password@host` in a text loses its password.

/// Replaces the password of every `scheme://user:password@` in `text` with `***`.
///
/// ```
/// use schema_runtime::redact::scrub;
/// assert_eq!(
///     scrub("cannot reach mongodb://app:s3cret@db.example:27017/prod"),
///     "cannot reach mongodb://app:***@db.example:27017/prod"
/// );
/// assert_eq!(scrub("mongodb://db:27017"), "mongodb://db:27017");
/// ```
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; credentials end at its last '@'.
        let authority_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn passwords_never_survive() {
        for (input, expected) in [
            ("mongodb://u:p@h", "mongodb://u:***@h"),
            (
                "mongodb+srv://u:p%40ss@cluster0.x.net/?w=1",
                "mongodb+srv://u:***@cluster0.x.net/?w=1",
            ),
            (
                "a mongodb://u:p@h1,h2/db and postgres://x:y@z",
                "a mongodb://u:***@h1,h2/db and postgres://x:***@z",
            ),
            ("mongodb://u@h", "mongodb://u@h"),
            ("no uri here", "no uri here"),
        ] {
            assert_eq!(scrub(input), expected);
        }
    }
}
