//! Wildcard matching for sub-claim values: `*` matches any run of
//! characters (including none), `?` exactly one character. Linear-time
//! two-pointer algorithm, no recursion, so hostile patterns cannot blow up.

/// Does `text` match `pattern`? With `case_sensitive == false` both sides are
/// compared with Unicode simple lowercase folding.
pub fn wildcard_match(pattern: &str, text: &str, case_sensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_sensitive {
            s.chars().collect()
        } else {
            s.chars().flat_map(char::to_lowercase).collect()
        }
    };
    let p = fold(pattern);
    let t = fold(text);
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut mark = 0usize;
    while ti < t.len() {
        // `*` first: a `*` in the text must not consume the pattern's `*`
        // as a literal (that lost the backtrack point; found by fuzzing).
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::wildcard_match as m;
    use proptest::prelude::*;

    #[test]
    fn basics() {
        assert!(m("main", "main", true));
        assert!(!m("main", "Main", true));
        assert!(m("main", "Main", false));
        assert!(m("group/*", "group/app", true));
        assert!(m("*", "", true));
        assert!(m("a?c", "abc", true));
        assert!(!m("a?c", "ac", true));
        assert!(m("refs/heads/*", "refs/heads/feature/x", true));
        assert!(!m("refs/heads/*", "refs/tags/v1", true));
        assert!(m("*a*b*", "xxaxxbxx", true));
        assert!(!m("*a*b", "xxaxxbxx", true));
    }

    #[test]
    fn a_star_in_the_text_does_not_use_up_the_patterns_star() {
        // Was false: the pattern's `*` matched the text's `*` as a literal.
        assert!(m("*", "*ua", true));
        assert!(m("group/*", "group/*x", true));
        assert!(m("a*c", "a*bc", false));
        assert!(m("*?", "*", true));
    }

    /// Reference model: a straightforward recursive matcher.
    fn reference(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some('?'), Some(_)) => reference(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn agrees_with_reference(p in "[ab*?]{0,8}", t in "[ab*?]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(m(&p, &t, true), reference(&pc, &tc));
        }

        #[test]
        fn case_insensitive_is_case_blind(p in "[aAbB*?]{0,8}", t in "[aAbB]{0,10}") {
            prop_assert_eq!(m(&p, &t, false), m(&p.to_lowercase(), &t.to_lowercase(), true));
        }
    }
}
