//! The policy glob, sub-claims matcher and path rules (coffer-core), each
//! against a reference model:
//! - `glob::wildcard_match` against a dynamic-programming matcher;
//! - `subclaims::parse_sub_claims` (arbitrary JSON or text) and
//!   `match_sub_claims` against "every key present, any value matches any
//!   pattern", including which claim is reported;
//! - `policy::{effective, allows, may_see_under}` against a per-rule model
//!   on bytes (deny wins, union otherwise, order irrelevant);
//! - `name::normalize_{name,rule_path,folder}`: the documented shape, and
//!   normalising twice changes nothing.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use coffer_core::glob::wildcard_match;
use coffer_core::name::{normalize_folder, normalize_name, normalize_rule_path};
use coffer_core::policy::{Caps, Rule, RuleType, allows, effective, may_see_under};
use coffer_core::subclaims::{
    ClaimMismatch, Claims, SubClaims, flatten_claims, match_sub_claims, parse_sub_claims,
};
use coffer_fuzz::{fold, glob_model};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input {
    pattern: String,
    text: String,
    case_sensitive: bool,
    /// Sub-claims as sent (JSON, or `key=v1,v2;…` text when not JSON).
    sub_claims: String,
    /// Claims: JSON object (flattened), else these pairs.
    claims_json: String,
    claims: Vec<(String, Vec<String>)>,
    rules: Vec<(u8, String, u8)>,
    names: Vec<String>,
    need: u8,
    folder: String,
}

