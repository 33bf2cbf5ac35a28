//! The response shape of every operation: the server's own response
//! types, as declared top-level fields and their JSON types. In debug
//! builds (every test run) the pipeline checks each successful answer
//! against its operation's shape and panics on a field that is not
//! declared or has another type (`check`), so `/openapi.json`, which is
//! generated from this table, cannot drift from what handlers return.
//! Nested objects are typed `Object` (their fields are in docs/api.md,
//! following the Akeyless SDK models).
//!
//! With `COFFER_RECORD_PARAMS=FILE` the check appends what it saw to FILE
//! instead of panicking (lines starting with `=`), which is how new rows
//! are written.

use serde_json::Value;

/// The JSON type of a response field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JType {
    Str,
    Int,
    Num,
    Bool,
    Array,
    Object,
    /// Several types (or null) depending on the item or request.
    Any,
}

impl JType {
    pub fn of(v: &Value) -> JType {
        match v {
            Value::String(_) => JType::Str,
            Value::Number(n) if n.is_i64() || n.is_u64() => JType::Int,
            Value::Number(_) => JType::Num,
            Value::Bool(_) => JType::Bool,
            Value::Array(_) => JType::Array,
            Value::Object(_) => JType::Object,
            Value::Null => JType::Any,
        }
    }

    /// May a field declared `self` hold `v`?
    pub fn admits(self, v: &Value) -> bool {
        let t = JType::of(v);
        self == JType::Any || self == t || (self == JType::Num && t == JType::Int)
    }
}

/// One declared response field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: JType,
}

/// What an operation answers.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// An object with these fields (any may be absent).
    Object(&'static [Field]),
    /// An object keyed by the names the request gave (`get-secret-value`).
    Map(JType),
    /// A top-level array of values of this type.
    List(JType),
}

macro_rules! object {
    ($($name:literal : $ty:ident),* $(,)?) => {
        Shape::Object(&[$(Field { name: $name, ty: JType::$ty }),*])
    };
}

/// The shape an operation (by its canonical name) answers with, when
/// declared.
pub fn declared(op: &str) -> Option<Shape> {
    RETURNS.iter().find(|(n, _)| *n == op).map(|(_, s)| *s)
}

/// Check (debug builds) an operation's answer against its declared shape.
#[cfg(debug_assertions)]
pub(crate) fn check(op: &str, out: &Value) {
    let recording = std::env::var_os("COFFER_RECORD_PARAMS");
    let shape = declared(op);
    // An operation without a row fails the table test instead.
    if shape.is_none() && recording.is_none() {
        return;
    }
    let mut bad: Vec<String> = Vec::new();
    match (shape, out) {
        (Some(Shape::Object(fields)), Value::Object(m)) => {
            for (k, v) in m {
                match fields.iter().find(|f| f.name == k.as_str()) {
                    Some(f) if f.ty.admits(v) => {}
                    _ => bad.push(format!("={op}\t{k}\t{:?}", JType::of(v))),
                }
            }
        }
        (Some(Shape::Map(t)), Value::Object(m)) => {
            for v in m.values() {
                if !t.admits(v) {
                    bad.push(format!("={op}\t/\t{:?}", JType::of(v)));
                }
            }
        }
        (Some(Shape::List(t)), Value::Array(a)) => {
            for v in a {
                if !t.admits(v) {
                    bad.push(format!("={op}\t[]\t{:?}", JType::of(v)));
                }
            }
        }
        (None, Value::Object(m)) => {
            for (k, v) in m {
                // Keys that are item names make the answer a map.
                let k = if k.starts_with('/') { "/" } else { k.as_str() };
                bad.push(format!("={op}\t{k}\t{:?}", JType::of(v)));
            }
            if m.is_empty() {
                bad.push(format!("={op}\t{{}}\tObject"));
            }
        }
        (None, Value::Array(a)) => {
            bad.push(format!("={op}\t[]\tAny"));
            for v in a {
                bad.push(format!("={op}\t[]\t{:?}", JType::of(v)));
            }
        }
        (_, other) => bad.push(format!("={op}\t$\t{:?}", JType::of(other))),
    }
    if bad.is_empty() {
        return;
    }
    if let Some(path) = recording {
        use std::io::Write;
        let text: String = bad.iter().map(|l| format!("{l}\n")).collect();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            panic!("cannot record a response shape in {path:?}: {e}");
        }
        return;
    }
    panic!(
        "operation {op} answered fields ops/returns.rs does not declare (op, field, type): {}",
        bad.join("; ")
    );
}

