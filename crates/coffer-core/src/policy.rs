//! The policy engine: rules, capabilities and evaluation. Pure functions.
//!
//! Semantics (default deny):
//! * a rule is `(rule type, path, capabilities)`; a path is an exact name or
//!   a prefix ending in `*`;
//! * the effective capabilities on an object are the union of the
//!   capabilities of every matching rule of the caller's roles (only roles
//!   whose association matched the caller's claims are considered);
//! * if any matching rule carries `deny`, the result is empty, whatever any
//!   other rule or role grants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// A set of capabilities, as a bit set.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<String>", try_from = "Vec<String>")]
pub struct Caps(u8);

impl Caps {
    pub const NONE: Caps = Caps(0);
    pub const READ: Caps = Caps(1);
    pub const LIST: Caps = Caps(2);
    pub const CREATE: Caps = Caps(4);
    pub const UPDATE: Caps = Caps(8);
    pub const DELETE: Caps = Caps(16);
    pub const DENY: Caps = Caps(32);
    /// Every grant (not `deny`).
    pub const ALL: Caps = Caps(1 | 2 | 4 | 8 | 16);

    const NAMES: [(Caps, &'static str); 6] = [
        (Caps::READ, "read"),
        (Caps::LIST, "list"),
        (Caps::CREATE, "create"),
        (Caps::UPDATE, "update"),
        (Caps::DELETE, "delete"),
        (Caps::DENY, "deny"),
    ];

    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn from_bits(bits: u8) -> Caps {
        Caps(bits & 63)
    }
    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn intersects(self, other: Caps) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }
    pub fn names(self) -> Vec<String> {
        Self::NAMES
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| (*n).to_owned())
            .collect()
    }
    /// Parse capability names; accepts a list and comma-separated entries.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Caps, CoreError> {
        let mut caps = Caps::NONE;
        for entry in names {
            for name in entry
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let lower = name.to_ascii_lowercase();
                let cap = Self::NAMES
                    .iter()
                    .find(|(_, n)| *n == lower)
                    .map(|(c, _)| *c)
                    .ok_or_else(|| CoreError::UnknownCapability(name.to_owned()))?;
                caps = caps.union(cap);
            }
        }
        Ok(caps)
    }
}

impl fmt::Debug for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Caps{:?}", self.names())
    }
}

impl From<Caps> for Vec<String> {
    fn from(c: Caps) -> Self {
        c.names()
    }
}

impl TryFrom<Vec<String>> for Caps {
    type Error = CoreError;
    fn try_from(v: Vec<String>) -> Result<Self, Self::Error> {
        Caps::parse(&v)
    }
}

/// What a rule's path refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RuleType {
    /// Secrets and keys (the default).
    Item,
    /// Database and other targets.
    Target,
    /// Access roles.
    Role,
    /// Auth methods.
    AuthMethod,
}

impl RuleType {
    pub const ALL: [RuleType; 4] = [
        RuleType::Item,
        RuleType::Target,
        RuleType::Role,
        RuleType::AuthMethod,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Item => "item-rule",
            RuleType::Target => "target-rule",
            RuleType::Role => "role-rule",
            RuleType::AuthMethod => "auth-method-rule",
        }
    }
}

impl fmt::Display for RuleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleType {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "" | "item-rule" | "item" => Ok(RuleType::Item),
            "target-rule" | "target" => Ok(RuleType::Target),
            "role-rule" | "role" => Ok(RuleType::Role),
            "auth-method-rule" | "auth-method" => Ok(RuleType::AuthMethod),
            _ => Err(CoreError::UnknownRuleType(s.to_owned())),
        }
    }
}

/// One path rule of a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub rule_type: RuleType,
    /// Normalised path: exact name or prefix ending in `*`.
    pub path: String,
    pub caps: Caps,
}

impl Rule {
    /// Does this rule's path cover `name`?
    pub fn covers(&self, name: &str) -> bool {
        path_covers(&self.path, name)
    }
}

/// Exact match, or prefix match for a path ending in `*`.
pub fn path_covers(path: &str, name: &str) -> bool {
    match path.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => path == name,
    }
}

/// Effective capabilities of a rule set on one object. `deny` wins.
pub fn effective<'a, I>(rules: I, rule_type: RuleType, name: &str) -> Caps
where
    I: IntoIterator<Item = &'a Rule>,
{
    let mut caps = Caps::NONE;
    for rule in rules {
        if rule.rule_type == rule_type && rule.covers(name) {
            if rule.caps.contains(Caps::DENY) {
                return Caps::NONE;
            }
            caps = caps.union(rule.caps);
        }
    }
    caps
}

/// May the rule set perform `need` (all of it) on the object?
pub fn allows<'a, I>(rules: I, rule_type: RuleType, name: &str, need: Caps) -> bool
where
    I: IntoIterator<Item = &'a Rule>,
{
    !need.is_empty() && effective(rules, rule_type, name).contains(need)
}

/// May the rule set perform at least one capability of `any` on the object?
pub fn allows_any<'a, I>(rules: I, rule_type: RuleType, name: &str, any: Caps) -> bool
where
    I: IntoIterator<Item = &'a Rule>,
{
    effective(rules, rule_type, name).intersects(any)
}

