//! `--jq-expression`: a jq filter (jaq, a pure-Rust jq) over a command's
//! JSON answer. Results print as `jq -r` prints them: strings raw, one per
//! line, anything else as indented JSON.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// Compile `expression`; the error says what is wrong with it.
fn compile(expression: &str) -> Result<jaq_core::Filter<data::JustLut<Val>>, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let program = File {
        code: expression,
        path: (),
    };
    let modules = loader.load(&arena, program).map_err(|errors| {
        let mut why = Vec::new();
        for (_, e) in errors {
            match e {
                jaq_core::load::Error::Io(list) => {
                    why.extend(list.into_iter().map(|(_, m)| m));
                }
                jaq_core::load::Error::Lex(list) => why.extend(
                    list.into_iter()
                        .map(|(expect, at)| format!("expected {} at {:?}", expect.as_str(), at)),
                ),
                jaq_core::load::Error::Parse(list) => {
                    why.extend(list.into_iter().map(|(expect, at)| {
                        if at.is_empty() {
                            format!("expected {} at the end", expect.as_str())
                        } else {
                            format!("expected {} at {:?}", expect.as_str(), at)
                        }
                    }))
                }
            }
        }
        why.join("; ")
    })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            errors
                .into_iter()
                .flat_map(|(_, list)| list)
                .map(|(name, undefined)| format!("undefined {undefined:?}: {name}").to_lowercase())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

/// Check `expression` before anything is sent (a usage error).
pub(crate) fn check(expression: &str) -> Result<(), String> {
    compile(expression)
        .map(drop)
        .map_err(|why| format!("invalid --jq-expression {expression:?}: {why}"))
}

/// Run `expression` on `input`; the text to print (each result on its
/// own line).
pub(crate) fn apply(expression: &str, input: &Value) -> anyhow::Result<String> {
    let filter = compile(expression)
        .map_err(|why| anyhow::anyhow!("invalid --jq-expression {expression:?}: {why}"))?;
    let text = serde_json::to_vec(input)?;
    let input = jaq_json::read::parse_single(&text)
        .map_err(|e| anyhow::anyhow!("cannot pass the answer to --jq-expression: {e}"))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut out = String::new();
    for result in filter.id.run((ctx, input)).map(unwrap_valr) {
        let value = result.map_err(|e| anyhow::anyhow!("--jq-expression {expression:?}: {e}"))?;
        out.push_str(&render(&value));
        out.push('\n');
    }
    Ok(out)
}

/// `jq -r`: a string as is, anything else as indented JSON.
fn render(value: &Val) -> String {
    if let Val::TStr(bytes) = value {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let compact = value.to_string();
    match serde_json::from_str::<Value>(&compact) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or(compact),
        Err(_) => compact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_like_jq_r() {
        let v = json!({"name": "/a", "tags": ["x", "y"], "n": 3, "o": {"k": true}});
        assert_eq!(apply(".name", &v).unwrap(), "/a\n");
        assert_eq!(apply(".tags[]", &v).unwrap(), "x\ny\n");
        assert_eq!(apply(".n + 1", &v).unwrap(), "4\n");
        assert_eq!(apply(".o", &v).unwrap(), "{\n  \"k\": true\n}\n");
        assert_eq!(apply(".tags | length", &v).unwrap(), "2\n");
        assert_eq!(apply(".missing", &v).unwrap(), "null\n");
        assert_eq!(apply("empty", &v).unwrap(), "");
        assert_eq!(
            apply("[.tags[] | ascii_upcase] | join(\",\")", &v).unwrap(),
            "X,Y\n"
        );
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        let e = check(".name |").unwrap_err();
        assert!(e.contains("invalid --jq-expression"), "{e}");
        let e = check("nosuchfunction").unwrap_err();
        assert!(e.contains("nosuchfunction"), "{e}");
        assert!(check(".a | keys").is_ok());
        // A runtime error names the expression.
        let e = apply(".a.b", &json!({"a": 1})).unwrap_err().to_string();
        assert!(e.contains(".a.b"), "{e}");
    }
}
