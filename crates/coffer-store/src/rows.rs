//! Row shapes and their conversion to and from the domain types, shared by
//! both backends. Rows are decoded into plain tuples (in the column order of
//! the statements in [`crate::sql`]) and converted here, so a bad stored
//! value becomes [`StoreError::Corrupt`] instead of a panic.

use std::str::FromStr;

use coffer_core::audit::{AuditRecord, Outcome};
use coffer_core::model::{
    Association, AuditAccess, AuthMethod, AuthMethodKind, CertKind, IssuedCert, Item, ItemSubType,
    ItemType, Lease, LeaseState, Producer, Role, SecretFormat, Target, TokenRecord, UidToken,
};
use coffer_core::policy::{Caps, Rule, RuleType};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Result, StoreError};

pub(crate) type AuthMethodRow = (
    String,          // name
    String,          // access_id
    String,          // kind
    String,          // description
    Option<Vec<u8>>, // access_key_hash
    i64,             // access_expires_ms
    String,          // bound_ips (JSON)
    i64,             // token_ttl_secs
    bool,            // force_sub_claims
    String,          // config (JSON)
    i64,             // created_ms
    i64,             // modified_ms
);

/// A role and one of its rules (the rule columns are NULL for a role
/// without rules).
pub(crate) type RoleRuleRow = (
    String,         // name
    String,         // description
    String,         // audit_access
    i64,            // created_ms
    i64,            // modified_ms
    Option<String>, // rule_type
    Option<String>, // path
    Option<i32>,    // caps
);

pub(crate) type AssociationRow = (
    String, // assoc_id
    String, // role_name
    String, // auth_method_name
    String, // sub_claims (JSON)
    bool,   // case_sensitive
    i64,    // created_ms
);

/// The columns of `item_columns!` in order: 14, too many for one tuple
/// beside a version's, so `sql_store.rs` reads them by index.
pub(crate) struct ItemCols {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) item_type: String,
    pub(crate) sub_type: String,
    pub(crate) format: String,
    pub(crate) description: String,
    pub(crate) tags: String,
    pub(crate) max_versions: i32,
    pub(crate) last_version: i32,
    pub(crate) highest_version: i32,
    pub(crate) enabled: bool,
    pub(crate) created_ms: i64,
    pub(crate) modified_ms: i64,
    pub(crate) deletion_ms: i64,
}

/// Number of columns in `item_columns!`.
pub(crate) const ITEM_COLUMNS: usize = 14;

pub(crate) type TokenRow = (
    Vec<u8>, // token_hash
    String,  // access_id
    String,  // auth_method_name
    String,  // identity
    String,  // claims (JSON)
    i64,     // issued_ms
    i64,     // expires_ms
);

pub(crate) type UidTokenRow = (
    String,         // token_id
    Vec<u8>,        // token_hash
    Option<String>, // parent_id
    String,         // access_id
    i32,            // depth
    i64,            // ttl_secs
    i64,            // expires_ms
    bool,           // deny_rotate
    bool,           // deny_inheritance
    String,         // comment
    bool,           // revoked
    i64,            // last_rotated_ms
    i64,            // created_ms
    i64,            // modified_ms
);

pub(crate) type AuditRow = (
    i64,             // seq
    i64,             // time_ms
    String,          // request_id
    String,          // operation
    String,          // object
    String,          // outcome
    i32,             // status
    String,          // error
    String,          // access_id
    String,          // auth_method
    String,          // identity
    String,          // client_type
    String,          // peer
    Option<Vec<u8>>, // prev_hash (joined; NULL for seq 1 or after a gap)
    Vec<u8>,         // hash
);

// ---- decoding ----

pub(crate) fn auth_method(row: AuthMethodRow) -> Result<AuthMethod> {
    let (
        name,
        access_id,
        kind,
        description,
        access_key_hash,
        access_expires_ms,
        bound_ips,
        token_ttl_secs,
        force_sub_claims,
        config,
        created_ms,
        modified_ms,
    ) = row;
    Ok(AuthMethod {
        kind: parse_enum::<AuthMethodKind>("auth method kind", &kind)?,
        bound_ips: from_json("bound IPs", &bound_ips)?,
        config: from_json("auth method config", &config)?,
        name,
        access_id,
        description,
        access_key_hash,
        access_expires_ms,
        token_ttl_secs,
        force_sub_claims,
        created_ms,
        modified_ms,
    })
}

