//! Delegation without escalation: which role changes a caller may make.
//!
//! Rights flow through roles: a role's rules reach every identity whose
//! auth method is associated with it. A caller that may edit roles
//! (`role-rule`) or associate them (`auth-method-rule`) could therefore hand
//! itself, or anyone, more than it holds. The rules here forbid that:
//!
//! 1. a caller may only create, change, associate, dissociate or delete a
//!    role whose rights are **within its own**, before and after the change
//!    ([`check_holds_role`]): every capability, per rule type and object,
//!    that the role grants, the caller holds, and the role's `audit-access`
//!    is not above the caller's;
//! 2. so a new rule may only grant what the caller holds;
//! 3. lifting a `deny` (deleting a deny rule, replacing it, deleting the
//!    role that carries it or one of its associations) unblocks whatever the
//!    holders' other roles grant under it: the caller must hold everything
//!    any role grants there ([`check_lift_denies`]).
//!
//! "Within" is decided exactly, not by comparing rule texts: the
//! capabilities a rule set gives on an object depend only on which of the
//! rule paths cover the object's name, so a finite set of representative
//! names (every exact path, and for every prefix rule `p*` a name just
//! under `p` that no longer path covers) stands for every possible name
//! ([`within`]). The property tests check this against brute force over a
//! universe of names, and that no sequence of allowed changes ever gives
//! any identity a right the caller did not hold.

use std::fmt;

use crate::model::{AuditAccess, Role};
use crate::policy::{Caps, Rule, RuleType, effective, path_covers};

/// Where one rule set grants more than another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excess {
    pub rule_type: RuleType,
    pub scope: Scope,
    /// The capabilities granted there and not held.
    pub caps: Caps,
}

/// The objects an [`Excess`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One object name.
    Name(String),
    /// Objects under a prefix that no more specific rule covers.
    Under(String),
}

impl fmt::Display for Excess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) on ",
            self.caps.names().join("+"),
            self.rule_type
        )?;
        match &self.scope {
            Scope::Name(n) => write!(f, "{n:?}"),
            Scope::Under(p) => write!(f, "names starting with {p:?}"),
        }
    }
}

/// Marks a representative name "just under a prefix": no valid name
/// contains it, so no rule path can extend a prefix with it.
const FRESH: char = '\0';

