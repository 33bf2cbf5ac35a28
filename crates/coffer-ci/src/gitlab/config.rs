//! The configuration as GitLab sees it before validating a job: `extends:`
//! (GitLab's `Extendable`) and `!reference` (GitLab's `Yaml::Tags`).
//!
//! Only what a job needs is processed: the job's `extends:` chain, and
//! `!reference` tags inside the keys that are read (`secrets`,
//! `id_tokens`, `variables`, `inherit`, `default:id_tokens` and the global
//! `variables`). GitLab processes the whole file first, so a broken
//! `extends:` or `!reference` elsewhere fails the pipeline there but not
//! here. `include:` is not followed.

use std::cell::RefCell;
use std::collections::HashMap;

use super::yaml::{Inspect, Map, Node, REFERENCE_TAG};

/// GitLab's `Extendable::Entry::MAX_NESTING_LEVELS`.
pub(crate) const MAX_EXTENDS_NESTING: usize = 10;
/// `!reference` tags may nest this deep (GitLab documents 10 levels).
pub(crate) const MAX_REFERENCE_NESTING: usize = 10;
/// Largest number of nodes `!reference` expansion may produce for one
/// value: a file can reference a list that references lists ("reference
/// bomb"), which the YAML parser's alias budget does not see.
pub(crate) const MAX_REFERENCE_NODES: usize = 250_000;

/// Top-level keys that are not jobs (GitLab's root entries, plus the
/// `spec:` header).
pub(crate) const RESERVED_KEYS: &[&str] = &[
    "default",
    "include",
    "before_script",
    "image",
    "services",
    "after_script",
    "variables",
    "stages",
    "types",
    "cache",
    "workflow",
    "spec",
];

/// The top-level mapping, with `extends:` applied on demand.
pub(crate) struct Config {
    top: Map,
    extended: RefCell<HashMap<String, Node>>,
}

impl Config {
    pub(crate) fn new(top: Map) -> Self {
        Config {
            top,
            extended: RefCell::new(HashMap::new()),
        }
    }

    pub(crate) fn top(&self) -> &Map {
        &self.top
    }