/// Group role rows (ordered by role, then rule) into roles.
pub(crate) fn roles(rows: Vec<RoleRuleRow>) -> Result<Vec<Role>> {
    let mut out: Vec<Role> = Vec::new();
    for (name, description, audit_access, created_ms, modified_ms, rule_type, path, caps) in rows {
        if out.last().is_none_or(|r| r.name != name) {
            out.push(Role {
                audit_access: parse_enum::<AuditAccess>("audit access", &audit_access)?,
                name,
                description,
                rules: Vec::new(),
                created_ms,
                modified_ms,
            });
        }
        if let (Some(rule_type), Some(path), Some(caps)) = (rule_type, path, caps) {
            let rule = Rule {
                rule_type: parse_enum::<RuleType>("rule type", &rule_type)?,
                path,
                caps: Caps::from_bits(
                    u8::try_from(caps)
                        .map_err(|_| StoreError::Corrupt(format!("capability bits {caps}")))?,
                ),
            };
            if let Some(role) = out.last_mut() {
                role.rules.push(rule);
            }
        }
    }
    Ok(out)
}

pub(crate) fn association(row: AssociationRow) -> Result<Association> {
    let (assoc_id, role_name, auth_method_name, sub_claims, case_sensitive, created_ms) = row;
    Ok(Association {
        sub_claims: from_json("sub-claims", &sub_claims)?,
        assoc_id,
        role_name,
        auth_method_name,
        case_sensitive,
        created_ms,
    })
}

pub(crate) fn item(c: ItemCols) -> Result<Item> {
    Ok(Item {
        item_type: parse_item_type(&c.item_type)?,
        sub_type: parse_enum::<ItemSubType>("item sub-type", &c.sub_type)?,
        format: parse_enum::<SecretFormat>("secret format", &c.format)?,
        tags: from_json("tags", &c.tags)?,
        id: c.id,
        name: c.name,
        description: c.description,
        max_versions: c.max_versions,
        last_version: c.last_version,
        highest_version: c.highest_version,
        enabled: c.enabled,
        created_ms: c.created_ms,
        modified_ms: c.modified_ms,
        deletion_ms: c.deletion_ms,
    })
}

pub(crate) fn token(row: TokenRow) -> Result<TokenRecord> {
    let (token_hash, access_id, auth_method_name, identity, claims, issued_ms, expires_ms) = row;
    Ok(TokenRecord {
        claims: from_json("token claims", &claims)?,
        token_hash,
        access_id,
        auth_method_name,
        identity,
        issued_ms,
        expires_ms,
    })
}

pub(crate) fn uid_token(row: UidTokenRow) -> Result<UidToken> {
    let (
        token_id,
        token_hash,
        parent_id,
        access_id,
        depth,
        ttl_secs,
        expires_ms,
        deny_rotate,
        deny_inheritance,
        comment,
        revoked,
        last_rotated_ms,
        created_ms,
        modified_ms,
    ) = row;
    Ok(UidToken {
        token_id,
        token_hash,
        parent_id,
        access_id,
        depth,
        ttl_secs,
        expires_ms,
        deny_rotate,
        deny_inheritance,
        comment,
        revoked,
        last_rotated_ms,
        created_ms,
        modified_ms,
    })
}

pub(crate) fn audit_record(row: AuditRow) -> Result<AuditRecord> {
    let (
        seq,
        time_ms,
        request_id,
        operation,
        object,
        outcome,
        status,
        error,
        access_id,
        auth_method,
        identity,
        client_type,
        peer,
        prev_hash,
        hash,
    ) = row;
    Ok(AuditRecord {
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("audit outcome {outcome:?}")))?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt(format!("audit status {status}")))?,
        seq,
        time_ms,
        request_id,
        operation,
        object,
        error,
        access_id,
        auth_method,
        identity,
        client_type,
        peer,
        prev_hash: prev_hash.unwrap_or_default(),
        hash,
    })
}

/// Decode every row, failing on the first bad one.
pub(crate) fn all<R, T>(rows: Vec<R>, decode: impl Fn(R) -> Result<T>) -> Result<Vec<T>> {
    rows.into_iter().map(decode).collect()
}

fn parse_enum<T: FromStr>(what: &str, s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} {s:?}")))
}

/// `ItemType` has no `FromStr`; its stored form is `as_str`.
fn parse_item_type(s: &str) -> Result<ItemType> {
    ItemType::ALL
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("item type {s:?}")))
}

fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    // serde_json's message names a position, never the content.
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

// ---- encoding ----

/// JSON text of a list or map column.
pub(crate) fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

/// Stored form of capabilities.
pub(crate) fn caps_bits(caps: Caps) -> i32 {
    i32::from(caps.bits())
}

/// The smallest string greater than every string that starts with `prefix`,
/// in code-point order (which is UTF-8 byte order); `None` when no such
/// string exists (empty prefix, or only `char::MAX`).
///
/// `name >= prefix AND name < upper` is then exactly "starts with prefix":
/// the last character that can be incremented is incremented and everything
/// after it dropped, so no wildcard or escape character needs any care.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            char::MAX => continue,
            '\u{D7FF}' => '\u{E000}', // skip the surrogate range
            c => char::from_u32(u32::from(c) + 1)?,
        };
        chars.push(next);
        return Some(chars.into_iter().collect());
    }
    None
}

/// Object descriptions for error messages: `item "/app/db"`.
pub(crate) fn named(kind: &str, name: &str) -> String {
    format!("{kind} {name:?}")
}

