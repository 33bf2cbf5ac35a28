//! Object names. Items, roles and auth methods live in one virtual tree of
//! absolute, slash-separated names (`/app/db/password`). Folders are virtual.

use crate::CoreError;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 512;
/// Longest accepted single path segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 128;

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | '=' | ':' | ',' | ' ')
}

/// Normalise and validate an object name.
///
/// A leading `/` is added when missing (the Akeyless CLI accepts `app/db`
/// for `/app/db`), repeated slashes are collapsed and a trailing slash is
/// removed. Segments `.` and `..` are refused rather than resolved, so a
/// name can never walk out of the folder it appears to be in.
pub fn normalize_name(raw: &str) -> Result<String, CoreError> {
    let bad = |reason| CoreError::InvalidName {
        name: truncate_for_message(raw),
        reason,
    };
    if raw.trim().is_empty() {
        return Err(bad("a name is required"));
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(bad("longer than 512 bytes"));
    }
    let mut out = String::with_capacity(raw.len() + 1);
    for seg in raw.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." {
            return Err(bad("'.' and '..' segments are not allowed"));
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return Err(bad("a path segment is longer than 128 bytes"));
        }
        if seg.starts_with(' ') || seg.ends_with(' ') {
            return Err(bad("a path segment may not start or end with a space"));
        }
        if !seg.chars().all(allowed_char) {
            return Err(bad(
                "use letters, digits, spaces and - _ . @ + = : , between slashes",
            ));
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        return Err(bad("a name needs at least one segment"));
    }
    Ok(out)
}

/// Normalise a folder path used for listing: `/`, `/app`, `app/` all work.
/// Returns the folder with a trailing slash (`/` for the root).
pub fn normalize_folder(raw: &str) -> Result<String, CoreError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '/') {
        return Ok("/".to_owned());
    }
    let name = normalize_name(trimmed).map_err(|_| CoreError::InvalidPath {
        path: truncate_for_message(raw),
        reason: "not a valid folder path",
    })?;
    Ok(format!("{name}/"))
}

/// Normalise a rule path: an exact name, or a prefix ending in `*`
/// (`/app/*`, `/app*`, `/*`). `*` may appear only at the end.
pub fn normalize_rule_path(raw: &str) -> Result<String, CoreError> {
    let bad = |reason| CoreError::InvalidPath {
        path: truncate_for_message(raw),
        reason,
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(bad("a path is required"));
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(bad("longer than 512 bytes"));
    }
    if let Some(prefix) = raw.strip_suffix('*') {
        if prefix.contains('*') {
            return Err(bad("'*' is only allowed at the end of a path"));
        }
        if prefix.is_empty() || prefix.chars().all(|c| c == '/') {
            return Ok("/*".to_owned());
        }
        let keep_slash = prefix.ends_with('/');
        let name = normalize_name(prefix).map_err(|_| bad("not a valid path before '*'"))?;
        return Ok(if keep_slash {
            format!("{name}/*")
        } else {
            format!("{name}*")
        });
    }
    if raw.contains('*') {
        return Err(bad("'*' is only allowed at the end of a path"));
    }
    normalize_name(raw).map_err(|_| bad("not a valid object name"))
}

/// Cut long user input before echoing it in an error message.
pub fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_name("app/db").unwrap(), "/app/db");
        assert_eq!(normalize_name("//app///db/").unwrap(), "/app/db");
        assert_eq!(normalize_name("/MyJWTAuth").unwrap(), "/MyJWTAuth");
    }

    #[test]
    fn traversal_and_odd_characters_are_refused() {
        for bad in [
            "/app/../etc",
            "/./x",
            "",
            "/",
            "/a\0b",
            "/a\nb",
            "/a*",
            "/a/ b",
            "/é",
        ] {
            assert!(normalize_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_name(&"a".repeat(600)).is_err());
        assert!(normalize_name(&format!("/{}", "a".repeat(129))).is_err());
    }

    #[test]
    fn rule_paths() {
        assert_eq!(normalize_rule_path("/app/*").unwrap(), "/app/*");
        assert_eq!(normalize_rule_path("app*").unwrap(), "/app*");
        assert_eq!(normalize_rule_path("*").unwrap(), "/*");
        assert_eq!(normalize_rule_path("/*").unwrap(), "/*");
        assert_eq!(normalize_rule_path("/app/x").unwrap(), "/app/x");
        assert!(normalize_rule_path("/a*/b").is_err());
        assert!(normalize_rule_path("/a/**").is_err());
    }

    #[test]
    fn folders() {
        assert_eq!(normalize_folder("").unwrap(), "/");
        assert_eq!(normalize_folder("/").unwrap(), "/");
        assert_eq!(normalize_folder("app").unwrap(), "/app/");
        assert_eq!(normalize_folder("/app/").unwrap(), "/app/");
    }
}
