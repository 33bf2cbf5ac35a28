//! Sub-claim matching for role associations.
//!
//! An association carries `key -> [patterns]`. It matches a set of verified
//! claims when **every** key is present and **any** of its patterns matches
//! the claim (for a list-valued claim: any element). Patterns may use `*`
//! and `?`. An association without sub-claims matches every caller of its
//! auth method.

use std::collections::BTreeMap;

use crate::{CoreError, glob::wildcard_match};

/// Claims as carried by a token: every claim flattened to a list of strings
/// (scalars become one-element lists, numbers and booleans their JSON text).
pub type Claims = BTreeMap<String, Vec<String>>;

/// Sub-claims of an association: claim name to accepted patterns.
pub type SubClaims = BTreeMap<String, Vec<String>>;

/// Why an association did or did not match; used by explain-access and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimMismatch {
    /// The token does not carry this claim at all.
    Missing { claim: String },
    /// The claim is present but none of its values matches any pattern.
    NoValueMatches { claim: String },
}

/// Check every sub-claim; `Ok(())` on match, else the first failed claim.
pub fn match_sub_claims(
    sub_claims: &SubClaims,
    claims: &Claims,
    case_sensitive: bool,
) -> Result<(), ClaimMismatch> {
    for (key, patterns) in sub_claims {
        let Some(values) = claims.get(key) else {
            return Err(ClaimMismatch::Missing { claim: key.clone() });
        };
        let any = values.iter().any(|v| {
            patterns
                .iter()
                .any(|p| wildcard_match(p, v, case_sensitive))
        });
        if !any {
            return Err(ClaimMismatch::NoValueMatches { claim: key.clone() });
        }
    }
    Ok(())
}

/// Parse sub-claims as the wire sends them: a map of `key -> "v1,v2"` or
/// `key -> ["v1","v2"]`, or CLI style `key=v1,v2` strings.
pub fn parse_sub_claims(value: &serde_json::Value) -> Result<SubClaims, CoreError> {
    let mut out = SubClaims::new();
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let vals = match v {
                    serde_json::Value::String(s) => split_list(s),
                    serde_json::Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            serde_json::Value::String(s) => Ok(s.trim().to_owned()),
                            other => Ok(other.to_string()),
                        })
                        .collect::<Result<Vec<_>, CoreError>>()?,
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                        vec![v.to_string()]
                    }
                    _ => {
                        return Err(CoreError::InvalidSubClaims(format!(
                            "the value of {k:?} must be a string or a list of strings"
                        )));
                    }
                };
                insert_claim(&mut out, k, vals)?;
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                let serde_json::Value::String(s) = item else {
                    return Err(CoreError::InvalidSubClaims(
                        "list entries must be strings of the form key=v1,v2".into(),
                    ));
                };
                let (k, v) = s.split_once('=').ok_or_else(|| {
                    CoreError::InvalidSubClaims(format!("{s:?} is not of the form key=v1,v2"))
                })?;
                insert_claim(&mut out, k, split_list(v))?;
            }
        }
        serde_json::Value::String(s) if s.trim().is_empty() => {}
        serde_json::Value::String(s) => {
            // A JSON object sent as text, or key=v1,v2 pairs separated by ';' or '&'.
            if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(s) {
                return parse_sub_claims(&v);
            }
            for pair in s.split([';', '&']).filter(|p| !p.trim().is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    CoreError::InvalidSubClaims(format!("{pair:?} is not of the form key=v1,v2"))
                })?;
                insert_claim(&mut out, k, split_list(v))?;
            }
        }
        _ => {
            return Err(CoreError::InvalidSubClaims(
                "expected an object of claim name to values".into(),
            ));
        }
    }
    Ok(out)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn insert_claim(out: &mut SubClaims, key: &str, vals: Vec<String>) -> Result<(), CoreError> {
    let key = key.trim();
    if key.is_empty() || key.len() > 128 {
        return Err(CoreError::InvalidSubClaims(
            "claim names must be 1 to 128 characters".into(),
        ));
    }
    if vals.is_empty() {
        return Err(CoreError::InvalidSubClaims(format!(
            "claim {key:?} needs at least one value"
        )));
    }
    if vals.len() > 64 || vals.iter().any(|v| v.len() > 512) {
        return Err(CoreError::InvalidSubClaims(format!(
            "claim {key:?} has too many or too long values (max 64 values of 512 bytes)"
        )));
    }
    out.entry(key.to_owned()).or_default().extend(vals);
    Ok(())
}