/// Representative names of a rule set's paths (see the module docs).
fn representatives<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = paths
        .map(|p| match p.strip_suffix('*') {
            Some(prefix) => format!("{prefix}{FRESH}"),
            None => p.to_owned(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn scope_of(name: &str) -> Scope {
    match name.strip_suffix(FRESH) {
        Some(prefix) => Scope::Under(prefix.to_owned()),
        None => Scope::Name(name.to_owned()),
    }
}

/// Does `held` give, on every object of every rule type, at least the
/// capabilities `granted` gives? `Err` names one object where it does not.
pub fn within<'a, G, H>(granted: G, held: H) -> Result<(), Excess>
where
    G: IntoIterator<Item = &'a Rule>,
    H: IntoIterator<Item = &'a Rule>,
{
    let granted: Vec<&Rule> = granted.into_iter().collect();
    let held: Vec<&Rule> = held.into_iter().collect();
    within_scope(&granted, &held, None)
}

/// [`within`], restricted to the objects a rule path `scope` covers (with
/// its rule type).
fn within_scope(
    granted: &[&Rule],
    held: &[&Rule],
    scope: Option<(RuleType, &str)>,
) -> Result<(), Excess> {
    for rule_type in RuleType::ALL {
        if scope.is_some_and(|(t, _)| t != rule_type) {
            continue;
        }
        let of_type = |r: &&&Rule| r.rule_type == rule_type;
        // Only names some granting rule covers can exceed anything.
        if !granted
            .iter()
            .filter(of_type)
            .any(|r| !r.caps.contains(Caps::DENY) && !r.caps.is_empty())
        {
            continue;
        }
        let mut paths: Vec<&str> = granted
            .iter()
            .chain(held)
            .filter(of_type)
            .map(|r| r.path.as_str())
            .collect();
        if let Some((_, s)) = scope {
            paths.push(s);
        }
        for name in representatives(paths.into_iter()) {
            if scope.is_some_and(|(_, s)| !path_covers(s, &name)) {
                continue;
            }
            let want = effective(granted.iter().copied(), rule_type, &name);
            if want.is_empty() {
                continue;
            }
            let have = effective(held.iter().copied(), rule_type, &name);
            if !have.contains(want) {
                return Err(Excess {
                    rule_type,
                    scope: scope_of(&name),
                    caps: Caps::from_bits(want.bits() & !have.bits()),
                });
            }
        }
    }
    Ok(())
}

/// The rights of the caller making a delegation change.
#[derive(Debug, Clone)]
pub struct Grantor<'a> {
    /// Every rule of the caller's roles (the ones its token matched).
    pub rules: Vec<&'a Rule>,
    /// The highest `audit-access` among those roles.
    pub audit_access: AuditAccess,
}

impl<'a> Grantor<'a> {
    pub fn new<I>(roles: I) -> Grantor<'a>
    where
        I: IntoIterator<Item = &'a Role>,
    {
        let mut rules = Vec::new();
        let mut audit_access = AuditAccess::None;
        for role in roles {
            rules.extend(role.rules.iter());
            audit_access = audit_access.max(role.audit_access);
        }
        Grantor {
            rules,
            audit_access,
        }
    }
}

/// Why a delegation change is refused. The messages name the role and one
/// right the caller lacks, so the user knows what to ask for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    #[error(
        "access denied: role {role:?} grants {excess}, which this caller does not hold; a caller may only change, associate or delete roles within its own rights"
    )]
    RoleExceeds { role: String, excess: Excess },
    #[error(
        "access denied: role {role:?} would grant {excess}, which this caller does not hold; a caller can only grant what it holds"
    )]
    WouldGrant { role: String, excess: Excess },
    #[error(
        "access denied: audit-access {asked} on role {role:?} is above this caller's ({held}); a caller cannot give more audit access than it has"
    )]
    AuditAccess {
        role: String,
        asked: &'static str,
        held: &'static str,
    },
    #[error(
        "access denied: lifting the deny on {path:?} ({rule_type}) of role {role:?} would unblock {excess}, which this caller does not hold"
    )]
    LiftsDeny {
        role: String,
        rule_type: RuleType,
        path: String,
        excess: Excess,
    },
}

/// The role's rights are within the caller's: rule 1 of the module docs.
pub fn check_holds_role(
    grantor: &Grantor<'_>,
    role: &str,
    rules: &[Rule],
    audit_access: AuditAccess,
) -> Result<(), DelegationError> {
    if audit_access > grantor.audit_access {
        return Err(DelegationError::AuditAccess {
            role: role.to_owned(),
            asked: audit_access.as_str(),
            held: grantor.audit_access.as_str(),
        });
    }
    within(rules, grantor.rules.iter().copied()).map_err(|excess| DelegationError::RoleExceeds {
        role: role.to_owned(),
        excess,
    })
}

/// Lifting `denies` of `role` unblocks at most what any role grants under
/// them (`all_rules`): the caller must hold all of it (rule 3).
pub fn check_lift_denies<'a, D, A>(
    grantor: &Grantor<'_>,
    role: &str,
    denies: D,
    all_rules: A,
) -> Result<(), DelegationError>
where
    D: IntoIterator<Item = &'a Rule>,
    A: IntoIterator<Item = &'a Rule>,
{
    let grants: Vec<&Rule> = all_rules
        .into_iter()
        .filter(|r| !r.caps.contains(Caps::DENY))
        .collect();
    for deny in denies.into_iter().filter(|r| r.caps.contains(Caps::DENY)) {
        within_scope(&grants, &grantor.rules, Some((deny.rule_type, &deny.path))).map_err(
            |excess| DelegationError::LiftsDeny {
                role: role.to_owned(),
                rule_type: deny.rule_type,
                path: deny.path.clone(),
                excess,
            },
        )?;
    }
    Ok(())
}

