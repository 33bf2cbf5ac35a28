//! Lenient request decoding, matching what the Akeyless SDKs and CLI send:
//! kebab-case or snake_case keys, numbers and booleans as strings, lists as
//! comma-separated strings, unknown keys ignored.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A decoded request body with normalised (kebab-case) keys.
#[derive(Debug, Default)]
pub struct Body {
    fields: Map<String, Value>,
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
        Ok(Body { fields })
    }

    /// Raw value of a field (key in kebab-case).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key).filter(|v| !v.is_null())
    }

    /// A string field; numbers and booleans are accepted as their text.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(_) => Err(ApiError::bad(format!("{key} must be a string"))),
        }
    }

    /// A required, non-empty string field.
    pub fn req_str(&self, key: &str) -> Result<String, ApiError> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ApiError::bad(format!("missing required parameter {key}"))),
        }
    }

    /// A boolean field: JSON bool, "true"/"false"/"yes"/"no"/"1"/"0".
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
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
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A list field: JSON array of scalars, or a comma-separated string.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ApiError> {
        let items: Vec<String> = match self.get(key) {
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
            .find_map(|k| match self.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => None,
            })
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