/// Could anything under `folder` (which ends in `/`) be visible with `need`?
/// Used to prune folder listings without revealing denied subtrees.
pub fn may_see_under<'a, I>(rules: I, rule_type: RuleType, folder: &str, need: Caps) -> bool
where
    I: IntoIterator<Item = &'a Rule>,
{
    rules.into_iter().any(|r| {
        r.rule_type == rule_type && r.caps.contains(need) && !r.caps.contains(Caps::DENY) && {
            let p = r.path.strip_suffix('*').unwrap_or(&r.path);
            p.starts_with(folder) || folder.starts_with(p)
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A rule from its parts (shared with the delegation tests).
    pub(crate) fn rule(t: RuleType, p: &str, caps: &[&str]) -> Rule {
        Rule {
            rule_type: t,
            path: p.into(),
            caps: Caps::parse(caps).unwrap(),
        }
    }

    #[test]
    fn default_deny() {
        assert!(!allows(&[], RuleType::Item, "/a", Caps::READ));
        assert!(!allows(
            &[rule(RuleType::Item, "/a/*", &["read"])],
            RuleType::Item,
            "/a/x",
            Caps::NONE
        ));
    }

    #[test]
    fn glob_and_deny_precedence() {
        let rules = vec![
            rule(RuleType::Item, "/path/to/folder/*", &["read", "list"]),
            rule(RuleType::Item, "/path/to/folder/topSecret", &["deny"]),
        ];
        assert!(allows(
            &rules,
            RuleType::Item,
            "/path/to/folder/x",
            Caps::READ
        ));
        assert!(allows(
            &rules,
            RuleType::Item,
            "/path/to/folder/a/b",
            Caps::LIST
        ));
        assert!(!allows(
            &rules,
            RuleType::Item,
            "/path/to/folder/topSecret",
            Caps::READ
        ));
        assert!(!allows(
            &rules,
            RuleType::Item,
            "/path/to/folder",
            Caps::READ
        ));
        assert!(!allows(
            &rules,
            RuleType::Item,
            "/path/to/folderX",
            Caps::READ
        ));
        assert!(!allows(
            &rules,
            RuleType::Role,
            "/path/to/folder/x",
            Caps::READ
        ));
    }

    #[test]
    fn caps_parse() {
        assert_eq!(
            Caps::parse(&["read,list", "Create"]).unwrap(),
            Caps::READ.union(Caps::LIST).union(Caps::CREATE)
        );
        assert!(Caps::parse(&["sudo"]).is_err());
        assert_eq!(
            Caps::ALL.names(),
            vec!["read", "list", "create", "update", "delete"]
        );
    }

    #[test]
    fn rule_type_parse() {
        assert_eq!("item-rule".parse::<RuleType>().unwrap(), RuleType::Item);
        assert_eq!("".parse::<RuleType>().unwrap(), RuleType::Item);
        assert_eq!(
            "auth_method_rule".parse::<RuleType>().unwrap(),
            RuleType::AuthMethod
        );
        assert!("bogus".parse::<RuleType>().is_err());
    }

    /// Reference model of the policy: evaluate per rule from first principles.
    fn model(rules: &[Rule], name: &str, need: Caps) -> bool {
        let matching: Vec<&Rule> = rules
            .iter()
            .filter(|r| r.rule_type == RuleType::Item)
            .filter(|r| {
                if r.path.ends_with('*') {
                    name.len() >= r.path.len() - 1
                        && name[..r.path.len() - 1] == r.path[..r.path.len() - 1]
                } else {
                    r.path == name
                }
            })
            .collect();
        if matching
            .iter()
            .any(|r| r.caps.bits() & Caps::DENY.bits() != 0)
        {
            return false;
        }
        if need.is_empty() {
            return false;
        }
        let mut bits = 0u8;
        for r in matching {
            bits |= r.caps.bits();
        }
        bits & need.bits() == need.bits()
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            prop::sample::select(vec!["/a", "/a/b", "/a/*", "/a/b*", "/*", "/b/*", "/a/b/c"]),
            0u8..64,
            prop::bool::weighted(0.9),
        )
            .prop_map(|(p, bits, item)| Rule {
                rule_type: if item { RuleType::Item } else { RuleType::Role },
                path: p.to_owned(),
                caps: Caps::from_bits(bits),
            })
    }

    proptest! {
        #[test]
        fn engine_agrees_with_model(
            rules in prop::collection::vec(arb_rule(), 0..6),
            name in prop::sample::select(vec!["/a", "/a/b", "/a/b/c", "/a/bc", "/b/x", "/c"]),
            need in 0u8..32,
        ) {
            let need = Caps::from_bits(need);
            prop_assert_eq!(allows(&rules, RuleType::Item, name, need), model(&rules, name, need));
        }

        /// Adding a deny rule that covers a name can only remove rights; order never matters.
        #[test]
        fn deny_wins_and_order_is_irrelevant(
            mut rules in prop::collection::vec(arb_rule(), 0..6),
            name in prop::sample::select(vec!["/a", "/a/b", "/a/b/c", "/b/x"]),
        ) {
            let before = effective(&rules, RuleType::Item, name);
            rules.reverse();
            prop_assert_eq!(before, effective(&rules, RuleType::Item, name));
            rules.push(Rule { rule_type: RuleType::Item, path: name.to_owned(), caps: Caps::DENY });
            prop_assert_eq!(effective(&rules, RuleType::Item, name), Caps::NONE);
        }
    }
}
