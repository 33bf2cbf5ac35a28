//! `GET /openapi.json`: an OpenAPI 3.1 description of the wire API,
//! generated from the operation table (`ops::OPERATIONS`: names, aliases,
//! who may call) and the operations' declared parameters
//! (`ops/params.rs`, which debug builds enforce on every read). Nothing
//! here is written per operation, so the description lists exactly what
//! the server dispatches.
//!
//! Responses are described by status: each operation's answer is a JSON
//! value (its fields are in docs/api.md and follow the Akeyless SDK
//! models); every error is `{"error": "…"}`.

use std::sync::LazyLock;

use coffer_core::policy::RuleType;
use serde_json::{Map, Value, json};

use crate::ops::returns::{JType, Shape};
use crate::ops::{Access, OPERATIONS, Operation};
use crate::wire::{Kind, Param};

/// The serialized description (built once: it depends only on the binary).
pub fn document_bytes() -> &'static [u8] {
    static DOC: LazyLock<Vec<u8>> =
        LazyLock::new(|| serde_json::to_vec(&document()).unwrap_or_default());
    &DOC
}

/// The description as JSON.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "properties": {"error": {"type": "string", "description": "what went wrong and what to fix"}},
            "required": ["error"],
        }),
    );
    for op in OPERATIONS {
        let params = crate::ops::params::declared(op.name).unwrap_or(&[]);
        let schema_name = format!("{}Request", camel(op.name));
        schemas.insert(schema_name.clone(), request_schema(op, params));
        for (i, name) in std::iter::once(&op.name).chain(op.aliases).enumerate() {
            let mut post = json!({
                "operationId": camel(name),
                "tags": [family(op)],
                "summary": if i == 0 {
                    format!("{} ({})", op.name, access_text(op.access))
                } else {
                    format!("{name}: another name of {}", op.name)
                },
                "description": access_text(op.access),
                "x-coffer-access": access_json(op.access),
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}},
                },
                "responses": responses(op),
            });
            if i == 0 && !op.aliases.is_empty() {
                post["x-aliases"] = json!(op.aliases);
            }
            if i > 0 {
                post["x-alias-of"] = json!(op.name);
            }
            paths.insert(format!("/{name}"), json!({ "post": post }));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Coffer API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Akeyless-compatible wire API of Coffer. Every operation is POST /<operation> \
                with a JSON object body, also served under /v2 and /api/v2. Keys may be kebab-case or \
                snake_case; numbers and booleans may be sent as strings; unknown keys are ignored, and \
                an option Coffer does not implement is refused with 400. The caller's token goes in the \
                body field `token` (or `uid-token`).",
        },
        "servers": [{"url": "/"}, {"url": "/v2"}, {"url": "/api/v2"}],
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn request_schema(op: &Operation, params: &[Param]) -> Value {
    let mut props = Map::new();
    if op.access.needs_token() {
        props.insert(
            "token".into(),
            json!({"type": "string", "description": "the caller's token (from auth); or uid-token"}),
        );
        props.insert(
            "uid-token".into(),
            json!({"type": "string", "description": "a universal identity token, when token is not given"}),
        );
    }
    props.insert(
        "json".into(),
        json!({"description": "the Akeyless CLI's output flag; accepted and ignored"}),
    );
    for p in params {
        props.insert(p.name.into(), kind_schema(p.kind));
    }
    let required: Vec<&str> = params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    let mut schema = json!({
        "type": "object",
        "properties": props,
        "additionalProperties": true,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn kind_schema(kind: Kind) -> Value {
    match kind {
        Kind::Str => json!({"type": ["string", "number", "boolean"]}),
        Kind::Bool => json!({
            "oneOf": [
                {"type": "boolean"},
                {"type": "integer"},
                {"type": "string", "enum": ["", "true", "false", "yes", "no", "1", "0", "on", "off"]},
            ]
        }),
        Kind::Int => json!({
            "oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^\\s*-?[0-9]*\\s*$"}]
        }),
        Kind::List => json!({
            "oneOf": [
                {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                {"type": "string", "description": "comma-separated"},
            ]
        }),
        Kind::Json => json!({}),
    }
}

fn jtype_schema(t: JType) -> Value {
    match t {
        JType::Str => json!({"type": "string"}),
        JType::Int => json!({"type": "integer"}),
        JType::Num => json!({"type": "number"}),
        JType::Bool => json!({"type": "boolean"}),
        JType::Array => json!({"type": "array"}),
        JType::Object => json!({"type": "object"}),
        JType::Any => json!({}),
    }
}

/// The 200 answer's schema, from the operation's declared shape.
fn answer_schema(op: &Operation) -> Value {
    match crate::ops::returns::declared(op.name) {
        None => json!({}),
        Some(Shape::Object(fields)) => {
            let props: Map<String, Value> = fields
                .iter()
                .map(|f| (f.name.to_owned(), jtype_schema(f.ty)))
                .collect();
            json!({"type": "object", "properties": props})
        }
        Some(Shape::Map(t)) => json!({
            "type": "object",
            "description": "one entry per name the request gave",
            "additionalProperties": jtype_schema(t),
        }),
        Some(Shape::List(t)) => json!({"type": "array", "items": jtype_schema(t)}),
    }
}

fn responses(op: &Operation) -> Value {
    let access = op.access;
    let err = json!({
        "description": "refused or failed",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    });
    let mut r = json!({
        "200": {
            "description": "the operation's answer (nested fields in docs/api.md)",
            "content": {"application/json": {"schema": answer_schema(op)}},
        },
        "400": err.clone(),
        "404": err.clone(),
        "413": err.clone(),
        "500": err.clone(),
        "503": err.clone(),
    });
    if access.needs_token() {
        r["401"] = err.clone();
        r["403"] = err;
    } else {
        r["401"] = err.clone();
        r["429"] = err;
    }
    r
}

fn rule_type_name(t: RuleType) -> String {
    t.to_string()
}

fn access_json(access: Access) -> Value {
    let caps = |list: &[(RuleType, coffer_core::policy::Caps)]| -> Vec<Value> {
        list.iter()
            .map(|(t, c)| json!({"object": rule_type_name(*t), "capabilities": c.names()}))
            .collect()
    };
    match access {
        Access::Public => json!({"kind": "public"}),
        Access::Requires(list) => json!({"kind": "requires-all", "rules": caps(list)}),
        Access::RequiresAny(t, c) => json!({"kind": "requires-any", "rules": caps(&[(t, c)])}),
        Access::Filtered(t, c) => json!({"kind": "filtered", "rules": caps(&[(t, c)])}),
        Access::Audit => json!({"kind": "audit-access"}),
        Access::OwnToken => json!({"kind": "own-token"}),
    }
}

/// Who may call, in words.
pub fn access_text(access: Access) -> String {
    let list = |list: &[(RuleType, coffer_core::policy::Caps)], sep: &str| {
        list.iter()
            .map(|(t, c)| format!("{} on the {t}", c.names().join(sep)))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match access {
        Access::Public => "no token: the request carries its own proof".into(),
        Access::Requires(l) => format!("token; needs {}", list(l, "+")),
        Access::RequiresAny(t, c) => format!("token; needs {}", list(&[(t, c)], " or ")),
        Access::Filtered(t, c) => {
            format!(
                "token; lists only what the caller holds {} on",
                c.names().join("+")
            ) + &format!(" ({t}s)")
        }
        Access::Audit => "token; needs the role's audit-access".into(),
        Access::OwnToken => "token; acts on the caller's own token".into(),
    }
}

/// The operation index of docs/api.md (between its `operations:begin` and
/// `operations:end` markers): every operation, its other names and who may
/// call it, from the same table as the OpenAPI description.
pub fn markdown_index() -> String {
    let mut out = String::from(
        "| operation | other names | parameters | who may call |\n|---|---|---|---|\n",
    );
    for op in OPERATIONS {
        let params = crate::ops::params::declared(op.name).unwrap_or(&[]);
        let names: Vec<String> = params
            .iter()
            .map(|p| {
                if p.required {
                    format!("**{}**", p.name)
                } else {
                    p.name.to_owned()
                }
            })
            .collect();
        let aliases: Vec<String> = op.aliases.iter().map(|a| format!("`{a}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            op.name,
            aliases.join(", "),
            names.join(", "),
            access_text(op.access)
        ));
    }
    out
}

/// The operation's family: its handler's module.
fn family(op: &Operation) -> &'static str {
    let module = op.handler_path.split("::").next().unwrap_or("").trim();
    match module {
        "auth" | "uid" => "logins and tokens",
        "auth_methods" | "auth_method_update" => "auth methods",
        "roles" => "roles",
        "items" | "list" => "items",
        "targets" => "targets",
        "dynamic" => "dynamic secrets",
        "rotated" => "rotated secrets",
        "keys" => "keys",
        "certs" => "certificates",
        "audit_ops" => "audit",
        "explain" => "explain",
        _ => "other",
    }
}

/// `create-auth-method` → `CreateAuthMethod`.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dispatched_name_is_a_path_and_nothing_else() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut names: Vec<&str> = OPERATIONS
            .iter()
            .flat_map(|op| std::iter::once(op.name).chain(op.aliases.iter().copied()))
            .collect();
        names.sort_unstable();
        let mut documented: Vec<&str> = paths.keys().map(|p| &p[1..]).collect();
        documented.sort_unstable();
        assert_eq!(names, documented);
        for name in names {
            let op = crate::ops::find(name).unwrap();
            let post = &paths[&format!("/{name}")]["post"];
            let schema_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
            let schema =
                &doc["components"]["schemas"][&schema_ref["#/components/schemas/".len()..]];
            let props = schema["properties"].as_object().unwrap();
            for p in crate::ops::params::declared(op.name).unwrap() {
                assert!(props.contains_key(p.name), "{name}: {}", p.name);
            }
            assert_eq!(props.contains_key("token"), op.access.needs_token());
            assert_ne!(
                family(op),
                "other",
                "{name}: add its handler module ({}) to openapi::family",
                op.handler_path
            );
        }
        // operationIds are unique (OpenAPI requires it).
        let mut ids: Vec<&str> = paths
            .values()
            .map(|p| p["post"]["operationId"].as_str().unwrap())
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    /// docs/api.md's operation index is the generated one; run with
    /// `COFFER_UPDATE_DOCS=1` to rewrite it after changing the table.
    #[test]
    fn docs_api_md_lists_every_operation() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- operations:begin -->\n", "<!-- operations:end -->");
        let start = doc
            .find(begin)
            .expect("docs/api.md lacks <!-- operations:begin -->")
            + begin.len();
        let stop = doc
            .find(end)
            .expect("docs/api.md lacks <!-- operations:end -->");
        let want = markdown_index();
        if doc[start..stop] != want {
            if std::env::var_os("COFFER_UPDATE_DOCS").is_some() {
                std::fs::write(path, format!("{}{want}{}", &doc[..start], &doc[stop..])).unwrap();
            } else {
                panic!(
                    "docs/api.md's operation index is out of date: run COFFER_UPDATE_DOCS=1 cargo test -p coffer-server --lib docs_api_md"
                );
            }
        }
    }
}