// ---- targets, producers, leases ----

pub(crate) type TargetRow = (
    i64,     // id
    String,  // name
    String,  // target_type
    String,  // description
    String,  // details (JSON)
    i64,     // key_id
    Vec<u8>, // sealed
    i32,     // version
    i64,     // created_ms
    i64,     // modified_ms
);

pub(crate) fn target(r: TargetRow) -> Result<Target> {
    let (
        id,
        name,
        target_type,
        description,
        details,
        key_id,
        sealed,
        version,
        created_ms,
        modified_ms,
    ) = r;
    Ok(Target {
        details: from_json("target details", &details)?,
        id,
        name,
        target_type,
        description,
        key_id,
        sealed,
        version,
        created_ms,
        modified_ms,
    })
}

pub(crate) type ProducerRow = (
    i64,            // item_id
    Option<String>, // target_name
    String,         // settings (JSON)
    String,         // status
    Option<i32>,    // pending_version
    i64,            // last_rotation_ms
    i64,            // next_rotation_ms
);

pub(crate) fn producer(r: ProducerRow) -> Result<Producer> {
    let (
        item_id,
        target_name,
        settings,
        status,
        pending_version,
        last_rotation_ms,
        next_rotation_ms,
    ) = r;
    Ok(Producer {
        settings: from_json("producer settings", &settings)?,
        item_id,
        target_name,
        status,
        pending_version,
        last_rotation_ms,
        next_rotation_ms,
    })
}

pub(crate) type LeaseRow = (
    String,          // id
    i64,             // item_id
    String,          // item_name
    String,          // access_id
    String,          // identity
    Option<Vec<u8>>, // token_hash
    i64,             // created_ms
    i64,             // expires_ms
    String,          // state
    i32,             // attempts
    i64,             // next_attempt_ms
    String,          // last_error
    i64,             // revoked_ms
);

pub(crate) fn lease(r: LeaseRow) -> Result<Lease> {
    let (
        id,
        item_id,
        item_name,
        access_id,
        identity,
        token_hash,
        created_ms,
        expires_ms,
        state,
        attempts,
        next_attempt_ms,
        last_error,
        revoked_ms,
    ) = r;
    Ok(Lease {
        state: parse_enum::<LeaseState>("lease state", &state)?,
        id,
        item_id,
        item_name,
        access_id,
        identity,
        token_hash,
        created_ms,
        expires_ms,
        attempts,
        next_attempt_ms,
        last_error,
        revoked_ms,
    })
}

// ---- issued certificates ----

pub(crate) type CertRow = (
    i64,    // issuer_id
    String, // serial
    String, // issuer_name
    String, // kind
    String, // signer_key
    i32,    // signer_version
    String, // subject
    String, // names (JSON)
    String, // access_id
    String, // identity
    String, // request_id
    i64,    // issued_ms
    i64,    // expires_ms
    i64,    // revoked_ms
    String, // revocation_reason
);

pub(crate) fn cert(r: CertRow) -> Result<IssuedCert> {
    let (
        issuer_id,
        serial,
        issuer_name,
        kind,
        signer_key,
        signer_version,
        subject,
        names,
        access_id,
        identity,
        request_id,
        issued_ms,
        expires_ms,
        revoked_ms,
        revocation_reason,
    ) = r;
    Ok(IssuedCert {
        request_id,
        signer_key,
        signer_version,
        kind: parse_enum::<CertKind>("certificate kind", &kind)?,
        names: from_json("certificate names", &names)?,
        issuer_id,
        serial,
        issuer_name,
        subject,
        access_id,
        identity,
        issued_ms,
        expires_ms,
        revoked_ms,
        revocation_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("/a").as_deref(), Some("/b"));
        assert_eq!(prefix_upper_bound("/a%").as_deref(), Some("/a&"));
        assert_eq!(
            prefix_upper_bound("/a\u{D7FF}").as_deref(),
            Some("/a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("/a\u{10FFFF}").as_deref(), Some("/b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("é").as_deref(), Some("ê"));
    }

    #[test]
    fn upper_bound_brackets_exactly_the_prefixed_names() {
        let names = [
            "/a",
            "/a/",
            "/a/b",
            "/a_b",
            "/a%",
            "/a%b",
            "/a\\",
            "/A/x",
            "/b",
            "/a\u{10FFFF}x",
            "/ab",
            "/a/\u{10FFFF}",
            "/a0",
            "/",
            "",
        ];
        for prefix in ["/a", "/a/", "/a%", "/a_", "/", "", "/a\u{10FFFF}", "/a\\"] {
            let upper = prefix_upper_bound(prefix);
            for name in names {
                let in_range = name >= prefix && upper.as_deref().is_none_or(|u| name < u);
                assert_eq!(in_range, name.starts_with(prefix), "{prefix:?} {name:?}");
            }
        }
    }
}
