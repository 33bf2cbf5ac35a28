//! The YAML document as a plain tree ([`Node`]), read with serde-saphyr.
//!
//! serde-saphyr applies `<<` merge keys (YAML 1.1, as Psych does for
//! GitLab), keeps every `!reference` tag (read through
//! [`serde_saphyr::Tagged`]) and refuses alias bombs through its node
//! budget. Mapping keys become strings; a repeated key keeps its first
//! position and its last value, as a Ruby `Hash` does.
//!
//! Scalars follow serde-saphyr's YAML 1.2 inference plus Psych's YAML 1.1
//! booleans (`yes`/`no`/`on`/`off` in any case; `y`/`n` stay strings, as
//! in Psych). Two choices differ from Psych on purpose: integers written
//! with leading zeros (`0755`) or underscores (`1_000`) stay strings instead
//! of becoming `493` and `1000`.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The `!reference` tag.
pub(crate) const REFERENCE_TAG: &str = "!reference";

/// One YAML node after parsing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
    /// `!reference [key, key, …]`, unresolved.
    Reference(Vec<Node>),
}

/// A mapping with string keys, in document order, indexed by key (large
/// CI files with long `extends:` lists must not turn merges quadratic).
#[derive(Clone, Debug, Default)]
pub(crate) struct Map {
    entries: Vec<(String, Node)>,
    index: HashMap<String, usize>,
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Map {
    pub(crate) fn new() -> Self {
        Map::default()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Sets `key`: an existing key keeps its position (Ruby `Hash#[]=`).
    pub(crate) fn insert(&mut self, key: String, value: Node) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// ActiveSupport `Hash#deep_merge`: `other` wins, except that two
    /// mappings under the same key are merged recursively. Keys of `self`
    /// keep their order; new keys of `other` follow.
    pub(crate) fn deep_merge(&mut self, other: &Map) {
        for (key, value) in other.iter() {
            match (self.get_mut(key), value) {
                (Some(Node::Map(mine)), Node::Map(theirs)) => mine.deep_merge(theirs),
                _ => self.insert(key.clone(), value.clone()),
            }
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        let i = *self.index.get(key)?;
        Some(&mut self.entries[i].1)
    }
}

impl Node {
    /// Ruby's `blank?`: nil, false, empty or whitespace-only strings, empty
    /// collections.
    pub(crate) fn is_blank(&self) -> bool {
        match self {
            Node::Null | Node::Bool(false) => true,
            Node::Str(s) => s.chars().all(char::is_whitespace),
            Node::Seq(items) => items.is_empty(),
            Node::Map(map) => map.is_empty(),
            _ => false,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_map(&self) -> Option<&Map> {
        match self {
            Node::Map(m) => Some(m),
            _ => None,
        }
    }

    /// A scalar as Ruby's `to_s` would print it (for keys, `extends:` names
    /// and integer variable values); `None` for collections.
    pub(crate) fn scalar_to_string(&self) -> Option<String> {
        match self {
            Node::Null => Some(String::new()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) => Some(ruby_float(*f)),
            Node::Str(s) => Some(s.clone()),
            Node::Seq(_) | Node::Map(_) | Node::Reference(_) => None,
        }
    }

    /// Number of nodes in this tree (used to cap `!reference` expansion).
    pub(crate) fn size(&self) -> usize {
        match self {
            Node::Seq(items) | Node::Reference(items) => {
                1 + items.iter().map(Node::size).sum::<usize>()
            }
            Node::Map(map) => 1 + map.iter().map(|(_, v)| v.size()).sum::<usize>(),
            _ => 1,
        }
    }
}

fn ruby_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// Ruby's `inspect`, used in GitLab's `!reference` error messages
/// (`!reference [".job", "script"] could not be found`).
pub(crate) struct Inspect<'a>(pub(crate) &'a Node);

impl fmt::Display for Inspect<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Node::Null => f.write_str("nil"),
            Node::Bool(b) => write!(f, "{b}"),
            Node::Int(i) => write!(f, "{i}"),
            Node::Float(x) => f.write_str(&ruby_float(*x)),
            Node::Str(s) => inspect_str(f, s),
            Node::Seq(items) => inspect_seq(f, items),
            Node::Reference(items) => {
                write!(f, "{REFERENCE_TAG} ")?;
                inspect_seq(f, items)
            }
            Node::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {}", Inspect(v))?;
                }
                f.write_str("}")
            }
        }
    }
}

pub(crate) fn inspect_seq(f: &mut fmt::Formatter<'_>, items: &[Node]) -> fmt::Result {
    f.write_str("[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Inspect(item))?;
    }
    f.write_str("]")
}

