//! Shared helpers of the fuzz targets: reference models that the targets
//! compare the real code against.
#![forbid(unsafe_code)]

/// Wildcard matching by dynamic programming over (pattern, text) prefixes:
/// `*` any run of characters, `?` one character. Quadratic, obviously right.
pub fn glob_model(pattern: &[char], text: &[char]) -> bool {
    // row[j]: does pattern[..i] match text[..j]?
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for &p in pattern {
        let mut next = vec![false; text.len() + 1];
        next[0] = p == '*' && row[0];
        for j in 1..=text.len() {
            next[j] = match p {
                '*' => row[j] || next[j - 1],
                '?' => row[j - 1],
                c => row[j - 1] && text[j - 1] == c,
            };
        }
        row = next;
    }
    row[text.len()]
}

/// The case folding of `wildcard_match(.., false)`: per character.
pub fn fold(s: &str, case_sensitive: bool) -> Vec<char> {
    if case_sensitive {
        s.chars().collect()
    } else {
        s.chars().flat_map(char::to_lowercase).collect()
    }
}

/// Leftmost-longest, non-overlapping replacement of `patterns` by `mask`:
/// at each position the longest pattern that starts there is replaced,
/// else the byte is copied.
pub fn replace_model(text: &[u8], patterns: &[Vec<u8>], mask: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let best = patterns
            .iter()
            .filter(|p| !p.is_empty() && text[i..].starts_with(p))
            .map(Vec::len)
            .max();
        match best {
            Some(n) => {
                out.extend_from_slice(mask);
                i += n;
            }
            None => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    out
}

/// Go's `os.Expand` (GitLab Runner's expansion), written from Go's
/// documentation and source as a character-level state machine.
pub fn expand_model(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let special =
        |c: u8| matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || c.is_ascii_digit();
    let map = |name: &str| -> String {
        match name {
            "$" => "$".into(),
            "*" | "#" | "@" | "!" | "?" => String::new(),
            n if n.len() == 1 && n.as_bytes()[0].is_ascii_digit() => String::new(),
            n => lookup(n).unwrap_or_default(),
        }
    };
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let rest = &b[i + 1..];
        if rest[0] == b'{' {
            if rest.len() > 2 && special(rest[1]) && rest[2] == b'}' {
                out.extend_from_slice(map(&text[i + 2..i + 3]).as_bytes());
                i += 4;
            } else if let Some(close) = rest.iter().position(|&c| c == b'}') {
                if close > 1 {
                    out.extend_from_slice(map(&text[i + 2..i + 1 + close]).as_bytes());
                }
                i += close + 2;
            } else {
                // unterminated "${": both characters are dropped
                i += 2;
            }
        } else if special(rest[0]) {
            out.extend_from_slice(map(&text[i + 1..i + 2]).as_bytes());
            i += 2;
        } else {
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if n == 0 {
                out.push(b'$');
                i += 1;
            } else {
                out.extend_from_slice(map(&text[i + 1..i + 1 + n]).as_bytes());
                i += 1 + n;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| panic!("expand model produced non-UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_model_basics() {
        let m = |p: &str, t: &str| glob_model(&fold(p, true), &fold(t, true));
        assert!(m("*", ""));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxx"));
        assert!(!m("", "a"));
    }

    #[test]
    fn replace_model_is_leftmost_longest() {
        let pats = vec![b"ab".to_vec(), b"abc".to_vec(), b"bcd".to_vec()];
        assert_eq!(replace_model(b"xabcd", &pats, b"#"), b"x#d");
    }

    #[test]
    fn expand_model_follows_go() {
        let look = |n: &str| (n == "A").then(|| "1".to_string());
        assert_eq!(
            expand_model("$A ${A} $$ $1 ${} ${ $ x$", &look),
            "1 1 $    $ x$"
        );
    }
}