/// A change of one role from `before` (None: created) to `after` (None:
/// deleted), with `all_roles` the roles that exist before the change.
pub fn check_role_change<'a, A>(
    grantor: &Grantor<'_>,
    role: &str,
    before: Option<(&[Rule], AuditAccess)>,
    after: Option<(&[Rule], AuditAccess)>,
    all_roles: A,
) -> Result<(), DelegationError>
where
    A: IntoIterator<Item = &'a Role>,
{
    if let Some((rules, audit)) = before {
        check_holds_role(grantor, role, rules, audit)?;
    }
    if let Some((rules, audit)) = after {
        check_holds_role(grantor, role, rules, audit).map_err(|e| match e {
            DelegationError::RoleExceeds { role, excess } => {
                DelegationError::WouldGrant { role, excess }
            }
            other => other,
        })?;
    }
    if let Some((rules, _)) = before {
        let kept: &[Rule] = after.map_or(&[], |(r, _)| r);
        let lifted = rules
            .iter()
            .filter(|r| r.caps.contains(Caps::DENY) && !kept.contains(r));
        let all = all_roles.into_iter().flat_map(|r| r.rules.iter());
        check_lift_denies(grantor, role, lifted, all)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::policy::tests::rule;

    fn role(name: &str, audit: AuditAccess, rules: Vec<Rule>) -> Role {
        Role {
            name: name.into(),
            description: String::new(),
            audit_access: audit,
            rules,
            created_ms: 0,
            modified_ms: 0,
        }
    }

    #[test]
    fn a_team_manager_cannot_grant_itself_admin() {
        // The hostile review's escalation: role-rule and auth-method-rule on /team/* only.
        let manager = role(
            "/team/manager",
            AuditAccess::None,
            vec![
                rule(
                    RuleType::Role,
                    "/team/*",
                    &["read", "list", "create", "update"],
                ),
                rule(RuleType::AuthMethod, "/team/*", &["read", "update"]),
            ],
        );
        let g = Grantor::new([&manager]);
        // Creating /team/pwn with audit-access all is refused...
        let e = check_role_change(
            &g,
            "/team/pwn",
            None,
            Some((&[], AuditAccess::All)),
            [&manager],
        )
        .unwrap_err();
        assert!(matches!(e, DelegationError::AuditAccess { .. }), "{e}");
        // ...and so is giving it read on /*.
        let pwn = [rule(RuleType::Item, "/*", &["read"])];
        let e = check_role_change(
            &g,
            "/team/pwn",
            Some((&[], AuditAccess::None)),
            Some((&pwn, AuditAccess::None)),
            [&manager],
        )
        .unwrap_err();
        assert!(e.to_string().contains("read (item-rule)"), "{e}");
        // Granting what it holds is fine.
        let ok = [rule(RuleType::Role, "/team/sub/*", &["read", "update"])];
        check_role_change(
            &g,
            "/team/pwn",
            Some((&[], AuditAccess::None)),
            Some((&ok, AuditAccess::None)),
            [&manager],
        )
        .unwrap();
        // It cannot touch a role holding more (deny /* on /admin).
        let admin = role(
            "/admin",
            AuditAccess::All,
            vec![rule(RuleType::Item, "/*", &["read"])],
        );
        let e = check_holds_role(&g, "/admin", &admin.rules, admin.audit_access).unwrap_err();
        assert!(matches!(e, DelegationError::AuditAccess { .. }), "{e}");
    }

    #[test]
    fn prefixes_are_compared_exactly() {
        let held = [
            rule(RuleType::Item, "/a/*", &["read"]),
            rule(RuleType::Item, "/a/b", &["deny"]),
        ];
        // /a/b is denied to the holder, so /a/* is not within.
        let e = within(&[rule(RuleType::Item, "/a/*", &["read"])], &held).unwrap_err();
        assert_eq!(e.scope, Scope::Name("/a/b".into()));
        // A narrower prefix not covering /a/b is.
        within(&[rule(RuleType::Item, "/a/c*", &["read"])], &held).unwrap();
        // An exact rule held only partly: update is missing.
        let e = within(&[rule(RuleType::Item, "/a/x", &["read", "update"])], &held).unwrap_err();
        assert_eq!(e.caps, Caps::UPDATE);
        // Exact grants do not cover a prefix.
        let e = within(
            &[rule(RuleType::Item, "/p/*", &["read"])],
            &[rule(RuleType::Item, "/p/x", &["read"])],
        )
        .unwrap_err();
        assert_eq!(e.scope, Scope::Under("/p/".into()));
        // deny-only rule sets grant nothing.
        within(&[rule(RuleType::Item, "/*", &["deny"])], &[]).unwrap();
    }

    #[test]
    fn lifting_a_deny_needs_what_it_blocks() {
        let other = role(
            "/r1",
            AuditAccess::None,
            vec![rule(RuleType::Item, "/a/*", &["read"])],
        );
        let blocker = role(
            "/r2",
            AuditAccess::None,
            vec![rule(RuleType::Item, "/a/s", &["deny"])],
        );
        // The caller holds both roles: it cannot read /a/s itself.
        let g = Grantor::new([&other, &blocker]);
        // Deleting the deny-only role would unblock /a/s.
        let e = check_role_change(
            &g,
            "/r2",
            Some((&blocker.rules, AuditAccess::None)),
            None,
            [&other, &blocker],
        )
        .unwrap_err();
        assert!(matches!(e, DelegationError::LiftsDeny { .. }), "{e}");
    }

    // ---- property tests against brute force ----

    const TYPES: [RuleType; 2] = [RuleType::Item, RuleType::Role];

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            prop::sample::select(PATHS.to_vec()),
            prop::sample::select(vec![0u8, 1, 2, 3, 8, 9, 31, 32, 33]),
            0usize..2,
        )
            .prop_map(|(p, bits, t)| Rule {
                rule_type: TYPES[t],
                path: p.to_owned(),
                caps: Caps::from_bits(bits),
            })
    }

    const PATHS: [&str; 9] = [
        "/a", "/a/b", "/a/*", "/a/b*", "/*", "/b/*", "/a/b/c", "/b", "/ab*",
    ];

    /// Brute-force universe: every prefix of every path the rules may use
    /// (with `*` removed), each extended by every character those paths use
    /// and by `z`, which none uses (a "fresh" name under each prefix).
    fn universe() -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for p in PATHS {
            let p = p.trim_end_matches('*');
            for end in 0..=p.len() {
                let prefix = &p[..end];
                names.insert(prefix.to_owned());
                for c in ['/', 'a', 'b', 'c', 'z'] {
                    names.insert(format!("{prefix}{c}"));
                }
            }
        }
        names.into_iter().collect()
    }

    fn brute_within(granted: &[Rule], held: &[Rule], universe: &[String]) -> bool {
        TYPES.iter().all(|t| {
            universe
                .iter()
                .all(|n| effective(held, *t, n).contains(effective(granted, *t, n)))
        })
    }

    proptest! {
        #[test]
        fn within_agrees_with_brute_force(
            granted in prop::collection::vec(arb_rule(), 0..5),
            held in prop::collection::vec(arb_rule(), 0..5),
        ) {
            let u = universe();
            prop_assert_eq!(within(&granted, &held).is_ok(), brute_within(&granted, &held, &u));
        }

        /// No sequence of changes the checks allow gives any identity a
        /// right the caller did not hold at the start.
        #[test]
        fn no_escalation(
            start in prop::collection::vec(prop::collection::vec(arb_rule(), 0..4), 3),
            audits in prop::collection::vec(0u8..3, 3),
            // Holders: which roles each identity has (identity 0 is the caller).
            holders in prop::collection::vec(prop::collection::vec(0usize..3, 0..3), 2),
            ops in prop::collection::vec((0u8..5, 0usize..3, arb_rule(), 0u8..3, 0usize..2), 1..8),
        ) {
            let u = universe();
            let aa = |n: u8| [AuditAccess::None, AuditAccess::Own, AuditAccess::All][n as usize];
            let mut roles: Vec<Option<Role>> = start
                .into_iter()
                .zip(&audits)
                .enumerate()
                .map(|(i, (rules, a))| Some(role(&format!("/r{i}"), aa(*a), rules)))
                .collect();
            let mut holders: Vec<Vec<usize>> = holders;
            holders.insert(0, vec![0, 1]);
            let rights = |roles: &[Option<Role>], h: &[usize]| -> (Vec<Rule>, AuditAccess) {
                let mut rules = Vec::new();
                let mut audit = AuditAccess::None;
                for i in h {
                    if let Some(r) = &roles[*i] {
                        rules.extend(r.rules.iter().cloned());
                        audit = audit.max(r.audit_access);
                    }
                }
                (rules, audit)
            };
            let (initial, initial_audit) = rights(&roles, &holders[0]);
            for (op, target, new_rule, audit, holder) in ops {
                let (caller_rules, caller_audit) = rights(&roles, &holders[0]);
                let g = Grantor { rules: caller_rules.iter().collect(), audit_access: caller_audit };
                let existing: Vec<Role> = roles.iter().flatten().cloned().collect();
                let before: Vec<(Vec<Rule>, AuditAccess)> =
                    holders.iter().map(|h| rights(&roles, h)).collect();
                let name = format!("/r{target}");
                match (op, &roles[target]) {
                    // set-role-rule (insert or replace by type and path)
                    (0, Some(r)) => {
                        let mut after = r.rules.clone();
                        after.retain(|x| !(x.rule_type == new_rule.rule_type && x.path == new_rule.path));
                        after.push(new_rule.clone());
                        if check_role_change(&g, &name, Some((&r.rules, r.audit_access)), Some((&after, r.audit_access)), &existing).is_ok() {
                            roles[target].as_mut().unwrap().rules = after;
                        }
                    }
                    // delete-role-rule
                    (1, Some(r)) if !r.rules.is_empty() => {
                        let mut after = r.rules.clone();
                        after.remove(0);
                        if check_role_change(&g, &name, Some((&r.rules, r.audit_access)), Some((&after, r.audit_access)), &existing).is_ok() {
                            roles[target].as_mut().unwrap().rules = after;
                        }
                    }
                    // delete-role
                    (2, Some(r))
                        if check_role_change(&g, &name, Some((&r.rules, r.audit_access)), None, &existing).is_ok() => {
                            roles[target] = None;
                        }
                    // create-role (with an audit access)
                    (2, None)
                        if check_role_change(&g, &name, None, Some((&[], aa(audit))), &existing).is_ok() => {
                            roles[target] = Some(role(&name, aa(audit), vec![]));
                        }
                    // assoc-role-am
                    (3, Some(r))
                        if check_holds_role(&g, &name, &r.rules, r.audit_access).is_ok()
                            && !holders[holder].contains(&target) => {
                            holders[holder].push(target);
                        }
                    // delete-assoc
                    (4, Some(r)) => {
                        let all = existing.iter().flat_map(|x| x.rules.iter());
                        if check_holds_role(&g, &name, &r.rules, r.audit_access).is_ok()
                            && check_lift_denies(&g, &name, r.rules.iter(), all).is_ok() {
                            holders[holder].retain(|x| *x != target);
                        }
                    }
                    _ => {}
                }
                // Invariant: whatever any identity gained, the caller held at the start.
                for (h, (prev_rules, prev_audit)) in holders.iter().zip(&before) {
                    let (now_rules, now_audit) = rights(&roles, h);
                    prop_assert!(now_audit <= (*prev_audit).max(initial_audit));
                    for t in TYPES {
                        for n in &u {
                            let now = effective(&now_rules, t, n);
                            let prev = effective(prev_rules, t, n);
                            let gained = Caps::from_bits(now.bits() & !prev.bits());
                            prop_assert!(
                                effective(&initial, t, n).contains(gained),
                                "identity {:?} gained {:?} on {} {:?}", h, gained, t, n
                            );
                        }
                    }
                }
            }
        }
    }
}