/// Every operation's response shape, in the operation table's order.
pub static RETURNS: &[(&str, Shape)] = &[
    (
        "auth",
        object!["creds": Object, "expiration": Str, "token": Str],
    ),
    (
        "validate-token",
        object!["expiration": Str, "is_valid": Bool, "reason": Str, "ttl": Int],
    ),
    ("revoke-token", object![]),
    (
        "get-caller-identity",
        object!["access_id": Str, "auth_method_name": Str, "auth_method_type": Str, "expiration": Str, "identity": Str, "issued": Str, "roles": Array, "sub_claims": Object, "ttl": Int],
    ),
    ("oidc-auth-url", object!["auth_url": Str, "state": Str]),
    ("get-cert-challenge", object!["challenge": Str]),
    (
        "uid-rotate-token",
        object!["expiration": Str, "token": Str, "token_id": Str],
    ),
    (
        "uid-create-child-token",
        object!["expiration": Str, "token": Str, "token_id": Str],
    ),
    (
        "uid-revoke-token",
        object!["auth_method_name": Str, "revoke_type": Str, "revoked": Array, "token_id": Str],
    ),
    (
        "uid-list-children",
        object!["max_depth": Int, "number_of_tokens": Int, "root": Object],
    ),
    (
        "uid-generate-token",
        object!["expiration": Str, "token": Str, "token_id": Str],
    ),
    (
        "create-auth-method",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-oauth2",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-k8s",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-aws-iam",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-azure-ad",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-gcp",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-universal-identity",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-cert",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "create-auth-method-oidc",
        object!["access_id": Str, "access_key": Str, "name": Str],
    ),
    (
        "get-auth-method",
        object!["access_info": Object, "auth_method_access_id": Str, "auth_method_name": Str, "auth_method_roles_assoc": Array, "creation_date": Str, "description": Str, "modification_date": Str],
    ),
    (
        "list-auth-methods",
        object!["auth_methods": Array, "next_page": Str],
    ),
    ("delete-auth-method", object!["name": Str]),
    ("update-auth-method", object!["name": Str]),
    ("auth-method-update-api-key", object!["name": Str]),
    ("auth-method-update-oauth2", object!["name": Str]),
    ("auth-method-update-k8s", object!["name": Str]),
    ("auth-method-update-aws-iam", object!["name": Str]),
    ("auth-method-update-azure-ad", object!["name": Str]),
    ("auth-method-update-gcp", object!["name": Str]),
    (
        "auth-method-update-universal-identity",
        object!["name": Str],
    ),
    ("auth-method-update-cert", object!["name": Str]),
    ("auth-method-update-oidc", object!["name": Str]),
    ("reset-access-key", object!["access_key": Str]),
    ("create-role", object!["name": Str]),
    (
        "get-role",
        object!["audit_access": Str, "comment": Str, "creation_date": Str, "description": Str, "modification_date": Str, "role_auth_methods_assoc": Array, "role_name": Str, "rules": Object],
    ),
    ("list-roles", object!["next_page": Str, "roles": Array]),
    ("delete-role", object![]),
    ("set-role-rule", object![]),
    ("delete-role-rule", object![]),
    ("assoc-role-am", object!["assoc_id": Str]),
    ("update-role", object!["updated": Bool]),
    ("update-assoc", object![]),
    ("delete-assoc", object![]),
    ("create-secret", object!["name": Str]),
    ("update-secret-val", object!["name": Str]),
    ("get-secret-value", Shape::Map(JType::Str)),
    (
        "describe-item",
        object!["auto_rotate": Bool, "cert_issuer_signer_key_name": Str, "certificate_issue_details": Object, "certificates": Str, "creation_date": Str, "delete_protection": Bool, "deletion_date": Str, "display_id": Str, "is_access_request_enabled": Bool, "is_enabled": Bool, "item_general_info": Object, "item_id": Int, "item_metadata": Str, "item_name": Str, "item_size": Int, "item_state": Str, "item_sub_type": Str, "item_tags": Array, "item_targets_assoc": Array, "item_type": Str, "item_versions": Array, "last_rotation_date": Str, "last_version": Int, "max_versions": Int, "modification_date": Str, "next_rotation_date": Str, "protection_key_name": Str, "public_value": Str, "rotation_interval": Int, "with_customer_fragment": Bool],
    ),
    (
        "list-items",
        object!["folders": Any, "has_next": Bool, "items": Any, "next_page": Str],
    ),
    (
        "delete-item",
        object!["deletion_date": Str, "item_id": Int, "item_name": Str, "version_deleted": Int],
    ),
    ("update-item", object!["updated": Bool]),
    ("get-tags", Shape::List(JType::Str)),
    (
        "delete-items",
        object!["deleted_items": Array, "failed_deleted_items": Object, "path": Str],
    ),
    (
        "restore-item",
        object!["item_id": Int, "item_name": Str, "restored": Bool],
    ),
    ("target-create-db", object!["target_id": Int]),
    ("target-update-db", object!["target_id": Int]),
    (
        "target-get",
        object!["comment": Any, "creation_date": Any, "delete_protection": Any, "description": Any, "item_name": Any, "last_version": Any, "modification_date": Any, "relationship": Any, "target_id": Int, "target_items_assoc": Any, "target_name": Str, "target_sub_type": Any, "target_type": Any, "with_customer_fragment": Any],
    ),
    (
        "target-get-details",
        object!["target": Object, "value": Object],
    ),
    ("target-list", object!["targets": Array]),
    ("target-delete", object!["target_name": Str]),
    (
        "dynamic-secret-create-mysql",
        object!["dynamic_secret_details": Object],
    ),
    (
        "dynamic-secret-create-postgresql",
        object!["dynamic_secret_details": Object],
    ),
    (
        "dynamic-secret-create-azure",
        object!["dynamic_secret_details": Object],
    ),
    (
        "dynamic-secret-update-azure",
        object!["dynamic_secret_details": Object, "producer_details": Object],
    ),
    (
        "dynamic-secret-update-mysql",
        object!["dynamic_secret_details": Object, "producer_details": Object],
    ),
    (
        "dynamic-secret-update-postgresql",
        object!["dynamic_secret_details": Object, "producer_details": Object],
    ),
    (
        "dynamic-secret-get",
        object!["azure_app_object_id": Str, "azure_client_id": Str, "azure_tenant_id": Str, "db_host_name": Str, "db_name": Str, "db_port": Str, "db_type": Str, "db_user_name": Str, "failure_message": Str, "item_id": Int, "item_name": Str, "item_targets_assoc": Array, "max_leases": Int, "mysql_creation_statements": Str, "mysql_revocation_statements": Str, "password_length": Int, "postgres_creation_statements": Str, "postgres_revocation_statements": Str, "producer_status": Str, "producer_type": Str, "ssl_connection_certificate": Str, "ssl_connection_mode": Bool, "tags": Array, "user_programmatic_access": Bool, "user_ttl": Str, "username_template": Str],
    ),
    (
        "dynamic-secret-list",
        object!["producers": Array, "producers_errors": Object],
    ),
    ("dynamic-secret-delete", object!["dynamic_secret_name": Str]),
    (
        "get-dynamic-secret-value",
        object!["id": Str, "password": Str, "secret": Object, "ttl_in_minutes": Str, "user": Str],
    ),
    ("dynamic-secret-tmp-creds-get", Shape::List(JType::Object)),
    ("dynamic-secret-tmp-creds-delete", object!["revoked": Array]),
    (
        "dynamic-secret-tmp-creds-update",
        object!["expiration_date": Str, "id": Str],
    ),
    ("lease-list", object!["leases": Array]),
    ("rotated-secret-create-mysql", object!["name": Str]),
    ("rotated-secret-create-postgresql", object!["name": Str]),
    ("create-rotated-secret", object!["name": Str]),
    ("rotated-secret-update-mysql", object!["name": Str]),
    (
        "get-rotated-secret-value",
        object!["value": Object, "version": Int],
    ),
    ("gateway-rotate-secret", object!["name": Str]),
    (
        "rotated-secret-list",
        object!["producers": Array, "producers_errors": Object],
    ),
    (
        "rotated-secret-delete",
        object!["item_id": Int, "item_name": Str, "version_deleted": Int],
    ),
    (
        "create-key",
        object!["display_id": Str, "fragment_results": Array, "item_id": Int],
    ),
    (
        "create-classic-key",
        object!["classic_key_id": Str, "classic_key_name": Str, "classic_key_type": Str, "public_key": Str],
    ),
    (
        "get-rsa-public",
        object!["pem": Str, "raw": Str, "ssh": Str],
    ),
    ("encrypt", object!["result": Str]),
    ("decrypt", object!["result": Str]),
    (
        "rotate-key",
        object!["classic_key_type": Str, "item_id": Int, "name": Str, "new_item_version": Int],
    ),
    (
        "update-classic-key-certificate",
        object!["name": Str, "new_item_version": Int],
    ),
    ("create-ssh-cert-issuer", object!["name": Str]),
    ("update-ssh-cert-issuer", object!["name": Str]),
    ("get-ssh-certificate", object!["data": Str, "path": Str]),
    ("create-pki-cert-issuer", object!["name": Str]),
    ("update-pki-cert-issuer", object!["name": Str]),
    (
        "get-pki-certificate",
        object!["cert_display_id": Str, "cert_item_id": Int, "data": Str, "parent_cert": Str, "path": Str, "reading_token": Str],
    ),
    ("cert-list", object!["certificates": Array]),
    (
        "revoke-certificate",
        object!["cert_issuer_name": Str, "revoked": Bool, "serial_number": Str],
    ),
    ("audit-list", object!["next_seq": Int, "records": Array]),
    (
        "audit-verify",
        object!["anchors_checked": Int, "anchors_pruned": Int, "checkpoint": Object, "error": Str, "last_seq": Int, "records": Int, "valid": Bool],
    ),
    (
        "explain-access",
        object!["associations": Array, "auth_method": Object, "capabilities": Array, "claims": Object, "denied": Bool, "login": Object, "path": Str, "roles": Array, "rule_type": Str, "rules": Array],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_declares_its_answer() {
        for op in super::super::OPERATIONS {
            assert!(
                declared(op.name).is_some(),
                "{} has no row in ops/returns.rs",
                op.name
            );
        }
        for (name, _) in RETURNS {
            assert!(
                super::super::OPERATIONS.iter().any(|op| op.name == *name),
                "ops/returns.rs has a row for {name}, which is not an operation"
            );
        }
    }
}