fn cap(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn check_glob(p: &str, t: &str, cs: bool) -> bool {
    let got = wildcard_match(p, t, cs);
    assert_eq!(
        got,
        glob_model(&fold(p, cs), &fold(t, cs)),
        "wildcard_match({p:?}, {t:?}, {cs})"
    );
    got
}

fuzz_target!(|input: Input| {
    let cs = input.case_sensitive;
    // Bounded sizes keep each run fast; the matcher is quadratic by design.
    let p = cap(&input.pattern, 256);
    let t = cap(&input.text, 256);
    check_glob(p, t, cs);
    check_glob(p, t, !cs);
    if cs {
        // A pattern without wildcards matches exactly itself.
        if !p.contains(['*', '?']) {
            assert_eq!(wildcard_match(p, t, true), p == t);
        }
        assert!(
            wildcard_match(t, t, true),
            "a text matches itself as a pattern"
        );
    }

    sub_claims(&input);
    policy(&input);
    names(&input);
});

fn sub_claims(input: &Input) {
    let value = match serde_json::from_str::<Value>(&input.sub_claims) {
        Ok(v) => v,
        Err(_) => Value::String(input.sub_claims.clone()),
    };
    let Ok(sc) = parse_sub_claims(&value) else {
        return;
    };
    for (k, vals) in &sc {
        assert!(
            !k.is_empty() && k.len() <= 128 && k.trim() == k,
            "key {k:?}"
        );
        assert!(!vals.is_empty(), "no values for {k:?}");
        assert!(vals.iter().all(|v| v.len() <= 512));
    }
    // What was parsed reads back the same from its object form.
    if sc.values().all(|v| v.len() <= 64) {
        let obj: serde_json::Map<String, Value> = sc
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let again = parse_sub_claims(&Value::Object(obj)).expect("re-parse of parsed sub-claims");
        assert_eq!(again, sc);
    }

    let mut claims: Claims = match serde_json::from_str::<Value>(&input.claims_json) {
        Ok(Value::Object(o)) => flatten_claims(&o),
        _ => BTreeMap::new(),
    };
    for (k, v) in input.claims.iter().take(8) {
        claims.insert(
            k.clone(),
            v.iter().take(8).map(|s| cap(s, 64).to_owned()).collect(),
        );
    }
    // Give the matcher a chance: claims named like the sub-claims.
    for (i, (k, pats)) in sc.iter().enumerate() {
        if i % 2 == 0 && !claims.contains_key(k) {
            claims.insert(
                k.clone(),
                pats.iter().map(|p| p.replace(['*', '?'], "x")).collect(),
            );
        }
    }
    let bounded = sc
        .values()
        .all(|p| p.len() <= 16 && p.iter().all(|x| x.chars().count() <= 128));
    if !bounded {
        return;
    }
    let got = match_sub_claims(&sc, &claims, input.case_sensitive);
    let mut want: Result<(), ClaimMismatch> = Ok(());
    for (k, pats) in &sc {
        let Some(values) = claims.get(k) else {
            want = Err(ClaimMismatch::Missing { claim: k.clone() });
            break;
        };
        let any = values.iter().any(|v| {
            pats.iter().any(|p| {
                glob_model(
                    &fold(p, input.case_sensitive),
                    &fold(v, input.case_sensitive),
                )
            })
        });
        if !any {
            want = Err(ClaimMismatch::NoValueMatches { claim: k.clone() });
            break;
        }
    }
    assert_eq!(got, want, "match_sub_claims({sc:?}, {claims:?})");
    assert!(match_sub_claims(&SubClaims::new(), &claims, true).is_ok());
}

fn rule_type(b: u8) -> RuleType {
    RuleType::ALL[usize::from(b % 4)]
}

fn covers_model(path: &str, name: &str) -> bool {
    let (p, n) = (path.as_bytes(), name.as_bytes());
    match p.last() {
        Some(b'*') => n.len() >= p.len() - 1 && n[..p.len() - 1] == p[..p.len() - 1],
        _ => p == n,
    }
}

fn policy(input: &Input) {
    let rules: Vec<Rule> = input
        .rules
        .iter()
        .take(12)
        .map(|(t, raw, bits)| Rule {
            rule_type: rule_type(*t),
            // Normalised as the server stores it, or as given when invalid.
            path: normalize_rule_path(raw).unwrap_or_else(|_| raw.clone()),
            caps: Caps::from_bits(*bits),
        })
        .collect();
    let need = Caps::from_bits(input.need);
    let mut names: Vec<String> = input.names.iter().take(6).cloned().collect();
    names.extend(
        rules
            .iter()
            .map(|r| r.path.trim_end_matches('*').to_owned()),
    );
    for name in &names {
        for rt in RuleType::ALL {
            let matching: Vec<&Rule> = rules
                .iter()
                .filter(|r| r.rule_type == rt && covers_model(&r.path, name))
                .collect();
            let want = if matching.iter().any(|r| r.caps.contains(Caps::DENY)) {
                Caps::NONE
            } else {
                Caps::from_bits(matching.iter().fold(0, |acc, r| acc | r.caps.bits()))
            };
            let got = effective(&rules, rt, name);
            assert_eq!(got, want, "effective({rt}, {name:?})");
            let mut reversed = rules.clone();
            reversed.reverse();
            assert_eq!(
                effective(&reversed, rt, name),
                got,
                "rule order changed the result"
            );
            assert_eq!(
                allows(&rules, rt, name, need),
                !need.is_empty() && want.contains(need),
                "allows({rt}, {name:?}, {need:?})"
            );
            for r in &rules {
                assert_eq!(r.covers(name), covers_model(&r.path, name));
            }
        }
    }
    let folder = normalize_folder(&input.folder).unwrap_or_else(|_| input.folder.clone());
    for rt in RuleType::ALL {
        let want = rules.iter().any(|r| {
            r.rule_type == rt && r.caps.contains(need) && !r.caps.contains(Caps::DENY) && {
                let p = r.path.strip_suffix('*').unwrap_or(&r.path);
                p.starts_with(folder.as_str()) || folder.starts_with(p)
            }
        });
        assert_eq!(may_see_under(&rules, rt, &folder, need), want);
    }
}

fn names(input: &Input) {
    for raw in input
        .names
        .iter()
        .take(6)
        .chain([&input.folder, &input.text])
    {
        if let Ok(n) = normalize_name(raw) {
            assert!(
                n.starts_with('/') && !n.ends_with('/') && !n.contains("//"),
                "{n:?}"
            );
            assert!(n.len() <= 513, "{n:?}");
            assert!(
                n.split('/')
                    .skip(1)
                    .all(|s| !s.is_empty() && s != "." && s != "..")
            );
            assert!(!n.contains('*'));
            assert_eq!(
                normalize_name(&n).as_ref(),
                Ok(&n),
                "normalize_name not idempotent"
            );
        }
        if let Ok(p) = normalize_rule_path(raw) {
            assert!(p.starts_with('/'), "{p:?}");
            let stem = p.strip_suffix('*').unwrap_or(&p);
            assert!(!stem.contains('*'), "{p:?}");
            assert_eq!(
                normalize_rule_path(&p).as_ref(),
                Ok(&p),
                "rule path not idempotent"
            );
        }
        if let Ok(f) = normalize_folder(raw) {
            assert!(f.starts_with('/') && f.ends_with('/'), "{f:?}");
            assert_eq!(
                normalize_folder(&f).as_ref(),
                Ok(&f),
                "folder not idempotent"
            );
        }
    }
}
