//! Keeps passwords out of every message: any `scheme://user:password@host` loses its password,
//! and so does every exact secret the library was configured with ([`remember_secret`]), wherever
//! it appears.
//!
//! Errors, `last_error`, tracing events and the text of panics caught in migrations all go
//! through [`scrub`]. A panic hook ([`install_panic_hook`], installed by the `Migrator`) does the
//! same for panic messages printed on stderr.

use std::sync::{Once, RwLock};

/// Secrets shorter than this are not replaced as plain text (they would garble every message);
/// they are still removed from connection strings.
const MIN_SECRET_LEN: usize = 3;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Removes `secret` (as written, percent-decoded and percent-encoded) from every text this crate
/// renders from now on. [`Settings`](crate::Settings) calls it with the password of its
/// connection string; call it yourself for a client you configured another way.
pub fn remember_secret(secret: &str) {
    let mut forms = vec![
        secret.to_owned(),
        percent_decode(secret),
        percent_encode(secret),
    ];
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    if forms.is_empty() {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Replaces the password of every `scheme://user:password@` in `text`, and every remembered
/// secret, with `***`.
///
/// ```
/// use schema_runtime::scrub;
/// assert_eq!(
///     scrub("cannot reach mongodb://app:s3cret@db.example:27017/prod"),
///     "cannot reach mongodb://app:***@db.example:27017/prod"
/// );
/// // Reserved characters left unencoded in the password do not fool it.
/// assert_eq!(scrub("mongodb://app:a/b?c#d@db/prod"), "mongodb://app:***@db/prod");
/// assert_eq!(scrub("mongodb://db:27017"), "mongodb://db:27017");
/// ```
pub fn scrub(text: &str) -> String {
    let mut out = scrub_uris(text);
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

fn scrub_uris(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // A password may hold unencoded '/', '?', '#' or '@', so the credentials are taken to
        // end at the last '@' before the end of the word; the user name ends at the first ':'.
        // Where a later part of the word holds an '@' this removes more than the password,
        // never less.
        let word_end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(tail.len());
        let word = &tail[..word_end];
        match word.rfind('@') {
            Some(at_sign) => {
                let userinfo = &word[..at_sign];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&word[at_sign..]);
            }
            None => out.push_str(word),
        }
        rest = &tail[word_end..];
    }
    out.push_str(rest);
    out
}

/// The password of a connection string as written, when it has one: what lies between the first
/// `:` of the user information and the last `@` before the host list (a password may hold
/// unencoded reserved characters, which the driver then misreads).
fn written_password(uri: &str) -> Option<&str> {
    let rest = &uri[uri.find("://")? + 3..];
    let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let userinfo = &rest[..rest[..word_end].rfind('@')?];
    let password = &userinfo[userinfo.find(':')? + 1..];
    (!password.is_empty()).then_some(password)
}

/// Why connection string `uri` cannot be used, from the driver's `message`, with no part of its
/// password. A password with an unencoded `?`, `#` or `/` makes the driver cut the string in the
/// wrong place and quote pieces of the password as a host or an option
/// (`invalid server address deskadmin:Hunter2`), so when the string holds a password the
/// driver's message is left out and the password's pieces are remembered as secrets.
pub(crate) fn uri_problem(uri: &str, message: &str) -> String {
    let Some(password) = written_password(uri) else {
        return format!("{} cannot be used: {}", scrub(uri), scrub(message));
    };
    remember_secret(password);
    for piece in password.split(['?', '#', '/', '@', ':', '[', ']']) {
        remember_secret(piece);
    }
    let reserved = password.contains(['?', '#', '/', '@', ':', '[', ']', '%']);
    let hint = if reserved {
        "its password holds reserved characters (: / ? # [ ] @ %), which must be percent-encoded (`?` as %3F, `#` as %23, `/` as %2F, `@` as %40)"
    } else {
        "check its form: mongodb://user:password@host:port/database?options"
    };
    format!(
        "{} cannot be parsed: {hint} (the driver's own message is left out, as it may quote part of the password)",
        scrub_uris(uri)
    )
}

/// Installs (once per process) a panic hook that prints a panic whose message holds a password
/// with the password removed; other panics go to the hook that was there before.
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = panic_text(info.payload());
            let scrubbed = message.as_deref().map(scrub);
            match (message, scrubbed) {
                (Some(message), Some(scrubbed)) if message != scrubbed => {
                    let thread = std::thread::current();
                    let location = info
                        .location()
                        .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                        .unwrap_or_default();
                    eprintln!(
                        "\nthread '{}' panicked{location}:\n{scrubbed}",
                        thread.name().unwrap_or("<unnamed>")
                    );
                }
                _ => previous(info),
            }
        }));
    });
}

/// The text of a panic's payload, if it has one.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Some((*s).to_owned())
    } else {
        payload.downcast_ref::<String>().cloned()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(text.get(i + 1..i + 3).unwrap_or("zz"), 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_connection_string_that_cannot_be_parsed_shows_no_part_of_its_password() {
        for (uri, pieces) in [
            (
                "mongodb://deskadmin:Hunter2?TopSecretTail99@host/app",
                &["Hunter2", "TopSecretTail99"][..],
            ),
            (
                "mongodb://u:p@ss/w?rd#1@host/app",
                &["rd#1", "w?rd", "ss/w"][..],
            ),
        ] {
            let message = super::uri_problem(
                uri,
                "invalid server address deskadmin:Hunter2: got Hunter2 rd#1",
            );
            for piece in pieces {
                assert!(!message.contains(piece), "{piece} in {message}");
            }
            assert!(message.contains("percent-encoded"), "{message}");
        }
        let plain = super::uri_problem("mongodb://db:27017/?bogus=1", "unknown option bogus");
        assert!(plain.contains("unknown option bogus"), "{plain}");
    }

    use super::*;

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
            ("mongodb://u:pa/ss@h/db", "mongodb://u:***@h/db"),
            ("mongodb://u:pa?ss@h/db", "mongodb://u:***@h/db"),
            ("mongodb://u:pa#ss@h/db", "mongodb://u:***@h/db"),
            ("mongodb://u:p@ss@h/db", "mongodb://u:***@h/db"),
            ("(\"mongodb://u:p@h\")", "(\"mongodb://u:***@h\")"),
        ] {
            let scrubbed = scrub(input);
            assert_eq!(scrubbed, expected, "{input}");
        }
    }

    #[test]
    fn remembered_secrets_are_removed_in_every_form() {
        remember_secret("Zq/9#x@y");
        assert_eq!(scrub("auth with Zq/9#x@y failed"), "auth with *** failed");
        assert_eq!(scrub("uri pw Zq%2F9%23x%40y"), "uri pw ***");
        remember_secret("ab");
        assert_eq!(scrub("a b ab"), "a b ab", "too short to replace as text");
    }

    #[test]
    fn percent_forms() {
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }
}