    /// The names of the jobs: top-level mappings that are neither reserved
    /// keywords nor hidden (`.name`).
    pub(crate) fn job_names(&self) -> Vec<String> {
        self.top
            .iter()
            .filter(|(k, v)| is_job_name(k) && matches!(v, Node::Map(_)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The top-level entry `key` with its `extends:` chain merged in
    /// (GitLab's deep merge: bases in order, then the entry itself; the
    /// later one wins, mappings merge). `Ok(None)` when there is no such key.
    pub(crate) fn extended(&self, key: &str) -> Result<Option<Node>, String> {
        if !self.top.contains_key(key) {
            return Ok(None);
        }
        self.extend(key, &mut Vec::new()).map(Some)
    }

    fn extend(&self, key: &str, ancestors: &mut Vec<String>) -> Result<Node, String> {
        if let Some(done) = self.extended.borrow().get(key) {
            return Ok(done.clone());
        }
        let value = self.top.get(key).cloned().unwrap_or(Node::Null);
        let Node::Map(map) = &value else {
            return Ok(value);
        };
        let Some(extends) = map.get("extends") else {
            return Ok(value);
        };
        // Ruby: `Array(value.fetch(:extends)).map(&:to_s)`.
        let names: Vec<String> = match extends {
            Node::Null => Vec::new(),
            Node::Seq(items) => items.iter().map(extends_name).collect(),
            other => vec![extends_name(other)],
        };
        let unknown: Vec<&str> = names
            .iter()
            .filter(|n| !self.top.contains_key(n))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let hint = if self.top.contains_key("include") {
                "; the file uses `include:`, which coffer ci does not follow"
            } else {
                ""
            };
            return Err(format!(
                "{key}: unknown keys in `extends` ({}){hint}",
                unknown.join(", ")
            ));
        }
        let invalid: Vec<&str> = names
            .iter()
            .filter(|n| !matches!(self.top.get(n), Some(Node::Map(_))))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            return Err(format!(
                "{key}: invalid base hashes in `extends` ({})",
                invalid.join(", ")
            ));
        }
        if ancestors.len() > MAX_EXTENDS_NESTING {
            return Err(format!(
                "{key}: nesting too deep in `extends` (at most {MAX_EXTENDS_NESTING} levels)"
            ));
        }
        if ancestors.iter().any(|a| a == key) {
            let mut chain = ancestors.clone();
            chain.push(key.to_owned());
            return Err(format!(
                "{key}: circular dependency detected in `extends` ({})",
                chain.join(" -> ")
            ));
        }
        ancestors.push(key.to_owned());
        let mut merged = Map::new();
        for name in &names {
            match self.extend(name, ancestors) {
                Ok(Node::Map(base)) => merged.deep_merge(&base),
                Ok(_) => {}
                Err(e) => {
                    ancestors.pop();
                    return Err(e);
                }
            }
        }
        ancestors.pop();
        merged.deep_merge(map);
        let result = Node::Map(merged);
        self.extended
            .borrow_mut()
            .insert(key.to_owned(), result.clone());
        Ok(result)
    }

    /// `node` with every `!reference` resolved against this configuration.
    pub(crate) fn resolve(&self, node: &Node) -> Result<Node, String> {
        Resolver {
            config: self,
            stack: Vec::new(),
            nodes: 0,
        }
        .resolve(node)
    }

    /// GitLab's `config.dig(*location)`: the first key is a top-level entry
    /// (with `extends:` applied), the others walk mappings only.
    fn dig(&self, location: &[String]) -> Result<Option<Node>, String> {
        let Some((first, rest)) = location.split_first() else {
            return Ok(None);
        };
        let Some(mut node) = self.extended(first)? else {
            return Ok(None);
        };
        for key in rest {
            match node {
                Node::Map(map) => match map.get(key) {
                    Some(next) => node = next.clone(),
                    None => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
        Ok(Some(node))
    }
}

pub(crate) fn is_job_name(key: &str) -> bool {
    !key.starts_with('.') && !RESERVED_KEYS.contains(&key)
}

fn extends_name(node: &Node) -> String {
    node.scalar_to_string()
        .unwrap_or_else(|| Inspect(node).to_string())
}

struct Resolver<'a> {
    config: &'a Config,
    /// Locations being resolved, innermost last.
    stack: Vec<Vec<String>>,
    /// Nodes produced by references so far.
    nodes: usize,
}

impl Resolver<'_> {
    fn resolve(&mut self, node: &Node) -> Result<Node, String> {
        Ok(match node {
            Node::Reference(items) => self.reference(items)?,
            Node::Seq(items) => Node::Seq(
                items
                    .iter()
                    .map(|n| self.resolve(n))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(map) => {
                let mut out = Map::new();
                for (k, v) in map.iter() {
                    out.insert(k.clone(), self.resolve(v)?);
                }
                Node::Map(out)
            }
            other => other.clone(),
        })
    }

    fn reference(&mut self, items: &[Node]) -> Result<Node, String> {
        let shown = || format!("{REFERENCE_TAG} {}", Inspect(&Node::Seq(items.to_vec())));
        let location: Option<Vec<String>> = items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect();
        let location = match location {
            Some(l) if !l.is_empty() => l,
            _ => return Err(format!("{} is not valid", shown())),
        };
        if self.stack.contains(&location) {
            return Err(format!("{} is part of a circular chain", shown()));
        }
        if self.stack.len() >= MAX_REFERENCE_NESTING {
            return Err(format!(
                "{} is nested too deeply: at most {MAX_REFERENCE_NESTING} levels of `{REFERENCE_TAG}` are supported",
                shown()
            ));
        }
        let Some(target) = self.config.dig(&location)? else {
            return Err(format!("{} could not be found", shown()));
        };
        self.stack.push(location);
        let resolved = self.resolve(&target);
        self.stack.pop();
        let resolved = resolved?;
        if resolved == Node::Null {
            return Err(format!("{} could not be found", shown()));
        }
        self.nodes += resolved.size();
        if self.nodes > MAX_REFERENCE_NODES {
            return Err(format!(
                "{} expands to too much: `{REFERENCE_TAG}` may produce at most {MAX_REFERENCE_NODES} values",
                shown()
            ));
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::yaml::parse;

    fn config(text: &str) -> Config {
        let Node::Map(top) = parse(text).unwrap() else {
            panic!("mapping expected")
        };
        Config::new(top)
    }

    #[test]
    fn extends_merges_deeply_child_wins_in_order() {
        let c = config(
            ".a: {variables: {A: a, B: a}, x: [1]}\n.b: {variables: {B: b, C: b}}\njob: {extends: [.a, .b], variables: {C: job}}\n",
        );
        let job = c.extended("job").unwrap().unwrap();
        let vars = job
            .as_map()
            .unwrap()
            .get("variables")
            .unwrap()
            .as_map()
            .unwrap();
        let got: Vec<_> = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("A".into(), "a".into()),
                ("B".into(), "b".into()),
                ("C".into(), "job".into())
            ]
        );
    }

    #[test]
    fn extends_errors_use_gitlab_messages() {
        let c = config("job: {extends: [.missing, .other]}\n.other: 1\n");
        assert_eq!(
            c.extended("job").unwrap_err(),
            "job: unknown keys in `extends` (.missing)"
        );
        let c = config("job: {extends: .other}\n.other: [1]\n");
        assert_eq!(
            c.extended("job").unwrap_err(),
            "job: invalid base hashes in `extends` (.other)"
        );
        let c = config("job: {extends: .a}\n.a: {extends: .b}\n.b: {extends: .a}\n");
        assert_eq!(
            c.extended("job").unwrap_err(),
            ".a: circular dependency detected in `extends` (job -> .a -> .b -> .a)"
        );
        let c = config("job: {extends: job}\n");
        assert_eq!(
            c.extended("job").unwrap_err(),
            "job: circular dependency detected in `extends` (job -> job)"
        );
    }

    #[test]
    fn extends_nesting_limit_is_ten_levels() {
        let chain = |n: usize| {
            let mut text = String::new();
            for i in 0..n {
                text.push_str(&format!(".t{i}: {{extends: .t{}}}\n", i + 1));
            }
            text.push_str(&format!(".t{n}: {{a: 1}}\n"));
            config(&text)
        };
        // `.t10` has 10 ancestors: allowed; `.t11` would have 11.
        assert!(chain(11).extended(".t0").is_ok());
        assert_eq!(
            chain(12).extended(".t0").unwrap_err(),
            ".t11: nesting too deep in `extends` (at most 10 levels)"
        );
    }

    #[test]
    fn references_resolve_through_extends_and_nest() {
        let c = config(
            ".base: {secrets: {A: {vault: a/b}}}\n.mid: {extends: .base}\n.ref: {s: !reference [.mid, secrets]}\n",
        );
        let node = parse("x: !reference [.ref, s]\n").unwrap();
        let resolved = c.resolve(&node).unwrap();
        let expected = parse("x: {A: {vault: a/b}}\n").unwrap();
        assert_eq!(resolved, expected);
    }

    #[test]
    fn reference_errors_use_gitlab_messages() {
        let c = config(
            ".a: {b: 1}\n.loop1: {x: !reference [.loop2, x]}\n.loop2: {x: !reference [.loop1, x]}\n",
        );
        let missing = parse("x: !reference [.a, c]\n").unwrap();
        assert_eq!(
            c.resolve(&missing).unwrap_err(),
            r#"!reference [".a", "c"] could not be found"#
        );
        let through_scalar = parse("x: !reference [.a, b, c]\n").unwrap();
        assert!(
            c.resolve(&through_scalar)
                .unwrap_err()
                .ends_with("could not be found")
        );
        let looping = parse("x: !reference [.loop1, x]\n").unwrap();
        assert_eq!(
            c.resolve(&looping).unwrap_err(),
            r#"!reference [".loop1", "x"] is part of a circular chain"#
        );
        let invalid = parse("x: !reference [.a, 1]\n").unwrap();
        assert_eq!(
            c.resolve(&invalid).unwrap_err(),
            r#"!reference [".a", 1] is not valid"#
        );
        let empty = parse("x: !reference []\n").unwrap();
        assert_eq!(c.resolve(&empty).unwrap_err(), "!reference [] is not valid");
    }

    #[test]
    fn reference_nesting_is_limited() {
        let mut text = String::from(".r0: {v: 1}\n");
        for i in 1..=11 {
            text.push_str(&format!(".r{i}: {{v: !reference [.r{}, v]}}\n", i - 1));
        }
        let c = config(&text);
        let ten = parse("x: !reference [.r9, v]\n").unwrap();
        assert_eq!(c.resolve(&ten).unwrap(), parse("x: 1\n").unwrap());
        let eleven = parse("x: !reference [.r11, v]\n").unwrap();
        let err = c.resolve(&eleven).unwrap_err();
        assert!(err.contains("nested too deeply"), "{err}");
    }

    #[test]
    fn reference_bombs_are_refused() {
        let mut text = String::from(".l0: {v: [a, a, a, a, a, a, a, a, a, a]}\n");
        for i in 1..=6 {
            let r = format!("!reference [.l{}, v]", i - 1);
            text.push_str(&format!(
                ".l{i}: {{v: [{r}, {r}, {r}, {r}, {r}, {r}, {r}, {r}, {r}, {r}]}}\n"
            ));
        }
        let c = config(&text);
        let bomb = parse("x: !reference [.l6, v]\n").unwrap();
        let err = c.resolve(&bomb).unwrap_err();
        assert!(err.contains("expands to too much"), "{err}");
    }

    #[test]
    fn jobs_exclude_hidden_and_reserved_keys() {
        let c = config(
            "default: {}\nvariables: {}\n.hidden: {}\nbuild: {script: [x]}\npages: {}\nstages: [a]\nodd: 1\n",
        );
        assert_eq!(c.job_names(), ["build", "pages"]);
    }
}