/// Flatten a JSON claims object (from a verified JWT) into [`Claims`].
pub fn flatten_claims(obj: &serde_json::Map<String, serde_json::Value>) -> Claims {
    obj.iter()
        .filter_map(|(k, v)| {
            let vals: Vec<String> = match v {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| match x {
                        serde_json::Value::String(s) => Some(s.clone()),
                        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                            Some(x.to_string())
                        }
                        _ => None,
                    })
                    .collect(),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => vec![v.to_string()],
                _ => return None,
            };
            Some((k.clone(), vals))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn claims(pairs: &[(&str, &[&str])]) -> Claims {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn and_across_keys_or_within() {
        let sc = parse_sub_claims(&json!({"project_path": "group/app,group/other", "ref": "main"}))
            .unwrap();
        let ok = claims(&[("project_path", &["group/app"]), ("ref", &["main"])]);
        assert!(match_sub_claims(&sc, &ok, true).is_ok());
        let wrong_ref = claims(&[("project_path", &["group/app"]), ("ref", &["feature"])]);
        assert_eq!(
            match_sub_claims(&sc, &wrong_ref, true),
            Err(ClaimMismatch::NoValueMatches {
                claim: "ref".into()
            })
        );
        let missing = claims(&[("project_path", &["group/app"])]);
        assert_eq!(
            match_sub_claims(&sc, &missing, true),
            Err(ClaimMismatch::Missing {
                claim: "ref".into()
            })
        );
    }

    #[test]
    fn wildcards_case_and_lists() {
        let sc = parse_sub_claims(&json!({"groups": ["Dev*"]})).unwrap();
        let c = claims(&[("groups", &["ops", "developers"])]);
        assert!(match_sub_claims(&sc, &c, true).is_err());
        assert!(match_sub_claims(&sc, &c, false).is_ok());
    }

    #[test]
    fn parse_forms() {
        let a = parse_sub_claims(&json!(["user_login=alice,bob", "ref=main"])).unwrap();
        let b = parse_sub_claims(&json!({"user_login": ["alice", "bob"], "ref": "main"})).unwrap();
        let c = parse_sub_claims(&json!("user_login=alice,bob;ref=main")).unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert!(parse_sub_claims(&json!({"k": ""})).is_err());
        assert!(parse_sub_claims(&json!(["novalue"])).is_err());
        assert!(parse_sub_claims(&json!({"k": {"x": 1}})).is_err());
        assert!(parse_sub_claims(&json!(null)).unwrap().is_empty());
    }

    #[test]
    fn flatten() {
        let obj = json!({"sub": "x", "aud": ["a", "b"], "n": 3, "b": true, "o": {"x": 1}});
        let c = flatten_claims(obj.as_object().unwrap());
        assert_eq!(c["aud"], vec!["a", "b"]);
        assert_eq!(c["n"], vec!["3"]);
        assert_eq!(c["b"], vec!["true"]);
        assert!(!c.contains_key("o"));
    }

    proptest! {
        /// Empty sub-claims match anything; adding a key the claims lack never matches.
        #[test]
        fn missing_key_never_matches(v in "[a-z]{1,5}") {
            let c = claims(&[("a", &["x"])]);
            prop_assert!(match_sub_claims(&SubClaims::new(), &c, true).is_ok());
            let mut sc = SubClaims::new();
            sc.insert("zz".into(), vec![v]);
            prop_assert!(match_sub_claims(&sc, &c, true).is_err());
        }
    }
}