fn inspect_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{:04X}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Why the text is not a usable YAML document.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// serde-saphyr's message (with line, column and a snippet).
    Syntax(String),
    /// More than one document that is not a `spec:` header + configuration.
    Documents(usize),
}

/// Parses the configuration. A `spec:` header document followed by the
/// configuration document (GitLab's `spec: inputs:` files) is accepted;
/// the header is skipped (inputs are not interpolated).
pub(crate) fn parse(text: &str) -> Result<Node, ParseError> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    };
    let mut docs: Vec<Node> = serde_saphyr::from_str_multiple_with_options(text, options)
        .map_err(|e| ParseError::Syntax(e.to_string()))?;
    match docs.len() {
        0 => Ok(Node::Null),
        1 => Ok(docs.remove(0)),
        2 if docs[0].as_map().is_some_and(|m| m.contains_key("spec")) => Ok(docs.remove(1)),
        n => Err(ParseError::Documents(n)),
    }
}

/// The node without its tag, as serde-saphyr reports it.
struct Untagged(Node);

impl<'de> Deserialize<'de> for Untagged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Untagged;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E>(self) -> Result<Untagged, E> {
        Ok(Untagged(Node::Null))
    }

    fn visit_none<E>(self) -> Result<Untagged, E> {
        Ok(Untagged(Node::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Untagged, D::Error> {
        Node::deserialize(d).map(Untagged)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Untagged, E> {
        Ok(Untagged(Node::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Untagged, E> {
        Ok(Untagged(Node::Int(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Untagged, E> {
        Ok(Untagged(Node::Int(v.into())))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Untagged, E> {
        Ok(Untagged(Node::Int(v)))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Untagged, E> {
        i128::try_from(v)
            .map(|v| Untagged(Node::Int(v)))
            .map_err(|_| E::custom("integer too large"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Untagged, E> {
        Ok(Untagged(Node::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Untagged, E> {
        Ok(Untagged(Node::Str(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Untagged, E> {
        Ok(Untagged(Node::Str(v)))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Untagged, E> {
        String::from_utf8(v.to_vec())
            .map(|s| Untagged(Node::Str(s)))
            .map_err(|_| E::custom("binary values are not supported"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Untagged, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Untagged(Node::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Untagged, A::Error> {
        let mut map = Map::new();
        while let Some((key, value)) = access.next_entry::<Node, Node>()? {
            let key = key.scalar_to_string().ok_or_else(|| {
                de::Error::custom(format!(
                    "mapping keys must be strings, found {}",
                    Inspect(&key)
                ))
            })?;
            map.insert(key, value);
        }
        Ok(Untagged(Node::Map(map)))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let serde_saphyr::Tagged(spanned, tag) =
            serde_saphyr::Tagged::<serde_saphyr::Spanned<Untagged>>::deserialize(deserializer)?;
        let Untagged(mut node) = spanned.value;
        // The parser runs with YAML 1.2 booleans; Psych's YAML 1.1 ones
        // (`yes`, `no`, `on`, `off`, any case, but not `y`/`n`) are applied
        // here to plain scalars: untagged, and as long in the source as
        // their text (a quoted one is longer).
        if let Node::Str(text) = &node
            && tag.is_none()
            && spanned.defined.span().byte_len() == Some(text.len() as u64)
        {
            match text.to_ascii_lowercase().as_str() {
                "yes" | "on" => node = Node::Bool(true),
                "no" | "off" => node = Node::Bool(false),
                _ => {}
            }
        }
        match (tag.as_deref(), node) {
            (Some(REFERENCE_TAG), Node::Seq(items)) => Ok(Node::Reference(items)),
            (Some(REFERENCE_TAG), other) => Err(de::Error::custom(format!(
                "{REFERENCE_TAG} {} is not valid",
                Inspect(&other)
            ))),
            // Other tags (`!!str`, application tags) keep their value.
            (_, node) => Ok(node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> &Map {
        node.as_map().expect("a mapping")
    }

    #[test]
    fn merge_keys_are_applied_and_explicit_keys_win() {
        let node = parse("a: &a {k: 1, j: 2}\nb:\n  <<: *a\n  k: 3\n").unwrap();
        let b = map(map(&node).get("b").unwrap());
        assert_eq!(b.get("k"), Some(&Node::Int(3)));
        assert_eq!(b.get("j"), Some(&Node::Int(2)));
        assert!(!b.contains_key("<<"));
    }

    #[test]
    fn references_are_captured_anywhere() {
        let node = parse("s: !reference [.x, script]\nt: [a, !reference [.y, z]]\n").unwrap();
        let m = map(&node);
        assert_eq!(
            m.get("s"),
            Some(&Node::Reference(vec![
                Node::Str(".x".into()),
                Node::Str("script".into())
            ]))
        );
        let Some(Node::Seq(t)) = m.get("t") else {
            panic!("t is a sequence")
        };
        assert!(matches!(t[1], Node::Reference(_)));
    }

    #[test]
    fn a_reference_on_a_scalar_is_refused() {
        let err = parse("a: !reference .x\n").unwrap_err();
        let ParseError::Syntax(msg) = err else {
            panic!("syntax error expected")
        };
        assert!(msg.contains("!reference \".x\" is not valid"), "{msg}");
    }

    #[test]
    fn repeated_keys_keep_the_last_value_in_the_first_position() {
        let node = parse("a: 1\nb: 2\na: 3\n").unwrap();
        let keys: Vec<_> = map(&node).keys().cloned().collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(map(&node).get("a"), Some(&Node::Int(3)));
    }

    #[test]
    fn booleans_follow_psych() {
        let node = parse(
            "a: yes\nb: 'yes'\nc: Off\nd: n\ne: Y\nf: !!str on\ng: true\nh: \"no\"\ni: &x on\nj: *x\n",
        )
        .unwrap();
        let m = map(&node);
        let get = |k: &str| m.get(k).unwrap().clone();
        assert_eq!(get("a"), Node::Bool(true));
        assert_eq!(get("b"), Node::Str("yes".into()));
        assert_eq!(get("c"), Node::Bool(false));
        assert_eq!(get("d"), Node::Str("n".into()));
        assert_eq!(get("e"), Node::Str("Y".into()));
        assert_eq!(get("f"), Node::Str("on".into()));
        assert_eq!(get("g"), Node::Bool(true));
        assert_eq!(get("h"), Node::Str("no".into()));
        assert_eq!(get("i"), Node::Bool(true));
        assert_eq!(get("j"), Node::Bool(true));
    }

    #[test]
    fn leading_zeros_and_underscores_stay_strings() {
        let node = parse("a: 0755\nb: 1_000\nc: 0x1F\nd: '00'\n").unwrap();
        let m = map(&node);
        assert_eq!(m.get("a"), Some(&Node::Str("0755".into())));
        assert_eq!(m.get("b"), Some(&Node::Str("1_000".into())));
        assert_eq!(m.get("c"), Some(&Node::Int(31)));
        assert_eq!(m.get("d"), Some(&Node::Str("00".into())));
    }

    #[test]
    fn scalar_keys_become_strings_and_collection_keys_are_refused() {
        let node = parse("1: x\ntrue: y\n").unwrap();
        let keys: Vec<_> = map(&node).keys().cloned().collect();
        assert_eq!(keys, ["1", "true"]);
        assert!(matches!(parse("? [a]\n: 1\n"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn spec_header_documents_are_skipped() {
        let node = parse("spec:\n  inputs: {}\n---\njob: {a: 1}\n").unwrap();
        assert!(map(&node).contains_key("job"));
        assert!(matches!(
            parse("a: 1\n---\nb: 2\n"),
            Err(ParseError::Documents(2))
        ));
        assert_eq!(parse("").unwrap(), Node::Null);
    }

    #[test]
    fn deep_merge_merges_mappings_and_replaces_the_rest() {
        let Node::Map(mut base) = parse("a: {x: 1, y: [1]}\nb: 1\n").unwrap() else {
            panic!()
        };
        let Node::Map(child) = parse("a: {y: [2], z: 3}\nc: 4\n").unwrap() else {
            panic!()
        };
        base.deep_merge(&child);
        let expected = parse("a: {x: 1, y: [2], z: 3}\nb: 1\nc: 4\n").unwrap();
        assert_eq!(Node::Map(base), expected);
    }

    #[test]
    fn inspect_matches_ruby() {
        let node = Node::Seq(vec![
            Node::Str(".job".into()),
            Node::Str("a\"b".into()),
            Node::Int(1),
        ]);
        assert_eq!(Inspect(&node).to_string(), r#"[".job", "a\"b", 1]"#);
        assert_eq!(Inspect(&Node::Null).to_string(), "nil");
    }

    #[test]
    fn blank_follows_ruby() {
        assert!(Node::Str("  ".into()).is_blank());
        assert!(Node::Null.is_blank());
        assert!(Node::Bool(false).is_blank());
        assert!(Node::Map(Map::new()).is_blank());
        assert!(!Node::Int(0).is_blank());
        assert!(!Node::Str("x".into()).is_blank());
    }
}
