//! Lenient request decoding, matching what the Akeyless SDKs and CLI send:
//! kebab-case or snake_case keys, numbers and booleans as strings, lists as
//! comma-separated strings, unknown keys ignored.
//!
//! Each operation declares the parameters it reads (`ops/params.rs`), and
//! the OpenAPI description (`/openapi.json`) is generated from those
//! declarations. The pipeline binds a body to its operation's declaration;
//! in debug builds (every test) reading a parameter the operation does not
//! declare, or with another type than declared, panics, so the description
//! cannot drift from what the handlers read.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The type of a request parameter, as the accessor that reads it decodes
/// it (lenient: see the accessors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string; numbers and booleans are taken as their text.
    Str,
    /// A boolean, or "true"/"false"/"yes"/"no"/"1"/"0".
    Bool,
    /// An integer, or its decimal text.
    Int,
    /// A list of strings, or one comma-separated string.
    List,
    /// Any JSON value (objects, or several accepted shapes).
    Json,
}

impl Kind {
    /// May a parameter declared as `self` be read as `read`?
    #[cfg(debug_assertions)]
    fn admits(self, read: Kind) -> bool {
        self == read || self == Kind::Json || (self == Kind::List && read == Kind::Str)
    }
}

/// One declared request parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    /// Refused when missing (or empty).
    pub required: bool,
}

/// A decoded request body with normalised (kebab-case) keys.
#[derive(Debug, Default)]
pub struct Body {
    fields: Map<String, Value>,
    /// The operation and the parameters it declares, once bound.
    declared: Option<(&'static str, &'static [Param])>,
}

impl Body {
    /// Parse a request body. An empty body is an empty object.
    pub fn parse(bytes: &[u8]) -> Result<Body, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body::default());
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad(format!(
                "request body is not valid JSON ({} at line {} column {}): send a JSON object",
                classify(&e),
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(obj) = value else {
            return Err(ApiError::bad("request body must be a JSON object"));
        };
        let fields = obj
            .into_iter()
            .map(|(k, v)| (normalize_key(&k), v))
            .collect();
        Ok(Body {
            fields,
            declared: None,
        })
    }

    /// Bind the body to the operation whose parameters it carries.
    pub fn bind(&mut self, op: &'static str, params: &'static [Param]) {
        self.declared = Some((op, params));
    }

    /// The field, after checking (debug builds) that the bound operation
    /// declares it with a type that admits `kind`.
    /// The key is normalised like the body's (Akeyless spells a few
    /// `delete_protection`-style), so every spelling finds the field.
    fn field(&self, key: &str, kind: Kind) -> Option<&Value> {
        self.checked_field(key, kind, false)
    }

    /// `field`, also checking (debug builds) that a parameter the handler
    /// requires is declared required, so the OpenAPI description says so.
    fn checked_field(&self, key: &str, kind: Kind, required: bool) -> Option<&Value> {
        // Only debug builds check declarations.
        #[cfg(not(debug_assertions))]
        let _ = (kind, required);
        let key: std::borrow::Cow<'_, str> = if key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            key.into()
        } else {
            normalize_key(key).into()
        };
        #[cfg(debug_assertions)]
        if let Some((op, params)) = self.declared {
            match params.iter().find(|p| p.name == key) {
                // A handler may require a parameter on some paths only
                // (`names` or `name`), so "required" is only recorded.
                Some(p) if p.kind.admits(kind) && (p.required || !required) => {}
                Some(p) if p.kind.admits(kind) && !recording() => {}
                found => undeclared(op, &key, kind, required, found),
            }
        }
        self.fields.get(&*key).filter(|v| !v.is_null())
    }

    /// The first key the bound operation does not declare whose value is
    /// set: not null, empty, `false` or 0, and not a value the official
    /// SDKs send by default. Strict operations refuse such a key, so that a
    /// misspelt or unsupported setting is never silently dropped.
    pub fn undeclared_setting(&self) -> Option<&str> {
        let (_, params) = self.declared?;
        self.fields
            .iter()
            .find(|(k, v)| {
                !IMPLICIT.contains(&k.as_str())
                    && !params.iter().any(|p| p.name == k.as_str())
                    && is_set(v)
                    && !SDK_DEFAULTS
                        .iter()
                        .any(|(dk, dv)| dk == k && v.as_str() == Some(dv))
            })
            .map(|(k, _)| k.as_str())
    }

    /// Raw value of a field (key in kebab-case).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.field(key, Kind::Json)
    }

    /// A string field; numbers and booleans are accepted as their text.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ApiError> {
        self.str_field(key, false)
    }

    fn str_field(&self, key: &str, required: bool) -> Result<Option<String>, ApiError> {
        match self.checked_field(key, Kind::Str, required) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(_) => Err(ApiError::bad(format!("{key} must be a string"))),
        }
    }

    /// A required, non-empty string field.
    pub fn req_str(&self, key: &str) -> Result<String, ApiError> {
        match self.str_field(key, true)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ApiError::bad(format!("missing required parameter {key}"))),
        }
    }

    /// A boolean field: JSON bool, "true"/"false"/"yes"/"no"/"1"/"0".
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.field(key, Kind::Bool) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or(0) != 0),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Ok(default),
                "true" | "yes" | "1" | "on" => Ok(true),
                "false" | "no" | "0" | "off" => Ok(false),
                _ => Err(ApiError::bad(format!("{key} must be true or false"))),
            },
            Some(_) => Err(ApiError::bad(format!("{key} must be true or false"))),
        }
    }

    /// An integer field: JSON number or numeric string.
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        let bad = || ApiError::bad(format!("{key} must be an integer"));
        match self.field(key, Kind::Int) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A list field: JSON array of scalars, or a comma-separated string.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ApiError> {
        let items: Vec<String> = match self.field(key, Kind::List) {
            None => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_owned()).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
                    _ => Err(ApiError::bad(format!("{key} must be a list of strings"))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ApiError::bad(format!("{key} must be a list of strings"))),
        };
        Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
    }

    /// The caller's token: `token`, else `uid-token`.
    pub fn token(&self) -> Option<String> {
        ["token", "uid-token"]
            .iter()
            .find_map(|k| match self.fields.get(*k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => None,
            })
    }
}

