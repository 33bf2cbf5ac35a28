//! `$VARIABLE` expansion as GitLab Runner does it: Go's `os.Expand` with
//! the runner's lookup (`JobVariables.Get`).
//!
//! - `$NAME` and `${NAME}` are replaced by the variable's value; a name is
//!   `[A-Za-z0-9_]+` after `$`, anything up to `}` inside braces.
//! - An unknown name becomes the empty string.
//! - `$$` becomes `$`.
//! - The shell's special parameters `$*`, `$#`, `$@`, `$!`, `$?` and
//!   `$0`…`$9` become the empty string (the runner never looks them up).
//! - `$` followed by anything else, or at the end, stays as is; `${}` and an
//!   unterminated `${` are dropped (Go's "bad syntax" rule).
//!
//! Unlike the runner, no variable here is a *file* variable, so nothing
//! expands to a temporary file path.

use std::collections::BTreeMap;
use std::fmt;

/// A set of CI/CD variables: name → value. Later insertions replace
/// earlier ones, as the runner's "last definition wins" lookup does.
///
/// `Debug` prints the names only: values are often credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Variables {
    map: BTreeMap<String, String>,
}

impl Variables {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current process environment. Variables whose name or value is
    /// not UTF-8 are skipped.
    pub fn from_env() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Sets `name`, returning the value it replaces.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.map.insert(name.into(), value.into())
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.map.remove(name)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Names and values, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when `name` is set to something other than whitespace (Ruby's
    /// `present?`, which GitLab's provider check uses).
    pub fn is_present(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.trim().is_empty())
    }

    /// Expands `$NAME`, `${NAME}` and `$$` in `text` against these variables.
    pub fn expand(&self, text: &str) -> String {
        expand(text, |name| self.get(name))
    }
}

impl fmt::Debug for Variables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Variables {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut vars = Variables::new();
        vars.extend(iter);
        vars
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Variables {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

/// Go's `os.Expand(text, mapping)` with GitLab Runner's mapping: `lookup`
/// answers ordinary names; `$`, the shell's special parameters and unknown
/// names are handled as described in the module documentation.
pub fn expand<'a>(text: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mapping = |name: &str| -> String {
        match name {
            "$" => "$".to_owned(),
            "*" | "#" | "@" | "!" | "?" | "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8"
            | "9" => String::new(),
            _ => lookup(name).unwrap_or_default().to_owned(),
        }
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // `start` is the beginning of the text not yet copied.
    let mut start = 0;
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&text[start..j]);
            let (name, width) = shell_name(&text[j + 1..]);
            match name {
                // Bad syntax (`${}`, unterminated `${`): the characters are eaten.
                None if width > 0 => {}
                // `$` not followed by a name stays.
                None => out.push('$'),
                Some(name) => out.push_str(&mapping(name)),
            }
            j += width;
            start = j + 1;
        }
        j += 1;
    }
    out.push_str(&text[start.min(text.len())..]);
    out
}

/// The names of the variables `text` refers to (`$NAME`, `${NAME}`), in
/// order, as [`expand`] would look them up (`$$` and the shell's special
/// parameters are not variables).
pub fn referenced_names(text: &str) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::new());
    expand(text, |name| {
        names.borrow_mut().push(name.to_owned());
        None
    });
    names.into_inner()
}

fn is_shell_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

fn is_alnum(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName`: the name at the start of `s` (which follows a `$`)
/// and how many bytes it takes; `None` with a width for bad syntax, `None`
/// with 0 when no name follows.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        for i in 1..b.len() {
            if b[i] == b'}' {
                if i == 1 {
                    return (None, 2); // "${}"
                }
                return (Some(&s[1..i]), i + 1);
            }
        }
        return (None, 1); // "${" without "}"
    }
    if is_shell_special(b[0]) {
        return (Some(&s[0..1]), 1);
    }
    let len = b.iter().take_while(|c| is_alnum(**c)).count();
    if len == 0 {
        (None, 0)
    } else {
        (Some(&s[..len]), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        [
            ("A", "alpha"),
            ("B_2", "beta"),
            ("EMPTY", ""),
            ("X Y", "spaced"),
            ("-", "dash"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn names_braces_and_unknowns() {
        let v = vars();
        assert_eq!(v.expand("$A"), "alpha");
        assert_eq!(v.expand("${A}"), "alpha");
        assert_eq!(v.expand("x${A}y"), "xalphay");
        assert_eq!(v.expand("$A/$B_2"), "alpha/beta");
        assert_eq!(v.expand("$Ax"), "");
        assert_eq!(v.expand("$UNKNOWN"), "");
        assert_eq!(v.expand("a${UNKNOWN}b"), "ab");
        assert_eq!(v.expand("$EMPTY"), "");
        assert_eq!(v.expand("${X Y}"), "spaced");
    }

    #[test]
    fn dollar_dollar_is_a_dollar() {
        let v = vars();
        assert_eq!(v.expand("$$"), "$");
        assert_eq!(v.expand("$$A"), "$A");
        assert_eq!(v.expand("a$$$A"), "a$alpha");
        assert_eq!(v.expand("${$}"), "$");
    }

    #[test]
    fn special_parameters_and_stray_dollars() {
        let v = vars();
        assert_eq!(v.expand("$1x"), "x");
        assert_eq!(v.expand("$*$#$@$!$?"), "");
        assert_eq!(v.expand("$-"), "dash");
        assert_eq!(v.expand("a$"), "a$");
        assert_eq!(v.expand("$ a"), "$ a");
        assert_eq!(v.expand("$/x"), "$/x");
        assert_eq!(v.expand("50%$"), "50%$");
    }

    #[test]
    fn bad_brace_syntax_is_eaten() {
        let v = vars();
        assert_eq!(v.expand("a${}b"), "ab");
        assert_eq!(v.expand("a${A"), "aA");
        assert_eq!(v.expand("${"), "");
    }

    #[test]
    fn no_dollar_is_unchanged_and_utf8_survives() {
        let v = vars();
        assert_eq!(v.expand("plain text"), "plain text");
        assert_eq!(v.expand("é$A→${B_2}ü"), "éalpha→betaü");
        assert_eq!(v.expand(""), "");
    }

    #[test]
    fn referenced_names_are_the_looked_up_ones() {
        assert_eq!(
            referenced_names("a $A ${B_2}/$$C ${X Y} $1 $* $"),
            ["A", "B_2", "X Y"]
        );
        assert!(referenced_names("no refs, $$").is_empty());
    }

    #[test]
    fn expansion_is_a_single_pass() {
        let v: Variables = [("A", "$B"), ("B", "b")].into_iter().collect();
        assert_eq!(v.expand("$A"), "$B");
    }

    #[test]
    fn debug_hides_values() {
        let v: Variables = [("TOKEN", "s3cr3t")].into_iter().collect();
        let shown = format!("{v:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn presence_ignores_whitespace() {
        let v: Variables = [("A", " \t"), ("B", "x")].into_iter().collect();
        assert!(!v.is_present("A"));
        assert!(v.is_present("B"));
        assert!(!v.is_present("C"));
    }
}
