//! The wire body decoder: `Body::parse` on arbitrary bytes, then every typed
//! getter on every key the body holds (as sent and normalised) and on the
//! keys the operations read, each result checked against what the getter's
//! documentation promises, computed here from the raw JSON.
#![no_main]

use coffer_server::fuzzing::Body;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Keys the operations and logins read (a sample; any key is as good).
const KNOWN: &[&str] = &[
    "token",
    "uid-token",
    "access-id",
    "access-key",
    "access-type",
    "name",
    "names",
    "value",
    "version",
    "json",
    "tags",
    "ttl",
    "cloud-id",
    "jwt",
    "sub-claims",
    "path",
    "capability",
    "bound-ips",
    "accessibility",
    "",
];

fn normalize(k: &str) -> String {
    k.trim().to_ascii_lowercase().replace('_', "-")
}

fuzz_target!(|data: &[u8]| {
    let parsed = Body::parse(data);
    // What the body must hold: the object's fields under normalised keys
    // (serde_json's map iterates in key order, the later key wins).
    let raw: Option<Map<String, Value>> = if data.iter().all(u8::is_ascii_whitespace) {
        Some(Map::new())
    } else {
        match serde_json::from_slice::<Value>(data) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        }
    };
    let body = match (parsed, raw) {
        (Ok(b), Some(raw)) => (b, raw),
        (Err(_), None) => return,
        (Ok(_), None) => panic!("Body::parse accepted a body that is not a JSON object"),
        (Err(e), Some(_)) => panic!("Body::parse refused a JSON object: {e:?}"),
    };
    let (body, raw) = body;
    let mut expected: Map<String, Value> = Map::new();
    for (k, v) in &raw {
        expected.insert(normalize(k), v.clone());
    }
    let mut keys: Vec<String> = raw.keys().cloned().collect();
    keys.extend(expected.keys().cloned());
    keys.extend(KNOWN.iter().map(|k| (*k).to_owned()));
    for key in &keys {
        // The getters normalise the key they are given as the body's
        // keys are normalised, so every spelling finds the field.
        check_key(
            &body,
            key,
            expected.get(normalize(key).as_str()).filter(|v| !v.is_null()),
        );
    }
    // token(): `token`, else `uid-token`, trimmed and non-empty.
    let want_token = ["token", "uid-token"]
        .iter()
        .find_map(|k| match expected.get(*k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        });
    assert_eq!(body.token(), want_token, "token()");
});

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

fn check_key(body: &Body, key: &str, want: Option<&Value>) {
    assert_eq!(body.get(key), want, "get({key:?})");

    // opt_str / req_str
    let s = body.opt_str(key);
    match want {
        None => assert!(matches!(s, Ok(None))),
        Some(v) => match scalar_text(v) {
            Some(t) => assert_eq!(s.as_ref().ok(), Some(&Some(t))),
            None => assert!(s.is_err(), "opt_str({key:?}) accepted {v}"),
        },
    }
    match (body.req_str(key), s) {
        (Ok(r), Ok(Some(o))) => {
            assert_eq!(r, o);
            assert!(!r.trim().is_empty());
        }
        (Err(_), Ok(Some(o))) => assert!(o.trim().is_empty()),
        (Err(_), _) => {}
        (Ok(_), _) => panic!("req_str({key:?}) succeeded where opt_str did not give a value"),
    }

    // bool_or, both defaults
    for default in [false, true] {
        let got = body.bool_or(key, default).ok();
        let want_b = match want {
            None => Some(default),
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) => Some(n.as_i64().unwrap_or(0) != 0),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Some(default),
                "true" | "yes" | "1" | "on" => Some(true),
                "false" | "no" | "0" | "off" => Some(false),
                _ => None,
            },
            Some(_) => None,
        };
        assert_eq!(got, want_b, "bool_or({key:?}, {default})");
    }

    // opt_i64
    let got = body.opt_i64(key).ok();
    let want_i = match want {
        None => Some(None),
        Some(Value::Number(n)) => n.as_i64().map(Some),
        Some(Value::String(s)) if s.trim().is_empty() => Some(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok().map(Some),
        Some(_) => None,
    };
    assert_eq!(got, want_i, "opt_i64({key:?})");

    // list: entries trimmed, none empty; a string splits on commas.
    let got = body.list(key).ok();
    let want_l: Option<Vec<String>> = match want {
        None => Some(Vec::new()),
        Some(Value::String(s)) => Some(s.split(',').map(|x| x.trim().to_owned()).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
                _ => None,
            })
            .collect(),
        Some(_) => None,
    }
    .map(|l| l.into_iter().filter(|x| !x.is_empty()).collect());
    assert_eq!(got, want_l, "list({key:?})");
}