/// A handler read a parameter its operation does not declare (or with
/// another type): a bug in `ops/params.rs` or the handler. Debug builds
/// panic (the pipeline turns it into an audited 500 that names the
/// parameter); with `COFFER_RECORD_PARAMS=FILE` the read is appended to
/// FILE instead, to find every undeclared read in one test run.
#[cfg(debug_assertions)]
fn recording() -> bool {
    std::env::var_os("COFFER_RECORD_PARAMS").is_some()
}

#[cfg(debug_assertions)]
fn undeclared(op: &str, key: &str, kind: Kind, required: bool, found: Option<&Param>) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("COFFER_RECORD_PARAMS") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            // One write per line: O_APPEND keeps concurrent tests' lines whole.
            let req = if required { "!" } else { "" };
            f.write_all(format!("{op}\t{key}\t{kind:?}{req}\n").as_bytes())
                .ok();
        }
        return;
    }
    match found {
        None => {
            panic!("operation {op} reads parameter {key:?}, which ops/params.rs does not declare")
        }
        Some(p) if !p.kind.admits(kind) => panic!(
            "operation {op} reads parameter {key:?} as {kind:?}, but ops/params.rs declares it {:?}",
            p.kind
        ),
        Some(_) => {}
    }
}

/// Keys every operation accepts: the caller's credentials and the
/// Akeyless CLI's output flag.
const IMPLICIT: &[&str] = &["token", "uid-token", "json"];

/// Values the official SDKs send by default, which mean "not set".
const SDK_DEFAULTS: &[(&str, &str)] = &[
    ("accessibility", "regular"),
    ("case-sensitive", "true"),
    ("description", "default_comment"),
    ("description", "default_metadata"),
    ("gen-key", "true"),
    ("new-comment", "default_comment"),
    ("new-metadata", "default_metadata"),
];

/// Whether a value says anything: not null, empty, `false` or 0.
pub(crate) fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => {
            let s = s.trim();
            !s.is_empty() && !s.eq_ignore_ascii_case("false")
        }
        Value::Bool(b) => *b,
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
    }
}

/// `access_id` and `access-id` both become `access-id`.
fn normalize_key(k: &str) -> String {
    k.trim().to_ascii_lowercase().replace('_', "-")
}

fn classify(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax => "syntax error",
        Category::Eof => "unexpected end of input",
        Category::Data => "unexpected data",
        Category::Io => "read error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_decoding() {
        let b = Body::parse(
            br#"{"access_id":"p-1","access-type":"api_key","Json":"true","version":"3","names":"a, b","tags":["x",1],"ttl":5}"#,
        )
        .unwrap();
        assert_eq!(b.req_str("access-id").unwrap(), "p-1");
        assert!(b.bool_or("json", false).unwrap());
        assert_eq!(b.opt_i64("version").unwrap(), Some(3));
        assert_eq!(b.list("names").unwrap(), vec!["a", "b"]);
        assert_eq!(b.list("tags").unwrap(), vec!["x", "1"]);
        assert_eq!(b.opt_str("ttl").unwrap().as_deref(), Some("5"));
        assert!(b.req_str("missing").is_err());
        // Akeyless's few snake_case names find the normalised key.
        let b = Body::parse(br#"{"delete-protection":"true","ProviderType":"x"}"#).unwrap();
        assert!(b.bool_or("delete_protection", false).unwrap());
        assert_eq!(b.opt_str("ProviderType").unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        assert!(Body::parse(b"[1]").is_err());
        assert!(Body::parse(b"{").is_err());
        assert!(Body::parse(b"").is_ok());
        let b = Body::parse(br#"{"version":"x","flag":"maybe","names":{"a":1}}"#).unwrap();
        assert!(b.opt_i64("version").is_err());
        assert!(b.bool_or("flag", false).is_err());
        assert!(b.list("names").is_err());
    }

    #[test]
    fn token_precedence() {
        let b = Body::parse(br#"{"uid-token":"u","token":"t"}"#).unwrap();
        assert_eq!(b.token().as_deref(), Some("t"));
        let b = Body::parse(br#"{"uid_token":"u","token":""}"#).unwrap();
        assert_eq!(b.token().as_deref(), Some("u"));
    }
}
